/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bench-report.h"

G_BEGIN_DECLS

/*
 * The engine against the link itself: a 1 GiB stop-copy of a device stand-in that costs
 * (almost) nothing (sim fast_data=1), plain and over mutual TLS, alternating with a plain TCP
 * copy of the same bytes from memory, five runs each; adds the rows "engine plain vs link"
 * and "engine TLS vs plain" to @report.
 */
void bench_stream(BenchReport *report);

G_END_DECLS
