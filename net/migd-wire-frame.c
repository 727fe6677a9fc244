/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "migd-error.h"
#include "migd-state.h"
#include "migd-wire-frame.h"

/* the schema is not recursive; anything deeper than this is a bug in migd.proto */
#define MIGD_WIRE_MAX_NESTING 4

/* indexed by MigdWireMsgType - MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO */
static const gchar *const migd_wire_msg_type_names[] = {
    "HELLO",
    "HELLO_REPLY",
    "DEVICE_OFFER",
    "DEVICE_ACCEPT",
    "DEVICE_REJECT",
    "STATE_CHUNK",
    "PRECOPY_PROGRESS",
    "SWITCHOVER_ACK",
    "DIRTY_BITMAP_CHUNK",
    "COMMIT",
    "COMMIT_RESULT",
    "ABORT",
    "KEEPALIVE",
};
G_STATIC_ASSERT(G_N_ELEMENTS(migd_wire_msg_type_names) ==
		MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE - MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO + 1);

const gchar *
migd_wire_msg_type_to_string(guint32 type)
{
	if (type < MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO ||
	    type > MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE)
		return NULL;
	return migd_wire_msg_type_names[type - MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO];
}

const gchar *
migd_wire_reason_to_string(guint32 reason)
{
	const ProtobufCEnumValue *v;

	if (reason == MIGD__WIRE__REASON__REASON_UNSPECIFIED)
		return NULL;
	v = protobuf_c_enum_descriptor_get_value(&migd__wire__reason__descriptor, (int)reason);
	if (v == NULL)
		return NULL;
	/* "REASON_BUSY" -> "BUSY" */
	return g_str_has_prefix(v->name, "REASON_") ? v->name + strlen("REASON_") : v->name;
}

/* --- varints --------------------------------------------------------------- */

gsize
migd_wire_varint_encode(guint64 value, guint8 *out)
{
	gsize n = 0;

	while (value >= 0x80) {
		out[n++] = (guint8)(value | 0x80);
		value >>= 7;
	}
	out[n++] = (guint8)value;
	return n;
}

gboolean
migd_wire_varint_decode(const guint8 *buf, gsize len, guint64 *value, gsize *consumed,
			GError **error)
{
	guint64 v = 0;

	for (gsize i = 0; i < len && i < MIGD_WIRE_VARINT_MAX_BYTES; i++) {
		guint8 b = buf[i];

		/* the 10th byte holds bit 63 only */
		if (i == MIGD_WIRE_VARINT_MAX_BYTES - 1 && b > 1) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "varint length prefix overflows 64 bits");
			return FALSE;
		}
		v |= (guint64)(b & 0x7f) << (7 * i);
		if ((b & 0x80) != 0)
			continue;
		/* a last byte of 0 after a continuation adds nothing: not minimal */
		if (b == 0 && i > 0) {
			g_set_error(
			    error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "varint length prefix is not minimally encoded (%" G_GSIZE_FORMAT
			    " bytes for %" G_GUINT64_FORMAT ")",
			    i + 1, v);
			return FALSE;
		}
		*value = v;
		*consumed = i + 1;
		return TRUE;
	}
	if (len >= MIGD_WIRE_VARINT_MAX_BYTES) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "varint length prefix longer than %d bytes",
			    MIGD_WIRE_VARINT_MAX_BYTES);
		return FALSE;
	}
	*consumed = 0;
	return TRUE;
}

/* --- validation ------------------------------------------------------------ */

static gboolean
migd_wire_check_string(const gchar *msg_name, const gchar *field, const gchar *str, gsize min_len,
		       gsize max_len, GError **error)
{
	gsize len = str != NULL ? strlen(str) : 0;

	if (len < min_len) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "%s.%s is empty", msg_name,
			    field);
		return FALSE;
	}
	if (len > max_len) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s.%s is %" G_GSIZE_FORMAT
			    " bytes long, the maximum is %" G_GSIZE_FORMAT,
			    msg_name, field, len, max_len);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_wire_check_session_id(const gchar *msg_name, const gchar *sid, GError **error)
{
	if (!migd_wire_check_string(msg_name, "session_id", sid, 1, MIGD_WIRE_MAX_SESSION_ID_LEN,
				    error))
		return FALSE;
	/* it ends up in log lines and file names: keep it boring */
	for (const gchar *p = sid; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.') {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "%s.session_id contains the byte 0x%02x; only [A-Za-z0-9._-] "
				    "are allowed",
				    msg_name, (guint)(guint8)*p);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
migd_wire_check_device(const gchar *msg_name, guint32 device, GError **error)
{
	if (device >= MIGD_WIRE_MAX_DEVICES) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s: device index %u out of range (maximum %u devices)", msg_name,
			    device, MIGD_WIRE_MAX_DEVICES);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_wire_check_bytes(const gchar *msg_name, const gchar *field, const ProtobufCBinaryData *b,
		      gsize max_len, GError **error)
{
	if (b->len > 0 && b->data == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "%s.%s has no data", msg_name,
			    field);
		return FALSE;
	}
	if (b->len > max_len) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s.%s is %" G_GSIZE_FORMAT " bytes, the maximum is %" G_GSIZE_FORMAT,
			    msg_name, field, (gsize)b->len, max_len);
		return FALSE;
	}
	return TRUE;
}

/*
 * The schema-driven part: required pointers set, enum values known (0 is never
 * a valid value in migd.proto), strings UTF-8. Used for frames we build, too,
 * where protobuf-c's own required-field check has not run.
 */
