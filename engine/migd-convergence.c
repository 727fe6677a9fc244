/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "migd-convergence.h"

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
