/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A reference for the dirty-bitmap wire formats (dirty/migd-dirty-bitmap.c), written from
 * their description bit by bit and sharing no code with the codec: the runs of a bitmap, the
 * three encodings, their sizes, the checksum, and a strict decoder. The cmocka test
 * (test-dirty-bitmap.c) and the libFuzzer harness (tests/fuzz/fuzz-dirty-bitmap.c) both check
 * the codec against it.
 */
#pragma once

#include <string.h>

#include "migd-dirty-bitmap.h"

static inline gsize
n_words_of(guint64 n_pages)
{
	return (n_pages + 63) / 64;
}

static inline void
bm_set(guint64 *w, guint64 page)
{
	w[page / 64] |= G_GUINT64_CONSTANT(1) << (page % 64);
}

static inline gboolean
bm_get(const guint64 *w, guint64 page)
{
	return (w[page / 64] >> (page % 64)) & 1;
}

static inline guint64
tail_mask(guint64 n_pages)
{
	return n_pages % 64 == 0 ? G_MAXUINT64 : (G_GUINT64_CONSTANT(1) << (n_pages % 64)) - 1;
}

/*
 * The runs found bit by bit, skipping whole words only where they continue the current
 * state; the three encodings are built from them.
 */
typedef struct {
	guint64 clean; /* clean pages before the dirty run */
	guint64 dirty;
} RefRun;

static inline GArray *
ref_runs(const guint64 *w, guint64 n_pages)
{
	GArray *runs = g_array_new(FALSE, FALSE, sizeof(RefRun));
	guint64 last_end = 0, start = 0;
	gboolean state = FALSE;

	for (guint64 p = 0; p < n_pages;) {
		if (p % 64 == 0 && p + 64 <= n_pages && w[p / 64] == (state ? G_MAXUINT64 : 0)) {
			p += 64;
			continue;
		}
		if (bm_get(w, p) != state) {
			state = !state;
			if (state) {
				start = p;
			} else {
				RefRun r = {start - last_end, p - start};
				g_array_append_val(runs, r);
				last_end = p;
			}
		}
		p++;
	}
	if (state) {
		RefRun r = {start - last_end, n_pages - start};
		g_array_append_val(runs, r);
	}
	return runs;
}

