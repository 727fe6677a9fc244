/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty-bitmap codec's kernels (migd-dirty-kernels.c): what the encoder
 * (migd-dirty-bitmap.c) and the kernel files share. Internal to dirty/.
 *
 * A template header: the ALWAYS_INLINE bodies below are the loops that more than one kernel
 * file instantiates, each with its own target attribute (generic and POPCNT in
 * migd-dirty-kernels.c, AVX2 in migd-dirty-kernels-avx2.c, AVX-512 in
 * migd-dirty-kernels-avx512.c). They must be inlined into those functions to be compiled for
 * that instruction set, so they are static and here rather than called across files. The
 * inline SIMD steps they call when asked (flatten_bmi, flatten512) are here for the same
 * reason; the out-of-line ones live in their instruction set's file.
 */
#pragma once

#include <string.h>

#include <glib.h>

#include "migd-dirty-bitmap-private.h"

#if defined(__x86_64__) && !defined(__POPCNT__) && (defined(__GNUC__) || defined(__clang__))
/* x86-64 baseline: the hot loops also exist for POPCNT, AVX2 and AVX-512, chosen at run time
 * (migd-dirty-kernels.c) */
#define MIGD_DIRTY_DISPATCH 1
#include <immintrin.h>
#define POPCNT_TARGET __attribute__((target("popcnt")))
/* pass 1 by pieces, and the walks */
#define AVX2_TARGET __attribute__((target("popcnt,avx2,bmi,bmi2")))
/* pass 1, count and checksum */
#define AVX512_TARGET __attribute__((target("popcnt,avx512f,avx512dq,avx512vl,avx512vpopcntdq")))
/* and the SPARSE walk */
#define VBMI2_TARGET                                                                               \
	__attribute__((target("popcnt,avx512f,avx512dq,avx512vl,avx512vpopcntdq,avx512bw,"         \
			      "avx512vbmi2")))
#endif

#define CK_MUL	    G_GUINT64_CONSTANT(0x9E3779B185EBCA87)
#define CK_SEED	    G_GUINT64_CONSTANT(0xC2B2AE3D27D4EB4F)
#define CK_FMIX1    G_GUINT64_CONSTANT(0xFF51AFD7ED558CCD)
#define CK_FMIX2    G_GUINT64_CONSTANT(0xC4CEB9FE1A85EC53)
#define CK_LANES    8
#define BLOCK	    8			  /* words per block: one per checksum lane */
#define SEG_BLOCKS  512			  /* blocks between two checks for a certain RAW */
#define PIECE_WORDS (SEG_BLOCKS * BLOCK)  /* 32 KiB: both passes of a piece find it cached */
#define BATCH	    512			  /* page numbers extracted before they become varints */
#define BATCH_ROOM  (BATCH + 2 * 64)	  /* and the pages of two more words */
#define SLACK	    (4 * BATCH_ROOM + 64) /* bytes a flush may write past the limit */

#define ALWAYS_INLINE inline __attribute__((always_inline))

static inline guint64
rotl64(guint64 x, guint r)
{
	return (x << r) | (x >> (64 - r));
}

static inline guint64
ck_step(guint64 v, guint64 w)
{
	return rotl64(v ^ w, 31) * CK_MUL;
}

static inline void
ck_init(guint64 v[CK_LANES])
{
	for (guint j = 0; j < CK_LANES; j++)
		v[j] = (j + 1) * CK_SEED;
}

#define LANES_LOAD(v)                                                                              \
	guint64 v0 = (v)[0], v1 = (v)[1], v2 = (v)[2], v3 = (v)[3], v4 = (v)[4], v5 = (v)[5],      \
		v6 = (v)[6], v7 = (v)[7]
#define LANES_STORE(v)                                                                             \
	do {                                                                                       \
		(v)[0] = v0, (v)[1] = v1, (v)[2] = v2, (v)[3] = v3;                                \
		(v)[4] = v4, (v)[5] = v5, (v)[6] = v6, (v)[7] = v7;                                \
	} while (0)
