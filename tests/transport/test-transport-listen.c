/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The transport's listeners and its bounds, on loopback: stale socket files, the backlog and
 * the cap on pending handshakes, bad addresses and configuration errors (with files that are
 * not regular), handshake deadlines and cancellation, port 0 and adopted listening fds
 * (socket activation).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "migd-error.h"
#include "migd-transport.h"
#include "transport-test-util.h"

/* a socket file left by a dead process is replaced; a live one or another file is not */
static void
test_listen_stale_socket(void **state)
{
	MigdTransportConfig plain = {.plain = TRUE};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	g_autofree gchar *path = g_build_filename(pki->dir, "stale.sock", NULL);
	g_autofree gchar *file = g_build_filename(pki->dir, "not-a-socket", NULL);
	g_autofree gchar *address = g_strdup_printf("unix:%s", path);
	g_autofree gchar *file_address = g_strdup_printf("unix:%s", file);
	g_autofree gchar *contents = NULL;
	g_autoptr(MigdTransportListener) listener = NULL;
	g_autoptr(MigdTransportListener) second = NULL;
	g_autoptr(GError) error = NULL;
	ConnectResult cr = {0};
	ServerState st;
	gint fd;

	server_state_init(&st);
	/* a crash: bound, maybe listened, never unlinked */
	g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 1), 0);
	close(fd);
	assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
	listener = listen_ok(address, &plain, &st);
	migd_transport_connect_async(address, &plain, NULL, connect_cb, &cr);
	WAIT_FOR(cr.done && st.streams->len == 1);
	assert_null(cr.error);
	connect_result_clear(&cr);

	/* a live socket stays, and so does its listener */
	second = migd_transport_listen(address, &plain, accept_cb, &st, &error);
	assert_null(second);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_FAILED));
	assert_non_null(strstr(error->message, "in use"));
	g_clear_error(&error);
	/* (the probe that found it alive was a connection too) */
	migd_transport_connect_async(address, &plain, NULL, connect_cb, &cr);
	WAIT_FOR(cr.done && st.streams->len >= 2);
	assert_null(cr.error);
	connect_result_clear(&cr);
	g_clear_object(&listener);
	assert_false(g_file_test(path, G_FILE_TEST_EXISTS));

	/* not a socket: never removed */
	assert_true(g_file_set_contents(file, "precious", -1, NULL));
	second = migd_transport_listen(file_address, &plain, accept_cb, &st, &error);
	assert_null(second);
	assert_non_null(error);
	assert_non_null(strstr(error->message, "not a socket"));
	assert_true(g_file_get_contents(file, &contents, NULL, NULL));
	assert_string_equal(contents, "precious");
	g_unlink(file);
	server_state_clear(&st);
}

/* a burst of connects is queued, not dropped: the backlog is the system's, not GIO's 10 */
static void
test_listen_backlog(void **state)
{
	MigdTransportConfig plain = {.plain = TRUE};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	g_autofree gchar *path = g_build_filename(pki->dir, "backlog.sock", NULL);
	g_autofree gchar *address = g_strdup_printf("unix:%s", path);
	g_autoptr(MigdTransportListener) listener = NULL;
	gint fds[64];
	ServerState st;

	server_state_init(&st);
	listener = listen_ok(address, &plain, &st);
	g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	/* nothing accepts meanwhile (no main loop): a UNIX connect beyond the backlog fails */
	for (guint i = 0; i < G_N_ELEMENTS(fds); i++) {
		fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		assert_true(fds[i] >= 0);
		if (connect(fds[i], (struct sockaddr *)&sun, sizeof(sun)) < 0)
			fail_msg("connect %u of %u: %s", i + 1, (guint)G_N_ELEMENTS(fds),
				 g_strerror(errno));
	}
	for (guint i = 0; i < G_N_ELEMENTS(fds); i++)
		close(fds[i]);
	g_clear_object(&listener);
	server_state_clear(&st);
}

