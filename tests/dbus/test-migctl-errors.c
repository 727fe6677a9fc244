/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migctl tells the D-Bus errors operators hit in words they can act on,
 * never GIO's raw text: AccessDenied from the bus policy ("needs root" or the
 * polkit actions; the daemon's own NotAuthorized is in test-dbus-policy.c), and
 * NoReply (the daemon went away during the call). A private dbus-daemon
 * configured like the system bus, whose policy denies every call to one name;
 * the test process plays the daemon (owns the names, never replies).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib/gstdio.h>

#include "dbus-test-util.h"

#define DENIED_NAME "org.vfiomigd.Test.Denied"
#define SILENT_NAME "org.vfiomigd.Test.Silent"

static gchar *bus_dir;
static gchar *bus_address;
static GSubprocess *bus;

static int
bus_up(void **state)
{
	g_autofree gchar *config = NULL;
	g_autofree gchar *path = NULL;
	g_autoptr(GError) error = NULL;
	gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

	bus_dir = g_dir_make_tmp("migctl-errors-XXXXXX", NULL);
	path = g_build_filename(bus_dir, "bus.conf", NULL);
	/* everything allowed, except any call to DENIED_NAME: the bus answers AccessDenied */
	config = g_strdup_printf(
	    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" "
	    "\"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	    "<busconfig><type>system</type><listen>unix:path=%s/bus</listen>"
	    "<auth>EXTERNAL</auth><policy context=\"default\"><allow user=\"*\"/>"
	    "<allow own=\"*\"/><allow send_type=\"method_call\"/>"
	    "<allow send_requested_reply=\"true\" send_type=\"method_return\"/>"
	    "<allow send_requested_reply=\"true\" send_type=\"error\"/>"
	    "<allow receive_type=\"method_call\"/><allow receive_type=\"method_return\"/>"
	    "<allow receive_type=\"error\"/><allow receive_type=\"signal\"/>"
	    "<allow send_type=\"signal\"/>"
	    "<deny send_destination=\"" DENIED_NAME "\"/></policy></busconfig>\n",
	    bus_dir);
	assert_true(g_file_set_contents(path, config, -1, NULL));
	bus_address = g_strdup_printf("unix:path=%s/bus", bus_dir);
	bus = g_subprocess_new(G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error, "dbus-daemon", "--nofork",
			       "--config-file", path, NULL);
	if (bus == NULL) {
		g_printerr("dbus-daemon: %s\n", error->message);
		return -1;
	}
	while (g_get_monotonic_time() < deadline) {
		g_autoptr(GDBusConnection) c = g_dbus_connection_new_for_address_sync(
		    bus_address,
		    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		    NULL, NULL, NULL);
		if (c != NULL) {
			g_setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address, TRUE);
			return 0;
		}
		g_usleep(20 * 1000);
	}
	g_printerr("the private bus did not come up\n");
	return -1;
}

static int
bus_down(void **state)
{
	g_autofree gchar *cmd = g_strdup_printf("rm -rf '%s'", bus_dir);

	if (bus != NULL) {
		g_subprocess_force_exit(bus);
		g_subprocess_wait(bus, NULL, NULL);
		g_clear_object(&bus);
	}
	if (system(cmd) != 0)
		return -1;
	return 0;
}

static const gchar manager_xml[] =
    "<node><interface name='org.vfiomigd.Migd1.Manager'>"
    "<method name='ListJobs'><arg type='ao' direction='out'/></method>"
    "</interface></node>";

typedef struct {
	GDBusConnection *connection;
	gboolean called;
} Fake;

static void
fake_method_cb(GDBusConnection *connection, const gchar *sender, const gchar *path,
	       const gchar *iface, const gchar *method, GVariant *params,
	       GDBusMethodInvocation *invocation, gpointer user_data)
{
	Fake *fake = user_data;

	/* the daemon dies during the call: the bus answers NoReply for it */
	fake->called = TRUE;
	g_object_unref(invocation);
	g_dbus_connection_close(fake->connection, NULL, NULL, NULL);
}

