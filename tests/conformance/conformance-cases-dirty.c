/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Conformance case "dirty-tracking-fallback": what an mtty device's dirty
 * tracking answers on a container without DMA mappings, and what the dirty
 * tracker makes of it.
 *
 * Device DMA logging: mtty has log_ops whose callbacks do nothing, so PROBE and
 * START succeed, but REPORT fails with EOPNOTSUPP on a kernel without
 * CONFIG_IOMMUFD_DRIVER (Debian 12's 6.12): the iova_bitmap helpers are stubs.
 * The IOMMU: mtty is registered with vfio_register_emulated_iommu_dev(), so its
 * group sits in the type1 container as an emulated group, and
 * VFIO_IOMMU_DIRTY_PAGES works: the page size is the smallest IOMMU page
 * (PAGE_MASK's lowest bit: 4 KiB), GET_BITMAP reports the pages mdevs pinned
 * (none: mtty does no DMA) and refuses the wrong page size, misaligned or
 * empty ranges and any call while not tracking (EINVAL); STOP is idempotent.
 * The ranges given to START are the guest's mappings as the caller knows them;
 * type1 tracks the container's own (none here), so no report below bisects
 * one (the simulator models the ranges as mappings, the kernel has none).
 */
#include "config.h"

#include <string.h>

#include "conformance-cases.h"
#include "migd-dirty-tracker.h"
#include "migd-error.h"
#include "migd-test-util.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)

/* "iommu", "all-dirty", "device", or the error's name when the tracker refused */
static gchar *
conf_tracker_try(ConfRun *run, MigdDevice *dev, const MigdIovaRange *ranges, guint n_ranges,
		 MigdDirtyFallback fallback, const gchar *key)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdDirtyTracker) tracker = NULL;
	gchar *kind;

	tracker = migd_dirty_tracker_start(dev, NULL, ranges, n_ranges, fallback, &error);
	if (tracker == NULL) {
		kind = conf_error_name(error);
		conf_sig(run, "%s=%s", key, kind);
		return kind;
	}
	kind = g_strdup(migd_dirty_tracker_get_kind(tracker));
	conf_sig(run, "%s=%s", key, kind);
	/* one sync: what the windows hold afterwards */
	{
		g_autoptr(GError) error_sync = NULL;
		MigdDirtyTrackerStats stats = {0};
		g_autofree gchar *sync_key = g_strdup_printf("%s_sync", key);

		migd_dirty_tracker_sync(tracker, &error_sync);
		conf_expect_err(run, sync_key, error_sync, "ok");
		migd_dirty_tracker_get_stats(tracker, &stats);
		conf_sig(run, "%s_dirty=%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, key,
			 stats.dirty_pages, stats.total_pages);
		conf_sig(run, "%s_errors=%" G_GUINT64_FORMAT, key, stats.provider_errors);
	}
	return kind;
}

/*
 * Opened by cdev, an mdev is an emulated device: bound to the iommufd as an
 * iommufd_access, with no iommufd_device, so IOMMU_GET_HW_INFO answers ENOENT
 * and no dirty-tracking HWPT exists; every IOMMU dirty call answers
 * EOPNOTSUPP naming that step. FALSE: nothing started.
 */
static gboolean
conf_dirty_iommufd_mdev(ConfRun *run, MigdDevice *dev)
{
	const MigdIovaRange range = {0, 1 * MiB};
	guint64 bitmap[4] = {0};
	guint64 page_size = 4 * KiB;
	g_autoptr(GError) e_start = NULL;
	g_autoptr(GError) e_report = NULL;

	migd_device_iommu_dirty_start(dev, &range, 1, &page_size, &e_start);
	conf_expect_err(run, "iommufd_start", e_start, "EOPNOTSUPP");
	if (e_start != NULL && strstr(e_start->message, "IOMMU_GET_HW_INFO") == NULL)
		conf_fail(run, "iommufd_start: the reason does not name IOMMU_GET_HW_INFO: %s",
			  e_start->message);
	migd_device_iommu_dirty_report(dev, 0, 1 * MiB, 4 * KiB, FALSE, bitmap, &e_report);
	conf_expect_err(run, "iommufd_report", e_report, "EOPNOTSUPP");
	return e_start == NULL;
}

