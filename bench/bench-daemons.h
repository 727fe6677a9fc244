/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * One migration as deployed: two vfio-migd processes on a private D-Bus bus, each with one
 * simulated mlx5 device of @state_size, the destination listening on loopback TCP with mutual
 * TLS (throwaway certificates), driven by Listen and Migrate over D-Bus. What it measures:
 * the time from Migrate to the source job's Completed, the bytes moved, and each daemon's peak
 * RSS (VmHWM of /proc/PID/status) before and after. Used by migd-bench (bench-gib.c) and by
 * tests/daemon/test-daemon-rss.c.
 */

typedef struct {
	const gchar *migd;	 /* the vfio-migd binary */
	const gchar *plugin_dir; /* --plugin-dir (DIR:DIR...), NULL for the daemon's default */
	guint64 state_size;	 /* of each daemon's one mlx5 device */
	guint64 max_inflight;	 /* [daemon] max-inflight= of both daemons */
	guint timeout_s;	 /* the whole run, daemons' start to stop */
	gboolean verify;	 /* compare the devices' sim-digest afterwards */
} BenchDaemonsConfig;

typedef enum {
	BENCH_DAEMON_SOURCE,
	BENCH_DAEMON_DESTINATION,
} BenchDaemonRole;

typedef struct {
	gdouble seconds;	 /* Migrate called to the source job's Completed */
	guint64 bytes;		 /* the source job's Bytes */
	guint64 rss_idle_kib[2]; /* VmHWM once the daemon served D-Bus, before the migration */
	guint64 hwm_kib[2];	 /* VmHWM when both jobs completed */
	gboolean verified;	 /* the digests were compared (and matched) */
} BenchDaemonsResult;

/* FALSE with @error when a daemon does not start, the migration fails, a digest differs or a
 * daemon does not exit cleanly on SIGTERM (the daemon's log tail is in the message) */
gboolean bench_daemons_migrate(const BenchDaemonsConfig *config, BenchDaemonsResult *result,
			       GError **error);

/* the bound the peak RSS is held to: 64 MiB plus the in-flight window */
#define BENCH_DAEMONS_RSS_BASE ((guint64)64 * 1024 * 1024)

G_END_DECLS
