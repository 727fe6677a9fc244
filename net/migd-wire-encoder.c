/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * From frames to bytes: a frame is validated, then written as a varint length
 * prefix and the packed migd.wire.Frame into a buffer, a GByteArray, a
 * GOutputStream (large payloads straight from the message) or a queue of
 * GBytes pieces that references the payload instead of copying it.
 */
#include "config.h"

#include <string.h>

#include "migd-error.h"
#include "migd-wire-frame.h"

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
