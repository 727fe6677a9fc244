/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "migd-convergence.h"

#define MiB (1024 * 1024ull)
#define GiB (1024 * MiB)

static MigdConvergencePolicy
policy_ms(guint64 target_ms, guint max_rounds)
{
	MigdConvergencePolicy p;
	migd_convergence_policy_init(&p);
	p.downtime_target_us = target_ms * 1000;
	p.max_rounds = max_rounds;
	return p;
}

static void
test_defaults(void **state)
{
	MigdConvergencePolicy p;
	migd_convergence_policy_init(&p);
	assert_int_equal(p.downtime_target_us, 300000);
	assert_int_equal(p.max_rounds, 30);
}

static void
test_initial_bytes_keep_precopy_going(void **state)
{
	MigdConvergencePolicy p = policy_ms(300, 30);
	/* tiny remainder, fast link: only the initial bytes hold it back */
	MigdConvergenceDevice devs[] = {
	    {.has_precopy = TRUE, .initial_bytes = 1, .dirty_bytes = 0},
	    {.has_precopy = TRUE, .initial_bytes = 0, .dirty_bytes = 0},
	};
	MigdConvergenceVerdict v = migd_convergence_decide(&p, devs, 2, 1, 10 * GiB);
	assert_int_equal(v.decision, MIGD_CONVERGENCE_CONTINUE);
	assert_int_equal(v.reason, MIGD_CONVERGENCE_REASON_INITIAL_PENDING);
	devs[0].initial_bytes = 0;
	v = migd_convergence_decide(&p, devs, 2, 2, 10 * GiB);
	assert_int_equal(v.decision, MIGD_CONVERGENCE_SWITCHOVER);
	assert_int_equal(v.reason, MIGD_CONVERGENCE_REASON_CONVERGED);
	assert_int_equal(v.remaining_bytes, 0);
	assert_int_equal(v.expected_downtime_us, 0);
}

static void
test_downtime_against_target(void **state)
{
	MigdConvergencePolicy p = policy_ms(300, 30);
	/* 200 MiB dirty at 1 GiB/s = ~195 ms: within 300 ms */
	MigdConvergenceDevice dev = {.has_precopy = TRUE, .dirty_bytes = 200 * MiB};
	MigdConvergenceVerdict v = migd_convergence_decide(&p, &dev, 1, 3, GiB);
	assert_int_equal(v.decision, MIGD_CONVERGENCE_SWITCHOVER);
	assert_int_equal(v.remaining_bytes, 200 * MiB);
	assert_in_range(v.expected_downtime_us, 195000, 196000);
	/* 400 MiB: ~390 ms, above target */
	dev.dirty_bytes = 400 * MiB;
	v = migd_convergence_decide(&p, &dev, 1, 3, GiB);
	assert_int_equal(v.decision, MIGD_CONVERGENCE_CONTINUE);
	assert_int_equal(v.reason, MIGD_CONVERGENCE_REASON_ABOVE_TARGET);
}

static void
test_data_size_dominates_precopy_info(void **state)
{
	MigdConvergencePolicy p = policy_ms(300, 30);
	/* PRECOPY_INFO says nothing is dirty, but the driver expects 1 GiB of stop-copy */
	MigdConvergenceDevice dev = {
	    .has_precopy = TRUE, .has_data_size = TRUE, .stop_copy_length = GiB};
	MigdConvergenceVerdict v = migd_convergence_decide(&p, &dev, 1, 2, GiB);
	assert_int_equal(v.remaining_bytes, GiB);
	assert_int_equal(v.expected_downtime_us, G_USEC_PER_SEC);
	assert_int_equal(v.decision, MIGD_CONVERGENCE_CONTINUE);
	/* a lower MIG_DATA_SIZE never hides pending PRECOPY_INFO bytes */
	dev.stop_copy_length = 10;
	dev.dirty_bytes = 2 * GiB;
	v = migd_convergence_decide(&p, &dev, 1, 2, GiB);
	assert_int_equal(v.remaining_bytes, 2 * GiB);
}

static void
test_parallel_devices_share_link_and_slowest_device_bounds(void **state)
{
	MigdConvergencePolicy p = policy_ms(1000, 30);
	/* four devices of 100 MiB: 400 MiB over a 1 GiB/s link ~ 390 ms */
	MigdConvergenceDevice devs[4];
	MigdConvergenceVerdict v;
	for (guint i = 0; i < 4; i++)
		devs[i] = (MigdConvergenceDevice){.has_precopy = TRUE, .dirty_bytes = 100 * MiB};
	v = migd_convergence_decide(&p, devs, 4, 2, GiB);
	assert_in_range(v.expected_downtime_us, 390000, 391000);
	/* one device saves at only 50 MiB/s: its own 2 s dominate */
	devs[2].save_rate = 50 * MiB;
	v = migd_convergence_decide(&p, devs, 4, 2, GiB);
	assert_int_equal(v.expected_downtime_us, 2 * G_USEC_PER_SEC);
	assert_int_equal(v.decision, MIGD_CONVERGENCE_CONTINUE);
}

