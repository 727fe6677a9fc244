/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty-bitmap codec's AVX-512 kernels (migd-dirty-kernels.c): count, checksum and the
 * whole-chunk pass 1, and with VBMI2 the whole-chunk walks. Empty where the kernels are not
 * chosen at run time (MIGD_DIRTY_DISPATCH: x86-64 built for the baseline ISA).
 */
#include "config.h"

#include "migd-dirty-kernels-private.h"

#ifdef MIGD_DIRTY_DISPATCH
/*
 * AVX-512 (F, DQ, VL, VPOPCNTDQ): count, checksum and pass 1 eight words (one block, the eight
 * lanes) per step. The listed words are compressed in a register and stored whole, then the
 * list advances by the mask's popcount: a masked compress to memory is microcoded on Zen 4.
 * The walks stay scalar.
 */
static AVX512_TARGET inline __m512i
ck_step512(__m512i v, __m512i x)
{
	return _mm512_mullo_epi64(_mm512_rol_epi64(_mm512_xor_si512(v, x), 31),
				  _mm512_set1_epi64((long long)CK_MUL));
}

AVX512_TARGET void
migd_dirty_light_avx512(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 *count,
			guint64 v[CK_LANES])
{
	__m512i lanes, pop = _mm512_setzero_si512();
	gsize n_blocks;

	*count = 0;
	ck_init(v);
	if (n_words == 0)
		return;
	n_blocks = (n_words - 1) / BLOCK;
	lanes = _mm512_loadu_si512(v);
	for (gsize b = 0; b < n_blocks; b++) {
		__m512i x = _mm512_loadu_si512(bitmap + b * BLOCK);

		lanes = ck_step512(lanes, x);
		pop = _mm512_add_epi64(pop, _mm512_popcnt_epi64(x));
	}
	_mm512_storeu_si512(v, lanes);
	*count = _mm512_reduce_add_epi64(pop);
	light_tail(bitmap, n_words, last_mask, count, v);
}

AVX512_TARGET void
migd_dirty_scan_avx512(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 raw_bytes,
		       guint32 *bounds, ScanResult *res)
{
	gsize n_blocks = (n_words - 1) / BLOCK;
	gsize m = 0, b = 0;
	guint64 n = 0, r = 0, carry;
	gboolean certain = FALSE;
	guint64 v[CK_LANES];
	__m512i lanes, pop = _mm512_setzero_si512(), starts = _mm512_setzero_si512();
	__m512i before_block = _mm512_setzero_si512();
	__m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);

	ck_init(v);
	lanes = _mm512_loadu_si512(v);
	while (b < n_blocks && !certain) {
		gsize seg_end = MIN(n_blocks, b + SEG_BLOCKS);

		for (; b < seg_end; b++) {
			__m512i x = _mm512_loadu_si512(bitmap + b * BLOCK);
			/* each word's previous word: the last of the previous block, then x[0..6]
			 */
			__m512i prev_word = _mm512_alignr_epi64(x, before_block, 7);
			__m512i shifted = _mm512_or_si512(_mm512_slli_epi64(x, 1),
							  _mm512_srli_epi64(prev_word, 63));
			__mmask8 bound = _mm512_cmpneq_epi64_mask(x, shifted);

			lanes = ck_step512(lanes, x);
			pop = _mm512_add_epi64(pop, _mm512_popcnt_epi64(x));
			starts = _mm512_add_epi64(
			    starts, _mm512_popcnt_epi64(_mm512_andnot_si512(shifted, x)));
			_mm256_storeu_si256((__m256i *)(bounds + m),
					    _mm256_maskz_compress_epi32(bound, index));
			m += __builtin_popcount(bound);
			index = _mm256_add_epi32(index, _mm256_set1_epi32(BLOCK));
			before_block = x;
		}
		n = _mm512_reduce_add_epi64(pop);
		r = _mm512_reduce_add_epi64(starts);
		certain = n > raw_bytes && 2 * r > raw_bytes;
	}
	for (; b < n_blocks; b++) {
		__m512i x = _mm512_loadu_si512(bitmap + b * BLOCK);

		lanes = ck_step512(lanes, x);
		pop = _mm512_add_epi64(pop, _mm512_popcnt_epi64(x));
	}
	_mm512_storeu_si512(v, lanes);
	n = _mm512_reduce_add_epi64(pop);
	carry = n_blocks > 0 ? bitmap[n_blocks * BLOCK - 1] >> 63 : 0;
	for (gsize i = n_blocks * BLOCK; i < n_words; i++) {
		guint64 x = i == n_words - 1 ? bitmap[i] & last_mask : bitmap[i];

		v[i % CK_LANES] = ck_step(v[i % CK_LANES], x);
		n += __builtin_popcountll(x);
		r += STARTS(x, carry);
		BOUND(x, carry, i);
		carry = x >> 63;
	}
	res->n_dirty = n;
	res->n_runs = r;
	memcpy(res->v, v, sizeof(v));
	res->n_bounds = m;
	res->raw_certain = certain || (n > raw_bytes && 2 * r > raw_bytes);
}

