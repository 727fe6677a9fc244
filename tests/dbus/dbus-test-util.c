/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
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

#include "dbus-test-util.h"

static gchar *dt_migd;
static gchar *dt_migctl_bin;
static GTestDBus *dt_bus;
static GDBusConnection *dt_conn;
/* daemons a failed test left behind (cmocka's longjmp skips g_autoptr cleanups) */
static GPtrArray *dt_live;

void
dt_init(int argc, char **argv)
{
	if (argc < 3) {
		g_printerr("usage: %s VFIO_MIGD VFIO_MIGCTL\n", argv[0]);
		exit(2);
	}
	dt_migd = g_canonicalize_filename(argv[1], NULL);
	dt_migctl_bin = g_canonicalize_filename(argv[2], NULL);
}

const gchar *
dt_migd_path(void)
{
	return dt_migd;
}

const gchar *
dt_migctl_path(void)
{
	return dt_migctl_bin;
}

int
dt_bus_up(void **state)
{
	g_autoptr(GError) error = NULL;

	dt_bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_up(dt_bus);
	dt_conn = g_dbus_connection_new_for_address_sync(
	    g_test_dbus_get_bus_address(dt_bus),
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL, NULL, &error);
	if (dt_conn == NULL) {
		g_printerr("cannot connect to the test bus: %s\n", error->message);
		return -1;
	}
	return 0;
}

static void dt_daemon_free(DtDaemon *daemon);

int
dt_bus_down(void **state)
{
	for (guint i = 0; dt_live != NULL && i < dt_live->len; i++) {
		DtDaemon *daemon = g_ptr_array_index(dt_live, i);
		g_subprocess_force_exit(daemon->process);
		while (!daemon->exited)
			g_main_context_iteration(NULL, TRUE);
		dt_daemon_free(daemon);
	}
	g_clear_pointer(&dt_live, g_ptr_array_unref);
	if (dt_conn != NULL)
		g_dbus_connection_close_sync(dt_conn, NULL, NULL);
	g_clear_object(&dt_conn);
	if (dt_bus != NULL)
		g_test_dbus_down(dt_bus);
	g_clear_object(&dt_bus);
	return 0;
}

GDBusConnection *
dt_connection(void)
{
	return dt_conn;
}

static gboolean
dt_timeout_cb(gpointer user_data)
{
	gboolean *expired = user_data;
	*expired = TRUE;
	return G_SOURCE_REMOVE;
}

/* iterates the default context until *@flag, failing the test after DT_TIMEOUT_S */
static void
dt_wait_for(gboolean *flag, const gchar *what)
{
	gboolean expired = FALSE;
	guint id = g_timeout_add_seconds(DT_TIMEOUT_S, dt_timeout_cb, &expired);

	while (!*flag && !expired)
		g_main_context_iteration(NULL, TRUE);
	if (!expired)
		g_source_remove(id);
	if (!*flag)
		fail_msg("timed out waiting for %s", what);
}

static void
dt_name_appeared_cb(GDBusConnection *c, const gchar *name, const gchar *owner, gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
}

static void
dt_daemon_exit_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	DtDaemon *daemon = user_data;
	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	daemon->exited = TRUE;
}

static void
dt_completed_cb(GDBusConnection *c, const gchar *sender, const gchar *path, const gchar *iface,
		const gchar *signal, GVariant *params, gpointer user_data)
{
	DtDaemon *daemon = user_data;

	if (g_hash_table_contains(daemon->completed, path))
		fail_msg("Completed emitted twice for %s", path);
	g_hash_table_insert(daemon->completed, g_strdup(path), g_variant_ref(params));
}

DtDaemon *
dt_daemon_start(const gchar *bus_name, const gchar *const *specs)
{
	return dt_daemon_start_full(bus_name, specs, NULL);
}

DtDaemon *
dt_daemon_start_full(const gchar *bus_name, const gchar *const *specs, const gchar *config_path)
{
	const gchar *const args[] = {"--config", config_path, NULL};
	return dt_daemon_start_args(bus_name, specs, config_path != NULL ? args : NULL);
}

