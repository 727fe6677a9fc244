/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Transport sessions end to end on loopback: mutual TLS over IPv4, IPv6 and UNIX sockets, every
 * way a peer can fail authentication (and that the accept callback never sees it), the reason a
 * source is given when its peer hangs up early, and plain mode rules. Listeners, configuration
 * and deadlines are test-transport-listen.c. Certificates are generated per run by
 * migd-test-pki.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "migd-connection.h"
#include "migd-error.h"
#include "migd-read-buffer.h"
#include "migd-transport.h"
#include "transport-test-util.h"

static GSocket *
stream_socket(GIOStream *stream)
{
	g_autoptr(GIOStream) base = NULL;

	if (G_IS_SOCKET_CONNECTION(stream))
		return g_socket_connection_get_socket(G_SOCKET_CONNECTION(stream));
	assert_true(G_IS_TLS_CONNECTION(stream));
	g_object_get(stream, "base-io-stream", &base, NULL);
	/* TLS sits on the socket's read buffer (migd-read-buffer.h), which keeps the socket */
	assert_non_null(migd_read_buffer_stream_get_base(base));
	/* the TLS connection keeps base alive, and base the socket */
	return g_socket_connection_get_socket(
	    G_SOCKET_CONNECTION(migd_read_buffer_stream_get_base(base)));
}

static void
assert_nodelay(GIOStream *stream)
{
	gint value = 0;
	g_autoptr(GError) error = NULL;
	assert_true(
	    g_socket_get_option(stream_socket(stream), IPPROTO_TCP, TCP_NODELAY, &value, &error));
	assert_int_not_equal(value, 0);
}

/* a full mutual-TLS session: listen, connect, check both identities, move data both ways */
static void
tls_session(const gchar *listen_address, const gchar *connect_host, const gchar *peer_name)
{
	MigdTransportConfig scfg = server_config();
	MigdTransportConfig ccfg = client_config();
	ServerState st;
	ConnectResult cr = {0};
	g_autoptr(MigdTransportListener) listener = NULL;
	g_autofree gchar *target = NULL;
	g_autoptr(MigdTransportAddress) bound = NULL;

	server_state_init(&st);
	listener = listen_ok(listen_address, &scfg, &st);
	bound = migd_transport_address_parse(migd_transport_listener_get_address(listener), NULL);
	assert_non_null(bound);
	if (bound->kind == MIGD_TRANSPORT_ADDRESS_TCP) {
		assert_int_not_equal(bound->port, 0);
		target = connect_host != NULL
			     ? g_strdup_printf("tcp:%s:%u", connect_host, bound->port)
			     : g_strdup(migd_transport_listener_get_address(listener));
	} else {
		target = g_strdup(migd_transport_listener_get_address(listener));
	}

	ccfg.peer_name = (gchar *)peer_name;
	migd_transport_connect_async(target, &ccfg, NULL, connect_cb, &cr);
	WAIT_FOR(cr.done && st.streams->len == 1);
	if (cr.error != NULL)
		fail_msg("connect to %s: %s", target, cr.error->message);
	assert_int_equal(st.refused, 0);
	assert_true(G_IS_TLS_CONNECTION(cr.stream));
	assert_true(G_IS_TLS_CONNECTION(g_ptr_array_index(st.streams, 0)));
	assert_string_equal(cr.identity, "migd-server");
	assert_string_equal(g_ptr_array_index(st.identities, 0), "migd-client");
	roundtrip(cr.stream, g_ptr_array_index(st.streams, 0));
	if (bound->kind == MIGD_TRANSPORT_ADDRESS_TCP) {
		assert_nodelay(cr.stream);
		assert_nodelay(g_ptr_array_index(st.streams, 0));
	}

	migd_transport_listener_close(listener);
	connect_result_clear(&cr);
	server_state_clear(&st);
}

/* ---- mutual TLS ---- */

static void
test_tls_ipv4(void **state)
{
	SKIP_WITHOUT_TLS();
	tls_session("tcp:127.0.0.1:0", NULL, NULL);
}

static void
test_tls_ipv6(void **state)
{
	SKIP_WITHOUT_TLS();
	tls_session("tcp:[::1]:0", NULL, NULL);
}

