/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

/* the engine measures the rates it feeds in with a MigdRateEstimator */
#include "migd-rate-estimator.h"

G_BEGIN_DECLS

/*
 * When to stop pre-copying and switch over. Pure policy: the engine feeds it
 * PRECOPY_INFO, MIG_DATA_SIZE and measured rates each round; nothing here
 * touches a device.
 */

/* What one device reported this round. */
typedef struct {
	gboolean has_precopy;	  /* the device advertises PRE_COPY */
	guint64 initial_bytes;	  /* PRECOPY_INFO: initial data still to read */
	guint64 dirty_bytes;	  /* PRECOPY_INFO: changed since last read */
	gboolean has_data_size;	  /* MIG_DATA_SIZE answered */
	guint64 stop_copy_length; /* MIG_DATA_SIZE's estimate */
	guint64 save_rate;	  /* measured bytes/s this device's fd delivers; 0 = unknown */
} MigdConvergenceDevice;

typedef struct {
	guint64 downtime_target_us; /* the operator's downtime limit */
	guint max_rounds;	    /* iteration cap: switch over regardless after this many */
} MigdConvergencePolicy;

#define MIGD_CONVERGENCE_DEFAULT_DOWNTIME_US (300 * G_TIME_SPAN_MILLISECOND)
#define MIGD_CONVERGENCE_DEFAULT_MAX_ROUNDS  30

typedef enum {
	MIGD_CONVERGENCE_CONTINUE,   /* run another pre-copy round */
	MIGD_CONVERGENCE_SWITCHOVER, /* stop the devices and copy the rest */
} MigdConvergenceDecision;

typedef enum {
	MIGD_CONVERGENCE_REASON_INITIAL_PENDING, /* some device has initial bytes left (uAPI advice)
						  */
	MIGD_CONVERGENCE_REASON_ABOVE_TARGET,	 /* expected downtime still above the target */
	MIGD_CONVERGENCE_REASON_CONVERGED,	 /* expected downtime within the target */
	MIGD_CONVERGENCE_REASON_NO_PRECOPY,	 /* no device can pre-copy: nothing to wait for */
	MIGD_CONVERGENCE_REASON_ROUND_CAP,	 /* the iteration cap was reached */
} MigdConvergenceReason;

typedef struct {
	MigdConvergenceDecision decision;
	MigdConvergenceReason reason;
	guint64 remaining_bytes;      /* what stop-copy is expected to move, all devices */
	guint64 expected_downtime_us; /* G_MAXUINT64 when no bandwidth is known yet */
} MigdConvergenceVerdict;

void migd_convergence_policy_init(MigdConvergencePolicy *policy);

/*
 * Decides after @round completed rounds (1-based) for @n_devices devices whose
 * stop-copy streams run in parallel over one link of @link_rate bytes/s
 * (0 = not measured yet). The expected downtime is the slower of the link
 * moving every device's remainder and the slowest device saving its own.
 */
MigdConvergenceVerdict migd_convergence_decide(const MigdConvergencePolicy *policy,
					       const MigdConvergenceDevice *devices,
					       guint n_devices, guint round, guint64 link_rate);

const gchar *migd_convergence_reason_to_string(MigdConvergenceReason reason);

G_END_DECLS
