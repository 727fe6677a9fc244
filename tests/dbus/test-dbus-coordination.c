/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The VM-coordination front doors without a coordinated migration: the new
 * Migrate, Listen and Expect options and their refusals, the job controls on
 * jobs that cannot take them, the new Job properties with their defaults, the
 * capability, and vfio-migctl's new commands (usage and JSON). The migrations
 * themselves are in test-dbus-coordinated-flow.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gunixsocketaddress.h>
#include <string.h>
#include <unistd.h>

#include "dbus-test-util.h"

#define BUS_NAME "org.vfiomigd.Test.Coordination"
#define INVAL	 DT_MIGD_ERROR_PREFIX "InvalidArgument"

static const gchar *const specs[] = {
    "mlx5:state_size=8M,seed=1",
    "hisi_acc:seed=3",
    NULL,
};

static int
setup(void **state)
{
	*state = dt_daemon_start(BUS_NAME, specs);
	return 0;
}

static int
teardown(void **state)
{
	dt_daemon_stop(*state);
	return 0;
}

/* {"plain": true, @key: @value} (@key NULL: plain only) */
static GVariant *
options_plain(const gchar *key, GVariant *value)
{
	g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);

	g_variant_builder_add(&b, "{sv}", "plain", g_variant_new_boolean(TRUE));
	if (key != NULL)
		g_variant_builder_add(&b, "{sv}", key, value);
	return g_variant_builder_end(&b);
}

static GVariant *
options_one(const gchar *key, GVariant *value)
{
	g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", key, value);
	return g_variant_builder_end(&b);
}

static guint
n_jobs(DtDaemon *daemon)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = dt_manager_call(daemon, "ListJobs", NULL, &error);
	g_autoptr(GVariant) paths = NULL;

	if (reply == NULL)
		fail_msg("ListJobs: %s", error->message);
	paths = g_variant_get_child_value(reply, 0);
	return (guint)g_variant_n_children(paths);
}

/* Migrate(@address, all, @options) must fail with @error_name and start no job */
static void
migrate_refused(DtDaemon *daemon, const gchar *address, GVariant *options, const gchar *error_name)
{
	const gchar *const all[] = {NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	guint before = n_jobs(daemon);

	reply = dt_manager_call(daemon, "Migrate",
				g_variant_new("(s^as@a{sv})", address, all, options), &error);
	assert_null(reply);
	dt_assert_dbus_error(error, error_name);
	assert_int_equal(n_jobs(daemon), before);
}

static void
expect_refused(DtDaemon *daemon, const gchar *id, const gchar *const *devices, GVariant *options,
	       const gchar *error_name, const gchar *message_part)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;

	reply = dt_manager_call(daemon, "Expect",
				g_variant_new("(s^as@a{sv})", id, devices, options), &error);
	assert_null(reply);
	dt_assert_dbus_error(error, error_name);
	if (message_part != NULL && strstr(error->message, message_part) == NULL)
		fail_msg("'%s' does not say '%s'", error->message, message_part);
}

static gchar **
list_expectations(DtDaemon *daemon)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = dt_manager_call(daemon, "ListExpectations", NULL, &error);
	gchar **ids = NULL;

	if (reply == NULL)
		fail_msg("ListExpectations: %s", error->message);
	g_variant_get(reply, "(^as)", &ids);
	return ids;
}

/* a method of the Job at @path (no arguments) */
static GVariant *
job_call(DtDaemon *daemon, const gchar *path, const gchar *method, GVariant *params, GError **error)
{
	return g_dbus_connection_call_sync(dt_connection(), daemon->bus_name, path, DT_JOB_IFACE,
					   method, params, NULL, G_DBUS_CALL_FLAGS_NONE,
					   DT_TIMEOUT_S * 1000, NULL, error);
}

static void
job_call_refused(DtDaemon *daemon, const gchar *path, const gchar *method, GVariant *params,
		 const gchar *error_name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = job_call(daemon, path, method, params, &error);

	assert_null(reply);
	if (error_name != NULL)
		dt_assert_dbus_error(error, error_name);
	else
		assert_non_null(error);
}

