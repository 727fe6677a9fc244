/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migd-qemu-hook end to end, with the real vfio-migctl and real vfio-migd
 * daemons on a private bus (tests/dbus/dbus-test-util): the hook prepares the
 * destination daemon, and a source daemon then migrates into it. argv:
 * vfio-migd, vfio-migctl, the hook, the directory of sample XML.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <glib/gstdio.h>

#include "dbus-test-util.h"

#define DST_NAME "org.vfiomigd.Test.HookDst"
#define SRC_NAME "org.vfiomigd.Test.HookSrc"

static const gchar *hook_path;
static const gchar *data_dir;
static gchar *tmp_dir;
static gchar *config_path;

/* runs the hook for "guest1 migrate begin -" with domain-vfio.xml on stdin */
static gint
run_hook(gchar **err)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *xml = g_build_filename(data_dir, "domain-vfio.xml", NULL);
	g_autofree gchar *out = NULL;
	const gchar *argv[] = {hook_path, "guest1", "migrate", "begin", "-", NULL};

	/* the environment (and so the private bus of GTestDBus) is inherited */
	g_subprocess_launcher_setenv(launcher, "VFIO_MIGD_HOOK_CONFIG", config_path, TRUE);
	g_subprocess_launcher_setenv(launcher, "VFIO_MIGD_HOOK_MIGCTL", dt_migctl_path(), TRUE);
	g_subprocess_launcher_set_stdin_file_path(launcher, xml);
	process = g_subprocess_launcher_spawnv(launcher, argv, &error);
	assert_non_null(process);
	assert_true(g_subprocess_communicate_utf8(process, NULL, NULL, &out, err, &error));
	/* a filter hook never prints the domain XML back */
	assert_string_equal(out, "");
	assert_true(g_subprocess_get_if_exited(process));
	return g_subprocess_get_exit_status(process);
}

static void
write_config(const gchar *address, const gchar *device)
{
	g_autofree gchar *text =
	    g_strdup_printf("[hook]\ntimeout-ms=20000\nsession=true\nbus-name=%s\n"
			    "[listen]\naddress=%s\nplain=true\n"
			    "[pci 0000:3b:00.2]\ndevice=%s\n",
			    DST_NAME, address, device);

	assert_true(g_file_set_contents(config_path, text, -1, NULL));
}

static void
test_hook_prepares_destination(void **state)
{
	const gchar *const dst_specs[] = {"mtty:seed=11,ports=1", NULL};
	const gchar *const src_specs[] = {"mtty:seed=5,ports=1", NULL};
	g_autoptr(DtDaemon) dst = dt_daemon_start(DST_NAME, dst_specs);
	g_autoptr(DtDaemon) src = dt_daemon_start(SRC_NAME, src_specs);
	g_autofree gchar *address = dt_unused_unix_address();
	g_autofree gchar *err = NULL;
	g_autofree gchar *err2 = NULL;
	g_autofree gchar *out = NULL;
	guint64 src_digest;

	write_config(address, "sim0");
	assert_int_equal(run_hook(&err), 0);
	assert_non_null(strstr(err, "expects devices sim0"));
	/* libvirt may retry a migration: the second time the daemon already listens */
	assert_int_equal(run_hook(&err2), 0);
	assert_non_null(strstr(err2, "already listening"));

	/* the destination is ready: the source daemon migrates into it */
	src_digest = dt_device_digest(src, 0);
	assert_int_equal(dt_migctl(SRC_NAME, &out, "--json", "migrate", address, "--plain", NULL),
			 0);
	g_free(dt_job_wait_final(dst, "/org/vfiomigd/Migd1/jobs/1"));
	assert_true(dt_device_digest(dst, 0) == src_digest);
}

static void
test_hook_refuses(void **state)
{
	const gchar *const dst_specs[] = {"mtty:seed=11,ports=1", NULL};
	DtDaemon *dst = dt_daemon_start(DST_NAME, dst_specs);
	g_autofree gchar *address = dt_unused_unix_address();
	g_autofree gchar *err = NULL;
	g_autofree gchar *err2 = NULL;

	/* a mapped device this daemon does not serve */
	write_config(address, "sim7");
	assert_int_equal(run_hook(&err), 1);
	assert_non_null(strstr(err, "no device 'sim7' (it serves: sim0)"));

	/* no daemon at all */
	dt_daemon_stop(dst);
	write_config(address, "sim0");
	assert_int_equal(run_hook(&err2), 1);
	assert_non_null(strstr(err2, "refusing the incoming migration of domain 'guest1'"));
	assert_non_null(strstr(err2, "not running"));
}

static int
group_setup(void **state)
{
	tmp_dir = g_dir_make_tmp("vfio-migd-hook-daemon-XXXXXX", NULL);
	if (tmp_dir == NULL)
		return -1;
	config_path = g_build_filename(tmp_dir, "libvirt-hook.conf", NULL);
	return dt_bus_up(state);
}

static int
group_teardown(void **state)
{
	g_unlink(config_path);
	g_rmdir(tmp_dir);
	g_free(config_path);
	g_free(tmp_dir);
	return dt_bus_down(state);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hook_prepares_destination),
	    cmocka_unit_test(test_hook_refuses),
	};

	if (argc != 5) {
		g_printerr("usage: %s VFIO_MIGD VFIO_MIGCTL HOOK DATA_DIR\n", argv[0]);
		return 2;
	}
	dt_init(argc, argv);
	hook_path = argv[3];
	data_dir = argv[4];
	return cmocka_run_group_tests_name("libvirt-hook-daemon", tests, group_setup,
					   group_teardown);
}
