/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Transport addresses: parsing, printing and conversion to GIO objects.
 */
#include "config.h"

#include <string.h>
#include <sys/un.h>

#include <gio/gunixsocketaddress.h>

#include "migd-error.h"
#include "migd-transport.h"

/* sun_path holds 108 bytes: a path needs its NUL, an abstract name its leading NUL */
#define MIGD_UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1)

void
migd_transport_address_free(MigdTransportAddress *self)
{
	if (self == NULL)
		return;
	g_free(self->host);
	g_free(self->path);
	g_free(self);
}

static gboolean
migd_transport_parse_port(const gchar *address, const gchar *str, guint16 *port, GError **error)
{
	guint64 value = 0;

	/* g_ascii_string_to_unsigned() would accept a sign and leading spaces: be strict */
	if (str[0] == '\0' || strspn(str, "0123456789") != strlen(str) || strlen(str) > 5) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "invalid port '%s' in address '%s': expected 0-65535", str, address);
		return FALSE;
	}
	value = g_ascii_strtoull(str, NULL, 10);
	if (value > G_MAXUINT16) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "invalid port '%s' in address '%s': expected 0-65535", str, address);
		return FALSE;
	}
	*port = (guint16)value;
	return TRUE;
}

/* RFC 1123 host names: ASCII letters, digits and '-', dot-separated labels of 1-63 */
static gboolean
migd_transport_hostname_is_valid(const gchar *host)
{
	g_auto(GStrv) labels = NULL;

	if (host[0] == '\0' || strlen(host) > 253)
		return FALSE;
	labels = g_strsplit(host, ".", -1);
	for (guint i = 0; labels[i] != NULL; i++) {
		const gchar *label = labels[i];
		gsize len = strlen(label);

		/* a single trailing dot (FQDN) leaves one empty last label */
		if (len == 0 && labels[i + 1] == NULL && i > 0)
			continue;
		if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-')
			return FALSE;
		for (gsize j = 0; j < len; j++) {
			if (!g_ascii_isalnum(label[j]) && label[j] != '-')
				return FALSE;
		}
	}
	return TRUE;
}

static gboolean
migd_transport_parse_tcp(const gchar *address, const gchar *rest, MigdTransportAddress *self,
			 GError **error)
{
	const gchar *port_str = NULL;
	g_autofree gchar *host = NULL;

	if (rest[0] == '[') {
		const gchar *end = strchr(rest, ']');
		g_autoptr(GInetAddress) inet = NULL;

		if (end == NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "missing ']' after IPv6 address in '%s'", address);
			return FALSE;
		}
		host = g_strndup(rest + 1, end - rest - 1);
		inet = g_inet_address_new_from_string(host);
		if (inet == NULL || g_inet_address_get_family(inet) != G_SOCKET_FAMILY_IPV6) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "invalid IPv6 address '[%s]' in '%s'", host, address);
			return FALSE;
		}
		if (end[1] != ':') {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "missing ':PORT' after '[%s]' in '%s'", host, address);
			return FALSE;
		}
		port_str = end + 2;
	} else {
		const gchar *colon = strrchr(rest, ':');

		if (colon == NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "missing ':PORT' in '%s': expected tcp:HOST:PORT", address);
			return FALSE;
		}
		host = g_strndup(rest, colon - rest);
		if (strchr(host, ':') != NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "IPv6 address '%s' in '%s' needs brackets: tcp:[%s]:PORT", host,
				    address, host);
			return FALSE;
		}
		if (host[0] == '\0') {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "missing host in '%s': expected tcp:HOST:PORT", address);
			return FALSE;
		}
		/* an IPv4 literal also passes the host-name rule */
		if (!migd_transport_hostname_is_valid(host)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "invalid host '%s' in '%s'", host, address);
			return FALSE;
		}
		port_str = colon + 1;
	}
	if (!migd_transport_parse_port(address, port_str, &self->port, error))
		return FALSE;
	self->kind = MIGD_TRANSPORT_ADDRESS_TCP;
	self->host = g_steal_pointer(&host);
	return TRUE;
}

static gboolean
migd_transport_parse_unix(const gchar *address, const gchar *rest, MigdTransportAddress *self,
			  GError **error)
{
	if (rest[0] == '@') {
		if (rest[1] == '\0' || strlen(rest + 1) > MIGD_UNIX_PATH_MAX) {
			g_set_error(
			    error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "invalid abstract socket name '%s' in '%s': expected 1-%u bytes", rest,
			    address, (guint)MIGD_UNIX_PATH_MAX);
			return FALSE;
		}
		self->kind = MIGD_TRANSPORT_ADDRESS_UNIX_ABSTRACT;
		self->path = g_strdup(rest + 1);
		return TRUE;
	}
	/* relative paths would depend on the daemon's working directory */
	if (rest[0] != '/') {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "invalid socket path '%s' in '%s': expected an absolute path or @name",
			    rest, address);
		return FALSE;
	}
	if (strlen(rest) > MIGD_UNIX_PATH_MAX - 1) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "socket path '%s' in '%s' is longer than %u bytes", rest, address,
			    (guint)MIGD_UNIX_PATH_MAX - 1);
		return FALSE;
	}
	self->kind = MIGD_TRANSPORT_ADDRESS_UNIX;
	self->path = g_strdup(rest);
	return TRUE;
}