static gboolean
migd_wire_check_fields(const ProtobufCMessage *msg, guint depth, GError **error)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	const guint8 *base = (const guint8 *)msg;

	if (depth > MIGD_WIRE_MAX_NESTING) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "%s nested too deeply",
			    desc->short_name);
		return FALSE;
	}
	for (guint i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		const guint8 *member = base + f->offset;
		gboolean is_ptr =
		    f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;
		gsize n = 1;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)(base + f->quantifier_offset);
			member = *(const guint8 *const *)member;
			if (n > 0 && member == NULL) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
					    "%s.%s has no elements", desc->short_name, f->name);
				return FALSE;
			}
		} else if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
			if (*(const guint32 *)(base + f->quantifier_offset) != f->id)
				continue;
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && !is_ptr &&
			   f->quantifier_offset != 0) {
			if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
				continue;
		}
		for (gsize j = 0; j < n; j++) {
			if (is_ptr) {
				const void *p = ((const void *const *)member)[j];

				if (p == NULL && f->label == PROTOBUF_C_LABEL_OPTIONAL)
					continue;
				if (p == NULL) {
					g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
						    "%s.%s is missing", desc->short_name, f->name);
					return FALSE;
				}
				if (f->type == PROTOBUF_C_TYPE_STRING &&
				    !g_utf8_validate(p, -1, NULL)) {
					g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
						    "%s.%s is not valid UTF-8", desc->short_name,
						    f->name);
					return FALSE;
				}
				if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
				    !migd_wire_check_fields(p, depth + 1, error))
					return FALSE;
			} else if (f->type == PROTOBUF_C_TYPE_ENUM) {
				gint v = ((const gint *)member)[j];

				if (v == 0 || protobuf_c_enum_descriptor_get_value(f->descriptor,
										   v) == NULL) {
					g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
						    "%s.%s has the unknown value %d",
						    desc->short_name, f->name, v);
					return FALSE;
				}
			}
		}
	}
	return TRUE;
}

static gboolean
migd_wire_check_descriptor(const Migd__Wire__DeviceDescriptor *d, GError **error)
{
	const guint32 ids[] = {d->vendor_id, d->device_id, d->subsystem_vendor_id,
			       d->subsystem_device_id};

	if (!migd_wire_check_string("DeviceDescriptor", "driver_name", d->driver_name, 1,
				    MIGD_WIRE_MAX_DRIVER_NAME_LEN, error))
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(ids); i++) {
		if (ids[i] > 0xffff) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "DeviceDescriptor: PCI id 0x%x does not fit 16 bits", ids[i]);
			return FALSE;
		}
	}
	/* STOP_COPY is what makes a device migratable at all */
	if ((d->migration_flags & MIGD_MIG_FLAG_STOP_COPY) == 0 ||
	    (d->migration_flags & ~(guint32)MIGD_MIG_FLAGS_KNOWN) != 0) {
		g_set_error(
		    error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
		    "DeviceDescriptor.migration_flags 0x%x: STOP_COPY missing or unknown bits",
		    d->migration_flags);
		return FALSE;
	}
	if (d->has_plugin_data &&
	    !migd_wire_check_bytes("DeviceDescriptor", "plugin_data", &d->plugin_data,
				   MIGD_WIRE_MAX_PLUGIN_DATA, error))
		return FALSE;
	return TRUE;
}

static gboolean
migd_wire_check_device_list(const gchar *msg_name, gsize n, const guint32 *devices, GError **error)
{
	g_autofree guint8 *seen = NULL;

	if (n > MIGD_WIRE_MAX_DEVICES) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s lists %" G_GSIZE_FORMAT " devices, the maximum is %u", msg_name, n,
			    MIGD_WIRE_MAX_DEVICES);
		return FALSE;
	}
	seen = g_new0(guint8, MIGD_WIRE_MAX_DEVICES);
	for (gsize i = 0; i < n; i++) {
		if (!migd_wire_check_device(msg_name, devices[i], error))
			return FALSE;
		if (seen[devices[i]]++ != 0) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "%s lists device %u twice", msg_name, devices[i]);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
