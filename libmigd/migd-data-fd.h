/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "migd-state.h"

G_BEGIN_DECLS

/*
 * The migration data fd returned by a SET of MIG_DEVICE_STATE. The loops here
 * (short reads, EINTR, EAGAIN + poll, ENOMSG and 0 as the temporary end in
 * PRE_COPY, 0 as the end in STOP_COPY, ENODEV once the session is over, partial
 * writes) are the same for every backend. A backend only supplies the four
 * primitives below: the kernel backend passes NULL and gets read(2), write(2),
 * ioctl(VFIO_MIG_GET_PRECOPY_INFO) and poll(2) on the fd; the simulator serves
 * the same primitives with the same return values and errno over a real fd.
 */
typedef struct {
	/* like read(2): bytes read, 0, or -1 with errno set */
	gssize (*read)(gpointer user_data, gint fd, void *buf, gsize len);
	/* like write(2) */
	gssize (*write)(gpointer user_data, gint fd, const void *buf, gsize len);
	/* like ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO): 0, or -1 with errno set */
	gint (*precopy_info)(gpointer user_data, gint fd, guint64 *initial_bytes,
			     guint64 *dirty_bytes);
	/* like poll(2) on @fd for @events (POLLIN/POLLOUT): >0 ready, 0 timeout, -1 errno */
	gint (*poll)(gpointer user_data, gint fd, gshort events, gint timeout_ms);
} MigdDataFdOps;

typedef enum {
	MIGD_DATA_FD_SAVE,   /* opened by RUNNING->PRE_COPY, RUNNING_P2P->PRE_COPY_P2P or
				STOP->STOP_COPY */
	MIGD_DATA_FD_RESUME, /* opened by STOP->RESUMING */
} MigdDataFdDirection;

typedef enum {
	MIGD_DATA_READ_DATA,	 /* *n_read > 0 bytes were read */
	MIGD_DATA_READ_TEMP_END, /* PRE_COPY: nothing more for now (ENOMSG or 0) */
	MIGD_DATA_READ_END,	 /* STOP_COPY: the whole device state has been read */
} MigdDataReadStatus;

typedef struct _MigdDataFd MigdDataFd;

/*
 * Takes ownership of @fd. @ops NULL means the kernel's syscalls; @destroy is
 * called on @user_data after the fd is closed.
 */
MigdDataFd *migd_data_fd_new(gint fd, MigdDataFdDirection direction, const MigdDataFdOps *ops,
			     gpointer user_data, GDestroyNotify destroy);
void migd_data_fd_free(MigdDataFd *self);
gint migd_data_fd_get_fd(MigdDataFd *self);
MigdDataFdDirection migd_data_fd_get_direction(MigdDataFd *self);

/*
 * One read of up to @len bytes in device state @phase (PRE_COPY, PRE_COPY_P2P or
 * STOP_COPY). Retries EINTR; on EAGAIN waits with poll (cancellable) and retries.
 * ENOMSG or 0 in a PRE_COPY state give MIGD_DATA_READ_TEMP_END; 0 in STOP_COPY
 * gives MIGD_DATA_READ_END. ENODEV fails with MIGD_ERROR_SESSION_ENDED; ENOMSG
 * in STOP_COPY (which the uAPI forbids) with MIGD_ERROR_PROTOCOL; any other
 * errno with MIGD_KERNEL_ERROR.
 */
gboolean migd_data_fd_read_chunk(MigdDataFd *self, MigdState phase, void *buf, gsize len,
				 gsize *n_read, MigdDataReadStatus *status,
				 GCancellable *cancellable, GError **error);

/* writes all of @buf: resumes after partial writes, retries EINTR, waits on EAGAIN */
gboolean migd_data_fd_write_all(MigdDataFd *self, const void *buf, gsize len,
				GCancellable *cancellable, GError **error);

/* VFIO_MIG_GET_PRECOPY_INFO (PRE_COPY states only; elsewhere drivers answer EINVAL) */
gboolean migd_data_fd_get_precopy_info(MigdDataFd *self, guint64 *initial_bytes,
				       guint64 *dirty_bytes, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdDataFd, migd_data_fd_free)

G_END_DECLS
