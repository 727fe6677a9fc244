/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "migd-error.h"
#include "migd-stream-private.h"

/* one sample per slot interval: the ring covers the whole window */
#define MIGD_STREAM_METER_SLOT_US (MIGD_STREAM_RATE_WINDOW_US / MIGD_STREAM_METER_SLOTS)

static void
migd_stream_meter_push(MigdStreamMeter *self, gint64 now_us)
{
	self->sample_us[self->head] = now_us;
	self->sample_bytes[self->head] = self->bytes;
	self->head = (self->head + 1) % MIGD_STREAM_METER_SLOTS;
	self->n_samples = MIN(self->n_samples + 1, MIGD_STREAM_METER_SLOTS);
}

void
migd_stream_meter_start(MigdStreamMeter *self, gint64 now_us)
{
	migd_stream_meter_push(self, now_us);
}

void
migd_stream_meter_add(MigdStreamMeter *self, guint64 n_bytes, gint64 now_us)
{
	guint newest = (self->head + MIGD_STREAM_METER_SLOTS - 1) % MIGD_STREAM_METER_SLOTS;

	if (n_bytes == 0)
		return;
	if (self->first_us == 0)
		self->first_us = now_us;
	self->bytes += n_bytes;
	self->last_us = now_us;
	if (self->n_samples == 0 || now_us - self->sample_us[newest] >= MIGD_STREAM_METER_SLOT_US)
		migd_stream_meter_push(self, now_us);
}

void
migd_stream_meter_snapshot(const MigdStreamMeter *self, gint64 now_us, MigdStreamStats *stats)
{
	stats->bytes = self->bytes;
	stats->first_us = self->first_us;
	stats->last_us = self->last_us;
	stats->rate = 0;
	stats->average_rate = 0;
	if (self->first_us != 0 && now_us > self->first_us)
		stats->average_rate =
		    (gdouble)self->bytes * G_USEC_PER_SEC / (gdouble)(now_us - self->first_us);

	/* the oldest sample inside the window; none means the stream idled all of it */
	for (guint i = 0; i < self->n_samples; i++) {
		guint slot = (self->head + MIGD_STREAM_METER_SLOTS - self->n_samples + i) %
			     MIGD_STREAM_METER_SLOTS;
		gint64 age = now_us - self->sample_us[slot];

		if (age > MIGD_STREAM_RATE_WINDOW_US)
			continue;
		if (age > 0)
			stats->rate = (gdouble)(self->bytes - self->sample_bytes[slot]) *
				      G_USEC_PER_SEC / (gdouble)age;
		break;
	}
}

gboolean
migd_stream_window_is_full(const MigdStreamWindow *self, guint max_chunks, guint64 max_bytes,
			   guint64 size)
{
	return self->chunks > 0 && (self->chunks >= max_chunks || self->bytes + size > max_bytes);
}

gboolean
migd_stream_window_is_half_empty(const MigdStreamWindow *self, guint max_chunks, guint64 max_bytes)
{
	return (guint64)self->chunks * 2 <= max_chunks && self->bytes * 2 <= max_bytes;
}

void
migd_stream_window_take(MigdStreamWindow *self, guint64 size)
{
	self->chunks++;
	self->bytes += size;
	self->peak_chunks = MAX(self->peak_chunks, self->chunks);
	self->peak_bytes = MAX(self->peak_bytes, self->bytes);
}

void
migd_stream_window_put(MigdStreamWindow *self, guint64 size)
{
	self->chunks--;
	self->bytes -= size;
}

void
migd_stream_window_trim(MigdStreamWindow *self, guint64 unused)
{
	self->bytes -= unused;
}

gboolean
migd_stream_window_holds(const MigdStreamWindow *self, guint64 size)
{
	return self->chunks > 0 && self->bytes >= size;
}

void
migd_stream_window_clear(MigdStreamWindow *self)
{
	self->chunks = 0;
	self->bytes = 0;
}

MigdStreamEvent *
migd_stream_event_new(MigdStreamEventKind kind)
{
	MigdStreamEvent *event = g_new0(MigdStreamEvent, 1);
	event->kind = kind;
	return event;
}

void
migd_stream_event_free(MigdStreamEvent *event)
{
	if (event == NULL)
		return;
	g_clear_pointer(&event->chunk, g_bytes_unref);
	g_clear_error(&event->error);
	g_free(event);
}

