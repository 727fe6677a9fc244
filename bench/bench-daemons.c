/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two vfio-migd processes migrating one simulated device over mutual TLS (bench-daemons.h).
 */
#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>

#include "bench-daemons.h"
#include "migd-test-pki.h"

#define BENCH_MANAGER_PATH  "/org/vfiomigd/Migd1"
#define BENCH_MANAGER_IFACE "org.vfiomigd.Migd1.Manager"
#define BENCH_JOB_IFACE	    "org.vfiomigd.Migd1.Job"
/* D-Bus calls that return at once; the migration itself is bounded by the run's timeout */
#define BENCH_CALL_TIMEOUT_MS 30000

static const gchar *const bench_names[] = {"org.vfiomigd.Bench.Source",
					   "org.vfiomigd.Bench.Destination"};
static const gchar *const bench_roles[] = {"source", "destination"};

typedef struct {
	GSubprocess *process;
	gchar *log_path;
	gboolean exited;
	guint completed_id;
	gchar *completed_path; /* the first job that completed, and how */
	gboolean success;
	gchar *message;
} BenchDaemon;

typedef struct {
	const BenchDaemonsConfig *config;
	gchar *dir;
	MigdTestPki *pki;
	GTestDBus *bus;
	GDBusConnection *conn;
	BenchDaemon daemons[2];
	gint64 deadline;
} BenchRun;

static void
bench_daemon_exit_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	BenchDaemon *daemon = user_data;

	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	daemon->exited = TRUE;
}

static void
bench_completed_cb(GDBusConnection *c, const gchar *sender, const gchar *path, const gchar *iface,
		   const gchar *signal, GVariant *params, gpointer user_data)
{
	BenchDaemon *daemon = user_data;

	if (daemon->completed_path != NULL)
		return;
	daemon->completed_path = g_strdup(path);
	g_variant_get(params, "(bs)", &daemon->success, &daemon->message);
}

/* the last lines of a daemon's log, for an error message */
static gchar *
bench_log_tail(BenchDaemon *daemon)
{
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;
	guint n;

	if (daemon->log_path == NULL || !g_file_get_contents(daemon->log_path, &text, NULL, NULL))
		return g_strdup("(no log)");
	lines = g_strsplit(g_strchomp(text), "\n", -1);
	n = g_strv_length(lines);
	return g_strjoinv("\n  | ", lines + (n > 8 ? n - 8 : 0));
}

static gboolean
bench_expired(BenchRun *run, const gchar *what, GError **error)
{
	if (g_get_monotonic_time() < run->deadline)
		return FALSE;
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s: not within %u s", what,
		    run->config->timeout_s);
	return TRUE;
}

/* kB from a "Key:   N kB" line of /proc/PID/status */
static gboolean
bench_proc_status_kib(GSubprocess *process, const gchar *key, guint64 *kib, GError **error)
{
	g_autofree gchar *path =
	    g_strdup_printf("/proc/%s/status", g_subprocess_get_identifier(process));
	g_autofree gchar *text = NULL;
	g_autofree gchar *needle = g_strdup_printf("\n%s:", key);
	const gchar *at;

	if (g_subprocess_get_identifier(process) == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "the daemon has exited");
		return FALSE;
	}
	if (!g_file_get_contents(path, &text, NULL, error))
		return FALSE;
	at = strstr(text, needle);
	if (at == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s has no %s", path, key);
		return FALSE;
	}
	*kib = g_ascii_strtoull(at + strlen(needle), NULL, 10);
	return TRUE;
}

