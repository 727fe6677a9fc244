/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Socket activation as systemd does it (a listening socket as fd 3, LISTEN_FDS=1 and
 * LISTEN_PID set to the daemon's pid): without a [listen] setup the daemon says so once,
 * closes the socket and goes on serving D-Bus; with plain=true on a unix socket a migration
 * arrives through it.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>

#include "dbus-test-util.h"
#include "migd-test-pki.h"

#define SRC_NAME "org.vfiomigd.Test.SaSource"
#define DST_NAME "org.vfiomigd.Test.SaDest"

typedef struct {
	gchar *dir;
	gchar *log;	    /* the socket-activated daemon's stderr */
	gchar *socket_name; /* abstract unix name, without the @ */
	DtDaemon *dst;	    /* socket activated; not from dt_daemon_start */
} SaFixture;

static void
sa_exit_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	((DtDaemon *)user_data)->exited = TRUE;
}

static void
sa_appeared_cb(GDBusConnection *c, const gchar *name, const gchar *owner, gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
}

static void
sa_completed_cb(GDBusConnection *c, const gchar *sender, const gchar *path, const gchar *iface,
		const gchar *signal, GVariant *params, gpointer user_data)
{
	DtDaemon *daemon = user_data;
	g_hash_table_insert(daemon->completed, g_strdup(path), g_variant_ref(params));
}

/* a listening unix socket handed to vfio-migd as systemd hands vfio-migd.socket's */
static DtDaemon *
sa_start(SaFixture *fx, const gchar *config_text, const gchar *const *specs)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
	g_autoptr(GSocket) sock = NULL;
	g_autoptr(GSocketAddress) addr = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *conf = g_build_filename(fx->dir, "vfio-migd.conf", NULL);
	DtDaemon *daemon = g_new0(DtDaemon, 1);
	gboolean appeared = FALSE;
	gint64 deadline;
	guint watch;

	assert_true(g_file_set_contents(conf, config_text, -1, NULL));
	sock = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
			    &error);
	assert_non_null(sock);
	addr = g_unix_socket_address_new_with_type(fx->socket_name, -1,
						   G_UNIX_SOCKET_ADDRESS_ABSTRACT);
	if (!g_socket_bind(sock, addr, FALSE, &error) || !g_socket_listen(sock, &error))
		fail_msg("listening socket: %s", error->message);

	/* LISTEN_PID must be the daemon's own: the shell's pid, which exec keeps */
	g_ptr_array_add(argv, "/bin/sh");
	g_ptr_array_add(argv, "-c");
	g_ptr_array_add(argv, "LISTEN_PID=$$; export LISTEN_PID; exec \"$0\" \"$@\"");
	g_ptr_array_add(argv, (gpointer)dt_migd_path());
	g_ptr_array_add(argv, "--session");
	g_ptr_array_add(argv, "--bus-name");
	g_ptr_array_add(argv, DST_NAME);
	g_ptr_array_add(argv, "--config");
	g_ptr_array_add(argv, conf);
	for (guint i = 0; specs != NULL && specs[i] != NULL; i++) {
		g_ptr_array_add(argv, "--sim-device");
		g_ptr_array_add(argv, (gpointer)specs[i]);
	}
	g_ptr_array_add(argv, NULL);
	g_subprocess_launcher_setenv(launcher, "LISTEN_FDS", "1", TRUE);
	g_subprocess_launcher_unsetenv(launcher, "LISTEN_FDNAMES");
	g_subprocess_launcher_take_fd(launcher, dup(g_socket_get_fd(sock)), 3);
	g_subprocess_launcher_set_stderr_file_path(launcher, fx->log);

	daemon->bus_name = g_strdup(DST_NAME);
	daemon->completed =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_variant_unref);
	daemon->completed_id = g_dbus_connection_signal_subscribe(
	    dt_connection(), DST_NAME, DT_JOB_IFACE, "Completed", NULL, NULL,
	    G_DBUS_SIGNAL_FLAGS_NONE, sa_completed_cb, daemon, NULL);
	daemon->process =
	    g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &error);
	if (daemon->process == NULL)
		fail_msg("spawn: %s", error->message);
	fx->dst = daemon;
	g_subprocess_wait_async(daemon->process, NULL, sa_exit_cb, daemon);
	watch =
	    g_bus_watch_name_on_connection(dt_connection(), DST_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
					   sa_appeared_cb, NULL, &appeared, NULL);
	deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;
	while (!appeared && !daemon->exited && g_get_monotonic_time() < deadline) {
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(1000);
	}
	g_bus_unwatch_name(watch);
	if (!appeared)
		fail_msg("socket-activated vfio-migd %s",
			 daemon->exited ? "exited at start" : "did not own its name");
	/* ours closes with @sock: from now on only the daemon can hold the socket */
	return daemon;
}

