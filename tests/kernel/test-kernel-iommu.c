/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The kernel backend's IOMMU dirty tracking against the fake kernel in
 * fake-vfio-kernel.c: type1 VFIO_IOMMU_DIRTY_PAGES on the container, iommufd
 * HWPT dirty tracking on the cdev path (Debian's 6.12 has no CONFIG_IOMMUFD, so
 * this is where that path is proven), and an adopted fd that has neither.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "fake-vfio-kernel.h"

#define PAGE 4096ull
#define MiB  (1024ull * 1024)

static const MigdIovaRange guest[] = {{0x100000, MiB}, {0x400000, MiB}};

static void
assert_message_has(const GError *error, const gchar *needle)
{
	assert_non_null(error);
	if (strstr(error->message, needle) == NULL) {
		print_error("'%s' not in '%s'\n", needle, error->message);
		fail();
	}
}

/* --- type1 --- */

static void
test_type1_start_stop(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = open_group_device();
	MigdDevice *dev = MIGD_DEVICE(kdev);
	g_autoptr(GError) error = NULL;
	guint64 page_size = 65536;

	/* START takes no range and no page size: GET_BITMAP wants the smallest IOMMU page */
	assert_true(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, &error));
	assert_null(error);
	assert_int_equal(page_size, PAGE);
	assert_int_equal(fk.n_type1_start, 1);
	assert_true(fk.type1_tracking);
	assert_int_equal(fk.last_dirty_argsz, 8);
	/* the first GET_INFO learns how large the capability chain is, the second reads it */
	assert_int_equal(fk.n_get_info, 2);

	/* a second START is the kernel's no-op; STOP twice as well */
	page_size = 0;
	assert_true(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, &error));
	assert_int_equal(page_size, PAGE);
	assert_int_equal(fk.n_type1_start, 2);
	assert_true(migd_device_iommu_dirty_stop(dev, &error));
	assert_true(migd_device_iommu_dirty_stop(dev, &error));
	assert_null(error);
	assert_int_equal(fk.n_type1_stop, 2);
	assert_false(fk.type1_tracking);
}

static void
test_type1_page_size_from_cap(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = open_group_device();
	g_autoptr(GError) error = NULL;
	guint64 page_size = PAGE;

	/* arm64 with 64 KiB pages: the capability chain names the size, past another cap */
	fk.iova_pgsizes = 0x20010000ull;
	fk.cap_pgsize = 0x10000ull;
	assert_true(migd_device_iommu_dirty_start(MIGD_DEVICE(kdev), guest, 2, &page_size, &error));
	assert_int_equal(page_size, 0x10000);

	/* iommufd's compatibility container has no CAP_MIGRATION: iova_pgsizes decides */
	fk.no_cap_migration = TRUE;
	fk.iova_pgsizes = 0x40202000ull;
	fk.cap_pgsize = 0;
	page_size = PAGE;
	assert_true(migd_device_iommu_dirty_start(MIGD_DEVICE(kdev), guest, 2, &page_size, &error));
	assert_int_equal(page_size, 0x2000);
	assert_null(error);
}

