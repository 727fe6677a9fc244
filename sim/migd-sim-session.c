/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The data fd of a simulated device is a real fd: each MigdDataFdOps primitive
 * becomes one request and one response over a SOCK_SEQPACKET socketpair, so the
 * bytes really travel through the fd and the daemon blocks in it as it would in
 * a driver's read().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "migd-error.h"
#include "migd-sim-session-protocol.h"
#include "migd-sim-session.h"

struct _MigdSimSession {
	gint ref;
	MigdDataFdDirection direction;
	const MigdSimSessionHandler *handler;
	GObject *owner; /* not a ref: the server thread holds one while it runs */
	gpointer file;
	GDestroyNotify file_free;
	gint disabled;
	gint hung_up;
};

/* the server thread's own state */
typedef struct {
	MigdSimSession *session; /* ref */
	GObject *owner;		 /* ref */
	gint sock;
	gsize cap;
	guint8 *buf;
} MigdSimServer;

/* the daemon side: MigdDataFdOps user_data */
typedef struct {
	GMutex lock; /* one request in flight per fd */
	GThread *thread;
	gsize cap;
	MigdSimSession *session; /* ref */
	GObject *owner;		 /* ref: the open fd keeps the device, as a file does */
} MigdSimClient;

MigdSimSession *
migd_sim_session_new(MigdDataFdDirection direction, const MigdSimSessionHandler *handler,
		     GObject *owner, gpointer file, GDestroyNotify file_free)
{
	MigdSimSession *self = g_new0(MigdSimSession, 1);

	self->ref = 1;
	self->direction = direction;
	self->handler = handler;
	self->owner = owner;
	self->file = file;
	self->file_free = file_free;
	return self;
}

MigdSimSession *
migd_sim_session_ref(MigdSimSession *self)
{
	g_atomic_int_inc(&self->ref);
	return self;
}

void
migd_sim_session_unref(MigdSimSession *self)
{
	if (self == NULL || !g_atomic_int_dec_and_test(&self->ref))
		return;
	if (self->file_free != NULL && self->file != NULL)
		self->file_free(self->file);
	g_free(self);
}

MigdDataFdDirection
migd_sim_session_get_direction(MigdSimSession *self)
{
	return self->direction;
}

gpointer
migd_sim_session_get_file(MigdSimSession *self)
{
	return self->file;
}

void
migd_sim_session_disable(MigdSimSession *self)
{
	g_atomic_int_set(&self->disabled, 1);
}

gboolean
migd_sim_session_is_disabled(MigdSimSession *self)
{
	return g_atomic_int_get(&self->disabled) != 0;
}

gboolean
migd_sim_session_is_hung_up(MigdSimSession *self)
{
	return g_atomic_int_get(&self->hung_up) != 0;
}

/* the largest payload that fits one message on @sock (EMSGSIZE above sk_sndbuf - 32) */
static gsize
migd_sim_session_socket_cap(gint sock)
{
	gint val = MIGD_SIM_SESSION_MSG_MAX + 65536;
	socklen_t optlen = sizeof(val);
	gsize cap;

	/* best effort: wmem_max/rmem_max bound it; FORCE works only with CAP_NET_ADMIN */
	if (setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &val, sizeof(val)) < 0)
		(void)setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &val, sizeof(val));
	if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &val, sizeof(val)) < 0)
		(void)setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &val, sizeof(val));
	if (getsockopt(sock, SOL_SOCKET, SO_SNDBUF, &val, &optlen) < 0 || val < 16384)
		val = 16384;
	cap = (gsize)val - 4096 - sizeof(MigdSimResponse);
	cap = MIN(cap, MIGD_SIM_SESSION_MSG_MAX);
	return cap & ~(gsize)4095;
}

