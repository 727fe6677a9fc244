/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "migd-error.h"
#include "migd-sim-dirty.h"
#include "migd-test-util.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

/* profiles as the simulator's mlx5 and pds devices would configure them */
static const MigdSimDirtyLimits limits_mlx5 = {
    .max_ranges = 4,
    .min_page_size = 4 * KiB,
    .max_page_size = 2 * MiB,
    .max_addr_space = 1ull << 42,
};
static const MigdSimDirtyLimits limits_pds = {
    .max_ranges = 8,
    .report_single_range = TRUE,
};
static const MigdSimDirtyLimits limits_unlimited = {
    .max_ranges = G_MAXUINT,
};
static const MigdSimDirtyLimits limits_none = {
    .max_ranges = 0,
};

static void
assert_errno(GError *error, gint errnum)
{
	assert_non_null(error);
	if (!migd_error_matches_errno(error, errnum))
		fail_msg("expected errno %d, got %s (%d): %s", errnum,
			 g_quark_to_string(error->domain), error->code, error->message);
}

#define bit_is_set(bitmap, n) (((bitmap)[(n) / 64] >> ((n) % 64)) & 1)

/* START must fail with @errnum */
static void
expect_start_fails(MigdSimDirty *self, const MigdIovaRange *ranges, guint n_ranges,
		   guint64 page_size, gint errnum)
{
	guint64 hint = page_size;
	g_autoptr(GError) error = NULL;

	assert_false(migd_sim_dirty_start(self, ranges, n_ranges, &hint, &error));
	assert_errno(error, errnum);
	/* the core copies the page size back only on success */
	assert_int_equal(hint, page_size);
}

static void
expect_report_fails(MigdSimDirty *self, guint64 iova, guint64 length, guint64 page_size,
		    guint64 *bitmap, gint errnum)
{
	g_autoptr(GError) error = NULL;

	assert_false(migd_sim_dirty_report(self, iova, length, page_size, bitmap, &error));
	assert_errno(error, errnum);
}

/* starts @self on one range, page size 4 KiB */
static void
start_one(MigdSimDirty *self, guint64 iova, guint64 length)
{
	MigdIovaRange r = {iova, length};
	guint64 page_size = 4 * KiB;
	g_autoptr(GError) error = NULL;

	assert_true(migd_sim_dirty_start(self, &r, 1, &page_size, &error));
	assert_null(error);
}

static void
test_core_num_ranges(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_unlimited);
	g_autofree MigdIovaRange *ranges = g_new0(MigdIovaRange, 257);
	guint64 page_size = 4 * KiB;
	guint n_tracked = 0;

	for (guint i = 0; i < 257; i++)
		ranges[i] = (MigdIovaRange){i * 2 * MiB, 4 * KiB};
	expect_start_fails(self, ranges, 0, page_size, EINVAL);
	expect_start_fails(self, ranges, 257, page_size, E2BIG);
	assert_false(migd_sim_dirty_is_active(self));

	/* LOG_MAX_RANGES itself is fine, and an unlimited device keeps them all */
	assert_true(migd_sim_dirty_start(self, ranges, 256, &page_size, NULL));
	migd_sim_dirty_get_tracked_ranges(self, &n_tracked);
	assert_int_equal(n_tracked, 256);
}

static void
test_core_misaligned(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_unlimited);
	MigdIovaRange bad_iova[] = {{0, 8 * KiB}, {1 * MiB + 512, 4 * KiB}};
	MigdIovaRange bad_len[] = {{0, 4 * KiB + 1}};
	MigdIovaRange empty[] = {{0, 0}};
	guint64 page_size = 4 * KiB;

	expect_start_fails(self, bad_iova, 2, page_size, EINVAL);
	expect_start_fails(self, bad_len, 1, page_size, EINVAL);
	/* the core lets a zero length through [unverified]; the simulated driver refuses it */
	expect_start_fails(self, empty, 1, page_size, EINVAL);
	assert_false(migd_sim_dirty_is_active(self));
}

static void
test_core_overflow(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_unlimited);
	/* ends exactly at 2^64: iova + length wraps */
	MigdIovaRange top[] = {{G_MAXUINT64 - 4 * KiB + 1, 4 * KiB}};
	MigdIovaRange huge[] = {{1 * GiB, G_MAXUINT64 - 4 * KiB + 1}};
	guint64 page_size = 4 * KiB;

	expect_start_fails(self, top, 1, page_size, EOVERFLOW);
	expect_start_fails(self, huge, 1, page_size, EOVERFLOW);
}

