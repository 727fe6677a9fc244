/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migctl's per-command help: `vfio-migctl help CMD` and `vfio-migctl CMD --help`.
 */
#pragma once

#include <glib.h>

/* TRUE if @cmd is a command this help knows */
gboolean migctl_help_known(const gchar *cmd);
/* prints @cmd's usage, options and an example to stdout; FALSE if @cmd is unknown */
gboolean migctl_help_print(const gchar *cmd);
/* the names of every command, for the completion and the errors */
const gchar *const *migctl_help_commands(void);
