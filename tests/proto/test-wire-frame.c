/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Framing and stateless decoding: varints, round trips, the incremental
 * decoder at every split point, limits enforced before allocation, malformed
 * and hostile input (a bounded, seeded fuzz loop).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "migd-error.h"
#include "migd-state.h"
#include "wire-test-util.h"

#define assert_protocol_error(err, substr)                                                         \
	do {                                                                                       \
		assert_non_null(err);                                                              \
		if (!g_error_matches(err, MIGD_ERROR, MIGD_ERROR_PROTOCOL) ||                      \
		    strstr((err)->message, (substr)) == NULL)                                      \
			fail_msg("expected protocol error with \"%s\", got %s:%d \"%s\"",          \
				 (substr), g_quark_to_string((err)->domain), (err)->code,          \
				 (err)->message);                                                  \
	} while (0)

#define assert_no_error(err)                                                                       \
	do {                                                                                       \
		if ((err) != NULL)                                                                 \
			fail_msg("unexpected error: %s", (err)->message);                          \
	} while (0)

/* a ProtobufCAllocator that counts, to prove what the decoder allocates */
typedef struct {
	guint n_allocs;
	gsize bytes;
	gsize largest;
} CountingAlloc;

static void *
counting_alloc(void *data, size_t size)
{
	CountingAlloc *c = data;

	c->n_allocs++;
	c->bytes += size;
	c->largest = MAX(c->largest, size);
	return g_malloc(MAX(size, 1));
}

static void
counting_free(void *data, void *ptr)
{
	g_free(ptr);
}

static GByteArray *
encode_frame(const MigdWireFrame *frame)
{
	g_autoptr(GError) error = NULL;
	GByteArray *out = g_byte_array_new();

	if (!migd_wire_frame_append(frame, out, &error))
		fail_msg("encoding %s: %s", migd_wire_msg_type_to_string(frame->type),
			 error->message);
	return out;
}

static GByteArray *
encode_sample(MigdWireMsgType type, guint seed)
{
	g_autoptr(MigdWireFrame) frame = wire_test_sample(type, seed);

	return encode_frame(frame);
}

/* decodes a prefixed stream through a fresh decoder, expecting one frame */
static MigdWireFrame *
decode_one(const guint8 *data, gsize len, GError **error)
{
	g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new();
	g_autoptr(MigdWireFrame) frame = NULL;

	if (!migd_wire_decoder_feed(dec, data, len, error))
		return NULL;
	frame = migd_wire_decoder_next(dec, error);
	if (frame == NULL)
		return NULL;
	assert_int_equal(migd_wire_decoder_get_pending(dec), 0);
	if (!migd_wire_decoder_finish(dec, error))
		return NULL;
	return g_steal_pointer(&frame);
}

static void
assert_packed_equal(const MigdWireFrame *a, const MigdWireFrame *b)
{
	g_autoptr(GByteArray) pa = encode_frame(a);
	g_autoptr(GByteArray) pb = encode_frame(b);

	assert_int_equal(pa->len, pb->len);
	assert_memory_equal(pa->data, pb->data, pa->len);
}

/* --- varints --------------------------------------------------------------- */

static void
test_varint_roundtrip(void **state)
{
	const guint64 values[] = {0,
				  1,
				  127,
				  128,
				  300,
				  16383,
				  16384,
				  MIGD_WIRE_MAX_FRAME_SIZE,
				  G_MAXUINT32,
				  G_GUINT64_CONSTANT(1) << 40,
				  G_GUINT64_CONSTANT(1) << 63,
				  G_MAXUINT64};
	const gsize sizes[] = {1, 1, 1, 2, 2, 2, 3, 4, 5, 6, 10, 10};

	for (guint i = 0; i < G_N_ELEMENTS(values); i++) {
		guint8 buf[MIGD_WIRE_VARINT_MAX_BYTES];
		g_autoptr(GError) error = NULL;
		guint64 v = 0;
		gsize consumed = 0;
		gsize n = migd_wire_varint_encode(values[i], buf);

		assert_int_equal(n, sizes[i]);
		assert_true(migd_wire_varint_decode(buf, n, &v, &consumed, &error));
		assert_int_equal(consumed, n);
		assert_true(v == values[i]);
		/* every proper prefix is "need more", not an error */
		for (gsize k = 0; k < n; k++) {
			consumed = 99;
			assert_true(migd_wire_varint_decode(buf, k, &v, &consumed, &error));
			assert_int_equal(consumed, 0);
		}
	}
}

static void
test_varint_invalid(void **state)
{
	struct {
		guint8 bytes[12];
		gsize len;
		const gchar *msg;
	} cases[] = {
	    {{0x80, 0x00}, 2, "not minimally encoded"},
	    {{0xff, 0x80, 0x00}, 3, "not minimally encoded"},
	    {{0x81, 0x80, 0x80, 0x80, 0x00}, 5, "not minimally encoded"},
	    {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 10, "overflows 64 bits"},
	    {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 11, "overflows"},
	    {{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, 11, "overflows"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GError) error_dec = NULL;
		g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new();
		guint64 v = 0;
		gsize consumed = 0;

		assert_false(
		    migd_wire_varint_decode(cases[i].bytes, cases[i].len, &v, &consumed, &error));
		assert_protocol_error(error, cases[i].msg);
		/* the same through the decoder, one byte at a time */
		for (gsize k = 0; k < cases[i].len; k++) {
			if (!migd_wire_decoder_feed(dec, cases[i].bytes + k, 1, &error_dec))
				break;
		}
		assert_protocol_error(error_dec, cases[i].msg);
	}
}

/* --- round trips ----------------------------------------------------------- */

static void
test_roundtrip_all_types(void **state)
{
	for (gsize i = 0; i < wire_test_n_types; i++) {
		for (guint seed = 0; seed < 2; seed++) {
			g_autoptr(MigdWireFrame) orig = wire_test_sample(wire_test_types[i], seed);
			g_autoptr(MigdWireFrame) back = NULL;
			g_autoptr(GByteArray) appended = encode_frame(orig);
			g_autoptr(GOutputStream) ostream = g_memory_output_stream_new_resizable();
			g_autoptr(GError) error = NULL;
			g_autofree guint8 *buf = NULL;
			gsize size = migd_wire_frame_get_encoded_size(orig);
			gsize written = 0;

			/* the three encoders agree byte for byte */
			buf = g_malloc(size);
			assert_true(migd_wire_frame_encode(orig, buf, size, &written, &error));
			assert_int_equal(written, size);
			assert_int_equal(appended->len, size);
			assert_memory_equal(buf, appended->data, size);
			assert_true(migd_wire_frame_write(orig, ostream, NULL, &error));
			assert_true(g_output_stream_close(ostream, NULL, &error));
			assert_int_equal(
			    g_memory_output_stream_get_data_size(G_MEMORY_OUTPUT_STREAM(ostream)),
			    size);
			assert_memory_equal(
			    g_memory_output_stream_get_data(G_MEMORY_OUTPUT_STREAM(ostream)), buf,
			    size);

			back = decode_one(buf, size, &error);
			if (back == NULL)
				fail_msg("%s: %s", migd_wire_msg_type_to_string(wire_test_types[i]),
					 error->message);
			assert_int_equal(back->type, wire_test_types[i]);
			assert_int_equal(back->body_case, wire_test_types[i]);
			assert_packed_equal(orig, back);
		}
	}
}

static void
test_roundtrip_fields(void **state)
{
	g_autoptr(MigdWireFrame) offer =
	    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER, 7);
	g_autoptr(GByteArray) enc = encode_frame(offer);
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdWireFrame) back = decode_one(enc->data, enc->len, &error);
	const Migd__Wire__DeviceDescriptor *d;

	assert_no_error(error);
	d = back->device_offer->descriptor;
	assert_int_equal(back->device_offer->device, 1);
	assert_string_equal(d->driver_name, "mlx5_vfio_pci");
	assert_int_equal(d->vendor_id, 0x15b3);
	assert_int_equal(d->device_id, 0x101e);
	assert_int_equal(d->subsystem_device_id, 8);
	assert_int_equal(d->migration_flags, MIGD_MIG_FLAGS_KNOWN);
	assert_true(d->stop_copy_length == G_GUINT64_CONSTANT(300) * 1024 * 1024 + 7);
	assert_true(d->has_plugin_data);
	assert_int_equal(d->plugin_data.len, 47);
	assert_memory_equal(d->plugin_data.data, offer->device_offer->descriptor->plugin_data.data,
			    47);
	/* the decoded copy does not alias the input buffer */
	assert_true(d->plugin_data.data < enc->data || d->plugin_data.data >= enc->data + enc->len);
}