gboolean
conf_case_dirty_fallback(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	MigdDevice *dev = ctx->a;
	const MigdIovaRange ranges[2] = {{0, 1 * MiB}, {4 * MiB, 1 * MiB}};
	const MigdDeviceFeatures *features;
	guint64 bitmap[32] = {0};
	guint64 page_size;
	gboolean iommu_ok;
	g_autofree gchar *refuse = NULL;
	g_autofree gchar *allow = NULL;

	if (ctx->sim && ctx->by_cdev) {
		run->skip = "the simulator models type1's container, not an iommufd HWPT";
		return TRUE;
	}
	if (ctx->sim && ctx->iommufd_driver) {
		run->skip = CONF_SKIP_IOMMUFD_DRIVER;
		return TRUE;
	}
	if (!migd_device_probe(dev, error))
		return FALSE;
	features = migd_device_get_features(dev);

	/* device DMA logging: present to PROBE and START, useless to REPORT (unless
	 * the kernel has CONFIG_IOMMUFD_DRIVER: then it reports, nothing dirty) */
	conf_expect_u64(run, "dma_probe", features->dma_logging, TRUE);
	{
		g_autoptr(GError) e_start = NULL;
		g_autoptr(GError) e_report = NULL;
		g_autoptr(GError) e_stop = NULL;

		page_size = 4 * KiB;
		migd_device_dma_logging_start(dev, ranges, 2, &page_size, &e_start);
		conf_expect_err(run, "dma_start", e_start, "ok");
		migd_device_dma_logging_report(dev, 0, 1 * MiB, 4 * KiB, bitmap, &e_report);
		conf_expect_err(run, "dma_report", e_report,
				ctx->iommufd_driver ? "ok" : "EOPNOTSUPP");
		migd_device_dma_logging_stop(dev, &e_stop);
		conf_expect_err(run, "dma_stop", e_stop, "ok");
	}

	if (ctx->by_cdev) {
		iommu_ok = conf_dirty_iommufd_mdev(run, dev);
	} else {
		/* the IOMMU: type1 VFIO_IOMMU_DIRTY_PAGES on the container */
		{
			g_autoptr(GError) e_before = NULL;
			g_autoptr(GError) e_start = NULL;
			g_autoptr(GError) e_again = NULL;
			g_autoptr(GError) e_report = NULL;
			g_autoptr(GError) e_both = NULL;
			g_autoptr(GError) e_page = NULL;
			g_autoptr(GError) e_misaligned = NULL;
			g_autoptr(GError) e_empty = NULL;
			g_autoptr(GError) e_no_clear = NULL;
			g_autoptr(GError) e_stop = NULL;
			g_autoptr(GError) e_stop2 = NULL;
			g_autoptr(GError) e_after = NULL;

			migd_device_iommu_dirty_report(dev, 0, 1 * MiB, 4 * KiB, FALSE, bitmap,
						       &e_before);
			conf_expect_err(run, "iommu_report_unstarted", e_before, "EINVAL");
			/* the wish is ignored: GET_BITMAP takes only the smallest IOMMU page size
			 */
			page_size = 64 * KiB;
			migd_device_iommu_dirty_start(dev, ranges, 2, &page_size, &e_start);
			conf_expect_err(run, "iommu_start", e_start, "ok");
			iommu_ok = e_start == NULL;
			conf_expect_u64(run, "iommu_page_size", iommu_ok ? page_size : 0, 4 * KiB);
			page_size = 4 * KiB;
			migd_device_iommu_dirty_start(dev, ranges, 2, &page_size, &e_again);
			conf_expect_err(run, "iommu_start_again", e_again, "ok");

			memset(bitmap, 0, sizeof(bitmap));
			migd_device_iommu_dirty_report(dev, 0, 1 * MiB, 4 * KiB, FALSE, bitmap,
						       &e_report);
			conf_expect_err(run, "iommu_report", e_report, "ok");
			/* both ranges and the gap between them: 1280 pages */
			migd_device_iommu_dirty_report(dev, 0, 5 * MiB, 4 * KiB, FALSE, bitmap,
						       &e_both);
			conf_expect_err(run, "iommu_report_both", e_both, "ok");
			conf_expect_u64(run, "iommu_dirty_pages",
					migd_test_bitmap_weight(bitmap, G_N_ELEMENTS(bitmap)), 0);
			migd_device_iommu_dirty_report(dev, 0, 1 * MiB, 64 * KiB, FALSE, bitmap,
						       &e_page);
			conf_expect_err(run, "iommu_report_page_64k", e_page, "EINVAL");
			migd_device_iommu_dirty_report(dev, 512, 1 * MiB, 4 * KiB, FALSE, bitmap,
						       &e_misaligned);
			conf_expect_err(run, "iommu_report_misaligned", e_misaligned, "EINVAL");
			migd_device_iommu_dirty_report(dev, 0, 0, 4 * KiB, FALSE, bitmap, &e_empty);
			conf_expect_err(run, "iommu_report_empty", e_empty, "EINVAL");
			/* type1 always clears: refused before the kernel, by either backend */
			migd_device_iommu_dirty_report(dev, 0, 1 * MiB, 4 * KiB, TRUE, bitmap,
						       &e_no_clear);
			conf_expect_err(run, "iommu_report_no_clear", e_no_clear, "NOT_SUPPORTED");
			migd_device_iommu_dirty_stop(dev, &e_stop);
			conf_expect_err(run, "iommu_stop", e_stop, "ok");
			migd_device_iommu_dirty_stop(dev, &e_stop2);
			conf_expect_err(run, "iommu_stop_again", e_stop2, "ok");
			migd_device_iommu_dirty_report(dev, 0, 1 * MiB, 4 * KiB, FALSE, bitmap,
						       &e_after);
			conf_expect_err(run, "iommu_report_stopped", e_after, "EINVAL");
		}
	}

	/*
	 * The tracker, through its public API: mtty's logging cannot report, so a
	 * tracker that says "device" pretends. Falling back must land on the IOMMU
	 * when type1 started above (REFUSE refuses only when nothing can start),
	 * on all-dirty or a refusal when it did not.
	 */
	refuse =
	    conf_tracker_try(run, dev, ranges, 2, MIGD_DIRTY_FALLBACK_REFUSE, "tracker_refuse");
	allow = conf_tracker_try(run, dev, ranges, 2, MIGD_DIRTY_FALLBACK_ALLOW, "tracker_allow");
	if (ctx->iommufd_driver) {
		/* a device whose logging reports is the tracker's first choice */
		if (g_strcmp0(refuse, "device") != 0 || g_strcmp0(allow, "device") != 0)
			conf_fail(run,
				  "tracker: got %s and %s, expected device (its logging reports)",
				  refuse, allow);
		return TRUE;
	}
	if (g_strcmp0(refuse, "device") == 0 || g_strcmp0(allow, "device") == 0)
		conf_fail(run, "the tracker runs mtty's no-op device DMA logging (REPORT answers "
			       "EOPNOTSUPP) instead of falling back");
	if (g_strcmp0(refuse, iommu_ok ? "iommu" : "NOT_SUPPORTED") != 0)
		conf_fail(run, "tracker_refuse: got %s, expected %s", refuse,
			  iommu_ok ? "iommu" : "NOT_SUPPORTED");
	if (g_strcmp0(allow, iommu_ok ? "iommu" : "all-dirty") != 0)
		conf_fail(run, "tracker_allow: got %s, expected %s", allow,
			  iommu_ok ? "iommu" : "all-dirty");
	return TRUE;
}
