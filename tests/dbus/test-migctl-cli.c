/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migctl as operators expect it: --version, per-command help, a clear
 * usage error, short job ids, status, D-Bus errors explained, lspci short BDFs,
 * the job printed at once, Ctrl-C (a real SIGINT) cancelling a migration, a
 * distinct cancelled outcome, --detach, and a bar that fits the terminal.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <setjmp.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <cmocka.h>

#include "dbus-test-util.h"

#define SRC_NAME "org.vfiomigd.Test.CliOpsSource"
#define DST_NAME "org.vfiomigd.Test.CliOpsDestination"
/* about 4 s of stop-copy at 16M/s: time to send a signal mid-migration */
#define SLOW_SPEC "mlx5:state_size=64M,seed=1,save_rate=16M"

/* runs vfio-migctl ARGS (no bus options added); returns the exit status */
static gint
run(gchar **out, gchar **err, const gchar *first_arg, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *o = NULL;
	g_autofree gchar *e = NULL;
	va_list args;

	g_ptr_array_add(argv, (gpointer)dt_migctl_path());
	va_start(args, first_arg);
	for (const gchar *arg = first_arg; arg != NULL; arg = va_arg(args, const gchar *))
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(args);
	g_ptr_array_add(argv, NULL);
	process = g_subprocess_newv((const gchar *const *)argv->pdata,
				    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
				    &error);
	assert_non_null(process);
	if (!g_subprocess_communicate_utf8(process, NULL, NULL, &o, &e, &error))
		fail_msg("vfio-migctl: %s", error->message);
	assert_true(g_subprocess_get_if_exited(process));
	if (out != NULL)
		*out = g_steal_pointer(&o);
	if (err != NULL)
		*err = g_steal_pointer(&e);
	return g_subprocess_get_exit_status(process);
}

static void
assert_contains(const gchar *text, const gchar *what)
{
	if (text == NULL || strstr(text, what) == NULL)
		fail_msg("'%s' not in: %s", what, text != NULL ? text : "(null)");
}

static void
assert_lacks(const gchar *text, const gchar *what)
{
	if (text != NULL && strstr(text, what) != NULL)
		fail_msg("'%s' unexpectedly in: %s", what, text);
}

/* the last line of @out that is a JSON object with "event" @event */
static JsonObject *
find_event(const gchar *out, const gchar *event)
{
	g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
	JsonObject *found = NULL;

	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(JsonNode) node = NULL;
		JsonObject *obj;

		if (lines[i][0] == '\0')
			continue;
		node = dt_json_line(lines[i]);
		obj = json_node_get_object(node);
		if (g_strcmp0(json_object_get_string_member_with_default(obj, "event", ""),
			      event) == 0) {
			g_clear_pointer(&found, json_object_unref);
			found = json_object_ref(obj);
		}
	}
	if (found == NULL)
		fail_msg("no %s event in: %s", event, out);
	return found;
}

/* ---- no daemon needed ---- */

static void
test_version_help_usage(void **state)
{
	g_autofree gchar *out = NULL, *err = NULL, *help1 = NULL, *help2 = NULL, *global = NULL;

	assert_int_equal(run(&out, NULL, "--version", NULL), 0);
	assert_string_equal(out, "vfio-migctl " PACKAGE_VERSION "\n");

	/* help CMD and CMD --help: the same, the command's own, not the global list */
	assert_int_equal(run(&help1, NULL, "help", "migrate", NULL), 0);
	assert_int_equal(run(&help2, NULL, "migrate", "--help", NULL), 0);
	assert_string_equal(help1, help2);
	assert_contains(help1, "Usage: vfio-migctl");
	assert_contains(help1, "migrate ADDRESS");
	assert_contains(help1, "--detach");
	assert_contains(help1, "Example:\n  vfio-migctl migrate ");
	assert_lacks(help1, "cancel-expectation");
	g_free(help2);
	help2 = NULL;
	assert_int_equal(
	    run(&help2, NULL, "--session", "--bus-name", "org.x.Y", "watch", "-h", NULL), 0);
	assert_contains(help2, "watch JOB");
	assert_contains(help2, "vfio-migctl watch 3");

	/* the global help lists every command */
	assert_int_equal(run(&global, NULL, "--help", NULL), 0);
	assert_contains(global, "status");
	assert_contains(global, "help COMMAND");

	/* an unknown command: a clear error, exit 2 */
	assert_int_equal(run(NULL, &err, "frobnicate", NULL), 2);
	assert_contains(err, "unknown command 'frobnicate'");
	g_free(err);
	err = NULL;
	assert_int_equal(run(NULL, &err, "help", "frobnicate", NULL), 2);
	assert_contains(err, "unknown command 'frobnicate'");
	g_free(err);
	err = NULL;
	/* a job that is neither a number nor a path */
	assert_int_equal(run(NULL, &err, "--session", "watch", "job-three", NULL), 2);
	assert_contains(err, "give its number (e.g. 3)");
}

