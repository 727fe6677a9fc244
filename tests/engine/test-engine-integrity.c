/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * End-to-end integrity of the state streams: a relay between the two engines
 * flips one byte of a device's state (the frame stays valid), and the
 * destination must refuse it before any of its devices runs. Also: an older
 * peer without the checksum still migrates, and says so once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "engine-test-util.h"
#include "migd-test-log.h"
#include "migd-test-relay.h"

typedef struct {
	EngineFixture *fx;
	MigdTestRelay *relay;
	guint64 src_digest[4];
} RelayRun;

/* the fixture's source goes through a relay that flips byte @offset of device @device */
static void
relay_run(RelayRun *run, const gchar *const *src, const gchar *const *dst, gint device,
	  guint64 offset, gboolean fix_chunk_crc, const MigdSourceOptions *options)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *relay_address = NULL;

	run->fx = engine_fixture_new(src, dst);
	for (guint i = 0; i < run->fx->src_devices->len; i++)
		run->src_digest[i] = engine_fixture_digest(run->fx->src_devices, i);
	/* plain goes over UNIX sockets only: the relay sits on one next to the destination's */
	relay_address = g_strdup_printf("unix:%s/relay.sock", run->fx->tmpdir);
	run->relay = migd_test_relay_new(relay_address, run->fx->address, device, offset, &error);
	if (run->relay == NULL)
		fail_msg("relay: %s", error->message);
	migd_test_relay_set_fix_chunk_crc(run->relay, fix_chunk_crc);
	g_free(run->fx->address);
	run->fx->address = g_strdup(migd_test_relay_get_address(run->relay));
	assert_non_null(engine_fixture_migrate(run->fx, options, NULL));
	engine_fixture_wait(run->fx, 60);
}

static void
relay_run_clear(RelayRun *run)
{
	g_clear_pointer(&run->relay, migd_test_relay_free);
	g_clear_pointer(&run->fx, engine_fixture_free);
}