#define LANES_STEP(p)                                                                              \
	do {                                                                                       \
		v0 = ck_step(v0, (p)[0]), v1 = ck_step(v1, (p)[1]);                                \
		v2 = ck_step(v2, (p)[2]), v3 = ck_step(v3, (p)[3]);                                \
		v4 = ck_step(v4, (p)[4]), v5 = ck_step(v5, (p)[5]);                                \
		v6 = ck_step(v6, (p)[6]), v7 = ck_step(v7, (p)[7]);                                \
	} while (0)
#define POP8(p)                                                                                    \
	((guint64)__builtin_popcountll((p)[0]) + __builtin_popcountll((p)[1]) +                    \
	 __builtin_popcountll((p)[2]) + __builtin_popcountll((p)[3]) +                             \
	 __builtin_popcountll((p)[4]) + __builtin_popcountll((p)[5]) +                             \
	 __builtin_popcountll((p)[6]) + __builtin_popcountll((p)[7]))

/*
 * Kernels: the loops over words, instantiated once per instruction set.
 */

/* the words after the last whole block, the last one masked: count and checksum */
static ALWAYS_INLINE void
light_tail(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 *count,
	   guint64 v[CK_LANES])
{
	for (gsize i = n_words - (n_words - 1) % BLOCK - 1; i < n_words; i++) {
		guint64 x = i == n_words - 1 ? bitmap[i] & last_mask : bitmap[i];
		v[i % CK_LANES] = ck_step(v[i % CK_LANES], x);
		*count += __builtin_popcountll(x);
	}
}

typedef struct {
	guint64 n_dirty;
	guint64 n_runs; /* dirty runs; not complete when raw_certain */
	guint64 v[CK_LANES];
	gsize n_bounds; /* words listed in bounds */
	gboolean raw_certain;
} ScanResult;

/* run starts in @x, whose previous page is @carry */
#define STARTS(x, carry) __builtin_popcountll((x) & ~(((x) << 1) | (carry)))
/* lists word @i when it holds a run boundary */
#define BOUND(x, carry, i)                                                                         \
	do {                                                                                       \
		bounds[m] = (guint32)(i);                                                          \
		m += (x) != (((x) << 1) | (carry));                                                \
	} while (0)

/* 1..4 bytes of LEB128 for @x < 2^28, written as 4 bytes; returns the length */
static ALWAYS_INLINE guint
put_varint28(guint8 *out, guint32 x)
{
	guint32 e =
	    (x & 0x7f) | ((x << 1) & 0x7f00) | ((x << 2) & 0x7f0000) | ((x << 3) & 0x7f000000);
	guint len = 1 + (x >= 1u << 7) + (x >= 1u << 14) + (x >= 1u << 21);

	e |= 0x808080u & ((1u << (8 * (len - 1))) - 1);
	e = GUINT32_TO_LE(e);
	memcpy(out, &e, 4);
	return len;
}

/* the same, quicker below 2^14 (SPARSE's gaps at any density where SPARSE wins) */
static ALWAYS_INLINE guint
put_varint28_short(guint8 *out, guint32 x)
{
	guint16 e;
	guint two;

	if (G_UNLIKELY(x >= 1u << 14))
		return put_varint28(out, x);
	two = x >= 1u << 7;
	e = GUINT16_TO_LE((x & 0x7f) | ((x << 1) & 0x7f00) | (two << 7));
	memcpy(out, &e, 2);
	return 1 + two;
}

/*
 * Appends the page numbers of the set bits of @x (word @i) to @buf[*n], branch-free for up to
 * two bits; @buf has room for 64 more.
 */
static ALWAYS_INLINE void
flatten(guint32 *buf, gsize *n, guint64 x, gsize i)
{
	const guint64 top = G_GUINT64_CONSTANT(1) << 63;
	guint32 base = (guint32)(i * 64);
	guint32 *o = buf + *n;
	guint cnt = __builtin_popcountll(x);

	o[0] = base + __builtin_ctzll(x | top);
	x &= x - 1;
	o[1] = base + __builtin_ctzll(x | top);
	x &= x - 1;
	if (G_UNLIKELY(cnt > 2)) {
		for (guint k = 2; x != 0; k++) {
			o[k] = base + __builtin_ctzll(x);
			x &= x - 1;
		}
	}
	*n += cnt;
}

