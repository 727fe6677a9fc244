/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the transport tests share (transport-test-util.h).
 */
#include "transport-test-util.h"

MigdTestPki *pki = NULL;

/* ---- server and client state ---- */

void
server_state_init(ServerState *st)
{
	st->streams = g_ptr_array_new_with_free_func(g_object_unref);
	st->identities = g_ptr_array_new_with_free_func(g_free);
	st->refused = 0;
	st->refused_error = NULL;
}

void
server_state_clear(ServerState *st)
{
	g_clear_pointer(&st->streams, g_ptr_array_unref);
	g_clear_pointer(&st->identities, g_ptr_array_unref);
	g_clear_error(&st->refused_error);
}

void
accept_cb(MigdTransportListener *listener, GIOStream *stream, const gchar *peer_identity,
	  gpointer user_data)
{
	ServerState *st = user_data;
	g_ptr_array_add(st->streams, g_object_ref(stream));
	g_ptr_array_add(st->identities, g_strdup(peer_identity));
}

void
refused_cb(MigdTransportListener *listener, const gchar *peer, const GError *error,
	   gpointer user_data)
{
	ServerState *st = user_data;
	st->refused++;
	g_clear_error(&st->refused_error);
	st->refused_error = g_error_copy(error);
}

MigdTransportListener *
listen_ok(const gchar *address, const MigdTransportConfig *config, ServerState *st)
{
	g_autoptr(GError) error = NULL;
	MigdTransportListener *listener =
	    migd_transport_listen(address, config, accept_cb, st, &error);
	if (listener == NULL)
		fail_msg("listen on %s: %s", address, error->message);
	g_signal_connect(listener, "peer-refused", G_CALLBACK(refused_cb), st);
	return listener;
}

void
connect_result_clear(ConnectResult *cr)
{
	g_clear_object(&cr->stream);
	g_clear_pointer(&cr->identity, g_free);
	g_clear_error(&cr->error);
	cr->done = FALSE;
}

void
connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	ConnectResult *cr = user_data;
	cr->stream = migd_transport_connect_finish(res, &cr->identity, &cr->error);
	cr->done = TRUE;
}

MigdTransportConfig
server_config(void)
{
	MigdTransportConfig config = {
	    .cert_file = pki->server_crt,
	    .key_file = pki->server_key,
	    .ca_file = pki->ca_crt,
	};
	return config;
}

MigdTransportConfig
client_config(void)
{
	MigdTransportConfig config = {
	    .cert_file = pki->client_crt,
	    .key_file = pki->client_key,
	    .ca_file = pki->ca_crt,
	};
	return config;
}

guint16
listener_port(MigdTransportListener *listener)
{
	g_autoptr(MigdTransportAddress) addr =
	    migd_transport_address_parse(migd_transport_listener_get_address(listener), NULL);
	assert_non_null(addr);
	assert_int_equal(addr->kind, MIGD_TRANSPORT_ADDRESS_TCP);
	return addr->port;
}

/* ---- data ---- */

static void
transfer_write_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Transfer *t = user_data;
	g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &t->write_error);
	t->write_done = TRUE;
}

static void
transfer_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Transfer *t = user_data;
	g_input_stream_read_all_finish(G_INPUT_STREAM(source), res, &t->read_bytes, &t->read_error);
	t->read_done = TRUE;
}

void
transfer(GIOStream *from, GIOStream *to, gsize size, guint8 seed)
{
	g_autofree guint8 *out = g_malloc(size);
	g_autofree guint8 *in = g_malloc0(size);
	Transfer t = {0};

	for (gsize i = 0; i < size; i++)
		out[i] = (guint8)(i * 31 + seed + (i >> 12));
	g_output_stream_write_all_async(g_io_stream_get_output_stream(from), out, size,
					G_PRIORITY_DEFAULT, NULL, transfer_write_cb, &t);
	g_input_stream_read_all_async(g_io_stream_get_input_stream(to), in, size,
				      G_PRIORITY_DEFAULT, NULL, transfer_read_cb, &t);
	WAIT_FOR(t.write_done && t.read_done);
	if (t.write_error != NULL)
		fail_msg("write: %s", t.write_error->message);
	if (t.read_error != NULL)
		fail_msg("read: %s", t.read_error->message);
	assert_int_equal(t.read_bytes, size);
	assert_memory_equal(out, in, size);
}

void
roundtrip(GIOStream *client, GIOStream *server)
{
	transfer(client, server, 1024 * 1024 + 17, 1);
	transfer(server, client, 4096, 2);
}

/* a plain TCP connection to @port on 127.0.0.1, made without the transport */
GSocketConnection *
raw_connect(guint16 port)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(lo, port);
	g_autoptr(GError) error = NULL;
	GSocketConnection *conn = NULL;

	g_socket_client_set_enable_proxy(client, FALSE);
	/* blocking is fine: the kernel completes it from the listen backlog */
	conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(sa), NULL, &error);
	if (conn == NULL)
		fail_msg("raw connect: %s", error->message);
	return conn;
}

/* ---- the group ---- */

int
group_setup(void **state)
{
	g_autoptr(GError) error = NULL;

	pki = migd_test_pki_new(&error);
	if (pki == NULL) {
		print_error("cannot generate test certificates: %s\n", error->message);
		return -1;
	}
	return 0;
}

int
group_teardown(void **state)
{
	g_clear_pointer(&pki, migd_test_pki_free);
	return 0;
}
