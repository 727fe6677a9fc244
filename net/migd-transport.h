/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The migration transport: addresses ("tcp:HOST:PORT", "tcp:[IPV6]:PORT", "unix:/path",
 * "unix:@abstract"), mutually authenticated TLS (X.509, glib-networking) by default, plain
 * streams only when configured. Everything is asynchronous on the caller's thread-default
 * GMainContext; the module starts no threads of its own. The syntax and the configuration
 * keys are documented in docs/ABI/testing/transport-address.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define MIGD_TRANSPORT_HANDSHAKE_TIMEOUT_MS_DEFAULT 30000

/* ---- addresses ---- */

typedef enum {
	MIGD_TRANSPORT_ADDRESS_TCP,
	MIGD_TRANSPORT_ADDRESS_UNIX,	      /* a filesystem path */
	MIGD_TRANSPORT_ADDRESS_UNIX_ABSTRACT, /* Linux abstract namespace ("unix:@name") */
} MigdTransportAddressKind;

typedef struct {
	MigdTransportAddressKind kind;
	gchar *host;  /* TCP: host name or IP literal, without brackets */
	guint16 port; /* TCP: 0 only makes sense for listening */
	gchar *path;  /* UNIX: absolute path; UNIX_ABSTRACT: the name without '@' */
} MigdTransportAddress;

MigdTransportAddress *migd_transport_address_parse(const gchar *address, GError **error);
void migd_transport_address_free(MigdTransportAddress *self);
gchar *migd_transport_address_to_string(const MigdTransportAddress *self);
/* UNIX sockets and loopback TCP (127.0.0.0/8, ::1, "localhost") */
gboolean migd_transport_address_is_local(const MigdTransportAddress *self);
/* for connecting: resolves host names */
GSocketConnectable *migd_transport_address_to_connectable(const MigdTransportAddress *self);
/* for binding: TCP hosts must be IP literals */
GSocketAddress *migd_transport_address_to_socket_address(const MigdTransportAddress *self,
							 GError **error);
/* the inverse, in the same syntax; "unix:" for an unnamed UNIX socket */
gchar *migd_transport_socket_address_to_string(GSocketAddress *address);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdTransportAddress, migd_transport_address_free)

/* ---- configuration ---- */

/* the migration port systemd listens on for us (systemd/vfio-migd.socket) */
#define MIGD_TRANSPORT_DEFAULT_PORT 4821

/* at most this many uids besides root and our own may use a plain UNIX socket */
#define MIGD_TRANSPORT_MAX_ALLOWED_UIDS 16

typedef struct {
	/* No TLS: a plain stream has neither authentication nor confidentiality. Allowed over
	 * UNIX sockets only, where the peer's credentials (SO_PEERCRED) are checked: the
	 * listener accepts, and the connector talks to, root, our own uid and allowed_uids
	 * only. Over TCP only with insecure_plain_tcp. */
	gboolean plain;
	/* Also permit plain over TCP (any address, loopback included), e.g. inside an
	 * encrypted and authenticated tunnel (IPsec, WireGuard). Every listen and connect
	 * warns: anyone who can reach the port can feed or read device state. */
	gboolean insecure_plain_tcp;
	/* plain UNIX peers allowed besides root and the daemon's own uid */
	guint32 allowed_uids[MIGD_TRANSPORT_MAX_ALLOWED_UIDS];
	guint n_allowed_uids;
	gchar *cert_file; /* PEM: our certificate (chain) */
	gchar *key_file;  /* PEM: its private key, unencrypted */
	gchar *ca_file;	  /* PEM: the CA(s) the peer's certificate must chain to */
	/* client only: the identity the server certificate must carry; NULL = the host of the
	 * address (required for UNIX addresses, which have no host) */
	gchar *peer_name;
	guint handshake_timeout_ms; /* connect + TLS handshake; 0 = 30 s */
	/* listener: Hello and every DeviceOffer must arrive within this of the connection's
	 * start; 0 = MIGD_WIRE_HELLO_TIMEOUT_MS_DEFAULT */
	guint hello_timeout_ms;
	/* a frame whose first byte arrived must be complete within this; 0 =
	 * MIGD_WIRE_FRAME_TIMEOUT_MS_DEFAULT */
	guint frame_timeout_ms;
	/* listener: TLS handshakes in progress, and connections waiting for Hello after it,
	 * beyond this (each) are refused; 0 = MIGD_WIRE_MAX_PENDING_PEERS_DEFAULT */
	guint max_pending_peers;
	/* SO_SNDBUF/SO_RCVBUF in bytes; 0 = kernel default. Leave 0 for TCP: an explicit size
	 * disables Linux's receive-window autotuning and is capped by net.core.[rw]mem_max. */
	gint socket_buffer_bytes;
} MigdTransportConfig;