static inline gsize
vlen(guint64 v)
{
	gsize n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline void
put_varint(GByteArray *out, guint64 v)
{
	while (v >= 0x80) {
		guint8 b = (v & 0x7f) | 0x80;
		g_byte_array_append(out, &b, 1);
		v >>= 7;
	}
	{
		guint8 b = (guint8)v;
		g_byte_array_append(out, &b, 1);
	}
}

static inline GByteArray *
ref_encode(MigdDirtyEncoding enc, const guint64 *w, guint64 n_pages, GArray *runs)
{
	GByteArray *out = g_byte_array_new();

	if (enc == MIGD_DIRTY_ENCODING_RAW) {
		for (gsize i = 0; i < n_words_of(n_pages); i++) {
			guint64 x = w[i];
			guint8 b[8];
			if (i == n_words_of(n_pages) - 1)
				x &= tail_mask(n_pages);
			for (guint k = 0; k < 8; k++)
				b[k] = (x >> (8 * k)) & 0xff;
			g_byte_array_append(out, b, 8);
		}
		return out;
	}
	for (guint i = 0; i < runs->len; i++) {
		RefRun *r = &g_array_index(runs, RefRun, i);
		put_varint(out, r->clean);
		if (enc == MIGD_DIRTY_ENCODING_RUNS) {
			put_varint(out, r->dirty);
		} else if (r->dirty > 1) {
			/* (dirty - 1) gaps of 0 */
			guint old_len = out->len;
			g_byte_array_set_size(out, old_len + (guint)(r->dirty - 1));
			memset(out->data + old_len, 0, r->dirty - 1);
		}
	}
	return out;
}

static inline gsize
ref_size(MigdDirtyEncoding enc, guint64 n_pages, GArray *runs)
{
	gsize n = 0;

	if (enc == MIGD_DIRTY_ENCODING_RAW)
		return n_words_of(n_pages) * 8;
	for (guint i = 0; i < runs->len; i++) {
		RefRun *r = &g_array_index(runs, RefRun, i);
		n += vlen(r->clean);
		n += enc == MIGD_DIRTY_ENCODING_RUNS ? vlen(r->dirty) : r->dirty - 1;
	}
	return n;
}

static inline MigdDirtyEncoding
ref_best(guint64 n_pages, GArray *runs)
{
	gsize raw = ref_size(MIGD_DIRTY_ENCODING_RAW, n_pages, runs);
	gsize rle = ref_size(MIGD_DIRTY_ENCODING_RUNS, n_pages, runs);
	gsize sparse = ref_size(MIGD_DIRTY_ENCODING_SPARSE, n_pages, runs);

	if (sparse <= rle && sparse <= raw)
		return MIGD_DIRTY_ENCODING_SPARSE;
	if (rle <= raw)
		return MIGD_DIRTY_ENCODING_RUNS;
	return MIGD_DIRTY_ENCODING_RAW;
}

static inline guint64
ref_count(GArray *runs)
{
	guint64 n = 0;
	for (guint i = 0; i < runs->len; i++)
		n += g_array_index(runs, RefRun, i).dirty;
	return n;
}

static inline guint64
rotl(guint64 x, guint r)
{
	return (x << r) | (x >> (64 - r));
}

/* the checksum exactly as the wire format describes it */
static inline guint64
ref_checksum(const guint64 *w, guint64 n_pages)
{
	static const guint rot[8] = {1, 7, 12, 18, 23, 29, 34, 40};
	guint64 v[8], h = 0;

	for (guint j = 0; j < 8; j++)
		v[j] = (j + 1) * G_GUINT64_CONSTANT(0xC2B2AE3D27D4EB4F);
	for (gsize i = 0; i < n_words_of(n_pages); i++) {
		guint64 x = w[i];
		if (i == n_words_of(n_pages) - 1)
			x &= tail_mask(n_pages);
		v[i % 8] = rotl(v[i % 8] ^ x, 31) * G_GUINT64_CONSTANT(0x9E3779B185EBCA87);
	}
	for (guint j = 0; j < 8; j++)
		h += rotl(v[j], rot[j]);
	h ^= n_pages;
	h ^= h >> 33;
	h *= G_GUINT64_CONSTANT(0xFF51AFD7ED558CCD);
	h ^= h >> 33;
	h *= G_GUINT64_CONSTANT(0xC4CEB9FE1A85EC53);
	h ^= h >> 33;
	return h;
}

/*
 * One LEB128 varint at *@pos, bit by bit: FALSE when it is truncated, has a bit at or past
 * 2^64, or is not minimal (a last byte of 0x00 after other bytes).
 */
static inline gboolean
ref_get_varint(const guint8 *data, gsize len, gsize *pos, guint64 *value)
{
	guint64 v = 0;
	guint shift = 0;

	for (gsize n = 0;; n++) {
		guint8 b;

		if (*pos >= len)
			return FALSE;
		b = data[(*pos)++];
		for (guint k = 0; k < 7; k++, shift++) {
			if (((b >> k) & 1) == 0)
				continue;
			if (shift >= 64)
				return FALSE;
			v |= G_GUINT64_CONSTANT(1) << shift;
		}
		if ((b & 0x80) == 0) {
			if (b == 0 && n > 0)
				return FALSE;
			*value = v;
			return TRUE;
		}
	}
}

/*
 * Decodes a payload into @w (n_words_of(@n_pages) words, cleared here) and counts its dirty
 * pages, page by page, with every rule of the format; FALSE when the payload is invalid for
 * this encoding and page count (n_dirty and the checksum are the caller's to check).
 */
static inline gboolean
ref_decode(guint encoding, const guint8 *data, gsize len, guint64 n_pages, guint64 *w,
	   guint64 *n_dirty)
{
	gsize pos = 0;
	guint64 page = 0, count = 0;

	if (n_pages < 1 || n_pages > MIGD_DIRTY_MAX_CHUNK_PAGES)
		return FALSE;
	memset(w, 0, n_words_of(n_pages) * 8);
	if (encoding == MIGD_DIRTY_ENCODING_RAW) {
		if (len != n_words_of(n_pages) * 8)
			return FALSE;
		for (guint64 p = 0; p < len * 8; p++) {
			if (((data[p / 8] >> (p % 8)) & 1) == 0)
				continue;
			if (p >= n_pages)
				return FALSE;
			bm_set(w, p);
			count++;
		}
	} else if (encoding == MIGD_DIRTY_ENCODING_RUNS) {
		guint n_runs = 0;
		gboolean dirty = FALSE;

		while (pos < len) {
			guint64 run;

			if (!ref_get_varint(data, len, &pos, &run))
				return FALSE;
			if (run == 0 && n_runs > 0)
				return FALSE;
			if (run > n_pages - page)
				return FALSE;
			for (guint64 i = 0; dirty && i < run; i++) {
				bm_set(w, page + i);
				count++;
			}
			page += run;
			dirty = !dirty;
			n_runs++;
		}
		/* a last clean run must end the chunk; after a dirty one the rest is clean */
		if (n_runs % 2 == 1 && page != n_pages)
			return FALSE;
	} else if (encoding == MIGD_DIRTY_ENCODING_SPARSE) {
		while (pos < len) {
			guint64 gap;

			if (!ref_get_varint(data, len, &pos, &gap))
				return FALSE;
			/* the next page is page + gap (page is one past the previous dirty one) */
			if (gap >= n_pages - page)
				return FALSE;
			page += gap;
			bm_set(w, page);
			count++;
			page++;
		}
	} else {
		return FALSE;
	}
	*n_dirty = count;
	return TRUE;
}
