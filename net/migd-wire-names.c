/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The vocabulary of the wire protocol: the names of message types and reasons
 * for logs and errors, the base-128 varints of the length prefix, and
 * migd_wire_frame_init, which ties a body to its type. Nothing here reads
 * from a peer beyond a varint.
 */
#include "config.h"

#include <string.h>

#include "migd-error.h"
#include "migd-wire-frame.h"

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
    "START_REQUEST",
    "START_GRANT",
};
G_STATIC_ASSERT(G_N_ELEMENTS(migd_wire_msg_type_names) ==
		MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT - MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO +
		    1);

const gchar *
migd_wire_msg_type_to_string(guint32 type)
{
	if (type < MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO ||
	    type > MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT)
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
