/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Listener and connector: sockets and the mutual X.509 handshake (the TLS credentials are
 * loaded and checked in migd-transport-creds.c).
 *
 * A peer is authenticated entirely inside GIO's handshake (glib-networking, GnuTLS): the server
 * requires a client certificate and verifies it against ca_file; the client verifies the server
 * against ca_file and peer_name. Only a stream whose handshake succeeded reaches the caller, so
 * nothing above this module ever sees an unauthenticated peer.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "migd-error.h"
#include "migd-read-buffer.h"
#include "migd-transport-creds.h"
#include "migd-transport.h"
#include "migd-wire-limits.h"

/* ---- configuration ---- */

MigdTransportConfig *
migd_transport_config_copy(const MigdTransportConfig *config)
{
	MigdTransportConfig *copy = g_new0(MigdTransportConfig, 1);

	g_return_val_if_fail(config != NULL, copy);

	*copy = *config;
	copy->cert_file = g_strdup(config->cert_file);
	copy->key_file = g_strdup(config->key_file);
	copy->ca_file = g_strdup(config->ca_file);
	copy->peer_name = g_strdup(config->peer_name);
	return copy;
}

void
migd_transport_config_free(MigdTransportConfig *config)
{
	if (config == NULL)
		return;
	g_free(config->cert_file);
	g_free(config->key_file);
	g_free(config->ca_file);
	g_free(config->peer_name);
	g_free(config);
}

/* 0 in a configuration means "the default" */
static guint
migd_transport_or_default(guint value, guint fallback)
{
	return value > 0 ? value : fallback;
}

static guint
migd_transport_config_timeout_ms(const MigdTransportConfig *config)
{
	return migd_transport_or_default(config->handshake_timeout_ms,
					 MIGD_TRANSPORT_HANDSHAKE_TIMEOUT_MS_DEFAULT);
}

guint
migd_transport_config_get_hello_timeout_ms(const MigdTransportConfig *config)
{
	return migd_transport_or_default(config->hello_timeout_ms,
					 MIGD_WIRE_HELLO_TIMEOUT_MS_DEFAULT);
}

guint
migd_transport_config_get_frame_timeout_ms(const MigdTransportConfig *config)
{
	return migd_transport_or_default(config->frame_timeout_ms,
					 MIGD_WIRE_FRAME_TIMEOUT_MS_DEFAULT);
}

guint
migd_transport_config_get_max_pending_peers(const MigdTransportConfig *config)
{
	return migd_transport_or_default(config->max_pending_peers,
					 MIGD_WIRE_MAX_PENDING_PEERS_DEFAULT);
}

gboolean
migd_transport_config_add_allowed_uid(MigdTransportConfig *config, guint32 uid, GError **error)
{
	for (guint i = 0; i < config->n_allowed_uids; i++) {
		if (config->allowed_uids[i] == uid)
			return TRUE;
	}
	if (config->n_allowed_uids >= MIGD_TRANSPORT_MAX_ALLOWED_UIDS) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "at most %u allowed uids", (guint)MIGD_TRANSPORT_MAX_ALLOWED_UIDS);
		return FALSE;
	}
	config->allowed_uids[config->n_allowed_uids++] = uid;
	return TRUE;
}

gboolean
migd_transport_config_uid_allowed(const MigdTransportConfig *config, guint32 uid)
{
	if (uid == 0 || uid == (guint32)geteuid())
		return TRUE;
	for (guint i = 0; i < config->n_allowed_uids && i < MIGD_TRANSPORT_MAX_ALLOWED_UIDS; i++) {
		if (config->allowed_uids[i] == uid)
			return TRUE;
	}
	return FALSE;
}

/* plain over UNIX sockets, whose peers we can name; over TCP only when explicitly insecure */
static gboolean
migd_transport_config_check_plain(const MigdTransportConfig *config,
				  const MigdTransportAddress *address, GError **error)
{
	g_autofree gchar *str = NULL;

	if (address->kind != MIGD_TRANSPORT_ADDRESS_TCP || config->insecure_plain_tcp)
		return TRUE;
	str = migd_transport_address_to_string(address);
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
		    "plain (unencrypted, unauthenticated) transport refused on TCP address '%s': "
		    "any local user or host that reaches it could feed or read device state. "
		    "Use a unix:PATH address (peers checked by uid), or TLS (cert, key, ca); "
		    "insecure-plain-tcp allows it only where the link is secured otherwise",
		    str);
	return FALSE;
}

static void
migd_transport_warn_insecure(const gchar *what, const gchar *address)
{
	g_warning("INSECURE: %s '%s' with plain TCP (insecure-plain-tcp): no encryption and no "
		  "authentication, anyone who can reach it can read or replace device state; "
		  "this link must be secured otherwise (IPsec, WireGuard, an isolated network)",
		  what, address);
}