static void
test_core_overlap(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_unlimited);
	/* unsorted on purpose; the last one overlaps the first one's tail */
	MigdIovaRange ranges[] = {{1 * GiB, 1 * GiB}, {0, 64 * KiB}, {2 * GiB - 4 * KiB, 8 * KiB}};
	MigdIovaRange copy[G_N_ELEMENTS(ranges)];
	/* touching (end == next start) is not an overlap */
	MigdIovaRange touching[] = {{64 * KiB, 64 * KiB}, {0, 64 * KiB}};
	/* range 1 overlaps range 0 before range 2 overflows: the kernel stops at 1 */
	MigdIovaRange order[] = {{0, 64 * KiB}, {0, 4 * KiB}, {G_MAXUINT64 - 4 * KiB + 1, 4 * KiB}};
	guint64 page_size = 4 * KiB;
	const MigdIovaRange *tracked;
	guint n_tracked = 0;

	memcpy(copy, ranges, sizeof(ranges));
	expect_start_fails(self, ranges, 3, page_size, EINVAL);
	assert_memory_equal(copy, ranges, sizeof(ranges));

	expect_start_fails(self, order, 3, page_size, EINVAL);

	assert_true(migd_sim_dirty_start(self, touching, 2, &page_size, NULL));
	tracked = migd_sim_dirty_get_tracked_ranges(self, &n_tracked);
	assert_int_equal(n_tracked, 2);
	/* the tracked copy is sorted, the caller's array is not touched */
	assert_int_equal(tracked[0].iova, 0);
	assert_int_equal(tracked[1].iova, 64 * KiB);
	assert_int_equal(touching[0].iova, 64 * KiB);
}

static void
test_double_start(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_mlx5);
	MigdIovaRange other = {8 * GiB, 1 * GiB};
	guint64 page_size = 4 * KiB;
	const MigdIovaRange *tracked;
	guint n_tracked = 0;

	start_one(self, 0, 1 * GiB);
	expect_start_fails(self, &other, 1, page_size, EINVAL);
	/* still tracking the first request */
	assert_true(migd_sim_dirty_is_active(self));
	tracked = migd_sim_dirty_get_tracked_ranges(self, &n_tracked);
	assert_int_equal(n_tracked, 1);
	assert_int_equal(tracked[0].iova, 0);

	/* stop is idempotent, and a stop + start works */
	migd_sim_dirty_stop(self);
	migd_sim_dirty_stop(self);
	assert_false(migd_sim_dirty_is_active(self));
	assert_true(migd_sim_dirty_start(self, &other, 1, &page_size, NULL));
}

static void
test_unsupported(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_none);
	MigdIovaRange r = {0, 1 * GiB};
	guint64 page_size = 4 * KiB;

	expect_start_fails(self, &r, 1, page_size, EOPNOTSUPP);
	/* the core's checks come first, even on a device without logging: 0 ranges */
	expect_start_fails(self, &r, 0, page_size, EINVAL);
}

static void
test_combine_two(void **state)
{
	MigdSimDirtyLimits limits = limits_unlimited;
	g_autoptr(MigdSimDirty) self = NULL;
	/*
	 * A[0,1M) gap 1M B[2M,3M) gap 7M C[10M,11M) gap 1M D[12M,13M) gap 2M E[15M,16M),
	 * passed unsorted. Gaps A-B and C-D tie at 1M: the lower merges first, then
	 * C-D, then D-E (2M) leaves AB and CDE.
	 */
	MigdIovaRange ranges[] = {
	    {12 * MiB, 1 * MiB}, {0, 1 * MiB},	      {15 * MiB, 1 * MiB},
	    {2 * MiB, 1 * MiB},	 {10 * MiB, 1 * MiB},
	};
	MigdIovaRange ties[] = {
	    {0, 1 * MiB}, {2 * MiB, 1 * MiB}, {4 * MiB, 1 * MiB}, {8 * MiB, 1 * MiB}};
	guint64 page_size = 4 * KiB;
	const MigdIovaRange *tracked;
	guint n_tracked = 0;

	limits.max_ranges = 2;
	self = migd_sim_dirty_new(&limits);
	assert_true(migd_sim_dirty_start(self, ranges, 5, &page_size, NULL));
	tracked = migd_sim_dirty_get_tracked_ranges(self, &n_tracked);
	assert_int_equal(n_tracked, 2);
	assert_int_equal(tracked[0].iova, 0);
	assert_int_equal(tracked[0].length, 3 * MiB);
	assert_int_equal(tracked[1].iova, 10 * MiB);
	assert_int_equal(tracked[1].length, 6 * MiB);

	/* the merged gaps are tracked now; the big gap is not */
	migd_sim_dirty_record_dma_write(self, 1 * MiB, 4 * KiB);
	migd_sim_dirty_record_dma_write(self, 13 * MiB, 4 * KiB);
	migd_sim_dirty_record_dma_write(self, 5 * MiB, 4 * KiB);
	assert_int_equal(migd_sim_dirty_count_dirty(self), 2);

	/* 3 ranges: only the two 1M gaps merge */
	limits.max_ranges = 3;
	migd_sim_dirty_free(g_steal_pointer(&self));
	self = migd_sim_dirty_new(&limits);
	assert_true(migd_sim_dirty_start(self, ranges, 5, &page_size, NULL));
	tracked = migd_sim_dirty_get_tracked_ranges(self, &n_tracked);
	assert_int_equal(n_tracked, 3);
	assert_int_equal(tracked[0].iova, 0);
	assert_int_equal(tracked[0].length, 3 * MiB);
	assert_int_equal(tracked[1].iova, 10 * MiB);
	assert_int_equal(tracked[1].length, 3 * MiB);
	assert_int_equal(tracked[2].iova, 15 * MiB);
	assert_int_equal(tracked[2].length, 1 * MiB);

	/* four ranges, the first two gaps equal, into three: the lowest gap wins the tie */
	migd_sim_dirty_stop(self);
	assert_true(migd_sim_dirty_start(self, ties, 4, &page_size, NULL));
	tracked = migd_sim_dirty_get_tracked_ranges(self, &n_tracked);
	assert_int_equal(n_tracked, 3);
	assert_int_equal(tracked[0].length, 3 * MiB);
	assert_int_equal(tracked[1].iova, 4 * MiB);
	assert_int_equal(tracked[2].iova, 8 * MiB);
}