/* ---- a daemon on the private bus ---- */

static void
test_errors_explained(void **state)
{
	g_autofree gchar *err = NULL, *out = NULL;
	g_autoptr(JsonNode) node = NULL;

	/* nobody owns the name: the daemon is not running, said so, no raw GIO text */
	assert_int_equal(
	    run(NULL, &err, "--session", "--bus-name", "org.vfiomigd.Test.Nobody", "status", NULL),
	    1);
	assert_contains(err, "vfio-migd is not running");
	assert_lacks(err, "GDBus.Error");
	g_free(err);
	err = NULL;
	assert_int_equal(run(&out, &err, "--session", "--bus-name", "org.vfiomigd.Test.Nobody",
			     "--json", "jobs", NULL),
			 1);
	assert_contains(err, "vfio-migd is not running");
	node = dt_json_line(out);
	assert_string_equal(json_object_get_string_member(json_node_get_object(node), "error"),
			    "org.freedesktop.DBus.Error.ServiceUnknown");
	g_free(err);
	err = NULL;
	/* the system bus's policy message for a non-root caller */
	{
		g_autofree gchar *saved = g_strdup(g_getenv("DBUS_SYSTEM_BUS_ADDRESS"));
		g_setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/vfio-migd-test", TRUE);
		assert_int_equal(run(NULL, &err, "status", NULL), 1);
		if (saved != NULL)
			g_setenv("DBUS_SYSTEM_BUS_ADDRESS", saved, TRUE);
		else
			g_unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
		assert_contains(err, "cannot connect to the system D-Bus");
	}
}

/* a job number nobody has (never existed, or expired): said so, once, with what to do */
static void
test_no_such_job(void **state)
{
	const gchar *const specs[] = {"hisi_acc:seed=21", NULL};
	g_autoptr(DtDaemon) src = dt_daemon_start(SRC_NAME, specs);

	for (guint i = 0; i < 3; i++) {
		const gchar *command = i == 0 ? "watch" : i == 1 ? "cancel" : "switchover";
		g_autofree gchar *err = NULL;

		assert_int_equal(
		    run(NULL, &err, "--session", "--bus-name", SRC_NAME, command, "9999", NULL), 1);
		assert_contains(err, "no job 9999: it never existed or has expired (finished jobs "
				     "are kept for 10 minutes; 'vfio-migctl jobs' lists them)");
		assert_lacks(err, "Object does not exist");
		assert_lacks(err, "older vfio-migd");
		assert_lacks(err, ") (");
	}
}

