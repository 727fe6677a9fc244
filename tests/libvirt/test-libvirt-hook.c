/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migd-qemu-hook run the way libvirt runs it (four arguments, the domain
 * XML on stdin) against a fake vfio-migctl (fake-vfio-migctl.sh) that records
 * its arguments: what it passes, when it stays quiet, the bounded wait, and
 * its exit codes. argv: the hook, the fake, the directory of sample XML.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

static const gchar *hook_path;
static const gchar *fake_src;
static const gchar *data_dir;
static gchar *tmp_dir;
static gchar *fake_path;
static gchar *config_path;
static gchar *log_path;
static gchar *state_path; /* exists while the fake holds an expectation */

#define CONFIG_BASE                                                                                \
	"[hook]\n"                                                                                 \
	"timeout-ms=5000\n"                                                                        \
	"session=true\n"                                                                           \
	"bus-name=org.test.Migd\n"                                                                 \
	"[listen]\n"                                                                               \
	"address=tcp:0.0.0.0:47000\n"                                                              \
	"plain=true\n"                                                                             \
	"insecure-plain-tcp=true\n"                                                                \
	"[pci 0000:3b:00.2]\n"                                                                     \
	"device=vf0\n"                                                                             \
	"[mdev 3b3b0a1c-5f0e-4f56-a4a6-2b3a9a1e0c11]\n"                                            \
	"device=mtty0\n"                                                                           \
	"[pci 3b:10.1]\n"                                                                          \
	"device=vf1\n"

#define DEVICES_IDLE                                                                               \
	"{\"name\":\"vf0\",\"busy\":false},{\"name\":\"vf1\",\"busy\":false},"                     \
	"{\"name\":\"mtty0\",\"busy\":false},{\"name\":\"spare\",\"busy\":true}"

#define PREFIX "--session --bus-name org.test.Migd --json "
/* domain-vfio.xml's <uuid>, as the hook passes it (lower case) */
#define UUID	    "c7a5fdbd-edaf-9455-926a-d65c16db1809"
#define EXPECT_CALL PREFIX "expect " UUID " --device vf0 --device mtty0 --device vf1 --start manual"

typedef struct {
	gint status; /* exit code; -1 when killed */
	gchar *out;
	gchar *err;
	gchar **calls; /* the fake's argument lines */
	gdouble seconds;
} HookRun;

static void
hook_run_clear(HookRun *r)
{
	g_free(r->out);
	g_free(r->err);
	g_strfreev(r->calls);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HookRun, hook_run_clear)

static void
write_config(const gchar *text)
{
	g_unlink(state_path);
	if (text == NULL) {
		g_unlink(config_path);
		return;
	}
	assert_true(g_file_set_contents(config_path, text, -1, NULL));
}

/*
 * Runs the hook with @a1..@a4, the sample @xml (a file of data/, NULL: empty
 * stdin), the fake in @mode listing @devices; @nargs < 4 leaves arguments out.
 */
