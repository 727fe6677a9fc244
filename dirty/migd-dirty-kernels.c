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
 * Pass 1 of the encoder over the whole chunk: count, runs, checksum and the list of the words
 * that hold a run boundary (@bounds has room for @n_words entries). Checked every SEG_BLOCKS
 * blocks for a certain RAW, after which only the count and the checksum are needed.
 */
static ALWAYS_INLINE void
scan_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 raw_bytes,
	  guint32 *bounds, ScanResult *res)
{
	gsize n_blocks = (n_words - 1) / BLOCK;
	gsize b = 0;
	gboolean certain = FALSE;
	ScanCursor c = {0};

	ck_init(c.v);
	while (b < n_blocks && !certain) {
		gsize seg_end = MIN(n_blocks, b + SEG_BLOCKS);

		scan_blocks(bitmap, b, seg_end, bounds, &c);
		b = seg_end;
		/* SPARSE >= n_dirty bytes and RUNS >= 2 * runs bytes: RAW is shorter */
		certain = c.n_dirty > raw_bytes && 2 * c.n_runs > raw_bytes;
	}
	light_blocks(bitmap, b, n_blocks, &c.n_dirty, c.v);
	scan_words(bitmap, n_blocks * BLOCK, n_words, n_words, last_mask, bounds, &c);
	res->n_dirty = c.n_dirty;
	res->n_runs = c.n_runs;
	memcpy(res->v, c.v, sizeof(c.v));
	res->n_bounds = c.m;
	res->raw_certain = certain || (c.n_dirty > raw_bytes && 2 * c.n_runs > raw_bytes);
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