static gboolean
migd_stream_notify_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	/* rearm before the callback looks at the queue: a wake from now on is not lost */
	g_source_set_ready_time(source, -1);
	return callback != NULL ? callback(user_data) : G_SOURCE_REMOVE;
}

static GSourceFuncs migd_stream_notify_funcs = {
    .dispatch = migd_stream_notify_dispatch,
};

GSource *
migd_stream_notify_new(GMainContext *context, GSourceFunc func, gpointer user_data,
		       const gchar *name)
{
	GSource *source = g_source_new(&migd_stream_notify_funcs, sizeof(GSource));

	g_source_set_callback(source, func, user_data, NULL);
	g_source_set_static_name(source, name);
	g_source_set_ready_time(source, -1);
	g_source_attach(source, context);
	return source;
}

void
migd_stream_notify_wake(GSource *source)
{
	/*
	 * takes the context's lock and signals its wakeup: safe from any thread,
	 * as GCancellable's source relies on when another thread cancels
	 */
	g_source_set_ready_time(source, 0);
}

void
migd_stream_worker_init(MigdStreamWorker *self)
{
	g_mutex_init(&self->lock);
	g_cond_init(&self->cond);
	g_queue_init(&self->events);
	self->cancellable = g_cancellable_new();
}

static gboolean migd_stream_worker_dispatch(gpointer user_data);

gboolean
migd_stream_worker_start(MigdStreamWorker *self, MigdDataFd *data_fd, MigdDataFdDirection want,
			 GMainContext *context, const MigdStreamConfig *config,
			 MigdStreamDeliverFunc deliver, GThreadFunc func, GObject *owner,
			 const gchar *thread_name, GError **error)
{
	MigdStreamConfig cfg = {0};

	/* the fd is ours from here on, whatever happens */
	if (!migd_stream_take_data_fd(data_fd, want, config, &cfg, error))
		return FALSE;
	self->data_fd = data_fd;
	self->name = g_strdup(cfg.name);
	self->config = cfg;
	self->config.name = self->name;
	self->context =
	    context != NULL ? g_main_context_ref(context) : g_main_context_ref_thread_default();
	self->owner = owner;
	self->deliver = deliver;
	self->notify =
	    migd_stream_notify_new(self->context, migd_stream_worker_dispatch, self, thread_name);
	self->thread = g_thread_try_new(thread_name, func, owner, error);
	return self->thread != NULL;
}

gboolean
migd_stream_worker_post_locked(MigdStreamWorker *self, MigdStreamEvent *event)
{
	gboolean was_empty = g_queue_is_empty(&self->events);
	g_queue_push_tail(&self->events, event);
	return was_empty;
}

void
migd_stream_worker_post(MigdStreamWorker *self, MigdStreamEvent *event)
{
	gboolean wake;

	g_mutex_lock(&self->lock);
	wake = migd_stream_worker_post_locked(self, event);
	g_mutex_unlock(&self->lock);
	if (wake)
		migd_stream_notify_wake(self->notify);
}

void
migd_stream_worker_post_stopped(MigdStreamWorker *self)
{
	migd_stream_worker_post(self, migd_stream_event_new(MIGD_STREAM_EVENT_STOPPED));
}

/* main context: hands the owner what the worker posted */
static gboolean
migd_stream_worker_dispatch(gpointer user_data)
{
	MigdStreamWorker *self = user_data;
	g_autoptr(GObject) keep = g_object_ref(self->owner);
	GQueue events = G_QUEUE_INIT;
	MigdStreamEvent *event;

	g_mutex_lock(&self->lock);
	events = self->events;
	g_queue_init(&self->events);
	g_mutex_unlock(&self->lock);

	while ((event = g_queue_pop_head(&events)) != NULL) {
		/* a callback dropped the owner's last reference: nobody wants the rest */
		if (g_atomic_int_get(&self->owner->ref_count) > 1 &&
		    (!self->cancelled || event->kind == MIGD_STREAM_EVENT_STOPPED))
			self->deliver(self->owner, event);
		migd_stream_event_free(event);
	}
	return G_SOURCE_CONTINUE;
}

void
migd_stream_worker_cancel(MigdStreamWorker *self)
{
	self->cancelled = TRUE;
	self->stopped = TRUE;
	g_mutex_lock(&self->lock);
	self->quit = TRUE;
	g_cond_broadcast(&self->cond);
	g_mutex_unlock(&self->lock);
	/* wakes a worker waiting for the budget */
	if (self->member != NULL)
		migd_stream_budget_cancel(self->member);
	/* wakes a worker waiting in poll() for a non-blocking fd */
	g_cancellable_cancel(self->cancellable);
}

