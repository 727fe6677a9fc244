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
 * The source side of dirty-bitmap streaming for one job: a tracker per device
 * that has IOVA ranges, and per sync the encoded chunks of every window of
 * every tracked device, ready to be sent as DirtyBitmapChunk frames. Syncing
 * (REPORT ioctls, then encoding) runs on a worker thread.
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

/* syncs every tracker and encodes its windows on a worker thread */
void migd_dirty_source_sync_async(MigdDirtySource *self, guint32 round,
				  GAsyncReadyCallback callback, gpointer user_data);
/* the chunks (MigdDirtyChunk) of the sync, in device, window, page order */
GPtrArray *migd_dirty_source_sync_finish(MigdDirtySource *self, GAsyncResult *result,
					 MigdDirtyRoundStats *stats, GError **error);

/* stops every tracker, after waiting for a sync in progress; idempotent */
void migd_dirty_source_stop(MigdDirtySource *self);
/* stops and drops the caller's reference (a sync in flight keeps its own) */
void migd_dirty_source_unref(MigdDirtySource *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdDirtySource, migd_dirty_source_unref)

G_END_DECLS
