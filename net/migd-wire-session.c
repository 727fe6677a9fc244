/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "migd-error.h"
#include "migd-wire-session.h"

typedef struct {
	gboolean offered;  /* destination: DeviceOffer received */
	gboolean answered; /* source: DeviceAccept or DeviceReject received */
	gboolean ended;	   /* destination: the STOPCOPY chunk with `last` received */
	gboolean stopcopy; /* destination: a STOPCOPY chunk received */
	guint64 next_seq;  /* destination: the StateChunk sequence expected next */
	guint64 bytes;	   /* destination: payload bytes received */
} MigdWireDeviceTrack;

struct _MigdWireSession {
	MigdWireRole role;
	gboolean hello_done; /* Hello received (destination) / HelloReply received (source) */
	gboolean hello_sent; /* source */
	gboolean reply_sent; /* destination */
	gboolean committed;  /* destination: Commit received */
	/* source: an ok CommitResult with CAP_HANDOVER: only StartRequest, Abort, Keepalive follow
	 */
	gboolean handover;
	gboolean start_requested;    /* source: StartRequest received */
	gboolean start_request_sent; /* destination: our StartRequest left: StartGrant may come */
	gboolean over;
	gchar *session_id;
	guint32 version_min; /* source: what our Hello offered */
	guint32 version_max;
	guint64 caps_offered;
	guint32 version;
	guint64 caps;
	guint device_count;
	MigdWireDeviceTrack *devices;
	guint64 last_keepalive;
	gboolean seen_keepalive;
};

const gchar *
migd_wire_role_to_string(MigdWireRole role)
{
	return role == MIGD_WIRE_ROLE_SOURCE ? "source" : "destination";
}

MigdWireSession *
migd_wire_session_new(MigdWireRole local_role)
{
	MigdWireSession *self = g_new0(MigdWireSession, 1);

	self->role = local_role;
	return self;
}

void
migd_wire_session_free(MigdWireSession *self)
{
	if (self == NULL)
		return;
	g_free(self->session_id);
	g_free(self->devices);
	g_free(self);
}

static void
migd_wire_session_set_devices(MigdWireSession *self, guint count)
{
	g_free(self->devices);
	self->device_count = count;
	self->devices = g_new0(MigdWireDeviceTrack, count);
}

void
migd_wire_session_note_hello_sent(MigdWireSession *self, const Migd__Wire__Hello *hello)
{
	g_return_if_fail(self != NULL);
	g_return_if_fail(self->role == MIGD_WIRE_ROLE_SOURCE);
	g_return_if_fail(hello != NULL);
	g_return_if_fail(hello->device_count <= MIGD_WIRE_MAX_DEVICES);

	self->hello_sent = TRUE;
	g_free(self->session_id);
	self->session_id = g_strdup(hello->session_id);
	self->version_min = hello->version_min;
	self->version_max = hello->version_max;
	self->caps_offered = hello->capabilities;
	migd_wire_session_set_devices(self, hello->device_count);
}

void
migd_wire_session_note_hello_reply_sent(MigdWireSession *self, const Migd__Wire__HelloReply *reply)
{
	g_return_if_fail(self != NULL);
	g_return_if_fail(self->role == MIGD_WIRE_ROLE_DESTINATION);
	g_return_if_fail(reply != NULL);

	self->reply_sent = TRUE;
	if (reply->has_refusal) {
		self->over = TRUE;
		return;
	}
	self->version = reply->version;
	self->caps = reply->capabilities;
}

void
migd_wire_session_note_sent(MigdWireSession *self, const MigdWireFrame *frame)
{
	g_return_if_fail(self != NULL);
	g_return_if_fail(frame != NULL);

	switch (frame->type) {
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO:
		migd_wire_session_note_hello_sent(self, frame->hello);
		break;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY:
		migd_wire_session_note_hello_reply_sent(self, frame->hello_reply);
		break;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_START_REQUEST:
		self->start_request_sent = TRUE;
		break;
	default:
		break;
	}
}

guint
migd_wire_session_get_device_count(MigdWireSession *self)
{
	g_return_val_if_fail(self != NULL, 0);
	return self->device_count;
}

guint32
migd_wire_session_get_version(MigdWireSession *self)
{
	g_return_val_if_fail(self != NULL, 0);
	return self->version;
}

guint64
migd_wire_session_get_capabilities(MigdWireSession *self)
{
	g_return_val_if_fail(self != NULL, 0);
	return self->caps;
}