/* SIGTERM, a clean exit, and the daemon's stderr */
static gchar *
sa_stop(SaFixture *fx)
{
	DtDaemon *daemon = fx->dst;
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;
	gchar *log = NULL;

	g_subprocess_send_signal(daemon->process, SIGTERM);
	while (!daemon->exited && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	assert_true(daemon->exited);
	assert_true(g_subprocess_get_if_exited(daemon->process));
	assert_int_equal(g_subprocess_get_exit_status(daemon->process), 0);
	fx->dst = NULL;
	g_dbus_connection_signal_unsubscribe(dt_connection(), daemon->completed_id);
	g_hash_table_unref(daemon->completed);
	g_object_unref(daemon->process);
	g_free(daemon->bus_name);
	g_free(daemon);
	assert_true(g_file_get_contents(fx->log, &log, NULL, NULL));
	return log;
}

static guint
count(const gchar *haystack, const gchar *needle)
{
	guint n = 0;
	for (const gchar *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

static gboolean
sa_connect(SaFixture *fx, GError **error)
{
	g_autoptr(GSocket) sock = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
					       G_SOCKET_PROTOCOL_DEFAULT, error);
	g_autoptr(GSocketAddress) addr = g_unix_socket_address_new_with_type(
	    fx->socket_name, -1, G_UNIX_SOCKET_ADDRESS_ABSTRACT);

	return sock != NULL && g_socket_connect(sock, addr, NULL, error);
}

/* the shipped configuration (nothing in [listen]): one error, D-Bus goes on, socket closed */
static void
test_no_listen_setup(void **state)
{
	SaFixture *fx = *state;
	const gchar *const specs[] = {"mlx5:seed=1", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree gchar *log = NULL;

	sa_start(fx, "# the example: everything commented out\n", specs);
	/* a peer knocking: the socket is not served (closed: refused), the daemon lives */
	assert_false(sa_connect(fx, &error));
	assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED));
	g_clear_error(&error);
	reply = dt_manager_call(fx->dst, "ListDevices", NULL, &error);
	if (reply == NULL)
		fail_msg("ListDevices: %s", error->message);
	assert_int_equal(dt_n_devices(fx->dst), 1);
	assert_false(fx->dst->exited);

	log = sa_stop(fx);
	if (count(log, "is not served") != 1)
		fail_msg("expected one error, got:\n%s", log);
	if (strstr(log, "has no [listen] setup: set cert=, key= and ca= (PEM files) in [listen], "
			"or plain=true for a unix: socket") == NULL)
		fail_msg("the error does not say what to configure:\n%s", log);
	assert_null(strstr(log, "cert_file"));
}

/* TLS files that do not exist: the same, the error names FILE:LINE, [listen] and the key */
static void
test_bad_tls_files(void **state)
{
	SaFixture *fx = *state;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *log = NULL;
	g_autofree gchar *expect = NULL;

	sa_start(fx,
		 "[listen]\ncert=/nonexistent/cert.pem\nkey=/nonexistent/key.pem\n"
		 "ca=/nonexistent/ca.pem\n",
		 NULL);
	assert_false(sa_connect(fx, &error));
	assert_false(fx->dst->exited);
	log = sa_stop(fx);
	expect = g_strdup_printf("is not served, D-Bus is: %s/vfio-migd.conf:2: [listen] cert: ",
				 fx->dir);
	if (count(log, "is not served") != 1 || strstr(log, expect) == NULL)
		fail_msg("expected one '%s', got:\n%s", expect, log);
}

/* without a socket from systemd, the same bad files stop the start, saying where */
static void
test_bad_tls_files_no_socket(void **state)
{
	SaFixture *fx = *state;
	g_autofree gchar *conf = g_build_filename(fx->dir, "tls.conf", NULL);
	g_autofree gchar *err = NULL;
	g_autofree gchar *expect = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;

	/* not PEM: the private key is refused first, on line 3 */
	assert_true(g_file_set_contents(conf,
					"[listen]\n# TLS\nkey=/etc/hostname\ncert=/etc/hostname\n"
					"ca=/etc/hostname\n",
					-1, NULL));
	proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDERR_PIPE, &error, dt_migd_path(), "--session",
				"--config", conf, NULL);
	assert_non_null(proc);
	assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, NULL, &err, &error));
	assert_true(g_subprocess_get_if_exited(proc));
	assert_int_equal(g_subprocess_get_exit_status(proc), 1);
	expect = g_strdup_printf("vfio-migd: %s:3: [listen] key: key '/etc/hostname': ", conf);
	if (strstr(err, expect) == NULL || strstr(err, "key_file") != NULL)
		fail_msg("expected '%s' in:\n%s", expect, err);
	g_clear_pointer(&err, g_free);
	g_clear_object(&proc);
	/* cert and key without ca: the missing key is named */
	assert_true(g_file_set_contents(conf, "[listen]\ncert=/etc/hostname\nkey=/etc/hostname\n",
					-1, NULL));
	proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDERR_PIPE, &error, dt_migd_path(), "--session",
				"--config", conf, NULL);
	assert_non_null(proc);
	assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, NULL, &err, &error));
	assert_int_equal(g_subprocess_get_exit_status(proc), 1);
	g_free(expect);
	expect = g_strdup_printf("vfio-migd: %s:1: [listen] ca: not set: TLS needs cert=, key= "
				 "and ca= (PEM files)",
				 conf);
	if (strstr(err, expect) == NULL)
		fail_msg("expected '%s' in:\n%s", expect, err);
}

