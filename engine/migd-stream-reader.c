/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "migd-crc32c.h"
#include "migd-error.h"
#include "migd-stream-private.h"
#include "migd-stream-reader.h"

typedef enum {
	MIGD_STREAM_READER_OP_NONE,
	MIGD_STREAM_READER_OP_DRAIN,
	MIGD_STREAM_READER_OP_PRECOPY_INFO,
} MigdStreamReaderOp;

struct _MigdStreamReader {
	GObject parent_instance;
	MigdStreamWorker w; /* fd, thread, lock, events: migd-stream-private.h */

	/* set at construction, read-only afterwards */
	MigdStreamReaderCallbacks callbacks;
	gpointer user_data;

	/* main context only; @w.stopped: an error was dispatched or cancel() was called */
	gboolean busy;

	/* everything below is under @w.lock; @w.cond wakes the worker */
	MigdStreamReaderOp op;
	MigdState op_phase;
	/* the window (@w.window) holds the chunks read or being read, not yet released */
};

G_DEFINE_TYPE(MigdStreamReader, migd_stream_reader, G_TYPE_OBJECT)

static void
migd_stream_reader_post_error(MigdStreamReader *self, GError *error)
{
	MigdStreamEvent *event = migd_stream_event_new(MIGD_STREAM_EVENT_ERROR);
	event->error = error;
	migd_stream_worker_post(&self->w, event);
}

/*
 * worker: waits for room in the window, then for the budget, and takes a chunk
 * of both before a read, so that what is being read counts against the bounds
 * too. The reader's window bounds chunks only: each holds at most chunk_size
 * bytes, or what the budget granted. Returns the bytes reserved; 0: quit.
 */
static gsize
migd_stream_reader_reserve(MigdStreamReader *self)
{
	gsize size = self->w.config.chunk_size;
	gboolean quit;

	g_mutex_lock(&self->w.lock);
	while (!self->w.quit && migd_stream_window_is_full(
				    &self->w.window, self->w.config.max_chunks, G_MAXUINT64, size))
		g_cond_wait(&self->w.cond, &self->w.lock);
	quit = self->w.quit;
	g_mutex_unlock(&self->w.lock);
	if (quit)
		return 0;
	/* outside the lock: the bytes come back from other streams' threads */
	if (self->w.member != NULL) {
		size = migd_stream_budget_take(self->w.member, size,
					       MIN(size, MIGD_STREAM_MIN_CHUNK_SIZE));
		if (size == 0)
			return 0;
	}
	g_mutex_lock(&self->w.lock);
	migd_stream_window_take(&self->w.window, size);
	g_mutex_unlock(&self->w.lock);
	return size;
}

/* worker: a slot of @reserved bytes now holds @n_bytes (0: give the slot back) */
static void
migd_stream_reader_settle(MigdStreamReader *self, gsize reserved, gsize n_bytes)
{
	g_mutex_lock(&self->w.lock);
	if (n_bytes == 0) {
		migd_stream_window_put(&self->w.window, reserved);
	} else {
		migd_stream_window_trim(&self->w.window, reserved - n_bytes);
		migd_stream_meter_add(&self->w.meter, n_bytes, g_get_monotonic_time());
	}
	g_mutex_unlock(&self->w.lock);
	if (self->w.member != NULL)
		migd_stream_budget_give(self->w.member, reserved - n_bytes);
}

/*
 * worker: fills one chunk, reading until it is full or the (temporary) end.
 * Returns NULL with @status set, or NULL with @error set.
 */
static GBytes *
migd_stream_reader_read_chunk(MigdStreamReader *self, MigdState phase, gsize size,
			      MigdDataReadStatus *status, GError **error)
{
	g_autofree guint8 *buf = g_malloc(size);
	gsize fill = 0;

	*status = MIGD_DATA_READ_DATA;
	while (fill < size && *status == MIGD_DATA_READ_DATA) {
		gsize n = 0;
		if (!migd_data_fd_read_chunk(self->w.data_fd, phase, buf + fill, size - fill, &n,
					     status, self->w.cancellable, error))
			return NULL;
		fill += n;
	}
	if (fill == 0)
		return NULL;
	/* the last chunk of a drain is often short: do not keep a whole buffer for it */
	if (fill < size / 2)
		buf = g_realloc(buf, fill);
	return g_bytes_new_take(g_steal_pointer(&buf), fill);
}

