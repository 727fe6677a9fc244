/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer harness for the dirty-bitmap codec (dirty/migd-dirty-bitmap.c), checked against
 * the bit-by-bit reference of tests/dirty-codec/dirty-reference.h. Input:
 *   byte 0      flags: 1 an out-of-range page count, 2 a non-empty target bitmap, 4 a wrong
 *               n_dirty, 8 a wrong checksum, 16 the payload one byte off 8-byte alignment;
 *               the top three bits 001: a large chunk (n_pages * 64), rare as it is slow
 *   bytes 1..2  n_pages - 1, little-endian, of which 14 bits (1 .. 16384 pages: many blocks,
 *               still fast; large chunks reach the encoder's 4096-word segments)
 *   the rest    the payload
 * The payload is decoded as each of RAW, RUNS and SPARSE and as unknown encodings. Where the
 * reference finds it valid, the codec must accept it with the reference's count and checksum
 * and OR exactly the reference's bits into the target, and must reject it when either number
 * is wrong; where the reference finds it invalid the codec must reject it. A rejection is
 * MIGD_ERROR_PROTOCOL and leaves the target as it was. Every valid bitmap is then encoded
 * again: the shortest encoding, byte for byte the reference's, and decoded back to itself.
 */
#include "config.h"

#include <stdint.h>

#include "dirty-codec/dirty-reference.h"
#include "migd-dirty-bitmap.h"
#include "migd-error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAG_BAD_PAGES	  0x01
#define FLAG_TARGET	  0x02
#define FLAG_BAD_COUNT	  0x04
#define FLAG_BAD_CHECKSUM 0x08
#define FLAG_MISALIGN	  0x10
#define FLAG_LARGE	  0x20 /* with 0x40 and 0x80 clear */

/* page counts the decoder must refuse before it touches anything */
static const guint64 bad_pages[] = {0, MIGD_DIRTY_MAX_CHUNK_PAGES + 1, G_MAXUINT64};

static void
check_encoder(const guint64 *w, guint64 n_pages, guint64 n_dirty)
{
	g_auto(MigdDirtyEncoded) enc = {0};
	g_autoptr(GArray) runs = ref_runs(w, n_pages);
	g_autoptr(GByteArray) want = NULL;
	g_autofree guint64 *back = g_new0(guint64, n_words_of(n_pages));
	g_autoptr(GError) error = NULL;
	gsize len;
	const guint8 *payload;

	migd_dirty_encode(w, n_pages, &enc);
	g_assert_cmpuint(enc.n_pages, ==, n_pages);
	g_assert_cmpuint(enc.n_dirty, ==, n_dirty);
	g_assert_cmpuint(enc.checksum, ==, ref_checksum(w, n_pages));
	g_assert_cmpint(enc.encoding, ==, ref_best(n_pages, runs));
	want = ref_encode(enc.encoding, w, n_pages, runs);
	payload = g_bytes_get_data(enc.data, &len);
	g_assert_cmpmem(payload, len, want->data, want->len);
	g_assert_true(migd_dirty_decode_merge(enc.encoding, payload, len, n_pages, enc.n_dirty,
					      enc.checksum, back, &error));
	g_assert_no_error(error);
	g_assert_cmpmem(back, n_words_of(n_pages) * 8, w, n_words_of(n_pages) * 8);
}

static void
check_decode(guint encoding, const guint8 *payload, gsize len, guint64 n_pages, guint8 flags,
	     const guint64 *target0, gsize n_words)
{
	g_autofree guint64 *ref = g_new0(guint64, n_words);
	g_autofree guint64 *target = g_memdup2(target0, n_words * 8);
	g_autoptr(GError) error = NULL;
	guint64 n_dirty = 0, checksum = 0;
	gboolean valid, want_ok, ok;

	valid = ref_decode(encoding, payload, len, n_pages, ref, &n_dirty);
	if (valid) {
		checksum = ref_checksum(ref, n_pages);
		check_encoder(ref, n_pages, n_dirty);
	}
	want_ok = valid && (flags & (FLAG_BAD_COUNT | FLAG_BAD_CHECKSUM)) == 0;
	if (flags & FLAG_BAD_COUNT)
		n_dirty ^= 1;
	if (flags & FLAG_BAD_CHECKSUM)
		checksum ^= G_GUINT64_CONSTANT(1) << (len % 64);

	ok = migd_dirty_decode_merge(encoding, payload, len, n_pages, n_dirty, checksum, target,
				     &error);
	if (ok != want_ok)
		g_error("%s payload of %" G_GSIZE_FORMAT " bytes, %" G_GUINT64_FORMAT
			" pages: the codec says %s, the reference %s",
			migd_dirty_encoding_to_string(encoding), len, n_pages,
			ok ? "valid" : error->message, want_ok ? "valid" : "invalid");
	if (!ok) {
		g_assert_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL);
		g_assert_cmpmem(target, n_words * 8, target0, n_words * 8);
		return;
	}
	for (gsize i = 0; i < n_words; i++)
		g_assert_cmpuint(target[i], ==, target0[i] | ref[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const guint encodings[] = {
	    MIGD_DIRTY_ENCODING_RAW,
	    MIGD_DIRTY_ENCODING_RUNS,
	    MIGD_DIRTY_ENCODING_SPARSE,
	};
	g_autofree guint64 *target = NULL;
	g_autofree guint64 *aligned = NULL;
	const guint8 *payload;
	guint64 n_pages;
	gsize len, n_words;
	guint8 flags;

	if (size < 3)
		return 0;
	flags = data[0];
	n_pages = (((guint64)data[1] | (guint64)data[2] << 8) & 0x3fff) + 1;
	if ((flags & 0xe0) == FLAG_LARGE)
		n_pages *= 64;
	if (flags & FLAG_BAD_PAGES)
		n_pages = bad_pages[data[1] % G_N_ELEMENTS(bad_pages)];
	len = size - 3;

	/* the decoder reads an aligned RAW payload in place and copies any other */
	aligned = g_new0(guint64, len / 8 + 2);
	memcpy((guint8 *)aligned + ((flags & FLAG_MISALIGN) ? 1 : 0), data + 3, len);
	payload = (const guint8 *)aligned + ((flags & FLAG_MISALIGN) ? 1 : 0);

	/* a refused page count must be refused before the bitmap is touched: one word */
	n_words = (flags & FLAG_BAD_PAGES) ? 1 : n_words_of(n_pages);
	target = g_new0(guint64, n_words);
	if (flags & FLAG_TARGET) {
		for (gsize i = 0; i < n_words; i++)
			target[i] = (i * G_GUINT64_CONSTANT(0x9E3779B97F4A7C15)) >> (i % 7);
		target[n_words - 1] &= (flags & FLAG_BAD_PAGES) ? 0 : tail_mask(n_pages);
	}

	for (guint i = 0; i < G_N_ELEMENTS(encodings); i++)
		check_decode(encodings[i], payload, len, n_pages, flags, target, n_words);
	/* unknown encodings */
	check_decode(0, payload, len, n_pages, flags, target, n_words);
	check_decode(4 + data[1], payload, len, n_pages, flags, target, n_words);
	return 0;
}