void
migd_stream_worker_dispose(MigdStreamWorker *self)
{
	/* prompt unless a driver's read() or write() blocks: see the headers */
	if (self->thread != NULL)
		g_thread_join(g_steal_pointer(&self->thread));
	/* whatever is still in flight is gone with the stream; no wake after this */
	g_clear_pointer(&self->member, migd_stream_budget_leave);
	migd_stream_notify_clear(&self->notify);
	g_queue_clear_full(&self->events, (GDestroyNotify)migd_stream_event_free);
}

void
migd_stream_worker_finalize(MigdStreamWorker *self)
{
	g_clear_pointer(&self->data_fd, migd_data_fd_free);
	g_clear_pointer(&self->context, g_main_context_unref);
	g_clear_object(&self->cancellable);
	g_free(self->name);
	g_mutex_clear(&self->lock);
	g_cond_clear(&self->cond);
}

void
migd_stream_worker_join_budget(MigdStreamWorker *self, MigdStreamBudget *budget,
			       MigdStreamBudgetSide side, GFunc wake, gpointer wake_data)
{
	g_return_if_fail(self->member == NULL);

	if (budget == NULL)
		return;
	/* the worker reads it once an operation or a chunk reached it, under the lock */
	g_mutex_lock(&self->lock);
	self->member = migd_stream_budget_join(budget, side, wake, wake_data);
	g_mutex_unlock(&self->lock);
}

void
migd_stream_worker_get_stats(MigdStreamWorker *self, MigdStreamStats *stats)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	memset(stats, 0, sizeof(*stats));
	migd_stream_meter_snapshot(&self->meter, g_get_monotonic_time(), stats);
	stats->chunks_in_flight = self->window.chunks;
	stats->bytes_in_flight = self->window.bytes;
	stats->peak_chunks_in_flight = self->window.peak_chunks;
	stats->peak_bytes_in_flight = self->window.peak_bytes;
}

gboolean
migd_stream_config_resolve(const MigdStreamConfig *config, MigdStreamConfig *out, GError **error)
{
	MigdStreamConfig cfg = {0};

	if (config != NULL)
		cfg = *config;
	if (cfg.chunk_size == 0)
		cfg.chunk_size = MIGD_STREAM_DEFAULT_CHUNK_SIZE;
	if (cfg.max_chunks == 0)
		cfg.max_chunks = MIGD_STREAM_DEFAULT_MAX_CHUNKS;
	if (cfg.max_bytes == 0)
		cfg.max_bytes = MIGD_STREAM_DEFAULT_MAX_BYTES;
	if (cfg.name == NULL)
		cfg.name = "stream";
	if (cfg.chunk_size < MIGD_STREAM_MIN_CHUNK_SIZE ||
	    cfg.chunk_size > MIGD_STREAM_MAX_CHUNK_SIZE) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: chunk size %" G_GSIZE_FORMAT " outside %" G_GSIZE_FORMAT
			    "..%" G_GSIZE_FORMAT,
			    cfg.name, cfg.chunk_size, MIGD_STREAM_MIN_CHUNK_SIZE,
			    MIGD_STREAM_MAX_CHUNK_SIZE);
		return FALSE;
	}
	if (cfg.max_chunks > MIGD_STREAM_MAX_MAX_CHUNKS) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: %u chunks in flight, at most %u", cfg.name, cfg.max_chunks,
			    (guint)MIGD_STREAM_MAX_MAX_CHUNKS);
		return FALSE;
	}
	*out = cfg;
	return TRUE;
}

gboolean
migd_stream_take_data_fd(MigdDataFd *data_fd, MigdDataFdDirection want,
			 const MigdStreamConfig *config, MigdStreamConfig *out, GError **error)
{
	if (!migd_stream_config_resolve(config, out, error)) {
		migd_data_fd_free(data_fd);
		return FALSE;
	}
	if (migd_data_fd_get_direction(data_fd) != want) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: a stream %s needs a %s data fd", out->name,
			    want == MIGD_DATA_FD_SAVE ? "reader" : "writer",
			    want == MIGD_DATA_FD_SAVE ? "save" : "resume");
		migd_data_fd_free(data_fd);
		return FALSE;
	}
	return TRUE;
}

void
migd_stream_notify_clear(GSource **notify)
{
	if (*notify == NULL)
		return;
	g_source_destroy(*notify);
	g_clear_pointer(notify, g_source_unref);
}