static gint
migd_sim_server_dispatch(MigdSimServer *srv, const MigdSimRequest *req, gsize payload_len,
			 MigdSimResponse *resp, const void **data_out, gsize *data_len)
{
	MigdSimSession *s = srv->session;
	const MigdSimSessionHandler *h = s->handler;
	guint8 *data = srv->buf + sizeof(MigdSimResponse);

	*data_len = 0;
	switch (req->op) {
	case MIGD_SIM_OP_READ: {
		gsize n = 0;
		gint err;
		const void *ptr = NULL;
		if (payload_len != 0)
			return EINVAL;
		/* the save file is O_RDONLY, the resume file O_WRONLY */
		if (s->direction != MIGD_DATA_FD_SAVE || h->read == NULL)
			return EBADF;
		err = h->read(srv->owner, s, data, MIN(req->len, srv->cap),
			      (req->flags & MIGD_SIM_REQ_NONBLOCK) != 0, &n, &ptr);
		if (err != 0)
			return err;
		resp->count = n;
		*data_out = ptr != NULL ? ptr : data;
		*data_len = n;
		return 0;
	}
	case MIGD_SIM_OP_WRITE: {
		gsize n = 0;
		gint err;
		if (req->len != payload_len)
			return EINVAL;
		if (s->direction != MIGD_DATA_FD_RESUME || h->write == NULL)
			return EBADF;
		err = h->write(srv->owner, s, srv->buf + sizeof(MigdSimRequest), payload_len, &n);
		if (err != 0)
			return err;
		resp->count = n;
		return 0;
	}
	case MIGD_SIM_OP_PRECOPY_INFO:
		if (s->direction != MIGD_DATA_FD_SAVE || h->precopy_info == NULL)
			return ENOTTY;
		return h->precopy_info(srv->owner, s, &resp->initial_bytes, &resp->dirty_bytes);
	case MIGD_SIM_OP_POLL: {
		gshort revents = 0;
		gint err = 0;
		if (h->poll == NULL)
			revents = (gshort)(req->events & (POLLIN | POLLOUT));
		else
			err =
			    h->poll(srv->owner, s, (gshort)req->events, req->timeout_ms, &revents);
		resp->count = (guint16)revents;
		return err;
	}
	default:
		return ENOTTY;
	}
}

static gpointer
migd_sim_server_thread(gpointer user_data)
{
	MigdSimServer *srv = user_data;

	for (;;) {
		MigdSimRequest req = {0};
		MigdSimResponse resp = {0};
		struct iovec iov = {.iov_base = srv->buf,
				    .iov_len = sizeof(MigdSimRequest) + MIGD_SIM_SESSION_MSG_MAX};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		struct iovec out[2];
		struct msghdr omsg = {.msg_iov = out, .msg_iovlen = 2};
		gsize data_len = 0;
		const void *data = NULL;
		gssize n = recvmsg(srv->sock, &msg, 0);

		if (n < 0 && errno == EINTR)
			continue;
		/* 0: the daemon closed its end, the session's file reference goes */
		if (n <= 0)
			break;
		if ((msg.msg_flags & MSG_TRUNC) != 0 || (gsize)n < sizeof(req)) {
			resp.err = EINVAL;
		} else {
			memcpy(&req, srv->buf, sizeof(req));
			resp.err = migd_sim_server_dispatch(srv, &req, (gsize)n - sizeof(req),
							    &resp, &data, &data_len);
		}
		out[0].iov_base = &resp;
		out[0].iov_len = sizeof(resp);
		out[1].iov_base = (void *)data;
		out[1].iov_len = data_len;
		while ((n = sendmsg(srv->sock, &omsg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
			;
		if (n < 0)
			break;
		/* the daemon copies this answer out while the driver prepares the next */
		if (req.op == MIGD_SIM_OP_READ && resp.err == 0 && data_len > 0 &&
		    srv->session->handler->prefetch != NULL)
			srv->session->handler->prefetch(srv->owner, srv->session,
							MIN(req.len, srv->cap));
	}
	close(srv->sock);
	g_free(srv->buf);
	migd_sim_session_unref(srv->session);
	g_object_unref(srv->owner);
	g_free(srv);
	return NULL;
}

/* one request/response; the response payload (read data) lands directly in @buf */
static gint
migd_sim_client_call(MigdSimClient *c, gint fd, const MigdSimRequest *req, const void *payload,
		     gsize payload_len, void *buf, gsize buf_len, MigdSimResponse *resp)
{
	struct iovec out[2] = {{.iov_base = (void *)req, .iov_len = sizeof(*req)},
			       {.iov_base = (void *)payload, .iov_len = payload_len}};
	struct msghdr omsg = {.msg_iov = out, .msg_iovlen = 2};
	struct iovec in[2] = {{.iov_base = resp, .iov_len = sizeof(*resp)},
			      {.iov_base = buf, .iov_len = buf_len}};
	struct msghdr imsg = {.msg_iov = in, .msg_iovlen = 2};
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&c->lock);
	gssize n;

	for (;;) {
		n = sendmsg(fd, &omsg, MSG_NOSIGNAL);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			(void)poll(&pfd, 1, -1);
			continue;
		}
		return -1;
	}
	/* the request is sent: its response must be consumed whatever happens */
	for (;;) {
		n = recvmsg(fd, &imsg, 0);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/* the daemon set O_NONBLOCK; the server answers EAGAIN itself */
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			(void)poll(&pfd, 1, -1);
			continue;
		}
		return -1;
	}
	if ((gsize)n < sizeof(*resp) || (imsg.msg_flags & MSG_TRUNC) != 0 ||
	    (resp->err == 0 && req->op == MIGD_SIM_OP_READ &&
	     resp->count != (gsize)n - sizeof(*resp))) {
		/* the server thread is gone (EOF) or broke the protocol */
		errno = n == 0 ? ENODEV : EIO;
		return -1;
	}
	if (resp->err != 0) {
		errno = resp->err;
		return -1;
	}
	return 0;
}