migd_wire_check_body(const MigdWireFrame *frame, GError **error)
{
	switch (frame->type) {
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO: {
		const Migd__Wire__Hello *m = frame->hello;

		if (m->version_min == 0 || m->version_min > m->version_max) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "Hello: invalid protocol version range %u..%u", m->version_min,
				    m->version_max);
			return FALSE;
		}
		if (m->device_count == 0 || m->device_count > MIGD_WIRE_MAX_DEVICES) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "Hello: device count %u out of range (1..%u)", m->device_count,
				    MIGD_WIRE_MAX_DEVICES);
			return FALSE;
		}
		return migd_wire_check_string("Hello", "host_identity", m->host_identity, 1,
					      MIGD_WIRE_MAX_HOST_IDENTITY_LEN, error) &&
		       migd_wire_check_session_id("Hello", m->session_id, error);
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY: {
		const Migd__Wire__HelloReply *m = frame->hello_reply;

		if (m->has_version == m->has_refusal) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "HelloReply must carry exactly one of version and refusal");
			return FALSE;
		}
		if (m->has_version && m->version == 0) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "HelloReply: protocol version 0 is invalid");
			return FALSE;
		}
		return migd_wire_check_session_id("HelloReply", m->session_id, error) &&
		       migd_wire_check_string("HelloReply", "message", m->message, 0,
					      MIGD_WIRE_MAX_MESSAGE_LEN, error);
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER:
		return migd_wire_check_device("DeviceOffer", frame->device_offer->device, error) &&
		       migd_wire_check_descriptor(frame->device_offer->descriptor, error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT:
		return migd_wire_check_device("DeviceAccept", frame->device_accept->device, error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_REJECT:
		return migd_wire_check_device("DeviceReject", frame->device_reject->device,
					      error) &&
		       migd_wire_check_string("DeviceReject", "message",
					      frame->device_reject->message, 0,
					      MIGD_WIRE_MAX_MESSAGE_LEN, error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK: {
		const Migd__Wire__StateChunk *m = frame->state_chunk;
		gboolean last = m->has_last && m->last;

		if (!migd_wire_check_device("StateChunk", m->device, error) ||
		    !migd_wire_check_bytes("StateChunk", "data", &m->data,
					   MIGD_WIRE_MAX_CHUNK_PAYLOAD, error))
			return FALSE;
		if (last && m->phase != MIGD__WIRE__PHASE__PHASE_STOPCOPY) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "StateChunk: only a STOPCOPY chunk can be the last");
			return FALSE;
		}
		/* an empty chunk carries nothing unless it ends the stream */
		if (m->data.len == 0 && !last) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "StateChunk: empty chunk that is not the last");
			return FALSE;
		}
		return TRUE;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_PRECOPY_PROGRESS:
		return migd_wire_check_device("PrecopyProgress", frame->precopy_progress->device,
					      error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_SWITCHOVER_ACK:
		return !frame->switchover_ack->has_device ||
		       migd_wire_check_device("SwitchoverAck", frame->switchover_ack->device,
					      error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DIRTY_BITMAP_CHUNK: {
		const Migd__Wire__DirtyBitmapChunk *m = frame->dirty_bitmap_chunk;

		if (!migd_wire_check_device("DirtyBitmapChunk", m->device, error) ||
		    !migd_wire_check_bytes("DirtyBitmapChunk", "data", &m->data,
					   MIGD_WIRE_MAX_BITMAP_BYTES, error))
			return FALSE;
		/* the geometry; the payload itself is checked by the decoder */
		if (m->round == 0 || m->window >= MIGD_WIRE_MAX_DIRTY_WINDOWS ||
		    m->page_size < 4096 || (m->page_size & (m->page_size - 1)) != 0 ||
		    (m->window_iova & (m->page_size - 1)) != 0 || m->window_pages == 0 ||
		    m->window_pages > MIGD_WIRE_MAX_DIRTY_PAGES_PER_DEVICE ||
		    m->window_pages > (G_MAXUINT64 - m->window_iova) / m->page_size ||
		    m->first_page % 64 != 0 || m->n_pages == 0 ||
		    m->n_pages > MIGD_WIRE_MAX_BITMAP_PAGES || m->first_page >= m->window_pages ||
		    m->n_pages > m->window_pages - m->first_page || m->n_dirty > m->n_pages) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "DirtyBitmapChunk: bad geometry (round %u, window %u at "
				    "0x%" G_GINT64_MODIFIER "x of %" G_GUINT64_FORMAT
				    " pages of %" G_GUINT64_FORMAT
				    " bytes, pages %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT
				    ", %" G_GUINT64_FORMAT " dirty)",
				    m->round, m->window, m->window_iova, m->window_pages,
				    m->page_size, m->first_page, m->n_pages, m->n_dirty);
			return FALSE;
		}
		return TRUE;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT: {
		const Migd__Wire__Commit *m = frame->commit;
		g_autofree guint32 *devs = g_new0(guint32, m->n_devices + 1);

		for (gsize i = 0; i < m->n_devices && i <= MIGD_WIRE_MAX_DEVICES; i++)
			devs[i] = m->devices[i]->device;
		return migd_wire_check_device_list("Commit", m->n_devices, devs, error);
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT: {
		const Migd__Wire__CommitResult *m = frame->commit_result;
		g_autofree guint32 *devs = g_new0(guint32, m->n_devices + 1);

		for (gsize i = 0; i < m->n_devices && i <= MIGD_WIRE_MAX_DEVICES; i++) {
			const Migd__Wire__CommitDeviceResult *r = m->devices[i];

			devs[i] = r->device;
			if (!r->ok && !r->has_reason) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
					    "CommitResult: device %u failed without a reason",
					    r->device);
				return FALSE;
			}
			if (!r->ok && m->ok) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
					    "CommitResult: ok, but device %u failed", r->device);
				return FALSE;
			}
			if (!migd_wire_check_string("CommitDeviceResult", "message", r->message, 0,
						    MIGD_WIRE_MAX_MESSAGE_LEN, error))
				return FALSE;
		}
		return migd_wire_check_device_list("CommitResult", m->n_devices, devs, error);
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT:
		return migd_wire_check_string("Abort", "message", frame->abort->message, 0,
					      MIGD_WIRE_MAX_MESSAGE_LEN, error);
	case MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE:
		return TRUE;
	default:
		break;
	}
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "unknown message type %u",
		    (guint)frame->type);
	return FALSE;
}

gboolean
migd_wire_frame_validate(const MigdWireFrame *frame, GError **error)
{
	g_return_val_if_fail(frame != NULL, FALSE);

	if (migd_wire_msg_type_to_string(frame->type) == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "unknown message type %u",
			    (guint)frame->type);
		return FALSE;
	}
	/* the body's field number equals the type (migd.proto), so this is one compare */
	if ((guint32)frame->body_case != (guint32)frame->type || frame->hello == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "frame of type %s carries %s%s body",
			    migd_wire_msg_type_to_string(frame->type),
			    frame->body_case == MIGD__WIRE__FRAME__BODY__NOT_SET ? "no" : "a ",
			    frame->body_case == MIGD__WIRE__FRAME__BODY__NOT_SET
				? ""
				: migd_wire_msg_type_to_string(frame->body_case));
		return FALSE;
	}
	if (!migd_wire_check_fields(&frame->base, 0, error))
		return FALSE;
	return migd_wire_check_body(frame, error);
}