static void
test_status_short_ids_bdf(void **state)
{
	const gchar *const src_specs[] = {"mlx5:state_size=1M,seed=1", "hisi_acc:seed=3", NULL};
	const gchar *const dst_specs[] = {"hisi_acc:seed=13", NULL};
	g_autoptr(DtDaemon) src = dt_daemon_start(SRC_NAME, src_specs);
	g_autoptr(DtDaemon) dst = dt_daemon_start(DST_NAME, dst_specs);
	g_autoptr(GVariant) version =
	    dt_get_property(src, DT_MANAGER_PATH, DT_MANAGER_IFACE, "Version");
	g_autofree gchar *out = NULL, *err = NULL, *address = NULL, *path = NULL, *id = NULL;
	g_autoptr(JsonNode) node = NULL;
	JsonObject *obj;

	/* status: the daemon's Version, its devices, its jobs */
	assert_int_equal(dt_migctl(SRC_NAME, &out, "--json", "status", NULL), 0);
	node = dt_json_line(out);
	obj = json_node_get_object(node);
	assert_string_equal(json_object_get_string_member(obj, "version"),
			    g_variant_get_string(version, NULL));
	assert_int_equal(json_object_get_int_member(obj, "devices"), 2);
	assert_int_equal(json_object_get_int_member(obj, "jobs"), 0);
	g_free(out);
	out = NULL;
	assert_int_equal(dt_migctl(SRC_NAME, &out, "status", NULL), 0);
	assert_contains(out, g_variant_get_string(version, NULL));
	assert_contains(out, "Devices: 2 devices, 0 busy");
	assert_contains(out, "Jobs: 0 jobs");
	g_free(out);
	out = NULL;

	/* migrate one device: the job at once, a singular "1 device" at the end */
	address = dt_listen_plain(dst);
	assert_int_equal(
	    dt_migctl(SRC_NAME, &out, "migrate", address, "--plain", "--device", "sim1", NULL), 0);
	assert_contains(out, "Job 1 started (/org/vfiomigd/Migd1/jobs/1)");
	assert_contains(out, "Migration completed: 1 device, ");
	g_free(out);
	out = NULL;

	/* --detach: {"job": PATH, "job_id": N} at once (sim0: the destination has
	 * no mlx5 device left: it fails, an outcome distinct from cancelled) */
	assert_int_equal(dt_migctl(SRC_NAME, &out, "--json", "migrate", address, "--plain",
				   "--detach", "--device", "sim0", NULL),
			 0);
	g_clear_pointer(&node, json_node_unref);
	node = dt_json_line(out);
	obj = json_node_get_object(node);
	path = g_strdup(json_object_get_string_member(obj, "job"));
	assert_string_equal(path, "/org/vfiomigd/Migd1/jobs/2");
	assert_int_equal(json_object_get_int_member(obj, "job_id"), 2);
	id = g_strdup_printf("%" G_GINT64_FORMAT, json_object_get_int_member(obj, "job_id"));
	g_free(out);
	out = NULL;

	/* watch N: the same job as watch PATH */
	assert_int_equal(dt_migctl(SRC_NAME, &out, "--json", "watch", id, NULL), 1);
	{
		g_autoptr(JsonObject) done = find_event(out, "completed");
		assert_string_equal(json_object_get_string_member(done, "job"), path);
		assert_string_equal(json_object_get_string_member(done, "outcome"), "failed");
	}
	g_free(out);
	out = NULL;
	/* cancel N of a finished job: the daemon's refusal, for that job */
	assert_int_equal(run(NULL, &err, "--session", "--bus-name", SRC_NAME, "cancel", id, NULL),
			 1);
	assert_lacks(err, "GDBus.Error");
	g_free(err);
	err = NULL;
	/* jobs: the ids in the first column, the status counts them */
	assert_int_equal(dt_migctl(SRC_NAME, &out, "jobs", NULL), 0);
	assert_contains(out, "\n1    /org/vfiomigd/Migd1/jobs/1 ");
	assert_contains(out, "\n2    /org/vfiomigd/Migd1/jobs/2 ");
	g_free(out);
	out = NULL;
	assert_int_equal(dt_migctl(SRC_NAME, &out, "status", NULL), 0);
	assert_contains(out, "Jobs: 2 jobs, 0 running");
	g_free(out);
	out = NULL;

	/* lspci's short BDF: the daemon is asked for 0000:00:1f.2 */
	assert_int_equal(
	    run(NULL, &err, "--session", "--bus-name", SRC_NAME, "add", "00:1f.2", NULL), 1);
	assert_contains(err, "0000:00:1f.2");
	assert_lacks(err, " 00:1f.2");
}

/* a migrate in the background, its stdout read line by line */
typedef struct {
	GSubprocess *process;
	GDataInputStream *out;
} Bg;

