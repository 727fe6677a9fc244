/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * How a job ended (Job.Outcome: completed, failed, cancelled, rolled-back) and
 * the listener's lifetime (Manager.StopListening, ListListeners), over D-Bus
 * and through vfio-migctl (listen --stop, status, watch).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "dbus-test-util.h"

#define SRC_NAME "org.vfiomigd.Test.OutcomeSource"
#define DST_NAME "org.vfiomigd.Test.OutcomeDestination"

typedef struct {
	DtDaemon *src;
	DtDaemon *dst;
} Pair;

static Pair *
pair_new(void **state, const gchar *const *src_specs, const gchar *const *dst_specs)
{
	Pair *pair = g_new0(Pair, 1);

	*state = pair;
	if (src_specs != NULL)
		pair->src = dt_daemon_start(SRC_NAME, src_specs);
	pair->dst = dt_daemon_start(DST_NAME, dst_specs);
	return pair;
}

static int
teardown(void **state)
{
	Pair *pair = *state;

	if (pair == NULL)
		return 0;
	if (pair->src != NULL)
		dt_daemon_stop(pair->src);
	if (pair->dst != NULL)
		dt_daemon_stop(pair->dst);
	g_free(pair);
	*state = NULL;
	return 0;
}

/* Listen(a fresh unix address, {"plain": true, "start": @start}) */
static gchar *
listen_start(DtDaemon *d, const gchar *start)
{
	g_auto(GVariantBuilder) options = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	g_autofree gchar *address = dt_unused_unix_address();
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	gchar *bound = NULL;

	g_variant_builder_add(&options, "{sv}", "plain", g_variant_new_boolean(TRUE));
	g_variant_builder_add(&options, "{sv}", "start", g_variant_new_string(start));
	reply = dt_manager_call(d, "Listen", g_variant_new("(sa{sv})", address, &options), &error);
	if (reply == NULL)
		fail_msg("Listen: %s", error->message);
	g_variant_get(reply, "(s)", &bound);
	return bound;
}

/* Migrate(all devices, {"plain": true, "switchover": @switchover}) -> the job path */
static gchar *
migrate(DtDaemon *src, const gchar *address, const gchar *switchover)
{
	g_auto(GVariantBuilder) options = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	const gchar *const all[] = {NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	gchar *job = NULL;

	g_variant_builder_add(&options, "{sv}", "plain", g_variant_new_boolean(TRUE));
	if (switchover != NULL)
		g_variant_builder_add(&options, "{sv}", "switchover",
				      g_variant_new_string(switchover));
	reply = dt_manager_call(src, "Migrate",
				g_variant_new("(s^asa{sv})", address, all, &options), &error);
	if (reply == NULL)
		fail_msg("Migrate: %s", error->message);
	g_variant_get(reply, "(o)", &job);
	return job;
}

static gchar *
job_outcome(DtDaemon *d, const gchar *job)
{
	g_autoptr(GVariant) v = dt_get_property(d, job, DT_JOB_IFACE, "Outcome");
	return g_variant_dup_string(v, NULL);
}

static gboolean
job_call(DtDaemon *d, const gchar *job, const gchar *method, GError **error)
{
	g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
	    dt_connection(), d->bus_name, job, DT_JOB_IFACE, method, NULL, NULL,
	    G_DBUS_CALL_FLAGS_NONE, DT_TIMEOUT_S * 1000, NULL, error);
	return reply != NULL;
}

static void
job_call_ok(DtDaemon *d, const gchar *job, const gchar *method)
{
	g_autoptr(GError) error = NULL;

	if (!job_call(d, job, method, &error))
		fail_msg("%s on %s: %s", method, job, error->message);
}

/* ListListeners -> the addresses (g_strfreev) */
static gchar **
list_listeners(DtDaemon *d)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = dt_manager_call(d, "ListListeners", NULL, &error);
	gchar **addresses = NULL;

	if (reply == NULL)
		fail_msg("ListListeners: %s", error->message);
	g_variant_get(reply, "(^as)", &addresses);
	return addresses;
}

static gboolean
stop_listening(DtDaemon *d, GError **error)
{
	g_autoptr(GVariant) reply = dt_manager_call(d, "StopListening", NULL, error);
	return reply != NULL;
}

