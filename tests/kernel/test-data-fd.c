/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The data-fd loops, driven two ways: scripted primitives (a queue of return
 * values and errno per call, as drivers answer them) and real non-blocking
 * pipes/socketpairs, which prove that EAGAIN + poll really waits and resumes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migd-data-fd.h"
#include "migd-error.h"
#include "test-kernel-common.h"

/* --- scripted primitives --- */

typedef struct {
	gssize ret;
	gint err;
} Result;

#define SCRIPT_MAX 32

typedef struct {
	Result reads[SCRIPT_MAX];
	guint n_reads, read_idx;
	gsize read_lens[SCRIPT_MAX];
	Result writes[SCRIPT_MAX];
	guint n_writes, write_idx;
	Result polls[SCRIPT_MAX];
	guint n_polls, poll_idx;
	gshort poll_events[SCRIPT_MAX];
	gboolean poll_forever_timeout; /* answer 0 (timeout) after the script */
	Result precopy;
	guint n_precopy;
	guint64 initial, dirty;
	guint8 written[4096];
	gsize written_len;
	guint8 next_byte; /* the pattern read() serves */
	gboolean destroyed;
} Script;

static Result
script_next(Result *q, guint n, guint *idx, const gchar *what)
{
	if (*idx >= n) {
		print_error("unscripted %s call #%u\n", what, *idx);
		fail();
	}
	return q[(*idx)++];
}

static gssize
script_read(gpointer user_data, gint fd, void *buf, gsize len)
{
	Script *s = user_data;
	Result r;

	s->read_lens[s->read_idx < SCRIPT_MAX ? s->read_idx : 0] = len;
	r = script_next(s->reads, s->n_reads, &s->read_idx, "read");
	if (r.ret < 0) {
		errno = r.err;
		return -1;
	}
	for (gssize i = 0; i < r.ret && (gsize)i < len; i++)
		((guint8 *)buf)[i] = s->next_byte++;
	return r.ret;
}

static gssize
script_write(gpointer user_data, gint fd, const void *buf, gsize len)
{
	Script *s = user_data;
	Result r = script_next(s->writes, s->n_writes, &s->write_idx, "write");

	if (r.ret < 0) {
		errno = r.err;
		return -1;
	}
	/* record what the driver "accepted" to check the resumed bytes */
	if (r.ret > 0) {
		gsize n = MIN((gsize)r.ret, len);
		assert_true(s->written_len + n <= sizeof(s->written));
		memcpy(s->written + s->written_len, buf, n);
		s->written_len += n;
	}
	return r.ret;
}

static gint
script_poll(gpointer user_data, gint fd, gshort events, gint timeout_ms)
{
	Script *s = user_data;
	Result r;

	if (s->poll_idx >= s->n_polls && s->poll_forever_timeout) {
		g_usleep(1000);
		return 0;
	}
	s->poll_events[s->poll_idx < SCRIPT_MAX ? s->poll_idx : 0] = events;
	r = script_next(s->polls, s->n_polls, &s->poll_idx, "poll");
	if (r.ret < 0) {
		errno = r.err;
		return -1;
	}
	return (gint)r.ret;
}

static gint
script_precopy(gpointer user_data, gint fd, guint64 *initial, guint64 *dirty)
{
	Script *s = user_data;

	s->n_precopy++;
	if (s->precopy.ret < 0) {
		errno = s->precopy.err;
		return -1;
	}
	*initial = s->initial;
	*dirty = s->dirty;
	return 0;
}

static void
script_destroy(gpointer user_data)
{
	Script *s = user_data;
	s->destroyed = TRUE;
}

static void
push(Result *q, guint *n, Result r)
{
	assert_true(*n < SCRIPT_MAX);
	q[(*n)++] = r;
}

static const MigdDataFdOps script_ops = {
    .read = script_read,
    .write = script_write,
    .precopy_info = script_precopy,
    .poll = script_poll,
};

