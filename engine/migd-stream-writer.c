/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "migd-crc32c.h"
#include "migd-error.h"
#include "migd-stream-private.h"
#include "migd-stream-writer.h"

struct _MigdStreamWriter {
	GObject parent_instance;
	MigdStreamWorker w; /* fd, thread, lock, events: migd-stream-private.h */

	/* set at construction, read-only afterwards */
	MigdStreamWriterCallbacks callbacks;
	gpointer user_data;

	/* main context only; @w.stopped: finish() was called, an error dispatched, or cancel() */
	gboolean failed;

	/* everything below is under @w.lock; @w.cond wakes the worker */
	GQueue queue;	     /* MigdStreamWriterItem; the head is being written and still counts */
	gboolean want_space; /* a push was refused: tell when there is room */
	gboolean finish;
	guint64 n_checked; /* chunks whose CRC32C was checked */
	guint32 crc32c;	   /* of them all, in order */
};

typedef struct {
	GBytes *chunk;
	guint32 crc32c;
	gboolean check;
} MigdStreamWriterItem;

static void
migd_stream_writer_item_free(MigdStreamWriterItem *item)
{
	g_bytes_unref(item->chunk);
	g_free(item);
}

G_DEFINE_TYPE(MigdStreamWriter, migd_stream_writer, G_TYPE_OBJECT)

static gpointer
migd_stream_writer_thread(gpointer data)
{
	MigdStreamWriter *self = data;
	gboolean wake = FALSE;
	gboolean idle = TRUE;

	g_mutex_lock(&self->w.lock);
	for (;;) {
		g_autoptr(GError) error_local = NULL;
		g_autoptr(GBytes) chunk = NULL;
		MigdStreamWriterItem *head;
		gsize size = 0;
		gconstpointer buf;
		gboolean ok = TRUE;
		gboolean check;
		guint32 want;
		guint64 n_checked;

		while (!self->w.quit && !self->finish && g_queue_is_empty(&self->queue)) {
			idle = TRUE;
			g_cond_wait(&self->w.cond, &self->w.lock);
		}
		if (self->w.quit)
			break;
		if (g_queue_is_empty(&self->queue)) {
			MigdStreamEvent *event = migd_stream_event_new(MIGD_STREAM_EVENT_FINISHED);
			event->a = self->w.meter.bytes;
			wake |= migd_stream_worker_post_locked(&self->w, event);
			break;
		}
		if (idle) {
			migd_stream_meter_start(&self->w.meter, g_get_monotonic_time());
			idle = FALSE;
		}
		/* the head stays queued while it is written, so it counts against the bound */
		head = g_queue_peek_head(&self->queue);
		chunk = g_bytes_ref(head->chunk);
		check = head->check;
		want = head->crc32c;
		n_checked = self->n_checked;
		g_mutex_unlock(&self->w.lock);

		buf = g_bytes_get_data(chunk, &size);
		/* checked before the write: a corrupted chunk never reaches the device */
		if (check) {
			guint32 crc = migd_crc32c_update(0, buf, size);
			if (crc != want) {
				ok = FALSE;
				g_set_error(&error_local, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
					    "checksum mismatch in checked chunk %" G_GUINT64_FORMAT
					    " (%" G_GSIZE_FORMAT " bytes): CRC32C %08x, the "
					    "source sent %08x",
					    n_checked, size, crc, want);
			} else {
				g_mutex_lock(&self->w.lock);
				self->crc32c = migd_crc32c_combine(self->crc32c, crc, size);
				self->n_checked++;
				g_mutex_unlock(&self->w.lock);
			}
		}
		if (ok)
			ok = migd_data_fd_write_all(self->w.data_fd, buf, size, self->w.cancellable,
						    &error_local);

		g_mutex_lock(&self->w.lock);
		if (!ok) {
			/* after cancel() the error is only the consequence of it */
			if (!self->w.quit) {
				MigdStreamEvent *event =
				    migd_stream_event_new(MIGD_STREAM_EVENT_ERROR);
				g_prefix_error(&error_local, "%s: ", self->w.name);
				event->error = g_steal_pointer(&error_local);
				wake |= migd_stream_worker_post_locked(&self->w, event);
			}
			g_queue_clear_full(&self->queue,
					   (GDestroyNotify)migd_stream_writer_item_free);
			migd_stream_window_clear(&self->w.window);
			self->w.quit = TRUE;
			if (self->w.member != NULL) {
				g_mutex_unlock(&self->w.lock);
				migd_stream_budget_give(
				    self->w.member,
				    migd_stream_budget_member_get_held(self->w.member));
				g_mutex_lock(&self->w.lock);
			}
			break;
		}
		migd_stream_writer_item_free(g_queue_pop_head(&self->queue));
		migd_stream_window_put(&self->w.window, size);
		migd_stream_meter_add(&self->w.meter, size, g_get_monotonic_time());
		/* unlocked: giving back may call other writers' wake, which takes their locks */
		if (self->w.member != NULL) {
			g_mutex_unlock(&self->w.lock);
			migd_stream_budget_give(self->w.member, size);
			g_mutex_lock(&self->w.lock);
		}
		/* half the bounds: a pusher gets room for more than one chunk */
		if (self->want_space &&
		    migd_stream_window_is_half_empty(&self->w.window, self->w.config.max_chunks,
						     self->w.config.max_bytes)) {
			self->want_space = FALSE;
			wake |= migd_stream_worker_post_locked(
			    &self->w, migd_stream_event_new(MIGD_STREAM_EVENT_SPACE));
		}
		if (wake) {
			g_mutex_unlock(&self->w.lock);
			migd_stream_notify_wake(self->w.notify);
			wake = FALSE;
			g_mutex_lock(&self->w.lock);
		}
	}
	wake |= migd_stream_worker_post_locked(&self->w,
					       migd_stream_event_new(MIGD_STREAM_EVENT_STOPPED));
	g_mutex_unlock(&self->w.lock);
	if (wake)
		migd_stream_notify_wake(self->w.notify);
	return NULL;
}

