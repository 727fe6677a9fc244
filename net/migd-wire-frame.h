/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Framing of the wire protocol: varint length prefix + packed migd.wire.Frame.
 * Everything that reads from a peer returns MIGD_ERROR_PROTOCOL on bad input.
 *
 * The public header of the frame API, implemented in migd-wire-names.c (names,
 * varints, frame_init), migd-wire-schema.c (validation), migd-wire-decoder.c
 * (decoding, the streaming decoder) and migd-wire-encoder.c (encoding).
 */
#pragma once

#include <gio/gio.h>

#include "migd.pb-c.h"
#include "migd-wire-limits.h"

G_BEGIN_DECLS

typedef Migd__Wire__Frame MigdWireFrame;
typedef Migd__Wire__MessageType MigdWireMsgType;

/* "HELLO", "STATE_CHUNK", ...; NULL for a value this build does not know */
const gchar *migd_wire_msg_type_to_string(guint32 type);
/* "OTHER", "BUSY", ...; NULL when unknown */
const gchar *migd_wire_reason_to_string(guint32 reason);

/* --- varints --------------------------------------------------------------- */

/* writes @value as a minimal base-128 varint, returns its length (1..10) */
gsize migd_wire_varint_encode(guint64 value, guint8 *out);
/*
 * Reads a varint from @buf. Returns FALSE with an error for an overlong (more than
 * 10 bytes or more than 64 bits) or non-minimal encoding. Returns TRUE with
 * *consumed == 0 when @buf ends before the varint does.
 */
gboolean migd_wire_varint_decode(const guint8 *buf, gsize len, guint64 *value, gsize *consumed,
				 GError **error);

/* --- frames ---------------------------------------------------------------- */

/* sets @frame's type, its oneof case and body pointer (borrowed, not copied) */
void migd_wire_frame_init(MigdWireFrame *frame, MigdWireMsgType type, gpointer body);

/*
 * The checks that need no session: known type, body matching the type, known enum
 * values, UTF-8 strings, every limit of migd-wire-limits.h, field invariants.
 * Run on every frame decoded and on every frame encoded.
 */
gboolean migd_wire_frame_validate(const MigdWireFrame *frame, GError **error);
/*
 * A migration id (Hello.migration_id, Manager.Expect, Migrate's migration-id):
 * 1..MIGD_WIRE_MAX_MIGRATION_ID_LEN bytes of [A-Za-z0-9._:-]; @what names it in
 * the error, @code is the MIGD_ERROR code to fail with (a peer's: PROTOCOL, a
 * caller's: INVALID_ARGUMENT).
 */
gboolean migd_wire_check_migration_id(const gchar *what, const gchar *id, gint code,
				      GError **error);

/*
 * Unpacks a packed Frame (no length prefix) of at most MIGD_WIRE_MAX_FRAME_SIZE
 * bytes with a bounded allocator and validates it. Free with migd_wire_frame_free.
 */
MigdWireFrame *migd_wire_frame_decode(const guint8 *data, gsize len, GError **error);
/*
 * Like migd_wire_frame_decode, for a packed frame in @bytes (e.g. from
 * migd_wire_decoder_pop). A StateChunk in canonical encoding is parsed without
 * protobuf-c and without copying its payload: the frame holds a reference to
 * @bytes and its data points into it. Anything else goes through
 * migd_wire_frame_decode. Free with migd_wire_frame_free.
 */
MigdWireFrame *migd_wire_frame_decode_bytes(GBytes *bytes, GError **error);
/* TRUE for a frame from migd_wire_frame_decode_bytes whose payload is in the packed frame */
gboolean migd_wire_frame_is_zero_copy(const MigdWireFrame *frame);
/* only for frames returned by this module's decoders; NULL-safe */
void migd_wire_frame_free(MigdWireFrame *frame);

/* length prefix + packed frame */
gsize migd_wire_frame_get_encoded_size(const MigdWireFrame *frame);
/* validates, then writes prefix + frame into @buf; fails if @buf_len is too small */
gboolean migd_wire_frame_encode(const MigdWireFrame *frame, guint8 *buf, gsize buf_len,
				gsize *written, GError **error);
