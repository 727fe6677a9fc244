/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * From bytes to frames: migd_wire_frame_decode unpacks one packed frame with a
 * bounded allocator, migd_wire_frame_decode_bytes parses a canonical StateChunk
 * without copying its payload, and MigdWireDecoder cuts a byte stream fed in
 * slices of any size into length-prefixed frames. Every frame returned has
 * passed migd_wire_frame_validate.
 */
#include "config.h"

#include <string.h>

#include "migd-error.h"
#include "migd-wire-frame.h"

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
	MIGD_WIRE_ZC_CRC32C = 1 << 6,
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

		/* 1-byte tags only: fields 1..6 */
		if (field < 1 || field > 6 || (seen & (1u << field)) != 0)
			return FALSE;
		seen |= 1u << field;
		if (field == 6) {
			if ((tag & 7) != PROTOBUF_C_WIRE_TYPE_32BIT || end - p < 4)
				return FALSE;
			chunk->has_crc32c = TRUE;
			chunk->crc32c = ((guint32)p[0]) | ((guint32)p[1] << 8) |
					((guint32)p[2] << 16) | ((guint32)p[3] << 24);
			p += 4;
			continue;
		}
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
	MigdWireDecoderReserveFunc reserve;
	MigdWireDecoderReleaseFunc release;
	gpointer budget_data;
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
	if (self->frame != NULL) {
		self->allocator->free(self->allocator->allocator_data, self->frame);
		if (self->release != NULL)
			self->release(self->frame_len, self->budget_data);
	}
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
	if (self->release != NULL)
		self->release(self->frame_len, self->budget_data);
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
	if (self->reserve != NULL &&
	    !self->reserve((gsize)frame_len, self->budget_data, &self->error))
		return 0;
	self->frame = self->allocator->alloc(self->allocator->allocator_data, frame_len);
	if (self->frame == NULL) {
		if (self->release != NULL)
			self->release((gsize)frame_len, self->budget_data);
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
migd_wire_decoder_is_partial(MigdWireDecoder *self)
{
	g_return_val_if_fail(self != NULL, FALSE);
	return self->frame != NULL || self->prefix_len > 0;
}

void
migd_wire_decoder_set_budget(MigdWireDecoder *self, MigdWireDecoderReserveFunc reserve,
			     MigdWireDecoderReleaseFunc release, gpointer user_data)
{
	g_return_if_fail(self != NULL);
	/* only between frames: a reserved frame must be released by the same hooks */
	g_return_if_fail(self->frame == NULL);
	self->reserve = reserve;
	self->release = release;
	self->budget_data = user_data;
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