typedef struct {
	guint8 *buf;	   /* at least MIN(upper bound, limit) + SLACK bytes */
	gsize limit;	   /* the output is only wanted up to this length */
	gsize len;	   /* bytes written (SPARSE), or the whole length (RUNS) */
	gboolean overflow; /* len passed limit */
	guint64 n_items;   /* dirty pages (SPARSE) or run boundaries (RUNS) seen */
	guint64 n_runs;	   /* SPARSE: the pages not right after the previous one */
	/* RUNS */
	gsize len_clean; /* bytes of the clean-run varints */
	guint32 last_end, run_start;
	gboolean in_run;
	/* SPARSE */
	guint32 next;	 /* the smallest page the next index may name */
	gsize next_word; /* the word after the last listed one (walks by pieces) */
	guint64 top;	 /* its last page: the state of the unlisted words after it */
} Walk;

static ALWAYS_INLINE void
sparse_flush(Walk *w, guint32 *batch, gsize *n)
{
	guint8 *out = w->buf + w->len;
	guint32 next = w->next;

	guint64 runs = 0;

	for (gsize k = 0; k < *n; k++) {
		runs += batch[k] != next;
		out += put_varint28_short(out, batch[k] - next);
		next = batch[k] + 1;
	}
	w->next = next;
	w->len = out - w->buf;
	w->overflow = w->len > w->limit;
	w->n_items += *n;
	w->n_runs += runs;
	*n = 0;
}

#ifdef MIGD_DIRTY_DISPATCH
/* flatten() with AVX-512 VBMI2: the set bits' positions compressed out of 0..63 */
static VBMI2_TARGET inline void
flatten512(guint32 *buf, gsize *n, guint64 x, gsize i)
{
	static const guint8 iota[64] = {
	    0,	1,  2,	3,  4,	5,  6,	7,  8,	9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
	    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
	    44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};
	__m512i bits = _mm512_maskz_compress_epi8(_cvtu64_mask64(x), _mm512_loadu_si512(iota));
	__m512i base = _mm512_set1_epi32((int)(i * 64));
	guint32 *o = buf + *n;
	guint cnt = __builtin_popcountll(x);

	_mm512_storeu_si512(
	    o, _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(bits)), base));
	if (G_UNLIKELY(cnt > 16)) {
		_mm512_storeu_si512(
		    o + 16, _mm512_add_epi32(
				_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(bits, 1)), base));
		_mm512_storeu_si512(
		    o + 32, _mm512_add_epi32(
				_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(bits, 2)), base));
		_mm512_storeu_si512(
		    o + 48, _mm512_add_epi32(
				_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(bits, 3)), base));
	}
	*n += cnt;
}

/* sparse_flush() with AVX-512 VBMI2 (migd-dirty-kernels-avx512.c) */
G_GNUC_INTERNAL void migd_dirty_sparse_flush512(Walk *w, guint32 *batch, gsize *n);
#endif

static ALWAYS_INLINE void
sparse_flush_any(Walk *w, guint32 *batch, gsize *n, gboolean simd)
{
#ifdef MIGD_DIRTY_DISPATCH
	if (simd) {
		migd_dirty_sparse_flush512(w, batch, n);
		return;
	}
#endif
	sparse_flush(w, batch, n);
}

static ALWAYS_INLINE void
flatten_any(guint32 *buf, gsize *n, guint64 x, gsize i, gboolean simd)
{
#ifdef MIGD_DIRTY_DISPATCH
	if (simd) {
		flatten512(buf, n, x, i);
		return;
	}
#endif
	flatten(buf, n, x, i);
}

/* dirty pages [w->next, end), all directly after the previous dirty page: one 0 byte each */
static ALWAYS_INLINE void
sparse_fill(Walk *w, guint32 *batch, gsize *n, guint32 end, gboolean simd)
{
	gsize bytes;

	sparse_flush_any(w, batch, n, simd);
	if (w->overflow)
		return;
	bytes = end - w->next;
	if (w->len + bytes > w->limit) {
		w->overflow = TRUE;
		return;
	}
	memset(w->buf + w->len, 0, bytes);
	w->len += bytes;
	w->n_items += bytes;
	w->next = end;
}

/*
 * SPARSE from the listed words; between two of them the words are all clean or all dirty, as
 * the bit before the next listed word says. Stops early on overflow.
 */