static gboolean
bench_daemon_start(BenchRun *run, BenchDaemonRole role, GError **error)
{
	BenchDaemon *daemon = &run->daemons[role];
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_autofree gchar *config_path = g_build_filename(run->dir, "vfio-migd.conf", NULL);
	g_autofree gchar *spec =
	    g_strdup_printf("mlx5:state_size=%" G_GUINT64_FORMAT ",seed=%u",
			    run->config->state_size, role == BENCH_DAEMON_SOURCE ? 1 : 2);
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	gboolean owned = FALSE;

	daemon->log_path = g_strdup_printf("%s/%s.log", run->dir, bench_roles[role]);
	g_subprocess_launcher_set_stdout_file_path(launcher, daemon->log_path);
	g_ptr_array_add(argv, (gpointer)run->config->migd);
	g_ptr_array_add(argv, (gpointer) "--session");
	g_ptr_array_add(argv, (gpointer) "--bus-name");
	g_ptr_array_add(argv, (gpointer)bench_names[role]);
	g_ptr_array_add(argv, (gpointer) "--config");
	g_ptr_array_add(argv, config_path);
	if (run->config->plugin_dir != NULL) {
		g_ptr_array_add(argv, (gpointer) "--plugin-dir");
		g_ptr_array_add(argv, (gpointer)run->config->plugin_dir);
	}
	g_ptr_array_add(argv, (gpointer) "--sim-device");
	g_ptr_array_add(argv, spec);
	g_ptr_array_add(argv, NULL);

	/* every Completed of this daemon from before it starts: a job may end before its path
	 * is known here */
	daemon->completed_id = g_dbus_connection_signal_subscribe(
	    run->conn, bench_names[role], BENCH_JOB_IFACE, "Completed", NULL, NULL,
	    G_DBUS_SIGNAL_FLAGS_NONE, bench_completed_cb, daemon, NULL);
	/* GTestDBus set DBUS_SESSION_BUS_ADDRESS: the daemon inherits the private bus */
	daemon->process =
	    g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, error);
	if (daemon->process == NULL) {
		g_prefix_error(error, "%s: ", run->config->migd);
		return FALSE;
	}
	g_subprocess_wait_async(daemon->process, NULL, bench_daemon_exit_cb, daemon);
	while (!owned) {
		g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
		    run->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
		    "org.freedesktop.DBus", "NameHasOwner", g_variant_new("(s)", bench_names[role]),
		    G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE, BENCH_CALL_TIMEOUT_MS, NULL,
		    error);

		if (reply == NULL)
			return FALSE;
		g_variant_get(reply, "(b)", &owned);
		while (g_main_context_iteration(NULL, FALSE))
			;
		if (!owned && daemon->exited) {
			g_autofree gchar *tail = bench_log_tail(daemon);
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "the %s daemon exited at start:\n  | %s", bench_roles[role],
				    tail);
			return FALSE;
		}
		if (!owned && bench_expired(run, "the daemons' start", error))
			return FALSE;
		if (!owned)
			g_usleep(20000);
	}
	return TRUE;
}

static GVariant *
bench_call(BenchRun *run, BenchDaemonRole role, const gchar *path, const gchar *iface,
	   const gchar *method, GVariant *params, const gchar *reply_type, GError **error)
{
	GVariant *reply =
	    g_dbus_connection_call_sync(run->conn, bench_names[role], path, iface, method, params,
					reply_type != NULL ? G_VARIANT_TYPE(reply_type) : NULL,
					G_DBUS_CALL_FLAGS_NONE, BENCH_CALL_TIMEOUT_MS, NULL, error);

	if (reply == NULL) {
		g_dbus_error_strip_remote_error(*error);
		g_prefix_error(error, "%s on the %s daemon: ", method, bench_roles[role]);
	}
	return reply;
}

static void
bench_add_tls(BenchRun *run, GVariantBuilder *options, BenchDaemonRole role)
{
	MigdTestPki *pki = run->pki;

	g_variant_builder_add(
	    options, "{sv}", "cert",
	    g_variant_new_string(role == BENCH_DAEMON_SOURCE ? pki->client_crt : pki->server_crt));
	g_variant_builder_add(
	    options, "{sv}", "key",
	    g_variant_new_string(role == BENCH_DAEMON_SOURCE ? pki->client_key : pki->server_key));
	g_variant_builder_add(options, "{sv}", "ca", g_variant_new_string(pki->ca_crt));
}

/* the sim-digest of the daemon's one device, hashed on the daemon's worker thread */
static gboolean
bench_digest(BenchRun *run, BenchDaemonRole role, guint64 *digest, GError **error)
{
	for (;;) {
		g_autoptr(GVariant) reply =
		    bench_call(run, role, BENCH_MANAGER_PATH, BENCH_MANAGER_IFACE, "ListDevices",
			       NULL, "(a(sa{sv}))", error);
		g_autoptr(GVariant) devices = NULL;
		g_autoptr(GVariant) props = NULL;

		if (reply == NULL)
			return FALSE;
		devices = g_variant_get_child_value(reply, 0);
		if (g_variant_n_children(devices) != 1) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "the %s daemon lists %zu devices, not 1", bench_roles[role],
				    g_variant_n_children(devices));
			return FALSE;
		}
		g_variant_get_child(devices, 0, "(s@a{sv})", NULL, &props);
		if (g_variant_lookup(props, "sim-digest", "t", digest))
			return TRUE;
		if (bench_expired(run, "the devices' digests", error))
			return FALSE;
		g_usleep(50000);
	}
}