static void
test_tls_localhost(void **state)
{
	SKIP_WITHOUT_TLS();
	/* the host of the address ("localhost") is the identity checked against DNS:localhost */
	tls_session("tcp:127.0.0.1:0", "localhost", NULL);
}

static void
test_tls_unix(void **state)
{
	g_autofree gchar *path = NULL;
	g_autofree gchar *address = NULL;

	SKIP_WITHOUT_TLS();
	path = g_build_filename(pki->dir, "migration.sock", NULL);
	address = g_strdup_printf("unix:%s", path);
	tls_session(address, NULL, "localhost");
	/* the listener removes the socket file it created */
	assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

static void
test_tls_unix_abstract(void **state)
{
	g_autofree gchar *address = NULL;

	SKIP_WITHOUT_TLS();
	address = g_strdup_printf("unix:@migd-test-%d", (gint)getpid());
	tls_session(address, NULL, "localhost");
}

typedef struct {
	gboolean done;
	GError *error;
} HandshakeResult;

static void
raw_handshake_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	HandshakeResult *hr = user_data;
	g_tls_connection_handshake_finish(G_TLS_CONNECTION(source), res, &hr->error);
	hr->done = TRUE;
}

static gboolean
accept_any_cb(GTlsConnection *conn, GTlsCertificate *peer_cert, GTlsCertificateFlags errors,
	      gpointer user_data)
{
	return TRUE;
}

typedef struct {
	gboolean done;
	gssize n;
	GError *error;
} ReadResult;

static void
raw_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	ReadResult *rr = user_data;
	rr->n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &rr->error);
	rr->done = TRUE;
}

static void
test_tls_client_without_certificate(void **state)
{
	MigdTransportConfig scfg = server_config();
	ServerState st;
	HandshakeResult hr = {0};
	ReadResult rr = {0};
	guint8 buf[16];
	g_autoptr(MigdTransportListener) listener = NULL;
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(GIOStream) tls = NULL;
	g_autoptr(GError) error = NULL;

	SKIP_WITHOUT_TLS();
	server_state_init(&st);
	listener = listen_ok("tcp:127.0.0.1:0", &scfg, &st);
	conn = raw_connect(listener_port(listener));
	tls = g_tls_client_connection_new(G_IO_STREAM(conn), NULL, &error);
	assert_non_null(tls);
	g_tls_connection_set_database(G_TLS_CONNECTION(tls), NULL);
	g_signal_connect(tls, "accept-certificate", G_CALLBACK(accept_any_cb), NULL);
	g_tls_connection_handshake_async(G_TLS_CONNECTION(tls), G_PRIORITY_DEFAULT, NULL,
					 raw_handshake_cb, &hr);
	WAIT_FOR(hr.done && st.refused == 1);
	/* with TLS 1.3 the client may finish first; its first read then sees the refusal */
	if (hr.error == NULL) {
		g_input_stream_read_async(g_io_stream_get_input_stream(tls), buf, sizeof(buf),
					  G_PRIORITY_DEFAULT, NULL, raw_read_cb, &rr);
		WAIT_FOR(rr.done);
		assert_true(rr.n <= 0);
		g_clear_error(&rr.error);
	}
	migd_test_spin_ms(100);
	assert_int_equal(st.streams->len, 0); /* never handed to the caller */
	assert_int_equal(st.refused, 1);
	assert_true(st.refused_error->domain == G_TLS_ERROR);
	g_clear_error(&hr.error);
	server_state_clear(&st);
}

static void
test_tls_client_other_ca(void **state)
{
	MigdTransportConfig scfg = server_config();
	MigdTransportConfig ccfg = client_config();
	ServerState st;
	ConnectResult cr = {0};
	ReadResult rr = {0};
	guint8 buf[16];
	g_autoptr(MigdTransportListener) listener = NULL;

	SKIP_WITHOUT_TLS();
	server_state_init(&st);
	listener = listen_ok("tcp:127.0.0.1:0", &scfg, &st);
	/* trusts the right CA, but its own certificate comes from another one */
	ccfg.cert_file = pki->other_client_crt;
	ccfg.key_file = pki->other_client_key;
	migd_transport_connect_async(migd_transport_listener_get_address(listener), &ccfg, NULL,
				     connect_cb, &cr);
	WAIT_FOR(cr.done && st.refused == 1);
	if (cr.stream != NULL) {
		g_input_stream_read_async(g_io_stream_get_input_stream(cr.stream), buf, sizeof(buf),
					  G_PRIORITY_DEFAULT, NULL, raw_read_cb, &rr);
		WAIT_FOR(rr.done);
		assert_true(rr.n <= 0);
		g_clear_error(&rr.error);
	}
	migd_test_spin_ms(100);
	assert_int_equal(st.streams->len, 0);
	assert_true(g_error_matches(st.refused_error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE));
	connect_result_clear(&cr);
	server_state_clear(&st);
}

