/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty-bitmap codec's kernels: the loops over words that the encoder (migd-dirty-bitmap.c)
 * runs, compiled once per instruction set, and the choice of them at run time. Their bodies are
 * in migd-dirty-kernels-private.h; this file instantiates them for the baseline ISA and POPCNT,
 * migd-dirty-kernels-avx2.c and migd-dirty-kernels-avx512.c hold the SIMD ones.
 *
 * On x86-64 the loops are compiled for the baseline ISA, for POPCNT, for AVX2 and for AVX-512,
 * and the best the CPU has is chosen at run time: AVX2 (with BMI1/2) for pass 1 by pieces (two
 * registers a block, the listed words from a table of masks) and for the SPARSE varints (8 at
 * a time, the bytes packed by a shuffle from a table); AVX-512 F/DQ/VL/VPOPCNTDQ for the count,
 * the checksum and the whole-chunk pass 1, with BW/VBMI2 also for its walks (VPCOMPRESSB). By
 * pieces, AVX-512 CPUs run the AVX2 loops. VFIO_MIGD_DIRTY_KERNEL=generic, popcnt, avx2 or
 * avx512 asks for a lesser kernel, for tests (each is tested) and for hosts where AVX-512
 * slows the other cores down.
 */
#include "config.h"

#include "migd-dirty-kernels-private.h"

/* blocks [b, n_blocks) of whole words: count and checksum */
static ALWAYS_INLINE void
light_blocks(const guint64 *bitmap, gsize b, gsize n_blocks, guint64 *count, guint64 v[CK_LANES])
{
	guint64 n = *count;
	LANES_LOAD(v);

	for (; b < n_blocks; b++) {
		const guint64 *p = bitmap + b * BLOCK;
		LANES_STEP(p);
		n += POP8(p);
	}
	LANES_STORE(v);
	*count = n;
}

static ALWAYS_INLINE void
light_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 *count,
	   guint64 v[CK_LANES])
{
	*count = 0;
	ck_init(v);
	if (n_words == 0)
		return;
	light_blocks(bitmap, 0, (n_words - 1) / BLOCK, count, v);
	light_tail(bitmap, n_words, last_mask, count, v);
}

/*
 * Pass 1 of the encoder: count, runs, checksum and the list of the words that hold a run
 * boundary (@bounds has room for @n_words entries).
 */
static ALWAYS_INLINE void
scan_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 raw_bytes,
	  guint32 *bounds, ScanResult *res)
{
	gsize n_blocks = (n_words - 1) / BLOCK;
	guint64 n = 0, r = 0, carry = 0;
	gsize m = 0, b = 0;
	gboolean certain = FALSE;
	guint64 v[CK_LANES];

	ck_init(v);
	{
		LANES_LOAD(v);
		while (b < n_blocks && !certain) {
			gsize seg_end = MIN(n_blocks, b + SEG_BLOCKS);

			for (; b < seg_end; b++) {
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
				r += STARTS(w0, carry) + STARTS(w1, w0 >> 63) +
				     STARTS(w2, w1 >> 63) + STARTS(w3, w2 >> 63) +
				     STARTS(w4, w3 >> 63) + STARTS(w5, w4 >> 63) +
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
			/* SPARSE >= n_dirty bytes and RUNS >= 2 * runs bytes: RAW is shorter */
			certain = n > raw_bytes && 2 * r > raw_bytes;
		}
		LANES_STORE(v);
	}
	light_blocks(bitmap, b, n_blocks, &n, v);
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

/* set bits of whole words and the masked last one */
static ALWAYS_INLINE guint64
count_body(const guint64 *bitmap, gsize n_words, guint64 last_mask)
{
	guint64 n = 0;

	if (n_words == 0)
		return 0;
	for (gsize i = 0; i < n_words - 1; i++)
		n += __builtin_popcountll(bitmap[i]);
	return n + __builtin_popcountll(bitmap[n_words - 1] & last_mask);
}

#define DEFINE_KERNELS(suffix, attrs)                                                              \
	static attrs guint64 count_##suffix(const guint64 *bitmap, gsize n_words,                  \
					    guint64 last_mask)                                     \
	{                                                                                          \
		return count_body(bitmap, n_words, last_mask);                                     \
	}                                                                                          \
	static attrs void light_##suffix(const guint64 *bitmap, gsize n_words, guint64 last_mask,  \
					 guint64 *count, guint64 v[CK_LANES])                      \
	{                                                                                          \
		light_body(bitmap, n_words, last_mask, count, v);                                  \
	}                                                                                          \
	static attrs void scan_##suffix(const guint64 *bitmap, gsize n_words, guint64 last_mask,   \
					guint64 raw_bytes, guint32 *bounds, ScanResult *res)       \
	{                                                                                          \
		scan_body(bitmap, n_words, last_mask, raw_bytes, bounds, res);                     \
	}                                                                                          \
	static attrs void sparse_##suffix(const guint64 *bitmap, gsize n_words, guint64 last_mask, \
					  guint64 n_pages, const guint32 *bounds, gsize n_bounds,  \
					  Walk *w)                                                 \
	{                                                                                          \
		sparse_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, w, FALSE);      \
	}                                                                                          \
	static attrs void runs_##suffix(const guint64 *bitmap, gsize n_words, guint64 last_mask,   \
					guint64 n_pages, const guint32 *bounds, gsize n_bounds,    \
					Walk *w)                                                   \
	{                                                                                          \
		runs_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, w, FALSE);        \
	}                                                                                          \
	static attrs gsize scan_piece_##suffix(const guint64 *bitmap, gsize start, gsize end,      \
					       gsize n_words, guint64 last_mask, guint32 *bounds,  \
					       Pass1 *st)                                          \
	{                                                                                          \
		return scan_piece_body(bitmap, start, end, n_words, last_mask, bounds, st);        \
	}                                                                                          \
	static attrs void sparse_piece_##suffix(const guint64 *bitmap, gsize n_words,              \
						guint64 last_mask, guint64 n_pages,                \
						const guint32 *bounds, gsize n_bounds,             \
						gboolean last, gboolean dirty_unlisted, Walk *w)   \
	{                                                                                          \
		sparse_piece_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, last,     \
				  TRUE, w, FALSE);                                                 \
	}                                                                                          \
	static attrs void runs_piece_##suffix(                                                     \
	    const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,              \
	    const guint32 *bounds, gsize n_bounds, gboolean last, Walk *w)                         \
	{                                                                                          \
		runs_piece_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, last, w);   \
	}                                                                                          \
	static const MigdDirtyKernels kernels_##suffix = {                                         \
	    count_##suffix,	   light_##suffix,	scan_##suffix,                             \
	    sparse_##suffix,	   runs_##suffix,	scan_piece_##suffix,                       \
	    sparse_piece_##suffix, runs_piece_##suffix, NULL}

