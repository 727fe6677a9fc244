/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdRateEstimator: the transfer rate of a stream as a moving average of
 * timed samples. The source engine measures each device's save rate and the
 * link with it; migd-convergence.c takes the numbers, not the estimator.
 */
#include "config.h"

#include <math.h>

#include "migd-rate-estimator.h"

/* the weight of the newest second of samples in the moving average */
#define MIGD_RATE_ALPHA_PER_SECOND 0.5

void
migd_rate_estimator_init(MigdRateEstimator *self)
{
	self->rate = 0;
	self->total_us = 0;
	self->total_bytes = 0;
}

void
migd_rate_estimator_add(MigdRateEstimator *self, guint64 bytes, gint64 elapsed_us)
{
	gdouble sample;
	gdouble weight;

	if (elapsed_us <= 0)
		return;
	sample = (gdouble)bytes * G_USEC_PER_SEC / (gdouble)elapsed_us;
	self->total_us += elapsed_us;
	self->total_bytes += bytes;
	if (self->total_us == elapsed_us) {
		self->rate = sample;
		return;
	}
	/* longer samples count more: weight = 1 - (1 - alpha)^(seconds) */
	weight = 1.0 - pow(1.0 - MIGD_RATE_ALPHA_PER_SECOND, (gdouble)elapsed_us / G_USEC_PER_SEC);
	self->rate += weight * (sample - self->rate);
}

guint64
migd_rate_estimator_get(const MigdRateEstimator *self)
{
	return self->rate <= 0 ? 0 : (guint64)self->rate;
}