static void
assert_message_has(MigdJob *job, const gchar *needle)
{
	const gchar *message = migd_job_get_message(job);
	if (strstr(message, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", message, needle);
}

/* failed, nothing lost: the source RUNNING with its state, the destination reset */
static void
assert_refused(RelayRun *run, const gchar *dst_device)
{
	EngineFixture *fx = run->fx;

	assert_int_equal(migd_test_relay_get_flipped(run->relay), 1);
	assert_true(migd_job_is_finished(fx->src_job));
	assert_false(migd_job_get_success(fx->src_job));
	assert_message_has(fx->src_job, dst_device);
	assert_message_has(fx->src_job, "checksum");
	assert_message_has(fx->src_job, "source devices back to RUNNING");
	for (guint i = 0; i < fx->src_devices->len; i++) {
		assert_int_equal(engine_fixture_state(fx->src_devices, i), MIGD_STATE_RUNNING);
		assert_true(engine_fixture_digest(fx->src_devices, i) == run->src_digest[i]);
	}
	assert_non_null(fx->dst_job);
	assert_false(migd_job_get_success(fx->dst_job));
	assert_message_has(fx->dst_job, dst_device);
	assert_message_has(fx->dst_job, "checksum");
	assert_message_has(fx->dst_job, "destination devices reset");
	for (guint i = 0; i < fx->dst_devices->len; i++)
		assert_int_equal(engine_fixture_state(fx->dst_devices, i), MIGD_STATE_RUNNING);
}

/* mtty's stop-copy data, a UART byte after its 24-byte header, as in the issue */
static void
test_flipped_stopcopy_byte(void **state)
{
	const gchar *src[] = {"mlx5:state_size=4M,seed=1", "mtty:seed=2,ports=2", NULL};
	const gchar *dst[] = {"mlx5:seed=3", "mtty:seed=4,ports=2", NULL};
	RelayRun run = {0};

	relay_run(&run, src, dst, 1, 30, FALSE, NULL);
	assert_refused(&run, "dst1");
	assert_message_has(run.fx->dst_job, "checksum mismatch in checked chunk");
	relay_run_clear(&run);
}

/* deep inside a pre-copy stream: refused as the chunk arrives, before stop-copy */
static void
test_flipped_precopy_byte(void **state)
{
	const gchar *src[] = {"mlx5:state_size=8M,seed=1", "pds:seed=2", NULL};
	const gchar *dst[] = {"mlx5:seed=3", "pds:seed=4", NULL};
	RelayRun run = {0};

	relay_run(&run, src, dst, 0, 3 * 1024 * 1024 + 17, FALSE, NULL);
	assert_refused(&run, "dst0");
	/* the source never stopped its devices */
	assert_null(strstr(migd_job_get_message(run.fx->src_job), "STOP_COPY"));
	assert_int_equal(migd_job_get_downtime_us(run.fx->src_job), 0);
	relay_run_clear(&run);
}

/*
 * A relay that also rewrites the chunk's own checksum (a middlebox that
 * re-frames): every chunk passes, the whole-stream value in Commit does not,
 * and no destination device may run.
 */
static void
test_stream_checksum_checked_before_commit(void **state)
{
	const gchar *src[] = {"mtty:seed=1,ports=2", "hisi_acc:seed=2", NULL};
	const gchar *dst[] = {"mtty:seed=3,ports=2", "hisi_acc:seed=4", NULL};
	RelayRun run = {0};

	relay_run(&run, src, dst, 0, 40, TRUE, NULL);
	assert_refused(&run, "dst0");
	assert_message_has(run.fx->dst_job, "stream checksum mismatch");
	assert_message_has(run.fx->src_job, "could not validate");
	relay_run_clear(&run);
}

/* an intact relay changes nothing: the same state arrives */
static void
test_relay_intact(void **state)
{
	const gchar *src[] = {"mlx5:state_size=4M,seed=1", "mtty:seed=2,ports=2", NULL};
	const gchar *dst[] = {"mlx5:seed=3", "mtty:seed=4,ports=2", NULL};
	RelayRun run = {0};

	relay_run(&run, src, dst, -1, 0, FALSE, NULL);
	assert_true(migd_job_get_success(run.fx->src_job));
	assert_true(migd_job_get_success(run.fx->dst_job));
	assert_true(migd_test_relay_get_chunks(run.relay) > 2);
	for (guint i = 0; i < 2; i++)
		assert_true(engine_fixture_digest(run.fx->dst_devices, i) == run.src_digest[i]);
	assert_false(migd_test_log_has(MIGD_TEST_LOG_OTHER, "no state checksums", NULL));
	relay_run_clear(&run);
}

/*
 * A source that does not offer the capability (an older vfio-migd): the
 * migration works without the check, each side says so once; and a flipped
 * byte then goes through unnoticed, which is what the capability is for.
 */
static void
test_older_peer(void **state)
{
	const gchar *src[] = {"mlx5:state_size=4M,seed=1", "mtty:seed=2,ports=2", NULL};
	const gchar *dst[] = {"mlx5:seed=3", "mtty:seed=4,ports=2", NULL};
	MigdSourceOptions options;
	RelayRun run = {0};

	migd_source_options_init(&options);
	options.no_checksum = TRUE;
	relay_run(&run, src, dst, -1, 0, FALSE, &options);
	assert_true(migd_job_get_success(run.fx->src_job));
	assert_true(migd_job_get_success(run.fx->dst_job));
	for (guint i = 0; i < 2; i++)
		assert_true(engine_fixture_digest(run.fx->dst_devices, i) == run.src_digest[i]);
	assert_true(migd_test_log_has(MIGD_TEST_LOG_OTHER, "sends no state checksums", NULL));
	relay_run_clear(&run);

	migd_test_log_clear();
	relay_run(&run, src, dst, 1, 30, FALSE, &options);
	assert_int_equal(migd_test_relay_get_flipped(run.relay), 1);
	assert_true(migd_job_get_success(run.fx->dst_job));
	assert_true(engine_fixture_digest(run.fx->dst_devices, 1) != run.src_digest[1]);
	assert_int_equal(migd_test_log_count(MIGD_TEST_LOG_OTHER) > 0, TRUE);
	relay_run_clear(&run);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    migd_test_log_unit_test(test_flipped_stopcopy_byte),
	    migd_test_log_unit_test(test_flipped_precopy_byte),
	    migd_test_log_unit_test(test_stream_checksum_checked_before_commit),
	    migd_test_log_unit_test(test_relay_intact),
	    migd_test_log_unit_test(test_older_peer),
	};
	migd_test_log_init(MIGD_TEST_LOG_QUIET);
	return cmocka_run_group_tests_name("engine-integrity", tests, NULL, NULL);
}
