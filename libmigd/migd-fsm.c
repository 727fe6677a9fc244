/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A userspace copy of the kernel's migration FSM (drivers/vfio/vfio_main.c:
 * vfio_mig_get_next_state), kept as data so that every request can be planned
 * and checked before it reaches the kernel.
 */
#include "config.h"

#include "migd-error.h"
#include "migd-fsm.h"

#define ST MIGD_STATE_STOP
#define RU MIGD_STATE_RUNNING
#define SC MIGD_STATE_STOP_COPY
#define RE MIGD_STATE_RESUMING
#define RP MIGD_STATE_RUNNING_P2P
#define PC MIGD_STATE_PRE_COPY
#define PP MIGD_STATE_PRE_COPY_P2P
#define ER MIGD_STATE_ERROR

/* vfio_from_fsm_table[cur][target], indexed by the ABI values */
static const MigdState migd_fsm_table[MIGD_STATE_NR][MIGD_STATE_NR] = {
    [ST] = {[ST] = ST, [RU] = RP, [PC] = RP, [PP] = RP, [SC] = SC, [RE] = RE, [RP] = RP, [ER] = ER},
    [RU] = {[ST] = RP, [RU] = RU, [PC] = PC, [PP] = RP, [SC] = RP, [RE] = RP, [RP] = RP, [ER] = ER},
    [PC] = {[ST] = RU, [RU] = RU, [PC] = PC, [PP] = PP, [SC] = PP, [RE] = RU, [RP] = RU, [ER] = ER},
    [PP] = {[ST] = RP, [RU] = RP, [PC] = PC, [PP] = PP, [SC] = SC, [RE] = RP, [RP] = RP, [ER] = ER},
    [SC] = {[ST] = ST, [RU] = ST, [PC] = ER, [PP] = ER, [SC] = SC, [RE] = ST, [RP] = ST, [ER] = ER},
    [RE] = {[ST] = ST, [RU] = ST, [PC] = ST, [PP] = ST, [SC] = ST, [RE] = RE, [RP] = ST, [ER] = ER},
    [RP] = {[ST] = ST, [RU] = RU, [PC] = RU, [PP] = PP, [SC] = ST, [RE] = ST, [RP] = RP, [ER] = ER},
    [ER] = {[ST] = ER, [RU] = ER, [PC] = ER, [PP] = ER, [SC] = ER, [RE] = ER, [RP] = ER, [ER] = ER},
};

/* state_flags_table: the flags a state needs; ERROR needs all bits, so it is never "supported" */
static const guint32 migd_fsm_state_flags[MIGD_STATE_NR] = {
    [ST] = MIGD_MIG_FLAG_STOP_COPY,
    [RU] = MIGD_MIG_FLAG_STOP_COPY,
    [SC] = MIGD_MIG_FLAG_STOP_COPY,
    [RE] = MIGD_MIG_FLAG_STOP_COPY,
    [RP] = MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_P2P,
    [PC] = MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_PRE_COPY,
    [PP] = MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_P2P | MIGD_MIG_FLAG_PRE_COPY,
    [ER] = ~0U,
};

gboolean
migd_fsm_state_supported(guint32 flags, MigdState state)
{
	if (!migd_state_is_valid(state))
		return FALSE;
	return (migd_fsm_state_flags[state] & flags) == migd_fsm_state_flags[state];
}

MigdState
migd_fsm_table_lookup(MigdState cur, MigdState target)
{
	if (!migd_state_is_valid(cur) || !migd_state_is_valid(target))
		return MIGD_STATE_ERROR;
	return migd_fsm_table[cur][target];
}

gboolean
migd_fsm_arc_hangs_kernel(MigdState cur, MigdState target)
{
	return cur == MIGD_STATE_STOP_COPY &&
	       (target == MIGD_STATE_PRE_COPY || target == MIGD_STATE_PRE_COPY_P2P);
}