static void
test_type1_report(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = open_group_device();
	MigdDevice *dev = MIGD_DEVICE(kdev);
	g_autoptr(GError) error = NULL;
	guint64 page_size = PAGE;
	guint64 bitmap[8] = {0};

	fk.type1_dma[0].iova = 0x100000;
	fk.type1_dma[0].size = MiB;
	fk.type1_dma[1].iova = 0x400000;
	fk.type1_dma[1].size = MiB;
	fk.n_type1_dma = 2;
	fk.type1_pinned[0] = 0x100000;
	fk.type1_pinned[1] = 0x1ff000;
	fk.type1_pinned[2] = 0x400000 + 70 * PAGE;
	fk.n_type1_pinned = 3;
	assert_true(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, &error));

	/* the kernel overwrites whole words: the caller's bits must survive (bounce + OR) */
	bitmap[0] = 1ull << 5;
	bitmap[3] = 1ull << 62;
	assert_true(
	    migd_device_iommu_dirty_report(dev, 0x100000, MiB, PAGE, FALSE, bitmap, &error));
	assert_null(error);
	assert_int_equal(fk.last_dirty_argsz, 8 + 40);
	assert_int_equal(fk.last_bitmap_size, 256 / 8);
	assert_int_equal(fk.last_bitmap_pgsize, PAGE);
	assert_int_equal(bitmap[0], (1ull << 0) | (1ull << 5));
	assert_int_equal(bitmap[3], (1ull << 63) | (1ull << 62));
	assert_int_equal(bitmap[4], 0);

	/* both mappings in one report ("may be clubbed"), the gap between them included */
	{
		guint64 big[16] = {0};
		assert_true(migd_device_iommu_dirty_report(dev, 0x100000, 4 * MiB, PAGE, FALSE, big,
							   &error));
		assert_int_equal(fk.last_bitmap_size, 1024 / 8);
		assert_int_equal(big[0], 1);
		assert_int_equal(big[3], 1ull << 63);
		/* 0x400000 is page 768 of the report, and page 70 of that mapping was pinned */
		assert_int_equal(big[(768 + 70) / 64], 1ull << ((768 + 70) % 64));
		for (guint i = 4; i < 16; i++) {
			if (i != (768 + 70) / 64)
				assert_int_equal(big[i], 0);
		}
	}
	assert_null(error);
}

static void
test_type1_report_everything_dirty(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = open_group_device();
	g_autoptr(GError) error = NULL;
	guint64 page_size = PAGE;
	guint64 bitmap[4] = {0};

	/* a passthrough device that pins nothing: every mapped page is dirty, every time */
	fk.type1_dma[0].iova = 0;
	fk.type1_dma[0].size = 100 * PAGE;
	fk.n_type1_dma = 1;
	fk.type1_non_pinned = TRUE;
	assert_true(migd_device_iommu_dirty_start(MIGD_DEVICE(kdev), guest, 2, &page_size, &error));
	for (guint round = 0; round < 2; round++) {
		memset(bitmap, 0, sizeof(bitmap));
		assert_true(migd_device_iommu_dirty_report(MIGD_DEVICE(kdev), 0, 100 * PAGE, PAGE,
							   FALSE, bitmap, &error));
		assert_int_equal(bitmap[0], G_MAXUINT64);
		assert_int_equal(bitmap[1], (1ull << 36) - 1);
	}
	assert_null(error);
}

static void
test_type1_report_errors(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = open_group_device();
	MigdDevice *dev = MIGD_DEVICE(kdev);
	guint64 page_size = PAGE;
	guint64 bitmap[8] = {0};
	struct {
		guint64 iova, length, page_size;
	} bad[] = {
	    {0x100000, MiB, 65536},		      /* not the smallest IOMMU page size */
	    {0x100000 + 512, MiB, PAGE},	      /* iova not aligned */
	    {0x100000, MiB - 512, PAGE},	      /* size not aligned */
	    {0x100000, 0, PAGE},		      /* empty */
	    {0x180000, MiB, PAGE},		      /* bisects the first mapping */
	    {0x100000, 3 * MiB + 2 * PAGE, PAGE},     /* bisects the second one */
	    {G_MAXUINT64 - PAGE + 1, 2 * PAGE, PAGE}, /* wraps */
	};
	guint n_get;

	fk.type1_dma[0].iova = 0x100000;
	fk.type1_dma[0].size = MiB;
	fk.type1_dma[1].iova = 0x400000;
	fk.type1_dma[1].size = MiB;
	fk.n_type1_dma = 2;

	/* not tracking: EINVAL */
	{
		g_autoptr(GError) error = NULL;
		assert_false(migd_device_iommu_dirty_report(dev, 0x100000, MiB, PAGE, FALSE, bitmap,
							    &error));
		assert_error(error, MIGD_KERNEL_ERROR, EINVAL);
		assert_message_has(error, "VFIO_IOMMU_DIRTY_PAGES(GET_BITMAP 0x100000+0x100000");
		assert_message_has(error, DEV_NAME);
	}
	assert_true(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, NULL));
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		assert_false(migd_device_iommu_dirty_report(
		    dev, bad[i].iova, bad[i].length, bad[i].page_size, FALSE, bitmap, &error));
		assert_error(error, MIGD_KERNEL_ERROR, EINVAL);
	}

	/* refused before the kernel: a page size that is not a power of two, and NO_CLEAR */
	n_get = fk.n_get_bitmap;
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GError) error2 = NULL;
		g_autoptr(GError) error3 = NULL;

		assert_false(migd_device_iommu_dirty_report(dev, 0x100000, MiB, 3 * PAGE, FALSE,
							    bitmap, &error));
		assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
		assert_false(
		    migd_device_iommu_dirty_report(dev, 0x100000, MiB, 0, FALSE, bitmap, &error2));
		assert_error(error2, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
		assert_false(migd_device_iommu_dirty_report(dev, 0x100000, MiB, PAGE, TRUE, bitmap,
							    &error3));
		assert_error(error3, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
		assert_message_has(error3, "NO_CLEAR is iommufd's");
		g_clear_error(&error);
		assert_false(
		    migd_device_iommu_dirty_report(dev, 0x100000, MiB, PAGE, FALSE, NULL, &error));
		assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	}
	assert_int_equal(fk.n_get_bitmap, n_get);
}