static MigdTransportCreds *
migd_transport_config_load(const MigdTransportConfig *config, const MigdTransportAddress *address,
			   gboolean listening, GError **error)
{
	if (config == NULL) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "no transport configuration");
		return NULL;
	}
	if (address != NULL && address->kind == MIGD_TRANSPORT_ADDRESS_TCP && !listening &&
	    address->port == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "cannot connect to port 0 of '%s'", address->host);
		return NULL;
	}
	if (config->plain) {
		if (address != NULL && !migd_transport_config_check_plain(config, address, error))
			return NULL;
		/* a non-NULL result means "fine"; plain connections use no credentials */
		return g_new0(MigdTransportCreds, 1);
	}
	if (address != NULL && !listening && address->kind != MIGD_TRANSPORT_ADDRESS_TCP &&
	    (config->peer_name == NULL || config->peer_name[0] == '\0')) {
		g_autofree gchar *str = migd_transport_address_to_string(address);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "'%s' has no host name to check the server certificate against: "
			    "set peer_name",
			    str);
		return NULL;
	}
	return migd_transport_creds_load(config, error);
}

gboolean
migd_transport_config_check(const MigdTransportConfig *config, const MigdTransportAddress *address,
			    gboolean listening, GError **error)
{
	g_autoptr(MigdTransportCreds) creds =
	    migd_transport_config_load(config, address, listening, error);
	return creds != NULL;
}

/* ---- sockets ---- */

static void
migd_transport_set_buffers(GSocket *socket, const MigdTransportConfig *config)
{
	g_autoptr(GError) error_local = NULL;

	if (config->socket_buffer_bytes <= 0)
		return;
	/* best effort: the kernel caps the size at net.core.[rw]mem_max */
	if (!g_socket_set_option(socket, SOL_SOCKET, SO_SNDBUF, config->socket_buffer_bytes,
				 &error_local) ||
	    !g_socket_set_option(socket, SOL_SOCKET, SO_RCVBUF, config->socket_buffer_bytes,
				 &error_local))
		g_debug("cannot set socket buffers to %d bytes: %s", config->socket_buffer_bytes,
			error_local->message);
}

/* per connection: bulk state transfer, but small control messages must not wait for Nagle */
static void
migd_transport_tune_connection(GSocketConnection *connection, const MigdTransportConfig *config)
{
	GSocket *socket = g_socket_connection_get_socket(connection);
	GSocketFamily family = g_socket_get_family(socket);
	g_autoptr(GError) error_local = NULL;

	if (family == G_SOCKET_FAMILY_IPV4 || family == G_SOCKET_FAMILY_IPV6) {
		if (!g_socket_set_option(socket, IPPROTO_TCP, TCP_NODELAY, 1, &error_local))
			g_debug("cannot set TCP_NODELAY: %s", error_local->message);
		/* a peer that vanishes mid-stream must not leave a job waiting forever */
		g_socket_set_keepalive(socket, TRUE);
	}
	migd_transport_set_buffers(socket, config);
}

static gchar *
migd_transport_describe_remote(GSocketConnection *connection)
{
	GSocket *socket = g_socket_connection_get_socket(connection);
	g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(socket, NULL);
	g_autoptr(GCredentials) creds = NULL;
	g_autofree gchar *str = NULL;

	if (remote == NULL)
		return g_strdup("unknown:");
	str = migd_transport_socket_address_to_string(remote);
	if (g_strcmp0(str, "unix:") != 0)
		return g_steal_pointer(&str);
	/* unnamed UNIX client: who it is matters more than where */
	creds = g_socket_get_credentials(socket, NULL);
	if (creds != NULL) {
		return g_strdup_printf("unix:pid=%" G_GINT64_FORMAT ",uid=%u",
				       (gint64)g_credentials_get_unix_pid(creds, NULL),
				       (guint)g_credentials_get_unix_user(creds, NULL));
	}
	return g_steal_pointer(&str);
}

/*
 * A plain UNIX peer: who it is (SO_PEERCRED) decides, since the stream itself proves nothing.
 * @role names the peer for the message ("client", "server").
 */
static gboolean
migd_transport_check_unix_peer(const MigdTransportConfig *config, GSocket *socket,
			       const gchar *role, GError **error)
{
	g_autoptr(GCredentials) creds = NULL;
	g_autoptr(GError) error_local = NULL;
	uid_t uid;
	pid_t pid;

	creds = g_socket_get_credentials(socket, &error_local);
	if (creds == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
			    "cannot read the credentials of the %s: %s", role,
			    error_local->message);
		return FALSE;
	}
	uid = g_credentials_get_unix_user(creds, &error_local);
	if (uid == (uid_t)-1) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
			    "cannot read the uid of the %s: %s", role, error_local->message);
		return FALSE;
	}
	pid = g_credentials_get_unix_pid(creds, NULL);
	if (migd_transport_config_uid_allowed(config, (guint32)uid))
		return TRUE;
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
		    "plain UNIX %s uid %u (pid %" G_GINT64_FORMAT
		    ") refused: only root, uid %u and allowed-uids may use a plain socket; add "
		    "the uid to allowed-uids to let it in",
		    role, (guint)uid, (gint64)pid, (guint)geteuid());
	return FALSE;
}

/* ---- listener ---- */

typedef struct _MigdTransportHandshake MigdTransportHandshake;