static void
migd_stream_writer_deliver(gpointer owner, MigdStreamEvent *event)
{
	MigdStreamWriter *self = owner;
	const MigdStreamWriterCallbacks *cb = &self->callbacks;

	switch (event->kind) {
	case MIGD_STREAM_EVENT_STOPPED:
		if (cb->stopped != NULL)
			cb->stopped(self, self->user_data);
		break;
	case MIGD_STREAM_EVENT_SPACE:
		if (cb->space_available != NULL && !self->failed)
			cb->space_available(self, self->user_data);
		break;
	case MIGD_STREAM_EVENT_FINISHED:
		if (cb->finished != NULL)
			cb->finished(self, event->a, self->user_data);
		break;
	case MIGD_STREAM_EVENT_ERROR:
		self->failed = TRUE;
		self->w.stopped = TRUE;
		if (cb->error != NULL)
			cb->error(self, event->error, self->user_data);
		break;
	default:
		g_warn_if_reached();
		break;
	}
}

static gboolean
migd_stream_writer_push_item(MigdStreamWriter *self, GBytes *chunk, gboolean check, guint32 crc32c)
{
	g_autoptr(GMutexLocker) locker = NULL;
	MigdStreamWriterItem *item;
	gsize size;

	if (self->w.stopped)
		return FALSE;
	size = g_bytes_get_size(chunk);
	if (size == 0)
		return TRUE;
	locker = g_mutex_locker_new(&self->w.lock);
	/* the worker failed, its error not dispatched yet */
	if (self->w.quit)
		return FALSE;
	if (migd_stream_window_is_full(&self->w.window, self->w.config.max_chunks,
				       self->w.config.max_bytes, size)) {
		self->want_space = TRUE;
		return FALSE;
	}
	/* the daemon's bound: refused, the budget wakes us once bytes come back */
	if (self->w.member != NULL && !migd_stream_budget_try_take(self->w.member, size)) {
		self->want_space = TRUE;
		return FALSE;
	}
	item = g_new0(MigdStreamWriterItem, 1);
	item->chunk = g_bytes_ref(chunk);
	item->check = check;
	item->crc32c = crc32c;
	g_queue_push_tail(&self->queue, item);
	migd_stream_window_take(&self->w.window, size);
	if (self->w.window.chunks == 1)
		g_cond_broadcast(&self->w.cond);
	return TRUE;
}

gboolean
migd_stream_writer_push(MigdStreamWriter *self, GBytes *chunk)
{
	g_return_val_if_fail(MIGD_IS_STREAM_WRITER(self), FALSE);
	g_return_val_if_fail(chunk != NULL, FALSE);
	return migd_stream_writer_push_item(self, chunk, FALSE, 0);
}

gboolean
migd_stream_writer_push_checked(MigdStreamWriter *self, GBytes *chunk, guint32 crc32c)
{
	g_return_val_if_fail(MIGD_IS_STREAM_WRITER(self), FALSE);
	g_return_val_if_fail(chunk != NULL, FALSE);
	return migd_stream_writer_push_item(self, chunk, TRUE, crc32c);
}