static void
migd_stream_reader_run_drain(MigdStreamReader *self, MigdState phase)
{
	guint64 total = 0;

	g_mutex_lock(&self->w.lock);
	migd_stream_meter_start(&self->w.meter, g_get_monotonic_time());
	g_mutex_unlock(&self->w.lock);

	for (;;) {
		g_autoptr(GBytes) chunk = NULL;
		g_autoptr(GError) error_local = NULL;
		MigdDataReadStatus status = MIGD_DATA_READ_DATA;
		MigdStreamEvent *event;
		gsize reserved;

		/* backpressure: nothing is read while the consumer holds max_chunks */
		reserved = migd_stream_reader_reserve(self);
		if (reserved == 0)
			return;
		chunk = migd_stream_reader_read_chunk(self, phase, reserved, &status, &error_local);
		migd_stream_reader_settle(self, reserved,
					  chunk != NULL ? g_bytes_get_size(chunk) : 0);
		if (error_local != NULL) {
			g_prefix_error(&error_local, "%s: ", self->w.name);
			migd_stream_reader_post_error(self, g_steal_pointer(&error_local));
			g_mutex_lock(&self->w.lock);
			self->w.quit = TRUE;
			g_mutex_unlock(&self->w.lock);
			return;
		}
		if (chunk != NULL) {
			total += g_bytes_get_size(chunk);
			event = migd_stream_event_new(MIGD_STREAM_EVENT_CHUNK);
			/* now, while the bytes just read are still in cache */
			if (self->w.config.checksum) {
				gsize len = 0;
				gconstpointer data = g_bytes_get_data(chunk, &len);
				event->a = migd_crc32c_update(0, data, len);
			}
			event->chunk = g_steal_pointer(&chunk);
			migd_stream_worker_post(&self->w, event);
		}
		if (status != MIGD_DATA_READ_DATA) {
			event = migd_stream_event_new(MIGD_STREAM_EVENT_DRAINED);
			event->phase = phase;
			event->status = status;
			event->a = total;
			migd_stream_worker_post(&self->w, event);
			return;
		}
	}
}

static void
migd_stream_reader_run_precopy_info(MigdStreamReader *self)
{
	g_autoptr(GError) error_local = NULL;
	MigdStreamEvent *event;
	guint64 initial = 0;
	guint64 dirty = 0;

	if (!migd_data_fd_get_precopy_info(self->w.data_fd, &initial, &dirty, &error_local)) {
		g_prefix_error(&error_local, "%s: ", self->w.name);
		migd_stream_reader_post_error(self, g_steal_pointer(&error_local));
		g_mutex_lock(&self->w.lock);
		self->w.quit = TRUE;
		g_mutex_unlock(&self->w.lock);
		return;
	}
	event = migd_stream_event_new(MIGD_STREAM_EVENT_PRECOPY_INFO);
	event->a = initial;
	event->b = dirty;
	migd_stream_worker_post(&self->w, event);
}

static gpointer
migd_stream_reader_thread(gpointer data)
{
	MigdStreamReader *self = data;

	for (;;) {
		MigdStreamReaderOp op;
		MigdState phase;

		g_mutex_lock(&self->w.lock);
		while (!self->w.quit && self->op == MIGD_STREAM_READER_OP_NONE)
			g_cond_wait(&self->w.cond, &self->w.lock);
		if (self->w.quit) {
			g_mutex_unlock(&self->w.lock);
			break;
		}
		op = self->op;
		phase = self->op_phase;
		self->op = MIGD_STREAM_READER_OP_NONE;
		g_mutex_unlock(&self->w.lock);

		if (op == MIGD_STREAM_READER_OP_DRAIN)
			migd_stream_reader_run_drain(self, phase);
		else
			migd_stream_reader_run_precopy_info(self);
	}
	migd_stream_worker_post_stopped(&self->w);
	return NULL;
}

static void
migd_stream_reader_deliver(gpointer owner, MigdStreamEvent *event)
{
	MigdStreamReader *self = owner;
	const MigdStreamReaderCallbacks *cb = &self->callbacks;

	switch (event->kind) {
	case MIGD_STREAM_EVENT_STOPPED:
		if (cb->stopped != NULL)
			cb->stopped(self, self->user_data);
		break;
	case MIGD_STREAM_EVENT_CHUNK:
		if (cb->chunk != NULL)
			cb->chunk(self, event->chunk, (guint32)event->a, self->user_data);
		break;
	case MIGD_STREAM_EVENT_DRAINED:
		self->busy = FALSE;
		if (cb->drained != NULL)
			cb->drained(self, event->phase, event->a, event->status, self->user_data);
		break;
	case MIGD_STREAM_EVENT_PRECOPY_INFO:
		self->busy = FALSE;
		if (cb->precopy_info != NULL)
			cb->precopy_info(self, event->a, event->b, self->user_data);
		break;
	case MIGD_STREAM_EVENT_ERROR:
		self->busy = FALSE;
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
migd_stream_reader_start_op(MigdStreamReader *self, MigdStreamReaderOp op, MigdState phase,
			    GError **error)
{
	if (self->w.stopped) {
		g_set_error(error, MIGD_ERROR,
			    self->w.cancelled ? MIGD_ERROR_CANCELLED : MIGD_ERROR_FAILED,
			    "%s: the stream reader has stopped", self->w.name);
		return FALSE;
	}
	if (self->busy) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
			    "%s: the stream reader is busy with another operation", self->w.name);
		return FALSE;
	}
	self->busy = TRUE;
	g_mutex_lock(&self->w.lock);
	self->op = op;
	self->op_phase = phase;
	g_cond_broadcast(&self->w.cond);
	g_mutex_unlock(&self->w.lock);
	return TRUE;
}