struct _MigdTransportListener {
	GObject parent_instance;
	MigdTransportConfig *config;
	MigdTransportCreds *creds; /* certificate NULL in plain mode */
	GSocketService *service;
	MigdTransportAcceptFunc func;
	gpointer user_data;
	gchar *address;
	gchar *unlink_path; /* the UNIX socket file we bound, removed on close */
	GList *handshakes;  /* of MigdTransportHandshake, in progress */
	gboolean closed;
};

struct _MigdTransportHandshake {
	MigdTransportListener *listener; /* unowned; NULL once the listener closed */
	GTlsConnection *tls;
	GCancellable *cancellable;
	GSource *timeout;
	guint timeout_ms;
	gchar *peer;
	gboolean timed_out;
	gboolean plain_peer; /* its first byte does not start a TLS record */
};

enum { SIGNAL_PEER_REFUSED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST] = {0};

G_DEFINE_TYPE(MigdTransportListener, migd_transport_listener, G_TYPE_OBJECT)

static void
migd_transport_handshake_free(MigdTransportHandshake *hs)
{
	if (hs->timeout != NULL) {
		g_source_destroy(hs->timeout);
		g_source_unref(hs->timeout);
	}
	g_clear_object(&hs->tls);
	g_clear_object(&hs->cancellable);
	g_free(hs->peer);
	g_free(hs);
}

static void
migd_transport_listener_refuse(MigdTransportListener *self, const gchar *peer, const GError *error)
{
	g_warning("transport: refused peer %s on %s: %s", peer, self->address, error->message);
	g_signal_emit(self, signals[SIGNAL_PEER_REFUSED], 0, peer, error);
}

static void
migd_transport_listener_handshake_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	MigdTransportHandshake *hs = user_data;
	MigdTransportListener *self = hs->listener;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *identity = NULL;
	g_autofree gchar *suite = NULL;

	if (self != NULL)
		self->handshakes = g_list_remove(self->handshakes, hs);
	if (!g_tls_connection_handshake_finish(hs->tls, res, &error)) {
		if (hs->timed_out) {
			g_clear_error(&error);
			g_set_error(&error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
				    "TLS handshake timed out after %u ms", hs->timeout_ms);
		} else if (hs->plain_peer) {
			g_prefix_error(&error,
				       "the client speaks plain (no TLS) but this listener expects "
				       "TLS (use TLS on both sides, or plain on both): ");
		}
	} else {
		identity = migd_transport_creds_peer_identity(hs->tls, &error);
	}
	if (self == NULL || self->closed) {
		migd_transport_handshake_free(hs);
		return;
	}
	if (identity == NULL) {
		migd_transport_listener_refuse(self, hs->peer, error);
		migd_transport_handshake_free(hs);
		return;
	}
	suite = g_tls_connection_get_ciphersuite_name(hs->tls);
	g_debug("transport: accepted %s (%s) on %s, %s", identity, hs->peer, self->address, suite);
	/* keep the listener alive if the callback drops the last reference */
	g_object_ref(self);
	self->func(self, G_IO_STREAM(hs->tls), identity, self->user_data);
	g_object_unref(self);
	migd_transport_handshake_free(hs);
}

static gboolean
migd_transport_listener_timeout_cb(gpointer user_data)
{
	MigdTransportHandshake *hs = user_data;
	hs->timed_out = TRUE;
	g_cancellable_cancel(hs->cancellable);
	g_clear_pointer(&hs->timeout, g_source_unref);
	return G_SOURCE_REMOVE;
}

/*
 * GnuTLS only says "unexpected TLS packet" when a plain client talks to us: a TLS client's
 * first byte is always 22 (a handshake record), so look at it before the handshake eats it.
 * Runs once, also on cancellation (timeout, close), which the handshake then reports.
 */
static gboolean
migd_transport_listener_peek_cb(GSocket *socket, GIOCondition condition, gpointer user_data)
{
	MigdTransportHandshake *hs = user_data;
	guint8 first = 0;

	if (recv(g_socket_get_fd(socket), &first, 1, MSG_PEEK | MSG_DONTWAIT) == 1 && first != 22)
		hs->plain_peer = TRUE;
	g_tls_connection_handshake_async(hs->tls, G_PRIORITY_DEFAULT, hs->cancellable,
					 migd_transport_listener_handshake_cb, hs);
	return G_SOURCE_REMOVE;
}

