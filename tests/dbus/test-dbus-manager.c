/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The Manager without a migration: properties, ListDevices, and bad input from
 * a caller, which must come back as an org.vfiomigd.Migd1.Error name and leave
 * the daemon running.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dbus-test-util.h"

static const gchar *const manager_specs[] = {
    "mlx5:state_size=8M,seed=1",
    "hisi_acc:seed=3",
    NULL,
};

static int
setup(void **state)
{
	*state = dt_daemon_start("org.vfiomigd.Test.Manager", manager_specs);
	return 0;
}

static int
teardown(void **state)
{
	dt_daemon_stop(*state);
	return 0;
}

static void
assert_dbus_error(GError *error, const gchar *name)
{
	g_autofree gchar *remote = NULL;

	assert_non_null(error);
	remote = g_dbus_error_get_remote_error(error);
	if (g_strcmp0(remote, name) != 0)
		fail_msg("expected %s, got %s: %s", name, remote, error->message);
}

static GVariant *
options_one(const gchar *key, GVariant *value)
{
	g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", key, value);
	return g_variant_builder_end(&b);
}

static void
migrate_expect_error(DtDaemon *daemon, const gchar *address, const gchar *const *devices,
		     GVariant *options, const gchar *error_name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	const gchar *const none[] = {NULL};

	reply = dt_manager_call(
	    daemon, "Migrate",
	    g_variant_new("(s^as@a{sv})", address, devices != NULL ? devices : none, options),
	    &error);
	assert_null(reply);
	assert_dbus_error(error, error_name);
}

static void
test_properties(void **state)
{
	DtDaemon *daemon = *state;
	g_autoptr(GVariant) version = NULL;
	g_autoptr(GVariant) caps = NULL;
	g_autofree const gchar **strv = NULL;

	version = dt_get_property(daemon, DT_MANAGER_PATH, DT_MANAGER_IFACE, "Version");
	assert_string_equal(g_variant_get_string(version, NULL), PACKAGE_VERSION);
	caps = dt_get_property(daemon, DT_MANAGER_PATH, DT_MANAGER_IFACE, "Capabilities");
	assert_string_equal(g_variant_get_type_string(caps), "as");
	strv = g_variant_get_strv(caps, NULL);
	assert_true(g_strv_contains(strv, "migrate"));
	assert_true(g_strv_contains(strv, "listen"));
	assert_true(g_strv_contains(strv, "simulated-devices"));
	assert_false(g_strv_contains(strv, "kernel-devices"));
}

static void
test_list_devices(void **state)
{
	DtDaemon *daemon = *state;
	const gchar *const profiles[] = {"mlx5", "hisi_acc"};
	const gchar *const trackers[] = {"device", "iommu"};

	assert_int_equal(dt_n_devices(daemon), 2);
	for (guint i = 0; i < 2; i++) {
		g_autoptr(GVariant) props = dt_device_props(daemon, i);
		const gchar *s = NULL;
		guint64 t = 0;
		gboolean busy = TRUE;

		assert_true(g_variant_lookup(props, "state", "&s", &s));
		assert_string_equal(s, "RUNNING");
		assert_true(g_variant_lookup(props, "flags", "&s", &s));
		assert_non_null(strstr(s, "STOP_COPY"));
		assert_true(g_variant_lookup(props, "profile", "&s", &s));
		assert_string_equal(s, profiles[i]);
		/* each profile's driver has its plugin (loaded from the build tree) */
		assert_true(g_variant_lookup(props, "plugin", "&s", &s));
		assert_string_equal(s, profiles[i]);
		assert_true(g_variant_lookup(props, "dirty-tracker", "&s", &s));
		assert_string_equal(s, trackers[i]);
		assert_true(g_variant_lookup(props, "backend", "&s", &s));
		assert_string_equal(s, "sim");
		assert_true(g_variant_lookup(props, "busy", "b", &busy));
		assert_false(busy);
		assert_true(g_variant_lookup(props, "sim-digest", "t", &t));
		assert_true(g_variant_lookup(props, "state-size", "t", &t));
		assert_true(t > 0);
	}
	/* the seeded state is stable: two reads, one digest */
	assert_true(dt_device_digest(daemon, 0) == dt_device_digest(daemon, 0));
	assert_true(dt_device_digest(daemon, 0) != dt_device_digest(daemon, 1));
}

