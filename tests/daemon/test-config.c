/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * migd_daemon_config_check(): what vfio-migd.conf alone decides, without a daemon. Every
 * group vfio-migd reads passes; any other is refused naming it and the known ones.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <glib/gstdio.h>

#include "migd-config.h"
#include "migd-error.h"

static GKeyFile *
key_file(const gchar *text)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) error = NULL;

	if (!g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, &error))
		fail_msg("'%s': %s", text, error->message);
	return g_steal_pointer(&kf);
}

static void
test_known_groups(void **state)
{
	g_autoptr(GKeyFile) kf =
	    key_file("[daemon]\nlow-power-idle=true\nmax-inflight=64M\n"
		     "[listen]\nplain=true\n"
		     "[libvirt]\nuri=test:///default\n"
		     "[device sim0]\niova-ranges=0+1T,2T+4G\n"
		     "[device gpu0]\naddress=0000:65:00.2\niova-ranges=0+1G\n"
		     "[device persisted]\nsim-spec=size=4K\n"
		     "[plugin mlx5]\nread-size=4M\n"
		     "[plugin not-installed]\nanything=1\n"
		     "[libvirt-domain vm1]\ndevices=sim0\npeer=tcp:127.0.0.1:1\n");
	g_autoptr(GKeyFile) empty = key_file("");
	g_autoptr(GError) error = NULL;

	assert_true(migd_daemon_config_check(kf, &error));
	assert_null(error);
	assert_true(migd_daemon_config_check(empty, &error));
}

static void
test_refused(void **state)
{
	const struct {
		const gchar *text;
		const gchar *expect;
	} cases[] = {
	    {"[deamon]\nlow-power-idle=true\n",
	     "[deamon]: unknown group (known: [daemon], [listen], [libvirt], [device NAME], "
	     "[plugin NAME], [libvirt-domain NAME], [vm NAME]; group names are lower case)"},
	    {"[Listen]\nplain=true\n", "[Listen]: unknown group"},
	    {"[device]\niova-ranges=0+1G\n", "[device]: unknown group"},
	    {"[plugin ]\n", "[plugin ]: unknown group"},
	    {"[devices sim0]\n", "[devices sim0]: unknown group"},
	    {"[daemon]\nnap=1\n",
	     "[daemon] nap: unknown key (known: low-power-idle, max-inflight)"},
	    {"[daemon]\nlow-power-idle=perhaps\n", "[daemon] low-power-idle: "},
	    {"[daemon]\nmax-inflight=1M\n", "[daemon] max-inflight: "},
	    {"[device sim0]\niova-range=0+1G\n", "[device sim0] iova-range: unknown key"},
	    {"[device sim0]\niova-ranges=0+1Q\n", "[device sim0] iova-ranges: IOVA range 0"},
	    /* GLib returns a value and an error for a bad escape (found by fuzz-config) */
	    {"[device sim0]\niova-ranges=0+1G\\j\n", "[device sim0] iova-ranges: "},
	    {"[device sim0]\niova-ranges=0+1G,512M+1G\n",
	     "[device sim0] iova-ranges: IOVA ranges 0 (0x0+0x40000000) and 1 "
	     "(0x20000000+0x40000000) overlap"},
	    {"[device sim0]\niova-ranges=4T+1G,0+8K,4K+4K\n",
	     "[device sim0] iova-ranges: IOVA ranges 1 (0x0+0x2000) and 2 (0x1000+0x1000) overlap"},
	    {"[device sim0]\niova-ranges=0x1800+4K\n",
	     "[device sim0] iova-ranges: IOVA range 0 0x1800+0x1000: the start is not aligned to "
	     "4 KiB"},
	    {"[device sim0]\niova-ranges=0+5000\n",
	     "[device sim0] iova-ranges: IOVA range 0 0x0+0x1388: the length is not aligned to "
	     "4 KiB"},
	    {"[device gpu0]\naddress=\n", "[device gpu0] address: must not be empty"},
	    {"[device gpu0]\nsim-spec=\n", "[device gpu0] sim-spec: must not be empty"},
	    {"[device gpu0]\naddress=0000:65:00.2\nsim-spec=size=4K\n",
	     "[device gpu0] sim-spec: address= and sim-spec= exclude each other"},
	    {"[device gpu0]\nadress=0000:65:00.2\n",
	     "[device gpu0] adress: unknown key (known: iova-ranges, address, sim-spec)"},
	    {"[listen]\ncert_file=/x\n", "[listen] cert_file: unknown key (known: cert, key, ca,"},
	    {"[listen]\nplain=yes please\n", "[listen] plain: "},
	    {"[listen]\ncert=\n", "[listen] cert: must not be empty"},
	    {"[listen]\nhello-timeout-ms=0\n", "[listen] hello-timeout-ms: "},
	    {"[listen]\nmax-partial-frame-bytes=1\n", "[listen] max-partial-frame-bytes: "},
	    {"[listen]\nallowed-uids=1000;bob\n", "[listen] allowed-uids: 'bob' is not a uid"},
	    {"[listen]\nstart=later\n", "[listen] start: "},
	    {"[libvirt-domain vm1]\npeer=tcp:127.0.0.1:1\n", "[libvirt-domain vm1]: devices="},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GKeyFile) kf = key_file(cases[i].text);
		g_autoptr(GError) error = NULL;

		if (migd_daemon_config_check(kf, &error))
			fail_msg("case %u: accepted", i);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		if (strstr(error->message, cases[i].expect) == NULL)
			fail_msg("case %u: '%s' does not say '%s'", i, error->message,
				 cases[i].expect);
	}
}

