/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The libvirt bridge's decisions (docs/coordination.md): libvirt's events,
 * through the real watcher on test:///default (migration events injected as
 * in test-libvirt-watcher), become device-job controls. The device jobs are
 * real MigdJob objects whose engine is a recorder (migd_job_set_control), so
 * what the bridge asks of the engine is seen exactly: Migrate's options,
 * Switchover, Rollback, Cancel, Start, Abandon, and libvirt's abort.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libvirt/libvirt.h>

#include "migd-error.h"
#include "migd-libvirt-bridge.h"
#include "migd-libvirt-incoming.h"
#include "migd-libvirt-loop.h"
#include "migd-libvirt-watcher-private.h"
#include "migd-test-util.h"

#define TEST_URI "test:///default"
#define WAIT_MS	 10000

static gchar test_uuid[VIR_UUID_STRING_BUFLEN];

typedef struct {
	MigdManager *manager;
	MigdLibvirtBridge *bridge;
	MigdJob *job;	  /* the last job the bridge started */
	GPtrArray *calls; /* "migrate sim0,sim1 unix:... manual UUID 30", "switchover", ... */
	gint n_calls;
	GTask *switchover; /* the pending Switchover, for the test to answer */
	gboolean fail_migrate;
	gboolean refuse_rollback;
} Rec;

static void
rec_call(Rec *rec, gchar *call)
{
	g_ptr_array_add(rec->calls, call);
	rec->n_calls++;
}

static const gchar *
call_at(Rec *rec, guint i)
{
	assert_true(i < rec->calls->len);
	return g_ptr_array_index(rec->calls, i);
}

/* ---- the recording engine ---- */

static void
fake_switchover(gpointer engine, GTask *task)
{
	Rec *rec = engine;

	rec_call(rec, g_strdup("switchover"));
	g_clear_object(&rec->switchover);
	rec->switchover = task;
}

static void
fake_start(gpointer engine, GTask *task)
{
	rec_call(engine, g_strdup("start"));
	g_task_return_boolean(task, TRUE);
	g_object_unref(task);
}

static gboolean
fake_abandon(gpointer engine, const gchar *reason, GError **error)
{
	rec_call(engine, g_strdup("abandon"));
	return TRUE;
}

static gboolean
fake_rollback(gpointer engine, GError **error)
{
	Rec *rec = engine;

	if (rec->refuse_rollback) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "nothing to roll back yet");
		return FALSE;
	}
	rec_call(rec, g_strdup("rollback"));
	return TRUE;
}

static const MigdJobControl source_control = {
    .switchover = fake_switchover,
    .rollback = fake_rollback,
};

static const MigdJobControl destination_control = {
    .start = fake_start,
    .abandon = fake_abandon,
};

static void
on_cancel_requested(MigdJob *job, gpointer data)
{
	rec_call(data, g_strdup("cancel"));
}

static MigdJob *
fake_migrate(const gchar *const *devices, const gchar *peer, const MigdMigrateOptions *options,
	     guint64 *id, gpointer user_data, GError **error)
{
	Rec *rec = user_data;
	g_autofree gchar *list = g_strjoinv(",", (gchar **)devices);

	rec_call(rec, g_strdup_printf("migrate %s %s %s %s %u", list, peer,
				      migd_switchover_mode_to_string(options->switchover),
				      options->migration_id, options->handover_timeout_s));
	if (rec->fail_migrate) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_BUSY, "sim0 is busy");
		return NULL;
	}
	g_clear_object(&rec->job);
	rec->job = migd_job_new(MIGD_JOB_ROLE_SOURCE, "7");
	migd_job_set_control(rec->job, &source_control, rec);
	migd_job_set_phase(rec->job, MIGD_JOB_PHASE_PRECOPY);
	g_signal_connect(rec->job, "cancel-requested", G_CALLBACK(on_cancel_requested), rec);
	*id = 7;
	return g_object_ref(rec->job);
}

static void
fake_abort(const gchar *uuid, gpointer user_data)
{
	rec_call(user_data, g_strdup_printf("abort-libvirt %s", uuid));
}

