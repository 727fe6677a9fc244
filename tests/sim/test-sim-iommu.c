/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The simulated platform IOMMU's dirty tracking (iommu_dirty_*): iommufd HWPT
 * semantics for the PCI profiles, type1 VFIO_IOMMU_DIRTY_PAGES for mtty, fed by
 * the same simulated DMA as device logging, and the iommu_dirty=0 knob.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "migd-dirty-tracker.h"
#include "migd-test-util.h"
#include "sim-test-util.h"

#define PAGE ((guint64)4096)

/* two guest mappings with a gap: 1 MiB at 1 MiB, 1 MiB at 4 MiB */
static const MigdIovaRange mapped[] = {{1 * MiB, 1 * MiB}, {4 * MiB, 1 * MiB}};

static void
assert_kernel_errno(GError **error, gint errnum)
{
	sim_assert_errno(*error, errnum);
	g_clear_error(error);
}

static void
assert_migd_error(GError **error, MigdError code)
{
	assert_non_null(*error);
	if (!g_error_matches(*error, MIGD_ERROR, code))
		fail_msg("expected MIGD_ERROR %d, got %s/%d: %s", code,
			 g_quark_to_string((*error)->domain), (*error)->code, (*error)->message);
	g_clear_error(error);
}

static guint64
iommu_start(MigdDevice *dev, guint64 wish)
{
	g_autoptr(GError) error = NULL;
	guint64 page_size = wish;

	if (!migd_device_iommu_dirty_start(dev, mapped, G_N_ELEMENTS(mapped), &page_size, &error))
		fail_msg("iommu_dirty_start: %s", error->message);
	return page_size;
}

/* --- iommufd flavour (PCI profiles) --- */

static void
test_hwpt_no_log_ops(void **state)
{
	/* hisi_acc has no DMA logging, yet its DMA reaches the IOMMU's dirty bits */
	g_autoptr(MigdDevice) dev = sim_new("hisi_acc:dma_pattern=sequential");
	g_autoptr(GError) error = NULL;
	guint64 bitmap[16] = {0};

	assert_false(migd_device_dma_logging_start(dev, mapped, 2, &(guint64){PAGE}, &error));
	assert_kernel_errno(&error, ENOTTY);
	/* nothing tracks yet: the write changes no bitmap */
	assert_int_equal(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 8 * PAGE), 0);

	assert_int_equal(iommu_start(dev, PAGE), PAGE);
	assert_true(migd_sim_device_iommu_dirty_is_active(MIGD_SIM_DEVICE(dev)));
	assert_false(migd_sim_device_dirty_is_active(MIGD_SIM_DEVICE(dev)));
	/* sequential: 300 pages from the first mapping's start, into the second one */
	assert_int_equal(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 300 * PAGE), 300);

	/* one report across both mappings and the gap (1 MiB .. 5 MiB = 1024 pages) */
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 4 * MiB, PAGE, TRUE, bitmap, &error));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 16), 300);
	assert_int_equal(bitmap[0], G_MAXUINT64);
	assert_int_equal(bitmap[3], G_MAXUINT64);
	assert_int_equal(bitmap[4] | bitmap[11], 0); /* the gap */
	/* pages 256..299 are the first 44 pages of the mapping at 4 MiB (page 768 on) */
	assert_int_equal(bitmap[12], (1ull << 44) - 1);

	/* NO_CLEAR kept them; a clearing report takes them */
	memset(bitmap, 0, sizeof(bitmap));
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 4 * MiB, PAGE, FALSE, bitmap, &error));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 16), 300);
	memset(bitmap, 0, sizeof(bitmap));
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 4 * MiB, PAGE, FALSE, bitmap, &error));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 16), 0);

	/* stopped: no error, no bits (the IOPTEs' dirty bits stay clear) */
	assert_true(migd_device_iommu_dirty_stop(dev, &error));
	assert_true(migd_device_iommu_dirty_stop(dev, &error));
	assert_false(migd_sim_device_iommu_dirty_is_active(MIGD_SIM_DEVICE(dev)));
	assert_int_equal(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 8 * PAGE), 0);
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 1 * MiB, PAGE, FALSE, bitmap, &error));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 16), 0);
	assert_null(error);
}