gboolean
migd_wire_session_is_over(MigdWireSession *self)
{
	g_return_val_if_fail(self != NULL, TRUE);
	return self->over;
}

/* which side may send a type; ABORT and KEEPALIVE go both ways */
static gboolean
migd_wire_sent_by_source(guint32 type)
{
	switch (type) {
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_PRECOPY_PROGRESS:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DIRTY_BITMAP_CHUNK:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE:
		return TRUE;
	default:
		return FALSE;
	}
}

static gboolean
migd_wire_sent_by_destination(guint32 type)
{
	switch (type) {
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_REJECT:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_SWITCHOVER_ACK:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_START_REQUEST:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT:
	case MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE:
		return TRUE;
	default:
		return FALSE;
	}
}

static gboolean
migd_wire_session_check_device(MigdWireSession *self, const gchar *what, guint32 device,
			       GError **error)
{
	if (device >= self->device_count) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s: device index %u out of range (the session has %u devices)", what,
			    device, self->device_count);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_wire_session_check_chunk(MigdWireSession *self, const Migd__Wire__StateChunk *m,
			      GError **error)
{
	MigdWireDeviceTrack *t;
	gboolean stopcopy = m->phase == MIGD__WIRE__PHASE__PHASE_STOPCOPY;

	if (!migd_wire_session_check_device(self, "StateChunk", m->device, error))
		return FALSE;
	t = &self->devices[m->device];
	if (!t->offered) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "StateChunk for device %u, which was never offered", m->device);
		return FALSE;
	}
	if (t->ended) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "StateChunk for device %u after its last chunk", m->device);
		return FALSE;
	}
	if (m->sequence != t->next_seq) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "device %u: state chunk sequence %" G_GUINT64_FORMAT
			    ", expected %" G_GUINT64_FORMAT,
			    m->device, m->sequence, t->next_seq);
		return FALSE;
	}
	/* the kernel forbids STOP_COPY -> PRE_COPY, so the stream can't go back either */
	if (t->stopcopy && !stopcopy) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "device %u: PRECOPY chunk after STOPCOPY chunks", m->device);
		return FALSE;
	}
	if (!stopcopy && (self->caps & MIGD_WIRE_CAP_PRECOPY) == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "device %u: PRECOPY chunk, but PRECOPY was not negotiated", m->device);
		return FALSE;
	}
	t->next_seq++;
	t->bytes += m->data.len;
	t->stopcopy |= stopcopy;
	t->ended = m->has_last && m->last;
	return TRUE;
}

static gboolean
migd_wire_session_check_commit(MigdWireSession *self, const Migd__Wire__Commit *m, GError **error)
{
	for (gsize i = 0; i < m->n_devices; i++) {
		const Migd__Wire__CommitDevice *d = m->devices[i];
		const MigdWireDeviceTrack *t;

		if (!migd_wire_session_check_device(self, "Commit", d->device, error))
			return FALSE;
		t = &self->devices[d->device];
		if (d->chunks != t->next_seq || d->bytes != t->bytes) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "Commit: device %u sent %" G_GUINT64_FORMAT
				    " chunks / %" G_GUINT64_FORMAT
				    " bytes, received %" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT,
				    d->device, d->chunks, d->bytes, t->next_seq, t->bytes);
			return FALSE;
		}
		if (!t->ended) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "Commit: device %u has not sent its last chunk", d->device);
			return FALSE;
		}
	}
	self->committed = TRUE;
	return TRUE;
}

static gboolean
migd_wire_session_check_hello_reply(MigdWireSession *self, const Migd__Wire__HelloReply *m,
				    GError **error)
{
	if (g_strcmp0(m->session_id, self->session_id) != 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "HelloReply for session %s, expected %s", m->session_id,
			    self->session_id);
		return FALSE;
	}
	if (m->has_refusal) {
		self->over = TRUE;
		return TRUE;
	}
	if (m->version < self->version_min || m->version > self->version_max) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "protocol version %u not supported (supported %u..%u)", m->version,
			    self->version_min, self->version_max);
		return FALSE;
	}
	if ((m->capabilities & ~self->caps_offered) != 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "HelloReply capabilities 0x%" G_GINT64_MODIFIER
			    "x were not offered (offered 0x%" G_GINT64_MODIFIER "x)",
			    m->capabilities, self->caps_offered);
		return FALSE;
	}
	self->version = m->version;
	self->caps = m->capabilities;
	return TRUE;
}