/* a daemon whose plugin directory lacks the modules serves the devices generically */
static void
test_plugins_removed_fall_back(void **state)
{
	const gchar *const specs[] = {"mlx5:seed=1", "hisi_acc:seed=2", NULL};
	g_autofree gchar *empty = g_dir_make_tmp("migd-no-plugins-XXXXXX", NULL);
	g_autofree gchar *saved = g_strdup(g_getenv("VFIO_MIGD_PLUGIN_DIR"));
	g_autoptr(DtDaemon) bare = NULL;

	g_setenv("VFIO_MIGD_PLUGIN_DIR", empty, TRUE);
	bare = dt_daemon_start("org.vfiomigd.Test.NoPlugins", specs);
	if (saved != NULL)
		g_setenv("VFIO_MIGD_PLUGIN_DIR", saved, TRUE);
	for (guint i = 0; i < 2; i++) {
		g_autoptr(GVariant) props = dt_device_props(bare, i);
		const gchar *s = NULL;
		assert_true(g_variant_lookup(props, "plugin", "&s", &s));
		assert_string_equal(s, "generic");
	}
	assert_int_equal(rmdir(empty), 0);
}

/* AddDevice / AttachDevice / DetachDevice, through D-Bus and vfio-migctl */
static gboolean
has_device(DtDaemon *daemon, const gchar *name, const gchar **plugin_out)
{
	g_autoptr(GVariant) reply = dt_manager_call(daemon, "ListDevices", NULL, NULL);
	g_autoptr(GVariant) list = g_variant_get_child_value(reply, 0);
	GVariantIter iter;
	const gchar *n;
	GVariant *props;

	g_variant_iter_init(&iter, list);
	while (g_variant_iter_next(&iter, "(&s@a{sv})", &n, &props)) {
		gboolean found = g_strcmp0(n, name) == 0;
		if (found && plugin_out != NULL) {
			static gchar plugin[64];
			const gchar *p = "";
			g_variant_lookup(props, "plugin", "&s", &p);
			g_strlcpy(plugin, p, sizeof(plugin));
			*plugin_out = plugin;
		}
		g_variant_unref(props);
		if (found)
			return TRUE;
	}
	return FALSE;
}