/* --- the incremental decoder ----------------------------------------------- */

/* every sample type twice, back to back */
static GByteArray *
sample_stream(guint *n_frames)
{
	GByteArray *stream = g_byte_array_new();

	*n_frames = 0;
	for (guint seed = 0; seed < 2; seed++) {
		for (gsize i = 0; i < wire_test_n_types; i++) {
			g_autoptr(GByteArray) one = encode_sample(wire_test_types[i], seed);

			g_byte_array_append(stream, one->data, one->len);
			(*n_frames)++;
		}
	}
	return stream;
}

static guint
drain(MigdWireDecoder *dec, GPtrArray *out)
{
	guint n = 0;

	for (;;) {
		g_autoptr(GError) error = NULL;
		MigdWireFrame *frame = migd_wire_decoder_next(dec, &error);

		assert_no_error(error);
		if (frame == NULL)
			return n;
		g_ptr_array_add(out, frame);
		n++;
	}
}

static void
test_split_every_boundary(void **state)
{
	guint n_frames = 0;
	g_autoptr(GByteArray) stream = sample_stream(&n_frames);
	g_autoptr(GPtrArray) reference =
	    g_ptr_array_new_with_free_func((GDestroyNotify)migd_wire_frame_free);

	/* reference: the whole stream in one slice */
	{
		g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new();
		g_autoptr(GError) error = NULL;

		assert_true(migd_wire_decoder_feed(dec, stream->data, stream->len, &error));
		assert_int_equal(drain(dec, reference), n_frames);
	}
	/* two slices, split at every byte */
	for (gsize cut = 0; cut <= stream->len; cut++) {
		g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new();
		g_autoptr(GPtrArray) got =
		    g_ptr_array_new_with_free_func((GDestroyNotify)migd_wire_frame_free);
		g_autoptr(GError) error = NULL;

		assert_true(migd_wire_decoder_feed(dec, stream->data, cut, &error));
		drain(dec, got);
		assert_true(
		    migd_wire_decoder_feed(dec, stream->data + cut, stream->len - cut, &error));
		drain(dec, got);
		assert_true(migd_wire_decoder_finish(dec, &error));
		assert_int_equal(got->len, n_frames);
		for (guint i = 0; i < n_frames; i++)
			assert_packed_equal(g_ptr_array_index(reference, i),
					    g_ptr_array_index(got, i));
	}
	/* one byte at a time */
	{
		g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new();
		g_autoptr(GPtrArray) got =
		    g_ptr_array_new_with_free_func((GDestroyNotify)migd_wire_frame_free);
		g_autoptr(GError) error = NULL;

		for (gsize i = 0; i < stream->len; i++) {
			assert_true(migd_wire_decoder_feed(dec, stream->data + i, 1, &error));
			drain(dec, got);
		}
		assert_int_equal(got->len, n_frames);
	}
}

