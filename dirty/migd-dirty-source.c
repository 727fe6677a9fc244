/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdDirtySource: one tracker per tracked device of a job, read by one or
 * more consumers (see migd-dirty-source.h). Each sync or take reads and clears
 * trackers on a worker thread, so the main loop never waits for REPORT ioctls
 * or the encoder; they run one at a time, in arrival order.
 *
 * No bit is lost between consumers: after a consumer X read device d's report
 * R (in the tracker's windows W), every other consumer's pending bits for d
 * get R, and X gets W | its own pending. The consumer that read last is owed
 * nothing, so n consumers need n - 1 pending bitmaps per window: X's, once
 * used, carries R to the one consumer that had none (the previous reader).
 */
#include "config.h"

#include "migd-dirty-source.h"

#include <gio/gio.h>
#include <string.h>
#include <unistd.h>

#include "migd-dirty-bitmap-file.h"
#include "migd-error.h"

typedef struct {
	guint index;
	MigdDirtyTracker *tracker;
	/* the windows the pending bitmaps were laid out for (a restart may change the tracker's) */
	guint64 page_size;
	GArray *geometry; /* MigdDirtyFileWindow (bitmap NULL): iova, n_pages */
	/*
	 * per consumer: its pending bitmaps, one per window (guint64 **), or NULL
	 * for the one consumer owed nothing; only with more than one consumer
	 */
	GPtrArray *pending;
	GArray *takes; /* guint32 per consumer: takes of this device so far */
	/* pending bits could not be kept (no memory): every later read fails, none is wrong */
	gboolean lost;
} MigdDirtySourceDevice;

typedef struct {
	gboolean take;
	/* sync */
	guint32 round;
	MigdDirtyRoundStats stats;
	/* take */
	guint consumer;
	gpointer sdev; /* MigdDirtySourceDevice, looked up when asked */
	/* the worker's result, handed to the caller's task on its main context */
	GPtrArray *chunks;
	gint fd;
	GError *error;
} MigdDirtyOp;

static void
migd_dirty_op_free(MigdDirtyOp *op)
{
	g_clear_pointer(&op->chunks, g_ptr_array_unref);
	/* a result nobody finished: the fd is not leaked */
	if (op->fd >= 0)
		close(op->fd);
	g_clear_error(&op->error);
	g_free(op);
}

static MigdDirtyOp *
migd_dirty_op_new(void)
{
	MigdDirtyOp *op = g_new0(MigdDirtyOp, 1);
	op->fd = -1;
	return op;
}

struct _MigdDirtySource {
	gint refcount;	    /* atomic: the owner and each sync or take in flight */
	GPtrArray *devices; /* MigdDirtySourceDevice, by job index order */
	guint n_consumers;  /* the peer stream and those added */
	GMutex lock;
	GCond idle;
	gboolean started; /* a sync or take was asked for: no more consumers */
	gboolean busy;	  /* an operation is under way (queued ones follow it) */
	gboolean running; /* its worker holds the trackers */
	gboolean syncing; /* a peer sync is queued or under way */
	gboolean stopped; /* no more reports: queued operations take what is pending */
	gboolean trackers_stopped;
	GQueue queue; /* GTask (the caller's): operations waiting for their turn */
};

void
migd_dirty_chunk_free(MigdDirtyChunk *chunk)
{
	migd_dirty_encoded_clear(&chunk->encoded);
	g_free(chunk);
}

static guint64
migd_dirty_source_words(guint64 n_pages)
{
	return n_pages / 64 + (n_pages % 64 != 0 ? 1 : 0);
}

static void
migd_dirty_source_pending_free(guint64 **bitmaps, guint n_windows)
{
	if (bitmaps == NULL)
		return;
	for (guint w = 0; w < n_windows; w++)
		g_free(bitmaps[w]);
	g_free(bitmaps);
}

/* pending bitmaps for @sdev's geometry: clear, or every page dirty; NULL without memory */
static guint64 **
migd_dirty_source_pending_new(MigdDirtySourceDevice *sdev, gboolean all_dirty)
{
	guint n = sdev->geometry->len;
	guint64 **bitmaps = g_new0(guint64 *, MAX(n, 1));

	for (guint w = 0; w < n; w++) {
		guint64 n_pages = g_array_index(sdev->geometry, MigdDirtyFileWindow, w).n_pages;
		guint64 words = migd_dirty_source_words(n_pages);

		/* as large as the tracker's own windows: a guest's worth of pages */
		bitmaps[w] = g_try_new0(guint64, MAX(words, 1));
		if (bitmaps[w] == NULL) {
			migd_dirty_source_pending_free(bitmaps, n);
			return NULL;
		}
		if (all_dirty && n_pages > 0) {
			memset(bitmaps[w], 0xff, words * sizeof(guint64));
			if (n_pages % 64 != 0)
				bitmaps[w][words - 1] = (1ull << (n_pages % 64)) - 1;
		}
	}
	return bitmaps;
}

static void
migd_dirty_source_clear_pending(MigdDirtySourceDevice *sdev)
{
	for (guint c = 0; c < sdev->pending->len; c++) {
		migd_dirty_source_pending_free(g_ptr_array_index(sdev->pending, c),
					       sdev->geometry->len);
		g_ptr_array_index(sdev->pending, c) = NULL;
	}
}

/* records the tracker's windows as the layout of the pending bitmaps */
static void
migd_dirty_source_set_geometry(MigdDirtySourceDevice *sdev)
{
	guint n = migd_dirty_tracker_get_n_windows(sdev->tracker);

	g_array_set_size(sdev->geometry, 0);
	for (guint w = 0; w < n; w++) {
		const MigdDirtyWindow *win = migd_dirty_tracker_get_window(sdev->tracker, w);
		MigdDirtyFileWindow g = {.iova = win->iova, .n_pages = win->n_pages};
		g_array_append_val(sdev->geometry, g);
	}
	sdev->page_size = migd_dirty_tracker_get_page_size(sdev->tracker);
}

static gboolean
migd_dirty_source_geometry_changed(MigdDirtySourceDevice *sdev)
{
	guint n = migd_dirty_tracker_get_n_windows(sdev->tracker);

	if (n != sdev->geometry->len ||
	    migd_dirty_tracker_get_page_size(sdev->tracker) != sdev->page_size)
		return TRUE;
	for (guint w = 0; w < n; w++) {
		const MigdDirtyWindow *win = migd_dirty_tracker_get_window(sdev->tracker, w);
		const MigdDirtyFileWindow *g =
		    &g_array_index(sdev->geometry, MigdDirtyFileWindow, w);
		if (win->iova != g->iova || win->n_pages != g->n_pages)
			return TRUE;
	}
	return FALSE;
}

static void
migd_dirty_source_device_free(MigdDirtySourceDevice *sdev)
{
	migd_dirty_source_clear_pending(sdev);
	g_ptr_array_unref(sdev->pending);
	g_array_unref(sdev->takes);
	g_array_unref(sdev->geometry);
	migd_dirty_tracker_free(sdev->tracker);
	g_free(sdev);
}

/* pending bitmaps for a new consumer of @sdev, owed nothing yet; FALSE without memory */
static gboolean
migd_dirty_source_device_alloc_consumer(MigdDirtySourceDevice *sdev, guint64 ***bitmaps,
					GError **error)
{
	/* the first consumer (the peer) starts as the one owed nothing: no bitmaps */
	*bitmaps = NULL;
	if (sdev->pending->len == 0)
		return TRUE;
	*bitmaps = migd_dirty_source_pending_new(sdev, FALSE);
	if (*bitmaps != NULL)
		return TRUE;
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
		    "device %u: cannot allocate the dirty bitmaps of another consumer",
		    sdev->index);
	return FALSE;
}