/* vfio-migctl watch --json JOB on a finished job: its "outcome" */
static gchar *
migctl_watch_outcome(DtDaemon *d, const gchar *job)
{
	g_autofree gchar *out = NULL;
	g_autoptr(JsonNode) node = NULL;
	JsonObject *object;

	dt_migctl(d->bus_name, &out, "--json", "watch", job, NULL);
	node = dt_json_line(out);
	object = json_node_get_object(node);
	assert_true(json_object_has_member(object, "outcome"));
	return g_strdup(json_object_get_string_member(object, "outcome"));
}

static void
wait_converged(DtDaemon *d, const gchar *job)
{
	for (guint i = 0; i < DT_TIMEOUT_S * 10; i++) {
		g_autoptr(GVariant) v = dt_get_property(d, job, DT_JOB_IFACE, "Converged");
		if (g_variant_get_boolean(v))
			return;
		g_usleep(100 * 1000);
	}
	fail_msg("job %s never converged", job);
}

/* a source that does not dirty its state: it converges at once */
static const gchar *const small_src[] = {"mlx5:state_size=4M,seed=1", NULL};
static const gchar *const small_dst[] = {"mlx5:seed=101", NULL};
/* 64 MiB at 16 MiB/s: seconds to act in while it runs */
static const gchar *const slow_src[] = {"mlx5:state_size=64M,seed=1,save_rate=16M", NULL};
static const gchar *const slow_dst[] = {"mlx5:state_size=64M,seed=5", NULL};

static void
test_outcome_completed(void **state)
{
	Pair *pair = pair_new(state, small_src, small_dst);
	g_autofree gchar *address = dt_listen_plain(pair->dst);
	g_autofree gchar *job = migrate(pair->src, address, NULL);
	g_autofree gchar *outcome = NULL;
	g_autofree gchar *watched = NULL;
	g_autofree gchar *dst_final = NULL;
	g_autofree gchar *dst_outcome = NULL;

	assert_true(dt_job_wait_completed(pair->src, job, NULL));
	outcome = job_outcome(pair->src, job);
	assert_string_equal(outcome, "completed");
	dst_final = dt_job_wait_final(pair->dst, "/org/vfiomigd/Migd1/jobs/1");
	assert_string_equal(dst_final, "completed");
	dst_outcome = job_outcome(pair->dst, "/org/vfiomigd/Migd1/jobs/1");
	assert_string_equal(dst_outcome, "completed");
	watched = migctl_watch_outcome(pair->src, job);
	assert_string_equal(watched, "completed");
}

static void
test_outcome_failed(void **state)
{
	/* the source device cannot enter PRE_COPY: a device fault, nobody asked for it */
	const gchar *const src[] = {"hisi_acc:seed=1,fail_arc=RUNNING->PRE_COPY,fail_errno=EIO",
				    NULL};
	const gchar *const dst[] = {"hisi_acc:seed=2", NULL};
	Pair *pair = pair_new(state, src, dst);
	g_autofree gchar *address = dt_listen_plain(pair->dst);
	g_autofree gchar *job = migrate(pair->src, address, NULL);
	g_autofree gchar *outcome = NULL;
	g_autofree gchar *watched = NULL;
	g_autoptr(GVariant) rolled_back = NULL;

	assert_false(dt_job_wait_completed(pair->src, job, NULL));
	outcome = job_outcome(pair->src, job);
	assert_string_equal(outcome, "failed");
	rolled_back = dt_get_property(pair->src, job, DT_JOB_IFACE, "RolledBack");
	assert_false(g_variant_get_boolean(rolled_back));
	watched = migctl_watch_outcome(pair->src, job);
	assert_string_equal(watched, "failed");
}

static void
test_outcome_cancelled(void **state)
{
	Pair *pair = pair_new(state, slow_src, slow_dst);
	g_autofree gchar *address = dt_listen_plain(pair->dst);
	g_autofree gchar *job = migrate(pair->src, address, NULL);
	g_autofree gchar *running = NULL;
	g_autofree gchar *dst_final = NULL;
	g_autofree gchar *dst_outcome = NULL;
	g_autofree gchar *outcome = NULL;
	g_autofree gchar *watched = NULL;
	g_autofree gchar *text = NULL;

	g_usleep(300 * 1000);
	/* "" while it runs */
	running = job_outcome(pair->src, job);
	assert_string_equal(running, "");
	job_call_ok(pair->src, job, "Cancel");
	assert_false(dt_job_wait_completed(pair->src, job, NULL));
	outcome = job_outcome(pair->src, job);
	assert_string_equal(outcome, "cancelled");
	/* the destination learnt it from the source's Abort */
	dst_final = dt_job_wait_final(pair->dst, "/org/vfiomigd/Migd1/jobs/1");
	assert_string_equal(dst_final, "failed");
	dst_outcome = job_outcome(pair->dst, "/org/vfiomigd/Migd1/jobs/1");
	assert_string_equal(dst_outcome, "cancelled");
	watched = migctl_watch_outcome(pair->src, job);
	assert_string_equal(watched, "cancelled");
	/* and in words */
	assert_int_equal(dt_migctl(pair->src->bus_name, &text, "watch", job, NULL), 1);
	if (strstr(text, "Migration cancelled") == NULL)
		fail_msg("watch did not say cancelled: %s", text);
}