#define OK(n)		 ((Result){.ret = (n)})
#define ERR(e)		 ((Result){.ret = -1, .err = (e)})
#define PUSH_READ(s, r)	 push((s)->reads, &(s)->n_reads, r)
#define PUSH_WRITE(s, r) push((s)->writes, &(s)->n_writes, r)
#define PUSH_POLL(s, r)	 push((s)->polls, &(s)->n_polls, r)

/* a scripted fd backed by a real descriptor so that free() has something to close */
static MigdDataFd *
script_fd_new(Script *s, MigdDataFdDirection direction)
{
	return migd_data_fd_new(dup(STDERR_FILENO), direction, &script_ops, s, script_destroy);
}

static void
read_once(MigdDataFd *dfd, MigdState phase, gsize len, gboolean expect_ok, gsize *n_read,
	  MigdDataReadStatus *status, GError **error)
{
	guint8 buf[64];
	gboolean ok;

	assert_true(len <= sizeof(buf));
	ok = migd_data_fd_read_chunk(dfd, phase, buf, len, n_read, status, NULL, error);
	assert_int_equal(ok, expect_ok);
}

/* --- scripted tests --- */

static void
test_short_read(void **state)
{
	Script s = {.next_byte = 0x10};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	guint8 buf[16] = {0};
	gsize n = 99;
	MigdDataReadStatus st = MIGD_DATA_READ_END;
	g_autoptr(GError) error = NULL;

	/* drivers return what is buffered now: 3 of 16, then 5 more */
	PUSH_READ(&s, OK(3));
	PUSH_READ(&s, OK(5));
	assert_true(migd_data_fd_read_chunk(dfd, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n, &st,
					    NULL, &error));
	assert_null(error);
	assert_int_equal(n, 3);
	assert_int_equal(st, MIGD_DATA_READ_DATA);
	assert_int_equal(buf[0], 0x10);
	assert_int_equal(buf[2], 0x12);
	assert_int_equal(buf[3], 0);
	assert_int_equal(s.read_lens[0], 16);
	/* one read per call: no hidden looping for more */
	assert_int_equal(s.read_idx, 1);

	assert_true(migd_data_fd_read_chunk(dfd, MIGD_STATE_PRE_COPY, buf, sizeof(buf), &n, &st,
					    NULL, &error));
	assert_int_equal(n, 5);
	assert_int_equal(buf[0], 0x13);
}

static void
test_read_eintr(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	gsize n = 0;
	MigdDataReadStatus st;
	g_autoptr(GError) error = NULL;

	PUSH_READ(&s, ERR(EINTR));
	PUSH_READ(&s, ERR(EINTR));
	PUSH_READ(&s, OK(7));
	read_once(dfd, MIGD_STATE_PRE_COPY_P2P, 32, TRUE, &n, &st, &error);
	assert_int_equal(n, 7);
	assert_int_equal(st, MIGD_DATA_READ_DATA);
	assert_int_equal(s.read_idx, 3);
	assert_int_equal(s.poll_idx, 0);
}

static void
test_read_eagain_poll(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	gsize n = 0;
	MigdDataReadStatus st;
	g_autoptr(GError) error = NULL;

	/* EAGAIN, poll times out once and is interrupted once, then becomes readable */
	PUSH_READ(&s, ERR(EAGAIN));
	PUSH_POLL(&s, OK(0));
	PUSH_POLL(&s, ERR(EINTR));
	PUSH_POLL(&s, OK(1));
	PUSH_READ(&s, OK(4));
	read_once(dfd, MIGD_STATE_STOP_COPY, 32, TRUE, &n, &st, &error);
	assert_int_equal(n, 4);
	assert_int_equal(s.poll_idx, 3);
	assert_int_equal(s.poll_events[0], POLLIN);
	assert_int_equal(s.read_idx, 2);
}