static void
migd_dirty_source_device_add_consumer(MigdDirtySourceDevice *sdev, guint64 **bitmaps)
{
	guint32 zero = 0;

	g_ptr_array_add(sdev->pending, bitmaps);
	g_array_append_val(sdev->takes, zero);
}

MigdDirtySource *
migd_dirty_source_new(void)
{
	MigdDirtySource *self = g_new0(MigdDirtySource, 1);
	self->refcount = 1;
	self->devices =
	    g_ptr_array_new_with_free_func((GDestroyNotify)migd_dirty_source_device_free);
	self->n_consumers = 1;
	g_mutex_init(&self->lock);
	g_cond_init(&self->idle);
	g_queue_init(&self->queue);
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

/* the reference an operation held: no stop, the owner decides that */
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
	sdev->geometry = g_array_new(FALSE, FALSE, sizeof(MigdDirtyFileWindow));
	sdev->pending = g_ptr_array_new();
	sdev->takes = g_array_new(FALSE, FALSE, sizeof(guint32));
	migd_dirty_source_set_geometry(sdev);
	for (guint c = 0; c < self->n_consumers; c++) {
		guint64 **bitmaps;

		if (!migd_dirty_source_device_alloc_consumer(sdev, &bitmaps, error)) {
			migd_dirty_source_device_free(sdev);
			return FALSE;
		}
		migd_dirty_source_device_add_consumer(sdev, bitmaps);
	}
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

static MigdDirtySourceDevice *
migd_dirty_source_find(MigdDirtySource *self, guint index)
{
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDirtySourceDevice *sdev = g_ptr_array_index(self->devices, i);
		if (sdev->index == index)
			return sdev;
	}
	return NULL;
}