static gboolean
migd_transport_listener_incoming_cb(GSocketService *service, GSocketConnection *connection,
				    GObject *source_object, gpointer user_data)
{
	MigdTransportListener *self = MIGD_TRANSPORT_LISTENER(user_data);
	MigdTransportHandshake *hs = NULL;
	g_autofree gchar *peer = migd_transport_describe_remote(connection);
	g_autoptr(GIOStream) buffered = NULL;
	g_autoptr(GIOStream) tls = NULL;
	g_autoptr(GSource) peek = NULL;
	g_autoptr(GError) error = NULL;

	if (self->closed)
		return TRUE;
	migd_transport_tune_connection(connection, self->config);

	if (self->config->plain) {
		g_autofree gchar *identity = g_strdup_printf("plain:%s", peer);
		GSocket *socket = g_socket_connection_get_socket(connection);
		GSocketFamily family = g_socket_get_family(socket);
		if (family == G_SOCKET_FAMILY_UNIX &&
		    !migd_transport_check_unix_peer(self->config, socket, "client", &error)) {
			migd_transport_listener_refuse(self, peer, error);
			g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
			return TRUE;
		}
		g_object_ref(self);
		self->func(self, G_IO_STREAM(connection), identity, self->user_data);
		g_object_unref(self);
		return TRUE;
	}

	if (g_list_length(self->handshakes) >=
	    migd_transport_config_get_max_pending_peers(self->config)) {
		g_set_error(&error, MIGD_ERROR, MIGD_ERROR_BUSY,
			    "%u TLS handshakes are already in progress (max-pending-peers)",
			    g_list_length(self->handshakes));
		migd_transport_listener_refuse(self, peer, error);
		g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
		return TRUE;
	}
	buffered = migd_read_buffer_stream_new(G_IO_STREAM(connection), MIGD_READ_BUFFER_SIZE);
	tls = g_tls_server_connection_new(buffered, self->creds->certificate, &error);
	if (tls == NULL) {
		migd_transport_listener_refuse(self, peer, error);
		return TRUE;
	}
	/* no certificate, or one that does not chain to ca_file: the handshake fails */
	g_object_set(tls, "authentication-mode", G_TLS_AUTHENTICATION_REQUIRED, NULL);
	g_tls_connection_set_database(G_TLS_CONNECTION(tls), self->creds->database);
	g_signal_connect(tls, "accept-certificate",
			 G_CALLBACK(migd_transport_creds_accept_certificate_cb), NULL);

	hs = g_new0(MigdTransportHandshake, 1);
	hs->listener = self;
	hs->tls = G_TLS_CONNECTION(g_steal_pointer(&tls));
	hs->cancellable = g_cancellable_new();
	hs->peer = g_steal_pointer(&peer);
	hs->timeout_ms = migd_transport_config_timeout_ms(self->config);
	hs->timeout = g_timeout_source_new(hs->timeout_ms);
	g_source_set_callback(hs->timeout, migd_transport_listener_timeout_cb, hs, NULL);
	g_source_attach(hs->timeout, g_main_context_get_thread_default());
	self->handshakes = g_list_prepend(self->handshakes, hs);
	/* the handshake starts once the first byte is there, see migd_transport_peek_cb */
	peek = g_socket_create_source(g_socket_connection_get_socket(connection),
				      G_IO_IN | G_IO_HUP | G_IO_ERR, hs->cancellable);
	g_source_set_callback(peek, G_SOURCE_FUNC(migd_transport_listener_peek_cb), hs, NULL);
	g_source_attach(peek, g_main_context_get_thread_default());
	return TRUE;
}

void
migd_transport_listener_close(MigdTransportListener *self)
{
	g_return_if_fail(MIGD_IS_TRANSPORT_LISTENER(self));

	if (self->closed)
		return;
	self->closed = TRUE;
	if (self->service != NULL) {
		g_socket_service_stop(self->service);
		g_socket_listener_close(G_SOCKET_LISTENER(self->service));
	}
	/* their callbacks still run, later, and see that the listener is gone */
	for (GList *l = self->handshakes; l != NULL; l = l->next) {
		MigdTransportHandshake *hs = l->data;
		hs->listener = NULL;
		g_cancellable_cancel(hs->cancellable);
	}
	g_clear_pointer(&self->handshakes, g_list_free);
	if (self->unlink_path != NULL) {
		if (g_unlink(self->unlink_path) < 0 && errno != ENOENT)
			g_debug("cannot remove %s: %s", self->unlink_path, g_strerror(errno));
		g_clear_pointer(&self->unlink_path, g_free);
	}
}

const gchar *
migd_transport_listener_get_address(MigdTransportListener *self)
{
	g_return_val_if_fail(MIGD_IS_TRANSPORT_LISTENER(self), NULL);
	return self->address;
}

static void
migd_transport_listener_dispose(GObject *object)
{
	MigdTransportListener *self = MIGD_TRANSPORT_LISTENER(object);
	migd_transport_listener_close(self);
	g_clear_object(&self->service);
	G_OBJECT_CLASS(migd_transport_listener_parent_class)->dispose(object);
}

static void
migd_transport_listener_finalize(GObject *object)
{
	MigdTransportListener *self = MIGD_TRANSPORT_LISTENER(object);
	migd_transport_config_free(self->config);
	migd_transport_creds_free(self->creds);
	g_free(self->address);
	g_free(self->unlink_path);
	G_OBJECT_CLASS(migd_transport_listener_parent_class)->finalize(object);
}

static void
migd_transport_listener_class_init(MigdTransportListenerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = migd_transport_listener_dispose;
	object_class->finalize = migd_transport_listener_finalize;

	/* a peer failed the handshake (bad or no certificate, timeout): for logs and audits */
	signals[SIGNAL_PEER_REFUSED] =
	    g_signal_new("peer-refused", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_ERROR);
}

