/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "migd-dirty-bitmap.h"
#include "migd-dirty-tracker.h"

G_BEGIN_DECLS

/*
 * The source side of dirty tracking for one job: a tracker per device that has
 * IOVA ranges, read by consumers. Every REPORT (device DMA logging, IOMMU) reads
 * AND CLEARS, so one report must feed every consumer: each read is merged into
 * the bits every other consumer has pending, and a consumer gets its pending
 * bits plus the fresh report, and nothing it already had.
 *
 *   consumer 0  the stream to the peer: migd_dirty_source_sync_async() reads
 *               every tracker and encodes each window in chunks, ready to be
 *               sent as DirtyBitmapChunk frames;
 *   1, 2, ...   migd_dirty_source_add_consumer(), e.g. the VMM's RAM copy:
 *               migd_dirty_source_take_bitmap_async() reads one device's
 *               tracker and returns what that device dirtied since this
 *               consumer's previous take of it, as a sealed memfd in the
 *               dirty-bitmap file format (docs/ABI/testing/dirty-bitmap-file).
 *
 * Syncs and takes hold the trackers one at a time: each runs its REPORTs on a
 * worker thread, and one that arrives while another is under way waits its
 * turn; they run, and their callbacks come, in arrival order (the next starts
 * once the previous callback ran). Memory: per extra consumer one bitmap per
 * window of each tracked device (the pending bits rotate between consumers:
 * the one that read last is owed nothing), none without extra consumers.
 *
 * How the source engine wires it (engine/migd-source.c):
 *   - tracking: migd_dirty_source_new() and migd_dirty_source_add_device() for
 *     each device before any device leaves RUNNING (as today);
 *   - with MigdSourceOptions.switchover == MIGD_SWITCHOVER_MANUAL, right after
 *     the devices were added and before the first sync:
 *       self->vmm_consumer = migd_dirty_source_add_consumer(self->dirty, &error);
 *   - MigdJobControl.sync_dirty_bitmap(engine, name, task): look the name up
 *     among the job's devices (unknown: MIGD_ERROR_INVALID_ARGUMENT), then
 *       migd_dirty_source_take_bitmap_async(self->dirty, self->vmm_consumer,
 *           sd->index, g_task_get_cancellable(task), cb, task);
 *     and in cb: fd = migd_dirty_source_take_bitmap_finish(..., &error);
 *     g_task_return_int(task, fd) or the error. With no dirty source (no
 *     CAP_DIRTY_BITMAP, nothing tracked) or a device without IOVA ranges the
 *     take fails with MIGD_ERROR_INVALID_ARGUMENT ("not tracked"); the engine
 *     may answer that itself. The take may run at any time, also while a
 *     peer sync is in flight (it queues), and after the switchover;
 *   - the VMM's consumer does not need the peer's: a job whose peer lacks
 *     CAP_DIRTY_BITMAP may still track for the VMM alone (never calling
 *     migd_dirty_source_sync_async(); consumer 0's bits then wait unread, in
 *     one bitmap per window);
 *   - at finish/fail the engine calls migd_dirty_source_stop() as today (after
 *     the final sync, devices stopped); a take after that returns the bits
 *     still pending (the final sync's for the VMM) without a new report, until
 *     the engine drops the source (migd_dirty_source_unref): keep the source
 *     alive while the job's controls can still be called (e.g. through the
 *     handover) if the VMM's last take after the switchover must succeed.
 */

typedef struct {
	guint device; /* the device's index in the job */
	guint32 round;
	guint window;
	guint64 window_iova;
	guint64 window_pages;
	guint64 page_size;
	guint64 first_page;
	MigdDirtyEncoded encoded;
} MigdDirtyChunk;

void migd_dirty_chunk_free(MigdDirtyChunk *chunk);

typedef struct {
	guint32 round;
	guint64 dirty_pages; /* this sync, all devices */
	guint64 dirty_bytes; /* the guest memory those pages span */
	guint64 raw_bytes;   /* bitmap bytes a RAW encoding would have sent */
	guint64 wire_bytes;  /* what the chosen encodings send */
	guint n_chunks;
	guint64 sync_us; /* time in REPORTs and encoding */
} MigdDirtyRoundStats;

typedef struct _MigdDirtySource MigdDirtySource;

MigdDirtySource *migd_dirty_source_new(void);
/*
 * Starts tracking @device (job index @index) over its IOVA ranges
 * (migd_device_get_iova_ranges); a device without ranges is not tracked and
 * this returns TRUE. Fails as migd_dirty_tracker_start() does.
 */
gboolean migd_dirty_source_add_device(MigdDirtySource *self, guint index, MigdDevice *device,
				      MigdPlugin *plugin, MigdDirtyFallback fallback,
				      GError **error);
guint migd_dirty_source_get_n_tracked(MigdDirtySource *self);
/* "device", "iommu", "all-dirty" for a device index, or NULL if it is not tracked */
const gchar *migd_dirty_source_get_kind(MigdDirtySource *self, guint index);

/*
 * Consumer 0 (the peer stream): syncs every tracker and encodes its windows on a
 * worker thread; the chunks hold every page reported since the previous sync,
 * by this sync or by takes in between. Fails at once if a sync is already
 * queued or under way, and with "stopped" after migd_dirty_source_stop().
 */
void migd_dirty_source_sync_async(MigdDirtySource *self, guint32 round,
				  GAsyncReadyCallback callback, gpointer user_data);
/* the chunks (MigdDirtyChunk) of the sync, in device, window, page order */
GPtrArray *migd_dirty_source_sync_finish(MigdDirtySource *self, GAsyncResult *result,
					 MigdDirtyRoundStats *stats, GError **error);

/*
 * Registers another consumer of the reports and returns its number (>= 1).
 * Only before the first sync or take (else nothing would tell what it missed):
 * then 0 and MIGD_ERROR_FAILED.
 */
guint migd_dirty_source_add_consumer(MigdDirtySource *self, GError **error);

/*
 * Consumer @consumer's take of device @index (its job index): reads that
 * device's tracker (unless stopped) and returns, as a sealed memfd in the
 * dirty-bitmap file format, every page reported for it since this consumer's
 * previous take (the first: since tracking started), its pending bits cleared.
 * The file's windows are the tracker's, "rounds" counts this consumer's takes
 * of the device (1 for the first). After migd_dirty_source_stop() no report is
 * read: the pending bits alone. An unknown consumer, or a device that is not
 * tracked: MIGD_ERROR_INVALID_ARGUMENT. @cancellable counts only while the take
 * waits for its turn; once the report is read it completes (the bits are
 * already cleared from the tracker).
 */
void migd_dirty_source_take_bitmap_async(MigdDirtySource *self, guint consumer, guint index,
					 GCancellable *cancellable, GAsyncReadyCallback callback,
					 gpointer user_data);
/* the memfd (the caller owns it), or -1 and @error */
gint migd_dirty_source_take_bitmap_finish(MigdDirtySource *self, GAsyncResult *result,
					  GError **error);

/*
 * stops every tracker, after waiting for the sync or take holding them; syncs
 * and takes waiting for their turn then read no report; idempotent
 */
void migd_dirty_source_stop(MigdDirtySource *self);
/* stops and drops the caller's reference (a sync or take in flight keeps its own) */
void migd_dirty_source_unref(MigdDirtySource *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdDirtySource, migd_dirty_source_unref)

G_END_DECLS
