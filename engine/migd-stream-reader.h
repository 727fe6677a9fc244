/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "migd-data-fd.h"
#include "migd-stream-budget.h"
#include "migd-stream-stats.h"

G_BEGIN_DECLS

/*
 * The source side of one device stream: a worker thread that does the blocking
 * reads of one save data fd (most drivers' data fds cannot be polled) and hands
 * the chunks to the main context.
 *
 * Threads: every function is for the thread that runs the reader's GMainContext,
 * except migd_stream_reader_release() (any thread). Every callback runs there,
 * from a source attached to that context.
 *
 * Ownership of chunks: the chunk callback borrows the GBytes (g_bytes_ref() it to
 * keep it). Whatever the callback does, the chunk stays "in flight" until the
 * consumer calls migd_stream_reader_release() with it, e.g. once the network
 * took its bytes. At most MigdStreamConfig.max_chunks chunks (each at most
 * chunk_size bytes) are in flight, read or being read: when they all are, the
 * worker waits on a GCond before its next read, which is how a slow network
 * slows the device's read-out and memory stays bounded.
 *
 * One operation (a drain or a PRECOPY_INFO query) runs at a time; its result
 * callback (drained, precopy_info or error) ends it. After an error the worker
 * has returned and the reader accepts no more operations.
 *
 * Cancellation: migd_stream_reader_cancel() wakes a worker waiting for the
 * consumer, or for a non-blocking fd to become readable, at once, and silences
 * every callback but stopped. A worker blocked inside a driver's read() (mlx5
 * waits for its SAVE command without O_NONBLOCK) cannot be interrupted from
 * userspace: the engine ends it by moving the device out of the saving state
 * (or resetting it); the driver then disables the fd, read() fails with ENODEV,
 * and the worker, seeing it was cancelled, returns without reporting it. Dispose
 * cancels and joins the worker, so the last unref blocks until that happens;
 * an engine that must not block waits for stopped first.
 */
#define MIGD_TYPE_STREAM_READER (migd_stream_reader_get_type())
G_DECLARE_FINAL_TYPE(MigdStreamReader, migd_stream_reader, MIGD, STREAM_READER, GObject)

typedef struct {
	/*
	 * the next piece of the stream, in order; see "Ownership of chunks";
	 * @crc32c: its CRC32C, computed on the worker while the bytes were in
	 * cache, with MigdStreamConfig.checksum (else 0)
	 */
	void (*chunk)(MigdStreamReader *reader, GBytes *chunk, guint32 crc32c, gpointer user_data);
	/*
	 * the drain reached the temporary end (PRE_COPY: MIGD_DATA_READ_TEMP_END)
	 * or the end (STOP_COPY: MIGD_DATA_READ_END) after @drain_bytes; every
	 * chunk of it has been delivered before
	 */
	void (*drained)(MigdStreamReader *reader, MigdState phase, guint64 drain_bytes,
			MigdDataReadStatus status, gpointer user_data);
	/* the answer of migd_stream_reader_query_precopy_info() */
	void (*precopy_info)(MigdStreamReader *reader, guint64 initial_bytes, guint64 dirty_bytes,
			     gpointer user_data);
	/* the operation failed (the data-fd layer's error, e.g. MIGD_ERROR_SESSION_ENDED) */
	void (*error)(MigdStreamReader *reader, const GError *error, gpointer user_data);
	/* optional: the worker thread has returned (after an error or a cancel) */
	void (*stopped)(MigdStreamReader *reader, gpointer user_data);
} MigdStreamReaderCallbacks;

/*
 * Takes ownership of @data_fd (a save fd; closed at finalize) and starts the
 * worker. @context NULL means the thread-default context. @config NULL: defaults.
 */
MigdStreamReader *migd_stream_reader_new(MigdDataFd *data_fd, GMainContext *context,
					 const MigdStreamConfig *config,
					 const MigdStreamReaderCallbacks *callbacks,
					 gpointer user_data, GError **error);

/*
 * Reads in @phase (PRE_COPY, PRE_COPY_P2P or STOP_COPY) until the temporary end
 * or the end. Fails (MIGD_ERROR_BUSY) while another operation runs, and after
 * an error or a cancel.
 */
gboolean migd_stream_reader_drain(MigdStreamReader *self, MigdState phase, GError **error);

/*
 * VFIO_MIG_GET_PRECOPY_INFO on the worker, serialized with the reads (for mlx5
 * it also starts the next incremental save). The answer comes to precopy_info.
 */
gboolean migd_stream_reader_query_precopy_info(MigdStreamReader *self, GError **error);

/* the consumer is done with @chunk (one delivered by the chunk callback); any thread */
void migd_stream_reader_release(MigdStreamReader *self, GBytes *chunk);

/*
 * Chunks in flight take from @budget too (the daemon's, shared by every stream;
 * its send half): the worker waits for it before a read, and reads less than
 * chunk_size when its fair share is smaller. Before the first operation.
 */
void migd_stream_reader_set_budget(MigdStreamReader *self, MigdStreamBudget *budget);

/* an operation is running or its result has not been dispatched yet */
gboolean migd_stream_reader_is_busy(MigdStreamReader *self);
/* an error was reported or the reader was cancelled: it takes no more operations */
gboolean migd_stream_reader_is_stopped(MigdStreamReader *self);

void migd_stream_reader_cancel(MigdStreamReader *self);
void migd_stream_reader_get_stats(MigdStreamReader *self, MigdStreamStats *stats);

G_END_DECLS