static void
migd_transport_listener_init(MigdTransportListener *self)
{
}

/* takes @socket (listening) and starts accepting on the thread-default context */
static MigdTransportListener *
migd_transport_listener_new(GSocket *socket, MigdTransportCreds *creds,
			    const MigdTransportConfig *config, MigdTransportAcceptFunc func,
			    gpointer user_data, GError **error)
{
	g_autoptr(MigdTransportListener) self = g_object_new(MIGD_TYPE_TRANSPORT_LISTENER, NULL);
	g_autoptr(GSocketAddress) local = NULL;

	self->config = migd_transport_config_copy(config);
	self->creds = creds;
	self->func = func;
	self->user_data = user_data;
	local = g_socket_get_local_address(socket, error);
	if (local == NULL)
		return NULL;
	self->address = migd_transport_socket_address_to_string(local);
	self->service = g_socket_service_new();
	if (!g_socket_listener_add_socket(G_SOCKET_LISTENER(self->service), socket, NULL, error))
		return NULL;
	g_signal_connect(self->service, "incoming", G_CALLBACK(migd_transport_listener_incoming_cb),
			 self);
	g_socket_service_start(self->service);
	return g_steal_pointer(&self);
}

/*
 * A socket file left by a process that died is in the way of bind(). It is removed only when
 * it is a socket and nobody accepts on it: connect() is refused. A live socket (connect
 * succeeds, or its backlog is full) and any other file stay. A listener that starts between
 * the check and the unlink loses its name; two daemons on one path are a mistake anyway.
 */
static gboolean
migd_transport_remove_stale_socket(const gchar *path, GError **error)
{
	struct stat st = {0};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	gint fd;
	gint rc;
	gint saved_errno;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return TRUE;
		migd_set_errno_error(error, errno, "'%s'", path);
		return FALSE;
	}
	if (!S_ISSOCK(st.st_mode)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "'%s' exists and is not a socket: not removing it", path);
		return FALSE;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "'%s' is too long for a UNIX socket", path);
		return FALSE;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		migd_set_errno_error(error, errno, "socket");
		return FALSE;
	}
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	saved_errno = errno;
	close(fd);
	if (rc == 0 || saved_errno == EAGAIN || saved_errno == EINPROGRESS) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
			    "'%s' is in use: a process accepts connections on it", path);
		return FALSE;
	}
	if (saved_errno == ENOENT)
		return TRUE;
	if (saved_errno != ECONNREFUSED) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
			    "cannot tell whether the socket '%s' is in use (%s): not removing it",
			    path, g_strerror(saved_errno));
		return FALSE;
	}
	g_message("removing the stale socket %s: nobody accepts on it", path);
	if (unlink(path) < 0 && errno != ENOENT) {
		migd_set_errno_error(error, errno, "removing the stale socket '%s'", path);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_transport_bind(GSocket *socket, GSocketAddress *bind_address, const MigdTransportAddress *addr,
		    GError **error)
{
	g_autoptr(GError) error_local = NULL;

	if (g_socket_bind(socket, bind_address, TRUE, &error_local))
		return TRUE;
	if (addr->kind != MIGD_TRANSPORT_ADDRESS_UNIX ||
	    !g_error_matches(error_local, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE)) {
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	if (!migd_transport_remove_stale_socket(addr->path, error))
		return FALSE;
	return g_socket_bind(socket, bind_address, TRUE, error);
}

MigdTransportListener *
migd_transport_listen(const gchar *address, const MigdTransportConfig *config,
		      MigdTransportAcceptFunc func, gpointer user_data, GError **error)
{
	g_autoptr(MigdTransportAddress) addr = NULL;
	g_autoptr(MigdTransportCreds) creds = NULL;
	g_autoptr(GSocketAddress) bind_address = NULL;
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GError) error_local = NULL;
	MigdTransportListener *self = NULL;

	g_return_val_if_fail(func != NULL, NULL);

	addr = migd_transport_address_parse(address, error);
	if (addr == NULL)
		return NULL;
	creds = migd_transport_config_load(config, addr, TRUE, error);
	if (creds == NULL)
		return NULL;
	bind_address = migd_transport_address_to_socket_address(addr, error);
	if (bind_address == NULL)
		return NULL;

	socket = g_socket_new(g_socket_address_get_family(bind_address), G_SOCKET_TYPE_STREAM,
			      G_SOCKET_PROTOCOL_DEFAULT, error);
	if (socket == NULL)
		return NULL;
	/* before listen(): accepted sockets inherit the buffers and the window scale */
	migd_transport_set_buffers(socket, config);
	/* GSocket's default of 10 makes a burst of connects wait for SYN retransmits */
	g_socket_set_listen_backlog(socket, SOMAXCONN);
	if (!migd_transport_bind(socket, bind_address, addr, &error_local) ||
	    !g_socket_listen(socket, &error_local)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "cannot listen on '%s': %s",
			    address, error_local->message);
		return NULL;
	}
	self = migd_transport_listener_new(socket, g_steal_pointer(&creds), config, func, user_data,
					   error);
	if (self == NULL)
		return NULL;
	if (addr->kind == MIGD_TRANSPORT_ADDRESS_UNIX)
		self->unlink_path = g_strdup(addr->path);
	if (config->plain && addr->kind == MIGD_TRANSPORT_ADDRESS_TCP)
		migd_transport_warn_insecure("listening on", self->address);
	return self;
}