/* ---- fixture ---- */

static gboolean
bridge_connected(gpointer data)
{
	Rec *rec = data;
	return migd_libvirt_watcher_is_connected(migd_libvirt_bridge_get_watcher(rec->bridge));
}

static Rec *
rec_new(gboolean read_write)
{
	Rec *rec = g_new0(Rec, 1);
	g_autoptr(GKeyFile) config = g_key_file_new();
	g_autoptr(GPtrArray) devices = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *text =
	    g_strdup_printf("[libvirt]\nuri=" TEST_URI "\nread-write=%s\nplain=true\n"
			    "handover-timeout-s=30\n"
			    "[libvirt-domain test]\ndevices=sim0;sim1\npeer=unix:/run/peer.sock\n",
			    read_write ? "true" : "false");

	assert_true(g_key_file_load_from_data(config, text, -1, G_KEY_FILE_NONE, NULL));
	rec->calls = g_ptr_array_new_with_free_func(g_free);
	rec->manager = migd_manager_new(devices);
	rec->bridge = migd_libvirt_bridge_new(config, rec->manager, &error);
	assert_null(error);
	assert_non_null(rec->bridge);
	migd_libvirt_bridge_set_test_funcs(rec->bridge, fake_migrate, fake_abort, rec);
	migd_libvirt_watcher_set_poll_interval(migd_libvirt_bridge_get_watcher(rec->bridge), 20);
	assert_true(migd_test_wait_until(bridge_connected, rec, WAIT_MS));
	return rec;
}

static void
rec_free(Rec *rec)
{
	migd_libvirt_bridge_free(rec->bridge);
	if (rec->switchover != NULL) {
		g_task_return_boolean(rec->switchover, TRUE);
		g_object_unref(rec->switchover);
	}
	g_clear_object(&rec->job);
	g_object_unref(rec->manager);
	g_ptr_array_unref(rec->calls);
	g_free(rec);
}

static void
inject(Rec *rec, MigdLibvirtInputKind kind, gint event, gint detail)
{
	MigdLibvirtInput in = {
	    .kind = kind,
	    .uuid = test_uuid,
	    .name = "test",
	    .event = event,
	    .detail = detail,
	    .operation = -1,
	    .success = -1,
	};
	migd_libvirt_watcher_inject(migd_libvirt_bridge_get_watcher(rec->bridge), &in);
}

/* an iteration: the probe finds no job API (test driver) and takes it for a migration */
static void
start_migration(Rec *rec)
{
	g_autofree gchar *want =
	    g_strdup_printf("migrate sim0,sim1 unix:/run/peer.sock manual %s 30", test_uuid);

	inject(rec, MIGD_LIBVIRT_INPUT_ITERATION, 0, 0);
	assert_true(migd_test_wait_count(&rec->n_calls, 1, WAIT_MS));
	assert_string_equal(call_at(rec, 0), want);
}

static void
pause_for_switchover(Rec *rec)
{
	gint before = rec->n_calls;

	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_SUSPENDED,
	       VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED);
	assert_int_equal(rec->n_calls, before + 1);
	assert_string_equal(call_at(rec, before), "switchover");
	assert_non_null(rec->switchover);
}

/* ---- source ---- */

static void
test_source_success(void **state)
{
	Rec *rec = rec_new(TRUE);

	start_migration(rec);
	/* pre-copy: libvirt's iterations change nothing */
	inject(rec, MIGD_LIBVIRT_INPUT_ITERATION, 0, 0);
	assert_int_equal(rec->n_calls, 1);
	pause_for_switchover(rec);
	/* a second pause report is the same switchover */
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_SUSPENDED,
	       VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED);
	assert_int_equal(rec->n_calls, 2);
	g_task_return_boolean(rec->switchover, TRUE);
	g_clear_object(&rec->switchover);
	migd_job_set_phase(rec->job, MIGD_JOB_PHASE_HANDOVER);
	/* libvirt finishes; the device job ends handed over by itself */
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_STOPPED,
	       VIR_DOMAIN_EVENT_STOPPED_MIGRATED);
	migd_job_complete(rec->job, TRUE, "handed over");
	migd_test_spin_ms(50);
	assert_int_equal(rec->n_calls, 2);
	rec_free(rec);
}