static void
test_type1_bitmap_limit(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = open_group_device();
	MigdDevice *dev = MIGD_DEVICE(kdev);
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	guint64 page_size = PAGE;
	guint64 bitmap[8] = {0};
	guint n_get;

	/* CAP_MIGRATION's max_dirty_bitmap_size: a larger report is refused unallocated */
	fk.max_dirty_bitmap = 16;
	assert_true(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, NULL));
	n_get = fk.n_get_bitmap;
	assert_true(
	    migd_device_iommu_dirty_report(dev, 0, 128 * PAGE, PAGE, FALSE, bitmap, &error));
	assert_int_equal(fk.last_bitmap_size, 16);
	assert_false(
	    migd_device_iommu_dirty_report(dev, 0, 129 * PAGE, PAGE, FALSE, bitmap, &error2));
	assert_error(error2, MIGD_KERNEL_ERROR, EINVAL);
	assert_message_has(error2, "max_dirty_bitmap_size 16");
	assert_int_equal(fk.n_get_bitmap, n_get + 1);

	/* without the capability the limit is the kernel's to apply (INT_MAX pages) */
	fk.no_cap_migration = TRUE;
	assert_true(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, NULL));
	assert_true(
	    migd_device_iommu_dirty_report(dev, 0, 129 * PAGE, PAGE, FALSE, bitmap, &error));
	assert_int_equal(fk.last_bitmap_size, 24);
	assert_int_equal(fk.n_get_bitmap, n_get + 2);
	assert_null(error);
}

static void
test_type1_errno(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = open_group_device();
	MigdDevice *dev = MIGD_DEVICE(kdev);
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	g_autoptr(GError) error3 = NULL;
	g_autoptr(GError) error4 = NULL;
	guint64 page_size = PAGE;

	/* iommufd's VFIO compatibility container: -ENOIOCTLCMD reaches userspace as ENOTTY */
	fk.dirty_pages_errno = ENOTTY;
	assert_false(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, &error));
	assert_error(error, MIGD_KERNEL_ERROR, ENOTTY);
	assert_message_has(error, "VFIO_IOMMU_DIRTY_PAGES(START) on " DEV_NAME);
	assert_message_has(error, "compatibility container");
	assert_int_equal(page_size, PAGE);
	assert_false(migd_device_iommu_dirty_stop(dev, &error2));
	assert_error(error2, MIGD_KERNEL_ERROR, ENOTTY);
	assert_message_has(error2, "VFIO_IOMMU_DIRTY_PAGES(STOP)");

	/* a v1 container: EACCES, kept as it is */
	fk.dirty_pages_errno = EACCES;
	assert_false(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, &error3));
	assert_error(error3, MIGD_KERNEL_ERROR, EACCES);

	/* GET_INFO fails: no START at all */
	fk.dirty_pages_errno = 0;
	fk.get_info_errno = EFAULT;
	assert_false(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, &error4));
	assert_error(error4, MIGD_KERNEL_ERROR, EFAULT);
	assert_message_has(error4, "VFIO_IOMMU_GET_INFO");
	assert_int_equal(fk.n_type1_start, 0);
}

