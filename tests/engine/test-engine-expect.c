/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Per-VM expectations on one destination: two VMs' migrations at once into
 * disjoint devices, each in the order its expectation named them; a session
 * whose id nobody expects, or an untagged one while something is expected, is
 * refused without touching a device; expectations end with their session, at
 * their timeout or when cancelled (a running session's devices reset).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "engine-test-util.h"
#include "migd-error.h"

/* what the destination reported: its jobs and the expectations that ended */
typedef struct {
	MigdDestination *dest;
	GPtrArray *jobs;  /* MigdJob, as started */
	GPtrArray *ended; /* "ID:WHY" */
} Watch;

static void
watch_job_started_cb(MigdDestination *dest, MigdJob *job, Watch *w)
{
	g_ptr_array_add(w->jobs, g_object_ref(job));
}

static void
watch_expectation_ended_cb(MigdDestination *dest, const gchar *id, const gchar *why, Watch *w)
{
	g_auto(GStrv) ids = migd_destination_list_expectations(dest);

	/* it is gone when the signal comes */
	assert_false(g_strv_contains((const gchar *const *)ids, id));
	g_ptr_array_add(w->ended, g_strdup_printf("%s:%s", id, why));
}

static Watch *
watch_new(EngineFixture *fx)
{
	Watch *w = g_new0(Watch, 1);
	w->dest = fx->dest;
	w->jobs = g_ptr_array_new_with_free_func(g_object_unref);
	w->ended = g_ptr_array_new_with_free_func(g_free);
	g_signal_connect(fx->dest, "job-started", G_CALLBACK(watch_job_started_cb), w);
	g_signal_connect(fx->dest, "expectation-ended", G_CALLBACK(watch_expectation_ended_cb), w);
	return w;
}

static void
watch_free(Watch *w)
{
	g_signal_handlers_disconnect_by_data(w->dest, w);
	g_ptr_array_unref(w->jobs);
	g_ptr_array_unref(w->ended);
	g_free(w);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Watch, watch_free)

/* the destination job of migration @id, or NULL */
static MigdJob *
watch_job(Watch *w, const gchar *id)
{
	for (guint i = 0; i < w->jobs->len; i++) {
		MigdJob *job = g_ptr_array_index(w->jobs, i);
		if (g_strcmp0(migd_job_get_migration_id(job), id) == 0)
			return job;
	}
	return NULL;
}

static gboolean
watch_has_ended(Watch *w, const gchar *entry)
{
	for (guint i = 0; i < w->ended->len; i++) {
		if (g_strcmp0(g_ptr_array_index(w->ended, i), entry) == 0)
			return TRUE;
	}
	return FALSE;
}

static GPtrArray *
make_devices(const gchar *const *specs, const gchar *prefix)
{
	GPtrArray *devices = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; specs[i] != NULL; i++) {
		g_autofree gchar *name = g_strdup_printf("%s%u", prefix, i);
		g_ptr_array_add(devices, migd_test_sim_device(specs[i], name));
	}
	return devices;
}

/* the destination's devices at @indexes (G_MAXUINT ends them), borrowed */
static GPtrArray *
pick(EngineFixture *fx, const guint *indexes)
{
	GPtrArray *devices = g_ptr_array_new();
	for (guint i = 0; indexes[i] != G_MAXUINT; i++)
		g_ptr_array_add(devices, g_ptr_array_index(fx->dst_devices, indexes[i]));
	return devices;
}

static void
expect(EngineFixture *fx, const gchar *id, const guint *indexes, guint timeout_s)
{
	g_autoptr(GPtrArray) devices = pick(fx, indexes);
	g_autoptr(GError) error = NULL;

	if (!migd_destination_expect(fx->dest, id, devices, MIGD_START_AUTO, timeout_s, &error))
		fail_msg("expect %s: %s", id, error->message);
}

