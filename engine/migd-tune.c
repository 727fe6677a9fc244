/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <malloc.h>

#include "migd-tune.h"

/* above the largest chunk or frame we allocate (MIGD_WIRE_MAX_FRAME_SIZE is 16 MiB) */
#define MIGD_TUNE_MMAP_THRESHOLD (32 * 1024 * 1024)

void
migd_tune_allocator(void)
{
	mallopt(M_MMAP_THRESHOLD, MIGD_TUNE_MMAP_THRESHOLD);
	/* freed chunks stay for reuse rather than being trimmed back to the kernel */
	mallopt(M_TRIM_THRESHOLD, 4 * MIGD_TUNE_MMAP_THRESHOLD);
}
