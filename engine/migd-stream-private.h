/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the stream reader and writer share: the rate meter, the event queue a
 * worker fills and the main context drains, and the source that wakes it.
 */
#pragma once

#include <gio/gio.h>

#include "migd-data-fd.h"
#include "migd-stream-budget.h"
#include "migd-stream-stats.h"

G_BEGIN_DECLS

#define MIGD_STREAM_METER_SLOTS 8

/* bytes and a ring of (time, bytes) samples; the owner serializes access */
typedef struct {
	guint64 bytes;
	gint64 first_us;
	gint64 last_us;
	gint64 sample_us[MIGD_STREAM_METER_SLOTS];
	guint64 sample_bytes[MIGD_STREAM_METER_SLOTS];
	guint n_samples;
	guint head; /* the next slot to write */
} MigdStreamMeter;

/* an operation begins after idling: the rate counts from here, not from the last bytes */
void migd_stream_meter_start(MigdStreamMeter *self, gint64 now_us);
void migd_stream_meter_add(MigdStreamMeter *self, guint64 n_bytes, gint64 now_us);
/* fills the byte and rate members of @stats */
void migd_stream_meter_snapshot(const MigdStreamMeter *self, gint64 now_us, MigdStreamStats *stats);

typedef enum {
	MIGD_STREAM_EVENT_CHUNK,	/* reader: @chunk, @a = its CRC32C (config.checksum) */
	MIGD_STREAM_EVENT_DRAINED,	/* reader: @phase, @status, @a = bytes of this drain */
	MIGD_STREAM_EVENT_PRECOPY_INFO, /* reader: @a = initial, @b = dirty */
	MIGD_STREAM_EVENT_SPACE,	/* writer: the queue drained to its low-water mark */
	MIGD_STREAM_EVENT_FINISHED,	/* writer: @a = total bytes */
	MIGD_STREAM_EVENT_ERROR,	/* @error */
	MIGD_STREAM_EVENT_STOPPED,	/* the worker thread has returned */
} MigdStreamEventKind;

typedef struct {
	MigdStreamEventKind kind;
	GBytes *chunk;
	GError *error;
	MigdState phase;
	MigdDataReadStatus status;
	guint64 a;
	guint64 b;
} MigdStreamEvent;

MigdStreamEvent *migd_stream_event_new(MigdStreamEventKind kind);
void migd_stream_event_free(MigdStreamEvent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdStreamEvent, migd_stream_event_free)

/*
 * A source on @context that runs @func whenever another thread called
 * migd_stream_notify_wake(). It has no fd and never polls: waking it sets its
 * ready time, which GLib turns into a wakeup of the context.
 */
GSource *migd_stream_notify_new(GMainContext *context, GSourceFunc func, gpointer user_data,
				const gchar *name);
/* any thread */
void migd_stream_notify_wake(GSource *source);

/* checks and fills the defaults of a MigdStreamConfig (a copy; @name is borrowed) */
/*
 * The shared start of both workers' constructors: resolves @config into @out and
 * checks that @data_fd goes the @want way. The fd is consumed either way: on
 * failure it is closed, since constructors take ownership whatever happens.
 */
gboolean migd_stream_take_data_fd(MigdDataFd *data_fd, MigdDataFdDirection want,
				  const MigdStreamConfig *config, MigdStreamConfig *out,
				  GError **error);
/* destroys and drops a worker's notify source (NULL-safe) */
void migd_stream_notify_clear(GSource **notify);

gboolean migd_stream_config_resolve(const MigdStreamConfig *config, MigdStreamConfig *out,
				    GError **error);

/*
 * The flow-control window of one stream, in one shape for both workers: the
 * chunks (and their bytes) between the producer and the consumer, bounded by
 * MigdStreamConfig. A reader's window holds the chunks read or being read and
 * not yet released by the engine, a writer's the chunks pushed and not yet
 * written. Under the worker's lock.
 *
 * What differs is only who waits when the window is full, and that follows
 * from which side runs on a thread: the reader's producer is its worker, which
 * blocks on the worker's GCond until a release; the writer's producer is the
 * main context, which must not block, so push() is refused and the writer
 * posts SPACE once the window has drained to half its bounds.
 */
typedef struct {
	guint chunks;
	guint64 bytes;
	guint peak_chunks;
	guint64 peak_bytes;
} MigdStreamWindow;

/*
 * A chunk of @size does not fit: the window holds @max_chunks chunks, or would
 * hold more than @max_bytes with it (G_MAXUINT64: no byte bound). An empty
 * window takes any chunk.
 */
