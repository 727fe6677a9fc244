/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Transport address syntax: what parses, what it means, and that every refusal names the bad
 * part.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <gio/gunixsocketaddress.h>

#include "migd-error.h"
#include "migd-transport.h"

typedef struct {
	const gchar *address;
	MigdTransportAddressKind kind;
	const gchar *host_or_path;
	guint16 port;
	const gchar *canonical;
	gboolean local;
} GoodAddress;

static const GoodAddress good_addresses[] = {
    {"tcp:127.0.0.1:4444", MIGD_TRANSPORT_ADDRESS_TCP, "127.0.0.1", 4444, NULL, TRUE},
    {"tcp:127.1.2.3:1", MIGD_TRANSPORT_ADDRESS_TCP, "127.1.2.3", 1, NULL, TRUE},
    {"tcp:localhost:65535", MIGD_TRANSPORT_ADDRESS_TCP, "localhost", 65535, NULL, TRUE},
    {"tcp:[::1]:0", MIGD_TRANSPORT_ADDRESS_TCP, "::1", 0, NULL, TRUE},
    {"tcp:[fe80::1]:80", MIGD_TRANSPORT_ADDRESS_TCP, "fe80::1", 80, NULL, FALSE},
    {"tcp:[::]:4444", MIGD_TRANSPORT_ADDRESS_TCP, "::", 4444, NULL, FALSE},
    {"tcp:0.0.0.0:4444", MIGD_TRANSPORT_ADDRESS_TCP, "0.0.0.0", 4444, NULL, FALSE},
    {"tcp:192.0.2.7:00080", MIGD_TRANSPORT_ADDRESS_TCP, "192.0.2.7", 80, "tcp:192.0.2.7:80", FALSE},
    {"tcp:dst-host.example.org:4444", MIGD_TRANSPORT_ADDRESS_TCP, "dst-host.example.org", 4444,
     NULL, FALSE},
    {"tcp:node-1.:4444", MIGD_TRANSPORT_ADDRESS_TCP, "node-1.", 4444, NULL, FALSE},
    {"unix:/run/vfio-migd/migration.sock", MIGD_TRANSPORT_ADDRESS_UNIX,
     "/run/vfio-migd/migration.sock", 0, NULL, TRUE},
    {"unix:@vfio-migd", MIGD_TRANSPORT_ADDRESS_UNIX_ABSTRACT, "vfio-migd", 0, NULL, TRUE},
};

