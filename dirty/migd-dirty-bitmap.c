/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty-bitmap codec (migd-dirty-bitmap.h): the wire formats, the checksum and the
 * encoder; the decoder that checks what a peer sent is migd-dirty-bitmap-decode.c.
 *
 * Wire formats (DirtyBitmapChunk.encoding, .data, .n_dirty, .checksum). A chunk covers
 * pages [0, n_pages), 1 <= n_pages <= 2^26; word i of the bitmap holds pages 64i .. 64i+63,
 * page 64i+b in bit b. Varints are unsigned LEB128: 7 bits per byte, least significant group
 * first, the top bit set on every byte but the last; a varint must be minimal (its last byte is
 * not 0x00 unless it is the only byte) and fit in 64 bits.
 *
 *   RAW (1)     the ceil(n_pages / 64) words, each as 8 bytes little-endian; bits at and after
 *               n_pages in the last word are zero.
 *   RUNS (2)    varints c0, d1, c1, d2, c2, ..., alternately the length of a clean run and of
 *               a dirty run, starting at page 0 with a clean run. c0 may be 0; every other run
 *               is at least 1. The runs cover at most n_pages pages; when the last varint is a
 *               dirty run the pages after it are clean (the encoder always leaves the final
 *               clean run out), and when it is a clean run the runs must end exactly at n_pages.
 *               No dirty pages: an empty payload (or the single varint n_pages).
 *   SPARSE (3)  one varint per dirty page, in increasing page order: the first dirty page's
 *               index, then for each next dirty page (index - previous index - 1). No dirty
 *               pages: an empty payload.
 *
 * n_dirty is the number of dirty pages. The sender picks the shortest payload; on a tie SPARSE
 * wins over RUNS and both over RAW. The receiver accepts any valid encoding.
 *
 * Checksum (migd_dirty_checksum, also DirtyBitmapChunk.checksum). Arithmetic on unsigned 64-bit
 * integers modulo 2^64; rotl(x, r) rotates x left by r bits; ^ is exclusive or.
 *
 *   M = 0x9E3779B185EBCA87
 *   v[j] = (j + 1) * 0xC2B2AE3D27D4EB4F                  for the 8 lanes j = 0 .. 7
 *   for i = 0 .. ceil(n_pages / 64) - 1:
 *       w = word i, bits at and after n_pages cleared
 *       v[i % 8] = rotl(v[i % 8] ^ w, 31) * M
 *   h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)
 *     + rotl(v[4], 23) + rotl(v[5], 29) + rotl(v[6], 34) + rotl(v[7], 40)
 *   h = h ^ n_pages
 *   h = h ^ (h >> 33); h = h * 0xFF51AFD7ED558CCD;       (MurmurHash3's fmix64)
 *   h = h ^ (h >> 33); h = h * 0xC4CEB9FE1A85EC53;
 *   h = h ^ (h >> 33)
 *   checksum = h
 *
 * Every step of a lane is a bijection of the lane for a given word, the sum is a bijection of
 * each lane given the others and fmix64 is a bijection, so any change confined to one word
 * always changes the checksum. The 8 lanes are independent chains, so the loop is bound by
 * loads and multiplier throughput rather than by the multiply's latency.
 *
 * Encoder (one chunk of up to 1 Mi words = 8 MiB), by pieces of 4096 words (32 KiB):
 *   pass 1 of a piece reads every word once, in blocks of 8 (one word per lane): the checksum
 *     lanes, the popcount, and the list of the words that hold a run boundary ("bounds";
 *     between two of them the words are all clean or all dirty); for the first piece also the
 *     run starts. A block of zeros or of ones costs only the lanes where few words are listed.
 *   pass 2 of the piece follows at once, while the piece is still in L1/L2 (a second pass over
 *     the whole chunk would read it from memory again): it reads only the listed words and
 *     writes the formats that may still win as the counts so far say, SPARSE (set bits, in
 *     batches of page numbers, then varints) and/or RUNS (varints as the boundaries are found),
 *     each into a buffer of the RAW size, and counts the runs. A format stops when it passes
 *     the RAW size, or is no longer written when it looks hopeless: SPARSE when n_dirty passes
 *     the RAW bytes seen or 2.5 runs (each with a piece's margin), RUNS when 2 * runs passes
 *     the RAW bytes seen or 1.5 * runs passes n_dirty. The AVX2 pass 1 also says whether a
 *     word it did not list is dirty; when none is, only the piece's first listed word may
 *     follow dirty words that are not listed, and the SPARSE walk tests only that one.
 *   scattered pieces (AVX2): once SPARSE is the only format written and the previous piece
 *     was 0.9 % to 3 % dirty, both passes of a piece are one (sparse_fused): every word is
 *     flattened as it is read, clean ones too, which costs less than listing nearly half of
 *     the words or more and reading them again.
 *   sizes: RUNS = sum vlen(c) + sum vlen(d) and SPARSE = (n_dirty - runs) + sum vlen(c), so
 *     SPARSE <= RUNS whenever n_dirty <= 2 * runs, and a complete RUNS walk gives SPARSE's
 *     exact size too. The smallest wins (ties: SPARSE, RUNS, RAW). When the winner, or a size
 *     the choice needs, was not written for every piece (a chunk whose density changes
 *     along the way), the chunk is encoded again in two whole passes (encode_whole: the same
 *     pass 1 over the chunk with a check for a certain RAW every 4096 words, then one walk).
 *   RAW on a little-endian host references the bitmap itself.
 *
 * The kernels (the loops over words, per instruction set, and which of them runs on this CPU)
 * are in migd-dirty-kernels.c and the files it names.
 */
#include "config.h"

#include <string.h>

#include "migd-dirty-bitmap-private.h"
#include "migd-dirty-bitmap.h"
#include "migd-dirty-kernels-private.h"
#include "migd-error.h"

/* dirty pages in the previous piece for which the next one is encoded by sparse_fused: 0.9 %
 * to 3 % dirty (below about 0.85 % the clean words it flattens cost more than the list) */
#define FUSED_MIN (PIECE_WORDS * 9 / 16)
#define FUSED_MAX (PIECE_WORDS * 2)

const gchar *
migd_dirty_encoding_to_string(MigdDirtyEncoding encoding)
{
	switch (encoding) {
	case MIGD_DIRTY_ENCODING_RAW:
		return "raw";
	case MIGD_DIRTY_ENCODING_RUNS:
		return "runs";
	case MIGD_DIRTY_ENCODING_SPARSE:
		return "sparse";
	}
	return "unknown";
}

void
migd_dirty_encoded_clear(MigdDirtyEncoded *encoded)
{
	g_clear_pointer(&encoded->data, g_bytes_unref);
	memset(encoded, 0, sizeof(*encoded));
}

static guint64
ck_final(const guint64 v[CK_LANES], guint64 n_pages)
{
	static const guint rot[CK_LANES] = {1, 7, 12, 18, 23, 29, 34, 40};
	guint64 h = 0;

	for (guint j = 0; j < CK_LANES; j++)
		h += rotl64(v[j], rot[j]);
	h ^= n_pages;
	h ^= h >> 33;
	h *= CK_FMIX1;
	h ^= h >> 33;
	h *= CK_FMIX2;
	h ^= h >> 33;
	return h;
}

guint64
migd_dirty_count_and_checksum(const guint64 *bitmap, guint64 n_pages, guint64 *count)
{
	guint64 v[CK_LANES];

	migd_dirty_kernels()->light(bitmap, words_for(n_pages), last_word_mask(n_pages), count, v);
	return ck_final(v, n_pages);
}

guint64
migd_dirty_checksum(const guint64 *bitmap, guint64 n_pages)
{
	guint64 count;

	g_return_val_if_fail(bitmap != NULL || n_pages == 0, 0);
	return migd_dirty_count_and_checksum(bitmap, n_pages, &count);
}

guint64
migd_dirty_count(const guint64 *bitmap, guint64 n_pages)
{
	g_return_val_if_fail(bitmap != NULL || n_pages == 0, 0);
	return migd_dirty_kernels()->count(bitmap, words_for(n_pages), last_word_mask(n_pages));
}

/* the payload of a RAW chunk: the words, little-endian, the tail cleared */
static GBytes *
encode_raw(const guint64 *bitmap, gsize n_words, guint64 last_mask)
{
	guint64 *copy;

	if (G_BYTE_ORDER == G_LITTLE_ENDIAN && (bitmap[n_words - 1] & ~last_mask) == 0)
		return g_bytes_new_static(bitmap, n_words * 8);
	copy = g_new(guint64, n_words);
	for (gsize i = 0; i < n_words; i++)
		copy[i] = GUINT64_TO_LE(i == n_words - 1 ? bitmap[i] & last_mask : bitmap[i]);
	return g_bytes_new_take(copy, n_words * 8);
}

static GBytes *
walk_take_bytes(Walk *w)
{
	if (w->len == 0) {
		g_free(w->buf);
		w->buf = NULL;
		return g_bytes_new(NULL, 0);
	}
	return g_bytes_new_take(g_realloc(g_steal_pointer(&w->buf), w->len), w->len);
}

static void
walk_init(Walk *w, gsize upper_bound, gsize limit)
{
	memset(w, 0, sizeof(*w));
	w->limit = limit;
	w->buf = g_malloc(MIN(upper_bound, limit) + SLACK);
}

/* the encoder in two passes over the whole chunk (see the top of the file) */
static void
encode_whole(const MigdDirtyKernels *k, const guint64 *bitmap, guint64 n_pages,
	     MigdDirtyEncoded *encoded)
{
	g_autofree guint32 *bounds = NULL;
	gsize n_words = words_for(n_pages), raw_bytes = n_words * 8;
	guint64 last_mask = last_word_mask(n_pages);
	ScanResult s;
	Walk w;

	bounds = g_new(guint32, n_words + BLOCK); /* AVX-512 stores 8 entries at a time */
	k->scan(bitmap, n_words, last_mask, raw_bytes, bounds, &s);

	encoded->n_pages = n_pages;
	encoded->n_dirty = s.n_dirty;
	encoded->checksum = ck_final(s.v, n_pages);

	if (s.n_dirty == 0) {
		encoded->encoding = MIGD_DIRTY_ENCODING_SPARSE;
		encoded->data = g_bytes_new(NULL, 0);
		return;
	}
	if (s.raw_certain)
		goto raw;

	if (s.n_dirty <= 2 * s.n_runs) {
		/* SPARSE <= RUNS: SPARSE unless it is longer than RAW */
		walk_init(&w, s.n_dirty + 3 * s.n_runs, raw_bytes);
		k->sparse(bitmap, n_words, last_mask, n_pages, bounds, s.n_bounds, &w);
		if (w.overflow) {
			g_free(w.buf);
			goto raw;
		}
		g_assert(w.n_items == s.n_dirty);
		encoded->encoding = MIGD_DIRTY_ENCODING_SPARSE;
		encoded->data = walk_take_bytes(&w);
		return;
	}

	/* RUNS, whose varint lengths also give SPARSE's exact length */
	walk_init(&w, 8 * s.n_runs, raw_bytes);
	k->runs(bitmap, n_words, last_mask, n_pages, bounds, s.n_bounds, &w);
	g_assert(w.n_items == 2 * s.n_runs);
	{
		gsize runs_len = w.len;
		gsize sparse_len = w.len_clean + (s.n_dirty - s.n_runs);

		if (sparse_len <= runs_len && sparse_len <= raw_bytes) {
			g_free(w.buf);
			walk_init(&w, sparse_len, sparse_len);
			k->sparse(bitmap, n_words, last_mask, n_pages, bounds, s.n_bounds, &w);
			g_assert(!w.overflow && w.len == sparse_len);
			encoded->encoding = MIGD_DIRTY_ENCODING_SPARSE;
			encoded->data = walk_take_bytes(&w);
			return;
		}
		if (runs_len <= raw_bytes) {
			g_assert(!w.overflow);
			encoded->encoding = MIGD_DIRTY_ENCODING_RUNS;
			encoded->data = walk_take_bytes(&w);
			return;
		}
		g_free(w.buf);
	}
raw:
	encoded->encoding = MIGD_DIRTY_ENCODING_RAW;
	encoded->data = encode_raw(bitmap, n_words, last_mask);
}

/* a format's walk in encode_pieces */
typedef enum {
	WALK_LIVE,   /* written for every piece so far */
	WALK_OVER,   /* longer than RAW: it cannot win */
	WALK_MISSED, /* a piece was not written: its bytes (maybe even its length) are unknown */
} WalkState;

/*
 * Pass 1 and pass 2 of the piece [start, end) (encode_pieces); @r: the runs up to the previous
 * piece (pass 1's for the first piece). FALSE when neither format can be written any more.
 */
static gboolean
encode_piece(const MigdDirtyKernels *k, const guint64 *bitmap, guint64 n_pages, gsize start,
	     gsize end, guint32 *bounds, Pass1 *st, Walk *sw, Walk *rw, WalkState *sparse,
	     WalkState *runs, guint64 *r)
{
	gsize n_words = words_for(n_pages), raw_bytes = n_words * 8;
	guint64 last_mask = last_word_mask(n_pages);
	gsize m = k->scan_piece(bitmap, start, end, n_words, last_mask, bounds, st);
	gboolean last = end == n_words;
	guint64 seen = end * 8; /* RAW bytes so far */
	guint64 n;

	/* the margins of a piece keep both while the counts are small; the runs are pass
	 * 1's for the first piece, then the walks' up to the previous piece */
	n = st->n_dirty;
	if (start == 0)
		*r = st->n_runs;
	if (*sparse == WALK_LIVE && (n > seen + PIECE_WORDS || 2 * n > 5 * *r + 2 * PIECE_WORDS))
		*sparse = WALK_MISSED;
	if (*runs == WALK_LIVE && (2 * *r > seen + PIECE_WORDS || 3 * *r > 2 * n + PIECE_WORDS / 2))
		*runs = WALK_MISSED;
	if (*sparse == WALK_MISSED && *runs == WALK_MISSED)
		return FALSE;
	if (*sparse == WALK_LIVE) {
		if (sw->buf == NULL)
			walk_init(sw, raw_bytes, raw_bytes);
		k->sparse_piece(bitmap, n_words, last_mask, n_pages, bounds, m, last,
				st->dirty_unlisted, sw);
		if (sw->overflow)
			*sparse = WALK_OVER;
	}
	if (*runs == WALK_LIVE) {
		if (rw->buf == NULL)
			walk_init(rw, raw_bytes, raw_bytes);
		k->runs_piece(bitmap, n_words, last_mask, n_pages, bounds, m, last, rw);
		if (rw->overflow)
			*runs = WALK_OVER;
	}
	return TRUE;
}

/*
 * The encoder by pieces: pass 1 and pass 2 of each piece in turn, writing the formats that may
 * still win, as the counts so far say (SPARSE can only beat RUNS near n_dirty <= 2 * runs, and
 * RUNS only above it; neither beats RAW past the RAW size). Returns FALSE, and leaves
 * @encoded alone, when the winner turns out to be a format that was not written for every
 * piece (a chunk whose density changes along the way): encode_whole then does it again.
 */
static gboolean
encode_pieces(const MigdDirtyKernels *k, const guint64 *bitmap, guint64 n_pages,
	      MigdDirtyEncoded *encoded)
{
	gsize n_words = words_for(n_pages), raw_bytes = n_words * 8;
	guint64 last_mask = last_word_mask(n_pages);
	guint32 bounds[PIECE_WORDS + BLOCK];
	Pass1 st = {.n_dirty = 0};
	Walk sw = {.buf = NULL}, rw = {.buf = NULL};
	WalkState sparse = WALK_LIVE, runs = WALK_LIVE;
	gsize sparse_len = G_MAXSIZE, runs_len = G_MAXSIZE;
	guint64 n, r = 0, prev_dirty = 0;
	gboolean known = TRUE, lost = FALSE;

	ck_init(st.v);
	for (gsize start = 0; start < n_words; start += PIECE_WORDS) {
		gsize end = MIN(start + PIECE_WORDS, n_words);
		gboolean last = end == n_words;
		guint64 n_before = st.n_dirty;

		if (k->sparse_fused != NULL && start > 0 && !last && sparse == WALK_LIVE &&
		    runs != WALK_LIVE && prev_dirty >= FUSED_MIN && prev_dirty <= FUSED_MAX) {
			/* scattered, SPARSE alone: both passes at once */
			k->sparse_fused(bitmap, start, &st, &sw);
			if (sw.overflow)
				sparse = WALK_OVER;
		} else if (!encode_piece(k, bitmap, n_pages, start, end, bounds, &st, &sw, &rw,
					 &sparse, &runs, &r)) {
			lost = TRUE;
			break;
		}
		prev_dirty = st.n_dirty - n_before;
		/* the runs so far, from a walk that saw every piece (a page 0 that is dirty
		 * starts a run that SPARSE writes as index 0, with no gap) */
		if (sparse == WALK_LIVE)
			r = sw.n_runs + (bitmap[0] & 1);
		else if (runs == WALK_LIVE)
			r = (rw.n_items + 1) / 2;
		else if (sparse != WALK_OVER || runs != WALK_OVER)
			lost = TRUE;
		if (sparse == WALK_LIVE && runs == WALK_LIVE)
			g_assert(sw.n_runs + (bitmap[0] & 1) == (rw.n_items + 1) / 2);
	}
	n = st.n_dirty;
	if (lost) {
		g_free(sw.buf);
		g_free(rw.buf);
		return FALSE;
	}

	/* the exact lengths, where they are known (G_MAXSIZE: longer than RAW) */
	if (sparse == WALK_LIVE) {
		g_assert(sw.n_items == n);
		sparse_len = sw.len;
	} else if (sparse == WALK_MISSED) {
		if (runs == WALK_LIVE)
			sparse_len = rw.len_clean + (n - r);
		else
			known = FALSE;
	}
	if (runs == WALK_LIVE) {
		g_assert(rw.n_items == 2 * r);
		runs_len = rw.len;
	} else if (runs == WALK_MISSED && n > 2 * r) {
		known = FALSE; /* when n <= 2 * r RUNS is not shorter than SPARSE: no matter */
	}
	if (known && n > 0 && sparse_len <= runs_len && sparse_len <= raw_bytes &&
	    sparse != WALK_LIVE)
		known = FALSE; /* SPARSE wins but was not written */
	if (!known) {
		g_free(sw.buf);
		g_free(rw.buf);
		return FALSE;
	}

	encoded->n_pages = n_pages;
	encoded->n_dirty = n;
	encoded->checksum = ck_final(st.v, n_pages);
	if (n == 0) {
		encoded->encoding = MIGD_DIRTY_ENCODING_SPARSE;
		encoded->data = g_bytes_new(NULL, 0);
		g_free(sw.buf);
		g_free(rw.buf);
	} else if (sparse_len <= runs_len && sparse_len <= raw_bytes) {
		encoded->encoding = MIGD_DIRTY_ENCODING_SPARSE;
		encoded->data = walk_take_bytes(&sw);
		g_free(rw.buf);
	} else if (runs_len <= raw_bytes) {
		encoded->encoding = MIGD_DIRTY_ENCODING_RUNS;
		encoded->data = walk_take_bytes(&rw);
		g_free(sw.buf);
	} else {
		encoded->encoding = MIGD_DIRTY_ENCODING_RAW;
		encoded->data = encode_raw(bitmap, n_words, last_mask);
		g_free(sw.buf);
		g_free(rw.buf);
	}
	return TRUE;
}

void
migd_dirty_encode(const guint64 *bitmap, guint64 n_pages, MigdDirtyEncoded *encoded)
{
	const MigdDirtyKernels *k = migd_dirty_kernels();

	g_return_if_fail(encoded != NULL);
	migd_dirty_encoded_clear(encoded);
	g_return_if_fail(bitmap != NULL);
	g_return_if_fail(n_pages >= 1 && n_pages <= MIGD_DIRTY_MAX_CHUNK_PAGES);

	/* one piece is in the cache for both passes anyway */
	if (k->scan_piece != NULL && words_for(n_pages) > PIECE_WORDS &&
	    encode_pieces(k, bitmap, n_pages, encoded))
		return;
	encode_whole(k, bitmap, n_pages, encoded);
}
