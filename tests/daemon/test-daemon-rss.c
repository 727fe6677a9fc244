/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Bounded memory as deployed: two vfio-migd processes migrate a 512 MiB simulated mlx5 device
 * over mutual TLS on loopback (bench/bench-daemons.c, the driver make bench uses for its 4 and
 * 8 GiB rows), and each daemon's peak RSS (VmHWM) must stay within 64 MiB plus its in-flight
 * window: [daemon] max-inflight= and the connection's send queue
 * (MIGD_CONNECTION_SEND_HIGH_WATER), which the budget does not count.
 *
 * Under AddressSanitizer the migration still runs and is checked, but the bound is not: ASan's
 * quarantine and shadow memory make RSS say nothing about the daemon's own allocations.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bench-daemons.h"
#include "migd-connection.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_UNDER_ASAN 1
#endif
#endif

#define TEST_STATE_SIZE ((guint64)512 * 1024 * 1024)
#define TEST_INFLIGHT	((guint64)32 * 1024 * 1024)
#define TEST_BOUND	(BENCH_DAEMONS_RSS_BASE + TEST_INFLIGHT + MIGD_CONNECTION_SEND_HIGH_WATER)

static const gchar *test_migd;

static void
test_peak_rss_bounded(void **state)
{
	BenchDaemonsConfig config = {
	    .migd = test_migd,
	    .plugin_dir = NULL, /* $VFIO_MIGD_PLUGIN_DIR: the build's plugins */
	    .state_size = TEST_STATE_SIZE,
	    .max_inflight = TEST_INFLIGHT,
	    .timeout_s = 240,
	    .verify = TRUE,
	};
	static const gchar *const who[] = {"source", "destination"};
	BenchDaemonsResult result;
	g_autoptr(GError) error = NULL;

	if (!bench_daemons_migrate(&config, &result, &error))
		fail_msg("the migration through two daemons: %s", error->message);
	/* every byte of the state moved, and arrived as it left */
	assert_true(result.verified);
	assert_true(result.bytes >= TEST_STATE_SIZE);
	for (guint role = 0; role < 2; role++) {
		print_message(
		    "# %s daemon: peak RSS %.1f MiB (%.1f MiB before the migration), bound "
		    "%.0f MiB; %.1f s at %.0f MiB/s\n",
		    who[role], result.hwm_kib[role] / 1024.0, result.rss_idle_kib[role] / 1024.0,
		    TEST_BOUND / 1048576.0, result.seconds,
		    result.bytes / 1048576.0 / result.seconds);
#ifndef TEST_UNDER_ASAN
		if (result.hwm_kib[role] * 1024 > TEST_BOUND)
			fail_msg("the %s daemon's peak RSS is %.1f MiB, over the bound of %.0f MiB",
				 who[role], result.hwm_kib[role] / 1024.0, TEST_BOUND / 1048576.0);
#endif
	}
#ifdef TEST_UNDER_ASAN
	print_message("# AddressSanitizer build: the RSS bound is not checked\n");
#endif
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_peak_rss_bounded),
	};

	if (argc != 2) {
		g_printerr("usage: %s VFIO_MIGD\n", argv[0]);
		return 2;
	}
	test_migd = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