/* --- iommufd --- */

static void
test_iommufd_open_dirty_hwpt(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = NULL;
	guint nfds = count_open_fds();

	fk.hw_info_errno = 0;
	fk.hw_caps = IOMMU_HW_CAP_DIRTY_TRACKING;
	kdev = open_cdev_device();
	/* attached straight to the dirty-tracking HWPT: no IOAS attach, no replace */
	assert_int_equal(fk.attached_pt, FAKE_DIRTY_HWPT_ID);
	assert_int_equal(migd_kernel_device_get_hwpt_id(kdev), FAKE_DIRTY_HWPT_ID);
	assert_int_equal(migd_kernel_device_get_ioas_id(kdev), 5);
	assert_true(migd_kernel_device_has_dirty_hwpt(kdev));
	assert_false(fk.hwpt_destroyed);
	assert_false(fk.hwpt_tracking);
	assert_int_equal(count_open_fds(), nfds + 2);
	g_clear_object(&kdev);
	assert_int_equal(count_open_fds(), nfds);
}

static void
test_iommufd_open_without_dirty(void **state)
{
	struct {
		gint hw_info_errno;
		guint64 hw_caps;
		gint alloc_errno, attach_errno;
		const gchar *step;
		gint errsv;
	} cases[] = {
	    /* before 6.6, or an emulated device (no iommufd_device) */
	    {ENOTTY, 0, 0, 0, "IOMMU_GET_HW_INFO", ENOTTY},
	    {ENOENT, 0, 0, 0, "IOMMU_GET_HW_INFO", ENOENT},
	    /* the IOMMU cannot track dirty pages for this device */
	    {0, 0, 0, 0, "no IOMMU_HW_CAP_DIRTY_TRACKING", EOPNOTSUPP},
	    {0, IOMMU_HW_CAP_DIRTY_TRACKING, ENOMEM, 0, "IOMMU_HWPT_ALLOC(DIRTY_TRACKING)", ENOMEM},
	    {0, IOMMU_HW_CAP_DIRTY_TRACKING, 0, EINVAL,
	     "VFIO_DEVICE_ATTACH_IOMMUFD_PT(dirty-tracking HWPT)", EINVAL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(MigdKernelDevice) kdev = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(GError) error2 = NULL;
		g_autoptr(GError) error3 = NULL;
		guint64 page_size = PAGE;
		guint64 bitmap[4] = {0};
		guint nfds = count_open_fds();

		fk.hw_info_errno = cases[i].hw_info_errno;
		fk.hw_caps = cases[i].hw_caps;
		fk.hwpt_alloc_errno = cases[i].alloc_errno;
		fk.attach_hwpt_errno = cases[i].attach_errno;
		fk.dirty_hwpt_id = 0;
		fk.hwpt_destroyed = FALSE;
		fk.cdev_bound = FALSE;
		fk.n_set_dirty = fk.n_get_dirty = 0;

		/* the open still succeeds, on the kernel's automatic domain */
		kdev = open_cdev_device();
		assert_int_equal(fk.attached_pt, 5);
		assert_int_equal(migd_kernel_device_get_hwpt_id(kdev), FAKE_AUTO_HWPT_ID);
		assert_false(migd_kernel_device_has_dirty_hwpt(kdev));
		/* a HWPT that could not be attached is destroyed again */
		assert_int_equal(fk.hwpt_destroyed, cases[i].attach_errno != 0);

		/* and IOMMU dirty tracking answers EOPNOTSUPP, with the reason */
		assert_false(
		    migd_device_iommu_dirty_start(MIGD_DEVICE(kdev), guest, 2, &page_size, &error));
		assert_error(error, MIGD_KERNEL_ERROR, EOPNOTSUPP);
		assert_message_has(error, "IOMMU_HWPT_SET_DIRTY_TRACKING(ENABLE) on " DEV_NAME);
		assert_message_has(error, cases[i].step);
		assert_message_has(error, g_strerror(cases[i].errsv));
		assert_int_equal(page_size, PAGE);
		assert_false(migd_device_iommu_dirty_report(MIGD_DEVICE(kdev), 0, MiB, PAGE, FALSE,
							    bitmap, &error2));
		assert_error(error2, MIGD_KERNEL_ERROR, EOPNOTSUPP);
		assert_false(migd_device_iommu_dirty_stop(MIGD_DEVICE(kdev), &error3));
		assert_error(error3, MIGD_KERNEL_ERROR, EOPNOTSUPP);
		assert_int_equal(fk.n_set_dirty + fk.n_get_dirty, 0);
		g_clear_object(&kdev);
		assert_int_equal(count_open_fds(), nfds);
	}
}

static void
test_iommufd_start_page_size(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = NULL;
	const guint64 wishes[][2] = {
	    {0, PAGE},
	    {1024, PAGE},
	    {PAGE, PAGE},
	    {3 * PAGE, 2 * PAGE},
	    {65536, 65536},
	    {2 * MiB + 1, 2 * MiB},
	    {1ull << 30, 1ull << 30},
	};

	fk.hw_info_errno = 0;
	fk.hw_caps = IOMMU_HW_CAP_DIRTY_TRACKING;
	kdev = open_cdev_device();
	/* GET_DIRTY_BITMAP takes any power-of-two page size: the wish, from a host page up */
	for (guint i = 0; i < G_N_ELEMENTS(wishes); i++) {
		g_autoptr(GError) error = NULL;
		guint64 page_size = wishes[i][0];

		assert_true(
		    migd_device_iommu_dirty_start(MIGD_DEVICE(kdev), guest, 2, &page_size, &error));
		assert_null(error);
		assert_int_equal(page_size, wishes[i][1]);
		assert_true(fk.hwpt_tracking);
	}
	assert_int_equal(fk.n_set_dirty, G_N_ELEMENTS(wishes));
}

static void
test_iommufd_report(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = NULL;
	MigdDevice *dev;
	g_autoptr(GError) error = NULL;
	guint64 page_size = PAGE;
	guint64 bitmap[8] = {0};

	fk.hw_info_errno = 0;
	fk.hw_caps = IOMMU_HW_CAP_DIRTY_TRACKING;
	kdev = open_cdev_device();
	dev = MIGD_DEVICE(kdev);
	assert_true(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, &error));
	fk.hwpt_dirty_iova[0] = 0x100000;
	fk.hwpt_dirty_iova[1] = 0x100000 + 65 * PAGE;
	fk.hwpt_dirty_iova[2] = 0x400000 + 3 * PAGE;
	fk.n_hwpt_dirty = 3;

	/* NO_CLEAR: reported, and still there for the next report */
	bitmap[0] = 1ull << 7; /* GET_DIRTY_BITMAP only sets bits: straight into the caller's */
	assert_true(migd_device_iommu_dirty_report(dev, 0x100000, MiB, PAGE, TRUE, bitmap, &error));
	assert_int_equal(fk.last_get_dirty_flags, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
	assert_int_equal(bitmap[0], (1ull << 0) | (1ull << 7));
	assert_int_equal(bitmap[1], 1ull << 1);
	assert_int_equal(fk.n_hwpt_dirty, 3);

	/* read and clear, at 64 KiB pages over both ranges and the gap */
	memset(bitmap, 0, sizeof(bitmap));
	assert_true(
	    migd_device_iommu_dirty_report(dev, 0x100000, 4 * MiB, 65536, FALSE, bitmap, &error));
	assert_int_equal(fk.last_get_dirty_flags, 0);
	/* pages 0 and 65 of 4 KiB are in 64 KiB pages 0 and 4; 0x400000 + 12 KiB in page 48 */
	assert_int_equal(bitmap[0], (1ull << 0) | (1ull << 4) | (1ull << 48));
	assert_int_equal(fk.n_hwpt_dirty, 0);
	memset(bitmap, 0, sizeof(bitmap));
	assert_true(
	    migd_device_iommu_dirty_report(dev, 0x100000, MiB, PAGE, FALSE, bitmap, &error));
	assert_int_equal(bitmap[0] | bitmap[1], 0);

	assert_true(migd_device_iommu_dirty_stop(dev, &error));
	assert_false(fk.hwpt_tracking);
	assert_null(error);
}

static void
test_iommufd_report_errors(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = NULL;
	MigdDevice *dev;
	guint64 page_size = PAGE;
	guint64 bitmap[8] = {0};
	struct {
		guint64 iova, length, page_size;
		gint errsv;
	} bad[] = {
	    {0x100000, 0, PAGE, EINVAL},			 /* empty */
	    {0x100000 + 512, MiB, PAGE, EINVAL},		 /* not aligned to the IOAS */
	    {0x110000 - PAGE, MiB, 65536, EINVAL},		 /* not aligned to the page size */
	    {G_MAXUINT64 - PAGE + 1, 2 * PAGE, PAGE, EOVERFLOW}, /* wraps */
	};

	fk.hw_info_errno = 0;
	fk.hw_caps = IOMMU_HW_CAP_DIRTY_TRACKING;
	kdev = open_cdev_device();
	dev = MIGD_DEVICE(kdev);
	assert_true(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, NULL));
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		assert_false(migd_device_iommu_dirty_report(
		    dev, bad[i].iova, bad[i].length, bad[i].page_size, FALSE, bitmap, &error));
		assert_error(error, MIGD_KERNEL_ERROR, bad[i].errsv);
		assert_message_has(error, "IOMMU_HWPT_GET_DIRTY_BITMAP(");
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GError) error2 = NULL;
		guint n = fk.n_get_dirty;

		assert_false(
		    migd_device_iommu_dirty_report(dev, 0x100000, MiB, 0, TRUE, bitmap, &error));
		assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
		assert_int_equal(fk.n_get_dirty, n);
		/* a kernel error on enable keeps its errno */
		fk.set_dirty_errno = EBUSY;
		assert_false(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, &error2));
		assert_error(error2, MIGD_KERNEL_ERROR, EBUSY);
		assert_message_has(error2, "IOMMU_HWPT_SET_DIRTY_TRACKING(ENABLE) on " DEV_NAME);
	}
}

