/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "migd-error.h"
#include "migd-state.h"

static const gchar *const migd_state_names[MIGD_STATE_NR] = {
    [MIGD_STATE_ERROR] = "ERROR",	[MIGD_STATE_STOP] = "STOP",
    [MIGD_STATE_RUNNING] = "RUNNING",	[MIGD_STATE_STOP_COPY] = "STOP_COPY",
    [MIGD_STATE_RESUMING] = "RESUMING", [MIGD_STATE_RUNNING_P2P] = "RUNNING_P2P",
    [MIGD_STATE_PRE_COPY] = "PRE_COPY", [MIGD_STATE_PRE_COPY_P2P] = "PRE_COPY_P2P",
};

gboolean
migd_state_is_valid(guint value)
{
	return value < MIGD_STATE_NR;
}

const gchar *
migd_state_to_string(MigdState state)
{
	if (!migd_state_is_valid(state))
		return "INVALID";
	return migd_state_names[state];
}

gboolean
migd_state_from_string(const gchar *str, MigdState *state, GError **error)
{
	const gchar *name = str;

	if (str == NULL || str[0] == '\0') {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "empty device state name");
		return FALSE;
	}
	if (g_ascii_strncasecmp(name, "VFIO_DEVICE_STATE_", 18) == 0)
		name += 18;
	for (guint i = 0; i < MIGD_STATE_NR; i++) {
		if (g_ascii_strcasecmp(name, migd_state_names[i]) == 0) {
			*state = (MigdState)i;
			return TRUE;
		}
	}
	g_set_error(
	    error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
	    "unknown device state '%s' (expected one of STOP, RUNNING, STOP_COPY, RESUMING, "
	    "RUNNING_P2P, PRE_COPY, PRE_COPY_P2P)",
	    str);
	return FALSE;
}

gboolean
migd_state_is_saving(MigdState state)
{
	return state == MIGD_STATE_PRE_COPY || state == MIGD_STATE_PRE_COPY_P2P ||
	       state == MIGD_STATE_STOP_COPY;
}

gchar *
migd_mig_flags_to_string(guint32 flags)
{
	g_autoptr(GString) str = g_string_new(NULL);
	const struct {
		guint32 flag;
		const gchar *name;
	} names[] = {
	    {MIGD_MIG_FLAG_STOP_COPY, "STOP_COPY"},
	    {MIGD_MIG_FLAG_P2P, "P2P"},
	    {MIGD_MIG_FLAG_PRE_COPY, "PRE_COPY"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		if ((flags & names[i].flag) == 0)
			continue;
		if (str->len > 0)
			g_string_append_c(str, '|');
		g_string_append(str, names[i].name);
		flags &= ~names[i].flag;
	}
	if (flags != 0)
		g_string_append_printf(str, "%s0x%x", str->len > 0 ? "|" : "", flags);
	if (str->len == 0)
		g_string_append(str, "none");
	return g_string_free(g_steal_pointer(&str), FALSE);
}