/* real TLS files: a key of another certificate stops the start; the right ones serve */
static void
test_tls_files_checked(void **state)
{
	SaFixture *fx = *state;
	const gchar *const specs[] = {"mlx5:seed=1", NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *conf = g_build_filename(fx->dir, "tls.conf", NULL);
	g_autofree gchar *text = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *expect = NULL;
	g_autofree gchar *log = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	MigdTestPki *pki = migd_test_pki_new(&error);

	if (pki == NULL)
		fail_msg("certificates: %s", error->message);
	text = g_strdup_printf("[listen]\ncert=%s\nkey=%s\nca=%s\n", pki->server_crt,
			       pki->client_key, pki->ca_crt);
	assert_true(g_file_set_contents(conf, text, -1, NULL));
	proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDERR_PIPE, &error, dt_migd_path(), "--session",
				"--config", conf, NULL);
	assert_non_null(proc);
	assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, NULL, &err, &error));
	assert_int_equal(g_subprocess_get_exit_status(proc), 1);
	expect = g_strdup_printf("vfio-migd: %s:3: [listen] key: key '%s' does not match cert '%s'",
				 conf, pki->client_key, pki->server_crt);
	if (strstr(err, expect) == NULL)
		fail_msg("expected '%s' in:\n%s", expect, err);

	g_free(text);
	text = g_strdup_printf("[listen]\ncert=%s\nkey=%s\nca=%s\n", pki->server_crt,
			       pki->server_key, pki->ca_crt);
	sa_start(fx, text, specs);
	log = sa_stop(fx);
	if (strstr(log, "is not served") != NULL || strstr(log, "(socket activation)") == NULL)
		fail_msg("the socket is not served with good TLS files:\n%s", log);
	migd_test_pki_free(pki);
}

