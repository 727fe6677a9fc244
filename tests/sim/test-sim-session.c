/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The simulated data fd as a real fd: bad requests straight on the socket never
 * crash the server, and the fd's lifetime holds the device like a file does.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "migd-sim-session-protocol.h"
#include "migd-sim-session.h"
#include "sim-test-util.h"

/* one raw message and its answer; returns the response's payload length */
static gsize
raw_call(gint fd, const void *msg, gsize len, MigdSimResponse *resp, guint8 *payload,
	 gsize payload_len)
{
	struct iovec in[2] = {{.iov_base = resp, .iov_len = sizeof(*resp)},
			      {.iov_base = payload, .iov_len = payload_len}};
	struct msghdr imsg = {.msg_iov = in, .msg_iovlen = payload != NULL ? 2 : 1};
	gssize n;

	assert_int_equal(send(fd, msg, len, MSG_NOSIGNAL), (gssize)len);
	n = recvmsg(fd, &imsg, 0);
	assert_true(n >= (gssize)sizeof(*resp));
	return (gsize)n - sizeof(*resp);
}

static void
test_garbage_on_save_fd(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mtty");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *huge = g_malloc0(sizeof(MigdSimRequest) + MIGD_SIM_SESSION_MSG_MAX + 1);
	guint8 payload[256];
	guint8 junk[3] = {1, 2, 3};
	MigdSimRequest req = {0};
	MigdSimResponse resp = {0};
	guint64 initial = 0, dirty = 0;
	gint s;
	gint sndbuf = 16 * 1024 * 1024;

	sim_go(dev, MIGD_STATE_STOP_COPY, &fd);
	s = migd_data_fd_get_fd(fd);

	/* shorter than a request */
	raw_call(s, junk, sizeof(junk), &resp, NULL, 0);
	assert_int_equal(resp.err, EINVAL);
	/* an unknown operation */
	req.op = 99;
	raw_call(s, &req, sizeof(req), &resp, NULL, 0);
	assert_int_equal(resp.err, ENOTTY);
	/* a read with a payload */
	req.op = MIGD_SIM_OP_READ;
	req.len = 4;
	{
		guint8 msg[sizeof(req) + 4] = {0};
		memcpy(msg, &req, sizeof(req));
		raw_call(s, msg, sizeof(msg), &resp, NULL, 0);
		assert_int_equal(resp.err, EINVAL);
	}
	/* a write on the O_RDONLY save file */
	req.op = MIGD_SIM_OP_WRITE;
	req.len = 0;
	raw_call(s, &req, sizeof(req), &resp, NULL, 0);
	assert_int_equal(resp.err, EBADF);
	/* a length that disagrees with the payload */
	req.len = 1000;
	raw_call(s, &req, sizeof(req), &resp, NULL, 0);
	assert_int_equal(resp.err, EINVAL);
	/* more than the server takes in one message: truncated, refused */
	(void)setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));
	req.op = MIGD_SIM_OP_WRITE;
	req.len = MIGD_SIM_SESSION_MSG_MAX + 1;
	memcpy(huge, &req, sizeof(req));
	if (send(s, huge, sizeof(req) + MIGD_SIM_SESSION_MSG_MAX + 1, MSG_NOSIGNAL) > 0) {
		assert_true(recv(s, &resp, sizeof(resp), 0) >= (gssize)sizeof(resp));
		assert_int_equal(resp.err, EINVAL);
	}
	/* a read of 2^64-1 bytes is a short read of what there is */
	req.op = MIGD_SIM_OP_READ;
	req.len = G_MAXUINT64;
	assert_int_equal(raw_call(s, &req, sizeof(req), &resp, payload, sizeof(payload)), 96);
	assert_int_equal(resp.err, 0);
	assert_int_equal(resp.count, 96);
	/* poll: no .poll in mtty, the VFS default */
	req.op = MIGD_SIM_OP_POLL;
	req.events = POLLIN;
	raw_call(s, &req, sizeof(req), &resp, NULL, 0);
	assert_int_equal(resp.err, 0);
	assert_int_equal(resp.count, POLLIN);

	/* the server is still in order: PRECOPY_INFO in STOP_COPY is EINVAL */
	assert_false(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	sim_assert_errno(error, EINVAL);
}

static void
test_garbage_on_resume_fd(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mlx5:state_size=64K");
	g_autoptr(MigdDataFd) fd = NULL;
	MigdSimRequest req = {0};
	MigdSimResponse resp = {0};
	gint s;

	sim_go(dev, MIGD_STATE_RESUMING, &fd);
	s = migd_data_fd_get_fd(fd);
	req.op = MIGD_SIM_OP_READ;
	req.len = 16;
	raw_call(s, &req, sizeof(req), &resp, NULL, 0);
	assert_int_equal(resp.err, EBADF);
	req.op = MIGD_SIM_OP_PRECOPY_INFO;
	raw_call(s, &req, sizeof(req), &resp, NULL, 0);
	assert_int_equal(resp.err, ENOTTY);
	req.op = MIGD_SIM_OP_POLL;
	req.events = POLLOUT;
	raw_call(s, &req, sizeof(req), &resp, NULL, 0);
	assert_int_equal(resp.count, POLLOUT);
	req.op = MIGD_SIM_OP_WRITE;
	req.len = 0;
	raw_call(s, &req, sizeof(req), &resp, NULL, 0);
	assert_int_equal(resp.err, 0);
	assert_int_equal(resp.count, 0);
}

static void
test_fd_holds_device(void **state)
{
	MigdDevice *dev = sim_new("mtty");
	MigdDataFd *fd = NULL;
	gpointer weak = dev;

	g_object_add_weak_pointer(G_OBJECT(dev), &weak);
	sim_go(dev, MIGD_STATE_PRE_COPY, &fd);
	g_object_unref(dev);
	/* the open fd keeps the device, as the kernel's file does */
	assert_non_null(weak);
	{
		g_autoptr(GByteArray) stream = g_byte_array_new();
		assert_int_equal(sim_read_until_end(fd, MIGD_STATE_PRE_COPY, stream, 64),
				 MIGD_DATA_READ_TEMP_END);
		assert_int_equal(stream->len, 24);
	}
	/* closing it ends the server thread and drops the last reference */
	migd_data_fd_free(fd);
	assert_null(weak);
}

static void
test_closed_fd_session_lives_on(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("mtty:seed=1");
	g_autoptr(MigdDevice) dst = sim_new("mtty:seed=2");
	g_autoptr(GByteArray) stream = sim_save_stopped(src);
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error = NULL;

	/* the driver holds its own file reference: closing early does not end RESUMING */
	sim_go(dst, MIGD_STATE_RESUMING, &fd);
	sim_write(fd, stream->data, stream->len);
	g_clear_pointer(&fd, migd_data_fd_free);
	assert_int_equal(sim_state(dst), MIGD_STATE_RESUMING);
	assert_true(migd_device_set_state_arc(dst, MIGD_STATE_STOP, NULL, &error));
	assert_true(sim_digest(src) == sim_digest(dst));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_garbage_on_save_fd),
	    cmocka_unit_test(test_garbage_on_resume_fd),
	    cmocka_unit_test(test_fd_holds_device),
	    cmocka_unit_test(test_closed_fd_session_lives_on),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