static void
test_source_resumed_after_pause_rolls_back(void **state)
{
	Rec *rec = rec_new(TRUE);

	start_migration(rec);
	pause_for_switchover(rec);
	g_task_return_boolean(rec->switchover, TRUE);
	g_clear_object(&rec->switchover);
	/* libvirt gave up after the pause: the guest resumes here, so do the devices */
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_RESUMED,
	       VIR_DOMAIN_EVENT_RESUMED_MIGRATED);
	assert_int_equal(rec->n_calls, 3);
	assert_string_equal(call_at(rec, 2), "rollback");
	/* the job failing as rolled back is our own doing: libvirt is not aborted */
	migd_job_set_rolled_back(rec->job);
	migd_job_complete(rec->job, FALSE, "rolled back");
	migd_test_spin_ms(50);
	assert_int_equal(rec->n_calls, 3);
	rec_free(rec);
}

static void
test_source_failed_job_rolls_back(void **state)
{
	Rec *rec = rec_new(FALSE);
	MigdLibvirtInput in = {
	    .kind = MIGD_LIBVIRT_INPUT_JOB_COMPLETED,
	    .uuid = test_uuid,
	    .name = "test",
	    .operation = VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT,
	    .success = 0,
	    .error_message = "connection reset",
	};

	start_migration(rec);
	pause_for_switchover(rec);
	/* libvirt's job failed while the switchover still runs */
	migd_libvirt_watcher_inject(migd_libvirt_bridge_get_watcher(rec->bridge), &in);
	assert_int_equal(rec->n_calls, 3);
	assert_string_equal(call_at(rec, 2), "rollback");
	/* the switchover then fails (rolled back): no abort of an ended libvirt job */
	g_task_return_new_error(rec->switchover, MIGD_ERROR, MIGD_ERROR_FAILED, "rolled back");
	g_clear_object(&rec->switchover);
	migd_test_spin_ms(50);
	assert_int_equal(rec->n_calls, 3);
	rec_free(rec);
}

static void
test_source_failure_before_pause_cancels(void **state)
{
	Rec *rec = rec_new(TRUE);

	start_migration(rec);
	/* before the switchover the devices never stopped: Rollback is not the tool */
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_STOPPED,
	       VIR_DOMAIN_EVENT_STOPPED_DESTROYED);
	assert_int_equal(rec->n_calls, 2);
	assert_string_equal(call_at(rec, 1), "cancel");
	rec_free(rec);
}

static void
test_source_rollback_refused_falls_back_to_cancel(void **state)
{
	Rec *rec = rec_new(TRUE);

	start_migration(rec);
	pause_for_switchover(rec);
	rec->refuse_rollback = TRUE;
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_RESUMED,
	       VIR_DOMAIN_EVENT_RESUMED_MIGRATED);
	assert_int_equal(rec->n_calls, 3);
	assert_string_equal(call_at(rec, 2), "cancel");
	rec_free(rec);
}

static void
test_source_device_failure_aborts_libvirt(void **state)
{
	Rec *rec = rec_new(TRUE);
	g_autofree gchar *want = g_strdup_printf("abort-libvirt %s", test_uuid);

	start_migration(rec);
	/* the device job fails during pre-copy: libvirt must not migrate without it */
	migd_job_complete(rec->job, FALSE, "device sim1 failed");
	assert_int_equal(rec->n_calls, 2);
	assert_string_equal(call_at(rec, 1), want);
	/* libvirt's job then fails: the job is gone, nothing more to do */
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_RESUMED,
	       VIR_DOMAIN_EVENT_RESUMED_MIGRATED);
	assert_int_equal(rec->n_calls, 2);
	rec_free(rec);
}

