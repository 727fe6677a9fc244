/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Reading the small files an operator names (configuration, TLS certificates and keys): only
 * regular files, never more than a cap, without blocking on a FIFO or a device.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the caps, once for every caller: far above any real file of the kind */
#define MIGD_FILE_MAX_CONFIG_SIZE (1024 * 1024) /* vfio-migd.conf, the hook's configuration */
#define MIGD_FILE_MAX_TLS_SIZE	  (1024 * 1024) /* a PEM certificate (chain), key or CA bundle */
#define MIGD_FILE_MAX_STATE_SIZE  4096		/* a state name a simulator persists */

/*
 * Reads @path whole: opened with O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_NOCTTY (a FIFO or a tty
 * neither blocks the open nor becomes ours), refused unless the opened fd is a regular file
 * of at most @max_size bytes, read to EOF but never past @max_size + 1 bytes, so a file that
 * grows while it is read is refused too. @contents is NUL-terminated (not counted in
 * @length). Errors name @path and the reason; an open that fails is a G_FILE_ERROR (so
 * G_FILE_ERROR_NOENT can be told apart), the rest MIGD_ERROR_INVALID_ARGUMENT.
 */
gboolean migd_file_load_bounded(const gchar *path, gsize max_size, gchar **contents, gsize *length,
				GError **error);
/*
 * A configuration file into @key_file: read as migd_file_load_bounded() with
 * MIGD_FILE_MAX_CONFIG_SIZE, then parsed. A missing file is G_FILE_ERROR_NOENT (callers may
 * take that as "not configured"); everything else is MIGD_ERROR_INVALID_ARGUMENT naming
 * @path once.
 */
gboolean migd_file_load_key_file(GKeyFile *key_file, const gchar *path, GError **error);

G_END_DECLS