/* TLS handshakes in progress count against max-pending-peers: the excess is refused */
static void
test_pending_handshakes_capped(void **state)
{
	MigdTransportConfig scfg = server_config();
	g_autoptr(MigdTransportListener) listener = NULL;
	g_autoptr(GSocketConnection) a = NULL;
	g_autoptr(GSocketConnection) b = NULL;
	g_autoptr(GSocketConnection) c = NULL;
	ServerState st;

	SKIP_WITHOUT_TLS();
	scfg.max_pending_peers = 2;
	server_state_init(&st);
	listener = listen_ok("tcp:127.0.0.1:0", &scfg, &st);
	a = raw_connect(listener_port(listener)); /* silent: their handshakes stay pending */
	b = raw_connect(listener_port(listener));
	migd_test_spin_ms(50);
	assert_int_equal(st.refused, 0);
	c = raw_connect(listener_port(listener));
	WAIT_FOR(st.refused == 1);
	assert_true(g_error_matches(st.refused_error, MIGD_ERROR, MIGD_ERROR_BUSY));
	assert_non_null(strstr(st.refused_error->message, "max-pending-peers"));
	g_clear_object(&listener);
	server_state_clear(&st);
}

/* ---- addresses and configuration ---- */

static void
test_bad_addresses(void **state)
{
	MigdTransportConfig plain = {.plain = TRUE, .insecure_plain_tcp = TRUE};
	const gchar *listen_bad[] = {"",
				     "tcp:127.0.0.1",
				     "tcp:localhost:0",
				     "udp:127.0.0.1:0",
				     "unix:relative.sock",
				     "tcp:[::1]:99999"};
	const gchar *connect_bad[] = {"tcp:127.0.0.1:0", "tcp:127.0.0.1", "bogus", "unix:@"};
	ServerState st;
	g_autoptr(GError) error = NULL;

	server_state_init(&st);
	for (guint i = 0; i < G_N_ELEMENTS(listen_bad); i++) {
		g_autoptr(MigdTransportListener) listener =
		    migd_transport_listen(listen_bad[i], &plain, accept_cb, &st, &error);
		if (listener != NULL)
			fail_msg("listen on '%s' succeeded", listen_bad[i]);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		g_clear_error(&error);
	}
	for (guint i = 0; i < G_N_ELEMENTS(connect_bad); i++) {
		ConnectResult cr = {0};
		migd_transport_connect_async(connect_bad[i], &plain, NULL, connect_cb, &cr);
		WAIT_FOR(cr.done);
		if (cr.stream != NULL)
			fail_msg("connect to '%s' succeeded", connect_bad[i]);
		assert_true(g_error_matches(cr.error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		connect_result_clear(&cr);
	}
	server_state_clear(&st);
}

typedef struct {
	const gchar *what;
	MigdTransportConfig config;
	gboolean listening;
	const gchar *address;
	const gchar *message; /* a part of the error message */
} ConfigCase;

static void
test_config_errors(void **state)
{
	g_autofree gchar *missing = g_build_filename(pki->dir, "does-not-exist.pem", NULL);
	const ConfigCase cases[] = {
	    {"no cert_file",
	     {.key_file = pki->server_key, .ca_file = pki->ca_crt},
	     TRUE,
	     NULL,
	     "cert_file is not set"},
	    {"no key_file",
	     {.cert_file = pki->server_crt, .ca_file = pki->ca_crt},
	     TRUE,
	     NULL,
	     "key_file is not set"},
	    {"no ca_file",
	     {.cert_file = pki->server_crt, .key_file = pki->server_key},
	     TRUE,
	     NULL,
	     "ca_file is not set"},
	    {"missing cert",
	     {.cert_file = missing, .key_file = pki->server_key, .ca_file = pki->ca_crt},
	     TRUE,
	     NULL,
	     "cert_file '"},
	    {"directory as key",
	     {.cert_file = pki->server_crt, .key_file = pki->dir, .ca_file = pki->ca_crt},
	     TRUE,
	     NULL,
	     "key_file '"},
	    {"missing ca",
	     {.cert_file = pki->server_crt, .key_file = pki->server_key, .ca_file = missing},
	     TRUE,
	     NULL,
	     "ca_file '"},
	    {"garbage cert",
	     {.cert_file = pki->garbage, .key_file = pki->server_key, .ca_file = pki->ca_crt},
	     TRUE,
	     NULL,
	     "cert_file '"},
	    {"garbage key",
	     {.cert_file = pki->server_crt, .key_file = pki->garbage, .ca_file = pki->ca_crt},
	     TRUE,
	     NULL,
	     "key_file '"},
	    {"garbage ca",
	     {.cert_file = pki->server_crt, .key_file = pki->server_key, .ca_file = pki->garbage},
	     TRUE,
	     NULL,
	     "ca_file '"},
	    {"mismatched key",
	     {.cert_file = pki->server_crt, .key_file = pki->client_key, .ca_file = pki->ca_crt},
	     TRUE,
	     NULL,
	     "does not match"},
	    {"expired",
	     {.cert_file = pki->expired_crt, .key_file = pki->expired_key, .ca_file = pki->ca_crt},
	     FALSE,
	     NULL,
	     "expired"},
	    {"unix without peer_name",
	     {.cert_file = pki->client_crt, .key_file = pki->client_key, .ca_file = pki->ca_crt},
	     FALSE,
	     "unix:/run/vfio-migd.sock",
	     "set peer_name"},
	};
	g_autoptr(MigdTransportAddress) tcp = migd_transport_address_parse("tcp:127.0.0.1:1", NULL);
	g_autoptr(GError) error = NULL;

	SKIP_WITHOUT_TLS();
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		const ConfigCase *c = &cases[i];
		g_autoptr(MigdTransportAddress) addr =
		    c->address != NULL ? migd_transport_address_parse(c->address, NULL) : NULL;

		if (migd_transport_config_check(&c->config, addr != NULL ? addr : tcp, c->listening,
						&error))
			fail_msg("%s: accepted", c->what);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		if (strstr(error->message, c->message) == NULL)
			fail_msg("%s: '%s' lacks '%s'", c->what, error->message, c->message);
		g_clear_error(&error);
	}
	assert_false(migd_transport_config_check(NULL, tcp, TRUE, &error));
	g_clear_error(&error);

	/* and the good ones pass, both ways */
	{
		MigdTransportConfig scfg = server_config();
		MigdTransportConfig ccfg = client_config();
		assert_true(migd_transport_config_check(&scfg, tcp, TRUE, &error));
		assert_true(migd_transport_config_check(&ccfg, tcp, FALSE, &error));
	}
}

/*
 * Only regular files of at most 1 MiB: a CA bundle over the cap (valid PEM, repeated), a FIFO
 * nobody writes to (it blocked the main loop) and /dev/zero (it grew the daemon to 24 GB) are
 * refused at once, naming the key, the path and the reason.
 */
static void
test_config_files_not_regular(void **state)
{
	g_autofree gchar *fifo = g_build_filename(pki->dir, "key-fifo.pem", NULL);
	g_autofree gchar *big = g_build_filename(pki->dir, "big-ca.pem", NULL);
	g_autofree gchar *ca = NULL;
	g_autoptr(GString) bundle = g_string_new(NULL);
	g_autoptr(MigdTransportAddress) tcp = migd_transport_address_parse("tcp:127.0.0.1:1", NULL);
	g_autoptr(GError) error = NULL;
	gint64 start;
	MigdTransportConfig cfg = {0};

	SKIP_WITHOUT_TLS();
	assert_true(g_file_get_contents(pki->ca_crt, &ca, NULL, NULL));
	while (bundle->len <= 1024 * 1024)
		g_string_append(bundle, ca);
	assert_true(g_file_set_contents(big, bundle->str, bundle->len, NULL));
	assert_int_equal(mkfifo(fifo, 0600), 0);

	cfg = server_config();
	cfg.ca_file = big;
	assert_false(migd_transport_config_check(&cfg, tcp, TRUE, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "ca_file '"));
	assert_non_null(strstr(error->message, "more than the 1048576 allowed"));
	g_clear_error(&error);

	start = g_get_monotonic_time();
	cfg = server_config();
	cfg.key_file = fifo;
	assert_false(migd_transport_config_check(&cfg, tcp, TRUE, &error));
	if (strstr(error->message, "key_file '") == NULL ||
	    strstr(error->message, "a FIFO, but a regular file is required") == NULL)
		fail_msg("FIFO key: '%s'", error->message);
	g_clear_error(&error);

	cfg = server_config();
	cfg.cert_file = "/dev/zero";
	assert_false(migd_transport_config_check(&cfg, tcp, TRUE, &error));
	/* the path once, after the key */
	assert_string_equal(error->message,
			    "cert_file '/dev/zero': a character device, but a regular file is "
			    "required");
	assert_true(g_get_monotonic_time() - start < 2 * G_USEC_PER_SEC);
	assert_int_equal(g_unlink(fifo), 0);
	assert_int_equal(g_unlink(big), 0);
}

/* ---- timeouts and cancellation ---- */

static void
test_timeout_server(void **state)
{
	MigdTransportConfig scfg = server_config();
	ServerState st;
	gint64 start = 0;
	g_autoptr(MigdTransportListener) listener = NULL;
	g_autoptr(GSocketConnection) silent = NULL;

	SKIP_WITHOUT_TLS();
	server_state_init(&st);
	scfg.handshake_timeout_ms = 200;
	listener = listen_ok("tcp:127.0.0.1:0", &scfg, &st);
	start = g_get_monotonic_time();
	silent = raw_connect(listener_port(listener)); /* and never says anything */
	WAIT_FOR(st.refused == 1);
	assert_true(g_get_monotonic_time() - start >= 150 * 1000);
	assert_true(g_error_matches(st.refused_error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT));
	assert_int_equal(st.streams->len, 0);
	server_state_clear(&st);
}

/* a socket that listens but never accepts: connect() succeeds, the handshake never starts */
static GSocket *
silent_listener(guint16 *port)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	GSocket *socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);

	assert_non_null(socket);
	assert_true(g_socket_bind(socket, any, TRUE, &error));
	assert_true(g_socket_listen(socket, &error));
	bound = g_socket_get_local_address(socket, &error);
	*port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	return socket;
}

