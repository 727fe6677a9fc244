/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * VM-coordinated migrations on the simulator: the VMM's switchover
 * (switchover=manual), the destination's start (start=manual), the handover
 * and every rollback after the switchover, and peers older than the handover.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "engine-test-util.h"
#include "migd-error.h"
#include "migd-wire-limits.h"

/* pre-copy that converges (mlx5 with a little dirtying), a P2P device, a stop-copy-only one */
static const gchar *const src_specs[] = {"mlx5:state_size=4M,seed=1,dirty_rate=256K", "mtty:seed=2",
					 "pds:seed=3", NULL};
static const gchar *const dst_specs[] = {"mlx5:seed=11", "mtty:seed=12", "pds:seed=13", NULL};

typedef struct {
	EngineFixture *fx;
	gboolean done;
	gboolean ok;
	GError *error;
	gboolean dst_all_stop;	  /* when the callback ran */
	gboolean dst_any_running; /* when the callback ran */
} ControlResult;

static void
control_result_clear(ControlResult *r)
{
	g_clear_error(&r->error);
}

static gboolean
all_in(GPtrArray *devices, MigdState state)
{
	for (guint i = 0; i < devices->len; i++) {
		if (engine_fixture_state(devices, i) != state)
			return FALSE;
	}
	return TRUE;
}

static gboolean
any_in(GPtrArray *devices, MigdState state)
{
	for (guint i = 0; i < devices->len; i++) {
		if (engine_fixture_state(devices, i) == state)
			return TRUE;
	}
	return FALSE;
}

static void
control_result_note(ControlResult *r)
{
	r->dst_all_stop = all_in(r->fx->dst_devices, MIGD_STATE_STOP);
	r->dst_any_running = any_in(r->fx->dst_devices, MIGD_STATE_RUNNING);
	r->done = TRUE;
}

static void
switchover_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	ControlResult *r = user_data;
	r->ok = migd_job_switchover_finish(MIGD_JOB(object), result, &r->error);
	control_result_note(r);
}

static void
start_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	ControlResult *r = user_data;
	r->ok = migd_job_start_finish(MIGD_JOB(object), result, &r->error);
	control_result_note(r);
}

static void
dirty_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	ControlResult *r = user_data;
	gint fd = migd_job_sync_dirty_bitmap_finish(MIGD_JOB(object), result, &r->error);
	r->ok = fd >= 0;
	if (fd >= 0)
		close(fd);
	r->done = TRUE;
}

static gboolean
flag_cb(gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
	return G_SOURCE_REMOVE;
}

typedef struct {
	GPtrArray *devices;
	gboolean only_precopy_or_running; /* every sample so far */
	guint samples;
} Sampler;

static gboolean
sample_cb(gpointer user_data)
{
	Sampler *s = user_data;
	for (guint i = 0; i < s->devices->len; i++) {
		MigdState st = engine_fixture_state(s->devices, i);
		if (st != MIGD_STATE_PRE_COPY && st != MIGD_STATE_RUNNING)
			s->only_precopy_or_running = FALSE;
	}
	s->samples++;
	return G_SOURCE_CONTINUE;
}

/* runs the main loop for @ms, sampling the source devices' states every 20 ms */
static void
run_sampling(EngineFixture *fx, guint ms, Sampler *s)
{
	gboolean over = FALSE;
	guint sample_id = g_timeout_add(20, sample_cb, s);
	guint id = g_timeout_add(ms, flag_cb, &over);

	while (!over)
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(sample_id);
	(void)id;
}

static void
run_for(guint ms)
{
	gboolean over = FALSE;
	g_timeout_add(ms, flag_cb, &over);
	while (!over)
		g_main_context_iteration(NULL, TRUE);
}

static MigdSourceOptions
manual_options(void)
{
	MigdSourceOptions options;
	migd_source_options_init(&options);
	options.switchover = MIGD_SWITCHOVER_MANUAL;
	return options;
}

