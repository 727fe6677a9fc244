/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty-bitmap codec's AVX2 kernels (migd-dirty-kernels.c): pass 1 by pieces, the SPARSE
 * varints, both at once for scattered pieces, and their tables. Empty where the kernels are not
 * chosen at run time (MIGD_DIRTY_DISPATCH: x86-64 built for the baseline ISA).
 */
#include "config.h"

#include "migd-dirty-kernels-private.h"

#ifdef MIGD_DIRTY_DISPATCH
/*
 * AVX2 (with BMI1/2): pass 1 by pieces, a block as two registers of four words. Each word's
 * previous word is the load one word earlier; the listed words of a block come from a table
 * of the 256 masks, stored whole; the counts are byte popcounts (a nibble table) summed per
 * block. Checksum lanes stay scalar, beside it.
 */
static guint32 bound_table[256][BLOCK]; /* mask -> the indices of its set bits */

static void
bound_table_init(void)
{
	for (guint mask = 0; mask < 256; mask++) {
		guint k = 0;

		for (guint j = 0; j < BLOCK; j++) {
			if (mask & (1u << j))
				bound_table[mask][k++] = j;
		}
	}
}

static AVX2_TARGET inline __m256i
popcount8_avx2(__m256i x)
{
	const __m256i nibble = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0,
						1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
	const __m256i low = _mm256_set1_epi8(0x0f);

	return _mm256_add_epi8(
	    _mm256_shuffle_epi8(nibble, _mm256_and_si256(x, low)),
	    _mm256_shuffle_epi8(nibble, _mm256_and_si256(_mm256_srli_epi16(x, 4), low)));
}

static AVX2_TARGET inline guint64
sum4_avx2(__m256i x)
{
	__m128i s = _mm_add_epi64(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));

	return (guint64)_mm_cvtsi128_si64(s) + (guint64)_mm_extract_epi64(s, 1);
}

/*
 * Pass 1 of whole blocks [b, n_blocks), b > 0. @skip: blocks without a boundary skip the counts
 * and the list, worth its branch only where nearly all blocks are such (few listed words).
 */
static AVX2_TARGET ALWAYS_INLINE gsize
scan_blocks_avx2(const guint64 *bitmap, gsize b, gsize n_blocks, guint32 *bounds, Pass1 *st,
		 gboolean skip, gboolean count_starts)
{
	__m256i starts = _mm256_setzero_si256(), unlisted_dirty = _mm256_setzero_si256();
	gsize m = 0, uniform_dirty = 0;
	guint64 n_mixed = 0;
	LANES_LOAD(st->v);

	for (; b < n_blocks; b++) {
		const guint64 *p = bitmap + b * BLOCK;
		__m256i x0 = _mm256_loadu_si256((const __m256i *)p);
		__m256i x1 = _mm256_loadu_si256((const __m256i *)(p + 4));
		__m256i q0 = _mm256_loadu_si256((const __m256i *)(p - 1));
		__m256i q1 = _mm256_loadu_si256((const __m256i *)(p + 3));
		/* each page's previous page */
		__m256i s0 = _mm256_or_si256(_mm256_slli_epi64(x0, 1), _mm256_srli_epi64(q0, 63));
		__m256i s1 = _mm256_or_si256(_mm256_slli_epi64(x1, 1), _mm256_srli_epi64(q1, 63));
		__m256i e0 = _mm256_cmpeq_epi64(x0, s0), e1 = _mm256_cmpeq_epi64(x1, s1);
		guint mask;

		LANES_STEP(p);
		if (skip && _mm256_movemask_epi8(_mm256_and_si256(e0, e1)) == -1) {
			/* all clean or all dirty, as the page before */
			uniform_dirty += p[0] & 1;
			continue;
		}
		/* an unlisted word is all clean or all dirty: its bit 0 says which */
		if (!skip)
			unlisted_dirty = _mm256_or_si256(
			    unlisted_dirty,
			    _mm256_or_si256(_mm256_and_si256(e0, x0), _mm256_and_si256(e1, x1)));
		mask = ~((guint)_mm256_movemask_pd(_mm256_castsi256_pd(e0)) |
			 ((guint)_mm256_movemask_pd(_mm256_castsi256_pd(e1)) << 4)) &
		       0xff;
		_mm256_storeu_si256(
		    (__m256i *)(bounds + m),
		    _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)bound_table[mask]),
				     _mm256_set1_epi32((int)(b * BLOCK))));
		m += __builtin_popcount(mask);
		n_mixed += POP8(p);
		if (count_starts)
			starts = _mm256_add_epi64(
			    starts,
			    _mm256_sad_epu8(
				_mm256_add_epi8(popcount8_avx2(_mm256_andnot_si256(s0, x0)),
						popcount8_avx2(_mm256_andnot_si256(s1, x1))),
				_mm256_setzero_si256()));
	}
	LANES_STORE(st->v);
	st->n_dirty += n_mixed + 64 * BLOCK * uniform_dirty;
	st->n_runs += sum4_avx2(starts);
	st->carry = bitmap[n_blocks * BLOCK - 1] >> 63;
	/* skipped blocks are not looked at: not known */
	st->dirty_unlisted = skip || !_mm256_testz_si256(unlisted_dirty, _mm256_set1_epi64x(1));
	return m;
}