/* an 8 MiB chunk read straight into the frame buffer, in uneven slices */
static void
test_large_chunk_direct(void **state)
{
	g_autoptr(MigdWireFrame) frame =
	    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK, 0);
	CountingAlloc counts = {0};
	ProtobufCAllocator alloc = {counting_alloc, counting_free, &counts};
	g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new_full(&alloc);
	g_autoptr(GByteArray) enc = NULL;
	g_autoptr(MigdWireFrame) back = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GRand) rand = g_rand_new_with_seed(8);
	gsize pos;

	g_free(frame->state_chunk->data.data);
	frame->state_chunk->data.len = MIGD_WIRE_MAX_CHUNK_PAYLOAD;
	frame->state_chunk->data.data = g_malloc(MIGD_WIRE_MAX_CHUNK_PAYLOAD);
	for (gsize i = 0; i < MIGD_WIRE_MAX_CHUNK_PAYLOAD; i++)
		frame->state_chunk->data.data[i] = (guint8)(i ^ (i >> 13));
	enc = encode_frame(frame);

	/* the prefix (and a little more) through feed, like a first read(2) */
	assert_true(migd_wire_decoder_feed(dec, enc->data, 16, &error));
	pos = 16;
	while (pos < enc->len) {
		gsize space = 0;
		guint8 *dst = migd_wire_decoder_peek_space(dec, &space);
		gsize want = g_rand_int_range(rand, 1, 1 << 20); /* MIN() evaluates twice */
		gsize n = MIN(space, want);

		assert_non_null(dst);
		memcpy(dst, enc->data + pos, n);
		migd_wire_decoder_advance(dec, n);
		pos += n;
	}
	/* one allocation, exactly the frame */
	assert_int_equal(counts.n_allocs, 1);
	assert_int_equal(counts.bytes, enc->len - 4);
	back = migd_wire_decoder_next(dec, &error);
	assert_no_error(error);
	assert_non_null(back);
	assert_int_equal(back->state_chunk->data.len, MIGD_WIRE_MAX_CHUNK_PAYLOAD);
	assert_memory_equal(back->state_chunk->data.data, frame->state_chunk->data.data,
			    MIGD_WIRE_MAX_CHUNK_PAYLOAD);

	/* one byte more is refused by the encoder and by the decoder */
	{
		g_autoptr(GError) error_enc = NULL;
		g_autoptr(GError) error_dec = NULL;
		g_autoptr(GByteArray) out = g_byte_array_new();
		g_autoptr(GByteArray) raw = NULL;
		g_autoptr(MigdWireFrame) bad = NULL;

		frame->state_chunk->data.len++;
		frame->state_chunk->data.data =
		    g_realloc(frame->state_chunk->data.data, frame->state_chunk->data.len);
		assert_false(migd_wire_frame_append(frame, out, &error_enc));
		assert_true(g_error_matches(error_enc, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		assert_int_equal(out->len, 0);
		raw = wire_test_pack_raw(&frame->base);
		bad = decode_one(raw->data, raw->len, &error_dec);
		assert_null(bad);
		assert_protocol_error(error_dec,
				      "StateChunk.data is 8388609 bytes, the maximum is 8388608");
	}
}

/* --- limits before allocation ---------------------------------------------- */

static void
test_oversized_length_no_alloc(void **state)
{
	const guint64 lengths[] = {G_GUINT64_CONSTANT(1) << 40, G_GUINT64_CONSTANT(1) << 30,
				   MIGD_WIRE_MAX_FRAME_SIZE + 1, G_MAXUINT64};
	const gchar *msgs[] = {"frame length 1099511627776 exceeds the maximum 16777216",
			       "frame length 1073741824 exceeds the maximum 16777216",
			       "frame length 16777217 exceeds the maximum 16777216",
			       "frame length 18446744073709551615 exceeds the maximum 16777216"};

	for (guint i = 0; i < G_N_ELEMENTS(lengths); i++) {
		CountingAlloc counts = {0};
		ProtobufCAllocator alloc = {counting_alloc, counting_free, &counts};
		g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new_full(&alloc);
		g_autoptr(GError) error = NULL;
		g_autoptr(GError) error2 = NULL;
		guint8 buf[MIGD_WIRE_VARINT_MAX_BYTES + 8] = {0};
		gsize n = migd_wire_varint_encode(lengths[i], buf);

		/* followed by some body bytes, as an attacker would send */
		assert_false(migd_wire_decoder_feed(dec, buf, n + 8, &error));
		assert_protocol_error(error, msgs[i]);
		assert_string_equal(error->message, msgs[i]);
		assert_int_equal(counts.n_allocs, 0);
		/* the failure is sticky: the stream cannot be resynchronised */
		assert_false(migd_wire_decoder_feed(dec, buf, 1, &error2));
		assert_protocol_error(error2, msgs[i]);
		assert_int_equal(counts.n_allocs, 0);
	}
	/* zero length is refused too, and also without allocating */
	{
		CountingAlloc counts = {0};
		ProtobufCAllocator alloc = {counting_alloc, counting_free, &counts};
		g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new_full(&alloc);
		g_autoptr(GError) error = NULL;
		guint8 zero = 0;

		assert_false(migd_wire_decoder_feed(dec, &zero, 1, &error));
		assert_protocol_error(error, "empty frame");
		assert_int_equal(counts.n_allocs, 0);
	}
	/* and the largest permitted length is allocated exactly, once */
	{
		CountingAlloc counts = {0};
		ProtobufCAllocator alloc = {counting_alloc, counting_free, &counts};
		g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new_full(&alloc);
		g_autoptr(GError) error = NULL;
		guint8 buf[MIGD_WIRE_VARINT_MAX_BYTES];
		gsize n = migd_wire_varint_encode(MIGD_WIRE_MAX_FRAME_SIZE, buf);

		assert_true(migd_wire_decoder_feed(dec, buf, n, &error));
		assert_int_equal(counts.n_allocs, 1);
		assert_int_equal(counts.largest, MIGD_WIRE_MAX_FRAME_SIZE);
	}
	/* the stateless decoder refuses before calling protobuf-c */
	{
		g_autoptr(GError) error = NULL;
		guint8 byte = 0x08;

		assert_null(
		    migd_wire_frame_decode(&byte, (gsize)MIGD_WIRE_MAX_FRAME_SIZE + 1, &error));
		assert_protocol_error(error, "exceeds the maximum 16777216");
	}
}

/* many tiny unknown fields would amplify a frame into far more heap */
static void
test_unpack_budget(void **state)
{
	g_autoptr(MigdWireFrame) ka = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE, 0);
	gsize len = protobuf_c_message_get_packed_size(&ka->base);
	gsize total = 4 * 1024 * 1024;
	g_autofree guint8 *buf = g_malloc(total);
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdWireFrame) back = NULL;
	gsize pos;

	protobuf_c_message_pack(&ka->base, buf);
	/* field 100, varint 1: 0xa0 0x06 0x01 */
	for (pos = len; pos + 3 <= total; pos += 3) {
		buf[pos] = 0xa0;
		buf[pos + 1] = 0x06;
		buf[pos + 2] = 0x01;
	}
	back = migd_wire_frame_decode(buf, pos, &error);
	assert_null(back);
	assert_protocol_error(error, "bytes to unpack");

	/* a few unknown fields (a newer peer) are fine */
	{
		g_autoptr(GError) error2 = NULL;
		g_autoptr(MigdWireFrame) ok = migd_wire_frame_decode(buf, len + 30, &error2);

		assert_no_error(error2);
		assert_non_null(ok);
		assert_int_equal(ok->base.n_unknown_fields, 10);
	}
}

/* --- malformed input ------------------------------------------------------- */

static void
test_truncated(void **state)
{
	g_autoptr(GByteArray) enc = encode_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER, 3);

	/* the stream ends inside the frame */
	for (gsize cut = 1; cut < enc->len; cut++) {
		g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new();
		g_autoptr(GError) error = NULL;

		assert_true(migd_wire_decoder_feed(dec, enc->data, cut, &error));
		assert_null(migd_wire_decoder_next(dec, &error));
		assert_no_error(error);
		assert_false(migd_wire_decoder_finish(dec, &error));
		assert_protocol_error(error, "stream ended inside a frame");
	}
	/* a prefix claiming fewer bytes than the message: protobuf-c sees a truncated message */
	for (gsize cut = 1; cut + 1 < enc->len; cut++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MigdWireFrame) f = migd_wire_frame_decode(enc->data + 1, cut, &error);

		/* some prefixes of a message are themselves valid messages, but not these */
		assert_null(f);
		assert_non_null(error);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
	}
	/* the stream ends inside a multi-byte length prefix */
	{
		g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new();
		g_autoptr(GError) error = NULL;
		guint8 partial = 0x85;

		assert_true(migd_wire_decoder_feed(dec, &partial, 1, &error));
		assert_false(migd_wire_decoder_finish(dec, &error));
		assert_protocol_error(error, "inside a length prefix");
	}
}