static void
test_add_attach_detach(void **state)
{
	DtDaemon *daemon = *state;
	const gchar *bus = "org.vfiomigd.Test.Manager";
	g_autofree gchar *out = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	const gchar *plugin = NULL;

	/* a simulated device, with its IOVA ranges, through vfio-migctl */
	assert_int_equal(dt_migctl(bus, &out, "add", "sim9", "--sim-spec", "mlx5:seed=9",
				   "--iova-ranges", "0x0+1G,0x100000000+1G", NULL),
			 0);
	assert_true(has_device(daemon, "sim9", &plugin));
	assert_string_equal(plugin, "mlx5");
	/* the same name twice */
	g_clear_pointer(&out, g_free);
	assert_int_equal(dt_migctl(bus, &out, "add", "sim9", "--sim-spec", "hisi_acc:seed=1", NULL),
			 1);
	/* a bad range, an unknown option, a kernel device that does not exist */
	g_clear_pointer(&out, g_free);
	assert_int_equal(dt_migctl(bus, &out, "add", "sim8", "--sim-spec", "mlx5:seed=8",
				   "--iova-ranges", "0x0", NULL),
			 1);
	reply = dt_manager_call(daemon, "AddDevice",
				g_variant_new_parsed("('sim7', {'color': <'blue'>})"), &error);
	assert_null(reply);
	assert_non_null(strstr(error->message, "unknown option 'color'"));
	g_clear_error(&error);
	reply = dt_manager_call(daemon, "AddDevice",
				g_variant_new_parsed("('0000:99:99.7', @a{sv} {})"), &error);
	assert_null(reply);
	assert_non_null(strstr(error->message, "0000:99:99.7"));
	g_clear_error(&error);
	reply = dt_manager_call(daemon, "AddDevice",
				g_variant_new_parsed("('sim6', {'sim-spec': <'mlx5:seed=6'>, "
						     "'iova-ranges': <@a(tt) [(0, 0)]>})"),
				&error);
	assert_null(reply);
	assert_non_null(strstr(error->message, "empty or wraps"));
	g_clear_error(&error);
	assert_false(has_device(daemon, "sim6", NULL));

	/* attach: an fd that is not a VFIO device is refused with a reason */
	{
		g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
		gint fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		assert_int_equal(g_unix_fd_list_append(fds, fd, NULL), 0);
		close(fd);
		reply = g_dbus_connection_call_with_unix_fd_list_sync(
		    dt_connection(), bus, "/org/vfiomigd/Migd1", "org.vfiomigd.Migd1.Manager",
		    "AttachDevice", g_variant_new_parsed("(@h 0, 'vm1-nic', @a{sv} {})"), NULL,
		    G_DBUS_CALL_FLAGS_NONE, -1, fds, NULL, NULL, &error);
		assert_null(reply);
		assert_non_null(strstr(error->message, "not a usable VFIO device fd"));
		g_clear_error(&error);
	}
	/* vfio-migctl attach insists on an fd */
	g_clear_pointer(&out, g_free);
	assert_int_equal(dt_migctl(bus, &out, "attach", "vm1-nic", NULL), 2);

	/* "address" says which device an fd is: AttachDevice only, a non-empty string */
	reply = dt_manager_call(daemon, "AddDevice",
				g_variant_new_parsed("('sim7', {'sim-spec': <'mlx5:seed=7'>, "
						     "'address': <'0000:3b:00.1'>})"),
				&error);
	assert_null(reply);
	assert_non_null(strstr(error->message, "goes with a device fd"));
	g_clear_error(&error);
	assert_false(has_device(daemon, "sim7", NULL));
	{
		const gchar *const bad[] = {"(@h 0, 'vm2', {'address': <@u 3>})",
					    "(@h 0, 'vm2', {'address': <''>})"};
		const gchar *const why[] = {"must be a string", "is empty"};
		for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
			g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
			gint fd = open("/dev/null", O_RDWR | O_CLOEXEC);
			assert_int_equal(g_unix_fd_list_append(fds, fd, NULL), 0);
			close(fd);
			reply = g_dbus_connection_call_with_unix_fd_list_sync(
			    dt_connection(), bus, "/org/vfiomigd/Migd1",
			    "org.vfiomigd.Migd1.Manager", "AttachDevice",
			    g_variant_new_parsed(bad[i]), NULL, G_DBUS_CALL_FLAGS_NONE, -1, fds,
			    NULL, NULL, &error);
			assert_null(reply);
			if (strstr(error->message, why[i]) == NULL)
				fail_msg("%s: %s", bad[i], error->message);
			g_clear_error(&error);
		}
	}
	/* vfio-migctl: --address only with attach */
	g_clear_pointer(&out, g_free);
	assert_int_equal(dt_migctl(bus, &out, "add", "sim8", "--address", "0000:3b:00.1", NULL), 2);

	/* detach: gone; twice: unknown */
	g_clear_pointer(&out, g_free);
	assert_int_equal(dt_migctl(bus, &out, "--json", "detach", "sim9", NULL), 0);
	assert_non_null(strstr(out, "\"detached\":true"));
	assert_false(has_device(daemon, "sim9", NULL));
	g_clear_pointer(&out, g_free);
	assert_int_equal(dt_migctl(bus, &out, "detach", "sim9", NULL), 1);
}

