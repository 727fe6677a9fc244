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
 * The destination side of one device stream: a worker thread that writes the
 * chunks the main context pushes into one RESUMING data fd, in order.
 *
 * Threads: every function is for the thread that runs the writer's GMainContext;
 * every callback runs there.
 *
 * Backpressure: the queue (chunks pushed and not yet completely written) holds
 * at most MigdStreamConfig.max_chunks chunks and max_bytes bytes (a single
 * chunk larger than max_bytes is taken into an empty queue). push() never
 * blocks: when the chunk does not fit it returns FALSE and keeps nothing, and
 * the caller stops reading this device's data from the network until
 * space_available runs, once the queue has drained to half its bounds. That is
 * how a slow device load reaches the sender as TCP backpressure.
 *
 * Errors: a failed write (EFAULT for a stream the driver rejects, ENOMEM,
 * MIGD_ERROR_SESSION_ENDED for ENODEV...) drops the queue and reaches error;
 * push() refuses everything from then on. Cancellation and dispose behave as for
 * MigdStreamReader: a write() a driver blocks in ends when the engine moves the
 * device out of RESUMING or resets it.
 */
#define MIGD_TYPE_STREAM_WRITER (migd_stream_writer_get_type())
G_DECLARE_FINAL_TYPE(MigdStreamWriter, migd_stream_writer, MIGD, STREAM_WRITER, GObject)

typedef struct {
	/* after a refused push(): the queue has room again */
	void (*space_available)(MigdStreamWriter *writer, gpointer user_data);
	/* after migd_stream_writer_finish(): every chunk has been written */
	void (*finished)(MigdStreamWriter *writer, guint64 total_bytes, gpointer user_data);
	void (*error)(MigdStreamWriter *writer, const GError *error, gpointer user_data);
	/* optional: the worker thread has returned (after finished, an error or a cancel) */
	void (*stopped)(MigdStreamWriter *writer, gpointer user_data);
} MigdStreamWriterCallbacks;

/* takes ownership of @data_fd (a resume fd; closed at finalize) and starts the worker */
MigdStreamWriter *migd_stream_writer_new(MigdDataFd *data_fd, GMainContext *context,
					 const MigdStreamConfig *config,
					 const MigdStreamWriterCallbacks *callbacks,
					 gpointer user_data, GError **error);

/*
 * Queues @chunk (a reference is taken). FALSE: nothing was queued, because the
 * queue is full (wait for space_available) or the writer finished, failed or
 * was cancelled (see migd_stream_writer_is_stopped()).
 */
gboolean migd_stream_writer_push(MigdStreamWriter *self, GBytes *chunk);

/*
 * As push(), and the worker checks, before writing it, that the chunk's CRC32C
 * is @crc32c (on the worker: the bytes are then in cache for the write). A
 * mismatch fails the writer (MIGD_ERROR_PROTOCOL, "checksum") and nothing of
 * the chunk reaches the device.
 */
gboolean migd_stream_writer_push_checked(MigdStreamWriter *self, GBytes *chunk, guint32 crc32c);

/*
 * The CRC32C of every checked chunk written so far, in order (the whole stream
 * when every chunk was pushed checked); final once finished ran.
 */
guint32 migd_stream_writer_get_crc32c(MigdStreamWriter *self);

/*
 * Queued chunks take from @budget too (the daemon's, shared by every stream;
 * its receive half): push() also refuses a chunk the budget does not grant,
 * and space_available follows once other streams gave bytes back. Before the
 * first push().
 */
void migd_stream_writer_set_budget(MigdStreamWriter *self, MigdStreamBudget *budget);

/* no more chunks: finished runs once the queue is written */
void migd_stream_writer_finish(MigdStreamWriter *self);

/* finish() was called, an error was reported, or the writer was cancelled */
gboolean migd_stream_writer_is_stopped(MigdStreamWriter *self);

void migd_stream_writer_cancel(MigdStreamWriter *self);
void migd_stream_writer_get_stats(MigdStreamWriter *self, MigdStreamStats *stats);

G_END_DECLS
