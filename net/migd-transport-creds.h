/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The TLS credentials of the transport, shared by the listener and the connector of
 * migd-transport.c: loading and checking cert_file, key_file and ca_file, the policy for the
 * client certificates a listener accepts, and the identity of an authenticated peer. Internal
 * to the net layer; not part of the transport API.
 */
#pragma once

#include <gio/gio.h>

#include "migd-transport.h"

G_BEGIN_DECLS

/* the TLS material loaded from the files, shared by every connection of a listener */
typedef struct {
	GTlsCertificate *certificate;
	GTlsDatabase *database;
} MigdTransportCreds;

void migd_transport_creds_free(MigdTransportCreds *creds);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdTransportCreds, migd_transport_creds_free)

/* Checks the TLS backend and the files of @config (readable, parseable, key matching the
 * certificate, not expired) and loads them. */
MigdTransportCreds *migd_transport_creds_load(const MigdTransportConfig *config, GError **error);
/* the "accept-certificate" handler of a server connection: exactly the certificates without
 * any error */
gboolean migd_transport_creds_accept_certificate_cb(GTlsConnection *conn,
						    GTlsCertificate *peer_cert,
						    GTlsCertificateFlags errors,
						    gpointer user_data);
/* after a handshake: the subject CN of the peer's certificate (the DN without a CN) */
gchar *migd_transport_creds_peer_identity(GTlsConnection *tls, GError **error);

G_END_DECLS