MigdTransportAddress *
migd_transport_address_parse(const gchar *address, GError **error)
{
	g_autoptr(MigdTransportAddress) self = g_new0(MigdTransportAddress, 1);

	if (address == NULL || address[0] == '\0') {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "empty transport address");
		return NULL;
	}
	if (g_str_has_prefix(address, "tcp:")) {
		if (!migd_transport_parse_tcp(address, address + 4, self, error))
			return NULL;
	} else if (g_str_has_prefix(address, "unix:")) {
		if (!migd_transport_parse_unix(address, address + 5, self, error))
			return NULL;
	} else {
		const gchar *colon = strchr(address, ':');
		g_autofree gchar *scheme =
		    colon != NULL ? g_strndup(address, colon - address) : g_strdup(address);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "unknown transport '%s' in address '%s': expected tcp:HOST:PORT, "
			    "tcp:[IPV6]:PORT, unix:/PATH or unix:@NAME",
			    scheme, address);
		return NULL;
	}
	return g_steal_pointer(&self);
}

gchar *
migd_transport_address_to_string(const MigdTransportAddress *self)
{
	g_return_val_if_fail(self != NULL, NULL);

	switch (self->kind) {
	case MIGD_TRANSPORT_ADDRESS_TCP:
		if (strchr(self->host, ':') != NULL)
			return g_strdup_printf("tcp:[%s]:%u", self->host, self->port);
		return g_strdup_printf("tcp:%s:%u", self->host, self->port);
	case MIGD_TRANSPORT_ADDRESS_UNIX:
		return g_strdup_printf("unix:%s", self->path);
	case MIGD_TRANSPORT_ADDRESS_UNIX_ABSTRACT:
		return g_strdup_printf("unix:@%s", self->path);
	default:
		g_return_val_if_reached(NULL);
	}
}

gboolean
migd_transport_address_is_local(const MigdTransportAddress *self)
{
	g_autoptr(GInetAddress) inet = NULL;

	g_return_val_if_fail(self != NULL, FALSE);

	if (self->kind != MIGD_TRANSPORT_ADDRESS_TCP)
		return TRUE;
	/* GNetworkAddress resolves "localhost" to loopback itself, without asking DNS */
	if (g_ascii_strcasecmp(self->host, "localhost") == 0)
		return TRUE;
	inet = g_inet_address_new_from_string(self->host);
	return inet != NULL && g_inet_address_get_is_loopback(inet);
}

GSocketConnectable *
migd_transport_address_to_connectable(const MigdTransportAddress *self)
{
	g_return_val_if_fail(self != NULL, NULL);

	switch (self->kind) {
	case MIGD_TRANSPORT_ADDRESS_TCP:
		return g_network_address_new(self->host, self->port);
	case MIGD_TRANSPORT_ADDRESS_UNIX:
		return G_SOCKET_CONNECTABLE(g_unix_socket_address_new(self->path));
	case MIGD_TRANSPORT_ADDRESS_UNIX_ABSTRACT:
		return G_SOCKET_CONNECTABLE(g_unix_socket_address_new_with_type(
		    self->path, -1, G_UNIX_SOCKET_ADDRESS_ABSTRACT));
	default:
		g_return_val_if_reached(NULL);
	}
}

GSocketAddress *
migd_transport_address_to_socket_address(const MigdTransportAddress *self, GError **error)
{
	g_autoptr(GInetAddress) inet = NULL;

	g_return_val_if_fail(self != NULL, NULL);

	if (self->kind != MIGD_TRANSPORT_ADDRESS_TCP)
		return G_SOCKET_ADDRESS(migd_transport_address_to_connectable(self));
	/* binding to a name would silently pick one of its addresses */
	inet = g_inet_address_new_from_string(self->host);
	if (inet == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "cannot listen on host name '%s': use an IP address "
			    "(127.0.0.1, [::1], 0.0.0.0, [::])",
			    self->host);
		return NULL;
	}
	return g_inet_socket_address_new(inet, self->port);
}

gchar *
migd_transport_socket_address_to_string(GSocketAddress *address)
{
	g_return_val_if_fail(G_IS_SOCKET_ADDRESS(address), NULL);

	if (G_IS_INET_SOCKET_ADDRESS(address)) {
		GInetSocketAddress *isa = G_INET_SOCKET_ADDRESS(address);
		g_autofree gchar *host =
		    g_inet_address_to_string(g_inet_socket_address_get_address(isa));
		MigdTransportAddress tmp = {.kind = MIGD_TRANSPORT_ADDRESS_TCP,
					    .host = host,
					    .port = g_inet_socket_address_get_port(isa)};
		return migd_transport_address_to_string(&tmp);
	}
	if (G_IS_UNIX_SOCKET_ADDRESS(address)) {
		GUnixSocketAddress *usa = G_UNIX_SOCKET_ADDRESS(address);
		GUnixSocketAddressType type = g_unix_socket_address_get_address_type(usa);
		g_autofree gchar *path = g_strndup(g_unix_socket_address_get_path(usa),
						   g_unix_socket_address_get_path_len(usa));

		if (type == G_UNIX_SOCKET_ADDRESS_ABSTRACT ||
		    type == G_UNIX_SOCKET_ADDRESS_ABSTRACT_PADDED)
			return g_strdup_printf("unix:@%s", path);
		if (type == G_UNIX_SOCKET_ADDRESS_PATH)
			return g_strdup_printf("unix:%s", path);
		return g_strdup("unix:");
	}
	return g_strdup("unknown:");
}
