/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

#include "migd-data-fd.h"

G_BEGIN_DECLS

/*
 * One save or resume session of a simulated device: the driver's struct file.
 * The daemon gets one end of a SOCK_SEQPACKET socketpair; a server thread owns
 * the other end and answers read/write/precopy_info/poll requests by calling the
 * handler, which plays the driver's file_operations.
 */
typedef struct _MigdSimSession MigdSimSession;

/*
 * Each returns 0 or a positive errno, exactly what the driver's fop would return
 * negated. Called on the session's server thread.
 */
typedef struct {
	/* fills @buf, or points *@data at @n_read bytes that stay valid until the next call */
	gint (*read)(GObject *owner, MigdSimSession *session, void *buf, gsize len,
		     gboolean nonblock, gsize *n_read, const void **data);
	gint (*write)(GObject *owner, MigdSimSession *session, const void *buf, gsize len,
		      gsize *n_written);
	gint (*precopy_info)(GObject *owner, MigdSimSession *session, guint64 *initial_bytes,
			     guint64 *dirty_bytes);
	/* NULL: the VFS default (always readable and writable) */
	gint (*poll)(GObject *owner, MigdSimSession *session, gshort events, gint timeout_ms,
		     gshort *revents);
	/*
	 * NULL, or called after a read's answer went out: the driver may prepare
	 * the next @len bytes while the daemon copies these (mlx5's read-ahead)
	 */
	void (*prefetch)(GObject *owner, MigdSimSession *session, gsize len);
	/* the daemon closed its end: wake whatever waits for this session */
	void (*hangup)(GObject *owner, MigdSimSession *session);
} MigdSimSessionHandler;

/* largest payload of one request or response; larger reads and writes come back short */
#define MIGD_SIM_SESSION_MSG_MAX (4u * 1024 * 1024)

/* @file is the backend's per-file state, freed with @file_free with the session */
MigdSimSession *migd_sim_session_new(MigdDataFdDirection direction,
				     const MigdSimSessionHandler *handler, GObject *owner,
				     gpointer file, GDestroyNotify file_free);
MigdSimSession *migd_sim_session_ref(MigdSimSession *self);
void migd_sim_session_unref(MigdSimSession *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdSimSession, migd_sim_session_unref)

MigdDataFdDirection migd_sim_session_get_direction(MigdSimSession *self);
gpointer migd_sim_session_get_file(MigdSimSession *self);

/* the driver's *_disable_fd: every later request fails with ENODEV (owner's lock held) */
void migd_sim_session_disable(MigdSimSession *self);
gboolean migd_sim_session_is_disabled(MigdSimSession *self);
/* the daemon closed its end of the fd: nobody will read what a wait would produce */
gboolean migd_sim_session_is_hung_up(MigdSimSession *self);

/*
 * Creates the socketpair and the server thread (which holds a ref on the owner
 * and on the session until the daemon closes its end) and wraps the daemon's
 * end, O_CLOEXEC like the kernel's data fd, in a MigdDataFd.
 */
MigdDataFd *migd_sim_session_open_fd(MigdSimSession *self, GError **error);

G_END_DECLS