static void
test_hwpt_page_sizes(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("pds:dma_pattern=sequential");
	g_autoptr(GError) error = NULL;
	const guint64 wishes[][2] = {
	    {0, PAGE}, {1024, PAGE}, {3 * PAGE, 2 * PAGE}, {65536, 65536}, {2 * MiB, 2 * MiB},
	};
	guint64 bitmap[4] = {0};

	/* the wish as a power of two from 4 KiB, as the kernel backend answers for iommufd */
	for (guint i = 0; i < G_N_ELEMENTS(wishes); i++)
		assert_int_equal(iommu_start(dev, wishes[i][0]), wishes[i][1]);

	/* tracked at 64 KiB, reported at 4 KiB: a dirty 64 KiB page sets 16 bits */
	assert_int_equal(iommu_start(dev, 65536), 65536);
	assert_int_equal(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 1), 1);
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 256 * PAGE, PAGE, FALSE, bitmap, &error));
	assert_int_equal(bitmap[0], 0xffff);

	/* enabling again clears the dirty bits (iopt_set_dirty_tracking()) */
	assert_int_equal(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 1), 1);
	assert_int_equal(iommu_start(dev, 65536), 65536);
	memset(bitmap, 0, sizeof(bitmap));
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 256 * PAGE, PAGE, FALSE, bitmap, &error));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 4), 0);
	assert_null(error);
}

static void
test_hwpt_report_errors(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mlx5");
	g_autoptr(GError) error = NULL;
	guint64 bitmap[4] = {0};

	iommu_start(dev, PAGE);
	/* iommufd_check_iova_range() */
	assert_false(migd_device_iommu_dirty_report(dev, 1 * MiB, 0, PAGE, FALSE, bitmap, &error));
	assert_kernel_errno(&error, EINVAL);
	assert_false(
	    migd_device_iommu_dirty_report(dev, 1 * MiB + 512, PAGE, PAGE, FALSE, bitmap, &error));
	assert_kernel_errno(&error, EINVAL);
	assert_false(migd_device_iommu_dirty_report(dev, 1 * MiB + PAGE, 65536, 65536, FALSE,
						    bitmap, &error));
	assert_kernel_errno(&error, EINVAL);
	assert_false(migd_device_iommu_dirty_report(dev, G_MAXUINT64 - PAGE + 1, 2 * PAGE, PAGE,
						    FALSE, bitmap, &error));
	assert_kernel_errno(&error, EOVERFLOW);
	/* refused before the "kernel", as the kernel backend does */
	assert_false(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, PAGE, 3 * PAGE, FALSE, bitmap, &error));
	assert_migd_error(&error, MIGD_ERROR_INVALID_ARGUMENT);
	assert_false(migd_device_iommu_dirty_report(dev, 1 * MiB, PAGE, PAGE, FALSE, NULL, &error));
	assert_migd_error(&error, MIGD_ERROR_INVALID_ARGUMENT);
}

