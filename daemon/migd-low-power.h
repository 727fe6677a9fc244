/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-device.h"

G_BEGIN_DECLS

/*
 * Idle devices in low power (VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
 * 6.1): a device waiting for an incoming migration, or left behind by an
 * outgoing one, need not draw power. Each device gets a wake-up eventfd,
 * watched on the main loop; the kernel exits low power by itself when the
 * device is woken (single-shot), and the device goes back after it has been
 * left alone for MIGD_LOW_POWER_REENTER_S. Before any job uses a device it is
 * taken out explicitly. A driver without low power (an mdev: ENOTTY) is noted
 * once and left alone: low power is an economy, never a reason to fail.
 */
#define MIGD_LOW_POWER_REENTER_S 5

typedef struct _MigdLowPower MigdLowPower;

MigdLowPower *migd_low_power_new(void);
/* takes every device out of low power first */
void migd_low_power_free(MigdLowPower *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdLowPower, migd_low_power_free)

/* puts @device in low power; FALSE with @error if its driver cannot (then it never retries) */
gboolean migd_low_power_enter(MigdLowPower *self, MigdDevice *device, GError **error);
/* out of low power, and no re-entry until migd_low_power_enter() again; idempotent */
gboolean migd_low_power_exit(MigdLowPower *self, MigdDevice *device, GError **error);
/* forgets @device (detached): exits first */
void migd_low_power_remove(MigdLowPower *self, MigdDevice *device);

/* how long a woken device stays out before it goes back (default MIGD_LOW_POWER_REENTER_S) */
void migd_low_power_set_reenter_delay(MigdLowPower *self, guint ms);
gboolean migd_low_power_is_engaged(MigdLowPower *self, MigdDevice *device);
guint64 migd_low_power_get_wakeups(MigdLowPower *self, MigdDevice *device);

G_END_DECLS