/*
 * sparse_flush() with AVX2, 8 pages at a time: the gaps as 2-byte LEB128 (gaps below 2^14),
 * then the high bytes of the gaps below 128 dropped by a byte shuffle from a table of the 256
 * masks. A group with a longer gap goes the scalar way.
 */
static guint8 varint2_shuffle[256][16]; /* mask of the 2-byte gaps -> the bytes kept */

static void
varint2_shuffle_init(void)
{
	for (guint mask = 0; mask < 256; mask++) {
		guint k = 0;

		for (guint j = 0; j < 8; j++) {
			varint2_shuffle[mask][k++] = (guint8)(2 * j);
			if (mask & (1u << j))
				varint2_shuffle[mask][k++] = (guint8)(2 * j + 1);
		}
		for (; k < 16; k++)
			varint2_shuffle[mask][k] = 0x80;
	}
}

AVX2_TARGET void
migd_dirty_sparse_flush_avx2(Walk *w, const guint32 *batch, gsize n)
{
	const __m256i shift = _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6);
	guint8 *out = w->buf + w->len;
	guint32 next = w->next;
	guint64 runs = 0;
	gsize k = 0;

	for (; k + 8 <= n; k += 8) {
		__m256i p = _mm256_loadu_si256((const __m256i *)(batch + k));
		/* each page's previous page: next - 1, then p[0..6] */
		__m256i prev = _mm256_blend_epi32(_mm256_permutevar8x32_epi32(p, shift),
						  _mm256_set1_epi32((int)(next - 1)), 1);
		__m256i gap = _mm256_sub_epi32(_mm256_sub_epi32(p, prev), _mm256_set1_epi32(1));
		__m256i two = _mm256_cmpgt_epi32(gap, _mm256_set1_epi32(127));
		__m256i enc;
		__m128i enc16;
		guint mask;

		if (G_UNLIKELY(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(
				   gap, _mm256_set1_epi32((1 << 14) - 1)))) != 0)) {
			for (gsize j = k; j < k + 8; j++) {
				runs += batch[j] != next;
				out += put_varint28_short(out, batch[j] - next);
				next = batch[j] + 1;
			}
			continue;
		}
		runs += 8 - __builtin_popcount((guint)_mm256_movemask_ps(_mm256_castsi256_ps(
				_mm256_cmpeq_epi32(gap, _mm256_setzero_si256()))));
		/* gap = 128 h + l: l + 256 h, and the low byte's top bit when h > 0 */
		enc = _mm256_add_epi32(
		    _mm256_add_epi32(gap, _mm256_and_si256(gap, _mm256_set1_epi32(0x3f80))),
		    _mm256_and_si256(two, _mm256_set1_epi32(0x80)));
		enc16 =
		    _mm_packus_epi32(_mm256_castsi256_si128(enc), _mm256_extracti128_si256(enc, 1));
		mask = (guint)_mm256_movemask_ps(_mm256_castsi256_ps(two));
		_mm_storeu_si128(
		    (__m128i *)out,
		    _mm_shuffle_epi8(enc16,
				     _mm_loadu_si128((const __m128i *)varint2_shuffle[mask])));
		out += 8 + __builtin_popcount(mask);
		next = batch[k + 7] + 1;
	}
	for (; k < n; k++) {
		runs += batch[k] != next;
		out += put_varint28_short(out, batch[k] - next);
		next = batch[k] + 1;
	}
	w->next = next;
	w->len = out - w->buf;
	w->overflow = w->len > w->limit;
	w->n_items += n;
	w->n_runs += runs;
}