static gboolean
migd_sim_client_nonblock(gint fd)
{
	gint fl = fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

static gssize
migd_sim_client_read(gpointer user_data, gint fd, void *buf, gsize len)
{
	MigdSimClient *c = user_data;
	MigdSimRequest req = {.op = MIGD_SIM_OP_READ, .len = MIN(len, c->cap)};
	MigdSimResponse resp = {0};

	if (migd_sim_client_nonblock(fd))
		req.flags |= MIGD_SIM_REQ_NONBLOCK;
	if (migd_sim_client_call(c, fd, &req, NULL, 0, buf, req.len, &resp) < 0)
		return -1;
	return (gssize)resp.count;
}

static gssize
migd_sim_client_write(gpointer user_data, gint fd, const void *buf, gsize len)
{
	MigdSimClient *c = user_data;
	MigdSimRequest req = {.op = MIGD_SIM_OP_WRITE, .len = MIN(len, c->cap)};
	MigdSimResponse resp = {0};

	if (migd_sim_client_call(c, fd, &req, buf, req.len, NULL, 0, &resp) < 0)
		return -1;
	if (resp.count > req.len) {
		errno = EIO;
		return -1;
	}
	return (gssize)resp.count;
}

static gint
migd_sim_client_precopy_info(gpointer user_data, gint fd, guint64 *initial_bytes,
			     guint64 *dirty_bytes)
{
	MigdSimRequest req = {.op = MIGD_SIM_OP_PRECOPY_INFO};
	MigdSimResponse resp = {0};

	if (migd_sim_client_call(user_data, fd, &req, NULL, 0, NULL, 0, &resp) < 0)
		return -1;
	*initial_bytes = resp.initial_bytes;
	*dirty_bytes = resp.dirty_bytes;
	return 0;
}

static gint
migd_sim_client_poll(gpointer user_data, gint fd, gshort events, gint timeout_ms)
{
	MigdSimRequest req = {.op = MIGD_SIM_OP_POLL, .events = events, .timeout_ms = timeout_ms};
	MigdSimResponse resp = {0};

	if (migd_sim_client_call(user_data, fd, &req, NULL, 0, NULL, 0, &resp) < 0)
		return -1;
	return (resp.count & (guint64)(guint16)events) != 0 ? 1 : 0;
}

static const MigdDataFdOps migd_sim_client_ops = {
    .read = migd_sim_client_read,
    .write = migd_sim_client_write,
    .precopy_info = migd_sim_client_precopy_info,
    .poll = migd_sim_client_poll,
};

/* called by migd_data_fd_free() after it closed the fd: the server sees EOF and ends */
static void
migd_sim_client_free(gpointer data)
{
	MigdSimClient *c = data;

	/* a server waiting for data (a slow save) must not keep the join waiting */
	g_atomic_int_set(&c->session->hung_up, 1);
	if (c->session->handler->hangup != NULL)
		c->session->handler->hangup(c->owner, c->session);
	if (c->thread != NULL)
		g_thread_join(c->thread);
	migd_sim_session_unref(c->session);
	g_object_unref(c->owner);
	g_mutex_clear(&c->lock);
	g_free(c);
}

MigdDataFd *
migd_sim_session_open_fd(MigdSimSession *self, GError **error)
{
	gint sv[2] = {-1, -1};
	MigdSimServer *srv;
	MigdSimClient *c;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		migd_set_errno_error(error, errno, "socketpair() for a simulated data fd");
		return NULL;
	}
	srv = g_new0(MigdSimServer, 1);
	srv->session = migd_sim_session_ref(self);
	srv->owner = g_object_ref(self->owner);
	srv->sock = sv[1];
	srv->cap = migd_sim_session_socket_cap(sv[1]);
	srv->buf =
	    g_malloc(sizeof(MigdSimRequest) + sizeof(MigdSimResponse) + MIGD_SIM_SESSION_MSG_MAX);

	c = g_new0(MigdSimClient, 1);
	g_mutex_init(&c->lock);
	c->cap = migd_sim_session_socket_cap(sv[0]);
	c->session = migd_sim_session_ref(self);
	c->owner = g_object_ref(self->owner);
	c->thread = g_thread_new("migd-sim-session", migd_sim_server_thread, srv);
	return migd_data_fd_new(
	    sv[0], self->direction == MIGD_DATA_FD_SAVE ? MIGD_DATA_FD_SAVE : MIGD_DATA_FD_RESUME,
	    &migd_sim_client_ops, c, migd_sim_client_free);
}