static ALWAYS_INLINE void
sparse_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
	    const guint32 *bounds, gsize n_bounds, Walk *w, gboolean simd)
{
	guint32 batch[BATCH_ROOM];
	gsize n = 0, next_word = 0;

	for (gsize m = 0; m < n_bounds; m++) {
		gsize i = bounds[m];
		guint64 x = bitmap[i];
		/* branch-free: whether i > next_word is a coin toss on scattered bitmaps */
		guint64 dirty_before = (bitmap[i - (i > 0)] >> 63) & (i > next_word);

		if (G_UNLIKELY(dirty_before)) {
			/* words [next_word, i) are all dirty */
			sparse_fill(w, batch, &n, (guint32)(i * 64), simd);
			if (w->overflow)
				return;
		}
		if (i == n_words - 1)
			x &= last_mask;
		flatten_any(batch, &n, x, i, simd);
		if (n >= BATCH) {
			sparse_flush_any(w, batch, &n, simd);
			if (w->overflow)
				return;
		}
		next_word = i + 1;
	}
	if (next_word < n_words && next_word > 0 && bitmap[next_word - 1] >> 63) {
		/* dirty to the end */
		sparse_fill(w, batch, &n, (guint32)n_pages, simd);
		if (w->overflow)
			return;
	}
	sparse_flush_any(w, batch, &n, simd);
}

static ALWAYS_INLINE void
runs_flush(Walk *w, guint32 *batch, gsize *n)
{
	guint8 *out = w->buf + (w->overflow ? 0 : w->len);
	gsize len_clean = 0, len_dirty = 0, k = 0;
	guint32 last_end = w->last_end, run_start = w->run_start;
	gboolean in_run = w->in_run;

	if (in_run && k < *n) {
		/* the end of the run the previous batch started */
		guint l = put_varint28(out, batch[k] - run_start);

		len_dirty += l;
		out += l;
		last_end = batch[k++];
		in_run = FALSE;
	}
	/* the rest alternate start, end: a pair is a clean run and a dirty run */
	for (; k + 1 < *n; k += 2) {
		guint32 start = batch[k], end = batch[k + 1];
		guint lc = put_varint28(out, start - last_end);
		guint ld = put_varint28(out + lc, end - start);

		len_clean += lc;
		len_dirty += ld;
		out += lc + ld;
		last_end = end;
	}
	if (k < *n) {
		guint l = put_varint28(out, batch[k] - last_end);

		len_clean += l;
		run_start = batch[k];
		in_run = TRUE;
	}
	w->len += len_clean + len_dirty;
	w->len_clean += len_clean;
	w->n_items += *n;
	w->last_end = last_end;
	w->run_start = run_start;
	w->in_run = in_run;
	/* past the limit the bytes are no longer wanted, only the lengths: rewrite the start */
	w->overflow = w->overflow || w->len > w->limit;
	*n = 0;
}

/* RUNS from the listed words; on overflow only the lengths go on */
static ALWAYS_INLINE void
runs_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
	  const guint32 *bounds, gsize n_bounds, Walk *w, gboolean simd)
{
	guint32 batch[BATCH_ROOM];
	gsize n = 0;

	for (gsize m = 0; m < n_bounds; m++) {
		gsize i = bounds[m];
		guint64 x = i == n_words - 1 ? bitmap[i] & last_mask : bitmap[i];
		guint64 carry = (bitmap[i - (i > 0)] >> 63) & (i > 0);

		flatten_any(batch, &n, x ^ ((x << 1) | carry), i, simd);
		if (n >= BATCH)
			runs_flush(w, batch, &n);
	}
	if (w->in_run ^ (n % 2 == 1)) {
		/* the bitmap ends dirty: the last run ends at n_pages */
		batch[n++] = (guint32)n_pages;
	}
	runs_flush(w, batch, &n);
}

/*
 * Encoding by pieces: pass 1 then pass 2 on PIECE_WORDS at a time, while the piece is still in
 * the cache, instead of each pass over the whole chunk (whose second read comes from memory).
 * Pass 2 writes the formats that may still win (see encode_pieces); the walks keep their state
 * in the Walk between pieces.
 */
typedef struct {
	guint64 v[CK_LANES];
	guint64 n_dirty, n_runs;
	guint64 carry;	   /* the last page of the previous piece */
	gsize last_listed; /* words listed in the previous piece */
	/* FALSE: every word of the piece that is not listed is clean (set by the AVX2 pass 1,
	 * read by its SPARSE walk; TRUE when not known) */
	gboolean dirty_unlisted;
} Pass1;