AVX2_TARGET gsize
migd_dirty_scan_piece_avx2(const guint64 *bitmap, gsize start, gsize end, gsize n_words,
			   guint64 last_mask, guint32 *bounds, Pass1 *st)
{
	gsize b = start / BLOCK, n_blocks = MIN(end / BLOCK, (n_words - 1) / BLOCK);
	gsize m = 0;
	gboolean dirty_unlisted = TRUE;

	if (b == 0 && n_blocks > 0) {
		/* the first block has no previous word to load */
		m = scan_piece_body(bitmap, 0, BLOCK, n_words, last_mask, bounds, st);
		b = 1;
	}
	if (b < n_blocks) {
		/* few listed words in the previous piece: most blocks have none */
		/* the run starts only for the first piece: the walks count the others' */
		if (start == 0)
			m += scan_blocks_avx2(bitmap, b, n_blocks, bounds + m, st, TRUE, TRUE);
		else if (st->last_listed * 64 < PIECE_WORDS)
			m += scan_blocks_avx2(bitmap, b, n_blocks, bounds + m, st, TRUE, FALSE);
		else {
			m += scan_blocks_avx2(bitmap, b, n_blocks, bounds + m, st, FALSE, FALSE);
			dirty_unlisted = st->dirty_unlisted;
		}
		b = n_blocks;
	}
	if (b * BLOCK < end) {
		m += scan_piece_body(bitmap, b * BLOCK, end, n_words, last_mask, bounds + m, st);
		dirty_unlisted = TRUE;
	}
	st->last_listed = m;
	st->dirty_unlisted = dirty_unlisted;
	return m;
}

AVX2_TARGET void
migd_dirty_sparse_piece_avx2(const guint64 *bitmap, gsize n_words, guint64 last_mask,
			     guint64 n_pages, const guint32 *bounds, gsize n_bounds, gboolean last,
			     gboolean dirty_unlisted, Walk *w)
{
	sparse_piece_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, last,
			  dirty_unlisted, w, TRUE);
}

AVX2_TARGET void
migd_dirty_runs_piece_avx2(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
			   const guint32 *bounds, gsize n_bounds, gboolean last, Walk *w)
{
	runs_piece_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, last, w);
}

/*
 * Pass 1 and the SPARSE walk of the whole piece [start, start + PIECE_WORDS) in one pass, for
 * a scattered bitmap where SPARSE is the only format still written: nearly half of the words
 * would be listed, and listing them, then reading them again costs more than flattening every
 * word as it is read (a clean word writes nothing). The count is the pages flattened; no list,
 * no run starts (only the first piece needs pass 1's). After an overflow only count and
 * checksum go on.
 */
AVX2_TARGET void
migd_dirty_sparse_fused_avx2(const guint64 *bitmap, gsize start, Pass1 *st, Walk *w)
{
	guint32 batch[BATCH + BLOCK * 64];
	gsize n = 0, end = start + PIECE_WORDS;
	guint64 count = 0;
	LANES_LOAD(st->v);

	if (w->top && w->next_word < start && !w->overflow) {
		/* words [next_word, start) are all dirty */
		sparse_fill(w, batch, &n, (guint32)(start * 64), FALSE);
	}
	for (gsize b = start; b < end; b += BLOCK) {
		const guint64 *p = bitmap + b;

		LANES_STEP(p);
		/* unrolled: the loop's own branch would cost more than its body */
		flatten_bmi(batch, &n, p[0], b), flatten_bmi(batch, &n, p[1], b + 1);
		flatten_bmi(batch, &n, p[2], b + 2), flatten_bmi(batch, &n, p[3], b + 3);
		flatten_bmi(batch, &n, p[4], b + 4), flatten_bmi(batch, &n, p[5], b + 5);
		flatten_bmi(batch, &n, p[6], b + 6), flatten_bmi(batch, &n, p[7], b + 7);
		if (n >= BATCH) {
			if (!w->overflow)
				migd_dirty_sparse_flush_avx2(w, batch, n);
			count += n;
			n = 0;
		}
	}
	if (!w->overflow)
		migd_dirty_sparse_flush_avx2(w, batch, n);
	count += n;
	LANES_STORE(st->v);
	st->n_dirty += count;
	st->carry = bitmap[end - 1] >> 63;
	/* the next pass 1 lists words as for a piece of many listed words */
	st->last_listed = PIECE_WORDS;
	st->dirty_unlisted = FALSE;
	w->next_word = end;
	w->top = st->carry;
}

void
migd_dirty_kernels_avx2_init(void)
{
	bound_table_init();
	varint2_shuffle_init();
}
#endif