void
migd_wire_frame_init(MigdWireFrame *frame, MigdWireMsgType type, gpointer body)
{
	g_return_if_fail(frame != NULL);
	g_return_if_fail(migd_wire_msg_type_to_string(type) != NULL);

	migd__wire__frame__init(frame);
	frame->type = type;
	frame->body_case = (Migd__Wire__Frame__BodyCase)type;
	/* every member of the oneof is a pointer sharing one slot */
	frame->hello = body;
}

/* --- decode ---------------------------------------------------------------- */

typedef struct {
	gsize used;
	gsize budget;
	gboolean exhausted;
} MigdWireBudget;

static void *
migd_wire_budget_alloc(void *data, size_t size)
{
	MigdWireBudget *b = data;

	if (size > b->budget - b->used) {
		b->exhausted = TRUE;
		return NULL;
	}
	b->used += size;
	return g_try_malloc(MAX(size, 1));
}

static void
migd_wire_plain_free(void *data, void *ptr)
{
	g_free(ptr);
}

static void *
migd_wire_plain_alloc(void *data, size_t size)
{
	return g_try_malloc(MAX(size, 1));
}

/* frees what the budget allocator handed out: it needs no state to do so */
static ProtobufCAllocator migd_wire_free_allocator = {
    .alloc = migd_wire_plain_alloc,
    .free = migd_wire_plain_free,
};

/*
 * A StateChunk frame parsed by migd_wire_frame_decode_bytes without protobuf-c:
 * both messages live in this one allocation and the payload points into @bytes,
 * the packed frame. Marked by migd_wire_zc_marker in frame.base.unknown_fields
 * (with n_unknown_fields 0, so protobuf-c never looks at it); protobuf-c never
 * sets that pointer, so migd_wire_frame_free can tell the two kinds apart.
 */
typedef struct {
	MigdWireFrame frame; /* first: the frame pointer is the allocation */
	Migd__Wire__StateChunk chunk;
	GBytes *bytes;
} MigdWireZcFrame;

static ProtobufCMessageUnknownField migd_wire_zc_marker;

static MigdWireZcFrame *
migd_wire_zc_frame(const MigdWireFrame *frame)
{
	if (frame->base.unknown_fields != &migd_wire_zc_marker)
		return NULL;
	return (MigdWireZcFrame *)frame;
}

gboolean
migd_wire_frame_is_zero_copy(const MigdWireFrame *frame)
{
	g_return_val_if_fail(frame != NULL, FALSE);
	return migd_wire_zc_frame(frame) != NULL;
}

void
migd_wire_frame_free(MigdWireFrame *frame)
{
	MigdWireZcFrame *zc;

	if (frame == NULL)
		return;
	zc = migd_wire_zc_frame(frame);
	if (zc != NULL) {
		g_bytes_unref(zc->bytes);
		g_free(zc);
		return;
	}
	migd__wire__frame__free_unpacked(frame, &migd_wire_free_allocator);
}

/*
 * A minimally encoded varint of at most @max_bytes bytes from [*p, end); FALSE
 * for anything else (truncated, longer, non-minimal, more than 64 bits).
 */
static gboolean
migd_wire_zc_varint(const guint8 **p, const guint8 *end, guint max_bytes, guint64 *value)
{
	guint64 v = 0;

	for (guint i = 0; i < max_bytes && *p + i < end; i++) {
		guint8 b = (*p)[i];

		if (i == MIGD_WIRE_VARINT_MAX_BYTES - 1 && b > 1)
			return FALSE;
		v |= (guint64)(b & 0x7f) << (7 * i);
		if ((b & 0x80) != 0)
			continue;
		if (b == 0 && i > 0)
			return FALSE;
		*value = v;
		*p += i + 1;
		return TRUE;
	}
	return FALSE;
}

/* field numbers (1-byte tags) of StateChunk, and the bit each sets in "seen" */
enum {
	MIGD_WIRE_ZC_DEVICE = 1 << 1,
	MIGD_WIRE_ZC_PHASE = 1 << 2,
	MIGD_WIRE_ZC_SEQUENCE = 1 << 3,
	MIGD_WIRE_ZC_DATA = 1 << 4,
	MIGD_WIRE_ZC_LAST = 1 << 5,
	MIGD_WIRE_ZC_REQUIRED =
	    MIGD_WIRE_ZC_DEVICE | MIGD_WIRE_ZC_PHASE | MIGD_WIRE_ZC_SEQUENCE | MIGD_WIRE_ZC_DATA,
};

/*
 * Parses a StateChunk body in [p, end) into @chunk. Only the canonical shape is
 * accepted: each field at most once with its own wire type, minimal varints,
 * values in range, all required fields present, nothing else. FALSE means "not
 * canonical", never "invalid": the caller then lets protobuf-c decide.
 */