/* [libvirt]: the daemon follows libvirt (here the test driver) and still serves */
static void
test_libvirt_watcher_starts(void **state)
{
	const gchar *const specs[] = {"mlx5:seed=1", NULL};
	g_autofree gchar *dir = g_dir_make_tmp("migd-lv-XXXXXX", NULL);
	g_autofree gchar *conf = g_build_filename(dir, "lv.conf", NULL);
	DtDaemon *daemon;

	assert_true(g_file_set_contents(conf,
					"[libvirt]\nuri=test:///default\nplain=true\n"
					"[libvirt-domain test]\ndevices=sim0\n"
					"peer=tcp:127.0.0.1:4821\n",
					-1, NULL));
	daemon = dt_daemon_start_full("org.vfiomigd.Test.Libvirt", specs, conf);
	assert_int_equal(dt_n_devices(daemon), 1);
	dt_daemon_stop(daemon);
	assert_int_equal(unlink(conf), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* the messages systemd would get: READY after the name, STATUS, WATCHDOG, STOPPING */
static gboolean
notify_wait(gint fd, const gchar *prefix, gchar **line_out)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		gchar buf[4096];
		GPollFD pfd = {.fd = fd, .events = G_IO_IN};
		gssize n;
		/* the daemon's bus traffic is dispatched while we wait */
		g_main_context_iteration(NULL, FALSE);
		if (g_poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		{
			g_auto(GStrv) lines = g_strsplit(buf, "\n", -1);
			for (guint i = 0; lines[i] != NULL; i++) {
				if (!g_str_has_prefix(lines[i], prefix))
					continue;
				if (line_out != NULL)
					*line_out = g_strdup(lines[i]);
				return TRUE;
			}
		}
	}
	return FALSE;
}

static void
test_systemd_notify(void **state)
{
	const gchar *const specs[] = {"mlx5:seed=1", NULL};
	g_autofree gchar *dir = g_dir_make_tmp("migd-notify-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(dir, "notify", NULL);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	g_autofree gchar *status = NULL;
	DtDaemon *daemon;
	gint fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	g_setenv("NOTIFY_SOCKET", path, TRUE);
	g_setenv("WATCHDOG_USEC", "400000", TRUE);
	daemon = dt_daemon_start("org.vfiomigd.Test.Notify", specs);
	g_unsetenv("NOTIFY_SOCKET");
	g_unsetenv("WATCHDOG_USEC");

	assert_true(notify_wait(fd, "READY=1", NULL));
	assert_true(notify_wait(fd, "WATCHDOG=1", NULL));
	assert_true(notify_wait(fd, "STATUS=Idle, 1 device(s)", &status));
	dt_daemon_stop(daemon);
	assert_true(notify_wait(fd, "STOPPING=1", NULL));
	close(fd);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* a bad configuration stops the daemon at once, naming the group and the problem */
static void
test_bad_config_refused(void **state)
{
	const struct {
		const gchar *text;
		const gchar *expect;
	} cases[] = {
	    {"[device sim9]\niova-ranges=0x0+1G\n", "[device sim9]: no such device"},
	    {"[device sim0]\niova-range=0x0+1G\n", "unknown key 'iova-range'"},
	    {"[device sim0]\niova-ranges=0x0\n", "[device sim0] iova-ranges"},
	    {"[plugin mlx5]\nread-size=lots\n", "[plugin mlx5]"},
	    {"not a key file", "vfio-migd.conf"},
	    {"[libvirt]\nread-write=true\n", "[libvirt]: uri= is required"},
	    {"[libvirt]\nuri=test:///default\nread-write=maybe\n", "[libvirt] read-write"},
	    {"[libvirt]\nuri=test:///default\ncolour=red\n", "[libvirt]: unknown key 'colour'"},
	    {"[libvirt]\nuri=test:///default\n[libvirt-domain test]\npeer=tcp:127.0.0.1:1\n",
	     "[libvirt-domain test]"},
	    {"[libvirt]\nuri=test:///default\ncert=\n",
	     "[libvirt] option 'cert' must not be empty"},
	    {"[listen]\nplain=perhaps\n", "[listen] plain"},
	    {"[daemon]\nnap=1\n", "[daemon]: unknown key 'nap'"},
	};
	g_autofree gchar *dir = g_dir_make_tmp("migd-conf-XXXXXX", NULL);
	g_autofree gchar *conf = g_build_filename(dir, "vfio-migd.conf", NULL);

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GSubprocess) proc = NULL;
		g_autofree gchar *err = NULL;
		g_autoptr(GError) error = NULL;

		assert_true(g_file_set_contents(conf, cases[i].text, -1, NULL));
		proc = g_subprocess_new(
		    G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error,
		    dt_migd_path(), "--session", "--bus-name", "org.vfiomigd.Test.BadConfig",
		    "--sim-device", "mlx5:seed=1", "--config", conf, NULL);
		assert_non_null(proc);
		assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, NULL, &err, &error));
		assert_true(g_subprocess_get_if_exited(proc));
		assert_int_equal(g_subprocess_get_exit_status(proc), 1);
		if (strstr(err, cases[i].expect) == NULL)
			fail_msg("case %u: '%s' does not say '%s'", i, err, cases[i].expect);
	}
	assert_int_equal(unlink(conf), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void
test_migrate_unknown_device(void **state)
{
	const gchar *const devices[] = {"sim0", "nosuchdevice", NULL};
	migrate_expect_error(*state, "tcp:127.0.0.1:9", devices,
			     options_one("plain", g_variant_new_boolean(TRUE)),
			     DT_MIGD_ERROR_PREFIX "InvalidArgument");
}

static void
test_migrate_device_twice(void **state)
{
	const gchar *const devices[] = {"sim1", "sim1", NULL};
	migrate_expect_error(*state, "tcp:127.0.0.1:9", devices,
			     options_one("plain", g_variant_new_boolean(TRUE)),
			     DT_MIGD_ERROR_PREFIX "InvalidArgument");
}

static void
test_migrate_bad_address(void **state)
{
	const gchar *const bad[] = {"",
				    "127.0.0.1:80",
				    "tcp:",
				    "tcp:host",
				    "tcp:[::1:80",
				    "tcp:127.0.0.1:99999",
				    "carrier-pigeon:x",
				    "unix:"};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
		migrate_expect_error(*state, bad[i], NULL,
				     options_one("plain", g_variant_new_boolean(TRUE)),
				     DT_MIGD_ERROR_PREFIX "InvalidArgument");
}

static void
test_migrate_bad_options(void **state)
{
	const gchar *const inval = DT_MIGD_ERROR_PREFIX "InvalidArgument";

	/* wrong types */
	migrate_expect_error(*state, "tcp:127.0.0.1:9", NULL,
			     options_one("plain", g_variant_new_string("yes")), inval);
	migrate_expect_error(*state, "tcp:127.0.0.1:9", NULL,
			     options_one("downtime-ms", g_variant_new_int64(300)), inval);
	migrate_expect_error(*state, "tcp:127.0.0.1:9", NULL,
			     options_one("cert", g_variant_new_uint32(1)), inval);
	/* out of range, empty, unknown */
	migrate_expect_error(*state, "tcp:127.0.0.1:9", NULL,
			     options_one("max-rounds", g_variant_new_uint32(0)), inval);
	migrate_expect_error(*state, "tcp:127.0.0.1:9", NULL,
			     options_one("ca", g_variant_new_string("")), inval);
	migrate_expect_error(*state, "tcp:127.0.0.1:9", NULL,
			     options_one("plaintext", g_variant_new_boolean(TRUE)), inval);
}

static void
test_listen_bad_input(void **state)
{
	DtDaemon *daemon = *state;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	g_autoptr(GVariant) reply = NULL;

	reply = dt_manager_call(daemon, "Listen",
				g_variant_new("(s@a{sv})", "nonsense",
					      options_one("plain", g_variant_new_boolean(TRUE))),
				&error);
	assert_null(reply);
	assert_dbus_error(error, DT_MIGD_ERROR_PREFIX "InvalidArgument");
	/* peer-name is the client's check; a listener refuses it rather than ignore it */
	reply = dt_manager_call(daemon, "Listen",
				g_variant_new("(s@a{sv})", "tcp:127.0.0.1:0",
					      options_one("peer-name", g_variant_new_string("x"))),
				&error2);
	assert_null(reply);
	assert_dbus_error(error2, DT_MIGD_ERROR_PREFIX "InvalidArgument");
}

static void
test_listen_twice(void **state)
{
	DtDaemon *daemon = *state;
	g_autofree gchar *bound = dt_listen_plain(daemon);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;

	reply = dt_manager_call(daemon, "Listen",
				g_variant_new("(s@a{sv})", "tcp:127.0.0.1:0",
					      options_one("plain", g_variant_new_boolean(TRUE))),
				&error);
	assert_null(reply);
	assert_dbus_error(error, DT_MIGD_ERROR_PREFIX "Busy");
}

static void
test_cancel_unknown_job(void **state)
{
	DtDaemon *daemon = *state;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;

	reply = g_dbus_connection_call_sync(
	    dt_connection(), daemon->bus_name, "/org/vfiomigd/Migd1/jobs/12345", DT_JOB_IFACE,
	    "Cancel", NULL, NULL, G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
	assert_null(reply);
	assert_non_null(error);
	/* and the daemon still answers */
	assert_int_equal(dt_n_devices(daemon), 2);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_properties, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_devices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plugins_removed_fall_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_config_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_systemd_notify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_add_attach_detach, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_libvirt_watcher_starts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_unknown_device, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_device_twice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_bad_address, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_bad_options, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_bad_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_twice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_unknown_job, setup, teardown),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests_name("dbus-manager", tests, dt_bus_up, dt_bus_down);
}