static void
test_unknown_type(void **state)
{
	/* type = 42, and field 42 holding an empty message, as a newer peer would send */
	const guint8 frame42[] = {0x08, 0x2a, 0xd2, 0x02, 0x00};
	/* type = 0 */
	const guint8 frame0[] = {0x08, 0x00};
	/* type = HELLO, body = a Keepalive */
	const guint8 mismatch[] = {0x08, 0x10, 0xe2, 0x01, 0x02, 0x08, 0x05};
	/* type = KEEPALIVE without a body */
	const guint8 nobody[] = {0x08, 0x1c};
	struct {
		const guint8 *data;
		gsize len;
		const gchar *msg;
	} cases[] = {
	    {frame42, sizeof(frame42), "unknown message type 42"},
	    {frame0, sizeof(frame0), "unknown message type 0"},
	    {mismatch, sizeof(mismatch), "frame of type HELLO carries a KEEPALIVE body"},
	    {nobody, sizeof(nobody), "frame of type KEEPALIVE carries no body"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GByteArray) raw = wire_test_prefix_raw(cases[i].data, cases[i].len);
		g_autoptr(GError) error = NULL;
		g_autoptr(MigdWireFrame) f = decode_one(raw->data, raw->len, &error);

		assert_null(f);
		assert_protocol_error(error, cases[i].msg);
		assert_string_equal(error->message, cases[i].msg);
	}
	assert_null(migd_wire_msg_type_to_string(42));
	assert_string_equal(migd_wire_msg_type_to_string(21), "STATE_CHUNK");
	assert_string_equal(migd_wire_reason_to_string(MIGD__WIRE__REASON__REASON_BUSY), "BUSY");
	assert_null(migd_wire_reason_to_string(0));
	assert_null(migd_wire_reason_to_string(99));
}

static void
test_missing_required(void **state)
{
	/* Keepalive without monotonic_usec; Frame without type */
	const guint8 no_usec[] = {0x08, 0x1c, 0xe2, 0x01, 0x00};
	const guint8 no_type[] = {0xe2, 0x01, 0x02, 0x08, 0x05};
	const guint8 *inputs[] = {no_usec, no_type};
	const gsize lens[] = {sizeof(no_usec), sizeof(no_type)};

	for (guint i = 0; i < G_N_ELEMENTS(inputs); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MigdWireFrame) f = migd_wire_frame_decode(inputs[i], lens[i], &error);

		assert_null(f);
		assert_protocol_error(error, "missing a required field");
	}
	/* a Hello without host_identity: caught by our check when encoding */
	{
		g_autoptr(MigdWireFrame) hello =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO, 0);
		g_autoptr(GByteArray) out = g_byte_array_new();
		g_autoptr(GError) error = NULL;

		g_clear_pointer(&hello->hello->host_identity, g_free);
		assert_false(migd_wire_frame_append(hello, out, &error));
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		assert_non_null(strstr(error->message, "Hello.host_identity is missing"));
	}
	/* a DeviceOffer without its descriptor */
	{
		g_autoptr(MigdWireFrame) offer =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER, 0);
		Migd__Wire__DeviceDescriptor *d = offer->device_offer->descriptor;
		g_autoptr(GError) error = NULL;

		offer->device_offer->descriptor = NULL;
		assert_false(migd_wire_frame_validate(offer, &error));
		assert_protocol_error(error, "DeviceOffer.descriptor is missing");
		offer->device_offer->descriptor = d;
	}
}

/* encodes @frame without validation, decodes it, expects @msg */
static void
assert_decode_fails(const MigdWireFrame *frame, const gchar *msg)
{
	g_autoptr(GByteArray) raw = wire_test_pack_raw(&frame->base);
	g_autoptr(GByteArray) out = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error_enc = NULL;
	g_autoptr(MigdWireFrame) f = decode_one(raw->data, raw->len, &error);

	assert_null(f);
	assert_protocol_error(error, msg);
	/* and the encoder refuses to produce it */
	assert_false(migd_wire_frame_append(frame, out, &error_enc));
	assert_non_null(strstr(error_enc->message, msg));
}

static void
test_oversized_strings(void **state)
{
	g_autoptr(MigdWireFrame) hello = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO, 0);
	g_autoptr(MigdWireFrame) offer =
	    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER, 0);
	g_autoptr(MigdWireFrame) abort_ = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT, 0);
	g_autofree gchar *host_ok = g_strnfill(MIGD_WIRE_MAX_HOST_IDENTITY_LEN, 'h');
	g_autofree gchar *saved = NULL;

	/* exactly at the limit: fine */
	saved = g_steal_pointer(&hello->hello->host_identity);
	hello->hello->host_identity = g_strdup(host_ok);
	{
		g_autoptr(GByteArray) enc = encode_frame(hello);
		g_autoptr(GError) error = NULL;
		g_autoptr(MigdWireFrame) f = decode_one(enc->data, enc->len, &error);

		assert_no_error(error);
	}
	g_free(hello->hello->host_identity);
	hello->hello->host_identity = g_strnfill(MIGD_WIRE_MAX_HOST_IDENTITY_LEN + 1, 'h');
	assert_decode_fails(hello, "Hello.host_identity is 256 bytes long, the maximum is 255");
	g_free(hello->hello->host_identity);
	hello->hello->host_identity = g_strdup("");
	assert_decode_fails(hello, "Hello.host_identity is empty");
	g_free(hello->hello->host_identity);
	hello->hello->host_identity = g_strdup("bad\xff\xfe utf8");
	assert_decode_fails(hello, "Hello.host_identity is not valid UTF-8");
	g_free(hello->hello->host_identity);
	hello->hello->host_identity = g_steal_pointer(&saved);

	g_free(hello->hello->session_id);
	hello->hello->session_id = g_strnfill(MIGD_WIRE_MAX_SESSION_ID_LEN + 1, 's');
	assert_decode_fails(hello, "Hello.session_id is 65 bytes long, the maximum is 64");
	g_free(hello->hello->session_id);
	hello->hello->session_id = g_strdup("../../etc/passwd");
	assert_decode_fails(hello, "Hello.session_id contains the byte 0x2f");

	g_free(offer->device_offer->descriptor->driver_name);
	offer->device_offer->descriptor->driver_name = g_strnfill(65, 'd');
	assert_decode_fails(offer, "DeviceDescriptor.driver_name is 65 bytes long");

	g_free(abort_->abort->message);
	abort_->abort->message = g_strnfill(MIGD_WIRE_MAX_MESSAGE_LEN + 1, 'm');
	assert_decode_fails(abort_, "Abort.message is 1025 bytes long, the maximum is 1024");
}

