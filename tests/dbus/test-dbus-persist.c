/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Devices that persist: [device NAME] sim-spec=/address= opened at start, AddDevice's
 * "persist" writing DIR/devices.d/NAME.conf that a restarted daemon reads, and a configured
 * device that is absent: warned about, retried, never fatal.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include <glib/gstdio.h>

#include "dbus-test-util.h"

#define BUS_NAME "org.vfiomigd.Test.Persist"

/* whether ListDevices names @name */
static gboolean
has_device(DtDaemon *daemon, const gchar *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = dt_manager_call(daemon, "ListDevices", NULL, &error);
	g_autoptr(GVariant) devices = NULL;

	if (reply == NULL)
		fail_msg("ListDevices: %s", error->message);
	devices = g_variant_get_child_value(reply, 0);
	for (gsize i = 0; i < g_variant_n_children(devices); i++) {
		const gchar *n = NULL;
		g_variant_get_child(devices, i, "(&s@a{sv})", &n, NULL);
		if (g_strcmp0(n, name) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
remove_tree(const gchar *dir)
{
	g_autofree gchar *cmd = g_strdup_printf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* a [device NAME] sim-spec= group opens the device at start, named NAME, with its ranges */
static void
test_configured_sim_device(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-persist-XXXXXX", NULL);
	g_autofree gchar *conf = g_build_filename(dir, "vfio-migd.conf", NULL);
	DtDaemon *daemon;

	assert_true(g_file_set_contents(conf,
					"[device persisted]\nsim-spec=mlx5:seed=7\n"
					"iova-ranges=0+1G\n",
					-1, NULL));
	/* no --sim-device: the session daemon serves simulated devices all the same */
	daemon = dt_daemon_start_full(BUS_NAME, NULL, conf);
	assert_true(has_device(daemon, "persisted"));
	assert_int_equal(dt_n_devices(daemon), 1);
	dt_daemon_stop(daemon);
	remove_tree(dir);
}

/* AddDevice persist=true writes the drop-in; a restarted daemon has the device */
static void
test_add_persist_restart(void **state)
{
	const gchar *const specs[] = {"mlx5:seed=1", NULL};
	g_autofree gchar *dir = g_dir_make_tmp("migd-persist-XXXXXX", NULL);
	g_autofree gchar *conf = g_build_filename(dir, "vfio-migd.conf", NULL);
	g_autofree gchar *drop_in = g_build_filename(dir, "devices.d", "extra.conf", NULL);
	g_autofree gchar *text = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GKeyFile) kf = g_key_file_new();
	GVariantBuilder opts;
	DtDaemon *daemon;

	assert_true(g_file_set_contents(conf, "[daemon]\n", -1, NULL));
	daemon = dt_daemon_start_full(BUS_NAME, specs, conf);
	g_variant_builder_init(&opts, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&opts, "{sv}", "sim-spec", g_variant_new_string("mlx5:seed=3"));
	g_variant_builder_add(&opts, "{sv}", "persist", g_variant_new_boolean(TRUE));
	{
		GVariantBuilder r;
		g_variant_builder_init(&r, G_VARIANT_TYPE("a(tt)"));
		g_variant_builder_add(&r, "(tt)", (guint64)0, (guint64)1 << 30);
		g_variant_builder_add(&opts, "{sv}", "iova-ranges", g_variant_builder_end(&r));
	}
	reply =
	    dt_manager_call(daemon, "AddDevice", g_variant_new("(sa{sv})", "extra", &opts), &error);
	if (reply == NULL)
		fail_msg("AddDevice persist: %s", error->message);
	assert_true(has_device(daemon, "extra"));

	/* the drop-in: the group, how to open it, its ranges */
	assert_true(g_file_get_contents(drop_in, &text, NULL, NULL));
	assert_true(g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, NULL));
	{
		g_autofree gchar *spec =
		    g_key_file_get_string(kf, "device extra", "sim-spec", NULL);
		g_autofree gchar *ranges =
		    g_key_file_get_string(kf, "device extra", "iova-ranges", NULL);
		assert_string_equal(spec, "mlx5:seed=3");
		assert_string_equal(ranges, "0x0+0x40000000");
		assert_false(g_key_file_has_key(kf, "device extra", "address", NULL));
	}

	/* a name that is no file name is refused before anything is added */
	g_clear_pointer(&reply, g_variant_unref);
	g_clear_error(&error);
	g_variant_builder_init(&opts, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&opts, "{sv}", "sim-spec", g_variant_new_string("mlx5:seed=4"));
	g_variant_builder_add(&opts, "{sv}", "persist", g_variant_new_boolean(TRUE));
	reply =
	    dt_manager_call(daemon, "AddDevice", g_variant_new("(sa{sv})", "a/b", &opts), &error);
	assert_null(reply);
	assert_non_null(strstr(error->message, "cannot be persisted"));
	assert_false(has_device(daemon, "a/b"));
	dt_daemon_stop(daemon);

	/* restarted with the same config dir: the device is back, by its drop-in */
	daemon = dt_daemon_start_full(BUS_NAME, specs, conf);
	assert_true(has_device(daemon, "extra"));
	assert_true(has_device(daemon, "sim0"));
	dt_daemon_stop(daemon);

	/* the same device configured by hand too: the file wins, the daemon starts */
	assert_true(g_file_set_contents(conf, "[device extra]\nsim-spec=mlx5:seed=9\n", -1, NULL));
	daemon = dt_daemon_start_full(BUS_NAME, specs, conf);
	assert_true(has_device(daemon, "extra"));
	dt_daemon_stop(daemon);
	assert_true(g_file_set_contents(conf, "[daemon]\n", -1, NULL));

	/* a drop-in with a bad key is refused as the file is */
	assert_true(g_file_set_contents(drop_in, "[device extra]\nadress=x\n", -1, NULL));
	g_clear_error(&error);
	{
		g_autoptr(GSubprocess) proc = NULL;
		g_autofree gchar *err = NULL;
		proc = g_subprocess_new(
		    G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error,
		    dt_migd_path(), "--session", "--bus-name", BUS_NAME, "--config", conf, NULL);
		assert_non_null(proc);
		assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, NULL, &err, &error));
		assert_int_equal(g_subprocess_get_exit_status(proc), 1);
		if (strstr(err, "extra.conf:2: [device extra] adress: unknown key") == NULL)
			fail_msg("bad drop-in: '%s'", err);
	}
	remove_tree(dir);
}