static gboolean
bench_migrate(BenchRun *run, BenchDaemonsResult *result, GError **error)
{
	g_auto(GVariantBuilder) listen = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	g_auto(GVariantBuilder) migrate = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	const gchar *const all[] = {NULL};
	g_autoptr(GVariant) listened = NULL;
	g_autoptr(GVariant) started = NULL;
	g_autoptr(GVariant) bytes = NULL;
	const gchar *address = NULL;
	const gchar *job = NULL;
	gint64 start;

	bench_add_tls(run, &listen, BENCH_DAEMON_DESTINATION);
	listened = bench_call(run, BENCH_DAEMON_DESTINATION, BENCH_MANAGER_PATH,
			      BENCH_MANAGER_IFACE, "Listen",
			      g_variant_new("(sa{sv})", "tcp:127.0.0.1:0", &listen), "(s)", error);
	if (listened == NULL)
		return FALSE;
	g_variant_get(listened, "(&s)", &address);

	for (guint role = 0; role < 2; role++) {
		if (!bench_proc_status_kib(run->daemons[role].process, "VmHWM",
					   &result->rss_idle_kib[role], error))
			return FALSE;
	}

	bench_add_tls(run, &migrate, BENCH_DAEMON_SOURCE);
	/* the server certificate's SAN carries 127.0.0.1, the address's host */
	g_variant_builder_add(&migrate, "{sv}", "timeout-s",
			      g_variant_new_uint32(run->config->timeout_s));
	start = g_get_monotonic_time();
	started =
	    bench_call(run, BENCH_DAEMON_SOURCE, BENCH_MANAGER_PATH, BENCH_MANAGER_IFACE, "Migrate",
		       g_variant_new("(s^asa{sv})", address, all, &migrate), "(o)", error);
	if (started == NULL)
		return FALSE;
	g_variant_get(started, "(&o)", &job);

	/* both ends' jobs: the destination's ends once its device runs */
	while (run->daemons[0].completed_path == NULL || run->daemons[1].completed_path == NULL) {
		if (run->daemons[0].exited || run->daemons[1].exited) {
			BenchDaemon *gone = &run->daemons[run->daemons[0].exited ? 0 : 1];
			g_autofree gchar *tail = bench_log_tail(gone);
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "the %s daemon exited during the migration:\n  | %s",
				    bench_roles[gone == &run->daemons[0] ? 0 : 1], tail);
			return FALSE;
		}
		if (bench_expired(run, "the migration", error))
			return FALSE;
		g_main_context_iteration(NULL, TRUE);
		if (run->daemons[0].completed_path != NULL && result->seconds == 0)
			result->seconds =
			    (g_get_monotonic_time() - start) / (gdouble)G_USEC_PER_SEC;
	}
	for (guint role = 0; role < 2; role++) {
		BenchDaemon *daemon = &run->daemons[role];

		if (!daemon->success) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "the %s job %s failed: %s", bench_roles[role],
				    daemon->completed_path, daemon->message);
			return FALSE;
		}
		if (!bench_proc_status_kib(daemon->process, "VmHWM", &result->hwm_kib[role], error))
			return FALSE;
	}

	bytes = bench_call(run, BENCH_DAEMON_SOURCE, job, "org.freedesktop.DBus.Properties", "Get",
			   g_variant_new("(ss)", BENCH_JOB_IFACE, "Bytes"), "(v)", error);
	if (bytes == NULL)
		return FALSE;
	{
		g_autoptr(GVariant) value = NULL;
		g_variant_get(bytes, "(v)", &value);
		result->bytes = g_variant_get_uint64(value);
	}

	if (run->config->verify) {
		guint64 digest[2];

		for (guint role = 0; role < 2; role++) {
			if (!bench_digest(run, role, &digest[role], error))
				return FALSE;
		}
		if (digest[0] != digest[1]) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "the device states differ after the migration (digests "
				    "%016" G_GINT64_MODIFIER "x and %016" G_GINT64_MODIFIER "x)",
				    digest[0], digest[1]);
			return FALSE;
		}
		result->verified = TRUE;
	}
	return TRUE;
}