const gchar *
migd_dirty_source_get_kind(MigdDirtySource *self, guint index)
{
	MigdDirtySourceDevice *sdev = migd_dirty_source_find(self, index);

	return sdev != NULL ? migd_dirty_tracker_get_kind(sdev->tracker) : NULL;
}

guint
migd_dirty_source_add_consumer(MigdDirtySource *self, GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	g_autoptr(GPtrArray) bitmaps = g_ptr_array_new();

	if (self->started) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_FAILED,
				    "dirty tracking has been read already: a new consumer "
				    "would miss what earlier reports cleared");
		return 0;
	}
	/* every device's bitmaps first, so a failure leaves the consumers as they were */
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDirtySourceDevice *sdev = g_ptr_array_index(self->devices, i);
		guint64 **b;

		if (!migd_dirty_source_device_alloc_consumer(sdev, &b, error)) {
			for (guint j = 0; j < bitmaps->len; j++) {
				MigdDirtySourceDevice *done = g_ptr_array_index(self->devices, j);
				migd_dirty_source_pending_free(g_ptr_array_index(bitmaps, j),
							       done->geometry->len);
			}
			return 0;
		}
		g_ptr_array_add(bitmaps, b);
	}
	for (guint i = 0; i < self->devices->len; i++)
		migd_dirty_source_device_add_consumer(g_ptr_array_index(self->devices, i),
						      g_ptr_array_index(bitmaps, i));
	return self->n_consumers++;
}

/*
 * Worker, holding the trackers: @consumer has just read @sdev's tracker (its
 * windows hold the report R). Every other consumer's pending bits get R; the
 * windows get @consumer's own pending bits, which are then cleared. At most one
 * consumer has no bitmaps (owed nothing): the reader's, once used, carries R to
 * it (or is freed when every consumer has bitmaps, after a failed take).
 */