static void
test_timeout_client(void **state)
{
	MigdTransportConfig ccfg = client_config();
	ConnectResult cr = {0};
	guint16 port = 0;
	gint64 start = 0;
	g_autoptr(GSocket) silent = silent_listener(&port);
	g_autofree gchar *address = g_strdup_printf("tcp:127.0.0.1:%u", port);

	SKIP_WITHOUT_TLS();
	ccfg.handshake_timeout_ms = 200;
	start = g_get_monotonic_time();
	migd_transport_connect_async(address, &ccfg, NULL, connect_cb, &cr);
	WAIT_FOR(cr.done);
	assert_true(g_get_monotonic_time() - start >= 150 * 1000);
	assert_null(cr.stream);
	if (!g_error_matches(cr.error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT))
		fail_msg("expected a timeout, got: %s", cr.error->message);
	connect_result_clear(&cr);
}

static void
test_cancel(void **state)
{
	MigdTransportConfig ccfg = client_config();
	ConnectResult cr = {0};
	guint16 port = 0;
	g_autoptr(GSocket) silent = silent_listener(&port);
	g_autofree gchar *address = g_strdup_printf("tcp:127.0.0.1:%u", port);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();

	SKIP_WITHOUT_TLS();
	migd_transport_connect_async(address, &ccfg, cancellable, connect_cb, &cr);
	migd_test_spin_ms(50);
	g_cancellable_cancel(cancellable);
	WAIT_FOR(cr.done);
	assert_true(g_error_matches(cr.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
	connect_result_clear(&cr);
}

static void
test_close_aborts_handshakes(void **state)
{
	MigdTransportConfig scfg = server_config();
	ServerState st;
	MigdTransportListener *listener = NULL;
	g_autoptr(GSocketConnection) silent = NULL;
	g_autoptr(GError) error = NULL;

	SKIP_WITHOUT_TLS();
	server_state_init(&st);
	listener = listen_ok("tcp:127.0.0.1:0", &scfg, &st);
	silent = raw_connect(listener_port(listener));
	migd_test_spin_ms(50); /* the handshake is under way */
	g_object_unref(listener);
	migd_test_spin_ms(100);
	assert_int_equal(st.streams->len, 0);
	assert_int_equal(st.refused, 0); /* nobody left to tell */
	server_state_clear(&st);
}

/* ---- port 0 and adopted fds (socket activation) ---- */

static void
test_listen_port0(void **state)
{
	MigdTransportConfig plain = {.plain = TRUE, .insecure_plain_tcp = TRUE};
	ServerState st;
	g_autoptr(MigdTransportListener) a = NULL;
	g_autoptr(MigdTransportListener) b = NULL;

	server_state_init(&st);
	a = listen_ok("tcp:127.0.0.1:0", &plain, &st);
	b = listen_ok("tcp:[::1]:0", &plain, &st);
	assert_int_not_equal(listener_port(a), 0);
	assert_int_not_equal(listener_port(b), 0);
	assert_true(g_str_has_prefix(migd_transport_listener_get_address(a), "tcp:127.0.0.1:"));
	assert_true(g_str_has_prefix(migd_transport_listener_get_address(b), "tcp:[::1]:"));
	server_state_clear(&st);
}

static gint
tcp_listening_fd(guint16 *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	gint fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
test_listen_fd(void **state)
{
	MigdTransportConfig scfg = server_config();
	MigdTransportConfig ccfg = client_config();
	MigdTransportConfig plain = {.plain = TRUE};
	ServerState st;
	ConnectResult cr = {0};
	guint16 port = 0;
	gint fd = tcp_listening_fd(&port);
	gint not_listening = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	gint dgram = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	gint pipefd[2] = {-1, -1};
	g_autofree gchar *expected = g_strdup_printf("tcp:127.0.0.1:%u", port);
	g_autofree gchar *path = g_build_filename(pki->dir, "activated.sock", NULL);
	g_autoptr(MigdTransportListener) listener = NULL;
	g_autoptr(GError) error = NULL;

	SKIP_WITHOUT_TLS();
	server_state_init(&st);
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);

	/* refused fds stay open and the caller's */
	{
		const gint bad[] = {-1, pipefd[0], not_listening, dgram};
		for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
			listener = migd_transport_listen_fd(bad[i], &scfg, accept_cb, &st, &error);
			assert_null(listener);
			assert_true(
			    g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
			g_clear_error(&error);
			if (bad[i] >= 0)
				assert_true(fcntl(bad[i], F_GETFD) >= 0);
		}
	}
	close(pipefd[0]);
	close(pipefd[1]);
	close(not_listening);
	close(dgram);

	listener = migd_transport_listen_fd(fd, &scfg, accept_cb, &st, &error);
	if (listener == NULL)
		fail_msg("listen_fd: %s", error->message);
	g_signal_connect(listener, "peer-refused", G_CALLBACK(refused_cb), &st);
	assert_string_equal(migd_transport_listener_get_address(listener), expected);
	migd_transport_connect_async(expected, &ccfg, NULL, connect_cb, &cr);
	WAIT_FOR(cr.done && st.streams->len == 1);
	assert_null(cr.error);
	assert_string_equal(g_ptr_array_index(st.identities, 0), "migd-client");
	roundtrip(cr.stream, g_ptr_array_index(st.streams, 0));
	connect_result_clear(&cr);
	g_clear_object(&listener); /* closes fd */
	assert_true(fcntl(fd, F_GETFD) < 0);

	/* a UNIX one, plain; the file belongs to whoever bound it (systemd), so it stays */
	{
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		g_autofree gchar *address = g_strdup_printf("unix:%s", path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
		assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
		assert_int_equal(listen(fd, 8), 0);
		listener = migd_transport_listen_fd(fd, &plain, accept_cb, &st, &error);
		assert_non_null(listener);
		assert_string_equal(migd_transport_listener_get_address(listener), address);
		migd_transport_connect_async(address, &plain, NULL, connect_cb, &cr);
		WAIT_FOR(cr.done && st.streams->len == 2);
		assert_null(cr.error);
		roundtrip(cr.stream, g_ptr_array_index(st.streams, 1));
		connect_result_clear(&cr);
		g_clear_object(&listener);
		assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
		g_unlink(path);
	}

	server_state_clear(&st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_listen_stale_socket),
	    cmocka_unit_test(test_listen_backlog),
	    cmocka_unit_test(test_pending_handshakes_capped),
	    cmocka_unit_test(test_bad_addresses),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_config_files_not_regular),
	    cmocka_unit_test(test_timeout_server),
	    cmocka_unit_test(test_timeout_client),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_close_aborts_handshakes),
	    cmocka_unit_test(test_listen_port0),
	    cmocka_unit_test(test_listen_fd),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
