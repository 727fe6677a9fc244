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
#include <sys/stat.h>
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
	assert_non_null(
	    strstr(error->message, "option 'iova-ranges' of sim6: IOVA range 0 0x0+0x0: length 0"));
	g_clear_error(&error);
	/* the config's rules: 4 KiB aligned, no overlap */
	reply = dt_manager_call(
	    daemon, "AddDevice",
	    g_variant_new_parsed("('sim6', {'sim-spec': <'mlx5:seed=6'>, "
				 "'iova-ranges': <@a(tt) [(0, 8192), (4096, 4096)]>})"),
	    &error);
	assert_null(reply);
	assert_non_null(strstr(error->message, "option 'iova-ranges' of sim6: IOVA ranges 0 "
					       "(0x0+0x2000) and 1 (0x1000+0x1000) overlap"));
	g_clear_error(&error);
	reply = dt_manager_call(daemon, "AddDevice",
				g_variant_new_parsed("('sim6', {'sim-spec': <'mlx5:seed=6'>, "
						     "'iova-ranges': <@a(tt) [(2048, 4096)]>})"),
				&error);
	assert_null(reply);
	assert_non_null(strstr(error->message, "the start is not aligned to 4 KiB"));
	g_clear_error(&error);
	assert_false(has_device(daemon, "sim6", NULL));

	/* attach: an fd that is not a VFIO device is refused with a reason */
	{
		g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
		gint fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		const gchar *said;

		assert_int_equal(g_unix_fd_list_append(fds, fd, NULL), 0);
		close(fd);
		reply = g_dbus_connection_call_with_unix_fd_list_sync(
		    dt_connection(), bus, "/org/vfiomigd/Migd1", "org.vfiomigd.Migd1.Manager",
		    "AttachDevice", g_variant_new_parsed("(@h 0, 'vm1-nic', @a{sv} {})"), NULL,
		    G_DBUS_CALL_FLAGS_NONE, -1, fds, NULL, NULL, &error);
		assert_null(reply);
		/* said once, about what the caller passed, not the daemon's own fd number */
		said = strstr(error->message, "vm1-nic: the fd passed: not a usable VFIO device fd "
					      "(VFIO_DEVICE_GET_INFO): ");
		if (said == NULL ||
		    strstr(strstr(said, "not a usable") + 1, "not a usable") != NULL ||
		    strstr(error->message, " on fd ") != NULL)
			fail_msg("AttachDevice of /dev/null: '%s'", error->message);
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
	    {"[device sim9]\niova-ranges=0x0+1G\n",
	     "vfio-migd.conf:1: [device sim9]: no such device"},
	    {"[device sim0]\niova-range=0x0+1G\n",
	     "vfio-migd.conf:2: [device sim0] iova-range: unknown key"},
	    {"[device sim0]\niova-ranges=0x0\n", "[device sim0] iova-ranges"},
	    {"[plugin mlx5]\nread-size=lots\n",
	     "vfio-migd.conf:2: plugins: [plugin mlx5]: read-size=lots"},
	    {"not a key file", "vfio-migd.conf"},
	    {"[libvirt]\nread-write=true\n", "[libvirt]: uri= is required"},
	    {"[libvirt]\nuri=test:///default\nread-write=maybe\n", "[libvirt] read-write"},
	    {"[libvirt]\nuri=test:///default\ncolour=red\n", "[libvirt]: unknown key 'colour'"},
	    {"[libvirt]\nuri=test:///default\n[libvirt-domain test]\npeer=tcp:127.0.0.1:1\n",
	     "vfio-migd.conf:3: [libvirt-domain test]"},
	    {"[libvirt]\nuri=test:///default\ncert=\n",
	     "[libvirt] option 'cert' must not be empty"},
	    {"[listen]\nplain=perhaps\n", "[listen] plain"},
	    {"[listen]\nplain-remote=true\n",
	     "vfio-migd.conf:2: [listen] plain-remote: unknown key"},
	    {"[listen]\nallowed-uids=0;bob\n", "[listen] allowed-uids: 'bob' is not a uid"},
	    {"[listen]\nhello-timeout-ms=0\n", "[listen] hello-timeout-ms: hello-timeout-ms=0"},
	    {"[listen]\nmax-pending-peers=many\n",
	     "[listen] max-pending-peers: max-pending-peers=many"},
	    {"[listen]\nmax-partial-frame-bytes=1M\n", "max-partial-frame-bytes=1M: out of range"},
	    {"[daemon]\nnap=1\n", "vfio-migd.conf:2: [daemon] nap: unknown key"},
	    /* a misspelt or capitalised group used to be ignored without a word */
	    {"[deamon]\nlow-power-idle=true\n",
	     "vfio-migd.conf:1: [deamon]: unknown group (known: [daemon], "},
	    {"[Listen]\nplain=true\n", "[Listen]: unknown group"},
	    {"[device ]\niova-ranges=0x0+1G\n", "[device ]: unknown group"},
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
config_proc_exited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	*(gboolean *)user_data = TRUE;
}