gboolean
migd_fsm_arc_opens_session(MigdState cur, MigdState next)
{
	return (cur == MIGD_STATE_RUNNING && next == MIGD_STATE_PRE_COPY) ||
	       (cur == MIGD_STATE_RUNNING_P2P && next == MIGD_STATE_PRE_COPY_P2P) ||
	       (cur == MIGD_STATE_STOP && next == MIGD_STATE_STOP_COPY) ||
	       (cur == MIGD_STATE_STOP && next == MIGD_STATE_RESUMING);
}

static gboolean
migd_fsm_check_endpoints(guint32 flags, MigdState cur, MigdState target, GError **error)
{
	g_autofree gchar *flags_str = migd_mig_flags_to_string(flags);

	if ((flags & MIGD_MIG_FLAG_STOP_COPY) == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "device does not support migration (flags %s lack STOP_COPY)",
			    flags_str);
		return FALSE;
	}
	if (target == MIGD_STATE_ERROR) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_REFUSED_ARC,
				    "ERROR cannot be requested as a target state");
		return FALSE;
	}
	if (!migd_fsm_state_supported(flags, cur)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_REFUSED_ARC,
			    "current state %s is not supported by a device with flags %s%s",
			    migd_state_to_string(cur), flags_str,
			    cur == MIGD_STATE_ERROR ? " (reset the device first)" : "");
		return FALSE;
	}
	if (!migd_fsm_state_supported(flags, target)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "target state %s is not supported by a device with flags %s",
			    migd_state_to_string(target), flags_str);
		return FALSE;
	}
	if (migd_fsm_arc_hangs_kernel(cur, target)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_REFUSED_ARC,
			    "%s -> %s is not permitted by the VFIO uAPI (and hangs kernels "
			    "without the 2026 vfio_mig_get_next_state() fix)",
			    migd_state_to_string(cur), migd_state_to_string(target));
		return FALSE;
	}
	return TRUE;
}

gboolean
migd_fsm_next_step(guint32 flags, MigdState cur, MigdState target, MigdState *next, GError **error)
{
	MigdState step;

	if (!migd_state_is_valid(cur) || !migd_state_is_valid(target)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "device state out of range (current %u, target %u)", (guint)cur,
			    (guint)target);
		return FALSE;
	}
	if (!migd_fsm_check_endpoints(flags, cur, target, error))
		return FALSE;

	/* the kernel's skip rule, with the ERROR check the 2026 fix added */
	step = migd_fsm_table[cur][target];
	while (step != MIGD_STATE_ERROR && !migd_fsm_state_supported(flags, step))
		step = migd_fsm_table[step][target];
	if (step == MIGD_STATE_ERROR) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_REFUSED_ARC, "no path from %s to %s",
			    migd_state_to_string(cur), migd_state_to_string(target));
		return FALSE;
	}
	*next = step;
	return TRUE;
}

GArray *
migd_fsm_plan(guint32 flags, MigdState cur, MigdState target, GError **error)
{
	g_autoptr(GArray) path = g_array_new(FALSE, FALSE, sizeof(guint));
	MigdState state = cur;

	while (state != target) {
		MigdState next = MIGD_STATE_ERROR;
		guint val;

		if (!migd_fsm_next_step(flags, state, target, &next, error))
			return NULL;
		val = next;
		g_array_append_val(path, val);
		/* each arc leaves the state; the shortest path visits a state at most once */
		if (path->len > MIGD_STATE_NR) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
				    "internal error: no convergence from %s to %s",
				    migd_state_to_string(cur), migd_state_to_string(target));
			return NULL;
		}
		state = next;
	}
	/* cur == target still needs both endpoints checked */
	if (path->len == 0 && !migd_fsm_check_endpoints(flags, cur, target, error))
		return NULL;
	return g_steal_pointer(&path);
}

gchar *
migd_fsm_path_to_string(MigdState cur, GArray *path)
{
	g_autoptr(GString) str = g_string_new(migd_state_to_string(cur));

	for (guint i = 0; path != NULL && i < path->len; i++)
		g_string_append_printf(str, " -> %s",
				       migd_state_to_string(g_array_index(path, guint, i)));
	return g_string_free(g_steal_pointer(&str), FALSE);
}