/* waits for the destination's job and the switchover; both sides then hold the devices in STOP */
static void
switch_over(EngineFixture *fx, ControlResult *sw)
{
	sw->fx = fx;
	migd_job_switchover_async(fx->src_job, NULL, switchover_cb, sw);
	engine_run_until_flag(&sw->done, 60);
	if (!sw->ok)
		fail_msg("switchover: %s", sw->error->message);
	assert_true(sw->dst_all_stop);
	assert_int_equal(migd_job_get_phase(fx->src_job), MIGD_JOB_PHASE_HANDOVER);
	assert_int_equal(migd_job_get_phase(fx->dst_job), MIGD_JOB_PHASE_HANDOVER);
	assert_true(all_in(fx->src_devices, MIGD_STATE_STOP));
}

static void
assert_src_rolled_back(EngineFixture *fx, const guint64 *digests, const gchar *needle)
{
	const gchar *message = migd_job_get_message(fx->src_job);

	assert_true(migd_job_is_finished(fx->src_job));
	assert_false(migd_job_get_success(fx->src_job));
	assert_true(migd_job_get_rolled_back(fx->src_job));
	if (strstr(message, "rolled back") == NULL || strstr(message, needle) == NULL)
		fail_msg("source message '%s' lacks 'rolled back' or '%s'", message, needle);
	for (guint i = 0; i < fx->src_devices->len; i++) {
		assert_int_equal(engine_fixture_state(fx->src_devices, i), MIGD_STATE_RUNNING);
		assert_true(engine_fixture_digest(fx->src_devices, i) == digests[i]);
	}
}

static void
assert_dst_reset(EngineFixture *fx)
{
	assert_true(migd_job_is_finished(fx->dst_job));
	assert_false(migd_job_get_success(fx->dst_job));
	assert_true(migd_job_get_rolled_back(fx->dst_job));
	assert_non_null(strstr(migd_job_get_message(fx->dst_job), "destination devices reset"));
	/* a reset device is idle again (RUNNING, no state of the source) */
	assert_true(all_in(fx->dst_devices, MIGD_STATE_RUNNING));
}

static void
digests_of(GPtrArray *devices, guint64 *out)
{
	for (guint i = 0; i < devices->len; i++)
		out[i] = engine_fixture_digest(devices, i);
}

/* ---- the coordinated migration ---- */