static void
test_hwpt_no_range_limit(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("hisi_acc:dma_pattern=random,seed=9");
	g_autoptr(GError) error = NULL;
	g_autofree MigdIovaRange *many = g_new0(MigdIovaRange, 300);
	g_autofree guint64 *bitmap = g_new0(guint64, 300 * 2 / 64 + 1);
	guint64 page_size = PAGE;

	/* 300 mappings, beyond DMA logging's 256; an IOMMU takes them all */
	for (guint i = 0; i < 300; i++) {
		many[i].iova = (guint64)i * 2 * PAGE;
		many[i].length = PAGE;
	}
	assert_true(migd_device_iommu_dirty_start(dev, many, 300, &page_size, &error));
	assert_true(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 1000 * PAGE) > 0);
	assert_true(
	    migd_device_iommu_dirty_report(dev, 0, 600 * PAGE, PAGE, FALSE, bitmap, &error));
	/* only mapped pages (the even ones) can be dirty */
	for (guint i = 0; i < 600; i++) {
		if (i % 2 == 1)
			assert_false(bitmap[i / 64] & (1ull << (i % 64)));
	}
	assert_true(migd_test_bitmap_weight(bitmap, 300 * 2 / 64 + 1) > 0);

	/* no mappings at all: tracking on, nothing to report */
	assert_true(migd_device_iommu_dirty_start(dev, NULL, 0, &page_size, &error));
	memset(bitmap, 0, 8);
	assert_true(migd_device_iommu_dirty_report(dev, 0, 64 * PAGE, PAGE, FALSE, bitmap, &error));
	assert_int_equal(bitmap[0], 0);
	assert_null(error);
}

static void
test_same_dma_as_device_logging(void **state)
{
	/* mlx5: device logging and the IOMMU track the same mappings, see the same writes */
	g_autoptr(MigdDevice) dev = sim_new("mlx5:dma_pattern=random,seed=5");
	g_autoptr(GError) error = NULL;
	guint64 dev_page = PAGE;
	guint64 dev_bits[16] = {0};
	guint64 iommu_bits[16] = {0};

	assert_true(migd_device_dma_logging_start(dev, mapped, 2, &dev_page, &error));
	assert_int_equal(dev_page, PAGE);
	assert_int_equal(iommu_start(dev, PAGE), PAGE);
	assert_int_equal(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 100 * PAGE), 100);
	for (guint i = 0; i < 2; i++) {
		guint64 off = (mapped[i].iova - mapped[0].iova) / PAGE / 64;
		assert_true(migd_device_dma_logging_report(dev, mapped[i].iova, mapped[i].length,
							   PAGE, dev_bits + off, &error));
		assert_true(migd_device_iommu_dirty_report(dev, mapped[i].iova, mapped[i].length,
							   PAGE, FALSE, iommu_bits + off, &error));
	}
	assert_true(migd_test_bitmap_weight(dev_bits, 16) > 0);
	assert_memory_equal(dev_bits, iommu_bits, sizeof(dev_bits));

	/* device logging stops: the DMA goes on and the IOMMU alone sees it */
	assert_true(migd_device_dma_logging_stop(dev, &error));
	assert_int_equal(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 10 * PAGE), 10);
	memset(iommu_bits, 0, sizeof(iommu_bits));
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 4 * MiB, PAGE, FALSE, iommu_bits, &error));
	assert_true(migd_test_bitmap_weight(iommu_bits, 16) > 0 &&
		    migd_test_bitmap_weight(iommu_bits, 16) <= 10);
	assert_null(error);
}

static void
test_dma_rate_reaches_iommu(void **state)
{
	/* 64 MiB/s of random writes over 512 pages: 20 ms dirty some of them */
	g_autoptr(MigdDevice) dev = sim_new("hisi_acc:dma_pattern=random,dma_rate=64M");
	g_autoptr(GError) error = NULL;
	guint64 bitmap[16] = {0};

	iommu_start(dev, PAGE);
	g_usleep(20000);
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 4 * MiB, PAGE, FALSE, bitmap, &error));
	assert_true(migd_test_bitmap_weight(bitmap, 16) > 0);
	assert_int_equal(bitmap[4] | bitmap[5] | bitmap[6] | bitmap[7], 0);

	/* a stopped device does no DMA */
	sim_go(dev, MIGD_STATE_STOP, NULL);
	memset(bitmap, 0, sizeof(bitmap));
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 4 * MiB, PAGE, FALSE, bitmap, &error));
	g_usleep(20000);
	memset(bitmap, 0, sizeof(bitmap));
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 4 * MiB, PAGE, FALSE, bitmap, &error));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 16), 0);
	assert_null(error);
}