MigdTransportListener *
migd_transport_listen_fd(gint fd, const MigdTransportConfig *config, MigdTransportAcceptFunc func,
			 gpointer user_data, GError **error)
{
	gint type = 0;
	gint accepting = 0;
	socklen_t len = sizeof(gint);
	struct stat st = {0};
	union {
		struct sockaddr sa;
		struct sockaddr_storage ss;
	} local = {0};
	socklen_t local_len = sizeof(local);
	g_autoptr(GSocketAddress) address = NULL;
	g_autoptr(MigdTransportAddress) addr = NULL;
	g_autoptr(MigdTransportCreds) creds = NULL;
	g_autofree gchar *str = NULL;
	g_autoptr(GSocket) socket = NULL;

	g_return_val_if_fail(func != NULL, NULL);

	/* all checks before GSocket takes the fd, so a refused fd stays the caller's */
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "fd %d is not a socket",
			    fd);
		return NULL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "fd %d is not a stream socket (use ListenStream= in the .socket unit)",
			    fd);
		return NULL;
	}
	len = sizeof(gint);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) < 0 || !accepting) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "fd %d is not a listening socket (Accept=no is required)", fd);
		return NULL;
	}
	if (getsockname(fd, &local.sa, &local_len) < 0) {
		migd_set_errno_error(error, errno, "getsockname(fd %d)", fd);
		return NULL;
	}
	address = g_socket_address_new_from_native(&local.ss, local_len);
	if (address == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "fd %d has an unsupported address family", fd);
		return NULL;
	}
	str = migd_transport_socket_address_to_string(address);
	addr = migd_transport_address_parse(str, NULL);
	if (addr == NULL && g_strcmp0(str, "unix:") == 0) {
		/* unnamed UNIX socket (socketpair): as local as it gets */
		addr = g_new0(MigdTransportAddress, 1);
		addr->kind = MIGD_TRANSPORT_ADDRESS_UNIX;
		addr->path = g_strdup("");
	}
	if (addr == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "fd %d is bound to an unsupported address '%s'", fd, str);
		return NULL;
	}
	creds = migd_transport_config_load(config, addr, TRUE, error);
	if (creds == NULL)
		return NULL;
	socket = g_socket_new_from_fd(fd, error);
	if (socket == NULL)
		return NULL;
	if (config->plain && addr->kind == MIGD_TRANSPORT_ADDRESS_TCP)
		migd_transport_warn_insecure("listening on", str);
	return migd_transport_listener_new(socket, g_steal_pointer(&creds), config, func, user_data,
					   error);
}

/* ---- connecting ---- */

typedef struct {
	MigdTransportConfig *config;
	MigdTransportAddress *address;
	MigdTransportCreds *creds;
	GCancellable *cancellable; /* ours: cancelled by the caller's or by the timeout */
	GCancellable *caller_cancellable;
	gulong caller_cancelled_id;
	GSource *timeout;
	gboolean timed_out;
	GTlsConnection *tls;
	gchar *peer_identity;
	GTlsCertificateFlags peer_errors; /* why the server's certificate was refused */
	gboolean peer_refused;
} MigdTransportConnectData;

static void
migd_transport_connect_data_free(MigdTransportConnectData *data)
{
	if (data->caller_cancellable != NULL) {
		g_cancellable_disconnect(data->caller_cancellable, data->caller_cancelled_id);
		g_object_unref(data->caller_cancellable);
	}
	if (data->timeout != NULL) {
		g_source_destroy(data->timeout);
		g_source_unref(data->timeout);
	}
	migd_transport_config_free(data->config);
	migd_transport_address_free(data->address);
	migd_transport_creds_free(data->creds);
	g_clear_object(&data->cancellable);
	g_clear_object(&data->tls);
	g_free(data->peer_identity);
	g_free(data);
}

/* the single exit: stops the timer (whose callback holds a task reference) */
static void
migd_transport_connect_return(GTask *task, GIOStream *stream, GError *error)
{
	MigdTransportConnectData *data = g_task_get_task_data(task);

	if (data->timeout != NULL) {
		g_source_destroy(data->timeout);
		g_clear_pointer(&data->timeout, g_source_unref);
	}
	if (error != NULL) {
		g_autofree gchar *str = migd_transport_address_to_string(data->address);
		if (data->timed_out && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
						"connecting to '%s' timed out after %u ms", str,
						migd_transport_config_timeout_ms(data->config));
			g_error_free(error);
			return;
		}
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_prefix_error(&error, "connecting to '%s': ", str);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, stream, g_object_unref);
}

static gboolean
migd_transport_connect_timeout_cb(gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	MigdTransportConnectData *data = g_task_get_task_data(task);

	data->timed_out = TRUE;
	g_cancellable_cancel(data->cancellable);
	return G_SOURCE_REMOVE;
}

