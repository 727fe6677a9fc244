/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdRateEstimator: how fast a stream moves, for the source engine's
 * convergence decisions (migd-convergence.h includes this header).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A transfer-rate estimate: an exponentially weighted moving average of
 * samples, each weighted by its duration so that a burst of tiny samples
 * cannot swing it.
 */
typedef struct {
	gdouble rate;	 /* bytes/s */
	gint64 total_us; /* time covered by samples */
	guint64 total_bytes;
} MigdRateEstimator;

void migd_rate_estimator_init(MigdRateEstimator *self);
void migd_rate_estimator_add(MigdRateEstimator *self, guint64 bytes, gint64 elapsed_us);
/* bytes/s, 0 until a sample arrived */
guint64 migd_rate_estimator_get(const MigdRateEstimator *self);

G_END_DECLS