static void
test_manual_switchover_manual_start(void **state)
{
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst_specs);
	MigdSourceOptions options = manual_options();
	ControlResult sw = {0}, st = {0};
	Sampler sampler = {.devices = fx->src_devices, .only_precopy_or_running = TRUE};
	const gchar *const *names;
	guint rounds;
	gint64 before_switchover;
	gint64 before_start;

	migd_destination_set_start_mode(fx->dest, MIGD_START_MANUAL);
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	assert_int_equal(migd_job_get_switchover_mode(fx->src_job), MIGD_SWITCHOVER_MANUAL);
	names = migd_job_get_device_names(fx->src_job);
	assert_non_null(names);
	assert_string_equal(names[0], "src0");
	assert_string_equal(names[2], "src2");
	assert_null(names[3]);

	/* pre-copy runs on and converges, but nothing stops */
	run_sampling(fx, 1200, &sampler);
	assert_true(sampler.samples >= 20);
	assert_true(sampler.only_precopy_or_running);
	assert_true(migd_job_get_converged(fx->src_job));
	assert_int_equal(migd_job_get_phase(fx->src_job), MIGD_JOB_PHASE_PRECOPY);
	assert_false(migd_job_is_finished(fx->src_job));
	/* rounds go on, paced: about one per 100 ms once converged, no busy loop */
	rounds = migd_job_get_precopy_rounds(fx->src_job);
	run_sampling(fx, 600, &sampler);
	assert_true(sampler.only_precopy_or_running);
	assert_true(migd_job_get_precopy_rounds(fx->src_job) >= rounds + 2);
	assert_true(migd_job_get_precopy_rounds(fx->src_job) <= rounds + 8);
	assert_true(migd_job_get_converged(fx->src_job));
	assert_non_null(fx->dst_job);
	assert_int_equal(migd_job_get_start_mode(fx->dst_job), MIGD_START_MANUAL);
	/* the destination loads, nothing more */
	assert_true(all_in(fx->dst_devices, MIGD_STATE_RESUMING));
	assert_int_equal(migd_job_get_devices_stopped_at(fx->src_job), 0);

	before_switchover = g_get_real_time();
	switch_over(fx, &sw);
	assert_false(sw.dst_any_running);
	/* the devices stopped at the VMM's word, not before */
	assert_true(migd_job_get_devices_stopped_at(fx->src_job) >= before_switchover);
	assert_true(migd_job_get_devices_stopped_at(fx->src_job) <= g_get_real_time());

	/* start=manual: the destination devices wait, validated, as long as the VMM does */
	run_for(500);
	assert_false(migd_job_is_finished(fx->src_job));
	assert_false(migd_job_is_finished(fx->dst_job));
	assert_true(all_in(fx->dst_devices, MIGD_STATE_STOP));
	assert_true(all_in(fx->src_devices, MIGD_STATE_STOP));

	assert_int_equal(migd_job_get_devices_started_at(fx->dst_job), 0);
	before_start = g_get_real_time();
	st.fx = fx;
	migd_job_start_async(fx->dst_job, NULL, start_cb, &st);
	engine_run_until_flag(&st.done, 30);
	if (!st.ok)
		fail_msg("start: %s", st.error->message);
	assert_true(migd_job_get_devices_started_at(fx->dst_job) >= before_start);
	assert_true(migd_job_get_devices_started_at(fx->dst_job) <= g_get_real_time());
	engine_fixture_wait(fx, 30);
	if (!migd_job_get_success(fx->src_job))
		fail_msg("source: %s", migd_job_get_message(fx->src_job));
	if (!migd_job_get_success(fx->dst_job))
		fail_msg("destination: %s", migd_job_get_message(fx->dst_job));
	assert_non_null(strstr(migd_job_get_message(fx->src_job), "handed over"));
	assert_false(migd_job_get_rolled_back(fx->src_job));
	for (guint i = 0; i < fx->src_devices->len; i++) {
		assert_int_equal(engine_fixture_state(fx->src_devices, i), MIGD_STATE_STOP);
		assert_int_equal(engine_fixture_state(fx->dst_devices, i), MIGD_STATE_RUNNING);
		assert_true(engine_fixture_digest(fx->src_devices, i) ==
			    engine_fixture_digest(fx->dst_devices, i));
	}
	control_result_clear(&sw);
	control_result_clear(&st);
}

/* switchover=auto and start=auto with both sides new: through StartRequest/StartGrant */
static void
test_auto_handover(void **state)
{
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst_specs);

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 60);
	if (!migd_job_get_success(fx->src_job))
		fail_msg("source: %s", migd_job_get_message(fx->src_job));
	assert_true(migd_job_get_success(fx->dst_job));
	assert_non_null(strstr(migd_job_get_message(fx->src_job), "handed over"));
	assert_true(all_in(fx->dst_devices, MIGD_STATE_RUNNING));
	assert_true(all_in(fx->src_devices, MIGD_STATE_STOP));
}

/* a Switchover before pre-copy began is remembered and done at the first chance */
static void
test_switchover_before_precopy(void **state)
{
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst_specs);
	MigdSourceOptions options = manual_options();
	ControlResult sw = {.fx = fx};

	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	assert_int_equal(migd_job_get_phase(fx->src_job), MIGD_JOB_PHASE_CONNECTING);
	migd_job_switchover_async(fx->src_job, NULL, switchover_cb, &sw);
	engine_fixture_wait(fx, 60);
	engine_run_until_flag(&sw.done, 5);
	if (!sw.ok)
		fail_msg("switchover: %s", sw.error->message);
	assert_true(migd_job_get_success(fx->src_job));
	assert_true(migd_job_get_success(fx->dst_job));
	for (guint i = 0; i < fx->src_devices->len; i++)
		assert_true(engine_fixture_digest(fx->src_devices, i) ==
			    engine_fixture_digest(fx->dst_devices, i));
	control_result_clear(&sw);
}

/* ---- rollback after the switchover ---- */