static const GDBusInterfaceVTable fake_vtable = {fake_method_cb, NULL, NULL, {0}};

/* a connection to the private bus that owns @name and serves a Manager */
static Fake *
fake_daemon(const gchar *name)
{
	Fake *fake = g_new0(Fake, 1);
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml(manager_xml, &error);
	g_autoptr(GVariant) reply = NULL;

	assert_non_null(info);
	fake->connection = g_dbus_connection_new_for_address_sync(
	    bus_address,
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL, NULL, &error);
	assert_non_null(fake->connection);
	g_dbus_connection_set_exit_on_close(fake->connection, FALSE);
	assert_true(g_dbus_connection_register_object(fake->connection, "/org/vfiomigd/Migd1",
						      info->interfaces[0], &fake_vtable, fake, NULL,
						      &error) > 0);
	reply = g_dbus_connection_call_sync(
	    fake->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
	    "org.freedesktop.DBus", "RequestName", g_variant_new("(su)", name, 4),
	    G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
	assert_non_null(reply);
	return fake;
}

static void
fake_free(Fake *fake)
{
	g_dbus_connection_close_sync(fake->connection, NULL, NULL);
	g_object_unref(fake->connection);
	g_free(fake);
}

static void
communicate_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	*(GAsyncResult **)user_data = g_object_ref(result);
}

/* vfio-migctl --bus-name @name [--json] jobs on the private "system" bus, with
 * this process's main context running (the fake daemon answers in it) */
static gint
migctl_jobs(const gchar *name, gboolean json, gchar **out, gchar **err)
{
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *result = NULL;

	process = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
				   &error, dt_migctl_path(), "--bus-name", name,
				   json ? "--json" : "jobs", json ? "jobs" : NULL, NULL);
	assert_non_null(process);
	g_subprocess_communicate_utf8_async(process, NULL, NULL, communicate_cb, &result);
	while (result == NULL)
		g_main_context_iteration(NULL, TRUE);
	assert_true(g_subprocess_communicate_utf8_finish(process, result, out, err, &error));
	g_object_unref(result);
	g_subprocess_wait(process, NULL, NULL);
	assert_true(g_subprocess_get_if_exited(process));
	return g_subprocess_get_exit_status(process);
}

static void
assert_contains(const gchar *text, const gchar *what)
{
	if (text == NULL || strstr(text, what) == NULL)
		fail_msg("'%s' not in: %s", what, text != NULL ? text : "(null)");
}

static void
test_access_denied(void **state)
{
	Fake *fake = fake_daemon(DENIED_NAME);
	g_autofree gchar *out = NULL, *err = NULL;
	g_autoptr(JsonNode) node = NULL;

	assert_int_equal(migctl_jobs(DENIED_NAME, TRUE, &out, &err), 1);
	assert_false(fake->called);
	assert_contains(err, "access denied by the system bus policy: vfio-migctl needs root");
	/* ... or the polkit actions, by name */
	assert_contains(err, "polkit action org.vfiomigd.migd.read (to list)");
	assert_contains(err, "org.vfiomigd.migd.change (to act)");
	assert_null(strstr(err, "GDBus.Error"));
	node = dt_json_line(out);
	assert_string_equal(json_object_get_string_member(json_node_get_object(node), "error"),
			    "org.freedesktop.DBus.Error.AccessDenied");
	fake_free(fake);
}

static void
test_no_reply(void **state)
{
	Fake *fake = fake_daemon(SILENT_NAME);
	g_autofree gchar *out = NULL, *err = NULL;

	assert_int_equal(migctl_jobs(SILENT_NAME, FALSE, &out, &err), 1);
	assert_true(fake->called);
	assert_contains(err, "vfio-migd did not reply");
	assert_contains(err, "journalctl -u vfio-migd");
	assert_null(strstr(err, "GDBus.Error"));
	fake_free(fake);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_access_denied),
	    cmocka_unit_test(test_no_reply),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests_name("migctl-errors", tests, bus_up, bus_down);
}