DEFINE_KERNELS(generic, );

#ifdef MIGD_DIRTY_DISPATCH
DEFINE_KERNELS(popcnt, POPCNT_TARGET);

/* AVX2 by pieces; the whole-chunk passes (encode_whole, the fallback) are POPCNT's */
static const MigdDirtyKernels kernels_avx2 = {
    .count = count_popcnt,
    .light = light_popcnt,
    .scan = scan_popcnt,
    .sparse = sparse_popcnt,
    .runs = runs_popcnt,
    .scan_piece = migd_dirty_scan_piece_avx2,
    .sparse_piece = migd_dirty_sparse_piece_avx2,
    .runs_piece = migd_dirty_runs_piece_avx2,
    .sparse_fused = migd_dirty_sparse_fused_avx2,
};

/* by pieces as with AVX2, whose pass 1 and walks the AVX-512 ones do not beat there */
static const MigdDirtyKernels kernels_avx512 = {
    .count = count_popcnt,
    .light = migd_dirty_light_avx512,
    .scan = migd_dirty_scan_avx512,
    .sparse = sparse_popcnt,
    .runs = runs_popcnt,
    .scan_piece = migd_dirty_scan_piece_avx2,
    .sparse_piece = migd_dirty_sparse_piece_avx2,
    .runs_piece = migd_dirty_runs_piece_avx2,
    .sparse_fused = migd_dirty_sparse_fused_avx2,
};
static const MigdDirtyKernels kernels_vbmi2 = {
    .count = count_popcnt,
    .light = migd_dirty_light_avx512,
    .scan = migd_dirty_scan_avx512,
    .sparse = migd_dirty_sparse_vbmi2,
    .runs = migd_dirty_runs_vbmi2,
    .scan_piece = migd_dirty_scan_piece_avx2,
    .sparse_piece = migd_dirty_sparse_piece_avx2,
    .runs_piece = migd_dirty_runs_piece_avx2,
    .sparse_fused = migd_dirty_sparse_fused_avx2,
};
#endif

const MigdDirtyKernels *
migd_dirty_kernels(void)
{
#ifdef MIGD_DIRTY_DISPATCH
	static const MigdDirtyKernels *const all[] = {
	    &kernels_generic, &kernels_popcnt, &kernels_avx2, &kernels_avx512, &kernels_vbmi2};
	static const gchar *const names[] = {"generic", "popcnt", "avx2", "avx512", "vbmi2"};
	static gsize choice; /* 1 + index in all[] */

	if (g_once_init_enter(&choice)) {
		const gchar *want = g_getenv("VFIO_MIGD_DIRTY_KERNEL");
		gsize c = 0;

		__builtin_cpu_init();
		migd_dirty_kernels_avx2_init();
		if (__builtin_cpu_supports("popcnt"))
			c = 1;
		if (c == 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
		    __builtin_cpu_supports("bmi2"))
			c = 2;
		if (c == 2 && __builtin_cpu_supports("avx512f") &&
		    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
		    __builtin_cpu_supports("avx512vpopcntdq"))
			c = 3;
		if (c == 3 && __builtin_cpu_supports("avx512bw") &&
		    __builtin_cpu_supports("avx512vbmi2"))
			c = 4;
		for (gsize i = 0; want != NULL && i < c; i++) {
			if (g_strcmp0(want, names[i]) == 0)
				c = i;
		}
		g_once_init_leave(&choice, c + 1);
	}
	return all[choice - 1];
#else
	return &kernels_generic;
#endif
}