static void
test_address_good(void **state)
{
	for (guint i = 0; i < G_N_ELEMENTS(good_addresses); i++) {
		const GoodAddress *g = &good_addresses[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(MigdTransportAddress) addr =
		    migd_transport_address_parse(g->address, &error);
		g_autofree gchar *str = NULL;

		if (addr == NULL)
			fail_msg("%s: %s", g->address, error->message);
		assert_int_equal(addr->kind, g->kind);
		if (g->kind == MIGD_TRANSPORT_ADDRESS_TCP) {
			assert_string_equal(addr->host, g->host_or_path);
			assert_int_equal(addr->port, g->port);
		} else {
			assert_string_equal(addr->path, g->host_or_path);
		}
		str = migd_transport_address_to_string(addr);
		assert_string_equal(str, g->canonical != NULL ? g->canonical : g->address);
		assert_int_equal(migd_transport_address_is_local(addr), g->local);
	}
}

typedef struct {
	const gchar *address;
	const gchar *names; /* the part the message must quote */
} BadAddress;

static const BadAddress bad_addresses[] = {
    {"", "empty"},
    {"127.0.0.1:4444", "'127.0.0.1'"},
    {"udp:127.0.0.1:4444", "'udp'"},
    {"TCP:127.0.0.1:4444", "'TCP'"},
    {"tcp:127.0.0.1", "':PORT'"},
    {"tcp:127.0.0.1:", "port ''"},
    {"tcp:127.0.0.1:65536", "'65536'"},
    {"tcp:127.0.0.1:-1", "'-1'"},
    {"tcp:127.0.0.1:+80", "'+80'"},
    {"tcp:127.0.0.1: 80", "' 80'"},
    {"tcp:127.0.0.1:80 ", "'80 '"},
    {"tcp:127.0.0.1:http", "'http'"},
    {"tcp:127.0.0.1:4444444", "'4444444'"},
    {"tcp::4444", "missing host"},
    {"tcp:::1:4444", "brackets"},
    {"tcp:[::1:4444", "']'"},
    {"tcp:[::1]4444", "':PORT'"},
    {"tcp:[::1]", "':PORT'"},
    {"tcp:[127.0.0.1]:80", "'[127.0.0.1]'"},
    {"tcp:[nonsense]:80", "'[nonsense]'"},
    {"tcp:[]:80", "'[]'"},
    {"tcp:bad_host:80", "'bad_host'"},
    {"tcp:-bad.example:80", "'-bad.example'"},
    {"tcp:a..b:80", "'a..b'"},
    {"tcp:h\xc3\xa9te:80", "invalid host"},
    {"tcp:*:80", "'*'"},
    {"unix:", "socket path ''"},
    {"unix:relative/path.sock", "'relative/path.sock'"},
    {"unix:@", "'@'"},
    {"unix:/" /* 108 bytes: no room for the NUL */
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaa",
     "longer than 106"},
};

static void
test_address_bad(void **state)
{
	for (guint i = 0; i < G_N_ELEMENTS(bad_addresses); i++) {
		const BadAddress *b = &bad_addresses[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(MigdTransportAddress) addr =
		    migd_transport_address_parse(b->address, &error);

		if (addr != NULL)
			fail_msg("'%s' parsed", b->address);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		if (strstr(error->message, b->names) == NULL)
			fail_msg("'%s': message '%s' lacks %s", b->address, error->message,
				 b->names);
	}
}

static void
test_address_gio(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdTransportAddress) v6 = migd_transport_address_parse("tcp:[::1]:80", NULL);
	g_autoptr(MigdTransportAddress) name =
	    migd_transport_address_parse("tcp:localhost:80", NULL);
	g_autoptr(MigdTransportAddress) path =
	    migd_transport_address_parse("unix:/run/x.sock", NULL);
	g_autoptr(MigdTransportAddress) abs = migd_transport_address_parse("unix:@x", NULL);
	g_autoptr(GSocketAddress) sa = NULL;
	g_autoptr(GSocketConnectable) conn = NULL;
	g_autofree gchar *back = NULL;

	/* bind addresses: IP literals only */
	sa = migd_transport_address_to_socket_address(v6, &error);
	assert_non_null(sa);
	assert_int_equal(g_socket_address_get_family(sa), G_SOCKET_FAMILY_IPV6);
	back = migd_transport_socket_address_to_string(sa);
	assert_string_equal(back, "tcp:[::1]:80");
	g_clear_object(&sa);
	g_clear_pointer(&back, g_free);

	sa = migd_transport_address_to_socket_address(name, &error);
	assert_null(sa);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "'localhost'"));
	g_clear_error(&error);

	conn = migd_transport_address_to_connectable(name);
	assert_true(G_IS_NETWORK_ADDRESS(conn));
	assert_string_equal(g_network_address_get_hostname(G_NETWORK_ADDRESS(conn)), "localhost");
	assert_int_equal(g_network_address_get_port(G_NETWORK_ADDRESS(conn)), 80);
	g_clear_object(&conn);

	sa = migd_transport_address_to_socket_address(path, &error);
	assert_true(G_IS_UNIX_SOCKET_ADDRESS(sa));
	back = migd_transport_socket_address_to_string(sa);
	assert_string_equal(back, "unix:/run/x.sock");
	g_clear_object(&sa);
	g_clear_pointer(&back, g_free);

	sa = migd_transport_address_to_socket_address(abs, &error);
	assert_int_equal(g_unix_socket_address_get_address_type(G_UNIX_SOCKET_ADDRESS(sa)),
			 G_UNIX_SOCKET_ADDRESS_ABSTRACT);
	back = migd_transport_socket_address_to_string(sa);
	assert_string_equal(back, "unix:@x");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_address_good),
	    cmocka_unit_test(test_address_bad),
	    cmocka_unit_test(test_address_gio),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