/* --- adopted --- */

static void
test_adopted_not_ours(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	MigdDevice *dev = MIGD_DEVICE(kdev);
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	g_autoptr(GError) error3 = NULL;
	guint64 page_size = PAGE;
	guint64 bitmap[4] = {0};

	assert_false(migd_device_iommu_dirty_start(dev, guest, 2, &page_size, &error));
	assert_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
	assert_message_has(error, "adopted");
	assert_message_has(error, "VMM");
	assert_false(migd_device_iommu_dirty_report(dev, 0, MiB, PAGE, FALSE, bitmap, &error2));
	assert_error(error2, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
	assert_false(migd_device_iommu_dirty_stop(dev, &error3));
	assert_error(error3, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
	assert_int_equal(fk.n_get_info + fk.n_set_dirty, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fake_setup, fake_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_type1_start_stop),
	    T(test_type1_page_size_from_cap),
	    T(test_type1_report),
	    T(test_type1_report_everything_dirty),
	    T(test_type1_report_errors),
	    T(test_type1_bitmap_limit),
	    T(test_type1_errno),
	    T(test_iommufd_open_dirty_hwpt),
	    T(test_iommufd_open_without_dirty),
	    T(test_iommufd_start_page_size),
	    T(test_iommufd_report),
	    T(test_iommufd_report_errors),
	    T(test_adopted_not_ours),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
