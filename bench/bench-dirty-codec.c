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
bench_dirty_codec(void)
{
	printf("dirty-codec: not built yet\n");
	return FALSE;
}