static void
test_capability(void **state)
{
	g_autoptr(GVariant) caps =
	    dt_get_property(*state, DT_MANAGER_PATH, DT_MANAGER_IFACE, "Capabilities");
	g_autofree const gchar **strv = g_variant_get_strv(caps, NULL);

	assert_true(g_strv_contains(strv, "vm-coordination"));
	assert_true(g_strv_contains(strv, "migrate"));
}

static void
test_migrate_options_refused(void **state)
{
	DtDaemon *daemon = *state;
	const gchar *address = "unix:@migd-dt-coordination-nobody";
	g_autofree gchar *too_long = g_strnfill(129, 'a');

	migrate_refused(daemon, address, options_plain("switchover", g_variant_new_string("later")),
			INVAL);
	migrate_refused(daemon, address, options_plain("switchover", g_variant_new_string("")),
			INVAL);
	migrate_refused(daemon, address, options_plain("switchover", g_variant_new_uint32(1)),
			INVAL);
	migrate_refused(daemon, address, options_plain("handover-timeout", g_variant_new_uint32(0)),
			INVAL);
	migrate_refused(daemon, address,
			options_plain("handover-timeout", g_variant_new_string("60")), INVAL);
	migrate_refused(daemon, address, options_plain("migration-id", g_variant_new_string("")),
			INVAL);
	migrate_refused(daemon, address,
			options_plain("migration-id", g_variant_new_string("vm 1")), INVAL);
	migrate_refused(daemon, address,
			options_plain("migration-id", g_variant_new_string("vm/1")), INVAL);
	migrate_refused(daemon, address,
			options_plain("migration-id", g_variant_new_string(too_long)), INVAL);
	migrate_refused(daemon, address, options_plain("migration-id", g_variant_new_uint32(7)),
			INVAL);
	/* Listen's and Expect's option is not Migrate's */
	migrate_refused(daemon, address, options_plain("start", g_variant_new_string("manual")),
			INVAL);
	/* the longest id passes the check: the job starts (and fails: nobody listens) */
	too_long[128] = '\0';
	{
		const gchar *const all[] = {NULL};
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) reply = dt_manager_call(
		    daemon, "Migrate",
		    g_variant_new("(s^as@a{sv})", address, all,
				  options_plain("migration-id", g_variant_new_string(too_long))),
		    &error);
		g_autofree gchar *phase = NULL;
		const gchar *path = NULL;

		if (reply == NULL)
			fail_msg("Migrate: %s", error->message);
		g_variant_get(reply, "(&o)", &path);
		phase = dt_job_wait_final(daemon, path);
		assert_string_equal(phase, "failed");
	}
}

static void
test_listen_start_refused(void **state)
{
	DtDaemon *daemon = *state;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	g_autoptr(GError) error3 = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) reply3 = NULL;
	g_autofree gchar *address = dt_unused_unix_address();

	reply = dt_manager_call(
	    daemon, "Listen",
	    g_variant_new("(s@a{sv})", address, options_plain("start", g_variant_new_string("no"))),
	    &error);
	assert_null(reply);
	dt_assert_dbus_error(error, INVAL);
	reply = dt_manager_call(
	    daemon, "Listen",
	    g_variant_new("(s@a{sv})", address, options_plain("start", g_variant_new_boolean(1))),
	    &error2);
	assert_null(reply);
	dt_assert_dbus_error(error2, INVAL);
	/* Migrate's option is not Listen's */
	reply = dt_manager_call(
	    daemon, "Listen",
	    g_variant_new("(s@a{sv})", address,
			  options_plain("switchover", g_variant_new_string("manual"))),
	    &error3);
	assert_null(reply);
	dt_assert_dbus_error(error3, INVAL);
	/* nothing was listening after the refusals: this one binds */
	reply3 =
	    dt_manager_call(daemon, "Listen",
			    g_variant_new("(s@a{sv})", address,
					  options_plain("start", g_variant_new_string("manual"))),
			    NULL);
	assert_non_null(reply3);
}