/* ---- a peer that hangs up before its first message: the source is told why it may have ---- */

typedef struct {
	gboolean closed;
	GError *error;
} ClosedResult;

static void
early_closed_cb(MigdConnection *conn, const GError *error, gpointer user_data)
{
	ClosedResult *res = user_data;
	res->closed = TRUE;
	res->error = error != NULL ? g_error_copy(error) : NULL;
}

/* runs a source connection over @stream that says Hello; returns how it ended */
static gchar *
early_close_message(GIOStream *stream, const gchar *identity)
{
	static const MigdConnectionCallbacks callbacks = {.closed = early_closed_cb};
	Migd__Wire__Hello hello = MIGD__WIRE__HELLO__INIT;
	MigdWireFrame frame;
	ClosedResult res = {0};
	g_autoptr(MigdConnection) conn =
	    migd_connection_new(stream, MIGD_WIRE_ROLE_SOURCE, identity, &callbacks, &res);
	g_autoptr(GError) error = NULL;
	gchar *message;

	hello.version_min = MIGD_WIRE_PROTOCOL_VERSION_MIN;
	hello.version_max = MIGD_WIRE_PROTOCOL_VERSION_MAX;
	hello.host_identity = (gchar *)"early-close-test";
	hello.session_id = (gchar *)"early-close-1";
	hello.device_count = 1;
	migd_wire_frame_init(&frame, MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO, &hello);
	migd_connection_start(conn);
	if (!migd_connection_send(conn, &frame, &error))
		fail_msg("send Hello: %s", error->message);
	WAIT_FOR(res.closed);
	assert_non_null(res.error);
	message = g_strdup(res.error->message);
	g_error_free(res.error);
	return message;
}

static void
test_early_close_explained(void **state)
{
	MigdTransportConfig scfg = server_config();
	MigdTransportConfig ccfg = client_config();
	MigdTransportConfig plain = {.plain = TRUE, .insecure_plain_tcp = TRUE};
	ServerState st;
	ConnectResult cr = {0};
	g_autoptr(MigdTransportListener) listener = NULL;
	g_autofree gchar *message = NULL;

	SKIP_WITHOUT_TLS();
	server_state_init(&st);
	listener = listen_ok("tcp:127.0.0.1:0", &scfg, &st);

	/* a plain source at a TLS destination: the listener drops it after its first bytes */
	migd_transport_connect_async(migd_transport_listener_get_address(listener), &plain, NULL,
				     connect_cb, &cr);
	WAIT_FOR(cr.done);
	assert_non_null(cr.stream);
	message = early_close_message(cr.stream, cr.identity);
	g_test_message("plain source, TLS destination: %s", message);
	assert_non_null(strstr(message, "before its first message"));
	assert_non_null(strstr(message, "if it expects TLS, it hangs up on a plain peer"));
	assert_int_equal(st.refused, 1);
	connect_result_clear(&cr);
	g_clear_pointer(&message, g_free);

	/* a certificate the destination refuses: with TLS 1.3 the handshake ends well here */
	ccfg.cert_file = pki->other_client_crt;
	ccfg.key_file = pki->other_client_key;
	migd_transport_connect_async(migd_transport_listener_get_address(listener), &ccfg, NULL,
				     connect_cb, &cr);
	WAIT_FOR(cr.done && st.refused == 2);
	if (cr.stream == NULL) {
		/* TLS 1.2: the handshake itself failed, which the transport explains */
		g_test_message("refused certificate at the handshake: %s", cr.error->message);
	} else {
		message = early_close_message(cr.stream, cr.identity);
		g_test_message("refused certificate after the handshake: %s", message);
		assert_non_null(strstr(message, "did it refuse our certificate?"));
	}
	connect_result_clear(&cr);
	server_state_clear(&st);
}