static gboolean
migd_wire_zc_parse_chunk(const guint8 *p, const guint8 *end, Migd__Wire__StateChunk *chunk)
{
	guint seen = 0;

	while (p < end) {
		guint8 tag = *p++;
		guint field = tag >> 3;
		guint64 v = 0;

		/* 1-byte tags only: fields 1..5 */
		if (field < 1 || field > 5 || (seen & (1u << field)) != 0)
			return FALSE;
		seen |= 1u << field;
		if (field == 4) {
			if ((tag & 7) != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
				return FALSE;
			/* protobuf-c reads at most 5 bytes of a length */
			if (!migd_wire_zc_varint(&p, end, 5, &v) || v > (guint64)(end - p))
				return FALSE;
			chunk->data.len = v;
			chunk->data.data = v > 0 ? (guint8 *)p : NULL;
			p += v;
			continue;
		}
		if ((tag & 7) != PROTOBUF_C_WIRE_TYPE_VARINT ||
		    !migd_wire_zc_varint(&p, end, MIGD_WIRE_VARINT_MAX_BYTES, &v))
			return FALSE;
		switch (field) {
		case 1:
			if (v > G_MAXUINT32)
				return FALSE;
			chunk->device = (guint32)v;
			break;
		case 2:
			/* negative enum values are 10 bytes on the wire: leave them to protobuf-c
			 */
			if (v > G_MAXINT32)
				return FALSE;
			chunk->phase = (Migd__Wire__Phase)v;
			break;
		case 3:
			chunk->sequence = v;
			break;
		default: /* 5 */
			if (v > 1)
				return FALSE;
			chunk->has_last = TRUE;
			chunk->last = v != 0;
			break;
		}
	}
	return (seen & MIGD_WIRE_ZC_REQUIRED) == MIGD_WIRE_ZC_REQUIRED;
}

/* the outer Frame: exactly {1: 21} and {21: StateChunk}, in either order */
static MigdWireZcFrame *
migd_wire_zc_parse(GBytes *bytes)
{
	g_autofree MigdWireZcFrame *zc = NULL;
	gsize len = 0;
	const guint8 *p = g_bytes_get_data(bytes, &len);
	const guint8 *end;
	gboolean have_type = FALSE;
	gboolean have_body = FALSE;

	if (p == NULL || len == 0)
		return NULL;
	end = p + len;
	zc = g_new0(MigdWireZcFrame, 1);
	migd__wire__frame__init(&zc->frame);
	migd__wire__state_chunk__init(&zc->chunk);
	while (p < end) {
		guint64 v = 0;

		if (*p == 0x08 && !have_type) { /* field 1, varint */
			p++;
			if (!migd_wire_zc_varint(&p, end, MIGD_WIRE_VARINT_MAX_BYTES, &v) ||
			    v != MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK)
				return NULL;
			have_type = TRUE;
		} else if (end - p >= 2 && p[0] == 0xaa && p[1] == 0x01 &&
			   !have_body) { /* field 21, length-delimited */
			p += 2;
			if (!migd_wire_zc_varint(&p, end, 5, &v) || v > (guint64)(end - p) ||
			    !migd_wire_zc_parse_chunk(p, p + v, &zc->chunk))
				return NULL;
			p += v;
			have_body = TRUE;
		} else {
			return NULL;
		}
	}
	if (!have_type || !have_body)
		return NULL;
	zc->frame.type = MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK;
	zc->frame.body_case = MIGD__WIRE__FRAME__BODY_STATE_CHUNK;
	zc->frame.state_chunk = &zc->chunk;
	zc->frame.base.unknown_fields = &migd_wire_zc_marker;
	zc->bytes = g_bytes_ref(bytes);
	return g_steal_pointer(&zc);
}

MigdWireFrame *
migd_wire_frame_decode(const guint8 *data, gsize len, GError **error)
{
	MigdWireBudget budget = {
	    .budget = len * MIGD_WIRE_UNPACK_BUDGET_FACTOR + MIGD_WIRE_UNPACK_BUDGET_SLACK,
	};
	ProtobufCAllocator allocator = {
	    .alloc = migd_wire_budget_alloc,
	    .free = migd_wire_plain_free,
	    .allocator_data = &budget,
	};
	g_autoptr(MigdWireFrame) frame = NULL;

	if (len > MIGD_WIRE_MAX_FRAME_SIZE) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "frame length %" G_GSIZE_FORMAT " exceeds the maximum %u", len,
			    MIGD_WIRE_MAX_FRAME_SIZE);
		return NULL;
	}
	if (len == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "empty frame");
		return NULL;
	}
	frame = migd__wire__frame__unpack(&allocator, len, data);
	if (frame == NULL) {
		if (budget.exhausted) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "frame of %" G_GSIZE_FORMAT
				    " bytes needs more than %" G_GSIZE_FORMAT " bytes to unpack",
				    len, budget.budget);
			return NULL;
		}
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "frame of %" G_GSIZE_FORMAT " bytes is not a valid Frame message "
			    "(malformed, truncated or missing a required field)",
			    len);
		return NULL;
	}
	if (!migd_wire_frame_validate(frame, error))
		return NULL;
	return g_steal_pointer(&frame);
}

MigdWireFrame *
migd_wire_frame_decode_bytes(GBytes *bytes, GError **error)
{
	g_autoptr(MigdWireFrame) frame = NULL;
	gsize len = 0;
	const guint8 *data;

	g_return_val_if_fail(bytes != NULL, NULL);

	data = g_bytes_get_data(bytes, &len);
	if (len == 0 || len > MIGD_WIRE_MAX_FRAME_SIZE)
		return migd_wire_frame_decode(data, len, error);
	frame = (MigdWireFrame *)migd_wire_zc_parse(bytes);
	if (frame == NULL)
		return migd_wire_frame_decode(data, len, error);
	if (!migd_wire_frame_validate(frame, error))
		return NULL;
	return g_steal_pointer(&frame);
}

/* --- encode ---------------------------------------------------------------- */