static void
run_hook(HookRun *r, guint nargs, const gchar *object, const gchar *op, const gchar *sub,
	 const gchar *xml, const gchar *mode, const gchar *devices)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *xml_path = NULL;
	g_autofree gchar *calls = NULL;
	const gchar *argv[] = {hook_path, object, op, sub, "-", NULL};
	gint64 start;

	argv[1 + nargs] = NULL;
	assert_true(g_file_set_contents(log_path, "", 0, NULL));
	/* libvirt passes only LC_ALL, PATH, HOME, USER and LOGNAME */
	g_subprocess_launcher_set_environ(launcher, NULL);
	g_subprocess_launcher_setenv(launcher, "LC_ALL", "C", TRUE);
	g_subprocess_launcher_setenv(launcher, "PATH", "/usr/sbin:/usr/bin:/sbin:/bin", TRUE);
	g_subprocess_launcher_setenv(launcher, "VFIO_MIGD_HOOK_CONFIG", config_path, TRUE);
	g_subprocess_launcher_setenv(launcher, "VFIO_MIGD_HOOK_MIGCTL", fake_path, TRUE);
	g_subprocess_launcher_setenv(launcher, "FAKE_MIGCTL_LOG", log_path, TRUE);
	g_subprocess_launcher_setenv(launcher, "FAKE_MIGCTL_STATE", state_path, TRUE);
	g_subprocess_launcher_setenv(launcher, "FAKE_MIGCTL_MODE", mode != NULL ? mode : "ok",
				     TRUE);
	g_subprocess_launcher_setenv(launcher, "FAKE_MIGCTL_DEVICES",
				     devices != NULL ? devices : DEVICES_IDLE, TRUE);
	/* sanitizer options reach the hook too, when the suite runs under them */
	for (const gchar *const *v =
		 (const gchar *const[]){"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", NULL};
	     *v != NULL; v++) {
		if (g_getenv(*v) != NULL)
			g_subprocess_launcher_setenv(launcher, *v, g_getenv(*v), TRUE);
	}
	xml_path = g_build_filename(data_dir, xml != NULL ? xml : "empty", NULL);
	g_subprocess_launcher_set_stdin_file_path(launcher, xml != NULL ? xml_path : "/dev/null");
	start = g_get_monotonic_time();
	process = g_subprocess_launcher_spawnv(launcher, argv, &error);
	assert_non_null(process);
	assert_true(g_subprocess_communicate_utf8(process, NULL, NULL, &r->out, &r->err, &error));
	r->seconds = (gdouble)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
	/* a signal shows as its negative number */
	r->status = g_subprocess_get_if_exited(process) ? g_subprocess_get_exit_status(process)
							: -g_subprocess_get_term_sig(process);
	assert_true(g_file_get_contents(log_path, &calls, NULL, NULL));
	g_strchomp(calls);
	r->calls = *calls != '\0' ? g_strsplit(calls, "\n", -1) : g_new0(gchar *, 1);
}

static void
assert_contains(const gchar *haystack, const gchar *needle)
{
	if (strstr(haystack, needle) == NULL)
		fail_msg("'%s' does not contain '%s'", haystack, needle);
}

static int
group_setup(void **state)
{
	g_autofree gchar *script = NULL;

	tmp_dir = g_dir_make_tmp("vfio-migd-hook-XXXXXX", NULL);
	if (tmp_dir == NULL)
		return -1;
	/* a copy, made executable: a checkout does not always keep the mode */
	fake_path = g_build_filename(tmp_dir, "vfio-migctl", NULL);
	config_path = g_build_filename(tmp_dir, "libvirt-hook.conf", NULL);
	log_path = g_build_filename(tmp_dir, "calls.log", NULL);
	state_path = g_build_filename(tmp_dir, "expectation", NULL);
	if (!g_file_get_contents(fake_src, &script, NULL, NULL) ||
	    !g_file_set_contents(fake_path, script, -1, NULL) || g_chmod(fake_path, 0755) != 0)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	g_unlink(fake_path);
	g_unlink(config_path);
	g_unlink(log_path);
	g_unlink(state_path);
	g_rmdir(tmp_dir);
	g_free(fake_path);
	g_free(config_path);
	g_free(log_path);
	g_free(state_path);
	g_free(tmp_dir);
	return 0;
}

static void
test_other_operations_do_nothing(void **state)
{
	const gchar *ops[][2] = {
	    {"prepare", "begin"}, {"start", "begin"},	   {"started", "begin"},
	    {"stopped", "end"},	  {"release", "end"},	   {"reconnect", "begin"},
	    {"attach", "begin"},  {"restore", "begin"},	   {"migrate", "end"},
	    {"migrate", "-"},	  {"frobnicate", "begin"}, {"stopped", "begin"}};

	/* not even a broken configuration is read for them (stopped and release
	 * read it, but their exit code is ignored: they say nothing about it) */
	write_config("[this is not a configuration\n");
	for (guint i = 0; i < G_N_ELEMENTS(ops); i++) {
		g_auto(HookRun) r = {0};
		run_hook(&r, 4, "guest1", ops[i][0], ops[i][1], "domain-vfio.xml", "ok", NULL);
		assert_int_equal(r.status, 0);
		assert_string_equal(r.out, "");
		assert_string_equal(r.err, "");
		assert_null(r.calls[0]);
	}
}

