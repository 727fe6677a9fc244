/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two engines on loopback, simulated devices: whole migrations succeed with the
 * destination holding byte for byte the source's state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine-test-util.h"

static void
assert_migrated(EngineFixture *fx)
{
	assert_non_null(fx->src_job);
	assert_non_null(fx->dst_job);
	if (!migd_job_get_success(fx->src_job))
		fail_msg("source: %s", migd_job_get_message(fx->src_job));
	if (!migd_job_get_success(fx->dst_job))
		fail_msg("destination: %s", migd_job_get_message(fx->dst_job));
	for (guint i = 0; i < fx->src_devices->len; i++) {
		assert_int_equal(engine_fixture_state(fx->src_devices, i), MIGD_STATE_STOP);
		assert_int_equal(engine_fixture_state(fx->dst_devices, i), MIGD_STATE_RUNNING);
		assert_true(engine_fixture_digest(fx->src_devices, i) ==
			    engine_fixture_digest(fx->dst_devices, i));
	}
	assert_int_equal(migd_job_get_phase(fx->src_job), MIGD_JOB_PHASE_COMPLETED);
	assert_true(migd_job_get_bytes(fx->src_job) > 0);
	assert_true(migd_job_get_downtime_us(fx->src_job) > 0);
}

static void
test_migrate_all_profiles(void **state)
{
	const gchar *src[] = {"mlx5:state_size=32M,seed=1,dirty_rate=8M",
			      "mlx5:state_size=8M,seed=2",
			      "hisi_acc:seed=3",
			      "mtty:seed=4",
			      "pds:seed=5",
			      NULL};
	const gchar *dst[] = {"mlx5:seed=11", "mlx5:seed=12", "hisi_acc:seed=13",
			      "mtty:seed=14", "pds:seed=15",  NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(GError) error = NULL;

	assert_non_null(engine_fixture_migrate(fx, NULL, &error));
	engine_fixture_wait(fx, 60);
	assert_migrated(fx);
	assert_true(migd_job_get_precopy_rounds(fx->src_job) >= 1);
}

static void
test_migrate_stopcopy_only(void **state)
{
	const gchar *src[] = {"pds:seed=5", "pds:seed=6", NULL};
	const gchar *dst[] = {"pds:seed=7", "pds:seed=8", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 30);
	assert_migrated(fx);
	assert_int_equal(migd_job_get_precopy_rounds(fx->src_job), 0);
}

/* the benchmarks' stand-in (sim fast_data=1) through the engine, next to a simulated mlx5 */
static void
test_migrate_fast_data(void **state)
{
	const gchar *src[] = {"mlx5:fast_data=1,state_size=8M,seed=21",
			      "mlx5:state_size=4M,seed=22", NULL};
	const gchar *dst[] = {"mlx5:fast_data=1,state_size=8M,seed=23", "mlx5:seed=24", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);

	assert_true(engine_fixture_digest(fx->src_devices, 0) !=
		    engine_fixture_digest(fx->dst_devices, 0));
	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 60);
	/* equal digests: the destination compared every byte of the 8 MiB */
	assert_migrated(fx);
	assert_true(migd_job_get_bytes(fx->src_job) >= 8 * 1024 * 1024);
}

/*
 * Socket buffers of a few KiB: nearly every write of the connection's writability source
 * takes part of a piece or would block, so the frames go out in many rounds, resumed from
 * inside a piece. A byte lost, repeated or reordered fails a checksum or the digests.
 */
static void
test_migrate_small_socket_buffers(void **state)
{
	const gchar *src[] = {"mlx5:fast_data=1,state_size=4M,seed=31",
			      "mlx5:state_size=2M,seed=32", "pds:seed=33", NULL};
	const gchar *dst[] = {"mlx5:fast_data=1,state_size=4M,seed=34", "mlx5:seed=35",
			      "pds:seed=36", NULL};
	MigdTransportConfig transport = {.socket_buffer_bytes = 4096};
	g_autoptr(EngineFixture) fx = engine_fixture_new_full(src, dst, &transport);

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 60);
	assert_migrated(fx);
	assert_true(migd_job_get_bytes(fx->src_job) >= 6 * 1024 * 1024);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_migrate_all_profiles),
	    cmocka_unit_test(test_migrate_stopcopy_only),
	    cmocka_unit_test(test_migrate_fast_data),
	    cmocka_unit_test(test_migrate_small_socket_buffers),
	};
	g_log_set_always_fatal(G_LOG_FATAL_MASK);
	return cmocka_run_group_tests_name("engine-migrate", tests, NULL, NULL);
}