static void
test_read_poll_error(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	gsize n = 0;
	MigdDataReadStatus st;
	g_autoptr(GError) error = NULL;

	PUSH_READ(&s, ERR(EAGAIN));
	PUSH_POLL(&s, ERR(EBADF));
	read_once(dfd, MIGD_STATE_STOP_COPY, 32, FALSE, &n, &st, &error);
	assert_error(error, MIGD_KERNEL_ERROR, EBADF);
	assert_non_null(strstr(error->message, "poll()"));
}

static void
test_temp_end_precopy(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	gsize n = 99;
	MigdDataReadStatus st = MIGD_DATA_READ_DATA;

	/* mlx5/virtio: ENOMSG; hisi_acc/mtty/qat: 0 -- both are "nothing for now" */
	PUSH_READ(&s, ERR(ENOMSG));
	PUSH_READ(&s, OK(0));
	PUSH_READ(&s, ERR(ENOMSG));
	PUSH_READ(&s, OK(0));
	read_once(dfd, MIGD_STATE_PRE_COPY, 8, TRUE, &n, &st, NULL);
	assert_int_equal(st, MIGD_DATA_READ_TEMP_END);
	assert_int_equal(n, 0);
	st = MIGD_DATA_READ_DATA;
	read_once(dfd, MIGD_STATE_PRE_COPY, 8, TRUE, &n, &st, NULL);
	assert_int_equal(st, MIGD_DATA_READ_TEMP_END);
	st = MIGD_DATA_READ_DATA;
	read_once(dfd, MIGD_STATE_PRE_COPY_P2P, 8, TRUE, &n, &st, NULL);
	assert_int_equal(st, MIGD_DATA_READ_TEMP_END);
	st = MIGD_DATA_READ_DATA;
	read_once(dfd, MIGD_STATE_PRE_COPY_P2P, 8, TRUE, &n, &st, NULL);
	assert_int_equal(st, MIGD_DATA_READ_TEMP_END);
	assert_int_equal(s.read_idx, 4);
}

static void
test_end_stop_copy(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	gsize n = 99;
	MigdDataReadStatus st = MIGD_DATA_READ_DATA;

	PUSH_READ(&s, OK(0));
	read_once(dfd, MIGD_STATE_STOP_COPY, 8, TRUE, &n, &st, NULL);
	assert_int_equal(st, MIGD_DATA_READ_END);
	assert_int_equal(n, 0);
}

static void
test_enomsg_stop_copy(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	gsize n;
	MigdDataReadStatus st;
	g_autoptr(GError) error = NULL;

	PUSH_READ(&s, ERR(ENOMSG));
	read_once(dfd, MIGD_STATE_STOP_COPY, 8, FALSE, &n, &st, &error);
	assert_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL);
	assert_non_null(strstr(error->message, "STOP_COPY"));
}

static void
test_enodev(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) save = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	g_autoptr(MigdDataFd) resume = script_fd_new(&s, MIGD_DATA_FD_RESUME);
	guint8 data[4] = {1, 2, 3, 4};
	gsize n;
	MigdDataReadStatus st;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	g_autoptr(GError) error3 = NULL;

	PUSH_READ(&s, ERR(ENODEV));
	read_once(save, MIGD_STATE_PRE_COPY, 8, FALSE, &n, &st, &error);
	assert_error(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED);

	PUSH_WRITE(&s, OK(2));
	PUSH_WRITE(&s, ERR(ENODEV));
	assert_false(migd_data_fd_write_all(resume, data, sizeof(data), NULL, &error2));
	assert_error(error2, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED);

	s.precopy = ERR(ENODEV);
	assert_false(migd_data_fd_get_precopy_info(save, NULL, NULL, &error3));
	assert_error(error3, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED);
}

