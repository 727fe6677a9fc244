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
	     "unknown group [deamon] (known: [daemon], [listen], [libvirt], [device NAME], "
	     "[plugin NAME], [libvirt-domain NAME], [vm NAME]; group names are lower case)"},
	    {"[Listen]\nplain=true\n", "unknown group [Listen]"},
	    {"[device]\niova-ranges=0+1G\n", "unknown group [device]"},
	    {"[plugin ]\n", "unknown group [plugin ]"},
	    {"[devices sim0]\n", "unknown group [devices sim0]"},
	    {"[daemon]\nnap=1\n", "[daemon]: unknown key 'nap'"},
	    {"[daemon]\nlow-power-idle=perhaps\n", "[daemon] low-power-idle"},
	    {"[daemon]\nmax-inflight=1M\n", "[daemon] max-inflight"},
	    {"[device sim0]\niova-range=0+1G\n", "[device sim0]: unknown key 'iova-range'"},
	    {"[device sim0]\niova-ranges=0+1Q\n", "[device sim0] iova-ranges: IOVA range 0"},
	    /* GLib returns a value and an error for a bad escape (found by fuzz-config) */
	    {"[device sim0]\niova-ranges=0+1G\\j\n", "[device sim0] iova-ranges: "},
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_groups),
	    cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