static gboolean
migd_wire_frame_prepare(const MigdWireFrame *frame, gsize *packed_size, GError **error)
{
	g_autoptr(GError) error_local = NULL;

	/* we never send what we would refuse to receive */
	if (!migd_wire_frame_validate(frame, &error_local)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "refusing to encode an invalid frame: %s", error_local->message);
		return FALSE;
	}
	*packed_size = protobuf_c_message_get_packed_size(&frame->base);
	if (*packed_size > MIGD_WIRE_MAX_FRAME_SIZE) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "frame length %" G_GSIZE_FORMAT " exceeds the maximum %u", *packed_size,
			    MIGD_WIRE_MAX_FRAME_SIZE);
		return FALSE;
	}
	return TRUE;
}

gsize
migd_wire_frame_get_encoded_size(const MigdWireFrame *frame)
{
	guint8 prefix[MIGD_WIRE_VARINT_MAX_BYTES];
	gsize packed = protobuf_c_message_get_packed_size(&frame->base);

	return migd_wire_varint_encode(packed, prefix) + packed;
}

gboolean
migd_wire_frame_encode(const MigdWireFrame *frame, guint8 *buf, gsize buf_len, gsize *written,
		       GError **error)
{
	guint8 prefix[MIGD_WIRE_VARINT_MAX_BYTES];
	gsize packed = 0;
	gsize prefix_len;

	g_return_val_if_fail(frame != NULL, FALSE);
	g_return_val_if_fail(buf != NULL || buf_len == 0, FALSE);

	if (!migd_wire_frame_prepare(frame, &packed, error))
		return FALSE;
	prefix_len = migd_wire_varint_encode(packed, prefix);
	if (buf_len < prefix_len + packed) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "buffer of %" G_GSIZE_FORMAT
			    " bytes too small for a frame of %" G_GSIZE_FORMAT,
			    buf_len, prefix_len + packed);
		return FALSE;
	}
	memcpy(buf, prefix, prefix_len);
	protobuf_c_message_pack(&frame->base, buf + prefix_len);
	if (written != NULL)
		*written = prefix_len + packed;
	return TRUE;
}

gboolean
migd_wire_frame_append(const MigdWireFrame *frame, GByteArray *array, GError **error)
{
	guint old_len;
	gsize packed = 0;
	gsize written = 0;

	g_return_val_if_fail(frame != NULL, FALSE);
	g_return_val_if_fail(array != NULL, FALSE);

	if (!migd_wire_frame_prepare(frame, &packed, error))
		return FALSE;
	old_len = array->len;
	g_byte_array_set_size(array, old_len + MIGD_WIRE_VARINT_MAX_BYTES + packed);
	if (!migd_wire_frame_encode(frame, array->data + old_len, array->len - old_len, &written,
				    error)) {
		g_byte_array_set_size(array, old_len);
		return FALSE;
	}
	g_byte_array_set_size(array, old_len + written);
	return TRUE;
}

/*
 * A ProtobufCBuffer onto a GOutputStream: small appends (tags, lengths, scalars)
 * are staged, large ones (chunk payloads) are written from the message itself.
 */
#define MIGD_WIRE_STAGING_SIZE 4096

typedef struct {
	ProtobufCBuffer base; /* first: protobuf-c hands us this pointer */
	GOutputStream *stream;
	GCancellable *cancellable;
	GError *error;
	gsize staged;
	guint8 staging[MIGD_WIRE_STAGING_SIZE];
} MigdWireStreamBuffer;

static void
migd_wire_stream_buffer_flush(MigdWireStreamBuffer *self)
{
	if (self->error == NULL && self->staged > 0)
		g_output_stream_write_all(self->stream, self->staging, self->staged, NULL,
					  self->cancellable, &self->error);
	self->staged = 0;
}

static void
migd_wire_stream_buffer_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
	MigdWireStreamBuffer *self = (MigdWireStreamBuffer *)buffer;

	/* protobuf-c cannot be told to stop: drop everything after the first error */
	if (self->error != NULL)
		return;
	if (self->staged + len > sizeof(self->staging))
		migd_wire_stream_buffer_flush(self);
	if (len >= sizeof(self->staging)) {
		if (self->error == NULL)
			g_output_stream_write_all(self->stream, data, len, NULL, self->cancellable,
						  &self->error);
		return;
	}
	memcpy(self->staging + self->staged, data, len);
	self->staged += len;
}

gboolean
migd_wire_frame_write(const MigdWireFrame *frame, GOutputStream *stream, GCancellable *cancellable,
		      GError **error)
{
	g_autofree MigdWireStreamBuffer *buf = g_new0(MigdWireStreamBuffer, 1);
	guint8 prefix[MIGD_WIRE_VARINT_MAX_BYTES];
	gsize packed = 0;
	gsize prefix_len;

	g_return_val_if_fail(frame != NULL, FALSE);
	g_return_val_if_fail(G_IS_OUTPUT_STREAM(stream), FALSE);

	if (!migd_wire_frame_prepare(frame, &packed, error))
		return FALSE;
	buf->base.append = migd_wire_stream_buffer_append;
	buf->stream = stream;
	buf->cancellable = cancellable;
	prefix_len = migd_wire_varint_encode(packed, prefix);
	migd_wire_stream_buffer_append(&buf->base, prefix_len, prefix);
	protobuf_c_message_pack_to_buffer(&frame->base, &buf->base);
	migd_wire_stream_buffer_flush(buf);
	if (buf->error != NULL) {
		g_propagate_prefixed_error(
		    error, g_steal_pointer(&buf->error),
		    "writing a %s frame: ", migd_wire_msg_type_to_string(frame->type));
		return FALSE;
	}
	return TRUE;
}

/*
 * A ProtobufCBuffer that collects the encoding as GBytes pieces: small appends
 * are gathered into one array, the payload is queued by reference.
 */
