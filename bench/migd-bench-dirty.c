/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * make bench dirty: the dirty-tracking benchmarks, each side by side in one run
 * with its reference (bench-dirty-codec.c, bench-dirty-ranges.c).
 */
#include "config.h"

#include "bench-dirty.h"

int
main(int argc, char **argv)
{
	gboolean ok = TRUE;

	ok &= bench_dirty_codec();
	ok &= bench_dirty_ranges();
	return ok ? 0 : 1;
}