static void
test_usage(void **state)
{
	g_auto(HookRun) r = {0};

	write_config(CONFIG_BASE);
	run_hook(&r, 3, "guest1", "migrate", "begin", "domain-vfio.xml", "ok", NULL);
	assert_int_equal(r.status, 2);
	assert_contains(r.err, "usage");
	assert_null(r.calls[0]);
}

static void
test_unconfigured_or_unmapped(void **state)
{
	const gchar *xmls[] = {"domain-plain.xml", "domain-unmapped.xml"};

	/* no configuration file: installed but inert, even for malformed XML */
	write_config(NULL);
	{
		g_auto(HookRun) r = {0};
		run_hook(&r, 4, "guest1", "migrate", "begin", "domain-malformed.xml", "ok", NULL);
		assert_int_equal(r.status, 0);
		assert_null(r.calls[0]);
	}
	/* domains without mapped host devices are not vfio-migd's */
	write_config(CONFIG_BASE);
	for (guint i = 0; i < G_N_ELEMENTS(xmls); i++) {
		g_auto(HookRun) r = {0};
		run_hook(&r, 4, "plain", "migrate", "begin", xmls[i], "ok", NULL);
		assert_int_equal(r.status, 0);
		assert_string_equal(r.out, "");
		assert_null(r.calls[0]);
	}
}

static void
test_mapped_domain_prepares_daemon(void **state)
{
	g_auto(HookRun) r = {0};

	write_config(CONFIG_BASE);
	run_hook(&r, 4, "guest1", "migrate", "begin", "domain-vfio.xml", "ok", NULL);
	assert_int_equal(r.status, 0);
	/* a filter hook: output would replace the domain XML */
	assert_string_equal(r.out, "");
	assert_int_equal(g_strv_length(r.calls), 3);
	assert_string_equal(r.calls[0], PREFIX "devices");
	assert_string_equal(r.calls[1],
			    PREFIX "listen --plain --insecure-plain-tcp -- tcp:0.0.0.0:47000");
	/* the devices are reserved for this domain: the source tags its job with the UUID */
	assert_string_equal(r.calls[2], EXPECT_CALL);
	assert_contains(r.err, "vf0, mtty0, vf1");
	assert_contains(r.err, "migration " UUID ", start manual");
}