static void
test_iommu_dirty_off(void **state)
{
	const gchar *specs[] = {"hisi_acc:iommu_dirty=0", "mtty:iommu_dirty=0",
				"mlx5:iommu_dirty=false"};

	for (guint i = 0; i < G_N_ELEMENTS(specs); i++) {
		g_autoptr(MigdDevice) dev = sim_new(specs[i]);
		g_autoptr(GError) error = NULL;
		guint64 page_size = PAGE;
		guint64 bitmap[4] = {0};

		/* a platform IOMMU without dirty tracking: EOPNOTSUPP, as the kernel says */
		assert_false(migd_device_iommu_dirty_start(dev, mapped, 2, &page_size, &error));
		assert_non_null(strstr(error->message, "iommu_dirty=0"));
		assert_kernel_errno(&error, EOPNOTSUPP);
		assert_int_equal(page_size, PAGE);
		assert_false(migd_device_iommu_dirty_report(dev, 1 * MiB, PAGE, PAGE, FALSE, bitmap,
							    &error));
		assert_kernel_errno(&error, EOPNOTSUPP);
		assert_false(migd_device_iommu_dirty_stop(dev, &error));
		assert_kernel_errno(&error, EOPNOTSUPP);
	}
}

/* --- type1 flavour (mtty) --- */

static void
test_type1_mtty(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mtty");
	g_autoptr(GError) error = NULL;
	guint64 bitmap[16] = {0};

	/* GET_BITMAP before START: EINVAL */
	assert_false(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 1 * MiB, PAGE, FALSE, bitmap, &error));
	assert_kernel_errno(&error, EINVAL);

	/* the page size is the smallest IOMMU page, whatever the wish; START again: no-op */
	assert_int_equal(iommu_start(dev, 65536), PAGE);
	assert_int_equal(iommu_start(dev, 0), PAGE);
	assert_true(migd_sim_device_iommu_dirty_is_active(MIGD_SIM_DEVICE(dev)));

	/* mtty does no DMA: nothing is ever dirty */
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 4 * MiB, PAGE, FALSE, bitmap, &error));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 16), 0);

	/* vfio_iommu_type1_dirty_pages(GET_BITMAP)'s rules */
	assert_false(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 1 * MiB, 65536, FALSE, bitmap, &error));
	assert_kernel_errno(&error, EINVAL);
	assert_false(migd_device_iommu_dirty_report(dev, 1 * MiB + 512, 1 * MiB, PAGE, FALSE,
						    bitmap, &error));
	assert_kernel_errno(&error, EINVAL);
	assert_false(migd_device_iommu_dirty_report(dev, 1 * MiB, 0, PAGE, FALSE, bitmap, &error));
	assert_kernel_errno(&error, EINVAL);
	/* half of the first mapping, and a range ending inside the second */
	assert_false(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 256 * KiB, PAGE, FALSE, bitmap, &error));
	assert_kernel_errno(&error, EINVAL);
	assert_false(migd_device_iommu_dirty_report(dev, 3 * MiB, 1 * MiB + PAGE, PAGE, FALSE,
						    bitmap, &error));
	assert_kernel_errno(&error, EINVAL);
	assert_false(migd_device_iommu_dirty_report(dev, G_MAXUINT64 - PAGE + 1, 2 * PAGE, PAGE,
						    FALSE, bitmap, &error));
	assert_kernel_errno(&error, EINVAL);
	/* a range of the gap only, and one that holds both mappings whole: fine */
	assert_true(
	    migd_device_iommu_dirty_report(dev, 2 * MiB, 2 * MiB, PAGE, FALSE, bitmap, &error));
	assert_true(
	    migd_device_iommu_dirty_report(dev, 0, 8 * MiB, PAGE, FALSE, (guint64[32]){0}, &error));

	/* type1 always clears: NO_CLEAR is refused, as the kernel backend refuses it */
	assert_false(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 1 * MiB, PAGE, TRUE, bitmap, &error));
	assert_migd_error(&error, MIGD_ERROR_NOT_SUPPORTED);

	/* STOP twice is fine; GET_BITMAP after it: EINVAL again */
	assert_true(migd_device_iommu_dirty_stop(dev, &error));
	assert_true(migd_device_iommu_dirty_stop(dev, &error));
	assert_false(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 1 * MiB, PAGE, FALSE, bitmap, &error));
	assert_kernel_errno(&error, EINVAL);
}

