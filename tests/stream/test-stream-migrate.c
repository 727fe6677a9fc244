/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Whole migrations of simulated devices through the stream workers: source
 * reader -> main loop -> destination writer, one device or four at once, and
 * the ways they fail (a stream the destination rejects, a source session the
 * driver ends mid-drain).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "stream-test-util.h"

static void
test_mlx5_precopy(void **state)
{
	g_autoptr(StMig) m = st_mig_new("mlx5:state_size=64M,seed=1,dirty_rate=32M",
					"mlx5:state_size=64M,seed=2,dirty_rate=32M", 4);
	MigdStreamStats rs = {0};
	MigdStreamStats ws = {0};

	st_mig_run(&m, 1);
	st_mig_assert_ok(m);
	assert_int_equal(m->rounds, 4);
	/* the first round carries the initial image; later ones the dirty pages */
	assert_true(m->bytes > 64 * MiB);
	assert_true(m->peak_held_chunks <= MIGD_STREAM_DEFAULT_MAX_CHUNKS);

	migd_stream_reader_get_stats(m->reader, &rs);
	migd_stream_writer_get_stats(m->writer, &ws);
	assert_int_equal(rs.bytes, m->bytes);
	assert_int_equal(ws.bytes, m->bytes);
	assert_true(rs.average_rate > 0);
	assert_true(rs.peak_chunks_in_flight <= MIGD_STREAM_DEFAULT_MAX_CHUNKS);
	assert_true(rs.peak_bytes_in_flight <=
		    MIGD_STREAM_DEFAULT_MAX_CHUNKS * MIGD_STREAM_DEFAULT_CHUNK_SIZE);
	assert_true(ws.peak_chunks_in_flight <= MIGD_STREAM_DEFAULT_MAX_CHUNKS);
	assert_true(ws.peak_bytes_in_flight <= MIGD_STREAM_DEFAULT_MAX_BYTES);
	assert_int_equal(rs.chunks_in_flight, 0);
	assert_int_equal(ws.chunks_in_flight, 0);
}