gboolean
migd_stream_reader_drain(MigdStreamReader *self, MigdState phase, GError **error)
{
	g_return_val_if_fail(MIGD_IS_STREAM_READER(self), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (!migd_state_is_saving(phase)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: cannot drain a save stream in %s", self->w.name,
			    migd_state_to_string(phase));
		return FALSE;
	}
	return migd_stream_reader_start_op(self, MIGD_STREAM_READER_OP_DRAIN, phase, error);
}

gboolean
migd_stream_reader_query_precopy_info(MigdStreamReader *self, GError **error)
{
	g_return_val_if_fail(MIGD_IS_STREAM_READER(self), FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	return migd_stream_reader_start_op(self, MIGD_STREAM_READER_OP_PRECOPY_INFO,
					   MIGD_STATE_PRE_COPY, error);
}

void
migd_stream_reader_release(MigdStreamReader *self, GBytes *chunk)
{
	gsize size;

	g_return_if_fail(MIGD_IS_STREAM_READER(self));
	g_return_if_fail(chunk != NULL);

	size = g_bytes_get_size(chunk);
	g_mutex_lock(&self->w.lock);
	if (!migd_stream_window_holds(&self->w.window, size)) {
		g_mutex_unlock(&self->w.lock);
		g_critical("%s: released a chunk that was not in flight", self->w.name);
		return;
	}
	migd_stream_window_put(&self->w.window, size);
	g_cond_broadcast(&self->w.cond);
	g_mutex_unlock(&self->w.lock);
	if (self->w.member != NULL)
		migd_stream_budget_give(self->w.member, size);
}

void
migd_stream_reader_set_budget(MigdStreamReader *self, MigdStreamBudget *budget)
{
	g_return_if_fail(MIGD_IS_STREAM_READER(self));
	migd_stream_worker_join_budget(&self->w, budget, MIGD_STREAM_BUDGET_SEND, NULL, NULL);
}

gboolean
migd_stream_reader_is_busy(MigdStreamReader *self)
{
	g_return_val_if_fail(MIGD_IS_STREAM_READER(self), FALSE);
	return self->busy;
}

gboolean
migd_stream_reader_is_stopped(MigdStreamReader *self)
{
	g_return_val_if_fail(MIGD_IS_STREAM_READER(self), TRUE);
	return self->w.stopped;
}

void
migd_stream_reader_cancel(MigdStreamReader *self)
{
	g_return_if_fail(MIGD_IS_STREAM_READER(self));

	self->busy = FALSE;
	migd_stream_worker_cancel(&self->w);
}

void
migd_stream_reader_get_stats(MigdStreamReader *self, MigdStreamStats *stats)
{
	g_return_if_fail(MIGD_IS_STREAM_READER(self));
	g_return_if_fail(stats != NULL);

	migd_stream_worker_get_stats(&self->w, stats);
}

MigdStreamReader *
migd_stream_reader_new(MigdDataFd *data_fd, GMainContext *context, const MigdStreamConfig *config,
		       const MigdStreamReaderCallbacks *callbacks, gpointer user_data,
		       GError **error)
{
	g_autoptr(MigdStreamReader) self = NULL;

	g_return_val_if_fail(data_fd != NULL, NULL);
	g_return_val_if_fail(callbacks != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	self = g_object_new(MIGD_TYPE_STREAM_READER, NULL);
	self->callbacks = *callbacks;
	self->user_data = user_data;
	if (!migd_stream_worker_start(&self->w, data_fd, MIGD_DATA_FD_SAVE, context, config,
				      migd_stream_reader_deliver, migd_stream_reader_thread,
				      G_OBJECT(self), "migd-stream-rd", error))
		return NULL;
	return g_steal_pointer(&self);
}

static void
migd_stream_reader_init(MigdStreamReader *self)
{
	migd_stream_worker_init(&self->w);
}

static void
migd_stream_reader_dispose(GObject *object)
{
	MigdStreamReader *self = MIGD_STREAM_READER(object);

	if (self->w.thread != NULL)
		migd_stream_reader_cancel(self);
	migd_stream_worker_dispose(&self->w);
	G_OBJECT_CLASS(migd_stream_reader_parent_class)->dispose(object);
}

static void
migd_stream_reader_finalize(GObject *object)
{
	migd_stream_worker_finalize(&MIGD_STREAM_READER(object)->w);
	G_OBJECT_CLASS(migd_stream_reader_parent_class)->finalize(object);
}

static void
migd_stream_reader_class_init(MigdStreamReaderClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = migd_stream_reader_dispose;
	object_class->finalize = migd_stream_reader_finalize;
}
