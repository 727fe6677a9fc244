/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * TLS credentials of the transport: cert_file, key_file and ca_file are read, parsed and
 * checked before anything listens or connects (certificate dates, a CA file that holds
 * certificates, and a handshake with ourselves to prove the key belongs to the certificate),
 * and, after a handshake, the policy and the identity of the peer's certificate.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <glib/gstdio.h>

#include "migd-error.h"
#include "migd-file.h"
#include "migd-transport-creds.h"

void
migd_transport_creds_free(MigdTransportCreds *creds)
{
	if (creds == NULL)
		return;
	g_clear_object(&creds->certificate);
	g_clear_object(&creds->database);
	g_free(creds);
}

/*
 * Reads one of the files: only a regular file of at most MIGD_FILE_MAX_TLS_SIZE bytes, so
 * `cert_file=/dev/zero` or a FIFO is refused before any read (migd-file.c says why that
 * keeps the main loop, where Listen and Migrate load these, responsive). Everything GIO
 * parses afterwards comes from these bytes, never from the path again.
 */
static gboolean
migd_transport_read_file(const gchar *key, const gchar *path, gchar **contents, gsize *length,
			 GError **error)
{
	g_autoptr(GError) error_local = NULL;

	if (path == NULL || path[0] == '\0') {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "TLS is required but %s is not set (configure cert_file, key_file and "
			    "ca_file, or set plain only for loopback tests)",
			    key);
		return FALSE;
	}
	/* read it ourselves: GIO's parse errors do not say which of the files was wrong */
	if (!migd_file_load_bounded(path, MIGD_FILE_MAX_TLS_SIZE, contents, length, &error_local)) {
		const gchar *reason = error_local->message;
		gsize n = strlen(path);
		/* "PATH: reason": the path is said once, after the key */
		if (strncmp(reason, path, n) == 0 && reason[n] == ':' && reason[n + 1] == ' ')
			reason += n + 2;
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "%s '%s': %s", key,
			    path, reason);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_transport_accept_any_cb(GTlsConnection *conn, GTlsCertificate *peer_cert,
			     GTlsCertificateFlags errors, gpointer user_data)
{
	return TRUE;
}

typedef struct {
	guint pending;
	GCancellable *cancellable;
	GError *error_server;
	GError *error_client;
} MigdTransportSelfTest;

static void
migd_transport_self_test_server_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	MigdTransportSelfTest *st = user_data;
	if (!g_tls_connection_handshake_finish(G_TLS_CONNECTION(source), res, &st->error_server))
		g_cancellable_cancel(st->cancellable);
	st->pending--;
}

static void
migd_transport_self_test_client_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	MigdTransportSelfTest *st = user_data;
	/* the failing side need not tell the other: stop waiting for it */
	if (!g_tls_connection_handshake_finish(G_TLS_CONNECTION(source), res, &st->error_client))
		g_cancellable_cancel(st->cancellable);
	st->pending--;
}

static gboolean
migd_transport_self_test_timeout_cb(gpointer user_data)
{
	GCancellable *cancellable = user_data;
	g_cancellable_cancel(cancellable);
	return G_SOURCE_REMOVE;
}

static GIOStream *
migd_transport_stream_from_fd(gint fd, GError **error)
{
	g_autoptr(GSocket) socket = g_socket_new_from_fd(fd, error);
	if (socket == NULL) {
		g_close(fd, NULL);
		return NULL;
	}
	return G_IO_STREAM(g_socket_connection_factory_create_connection(socket));
}

/*
 * GIO accepts a key that does not belong to the certificate and the mistake would only show as
 * an obscure handshake failure on the peer. Prove possession instead: one handshake with
 * ourselves over a socketpair, the client accepting any certificate, so only the signature
 * made with the key can fail. Runs in a private context so the caller's loop is not re-entered.
 */