static void
test_outcome_rolled_back(void **state)
{
	Pair *pair = pair_new(state, small_src, small_dst);
	/* start=manual: the destination waits for Start, so the source can still roll back */
	g_autofree gchar *address = listen_start(pair->dst, "manual");
	g_autofree gchar *job = migrate(pair->src, address, "manual");
	g_autofree gchar *outcome = NULL;
	g_autofree gchar *watched = NULL;
	g_autofree gchar *jobs = NULL;

	wait_converged(pair->src, job);
	job_call_ok(pair->src, job, "Switchover");
	job_call_ok(pair->src, job, "Rollback");
	assert_false(dt_job_wait_completed(pair->src, job, NULL));
	outcome = job_outcome(pair->src, job);
	assert_string_equal(outcome, "rolled-back");
	watched = migctl_watch_outcome(pair->src, job);
	assert_string_equal(watched, "rolled-back");
	/* jobs says it once */
	assert_int_equal(dt_migctl(pair->src->bus_name, &jobs, "jobs", NULL), 0);
	if (strstr(jobs, "rolled-back") == NULL || strstr(jobs, "rolled-back,rolled-back") != NULL)
		fail_msg("jobs: %s", jobs);
}

static void
test_stop_listening(void **state)
{
	Pair *pair = pair_new(state, NULL, small_dst);
	g_auto(GStrv) none = list_listeners(pair->dst);
	g_auto(GStrv) one = NULL;
	g_auto(GStrv) after = NULL;
	g_autofree gchar *address = NULL;
	g_autofree gchar *again = NULL;
	g_autoptr(GError) error = NULL;

	assert_int_equal(g_strv_length(none), 0);
	/* not listening: nothing to stop */
	assert_false(stop_listening(pair->dst, &error));
	dt_assert_dbus_error(error, DT_MIGD_ERROR_PREFIX "InvalidArgument");
	g_clear_error(&error);

	address = dt_listen_plain(pair->dst);
	one = list_listeners(pair->dst);
	assert_int_equal(g_strv_length(one), 1);
	assert_string_equal(one[0], address);
	if (!stop_listening(pair->dst, &error))
		fail_msg("StopListening: %s", error->message);
	after = list_listeners(pair->dst);
	assert_int_equal(g_strv_length(after), 0);
	/* the socket is gone: a second stop has nothing to stop, a new Listen works */
	assert_false(stop_listening(pair->dst, &error));
	dt_assert_dbus_error(error, DT_MIGD_ERROR_PREFIX "InvalidArgument");
	again = dt_listen_plain(pair->dst);
	assert_non_null(again);
}