static void
test_read_other_errno(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	gsize n;
	MigdDataReadStatus st;
	g_autoptr(GError) error = NULL;

	PUSH_READ(&s, ERR(EIO));
	read_once(dfd, MIGD_STATE_STOP_COPY, 8, FALSE, &n, &st, &error);
	assert_error(error, MIGD_KERNEL_ERROR, EIO);
	assert_true(migd_error_matches_errno(error, EIO));
	assert_non_null(strstr(error->message, "read()"));
}

static void
test_read_overlong(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	guint8 buf[64];
	gsize n;
	MigdDataReadStatus st;
	g_autoptr(GError) error = NULL;

	/* a backend claiming more bytes than the buffer holds is a bug, not data */
	PUSH_READ(&s, OK(9));
	assert_false(
	    migd_data_fd_read_chunk(dfd, MIGD_STATE_STOP_COPY, buf, 8, &n, &st, NULL, &error));
	assert_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL);
}

static void
test_invalid_phase(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) save = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	g_autoptr(MigdDataFd) resume = script_fd_new(&s, MIGD_DATA_FD_RESUME);
	const MigdState bad[] = {MIGD_STATE_RUNNING,	 MIGD_STATE_STOP,  MIGD_STATE_RESUMING,
				 MIGD_STATE_RUNNING_P2P, MIGD_STATE_ERROR, MIGD_STATE_NR};
	guint8 buf[8];
	gsize n;
	MigdDataReadStatus st;

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		assert_false(
		    migd_data_fd_read_chunk(save, bad[i], buf, sizeof(buf), &n, &st, NULL, &error));
		assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	}
	{
		g_autoptr(GError) error = NULL;
		/* a resume fd is write-only, whatever the phase */
		assert_false(migd_data_fd_read_chunk(resume, MIGD_STATE_STOP_COPY, buf, sizeof(buf),
						     &n, &st, NULL, &error));
		assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	}
	{
		g_autoptr(GError) error = NULL;
		assert_false(migd_data_fd_write_all(save, buf, sizeof(buf), NULL, &error));
		assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	}
	{
		g_autoptr(GError) error = NULL;
		/* 0 bytes would read as "end of stream" */
		assert_false(migd_data_fd_read_chunk(save, MIGD_STATE_STOP_COPY, buf, 0, &n, &st,
						     NULL, &error));
		assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	}
	/* nothing reached the "driver" */
	assert_int_equal(s.read_idx, 0);
	assert_int_equal(s.write_idx, 0);
}

static void
test_write_partial(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_RESUME);
	guint8 data[16];
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < sizeof(data); i++)
		data[i] = (guint8)(0xa0 + i);
	PUSH_WRITE(&s, OK(3));
	PUSH_WRITE(&s, ERR(EINTR));
	PUSH_WRITE(&s, OK(2));
	PUSH_WRITE(&s, ERR(EAGAIN));
	PUSH_POLL(&s, OK(1));
	PUSH_WRITE(&s, OK(6));
	PUSH_WRITE(&s, OK(5));
	assert_true(migd_data_fd_write_all(dfd, data, sizeof(data), NULL, &error));
	assert_null(error);
	assert_int_equal(s.write_idx, 6);
	assert_int_equal(s.poll_events[0], POLLOUT);
	/* the stream arrived in order, each resumed write starting where the last stopped */
	assert_int_equal(s.written_len, sizeof(data));
	assert_memory_equal(s.written, data, sizeof(data));
}

static void
test_write_zero(void **state)
{
	Script s = {0};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_RESUME);
	guint8 data[8] = {0};
	g_autoptr(GError) error = NULL;

	PUSH_WRITE(&s, OK(4));
	PUSH_WRITE(&s, OK(0));
	/* a third call would be "unscripted" and fail the test: proves no spin */
	assert_false(migd_data_fd_write_all(dfd, data, sizeof(data), NULL, &error));
	assert_non_null(error);
	assert_int_equal(error->domain, MIGD_ERROR);
	assert_int_equal(s.write_idx, 2);

	/* writing nothing is a no-op that never calls the driver */
	assert_true(migd_data_fd_write_all(dfd, data, 0, NULL, NULL));
	assert_int_equal(s.write_idx, 2);
}