/* pass 1 so far: what scan_blocks() and scan_words() carry from one call to the next */
typedef struct {
	guint64 v[CK_LANES];
	guint64 n_dirty, n_runs;
	guint64 carry; /* the last page before the next word */
	gsize m;       /* words listed in bounds */
} ScanCursor;

/*
 * Pass 1 of blocks [b, n_blocks) of whole words: the checksum lanes, the count, the run starts
 * and the list of the words that hold a run boundary (between two of them the words are all
 * clean or all dirty), appended to @bounds.
 */
static ALWAYS_INLINE void
scan_blocks(const guint64 *bitmap, gsize b, gsize n_blocks, guint32 *bounds, ScanCursor *c)
{
	guint64 n = c->n_dirty, r = c->n_runs, carry = c->carry;
	gsize m = c->m;
	LANES_LOAD(c->v);

	for (; b < n_blocks; b++) {
		const guint64 *p = bitmap + b * BLOCK;
		gsize i = b * BLOCK;
		guint64 w0 = p[0], w1 = p[1], w2 = p[2], w3 = p[3];
		guint64 w4 = p[4], w5 = p[5], w6 = p[6], w7 = p[7];
		guint64 any = (w0 | w1) | (w2 | w3) | (w4 | w5) | (w6 | w7);
		guint64 all = (w0 & w1) & (w2 & w3) & (w4 & w5) & (w6 & w7);

		LANES_STEP(p);
		if (any == 0) {
			/* a dirty run may end at the block's first page */
			bounds[m] = (guint32)i;
			m += carry;
			carry = 0;
			continue;
		}
		if (all == ALL_ONES) {
			/* a dirty run may start at the block's first page */
			bounds[m] = (guint32)i;
			m += carry ^ 1;
			r += carry ^ 1;
			n += 64 * BLOCK;
			carry = 1;
			continue;
		}
		n += POP8(p);
		r += STARTS(w0, carry) + STARTS(w1, w0 >> 63) + STARTS(w2, w1 >> 63) +
		     STARTS(w3, w2 >> 63) + STARTS(w4, w3 >> 63) + STARTS(w5, w4 >> 63) +
		     STARTS(w6, w5 >> 63) + STARTS(w7, w6 >> 63);
		BOUND(w0, carry, i);
		BOUND(w1, w0 >> 63, i + 1);
		BOUND(w2, w1 >> 63, i + 2);
		BOUND(w3, w2 >> 63, i + 3);
		BOUND(w4, w3 >> 63, i + 4);
		BOUND(w5, w4 >> 63, i + 5);
		BOUND(w6, w5 >> 63, i + 6);
		BOUND(w7, w6 >> 63, i + 7);
		carry = w7 >> 63;
	}
	LANES_STORE(c->v);
	c->n_dirty = n;
	c->n_runs = r;
	c->carry = carry;
	c->m = m;
}

/* the same for words [start, end) one at a time, the chunk's last word (@n_words - 1) masked */
static ALWAYS_INLINE void
scan_words(const guint64 *bitmap, gsize start, gsize end, gsize n_words, guint64 last_mask,
	   guint32 *bounds, ScanCursor *c)
{
	guint64 carry = c->carry;
	gsize m = c->m;

	for (gsize i = start; i < end; i++) {
		guint64 x = i == n_words - 1 ? bitmap[i] & last_mask : bitmap[i];

		c->v[i % CK_LANES] = ck_step(c->v[i % CK_LANES], x);
		c->n_dirty += __builtin_popcountll(x);
		c->n_runs += STARTS(x, carry);
		BOUND(x, carry, i);
		carry = x >> 63;
	}
	c->carry = carry;
	c->m = m;
}