static void
test_expect_refused(void **state)
{
	DtDaemon *daemon = *state;
	const gchar *const one[] = {"sim0", NULL};
	const gchar *const none[] = {NULL};
	const gchar *const unknown[] = {"sim0", "sim9", NULL};
	const gchar *const twice[] = {"sim1", "sim1", NULL};
	g_autoptr(GVariant) empty =
	    g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
	g_autofree gchar *listen = NULL;
	g_auto(GStrv) ids = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;

	/* no listener yet: Expect says what to do; nothing is listed or cancelled */
	expect_refused(daemon, "vm-1", one, empty, INVAL, "call Listen first");
	ids = list_expectations(daemon);
	assert_int_equal(g_strv_length(ids), 0);
	reply = dt_manager_call(daemon, "CancelExpectation", g_variant_new("(s)", "vm-1"), &error);
	assert_null(reply);
	dt_assert_dbus_error(error, INVAL);

	listen = dt_listen_plain(daemon);
	expect_refused(daemon, "", one, empty, INVAL, NULL);
	expect_refused(daemon, "vm 1", one, empty, INVAL, "0x20");
	expect_refused(daemon, "vm-1", none, empty, INVAL, "at least one device");
	expect_refused(daemon, "vm-1", unknown, empty, INVAL, "unknown device 'sim9'");
	expect_refused(daemon, "vm-1", twice, empty, INVAL, "named twice");
	expect_refused(daemon, "vm-1", one, options_one("start", g_variant_new_string("later")),
		       INVAL, "start");
	expect_refused(daemon, "vm-1", one, options_one("timeout", g_variant_new_string("5")),
		       INVAL, "timeout");
	expect_refused(daemon, "vm-1", one, options_one("plain", g_variant_new_boolean(TRUE)),
		       INVAL, "unknown option 'plain'");
	/* nothing was reserved by any of these */
	g_clear_pointer(&ids, g_strfreev);
	ids = list_expectations(daemon);
	assert_int_equal(g_strv_length(ids), 0);
	{
		g_autoptr(GVariant) props = dt_device_props(daemon, 0);
		gboolean busy = TRUE;
		assert_true(g_variant_lookup(props, "busy", "b", &busy));
		assert_false(busy);
	}
}

/*
 * A device of an outgoing job cannot be reserved for an incoming one. The job
 * is held in its handshake by a socket that accepts (the kernel's backlog)
 * and never answers.
 */
static void
test_expect_device_in_job(void **state)
{
	DtDaemon *daemon = *state;
	const gchar *const all[] = {NULL};
	const gchar *const one[] = {"sim1", NULL};
	g_autofree gchar *hold = dt_unused_unix_address();
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GSocketAddress) sockaddr = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree gchar *listen = NULL;
	g_autofree gchar *phase = NULL;
	const gchar *path = NULL;

	socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
			      &error);
	assert_non_null(socket);
	/* "unix:@NAME": an abstract name */
	sockaddr = g_unix_socket_address_new_with_type(hold + strlen("unix:@"), -1,
						       G_UNIX_SOCKET_ADDRESS_ABSTRACT);
	assert_true(g_socket_bind(socket, sockaddr, TRUE, &error));
	assert_true(g_socket_listen(socket, &error));

	listen = dt_listen_plain(daemon);
	reply = dt_manager_call(daemon, "Migrate",
				g_variant_new("(s^as@a{sv})", hold, all, options_plain(NULL, NULL)),
				&error);
	if (reply == NULL)
		fail_msg("Migrate: %s", error->message);
	g_variant_get(reply, "(&o)", &path);
	expect_refused(daemon, "vm-1", one, g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0),
		       DT_MIGD_ERROR_PREFIX "Busy", "busy in another job");

	/* the job is active: the destination's controls are not a source's */
	job_call_refused(daemon, path, "Start", NULL, DT_MIGD_ERROR_PREFIX "NotSupported");
	job_call_refused(daemon, path, "Abandon", NULL, DT_MIGD_ERROR_PREFIX "NotSupported");
	{
		g_autoptr(GVariant) mode =
		    dt_get_property(daemon, path, DT_JOB_IFACE, "SwitchoverMode");
		assert_string_equal(g_variant_get_string(mode, NULL), "auto");
	}

	assert_non_null(job_call(daemon, path, "Cancel", NULL, NULL));
	phase = dt_job_wait_final(daemon, path);
	assert_string_equal(phase, "failed");
}