gboolean migd_stream_window_is_full(const MigdStreamWindow *self, guint max_chunks,
				    guint64 max_bytes, guint64 size);
/* drained to half of both bounds: room for more than one chunk again */
gboolean migd_stream_window_is_half_empty(const MigdStreamWindow *self, guint max_chunks,
					  guint64 max_bytes);
/* one chunk of @size enters the window */
void migd_stream_window_take(MigdStreamWindow *self, guint64 size);
/* one chunk of @size leaves it */
void migd_stream_window_put(MigdStreamWindow *self, guint64 size);
/* a chunk taken at @size turned out @unused bytes smaller */
void migd_stream_window_trim(MigdStreamWindow *self, guint64 unused);
/* the window holds a chunk of @size (a release that is not in flight is a bug) */
gboolean migd_stream_window_holds(const MigdStreamWindow *self, guint64 size);
/* empties it (a writer that failed drops its queue); the peaks stay */
void migd_stream_window_clear(MigdStreamWindow *self);

/* the owner's handler of one event on the main context (the worker keeps the event) */
typedef void (*MigdStreamDeliverFunc)(gpointer owner, MigdStreamEvent *event);

/*
 * What a reader and a writer both are: a data fd, a worker thread, and events
 * posted back to the main context, delivered there until the owner cancels.
 * Embedded in each as its first member.
 */
typedef struct {
	/* set by migd_stream_worker_start(), read-only afterwards */
	MigdDataFd *data_fd;
	GMainContext *context;
	MigdStreamConfig config;
	gchar *name;
	GSource *notify;
	GThread *thread;
	GCancellable *cancellable;
	GObject *owner; /* not a reference: the owner embeds the worker */
	MigdStreamDeliverFunc deliver;

	/* the daemon's budget this stream takes from too (NULL: none); set before any chunk */
	MigdStreamBudgetMember *member;

	/* main context only */
	gboolean stopped;   /* the owner's own reasons, an error dispatched, or cancel() */
	gboolean cancelled; /* after cancel() nothing but STOPPED reaches the owner */

	/* everything below is under @lock; @cond wakes the worker */
	gboolean quit;
	GMutex lock;
	GCond cond;
	GQueue events; /* MigdStreamEvent, for the main context */
	MigdStreamMeter meter;
	MigdStreamWindow window;
} MigdStreamWorker;

/* the owner's instance init */
void migd_stream_worker_init(MigdStreamWorker *self);
/*
 * The owner's constructor: takes @data_fd whatever happens (as
 * migd_stream_take_data_fd), delivers the posted events to @deliver(@owner) on
 * @context (NULL: the thread-default one) and starts @func(@owner) as thread
 * @thread_name.
 */
gboolean migd_stream_worker_start(MigdStreamWorker *self, MigdDataFd *data_fd,
				  MigdDataFdDirection want, GMainContext *context,
				  const MigdStreamConfig *config, MigdStreamDeliverFunc deliver,
				  GThreadFunc func, GObject *owner, const gchar *thread_name,
				  GError **error);
/* worker, @lock held: queues @event; TRUE if the caller must wake the main context after unlocking
 */
gboolean migd_stream_worker_post_locked(MigdStreamWorker *self, MigdStreamEvent *event);
/* worker: queues @event and wakes the main context when the queue was empty */
void migd_stream_worker_post(MigdStreamWorker *self, MigdStreamEvent *event);
/* the worker thread's last word: STOPPED, which reaches the owner even after cancel() */
void migd_stream_worker_post_stopped(MigdStreamWorker *self);
/*
 * Main context: stops delivering anything but STOPPED, asks the thread to quit
 * (wakes it in its GCond and in poll() for a non-blocking fd).
 */
void migd_stream_worker_cancel(MigdStreamWorker *self);
/* the owner's dispose, after it cancelled the worker: joins it, drops events and the notify */
void migd_stream_worker_dispose(MigdStreamWorker *self);
/* the owner's finalize */
void migd_stream_worker_finalize(MigdStreamWorker *self);
/*
 * The owner's set_budget, before any chunk: the worker takes from @budget's
 * @side too (NULL: it does not); @wake as in migd_stream_budget_join()
 */
void migd_stream_worker_join_budget(MigdStreamWorker *self, MigdStreamBudget *budget,
				    MigdStreamBudgetSide side, GFunc wake, gpointer wake_data);
/* the meter and the window, for the owner's get_stats (takes the lock) */
void migd_stream_worker_get_stats(MigdStreamWorker *self, MigdStreamStats *stats);

G_END_DECLS
