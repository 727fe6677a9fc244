/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdDirtySource: one tracker per tracked device of a job; each sync reads
 * and clears them and encodes every window in chunks, on a worker thread so
 * the main loop never waits for REPORT ioctls or the encoder.
 */
#include "config.h"

#include "migd-dirty-source.h"

#include "migd-error.h"

typedef struct {
	guint index;
	MigdDirtyTracker *tracker;
} MigdDirtySourceDevice;

struct _MigdDirtySource {
	gint refcount;	    /* atomic: the owner and each sync in flight */
	GPtrArray *devices; /* MigdDirtySourceDevice, by job index order */
	GMutex lock;
	GCond idle;
	gboolean syncing;
	gboolean stopped;
};

void
migd_dirty_chunk_free(MigdDirtyChunk *chunk)
{
	migd_dirty_encoded_clear(&chunk->encoded);
	g_free(chunk);
}

static void
migd_dirty_source_device_free(MigdDirtySourceDevice *sdev)
{
	migd_dirty_tracker_free(sdev->tracker);
	g_free(sdev);
}

MigdDirtySource *
migd_dirty_source_new(void)
{
	MigdDirtySource *self = g_new0(MigdDirtySource, 1);
	self->refcount = 1;
	self->devices =
	    g_ptr_array_new_with_free_func((GDestroyNotify)migd_dirty_source_device_free);
	g_mutex_init(&self->lock);
	g_cond_init(&self->idle);
	return self;
}

static MigdDirtySource *
migd_dirty_source_ref(MigdDirtySource *self)
{
	g_atomic_int_inc(&self->refcount);
	return self;
}

static void
migd_dirty_source_free(MigdDirtySource *self)
{
	migd_dirty_source_stop(self);
	g_ptr_array_unref(self->devices);
	g_mutex_clear(&self->lock);
	g_cond_clear(&self->idle);
	g_free(self);
}

/* the reference a sync task held: no stop, the owner decides that */
static void
migd_dirty_source_release(MigdDirtySource *self)
{
	if (g_atomic_int_dec_and_test(&self->refcount))
		migd_dirty_source_free(self);
}

void
migd_dirty_source_unref(MigdDirtySource *self)
{
	if (self == NULL)
		return;
	if (g_atomic_int_dec_and_test(&self->refcount))
		migd_dirty_source_free(self);
	else
		migd_dirty_source_stop(self);
}

gboolean
migd_dirty_source_add_device(MigdDirtySource *self, guint index, MigdDevice *device,
			     MigdPlugin *plugin, MigdDirtyFallback fallback, GError **error)
{
	const MigdIovaRange *ranges;
	guint n_ranges = 0;
	MigdDirtyTracker *tracker;
	MigdDirtySourceDevice *sdev;

	ranges = migd_device_get_iova_ranges(device, &n_ranges);
	if (n_ranges == 0) {
		g_debug("%s: no IOVA ranges: its DMA is not tracked", migd_device_get_name(device));
		return TRUE;
	}
	tracker = migd_dirty_tracker_start(device, plugin, ranges, n_ranges, fallback, error);
	if (tracker == NULL)
		return FALSE;
	sdev = g_new0(MigdDirtySourceDevice, 1);
	sdev->index = index;
	sdev->tracker = tracker;
	g_ptr_array_add(self->devices, sdev);
	g_message("%s: dirty tracking with %s, page size %" G_GUINT64_FORMAT,
		  migd_device_get_name(device), migd_dirty_tracker_get_kind(tracker),
		  migd_dirty_tracker_get_page_size(tracker));
	return TRUE;
}

guint
migd_dirty_source_get_n_tracked(MigdDirtySource *self)
{
	return self->devices->len;
}

const gchar *
migd_dirty_source_get_kind(MigdDirtySource *self, guint index)
{
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDirtySourceDevice *sdev = g_ptr_array_index(self->devices, i);
		if (sdev->index == index)
			return migd_dirty_tracker_get_kind(sdev->tracker);
	}
	return NULL;
}

typedef struct {
	guint32 round;
	MigdDirtyRoundStats stats;
} MigdDirtySyncData;

