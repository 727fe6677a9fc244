/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the window of MigdStreamStats.rate */
#define MIGD_STREAM_RATE_WINDOW_US G_USEC_PER_SEC

/*
 * Progress of one device stream, for the engine's Progress and Rate. Times are
 * g_get_monotonic_time() values, so a clock step never shows up as a rate.
 */
typedef struct {
	guint64 bytes;		 /* moved so far (read from, or written to, the data fd) */
	gdouble rate;		 /* bytes/s over the last MIGD_STREAM_RATE_WINDOW_US; 0 when idle */
	gdouble average_rate;	 /* bytes/s from the first byte until now */
	gint64 first_us;	 /* when the first bytes moved, 0 if none yet */
	gint64 last_us;		 /* when the last bytes moved, 0 if none yet */
	guint chunks_in_flight;	 /* reader: delivered or queued, not released; writer: queued */
	guint64 bytes_in_flight; /* the same in bytes */
	guint peak_chunks_in_flight;
	guint64 peak_bytes_in_flight;
} MigdStreamStats;

/*
 * The bounds of a stream's queue. Zeroed members take the defaults; a reader
 * uses @chunk_size and @max_chunks, a writer @max_chunks and @max_bytes.
 */
typedef struct {
	gsize chunk_size;  /* reader: bytes per chunk (default 1 MiB, 64 KiB..8 MiB) */
	guint max_chunks;  /* chunks in flight before the worker waits (default 4, 1..1024) */
	gsize max_bytes;   /* writer: bytes queued before push() refuses (default 4 MiB) */
	const gchar *name; /* for messages, e.g. the device name */
	gboolean checksum; /* reader: the CRC32C of each chunk, on the worker (migd-crc32c.h) */
} MigdStreamConfig;

#define MIGD_STREAM_DEFAULT_CHUNK_SIZE ((gsize)1024 * 1024) /* QEMU's VFIO buffer size */
#define MIGD_STREAM_MIN_CHUNK_SIZE     ((gsize)64 * 1024)
#define MIGD_STREAM_MAX_CHUNK_SIZE     ((gsize)8 * 1024 * 1024) /* mlx5's own chunk size */
#define MIGD_STREAM_DEFAULT_MAX_CHUNKS 4
#define MIGD_STREAM_MAX_MAX_CHUNKS     1024
#define MIGD_STREAM_DEFAULT_MAX_BYTES  ((gsize)4 * 1024 * 1024)

G_END_DECLS