MigdTransportConfig *migd_transport_config_copy(const MigdTransportConfig *config);
void migd_transport_config_free(MigdTransportConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdTransportConfig, migd_transport_config_free)

/* the configured deadlines and caps, or their defaults */
guint migd_transport_config_get_hello_timeout_ms(const MigdTransportConfig *config);
guint migd_transport_config_get_frame_timeout_ms(const MigdTransportConfig *config);
guint migd_transport_config_get_max_pending_peers(const MigdTransportConfig *config);
/* adds @uid to allowed_uids (a uid already there is not added twice) */
gboolean migd_transport_config_add_allowed_uid(MigdTransportConfig *config, guint32 uid,
					       GError **error);
/* whether a plain UNIX peer running as @uid is let in: root, our own uid, allowed_uids */
gboolean migd_transport_config_uid_allowed(const MigdTransportConfig *config, guint32 uid);

/* Checks @config for use with @address without touching the network: plain rules, the TLS
 * backend, the files (readable, parseable, key matching the certificate, not expired). */
gboolean migd_transport_config_check(const MigdTransportConfig *config,
				     const MigdTransportAddress *address, gboolean listening,
				     GError **error);

/* ---- listener (destination side) ---- */

#define MIGD_TYPE_TRANSPORT_LISTENER (migd_transport_listener_get_type())
G_DECLARE_FINAL_TYPE(MigdTransportListener, migd_transport_listener, MIGD, TRANSPORT_LISTENER,
		     GObject)

/*
 * Called once per peer that completed the handshake and presented a certificate that chains to
 * ca_file (or, in plain mode, once per connection whose peer credentials are allowed). @stream is
 * borrowed: g_object_ref() it to keep it. @peer_identity is the subject CN of the peer's
 * certificate (the full subject DN if it has no CN), or "plain:ADDRESS" in plain mode. Peers that
 * fail are never passed here; they are reported by the "peer-refused" signal (const gchar
 * *peer_address, GError *error).
 */
typedef void (*MigdTransportAcceptFunc)(MigdTransportListener *listener, GIOStream *stream,
					const gchar *peer_identity, gpointer user_data);

/* The listen backlog: a burst of connects must not wait for retransmits. A UNIX path whose
 * socket file was left by a dead process (connect() is refused) is removed and bound again;
 * a live socket or any other file there is an error. */
MigdTransportListener *migd_transport_listen(const gchar *address,
					     const MigdTransportConfig *config,
					     MigdTransportAcceptFunc func, gpointer user_data,
					     GError **error);
/* Adopts a listening stream socket (systemd socket activation). On success the listener owns
 * @fd; on failure @fd is left open and untouched. */
MigdTransportListener *migd_transport_listen_fd(gint fd, const MigdTransportConfig *config,
						MigdTransportAcceptFunc func, gpointer user_data,
						GError **error);
/* the bound address in the address syntax, e.g. "tcp:127.0.0.1:40123" after listening on port 0 */
const gchar *migd_transport_listener_get_address(MigdTransportListener *self);
/* Stops accepting, aborts pending handshakes and removes a UNIX socket file it created.
 * Idempotent; also done when the last reference goes. */
void migd_transport_listener_close(MigdTransportListener *self);

/* ---- connecting (source side) ---- */

void migd_transport_connect_async(const gchar *address, const MigdTransportConfig *config,
				  GCancellable *cancellable, GAsyncReadyCallback callback,
				  gpointer user_data);
/* Returns the authenticated stream (transfer full). @peer_identity (optional, transfer full):
 * the server certificate's subject CN, or "plain:ADDRESS". */
GIOStream *migd_transport_connect_finish(GAsyncResult *result, gchar **peer_identity,
					 GError **error);

G_END_DECLS