static void
test_rollback_after_switchover(void **state)
{
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst_specs);
	MigdSourceOptions options = manual_options();
	ControlResult sw = {0}, st = {0};
	guint64 digests[3];
	g_autoptr(GError) error = NULL;

	migd_destination_set_start_mode(fx->dest, MIGD_START_MANUAL);
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	run_for(300);
	switch_over(fx, &sw);
	digests_of(fx->src_devices, digests);

	assert_true(migd_job_rollback(fx->src_job, &error));
	assert_null(error);
	/* the destination's start crosses the source's rollback: it must fail */
	st.fx = fx;
	migd_job_start_async(fx->dst_job, NULL, start_cb, &st);
	engine_fixture_wait(fx, 30);
	engine_run_until_flag(&st.done, 5);
	assert_false(st.ok);
	if (strstr(st.error->message, "rolled back") == NULL)
		fail_msg("start failed with '%s'", st.error->message);
	assert_src_rolled_back(fx, digests, "Job.Rollback");
	assert_dst_reset(fx);
	control_result_clear(&sw);
	control_result_clear(&st);
}

static void
test_destination_abandon(void **state)
{
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst_specs);
	MigdSourceOptions options = manual_options();
	ControlResult sw = {0};
	guint64 digests[3];
	g_autoptr(GError) error = NULL;

	migd_destination_set_start_mode(fx->dest, MIGD_START_MANUAL);
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	switch_over(fx, &sw);
	digests_of(fx->src_devices, digests);

	assert_true(migd_job_abandon(fx->dst_job, NULL, &error));
	assert_dst_reset(fx);
	assert_non_null(strstr(migd_job_get_message(fx->dst_job), "abandoned"));
	engine_fixture_wait(fx, 30);
	assert_src_rolled_back(fx, digests, "ABANDONED");
	control_result_clear(&sw);
}

static void
test_destination_lost_after_commit(void **state)
{
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst_specs);
	MigdSourceOptions options = manual_options();
	ControlResult sw = {0};
	guint64 digests[3];

	migd_destination_set_start_mode(fx->dest, MIGD_START_MANUAL);
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	switch_over(fx, &sw);
	digests_of(fx->src_devices, digests);

	migd_destination_close(fx->dest);
	engine_fixture_wait(fx, 30);
	assert_src_rolled_back(fx, digests, "destination");
	assert_dst_reset(fx);
	control_result_clear(&sw);
}

static void
test_handover_timeout(void **state)
{
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst_specs);
	MigdSourceOptions options = manual_options();
	ControlResult sw = {0};
	guint64 digests[3];
	gint64 t0;

	options.handover_timeout_s = 1;
	migd_destination_set_start_mode(fx->dest, MIGD_START_MANUAL);
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	switch_over(fx, &sw);
	digests_of(fx->src_devices, digests);
	t0 = g_get_monotonic_time();
	engine_fixture_wait(fx, 30);
	/* about the timeout (g_timeout_add_seconds may fire up to a second late) */
	assert_true(g_get_monotonic_time() - t0 < 5 * G_USEC_PER_SEC);
	assert_src_rolled_back(fx, digests, "handover timeout");
	assert_dst_reset(fx);
	assert_non_null(strstr(migd_job_get_message(fx->dst_job), "rolled back"));
	control_result_clear(&sw);
}

/* a Rollback before the switchover is a cancel: nothing had stopped */
static void
test_rollback_before_switchover(void **state)
{
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst_specs);
	MigdSourceOptions options = manual_options();
	g_autoptr(GError) error = NULL;

	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	run_for(400);
	assert_int_equal(migd_job_get_phase(fx->src_job), MIGD_JOB_PHASE_PRECOPY);
	assert_true(migd_job_rollback(fx->src_job, &error));
	engine_fixture_wait(fx, 30);
	assert_false(migd_job_get_success(fx->src_job));
	assert_false(migd_job_get_rolled_back(fx->src_job));
	assert_non_null(strstr(migd_job_get_message(fx->src_job), "before the switchover"));
	assert_true(all_in(fx->src_devices, MIGD_STATE_RUNNING));
	assert_true(all_in(fx->dst_devices, MIGD_STATE_RUNNING));
	assert_false(migd_job_get_success(fx->dst_job));
}

