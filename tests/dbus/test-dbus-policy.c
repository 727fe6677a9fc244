/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The shipped bus policy (data/org.vfiomigd.Migd1.conf) on a private bus
 * configured like the system bus: root may own the name and call the daemon,
 * any other user is refused by the bus before the daemon sees the call.
 * Needs root (to be root, and to become another user); skipped otherwise.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUS_NAME "org.vfiomigd.Migd1"
#define NOBODY	 65534

static gchar *migd_path;

typedef struct {
	gchar *dir;
	gchar *address;
	GSubprocess *bus;
	GSubprocess *daemon;
} PolicyBus;

/* the system bus's default policy, plus the file vfio-migd ships */
static gchar *
policy_bus_config(const gchar *dir)
{
	return g_strdup_printf(
	    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" "
	    "\"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	    "<busconfig>\n"
	    "  <type>system</type>\n"
	    "  <listen>unix:path=%s/bus</listen>\n"
	    "  <auth>EXTERNAL</auth>\n"
	    "  <policy context=\"default\">\n"
	    "    <allow user=\"*\"/>\n"
	    "    <deny own=\"*\"/>\n"
	    "    <deny send_type=\"method_call\"/>\n"
	    "    <allow send_type=\"signal\"/>\n"
	    "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
	    "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
	    "    <allow receive_type=\"method_call\"/>\n"
	    "    <allow receive_type=\"method_return\"/>\n"
	    "    <allow receive_type=\"error\"/>\n"
	    "    <allow receive_type=\"signal\"/>\n"
	    "    <allow send_destination=\"org.freedesktop.DBus\" "
	    "send_interface=\"org.freedesktop.DBus\"/>\n"
	    "  </policy>\n"
	    "  <include>%s</include>\n"
	    "</busconfig>\n",
	    dir, POLICY_FILE);
}

static gboolean
policy_bus_wait_name(const gchar *address, gint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		g_autoptr(GDBusConnection) conn = g_dbus_connection_new_for_address_sync(
		    address,
		    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		    NULL, NULL, NULL);
		g_autoptr(GVariant) reply = NULL;
		gboolean has = FALSE;
		if (conn != NULL)
			reply = g_dbus_connection_call_sync(
			    conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			    "org.freedesktop.DBus", "NameHasOwner", g_variant_new("(s)", BUS_NAME),
			    G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
		if (reply != NULL)
			g_variant_get(reply, "(b)", &has);
		if (has)
			return TRUE;
		g_usleep(50 * 1000);
	}
	return FALSE;
}

/* the bus accepts connections: dbus-daemon creates its socket after it started */
static gboolean
policy_bus_wait_ready(const gchar *address, gint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		g_autoptr(GDBusConnection) conn = g_dbus_connection_new_for_address_sync(
		    address,
		    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		    NULL, NULL, NULL);
		if (conn != NULL)
			return TRUE;
		g_usleep(20 * 1000);
	}
	return FALSE;
}

static int teardown(void **state);

static int
setup(void **state)
{
	PolicyBus *pb = g_new0(PolicyBus, 1);
	g_autofree gchar *config = NULL;
	g_autofree gchar *config_path = NULL;
	g_autofree gchar *state_dir = NULL;
	g_autoptr(GError) error = NULL;

	pb->dir = g_dir_make_tmp("migd-policy-XXXXXX", NULL);
	/* the other user must reach the socket to be refused by the policy, not by the fs */
	g_chmod(pb->dir, 0755);
	config = policy_bus_config(pb->dir);
	config_path = g_build_filename(pb->dir, "bus.conf", NULL);
	state_dir = g_build_filename(pb->dir, "state", NULL);
	g_assert(g_file_set_contents(config_path, config, -1, NULL));
	pb->address = g_strdup_printf("unix:path=%s/bus", pb->dir);
	pb->bus = g_subprocess_new(G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error, "dbus-daemon",
				   "--nofork", "--config-file", config_path, NULL);
	g_assert(pb->bus != NULL);
	/*
	 * started before the bus listens, vfio-migd cannot connect and exits (seen
	 * on a loaded machine): the bus must be up first
	 */
	if (!policy_bus_wait_ready(pb->address, 20)) {
		g_printerr("the policy bus did not come up\n");
		g_subprocess_force_exit(pb->bus);
		g_subprocess_wait(pb->bus, NULL, NULL);
		return -1;
	}
	/* vfio-migd on "the system bus": its own name, as the service would */
	g_setenv("DBUS_SYSTEM_BUS_ADDRESS", pb->address, TRUE);
	pb->daemon = g_subprocess_new(G_SUBPROCESS_FLAGS_NONE, &error, migd_path, "--sim-device",
				      "mlx5:seed=1", "--state-dir", state_dir, NULL);
	g_assert(pb->daemon != NULL);
	if (!policy_bus_wait_name(pb->address, 20)) {
		g_printerr("vfio-migd did not own %s on the policy bus\n", BUS_NAME);
		/* stop what was started, so that the failure is prompt, not a timeout */
		teardown((void **)&pb);
		return -1;
	}
	*state = pb;
	return 0;
}