/* SIGTERM, then a clean exit within 30 s, or SIGKILL; FALSE when it was not clean */
static gboolean
bench_daemon_stop(BenchDaemon *daemon, const gchar *role, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

	if (daemon->process == NULL)
		return TRUE;
	if (!daemon->exited)
		g_subprocess_send_signal(daemon->process, SIGTERM);
	while (!daemon->exited && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	if (!daemon->exited) {
		g_subprocess_force_exit(daemon->process);
		while (!daemon->exited)
			g_main_context_iteration(NULL, TRUE);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "the %s daemon did not exit within 30 s of SIGTERM", role);
		return FALSE;
	}
	if (!g_subprocess_get_if_exited(daemon->process) ||
	    g_subprocess_get_exit_status(daemon->process) != 0) {
		g_autofree gchar *tail = bench_log_tail(daemon);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "the %s daemon did not exit cleanly on SIGTERM:\n  | %s", role, tail);
		return FALSE;
	}
	return TRUE;
}

static void
bench_rm_rf(const gchar *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *path = g_build_filename(dir, name, NULL);
		g_unlink(path);
	}
	g_rmdir(dir);
}

/* everything this run started is stopped, whatever happened; the first error is kept */
static gboolean
bench_run_end(BenchRun *run, gboolean ok, GError **error)
{
	for (guint role = 0; role < 2; role++) {
		BenchDaemon *daemon = &run->daemons[role];
		g_autoptr(GError) stop_error = NULL;

		if (!bench_daemon_stop(daemon, bench_roles[role], &stop_error) && ok) {
			g_propagate_error(error, g_steal_pointer(&stop_error));
			ok = FALSE;
		}
		if (daemon->completed_id != 0)
			g_dbus_connection_signal_unsubscribe(run->conn, daemon->completed_id);
		g_clear_object(&daemon->process);
		g_free(daemon->log_path);
		g_free(daemon->completed_path);
		g_free(daemon->message);
	}
	if (run->conn != NULL) {
		g_dbus_connection_close_sync(run->conn, NULL, NULL);
		g_clear_object(&run->conn);
	}
	if (run->bus != NULL) {
		g_test_dbus_down(run->bus);
		g_clear_object(&run->bus);
	}
	g_clear_pointer(&run->pki, migd_test_pki_free);
	if (run->dir != NULL)
		bench_rm_rf(run->dir);
	g_free(run->dir);
	return ok;
}

gboolean
bench_daemons_migrate(const BenchDaemonsConfig *config, BenchDaemonsResult *result, GError **error)
{
	BenchRun run = {.config = config};
	g_autofree gchar *conf = NULL;
	g_autofree gchar *conf_path = NULL;
	gboolean ok;

	*result = (BenchDaemonsResult){0};
	run.deadline = g_get_monotonic_time() + (gint64)config->timeout_s * G_USEC_PER_SEC;
	run.dir = g_dir_make_tmp("migd-bench-XXXXXX", error);
	if (run.dir == NULL)
		return bench_run_end(&run, FALSE, error);
	conf_path = g_build_filename(run.dir, "vfio-migd.conf", NULL);
	conf =
	    g_strdup_printf("[daemon]\nmax-inflight=%" G_GUINT64_FORMAT "\n", config->max_inflight);
	if (!g_file_set_contents(conf_path, conf, -1, error))
		return bench_run_end(&run, FALSE, error);
	run.pki = migd_test_pki_new(error);
	if (run.pki == NULL) {
		g_prefix_error(error, "throwaway certificates: ");
		return bench_run_end(&run, FALSE, error);
	}
	run.bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_up(run.bus);
	run.conn = g_dbus_connection_new_for_address_sync(
	    g_test_dbus_get_bus_address(run.bus),
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL, NULL, error);
	if (run.conn == NULL)
		return bench_run_end(&run, FALSE, error);
	ok = bench_daemon_start(&run, BENCH_DAEMON_DESTINATION, error) &&
	     bench_daemon_start(&run, BENCH_DAEMON_SOURCE, error) &&
	     bench_migrate(&run, result, error);
	return bench_run_end(&run, ok, error);
}