static void
test_type1_mtty_pinned_writes(void **state)
{
	/* pages an mdev pins and writes (vfio_dma_rw) are what type1 reports */
	g_autoptr(MigdDevice) dev = sim_new("mtty:dma_pattern=sequential");
	g_autoptr(GError) error = NULL;
	guint64 bitmap[16] = {0};

	iommu_start(dev, PAGE);
	assert_int_equal(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 3 * PAGE), 3);
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 4 * MiB, PAGE, FALSE, bitmap, &error));
	assert_int_equal(bitmap[0], 0x7);
	memset(bitmap, 0, sizeof(bitmap));
	assert_true(
	    migd_device_iommu_dirty_report(dev, 1 * MiB, 4 * MiB, PAGE, FALSE, bitmap, &error));
	assert_int_equal(migd_test_bitmap_weight(bitmap, 16), 0);
	assert_null(error);
}

/* --- through the dirty tracker --- */

static void
test_tracker_on_sim_iommu(void **state)
{
	/* hisi_acc: no device logging, so the tracker runs on the IOMMU, not all-dirty */
	g_autoptr(MigdDevice) dev = sim_new("hisi_acc:dma_pattern=sequential");
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdDirtyTracker) tracker = NULL;
	MigdDirtyTrackerStats stats;

	tracker =
	    migd_dirty_tracker_start(dev, NULL, mapped, 2, MIGD_DIRTY_FALLBACK_REFUSE, &error);
	if (tracker == NULL)
		fail_msg("%s", error->message);
	assert_string_equal(migd_dirty_tracker_get_kind(tracker), "iommu");
	assert_true(migd_sim_device_iommu_dirty_is_active(MIGD_SIM_DEVICE(dev)));
	assert_int_equal(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 5 * PAGE), 5);
	assert_true(migd_dirty_tracker_sync(tracker, &error));
	migd_dirty_tracker_get_stats(tracker, &stats);
	assert_int_equal(stats.dirty_pages, 5 * PAGE / migd_dirty_tracker_get_page_size(tracker));
	assert_int_equal(stats.total_pages, 2 * MiB / migd_dirty_tracker_get_page_size(tracker));
	assert_true(migd_dirty_tracker_sync(tracker, &error));
	migd_dirty_tracker_get_stats(tracker, &stats);
	assert_int_equal(stats.dirty_pages, 0);
	g_clear_pointer(&tracker, migd_dirty_tracker_free);
	assert_false(migd_sim_device_iommu_dirty_is_active(MIGD_SIM_DEVICE(dev)));
	assert_null(error);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hwpt_no_log_ops),
	    cmocka_unit_test(test_hwpt_page_sizes),
	    cmocka_unit_test(test_hwpt_report_errors),
	    cmocka_unit_test(test_hwpt_no_range_limit),
	    cmocka_unit_test(test_same_dma_as_device_logging),
	    cmocka_unit_test(test_dma_rate_reaches_iommu),
	    cmocka_unit_test(test_iommu_dirty_off),
	    cmocka_unit_test(test_type1_mtty),
	    cmocka_unit_test(test_type1_mtty_pinned_writes),
	    cmocka_unit_test(test_tracker_on_sim_iommu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
