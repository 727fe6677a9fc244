/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

/*
 * make bench dirty: each prints its lines ("dirty-...: ... ratio R (target ...) MET|MISSED")
 * and returns whether every target was met.
 */

/* report-to-wire throughput and wire size of a 32 MiB bitmap vs a popcount scan */
gboolean bench_dirty_codec(void);
/* tracked bytes of our range plan vs QEMU's three-range reduction on fragmented mappings */
gboolean bench_dirty_ranges(void);
