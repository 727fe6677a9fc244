/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Throwaway X.509 material for the transport tests, generated at run time with the openssl CLI
 * into a temporary directory (nothing is committed) and removed afterwards.
 */
#pragma once

#include <glib.h>

typedef struct {
	gchar *dir;
	/* the CA both daemons trust, and what it signed */
	gchar *ca_crt;
	gchar *server_crt; /* CN=migd-server, SAN IP:127.0.0.1, IP:::1, DNS:localhost */
	gchar *server_key;
	gchar *client_crt; /* CN=migd-client */
	gchar *client_key;
	gchar *expired_crt; /* CN=migd-expired, valid in 2020 only */
	gchar *expired_key;
	/* an unrelated CA and what it signed */
	gchar *other_ca_crt;
	gchar *other_server_crt; /* same SAN as server_crt */
	gchar *other_server_key;
	gchar *other_client_crt;
	gchar *other_client_key;
	gchar *garbage; /* not PEM at all */
} MigdTestPki;

/* NULL with @error if openssl is missing or fails */
MigdTestPki *migd_test_pki_new(GError **error);
/* removes the directory and everything in it */
void migd_test_pki_free(MigdTestPki *pki);