static gboolean
migd_wire_session_check_answer(MigdWireSession *self, const gchar *what, guint32 device,
			       GError **error)
{
	if (!migd_wire_session_check_device(self, what, device, error))
		return FALSE;
	if (self->devices[device].answered) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s: device %u was already accepted or rejected", what, device);
		return FALSE;
	}
	self->devices[device].answered = TRUE;
	return TRUE;
}

static gboolean
migd_wire_session_check_first(MigdWireSession *self, guint32 type, GError **error)
{
	guint32 expected = self->role == MIGD_WIRE_ROLE_DESTINATION
			       ? MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO
			       : MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY;

	if (self->role == MIGD_WIRE_ROLE_SOURCE && !self->hello_sent) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s received before our Hello was sent",
			    migd_wire_msg_type_to_string(type));
		return FALSE;
	}
	if (!self->hello_done && type != expected && type != MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "%s received before %s",
			    migd_wire_msg_type_to_string(type),
			    migd_wire_msg_type_to_string(expected));
		return FALSE;
	}
	if (self->hello_done && type == expected) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "a second %s received",
			    migd_wire_msg_type_to_string(type));
		return FALSE;
	}
	/* the source waits for our HelloReply before it offers anything */
	if (self->role == MIGD_WIRE_ROLE_DESTINATION && self->hello_done && !self->reply_sent &&
	    type != MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT &&
	    type != MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s received before our HelloReply was sent",
			    migd_wire_msg_type_to_string(type));
		return FALSE;
	}
	return TRUE;
}

/*
 * The handover (CAP_HANDOVER, docs/protocol.md): the destination asks once,
 * after its ok CommitResult; the source grants once, after that request.
 * Before the rules of each type, since either may arrive when little else may.
 */
static gboolean
migd_wire_session_check_handover(MigdWireSession *self, guint32 type, GError **error)
{
	const gchar *name = migd_wire_msg_type_to_string(type);
	gboolean negotiated = (self->caps & MIGD_WIRE_CAP_HANDOVER) != 0;

	if (type == MIGD__WIRE__MESSAGE_TYPE__MSG_START_REQUEST ||
	    type == MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT) {
		if (!negotiated) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "%s received, but HANDOVER was not negotiated", name);
			return FALSE;
		}
	}
	if (type == MIGD__WIRE__MESSAGE_TYPE__MSG_START_REQUEST) {
		if (self->start_requested) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "a second %s received",
				    name);
			return FALSE;
		}
		if (!self->handover) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "%s received before an ok COMMIT_RESULT", name);
			return FALSE;
		}
		return TRUE;
	}
	if (type == MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT && !self->start_request_sent) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s received before our START_REQUEST was sent", name);
		return FALSE;
	}
	/* after the ok CommitResult the destination only asks, gives up, or keeps alive */
	if (self->handover && type != MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT &&
	    type != MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "%s received after %s", name,
			    self->start_requested ? "START_REQUEST" : "COMMIT_RESULT");
		return FALSE;
	}
	return TRUE;
}

