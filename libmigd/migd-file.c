/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Bounded reads of operator-named files (see migd-file.h).
 *
 * Why this is enough on the main loop: O_NONBLOCK makes the open of a FIFO return at once,
 * and the S_ISREG check on the opened fd refuses FIFOs, sockets and devices (/dev/zero,
 * a tty) before any read; reading a regular file of at most the cap never waits for
 * another process. Only a hung network file system could still stall it, as it stalls
 * every other file access of the daemon.
 */
#include "config.h"

#include "migd-file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "migd-error.h"

static const gchar *
migd_file_type_to_string(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	return "not a regular file";
}

/* the fd is closed by the caller whatever happens */
static gboolean
migd_file_read_fd(gint fd, const gchar *path, gsize max_size, gchar **contents, gsize *length,
		  GError **error)
{
	struct stat st;
	g_autofree gchar *buf = NULL;
	gsize alloc;
	gsize total = 0;

	if (fstat(fd, &st) < 0) {
		gint errsv = errno;
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "%s: fstat: %s",
			    path, g_strerror(errsv));
		return FALSE;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: %s, but a regular file is required", path,
			    migd_file_type_to_string(st.st_mode));
		return FALSE;
	}
	if (st.st_size < 0 || (guint64)st.st_size > max_size) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: %" G_GINT64_FORMAT " bytes, more than the %" G_GSIZE_FORMAT
			    " allowed",
			    path, (gint64)st.st_size, max_size);
		return FALSE;
	}
	/* st_size is a hint (procfs says 0): grow as needed, up to one byte past the cap */
	alloc = MAX((gsize)st.st_size, 4096);
	alloc = MIN(alloc, max_size + 1);
	buf = g_malloc(alloc + 1);
	for (;;) {
		gssize n;

		if (total == alloc) {
			if (alloc > max_size)
				break;
			alloc = MIN(alloc * 2, max_size + 1);
			buf = g_realloc(buf, alloc + 1);
		}
		n = read(fd, buf + total, alloc - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			gint errsv = errno;
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
				    "%s: read: %s", path, g_strerror(errsv));
			return FALSE;
		}
		if (n == 0)
			break;
		total += n;
	}
	if (total > max_size) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: grew past the %" G_GSIZE_FORMAT " bytes allowed while being read",
			    path, max_size);
		return FALSE;
	}
	buf[total] = '\0';
	*contents = g_steal_pointer(&buf);
	if (length != NULL)
		*length = total;
	return TRUE;
}

gboolean
migd_file_load_key_file(GKeyFile *key_file, const gchar *path, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *contents = NULL;
	gsize length = 0;

	if (!migd_file_load_bounded(path, MIGD_FILE_MAX_CONFIG_SIZE, &contents, &length,
				    &error_local)) {
		/* the message names the path already */
		if (!g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			migd_error_convert(&error_local);
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	if (!g_key_file_load_from_data(key_file, contents, length, G_KEY_FILE_NONE, &error_local)) {
		/* key-file errors: the operator's to fix (INVALID_ARGUMENT) */
		migd_error_convert(&error_local);
		g_propagate_prefixed_error(error, g_steal_pointer(&error_local), "%s: ", path);
		return FALSE;
	}
	return TRUE;
}

gboolean
migd_file_load_bounded(const gchar *path, gsize max_size, gchar **contents, gsize *length,
		       GError **error)
{
	gint fd;
	gboolean ok;

	g_return_val_if_fail(path != NULL, FALSE);
	g_return_val_if_fail(contents != NULL, FALSE);

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		gint errsv = errno;
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "%s: %s", path,
			    g_strerror(errsv));
		return FALSE;
	}
	ok = migd_file_read_fd(fd, path, max_size, contents, length, error);
	g_close(fd, NULL);
	return ok;
}