static void
test_unknown_link_rate(void **state)
{
	MigdConvergencePolicy p = policy_ms(300, 30);
	MigdConvergenceDevice dev = {.has_precopy = TRUE, .dirty_bytes = 1};
	MigdConvergenceVerdict v = migd_convergence_decide(&p, &dev, 1, 1, 0);
	/* no measurement yet: unknown downtime is not "within target" */
	assert_int_equal(v.expected_downtime_us, G_MAXUINT64);
	assert_int_equal(v.decision, MIGD_CONVERGENCE_CONTINUE);
}

static void
test_round_cap(void **state)
{
	MigdConvergencePolicy p = policy_ms(300, 5);
	MigdConvergenceDevice dev = {.has_precopy = TRUE, .initial_bytes = GiB, .dirty_bytes = GiB};
	MigdConvergenceVerdict v = migd_convergence_decide(&p, &dev, 1, 4, GiB);
	assert_int_equal(v.decision, MIGD_CONVERGENCE_CONTINUE);
	v = migd_convergence_decide(&p, &dev, 1, 5, GiB);
	assert_int_equal(v.decision, MIGD_CONVERGENCE_SWITCHOVER);
	assert_int_equal(v.reason, MIGD_CONVERGENCE_REASON_ROUND_CAP);
	/* the verdict still says how bad the downtime will be */
	assert_int_equal(v.expected_downtime_us, 2 * G_USEC_PER_SEC);
	assert_string_equal(migd_convergence_reason_to_string(v.reason), "round-cap");
}

static void
test_no_precopy_devices(void **state)
{
	MigdConvergencePolicy p = policy_ms(300, 30);
	MigdConvergenceDevice devs[] = {
	    {.has_precopy = FALSE, .has_data_size = TRUE, .stop_copy_length = 64 * 1024},
	};
	MigdConvergenceVerdict v = migd_convergence_decide(&p, devs, 1, 0, 0);
	assert_int_equal(v.decision, MIGD_CONVERGENCE_SWITCHOVER);
	assert_int_equal(v.reason, MIGD_CONVERGENCE_REASON_NO_PRECOPY);
	assert_int_equal(v.remaining_bytes, 64 * 1024);
}

static void
test_saturation(void **state)
{
	MigdConvergencePolicy p = policy_ms(300, 30);
	MigdConvergenceDevice devs[] = {
	    {.has_precopy = TRUE, .dirty_bytes = G_MAXUINT64 - 5},
	    {.has_precopy = TRUE, .dirty_bytes = 100},
	};
	MigdConvergenceVerdict v = migd_convergence_decide(&p, devs, 2, 1, 1);
	assert_int_equal(v.remaining_bytes, G_MAXUINT64);
	assert_int_equal(v.expected_downtime_us, G_MAXUINT64);
}

static void
test_rate_estimator(void **state)
{
	MigdRateEstimator est;
	migd_rate_estimator_init(&est);
	assert_int_equal(migd_rate_estimator_get(&est), 0);
	migd_rate_estimator_add(&est, 100 * MiB, G_USEC_PER_SEC);
	assert_int_equal(migd_rate_estimator_get(&est), 100 * MiB);
	/* zero-length samples are ignored */
	migd_rate_estimator_add(&est, GiB, 0);
	assert_int_equal(migd_rate_estimator_get(&est), 100 * MiB);
	/* a 1 ms burst at 10x barely moves it; a long slow stretch moves it most of the way */
	migd_rate_estimator_add(&est, MiB, 1000);
	assert_true(migd_rate_estimator_get(&est) < 102 * MiB);
	migd_rate_estimator_add(&est, 100 * MiB, 10 * G_USEC_PER_SEC);
	assert_true(migd_rate_estimator_get(&est) < 12 * MiB);
	assert_true(migd_rate_estimator_get(&est) > 9 * MiB);
	assert_int_equal(est.total_bytes, 201 * MiB);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_initial_bytes_keep_precopy_going),
	    cmocka_unit_test(test_downtime_against_target),
	    cmocka_unit_test(test_data_size_dominates_precopy_info),
	    cmocka_unit_test(test_parallel_devices_share_link_and_slowest_device_bounds),
	    cmocka_unit_test(test_unknown_link_rate),
	    cmocka_unit_test(test_round_cap),
	    cmocka_unit_test(test_no_precopy_devices),
	    cmocka_unit_test(test_saturation),
	    cmocka_unit_test(test_rate_estimator),
	};
	return cmocka_run_group_tests_name("convergence", tests, NULL, NULL);
}