/*
 * sparse_flush() with AVX-512 VBMI2, 16 pages at a time: the gaps as 2-byte LEB128 (gaps below
 * 2^14), then the high bytes of the gaps below 128 compressed away. A group with a longer gap
 * goes the scalar way.
 */
VBMI2_TARGET void
migd_dirty_sparse_flush512(Walk *w, guint32 *batch, gsize *n)
{
	guint8 *out = w->buf + w->len;
	guint32 next = w->next;

	for (gsize k = 0; k < *n; k += 16) {
		guint cnt = MIN(16, *n - k);
		__mmask16 valid = (__mmask16)(cnt == 16 ? 0xffff : (1u << cnt) - 1);
		__mmask32 bytes = cnt == 16 ? 0xffffffffu : (1u << (2 * cnt)) - 1;
		__m512i p = _mm512_maskz_loadu_epi32(valid, batch + k);
		/* each page's previous page: next - 1, then p[0..14] */
		__m512i prev = _mm512_alignr_epi32(p, _mm512_set1_epi32((int)(next - 1)), 15);
		__m512i gap = _mm512_sub_epi32(_mm512_sub_epi32(p, prev), _mm512_set1_epi32(1));
		__mmask16 two, big;
		__m512i lo, enc;
		__m256i enc16;
		__mmask32 keep;

		big = _mm512_mask_cmpge_epu32_mask(valid, gap, _mm512_set1_epi32(1 << 14));
		if (G_UNLIKELY(big != 0)) {
			for (gsize j = k; j < k + cnt; j++) {
				out += put_varint28_short(out, batch[j] - next);
				next = batch[j] + 1;
			}
			continue;
		}
		two = _mm512_cmpge_epu32_mask(gap, _mm512_set1_epi32(1 << 7));
		lo = _mm512_and_si512(gap, _mm512_set1_epi32(0x7f));
		lo = _mm512_mask_or_epi32(lo, two, lo, _mm512_set1_epi32(0x80));
		enc = _mm512_or_si512(lo, _mm512_slli_epi32(_mm512_srli_epi32(gap, 7), 8));
		enc16 = _mm512_cvtepi32_epi16(enc);
		/* every low byte, and the high bytes that are not 0 (the gaps >= 128) */
		keep = (_mm256_test_epi8_mask(enc16, enc16) | 0x55555555u) & bytes;
		_mm256_storeu_si256((__m256i *)out, _mm256_maskz_compress_epi8(keep, enc16));
		out += __builtin_popcount(keep);
		next = batch[k + cnt - 1] + 1;
	}
	w->next = next;
	w->len = out - w->buf;
	w->overflow = w->len > w->limit;
	w->n_items += *n;
	*n = 0;
}

/* the whole-chunk walks with VBMI2: flatten512, migd_dirty_sparse_flush512 */
VBMI2_TARGET void
migd_dirty_sparse_vbmi2(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
			const guint32 *bounds, gsize n_bounds, Walk *w)
{
	sparse_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, w, TRUE);
}

VBMI2_TARGET void
migd_dirty_runs_vbmi2(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
		      const guint32 *bounds, gsize n_bounds, Walk *w)
{
	runs_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, w, TRUE);
}
#endif