static void
migd_transport_caller_cancelled_cb(GCancellable *caller_cancellable, gpointer user_data)
{
	GCancellable *cancellable = G_CANCELLABLE(user_data);
	g_cancellable_cancel(cancellable);
}

/* the server's certificate, refused: remember why, GIO only says "Unacceptable TLS certificate" */
static gboolean
migd_transport_connect_accept_certificate_cb(GTlsConnection *conn, GTlsCertificate *peer_cert,
					     GTlsCertificateFlags errors, gpointer user_data)
{
	MigdTransportConnectData *data = user_data;

	if (errors == 0)
		return TRUE;
	data->peer_errors = errors;
	data->peer_refused = TRUE;
	return FALSE;
}

/*
 * Rewrites a failed client handshake into what the operator has to fix: a certificate from
 * another CA, a certificate that does not name the destination, or a destination that does
 * not speak TLS at all. Domain and code stay GIO's.
 */
static void
migd_transport_explain_handshake_error(MigdTransportConnectData *data, GError **error)
{
	const gchar *name =
	    data->config->peer_name != NULL ? data->config->peer_name : data->address->host;
	GTlsCertificate *peer = g_tls_connection_get_peer_certificate(data->tls);
	g_autofree gchar *subject = peer != NULL ? g_tls_certificate_get_subject_name(peer) : NULL;
	g_autofree gchar *why = NULL;

	if (data->peer_refused && (data->peer_errors & G_TLS_CERTIFICATE_UNKNOWN_CA) != 0) {
		why = g_strdup_printf(
		    "the destination's certificate (%s) is not signed by the CA in ca_file '%s' "
		    "(check --ca / [listen] ca= on both sides: they must name the same CA)",
		    subject != NULL ? subject : "?", data->config->ca_file);
	} else if (data->peer_refused &&
		   (data->peer_errors & G_TLS_CERTIFICATE_BAD_IDENTITY) != 0) {
		why = g_strdup_printf(
		    "the destination's certificate (%s) is valid but does not name '%s' (set "
		    "--peer-name to a name in its subjectAltNames, or reissue it for '%s')",
		    subject != NULL ? subject : "?", name != NULL ? name : "?",
		    name != NULL ? name : "?");
	} else if (data->peer_refused) {
		why = g_strdup_printf("the destination's certificate (%s) is not acceptable "
				      "(flags 0x%x: expired, not yet valid, revoked or insecure)",
				      subject != NULL ? subject : "?", (guint)data->peer_errors);
	} else if (g_error_matches(*error, G_TLS_ERROR, G_TLS_ERROR_NOT_TLS) ||
		   g_error_matches(*error, G_TLS_ERROR, G_TLS_ERROR_EOF) ||
		   g_error_matches(*error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
		   g_error_matches(*error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE)) {
		why = g_strdup("the destination speaks plain (no TLS) here but we expect TLS: it "
			       "hung up on the TLS handshake (use TLS on both sides, or plain on "
			       "both)");
	}
	if (why == NULL)
		return;
	g_prefix_error(error, "%s: ", why);
}

static void
migd_transport_connect_handshake_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autofree gchar *suite = NULL;
	MigdTransportConnectData *data = g_task_get_task_data(task);
	GError *error = NULL;

	if (!g_tls_connection_handshake_finish(data->tls, res, &error)) {
		if (!data->timed_out && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			migd_transport_explain_handshake_error(data, &error);
		migd_transport_connect_return(task, NULL, error);
		return;
	}
	data->peer_identity = migd_transport_creds_peer_identity(data->tls, &error);
	if (data->peer_identity == NULL) {
		migd_transport_connect_return(task, NULL, error);
		return;
	}
	suite = g_tls_connection_get_ciphersuite_name(data->tls);
	g_debug("transport: connected to %s, %s", data->peer_identity, suite);
	migd_transport_connect_return(task, G_IO_STREAM(g_object_ref(data->tls)), NULL);
}

/* plain: a UNIX server must run as a uid we trust, or anyone could pose as the destination */
static gboolean
migd_transport_check_plain_server(MigdTransportConnectData *data, GSocketConnection *connection,
				  GError **error)
{
	GSocket *socket = g_socket_connection_get_socket(connection);

	if (g_socket_get_family(socket) != G_SOCKET_FAMILY_UNIX)
		return TRUE;
	return migd_transport_check_unix_peer(data->config, socket, "server", error);
}

/*
 * The name the server certificate must carry. An IP literal goes in as a GInetSocketAddress:
 * GIO then checks the certificate's IP subjectAltNames and sends no SNI, which may not carry
 * an address (RFC 6066) and which GnuTLS servers refuse for IPv6 literals.
 */
static GSocketConnectable *
migd_transport_server_identity(MigdTransportConnectData *data)
{
	const gchar *name =
	    data->config->peer_name != NULL ? data->config->peer_name : data->address->host;
	g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(name);

	if (inet != NULL)
		return G_SOCKET_CONNECTABLE(g_inet_socket_address_new(inet, data->address->port));
	return g_network_address_new(name, data->address->port);
}

static void
migd_transport_connect_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	MigdTransportConnectData *data = g_task_get_task_data(task);
	g_autoptr(GSocketConnection) connection = NULL;
	g_autoptr(GSocketConnectable) identity = NULL;
	g_autoptr(GIOStream) buffered = NULL;
	g_autoptr(GIOStream) tls = NULL;
	GError *error = NULL;

	connection = g_socket_client_connect_finish(G_SOCKET_CLIENT(source), res, &error);
	if (connection == NULL &&
	    (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
	     g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))) {
		/* the usual cause is a destination not (yet) listening, not a missing file */
		g_autofree gchar *str = migd_transport_address_to_string(data->address);
		g_prefix_error(&error,
			       "nobody listens on %s (is the destination's vfio-migd listening? "
			       "vfio-migctl listen ...): ",
			       str);
	}
	if (connection == NULL) {
		migd_transport_connect_return(task, NULL, error);
		return;
	}
	migd_transport_tune_connection(connection, data->config);

	if (data->config->plain) {
		g_autofree gchar *peer = migd_transport_describe_remote(connection);
		if (!migd_transport_check_plain_server(data, connection, &error)) {
			migd_transport_connect_return(task, NULL, error);
			return;
		}
		data->peer_identity = g_strdup_printf("plain:%s", peer);
		migd_transport_connect_return(task, G_IO_STREAM(g_steal_pointer(&connection)),
					      NULL);
		return;
	}

	identity = migd_transport_server_identity(data);
	buffered = migd_read_buffer_stream_new(G_IO_STREAM(connection), MIGD_READ_BUFFER_SIZE);
	tls = g_tls_client_connection_new(buffered, identity, &error);
	if (tls == NULL) {
		migd_transport_connect_return(task, NULL, error);
		return;
	}
	data->tls = G_TLS_CONNECTION(g_steal_pointer(&tls));
	/* any verification failure fails the handshake; the handler only records why */
	g_signal_connect(data->tls, "accept-certificate",
			 G_CALLBACK(migd_transport_connect_accept_certificate_cb), data);
	g_tls_connection_set_certificate(data->tls, data->creds->certificate);
	g_tls_connection_set_database(data->tls, data->creds->database);
	g_tls_connection_handshake_async(data->tls, G_PRIORITY_DEFAULT, data->cancellable,
					 migd_transport_connect_handshake_cb,
					 g_steal_pointer(&task));
}