static void
test_tls_server_untrusted(void **state)
{
	MigdTransportConfig scfg = server_config();
	MigdTransportConfig ccfg = client_config();
	ServerState st;
	ConnectResult cr = {0};
	g_autoptr(MigdTransportListener) listener = NULL;

	SKIP_WITHOUT_TLS();
	server_state_init(&st);
	/* the server trusts our client, but its certificate comes from another CA */
	scfg.cert_file = pki->other_server_crt;
	scfg.key_file = pki->other_server_key;
	listener = listen_ok("tcp:127.0.0.1:0", &scfg, &st);
	migd_transport_connect_async(migd_transport_listener_get_address(listener), &ccfg, NULL,
				     connect_cb, &cr);
	WAIT_FOR(cr.done && st.refused == 1);
	assert_null(cr.stream);
	assert_true(g_error_matches(cr.error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE));
	/* the operator learns which setting is wrong: the CA, not the name */
	assert_non_null(strstr(cr.error->message, "is not signed by the CA in ca_file"));
	assert_non_null(strstr(cr.error->message, pki->ca_crt));
	assert_null(strstr(cr.error->message, "does not name"));
	assert_int_equal(st.streams->len, 0);
	connect_result_clear(&cr);
	server_state_clear(&st);
}

static void
test_tls_wrong_server_identity(void **state)
{
	MigdTransportConfig scfg = server_config();
	MigdTransportConfig ccfg = client_config();
	ServerState st;
	ConnectResult cr = {0};
	g_autoptr(MigdTransportListener) listener = NULL;

	SKIP_WITHOUT_TLS();
	server_state_init(&st);
	listener = listen_ok("tcp:127.0.0.1:0", &scfg, &st);
	ccfg.peer_name = "migd-dst.example.org";
	migd_transport_connect_async(migd_transport_listener_get_address(listener), &ccfg, NULL,
				     connect_cb, &cr);
	WAIT_FOR(cr.done && st.refused == 1);
	assert_null(cr.stream);
	assert_true(g_error_matches(cr.error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE));
	/* a valid certificate for another name: the name is wrong, not the CA */
	assert_non_null(strstr(cr.error->message, "does not name 'migd-dst.example.org'"));
	assert_non_null(strstr(cr.error->message, "migd-server"));
	assert_null(strstr(cr.error->message, "not signed by the CA"));
	connect_result_clear(&cr);

	/* an IP identity is checked against the IP subjectAltNames */
	ccfg.peer_name = "127.0.0.2";
	migd_transport_connect_async(migd_transport_listener_get_address(listener), &ccfg, NULL,
				     connect_cb, &cr);
	WAIT_FOR(cr.done && st.refused == 2);
	assert_null(cr.stream);
	assert_true(g_error_matches(cr.error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE));
	assert_non_null(strstr(cr.error->message, "does not name '127.0.0.2'"));
	assert_int_equal(st.streams->len, 0);
	connect_result_clear(&cr);
	server_state_clear(&st);
}

/* ---- plain mode ---- */