static MigdJob *
start_source(EngineFixture *fx, GPtrArray *devices, const gchar *migration_id)
{
	MigdSourceOptions options;
	g_autoptr(GError) error = NULL;
	MigdJob *job;

	migd_source_options_init(&options);
	options.migration_id = migration_id;
	job = migd_source_start(devices, fx->address, &fx->transport, &options, &error);
	if (job == NULL)
		fail_msg("source: %s", error->message);
	return job;
}

static gboolean
tick_cb(gpointer user_data)
{
	return G_SOURCE_CONTINUE;
}

typedef gboolean (*DoneFunc)(gpointer data);

/* runs the main loop until @done, at most @timeout_s; then the deferred frees */
static void
run_until(DoneFunc done, gpointer data, guint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
	guint tick = g_timeout_add(20, tick_cb, NULL);

	while (!done(data) && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(tick);
	if (!done(data))
		fail_msg("nothing happened within %u s", timeout_s);
	for (guint i = 0; i < 20 && g_main_context_iteration(NULL, FALSE); i++)
		;
}

static gboolean
job_done(gpointer data)
{
	return migd_job_is_finished(data);
}

static void
assert_message_has(MigdJob *job, const gchar *needle)
{
	const gchar *message = migd_job_get_message(job);
	if (strstr(message, needle) == NULL)
		fail_msg("job %s: message '%s' lacks '%s'", migd_job_get_id(job), message, needle);
}

static void
assert_all_running(GPtrArray *devices)
{
	for (guint i = 0; i < devices->len; i++)
		assert_int_equal(engine_fixture_state(devices, i), MIGD_STATE_RUNNING);
}

/* ---- two VMs at once ---- */

typedef struct {
	Watch *watch;
	MigdJob *src_a;
	MigdJob *src_b;
	gboolean overlapped;
} TwoVms;

static gboolean
two_vms_done(gpointer data)
{
	TwoVms *t = data;
	MigdJob *a = watch_job(t->watch, "vm-a");
	MigdJob *b = watch_job(t->watch, "vm-b");

	/* both destination jobs past the offers (devices RESUMING) and neither ended */
	if (a != NULL && b != NULL && !migd_job_is_finished(a) && !migd_job_is_finished(b) &&
	    migd_job_get_phase(a) >= MIGD_JOB_PHASE_PRECOPY &&
	    migd_job_get_phase(b) >= MIGD_JOB_PHASE_PRECOPY)
		t->overlapped = TRUE;
	return migd_job_is_finished(t->src_a) && migd_job_is_finished(t->src_b) && a != NULL &&
	       b != NULL && migd_job_is_finished(a) && migd_job_is_finished(b);
}

static void
assert_job_ok(MigdJob *job)
{
	assert_non_null(job);
	if (!migd_job_get_success(job))
		fail_msg("job %s: %s", migd_job_get_id(job), migd_job_get_message(job));
}

static void
test_two_vms_concurrently(void **state)
{
	/* slow reads: each migration takes about a second, so they overlap */
	const gchar *src_a[] = {
	    "mlx5:state_size=4M,save_rate=4M,seed=1,dma_pattern=random,dma_rate=16M", "mtty:seed=2",
	    NULL};
	const gchar *src_b[] = {
	    "pds:seed=3", "mlx5:state_size=4M,save_rate=4M,seed=4,dma_pattern=random,dma_rate=16M",
	    NULL};
	const MigdIovaRange ranges[] = {{0, 64 * 1024 * 1024}};
	const gchar *dst[] = {"mlx5:seed=11", "mtty:seed=12", "mlx5:seed=13", "pds:seed=14", NULL};
	const gchar *none[] = {NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(none, dst);
	g_autoptr(Watch) w = watch_new(fx);
	g_autoptr(GPtrArray) a = make_devices(src_a, "a");
	g_autoptr(GPtrArray) b = make_devices(src_b, "b");
	g_autoptr(MigdJob) job_a = NULL;
	g_autoptr(MigdJob) job_b = NULL;
	g_auto(GStrv) ids = NULL;
	TwoVms t = {.watch = w};
	/* vm-b's offer order is not the destination's: pds into dst3, mlx5 into dst2 */
	const guint for_a[] = {0, 1, G_MAXUINT};
	const guint for_b[] = {3, 2, G_MAXUINT};

	/* both mlx5 devices' DMA is tracked: each VM leaves a bitmap in its device */
	migd_device_set_iova_ranges(g_ptr_array_index(a, 0), ranges, 1);
	migd_device_set_iova_ranges(g_ptr_array_index(b, 1), ranges, 1);
	expect(fx, "vm-a", for_a, 0);
	expect(fx, "vm-b", for_b, 60);
	ids = migd_destination_list_expectations(fx->dest);
	assert_int_equal(g_strv_length(ids), 2);
	assert_true(g_strv_contains((const gchar *const *)ids, "vm-a"));
	assert_true(g_strv_contains((const gchar *const *)ids, "vm-b"));
	for (guint i = 0; i < fx->dst_devices->len; i++)
		assert_true(migd_destination_device_is_busy(fx->dest,
							    g_ptr_array_index(fx->dst_devices, i)));
	assert_false(migd_destination_is_busy(fx->dest));

	job_a = start_source(fx, a, "vm-a");
	job_b = start_source(fx, b, "vm-b");
	assert_string_equal(migd_job_get_migration_id(job_a), "vm-a");
	t.src_a = job_a;
	t.src_b = job_b;
	run_until(two_vms_done, &t, 60);

	assert_job_ok(job_a);
	assert_job_ok(job_b);
	assert_job_ok(watch_job(w, "vm-a"));
	assert_job_ok(watch_job(w, "vm-b"));
	assert_int_equal(w->jobs->len, 2);
	assert_true(t.overlapped);
	/* each VM's state landed in its own devices, in the expectation's order */
	assert_true(engine_fixture_digest(a, 0) == engine_fixture_digest(fx->dst_devices, 0));
	assert_true(engine_fixture_digest(a, 1) == engine_fixture_digest(fx->dst_devices, 1));
	assert_true(engine_fixture_digest(b, 0) == engine_fixture_digest(fx->dst_devices, 3));
	assert_true(engine_fixture_digest(b, 1) == engine_fixture_digest(fx->dst_devices, 2));
	assert_all_running(fx->dst_devices);
	for (guint i = 0; i < 2; i++) {
		assert_int_equal(engine_fixture_state(a, i), MIGD_STATE_STOP);
		assert_int_equal(engine_fixture_state(b, i), MIGD_STATE_STOP);
	}
	{
		const gchar *const *names = migd_job_get_device_names(watch_job(w, "vm-b"));
		assert_non_null(names);
		assert_string_equal(names[0], "dst3");
		assert_string_equal(names[1], "dst2");
		assert_null(names[2]);
	}
	/* the bitmap of each tracked device, whichever migration completed last */
	for (guint i = 0; i < fx->dst_devices->len; i++) {
		g_autoptr(GError) error = NULL;
		gint fd = migd_destination_dup_dirty_bitmap_fd(fx->dest, i, &error);
		if (i == 0 || i == 2) {
			if (fd < 0)
				fail_msg("dst%u: %s", i, error->message);
			close(fd);
		} else {
			assert_int_equal(fd, -1);
		}
	}
	/* both expectations ended with their sessions, and every device is free */
	assert_true(watch_has_ended(w, "vm-a:completed"));
	assert_true(watch_has_ended(w, "vm-b:completed"));
	g_strfreev(g_steal_pointer(&ids));
	ids = migd_destination_list_expectations(fx->dest);
	assert_int_equal(g_strv_length(ids), 0);
	for (guint i = 0; i < fx->dst_devices->len; i++)
		assert_false(migd_destination_device_is_busy(
		    fx->dest, g_ptr_array_index(fx->dst_devices, i)));
	assert_false(migd_destination_is_busy(fx->dest));
}

/* ---- refusals ---- */

static void
test_unknown_id_touches_nothing(void **state)
{
	const gchar *src[] = {"mlx5:state_size=1M,seed=1", "mtty:seed=2", NULL};
	const gchar *dst[] = {"mlx5:seed=11", "mtty:seed=12", "mlx5:seed=13", NULL};
	const gchar *none[] = {NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(none, dst);
	g_autoptr(Watch) w = watch_new(fx);
	g_autoptr(GPtrArray) s = make_devices(src, "s");
	g_autoptr(GPtrArray) one = g_ptr_array_new();
	g_autoptr(MigdJob) job = NULL;
	g_auto(GStrv) ids = NULL;
	guint64 gen[3];
	guint64 digest[3];
	const guint for_a[] = {0, 1, G_MAXUINT};

	expect(fx, "vm-a", for_a, 0);
	for (guint i = 0; i < 3; i++) {
		gen[i] =
		    migd_sim_device_get_state_generation(g_ptr_array_index(fx->dst_devices, i));
		digest[i] = engine_fixture_digest(fx->dst_devices, i);
	}

	job = start_source(fx, s, "vm-x");
	run_until(job_done, job, 30);
	assert_false(migd_job_get_success(job));
	assert_message_has(job, "UNKNOWN_MIGRATION");
	assert_message_has(job, "vm-x");
	assert_all_running(s);

	/* a known id with another device count: refused as well */
	g_ptr_array_add(one, g_ptr_array_index(s, 0));
	g_clear_object(&job);
	job = start_source(fx, one, "vm-a");
	run_until(job_done, job, 30);
	assert_false(migd_job_get_success(job));
	assert_message_has(job, "INCOMPATIBLE_DEVICE");
	assert_message_has(job, "1 devices offered, migration vm-a expects 2");
	assert_all_running(s);

	/* no job began, no device moved, and vm-a is still expected */
	assert_int_equal(w->jobs->len, 0);
	for (guint i = 0; i < 3; i++) {
		assert_true(migd_sim_device_get_state_generation(
				g_ptr_array_index(fx->dst_devices, i)) == gen[i]);
		assert_true(engine_fixture_digest(fx->dst_devices, i) == digest[i]);
	}
	assert_all_running(fx->dst_devices);
	ids = migd_destination_list_expectations(fx->dest);
	assert_int_equal(g_strv_length(ids), 1);
	assert_string_equal(ids[0], "vm-a");
	assert_int_equal(w->ended->len, 0);
}

static void
test_untagged_only_without_expectations(void **state)
{
	const gchar *src[] = {"mlx5:state_size=1M,seed=1", "pds:seed=2", NULL};
	const gchar *dst[] = {"mlx5:seed=11", "pds:seed=12", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(Watch) w = watch_new(fx);
	g_autoptr(GError) error = NULL;
	guint64 gen0 = migd_sim_device_get_state_generation(g_ptr_array_index(fx->dst_devices, 0));
	const guint for_a[] = {1, G_MAXUINT};

	/* one device expected: an untagged session may take none of them */
	expect(fx, "vm-a", for_a, 0);
	assert_non_null(engine_fixture_migrate(fx, NULL, &error));
	engine_fixture_wait(fx, 30);
	assert_false(migd_job_get_success(fx->src_job));
	assert_message_has(fx->src_job, "UNKNOWN_MIGRATION");
	assert_message_has(fx->src_job, "no migration id");
	assert_all_running(fx->src_devices);
	assert_int_equal(w->jobs->len, 0);
	assert_true(migd_sim_device_get_state_generation(g_ptr_array_index(fx->dst_devices, 0)) ==
		    gen0);

	/* nothing expected: untagged as before, into every device */
	assert_true(migd_destination_cancel_expectation(fx->dest, "vm-a", &error));
	assert_true(watch_has_ended(w, "vm-a:cancelled"));
	g_clear_object(&fx->src_job);
	assert_non_null(engine_fixture_migrate(fx, NULL, &error));
	engine_fixture_wait(fx, 30);
	assert_job_ok(fx->src_job);
	assert_int_equal(w->jobs->len, 1);
	assert_job_ok(g_ptr_array_index(w->jobs, 0));
	assert_null(migd_job_get_migration_id(g_ptr_array_index(w->jobs, 0)));
	for (guint i = 0; i < 2; i++) {
		assert_true(engine_fixture_digest(fx->src_devices, i) ==
			    engine_fixture_digest(fx->dst_devices, i));
		assert_int_equal(engine_fixture_state(fx->dst_devices, i), MIGD_STATE_RUNNING);
	}
	/* an untagged session ended no expectation */
	assert_int_equal(w->ended->len, 1);
}

/* ---- the end of an expectation ---- */

static gboolean
ended_cb(gpointer data)
{
	return ((Watch *)data)->ended->len > 0;
}

static void
test_timeout(void **state)
{
	const gchar *src[] = {"mlx5:state_size=6M,save_rate=2M,seed=1", NULL};
	const gchar *dst[] = {"mlx5:seed=11", "mlx5:seed=12", NULL};
	const gchar *none[] = {NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(none, dst);
	g_autoptr(Watch) w = watch_new(fx);
	g_autoptr(GPtrArray) s = make_devices(src, "s");
	g_autoptr(MigdJob) job = NULL;
	g_auto(GStrv) ids = NULL;
	gint64 start;
	const guint for_a[] = {0, G_MAXUINT};
	const guint for_b[] = {1, G_MAXUINT};

	/* no session in time: it ends, and its device is free */
	expect(fx, "vm-a", for_a, 1);
	assert_true(
	    migd_destination_device_is_busy(fx->dest, g_ptr_array_index(fx->dst_devices, 0)));
	run_until(ended_cb, w, 10);
	assert_string_equal(g_ptr_array_index(w->ended, 0), "vm-a:timed-out");
	assert_false(
	    migd_destination_device_is_busy(fx->dest, g_ptr_array_index(fx->dst_devices, 0)));
	ids = migd_destination_list_expectations(fx->dest);
	assert_int_equal(g_strv_length(ids), 0);
	/* and its migration is no longer welcome */
	job = start_source(fx, s, "vm-a");
	run_until(job_done, job, 30);
	assert_false(migd_job_get_success(job));
	assert_message_has(job, "UNKNOWN_MIGRATION");

	/* a session that came in time outlives the timeout: the expectation ends with it */
	g_ptr_array_set_size(w->ended, 0);
	start = g_get_monotonic_time();
	expect(fx, "vm-b", for_b, 2);
	g_clear_object(&job);
	job = start_source(fx, s, "vm-b");
	run_until(job_done, job, 30);
	assert_job_ok(job);
	assert_job_ok(watch_job(w, "vm-b"));
	/* 6 MiB read at 2 MiB/s: the session ran past the timeout */
	assert_true(g_get_monotonic_time() - start > 5 * G_USEC_PER_SEC / 2);
	assert_int_equal(w->ended->len, 1);
	assert_string_equal(g_ptr_array_index(w->ended, 0), "vm-b:completed");
	assert_true(engine_fixture_digest(s, 0) == engine_fixture_digest(fx->dst_devices, 1));
}

static gboolean
receiving_cb(gpointer data)
{
	MigdJob *job = watch_job(data, "vm-a");
	return job != NULL && migd_job_get_phase(job) >= MIGD_JOB_PHASE_PRECOPY;
}

static void
test_cancel_running_session(void **state)
{
	/* slow enough that the session is still running when it is cancelled */
	const gchar *src[] = {"mlx5:state_size=16M,save_rate=2M,seed=1", "mtty:seed=2", NULL};
	const gchar *dst[] = {"mlx5:seed=11", "mtty:seed=12", "pds:seed=13", NULL};
	const gchar *none[] = {NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(none, dst);
	g_autoptr(Watch) w = watch_new(fx);
	g_autoptr(GPtrArray) s = make_devices(src, "s");
	g_autoptr(MigdJob) job = NULL;
	g_autoptr(GError) error = NULL;
	MigdJob *dst_job;
	guint64 src_digest[2];
	guint64 gen2 = migd_sim_device_get_state_generation(g_ptr_array_index(fx->dst_devices, 2));
	const guint for_a[] = {0, 1, G_MAXUINT};

	for (guint i = 0; i < 2; i++)
		src_digest[i] = engine_fixture_digest(s, i);
	expect(fx, "vm-a", for_a, 0);
	job = start_source(fx, s, "vm-a");
	run_until(receiving_cb, w, 30);
	dst_job = watch_job(w, "vm-a");
	assert_false(migd_job_is_finished(dst_job));
	assert_int_equal(engine_fixture_state(fx->dst_devices, 0), MIGD_STATE_RESUMING);
	assert_true(migd_destination_is_busy(fx->dest));

	assert_true(migd_destination_cancel_expectation(fx->dest, "vm-a", &error));
	/* at once: the session failed, its devices reset, the expectation gone */
	assert_true(migd_job_is_finished(dst_job));
	assert_false(migd_job_get_success(dst_job));
	assert_message_has(dst_job, "cancelled");
	assert_int_equal(w->ended->len, 1);
	assert_string_equal(g_ptr_array_index(w->ended, 0), "vm-a:cancelled");
	assert_all_running(fx->dst_devices);
	assert_false(migd_destination_is_busy(fx->dest));
	for (guint i = 0; i < fx->dst_devices->len; i++)
		assert_false(migd_destination_device_is_busy(
		    fx->dest, g_ptr_array_index(fx->dst_devices, i)));
	/* the device no expectation named was never touched */
	assert_true(migd_sim_device_get_state_generation(g_ptr_array_index(fx->dst_devices, 2)) ==
		    gen2);

	/* the source was told and took its devices back */
	run_until(job_done, job, 30);
	assert_false(migd_job_get_success(job));
	assert_message_has(job, "cancelled");
	assert_all_running(s);
	for (guint i = 0; i < 2; i++)
		assert_true(engine_fixture_digest(s, i) == src_digest[i]);

	/* cancelled once is gone */
	assert_false(migd_destination_cancel_expectation(fx->dest, "vm-a", &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
}

/* ---- arguments ---- */

static void
assert_expect_fails(EngineFixture *fx, const gchar *id, GPtrArray *devices, gint code,
		    const gchar *needle)
{
	g_autoptr(GError) error = NULL;

	assert_false(migd_destination_expect(fx->dest, id, devices, MIGD_START_AUTO, 0, &error));
	assert_non_null(error);
	if (!g_error_matches(error, MIGD_ERROR, code) || strstr(error->message, needle) == NULL)
		fail_msg("expect %s: got '%s' (code %d), wanted code %d and '%s'", id,
			 error->message, error->code, code, needle);
}

static void
test_expect_arguments(void **state)
{
	const gchar *dst[] = {"mlx5:seed=11", "mtty:seed=12", "pds:seed=13", NULL};
	const gchar *none[] = {NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(none, dst);
	g_autoptr(Watch) w = watch_new(fx);
	g_autoptr(MigdDevice) stranger = migd_test_sim_device("mlx5:seed=99", "stranger");
	g_autoptr(GPtrArray) d0 = g_ptr_array_new();
	g_autoptr(GPtrArray) d01 = g_ptr_array_new();
	g_autoptr(GPtrArray) d11 = g_ptr_array_new();
	g_autoptr(GPtrArray) empty = g_ptr_array_new();
	g_autoptr(GPtrArray) foreign = g_ptr_array_new();
	g_autoptr(GPtrArray) keep01 = g_ptr_array_new();
	g_autoptr(GPtrArray) keep1 = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *long_id = g_strnfill(MIGD_WIRE_MAX_MIGRATION_ID_LEN + 1, 'a');
	g_auto(GStrv) ids = NULL;
	MigdDevice *dev0 = g_ptr_array_index(fx->dst_devices, 0);
	MigdDevice *dev1 = g_ptr_array_index(fx->dst_devices, 1);

	g_ptr_array_add(d0, dev0);
	g_ptr_array_add(d01, dev0);
	g_ptr_array_add(d01, dev1);
	g_ptr_array_add(d11, dev1);
	g_ptr_array_add(d11, dev1);
	g_ptr_array_add(foreign, stranger);

	assert_expect_fails(fx, "vm a", d0, MIGD_ERROR_INVALID_ARGUMENT, "0x20");
	assert_expect_fails(fx, "", d0, MIGD_ERROR_INVALID_ARGUMENT, "1 to");
	assert_expect_fails(fx, NULL, d0, MIGD_ERROR_INVALID_ARGUMENT, "1 to");
	assert_expect_fails(fx, long_id, d0, MIGD_ERROR_INVALID_ARGUMENT, "1 to");
	assert_expect_fails(fx, "vm-a", empty, MIGD_ERROR_INVALID_ARGUMENT, "1 to");
	assert_expect_fails(fx, "vm-a", foreign, MIGD_ERROR_INVALID_ARGUMENT,
			    "stranger is not a device of this destination");
	assert_expect_fails(fx, "vm-a", d11, MIGD_ERROR_INVALID_ARGUMENT, "dst1 is named twice");

	/* a UUID and a libvirt-style name are fine */
	assert_true(migd_destination_expect(fx->dest, "3f2c8a5e-1b7d-4c3e-9a0f-2d6b8e4c1a7f", d0,
					    MIGD_START_MANUAL, 0, &error));
	assert_expect_fails(fx, "3f2c8a5e-1b7d-4c3e-9a0f-2d6b8e4c1a7f", d11, MIGD_ERROR_BUSY,
			    "already expected");
	/* dst0 is reserved: nothing of the second expectation is reserved either */
	assert_expect_fails(fx, "vm.b:2", d01, MIGD_ERROR_BUSY,
			    "dst0 is already reserved for migration 3f2c8a5e");
	assert_false(migd_destination_device_is_busy(fx->dest, dev1));
	ids = migd_destination_list_expectations(fx->dest);
	assert_int_equal(g_strv_length(ids), 1);

	/* dropping a reserved device is refused, dropping an idle one is not */
	g_ptr_array_add(keep01, dev0);
	g_ptr_array_add(keep01, dev1);
	g_ptr_array_add(keep1, dev1);
	assert_false(migd_destination_set_devices(fx->dest, keep1, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_BUSY));
	g_clear_error(&error);
	assert_true(migd_destination_set_devices(fx->dest, keep01, &error));
	/* the device dropped is no longer one of ours */
	g_ptr_array_set_size(foreign, 0);
	g_ptr_array_add(foreign, g_ptr_array_index(fx->dst_devices, 2));
	assert_expect_fails(fx, "vm-c", foreign, MIGD_ERROR_INVALID_ARGUMENT,
			    "dst2 is not a device of this destination");

	assert_false(migd_destination_cancel_expectation(fx->dest, "vm-nobody", &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);

	/* the source checks its id before it connects */
	{
		MigdSourceOptions options;
		g_autoptr(GPtrArray) s = g_ptr_array_new_with_free_func(g_object_unref);
		g_ptr_array_add(s, migd_test_sim_device("mlx5:seed=1", "s0"));
		migd_source_options_init(&options);
		options.migration_id = "vm/a";
		assert_null(migd_source_start(s, fx->address, &fx->transport, &options, &error));
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		assert_all_running(s);
	}

	/* closing the destination ends what is still expected */
	migd_destination_close(fx->dest);
	assert_int_equal(w->ended->len, 1);
	assert_string_equal(g_ptr_array_index(w->ended, 0),
			    "3f2c8a5e-1b7d-4c3e-9a0f-2d6b8e4c1a7f:closed");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_two_vms_concurrently),
	    cmocka_unit_test(test_unknown_id_touches_nothing),
	    cmocka_unit_test(test_untagged_only_without_expectations),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_cancel_running_session),
	    cmocka_unit_test(test_expect_arguments),
	};
	g_log_set_always_fatal(G_LOG_FATAL_MASK);
	return cmocka_run_group_tests_name("engine-expect", tests, NULL, NULL);
}