/* runs vfio-migd with @args; it must exit 1 within 10 s saying @expect */
static void
assert_daemon_refused_quickly(const gchar *const *args, const gchar *expect)
{
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GInputStream) err = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	gchar buf[4096] = {0};
	gsize n = 0;
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	gboolean exited = FALSE;

	g_ptr_array_add(argv, (gpointer)dt_migd_path());
	g_ptr_array_add(argv, (gpointer) "--session");
	g_ptr_array_add(argv, (gpointer) "--bus-name");
	g_ptr_array_add(argv, (gpointer) "org.vfiomigd.Test.BadConfig");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	proc = g_subprocess_newv((const gchar *const *)argv->pdata,
				 G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
				 &error);
	assert_non_null(proc);
	g_subprocess_wait_async(proc, NULL, config_proc_exited_cb, &exited);
	while (!exited) {
		if (g_get_monotonic_time() > deadline) {
			g_subprocess_force_exit(proc);
			while (!exited)
				g_main_context_iteration(NULL, TRUE);
			fail_msg("%s %s: still running after 10 s", args[0], args[1]);
		}
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(10000);
	}
	assert_true(g_subprocess_get_if_exited(proc));
	assert_int_equal(g_subprocess_get_exit_status(proc), 1);
	err = g_object_ref(g_subprocess_get_stderr_pipe(proc));
	assert_true(g_input_stream_read_all(err, buf, sizeof(buf) - 1, &n, NULL, NULL));
	if (strstr(buf, expect) == NULL)
		fail_msg("%s %s: '%s' does not say '%s'", args[0], args[1], buf, expect);
}

static void
assert_config_refused_quickly(const gchar *conf, const gchar *expect)
{
	const gchar *const args[] = {"--config", conf, NULL};
	assert_daemon_refused_quickly(args, expect);
}

/* a plugin directory the operator named must exist; the compiled-in one may be absent */
static void
test_plugin_dir_missing(void **state)
{
	const gchar *const args[] = {"--plugin-dir", "/nonexistent/migd-plugins", NULL};
	g_autofree gchar *saved = g_strdup(g_getenv("VFIO_MIGD_PLUGIN_DIR"));
	const gchar *const none[] = {NULL};

	assert_daemon_refused_quickly(args, "plugin directory /nonexistent/migd-plugins does not "
					    "exist (a directory named with --plugin-dir or "
					    "$VFIO_MIGD_PLUGIN_DIR must)");
	g_setenv("VFIO_MIGD_PLUGIN_DIR", "/nonexistent/migd-env-plugins", TRUE);
	assert_daemon_refused_quickly(none, "plugin directory /nonexistent/migd-env-plugins");
	if (saved != NULL)
		g_setenv("VFIO_MIGD_PLUGIN_DIR", saved, TRUE);
	else
		g_unsetenv("VFIO_MIGD_PLUGIN_DIR");
}

