/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-device.h"

G_BEGIN_DECLS

/* plans from @cur to @target and walks it, with no recovery on failure */
gboolean migd_device_walk_to(MigdDevice *self, MigdState cur, MigdState target, GError **error);

G_END_DECLS
