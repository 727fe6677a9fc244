/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * NOT BUILT YET: a helper is writing this module (see migd-dirty-tracker.h).
 */
#include "config.h"

#include "migd-dirty-tracker.h"