static void
test_source_switchover_failure_aborts_libvirt(void **state)
{
	Rec *rec = rec_new(TRUE);
	g_autofree gchar *want = g_strdup_printf("abort-libvirt %s", test_uuid);

	start_migration(rec);
	pause_for_switchover(rec);
	/* the devices are RUNNING again: libvirt must resume the guest here too */
	g_task_return_new_error(rec->switchover, MIGD_ERROR, MIGD_ERROR_FAILED,
				"sim0: STOP_COPY failed");
	g_clear_object(&rec->switchover);
	assert_true(migd_test_wait_count(&rec->n_calls, 3, WAIT_MS));
	assert_string_equal(call_at(rec, 2), want);
	/* and only once, when the job then fails too */
	migd_job_complete(rec->job, FALSE, "switchover failed");
	migd_test_spin_ms(50);
	assert_int_equal(rec->n_calls, 3);
	rec_free(rec);
}

static void
test_source_read_only_does_not_abort(void **state)
{
	Rec *rec = rec_new(FALSE);

	start_migration(rec);
	migd_job_complete(rec->job, FALSE, "device sim1 failed");
	migd_test_spin_ms(50);
	assert_int_equal(rec->n_calls, 1);
	rec_free(rec);
}

static void
test_source_migrate_refused(void **state)
{
	Rec *rec = rec_new(TRUE);

	rec->fail_migrate = TRUE;
	start_migration(rec);
	/* no job: the pause and the end have nothing to drive */
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_SUSPENDED,
	       VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED);
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_RESUMED,
	       VIR_DOMAIN_EVENT_RESUMED_MIGRATED);
	assert_int_equal(rec->n_calls, 1);
	rec_free(rec);
}

/* ---- destination ---- */

static MigdJob *
incoming_job(Rec *rec, const gchar *migration_id, MigdStartMode start)
{
	MigdJob *job = migd_job_new(MIGD_JOB_ROLE_DESTINATION, "3");

	migd_job_set_control(job, &destination_control, rec);
	migd_job_set_migration_id(job, migration_id);
	migd_job_set_start_mode(job, start);
	g_signal_connect(job, "cancel-requested", G_CALLBACK(on_cancel_requested), rec);
	migd_job_set_phase(job, MIGD_JOB_PHASE_PRECOPY);
	return job;
}

static void
test_destination_resume_starts(void **state)
{
	Rec *rec = rec_new(FALSE);
	g_autofree gchar *upper = g_ascii_strup(test_uuid, -1);
	g_autoptr(MigdJob) job = incoming_job(rec, upper, MIGD_START_MANUAL);

	/* the manager announces the incoming job of the hook's expectation */
	g_signal_emit_by_name(rec->manager, "job-added", (guint64)3, job);
	/* libvirt resumes the guest before the destination loaded every device */
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_STARTED,
	       VIR_DOMAIN_EVENT_STARTED_MIGRATED);
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_RESUMED,
	       VIR_DOMAIN_EVENT_RESUMED_MIGRATED);
	assert_int_equal(rec->n_calls, 0);
	/* the handover: now Start */
	migd_job_set_phase(job, MIGD_JOB_PHASE_HANDOVER);
	assert_int_equal(rec->n_calls, 1);
	assert_string_equal(call_at(rec, 0), "start");
	/* once only */
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_RESUMED,
	       VIR_DOMAIN_EVENT_RESUMED_UNPAUSED);
	assert_int_equal(rec->n_calls, 1);
	migd_job_complete(job, TRUE, "running");
	rec_free(rec);
}

static void
test_destination_stopped_abandons(void **state)
{
	Rec *rec = rec_new(FALSE);
	g_autoptr(MigdJob) job = incoming_job(rec, test_uuid, MIGD_START_MANUAL);

	g_signal_emit_by_name(rec->manager, "job-added", (guint64)3, job);
	migd_job_set_phase(job, MIGD_JOB_PHASE_HANDOVER);
	/* no resume: nothing starts */
	assert_int_equal(rec->n_calls, 0);
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_STOPPED,
	       VIR_DOMAIN_EVENT_STOPPED_FAILED);
	assert_int_equal(rec->n_calls, 1);
	assert_string_equal(call_at(rec, 0), "abandon");
	/* a resume after that starts nothing */
	inject(rec, MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_RESUMED,
	       VIR_DOMAIN_EVENT_RESUMED_MIGRATED);
	assert_int_equal(rec->n_calls, 1);
	migd_job_complete(job, FALSE, "abandoned");
	rec_free(rec);
}

