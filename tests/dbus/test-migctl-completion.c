/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migctl's bash completion (tools/vfio-migctl.bash-completion), sourced in
 * a real bash: it registers itself (complete -p), completes commands, options,
 * job numbers and paths (from --json jobs) and device names (from --json
 * devices) of the daemon the line names.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dbus-test-util.h"

#define BUS_NAME "org.vfiomigd.Test.Completion"

/* bash: source the file, set COMP_WORDS to vfio-migctl --session --bus-name
 * BUS_NAME WORDS..., COMP_CWORD to the last, run the function; COMPREPLY, one
 * a line */
static gchar *
complete(const gchar *first, ...)
{
	g_autoptr(GString) script = g_string_new(NULL);
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *file = g_shell_quote(COMPLETION_FILE);
	g_autofree gchar *prog = g_shell_quote(dt_migctl_path());
	gchar *out = NULL;
	guint n = 3;
	va_list args;

	g_string_append_printf(script,
			       "source %s || exit 3\nCOMP_WORDS=(%s --session --bus-name %s", file,
			       prog, BUS_NAME);
	va_start(args, first);
	for (const gchar *w = first; w != NULL; w = va_arg(args, const gchar *)) {
		g_autofree gchar *q = g_shell_quote(w);
		g_string_append_printf(script, " %s", q);
		n++;
	}
	va_end(args);
	g_string_append_printf(script,
			       ")\nCOMP_CWORD=%u\n_vfio_migctl\nprintf '%%s\\n' "
			       "\"${COMPREPLY[@]}\"\n",
			       n);
	process = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, "bash", "--norc",
				   "--noprofile", "-c", script->str, NULL);
	assert_non_null(process);
	assert_true(g_subprocess_communicate_utf8(process, NULL, NULL, &out, NULL, &error));
	assert_int_equal(g_subprocess_get_exit_status(process), 0);
	return out;
}

static gboolean
has_line(const gchar *out, const gchar *line)
{
	g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
	return g_strv_contains((const gchar *const *)lines, line);
}

static void
assert_has(const gchar *out, const gchar *line)
{
	if (!has_line(out, line))
		fail_msg("'%s' not completed; got:\n%s", line, out);
}

static void
test_registered(void **state)
{
	g_autofree gchar *script =
	    g_strdup_printf("source '%s' && complete -p vfio-migctl", COMPLETION_FILE);
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;

	process = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, "bash", "--norc",
				   "--noprofile", "-c", script, NULL);
	assert_non_null(process);
	assert_true(g_subprocess_communicate_utf8(process, NULL, NULL, &out, NULL, &error));
	assert_int_equal(g_subprocess_get_exit_status(process), 0);
	assert_string_equal(out, "complete -F _vfio_migctl vfio-migctl\n");
}

static void
test_commands_options(void **state)
{
	g_autofree gchar *c1 = complete("wa", NULL);
	g_autofree gchar *c2 = complete("migrate", "--de", NULL);
	g_autofree gchar *c3 = complete("help", "dirty-", NULL);
	g_autofree gchar *c4 = complete("migrate", "--switchover", "", NULL);
	g_autofree gchar *c5 = complete("st", NULL);

	assert_string_equal(c1, "watch\n");
	assert_has(c2, "--detach");
	assert_has(c2, "--device");
	assert_false(has_line(c2, "--downtime-ms"));
	assert_has(c3, "dirty-bitmap");
	assert_has(c3, "dirty-sync");
	assert_has(c4, "auto");
	assert_has(c4, "manual");
	assert_has(c5, "status");
	assert_has(c5, "start");
}

static void
test_jobs_devices(void **state)
{
	const gchar *const specs[] = {"mlx5:state_size=1M,seed=1", "hisi_acc:seed=3", NULL};
	g_autoptr(DtDaemon) daemon = dt_daemon_start(BUS_NAME, specs);
	g_autofree gchar *nowhere = dt_unused_unix_address();
	g_autofree gchar *out = NULL;
	g_autofree gchar *jobs = NULL, *jobs2 = NULL, *devs = NULL, *devs2 = NULL, *sync = NULL;

	/* a job to complete: a migration to nowhere fails at once, and stays listed */
	assert_int_equal(dt_migctl(BUS_NAME, &out, "migrate", nowhere, "--plain", "--detach", NULL),
			 0);
	g_free(dt_job_wait_final(daemon, "/org/vfiomigd/Migd1/jobs/1"));

	jobs = complete("watch", "", NULL);
	assert_has(jobs, "1");
	assert_has(jobs, "/org/vfiomigd/Migd1/jobs/1");
	jobs2 = complete("cancel", "/org/", NULL);
	assert_string_equal(jobs2, "/org/vfiomigd/Migd1/jobs/1\n");
	devs = complete("detach", "", NULL);
	assert_has(devs, "sim0");
	assert_has(devs, "sim1");
	devs2 = complete("migrate", "--device", "sim", NULL);
	assert_has(devs2, "sim0");
	assert_has(devs2, "sim1");
	/* dirty-sync JOB DEVICE: the device second */
	sync = complete("dirty-sync", "1", "", NULL);
	assert_has(sync, "sim0");
	assert_false(has_line(sync, "/org/vfiomigd/Migd1/jobs/1"));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registered),
	    cmocka_unit_test(test_commands_options),
	    cmocka_unit_test(test_jobs_devices),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests_name("migctl-completion", tests, dt_bus_up, dt_bus_down);
}
