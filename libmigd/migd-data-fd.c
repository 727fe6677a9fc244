/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "migd-data-fd.h"
#include "migd-error.h"
#include "uapi/migd-vfio-uapi.h"

struct _MigdDataFd {
	gint fd;
	MigdDataFdDirection direction;
	/* a copy, so callers may pass a struct on their stack; NULL members = syscalls */
	MigdDataFdOps ops;
	gboolean custom_poll;
	gpointer user_data;
	GDestroyNotify destroy;
};

/* how long one slice of a backend-supplied poll lasts before we look at the cancellable */
#define MIGD_DATA_FD_POLL_SLICE_MS 50

static gssize
migd_data_fd_sys_read(gpointer user_data, gint fd, void *buf, gsize len)
{
	return read(fd, buf, len);
}

static gssize
migd_data_fd_sys_write(gpointer user_data, gint fd, const void *buf, gsize len)
{
	return write(fd, buf, len);
}

static gint
migd_data_fd_sys_precopy_info(gpointer user_data, gint fd, guint64 *initial_bytes,
			      guint64 *dirty_bytes)
{
	struct vfio_precopy_info info = {.argsz = sizeof(info)};

	if (ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &info) < 0)
		return -1;
	*initial_bytes = info.initial_bytes;
	*dirty_bytes = info.dirty_bytes;
	return 0;
}

static gint
migd_data_fd_sys_poll(gpointer user_data, gint fd, gshort events, gint timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	return poll(&pfd, 1, timeout_ms);
}

MigdDataFd *
migd_data_fd_new(gint fd, MigdDataFdDirection direction, const MigdDataFdOps *ops,
		 gpointer user_data, GDestroyNotify destroy)
{
	MigdDataFd *self = g_new0(MigdDataFd, 1);

	self->fd = fd;
	self->direction = direction;
	if (ops != NULL)
		self->ops = *ops;
	self->custom_poll = self->ops.poll != NULL;
	if (self->ops.read == NULL)
		self->ops.read = migd_data_fd_sys_read;
	if (self->ops.write == NULL)
		self->ops.write = migd_data_fd_sys_write;
	if (self->ops.precopy_info == NULL)
		self->ops.precopy_info = migd_data_fd_sys_precopy_info;
	if (self->ops.poll == NULL)
		self->ops.poll = migd_data_fd_sys_poll;
	self->user_data = user_data;
	self->destroy = destroy;
	return self;
}

void
migd_data_fd_free(MigdDataFd *self)
{
	if (self == NULL)
		return;
	if (self->fd >= 0)
		close(self->fd);
	if (self->destroy != NULL)
		self->destroy(self->user_data);
	g_free(self);
}

gint
migd_data_fd_get_fd(MigdDataFd *self)
{
	g_return_val_if_fail(self != NULL, -1);
	return self->fd;
}

MigdDataFdDirection
migd_data_fd_get_direction(MigdDataFd *self)
{
	g_return_val_if_fail(self != NULL, MIGD_DATA_FD_SAVE);
	return self->direction;
}

static gboolean
migd_data_fd_check_cancelled(GCancellable *cancellable, GError **error)
{
	if (g_cancellable_is_cancelled(cancellable)) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_CANCELLED,
				    "migration data transfer cancelled");
		return FALSE;
	}
	return TRUE;
}

/*
 * Waits until @fd is ready for @events or @cancellable fires. Spurious wake-ups
 * are fine: the caller retries the read or write, which tells the truth.
 */
static gboolean
migd_data_fd_wait(MigdDataFd *self, gshort events, GCancellable *cancellable, GError **error)
{
	struct pollfd pfds[2] = {{.fd = self->fd, .events = events}, {.fd = -1}};
	GPollFD cancel_pfd = {.fd = -1};
	gint rc;

	if (!migd_data_fd_check_cancelled(cancellable, error))
		return FALSE;

	/*
	 * A backend's poll sees only its own fd, so wait in slices and look at
	 * the cancellable in between; with the real poll(2) wait on both at once.
	 */
	if (self->custom_poll) {
		for (;;) {
			gint timeout = cancellable != NULL ? MIGD_DATA_FD_POLL_SLICE_MS : -1;
			rc = self->ops.poll(self->user_data, self->fd, events, timeout);
			if (rc > 0)
				return TRUE;
			if (rc < 0 && errno != EINTR) {
				gint errsv = errno;
				migd_set_errno_error(error, errsv, "poll() on migration data fd %d",
						     self->fd);
				return FALSE;
			}
			if (!migd_data_fd_check_cancelled(cancellable, error))
				return FALSE;
		}
	}

	if (cancellable != NULL && g_cancellable_make_pollfd(cancellable, &cancel_pfd)) {
		pfds[1].fd = cancel_pfd.fd;
		pfds[1].events = POLLIN;
	}
	for (;;) {
		/* without a cancellable fd (fd limits), look at it every slice */
		gint timeout =
		    cancellable != NULL && pfds[1].fd < 0 ? MIGD_DATA_FD_POLL_SLICE_MS : -1;
		rc = poll(pfds, pfds[1].fd >= 0 ? 2 : 1, timeout);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			gint errsv = errno;
			if (pfds[1].fd >= 0)
				g_cancellable_release_fd(cancellable);
			migd_set_errno_error(error, errsv, "poll() on migration data fd %d",
					     self->fd);
			return FALSE;
		}
		if (rc > 0 || g_cancellable_is_cancelled(cancellable))
			break;
	}
	if (pfds[1].fd >= 0)
		g_cancellable_release_fd(cancellable);
	return migd_data_fd_check_cancelled(cancellable, error);
}