static void
test_oversized_plugin_data(void **state)
{
	g_autoptr(MigdWireFrame) offer =
	    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER, 0);
	ProtobufCBinaryData *pd = &offer->device_offer->descriptor->plugin_data;

	g_free(pd->data);
	pd->len = MIGD_WIRE_MAX_PLUGIN_DATA;
	pd->data = g_malloc0(pd->len + 1);
	{
		g_autoptr(GByteArray) enc = encode_frame(offer);
		g_autoptr(GError) error = NULL;
		g_autoptr(MigdWireFrame) f = decode_one(enc->data, enc->len, &error);

		assert_no_error(error);
		assert_int_equal(f->device_offer->descriptor->plugin_data.len,
				 MIGD_WIRE_MAX_PLUGIN_DATA);
	}
	pd->len++;
	assert_decode_fails(offer,
			    "DeviceDescriptor.plugin_data is 65537 bytes, the maximum is 65536");
}

static void
test_field_invariants(void **state)
{
	/* unknown enum values */
	{
		g_autoptr(MigdWireFrame) f =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK, 0);

		f->state_chunk->phase = 7;
		assert_decode_fails(f, "StateChunk.phase has the unknown value 7");
		f->state_chunk->phase = 0;
		assert_decode_fails(f, "StateChunk.phase has the unknown value 0");
	}
	{
		g_autoptr(MigdWireFrame) f =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT, 0);

		f->abort->reason = 1000;
		assert_decode_fails(f, "Abort.reason has the unknown value 1000");
	}
	/* StateChunk: `last` only in STOPCOPY; empty only when last */
	{
		g_autoptr(MigdWireFrame) f =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK, 1);

		f->state_chunk->phase = MIGD__WIRE__PHASE__PHASE_PRECOPY;
		assert_decode_fails(f, "only a STOPCOPY chunk can be the last");
		f->state_chunk->last = FALSE;
		f->state_chunk->data.len = 0;
		assert_decode_fails(f, "empty chunk that is not the last");
		f->state_chunk->device = MIGD_WIRE_MAX_DEVICES;
		assert_decode_fails(f, "StateChunk: device index 256 out of range");
	}
	/* HelloReply: exactly one of version and refusal */
	{
		g_autoptr(MigdWireFrame) f =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, 0);

		f->hello_reply->has_refusal = TRUE;
		f->hello_reply->refusal = MIGD__WIRE__REASON__REASON_BUSY;
		assert_decode_fails(f, "exactly one of version and refusal");
		f->hello_reply->has_refusal = FALSE;
		f->hello_reply->has_version = FALSE;
		assert_decode_fails(f, "exactly one of version and refusal");
	}
	/* Hello: version range, device count */
	{
		g_autoptr(MigdWireFrame) f =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO, 0);

		f->hello->version_min = 3;
		f->hello->version_max = 2;
		assert_decode_fails(f, "invalid protocol version range 3..2");
		f->hello->version_min = 1;
		f->hello->device_count = MIGD_WIRE_MAX_DEVICES + 1;
		assert_decode_fails(f, "device count 257 out of range");
	}
	/* descriptor: 16-bit ids, STOP_COPY */
	{
		g_autoptr(MigdWireFrame) f =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER, 0);

		f->device_offer->descriptor->vendor_id = 0x10000;
		assert_decode_fails(f, "PCI id 0x10000 does not fit 16 bits");
		f->device_offer->descriptor->vendor_id = 0x15b3;
		f->device_offer->descriptor->migration_flags = MIGD_MIG_FLAG_PRE_COPY;
		assert_decode_fails(f, "STOP_COPY missing or unknown bits");
		f->device_offer->descriptor->migration_flags = MIGD_MIG_FLAG_STOP_COPY | (1u << 9);
		assert_decode_fails(f, "STOP_COPY missing or unknown bits");
	}
	/* dirty bitmap geometry */
	{
		g_autoptr(MigdWireFrame) f =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DIRTY_BITMAP_CHUNK, 0);

		Migd__Wire__DirtyBitmapChunk *m;

		m = f->dirty_bitmap_chunk;
		m->page_size = 3000;
		assert_decode_fails(f, "bad geometry");
		m->page_size = 4096;
		m->window_iova = 4095;
		assert_decode_fails(f, "bad geometry");
		/* a window that wraps past the end of the IOVA space */
		m->window_iova = G_MAXUINT64 - 4095;
		assert_decode_fails(f, "bad geometry");
		m->window_iova = 0;
		m->round = 0;
		assert_decode_fails(f, "bad geometry");
		m->round = 1;
		m->window = MIGD_WIRE_MAX_DIRTY_WINDOWS;
		assert_decode_fails(f, "bad geometry");
		m->window = 0;
		m->first_page = 65;
		assert_decode_fails(f, "bad geometry");
		m->first_page = 4096 - 64;
		m->n_pages = 65; /* past the window's end */
		assert_decode_fails(f, "bad geometry");
		m->first_page = 0;
		m->n_pages = 512;
		m->n_dirty = 513;
		assert_decode_fails(f, "bad geometry");
		m->n_dirty = 1;
		m->window_pages = MIGD_WIRE_MAX_DIRTY_PAGES_PER_DEVICE + 1;
		assert_decode_fails(f, "bad geometry");
	}
	/* commit lists */
	{
		g_autoptr(MigdWireFrame) f =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT, 0);

		f->commit->devices[1]->device = 0;
		assert_decode_fails(f, "Commit lists device 0 twice");
	}
	{
		g_autoptr(MigdWireFrame) f =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT, 0);

		f->commit_result->ok = TRUE;
		assert_decode_fails(f, "CommitResult: ok, but device 1 failed");
		f->commit_result->ok = FALSE;
		f->commit_result->devices[1]->has_reason = FALSE;
		assert_decode_fails(f, "device 1 failed without a reason");
	}
}

/* --- encoders -------------------------------------------------------------- */

static void
test_encode_errors(void **state)
{
	g_autoptr(MigdWireFrame) f = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE, 0);
	gsize size = migd_wire_frame_get_encoded_size(f);
	g_autofree guint8 *buf = g_malloc(size);
	g_autoptr(GError) error = NULL;
	gsize written = 0;

	assert_false(migd_wire_frame_encode(f, buf, size - 1, &written, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);

	/* a stream that fills up: the write error comes back, prefixed */
	{
		g_autoptr(MigdWireFrame) chunk =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK, 299);
		g_autofree guint8 *small = g_malloc(64);
		g_autoptr(GOutputStream) out = g_memory_output_stream_new(small, 64, NULL, NULL);

		assert_false(migd_wire_frame_write(chunk, out, NULL, &error));
		assert_non_null(error);
		assert_non_null(strstr(error->message, "writing a STATE_CHUNK frame"));
	}
}