DtDaemon *
dt_daemon_start_args(const gchar *bus_name, const gchar *const *specs,
		     const gchar *const *extra_args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	DtDaemon *daemon = g_new0(DtDaemon, 1);
	gboolean appeared = FALSE;
	guint watch_id;

	g_ptr_array_add(argv, (gpointer)dt_migd);
	g_ptr_array_add(argv, (gpointer) "--session");
	g_ptr_array_add(argv, (gpointer) "--bus-name");
	g_ptr_array_add(argv, (gpointer)bus_name);
	for (guint i = 0; specs != NULL && specs[i] != NULL; i++) {
		g_ptr_array_add(argv, (gpointer) "--sim-device");
		g_ptr_array_add(argv, (gpointer)specs[i]);
	}
	for (guint i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)extra_args[i]);
	g_ptr_array_add(argv, NULL);

	daemon->bus_name = g_strdup(bus_name);
	daemon->completed =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_variant_unref);
	daemon->completed_id = g_dbus_connection_signal_subscribe(
	    dt_conn, bus_name, DT_JOB_IFACE, "Completed", NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
	    dt_completed_cb, daemon, NULL);
	/* GTestDBus set DBUS_SESSION_BUS_ADDRESS: the daemon inherits the private bus */
	daemon->process =
	    g_subprocess_newv((const gchar *const *)argv->pdata, G_SUBPROCESS_FLAGS_NONE, &error);
	assert_non_null(daemon->process);

	if (dt_live == NULL)
		dt_live = g_ptr_array_new();
	g_ptr_array_add(dt_live, daemon);

	watch_id = g_bus_watch_name_on_connection(dt_conn, bus_name, G_BUS_NAME_WATCHER_FLAGS_NONE,
						  dt_name_appeared_cb, NULL, &appeared, NULL);
	g_subprocess_wait_async(daemon->process, NULL, dt_daemon_exit_cb, daemon);
	{
		gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;
		while (!appeared && !daemon->exited && g_get_monotonic_time() < deadline) {
			if (!g_main_context_iteration(NULL, FALSE))
				g_usleep(1000);
		}
	}
	g_bus_unwatch_name(watch_id);
	if (!appeared)
		fail_msg("vfio-migd for %s %s", bus_name,
			 daemon->exited ? "exited at start" : "did not own its name");
	return daemon;
}

static void
dt_daemon_free(DtDaemon *daemon)
{
	g_dbus_connection_signal_unsubscribe(dt_conn, daemon->completed_id);
	g_hash_table_unref(daemon->completed);
	g_object_unref(daemon->process);
	g_free(daemon->bus_name);
	g_free(daemon);
}

void
dt_daemon_stop(DtDaemon *daemon)
{
	if (daemon == NULL)
		return;
	g_ptr_array_remove(dt_live, daemon);
	g_subprocess_send_signal(daemon->process, SIGTERM);
	dt_wait_for(&daemon->exited, "the daemon to exit");
	/* a clean exit on SIGTERM: no crash, no sanitizer report */
	assert_true(g_subprocess_get_if_exited(daemon->process));
	assert_int_equal(g_subprocess_get_exit_status(daemon->process), 0);
	dt_daemon_free(daemon);
}

void
dt_daemon_crash(DtDaemon *daemon)
{
	g_ptr_array_remove(dt_live, daemon);
	g_subprocess_force_exit(daemon->process);
	dt_wait_for(&daemon->exited, "the daemon to die");
	dt_daemon_free(daemon);
}

GVariant *
dt_manager_call(DtDaemon *daemon, const gchar *method, GVariant *params, GError **error)
{
	return g_dbus_connection_call_sync(
	    dt_conn, daemon->bus_name, DT_MANAGER_PATH, DT_MANAGER_IFACE, method, params, NULL,
	    G_DBUS_CALL_FLAGS_NONE, DT_TIMEOUT_S * 1000, NULL, error);
}

static GVariant *
dt_list_devices(DtDaemon *daemon)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = dt_manager_call(daemon, "ListDevices", NULL, &error);

	if (reply == NULL)
		fail_msg("ListDevices: %s", error->message);
	assert_string_equal(g_variant_get_type_string(reply), "(a(sa{sv}))");
	return g_variant_get_child_value(reply, 0);
}

guint
dt_n_devices(DtDaemon *daemon)
{
	g_autoptr(GVariant) devices = dt_list_devices(daemon);
	return (guint)g_variant_n_children(devices);
}

GVariant *
dt_device_props(DtDaemon *daemon, guint index)
{
	g_autoptr(GVariant) devices = dt_list_devices(daemon);
	g_autoptr(GVariant) device = NULL;

	assert_true(index < g_variant_n_children(devices));
	device = g_variant_get_child_value(devices, index);
	return g_variant_get_child_value(device, 1);
}

gchar *
dt_device_state(DtDaemon *daemon, guint index)
{
	g_autoptr(GVariant) props = dt_device_props(daemon, index);
	const gchar *state = NULL;

	assert_true(g_variant_lookup(props, "state", "&s", &state));
	return g_strdup(state);
}

guint64
dt_device_digest(DtDaemon *daemon, guint index)
{
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;

	/* a large state is hashed on a worker: sim-digest-pending until it is known */
	for (;;) {
		g_autoptr(GVariant) props = dt_device_props(daemon, index);
		guint64 digest = 0;
		gboolean pending = FALSE;

		if (g_variant_lookup(props, "sim-digest", "t", &digest))
			return digest;
		assert_true(g_variant_lookup(props, "sim-digest-pending", "b", &pending));
		assert_true(pending);
		if (g_get_monotonic_time() > deadline)
			fail_msg("device %u: no digest after %d s", index, DT_TIMEOUT_S);
		g_usleep(20000);
	}
}

