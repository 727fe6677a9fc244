/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * NOT BUILT YET: a helper is writing this benchmark.
 */
#include "config.h"

#include <stdio.h>

#include "bench-dirty.h"

gboolean
bench_dirty_ranges(void)
{
	printf("dirty-ranges: not built yet\n");
	return FALSE;
}