/* plain=true on the unix socket systemd passed: a migration arrives through it */
static void
test_plain_unix_migration(void **state)
{
	SaFixture *fx = *state;
	const gchar *const src_specs[] = {"mlx5:state_size=4M,seed=1", NULL};
	const gchar *const dst_specs[] = {"mlx5:seed=101", NULL};
	const gchar *const all[] = {NULL};
	g_auto(GVariantBuilder) options = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	g_autoptr(DtDaemon) src = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *address = g_strdup_printf("unix:@%s", fx->socket_name);
	g_autofree gchar *job = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *dst_phase = NULL;
	g_autofree gchar *log = NULL;

	sa_start(fx, "[listen]\nplain=true\n", dst_specs);
	src = dt_daemon_start(SRC_NAME, src_specs);
	assert_true(dt_device_digest(src, 0) != dt_device_digest(fx->dst, 0));
	g_variant_builder_add(&options, "{sv}", "plain", g_variant_new_boolean(TRUE));
	reply = dt_manager_call(src, "Migrate",
				g_variant_new("(s^asa{sv})", address, all, &options), &error);
	if (reply == NULL)
		fail_msg("Migrate: %s", error->message);
	g_variant_get(reply, "(o)", &job);
	if (!dt_job_wait_completed(src, job, &message))
		fail_msg("migration through the activated socket failed: %s", message);
	dst_phase = dt_job_wait_final(fx->dst, "/org/vfiomigd/Migd1/jobs/1");
	assert_string_equal(dst_phase, "completed");
	assert_true(dt_device_digest(fx->dst, 0) == dt_device_digest(src, 0));
	log = sa_stop(fx);
	assert_null(strstr(log, "is not served"));
	assert_non_null(strstr(log, "(socket activation)"));
}

/* StopListening closes the socket systemd passed: nobody accepts on it any more */
static void
test_stop_activated_listener(void **state)
{
	SaFixture *fx = *state;
	const gchar *const dst_specs[] = {"mlx5:seed=101", NULL};
	g_autoptr(GVariant) before = NULL;
	g_autoptr(GVariant) stopped = NULL;
	g_autoptr(GVariant) after = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *log = NULL;
	g_autofree gchar *again = NULL;
	g_auto(GStrv) listeners = NULL;
	g_auto(GStrv) none = NULL;

	sa_start(fx, "[listen]\nplain=true\n", dst_specs);
	assert_true(sa_connect(fx, NULL));
	before = dt_manager_call(fx->dst, "ListListeners", NULL, &error);
	assert_non_null(before);
	g_variant_get(before, "(^as)", &listeners);
	assert_int_equal(g_strv_length(listeners), 1);
	if (strstr(listeners[0], fx->socket_name) == NULL)
		fail_msg("ListListeners: %s", listeners[0]);
	stopped = dt_manager_call(fx->dst, "StopListening", NULL, &error);
	if (stopped == NULL)
		fail_msg("StopListening: %s", error->message);
	after = dt_manager_call(fx->dst, "ListListeners", NULL, &error);
	assert_non_null(after);
	g_variant_get(after, "(^as)", &none);
	assert_int_equal(g_strv_length(none), 0);
	/* the daemon held the only copy: the socket is closed */
	assert_false(sa_connect(fx, &error));
	g_clear_error(&error);
	/* and the daemon can listen again, by Listen */
	again = dt_listen_plain(fx->dst);
	assert_non_null(again);
	log = sa_stop(fx);
	assert_non_null(strstr(log, "(socket activation)"));
}

static int
sa_setup(void **state)
{
	static guint n;
	SaFixture *fx = g_new0(SaFixture, 1);

	fx->dir = g_dir_make_tmp("migd-sa-XXXXXX", NULL);
	fx->log = g_build_filename(fx->dir, "stderr.log", NULL);
	fx->socket_name = g_strdup_printf("migd-sa-%d-%u", (gint)getpid(), ++n);
	*state = fx;
	return 0;
}

static int
sa_teardown(void **state)
{
	SaFixture *fx = *state;
	g_autofree gchar *cmd = NULL;

	/* a failed test (cmocka longjmp) leaves its daemon: kill it */
	if (fx->dst != NULL) {
		g_subprocess_force_exit(fx->dst->process);
		g_subprocess_wait(fx->dst->process, NULL, NULL);
	}
	cmd = g_strdup_printf("rm -rf '%s'", fx->dir);
	g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL);
	g_free(fx->dir);
	g_free(fx->log);
	g_free(fx->socket_name);
	g_free(fx);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_no_listen_setup, sa_setup, sa_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_tls_files, sa_setup, sa_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_tls_files_no_socket, sa_setup, sa_teardown),
	    cmocka_unit_test_setup_teardown(test_tls_files_checked, sa_setup, sa_teardown),
	    cmocka_unit_test_setup_teardown(test_plain_unix_migration, sa_setup, sa_teardown),
	    cmocka_unit_test_setup_teardown(test_stop_activated_listener, sa_setup, sa_teardown),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests(tests, dt_bus_up, dt_bus_down);
}