typedef struct {
	ProtobufCBuffer base; /* first: protobuf-c hands us this pointer */
	GBytes *payload;
	const guint8 *payload_data;
	gsize payload_len;
	GByteArray *pending;
	GQueue pieces;
	gsize total;
} MigdWirePieceBuffer;

static void
migd_wire_piece_buffer_flush(MigdWirePieceBuffer *self)
{
	if (self->pending == NULL || self->pending->len == 0)
		return;
	self->total += self->pending->len;
	g_queue_push_tail(&self->pieces,
			  g_byte_array_free_to_bytes(g_steal_pointer(&self->pending)));
}

static void
migd_wire_piece_buffer_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
	MigdWirePieceBuffer *self = (MigdWirePieceBuffer *)buffer;

	if (len == 0)
		return;
	if (self->payload != NULL && data == self->payload_data && len == self->payload_len) {
		migd_wire_piece_buffer_flush(self);
		self->total += len;
		g_queue_push_tail(&self->pieces, g_bytes_ref(self->payload));
		return;
	}
	if (self->pending == NULL)
		self->pending = g_byte_array_sized_new(64);
	g_byte_array_append(self->pending, data, len);
}

gboolean
migd_wire_frame_encode_pieces(const MigdWireFrame *frame, GBytes *payload, GQueue *pieces,
			      gsize *total, GError **error)
{
	MigdWirePieceBuffer buf = {.base.append = migd_wire_piece_buffer_append};
	guint8 prefix[MIGD_WIRE_VARINT_MAX_BYTES];
	gsize packed = 0;
	gsize prefix_len;

	g_return_val_if_fail(frame != NULL, FALSE);
	g_return_val_if_fail(pieces != NULL, FALSE);

	if (!migd_wire_frame_prepare(frame, &packed, error))
		return FALSE;
	if (payload != NULL) {
		buf.payload = payload;
		buf.payload_data = g_bytes_get_data(payload, &buf.payload_len);
	}
	g_queue_init(&buf.pieces);
	prefix_len = migd_wire_varint_encode(packed, prefix);
	migd_wire_piece_buffer_append(&buf.base, prefix_len, prefix);
	protobuf_c_message_pack_to_buffer(&frame->base, &buf.base);
	migd_wire_piece_buffer_flush(&buf);
	g_assert(buf.total == prefix_len + packed);
	for (GList *l = buf.pieces.head; l != NULL; l = l->next)
		g_queue_push_tail(pieces, l->data);
	g_queue_clear(&buf.pieces);
	if (total != NULL)
		*total = buf.total;
	return TRUE;
}

GBytes *
migd_wire_frame_steal_chunk_data(MigdWireFrame *frame)
{
	Migd__Wire__StateChunk *chunk;
	MigdWireZcFrame *zc;
	guint8 *data;
	gsize len;

	g_return_val_if_fail(frame != NULL, NULL);

	if (frame->type != MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK || frame->state_chunk == NULL)
		return NULL;
	chunk = frame->state_chunk;
	if (chunk->data.len == 0 || chunk->data.data == NULL)
		return NULL;
	zc = migd_wire_zc_frame(frame);
	if (zc != NULL) {
		/* a slice of the packed frame, which it keeps alive */
		gsize frame_len = 0;
		const guint8 *base = g_bytes_get_data(zc->bytes, &frame_len);
		gsize offset = (gsize)(chunk->data.data - base);

		g_assert(chunk->data.data >= base && offset <= frame_len &&
			 chunk->data.len <= frame_len - offset);
		len = chunk->data.len;
		chunk->data.data = NULL;
		chunk->data.len = 0;
		return g_bytes_new_from_bytes(zc->bytes, offset, len);
	}
	/* unpacked with migd_wire_budget_alloc (g_try_malloc): g_free releases it */
	data = g_steal_pointer(&chunk->data.data);
	len = chunk->data.len;
	chunk->data.len = 0;
	return g_bytes_new_take(data, len);
}

/* --- incremental decoder --------------------------------------------------- */

struct _MigdWireDecoder {
	const ProtobufCAllocator *allocator;
	guint8 prefix[MIGD_WIRE_VARINT_MAX_BYTES];
	gsize prefix_len;
	guint8 *frame; /* NULL while reading a prefix */
	gsize frame_len;
	gsize frame_fill;
	GQueue complete; /* of GBytes */
	GError *error;	 /* sticky */
};

static ProtobufCAllocator migd_wire_glib_allocator = {
    .alloc = migd_wire_plain_alloc,
    .free = migd_wire_plain_free,
};

MigdWireDecoder *
migd_wire_decoder_new_full(const ProtobufCAllocator *allocator)
{
	MigdWireDecoder *self = g_new0(MigdWireDecoder, 1);

	self->allocator = allocator != NULL ? allocator : &migd_wire_glib_allocator;
	g_queue_init(&self->complete);
	return self;
}

MigdWireDecoder *
migd_wire_decoder_new(void)
{
	return migd_wire_decoder_new_full(NULL);
}

void
migd_wire_decoder_free(MigdWireDecoder *self)
{
	if (self == NULL)
		return;
	if (self->frame != NULL)
		self->allocator->free(self->allocator->allocator_data, self->frame);
	g_queue_clear_full(&self->complete, (GDestroyNotify)g_bytes_unref);
	g_clear_error(&self->error);
	g_free(self);
}

static gboolean
migd_wire_decoder_fail(MigdWireDecoder *self, GError **error)
{
	if (error != NULL)
		*error = g_error_copy(self->error);
	return FALSE;
}