/*
 * The destination's devices fail to start after the grant: the source has
 * handed over and keeps its devices stopped, the destination resets its own:
 * both stopped, never both running the VM's device state
 */
static void
test_start_fails_after_grant(void **state)
{
	const gchar *dst[] = {"mlx5:seed=11",
			      "mtty:seed=12,fail_arc=STOP->RUNNING_P2P,fail_errno=EIO",
			      "pds:seed=13", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst);
	MigdSourceOptions options = manual_options();
	ControlResult sw = {0}, st = {0};

	migd_destination_set_start_mode(fx->dest, MIGD_START_MANUAL);
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	switch_over(fx, &sw);
	st.fx = fx;
	migd_job_start_async(fx->dst_job, NULL, start_cb, &st);
	engine_fixture_wait(fx, 30);
	engine_run_until_flag(&st.done, 5);
	assert_false(st.ok);
	assert_non_null(strstr(st.error->message, "the source granted the start, but"));
	assert_true(migd_job_get_success(fx->src_job));
	assert_true(all_in(fx->src_devices, MIGD_STATE_STOP));
	assert_false(migd_job_get_success(fx->dst_job));
	assert_non_null(strstr(migd_job_get_message(fx->dst_job), "destination devices reset"));
	control_result_clear(&sw);
	control_result_clear(&st);
}

/* ---- older peers ---- */

/* an older source (no CAP_HANDOVER) into a new destination with start=manual: as before */
static void
test_old_source(void **state)
{
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst_specs);
	MigdSourceOptions options;
	ControlResult st = {.fx = NULL};

	migd_source_options_init(&options);
	options.no_handover = TRUE;
	migd_destination_set_start_mode(fx->dest, MIGD_START_MANUAL);
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	engine_fixture_wait(fx, 60);
	if (!migd_job_get_success(fx->src_job))
		fail_msg("source: %s", migd_job_get_message(fx->src_job));
	assert_true(migd_job_get_success(fx->dst_job));
	assert_null(strstr(migd_job_get_message(fx->src_job), "handed over"));
	assert_true(all_in(fx->dst_devices, MIGD_STATE_RUNNING));
	assert_true(all_in(fx->src_devices, MIGD_STATE_STOP));
	/* the destination's job has ended: a Start is refused, as on any finished job */
	st.fx = fx;
	migd_job_start_async(fx->dst_job, NULL, start_cb, &st);
	engine_run_until_flag(&st.done, 5);
	assert_false(st.ok);
	g_assert_error(st.error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	control_result_clear(&st);
}

/*
 * An older destination, played by a raw peer that negotiates no capability at
 * all: the new source (switchover=manual) completes at the CommitResult, and
 * the switchover returns then.
 */
typedef struct {
	gint listen_fd;
	guint n_devices;
	gboolean ok;
} OldDestination;