static void
test_destination_ignores_other_jobs(void **state)
{
	Rec *rec = rec_new(FALSE);
	g_autoptr(MigdJob) automatic = incoming_job(rec, test_uuid, MIGD_START_AUTO);
	g_autoptr(MigdJob) untagged = incoming_job(rec, NULL, MIGD_START_MANUAL);
	g_autoptr(MigdJob) other = incoming_job(rec, "another-vm", MIGD_START_MANUAL);
	g_autoptr(MigdLibvirtIncoming) incoming = migd_libvirt_incoming_new(rec->manager);

	migd_libvirt_incoming_add_job(incoming, 1, automatic);
	migd_libvirt_incoming_add_job(incoming, 2, untagged);
	assert_int_equal(migd_libvirt_incoming_get_n_jobs(incoming), 0);
	migd_libvirt_incoming_add_job(incoming, 3, other);
	assert_int_equal(migd_libvirt_incoming_get_n_jobs(incoming), 1);
	migd_job_set_phase(other, MIGD_JOB_PHASE_HANDOVER);
	/* another domain's resume and stop: not this job's */
	migd_libvirt_incoming_handle_event(incoming, test_uuid, "test", VIR_DOMAIN_EVENT_RESUMED,
					   VIR_DOMAIN_EVENT_RESUMED_MIGRATED);
	migd_libvirt_incoming_handle_event(incoming, test_uuid, "test", VIR_DOMAIN_EVENT_STOPPED,
					   VIR_DOMAIN_EVENT_STOPPED_FAILED);
	assert_int_equal(rec->n_calls, 0);
	/* a finished job is forgotten */
	migd_job_complete(other, FALSE, "cancelled");
	assert_int_equal(migd_libvirt_incoming_get_n_jobs(incoming), 0);
	migd_libvirt_incoming_handle_event(incoming, "another-vm", "vm", VIR_DOMAIN_EVENT_RESUMED,
					   VIR_DOMAIN_EVENT_RESUMED_MIGRATED);
	assert_int_equal(rec->n_calls, 0);
	rec_free(rec);
}

static void
test_destination_abandon_before_handover_cancels(void **state)
{
	Rec *rec = rec_new(FALSE);
	g_autoptr(MigdJob) job = migd_job_new(MIGD_JOB_ROLE_DESTINATION, "4");
	g_autoptr(MigdLibvirtIncoming) incoming = migd_libvirt_incoming_new(rec->manager);

	/* an engine without Abandon (no control installed): a cancel resets the devices */
	migd_job_set_migration_id(job, test_uuid);
	migd_job_set_start_mode(job, MIGD_START_MANUAL);
	g_signal_connect(job, "cancel-requested", G_CALLBACK(on_cancel_requested), rec);
	migd_libvirt_incoming_add_job(incoming, 4, job);
	migd_libvirt_incoming_handle_event(incoming, test_uuid, "test", VIR_DOMAIN_EVENT_STOPPED,
					   VIR_DOMAIN_EVENT_STOPPED_DESTROYED);
	assert_int_equal(rec->n_calls, 1);
	assert_string_equal(call_at(rec, 0), "cancel");
	rec_free(rec);
}