static void
test_combine_one(void **state)
{
	MigdSimDirtyLimits limits = limits_unlimited;
	g_autoptr(MigdSimDirty) self = NULL;
	MigdIovaRange ranges[] = {{4 * GiB, 1 * GiB}, {0, 2 * GiB}, {1ull << 40, 1 * GiB}};
	guint64 page_size = 4 * KiB;
	const MigdIovaRange *tracked;
	guint n_tracked = 0;

	limits.max_ranges = 1;
	self = migd_sim_dirty_new(&limits);
	assert_true(migd_sim_dirty_start(self, ranges, 3, &page_size, NULL));
	tracked = migd_sim_dirty_get_tracked_ranges(self, &n_tracked);
	assert_int_equal(n_tracked, 1);
	assert_int_equal(tracked[0].iova, 0);
	assert_int_equal(tracked[0].length, (1ull << 40) + 1 * GiB);
}

static void
test_page_size_clamp(void **state)
{
	MigdSimDirtyLimits limits = limits_mlx5;
	g_autoptr(MigdSimDirty) self = NULL;
	g_autoptr(MigdSimDirty) pds = migd_sim_dirty_new(&limits_pds);
	MigdIovaRange r = {0, 1 * GiB};
	guint64 page_size;

	limits.min_page_size = 64 * KiB;
	limits.max_page_size = 1 * MiB;
	self = migd_sim_dirty_new(&limits);

	page_size = 4 * KiB;
	assert_true(migd_sim_dirty_start(self, &r, 1, &page_size, NULL));
	assert_int_equal(page_size, 64 * KiB);
	assert_int_equal(migd_sim_dirty_get_page_size(self), 64 * KiB);
	migd_sim_dirty_stop(self);

	page_size = 1 * GiB;
	assert_true(migd_sim_dirty_start(self, &r, 1, &page_size, NULL));
	assert_int_equal(page_size, 1 * MiB);
	migd_sim_dirty_stop(self);

	/* mlx5 takes ilog2(): 192K rounds down to 128K */
	page_size = 192 * KiB;
	r.length = 192 * KiB * 4;
	assert_true(migd_sim_dirty_start(self, &r, 1, &page_size, NULL));
	assert_int_equal(page_size, 128 * KiB);

	/* pds keeps the page size as is, and needs a power of two */
	r.length = 1 * GiB;
	page_size = 16 * KiB;
	assert_true(migd_sim_dirty_start(pds, &r, 1, &page_size, NULL));
	assert_int_equal(page_size, 16 * KiB);
	migd_sim_dirty_stop(pds);
	page_size = 12 * KiB;
	r.length = 12 * KiB * 4;
	expect_start_fails(pds, &r, 1, page_size, EINVAL);
}

static void
test_addr_space(void **state)
{
	MigdSimDirtyLimits limits = limits_mlx5;
	g_autoptr(MigdSimDirty) self = NULL;
	/* 2 x 1 GiB: 2^31 fits a 2^31 device */
	MigdIovaRange two[] = {{0, 1 * GiB}, {64 * GiB, 1 * GiB}};
	/* 1 GiB + 4 KiB rounds up to 2^31 as well */
	MigdIovaRange odd[] = {{0, 1 * GiB + 4 * KiB}, {64 * GiB, 1 * GiB - 4 * KiB}};
	/* 2 GiB + 4 KiB rounds up to 2^32 */
	MigdIovaRange over[] = {{0, 2 * GiB + 4 * KiB}};
	guint64 page_size = 4 * KiB;

	limits.max_addr_space = 2 * GiB;
	limits.max_ranges = 2;
	self = migd_sim_dirty_new(&limits);
	assert_true(migd_sim_dirty_start(self, two, 2, &page_size, NULL));
	migd_sim_dirty_stop(self);
	assert_true(migd_sim_dirty_start(self, odd, 2, &page_size, NULL));
	migd_sim_dirty_stop(self);
	expect_start_fails(self, over, 1, page_size, EOPNOTSUPP);
	migd_sim_dirty_free(g_steal_pointer(&self));

	/* combined into one range the gap counts: [0, 65G) needs 2^37 */
	limits.max_ranges = 1;
	self = migd_sim_dirty_new(&limits);
	expect_start_fails(self, two, 2, page_size, EOPNOTSUPP);
	assert_false(migd_sim_dirty_is_active(self));
}

static void
test_report_core_checks(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_mlx5);
	guint64 bitmap[4] = {0};

	/* not started: the driver's EINVAL, after the core's checks passed */
	expect_report_fails(self, 0, 64 * KiB, 4 * KiB, bitmap, EINVAL);

	start_one(self, 0, 1 * GiB);
	expect_report_fails(self, 0, 64 * KiB, 2 * KiB, bitmap, EINVAL);
	expect_report_fails(self, 0, 64 * KiB, 12 * KiB, bitmap, EINVAL);
	expect_report_fails(self, G_MAXUINT64 - 4 * KiB + 1, 4 * KiB, 4 * KiB, bitmap, EOVERFLOW);
	expect_report_fails(self, 0, 64 * KiB, 4 * KiB, NULL, EFAULT);
	expect_report_fails(self, 0, 0, 4 * KiB, bitmap, EINVAL);

	assert_int_equal(migd_sim_dirty_report_bitmap_words(64 * KiB, 4 * KiB), 1);
	assert_int_equal(migd_sim_dirty_report_bitmap_words(256 * KiB, 4 * KiB), 1);
	assert_int_equal(migd_sim_dirty_report_bitmap_words(256 * KiB + 1, 4 * KiB), 2);
	/* no alignment check in the core: an unaligned report is fine */
	assert_true(migd_sim_dirty_report(self, 512, 64 * KiB, 4 * KiB, bitmap, NULL));
}