/* the small devices, each with its own temporary-end convention and stream format */
static void
test_small_profiles(void **state)
{
	const gchar *specs[][2] = {
	    {"hisi_acc:seed=3", "hisi_acc:seed=4"},
	    {"mtty:seed=5,ports=2", "mtty:seed=6,ports=2"},
	    {"pds:seed=7", "pds:seed=8"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(specs); i++) {
		gboolean precopy = !g_str_has_prefix(specs[i][0], "pds");
		g_autoptr(StMig) m = st_mig_new(specs[i][0], specs[i][1], precopy ? 2 : 0);

		st_mig_run(&m, 1);
		st_mig_assert_ok(m);
	}
	assert_int_equal(st_wait_no_stream_threads(), 0);
}

/* a driver answering a few bytes per read: chunks are still filled, the stream intact */
static void
test_short_reads(void **state)
{
	g_autoptr(StMig) m = st_mig_new("hisi_acc:seed=9,short_reads=1", "hisi_acc:seed=10", 2);
	g_autoptr(StMig) m2 = st_mig_new("mlx5:state_size=256K,seed=11,short_reads=1",
					 "mlx5:state_size=256K,seed=12", 0);
	StMig *migs[] = {m, m2};

	st_mig_run(migs, 2);
	st_mig_assert_ok(m);
	st_mig_assert_ok(m2);
}

/* four different devices at once on one main context */
static void
test_four_profiles_parallel(void **state)
{
	g_autoptr(StMig) a = st_mig_new("mlx5:state_size=32M,seed=21,dirty_rate=16M",
					"mlx5:state_size=32M,seed=22", 3);
	g_autoptr(StMig) b = st_mig_new("hisi_acc:seed=23", "hisi_acc:seed=24", 1);
	g_autoptr(StMig) c = st_mig_new("mtty:seed=25,ports=1", "mtty:seed=26,ports=1", 2);
	g_autoptr(StMig) d = st_mig_new("pds:seed=27", "pds:seed=28", 0);
	StMig *migs[] = {a, b, c, d};

	st_mig_run(migs, G_N_ELEMENTS(migs));
	for (guint i = 0; i < G_N_ELEMENTS(migs); i++)
		st_mig_assert_ok(migs[i]);
	/* the readers wait for more work; the writers may have returned already */
	assert_true(st_count_stream_threads() >= 4 && st_count_stream_threads() <= 8);
}

static gdouble
run_rate_limited(guint n, guint seed)
{
	StMig *migs[4] = {NULL};
	gint64 t0;
	gdouble secs;

	for (guint i = 0; i < n; i++) {
		g_autofree gchar *src =
		    g_strdup_printf("mlx5:state_size=8M,save_rate=16M,seed=%u", seed + i);
		g_autofree gchar *dst =
		    g_strdup_printf("mlx5:state_size=8M,seed=%u", seed + 100 + i);
		migs[i] = st_mig_new(src, dst, 0);
	}
	t0 = g_get_monotonic_time();
	st_mig_run(migs, n);
	secs = (gdouble)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
	for (guint i = 0; i < n; i++) {
		st_mig_assert_ok(migs[i]);
		st_mig_free(migs[i]);
	}
	return secs;
}

/*
 * The engine's downtime target assumes the devices stream at once: four devices
 * limited by their own save rate take about the time of one, not four. The rate
 * is low enough that the copying is a small part of the time even under ASan.
 */
static void
test_parallel_timing(void **state)
{
	gdouble one = run_rate_limited(1, 31);
	gdouble four = run_rate_limited(4, 41);
	gdouble seq = 0;

	for (guint i = 0; i < 4; i++)
		seq += run_rate_limited(1, 51 + i);
	print_message("# 8 MiB at 16 MiB/s: one device %.3f s, four in parallel %.3f s, "
		      "four one after another %.3f s\n",
		      one, four, seq);
	/* one device alone cannot beat its save rate */
	assert_true(one >= 0.45);
	assert_true(four < 2.5 * one);
}

/* hisi_acc checks the match data: another dev_id makes the driver refuse the stream */
static void
test_dst_mismatch(void **state)
{
	g_autoptr(StMig) m = st_mig_new("hisi_acc:seed=61", "hisi_acc:seed=62,dev_id=7", 1);

	st_mig_run(&m, 1);
	assert_null(m->reader_error);
	assert_non_null(m->writer_error);
	if (!migd_error_matches_errno(m->writer_error, EFAULT))
		fail_msg("expected EFAULT, got: %s", m->writer_error->message);
	assert_true(migd_stream_writer_is_stopped(m->writer));
	assert_true(migd_stream_reader_is_stopped(m->reader));
	/* a stopped writer refuses more data */
	{
		g_autoptr(GBytes) more = g_bytes_new_static("x", 1);
		assert_false(migd_stream_writer_push(m->writer, more));
	}
}

typedef struct {
	MigdDevice *dev;
	gboolean reset; /* TRUE: VFIO_DEVICE_RESET; FALSE: a failing arc into ERROR */
	GError *arc_error;
} FaultCtx;

static gboolean
fault_cb(gpointer user_data)
{
	FaultCtx *f = user_data;
	g_autoptr(GError) error = NULL;

	if (f->reset) {
		assert_true(migd_device_reset(f->dev, &error));
		return G_SOURCE_REMOVE;
	}
	/* the raw SET, as the engine's switchover would issue it */
	assert_false(MIGD_DEVICE_GET_CLASS(f->dev)->set_state(f->dev, MIGD_STATE_STOP_COPY, NULL,
							      &f->arc_error));
	return G_SOURCE_REMOVE;
}

/* the device leaves the saving state mid-drain: the worker's read sees ENODEV */
static void
run_source_fault(const gchar *spec, gboolean reset)
{
	g_autoptr(StMig) m = st_mig_new(spec, "mlx5:state_size=64M,seed=72", 2);
	FaultCtx f = {.reset = reset};
	gint64 t0;

	/* st_mig_run() with a fault injected 150 ms in */
	{
		guint n_running = 1;
		gboolean timed_out = FALSE;
		guint id = g_timeout_add_seconds(STREAM_TEST_TIMEOUT_S, st_timeout_cb, &timed_out);

		m->n_running = &n_running;
		st_mig_start(m);
		f.dev = m->src;
		g_timeout_add(150, fault_cb, &f);
		t0 = g_get_monotonic_time();
		while (n_running > 0 && !timed_out)
			g_main_context_iteration(NULL, TRUE);
		assert_false(timed_out);
		g_source_remove(id);
	}
	/* the fault ends the 4 s drain long before its end */
	assert_true(g_get_monotonic_time() - t0 < 2 * G_USEC_PER_SEC);
	assert_non_null(m->reader_error);
	if (!g_error_matches(m->reader_error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED))
		fail_msg("expected SESSION_ENDED, got: %s", m->reader_error->message);
	assert_null(m->writer_error);
	assert_true(migd_stream_reader_is_stopped(m->reader));
	if (!reset) {
		assert_non_null(f.arc_error);
		assert_true(migd_error_matches_errno(f.arc_error, EIO));
		g_clear_error(&f.arc_error);
	}
	/* no more operations after an error */
	{
		g_autoptr(GError) error = NULL;
		assert_false(migd_stream_reader_drain(m->reader, MIGD_STATE_PRE_COPY, &error));
		assert_non_null(error);
	}
}

static void
test_source_reset_mid_drain(void **state)
{
	run_source_fault("mlx5:state_size=64M,seed=71,save_rate=16M", TRUE);
}

static void
test_source_fail_arc_mid_drain(void **state)
{
	run_source_fault(
	    "mlx5:state_size=64M,seed=73,save_rate=16M,fail_arc=PRE_COPY->PRE_COPY_P2P,"
	    "fail_errno=EIO,fail_to_error=1",
	    FALSE);
}

static int
group_teardown(void **state)
{
	/* every reader and writer joined its worker on the way out */
	return st_wait_no_stream_threads() == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mlx5_precopy),
	    cmocka_unit_test(test_small_profiles),
	    cmocka_unit_test(test_short_reads),
	    cmocka_unit_test(test_four_profiles_parallel),
	    cmocka_unit_test(test_parallel_timing),
	    cmocka_unit_test(test_dst_mismatch),
	    cmocka_unit_test(test_source_reset_mid_drain),
	    cmocka_unit_test(test_source_fail_arc_mid_drain),
	};
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