/* pass 1 of words [start, end): start is a multiple of BLOCK, end too unless it is n_words */
static ALWAYS_INLINE gsize
scan_piece_body(const guint64 *bitmap, gsize start, gsize end, gsize n_words, guint64 last_mask,
		guint32 *bounds, Pass1 *st)
{
	gsize n_blocks = MIN(end / BLOCK, (n_words - 1) / BLOCK);
	ScanCursor c = {.n_dirty = st->n_dirty, .n_runs = st->n_runs, .carry = st->carry};

	memcpy(c.v, st->v, sizeof(c.v));
	scan_blocks(bitmap, start / BLOCK, n_blocks, bounds, &c);
	scan_words(bitmap, MAX(start, n_blocks * BLOCK), end, n_words, last_mask, bounds, &c);
	memcpy(st->v, c.v, sizeof(c.v));
	st->n_dirty = c.n_dirty;
	st->n_runs = c.n_runs;
	st->carry = c.carry;
	return c.m;
}

/*
 * SPARSE of one piece's listed words (sparse_body by pieces); @last: the chunk's last piece.
 * The words between two listed ones repeat the last page of the first, so no word but the
 * listed ones is read, and only the chunk's last word needs its mask.
 */
#ifdef MIGD_DIRTY_DISPATCH
/* sparse_flush() with AVX2 (migd-dirty-kernels-avx2.c) */
G_GNUC_INTERNAL void migd_dirty_sparse_flush_avx2(Walk *w, const guint32 *batch, gsize n);
#endif

/* the batch's count stays a local that no call sees: a register, not memory */
static ALWAYS_INLINE void
sparse_piece_flush(Walk *w, guint32 *batch, gsize *n, gboolean avx2)
{
#ifdef MIGD_DIRTY_DISPATCH
	if (avx2) {
		migd_dirty_sparse_flush_avx2(w, batch, *n);
		*n = 0;
		return;
	}
#endif
	sparse_flush(w, batch, n);
}

/* one listed word of a SPARSE piece walk; FALSE once the output passed its limit */
static ALWAYS_INLINE gboolean
sparse_piece_word(Walk *w, guint32 *batch, gsize *n, gsize *next_word, guint64 *top, guint64 x,
		  gsize i, gboolean avx2)
{
	if (G_UNLIKELY(*top & (i > *next_word))) {
		/* words [next_word, i) are all dirty */
		if (*n > 0)
			sparse_piece_flush(w, batch, n, avx2);
		sparse_fill(w, batch, n, (guint32)(i * 64), FALSE);
		if (w->overflow)
			return FALSE;
	}
	flatten(batch, n, x, i);
	*next_word = i + 1;
	*top = x >> 63;
	if (*n >= BATCH) {
		sparse_piece_flush(w, batch, n, avx2);
		if (w->overflow)
			return FALSE;
	}
	return TRUE;
}

#ifdef MIGD_DIRTY_DISPATCH
/* flatten() with BMI's TZCNT, which gives 64 for 0: no bit to OR in for the entries past cnt */
static AVX2_TARGET inline void
flatten_bmi(guint32 *buf, gsize *n, guint64 x, gsize i)
{
	guint32 base = (guint32)(i * 64);
	guint32 *o = buf + *n;
	guint cnt = __builtin_popcountll(x);

	o[0] = base + (guint32)_tzcnt_u64(x);
	x = _blsr_u64(x);
	o[1] = base + (guint32)_tzcnt_u64(x);
	if (G_UNLIKELY(cnt > 2)) {
		x = _blsr_u64(x);
		for (guint k = 2; x != 0; k++) {
			o[k] = base + (guint32)_tzcnt_u64(x);
			x = _blsr_u64(x);
		}
	}
	*n += cnt;
}
#endif

static ALWAYS_INLINE void
flatten_fast(guint32 *buf, gsize *n, guint64 x, gsize i, gboolean avx2)
{
#ifdef MIGD_DIRTY_DISPATCH
	if (avx2) {
		flatten_bmi(buf, n, x, i);
		return;
	}
#endif
	flatten(buf, n, x, i);
}