static void
test_expect_variants(void **state)
{
	g_auto(HookRun) automatic = {0};
	g_auto(HookRun) stale = {0};
	g_auto(HookRun) refused = {0};
	g_auto(HookRun) old = {0};
	g_auto(HookRun) unsupported = {0};

	/* start=auto: the devices run at the commit (a daemon without [libvirt]) */
	write_config("[hook]\ntimeout-ms=5000\nstart=auto\n[pci 0000:3b:00.2]\ndevice=vf0\n");
	run_hook(&automatic, 4, "guest1", "migrate", "begin", "domain-vfio.xml", "ok", NULL);
	assert_int_equal(automatic.status, 0);
	assert_int_equal(g_strv_length(automatic.calls), 2);
	assert_string_equal(automatic.calls[1], "--json expect " UUID " --device vf0 --start auto");

	/* an expectation an earlier attempt left behind is replaced, once */
	write_config(CONFIG_BASE);
	assert_true(g_file_set_contents(state_path, "", 0, NULL));
	run_hook(&stale, 4, "guest1", "migrate", "begin", "domain-vfio.xml", "ok", NULL);
	assert_int_equal(stale.status, 0);
	assert_int_equal(g_strv_length(stale.calls), 5);
	assert_string_equal(stale.calls[2], EXPECT_CALL);
	assert_string_equal(stale.calls[3], PREFIX "cancel-expectation " UUID);
	assert_string_equal(stale.calls[4], EXPECT_CALL);
	assert_true(g_file_test(state_path, G_FILE_TEST_EXISTS));

	/* devices reserved by another domain's expectation: refused */
	write_config(CONFIG_BASE);
	run_hook(&refused, 4, "guest1", "migrate", "begin", "domain-vfio.xml", "expect-refuse",
		 NULL);
	assert_int_equal(refused.status, 1);
	assert_contains(refused.err, "cannot reserve devices vf0, mtty0, vf1 for migration " UUID);
	assert_contains(refused.err, "reserved by another expectation");
	/* not a stale expectation of ours: nothing was cancelled */
	assert_int_equal(g_strv_length(refused.calls), 3);

	/* an older vfio-migctl or daemon: the door is open as before expectations */
	run_hook(&old, 4, "guest1", "migrate", "begin", "domain-vfio.xml", "expect-old", NULL);
	assert_int_equal(old.status, 0);
	assert_int_equal(g_strv_length(old.calls), 3);
	assert_contains(old.err, "cannot reserve devices");
	assert_contains(old.err, "expects devices vf0, mtty0, vf1 of domain 'guest1' on");
	run_hook(&unsupported, 4, "guest1", "migrate", "begin", "domain-vfio.xml",
		 "expect-unsupported", NULL);
	assert_int_equal(unsupported.status, 0);
	assert_contains(unsupported.err, "No such method Expect");
}

static void
test_stop_cancels_expectation(void **state)
{
	const gchar *ops[] = {"stopped", "release"};

	write_config(CONFIG_BASE);
	for (guint i = 0; i < G_N_ELEMENTS(ops); i++) {
		g_auto(HookRun) r = {0};
		g_auto(HookRun) none = {0};
		g_auto(HookRun) unmapped = {0};
		g_auto(HookRun) down = {0};

		/* after a failed incoming migration: the expectation goes */
		assert_true(g_file_set_contents(state_path, "", 0, NULL));
		run_hook(&r, 4, "guest1", ops[i], "end", "domain-vfio.xml", "ok", NULL);
		assert_int_equal(r.status, 0);
		assert_string_equal(r.out, "");
		assert_int_equal(g_strv_length(r.calls), 1);
		assert_string_equal(r.calls[0], PREFIX "cancel-expectation " UUID);
		assert_contains(r.err, "cancelled vfio-migd's expectation of domain 'guest1'");
		assert_false(g_file_test(state_path, G_FILE_TEST_EXISTS));
		/* the usual stop: nothing expected, nothing said */
		run_hook(&none, 4, "guest1", ops[i], "end", "domain-vfio.xml", "ok", NULL);
		assert_int_equal(none.status, 0);
		assert_int_equal(g_strv_length(none.calls), 1);
		assert_string_equal(none.err, "");
		/* not a vfio-migd domain: not even asked */
		run_hook(&unmapped, 4, "plain", ops[i], "end", "domain-plain.xml", "ok", NULL);
		assert_int_equal(unmapped.status, 0);
		assert_null(unmapped.calls[0]);
		/* a daemon that is not running changes nothing for libvirt */
		run_hook(&down, 4, "guest1", ops[i], "end", "domain-vfio.xml", "down", NULL);
		assert_int_equal(down.status, 0);
		assert_string_equal(down.err, "");
	}
}