static void
test_plain(void **state)
{
	MigdTransportConfig plain = {.plain = TRUE, .insecure_plain_tcp = TRUE};
	MigdTransportConfig scfg = server_config();
	MigdTransportConfig ccfg = client_config();
	ServerState st;
	ConnectResult cr = {0};
	g_autoptr(MigdTransportListener) listener = NULL;
	g_autoptr(MigdTransportListener) tls_listener = NULL;
	g_autofree gchar *expected = NULL;
	g_autofree gchar *path = g_build_filename(pki->dir, "plain.sock", NULL);
	g_autofree gchar *unix_address = g_strdup_printf("unix:%s", path);

	server_state_init(&st);
	listener = listen_ok("tcp:127.0.0.1:0", &plain, &st);
	migd_transport_connect_async(migd_transport_listener_get_address(listener), &plain, NULL,
				     connect_cb, &cr);
	WAIT_FOR(cr.done && st.streams->len == 1);
	assert_null(cr.error);
	assert_false(G_IS_TLS_CONNECTION(cr.stream));
	expected = g_strdup_printf("plain:%s", migd_transport_listener_get_address(listener));
	assert_string_equal(cr.identity, expected);
	assert_true(g_str_has_prefix(g_ptr_array_index(st.identities, 0), "plain:tcp:127.0.0.1:"));
	roundtrip(cr.stream, g_ptr_array_index(st.streams, 0));
	assert_nodelay(cr.stream);
	connect_result_clear(&cr);

	/* a TLS client does not fall back to a plain server */
	SKIP_WITHOUT_TLS();
	migd_transport_connect_async(migd_transport_listener_get_address(listener), &ccfg, NULL,
				     connect_cb, &cr);
	WAIT_FOR(st.streams->len == 2);
	/* the plain server does not speak TLS: it hangs up on the ClientHello */
	g_io_stream_close(g_ptr_array_index(st.streams, 1), NULL, NULL);
	WAIT_FOR(cr.done);
	assert_null(cr.stream);
	assert_non_null(cr.error);
	g_test_message("TLS client, plain server: %s", cr.error->message);
	assert_non_null(strstr(cr.error->message, "speaks plain (no TLS) here but we expect TLS"));
	connect_result_clear(&cr);
	migd_transport_listener_close(listener);
	g_clear_object(&listener);

	/* a TLS server refuses a plain client, which never reaches the accept callback */
	tls_listener = listen_ok("tcp:127.0.0.1:0", &scfg, &st);
	migd_transport_connect_async(migd_transport_listener_get_address(tls_listener), &plain,
				     NULL, connect_cb, &cr);
	WAIT_FOR(cr.done);
	assert_non_null(cr.stream);
	g_output_stream_write_all(g_io_stream_get_output_stream(cr.stream), "MIGD\r\n\r\n", 8, NULL,
				  NULL, NULL);
	WAIT_FOR(st.refused == 1);
	assert_int_equal(st.streams->len, 2);
	g_test_message("plain client, TLS server: %s", st.refused_error->message);
	assert_non_null(strstr(st.refused_error->message, "speaks plain (no TLS) but this "
							  "listener expects TLS"));
	connect_result_clear(&cr);
	migd_transport_listener_close(tls_listener);

	/* plain over UNIX: the peer is named by its credentials */
	listener = listen_ok(unix_address, &plain, &st);
	migd_transport_connect_async(unix_address, &plain, NULL, connect_cb, &cr);
	WAIT_FOR(cr.done && st.streams->len == 3);
	assert_null(cr.error);
	assert_string_equal(cr.identity + strlen("plain:"), unix_address);
	assert_true(g_str_has_prefix(g_ptr_array_index(st.identities, 2), "plain:unix:pid="));
	roundtrip(cr.stream, g_ptr_array_index(st.streams, 2));
	connect_result_clear(&cr);
	server_state_clear(&st);
}

/* a destination that does not listen: the message says so, for UNIX and TCP alike */
static void
test_nobody_listens(void **state)
{
	MigdTransportConfig plain = {.plain = TRUE, .insecure_plain_tcp = TRUE};
	ConnectResult cr = {0};
	g_autofree gchar *path = g_build_filename(pki->dir, "nobody.sock", NULL);
	g_autofree gchar *unix_address = g_strdup_printf("unix:%s", path);
	g_autofree gchar *expected = g_strdup_printf("nobody listens on %s ", unix_address);
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GSocketAddress) any = NULL;
	g_autoptr(GSocketAddress) bound = NULL;
	g_autofree gchar *tcp_address = NULL;
	g_autofree gchar *tcp_expected = NULL;

	migd_transport_connect_async(unix_address, &plain, NULL, connect_cb, &cr);
	WAIT_FOR(cr.done);
	assert_null(cr.stream);
	g_test_message("unix: %s", cr.error->message);
	assert_non_null(strstr(cr.error->message, expected));
	assert_non_null(strstr(cr.error->message, "vfio-migctl listen"));
	connect_result_clear(&cr);

	/* a bound TCP port without listen(): connect() is refused */
	socket = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
			      NULL);
	assert_non_null(socket);
	any = g_inet_socket_address_new_from_string("127.0.0.1", 0);
	assert_true(g_socket_bind(socket, any, FALSE, NULL));
	bound = g_socket_get_local_address(socket, NULL);
	assert_non_null(bound);
	tcp_address = g_strdup_printf("tcp:127.0.0.1:%u",
				      g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
	tcp_expected = g_strdup_printf("nobody listens on %s ", tcp_address);
	migd_transport_connect_async(tcp_address, &plain, NULL, connect_cb, &cr);
	WAIT_FOR(cr.done);
	assert_null(cr.stream);
	g_test_message("tcp: %s", cr.error->message);
	assert_non_null(strstr(cr.error->message, tcp_expected));
	connect_result_clear(&cr);
}