static Bg
bg_migrate(const gchar *address, const gchar *extra)
{
	g_autoptr(GError) error = NULL;
	Bg bg = {0};

	bg.process =
	    g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
			     &error, dt_migctl_path(), "--session", "--bus-name", SRC_NAME,
			     "--json", "migrate", address, "--plain", extra, NULL);
	assert_non_null(bg.process);
	bg.out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(bg.process));
	return bg;
}

static void
test_sigint_cancels_migrate(void **state)
{
	const gchar *const src_specs[] = {SLOW_SPEC, NULL};
	const gchar *const dst_specs[] = {"mlx5:state_size=64M,seed=11", NULL};
	g_autoptr(DtDaemon) src = dt_daemon_start(SRC_NAME, src_specs);
	g_autoptr(DtDaemon) dst = dt_daemon_start(DST_NAME, dst_specs);
	g_autofree gchar *address = dt_listen_plain(dst);
	g_autofree gchar *first = NULL, *rest = NULL, *err = NULL, *jobs = NULL,
			 *state_after = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = NULL;
	g_autoptr(JsonObject) done = NULL;
	Bg bg = bg_migrate(address, NULL);
	g_autoptr(GInputStream) err_stream = NULL;
	gsize len = 0;

	/* the job comes first, at once */
	first = g_data_input_stream_read_line_utf8(bg.out, NULL, NULL, &error);
	assert_non_null(first);
	node = dt_json_line(first);
	assert_string_equal(json_object_get_string_member(json_node_get_object(node), "event"),
			    "started");
	assert_int_equal(json_object_get_int_member(json_node_get_object(node), "job_id"), 1);
	/* a real Ctrl-C, at once: caught from before the Migrate call, never lost */
	g_subprocess_send_signal(bg.process, SIGINT);
	rest = g_data_input_stream_read_upto(bg.out, "", 0, &len, NULL, &error);
	{
		g_autoptr(GDataInputStream) e =
		    g_data_input_stream_new(g_subprocess_get_stderr_pipe(bg.process));
		err = g_data_input_stream_read_upto(e, "", 0, &len, NULL, &error);
	}
	assert_true(g_subprocess_wait(bg.process, NULL, &error));
	assert_true(g_subprocess_get_if_exited(bg.process));
	assert_int_not_equal(g_subprocess_get_exit_status(bg.process), 0);
	assert_contains(err, "interrupted: cancelling job 1");
	done = find_event(rest, "completed");
	assert_false(json_object_get_boolean_member(done, "success"));
	assert_string_equal(json_object_get_string_member(done, "outcome"), "cancelled");
	/* the source device runs on */
	state_after = dt_device_state(src, 0);
	assert_string_equal(state_after, "RUNNING");
	/* jobs shows the distinct outcome too */
	assert_int_equal(dt_migctl(SRC_NAME, &jobs, "jobs", NULL), 0);
	assert_contains(jobs, " cancelled ");
	g_object_unref(bg.out);
	g_object_unref(bg.process);
}

static void
test_sigterm_detach_and_cancel_by_id(void **state)
{
	const gchar *const src_specs[] = {SLOW_SPEC, NULL};
	const gchar *const dst_specs[] = {"mlx5:state_size=64M,seed=11", NULL};
	g_autoptr(DtDaemon) src = dt_daemon_start(SRC_NAME, src_specs);
	g_autoptr(DtDaemon) dst = dt_daemon_start(DST_NAME, dst_specs);
	g_autofree gchar *address = dt_listen_plain(dst);
	g_autofree gchar *out = NULL, *watch = NULL, *rest = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;

	/* --detach: it returns and the job runs on; "cancel 1" ends it, cancelled */
	assert_int_equal(dt_migctl(SRC_NAME, &out, "migrate", address, "--plain", "--detach", NULL),
			 0);
	assert_string_equal(out, "/org/vfiomigd/Migd1/jobs/1\n");
	assert_int_equal(dt_migctl(SRC_NAME, NULL, "cancel", "1", NULL), 0);
	assert_int_equal(dt_migctl(SRC_NAME, &watch, "watch", "1", NULL), 1);
	assert_contains(watch, "Migration cancelled: ");
	{
		g_autofree gchar *st = dt_device_state(src, 0);
		assert_string_equal(st, "RUNNING");
	}

	/* SIGTERM cancels as SIGINT does */
	{
		Bg bg = bg_migrate(address, NULL);
		g_autofree gchar *first =
		    g_data_input_stream_read_line_utf8(bg.out, NULL, NULL, &error);
		g_autoptr(JsonObject) done = NULL;
		assert_non_null(first);
		g_usleep(300 * 1000);
		g_subprocess_send_signal(bg.process, SIGTERM);
		rest = g_data_input_stream_read_upto(bg.out, "", 0, &len, NULL, &error);
		assert_true(g_subprocess_wait(bg.process, NULL, &error));
		assert_true(g_subprocess_get_if_exited(bg.process));
		assert_int_equal(g_subprocess_get_exit_status(bg.process), 1);
		done = find_event(rest, "completed");
		assert_string_equal(json_object_get_string_member(done, "outcome"), "cancelled");
		assert_string_equal(json_object_get_string_member(done, "job"),
				    "/org/vfiomigd/Migd1/jobs/2");
		g_object_unref(bg.out);
		g_object_unref(bg.process);
	}
}

