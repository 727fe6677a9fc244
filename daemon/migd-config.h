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
	"[daemon], [listen], [libvirt], [device NAME], [plugin NAME], [libvirt-domain NAME], [vm " \
	"NAME]"

/*
 * Reads @path, or the default MIGD_CONFIG_FILE when @path is NULL (then it may be absent:
 * an empty configuration). At most MIGD_FILE_MAX_CONFIG_SIZE bytes of a regular file.
 */
GKeyFile *migd_daemon_config_load(const gchar *path, GError **error);
/*
 * Checks what the file alone decides: every group is one vfio-migd reads (an unknown one,
 * such as [deamon] or [Listen], is an error naming it and the known ones), [daemon] keys and
 * values, [listen] keys and values (not its files: migd_daemon_config_check_tls), [device
 * NAME] keys and iova-ranges (syntax, 4 KiB alignment, no overlap), [vm NAME] and
 * [libvirt-domain NAME]. Errors are MIGD_ERROR_INVALID_ARGUMENT, "[GROUP] KEY: why". Safe on
 * any GKeyFile (a fuzzing entry point).
 */
gboolean migd_daemon_config_check(GKeyFile *config, GError **error);
/* the same, the error "FILE:LINE: [GROUP] KEY: why" for @config as read from @file */
gboolean migd_daemon_config_check_file(GKeyFile *config, const gchar *file, GError **error);

/*
 * The line (from 1) of @key in [@group] in @text (the last one: GKeyFile keeps the last of
 * repeated keys), or of the [@group] header when @key is NULL or not found; 0 when the
 * group is not there either. Scans at most @len bytes.
 */
guint migd_daemon_config_find_line(const gchar *text, gsize len, const gchar *group,
				   const gchar *key);
/*
 * The one place every configuration error gets its location: prefixes @error with
 * "FILE:LINE: " (the line found in @file, read again, bounded; just "FILE: " when it cannot
 * be found) and "[GROUP] KEY: " unless the message already starts with "[GROUP]". @file
 * NULL: no file part; @key NULL: the group's header line.
 */
void migd_daemon_config_prefix_error(GError **error, const gchar *file, const gchar *group,
				     const gchar *key);
/*
 * For the errors of what reads the file elsewhere (plugins, [libvirt], [vm NAME]), whose
 * messages name "[GROUP]" and often the key after it: prefixes "FILE:LINE: " with the line
 * of that group (and key) in @config as read from @file; "FILE: " when none is named.
 */
void migd_daemon_config_locate_error(GError **error, GKeyFile *config, const gchar *file);

G_END_DECLS