/* worker thread: nothing else touches the trackers while self->syncing */
static void
migd_dirty_source_sync_thread(GTask *task, gpointer source_object, gpointer task_data,
			      GCancellable *cancellable)
{
	MigdDirtySource *self = g_object_get_data(G_OBJECT(task), "migd-dirty-source");
	MigdDirtySyncData *data = task_data;
	g_autoptr(GPtrArray) chunks =
	    g_ptr_array_new_with_free_func((GDestroyNotify)migd_dirty_chunk_free);
	gint64 start = g_get_monotonic_time();
	GError *failure = NULL;

	for (guint i = 0; i < self->devices->len; i++) {
		MigdDirtySourceDevice *sdev = g_ptr_array_index(self->devices, i);
		g_autoptr(GError) error = NULL;

		if (!migd_dirty_tracker_sync(sdev->tracker, &error)) {
			failure = g_steal_pointer(&error);
			break;
		}
		for (guint w = 0; w < migd_dirty_tracker_get_n_windows(sdev->tracker); w++) {
			const MigdDirtyWindow *win =
			    migd_dirty_tracker_get_window(sdev->tracker, w);
			for (guint64 first = 0; first < win->n_pages;
			     first += MIGD_DIRTY_MAX_CHUNK_PAGES) {
				MigdDirtyChunk *chunk = g_new0(MigdDirtyChunk, 1);
				guint64 n = MIN(MIGD_DIRTY_MAX_CHUNK_PAGES, win->n_pages - first);

				chunk->device = sdev->index;
				chunk->round = data->round;
				chunk->window = w;
				chunk->window_iova = win->iova;
				chunk->window_pages = win->n_pages;
				chunk->page_size = win->page_size;
				chunk->first_page = first;
				/* MIGD_DIRTY_MAX_CHUNK_PAGES is a multiple of 64: a word boundary
				 */
				migd_dirty_encode(win->bitmap + first / 64, n, &chunk->encoded);
				/* RAW may point into the window: the frame is packed before the
				 * next sync */
				data->stats.dirty_pages += chunk->encoded.n_dirty;
				data->stats.dirty_bytes += chunk->encoded.n_dirty * win->page_size;
				data->stats.raw_bytes += (n + 63) / 64 * 8;
				data->stats.wire_bytes += g_bytes_get_size(chunk->encoded.data);
				data->stats.n_chunks++;
				g_ptr_array_add(chunks, chunk);
			}
		}
	}
	data->stats.sync_us = g_get_monotonic_time() - start;
	/* done with the trackers: a stop waiting on the main thread may go on */
	g_mutex_lock(&self->lock);
	self->syncing = FALSE;
	g_cond_broadcast(&self->idle);
	g_mutex_unlock(&self->lock);
	if (failure != NULL)
		g_task_return_error(task, failure);
	else
		g_task_return_pointer(task, g_steal_pointer(&chunks),
				      (GDestroyNotify)g_ptr_array_unref);
}

void
migd_dirty_source_sync_async(MigdDirtySource *self, guint32 round, GAsyncReadyCallback callback,
			     gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, NULL, callback, user_data);
	MigdDirtySyncData *data = g_new0(MigdDirtySyncData, 1);

	data->round = round;
	data->stats.round = round;
	g_task_set_source_tag(task, migd_dirty_source_sync_async);
	g_task_set_task_data(task, data, g_free);
	g_mutex_lock(&self->lock);
	if (self->stopped || self->syncing) {
		g_mutex_unlock(&self->lock);
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_FAILED, "dirty tracking is %s",
					self->stopped ? "stopped" : "already syncing");
		return;
	}
	self->syncing = TRUE;
	g_mutex_unlock(&self->lock);
	/* the task keeps the source alive and marks it idle when it is freed */
	g_object_set_data_full(G_OBJECT(task), "migd-dirty-source", migd_dirty_source_ref(self),
			       (GDestroyNotify)migd_dirty_source_release);
	g_task_run_in_thread(task, migd_dirty_source_sync_thread);
}

GPtrArray *
migd_dirty_source_sync_finish(MigdDirtySource *self, GAsyncResult *result,
			      MigdDirtyRoundStats *stats, GError **error)
{
	GTask *task = G_TASK(result);
	MigdDirtySyncData *data = g_task_get_task_data(task);
	GPtrArray *chunks = g_task_propagate_pointer(task, error);

	if (chunks != NULL && stats != NULL)
		*stats = data->stats;
	return chunks;
}

void
migd_dirty_source_stop(MigdDirtySource *self)
{
	g_mutex_lock(&self->lock);
	/* a sync in flight holds the trackers: wait for it (REPORTs are bounded) */
	while (self->syncing)
		g_cond_wait(&self->idle, &self->lock);
	if (self->stopped) {
		g_mutex_unlock(&self->lock);
		return;
	}
	self->stopped = TRUE;
	g_mutex_unlock(&self->lock);
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDirtySourceDevice *sdev = g_ptr_array_index(self->devices, i);
		migd_dirty_tracker_stop(sdev->tracker);
	}
}