static void
test_tls_and_domain_group(void **state)
{
	g_auto(HookRun) r = {0};

	write_config("[hook]\ntimeout-ms=5000\n"
		     "[listen]\naddress=tcp:[::]:47000\ncert=/etc/t/c.pem\nkey=/etc/t/k.pem\n"
		     "ca=/etc/t/ca.pem\n"
		     "[domain plain]\ndevices=spare0\nlisten=tcp:192.0.2.1:47100\n");
	run_hook(&r, 4, "plain", "migrate", "begin", "domain-plain.xml", "ok",
		 "{\"name\":\"spare0\",\"busy\":false}");
	assert_int_equal(r.status, 0);
	assert_int_equal(g_strv_length(r.calls), 3);
	assert_string_equal(r.calls[0], "--json devices");
	assert_string_equal(r.calls[1], "--json listen --cert /etc/t/c.pem --key /etc/t/k.pem "
					"--ca /etc/t/ca.pem -- tcp:192.0.2.1:47100");
	assert_string_equal(r.calls[2], "--json expect 0b1d6a37-0000-4000-8000-000000000001 "
					"--device spare0 --start manual");
}

static void
test_already_listening_is_fine(void **state)
{
	g_auto(HookRun) r = {0};

	write_config(CONFIG_BASE);
	run_hook(&r, 4, "guest1", "migrate", "begin", "domain-vfio.xml", "busy", NULL);
	assert_int_equal(r.status, 0);
	assert_int_equal(g_strv_length(r.calls), 3);
	assert_contains(r.err, "already listening");
}

static void
test_refusals(void **state)
{
	const struct {
		const gchar *mode;
		const gchar *devices;
		guint calls;
		const gchar *message;
	} cases[] = {
	    /* the daemon cannot listen */
	    {"refuse", NULL, 2, "Address already in use"},
	    /* a mapped device the daemon does not serve */
	    {"ok", "{\"name\":\"vf0\",\"busy\":false},{\"name\":\"mtty0\",\"busy\":false}", 1,
	     "no device 'vf1' (it serves: vf0, mtty0)"},
	    /* a mapped device in another migration */
	    {"ok",
	     "{\"name\":\"vf0\",\"busy\":false},{\"name\":\"vf1\",\"busy\":true},"
	     "{\"name\":\"mtty0\",\"busy\":false}",
	     1, "'vf1' is busy"},
	    /* nobody on the bus */
	    {"down", NULL, 1, "vfio-migd is not running"},
	    /* a vfio-migctl of another version */
	    {"usage", NULL, 1, "refused its arguments"},
	    {"crash", NULL, 1, "signal"},
	};

	write_config(CONFIG_BASE);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_auto(HookRun) r = {0};
		run_hook(&r, 4, "guest1", "migrate", "begin", "domain-vfio.xml", cases[i].mode,
			 cases[i].devices);
		assert_int_equal(r.status, 1);
		assert_string_equal(r.out, "");
		assert_int_equal(g_strv_length(r.calls), cases[i].calls);
		assert_contains(r.err, "refusing the incoming migration of domain 'guest1'");
		assert_contains(r.err, cases[i].message);
	}
}

static void
test_bounded_wait(void **state)
{
	const gchar *modes[] = {"hang", "hang-child"};

	write_config("[hook]\ntimeout-ms=300\n"
		     "[listen]\naddress=tcp:0.0.0.0:47000\nplain=true\n"
		     "[pci 0000:3b:00.2]\ndevice=vf0\n");
	for (guint i = 0; i < G_N_ELEMENTS(modes); i++) {
		g_auto(HookRun) r = {0};
		run_hook(&r, 4, "guest1", "migrate", "begin", "domain-vfio.xml", modes[i], NULL);
		if (r.status != 1)
			fail_msg("mode %s: hook status %d (negative: killed by that signal), %.1f "
				 "s, stderr: %s",
				 modes[i], r.status, r.seconds, r.err);
		assert_contains(r.err, "did not answer in time");
		/* 300 ms budget; anything near the fake's 30 s means it was waited for */
		assert_true(r.seconds < 10.0);
		assert_int_equal(g_strv_length(r.calls), 1);
	}
}

