/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-convergence.h"
#include "migd-device.h"
#include "migd-dirty-tracker.h"
#include "migd-journal.h"
#include "migd-job.h"
#include "migd-stream-budget.h"
#include "migd-transport.h"

G_BEGIN_DECLS

/*
 * The source side of one migration: connects to the destination, offers the
 * devices, pre-copies, waits for the switchover-ack, quiesces P2P, stops and
 * streams every device in parallel, and commits; on any failure (peer lost,
 * error, cancel, timeout) every device goes back to RUNNING through the
 * recovery policy and the job reports why.
 */
typedef struct {
	MigdConvergencePolicy policy;
	guint timeout_s;	  /* the whole job; 0 = none */
	guint stopcopy_timeout_s; /* from the first device stopping to commit; 0 = none */
	gsize chunk_size;	  /* data-fd read size; 0 = the plugin's */
	/* a device with IOVA ranges whose DMA no tracker can follow: refuse, or all dirty */
	MigdDirtyFallback dirty_fallback;
	/* where jobs in flight are recorded (borrowed; NULL: nowhere) */
	MigdJournal *journal;
	/* do not offer CAP_CHECKSUM (the benchmark measures its cost; tests play an old peer) */
	gboolean no_checksum;
	/* the daemon's bound on state in flight, shared by every stream (borrowed; NULL: none) */
	MigdStreamBudget *budget;
	/* do not offer CAP_HANDOVER (tests play a source older than the handover) */
	gboolean no_handover;
	/*
	 * MANUAL: pre-copy until migd_job_switchover_async() (the job reports
	 * "converged"); a dirty-bitmap consumer for migd_job_sync_dirty_bitmap_async()
	 * exists from the start of tracking
	 */
	MigdSwitchoverMode switchover;
	/*
	 * with a peer that speaks CAP_HANDOVER: how long the source devices wait
	 * in STOP after the commit for the destination's StartRequest before they
	 * are rolled back; 0: MIGD_SOURCE_HANDOVER_TIMEOUT_DEFAULT_S
	 */
	guint handover_timeout_s;
	/* the VM migration this job belongs to, sent in Hello (copied; NULL: untagged) */
	const gchar *migration_id;
} MigdSourceOptions;

#define MIGD_SOURCE_HANDOVER_TIMEOUT_DEFAULT_S 60

void migd_source_options_init(MigdSourceOptions *options);

/*
 * Starts migrating @devices (MigdDevice, all RUNNING) to @address. Returns the
 * job at once (it runs on the thread-default main context) or NULL with @error
 * for bad arguments (no device touched).
 */
MigdJob *migd_source_start(GPtrArray *devices, const gchar *address,
			   const MigdTransportConfig *transport, const MigdSourceOptions *options,
			   GError **error);

G_END_DECLS