gboolean migd_wire_frame_append(const MigdWireFrame *frame, GByteArray *array, GError **error);
/* large bytes fields go straight from the message to the stream, not via a copy */
gboolean migd_wire_frame_write(const MigdWireFrame *frame, GOutputStream *stream,
			       GCancellable *cancellable, GError **error);
/*
 * Validates, then appends prefix + frame to @pieces (a queue of GBytes, in order)
 * without copying @payload: the bytes field of @frame whose data is @payload's
 * (same pointer and length) is queued as a reference to @payload, everything
 * around it as small encoded pieces. @payload may be NULL (one piece). On
 * failure nothing is queued. Returns the total number of bytes queued.
 */
gboolean migd_wire_frame_encode_pieces(const MigdWireFrame *frame, GBytes *payload, GQueue *pieces,
				       gsize *total, GError **error);
/*
 * For a STATE_CHUNK frame from migd_wire_frame_decode(_bytes): takes its payload
 * out of the frame without a copy (the frame's data becomes empty); for a
 * zero-copy frame, a slice of the packed frame. NULL for an empty payload or
 * another frame type.
 */
GBytes *migd_wire_frame_steal_chunk_data(MigdWireFrame *frame);

/* --- incremental decoder --------------------------------------------------- */

/*
 * Turns a byte stream, fed in slices of any size, into complete frames. Each
 * frame's buffer is allocated once, at its exact length, after the length was
 * checked; payload bytes are copied into it once (or read into it directly, see
 * migd_wire_decoder_peek_space). After an error the decoder stays failed: the
 * stream cannot be resynchronised. Memory held is at most the bytes fed since
 * the last migd_wire_decoder_next/pop plus one partial frame.
 */
typedef struct _MigdWireDecoder MigdWireDecoder;

MigdWireDecoder *migd_wire_decoder_new(void);
/*
 * @allocator (NULL for GLib's) allocates the frame buffers; it must outlive the
 * decoder and any GBytes popped from it. Tests use it to count allocations.
 */
MigdWireDecoder *migd_wire_decoder_new_full(const ProtobufCAllocator *allocator);
void migd_wire_decoder_free(MigdWireDecoder *self);

gboolean migd_wire_decoder_feed(MigdWireDecoder *self, const guint8 *data, gsize len,
				GError **error);
/*
 * While a frame body is being received, the rest of it, to read(2) into directly;
 * then call migd_wire_decoder_advance. NULL (and *len = 0) between frames, when
 * the length prefix is still incomplete: use migd_wire_decoder_feed then.
 */
guint8 *migd_wire_decoder_peek_space(MigdWireDecoder *self, gsize *len);
void migd_wire_decoder_advance(MigdWireDecoder *self, gsize n);

/* the next complete packed frame (no prefix), or NULL */
GBytes *migd_wire_decoder_pop(MigdWireDecoder *self);
/* pop + migd_wire_frame_decode; NULL without an error when no frame is complete */
MigdWireFrame *migd_wire_decoder_next(MigdWireDecoder *self, GError **error);
guint migd_wire_decoder_get_pending(MigdWireDecoder *self);
/* a length prefix or a frame body has started and is not complete yet */
gboolean migd_wire_decoder_is_partial(MigdWireDecoder *self);
/*
 * Accounting of partial frames: @reserve is asked for a frame's length once its
 * prefix is read, before the buffer is allocated (FALSE with an error fails the
 * decoder); @release gives the same length back when the frame is complete or the
 * decoder is freed with it unfinished.
 */
typedef gboolean (*MigdWireDecoderReserveFunc)(gsize len, gpointer user_data, GError **error);
typedef void (*MigdWireDecoderReleaseFunc)(gsize len, gpointer user_data);
void migd_wire_decoder_set_budget(MigdWireDecoder *self, MigdWireDecoderReserveFunc reserve,
				  MigdWireDecoderReleaseFunc release, gpointer user_data);
/* at end of stream: fails if the stream stopped inside a frame */
gboolean migd_wire_decoder_finish(MigdWireDecoder *self, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdWireFrame, migd_wire_frame_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdWireDecoder, migd_wire_decoder_free)

G_END_DECLS