/* vfio-migctl add --persist: the same drop-in, through the CLI */
static void
test_migctl_add_persist(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-persist-XXXXXX", NULL);
	g_autofree gchar *conf = g_build_filename(dir, "vfio-migd.conf", NULL);
	g_autofree gchar *drop_in = g_build_filename(dir, "devices.d", "cli0.conf", NULL);
	g_autofree gchar *out = NULL;
	g_autofree gchar *text = NULL;
	DtDaemon *daemon;

	assert_true(g_file_set_contents(conf, "", -1, NULL));
	daemon = dt_daemon_start_full(BUS_NAME, NULL, conf);
	assert_int_equal(dt_migctl(BUS_NAME, &out, "add", "cli0", "--sim-spec", "mlx5:seed=5",
				   "--iova-ranges", "0+2M", "--persist", NULL),
			 0);
	assert_true(has_device(daemon, "cli0"));
	assert_true(g_file_get_contents(drop_in, &text, NULL, NULL));
	assert_non_null(strstr(text, "[device cli0]\nsim-spec=mlx5:seed=5\n"));
	assert_non_null(strstr(text, "iova-ranges=0x0+0x200000\n"));
	/* --persist belongs to add */
	g_clear_pointer(&out, g_free);
	assert_int_not_equal(dt_migctl(BUS_NAME, &out, "detach", "cli0", "--persist", NULL), 0);
	assert_true(has_device(daemon, "cli0"));
	dt_daemon_stop(daemon);
	remove_tree(dir);
}