static void
migd_dirty_source_distribute(MigdDirtySource *self, MigdDirtySourceDevice *sdev, guint consumer)
{
	guint64 **mine;
	guint owed_nothing = G_MAXUINT;

	if (self->n_consumers < 2)
		return;
	if (migd_dirty_source_geometry_changed(sdev)) {
		/*
		 * a restart after a tracker error rebuilt the windows (and filled them):
		 * what the others had pending cannot be mapped page by page, so they
		 * owe every page, which loses nothing
		 */
		g_message("dirty tracking: device %u's windows changed: every page is pending "
			  "for the other consumers",
			  sdev->index);
		migd_dirty_source_clear_pending(sdev);
		migd_dirty_source_set_geometry(sdev);
		for (guint c = 0; c < self->n_consumers; c++) {
			guint64 **all;

			if (c == consumer)
				continue;
			all = migd_dirty_source_pending_new(sdev, TRUE);
			if (all == NULL) {
				g_warning("dirty tracking: device %u: no memory for the pending "
					  "bits of its consumers: no more syncs of it",
					  sdev->index);
				sdev->lost = TRUE;
				return;
			}
			g_ptr_array_index(sdev->pending, c) = all;
		}
		return;
	}
	for (guint c = 0; c < self->n_consumers; c++) {
		guint64 **other = g_ptr_array_index(sdev->pending, c);

		if (c == consumer)
			continue;
		if (other == NULL) {
			owed_nothing = c;
			continue;
		}
		for (guint w = 0; w < sdev->geometry->len; w++) {
			const MigdDirtyWindow *win =
			    migd_dirty_tracker_get_window(sdev->tracker, w);
			guint64 words = migd_dirty_source_words(win->n_pages);
			for (guint64 k = 0; k < words; k++)
				other[w][k] |= win->bitmap[k];
		}
	}
	mine = g_ptr_array_index(sdev->pending, consumer);
	if (mine == NULL)
		return;
	for (guint w = 0; w < sdev->geometry->len; w++) {
		const MigdDirtyWindow *win = migd_dirty_tracker_get_window(sdev->tracker, w);
		guint64 words = migd_dirty_source_words(win->n_pages);
		for (guint64 k = 0; k < words; k++) {
			guint64 owed = mine[w][k];
			mine[w][k] = win->bitmap[k];
			win->bitmap[k] |= owed;
		}
	}
	g_ptr_array_index(sdev->pending, consumer) = NULL;
	if (owed_nothing != G_MAXUINT)
		g_ptr_array_index(sdev->pending, owed_nothing) = mine;
	else
		migd_dirty_source_pending_free(mine, sdev->geometry->len);
}

/*
 * Worker: @consumer's take read the report but its file could not be made: it
 * is owed what the windows hold, in bitmaps of its own (one more than usual
 * until it reads again), or the device is lost
 */
static void
migd_dirty_source_keep_failed(MigdDirtySource *self, MigdDirtySourceDevice *sdev, guint consumer)
{
	guint64 **mine;

	if (self->n_consumers < 2 || sdev->lost)
		return;
	mine = migd_dirty_source_pending_new(sdev, FALSE);
	if (mine == NULL) {
		g_warning("dirty tracking: device %u: no memory to keep a failed take's bits: no "
			  "more syncs of it",
			  sdev->index);
		sdev->lost = TRUE;
		return;
	}
	for (guint w = 0; w < sdev->geometry->len; w++) {
		const MigdDirtyWindow *win = migd_dirty_tracker_get_window(sdev->tracker, w);
		memcpy(mine[w], win->bitmap,
		       migd_dirty_source_words(win->n_pages) * sizeof(guint64));
	}
	g_ptr_array_index(sdev->pending, consumer) = mine;
}

static gboolean
migd_dirty_source_check_lost(MigdDirtySourceDevice *sdev, GError **error)
{
	if (!sdev->lost)
		return TRUE;
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
		    "device %u: its dirty bits could not be kept for every consumer (out of "
		    "memory)",
		    sdev->index);
	return FALSE;
}

/* worker, holding the trackers: the peer stream's sync of every tracker */
static gboolean
migd_dirty_source_run_sync(MigdDirtySource *self, MigdDirtyOp *op, gboolean stopped,
			   GPtrArray *chunks, GError **error)
{
	/* a take may read the windows again before the frames are packed */
	gboolean own_raw = self->n_consumers > 1;

	if (stopped) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_FAILED,
				    "dirty tracking is stopped");
		return FALSE;
	}
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDirtySourceDevice *sdev = g_ptr_array_index(self->devices, i);

		if (!migd_dirty_source_check_lost(sdev, error) ||
		    !migd_dirty_tracker_sync(sdev->tracker, error))
			return FALSE;
		migd_dirty_source_distribute(self, sdev, 0);
		if (!migd_dirty_source_check_lost(sdev, error))
			return FALSE;
		for (guint w = 0; w < migd_dirty_tracker_get_n_windows(sdev->tracker); w++) {
			const MigdDirtyWindow *win =
			    migd_dirty_tracker_get_window(sdev->tracker, w);
			for (guint64 first = 0; first < win->n_pages;
			     first += MIGD_DIRTY_MAX_CHUNK_PAGES) {
				MigdDirtyChunk *chunk = g_new0(MigdDirtyChunk, 1);
				guint64 n = MIN(MIGD_DIRTY_MAX_CHUNK_PAGES, win->n_pages - first);

				chunk->device = sdev->index;
				chunk->round = op->round;
				chunk->window = w;
				chunk->window_iova = win->iova;
				chunk->window_pages = win->n_pages;
				chunk->page_size = win->page_size;
				chunk->first_page = first;
				/* MIGD_DIRTY_MAX_CHUNK_PAGES is a multiple of 64: a word boundary
				 */
				migd_dirty_encode(win->bitmap + first / 64, n, &chunk->encoded);
				/*
				 * RAW may point into the window: without other consumers the
				 * frame is packed before the next sync; with them, copied
				 */
				if (own_raw && chunk->encoded.encoding == MIGD_DIRTY_ENCODING_RAW) {
					gsize len = 0;
					gconstpointer data =
					    g_bytes_get_data(chunk->encoded.data, &len);
					GBytes *copy = g_bytes_new(data, len);
					g_bytes_unref(chunk->encoded.data);
					chunk->encoded.data = copy;
				}
				op->stats.dirty_pages += chunk->encoded.n_dirty;
				op->stats.dirty_bytes += chunk->encoded.n_dirty * win->page_size;
				op->stats.raw_bytes += (n + 63) / 64 * 8;
				op->stats.wire_bytes += g_bytes_get_size(chunk->encoded.data);
				op->stats.n_chunks++;
				g_ptr_array_add(chunks, chunk);
			}
		}
	}
	return TRUE;
}