gchar *
dt_listen_plain(DtDaemon *daemon)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_auto(GVariantBuilder) options = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	gchar *bound = NULL;

	g_autofree gchar *address = dt_unused_unix_address();

	g_variant_builder_add(&options, "{sv}", "plain", g_variant_new_boolean(TRUE));
	reply =
	    dt_manager_call(daemon, "Listen", g_variant_new("(sa{sv})", address, &options), &error);
	if (reply == NULL)
		fail_msg("Listen: %s", error->message);
	g_variant_get(reply, "(s)", &bound);
	assert_string_equal(bound, address);
	return bound;
}

gchar *
dt_unused_unix_address(void)
{
	static guint n = 0;
	return g_strdup_printf("unix:@migd-dt-%d-%u", (gint)getpid(), ++n);
}

GVariant *
dt_get_property(DtDaemon *daemon, const gchar *path, const gchar *iface, const gchar *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	GVariant *value = NULL;

	reply = g_dbus_connection_call_sync(
	    dt_conn, daemon->bus_name, path, "org.freedesktop.DBus.Properties", "Get",
	    g_variant_new("(ss)", iface, name), G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE,
	    DT_TIMEOUT_S * 1000, NULL, &error);
	if (reply == NULL)
		fail_msg("Get %s.%s at %s: %s", iface, name, path, error->message);
	g_variant_get(reply, "(v)", &value);
	return value;
}

gboolean
dt_job_wait_completed(DtDaemon *daemon, const gchar *job_path, gchar **message)
{
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;
	GVariant *params;
	gboolean success = FALSE;

	while (!g_hash_table_contains(daemon->completed, job_path) &&
	       g_get_monotonic_time() < deadline) {
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(1000);
	}
	params = g_hash_table_lookup(daemon->completed, job_path);
	if (params == NULL)
		fail_msg("timed out waiting for Completed of %s", job_path);
	g_variant_get(params, "(bs)", &success, message);
	return success;
}

gchar *
dt_job_wait_final(DtDaemon *daemon, const gchar *job_path)
{
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		g_autoptr(GVariant) phase =
		    dt_get_property(daemon, job_path, DT_JOB_IFACE, "Phase");
		const gchar *p = g_variant_get_string(phase, NULL);
		if (g_strcmp0(p, "completed") == 0 || g_strcmp0(p, "failed") == 0)
			return g_strdup(p);
		g_usleep(20 * 1000);
	}
	fail_msg("job %s did not finish", job_path);
	return NULL;
}

guint16
dt_unused_port(void)
{
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;
	guint16 port;

	socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
	assert_non_null(socket);
	assert_true(g_socket_bind(socket, any, FALSE, &error));
	bound = g_socket_get_local_address(socket, &error);
	assert_non_null(bound);
	port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	g_socket_close(socket, NULL);
	return port;
}

gint
dt_migctl(const gchar *bus_name, gchar **out, const gchar *first_arg, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *stdout_buf = NULL;
	va_list args;

	g_ptr_array_add(argv, (gpointer)dt_migctl_bin);
	g_ptr_array_add(argv, (gpointer) "--session");
	g_ptr_array_add(argv, (gpointer) "--bus-name");
	g_ptr_array_add(argv, (gpointer)bus_name);
	va_start(args, first_arg);
	for (const gchar *arg = first_arg; arg != NULL; arg = va_arg(args, const gchar *))
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(args);
	g_ptr_array_add(argv, NULL);

	process = g_subprocess_newv((const gchar *const *)argv->pdata,
				    G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
	assert_non_null(process);
	if (!g_subprocess_communicate_utf8(process, NULL, NULL, &stdout_buf, NULL, &error))
		fail_msg("vfio-migctl: %s", error->message);
	if (out != NULL)
		*out = g_steal_pointer(&stdout_buf);
	assert_true(g_subprocess_get_if_exited(process));
	return g_subprocess_get_exit_status(process);
}

/* ---- JSON ---- */

JsonNode *
dt_json_line(const gchar *out)
{
	g_autofree gchar *line = g_strchomp(g_strdup(out != NULL ? out : ""));
	g_autoptr(GError) error = NULL;
	JsonNode *node = dt_json_parse(line, &error);

	if (node == NULL)
		fail_msg("'%s': %s", line, error->message);
	return node;
}

void
dt_assert_dbus_error(GError *error, const gchar *name)
{
	g_autofree gchar *remote = NULL;

	if (error == NULL)
		fail_msg("expected %s, the call succeeded", name);
	remote = g_dbus_error_get_remote_error(error);
	if (g_strcmp0(remote, name) != 0)
		fail_msg("expected %s, got %s: %s", name, remote, error->message);
}

JsonNode *
dt_json_parse(const gchar *text, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	JsonNode *root;

	/* vfio-migctl writes one document per line: a raw control character
	 * (json-glib takes them in strings) would be a broken escape */
	for (const gchar *p = text; *p != '\0'; p++) {
		if ((guchar)*p < 0x20) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "JSON: raw control character 0x%02x", (guchar)*p);
			return NULL;
		}
	}
	if (!json_parser_load_from_data(parser, text, -1, error))
		return NULL;
	root = json_parser_get_root(parser);
	if (root == NULL) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "JSON: no value");
		return NULL;
	}
	return json_node_copy(root);
}
