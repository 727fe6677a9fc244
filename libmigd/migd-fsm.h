/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "migd-state.h"

G_BEGIN_DECLS

/* whether a device advertising @flags supports @state (RUNNING and ERROR need STOP_COPY too) */
gboolean migd_fsm_state_supported(guint32 flags, MigdState state);

/* the raw kernel table entry vfio_from_fsm_table[@cur][@target], before skipping */
MigdState migd_fsm_table_lookup(MigdState cur, MigdState target);

/*
 * The kernel's vfio_mig_get_next_state(): the next real arc on the way from
 * @cur to @target, skipping states @flags does not support. Unlike the kernel
 * it never loops: a blocked arc (the table says ERROR) is refused with
 * MIGD_ERROR_REFUSED_ARC where unfixed kernels spin forever.
 */
gboolean migd_fsm_next_step(guint32 flags, MigdState cur, MigdState target, MigdState *next,
			    GError **error);

/* STOP_COPY -> PRE_COPY or PRE_COPY_P2P: never to be sent to a kernel */
gboolean migd_fsm_arc_hangs_kernel(MigdState cur, MigdState target);

/*
 * The whole path from @cur to @target as one real arc per element (the first
 * element is the state after the first arc, the last is @target; empty when
 * @cur == @target). Refuses ERROR as a target, states @flags does not support,
 * flags without STOP_COPY and the arcs that hang the kernel.
 * Returns: (element-type MigdState): a GArray of guint, or NULL with @error set.
 */
GArray *migd_fsm_plan(guint32 flags, MigdState cur, MigdState target, GError **error);

/* whether the real arc @cur -> @next opens a data session (the kernel returns a data fd) */
gboolean migd_fsm_arc_opens_session(MigdState cur, MigdState next);

/* "RUNNING -> RUNNING_P2P -> STOP" */
gchar *migd_fsm_path_to_string(MigdState cur, GArray *path);

G_END_DECLS