typedef struct {
	const ProtobufCAllocator *allocator;
	guint8 *data;
} MigdWireFrameBuf;

static void
migd_wire_frame_buf_free(gpointer user_data)
{
	MigdWireFrameBuf *fb = user_data;

	fb->allocator->free(fb->allocator->allocator_data, fb->data);
	g_free(fb);
}

static void
migd_wire_decoder_complete(MigdWireDecoder *self)
{
	MigdWireFrameBuf *fb = g_new0(MigdWireFrameBuf, 1);

	fb->allocator = self->allocator;
	fb->data = g_steal_pointer(&self->frame);
	g_queue_push_tail(
	    &self->complete,
	    g_bytes_new_with_free_func(fb->data, self->frame_len, migd_wire_frame_buf_free, fb));
	self->frame_len = 0;
	self->frame_fill = 0;
}

/* consumes prefix bytes from @data; starts a frame once the prefix is complete */
static gsize
migd_wire_decoder_feed_prefix(MigdWireDecoder *self, const guint8 *data, gsize len)
{
	gsize take = MIN(len, sizeof(self->prefix) - self->prefix_len);
	guint64 frame_len = 0;
	gsize consumed = 0;
	gsize before = self->prefix_len;

	memcpy(self->prefix + self->prefix_len, data, take);
	self->prefix_len += take;
	if (!migd_wire_varint_decode(self->prefix, self->prefix_len, &frame_len, &consumed,
				     &self->error))
		return 0;
	if (consumed == 0)
		return take; /* all of @data went into an incomplete prefix */

	/* both checks come before the allocation: the length is the peer's word */
	if (frame_len > MIGD_WIRE_MAX_FRAME_SIZE) {
		g_set_error(&self->error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "frame length %" G_GUINT64_FORMAT " exceeds the maximum %u", frame_len,
			    MIGD_WIRE_MAX_FRAME_SIZE);
		return 0;
	}
	if (frame_len == 0) {
		g_set_error(&self->error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "empty frame");
		return 0;
	}
	self->frame = self->allocator->alloc(self->allocator->allocator_data, frame_len);
	if (self->frame == NULL) {
		g_set_error(&self->error, MIGD_ERROR, MIGD_ERROR_FAILED,
			    "cannot allocate %" G_GUINT64_FORMAT " bytes for a frame", frame_len);
		return 0;
	}
	self->frame_len = frame_len;
	self->frame_fill = 0;
	self->prefix_len = 0;
	/* only the prefix bytes count; what we copied past it is consumed again as body */
	return consumed - before;
}

gboolean
migd_wire_decoder_feed(MigdWireDecoder *self, const guint8 *data, gsize len, GError **error)
{
	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(data != NULL || len == 0, FALSE);

	if (self->error != NULL)
		return migd_wire_decoder_fail(self, error);
	while (len > 0) {
		gsize n;

		if (self->frame == NULL) {
			n = migd_wire_decoder_feed_prefix(self, data, len);
			if (self->error != NULL)
				return migd_wire_decoder_fail(self, error);
		} else {
			n = MIN(len, self->frame_len - self->frame_fill);
			memcpy(self->frame + self->frame_fill, data, n);
			self->frame_fill += n;
			if (self->frame_fill == self->frame_len)
				migd_wire_decoder_complete(self);
		}
		data += n;
		len -= n;
	}
	return TRUE;
}

guint8 *
migd_wire_decoder_peek_space(MigdWireDecoder *self, gsize *len)
{
	g_return_val_if_fail(self != NULL, NULL);
	g_return_val_if_fail(len != NULL, NULL);

	if (self->frame == NULL || self->error != NULL) {
		*len = 0;
		return NULL;
	}
	*len = self->frame_len - self->frame_fill;
	return self->frame + self->frame_fill;
}

void
migd_wire_decoder_advance(MigdWireDecoder *self, gsize n)
{
	g_return_if_fail(self != NULL);
	g_return_if_fail(self->frame != NULL);
	g_return_if_fail(n <= self->frame_len - self->frame_fill);

	self->frame_fill += n;
	if (self->frame_fill == self->frame_len)
		migd_wire_decoder_complete(self);
}

GBytes *
migd_wire_decoder_pop(MigdWireDecoder *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	return g_queue_pop_head(&self->complete);
}

MigdWireFrame *
migd_wire_decoder_next(MigdWireDecoder *self, GError **error)
{
	g_autoptr(GBytes) bytes = NULL;

	g_return_val_if_fail(self != NULL, NULL);

	bytes = migd_wire_decoder_pop(self);
	if (bytes == NULL)
		return NULL;
	/*
	 * A StateChunk keeps the raw buffer and points into it; any other frame is
	 * unpacked and the raw buffer goes when this returns.
	 */
	return migd_wire_frame_decode_bytes(bytes, error);
}

guint
migd_wire_decoder_get_pending(MigdWireDecoder *self)
{
	g_return_val_if_fail(self != NULL, 0);
	return g_queue_get_length(&self->complete);
}

gboolean
migd_wire_decoder_finish(MigdWireDecoder *self, GError **error)
{
	g_return_val_if_fail(self != NULL, FALSE);

	if (self->error != NULL)
		return migd_wire_decoder_fail(self, error);
	if (self->frame != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "stream ended inside a frame (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
			    " bytes received)",
			    self->frame_fill, self->frame_len);
		return FALSE;
	}
	if (self->prefix_len > 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "stream ended inside a length prefix (%" G_GSIZE_FORMAT " bytes)",
			    self->prefix_len);
		return FALSE;
	}
	return TRUE;
}