static void
test_report_read_and_clear(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_mlx5);
	MigdIovaRange ranges[] = {{0, 1 * MiB}, {1 * GiB, 1 * MiB}};
	guint64 page_size = 4 * KiB;
	guint64 bitmap[4] = {0};

	assert_true(migd_sim_dirty_start(self, ranges, 2, &page_size, NULL));
	migd_sim_dirty_record_dma_write(self, 0, 1);		      /* page 0 */
	migd_sim_dirty_record_dma_write(self, 5 * 4 * KiB + 100, 1);  /* page 5 */
	migd_sim_dirty_record_dma_write(self, 70 * 4 * KiB, 8 * KiB); /* pages 70, 71 */
	migd_sim_dirty_record_dma_write(self, 1 * GiB + 4 * KiB, 4 * KiB);
	/* outside every tracked range: not recorded */
	migd_sim_dirty_record_dma_write(self, 512 * MiB, 1 * MiB);
	assert_int_equal(migd_sim_dirty_count_dirty(self), 5);

	assert_true(migd_sim_dirty_report(self, 0, 1 * MiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(bitmap[0], (1ull << 0) | (1ull << 5));
	assert_int_equal(bitmap[1], (1ull << 6) | (1ull << 7));
	assert_int_equal(bitmap[2] | bitmap[3], 0);

	/* read and clear: the same report again is empty */
	memset(bitmap, 0, sizeof(bitmap));
	assert_true(migd_sim_dirty_report(self, 0, 1 * MiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 4), 0);

	/* the other range kept its page */
	assert_int_equal(migd_sim_dirty_count_dirty(self), 1);
	assert_true(migd_sim_dirty_report(self, 1 * GiB, 1 * MiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(bitmap[0], 1ull << 1);
	assert_int_equal(migd_sim_dirty_count_dirty(self), 0);
}

static void
test_report_partial_range(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_mlx5);
	guint64 bitmap[1] = {0};

	start_one(self, 0, 1 * MiB);
	migd_sim_dirty_record_dma_write(self, 0, 1 * MiB);
	/* report only the second quarter: bits 0..63 of it, the rest stays dirty */
	assert_true(migd_sim_dirty_report(self, 256 * KiB, 256 * KiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(bitmap[0], G_MAXUINT64);
	assert_int_equal(migd_sim_dirty_count_dirty(self), 256 - 64);

	/* a report spanning beyond the range only covers the tracked part */
	bitmap[0] = 0;
	assert_true(
	    migd_sim_dirty_report(self, 1 * MiB - 8 * KiB, 64 * 4 * KiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(bitmap[0], 3);
}

static void
test_report_bits_only_set(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_mlx5);
	guint64 bitmap[4] = {0x8000000000000001ull, 0xf, 0, 0x1};

	start_one(self, 0, 1 * MiB);
	migd_sim_dirty_record_dma_write(self, 2 * 4 * KiB, 4 * KiB);
	/* page 65, then a run over pages 70..199 that must not wipe it */
	migd_sim_dirty_record_dma_write(self, 65 * 4 * KiB, 4 * KiB);
	migd_sim_dirty_record_dma_write(self, 70 * 4 * KiB, 130 * 4 * KiB);
	assert_true(migd_sim_dirty_report(self, 0, 1 * MiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(bitmap[0], 0x8000000000000005ull);
	assert_int_equal(bitmap[1], 0xf | (1ull << 1) | (~0ull << 6));
	assert_int_equal(bitmap[2], G_MAXUINT64);
	assert_int_equal(bitmap[3], 0xff);
}

static void
test_granularity_coarse(void **state)
{
	MigdSimDirtyLimits limits = limits_mlx5;
	g_autoptr(MigdSimDirty) self = NULL;
	MigdIovaRange r = {0, 16 * MiB};
	guint64 page_size = 4 * KiB;
	guint64 bitmap[64] = {0};

	/* the device tracks at 2 MiB at least; QEMU reports at 4 KiB */
	limits.min_page_size = 2 * MiB;
	self = migd_sim_dirty_new(&limits);
	assert_true(migd_sim_dirty_start(self, &r, 1, &page_size, NULL));
	assert_int_equal(page_size, 2 * MiB);

	migd_sim_dirty_record_dma_write(self, 2 * MiB + 100, 1);
	assert_int_equal(migd_sim_dirty_count_dirty(self), 1);
	/* report [0, 8M) at 4K: bits 512..1023 (the whole 2 MiB page) replicated */
	assert_true(migd_sim_dirty_report(self, 0, 8 * MiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 32), 512);
	assert_false(bit_is_set(bitmap, 511));
	assert_true(bit_is_set(bitmap, 512));
	assert_true(bit_is_set(bitmap, 1023));
	assert_false(bit_is_set(bitmap, 1024));
	assert_int_equal(migd_sim_dirty_count_dirty(self), 0);

	/* replicated bits that start mid-word keep the user's bits below them */
	migd_sim_dirty_record_dma_write(self, 2 * MiB, 1);
	memset(bitmap, 0, sizeof(bitmap));
	bitmap[0] = 0x1;
	assert_true(
	    migd_sim_dirty_report(self, 2 * MiB - 3 * 4 * KiB, 4 * MiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(bitmap[0], 0x1 | (~0ull << 3));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 16), 513);
	assert_true(bit_is_set(bitmap, 514));
	assert_false(bit_is_set(bitmap, 515));

	/* a report covering half a tracker page sets its half and keeps the page dirty */
	migd_sim_dirty_record_dma_write(self, 4 * MiB, 1);
	memset(bitmap, 0, sizeof(bitmap));
	assert_true(migd_sim_dirty_report(self, 5 * MiB, 1 * MiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 4), 256);
	assert_int_equal(migd_sim_dirty_count_dirty(self), 1);
}

static void
test_granularity_fine(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_mlx5);
	guint64 bitmap[1] = {0};

	start_one(self, 0, 64 * MiB);
	/* tracker at 4 KiB, report at 2 MiB: any dirty 4K page dirties its 2M bit */
	migd_sim_dirty_record_dma_write(self, 2 * MiB + 12 * KiB, 4 * KiB);
	migd_sim_dirty_record_dma_write(self, 10 * MiB - 4 * KiB, 8 * KiB);
	assert_true(migd_sim_dirty_report(self, 0, 64 * MiB, 2 * MiB, bitmap, NULL));
	assert_int_equal(bitmap[0], (1ull << 1) | (1ull << 4) | (1ull << 5));
	assert_int_equal(migd_sim_dirty_count_dirty(self), 0);
}

static void
test_pds_single_range(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_pds);
	g_autoptr(MigdSimDirty) mlx5 = migd_sim_dirty_new(&limits_mlx5);
	MigdIovaRange ranges[] = {{0, 1 * MiB}, {1 * MiB, 1 * MiB}};
	guint64 page_size = 4 * KiB;
	guint64 bitmap[8] = {0};

	assert_true(migd_sim_dirty_start(self, ranges, 2, &page_size, NULL));
	migd_sim_dirty_record_dma_write(self, 0, 2 * MiB);
	/* contiguous, but two regions: pds refuses */
	expect_report_fails(self, 0, 2 * MiB, 4 * KiB, bitmap, EINVAL);
	/* partly outside any region */
	expect_report_fails(self, 1 * MiB, 2 * MiB, 4 * KiB, bitmap, EINVAL);
	assert_int_equal(migd_test_bitmap_weight(bitmap, 8), 0);
	assert_int_equal(migd_sim_dirty_count_dirty(self), 512);

	assert_true(migd_sim_dirty_report(self, 1 * MiB, 1 * MiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 8), 256);
	assert_int_equal(migd_sim_dirty_count_dirty(self), 256);

	/* mlx5 takes the same request across both ranges */
	assert_true(migd_sim_dirty_start(mlx5, ranges, 2, &page_size, NULL));
	migd_sim_dirty_record_dma_write(mlx5, 0, 2 * MiB);
	memset(bitmap, 0, sizeof(bitmap));
	assert_true(migd_sim_dirty_report(mlx5, 0, 2 * MiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 8), 512);
}

static void
test_eio_fault(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_mlx5);
	MigdIovaRange one_mib = {0, 1 * MiB};
	guint64 bitmap[1] = {0};

	start_one(self, 0, 1 * MiB);
	migd_sim_dirty_inject_report_error(self, 1);
	assert_true(migd_sim_dirty_report(self, 0, 256 * KiB, 4 * KiB, bitmap, NULL));
	migd_sim_dirty_record_dma_write(self, 0, 4 * KiB);
	expect_report_fails(self, 0, 256 * KiB, 4 * KiB, bitmap, EIO);
	assert_int_equal(bitmap[0], 0);

	/* still "active": a second start is refused and reports keep failing */
	assert_true(migd_sim_dirty_is_active(self));
	assert_true(migd_sim_dirty_is_in_error(self));
	for (guint i = 0; i < 3; i++)
		expect_report_fails(self, 0, 256 * KiB, 4 * KiB, bitmap, EIO);
	expect_start_fails(self, &one_mib, 1, 4 * KiB, EINVAL);

	/* only stop + start recovers, with a clean log */
	migd_sim_dirty_stop(self);
	start_one(self, 0, 1 * MiB);
	assert_false(migd_sim_dirty_is_in_error(self));
	assert_true(migd_sim_dirty_report(self, 0, 256 * KiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(bitmap[0], 0);
	assert_true(migd_sim_dirty_report(self, 0, 256 * KiB, 4 * KiB, bitmap, NULL));

	/* 0: the very next report fails; a cancelled injection never fires */
	migd_sim_dirty_inject_report_error(self, 0);
	expect_report_fails(self, 0, 256 * KiB, 4 * KiB, bitmap, EIO);
	migd_sim_dirty_stop(self);
	start_one(self, 0, 1 * MiB);
	migd_sim_dirty_inject_report_error(self, 0);
	migd_sim_dirty_cancel_report_error(self);
	assert_true(migd_sim_dirty_report(self, 0, 256 * KiB, 4 * KiB, bitmap, NULL));
}

static void
test_pattern_parse(void **state)
{
	const gchar *bad[] = {NULL,	    "",		  "Random",	 "hotspot",
			      "hotspot:",   "hotspot:0",  "hotspot:101", "hotspot:-5",
			      "hotspot:1x", "hotspot=10", "hotspotty",	 "sequential "};
	MigdSimDmaPattern pattern = {0};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		assert_false(migd_sim_dma_pattern_parse(bad[i], &pattern, &error));
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	}

	assert_true(migd_sim_dma_pattern_parse("none", &pattern, NULL));
	assert_int_equal(pattern.kind, MIGD_SIM_DMA_PATTERN_NONE);
	assert_true(migd_sim_dma_pattern_parse("sequential", &pattern, NULL));
	assert_int_equal(pattern.kind, MIGD_SIM_DMA_PATTERN_SEQUENTIAL);
	assert_true(migd_sim_dma_pattern_parse("random", &pattern, NULL));
	assert_int_equal(pattern.kind, MIGD_SIM_DMA_PATTERN_RANDOM);
	assert_true(migd_sim_dma_pattern_parse("hotspot:10", &pattern, NULL));
	assert_int_equal(pattern.kind, MIGD_SIM_DMA_PATTERN_HOTSPOT);
	assert_int_equal(pattern.hotspot_percent, 10);
	{
		g_autofree gchar *str = migd_sim_dma_pattern_to_string(&pattern);
		assert_string_equal(str, "hotspot:10");
	}
}

/* reports the whole of [0, @length) at 4 KiB into a new bitmap */
static guint64 *
report_all(MigdSimDirty *self, guint64 length)
{
	guint64 n_words = migd_sim_dirty_report_bitmap_words(length, 4 * KiB);
	guint64 *bitmap = g_new0(guint64, n_words);

	assert_true(migd_sim_dirty_report(self, 0, length, 4 * KiB, bitmap, NULL));
	return bitmap;
}

static void
test_generate_determinism(void **state)
{
	g_autoptr(MigdSimDirty) a = migd_sim_dirty_new(&limits_mlx5);
	g_autoptr(MigdSimDirty) b = migd_sim_dirty_new(&limits_mlx5);
	g_autofree guint64 *bitmap_a = NULL;
	g_autofree guint64 *bitmap_b = NULL;
	g_autofree guint64 *bitmap_c = NULL;
	MigdSimDmaPattern pattern = {.kind = MIGD_SIM_DMA_PATTERN_RANDOM};
	MigdSimDmaPattern none = {.kind = MIGD_SIM_DMA_PATTERN_NONE};
	guint64 seed_a = 42;
	guint64 seed_b = 42;
	guint64 seed_c = 43;
	guint64 n_words = migd_sim_dirty_report_bitmap_words(64 * MiB, 4 * KiB);

	start_one(a, 0, 64 * MiB);
	start_one(b, 0, 64 * MiB);
	assert_int_equal(migd_sim_dirty_generate(a, &pattern, 4 * MiB, &seed_a), 1024);
	assert_int_equal(migd_sim_dirty_generate(b, &pattern, 4 * MiB, &seed_b), 1024);
	assert_int_equal(seed_a, seed_b);
	assert_true(migd_sim_dirty_count_dirty(a) > 900);
	bitmap_a = report_all(a, 64 * MiB);
	bitmap_b = report_all(b, 64 * MiB);
	assert_memory_equal(bitmap_a, bitmap_b, n_words * sizeof(guint64));

	/* another seed, another bitmap */
	assert_int_equal(migd_sim_dirty_generate(b, &pattern, 4 * MiB, &seed_c), 1024);
	bitmap_c = report_all(b, 64 * MiB);
	assert_memory_not_equal(bitmap_a, bitmap_c, n_words * sizeof(guint64));

	/* none writes nothing; a partial page still counts as one write */
	assert_int_equal(migd_sim_dirty_generate(a, &none, 4 * MiB, &seed_a), 0);
	assert_int_equal(migd_sim_dirty_count_dirty(a), 0);
	assert_int_equal(migd_sim_dirty_generate(a, &pattern, 1, &seed_a), 1);
	assert_int_equal(migd_sim_dirty_count_dirty(a), 1);
}

static void
test_generate_hotspot(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_mlx5);
	/* 2 x 32 MiB: 10 % of the 16384 pages is the first 1638, all in range 0 */
	MigdIovaRange ranges[] = {{1 * GiB, 32 * MiB}, {0, 32 * MiB}};
	MigdSimDmaPattern pattern = {0};
	guint64 page_size = 4 * KiB;
	guint64 seed = 7;
	g_autofree guint64 *bitmap = NULL;
	guint64 dirty;

	assert_true(migd_sim_dma_pattern_parse("hotspot:10", &pattern, NULL));
	assert_true(migd_sim_dirty_start(self, ranges, 2, &page_size, NULL));
	assert_int_equal(migd_sim_dirty_generate(self, &pattern, 16 * MiB, &seed), 4096);
	dirty = migd_sim_dirty_count_dirty(self);
	assert_true(dirty > 1000 && dirty <= 1638);

	bitmap = report_all(self, 32 * MiB);
	assert_int_equal(
	    migd_test_bitmap_weight(bitmap, migd_sim_dirty_report_bitmap_words(32 * MiB, 4 * KiB)),
	    dirty);
	for (guint64 n = 1638; n < 8192; n++)
		assert_false(bit_is_set(bitmap, n));
	assert_int_equal(migd_sim_dirty_count_dirty(self), 0);
}

static void
test_generate_sequential(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_mlx5);
	MigdIovaRange ranges[] = {{0, 64 * KiB}, {1 * MiB, 64 * KiB}};
	MigdSimDmaPattern pattern = {.kind = MIGD_SIM_DMA_PATTERN_SEQUENTIAL};
	guint64 page_size = 4 * KiB;
	guint64 seed = 0;
	guint64 bitmap[1] = {0};

	assert_true(migd_sim_dirty_start(self, ranges, 2, &page_size, NULL));
	/* 20 pages: all 16 of range 0, then 4 of range 1 */
	assert_int_equal(migd_sim_dirty_generate(self, &pattern, 20 * 4 * KiB, &seed), 20);
	assert_true(migd_sim_dirty_report(self, 0, 64 * KiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(bitmap[0], 0xffff);
	bitmap[0] = 0;
	assert_true(migd_sim_dirty_report(self, 1 * MiB, 64 * KiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(bitmap[0], 0xf);

	/* continues where it stopped and wraps: pages 4..15 of range 1, 0..1 of range 0 */
	assert_int_equal(migd_sim_dirty_generate(self, &pattern, 14 * 4 * KiB, &seed), 14);
	bitmap[0] = 0;
	assert_true(migd_sim_dirty_report(self, 1 * MiB, 64 * KiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(bitmap[0], 0xfff0);
	bitmap[0] = 0;
	assert_true(migd_sim_dirty_report(self, 0, 64 * KiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(bitmap[0], 0x3);
}

static void
test_large_range(void **state)
{
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_mlx5);
	g_autoptr(MigdSimDirty) unlimited = migd_sim_dirty_new(&limits_unlimited);
	MigdIovaRange absurd = {0, 1ull << 48};
	MigdSimDmaPattern pattern = {.kind = MIGD_SIM_DMA_PATTERN_RANDOM};
	guint64 page_size = 4 * KiB;
	guint64 seed = 1;
	g_autofree guint64 *bitmap = NULL;
	guint64 n_words = migd_sim_dirty_report_bitmap_words(1 * GiB, 4 * KiB);

	/* 64 GiB at 4 KiB: 16 Mi pages, 2 MiB of bitmap */
	start_one(self, 4 * GiB, 64 * GiB);
	assert_int_equal(migd_sim_dirty_get_memory_usage(self), 2 * MiB);
	migd_sim_dirty_record_dma_write(self, 4 * GiB, 64 * GiB);
	assert_int_equal(migd_sim_dirty_count_dirty(self), 16ull * 1024 * 1024);
	assert_int_equal(migd_sim_dirty_generate(self, &pattern, 64 * MiB, &seed), 16384);

	/* one 1 GiB window in the middle: 262144 bits, cleared, the rest kept */
	bitmap = g_new0(guint64, n_words);
	assert_true(migd_sim_dirty_report(self, 40 * GiB, 1 * GiB, 4 * KiB, bitmap, NULL));
	assert_int_equal(migd_test_bitmap_weight(bitmap, n_words), 262144);
	assert_int_equal(migd_sim_dirty_count_dirty(self), 16ull * 1024 * 1024 - 262144);

	/* 256 TiB at 4 KiB would need 8 GiB of bitmap: refused up front */
	expect_start_fails(unlimited, &absurd, 1, page_size, ENOMEM);
	assert_false(migd_sim_dirty_is_active(unlimited));
	assert_int_equal(migd_sim_dirty_get_memory_usage(unlimited), 0);
}

/* limits.iommu: what the simulated platform IOMMU tracks */
static void
test_iommu_mode(void **state)
{
	const MigdSimDirtyLimits limits_iommu = {
	    .max_ranges = G_MAXUINT,
	    .min_page_size = 4 * KiB,
	    .max_page_size = 1ull << 30,
	    .iommu = TRUE,
	};
	g_autoptr(MigdSimDirty) self = migd_sim_dirty_new(&limits_iommu);
	g_autofree MigdIovaRange *many = g_new0(MigdIovaRange, 300);
	/* overlapping (joined), touching (kept apart), empty (dropped), unaligned (fine) */
	const MigdIovaRange odd[] = {
	    {8 * MiB, 2 * MiB}, {9 * MiB, 2 * MiB}, {11 * MiB, 1 * MiB}, {20 * MiB, 0}, {512, 100},
	};
	const MigdIovaRange *tracked;
	guint64 page_size = 4 * KiB;
	guint64 bitmap[4] = {0};
	guint n = 0;
	g_autoptr(GError) error = NULL;

	/* none of the vfio core's DMA_LOGGING_START checks: more than 256, and none at all */
	for (guint i = 0; i < 300; i++) {
		many[i].iova = i * 8 * KiB;
		many[i].length = 4 * KiB;
	}
	assert_true(migd_sim_dirty_start(self, many, 300, &page_size, &error));
	assert_non_null(migd_sim_dirty_get_tracked_ranges(self, &n));
	assert_int_equal(n, 300);
	/* a second start is still refused: the device layer decides what a restart means */
	expect_start_fails(self, many, 1, page_size, EINVAL);
	migd_sim_dirty_stop(self);
	assert_true(migd_sim_dirty_start(self, NULL, 0, &page_size, &error));
	migd_sim_dirty_get_tracked_ranges(self, &n);
	assert_int_equal(n, 0);
	assert_true(migd_sim_dirty_report(self, 0, 64 * KiB, 4 * KiB, bitmap, &error));
	assert_int_equal(bitmap[0], 0);
	migd_sim_dirty_stop(self);

	page_size = 4 * KiB;
	assert_true(migd_sim_dirty_start(self, odd, G_N_ELEMENTS(odd), &page_size, &error));
	tracked = migd_sim_dirty_get_tracked_ranges(self, &n);
	assert_int_equal(n, 3);
	assert_int_equal(tracked[0].iova, 512);
	assert_int_equal(tracked[0].length, 100);
	assert_int_equal(tracked[1].iova, 8 * MiB);
	assert_int_equal(tracked[1].length, 3 * MiB);
	assert_int_equal(tracked[2].iova, 11 * MiB);
	assert_int_equal(tracked[2].length, 1 * MiB);

	/* NO_CLEAR reads without clearing */
	migd_sim_dirty_record_dma_write(self, 8 * MiB, 1);
	assert_true(
	    migd_sim_dirty_report_full(self, 8 * MiB, 64 * 4 * KiB, 4 * KiB, TRUE, bitmap, &error));
	assert_int_equal(bitmap[0], 1);
	assert_int_equal(migd_sim_dirty_count_dirty(self), 1);
	assert_true(migd_sim_dirty_report_full(self, 8 * MiB, 64 * 4 * KiB, 4 * KiB, FALSE, bitmap,
					       &error));
	assert_int_equal(migd_sim_dirty_count_dirty(self), 0);
	assert_null(error);
}

/* one DMA stream, two trackers: every page written lands in the mirror as well */
static void
test_generate_mirrored(void **state)
{
	const MigdSimDirtyLimits limits_iommu = {
	    .max_ranges = G_MAXUINT,
	    .min_page_size = 4 * KiB,
	    .max_page_size = 4 * KiB,
	    .iommu = TRUE,
	};
	g_autoptr(MigdSimDirty) device = migd_sim_dirty_new(&limits_mlx5);
	g_autoptr(MigdSimDirty) iommu = migd_sim_dirty_new(&limits_iommu);
	g_autoptr(MigdSimDirty) plain = migd_sim_dirty_new(&limits_mlx5);
	MigdSimDmaPattern pattern = {.kind = MIGD_SIM_DMA_PATTERN_RANDOM};
	guint64 seed_a = 3, seed_b = 3;
	guint64 a[4] = {0}, b[4] = {0}, c[4] = {0};

	start_one(device, 1 * MiB, 1 * MiB);
	start_one(plain, 1 * MiB, 1 * MiB);
	start_one(iommu, 1 * MiB, 1 * MiB);
	/* the mirror changes nothing in the stream itself */
	assert_int_equal(
	    migd_sim_dirty_generate_mirrored(device, &pattern, 40 * 4 * KiB, &seed_a, iommu), 40);
	assert_int_equal(migd_sim_dirty_generate(plain, &pattern, 40 * 4 * KiB, &seed_b), 40);
	assert_int_equal(seed_a, seed_b);
	assert_true(migd_sim_dirty_report(device, 1 * MiB, 1 * MiB, 4 * KiB, a, NULL));
	assert_true(migd_sim_dirty_report(iommu, 1 * MiB, 1 * MiB, 4 * KiB, b, NULL));
	assert_true(migd_sim_dirty_report(plain, 1 * MiB, 1 * MiB, 4 * KiB, c, NULL));
	assert_memory_equal(a, b, sizeof(a));
	assert_memory_equal(a, c, sizeof(a));
	assert_true(migd_test_bitmap_weight(a, 4) > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_iommu_mode),
	    cmocka_unit_test(test_generate_mirrored),
	    cmocka_unit_test(test_core_num_ranges),
	    cmocka_unit_test(test_core_misaligned),
	    cmocka_unit_test(test_core_overflow),
	    cmocka_unit_test(test_core_overlap),
	    cmocka_unit_test(test_double_start),
	    cmocka_unit_test(test_unsupported),
	    cmocka_unit_test(test_combine_two),
	    cmocka_unit_test(test_combine_one),
	    cmocka_unit_test(test_page_size_clamp),
	    cmocka_unit_test(test_addr_space),
	    cmocka_unit_test(test_report_core_checks),
	    cmocka_unit_test(test_report_read_and_clear),
	    cmocka_unit_test(test_report_partial_range),
	    cmocka_unit_test(test_report_bits_only_set),
	    cmocka_unit_test(test_granularity_coarse),
	    cmocka_unit_test(test_granularity_fine),
	    cmocka_unit_test(test_pds_single_range),
	    cmocka_unit_test(test_eio_fault),
	    cmocka_unit_test(test_pattern_parse),
	    cmocka_unit_test(test_generate_determinism),
	    cmocka_unit_test(test_generate_hotspot),
	    cmocka_unit_test(test_generate_sequential),
	    cmocka_unit_test(test_large_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