static gpointer
old_destination_thread(gpointer user_data)
{
	OldDestination *od = user_data;
	g_autoptr(MigdWireDecoder) decoder = migd_wire_decoder_new();
	gint fd = accept(od->listen_fd, NULL, NULL);
	guint lasts = 0;
	g_autoptr(GArray) chunks = g_array_new(FALSE, TRUE, sizeof(guint64));
	g_autoptr(GArray) bytes = g_array_new(FALSE, TRUE, sizeof(guint64));

	if (fd < 0)
		return NULL;
	g_array_set_size(chunks, 8);
	g_array_set_size(bytes, 8);
	for (;;) {
		g_autoptr(MigdWireFrame) frame = engine_raw_next(fd, decoder);
		if (frame == NULL)
			break;
		if (frame->type == MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO) {
			Migd__Wire__HelloReply reply = MIGD__WIRE__HELLO_REPLY__INIT;
			od->n_devices = frame->hello->device_count;
			reply.has_version = TRUE;
			reply.version = MIGD_WIRE_PROTOCOL_VERSION_MIN;
			reply.has_capabilities = TRUE;
			reply.capabilities = 0; /* older than every capability */
			reply.session_id = frame->hello->session_id;
			engine_raw_send(fd, MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, &reply);
		} else if (frame->type == MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER) {
			Migd__Wire__DeviceAccept accept = MIGD__WIRE__DEVICE_ACCEPT__INIT;
			accept.device = frame->device_offer->device;
			engine_raw_send(fd, MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT, &accept);
		} else if (frame->type == MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK) {
			const Migd__Wire__StateChunk *c = frame->state_chunk;
			g_array_index(chunks, guint64, c->device)++;
			g_array_index(bytes, guint64, c->device) += c->data.len;
			if (c->has_last && c->last)
				lasts++;
		} else if (frame->type == MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT) {
			Migd__Wire__CommitResult result = MIGD__WIRE__COMMIT_RESULT__INIT;
			g_autofree Migd__Wire__CommitDeviceResult *entries =
			    g_new0(Migd__Wire__CommitDeviceResult, od->n_devices);
			g_autofree Migd__Wire__CommitDeviceResult **ptrs =
			    g_new0(Migd__Wire__CommitDeviceResult *, od->n_devices);
			gboolean counts = lasts == od->n_devices;
			for (gsize i = 0; i < frame->commit->n_devices; i++) {
				const Migd__Wire__CommitDevice *d = frame->commit->devices[i];
				counts = counts &&
					 d->chunks == g_array_index(chunks, guint64, d->device) &&
					 d->bytes == g_array_index(bytes, guint64, d->device);
			}
			for (guint i = 0; i < od->n_devices; i++) {
				migd__wire__commit_device_result__init(&entries[i]);
				entries[i].device = i;
				entries[i].ok = TRUE;
				ptrs[i] = &entries[i];
			}
			result.ok = TRUE;
			result.n_devices = od->n_devices;
			result.devices = ptrs;
			od->ok = counts &&
				 engine_raw_send(fd, MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT,
						 &result);
		}
	}
	close(fd);
	return NULL;
}

static void
test_old_destination(void **state)
{
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst_specs);
	g_autofree gchar *path = g_strdup_printf("%s/old.sock", fx->tmpdir);
	g_autofree gchar *address = g_strdup_printf("unix:%s", path);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	OldDestination od = {0};
	MigdSourceOptions options = manual_options();
	ControlResult sw = {0};
	GThread *thread;

	od.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	assert_int_equal(bind(od.listen_fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(od.listen_fd, 1), 0);
	thread = g_thread_new("old-destination", old_destination_thread, &od);

	fx->src_job = migd_source_start(fx->src_devices, address, &fx->transport, &options, NULL);
	assert_non_null(fx->src_job);
	/* no PRECOPY negotiated: nothing pre-copies, so it waits for the VMM right away */
	run_for(300);
	assert_true(migd_job_get_converged(fx->src_job));
	assert_true(all_in(fx->src_devices, MIGD_STATE_RUNNING));
	sw.fx = fx;
	migd_job_switchover_async(fx->src_job, NULL, switchover_cb, &sw);
	engine_fixture_wait(fx, 30);
	engine_run_until_flag(&sw.done, 5);
	g_thread_join(thread);
	close(od.listen_fd);
	g_unlink(path);
	if (!sw.ok)
		fail_msg("switchover: %s", sw.error->message);
	if (!migd_job_get_success(fx->src_job))
		fail_msg("source: %s", migd_job_get_message(fx->src_job));
	assert_true(od.ok);
	assert_null(strstr(migd_job_get_message(fx->src_job), "handed over"));
	assert_true(all_in(fx->src_devices, MIGD_STATE_STOP));
	control_result_clear(&sw);
}

/* ---- the controls' errors ---- */