static void
test_malformed_xml_refused(void **state)
{
	g_auto(HookRun) r = {0};
	g_auto(HookRun) empty = {0};

	write_config(CONFIG_BASE);
	run_hook(&r, 4, "broken", "migrate", "begin", "domain-malformed.xml", "ok", NULL);
	assert_int_equal(r.status, 1);
	assert_contains(r.err, "cannot read the domain XML");
	assert_null(r.calls[0]);
	run_hook(&empty, 4, "broken", "migrate", "begin", NULL, "ok", NULL);
	assert_int_equal(empty.status, 1);
	assert_contains(empty.err, "cannot read the domain XML");
}

static void
test_configuration_cases(void **state)
{
	g_auto(HookRun) r = {0};
	g_auto(HookRun) nolisten = {0};
	g_auto(HookRun) nomigctl = {0};

	write_config(CONFIG_BASE "[pci 0000:3b:00.3]\ndevice=vf3\nspeed=fast\n");
	run_hook(&r, 4, "guest1", "migrate", "begin", "domain-vfio.xml", "ok", NULL);
	assert_int_equal(r.status, 1);
	assert_contains(r.err, "[pci 0000:3b:00.3]: unknown key 'speed'");
	assert_null(r.calls[0]);

	/* no [listen] address: the daemon receives on its own socket
	 * (vfio-migd.socket); only the devices are checked */
	write_config("[pci 0000:3b:00.2]\ndevice=vf0\n");
	run_hook(&nolisten, 4, "guest1", "migrate", "begin", "domain-vfio.xml", "ok", NULL);
	assert_int_equal(nolisten.status, 0);
	assert_contains(nolisten.err, "expects devices vf0 of domain 'guest1' (migration " UUID);
	assert_int_equal(g_strv_length(nolisten.calls), 2);
	assert_string_equal(nolisten.calls[0], "--json devices");
	assert_string_equal(nolisten.calls[1],
			    "--json expect " UUID " --device vf0 --start manual");

	/* the configured vfio-migctl is used when the environment does not say */
	write_config("[hook]\nmigctl=/nonexistent/vfio-migctl\n"
		     "[listen]\naddress=tcp:0.0.0.0:47000\nplain=true\n"
		     "[pci 0000:3b:00.2]\ndevice=vf0\n");
	{
		g_autoptr(GSubprocessLauncher) launcher =
		    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_PIPE);
		g_autoptr(GSubprocess) p = NULL;
		g_autofree gchar *xml = g_build_filename(data_dir, "domain-vfio.xml", NULL);
		const gchar *argv[] = {hook_path, "guest1", "migrate", "begin", "-", NULL};
		g_subprocess_launcher_set_environ(launcher, NULL);
		g_subprocess_launcher_setenv(launcher, "VFIO_MIGD_HOOK_CONFIG", config_path, TRUE);
		g_subprocess_launcher_set_stdin_file_path(launcher, xml);
		p = g_subprocess_launcher_spawnv(launcher, argv, NULL);
		assert_non_null(p);
		assert_true(
		    g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &nomigctl.err, NULL));
		assert_int_equal(g_subprocess_get_exit_status(p), 1);
		assert_contains(nomigctl.err, "cannot run /nonexistent/vfio-migctl");
	}
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_other_operations_do_nothing),
	    cmocka_unit_test(test_usage),
	    cmocka_unit_test(test_unconfigured_or_unmapped),
	    cmocka_unit_test(test_mapped_domain_prepares_daemon),
	    cmocka_unit_test(test_tls_and_domain_group),
	    cmocka_unit_test(test_already_listening_is_fine),
	    cmocka_unit_test(test_expect_variants),
	    cmocka_unit_test(test_stop_cancels_expectation),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_bounded_wait),
	    cmocka_unit_test(test_malformed_xml_refused),
	    cmocka_unit_test(test_configuration_cases),
	};

	if (argc != 4) {
		g_printerr("usage: %s HOOK FAKE_MIGCTL DATA_DIR\n", argv[0]);
		return 2;
	}
	hook_path = argv[1];
	fake_src = argv[2];
	data_dir = argv[3];
	return cmocka_run_group_tests_name("libvirt-hook", tests, group_setup, group_teardown);
}