static int
teardown(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *cmd = NULL;

	if (pb == NULL)
		return 0;
	g_subprocess_send_signal(pb->daemon, SIGTERM);
	g_subprocess_wait(pb->daemon, NULL, NULL);
	g_subprocess_force_exit(pb->bus);
	g_subprocess_wait(pb->bus, NULL, NULL);
	g_object_unref(pb->daemon);
	g_object_unref(pb->bus);
	cmd = g_strdup_printf("rm -rf '%s'", pb->dir);
	g_assert(system(cmd) == 0);
	g_free(pb->address);
	g_free(pb->dir);
	g_free(pb);
	return 0;
}

static void
become_user(gpointer user_data)
{
	uid_t uid = GPOINTER_TO_UINT(user_data);
	/* a fresh process that execs gdbus: no GLib state is inherited across the fork */
	if (uid != 0 && (setgid(uid) != 0 || setuid(uid) != 0))
		_exit(127);
}

/* `gdbus call` as @uid; returns its exit status, *@err gets its stderr */
static gint
gdbus_as(uid_t uid, gchar **err, const gchar *address, const gchar *dest, const gchar *path,
	 const gchar *method, const gchar *arg1, const gchar *arg2)
{
	const gchar *argv[] = {
	    "gdbus", "call",	 "--address", address, "--dest", dest, "--object-path",
	    path,    "--method", method,      arg1,    arg2,	 NULL};
	gint status = -1;
	g_autofree gchar *out = NULL;
	g_autoptr(GError) error = NULL;

	/* its stdout (the reply) must not mix with the TAP stream */
	g_assert(g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, become_user,
			      GUINT_TO_POINTER(uid), &out, err, &status, &error));
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_root_allowed_others_denied(void **state)
{
	PolicyBus *pb = *state;
	g_autofree gchar *err = NULL;

	/* root calls the daemon */
	assert_int_equal(gdbus_as(0, &err, pb->address, BUS_NAME, "/org/vfiomigd/Migd1",
				  "org.vfiomigd.Migd1.Manager.ListDevices", NULL, NULL),
			 0);
	/* another user is refused by the bus before the daemon sees the call */
	g_clear_pointer(&err, g_free);
	assert_int_not_equal(gdbus_as(NOBODY, &err, pb->address, BUS_NAME, "/org/vfiomigd/Migd1",
				      "org.vfiomigd.Migd1.Manager.ListDevices", NULL, NULL),
			     0);
	if (strstr(err, "AccessDenied") == NULL)
		fail_msg("not refused by the policy: %s", err);
	/* ... and may not take the daemon's name */
	g_clear_pointer(&err, g_free);
	assert_int_not_equal(gdbus_as(NOBODY, &err, pb->address, "org.freedesktop.DBus",
				      "/org/freedesktop/DBus", "org.freedesktop.DBus.RequestName",
				      BUS_NAME, "uint32 0"),
			     0);
	if (strstr(err, "AccessDenied") == NULL)
		fail_msg("owning the name was not refused by the policy: %s", err);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_root_allowed_others_denied, setup, teardown),
	};
	if (argc < 2) {
		g_printerr("usage: %s VFIO_MIGD\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		/* TAP: a skipped plan, said plainly */
		printf("1..0 # SKIP needs root to become another user\n");
		return 0;
	}
	migd_path = g_canonicalize_filename(argv[1], NULL);
	return cmocka_run_group_tests_name("dbus-policy", tests, NULL, NULL);
}