static void
test_controls_refused(void **state)
{
	g_autoptr(EngineFixture) fx = engine_fixture_new(src_specs, dst_specs);
	MigdSourceOptions options = manual_options();
	ControlResult sw = {0}, sw2 = {0}, r = {0};
	g_autoptr(GError) error = NULL;

	migd_destination_set_start_mode(fx->dest, MIGD_START_MANUAL);
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	run_for(300);
	assert_non_null(fx->dst_job);

	/* the other role's controls */
	r.fx = fx;
	migd_job_start_async(fx->src_job, NULL, start_cb, &r);
	engine_run_until_flag(&r.done, 5);
	g_assert_error(r.error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
	control_result_clear(&r);
	assert_false(migd_job_abandon(fx->src_job, NULL, &error));
	g_assert_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
	g_clear_error(&error);
	memset(&r, 0, sizeof(r));
	r.fx = fx;
	migd_job_switchover_async(fx->dst_job, NULL, switchover_cb, &r);
	engine_run_until_flag(&r.done, 5);
	g_assert_error(r.error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
	control_result_clear(&r);
	assert_false(migd_job_rollback(fx->dst_job, &error));
	g_assert_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
	g_clear_error(&error);
	/* a device without IOVA ranges has no dirty tracker; a device the job lacks */
	memset(&r, 0, sizeof(r));
	migd_job_sync_dirty_bitmap_async(fx->src_job, "src0", NULL, dirty_cb, &r);
	engine_run_until_flag(&r.done, 5);
	g_assert_error(r.error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(r.error->message, "not tracked"));
	control_result_clear(&r);
	memset(&r, 0, sizeof(r));
	migd_job_sync_dirty_bitmap_async(fx->src_job, "nosuch", NULL, dirty_cb, &r);
	engine_run_until_flag(&r.done, 5);
	g_assert_error(r.error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	control_result_clear(&r);

	/* one switchover at a time */
	sw.fx = fx;
	sw2.fx = fx;
	migd_job_switchover_async(fx->src_job, NULL, switchover_cb, &sw);
	migd_job_switchover_async(fx->src_job, NULL, switchover_cb, &sw2);
	engine_run_until_flag(&sw2.done, 5);
	g_assert_error(sw2.error, MIGD_ERROR, MIGD_ERROR_BUSY);
	engine_run_until_flag(&sw.done, 30);
	assert_true(sw.ok);

	/* start, then every control on the finished jobs */
	memset(&r, 0, sizeof(r));
	r.fx = fx;
	migd_job_start_async(fx->dst_job, NULL, start_cb, &r);
	engine_fixture_wait(fx, 30);
	engine_run_until_flag(&r.done, 5);
	assert_true(r.ok);
	assert_true(migd_job_get_success(fx->src_job));
	assert_false(migd_job_rollback(fx->src_job, &error));
	g_assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	assert_false(migd_job_abandon(fx->dst_job, NULL, &error));
	g_assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	control_result_clear(&sw);
	control_result_clear(&sw2);
	memset(&sw, 0, sizeof(sw));
	sw.fx = fx;
	migd_job_switchover_async(fx->src_job, NULL, switchover_cb, &sw);
	engine_run_until_flag(&sw.done, 5);
	g_assert_error(sw.error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	control_result_clear(&sw);
	control_result_clear(&r);
	/* handed over: the source keeps the stopped devices, the destination runs */
	assert_true(all_in(fx->src_devices, MIGD_STATE_STOP));
	assert_true(all_in(fx->dst_devices, MIGD_STATE_RUNNING));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_manual_switchover_manual_start),
	    cmocka_unit_test(test_auto_handover),
	    cmocka_unit_test(test_switchover_before_precopy),
	    cmocka_unit_test(test_rollback_after_switchover),
	    cmocka_unit_test(test_destination_abandon),
	    cmocka_unit_test(test_destination_lost_after_commit),
	    cmocka_unit_test(test_handover_timeout),
	    cmocka_unit_test(test_rollback_before_switchover),
	    cmocka_unit_test(test_start_fails_after_grant),
	    cmocka_unit_test(test_old_source),
	    cmocka_unit_test(test_old_destination),
	    cmocka_unit_test(test_controls_refused),
	};
	g_log_set_always_fatal(G_LOG_FATAL_MASK);
	return cmocka_run_group_tests_name("engine-coordination", tests, NULL, NULL);
}