gboolean
migd_data_fd_read_chunk(MigdDataFd *self, MigdState phase, void *buf, gsize len, gsize *n_read,
			MigdDataReadStatus *status, GCancellable *cancellable, GError **error)
{
	gboolean precopy = phase == MIGD_STATE_PRE_COPY || phase == MIGD_STATE_PRE_COPY_P2P;

	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(buf != NULL, FALSE);
	g_return_val_if_fail(n_read != NULL, FALSE);
	g_return_val_if_fail(status != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	*n_read = 0;
	if (self->direction != MIGD_DATA_FD_SAVE) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "cannot read from a resume data fd");
		return FALSE;
	}
	if (!migd_state_is_saving(phase)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "cannot read migration data in state %s", migd_state_to_string(phase));
		return FALSE;
	}
	/* a read of 0 bytes returns 0, which would look like the end of the stream */
	if (len == 0) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "cannot read 0 bytes of migration data");
		return FALSE;
	}
	if (!migd_data_fd_check_cancelled(cancellable, error))
		return FALSE;

	for (;;) {
		gssize rc = self->ops.read(self->user_data, self->fd, buf, len);
		gint errsv = errno;

		if (rc > 0) {
			if ((gsize)rc > len) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
					    "read() on migration data fd returned %" G_GSSIZE_FORMAT
					    " bytes for a %" G_GSIZE_FORMAT "-byte buffer",
					    rc, len);
				return FALSE;
			}
			*n_read = (gsize)rc;
			*status = MIGD_DATA_READ_DATA;
			return TRUE;
		}
		if (rc == 0) {
			/* hisi_acc, mtty and qat return 0 for the temporary end in PRE_COPY */
			*status = precopy ? MIGD_DATA_READ_TEMP_END : MIGD_DATA_READ_END;
			return TRUE;
		}
		switch (errsv) {
		case EINTR:
			continue;
		case EAGAIN:
			/* only with O_NONBLOCK (mlx5 queues data asynchronously) */
			if (!migd_data_fd_wait(self, POLLIN, cancellable, error))
				return FALSE;
			continue;
		case ENOMSG:
			if (precopy) {
				*status = MIGD_DATA_READ_TEMP_END;
				return TRUE;
			}
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "read() on migration data fd returned ENOMSG in %s, "
				    "which the uAPI allows only in PRE_COPY states",
				    migd_state_to_string(phase));
			return FALSE;
		case ENODEV:
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED,
				    "read() on migration data fd in %s: the driver ended the "
				    "session (%s)",
				    migd_state_to_string(phase), g_strerror(errsv));
			return FALSE;
		default:
			migd_set_errno_error(error, errsv, "read() on migration data fd in %s",
					     migd_state_to_string(phase));
			return FALSE;
		}
	}
}

gboolean
migd_data_fd_write_all(MigdDataFd *self, const void *buf, gsize len, GCancellable *cancellable,
		       GError **error)
{
	const guint8 *p = buf;
	gsize done = 0;

	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(buf != NULL || len == 0, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (self->direction != MIGD_DATA_FD_RESUME) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "cannot write to a save data fd");
		return FALSE;
	}
	if (!migd_data_fd_check_cancelled(cancellable, error))
		return FALSE;

	while (done < len) {
		gssize rc = self->ops.write(self->user_data, self->fd, p + done, len - done);
		gint errsv = errno;

		if (rc > 0) {
			if ((gsize)rc > len - done) {
				g_set_error(
				    error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "write() on migration data fd accepted %" G_GSSIZE_FORMAT
				    " bytes of %" G_GSIZE_FORMAT,
				    rc, len - done);
				return FALSE;
			}
			done += (gsize)rc;
			continue;
		}
		/* retrying a write that accepts nothing would spin forever */
		if (rc == 0) {
			g_set_error(
			    error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "write() on migration data fd accepted 0 bytes after %" G_GSIZE_FORMAT
			    " of %" G_GSIZE_FORMAT,
			    done, len);
			return FALSE;
		}
		switch (errsv) {
		case EINTR:
			continue;
		case EAGAIN:
			if (!migd_data_fd_wait(self, POLLOUT, cancellable, error))
				return FALSE;
			continue;
		case ENODEV:
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED,
				    "write() on migration data fd after %" G_GSIZE_FORMAT
				    " of %" G_GSIZE_FORMAT
				    " bytes: the driver ended the session (%s)",
				    done, len, g_strerror(errsv));
			return FALSE;
		default:
			/* EFAULT/ENOMEM/EINVAL say the driver rejected the stream */
			migd_set_errno_error(error, errsv,
					     "write() on migration data fd after %" G_GSIZE_FORMAT
					     " of %" G_GSIZE_FORMAT " bytes",
					     done, len);
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
migd_data_fd_get_precopy_info(MigdDataFd *self, guint64 *initial_bytes, guint64 *dirty_bytes,
			      GError **error)
{
	guint64 initial = 0;
	guint64 dirty = 0;

	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (self->direction != MIGD_DATA_FD_SAVE) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "VFIO_MIG_GET_PRECOPY_INFO needs a save data fd");
		return FALSE;
	}
	while (self->ops.precopy_info(self->user_data, self->fd, &initial, &dirty) < 0) {
		gint errsv = errno;
		if (errsv == EINTR)
			continue;
		if (errsv == ENODEV) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED,
				    "VFIO_MIG_GET_PRECOPY_INFO: the driver ended the session (%s)",
				    g_strerror(errsv));
			return FALSE;
		}
		migd_set_errno_error(error, errsv, "VFIO_MIG_GET_PRECOPY_INFO on data fd %d",
				     self->fd);
		return FALSE;
	}
	if (initial_bytes != NULL)
		*initial_bytes = initial;
	if (dirty_bytes != NULL)
		*dirty_bytes = dirty;
	return TRUE;
}