/* worker, holding the trackers: a consumer's take of one device, as a sealed memfd */
static gint
migd_dirty_source_run_take(MigdDirtySource *self, MigdDirtyOp *op, GError **error)
{
	MigdDirtySourceDevice *sdev = op->sdev;
	guint32 *takes = &g_array_index(sdev->takes, guint32, op->consumer);
	g_autofree MigdDirtyFileWindow *windows = NULL;
	guint n;
	gint fd;

	if (!migd_dirty_source_check_lost(sdev, error) ||
	    !migd_dirty_tracker_sync(sdev->tracker, error))
		return -1;
	migd_dirty_source_distribute(self, sdev, op->consumer);
	if (!migd_dirty_source_check_lost(sdev, error))
		return -1;
	/* the windows (which a restart may have rebuilt) hold this consumer's bits now */
	n = migd_dirty_tracker_get_n_windows(sdev->tracker);
	windows = g_new0(MigdDirtyFileWindow, MAX(n, 1));
	for (guint w = 0; w < n; w++) {
		const MigdDirtyWindow *win = migd_dirty_tracker_get_window(sdev->tracker, w);
		windows[w].iova = win->iova;
		windows[w].n_pages = win->n_pages;
		windows[w].bitmap = win->bitmap;
	}
	fd = migd_dirty_file_new_sealed(migd_dirty_tracker_get_page_size(sdev->tracker), *takes + 1,
					windows, n, error);
	if (fd < 0) {
		migd_dirty_source_keep_failed(self, sdev, op->consumer);
		return -1;
	}
	(*takes)++;
	return fd;
}

/* worker: a take after stop: no report, what is pending (nothing for the last reader) */
static gint
migd_dirty_source_run_take_stopped(MigdDirtySource *self, MigdDirtyOp *op, GError **error)
{
	MigdDirtySourceDevice *sdev = op->sdev;
	guint32 *takes = &g_array_index(sdev->takes, guint32, op->consumer);
	guint n = sdev->geometry->len;
	g_autofree MigdDirtyFileWindow *windows = g_new0(MigdDirtyFileWindow, MAX(n, 1));
	g_autofree guint64 *zero = NULL;
	guint64 **mine = g_ptr_array_index(sdev->pending, op->consumer);
	guint64 most = 0;
	gint fd;

	if (!migd_dirty_source_check_lost(sdev, error))
		return -1;
	for (guint w = 0; w < n; w++)
		most = MAX(most, g_array_index(sdev->geometry, MigdDirtyFileWindow, w).n_pages);
	if (mine == NULL) {
		zero = g_try_new0(guint64, MAX(migd_dirty_source_words(most), 1));
		if (zero == NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
				    "device %u: cannot allocate an empty dirty bitmap",
				    sdev->index);
			return -1;
		}
	}
	for (guint w = 0; w < n; w++) {
		windows[w] = g_array_index(sdev->geometry, MigdDirtyFileWindow, w);
		windows[w].bitmap = mine != NULL ? mine[w] : zero;
	}
	fd = migd_dirty_file_new_sealed(sdev->page_size, *takes + 1, windows, n, error);
	if (fd < 0)
		return -1;
	(*takes)++;
	for (guint w = 0; mine != NULL && w < n; w++)
		memset(mine[w], 0, migd_dirty_source_words(windows[w].n_pages) * sizeof(guint64));
	return fd;
}

