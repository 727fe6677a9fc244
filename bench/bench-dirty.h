/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "bench-report.h"

/*
 * make bench dirty (migd-bench --only dirty): each adds its rows to @report, group
 * "dirty codec" or "dirty ranges".
 */

/* report-to-wire throughput and wire size of a 32 MiB bitmap vs a popcount scan */
void bench_dirty_codec(BenchReport *report);
/* tracked bytes of our range plan vs QEMU's three-range reduction on fragmented mappings */
void bench_dirty_ranges(BenchReport *report);