/* [listen] start= takes "auto" or "manual" only */
static void
test_config_listen_start_refused(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-conf-XXXXXX", NULL);
	g_autofree gchar *conf = g_build_filename(dir, "start.conf", NULL);

	assert_true(g_file_set_contents(conf, "[listen]\nstart=later\n", -1, NULL));
	assert_config_refused_quickly(
	    conf, "[listen] start: must be \"auto\" or \"manual\", not \"later\"");
	assert_int_equal(unlink(conf), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* a FIFO (nobody writing) or a device as the configuration: refused at once, never read */
static void
test_config_not_a_file(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-conf-XXXXXX", NULL);
	g_autofree gchar *fifo = g_build_filename(dir, "fifo.conf", NULL);

	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_config_refused_quickly(fifo, "a FIFO, but a regular file is required");
	assert_config_refused_quickly("/dev/zero", "/dev/zero: a character device");
	assert_int_equal(unlink(fifo), 0);
	assert_int_equal(rmdir(dir), 0);
}

/*
 * A 16 GiB simulated state takes minutes to hash: ListDevices answers at once with
 * sim-digest-pending, a smaller large one gets its digest from the worker, and SIGTERM ends
 * the daemon promptly while the big digest is still being computed.
 */
static void
test_large_sim_digest(void **state)
{
	const gchar *const specs[] = {"mlx5:state_size=16G,seed=3", "mlx5:state_size=128M,seed=4",
				      NULL};
	DtDaemon *daemon = dt_daemon_start("org.vfiomigd.Test.LargeSim", specs);
	g_autoptr(GVariant) props = NULL;
	guint64 digest = 0;
	gboolean pending = FALSE;
	gint64 start = g_get_monotonic_time();

	props = dt_device_props(daemon, 0);
	assert_true(g_get_monotonic_time() - start < 2 * G_USEC_PER_SEC);
	assert_false(g_variant_lookup(props, "sim-digest", "t", &digest));
	assert_true(g_variant_lookup(props, "sim-digest-pending", "b", &pending));
	assert_true(pending);
	assert_true(g_variant_lookup(props, "state-size", "t", &digest));
	assert_int_equal(digest, 16ull << 30);

	/* the worker's digest, then the cached one for the same state */
	digest = dt_device_digest(daemon, 1);
	assert_true(digest == dt_device_digest(daemon, 1));

	start = g_get_monotonic_time();
	dt_daemon_stop(daemon); /* SIGTERM; exit status 0 */
	if (g_get_monotonic_time() - start > 3 * G_USEC_PER_SEC)
		fail_msg("SIGTERM took %" G_GINT64_FORMAT " ms",
			 (g_get_monotonic_time() - start) / 1000);
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
	g_autoptr(GError) error3 = NULL;
	g_autoptr(GError) error4 = NULL;
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
	/* plain TCP, loopback or not, only with the explicit option, and the error says so */
	reply = dt_manager_call(daemon, "Listen",
				g_variant_new("(s@a{sv})", "tcp:127.0.0.1:0",
					      options_one("plain", g_variant_new_boolean(TRUE))),
				&error3);
	assert_null(reply);
	assert_dbus_error(error3, DT_MIGD_ERROR_PREFIX "InvalidArgument");
	assert_non_null(strstr(error3->message, "insecure-plain-tcp"));
	reply =
	    dt_manager_call(daemon, "Listen",
			    g_variant_new("(s@a{sv})", "unix:@migd-dt-bad-uids",
					  options_one("allowed-uids", g_variant_new_string("1"))),
			    &error4);
	assert_null(reply);
	assert_dbus_error(error4, DT_MIGD_ERROR_PREFIX "InvalidArgument");
	assert_non_null(strstr(error4->message, "'allowed-uids' must be of type 'au'"));
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
	    cmocka_unit_test_setup_teardown(test_config_not_a_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_listen_start_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plugin_dir_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_large_sim_digest, setup, teardown),
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
