/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The checks a frame must pass whatever the session: a known type with the
 * matching body, known enum values, UTF-8 strings, the limits of
 * migd-wire-limits.h and the invariants of each message. The decoder runs
 * them on every frame it returns, the encoder on every frame it sends.
 */
#include "config.h"

#include <string.h>

#include "migd-error.h"
#include "migd-state.h"
#include "migd-wire-frame.h"

/* the schema is not recursive; anything deeper than this is a bug in migd.proto */
#define MIGD_WIRE_MAX_NESTING 4

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

gboolean
migd_wire_check_migration_id(const gchar *what, const gchar *id, gint code, GError **error)
{
	gsize len = id != NULL ? strnlen(id, MIGD_WIRE_MAX_MIGRATION_ID_LEN + 1) : 0;

	if (len == 0 || len > MIGD_WIRE_MAX_MIGRATION_ID_LEN) {
		g_set_error(error, MIGD_ERROR, code, "%s must be 1 to %u bytes long", what,
			    MIGD_WIRE_MAX_MIGRATION_ID_LEN);
		return FALSE;
	}
	/* it names journal records and log lines, and libvirt's UUIDs and names fit */
	for (const gchar *p = id; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.' && *p != ':') {
			g_set_error(error, MIGD_ERROR, code,
				    "%s contains the byte 0x%02x; only [A-Za-z0-9._:-] are allowed",
				    what, (guint)(guint8)*p);
			return FALSE;
		}
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
		       migd_wire_check_session_id("Hello", m->session_id, error) &&
		       (m->migration_id == NULL ||
			migd_wire_check_migration_id("Hello.migration_id", m->migration_id,
						     MIGD_ERROR_PROTOCOL, error));
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
	case MIGD__WIRE__MESSAGE_TYPE__MSG_START_REQUEST: /* empty */
	case MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT:	  /* empty */
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