/*
 * An operation runs in two steps: its worker reads the trackers, then, on the
 * caller's main context, the caller's task gets the result and only then does
 * the next operation start. So callbacks come in arrival order, and a sync's
 * callback sees its chunks before any later take reads the windows again.
 */
static void migd_dirty_source_start_next_locked(MigdDirtySource *self);

/* worker thread: nothing else touches the trackers while self->running */
static void
migd_dirty_source_op_thread(GTask *inner, gpointer source_object, gpointer task_data,
			    GCancellable *unused)
{
	GTask *task = task_data;
	MigdDirtySource *self = g_object_get_data(G_OBJECT(task), "migd-dirty-source");
	MigdDirtyOp *op = g_task_get_task_data(task);
	gint64 start = g_get_monotonic_time();
	gboolean stopped;

	g_mutex_lock(&self->lock);
	stopped = self->stopped;
	g_mutex_unlock(&self->lock);

	if (op->take) {
		/* cancelled while waiting: no report read, nothing lost */
		if (!g_cancellable_set_error_if_cancelled(g_task_get_cancellable(task), &op->error))
			op->fd = stopped ? migd_dirty_source_run_take_stopped(self, op, &op->error)
					 : migd_dirty_source_run_take(self, op, &op->error);
	} else {
		op->chunks = g_ptr_array_new_with_free_func((GDestroyNotify)migd_dirty_chunk_free);
		if (!migd_dirty_source_run_sync(self, op, stopped, op->chunks, &op->error))
			g_clear_pointer(&op->chunks, g_ptr_array_unref);
		op->stats.sync_us = g_get_monotonic_time() - start;
	}

	/* done with the trackers: a stop waiting on the main thread may go on */
	g_mutex_lock(&self->lock);
	self->running = FALSE;
	/* a sync's callback may ask for the next one at once */
	if (!op->take)
		self->syncing = FALSE;
	g_cond_broadcast(&self->idle);
	g_mutex_unlock(&self->lock);
	g_task_return_boolean(inner, TRUE);
}

/* main context: the caller's task gets the worker's result, then the next operation starts */
static void
migd_dirty_source_op_done_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	/* the task's reference may be the last: keep self until the next has started */
	MigdDirtySource *self =
	    migd_dirty_source_ref(g_object_get_data(G_OBJECT(task), "migd-dirty-source"));
	MigdDirtyOp *op = g_task_get_task_data(task);

	if (op->error != NULL)
		g_task_return_error(task, g_steal_pointer(&op->error));
	else if (op->take)
		g_task_return_boolean(task,
				      TRUE); /* finish takes op->fd; unfinished, it is closed */
	else
		g_task_return_pointer(task, g_steal_pointer(&op->chunks),
				      (GDestroyNotify)g_ptr_array_unref);
	g_mutex_lock(&self->lock);
	migd_dirty_source_start_next_locked(self);
	g_mutex_unlock(&self->lock);
	migd_dirty_source_release(self);
}

/* lock held: the next operation in line gets the trackers, if any */
static void
migd_dirty_source_start_next_locked(MigdDirtySource *self)
{
	GTask *task = g_queue_pop_head(&self->queue);
	GTask *inner;

	if (task == NULL) {
		self->busy = FALSE;
		return;
	}
	self->busy = TRUE;
	self->running = TRUE;
	/* completes on the caller's context: the task's, where it was made */
	inner = g_task_new(NULL, NULL, migd_dirty_source_op_done_cb, task);
	g_task_set_task_data(inner, task, NULL);
	g_task_run_in_thread(inner, migd_dirty_source_op_thread);
	g_object_unref(inner);
}