static void
test_stop_listening_refused(void **state)
{
	Pair *pair = pair_new(state, slow_src, slow_dst);
	g_autofree gchar *address = dt_listen_plain(pair->dst);
	g_autofree gchar *job = NULL;
	g_autofree gchar *dst_final = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) expect = NULL;
	const gchar *devices[] = {NULL, NULL};
	g_auto(GStrv) listeners = NULL;
	g_autofree gchar *names = NULL;

	/* an expectation waits on the listener */
	{
		g_autoptr(GVariant) reply = dt_manager_call(pair->dst, "ListDevices", NULL, NULL);
		g_autoptr(GVariant) list = g_variant_get_child_value(reply, 0);
		g_autoptr(GVariant) first = g_variant_get_child_value(list, 0);
		g_variant_get_child(first, 0, "s", &names);
	}
	devices[0] = names;
	expect =
	    dt_manager_call(pair->dst, "Expect",
			    g_variant_new("(s^asa{sv})", "vm-outcome-1", devices, NULL), &error);
	if (expect == NULL)
		fail_msg("Expect: %s", error->message);
	assert_false(stop_listening(pair->dst, &error));
	dt_assert_dbus_error(error, DT_MIGD_ERROR_PREFIX "Busy");
	if (strstr(error->message, "vm-outcome-1") == NULL)
		fail_msg("the refusal does not name the expectation: %s", error->message);
	g_clear_error(&error);
	g_variant_unref(dt_manager_call(pair->dst, "CancelExpectation",
					g_variant_new("(s)", "vm-outcome-1"), NULL));

	/* an incoming migration runs */
	job = migrate(pair->src, address, NULL);
	for (guint i = 0; i < DT_TIMEOUT_S * 10; i++) {
		g_autoptr(GVariant) reply = dt_manager_call(pair->dst, "ListJobs", NULL, NULL);
		g_auto(GStrv) paths = NULL;
		g_variant_get(reply, "(^ao)", &paths);
		if (paths[0] != NULL)
			break;
		g_usleep(50 * 1000);
	}
	g_usleep(200 * 1000);
	assert_false(stop_listening(pair->dst, &error));
	dt_assert_dbus_error(error, DT_MIGD_ERROR_PREFIX "Busy");
	if (strstr(error->message, "incoming migration") == NULL)
		fail_msg("the refusal does not say why: %s", error->message);
	/* refused: still listening, the migration goes on to the end */
	listeners = list_listeners(pair->dst);
	assert_int_equal(g_strv_length(listeners), 1);
	assert_true(dt_job_wait_completed(pair->src, job, NULL));
	dst_final = dt_job_wait_final(pair->dst, "/org/vfiomigd/Migd1/jobs/1");
	assert_string_equal(dst_final, "completed");
	/* once it ended, the listener can go */
	g_clear_error(&error);
	if (!stop_listening(pair->dst, &error))
		fail_msg("StopListening: %s", error->message);
}

static void
test_migctl_listen_stop_status(void **state)
{
	Pair *pair = pair_new(state, NULL, small_dst);
	const gchar *bus = pair->dst->bus_name;
	g_autofree gchar *address = dt_unused_unix_address();
	g_autofree gchar *bound = NULL;
	g_autofree gchar *status = NULL;
	g_autofree gchar *status_json = NULL;
	g_autofree gchar *stopped = NULL;
	g_autofree gchar *status_after = NULL;
	g_autofree gchar *again = NULL;
	g_autoptr(JsonNode) node = NULL;
	JsonArray *listeners;

	assert_int_equal(dt_migctl(bus, &bound, "--plain", "listen", address, NULL), 0);
	g_strchomp(bound);
	assert_int_equal(dt_migctl(bus, &status, "status", NULL), 0);
	if (strstr(status, "Listening: ") == NULL || strstr(status, bound) == NULL)
		fail_msg("status does not show the listener %s: %s", bound, status);
	assert_int_equal(dt_migctl(bus, &status_json, "--json", "status", NULL), 0);
	node = dt_json_line(status_json);
	listeners = json_object_get_array_member(json_node_get_object(node), "listeners");
	assert_int_equal(json_array_get_length(listeners), 1);
	assert_string_equal(json_array_get_string_element(listeners, 0), bound);

	assert_int_equal(dt_migctl(bus, &stopped, "listen", "--stop", NULL), 0);
	if (strstr(stopped, bound) == NULL)
		fail_msg("listen --stop does not say what stopped: %s", stopped);
	assert_int_equal(dt_migctl(bus, &status_after, "status", NULL), 0);
	if (strstr(status_after, "Listening: not listening") == NULL)
		fail_msg("status after the stop: %s", status_after);
	/* nothing left to stop: a failure */
	assert_int_not_equal(dt_migctl(bus, &again, "listen", "--stop", NULL), 0);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_outcome_completed, teardown),
	    cmocka_unit_test_teardown(test_outcome_failed, teardown),
	    cmocka_unit_test_teardown(test_outcome_cancelled, teardown),
	    cmocka_unit_test_teardown(test_outcome_rolled_back, teardown),
	    cmocka_unit_test_teardown(test_stop_listening, teardown),
	    cmocka_unit_test_teardown(test_stop_listening_refused, teardown),
	    cmocka_unit_test_teardown(test_migctl_listen_stop_status, teardown),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests_name("dbus-outcome", tests, dt_bus_up, dt_bus_down);
}