static gboolean
calls_contain(Rec *rec, const gchar *call)
{
	for (guint i = 0; i < rec->calls->len; i++) {
		if (g_strcmp0(g_ptr_array_index(rec->calls, i), call) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
test_destination_resync_after_reconnect(void **state)
{
	Rec *rec = rec_new(FALSE);
	MigdLibvirtWatcher *watcher = migd_libvirt_bridge_get_watcher(rec->bridge);
	g_autoptr(MigdJob) running = incoming_job(rec, test_uuid, MIGD_START_MANUAL);
	g_autoptr(MigdJob) gone =
	    incoming_job(rec, "00000000-0000-4000-8000-00000000dead", MIGD_START_MANUAL);
	guint attempts;

	g_signal_emit_by_name(rec->manager, "job-added", (guint64)3, running);
	g_signal_emit_by_name(rec->manager, "job-added", (guint64)4, gone);
	migd_job_set_phase(running, MIGD_JOB_PHASE_HANDOVER);
	migd_job_set_phase(gone, MIGD_JOB_PHASE_HANDOVER);
	/* the connection drops: whatever libvirt said meanwhile is lost */
	migd_libvirt_watcher_set_backoff(watcher, 20, 100);
	attempts = migd_libvirt_watcher_get_connect_attempts(watcher);
	migd_libvirt_watcher_simulate_close(watcher, VIR_CONNECT_CLOSE_REASON_EOF);
	assert_true(migd_test_wait_count(&rec->n_calls, 2, WAIT_MS));
	assert_true(migd_libvirt_watcher_get_connect_attempts(watcher) > attempts);
	/* asked after the reconnection: "test" runs, the other domain is gone */
	assert_true(calls_contain(rec, "start"));
	assert_true(calls_contain(rec, "abandon"));
	migd_test_spin_ms(50);
	assert_int_equal(rec->n_calls, 2);
	migd_job_complete(running, TRUE, "running");
	migd_job_complete(gone, FALSE, "abandoned");
	rec_free(rec);
}

static void
test_config_refused(void **state)
{
	g_autoptr(GKeyFile) config = g_key_file_new();
	g_autoptr(GPtrArray) devices = g_ptr_array_new();
	g_autoptr(MigdManager) manager = migd_manager_new(devices);
	g_autoptr(GError) error = NULL;

	assert_true(g_key_file_load_from_data(config,
					      "[libvirt]\nuri=" TEST_URI "\nhandover-timeout-s=0\n",
					      -1, G_KEY_FILE_NONE, NULL));
	assert_null(migd_libvirt_bridge_new(config, manager, &error));
	assert_non_null(error);
	assert_non_null(strstr(error->message, "handover-timeout-s"));
}

static int
group_setup(void **state)
{
	g_autoptr(GError) error = NULL;
	virConnectPtr conn;
	virDomainPtr dom;

	if (!migd_libvirt_loop_register(&error)) {
		g_printerr("%s\n", error->message);
		return -1;
	}
	conn = virConnectOpen(TEST_URI);
	if (conn == NULL)
		return -1;
	dom = virDomainLookupByName(conn, "test");
	if (dom == NULL || virDomainGetUUIDString(dom, test_uuid) < 0)
		return -1;
	virDomainFree(dom);
	virConnectClose(conn);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_source_success),
	    cmocka_unit_test(test_source_resumed_after_pause_rolls_back),
	    cmocka_unit_test(test_source_failed_job_rolls_back),
	    cmocka_unit_test(test_source_failure_before_pause_cancels),
	    cmocka_unit_test(test_source_rollback_refused_falls_back_to_cancel),
	    cmocka_unit_test(test_source_device_failure_aborts_libvirt),
	    cmocka_unit_test(test_source_switchover_failure_aborts_libvirt),
	    cmocka_unit_test(test_source_read_only_does_not_abort),
	    cmocka_unit_test(test_source_migrate_refused),
	    cmocka_unit_test(test_destination_resume_starts),
	    cmocka_unit_test(test_destination_stopped_abandons),
	    cmocka_unit_test(test_destination_ignores_other_jobs),
	    cmocka_unit_test(test_destination_abandon_before_handover_cancels),
	    cmocka_unit_test(test_destination_resync_after_reconnect),
	    cmocka_unit_test(test_config_refused),
	};

	return cmocka_run_group_tests_name("libvirt-bridge", tests, group_setup, NULL);
}