/*
 * an address that does not exist: the daemon starts, warns (group, line, why), retries it and
 * serves the rest; a bad sim-spec= is warned about once and not retried
 */
static void
test_absent_device_not_fatal(void **state)
{
	const gchar *const specs[] = {"mlx5:seed=1", NULL};
	g_autofree gchar *dir = g_dir_make_tmp("migd-persist-XXXXXX", NULL);
	g_autofree gchar *conf = g_build_filename(dir, "vfio-migd.conf", NULL);
	g_autofree gchar *log = g_build_filename(dir, "stderr", NULL);
	g_autofree gchar *err = NULL;
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	DtDaemon daemon = {.bus_name = (gchar *)BUS_NAME};
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	gboolean up = FALSE;

	assert_true(g_file_set_contents(conf,
					"[daemon]\n"
					"[device gone]\n"
					"address=/nonexistent\n"
					"[device bogus]\n"
					"sim-spec=nosuchdriver:seed=1\n",
					-1, NULL));
	g_subprocess_launcher_set_stderr_file_path(launcher, log);
	proc =
	    g_subprocess_launcher_spawn(launcher, &error, dt_migd_path(), "--session", "--bus-name",
					BUS_NAME, "--sim-device", specs[0], "--config", conf, NULL);
	assert_non_null(proc);
	while (!up && g_get_monotonic_time() < deadline) {
		g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
		    dt_connection(), BUS_NAME, DT_MANAGER_PATH, DT_MANAGER_IFACE, "ListDevices",
		    NULL, NULL, G_DBUS_CALL_FLAGS_NONE, 1000, NULL, NULL);
		up = reply != NULL;
		if (!up)
			g_usleep(50000);
	}
	assert_true(up);
	assert_true(has_device(&daemon, "sim0"));
	assert_false(has_device(&daemon, "gone"));
	assert_true(g_file_get_contents(log, &err, NULL, NULL));
	/* one warning, naming file, line, group, key and why; the retry is armed */
	if (strstr(err, "vfio-migd.conf:3: [device gone] address: ") == NULL ||
	    strstr(err, "retrying") == NULL)
		fail_msg("no clear warning: '%s'", err);
	/* the retries (1 s, then 2 s) run on the main loop: the same error is not warned again */
	g_usleep(1500 * G_USEC_PER_SEC / 1000);
	assert_false(has_device(&daemon, "gone"));
	g_clear_pointer(&err, g_free);
	assert_true(g_file_get_contents(log, &err, NULL, NULL));
	{
		g_auto(GStrv) parts = g_strsplit(err, "[device gone] address: ", -1);
		assert_int_equal(g_strv_length(parts), 2);
	}
	/* a simulated device that does not open never will: one warning, no retry */
	assert_false(has_device(&daemon, "bogus"));
	{
		g_auto(GStrv) lines = g_strsplit(err, "\n", -1);
		guint n = 0;

		for (guint i = 0; lines[i] != NULL; i++) {
			if (strstr(lines[i], "vfio-migd.conf:5: [device bogus] sim-spec: ") == NULL)
				continue;
			n++;
			if (strstr(lines[i], "nosuchdriver") == NULL ||
			    strstr(lines[i], "not opened") == NULL ||
			    strstr(lines[i], "retrying") != NULL)
				fail_msg("unclear or retried: '%s'", lines[i]);
		}
		assert_int_equal(n, 1);
	}
	g_subprocess_send_signal(proc, SIGTERM);
	assert_true(g_subprocess_wait(proc, NULL, NULL));
	assert_true(g_subprocess_get_if_exited(proc));
	assert_int_equal(g_subprocess_get_exit_status(proc), 0);
	remove_tree(dir);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_configured_sim_device),
	    cmocka_unit_test(test_add_persist_restart),
	    cmocka_unit_test(test_migctl_add_persist),
	    cmocka_unit_test(test_absent_device_not_fatal),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests_name("dbus-persist", tests, dt_bus_up, dt_bus_down);
}