/* any thread, no budget lock held: another stream gave bytes back */
static void
migd_stream_writer_budget_wake(gpointer member, gpointer user_data)
{
	MigdStreamWriter *self = user_data;
	gboolean wake = FALSE;

	g_mutex_lock(&self->w.lock);
	if (self->want_space && !self->w.quit) {
		self->want_space = FALSE;
		wake = migd_stream_worker_post_locked(
		    &self->w, migd_stream_event_new(MIGD_STREAM_EVENT_SPACE));
	}
	g_mutex_unlock(&self->w.lock);
	if (wake)
		migd_stream_notify_wake(self->w.notify);
}

void
migd_stream_writer_set_budget(MigdStreamWriter *self, MigdStreamBudget *budget)
{
	g_return_if_fail(MIGD_IS_STREAM_WRITER(self));
	migd_stream_worker_join_budget(&self->w, budget, MIGD_STREAM_BUDGET_RECEIVE,
				       migd_stream_writer_budget_wake, self);
}

guint32
migd_stream_writer_get_crc32c(MigdStreamWriter *self)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_val_if_fail(MIGD_IS_STREAM_WRITER(self), 0);
	locker = g_mutex_locker_new(&self->w.lock);
	return self->crc32c;
}

void
migd_stream_writer_finish(MigdStreamWriter *self)
{
	g_return_if_fail(MIGD_IS_STREAM_WRITER(self));

	if (self->w.stopped)
		return;
	self->w.stopped = TRUE;
	g_mutex_lock(&self->w.lock);
	self->finish = TRUE;
	g_cond_broadcast(&self->w.cond);
	g_mutex_unlock(&self->w.lock);
}

gboolean
migd_stream_writer_is_stopped(MigdStreamWriter *self)
{
	g_return_val_if_fail(MIGD_IS_STREAM_WRITER(self), TRUE);
	return self->w.stopped;
}

void
migd_stream_writer_cancel(MigdStreamWriter *self)
{
	g_return_if_fail(MIGD_IS_STREAM_WRITER(self));

	migd_stream_worker_cancel(&self->w);
}

void
migd_stream_writer_get_stats(MigdStreamWriter *self, MigdStreamStats *stats)
{
	g_return_if_fail(MIGD_IS_STREAM_WRITER(self));
	g_return_if_fail(stats != NULL);

	migd_stream_worker_get_stats(&self->w, stats);
}

MigdStreamWriter *
migd_stream_writer_new(MigdDataFd *data_fd, GMainContext *context, const MigdStreamConfig *config,
		       const MigdStreamWriterCallbacks *callbacks, gpointer user_data,
		       GError **error)
{
	g_autoptr(MigdStreamWriter) self = NULL;

	g_return_val_if_fail(data_fd != NULL, NULL);
	g_return_val_if_fail(callbacks != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	self = g_object_new(MIGD_TYPE_STREAM_WRITER, NULL);
	self->callbacks = *callbacks;
	self->user_data = user_data;
	if (!migd_stream_worker_start(&self->w, data_fd, MIGD_DATA_FD_RESUME, context, config,
				      migd_stream_writer_deliver, migd_stream_writer_thread,
				      G_OBJECT(self), "migd-stream-wr", error))
		return NULL;
	return g_steal_pointer(&self);
}

static void
migd_stream_writer_init(MigdStreamWriter *self)
{
	migd_stream_worker_init(&self->w);
	g_queue_init(&self->queue);
}

static void
migd_stream_writer_dispose(GObject *object)
{
	MigdStreamWriter *self = MIGD_STREAM_WRITER(object);

	if (self->w.thread != NULL)
		migd_stream_writer_cancel(self);
	migd_stream_worker_dispose(&self->w);
	g_queue_clear_full(&self->queue, (GDestroyNotify)migd_stream_writer_item_free);
	G_OBJECT_CLASS(migd_stream_writer_parent_class)->dispose(object);
}

static void
migd_stream_writer_finalize(GObject *object)
{
	migd_stream_worker_finalize(&MIGD_STREAM_WRITER(object)->w);
	G_OBJECT_CLASS(migd_stream_writer_parent_class)->finalize(object);
}

static void
migd_stream_writer_class_init(MigdStreamWriterClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = migd_stream_writer_dispose;
	object_class->finalize = migd_stream_writer_finalize;
}