/* runs @task's operation now, or after those before it */
static void
migd_dirty_source_submit(MigdDirtySource *self, GTask *task)
{
	/* the task keeps the source alive until it is freed */
	g_object_set_data_full(G_OBJECT(task), "migd-dirty-source", migd_dirty_source_ref(self),
			       (GDestroyNotify)migd_dirty_source_release);
	g_mutex_lock(&self->lock);
	self->started = TRUE;
	g_queue_push_tail(&self->queue, g_object_ref(task));
	if (!self->busy)
		migd_dirty_source_start_next_locked(self);
	g_mutex_unlock(&self->lock);
}

void
migd_dirty_source_sync_async(MigdDirtySource *self, guint32 round, GAsyncReadyCallback callback,
			     gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, NULL, callback, user_data);
	MigdDirtyOp *op = migd_dirty_op_new();

	op->round = round;
	op->stats.round = round;
	g_task_set_source_tag(task, migd_dirty_source_sync_async);
	g_task_set_task_data(task, op, (GDestroyNotify)migd_dirty_op_free);
	g_mutex_lock(&self->lock);
	if (self->stopped || self->syncing) {
		g_mutex_unlock(&self->lock);
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_FAILED, "dirty tracking is %s",
					self->stopped ? "stopped" : "already syncing");
		return;
	}
	self->syncing = TRUE;
	g_mutex_unlock(&self->lock);
	migd_dirty_source_submit(self, task);
}

GPtrArray *
migd_dirty_source_sync_finish(MigdDirtySource *self, GAsyncResult *result,
			      MigdDirtyRoundStats *stats, GError **error)
{
	GTask *task = G_TASK(result);
	MigdDirtyOp *op = g_task_get_task_data(task);
	GPtrArray *chunks = g_task_propagate_pointer(task, error);

	if (chunks != NULL && stats != NULL)
		*stats = op->stats;
	return chunks;
}

void
migd_dirty_source_take_bitmap_async(MigdDirtySource *self, guint consumer, guint index,
				    GCancellable *cancellable, GAsyncReadyCallback callback,
				    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	MigdDirtyOp *op = migd_dirty_op_new();

	op->take = TRUE;
	op->consumer = consumer;
	op->sdev = migd_dirty_source_find(self, index);
	g_task_set_source_tag(task, migd_dirty_source_take_bitmap_async);
	g_task_set_task_data(task, op, (GDestroyNotify)migd_dirty_op_free);
	/* once the report is read the result must reach the caller, cancelled or not */
	g_task_set_check_cancellable(task, FALSE);
	if (consumer == 0 || consumer >= self->n_consumers) {
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					"%u is not a dirty-bitmap consumer of this job", consumer);
		return;
	}
	if (op->sdev == NULL) {
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					"device %u is not dirty-tracked (%s)", index,
					"no such device, or it has no IOVA ranges");
		return;
	}
	migd_dirty_source_submit(self, task);
}

gint
migd_dirty_source_take_bitmap_finish(MigdDirtySource *self, GAsyncResult *result, GError **error)
{
	MigdDirtyOp *op;
	gint fd;

	g_return_val_if_fail(g_task_is_valid(result, NULL), -1);
	g_return_val_if_fail(
	    g_task_get_source_tag(G_TASK(result)) == migd_dirty_source_take_bitmap_async, -1);
	if (!g_task_propagate_boolean(G_TASK(result), error))
		return -1;
	op = g_task_get_task_data(G_TASK(result));
	fd = op->fd;
	op->fd = -1;
	return fd;
}

void
migd_dirty_source_stop(MigdDirtySource *self)
{
	g_mutex_lock(&self->lock);
	/* operations that have not begun read no report from now on */
	self->stopped = TRUE;
	/* the one holding the trackers finishes first (REPORTs are bounded) */
	while (self->running)
		g_cond_wait(&self->idle, &self->lock);
	if (self->trackers_stopped) {
		g_mutex_unlock(&self->lock);
		return;
	}
	self->trackers_stopped = TRUE;
	g_mutex_unlock(&self->lock);
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDirtySourceDevice *sdev = g_ptr_array_index(self->devices, i);
		migd_dirty_tracker_stop(sdev->tracker);
	}
}
