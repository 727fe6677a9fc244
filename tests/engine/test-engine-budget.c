/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The daemon's one bound on state in flight (MigdStreamBudget) in whole
 * migrations: many devices, one budget shared by the source's readers and the
 * destination's writers (both engines in one process, as a daemon that sends
 * and receives at once), and the bytes in flight stay under it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine-test-util.h"

#define MiB	  ((guint64)1024 * 1024)
#define N_DEVICES 48

/* @n devices: pre-copying mlx5s of 1 MiB, every third a pds (64 KiB, stop-copy); NULL-ended */
static gchar **
many_specs(guint n, guint seed)
{
	g_autoptr(GPtrArray) specs = g_ptr_array_new();

	for (guint i = 0; i < n; i++)
		g_ptr_array_add(specs, g_strdup_printf(i % 3 == 2 ? "pds:seed=%u"
								  : "mlx5:state_size=1M,seed=%u",
						       seed + i));
	g_ptr_array_add(specs, NULL);
	return (gchar **)g_ptr_array_free(g_steal_pointer(&specs), FALSE);
}

/*
 * Migrates N_DEVICES through one budget of @max bytes; returns its peak. All
 * in stop-copy, and the main loop stalls for a moment once it began: the
 * readers go on reading meanwhile, as far as their windows and the budget let
 * them, so the bound is pushed against every time.
 */
static guint64
migrate_many(guint64 max)
{
	g_auto(GStrv) src = many_specs(N_DEVICES, 1);
	g_auto(GStrv) dst = many_specs(N_DEVICES, 1000);
	g_autoptr(EngineFixture) fx =
	    engine_fixture_new((const gchar *const *)src, (const gchar *const *)dst);
	g_autoptr(MigdStreamBudget) budget = migd_stream_budget_new(max);
	MigdSourceOptions options;
	guint64 peak;

	migd_source_options_init(&options);
	options.budget = budget;
	/* small chunks: 48 streams a side fit in a small budget, each with its share */
	options.chunk_size = 64 * 1024;
	options.policy.max_rounds = 0;
	migd_destination_set_budget(fx->dest, budget);
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	while (migd_job_get_phase(fx->src_job) != MIGD_JOB_PHASE_STOPCOPY &&
	       !migd_job_is_finished(fx->src_job))
		g_main_context_iteration(NULL, TRUE);
	g_usleep(300 * 1000);
	engine_fixture_wait(fx, 120);
	if (!migd_job_get_success(fx->src_job))
		fail_msg("%s", migd_job_get_message(fx->src_job));
	assert_true(migd_job_get_success(fx->dst_job));
	for (guint i = 0; i < N_DEVICES; i++) {
		assert_int_equal(engine_fixture_state(fx->dst_devices, i), MIGD_STATE_RUNNING);
		assert_true(engine_fixture_digest(fx->src_devices, i) ==
			    engine_fixture_digest(fx->dst_devices, i));
	}
	/* every stream has left, with all it held */
	assert_int_equal(migd_stream_budget_get_used(budget), 0);
	assert_int_equal(migd_stream_budget_get_n_members(budget, MIGD_STREAM_BUDGET_SEND), 0);
	assert_int_equal(migd_stream_budget_get_n_members(budget, MIGD_STREAM_BUDGET_RECEIVE), 0);
	peak = migd_stream_budget_get_peak(budget);
	print_message(
	    "# %u devices through a budget of %" G_GUINT64_FORMAT
	    " MiB: peak %.2f MiB in flight (send %.2f, receive %.2f)\n",
	    N_DEVICES, max / MiB, peak / (gdouble)MiB,
	    migd_stream_budget_get_peak_side(budget, MIGD_STREAM_BUDGET_SEND) / (gdouble)MiB,
	    migd_stream_budget_get_peak_side(budget, MIGD_STREAM_BUDGET_RECEIVE) / (gdouble)MiB);
	return peak;
}

static void
test_many_devices_small_budget(void **state)
{
	guint64 peak = migrate_many(4 * MiB);

	assert_true(peak > 0);
	assert_true(peak <= 4 * MiB);
}

/*
 * The same job with a budget too large to bind: what the streams' own windows
 * allow (4 chunks each), which is what a daemon held before it had one. It
 * exceeds the 4 MiB the bound above holds, so that bound is what kept it there.
 */
static void
test_many_devices_unbound(void **state)
{
	assert_true(migrate_many(64 * 1024 * MiB) > 8 * MiB);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_many_devices_small_budget),
	    cmocka_unit_test(test_many_devices_unbound),
	};
	g_log_set_always_fatal(G_LOG_FATAL_MASK);
	return cmocka_run_group_tests_name("engine-budget", tests, NULL, NULL);
}
