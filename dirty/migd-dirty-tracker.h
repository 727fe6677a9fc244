/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-device.h"
#include "migd-plugin.h"

G_BEGIN_DECLS

/*
 * A dirty tracker follows one device's DMA writes to guest memory over a
 * migration. The provider is the one the device's plugin chose
 * (MigdPluginPolicy.tracker):
 *   device  VFIO_DEVICE_FEATURE_DMA_LOGGING_START/REPORT/STOP on the device,
 *           started on the ranges of migd_dirty_ranges_plan() reduced to the
 *           plugin's tracker_max_ranges, with the page size the driver chose;
 *   iommu   the IOMMU's dirty bits (migd_device_iommu_dirty_*: iommufd HWPT
 *           dirty tracking, or type1 VFIO_IOMMU_DIRTY_PAGES);
 *   all-dirty  nothing tracks: every mapped page counts as dirty in every sync.
 * When the chosen provider cannot start, the tracker falls back to the IOMMU
 * (if the plugin chose the device), then to all-dirty, as @fallback allows;
 * each fallback is logged with g_warning naming the device and the reason. A
 * driver that answers E2BIG to START gets half as many ranges, down to one.
 * A plugin that chose MIGD_DIRTY_TRACKER_NONE gets all-dirty without any
 * fallback rule (its own choice, not a failure).
 *
 * Every sync reads and clears what was dirtied since the previous one into one
 * bitmap per window (the windows are the mapped ranges, sorted and joined, at
 * the tracker's page size, not the tracker's merged ranges, so gaps never
 * appear dirty), REPORTing one tracked range at a time (pds wants each REPORT
 * inside one), page-aligned, in slices of at most
 * MIGD_DIRTY_TRACKER_REPORT_BYTES of bitmap into zeroed buffers. A provider
 * error mid-migration marks every page of the sync dirty and carries out the
 * plugin's policy.on_tracker_error: device logging through the plugin
 * (migd_plugin_recover_tracker) when it implements recover_tracker, the IOMMU's
 * (and a plugin's without that hook) by the tracker itself, STOP + START for
 * MIGD_TRACKER_ERROR_RESTART; the sync still succeeds, and the error is
 * counted. A restart that fails falls back to all-dirty if @fallback allows,
 * else that sync fails. A started provider is always stopped (stop, free, or
 * a device that went away).
 *
 * Not thread-safe: one thread at a time (the engine syncs on a worker).
 */

typedef enum {
	MIGD_DIRTY_FALLBACK_REFUSE, /* no tracker can start: fail, the migration is refused */
	MIGD_DIRTY_FALLBACK_ALLOW,  /* no tracker can start: all-dirty, with a warning */
} MigdDirtyFallback;

/* one REPORT covers at most this many bytes of bitmap (the kernel's iova_bitmap works in pages) */
#define MIGD_DIRTY_TRACKER_REPORT_BYTES (2u * 1024 * 1024)

/*
 * One mapped range (two, when at the tracker's page size they would share a
 * page), aligned out to whole pages. Valid until the next sync (a restart at
 * another page size rebuilds the windows) or free.
 */
typedef struct {
	guint64 iova;	   /* of page 0 */
	guint64 page_size; /* the tracker's page size */
	guint64 n_pages;
	guint64 *bitmap; /* ceil(n_pages / 64) words, owned by the tracker; bits past n_pages 0 */
} MigdDirtyWindow;

typedef struct {
	guint64 syncs;
	guint64 dirty_pages;	 /* in the last sync */
	guint64 total_pages;	 /* in all windows */
	guint64 tracked_bytes;	 /* what the provider was started on (merged ranges); the driver
				    may combine further. 0 for all-dirty */
	guint64 provider_errors; /* syncs that fell back to all-dirty */
	guint64 restarts;	 /* successful restarts after an error (policy: restart) */
} MigdDirtyTrackerStats;

typedef struct _MigdDirtyTracker MigdDirtyTracker;

/*
 * Chooses and starts the provider for @device over the mapped @ranges (the
 * guest's IOVA mappings the device may write, unmerged; each must end at or
 * below 2^63). @plugin NULL: the device's plugin, or the generic one if none
 * was assigned (migd_plugin_dup_for_device). Fails with
 * MIGD_ERROR_INVALID_ARGUMENT for bad ranges, with the device's error when it
 * is gone, and with MIGD_ERROR_NOT_SUPPORTED when no tracker can start and
 * @fallback is MIGD_DIRTY_FALLBACK_REFUSE.
 */
MigdDirtyTracker *migd_dirty_tracker_start(MigdDevice *device, MigdPlugin *plugin,
					   const MigdIovaRange *ranges, guint n_ranges,
					   MigdDirtyFallback fallback, GError **error);
/* "device", "iommu" or "all-dirty": what actually runs (after any fallback) */
const gchar *migd_dirty_tracker_get_kind(MigdDirtyTracker *self);
/* the tracker's page size (the driver's choice for device logging) */
guint64 migd_dirty_tracker_get_page_size(MigdDirtyTracker *self);

/*
 * reads and clears into the windows; FALSE only if the device went away, a
 * restart failed and the fallback is REFUSE, or the tracker was stopped
 */
gboolean migd_dirty_tracker_sync(MigdDirtyTracker *self, GError **error);
guint migd_dirty_tracker_get_n_windows(MigdDirtyTracker *self);
const MigdDirtyWindow *migd_dirty_tracker_get_window(MigdDirtyTracker *self, guint index);
void migd_dirty_tracker_get_stats(MigdDirtyTracker *self, MigdDirtyTrackerStats *stats);

/* stops the provider (idempotent; errors are logged, the device is left untracked) */
void migd_dirty_tracker_stop(MigdDirtyTracker *self);
/* stops if needed and frees */
void migd_dirty_tracker_free(MigdDirtyTracker *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdDirtyTracker, migd_dirty_tracker_free)

G_END_DECLS