static ALWAYS_INLINE void
sparse_piece_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
		  const guint32 *bounds, gsize n_bounds, gboolean last, gboolean dirty_unlisted,
		  Walk *w, gboolean avx2)
{
	guint32 batch[BATCH_ROOM];
	gboolean last_listed = last && n_bounds > 0 && bounds[n_bounds - 1] == n_words - 1;
	gsize n = 0, nb = n_bounds - last_listed, next_word = w->next_word, m = 0;
	guint64 top = w->top;

	if (!dirty_unlisted && nb > 0) {
		/* only the first listed word may follow dirty words (of the previous piece) */
		if (!sparse_piece_word(w, batch, &n, &next_word, &top, bitmap[bounds[0]], bounds[0],
				       avx2))
			return;
		/* two words a step: one check of the batch */
		for (m = 1; m + 1 < nb; m += 2) {
			gsize i = bounds[m], j = bounds[m + 1];

			flatten_fast(batch, &n, bitmap[i], i, avx2);
			flatten_fast(batch, &n, bitmap[j], j, avx2);
			if (n >= BATCH) {
				sparse_piece_flush(w, batch, &n, avx2);
				if (w->overflow)
					return;
			}
		}
		if (m < nb) {
			gsize i = bounds[m];

			flatten_fast(batch, &n, bitmap[i], i, avx2);
			if (n >= BATCH) {
				sparse_piece_flush(w, batch, &n, avx2);
				if (w->overflow)
					return;
			}
		}
		next_word = bounds[nb - 1] + 1;
		top = bitmap[bounds[nb - 1]] >> 63;
		m = nb;
	}
	for (; m < nb; m++) {
		gsize i = bounds[m];

		if (!sparse_piece_word(w, batch, &n, &next_word, &top, bitmap[i], i, avx2))
			return;
	}
	if (last_listed && !sparse_piece_word(w, batch, &n, &next_word, &top,
					      bitmap[n_words - 1] & last_mask, n_words - 1, avx2))
		return;
	w->next_word = next_word;
	w->top = top;
	if (last && next_word < n_words && top) {
		/* dirty to the end */
		if (n > 0)
			sparse_piece_flush(w, batch, &n, avx2);
		sparse_fill(w, batch, &n, (guint32)n_pages, FALSE);
		if (w->overflow)
			return;
	}
	sparse_piece_flush(w, batch, &n, avx2);
}

typedef struct {
	guint8 *out;
	gsize len, len_clean; /* all varint bytes, those of the clean runs */
	guint32 mark;	      /* the page the next varint counts from */
	guint32 in_run;	      /* 1: the next varint is a dirty run's */
} RunsCursor;

/* the varints of the run boundaries in @t (at least one) of word @i */
static ALWAYS_INLINE void
runs_word(RunsCursor *c, guint64 t, gsize i)
{
	guint32 base = (guint32)(i * 64);

	do {
		guint32 p = base + __builtin_ctzll(t);
		guint l = put_varint28_short(c->out, p - c->mark);

		c->len += l;
		c->len_clean += l & (c->in_run - 1); /* 0 - 1: all ones for a clean run */
		c->in_run ^= 1;
		c->mark = p;
		c->out += l;
		t &= t - 1;
	} while (t != 0);
}

static ALWAYS_INLINE void
runs_piece_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
		const guint32 *bounds, gsize n_bounds, gboolean last, Walk *w)
{
	gboolean last_listed = last && n_bounds > 0 && bounds[n_bounds - 1] == n_words - 1;
	gsize nb = n_bounds - last_listed;
	guint8 *out_limit = w->buf + w->limit;
	RunsCursor c = {
	    .out = w->buf + (w->overflow ? 0 : w->len),
	    .mark = w->in_run ? w->run_start : w->last_end,
	    .in_run = w->in_run,
	};
	gboolean overflow = w->overflow;
	guint64 top = w->top, items = 0;

	for (gsize m = 0; m < nb; m++) {
		gsize i = bounds[m];
		guint64 x = bitmap[i];
		guint64 t = x ^ ((x << 1) | top);

		top = x >> 63;
		items += __builtin_popcountll(t);
		runs_word(&c, t, i);
		if (G_UNLIKELY(c.out > out_limit)) {
			overflow = TRUE;
			c.out = w->buf;
		}
	}
	if (last_listed) {
		guint64 x = bitmap[n_words - 1] & last_mask;
		guint64 t = x ^ ((x << 1) | top);

		top = x >> 63;
		items += __builtin_popcountll(t);
		runs_word(&c, t, n_words - 1);
	}
	if (last && c.in_run) {
		/* the bitmap ends dirty: the last run ends at n_pages */
		c.len += put_varint28(c.out, (guint32)n_pages - c.mark);
		c.mark = (guint32)n_pages;
		c.in_run = 0;
		items++;
	}
	if (c.in_run)
		w->run_start = c.mark;
	else
		w->last_end = c.mark;
	w->in_run = c.in_run;
	w->top = top;
	w->len += c.len;
	w->len_clean += c.len_clean;
	w->n_items += items;
	w->overflow = overflow || w->len > w->limit;
}