static void
test_job_properties_and_finished_controls(void **state)
{
	DtDaemon *daemon = *state;
	const gchar *const all[] = {NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree gchar *phase = NULL;
	const gchar *path = NULL;
	const struct {
		const gchar *name;
		const gchar *type;
	} props[] = {
	    {"Converged", "b"},	     {"MigrationId", "s"}, {"RolledBack", "b"},
	    {"SwitchoverMode", "s"}, {"StartMode", "s"},   {"DeviceNames", "as"},
	};

	reply = dt_manager_call(daemon, "Migrate",
				g_variant_new("(s^as@a{sv})", "unix:@migd-dt-coordination-nobody",
					      all, options_plain(NULL, NULL)),
				&error);
	if (reply == NULL)
		fail_msg("Migrate: %s", error->message);
	g_variant_get(reply, "(&o)", &path);
	phase = dt_job_wait_final(daemon, path);
	assert_string_equal(phase, "failed");

	for (guint i = 0; i < G_N_ELEMENTS(props); i++) {
		g_autoptr(GVariant) v = dt_get_property(daemon, path, DT_JOB_IFACE, props[i].name);
		assert_string_equal(g_variant_get_type_string(v), props[i].type);
	}
	{
		g_autoptr(GVariant) converged =
		    dt_get_property(daemon, path, DT_JOB_IFACE, "Converged");
		g_autoptr(GVariant) rolled_back =
		    dt_get_property(daemon, path, DT_JOB_IFACE, "RolledBack");
		g_autoptr(GVariant) id = dt_get_property(daemon, path, DT_JOB_IFACE, "MigrationId");
		g_autoptr(GVariant) sw =
		    dt_get_property(daemon, path, DT_JOB_IFACE, "SwitchoverMode");
		g_autoptr(GVariant) start =
		    dt_get_property(daemon, path, DT_JOB_IFACE, "StartMode");
		assert_false(g_variant_get_boolean(converged));
		/* it never switched over: nothing was rolled back */
		assert_false(g_variant_get_boolean(rolled_back));
		assert_string_equal(g_variant_get_string(id, NULL), "");
		assert_string_equal(g_variant_get_string(sw, NULL), "auto");
		assert_string_equal(g_variant_get_string(start, NULL), "auto");
	}

	/* a finished job takes no control */
	job_call_refused(daemon, path, "Switchover", NULL, INVAL);
	job_call_refused(daemon, path, "Start", NULL, INVAL);
	job_call_refused(daemon, path, "Abandon", NULL, INVAL);
	job_call_refused(daemon, path, "Rollback", NULL, INVAL);
	job_call_refused(daemon, path, "SyncDirtyBitmap", g_variant_new("(s)", "sim0"), INVAL);
}

static void
test_controls_missing_job(void **state)
{
	DtDaemon *daemon = *state;
	const gchar *path = "/org/vfiomigd/Migd1/jobs/4242";
	const gchar *const methods[] = {"Switchover", "Start", "Abandon", "Rollback"};

	for (guint i = 0; i < G_N_ELEMENTS(methods); i++)
		job_call_refused(daemon, path, methods[i], NULL, NULL);
	job_call_refused(daemon, path, "SyncDirtyBitmap", g_variant_new("(s)", "sim0"), NULL);
	/* and the daemon still answers */
	assert_int_equal(dt_n_devices(daemon), 2);
}

static JsonObject *
json_object_of(JsonNode *node)
{
	assert_non_null(node);
	assert_true(JSON_NODE_HOLDS_OBJECT(node));
	return json_node_get_object(node);
}

static void
test_migctl(void **state)
{
	g_autofree gchar *out = NULL;
	g_autofree gchar *out2 = NULL;
	g_autofree gchar *out3 = NULL;
	g_autofree gchar *out4 = NULL;
	g_autoptr(JsonNode) json = NULL;
	g_autoptr(JsonNode) json2 = NULL;
	g_autoptr(JsonNode) json3 = NULL;
	g_autoptr(JsonNode) json4 = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *listen = NULL;

	/* usage errors: 2, before any call */
	assert_int_equal(dt_migctl(BUS_NAME, NULL, "expect", "vm-1", NULL), 2);
	assert_int_equal(dt_migctl(BUS_NAME, NULL, "switchover", "three", NULL), 2);
	assert_int_equal(dt_migctl(BUS_NAME, NULL, "start", NULL), 2);
	assert_int_equal(
	    dt_migctl(BUS_NAME, NULL, "dirty-sync", "/org/vfiomigd/Migd1/jobs/1", NULL), 2);
	assert_int_equal(
	    dt_migctl(BUS_NAME, NULL, "--switchover", "later", "migrate", "unix:@x", NULL), 2);
	assert_int_equal(dt_migctl(BUS_NAME, NULL, "--start", "manual", "migrate", "unix:@x", NULL),
			 2);
	assert_int_equal(dt_migctl(BUS_NAME, NULL, "--start", "soon", "listen", "unix:@x", NULL),
			 2);
	assert_int_equal(
	    dt_migctl(BUS_NAME, NULL, "--migration-id", "vm-1", "listen", "unix:@x", NULL), 2);
	assert_int_equal(dt_migctl(BUS_NAME, NULL, "--timeout", "5", "migrate", "unix:@x", NULL),
			 2);
	assert_int_equal(
	    dt_migctl(BUS_NAME, NULL, "--handover-timeout", "0", "migrate", "unix:@x", NULL), 2);
	assert_int_equal(dt_migctl(BUS_NAME, NULL, "--device", "sim0", "expectations", NULL), 2);

	/* a failed call: 1 and the error as JSON */
	assert_int_equal(
	    dt_migctl(BUS_NAME, &out, "--json", "expect", "vm-1", "--device", "sim0", NULL), 1);
	json = dt_json_line(out);
	assert_string_equal(json_object_get_string_member(json_object_of(json), "error"), INVAL);
	assert_int_equal(dt_migctl(BUS_NAME, &out2, "--json", "switchover",
				   "/org/vfiomigd/Migd1/jobs/4242", NULL),
			 1);
	json2 = dt_json_line(out2);
	assert_string_equal(json_object_get_string_member(json_object_of(json2), "event"), "error");

	/* listen --start manual, then the (empty) list of expectations */
	listen = dt_unused_unix_address();
	assert_int_equal(
	    dt_migctl(BUS_NAME, NULL, "--plain", "--start", "manual", "listen", listen, NULL), 0);
	assert_int_equal(dt_migctl(BUS_NAME, &out3, "--json", "expectations", NULL), 0);
	json3 = dt_json_line(out3);
	assert_int_equal(json_array_get_length(
			     json_object_get_array_member(json_object_of(json3), "expectations")),
			 0);
	assert_int_equal(dt_migctl(BUS_NAME, NULL, "cancel-expectation", "vm-1", NULL), 1);

	/* migrate --no-wait with the new options; jobs shows the new fields */
	assert_int_equal(dt_migctl(BUS_NAME, NULL, "--plain", "--no-wait", "--switchover", "manual",
				   "--migration-id", "vm-7", "--handover-timeout", "5", "migrate",
				   "unix:@migd-dt-coordination-nobody", NULL),
			 0);
	g_usleep(200 * 1000);
	assert_int_equal(dt_migctl(BUS_NAME, &out4, "--json", "jobs", NULL), 0);
	json4 = dt_json_line(out4);
	{
		JsonArray *jobs = json_object_get_array_member(json_object_of(json4), "jobs");
		JsonObject *job;
		assert_int_equal(json_array_get_length(jobs), 1);
		job = json_array_get_object_element(jobs, 0);
		assert_true(json_object_has_member(job, "converged"));
		assert_true(json_object_has_member(job, "rolled_back"));
		assert_true(json_object_has_member(job, "migration_id"));
		assert_true(json_object_has_member(job, "switchover_mode"));
		assert_true(json_object_has_member(job, "start_mode"));
		assert_true(JSON_NODE_HOLDS_ARRAY(json_object_get_member(job, "device_names")));
		assert_false(json_object_get_boolean_member(job, "converged"));
		assert_string_equal(json_object_get_string_member(job, "role"), "source");
	}
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_capability, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_options_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_start_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expect_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expect_device_in_job, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_job_properties_and_finished_controls, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_controls_missing_job, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migctl, setup, teardown),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests_name("dbus-coordination", tests, dt_bus_up, dt_bus_down);
}