/* --- StateChunk without protobuf-c ------------------------------------------ */

static void
put_varint(GByteArray *out, guint64 v)
{
	guint8 buf[MIGD_WIRE_VARINT_MAX_BYTES];

	g_byte_array_append(out, buf, migd_wire_varint_encode(v, buf));
}

/* a random StateChunk frame, packed (no prefix); fields in random order when @shuffle */
static GBytes *
random_chunk_frame(GRand *rand, gboolean shuffle, guint8 **payload, gsize *payload_len)
{
	static const guint32 phases[] = {1, 2, 3, 0, 7};
	g_autoptr(GByteArray) body = g_byte_array_new();
	g_autoptr(GByteArray) out = g_byte_array_new();
	gsize len = g_rand_int_range(rand, 0, 8) == 0 ? g_rand_int_range(rand, 0, 300000)
						      : g_rand_int_range(rand, 0, 600);
	guint8 *data = g_malloc(MAX(len, 1));
	guint order[6] = {1, 2, 3, 4, 5, 6};
	gboolean has_last = g_rand_boolean(rand);
	gboolean has_crc = g_rand_boolean(rand);
	guint32 device = g_rand_int_range(rand, 0, 4) == 0 ? g_rand_int(rand)
							   : (guint32)g_rand_int_range(rand, 0, 8);
	guint32 phase = g_rand_int_range(rand, 0, 4) == 0
			    ? phases[g_rand_int_range(rand, 0, G_N_ELEMENTS(phases))]
			    : (guint32)g_rand_int_range(rand, 1, 3);
	guint64 sequence =
	    ((guint64)g_rand_int(rand) << 32 | g_rand_int(rand)) >> g_rand_int_range(rand, 0, 64);
	gboolean type_first = !shuffle || g_rand_boolean(rand);

	for (gsize i = 0; i < len; i++)
		data[i] = (guint8)g_rand_int(rand);
	for (guint i = 0; shuffle && i < 6; i++) {
		guint j = g_rand_int_range(rand, i, 6);
		guint t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (guint i = 0; i < 6; i++) {
		switch (order[i]) {
		case 1:
			g_byte_array_append(body, (const guint8 *)"\x08", 1);
			put_varint(body, device);
			break;
		case 2:
			g_byte_array_append(body, (const guint8 *)"\x10", 1);
			put_varint(body, phase);
			break;
		case 3:
			g_byte_array_append(body, (const guint8 *)"\x18", 1);
			put_varint(body, sequence);
			break;
		case 4:
			g_byte_array_append(body, (const guint8 *)"\x22", 1);
			put_varint(body, len);
			g_byte_array_append(body, data, len);
			break;
		case 5:
			if (has_last) {
				g_byte_array_append(body, (const guint8 *)"\x28", 1);
				put_varint(body, g_rand_boolean(rand));
			}
			break;
		default: /* crc32c, fixed32 little-endian */
			if (has_crc) {
				guint32 crc = GUINT32_TO_LE(g_rand_int(rand));
				g_byte_array_append(body, (const guint8 *)"\x35", 1);
				g_byte_array_append(body, (const guint8 *)&crc, 4);
			}
			break;
		}
	}
	if (type_first)
		g_byte_array_append(out, (const guint8 *)"\x08\x15", 2);
	g_byte_array_append(out, (const guint8 *)"\xaa\x01", 2);
	put_varint(out, body->len);
	g_byte_array_append(out, body->data, body->len);
	if (!type_first)
		g_byte_array_append(out, (const guint8 *)"\x08\x15", 2);
	if (payload != NULL) {
		*payload = data;
		*payload_len = len;
	} else {
		g_free(data);
	}
	return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

/* decodes @bytes both ways; they must agree on the result, field by field */
static MigdWireFrame *
decode_both_ways(GBytes *bytes, gboolean *zero_copy)
{
	g_autoptr(GError) err_zc = NULL;
	g_autoptr(GError) err_pb = NULL;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);
	g_autoptr(MigdWireFrame) zc = migd_wire_frame_decode_bytes(bytes, &err_zc);
	g_autoptr(MigdWireFrame) pb = migd_wire_frame_decode(data, len, &err_pb);
	const Migd__Wire__StateChunk *a;
	const Migd__Wire__StateChunk *b;

	*zero_copy = zc != NULL && migd_wire_frame_is_zero_copy(zc);
	if (pb == NULL) {
		assert_null(zc);
		assert_non_null(err_zc);
		assert_non_null(err_pb);
		assert_true(g_error_matches(err_zc, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
		assert_string_equal(err_zc->message, err_pb->message);
		return NULL;
	}
	assert_no_error(err_zc);
	assert_non_null(zc);
	assert_false(migd_wire_frame_is_zero_copy(pb));
	assert_int_equal(zc->type, pb->type);
	if (pb->type != MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK) {
		assert_false(*zero_copy);
		assert_packed_equal(zc, pb);
		return g_steal_pointer(&zc);
	}
	a = zc->state_chunk;
	b = pb->state_chunk;
	assert_int_equal(a->device, b->device);
	assert_int_equal(a->phase, b->phase);
	assert_int_equal(a->sequence, b->sequence);
	assert_int_equal(a->has_last, b->has_last);
	assert_int_equal(a->last, b->last);
	assert_int_equal(a->has_crc32c, b->has_crc32c);
	assert_int_equal(a->crc32c, b->crc32c);
	assert_int_equal(a->data.len, b->data.len);
	if (a->data.len > 0)
		assert_memory_equal(a->data.data, b->data.data, a->data.len);
	assert_int_equal(zc->base.n_unknown_fields, pb->base.n_unknown_fields);
	assert_int_equal(a->base.n_unknown_fields, b->base.n_unknown_fields);
	assert_packed_equal(zc, pb);
	if (*zero_copy && a->data.len > 0)
		assert_true(a->data.data >= data && a->data.data + a->data.len <= data + len);
	return g_steal_pointer(&zc);
}

static void
test_chunk_parse_matches_protobuf_c(void **state)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(0x7a63);
	guint n_zero_copy = 0;
	guint n_valid = 0;

	for (guint iter = 0; iter < 2000; iter++) {
		g_autofree guint8 *payload = NULL;
		gsize payload_len = 0;
		g_autoptr(GBytes) bytes =
		    random_chunk_frame(rand, iter % 2, &payload, &payload_len);
		gboolean zero_copy = FALSE;
		g_autoptr(MigdWireFrame) frame = decode_both_ways(bytes, &zero_copy);

		if (frame == NULL)
			continue;
		n_valid++;
		/* a valid canonical StateChunk never needs protobuf-c */
		assert_true(zero_copy);
		n_zero_copy++;
		assert_int_equal(frame->state_chunk->data.len, payload_len);
		if (payload_len > 0)
			assert_memory_equal(frame->state_chunk->data.data, payload, payload_len);
	}
	/* the generator must mostly produce valid frames, or this tests little */
	assert_true(n_valid > 1000);
	assert_int_equal(n_zero_copy, n_valid);

	/* what the encoder writes takes the fast path, too */
	for (guint seed = 0; seed < 8; seed++) {
		g_autoptr(GByteArray) enc =
		    encode_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK, seed);
		g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new();
		g_autoptr(MigdWireFrame) frame = NULL;
		g_autoptr(GError) error = NULL;

		assert_true(migd_wire_decoder_feed(dec, enc->data, enc->len, &error));
		frame = migd_wire_decoder_next(dec, &error);
		assert_no_error(error);
		assert_non_null(frame);
		assert_true(migd_wire_frame_is_zero_copy(frame));
	}
}

static void
test_chunk_parse_mutations(void **state)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(0x6d7574);

	for (guint iter = 0; iter < 4000; iter++) {
		g_autoptr(GBytes) valid = random_chunk_frame(rand, iter % 3 == 0, NULL, NULL);
		gsize len = 0;
		const guint8 *src = g_bytes_get_data(valid, &len);
		g_autoptr(GByteArray) buf = g_byte_array_new();
		g_autoptr(GBytes) bytes = NULL;
		g_autoptr(MigdWireFrame) frame = NULL;
		gboolean zero_copy = FALSE;
		gsize cut;

		/* keep the payloads small: the point is the framing around them */
		if (len > 4096)
			continue;
		g_byte_array_append(buf, src, len);
		switch (g_rand_int_range(rand, 0, 6)) {
		case 0: /* truncated */
			g_byte_array_set_size(buf, g_rand_int_range(rand, 0, buf->len));
			break;
		case 1: /* trailing bytes */
			for (guint k = g_rand_int_range(rand, 1, 12); k > 0; k--) {
				guint8 b = (guint8)g_rand_int(rand);
				g_byte_array_append(buf, &b, 1);
			}
			break;
		case 2: { /* a duplicated field of the chunk, or of the frame */
			guint8 dup[8];
			gsize n;

			cut = g_rand_int_range(rand, 0, buf->len);
			n = g_rand_int_range(rand, 1, MIN(buf->len - cut, sizeof(dup)) + 1);
			memcpy(dup, buf->data + cut, n);
			g_byte_array_append(buf, dup, n);
			break;
		}
		case 3: /* inserted bytes */
			cut = g_rand_int_range(rand, 0, buf->len + 1);
			for (guint k = g_rand_int_range(rand, 1, 4); k > 0; k--) {
				g_byte_array_set_size(buf, buf->len + 1);
				memmove(buf->data + cut + 1, buf->data + cut, buf->len - 1 - cut);
				buf->data[cut] = (guint8)g_rand_int(rand);
			}
			break;
		case 4: /* an overlong (too large) length or varint: set continuation bits */
			for (guint k = g_rand_int_range(rand, 1, 4); k > 0 && buf->len > 0; k--)
				buf->data[g_rand_int_range(rand, 0, MIN(buf->len, 16))] |= 0x80;
			break;
		default: /* flipped bytes, mostly in the header */
			for (guint k = g_rand_int_range(rand, 1, 4); k > 0 && buf->len > 0; k--)
				buf->data[g_rand_int_range(rand, 0, MIN(buf->len, 24))] =
				    (guint8)g_rand_int(rand);
			break;
		}
		/* exact-size heap copy, so that ASan sees any read past the end */
		bytes = g_bytes_new(buf->data, buf->len);
		frame = decode_both_ways(bytes, &zero_copy);
	}

	/* every truncation of a valid frame */
	for (guint iter = 0; iter < 20; iter++) {
		g_autoptr(GBytes) valid = random_chunk_frame(rand, iter % 2, NULL, NULL);
		gsize len = 0;
		const guint8 *src = g_bytes_get_data(valid, &len);

		for (gsize n = 0; n < MIN(len, 700); n++) {
			g_autoptr(GBytes) bytes = g_bytes_new(src, n);
			gboolean zero_copy = FALSE;
			g_autoptr(MigdWireFrame) frame = decode_both_ways(bytes, &zero_copy);

			assert_null(frame);
		}
	}
}