void
migd_transport_connect_async(const gchar *address, const MigdTransportConfig *config,
			     GCancellable *cancellable, GAsyncReadyCallback callback,
			     gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	g_autoptr(MigdTransportAddress) addr = NULL;
	g_autoptr(GSocketClient) client = NULL;
	g_autoptr(GSocketConnectable) connectable = NULL;
	MigdTransportConnectData *data = NULL;
	GError *error = NULL;

	g_task_set_source_tag(task, migd_transport_connect_async);
	addr = migd_transport_address_parse(address, &error);
	if (addr == NULL) {
		g_task_return_error(task, error);
		return;
	}
	data = g_new0(MigdTransportConnectData, 1);
	g_task_set_task_data(task, data, (GDestroyNotify)migd_transport_connect_data_free);
	data->creds = migd_transport_config_load(config, addr, FALSE, &error);
	if (data->creds == NULL) {
		g_task_return_error(task, error);
		return;
	}
	data->config = migd_transport_config_copy(config);
	data->address = g_steal_pointer(&addr);
	if (config->plain && data->address->kind == MIGD_TRANSPORT_ADDRESS_TCP)
		migd_transport_warn_insecure("connecting to", address);
	data->cancellable = g_cancellable_new();
	if (cancellable != NULL) {
		data->caller_cancellable = g_object_ref(cancellable);
		data->caller_cancelled_id = g_cancellable_connect(
		    cancellable, G_CALLBACK(migd_transport_caller_cancelled_cb),
		    g_object_ref(data->cancellable), g_object_unref);
	}
	data->timeout = g_timeout_source_new(migd_transport_config_timeout_ms(data->config));
	g_task_attach_source(task, data->timeout, migd_transport_connect_timeout_cb);

	client = g_socket_client_new();
	/* migration traffic goes straight to the peer, never through a desktop proxy */
	g_socket_client_set_enable_proxy(client, FALSE);
	connectable = migd_transport_address_to_connectable(data->address);
	g_socket_client_connect_async(client, connectable, data->cancellable,
				      migd_transport_connect_connected_cb, g_steal_pointer(&task));
}

GIOStream *
migd_transport_connect_finish(GAsyncResult *result, gchar **peer_identity, GError **error)
{
	GTask *task = G_TASK(result);
	MigdTransportConnectData *data = NULL;
	GIOStream *stream = NULL;

	g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
	g_return_val_if_fail(g_task_get_source_tag(task) == migd_transport_connect_async, NULL);

	stream = g_task_propagate_pointer(task, error);
	if (stream == NULL)
		return NULL;
	data = g_task_get_task_data(task);
	if (peer_identity != NULL)
		*peer_identity = g_strdup(data->peer_identity);
	return stream;
}