/* plain TCP is refused everywhere, loopback included, unless explicitly insecure */
static void
test_plain_tcp_refused(void **state)
{
	MigdTransportConfig plain = {.plain = TRUE};
	MigdTransportConfig insecure = {.plain = TRUE, .insecure_plain_tcp = TRUE};
	ConnectResult cr = {0};
	ServerState st;
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdTransportListener) listener = NULL;
	g_autoptr(MigdTransportAddress) remote =
	    migd_transport_address_parse("tcp:192.0.2.1:4444", NULL);
	const gchar *listen_refused[] = {"tcp:127.0.0.1:0", "tcp:[::1]:0", "tcp:0.0.0.0:0",
					 "tcp:[::]:0", "tcp:192.0.2.1:0"};

	server_state_init(&st);
	for (guint i = 0; i < G_N_ELEMENTS(listen_refused); i++) {
		listener = migd_transport_listen(listen_refused[i], &plain, accept_cb, &st, &error);
		assert_null(listener);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		/* what was refused, and the ways to get a link */
		assert_non_null(strstr(error->message, listen_refused[i]));
		assert_non_null(strstr(error->message, "insecure-plain-tcp"));
		assert_non_null(strstr(error->message, "unix:PATH"));
		g_clear_error(&error);
	}

	/* refused before any socket exists: no traffic to any address */
	migd_transport_connect_async("tcp:127.0.0.1:4444", &plain, NULL, connect_cb, &cr);
	WAIT_FOR(cr.done);
	assert_true(g_error_matches(cr.error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(cr.error->message, "insecure-plain-tcp"));
	connect_result_clear(&cr);

	/* the explicit opt-in passes the configuration check (checked without connecting) */
	assert_true(migd_transport_config_check(&insecure, remote, FALSE, &error));
	assert_false(migd_transport_config_check(&plain, remote, FALSE, &error));
	g_clear_error(&error);
	server_state_clear(&st);
}

/* a directory anyone may enter and create sockets in, for a peer of another uid */
static gchar *
shared_dir(void)
{
	g_autoptr(GError) error = NULL;
	gchar *dir = g_dir_make_tmp("migd-peer-XXXXXX", &error);
	if (dir == NULL)
		fail_msg("tmpdir: %s", error->message);
	assert_int_equal(g_chmod(dir, 01777), 0);
	return dir;
}

#define NOBODY 65534

/* in a forked child: become NOBODY (exit 10 if that fails), and never outlive the test */
static void
child_become_nobody(void)
{
	alarm(20);
	if (setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(NOBODY, NOBODY, NOBODY) < 0)
		_exit(10);
}

/* child: as uid NOBODY, connects to @path and waits for the server to hang up */
static pid_t
fork_nobody_client(const gchar *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	pid_t pid;

	g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		gchar c;
		gint fd;
		child_become_nobody();
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			_exit(11);
		while (read(fd, &c, 1) > 0)
			;
		_exit(0);
	}
	return pid;
}