static void
test_write_driver_errors(void **state)
{
	const gint errs[] = {EFAULT, ENOMEM, EINVAL, EOPNOTSUPP};

	for (guint i = 0; i < G_N_ELEMENTS(errs); i++) {
		Script s = {0};
		g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_RESUME);
		guint8 data[8] = {0};
		g_autoptr(GError) error = NULL;

		PUSH_WRITE(&s, OK(3));
		PUSH_WRITE(&s, ERR(errs[i]));
		assert_false(migd_data_fd_write_all(dfd, data, sizeof(data), NULL, &error));
		assert_error(error, MIGD_KERNEL_ERROR, errs[i]);
		assert_non_null(strstr(error->message, "write()"));
		assert_non_null(strstr(error->message, g_strerror(errs[i])));
	}
}

static void
test_precopy_info(void **state)
{
	Script s = {.initial = 40, .dirty = 7};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	g_autoptr(MigdDataFd) resume = script_fd_new(&s, MIGD_DATA_FD_RESUME);
	guint64 initial = 0, dirty = 0;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;

	assert_true(migd_data_fd_get_precopy_info(dfd, &initial, &dirty, &error));
	assert_int_equal(initial, 40);
	assert_int_equal(dirty, 7);

	/* drivers answer EINVAL outside PRE_COPY; outputs stay untouched */
	s.precopy = ERR(EINVAL);
	initial = dirty = 123;
	assert_false(migd_data_fd_get_precopy_info(dfd, &initial, &dirty, &error));
	assert_error(error, MIGD_KERNEL_ERROR, EINVAL);
	assert_non_null(strstr(error->message, "VFIO_MIG_GET_PRECOPY_INFO"));
	assert_int_equal(initial, 123);

	assert_false(migd_data_fd_get_precopy_info(resume, &initial, &dirty, &error2));
	assert_error(error2, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	assert_int_equal(s.n_precopy, 2);
}

static gpointer
cancel_later_thread(gpointer data)
{
	g_usleep(60 * 1000);
	g_cancellable_cancel(G_CANCELLABLE(data));
	return NULL;
}

static void
test_cancel_scripted(void **state)
{
	Script s = {.poll_forever_timeout = TRUE};
	g_autoptr(MigdDataFd) dfd = script_fd_new(&s, MIGD_DATA_FD_SAVE);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	GThread *thread;
	guint8 buf[8];
	gsize n;
	MigdDataReadStatus st;

	/* the backend's poll never becomes ready: only the cancellable ends the wait */
	PUSH_READ(&s, ERR(EAGAIN));
	thread = g_thread_new("cancel", cancel_later_thread, cancellable);
	assert_false(migd_data_fd_read_chunk(dfd, MIGD_STATE_PRE_COPY, buf, sizeof(buf), &n, &st,
					     cancellable, &error));
	g_thread_join(thread);
	assert_error(error, MIGD_ERROR, MIGD_ERROR_CANCELLED);

	/* already cancelled: fails before touching the driver */
	assert_false(migd_data_fd_read_chunk(dfd, MIGD_STATE_PRE_COPY, buf, sizeof(buf), &n, &st,
					     cancellable, &error2));
	assert_error(error2, MIGD_ERROR, MIGD_ERROR_CANCELLED);
	assert_int_equal(s.read_idx, 1);
}

static void
test_free_closes(void **state)
{
	Script s = {0};
	gint fds[2];
	MigdDataFd *dfd;

	assert_int_equal(pipe(fds), 0);
	dfd = migd_data_fd_new(fds[0], MIGD_DATA_FD_SAVE, &script_ops, &s, script_destroy);
	assert_int_equal(migd_data_fd_get_fd(dfd), fds[0]);
	assert_int_equal(migd_data_fd_get_direction(dfd), MIGD_DATA_FD_SAVE);
	migd_data_fd_free(dfd);
	assert_true(s.destroyed);
	assert_int_equal(fcntl(fds[0], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	close(fds[1]);
	migd_data_fd_free(NULL);
}

/* --- real fds --- */

static void
make_nonblock(gint fd)
{
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

typedef struct {
	gint fd;
	guint delay_ms;
	const guint8 *data;
	gsize len;
	gboolean close_after;
} DelayedWriter;

static gpointer
delayed_writer_thread(gpointer user_data)
{
	DelayedWriter *w = user_data;

	g_usleep(w->delay_ms * 1000);
	g_assert_cmpint(write(w->fd, w->data, w->len), ==, (gssize)w->len);
	if (w->close_after)
		close(w->fd);
	return NULL;
}

static void
test_real_eagain_waits(void **state)
{
	gint fds[2];
	g_autoptr(MigdDataFd) dfd = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GError) error = NULL;
	const guint8 msg[] = "device state";
	DelayedWriter w = {.delay_ms = 100, .data = msg, .len = sizeof(msg), .close_after = TRUE};
	guint8 buf[64] = {0};
	gsize n = 0;
	MigdDataReadStatus st;
	GThread *thread;
	gint64 start;

	assert_int_equal(pipe(fds), 0);
	make_nonblock(fds[0]);
	dfd = migd_data_fd_new(fds[0], MIGD_DATA_FD_SAVE, NULL, NULL, NULL);
	w.fd = fds[1];

	start = g_get_monotonic_time();
	thread = g_thread_new("writer", delayed_writer_thread, &w);
	assert_true(migd_data_fd_read_chunk(dfd, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n, &st,
					    cancellable, &error));
	/* the read got EAGAIN and really slept in poll until the writer came */
	assert_true(g_get_monotonic_time() - start >= 80 * 1000);
	assert_null(error);
	assert_int_equal(st, MIGD_DATA_READ_DATA);
	assert_int_equal(n, sizeof(msg));
	assert_memory_equal(buf, msg, sizeof(msg));
	g_thread_join(thread);

	/* writer closed: a real 0 is the end in STOP_COPY */
	assert_true(migd_data_fd_read_chunk(dfd, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n, &st,
					    NULL, &error));
	assert_int_equal(st, MIGD_DATA_READ_END);
}

static void
test_real_cancel_while_waiting(void **state)
{
	gint fds[2];
	g_autoptr(MigdDataFd) dfd = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GError) error = NULL;
	guint8 buf[8];
	gsize n;
	MigdDataReadStatus st;
	GThread *thread;
	gint64 start;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	make_nonblock(fds[0]);
	dfd = migd_data_fd_new(fds[0], MIGD_DATA_FD_SAVE, NULL, NULL, NULL);

	start = g_get_monotonic_time();
	thread = g_thread_new("cancel", cancel_later_thread, cancellable);
	assert_false(migd_data_fd_read_chunk(dfd, MIGD_STATE_PRE_COPY, buf, sizeof(buf), &n, &st,
					     cancellable, &error));
	g_thread_join(thread);
	assert_error(error, MIGD_ERROR, MIGD_ERROR_CANCELLED);
	assert_true(g_get_monotonic_time() - start >= 40 * 1000);
	close(fds[1]);
}

typedef struct {
	gint fd;
	GByteArray *got;
	gsize expect;
} SlowReader;

static gpointer
slow_reader_thread(gpointer user_data)
{
	SlowReader *r = user_data;
	guint8 buf[1024];

	while (r->got->len < r->expect) {
		gssize rc = read(r->fd, buf, sizeof(buf));
		if (rc <= 0)
			break;
		g_byte_array_append(r->got, buf, (guint)rc);
		/* drain slowly so the writer keeps hitting a full pipe */
		g_usleep(200);
	}
	return NULL;
}

typedef struct {
	guint calls;
	guint partial;
	guint eagain;
} WriteCounter;

static gssize
counting_write(gpointer user_data, gint fd, const void *buf, gsize len)
{
	WriteCounter *c = user_data;
	gssize rc = write(fd, buf, len);

	c->calls++;
	if (rc > 0 && (gsize)rc < len)
		c->partial++;
	if (rc < 0 && errno == EAGAIN)
		c->eagain++;
	return rc;
}

static void
test_real_partial_writes(void **state)
{
	const gsize total = 256 * 1024;
	g_autofree guint8 *data = g_malloc(total);
	g_autoptr(GByteArray) got = g_byte_array_new();
	g_autoptr(MigdDataFd) dfd = NULL;
	g_autoptr(GError) error = NULL;
	/* only write() is wrapped, to count; poll stays the real poll(2) */
	const MigdDataFdOps ops = {.write = counting_write};
	WriteCounter counter = {0};
	SlowReader r = {.got = got, .expect = total};
	GThread *thread;
	gint fds[2];

	for (gsize i = 0; i < total; i++)
		data[i] = (guint8)(i * 7 + i / 251);
	assert_int_equal(pipe(fds), 0);
	/* a one-page pipe forces many partial writes and EAGAINs */
	fcntl(fds[1], F_SETPIPE_SZ, 4096);
	make_nonblock(fds[1]);
	dfd = migd_data_fd_new(fds[1], MIGD_DATA_FD_RESUME, &ops, &counter, NULL);
	r.fd = fds[0];

	thread = g_thread_new("reader", slow_reader_thread, &r);
	assert_true(migd_data_fd_write_all(dfd, data, total, NULL, &error));
	assert_null(error);
	g_thread_join(thread);
	close(fds[0]);

	assert_int_equal(got->len, total);
	assert_memory_equal(got->data, data, total);
	assert_true(counter.eagain > 0);
	assert_true(counter.partial > 0);
	assert_true(counter.calls > 2);
}

static void
test_real_precopy_info_not_vfio(void **state)
{
	gint fds[2];
	g_autoptr(MigdDataFd) dfd = NULL;
	g_autoptr(GError) error = NULL;

	/* a pipe does not know VFIO_MIG_GET_PRECOPY_INFO: the real ioctl path reports it */
	assert_int_equal(pipe(fds), 0);
	dfd = migd_data_fd_new(fds[0], MIGD_DATA_FD_SAVE, NULL, NULL, NULL);
	assert_false(migd_data_fd_get_precopy_info(dfd, NULL, NULL, &error));
	assert_non_null(error);
	assert_int_equal(error->domain, MIGD_KERNEL_ERROR);
	assert_true(error->code == ENOTTY || error->code == EINVAL);
	close(fds[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_short_read),
	    cmocka_unit_test(test_read_eintr),
	    cmocka_unit_test(test_read_eagain_poll),
	    cmocka_unit_test(test_read_poll_error),
	    cmocka_unit_test(test_temp_end_precopy),
	    cmocka_unit_test(test_end_stop_copy),
	    cmocka_unit_test(test_enomsg_stop_copy),
	    cmocka_unit_test(test_enodev),
	    cmocka_unit_test(test_read_other_errno),
	    cmocka_unit_test(test_read_overlong),
	    cmocka_unit_test(test_invalid_phase),
	    cmocka_unit_test(test_write_partial),
	    cmocka_unit_test(test_write_zero),
	    cmocka_unit_test(test_write_driver_errors),
	    cmocka_unit_test(test_precopy_info),
	    cmocka_unit_test(test_cancel_scripted),
	    cmocka_unit_test(test_free_closes),
	    cmocka_unit_test(test_real_eagain_waits),
	    cmocka_unit_test(test_real_cancel_while_waiting),
	    cmocka_unit_test(test_real_partial_writes),
	    cmocka_unit_test(test_real_precopy_info_not_vfio),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