/* the configuration file itself: every refusal says FILE:LINE: [GROUP] KEY */
static void
test_file_lines(void **state)
{
	const struct {
		const gchar *text;
		const gchar *expect; /* after "FILE:" */
	} cases[] = {
	    {"# a comment\n\n[deamon]\nlow-power-idle=true\n", "3: [deamon]: unknown group"},
	    {"[daemon]\nlow-power-idle=true\n\n[daemon]\n  nap = 1\n",
	     "5: [daemon] nap: unknown key"},
	    {"[listen]\nplain=true\n[device sim0]\n# ranges\niova-ranges=0+1G,1G+2K\n",
	     "5: [device sim0] iova-ranges: IOVA range 1 0x40000000+0x800: the length is not "
	     "aligned to 4 KiB"},
	    /* GKeyFile keeps the last of a repeated key: so does the line */
	    {"[daemon]\nmax-inflight=64M\nmax-inflight=1\n", "3: [daemon] max-inflight: "},
	    {"[listen]\nstart=manual\n[libvirt]\n[listen]\nhello-timeout-ms=x\n",
	     "5: [listen] hello-timeout-ms: "},
	    {"[vm vm1]\nbus=unix:path=/x\ndevices=sim0\nrole=source\nmigration-id=\n",
	     "5: [vm vm1] migration-id: "},
	    {"[vm vm1]\nbus=unix:path=/x\n", "1: [vm vm1] bus, devices and role are required"},
	};
	g_autofree gchar *dir = g_dir_make_tmp("migd-config-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(dir, "vfio-migd.conf", NULL);

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GKeyFile) kf = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree gchar *expect = g_strdup_printf("%s:%s", path, cases[i].expect);

		assert_true(g_file_set_contents(path, cases[i].text, -1, NULL));
		kf = migd_daemon_config_load(path, &error);
		assert_non_null(kf);
		if (migd_daemon_config_check_file(kf, path, &error))
			fail_msg("case %u: accepted", i);
		if (!g_str_has_prefix(error->message, expect))
			fail_msg("case %u: '%s' does not start '%s'", i, error->message, expect);
	}
	/* a good one still loads */
	{
		g_autoptr(GKeyFile) kf = NULL;
		g_autoptr(GError) error = NULL;
		assert_true(g_file_set_contents(path,
						"[daemon]\nmax-inflight=64M\n[listen]\nplain=true\n"
						"allowed-uids=1000;1001\nstart=manual\n"
						"[device sim0]\niova-ranges=0+2G,4G+4G,2G+1G\n",
						-1, NULL));
		kf = migd_daemon_config_load(path, &error);
		assert_non_null(kf);
		if (!migd_daemon_config_check_file(kf, path, &error))
			fail_msg("good config refused: %s", error->message);
	}
	g_unlink(path);
	g_rmdir(dir);
}

static void
test_find_line(void **state)
{
	const gchar *text = "[a]\nx=1\n # c\n[b]\n x = 2\n[a]\ny=3\nx=4\n[a b]\nx=5";

	assert_int_equal(migd_daemon_config_find_line(text, strlen(text), "a", NULL), 1);
	assert_int_equal(migd_daemon_config_find_line(text, strlen(text), "a", "x"), 8);
	assert_int_equal(migd_daemon_config_find_line(text, strlen(text), "a", "y"), 7);
	assert_int_equal(migd_daemon_config_find_line(text, strlen(text), "b", "x"), 5);
	/* a key not there: the group's header */
	assert_int_equal(migd_daemon_config_find_line(text, strlen(text), "b", "z"), 4);
	assert_int_equal(migd_daemon_config_find_line(text, strlen(text), "a b", "x"), 10);
	assert_int_equal(migd_daemon_config_find_line(text, strlen(text), "c", NULL), 0);
	/* bounded by @len: the second [a] is past it */
	assert_int_equal(migd_daemon_config_find_line(text, 8, "a", "x"), 2);
}

/* the shipped example: empty as shipped, and every group it shows is valid uncommented */
static void
test_example(void **state)
{
	const gchar *const groups[] = {"[daemon]",
				       "[listen]",
				       "[device ",
				       "[plugin mlx5]",
				       "[plugin hisi_acc]",
				       "[libvirt]",
				       "[libvirt-domain ",
				       "[vm ",
				       NULL};
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GString) uncommented = g_string_new(NULL);
	g_autoptr(GKeyFile) shipped = NULL;
	g_autoptr(GKeyFile) kf = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) shipped_groups = NULL;

	assert_true(g_file_get_contents(EXAMPLE_CONFIG, &text, NULL, NULL));
	shipped = key_file(text);
	shipped_groups = g_key_file_get_groups(shipped, NULL);
	assert_int_equal(g_strv_length(shipped_groups), 0);
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		/* "#key" and "#[group]" are settings; "# words" are comments */
		if (lines[i][0] == '#' && lines[i][1] != ' ' && lines[i][1] != '\0')
			g_string_append_printf(uncommented, "%s\n", lines[i] + 1);
	}
	for (guint i = 0; groups[i] != NULL; i++) {
		if (strstr(uncommented->str, groups[i]) == NULL)
			fail_msg("the example does not show %s", groups[i]);
	}
	kf = key_file(uncommented->str);
	if (!migd_daemon_config_check(kf, &error))
		fail_msg("the example uncommented: %s", error->message);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_groups), cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_file_lines),	 cmocka_unit_test(test_find_line),
	    cmocka_unit_test(test_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