/* child: as uid NOBODY, listens on @path, accepts one peer and waits for it to hang up */
static pid_t
fork_nobody_server(const gchar *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	gint ready[2] = {-1, -1};
	gchar c = 0;
	pid_t pid;

	g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		gint fd;
		gint conn;
		child_become_nobody();
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
		    listen(fd, 4) < 0)
			_exit(11);
		if (write(ready[1], "r", 1) != 1)
			_exit(12);
		conn = accept(fd, NULL, NULL);
		while (conn >= 0 && read(conn, &c, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	return pid;
}

static gint
wait_child(pid_t pid)
{
	gint status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* plain UNIX: a peer of another uid is refused, with its uid and pid, unless allowed */
static void
test_plain_unix_peer_uid(void **state)
{
	MigdTransportConfig plain = {.plain = TRUE};
	g_autofree gchar *dir = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *address = NULL;
	g_autofree gchar *pid_str = NULL;
	g_autoptr(MigdTransportListener) listener = NULL;
	g_autoptr(GError) error = NULL;
	ServerState st;
	pid_t pid;

	MIGD_TEST_SKIP_IF(geteuid() != 0, "needs root, for a peer of another uid");
	dir = shared_dir();
	path = g_build_filename(dir, "plain.sock", NULL);
	address = g_strdup_printf("unix:%s", path);
	server_state_init(&st);

	listener = listen_ok(address, &plain, &st);
	assert_int_equal(g_chmod(path, 0777), 0);
	pid = fork_nobody_client(path);
	WAIT_FOR(st.refused == 1);
	assert_int_equal(st.streams->len, 0);
	assert_non_null(strstr(st.refused_error->message, "uid 65534"));
	pid_str = g_strdup_printf("pid %d", (gint)pid);
	assert_non_null(strstr(st.refused_error->message, pid_str));
	assert_non_null(strstr(st.refused_error->message, "allowed-uids"));
	/* refused means hung up on */
	assert_int_equal(wait_child(pid), 0);
	g_clear_object(&listener);

	/* configured: let in */
	assert_true(migd_transport_config_add_allowed_uid(&plain, NOBODY, &error));
	assert_true(migd_transport_config_uid_allowed(&plain, NOBODY));
	assert_true(migd_transport_config_uid_allowed(&plain, 0));
	assert_false(migd_transport_config_uid_allowed(&plain, NOBODY - 1));
	listener = listen_ok(address, &plain, &st);
	assert_int_equal(g_chmod(path, 0777), 0);
	pid = fork_nobody_client(path);
	WAIT_FOR(st.streams->len == 1);
	assert_int_equal(st.refused, 1);
	assert_true(g_str_has_prefix(g_ptr_array_index(st.identities, 0), "plain:unix:pid="));
	g_ptr_array_set_size(st.streams, 0); /* closes: the child sees the end */
	assert_int_equal(wait_child(pid), 0);
	g_clear_object(&listener);
	server_state_clear(&st);
	g_rmdir(dir);
}

/* the source checks the server too: a socket of an untrusted uid could be a decoy */
static void
test_plain_unix_server_uid(void **state)
{
	MigdTransportConfig plain = {.plain = TRUE};
	ConnectResult cr = {0};
	g_autofree gchar *dir = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *address = NULL;
	pid_t pid;

	MIGD_TEST_SKIP_IF(geteuid() != 0, "needs root, for a peer of another uid");
	dir = shared_dir();
	path = g_build_filename(dir, "decoy.sock", NULL);
	address = g_strdup_printf("unix:%s", path);
	pid = fork_nobody_server(path);
	migd_transport_connect_async(address, &plain, NULL, connect_cb, &cr);
	WAIT_FOR(cr.done);
	assert_null(cr.stream);
	assert_true(g_error_matches(cr.error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(cr.error->message, "server uid 65534"));
	connect_result_clear(&cr);
	assert_int_equal(wait_child(pid), 0);

	/* allowed: connects */
	g_unlink(path);
	assert_true(migd_transport_config_add_allowed_uid(&plain, NOBODY, NULL));
	pid = fork_nobody_server(path);
	migd_transport_connect_async(address, &plain, NULL, connect_cb, &cr);
	WAIT_FOR(cr.done);
	assert_null(cr.error);
	connect_result_clear(&cr); /* closes: the child sees the end */
	assert_int_equal(wait_child(pid), 0);
	g_unlink(path);
	g_rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tls_ipv4),
	    cmocka_unit_test(test_tls_ipv6),
	    cmocka_unit_test(test_tls_localhost),
	    cmocka_unit_test(test_tls_unix),
	    cmocka_unit_test(test_tls_unix_abstract),
	    cmocka_unit_test(test_tls_client_without_certificate),
	    cmocka_unit_test(test_tls_client_other_ca),
	    cmocka_unit_test(test_early_close_explained),
	    cmocka_unit_test(test_tls_server_untrusted),
	    cmocka_unit_test(test_tls_wrong_server_identity),
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_nobody_listens),
	    cmocka_unit_test(test_plain_tcp_refused),
	    cmocka_unit_test(test_plain_unix_peer_uid),
	    cmocka_unit_test(test_plain_unix_server_uid),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
