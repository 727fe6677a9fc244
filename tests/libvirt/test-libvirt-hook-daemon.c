/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migd-qemu-hook end to end, with the real vfio-migctl and real vfio-migd
 * daemons on a private bus (tests/dbus/dbus-test-util): the hook prepares the
 * destination daemon, and a source daemon then migrates into it (with a
 * daemon that has expectations: tagged with the domain's UUID, and started
 * by Job.Start as the daemon's libvirt bridge would). argv:
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

/* domain-vfio.xml's <uuid>, as the hook passes it */
#define DOMAIN_UUID "c7a5fdbd-edaf-9455-926a-d65c16db1809"

/* the daemon offers Expect and the Job controls (issue 13) */
static gboolean
has_vm_coordination(DtDaemon *daemon)
{
	g_autoptr(GVariant) caps =
	    dt_get_property(daemon, DT_MANAGER_PATH, DT_MANAGER_IFACE, "Capabilities");
	g_autofree const gchar **list = g_variant_get_strv(caps, NULL);

	return g_strv_contains(list, "vm-coordination");
}

/* waits until the job's Phase is @phase */
static void
wait_phase(DtDaemon *daemon, const gchar *job_path, const gchar *phase)
{
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		g_autoptr(GVariant) reply = NULL;
		g_autoptr(GVariant) v = NULL;

		/* the job appears once the source connected */
		reply = g_dbus_connection_call_sync(
		    dt_connection(), daemon->bus_name, job_path, "org.freedesktop.DBus.Properties",
		    "Get", g_variant_new("(ss)", DT_JOB_IFACE, "Phase"), G_VARIANT_TYPE("(v)"),
		    G_DBUS_CALL_FLAGS_NONE, DT_TIMEOUT_S * 1000, NULL, NULL);
		if (reply != NULL) {
			g_variant_get(reply, "(v)", &v);
			if (g_strcmp0(g_variant_get_string(v, NULL), phase) == 0)
				return;
		}
		g_usleep(20 * 1000);
	}
	fail_msg("job %s never reached phase %s", job_path, phase);
}

/*
 * The coordinated path: the hook's expectation (start=manual) takes only a
 * source that carries the domain's UUID, and its devices wait in STOP until
 * Start (what the destination daemon's [libvirt] does when libvirt resumes
 * the guest).
 */
static void
migrate_coordinated(DtDaemon *src, DtDaemon *dst, const gchar *address, guint64 src_digest)
{
	const gchar *const devices[] = {NULL};
	g_autoptr(GVariantBuilder) options = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) started = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *final = NULL;
	g_autofree gchar *src_final = NULL;
	g_autofree gchar *state = NULL;
	const gchar *src_job = NULL;

	g_variant_builder_add(options, "{sv}", "plain", g_variant_new_boolean(TRUE));
	g_variant_builder_add(options, "{sv}", "migration-id", g_variant_new_string(DOMAIN_UUID));
	reply = dt_manager_call(src, "Migrate",
				g_variant_new("(s^asa{sv})", address, devices, options), &error);
	if (reply == NULL)
		fail_msg("Migrate: %s", error->message);
	g_variant_get(reply, "(&o)", &src_job);
	/* loaded and validated, not running: the guest has not started here */
	wait_phase(dst, "/org/vfiomigd/Migd1/jobs/1", "handover");
	state = dt_device_state(dst, 0);
	assert_string_equal(state, "STOP");
	started = g_dbus_connection_call_sync(
	    dt_connection(), DST_NAME, "/org/vfiomigd/Migd1/jobs/1", DT_JOB_IFACE, "Start", NULL,
	    NULL, G_DBUS_CALL_FLAGS_NONE, DT_TIMEOUT_S * 1000, NULL, &error);
	if (started == NULL)
		fail_msg("Start: %s", error->message);
	final = dt_job_wait_final(dst, "/org/vfiomigd/Migd1/jobs/1");
	assert_string_equal(final, "completed");
	src_final = dt_job_wait_final(src, src_job);
	assert_string_equal(src_final, "completed");
	assert_true(dt_device_digest(dst, 0) == src_digest);
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
	if (has_vm_coordination(dst)) {
		/* the second run replaced the first one's expectation */
		assert_non_null(strstr(err2, "migration " DOMAIN_UUID ", start manual"));
		migrate_coordinated(src, dst, address, src_digest);
		return;
	}
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