/* the bar on a 48-column terminal (a pty): every redraw fits, with an ETA */
static void
test_bar_fits_terminal(void **state)
{
	const gchar *const src_specs[] = {SLOW_SPEC, NULL};
	const gchar *const dst_specs[] = {"mlx5:state_size=64M,seed=11", NULL};
	g_autoptr(DtDaemon) src = dt_daemon_start(SRC_NAME, src_specs);
	g_autoptr(DtDaemon) dst = dt_daemon_start(DST_NAME, dst_specs);
	g_autofree gchar *address = dt_listen_plain(dst);
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) text = g_string_new(NULL);
	g_auto(GStrv) parts = NULL;
	struct winsize ws = {.ws_row = 24, .ws_col = 48};
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	int slave;
	gchar buf[4096];
	guint bars = 0;
	gboolean eta = FALSE;

	assert_true(master >= 0);
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	assert_true(slave >= 0);
	assert_int_equal(ioctl(master, TIOCSWINSZ, &ws), 0);
	g_subprocess_launcher_setenv(launcher, "COLUMNS", "200", TRUE); /* the pty's size wins */
	g_subprocess_launcher_take_stdout_fd(launcher, slave);
	process = g_subprocess_launcher_spawn(launcher, &error, dt_migctl_path(), "--session",
					      "--bus-name", SRC_NAME, "migrate", address, "--plain",
					      NULL);
	assert_non_null(process);
	g_clear_object(&launcher); /* closes our copy of the slave */
	for (;;) {
		ssize_t n = read(master, buf, sizeof(buf));
		if (n <= 0)
			break; /* EIO once the child closed its side */
		g_string_append_len(text, buf, n);
	}
	close(master);
	assert_true(g_subprocess_wait(process, NULL, &error));
	assert_int_equal(g_subprocess_get_exit_status(process), 0);
	/* the redraws: "\r\033[K" then one line of at most 47 columns */
	parts = g_regex_split_simple("\r\033\\[K|\r\n|\n", text->str, 0, 0);
	for (guint i = 0; parts[i] != NULL; i++) {
		if (parts[i][0] != '[')
			continue;
		bars++;
		if (g_utf8_strlen(parts[i], -1) > 47)
			fail_msg("a bar of %ld columns on a 48-column terminal: '%s'",
				 g_utf8_strlen(parts[i], -1), parts[i]);
		if (strstr(parts[i], "ETA ") != NULL)
			eta = TRUE;
	}
	assert_true(bars > 0);
	if (!eta)
		fail_msg("no ETA in: %s", text->str);
	assert_contains(text->str, "Migration completed: 1 device, ");
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_version_help_usage),
	    cmocka_unit_test(test_errors_explained),
	    cmocka_unit_test(test_status_short_ids_bdf),
	    cmocka_unit_test(test_no_such_job),
	    cmocka_unit_test(test_sigint_cancels_migrate),
	    cmocka_unit_test(test_sigterm_detach_and_cancel_by_id),
	    cmocka_unit_test(test_bar_fits_terminal),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests_name("migctl-cli", tests, dt_bus_up, dt_bus_down);
}