static gboolean
migd_transport_check_key_matches(GTlsCertificate *certificate, const MigdTransportConfig *config,
				 GError **error)
{
	gint fds[2] = {-1, -1};
	MigdTransportSelfTest st = {0};
	g_autoptr(GMainContext) context = g_main_context_new();
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GSource) timeout = NULL;
	g_autoptr(GIOStream) base_server = NULL;
	g_autoptr(GIOStream) base_client = NULL;
	g_autoptr(GIOStream) server = NULL;
	g_autoptr(GIOStream) client = NULL;
	g_autoptr(GError) error_local = NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
		migd_set_errno_error(error, errno, "socketpair for the TLS key check");
		return FALSE;
	}
	base_server = migd_transport_stream_from_fd(fds[0], error);
	if (base_server == NULL) {
		g_close(fds[1], NULL);
		return FALSE;
	}
	base_client = migd_transport_stream_from_fd(fds[1], error);
	if (base_client == NULL)
		return FALSE;

	g_main_context_push_thread_default(context);
	server = g_tls_server_connection_new(base_server, certificate, &error_local);
	if (server != NULL)
		client = g_tls_client_connection_new(base_client, NULL, &error_local);
	if (client != NULL) {
		/* only the possession of the key is under test here, not the chain */
		g_tls_connection_set_database(G_TLS_CONNECTION(client), NULL);
		g_signal_connect(client, "accept-certificate",
				 G_CALLBACK(migd_transport_accept_any_cb), NULL);
		st.pending = 2;
		st.cancellable = cancellable;
		g_tls_connection_handshake_async(G_TLS_CONNECTION(server), G_PRIORITY_DEFAULT,
						 cancellable, migd_transport_self_test_server_cb,
						 &st);
		g_tls_connection_handshake_async(G_TLS_CONNECTION(client), G_PRIORITY_DEFAULT,
						 cancellable, migd_transport_self_test_client_cb,
						 &st);
		timeout = g_timeout_source_new_seconds(10);
		g_source_set_callback(timeout, migd_transport_self_test_timeout_cb, cancellable,
				      NULL);
		g_source_attach(timeout, context);
		while (st.pending > 0)
			g_main_context_iteration(context, TRUE);
		g_source_destroy(timeout);
	}
	g_main_context_pop_thread_default(context);

	if (error_local != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "cannot set up TLS with cert_file '%s': %s", config->cert_file,
			    error_local->message);
		return FALSE;
	}
	if (st.error_client != NULL || st.error_server != NULL) {
		/* the side that failed first has the reason; the other one was cancelled */
		const GError *reason = st.error_client;
		/* glib-networking reads its GnuTLS priorities from there: one that allows no
		 * cipher fails this handshake too, with a key that matches */
		const gchar *priority = g_getenv("G_TLS_GNUTLS_PRIORITY");
		g_autofree gchar *hint =
		    priority != NULL
			? g_strdup_printf(" (or G_TLS_GNUTLS_PRIORITY='%s' in the environment "
					  "allows no cipher)",
					  priority)
			: NULL;

		if (reason == NULL || (g_error_matches(reason, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
				       st.error_server != NULL))
			reason = st.error_server;
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "key_file '%s' does not match cert_file '%s'%s: %s", config->key_file,
			    config->cert_file, hint != NULL ? hint : "", reason->message);
		g_clear_error(&st.error_client);
		g_clear_error(&st.error_server);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_transport_check_validity(GTlsCertificate *certificate, const gchar *key, const gchar *path,
			      GError **error)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autoptr(GDateTime) not_before = g_tls_certificate_get_not_valid_before(certificate);
	g_autoptr(GDateTime) not_after = g_tls_certificate_get_not_valid_after(certificate);

	/* the peer would refuse it with a less helpful message */
	if (not_after != NULL && g_date_time_compare(now, not_after) > 0) {
		g_autofree gchar *when = g_date_time_format_iso8601(not_after);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s '%s': certificate expired at %s", key, path, when);
		return FALSE;
	}
	if (not_before != NULL && g_date_time_compare(now, not_before) < 0) {
		g_autofree gchar *when = g_date_time_format_iso8601(not_before);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s '%s': certificate not valid before %s", key, path, when);
		return FALSE;
	}
	return TRUE;
}

#define MIGD_PEM_CERT_BEGIN "-----BEGIN CERTIFICATE-----"
#define MIGD_PEM_CERT_END   "-----END CERTIFICATE-----"

/*
 * What g_tls_certificate_list_new_from_file() checked, from bytes (GLib 2.74 has no
 * list_new_from_pem): every certificate block parses; returns their number, 0 with
 * @error unset when there is none.
 */
static guint
migd_transport_count_pem_certificates(const gchar *data, gsize len, GError **error)
{
	const gchar *p = data;
	const gchar *end = data + len;
	guint n = 0;

	for (;;) {
		const gchar *begin = g_strstr_len(p, end - p, MIGD_PEM_CERT_BEGIN);
		const gchar *stop;
		g_autoptr(GTlsCertificate) certificate = NULL;

		if (begin == NULL)
			return n;
		stop = g_strstr_len(begin, end - begin, MIGD_PEM_CERT_END);
		if (stop == NULL) {
			g_set_error(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
				    "certificate %u has no end line", n + 1);
			return 0;
		}
		stop += strlen(MIGD_PEM_CERT_END);
		certificate = g_tls_certificate_new_from_pem(begin, stop - begin, error);
		if (certificate == NULL) {
			g_prefix_error(error, "certificate %u: ", n + 1);
			return 0;
		}
		n++;
		p = stop;
	}
}

