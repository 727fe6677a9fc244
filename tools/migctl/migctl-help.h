/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migctl's per-command help: `vfio-migctl help CMD` and `vfio-migctl CMD --help`.
 */
#pragma once

#include <glib.h>

/* prints @cmd's usage, options and an example to stdout; FALSE if @cmd is unknown */
gboolean migctl_help_print(const gchar *cmd);