gboolean
migd_wire_session_check_received(MigdWireSession *self, const MigdWireFrame *frame, GError **error)
{
	guint32 type;
	gboolean from_source;

	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(frame != NULL, FALSE);

	type = frame->type;
	from_source = self->role == MIGD_WIRE_ROLE_DESTINATION;
	if (migd_wire_msg_type_to_string(type) == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "unknown message type %u",
			    type);
		return FALSE;
	}
	if (from_source ? !migd_wire_sent_by_source(type) : !migd_wire_sent_by_destination(type)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "%s is not sent by a %s",
			    migd_wire_msg_type_to_string(type),
			    migd_wire_role_to_string(from_source ? MIGD_WIRE_ROLE_SOURCE
								 : MIGD_WIRE_ROLE_DESTINATION));
		return FALSE;
	}
	if (self->over) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s received after the session ended",
			    migd_wire_msg_type_to_string(type));
		return FALSE;
	}
	if (!migd_wire_session_check_first(self, type, error))
		return FALSE;
	if (self->committed && type != MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT &&
	    type != MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE &&
	    type != MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "%s received after Commit",
			    migd_wire_msg_type_to_string(type));
		return FALSE;
	}
	if (!migd_wire_session_check_handover(self, type, error))
		return FALSE;

	switch (type) {
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO:
		g_free(self->session_id);
		self->session_id = g_strdup(frame->hello->session_id);
		self->caps_offered = frame->hello->capabilities;
		migd_wire_session_set_devices(self, frame->hello->device_count);
		self->hello_done = TRUE;
		return TRUE;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY:
		if (!migd_wire_session_check_hello_reply(self, frame->hello_reply, error))
			return FALSE;
		self->hello_done = TRUE;
		return TRUE;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER: {
		guint32 dev = frame->device_offer->device;

		if (!migd_wire_session_check_device(self, "DeviceOffer", dev, error))
			return FALSE;
		if (self->devices[dev].offered) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "DeviceOffer: device %u offered twice", dev);
			return FALSE;
		}
		self->devices[dev].offered = TRUE;
		return TRUE;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT:
		return migd_wire_session_check_answer(self, "DeviceAccept",
						      frame->device_accept->device, error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_REJECT:
		return migd_wire_session_check_answer(self, "DeviceReject",
						      frame->device_reject->device, error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK:
		return migd_wire_session_check_chunk(self, frame->state_chunk, error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_PRECOPY_PROGRESS:
		return migd_wire_session_check_device(self, "PrecopyProgress",
						      frame->precopy_progress->device, error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_SWITCHOVER_ACK:
		return !frame->switchover_ack->has_device ||
		       migd_wire_session_check_device(self, "SwitchoverAck",
						      frame->switchover_ack->device, error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DIRTY_BITMAP_CHUNK:
		return migd_wire_session_check_device(self, "DirtyBitmapChunk",
						      frame->dirty_bitmap_chunk->device, error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT:
		return migd_wire_session_check_commit(self, frame->commit, error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT:
		for (gsize i = 0; i < frame->commit_result->n_devices; i++) {
			if (!migd_wire_session_check_device(
				self, "CommitResult", frame->commit_result->devices[i]->device,
				error))
				return FALSE;
		}
		/* with CAP_HANDOVER an ok result leaves the connection open for the handover */
		if (frame->commit_result->ok && (self->caps & MIGD_WIRE_CAP_HANDOVER) != 0)
			self->handover = TRUE;
		else
			self->over = TRUE;
		return TRUE;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_START_REQUEST:
		self->start_requested = TRUE;
		return TRUE;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT:
		self->over = TRUE;
		return TRUE;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT:
		self->over = TRUE;
		return TRUE;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE:
		/* CLOCK_MONOTONIC never goes back on the sending host */
		if (self->seen_keepalive &&
		    frame->keepalive->monotonic_usec < self->last_keepalive) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "Keepalive timestamp went back from %" G_GUINT64_FORMAT
				    " to %" G_GUINT64_FORMAT,
				    self->last_keepalive, frame->keepalive->monotonic_usec);
			return FALSE;
		}
		self->seen_keepalive = TRUE;
		self->last_keepalive = frame->keepalive->monotonic_usec;
		return TRUE;
	default:
		break;
	}
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "unknown message type %u", type);
	return FALSE;
}

gboolean
migd_wire_negotiate_version(guint32 local_min, guint32 local_max, guint32 peer_min,
			    guint32 peer_max, guint32 *version, GError **error)
{
	g_return_val_if_fail(local_min <= local_max, FALSE);
	g_return_val_if_fail(version != NULL, FALSE);

	if (peer_min > peer_max) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "invalid protocol version range %u..%u", peer_min, peer_max);
		return FALSE;
	}
	if (peer_max < local_min || peer_min > local_max) {
		if (peer_min == peer_max)
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "protocol version %u not supported (supported %u..%u)",
				    peer_min, local_min, local_max);
		else
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "protocol versions %u..%u not supported (supported %u..%u)",
				    peer_min, peer_max, local_min, local_max);
		return FALSE;
	}
	*version = MIN(local_max, peer_max);
	return TRUE;
}

gboolean
migd_wire_negotiate(const Migd__Wire__Hello *hello, guint32 local_min, guint32 local_max,
		    guint64 local_caps, Migd__Wire__HelloReply *reply, GError **error)
{
	guint32 version = 0;

	g_return_val_if_fail(hello != NULL, FALSE);
	g_return_val_if_fail(reply != NULL, FALSE);

	migd__wire__hello_reply__init(reply);
	reply->session_id = hello->session_id;
	if (!migd_wire_negotiate_version(local_min, local_max, hello->version_min,
					 hello->version_max, &version, error)) {
		reply->has_refusal = TRUE;
		reply->refusal = MIGD__WIRE__REASON__REASON_VERSION_UNSUPPORTED;
		return FALSE;
	}
	reply->has_version = TRUE;
	reply->version = version;
	reply->has_capabilities = TRUE;
	/* unknown bits from a newer peer drop out here */
	reply->capabilities = hello->capabilities & local_caps & MIGD_WIRE_CAPS_KNOWN;
	return TRUE;
}