static void
test_chunk_payload_shares_frame(void **state)
{
	g_autofree CountingAlloc *counts = g_new0(CountingAlloc, 1);
	ProtobufCAllocator allocator = {
	    .alloc = counting_alloc,
	    .free = counting_free,
	    .allocator_data = counts,
	};
	g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new_full(&allocator);
	g_autoptr(MigdWireFrame) frame =
	    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK, 3);
	g_autoptr(GByteArray) enc = NULL;
	g_autoptr(GBytes) raw = NULL;
	g_autoptr(MigdWireFrame) back = NULL;
	g_autoptr(GBytes) stolen = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 1024 * 1024 + 5;
	guint8 *data = g_malloc(len);
	const guint8 *raw_data;
	gsize raw_len = 0;
	const guint8 *payload;
	gsize payload_len = 0;

	for (gsize i = 0; i < len; i++)
		data[i] = (guint8)(i * 13);
	g_free(frame->state_chunk->data.data);
	frame->state_chunk->data.data = data;
	frame->state_chunk->data.len = len;
	enc = encode_frame(frame);

	assert_true(migd_wire_decoder_feed(dec, enc->data, enc->len, &error));
	assert_no_error(error);
	raw = migd_wire_decoder_pop(dec);
	assert_non_null(raw);
	assert_int_equal(counts->n_allocs, 1);
	raw_data = g_bytes_get_data(raw, &raw_len);

	back = migd_wire_frame_decode_bytes(raw, &error);
	assert_no_error(error);
	assert_non_null(back);
	assert_true(migd_wire_frame_is_zero_copy(back));
	/* the frame holds the raw buffer now */
	g_clear_pointer(&raw, g_bytes_unref);
	stolen = migd_wire_frame_steal_chunk_data(back);
	assert_non_null(stolen);
	assert_int_equal(back->state_chunk->data.len, 0);
	assert_null(back->state_chunk->data.data);
	assert_null(migd_wire_frame_steal_chunk_data(back));
	payload = g_bytes_get_data(stolen, &payload_len);
	assert_int_equal(payload_len, len);
	/* the payload is the tail of the raw buffer, less the optional fields after it */
	assert_true(payload > raw_data && payload + payload_len <= raw_data + raw_len);
	assert_memory_equal(payload, data, len);
	/* no allocation beyond the frame buffer, and the payload outlives the frame */
	g_clear_pointer(&back, migd_wire_frame_free);
	assert_int_equal(counts->n_allocs, 1);
	assert_memory_equal(g_bytes_get_data(stolen, NULL), data, len);

	/* freeing a zero-copy frame whose payload was never stolen */
	assert_true(migd_wire_decoder_feed(dec, enc->data, enc->len, &error));
	back = migd_wire_decoder_next(dec, &error);
	assert_no_error(error);
	assert_true(migd_wire_frame_is_zero_copy(back));
	assert_memory_equal(back->state_chunk->data.data, data, len);
}