typedef struct {
	guint64 (*count)(const guint64 *bitmap, gsize n_words, guint64 last_mask);
	void (*light)(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 *count,
		      guint64 v[CK_LANES]);
	void (*scan)(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 raw_bytes,
		     guint32 *bounds, ScanResult *res);
	void (*sparse)(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
		       const guint32 *bounds, gsize n_bounds, Walk *w);
	void (*runs)(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
		     const guint32 *bounds, gsize n_bounds, Walk *w);
	/* by pieces (encode_pieces); NULL: the kernels only encode by whole passes */
	gsize (*scan_piece)(const guint64 *bitmap, gsize start, gsize end, gsize n_words,
			    guint64 last_mask, guint32 *bounds, Pass1 *st);
	void (*sparse_piece)(const guint64 *bitmap, gsize n_words, guint64 last_mask,
			     guint64 n_pages, const guint32 *bounds, gsize n_bounds, gboolean last,
			     gboolean dirty_unlisted, Walk *w);
	void (*runs_piece)(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
			   const guint32 *bounds, gsize n_bounds, gboolean last, Walk *w);
	/* both passes of a whole piece at once, SPARSE only; NULL: not in these kernels */
	void (*sparse_fused)(const guint64 *bitmap, gsize start, Pass1 *st, Walk *w);
} MigdDirtyKernels; /* one choice of kernels (migd_dirty_kernels), the encoder's only way in */

/*
 * The kernels of each instruction set that the tables in migd-dirty-kernels.c take from the
 * ISA files. Hidden: calls within their own file stay direct, as when the code was one file.
 */
#ifdef MIGD_DIRTY_DISPATCH
/* migd-dirty-kernels-avx2.c; _init fills its tables, once, before any of them runs */
G_GNUC_INTERNAL void migd_dirty_kernels_avx2_init(void);
G_GNUC_INTERNAL gsize migd_dirty_scan_piece_avx2(const guint64 *bitmap, gsize start, gsize end,
						 gsize n_words, guint64 last_mask, guint32 *bounds,
						 Pass1 *st);
G_GNUC_INTERNAL void migd_dirty_sparse_piece_avx2(const guint64 *bitmap, gsize n_words,
						  guint64 last_mask, guint64 n_pages,
						  const guint32 *bounds, gsize n_bounds,
						  gboolean last, gboolean dirty_unlisted, Walk *w);
G_GNUC_INTERNAL void migd_dirty_runs_piece_avx2(const guint64 *bitmap, gsize n_words,
						guint64 last_mask, guint64 n_pages,
						const guint32 *bounds, gsize n_bounds,
						gboolean last, Walk *w);
G_GNUC_INTERNAL void migd_dirty_sparse_fused_avx2(const guint64 *bitmap, gsize start, Pass1 *st,
						  Walk *w);
/* migd-dirty-kernels-avx512.c */
G_GNUC_INTERNAL void migd_dirty_light_avx512(const guint64 *bitmap, gsize n_words,
					     guint64 last_mask, guint64 *count,
					     guint64 v[CK_LANES]);
G_GNUC_INTERNAL void migd_dirty_scan_avx512(const guint64 *bitmap, gsize n_words, guint64 last_mask,
					    guint64 raw_bytes, guint32 *bounds, ScanResult *res);
G_GNUC_INTERNAL void migd_dirty_sparse_vbmi2(const guint64 *bitmap, gsize n_words,
					     guint64 last_mask, guint64 n_pages,
					     const guint32 *bounds, gsize n_bounds, Walk *w);
G_GNUC_INTERNAL void migd_dirty_runs_vbmi2(const guint64 *bitmap, gsize n_words, guint64 last_mask,
					   guint64 n_pages, const guint32 *bounds, gsize n_bounds,
					   Walk *w);
#endif

/* the kernels for this CPU (migd-dirty-kernels.c) */
G_GNUC_INTERNAL const MigdDirtyKernels *migd_dirty_kernels(void);
