/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migd.conf: reading it (bounded, regular files only) and the checks that need nothing
 * but the file itself, so a typo stops the daemon before anything starts. What needs the
 * devices or the plugins (does [device sim0] exist, the keys of [plugin mlx5]) is checked
 * where those are known.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the groups vfio-migd.conf may hold, for messages: "[daemon], [listen], ..." */
#define MIGD_DAEMON_CONFIG_GROUPS                                                                  \
	"[daemon], [listen], [libvirt], [device NAME], [plugin NAME], [libvirt-domain NAME], [vm NAME]"

/*
 * Reads @path, or the default MIGD_CONFIG_FILE when @path is NULL (then it may be absent:
 * an empty configuration). At most MIGD_FILE_MAX_CONFIG_SIZE bytes of a regular file.
 */
GKeyFile *migd_daemon_config_load(const gchar *path, GError **error);
/*
 * Checks what the file alone decides: every group is one vfio-migd reads (an unknown one,
 * such as [deamon] or [Listen], is an error naming it and the known ones), [daemon] keys and
 * values, [device NAME] keys and iova-ranges syntax, [libvirt-domain NAME] maps. Errors are
 * MIGD_ERROR_INVALID_ARGUMENT. Safe on any GKeyFile (a fuzzing entry point).
 */
gboolean migd_daemon_config_check(GKeyFile *config, GError **error);

G_END_DECLS
