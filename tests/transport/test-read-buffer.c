/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The read buffer TLS sits on (net/migd-read-buffer.c), over a real socket pair: reads of
 * any size return the bytes in order; one refill serves many small reads (a peer's bytes
 * stay readable from the buffer after the socket is drained); the stream stays pollable
 * (a source fires at once while the buffer holds bytes, and when the socket gets some);
 * reads as large as the buffer bypass it; closing closes the socket.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migd-read-buffer.h"

#define BUFFER 4096u

typedef struct {
	GIOStream *stream; /* the read buffer over one end */
	GSocket *socket;   /* that end */
	gint peer;	   /* the other end, written with write(2) */
} Pair;

static void
pair_open(Pair *p, gsize buffer)
{
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(GError) error = NULL;
	gint fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	p->socket = g_socket_new_from_fd(fds[0], &error);
	assert_non_null(p->socket);
	conn = g_socket_connection_factory_create_connection(p->socket);
	p->stream = migd_read_buffer_stream_new(G_IO_STREAM(conn), buffer);
	assert_ptr_equal(migd_read_buffer_stream_get_base(p->stream), conn);
	assert_null(migd_read_buffer_stream_get_base(G_IO_STREAM(conn)));
	p->peer = fds[1];
}

static void
pair_close(Pair *p)
{
	g_clear_object(&p->stream);
	g_clear_object(&p->socket);
	if (p->peer >= 0)
		close(p->peer);
}

static void
peer_write(Pair *p, const guint8 *data, gsize len)
{
	assert_int_equal(write(p->peer, data, len), (gssize)len);
}

static void
pattern(guint8 *buf, gsize len, guint seed)
{
	for (gsize i = 0; i < len; i++)
		buf[i] = (guint8)(i * 7 + seed + (i >> 8));
}

/* small nonblocking reads, as GnuTLS's pull (5-byte header, then the body) */
static void
test_small_reads_in_order(void **state)
{
	GPollableInputStream *in;
	guint8 sent[3000];
	guint8 got[3000];
	gsize off = 0;
	Pair p;

	pair_open(&p, BUFFER);
	in = G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(p.stream));
	assert_true(g_pollable_input_stream_can_poll(in));
	pattern(sent, sizeof(sent), 3);
	peer_write(&p, sent, sizeof(sent));
	while (off < sizeof(sent)) {
		g_autoptr(GError) error = NULL;
		gsize want = (off / 5) % 2 == 0 ? 5 : 321;
		gssize n = g_pollable_input_stream_read_nonblocking(
		    in, got + off, MIN(want, sizeof(sent) - off), NULL, &error);
		assert_true(n > 0);
		off += (gsize)n;
		/* after the first read everything sits in the buffer: the socket is empty */
		if (off < sizeof(sent)) {
			guint8 probe;
			assert_int_equal(
			    recv(g_socket_get_fd(p.socket), &probe, 1, MSG_DONTWAIT | MSG_PEEK),
			    -1);
			assert_true(g_pollable_input_stream_is_readable(in));
		}
	}
	assert_memory_equal(sent, got, sizeof(sent));
	/* nothing left anywhere: a nonblocking read would block */
	{
		g_autoptr(GError) error = NULL;
		assert_int_equal(
		    g_pollable_input_stream_read_nonblocking(in, got, 10, NULL, &error), -1);
		assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK));
		assert_false(g_pollable_input_stream_is_readable(in));
	}
	pair_close(&p);
}

static gboolean
source_fired_cb(GObject *stream, gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
	return G_SOURCE_REMOVE;
}

static gboolean
source_fires(GPollableInputStream *in)
{
	g_autoptr(GSource) source = g_pollable_input_stream_create_source(in, NULL);
	gboolean fired = FALSE;

	g_source_set_callback(source, G_SOURCE_FUNC(source_fired_cb), &fired, NULL);
	g_source_attach(source, NULL);
	for (guint i = 0; i < 5 && !fired; i++)
		g_main_context_iteration(NULL, FALSE);
	g_source_destroy(source);
	return fired;
}

static void
test_pollable_source(void **state)
{
	GPollableInputStream *in;
	guint8 sent[100];
	guint8 got[10];
	g_autoptr(GError) error = NULL;
	Pair p;

	pair_open(&p, BUFFER);
	in = G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(p.stream));
	/* nothing anywhere: the source does not fire */
	assert_false(source_fires(in));
	/* bytes on the socket: it does */
	pattern(sent, sizeof(sent), 9);
	peer_write(&p, sent, sizeof(sent));
	assert_true(source_fires(in));
	/* the socket drained into the buffer: it still does, from the buffer alone */
	assert_int_equal(
	    g_pollable_input_stream_read_nonblocking(in, got, sizeof(got), NULL, &error),
	    sizeof(got));
	assert_memory_equal(got, sent, sizeof(got));
	assert_true(source_fires(in));
	pair_close(&p);
}

/* blocking reads, and a read as large as the buffer, which goes straight to the socket */
static void
test_blocking_and_large_reads(void **state)
{
	GInputStream *in;
	g_autofree guint8 *sent = g_malloc(4 * BUFFER);
	g_autofree guint8 *got = g_malloc(4 * BUFFER);
	g_autoptr(GError) error = NULL;
	gsize off = 0;
	gssize n;
	Pair p;

	pair_open(&p, BUFFER);
	in = g_io_stream_get_input_stream(p.stream);
	pattern(sent, 4 * BUFFER, 5);
	peer_write(&p, sent, 4 * BUFFER);
	n = g_input_stream_read(in, got, 7, NULL, &error);
	assert_int_equal(n, 7);
	off = 7;
	/* the buffered rest first, however large the request */
	n = g_input_stream_read(in, got + off, 4 * BUFFER, NULL, &error);
	assert_int_equal(n, BUFFER - 7);
	off += (gsize)n;
	/* then straight from the socket */
	while (off < 4 * BUFFER) {
		n = g_input_stream_read(in, got + off, 4 * BUFFER - off, NULL, &error);
		assert_true(n > 0);
		off += (gsize)n;
	}
	assert_memory_equal(sent, got, 4 * BUFFER);
	/* the peer hangs up: the end of the stream */
	close(p.peer);
	p.peer = -1;
	assert_int_equal(g_input_stream_read(in, got, 10, NULL, &error), 0);
	pair_close(&p);
}

static void
test_close_closes_socket(void **state)
{
	g_autoptr(GError) error = NULL;
	guint8 c;
	Pair p;

	pair_open(&p, BUFFER);
	assert_true(g_io_stream_close(p.stream, NULL, &error));
	assert_true(g_socket_is_closed(p.socket));
	/* the peer sees the end */
	assert_int_equal(read(p.peer, &c, 1), 0);
	pair_close(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small_reads_in_order),
	    cmocka_unit_test(test_pollable_source),
	    cmocka_unit_test(test_blocking_and_large_reads),
	    cmocka_unit_test(test_close_closes_socket),
	};
	return cmocka_run_group_tests_name("read-buffer", tests, NULL, NULL);
}