MigdTransportCreds *
migd_transport_creds_load(const MigdTransportConfig *config, GError **error)
{
	GTlsBackend *backend = g_tls_backend_get_default();
	guint n_ca;
	g_autofree gchar *ca_path = NULL;
	g_autoptr(MigdTransportCreds) creds = g_new0(MigdTransportCreds, 1);
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *cert_pem = NULL;
	g_autofree gchar *key_pem = NULL;
	g_autofree gchar *ca_pem = NULL;
	gsize cert_len = 0;
	gsize key_len = 0;
	gsize ca_len = 0;
	g_autoptr(GString) pem = NULL;

	if (!g_tls_backend_supports_tls(backend)) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "no TLS backend is available to GIO: install glib-networking "
				    "(Debian: apt install glib-networking)");
		return NULL;
	}
	if (!migd_transport_read_file("cert_file", config->cert_file, &cert_pem, &cert_len,
				      error) ||
	    !migd_transport_read_file("key_file", config->key_file, &key_pem, &key_len, error) ||
	    !migd_transport_read_file("ca_file", config->ca_file, &ca_pem, &ca_len, error))
		return NULL;

	/*
	 * g_tls_certificate_new_from_files() from the bytes: the key first (GIO takes the
	 * first private key it finds), then the certificate chain, parsed as GIO parses it
	 */
	if (g_strstr_len(key_pem, key_len, "PRIVATE KEY-----") == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "key_file '%s': no PEM-encoded private key found", config->key_file);
		return NULL;
	}
	pem = g_string_new_len(key_pem, key_len);
	g_string_append_c(pem, '\n');
	g_string_append_len(pem, cert_pem, cert_len);
	creds->certificate = g_tls_certificate_new_from_pem(pem->str, pem->len, &error_local);
	/* the key's bytes go as soon as GIO has them */
	memset(pem->str, 0, pem->len);
	memset(key_pem, 0, key_len);
	if (creds->certificate == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "cert_file '%s' / key_file '%s': %s", config->cert_file,
			    config->key_file, error_local->message);
		return NULL;
	}
	if (!migd_transport_check_validity(creds->certificate, "cert_file", config->cert_file,
					   error))
		return NULL;

	/* a file without any certificate would make an empty database that trusts nobody */
	n_ca = migd_transport_count_pem_certificates(ca_pem, ca_len, &error_local);
	if (n_ca == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "ca_file '%s': %s",
			    config->ca_file,
			    error_local != NULL ? error_local->message
						: "contains no PEM certificate");
		return NULL;
	}
	/*
	 * GTlsFileDatabase reads its anchors from a path (absolute), so it opens the file once
	 * more; the read above already refused anything but a regular file of a sane size, and
	 * whoever could swap the file in between could as well have put their own CA in it
	 */
	ca_path = g_canonicalize_filename(config->ca_file, NULL);
	creds->database = g_tls_file_database_new(ca_path, &error_local);
	if (creds->database == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "ca_file '%s': %s",
			    config->ca_file, error_local->message);
		return NULL;
	}
	if (!migd_transport_check_key_matches(creds->certificate, config, error))
		return NULL;
	return g_steal_pointer(&creds);
}

/* subject CN, e.g. "migd-node-a" from "CN=migd-node-a,O=example"; the whole DN without a CN */
static gchar *
migd_transport_certificate_identity(GTlsCertificate *certificate)
{
	g_autofree gchar *dn = g_tls_certificate_get_subject_name(certificate);
	GString *cn = NULL;
	const gchar *p = NULL;

	if (dn == NULL)
		return g_strdup("unknown");
	/* RFC 4514: components separated by unescaped ',' ("\," inside a value) */
	for (p = dn; *p != '\0';) {
		if (g_ascii_strncasecmp(p, "CN=", 3) == 0) {
			cn = g_string_new(NULL);
			for (p += 3; *p != '\0' && *p != ','; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				g_string_append_c(cn, *p);
			}
			return g_string_free(cn, FALSE);
		}
		while (*p != '\0' && *p != ',') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			p++;
		}
		while (*p == ',' || *p == ' ')
			p++;
	}
	return g_steal_pointer(&dn);
}

/* defense in depth: the backend already failed the handshake for any of these */
gchar *
migd_transport_creds_peer_identity(GTlsConnection *tls, GError **error)
{
	GTlsCertificate *peer = g_tls_connection_get_peer_certificate(tls);

	if (peer == NULL) {
		g_set_error_literal(error, G_TLS_ERROR, G_TLS_ERROR_CERTIFICATE_REQUIRED,
				    "peer presented no certificate");
		return NULL;
	}
	if (g_tls_connection_get_peer_certificate_errors(tls) != 0) {
		g_set_error(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
			    "peer certificate not accepted (flags 0x%x)",
			    (guint)g_tls_connection_get_peer_certificate_errors(tls));
		return NULL;
	}
	return migd_transport_certificate_identity(peer);
}

/*
 * GIO's server side asks this signal about every client certificate, even one that verified
 * cleanly, and rejects it without a handler. The policy: accept exactly the certificates that
 * chain to ca_file for client authentication with no error at all (expiry, revocation, ...).
 */
gboolean
migd_transport_creds_accept_certificate_cb(GTlsConnection *conn, GTlsCertificate *peer_cert,
					   GTlsCertificateFlags errors, gpointer user_data)
{
	return errors == 0;
}