/* --- garbage --------------------------------------------------------------- */

/* feeds @data in random slices; every frame that comes out must be valid */
static void
fuzz_one(GRand *rand, const guint8 *data, gsize len)
{
	g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new();
	gsize pos = 0;

	while (pos < len) {
		g_autoptr(GError) error = NULL;
		gsize want = g_rand_int_range(rand, 1, 64); /* MIN() evaluates twice */
		gsize n = MIN(len - pos, want);

		if (!migd_wire_decoder_feed(dec, data + pos, n, &error)) {
			assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
			return;
		}
		pos += n;
		for (;;) {
			g_autoptr(MigdWireFrame) f = migd_wire_decoder_next(dec, &error);
			g_autoptr(GByteArray) out = NULL;

			if (f == NULL)
				break;
			/* what the decoder accepts, the encoder accepts too */
			out = g_byte_array_new();
			assert_true(migd_wire_frame_append(f, out, NULL));
		}
		if (error != NULL)
			assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
	}
}

static void
test_garbage_fuzz(void **state)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(0x6d696764);
	guint n_frames = 0;
	g_autoptr(GByteArray) stream = sample_stream(&n_frames);

	/* pure noise */
	for (guint iter = 0; iter < 3000; iter++) {
		gsize len = g_rand_int_range(rand, 0, 256);
		g_autofree guint8 *buf = g_malloc(MAX(len, 1));

		for (gsize i = 0; i < len; i++)
			buf[i] = (guint8)g_rand_int(rand);
		/* often a small plausible length prefix, to get past the framing */
		if (len > 1 && g_rand_boolean(rand))
			buf[0] = (guint8)MIN(len - 1, 127);
		fuzz_one(rand, buf, len);
	}
	/* valid streams with a few bytes mutated */
	for (guint iter = 0; iter < 3000; iter++) {
		g_autofree guint8 *buf = g_memdup2(stream->data, stream->len);
		guint flips = g_rand_int_range(rand, 1, 4);

		for (guint k = 0; k < flips; k++)
			buf[g_rand_int_range(rand, 0, stream->len)] = (guint8)g_rand_int(rand);
		fuzz_one(rand, buf, stream->len);
	}
}

/* pieces: the same bytes as the copying encoder, the payload queued by reference */
static void
test_encode_pieces_zero_copy(void **state)
{
	for (guint seed = 0; seed < 4; seed++) {
		g_autoptr(MigdWireFrame) frame =
		    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK, seed);
		g_autoptr(GByteArray) enc = NULL;
		g_autoptr(GByteArray) joined = g_byte_array_new();
		g_autoptr(GBytes) payload = NULL;
		g_autoptr(MigdWireFrame) back = NULL;
		g_autoptr(GBytes) stolen = NULL;
		g_autoptr(GError) error = NULL;
		GQueue pieces = G_QUEUE_INIT;
		gboolean payload_seen = FALSE;
		gsize total = 0;
		guint64 v = 0;
		gsize used = 0;
		gsize len = 64 * 1024 + seed;
		guint8 *data = g_malloc(len);

		for (gsize i = 0; i < len; i++)
			data[i] = (guint8)(i * 7 + seed);
		payload = g_bytes_new_take(data, len);
		g_free(frame->state_chunk->data.data);
		frame->state_chunk->data.data = data;
		frame->state_chunk->data.len = len;
		frame->state_chunk->has_last = seed % 2;
		frame->state_chunk->last = seed % 2;
		enc = encode_frame(frame);

		assert_true(migd_wire_frame_encode_pieces(frame, payload, &pieces, &total, &error));
		assert_no_error(error);
		assert_int_equal(total, enc->len);
		for (GList *l = pieces.head; l != NULL; l = l->next) {
			gsize n = 0;
			const guint8 *p = g_bytes_get_data(l->data, &n);
			if (p == data)
				payload_seen = TRUE;
			g_byte_array_append(joined, p, n);
		}
		g_queue_clear_full(&pieces, (GDestroyNotify)g_bytes_unref);
		assert_true(payload_seen);
		assert_int_equal(joined->len, enc->len);
		assert_memory_equal(joined->data, enc->data, enc->len);
		/* the frame must not free the payload it borrowed */
		frame->state_chunk->data.data = NULL;
		frame->state_chunk->data.len = 0;

		/* the decoded payload can be taken out of the frame without a copy */
		assert_true(migd_wire_varint_decode(enc->data, enc->len, &v, &used, NULL));
		assert_int_equal(used + v, enc->len);
		back = migd_wire_frame_decode(enc->data + used, enc->len - used, &error);
		assert_no_error(error);
		assert_non_null(back);
		{
			const guint8 *unpacked = back->state_chunk->data.data;
			stolen = migd_wire_frame_steal_chunk_data(back);
			assert_non_null(stolen);
			assert_ptr_equal(g_bytes_get_data(stolen, NULL), unpacked);
		}
		assert_int_equal(back->state_chunk->data.len, 0);
		assert_true(g_bytes_equal(stolen, payload));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_varint_roundtrip),
	    cmocka_unit_test(test_varint_invalid),
	    cmocka_unit_test(test_roundtrip_all_types),
	    cmocka_unit_test(test_roundtrip_fields),
	    cmocka_unit_test(test_split_every_boundary),
	    cmocka_unit_test(test_large_chunk_direct),
	    cmocka_unit_test(test_oversized_length_no_alloc),
	    cmocka_unit_test(test_unpack_budget),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_unknown_type),
	    cmocka_unit_test(test_missing_required),
	    cmocka_unit_test(test_oversized_strings),
	    cmocka_unit_test(test_oversized_plugin_data),
	    cmocka_unit_test(test_field_invariants),
	    cmocka_unit_test(test_encode_errors),
	    cmocka_unit_test(test_encode_pieces_zero_copy),
	    cmocka_unit_test(test_chunk_parse_matches_protobuf_c),
	    cmocka_unit_test(test_chunk_parse_mutations),
	    cmocka_unit_test(test_chunk_payload_shares_frame),
	    cmocka_unit_test(test_garbage_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
