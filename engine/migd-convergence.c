/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>

#include "migd-convergence.h"

/* the weight of the newest second of samples in the moving average */
#define MIGD_RATE_ALPHA_PER_SECOND 0.5

void
migd_convergence_policy_init(MigdConvergencePolicy *policy)
{
	policy->downtime_target_us = MIGD_CONVERGENCE_DEFAULT_DOWNTIME_US;
	policy->max_rounds = MIGD_CONVERGENCE_DEFAULT_MAX_ROUNDS;
}

const gchar *
migd_convergence_reason_to_string(MigdConvergenceReason reason)
{
	switch (reason) {
	case MIGD_CONVERGENCE_REASON_INITIAL_PENDING:
		return "initial-pending";
	case MIGD_CONVERGENCE_REASON_ABOVE_TARGET:
		return "above-target";
	case MIGD_CONVERGENCE_REASON_CONVERGED:
		return "converged";
	case MIGD_CONVERGENCE_REASON_NO_PRECOPY:
		return "no-precopy";
	case MIGD_CONVERGENCE_REASON_ROUND_CAP:
		return "round-cap";
	default:
		return "unknown";
	}
}

/*
 * What stop-copy will move for one device. MIG_DATA_SIZE is the driver's own
 * estimate of the whole remainder; PRECOPY_INFO's numbers need not predict it
 * (uAPI), so they are only a floor when MIG_DATA_SIZE is missing or lower.
 */
static guint64
migd_convergence_device_remaining(const MigdConvergenceDevice *dev)
{
	guint64 pending = dev->has_precopy ? dev->initial_bytes + dev->dirty_bytes : 0;

	if (dev->has_data_size)
		return MAX(dev->stop_copy_length, pending);
	return pending;
}

/* @bytes at @rate bytes/s in microseconds, saturating; G_MAXUINT64 for an unknown rate */
static guint64
migd_convergence_time_us(guint64 bytes, guint64 rate)
{
	gdouble us;

	if (bytes == 0)
		return 0;
	if (rate == 0)
		return G_MAXUINT64;
	us = (gdouble)bytes * G_USEC_PER_SEC / (gdouble)rate;
	return us >= (gdouble)G_MAXUINT64 ? G_MAXUINT64 : (guint64)us;
}

MigdConvergenceVerdict
migd_convergence_decide(const MigdConvergencePolicy *policy, const MigdConvergenceDevice *devices,
			guint n_devices, guint round, guint64 link_rate)
{
	MigdConvergenceVerdict verdict = {
	    .decision = MIGD_CONVERGENCE_SWITCHOVER,
	    .reason = MIGD_CONVERGENCE_REASON_CONVERGED,
	};
	gboolean any_precopy = FALSE;
	gboolean initial_pending = FALSE;
	guint64 slowest_device_us = 0;

	for (guint i = 0; i < n_devices; i++) {
		const MigdConvergenceDevice *dev = &devices[i];
		guint64 remaining = migd_convergence_device_remaining(dev);

		any_precopy |= dev->has_precopy;
		initial_pending |= dev->has_precopy && dev->initial_bytes > 0;
		verdict.remaining_bytes = verdict.remaining_bytes > G_MAXUINT64 - remaining
					      ? G_MAXUINT64
					      : verdict.remaining_bytes + remaining;
		/* a device that has not been measured does not bound the downtime yet */
		if (dev->save_rate > 0)
			slowest_device_us = MAX(
			    slowest_device_us, migd_convergence_time_us(remaining, dev->save_rate));
	}
	verdict.expected_downtime_us =
	    MAX(migd_convergence_time_us(verdict.remaining_bytes, link_rate), slowest_device_us);

	if (!any_precopy) {
		verdict.reason = MIGD_CONVERGENCE_REASON_NO_PRECOPY;
		return verdict;
	}
	if (round >= policy->max_rounds) {
		verdict.reason = MIGD_CONVERGENCE_REASON_ROUND_CAP;
		return verdict;
	}
	/* the uAPI recommends STOP_COPY only once initial_bytes has reached 0 */
	if (initial_pending) {
		verdict.decision = MIGD_CONVERGENCE_CONTINUE;
		verdict.reason = MIGD_CONVERGENCE_REASON_INITIAL_PENDING;
		return verdict;
	}
	if (verdict.expected_downtime_us > policy->downtime_target_us) {
		verdict.decision = MIGD_CONVERGENCE_CONTINUE;
		verdict.reason = MIGD_CONVERGENCE_REASON_ABOVE_TARGET;
		return verdict;
	}
	return verdict;
}

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
