/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* enum vfio_device_mig_state: the values are kernel ABI */
typedef enum {
	MIGD_STATE_ERROR = 0,
	MIGD_STATE_STOP = 1,
	MIGD_STATE_RUNNING = 2,
	MIGD_STATE_STOP_COPY = 3,
	MIGD_STATE_RESUMING = 4,
	MIGD_STATE_RUNNING_P2P = 5,
	MIGD_STATE_PRE_COPY = 6,
	MIGD_STATE_PRE_COPY_P2P = 7,
	MIGD_STATE_NR = 8,
} MigdState;

/* VFIO_MIGRATION_* capability flags (ABI) */
typedef enum {
	MIGD_MIG_FLAG_STOP_COPY = 1 << 0,
	MIGD_MIG_FLAG_P2P = 1 << 1,
	MIGD_MIG_FLAG_PRE_COPY = 1 << 2,
} MigdMigFlags;

#define MIGD_MIG_FLAGS_KNOWN (MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_P2P | MIGD_MIG_FLAG_PRE_COPY)

/* "RUNNING", "PRE_COPY_P2P", ...; "INVALID" for out-of-range values */
const gchar *migd_state_to_string(MigdState state);
/* accepts the names above, case-insensitively, with or without a "VFIO_DEVICE_STATE_" prefix */
gboolean migd_state_from_string(const gchar *str, MigdState *state, GError **error);
gboolean migd_state_is_valid(guint value);
/* PRE_COPY, PRE_COPY_P2P or STOP_COPY: the states that share one save session */
gboolean migd_state_is_saving(MigdState state);
/* "STOP_COPY|P2P|PRE_COPY" */
gchar *migd_mig_flags_to_string(guint32 flags);

G_END_DECLS
