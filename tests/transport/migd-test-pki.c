/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>

#include "migd-test-pki.h"

/* a private config: the result must not depend on the system's openssl.cnf */
static const gchar migd_test_pki_cnf[] =
    "[req]\n"
    "distinguished_name = dn\n"
    "prompt = no\n"
    "[dn]\n"
    "CN = unused\n"
    "[v3_ca]\n"
    "basicConstraints = critical,CA:TRUE\n"
    "keyUsage = critical,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid:always\n"
    "[server]\n"
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature\n"
    "extendedKeyUsage = serverAuth\n"
    "subjectAltName = IP:127.0.0.1,IP:::1,DNS:localhost\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid:always\n"
    "[client]\n"
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature\n"
    "extendedKeyUsage = clientAuth\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid:always\n"
    /* `openssl ca` is the only 3.0 command that takes explicit (past) validity dates */
    "[ca]\n"
    "default_ca = ca_default\n"
    "[ca_default]\n"
    "database = index.txt\n"
    "new_certs_dir = .\n"
    "default_md = sha256\n"
    "policy = policy_any\n"
    "rand_serial = yes\n"
    "unique_subject = no\n"
    "[policy_any]\n"
    "commonName = supplied\n";

static gboolean
migd_test_pki_run(const gchar *dir, GError **error, ...)
{
	va_list args;
	const gchar *arg = NULL;
	gint status = 0;
	g_autofree gchar *err = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	g_ptr_array_add(argv, (gpointer) "openssl");
	va_start(args, error);
	while ((arg = va_arg(args, const gchar *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(args);
	g_ptr_array_add(argv, NULL);

	if (!g_spawn_sync(dir, (gchar **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
			  &err, &status, error))
		return FALSE;
	if (!g_spawn_check_wait_status(status, error)) {
		g_prefix_error(error, "openssl %s: %s: ", (const gchar *)argv->pdata[1], err);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_test_pki_ca(const gchar *dir, const gchar *name, const gchar *cn, GError **error)
{
	g_autofree gchar *crt = g_strdup_printf("%s.crt", name);
	g_autofree gchar *key = g_strdup_printf("%s.key", name);
	g_autofree gchar *subj = g_strdup_printf("/CN=%s", cn);

	return migd_test_pki_run(dir, error, "req", "-config", "pki.cnf", "-x509", "-new",
				 "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
				 "-keyout", key, "-out", crt, "-days", "2", "-subj", subj,
				 "-extensions", "v3_ca", NULL);
}

static gboolean
migd_test_pki_leaf(const gchar *dir, const gchar *ca, const gchar *name, const gchar *cn,
		   const gchar *extensions, GError **error)
{
	g_autofree gchar *crt = g_strdup_printf("%s.crt", name);
	g_autofree gchar *key = g_strdup_printf("%s.key", name);
	g_autofree gchar *csr = g_strdup_printf("%s.csr", name);
	g_autofree gchar *ca_crt = g_strdup_printf("%s.crt", ca);
	g_autofree gchar *ca_key = g_strdup_printf("%s.key", ca);
	g_autofree gchar *subj = g_strdup_printf("/CN=%s", cn);

	if (!migd_test_pki_run(dir, error, "req", "-config", "pki.cnf", "-new", "-newkey", "ec",
			       "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
			       "-out", csr, "-subj", subj, NULL))
		return FALSE;
	return migd_test_pki_run(dir, error, "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey",
				 ca_key, "-set_serial", "0x1234", "-days", "2", "-extfile",
				 "pki.cnf", "-extensions", extensions, "-out", crt, NULL);
}

static gboolean
migd_test_pki_expired(const gchar *dir, GError **error)
{
	g_autofree gchar *index = g_build_filename(dir, "index.txt", NULL);

	if (!g_file_set_contents(index, "", 0, error))
		return FALSE;
	if (!migd_test_pki_run(dir, error, "req", "-config", "pki.cnf", "-new", "-newkey", "ec",
			       "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
			       "expired.key", "-out", "expired.csr", "-subj", "/CN=migd-expired",
			       NULL))
		return FALSE;
	return migd_test_pki_run(dir, error, "ca", "-config", "pki.cnf", "-batch", "-notext",
				 "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "expired.csr",
				 "-out", "expired.crt", "-startdate", "20200101000000Z", "-enddate",
				 "20200102000000Z", "-extensions", "client", NULL);
}

MigdTestPki *
migd_test_pki_new(GError **error)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-test-pki-XXXXXX", error);
	g_autofree gchar *cnf = NULL;
	MigdTestPki *pki = NULL;

	if (dir == NULL)
		return NULL;
	pki = g_new0(MigdTestPki, 1);
	pki->dir = g_steal_pointer(&dir);
	cnf = g_build_filename(pki->dir, "pki.cnf", NULL);
	if (!g_file_set_contents(cnf, migd_test_pki_cnf, -1, error) ||
	    !migd_test_pki_ca(pki->dir, "ca", "migd-test-ca", error) ||
	    !migd_test_pki_ca(pki->dir, "other-ca", "migd-other-ca", error) ||
	    !migd_test_pki_leaf(pki->dir, "ca", "server", "migd-server", "server", error) ||
	    !migd_test_pki_leaf(pki->dir, "ca", "client", "migd-client", "client", error) ||
	    !migd_test_pki_leaf(pki->dir, "other-ca", "other-server", "migd-other-server", "server",
				error) ||
	    !migd_test_pki_leaf(pki->dir, "other-ca", "other-client", "migd-other-client", "client",
				error) ||
	    !migd_test_pki_expired(pki->dir, error)) {
		migd_test_pki_free(pki);
		return NULL;
	}
	pki->ca_crt = g_build_filename(pki->dir, "ca.crt", NULL);
	pki->server_crt = g_build_filename(pki->dir, "server.crt", NULL);
	pki->server_key = g_build_filename(pki->dir, "server.key", NULL);
	pki->client_crt = g_build_filename(pki->dir, "client.crt", NULL);
	pki->client_key = g_build_filename(pki->dir, "client.key", NULL);
	pki->expired_crt = g_build_filename(pki->dir, "expired.crt", NULL);
	pki->expired_key = g_build_filename(pki->dir, "expired.key", NULL);
	pki->other_ca_crt = g_build_filename(pki->dir, "other-ca.crt", NULL);
	pki->other_server_crt = g_build_filename(pki->dir, "other-server.crt", NULL);
	pki->other_server_key = g_build_filename(pki->dir, "other-server.key", NULL);
	pki->other_client_crt = g_build_filename(pki->dir, "other-client.crt", NULL);
	pki->other_client_key = g_build_filename(pki->dir, "other-client.key", NULL);
	pki->garbage = g_build_filename(pki->dir, "garbage.pem", NULL);
	if (!g_file_set_contents(pki->garbage, "this is not a PEM file\n", -1, error)) {
		migd_test_pki_free(pki);
		return NULL;
	}
	return pki;
}

void
migd_test_pki_free(MigdTestPki *pki)
{
	if (pki == NULL)
		return;
	if (pki->dir != NULL) {
		g_autoptr(GDir) dir = g_dir_open(pki->dir, 0, NULL);
		const gchar *name = NULL;

		while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
			g_autofree gchar *path = g_build_filename(pki->dir, name, NULL);
			g_unlink(path);
		}
		g_rmdir(pki->dir);
	}
	g_free(pki->dir);
	g_free(pki->ca_crt);
	g_free(pki->server_crt);
	g_free(pki->server_key);
	g_free(pki->client_crt);
	g_free(pki->client_key);
	g_free(pki->expired_crt);
	g_free(pki->expired_key);
	g_free(pki->other_ca_crt);
	g_free(pki->other_server_crt);
	g_free(pki->other_server_key);
	g_free(pki->other_client_crt);
	g_free(pki->other_client_key);
	g_free(pki->garbage);
	g_free(pki);
}
