/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "bench-report.h"

/*
 * Devices of GiBs with bounded memory (migd-bench --only gib): one simulated mlx5 device of
 * each size in @sizes ("4,8": GiB) migrated between two vfio-migd processes over mutual TLS
 * (bench-daemons.c); adds information rows, group "GiB devices": the throughput, and each
 * daemon's peak RSS against 64 MiB plus the in-flight window. FALSE with @error when a
 * migration could not run.
 */
gboolean bench_gib(BenchReport *report, const gchar *sizes, GError **error);
/* FALSE with @error when @sizes is not a list of 1 to 16 */
gboolean bench_gib_check_sizes(const gchar *sizes, GError **error);
