/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * VM-coordinated migrations through vfio-migd daemons on a private bus,
 * driven step by step as a VMM would (docs/ABI/testing/dbus-api): the source
 * pre-copies until Switchover (switchover "manual"), the destination devices
 * wait in STOP until Start (start "manual"); rollback after the switchover
 * (Rollback, destination Abandon, the destination killed, the handover
 * timeout) brings the source devices back with their state; expectations
 * route two VMs' devices into one destination and refuse an unknown one;
 * SyncDirtyBitmap hands the VMM the pages the device dirtied; vfio-migctl
 * plays the VMM once.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gunixfdlist.h>
#include <string.h>
#include <unistd.h>

#include "dbus-test-util.h"
#include "migd-dirty-bitmap-file.h"

#define SRC_NAME  "org.vfiomigd.Test.CoordSource"
#define SRC2_NAME "org.vfiomigd.Test.CoordSource2"
#define SRC3_NAME "org.vfiomigd.Test.CoordSource3"
#define DST_NAME  "org.vfiomigd.Test.CoordDestination"

/* Switchover and Start may take seconds: longer than GDBus's 25 s default, to be safe */
#define LONG_CALL_MS (DT_TIMEOUT_S * 2 * 1000)

typedef struct {
	DtDaemon *src;
	DtDaemon *src2;
	DtDaemon *src3;
	DtDaemon *dst;
	gchar *dir;
} Daemons;

static int
teardown(void **state)
{
	Daemons *d = *state;

	if (d == NULL)
		return 0;
	dt_daemon_stop(d->src);
	dt_daemon_stop(d->src2);
	dt_daemon_stop(d->src3);
	dt_daemon_stop(d->dst);
	if (d->dir != NULL) {
		g_autofree gchar *conf = g_build_filename(d->dir, "src.conf", NULL);
		unlink(conf);
		rmdir(d->dir);
		g_free(d->dir);
	}
	g_free(d);
	return 0;
}

static Daemons *
daemons_new(void **state, const gchar *const *src_specs, const gchar *const *dst_specs)
{
	Daemons *d = g_new0(Daemons, 1);

	*state = d;
	if (src_specs != NULL)
		d->src = dt_daemon_start(SRC_NAME, src_specs);
	d->dst = dt_daemon_start(DST_NAME, dst_specs);
	return d;
}

static GVariant *
no_options(void)
{
	return g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
}

/* Listen(a fresh unix:@ address, {"plain": true, "start": @start}) -> the bound address */
static gchar *
listen_start(DtDaemon *dst, const gchar *start)
{
	g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	g_autofree gchar *address = dt_unused_unix_address();
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	gchar *bound = NULL;

	g_variant_builder_add(&b, "{sv}", "plain", g_variant_new_boolean(TRUE));
	g_variant_builder_add(&b, "{sv}", "start", g_variant_new_string(start));
	reply = dt_manager_call(dst, "Listen", g_variant_new("(sa{sv})", address, &b), &error);
	if (reply == NULL)
		fail_msg("Listen: %s", error->message);
	g_variant_get(reply, "(s)", &bound);
	return bound;
}

/* Expect(@id, @devices, {"start": @start}) -> the address to dial */
static gchar *
expect(DtDaemon *dst, const gchar *id, const gchar *const *devices, const gchar *start)
{
	g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	gchar *address = NULL;

	if (start != NULL)
		g_variant_builder_add(&b, "{sv}", "start", g_variant_new_string(start));
	reply =
	    dt_manager_call(dst, "Expect", g_variant_new("(s^asa{sv})", id, devices, &b), &error);
	if (reply == NULL)
		fail_msg("Expect(%s): %s", id, error->message);
	g_variant_get(reply, "(s)", &address);
	assert_true(g_str_has_prefix(address, "unix:"));
	return address;
}

/*
 * Migrate(@address, all devices, {"plain": true, "switchover": @switchover,
 * "migration-id": @id (NULL: none), "handover-timeout": @handover_s (0: none)})
 */
static gchar *
migrate(DtDaemon *src, const gchar *address, const gchar *switchover, const gchar *id,
	guint handover_s)
{
	g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	const gchar *const all[] = {NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	gchar *job = NULL;

	g_variant_builder_add(&b, "{sv}", "plain", g_variant_new_boolean(TRUE));
	g_variant_builder_add(&b, "{sv}", "switchover", g_variant_new_string(switchover));
	if (id != NULL)
		g_variant_builder_add(&b, "{sv}", "migration-id", g_variant_new_string(id));
	if (handover_s > 0)
		g_variant_builder_add(&b, "{sv}", "handover-timeout",
				      g_variant_new_uint32(handover_s));
	reply =
	    dt_manager_call(src, "Migrate", g_variant_new("(s^asa{sv})", address, all, &b), &error);
	if (reply == NULL)
		fail_msg("Migrate: %s", error->message);
	g_variant_get(reply, "(o)", &job);
	return job;
}

/* a Job method without arguments, with a bound longer than the engine's */
static gboolean
job_call(DtDaemon *d, const gchar *path, const gchar *method, GError **error)
{
	g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
	    dt_connection(), d->bus_name, path, DT_JOB_IFACE, method, NULL, NULL,
	    G_DBUS_CALL_FLAGS_NONE, LONG_CALL_MS, NULL, error);
	return reply != NULL;
}

static void
job_call_ok(DtDaemon *d, const gchar *path, const gchar *method)
{
	g_autoptr(GError) error = NULL;

	if (!job_call(d, path, method, &error))
		fail_msg("%s on %s: %s", method, path, error->message);
}

static gchar *
job_string(DtDaemon *d, const gchar *path, const gchar *name)
{
	g_autoptr(GVariant) v = dt_get_property(d, path, DT_JOB_IFACE, name);
	return g_variant_dup_string(v, NULL);
}

static gboolean
job_bool(DtDaemon *d, const gchar *path, const gchar *name)
{
	g_autoptr(GVariant) v = dt_get_property(d, path, DT_JOB_IFACE, name);
	return g_variant_get_boolean(v);
}

static void
wait_converged(DtDaemon *src, const gchar *job)
{
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;

	while (!job_bool(src, job, "Converged")) {
		g_autofree gchar *phase = job_string(src, job, "Phase");
		if (g_strcmp0(phase, "completed") == 0 || g_strcmp0(phase, "failed") == 0)
			fail_msg("job %s ended (%s) before it converged", job, phase);
		if (g_get_monotonic_time() > deadline)
			fail_msg("job %s did not converge within %d s", job, DT_TIMEOUT_S);
		g_usleep(50 * 1000);
	}
}

/* the path of @d's job whose MigrationId is @id (or, @id NULL, of its first job) */
static gchar *
find_job(DtDaemon *d, const gchar *id)
{
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) reply = dt_manager_call(d, "ListJobs", NULL, &error);
		g_autofree const gchar **paths = NULL;

		if (reply == NULL)
			fail_msg("ListJobs: %s", error->message);
		g_variant_get(reply, "(^a&o)", &paths);
		for (guint i = 0; paths[i] != NULL; i++) {
			g_autofree gchar *job_id = job_string(d, paths[i], "MigrationId");
			if (id == NULL || g_strcmp0(job_id, id) == 0)
				return g_strdup(paths[i]);
		}
		g_usleep(50 * 1000);
	}
	fail_msg("no job for migration %s", id != NULL ? id : "(any)");
	return NULL;
}

/* an expectation ends with its session: soon after the job */
static void
wait_no_expectations(DtDaemon *dst)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) r = dt_manager_call(dst, "ListExpectations", NULL, &error);
		g_auto(GStrv) left = NULL;

		if (r == NULL)
			fail_msg("ListExpectations: %s", error->message);
		g_variant_get(r, "(^as)", &left);
		if (g_strv_length(left) == 0)
			return;
		if (g_get_monotonic_time() > deadline)
			fail_msg("expectation %s still listed", left[0]);
		g_usleep(50 * 1000);
	}
}

static void
assert_states(DtDaemon *d, const gchar *expected, const gchar *what)
{
	guint n = dt_n_devices(d);

	for (guint i = 0; i < n; i++) {
		g_autofree gchar *state = dt_device_state(d, i);
		if (g_strcmp0(state, expected) != 0)
			fail_msg("%s: device %u is %s, not %s", what, i, state, expected);
	}
}

static guint64 *
digests(DtDaemon *d)
{
	guint n = dt_n_devices(d);
	guint64 *v = g_new0(guint64, n);

	for (guint i = 0; i < n; i++)
		v[i] = dt_device_digest(d, i);
	return v;
}

/*
 * The whole coordinated flow: Expect with start=manual, Migrate with
 * switchover=manual and the migration id, several seconds of pre-copy with
 * every source device still RUNNING/PRE_COPY, Switchover returning with the
 * destination devices in STOP, none RUNNING before Start, then Start: the
 * source job completes as handed over and the state arrived.
 */
static void
test_coordinated_step_by_step(void **state)
{
	const gchar *const src_specs[] = {"mlx5:state_size=16M,seed=1,dirty_rate=4M",
					  "mlx5:state_size=8M,seed=2", "hisi_acc:seed=3", NULL};
	const gchar *const dst_specs[] = {"mlx5:state_size=16M,seed=101",
					  "mlx5:state_size=8M,seed=102", "hisi_acc:seed=103", NULL};
	const gchar *const devices[] = {"sim0", "sim1", "sim2", NULL};
	Daemons *d = daemons_new(state, src_specs, dst_specs);
	g_autofree gchar *listen = listen_start(d->dst, "auto");
	g_autofree gchar *address = expect(d->dst, "vm-a", devices, "manual");
	g_autofree gchar *job = migrate(d->src, address, "manual", "vm-a", 0);
	g_autofree gchar *dst_job = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *final = NULL;
	g_autoptr(GVariant) names = NULL;
	gint64 until = g_get_monotonic_time() + 4 * G_USEC_PER_SEC;

	/* pre-copy runs for seconds, and no source device stops on its own */
	while (g_get_monotonic_time() < until) {
		guint n = dt_n_devices(d->src);
		g_autofree gchar *phase = job_string(d->src, job, "Phase");

		for (guint i = 0; i < n; i++) {
			g_autofree gchar *s = dt_device_state(d->src, i);
			if (g_strcmp0(s, "RUNNING") != 0 && g_strcmp0(s, "PRE_COPY") != 0)
				fail_msg("source device %u is %s before Switchover", i, s);
		}
		if (g_strcmp0(phase, "connecting") != 0 && g_strcmp0(phase, "negotiating") != 0 &&
		    g_strcmp0(phase, "precopy") != 0)
			fail_msg("source job in %s before Switchover", phase);
		g_usleep(100 * 1000);
	}
	wait_converged(d->src, job);
	{
		g_autofree gchar *mode = job_string(d->src, job, "SwitchoverMode");
		g_autofree gchar *id = job_string(d->src, job, "MigrationId");
		assert_string_equal(mode, "manual");
		assert_string_equal(id, "vm-a");
	}
	dst_job = find_job(d->dst, "vm-a");
	{
		guint n = dt_n_devices(d->dst);
		for (guint i = 0; i < n; i++) {
			g_autofree gchar *s = dt_device_state(d->dst, i);
			assert_string_not_equal(s, "RUNNING");
		}
	}

	/* Switchover returns once the destination loaded every device: all in STOP */
	job_call_ok(d->src, job, "Switchover");
	assert_states(d->dst, "STOP", "destination after Switchover");
	assert_states(d->src, "STOP", "source after Switchover");
	final = job_string(d->src, job, "Phase");
	assert_string_equal(final, "handover");
	g_clear_pointer(&final, g_free);
	final = job_string(d->dst, dst_job, "Phase");
	assert_string_equal(final, "handover");
	g_clear_pointer(&final, g_free);
	{
		g_autofree gchar *start = job_string(d->dst, dst_job, "StartMode");
		assert_string_equal(start, "manual");
	}
	names = dt_get_property(d->dst, dst_job, DT_JOB_IFACE, "DeviceNames");
	{
		g_autofree const gchar **strv = g_variant_get_strv(names, NULL);
		assert_int_equal(g_strv_length((gchar **)strv), 3);
		assert_string_equal(strv[0], "sim0");
		assert_string_equal(strv[2], "sim2");
	}

	/* nothing runs before Start, however long the VMM takes */
	g_usleep(G_USEC_PER_SEC);
	assert_states(d->dst, "STOP", "destination before Start");
	final = job_string(d->src, job, "Phase");
	assert_string_equal(final, "handover");
	g_clear_pointer(&final, g_free);

	job_call_ok(d->dst, dst_job, "Start");
	assert_states(d->dst, "RUNNING", "destination after Start");
	if (!dt_job_wait_completed(d->src, job, &message))
		fail_msg("source job failed: %s", message);
	final = dt_job_wait_final(d->dst, dst_job);
	assert_string_equal(final, "completed");
	assert_false(job_bool(d->src, job, "RolledBack"));
	for (guint i = 0; i < 3; i++)
		assert_true(dt_device_digest(d->dst, i) == dt_device_digest(d->src, i));
	/* the expectation ended with its session */
	wait_no_expectations(d->dst);
}

/* after Switchover and a rollback: the source devices RUNNING with their state, the
 * destination's reset (RUNNING, the job failed) */
static void
assert_rolled_back(Daemons *d, const gchar *job, const gchar *dst_job, const guint64 *before)
{
	g_autofree gchar *message = NULL;
	g_autofree gchar *final = NULL;
	guint n = dt_n_devices(d->src);

	assert_false(dt_job_wait_completed(d->src, job, &message));
	assert_true(job_bool(d->src, job, "RolledBack"));
	assert_states(d->src, "RUNNING", "source after the rollback");
	for (guint i = 0; i < n; i++)
		assert_true(dt_device_digest(d->src, i) == before[i]);
	if (d->dst != NULL && dst_job != NULL) {
		final = dt_job_wait_final(d->dst, dst_job);
		assert_string_equal(final, "failed");
		assert_states(d->dst, "RUNNING", "destination after the rollback");
	}
}

/* a source that does not dirty its state, so its digest proves the rollback kept it */
static const gchar *const rb_src_specs[] = {"mlx5:state_size=8M,seed=1",
					    "mlx5:state_size=4M,seed=2", NULL};
static const gchar *const rb_dst_specs[] = {"mlx5:seed=101", "mlx5:seed=102", NULL};

/* Listen's start=manual (no expectation, untagged), Migrate with switchover=manual,
 * Switchover: both sides wait in "handover" */
static void
switched_over(Daemons *d, guint handover_s, gchar **job, gchar **dst_job)
{
	g_autofree gchar *address = listen_start(d->dst, "manual");

	*job = migrate(d->src, address, "manual", NULL, handover_s);
	wait_converged(d->src, *job);
	job_call_ok(d->src, *job, "Switchover");
	*dst_job = find_job(d->dst, NULL);
	assert_states(d->dst, "STOP", "destination after Switchover");
	assert_states(d->src, "STOP", "source after Switchover");
}

static void
test_rollback_after_switchover(void **state)
{
	Daemons *d = daemons_new(state, rb_src_specs, rb_dst_specs);
	g_autofree guint64 *before = digests(d->src);
	g_autofree gchar *job = NULL;
	g_autofree gchar *dst_job = NULL;
	g_autoptr(GError) error = NULL;

	switched_over(d, 0, &job, &dst_job);
	job_call_ok(d->src, job, "Rollback");
	assert_rolled_back(d, job, dst_job, before);
	/* the destination's Start has nothing to start any more */
	assert_false(job_call(d->dst, dst_job, "Start", &error));
}

static void
test_destination_abandon(void **state)
{
	Daemons *d = daemons_new(state, rb_src_specs, rb_dst_specs);
	g_autofree guint64 *before = digests(d->src);
	g_autofree gchar *job = NULL;
	g_autofree gchar *dst_job = NULL;

	switched_over(d, 0, &job, &dst_job);
	job_call_ok(d->dst, dst_job, "Abandon");
	assert_rolled_back(d, job, dst_job, before);
}

static void
test_destination_killed_after_commit(void **state)
{
	Daemons *d = daemons_new(state, rb_src_specs, rb_dst_specs);
	g_autofree guint64 *before = digests(d->src);
	g_autofree gchar *job = NULL;
	g_autofree gchar *dst_job = NULL;

	switched_over(d, 0, &job, &dst_job);
	dt_daemon_crash(d->dst);
	d->dst = NULL;
	assert_rolled_back(d, job, NULL, before);
}

static void
test_handover_timeout(void **state)
{
	Daemons *d = daemons_new(state, rb_src_specs, rb_dst_specs);
	g_autofree guint64 *before = digests(d->src);
	g_autofree gchar *job = NULL;
	g_autofree gchar *dst_job = NULL;
	gint64 t0;

	switched_over(d, 2, &job, &dst_job);
	t0 = g_get_monotonic_time();
	/* nobody calls Start: after 2 s the source takes its devices back */
	assert_rolled_back(d, job, dst_job, before);
	assert_true(g_get_monotonic_time() - t0 >= G_USEC_PER_SEC);
}

/*
 * Two VMs into one destination: two expectations, two sources migrating at
 * once into disjoint devices; a third source whose id nobody expects is
 * refused first, and no destination device is touched by it.
 */
static void
test_two_vms_one_destination(void **state)
{
	const gchar *const src1_specs[] = {"mlx5:state_size=8M,seed=1", "hisi_acc:seed=2", NULL};
	const gchar *const src2_specs[] = {"mlx5:state_size=4M,seed=3", "hisi_acc:seed=4", NULL};
	const gchar *const src3_specs[] = {"mlx5:state_size=4M,seed=5", NULL};
	const gchar *const dst_specs[] = {"mlx5:state_size=8M,seed=101", "hisi_acc:seed=102",
					  "mlx5:state_size=4M,seed=103", "hisi_acc:seed=104", NULL};
	const gchar *const vm1[] = {"sim0", "sim1", NULL};
	const gchar *const vm2[] = {"sim2", "sim3", NULL};
	Daemons *d = daemons_new(state, src1_specs, dst_specs);
	g_autofree gchar *listen = NULL;
	g_autofree gchar *address1 = NULL;
	g_autofree gchar *address2 = NULL;
	g_autofree gchar *job1 = NULL;
	g_autofree gchar *job2 = NULL;
	g_autofree gchar *job3 = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *message3 = NULL;
	g_autofree gchar *job3b = NULL;
	g_autofree gchar *message3b = NULL;
	g_autofree guint64 *dst_before = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_auto(GStrv) ids = NULL;

	d->src2 = dt_daemon_start(SRC2_NAME, src2_specs);
	d->src3 = dt_daemon_start(SRC3_NAME, src3_specs);
	listen = dt_listen_plain(d->dst);
	address1 = expect(d->dst, "vm-1", vm1, NULL);
	address2 = expect(d->dst, "vm-2", vm2, NULL);
	assert_string_equal(address1, address2);
	reply = dt_manager_call(d->dst, "ListExpectations", NULL, NULL);
	g_variant_get(reply, "(^as)", &ids);
	assert_int_equal(g_strv_length(ids), 2);
	assert_true(g_strv_contains((const gchar *const *)ids, "vm-1"));
	assert_true(g_strv_contains((const gchar *const *)ids, "vm-2"));

	/* an id nobody expects: refused, with the reason, nothing touched */
	dst_before = digests(d->dst);
	job3 = migrate(d->src3, address1, "auto", "vm-unknown", 0);
	assert_false(dt_job_wait_completed(d->src3, job3, &message3));
	assert_non_null(strstr(message3, "UNKNOWN_MIGRATION"));
	assert_states(d->src3, "RUNNING", "refused source");
	assert_states(d->dst, "RUNNING", "destination after the refused session");
	for (guint i = 0; i < 4; i++)
		assert_true(dt_device_digest(d->dst, i) == dst_before[i]);
	/* while expectations exist, an untagged session takes nothing either */
	job3b = migrate(d->src3, address1, "auto", NULL, 0);
	assert_false(dt_job_wait_completed(d->src3, job3b, &message3b));
	assert_states(d->src3, "RUNNING", "refused untagged source");
	for (guint i = 0; i < 4; i++)
		assert_true(dt_device_digest(d->dst, i) == dst_before[i]);

	/* two migrations at once, each into its own devices */
	job1 = migrate(d->src, address1, "auto", "vm-1", 0);
	job2 = migrate(d->src2, address2, "auto", "vm-2", 0);
	if (!dt_job_wait_completed(d->src, job1, &message))
		fail_msg("vm-1: %s", message);
	g_clear_pointer(&message, g_free);
	if (!dt_job_wait_completed(d->src2, job2, &message))
		fail_msg("vm-2: %s", message);
	for (guint i = 0; i < 2; i++) {
		assert_true(dt_device_digest(d->dst, i) == dt_device_digest(d->src, i));
		assert_true(dt_device_digest(d->dst, 2 + i) == dt_device_digest(d->src2, i));
	}
	assert_states(d->dst, "RUNNING", "destination after both");

	/* both expectations ended with their sessions */
	wait_no_expectations(d->dst);
}

/* what a reserved device refuses, CancelExpectation, and an expectation's timeout */
static void
test_expectation_lifecycle(void **state)
{
	const gchar *const dst_specs[] = {"mlx5:seed=101", "hisi_acc:seed=102", NULL};
	const gchar *const first[] = {"sim0", NULL};
	const gchar *const second[] = {"sim1", NULL};
	Daemons *d = daemons_new(state, NULL, dst_specs);
	g_autofree gchar *listen = dt_listen_plain(d->dst);
	g_autofree gchar *address = expect(d->dst, "vm-1", first, NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	g_autoptr(GError) error3 = NULL;
	g_autoptr(GError) error4 = NULL;
	g_autoptr(GError) error5 = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_auto(GVariantBuilder) timeout = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	gint64 deadline;
	gboolean busy = FALSE;

	/* sim0 is reserved: not for another expectation, not detached, not migrated out */
	reply = dt_manager_call(d->dst, "Expect",
				g_variant_new("(s^as@a{sv})", "vm-2", first, no_options()), &error);
	assert_null(reply);
	dt_assert_dbus_error(error, DT_MIGD_ERROR_PREFIX "Busy");
	reply = dt_manager_call(
	    d->dst, "Expect", g_variant_new("(s^as@a{sv})", "vm-1", second, no_options()), &error2);
	assert_null(reply);
	dt_assert_dbus_error(error2, DT_MIGD_ERROR_PREFIX "InvalidArgument");
	reply = dt_manager_call(d->dst, "DetachDevice", g_variant_new("(s)", "sim0"), &error3);
	assert_null(reply);
	dt_assert_dbus_error(error3, DT_MIGD_ERROR_PREFIX "Busy");
	reply = dt_manager_call(
	    d->dst, "Migrate",
	    g_variant_new("(s^as@a{sv})", "unix:@migd-dt-flow-nobody", first, no_options()),
	    &error4);
	assert_null(reply);
	dt_assert_dbus_error(error4, DT_MIGD_ERROR_PREFIX "Busy");
	{
		g_autoptr(GVariant) p0 = dt_device_props(d->dst, 0);
		g_autoptr(GVariant) p1 = dt_device_props(d->dst, 1);
		assert_true(g_variant_lookup(p0, "busy", "b", &busy));
		assert_true(busy);
		assert_true(g_variant_lookup(p1, "busy", "b", &busy));
		assert_false(busy);
	}

	/* cancelled: free again, and a second cancel has nothing to cancel */
	reply = dt_manager_call(d->dst, "CancelExpectation", g_variant_new("(s)", "vm-1"), NULL);
	assert_non_null(reply);
	g_clear_pointer(&reply, g_variant_unref);
	{
		g_autoptr(GVariant) p0 = dt_device_props(d->dst, 0);
		assert_true(g_variant_lookup(p0, "busy", "b", &busy));
		assert_false(busy);
	}
	reply = dt_manager_call(d->dst, "CancelExpectation", g_variant_new("(s)", "vm-1"), &error5);
	assert_null(reply);
	dt_assert_dbus_error(error5, DT_MIGD_ERROR_PREFIX "InvalidArgument");

	/* a timeout ends an expectation nobody came for */
	g_variant_builder_add(&timeout, "{sv}", "timeout", g_variant_new_uint32(1));
	reply = dt_manager_call(d->dst, "Expect",
				g_variant_new("(s^asa{sv})", "vm-3", second, &timeout), NULL);
	assert_non_null(reply);
	g_clear_pointer(&reply, g_variant_unref);
	deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	for (;;) {
		g_autoptr(GVariant) r = dt_manager_call(d->dst, "ListExpectations", NULL, NULL);
		g_auto(GStrv) left = NULL;
		g_variant_get(r, "(^as)", &left);
		if (g_strv_length(left) == 0)
			break;
		assert_string_equal(left[0], "vm-3");
		if (g_get_monotonic_time() > deadline)
			fail_msg("expectation vm-3 outlived its timeout");
		g_usleep(100 * 1000);
	}
}

/* the bytes of the memfd a call returned */
static GBytes *
read_fd_reply(GUnixFDList *fds)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) data = g_byte_array_new();
	guint8 buf[65536];
	gssize n;
	gint fd = g_unix_fd_list_get(fds, 0, &error);

	assert_true(fd >= 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		g_byte_array_append(data, buf, (guint)n);
	assert_int_equal(n, 0);
	close(fd);
	return g_byte_array_free_to_bytes(g_steal_pointer(&data));
}

static MigdDirtyFile *
sync_dirty(DtDaemon *src, const gchar *job, const gchar *device, GError **error)
{
	g_autoptr(GUnixFDList) fds = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GBytes) bytes = NULL;

	reply = g_dbus_connection_call_with_unix_fd_list_sync(
	    dt_connection(), src->bus_name, job, DT_JOB_IFACE, "SyncDirtyBitmap",
	    g_variant_new("(s)", device), G_VARIANT_TYPE("(h)"), G_DBUS_CALL_FLAGS_NONE,
	    LONG_CALL_MS, NULL, &fds, NULL, error);
	if (reply == NULL)
		return NULL;
	bytes = read_fd_reply(fds);
	return migd_dirty_file_parse(bytes, error);
}

/* SyncDirtyBitmap during pre-copy (switchover=manual), over D-Bus and vfio-migctl */
static void
test_sync_dirty_bitmap(void **state)
{
	const gchar *const src_specs[] = {
	    "mlx5:state_size=8M,seed=1,dma_pattern=random,dma_rate=32M", "hisi_acc:seed=3", NULL};
	const gchar *const dst_specs[] = {"mlx5:seed=101", "hisi_acc:seed=103", NULL};
	Daemons *d = g_new0(Daemons, 1);
	g_autofree gchar *conf = NULL;
	g_autofree gchar *out_file = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *address = NULL;
	g_autofree gchar *job = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *saved = NULL;
	gsize saved_len = 0;
	g_autoptr(MigdDirtyFile) first = NULL;
	g_autoptr(MigdDirtyFile) second = NULL;
	g_autoptr(MigdDirtyFile) from_file = NULL;
	g_autoptr(GBytes) saved_bytes = NULL;
	g_autoptr(JsonNode) json = NULL;
	g_autoptr(GError) error = NULL;

	*state = d;
	d->dir = g_dir_make_tmp("migd-flow-XXXXXX", NULL);
	conf = g_build_filename(d->dir, "src.conf", NULL);
	out_file = g_build_filename(d->dir, "sync.bitmap", NULL);
	assert_true(g_file_set_contents(
	    conf, "[device sim0]\niova-ranges=0x0+256M,0x100000000+256M\n", -1, NULL));
	d->src = dt_daemon_start_full(SRC_NAME, src_specs, conf);
	d->dst = dt_daemon_start(DST_NAME, dst_specs);
	address = dt_listen_plain(d->dst);
	job = migrate(d->src, address, "manual", NULL, 0);
	wait_converged(d->src, job);

	first = sync_dirty(d->src, job, "sim0", &error);
	if (first == NULL)
		fail_msg("SyncDirtyBitmap: %s", error->message);
	assert_int_equal(first->n_windows, 2);
	/* the device DMA-writes 32 MiB/s at random: pages since tracking started */
	assert_true(first->dirty_pages > 0);
	g_usleep(300 * 1000);
	second = sync_dirty(d->src, job, "sim0", &error);
	if (second == NULL)
		fail_msg("SyncDirtyBitmap: %s", error->message);
	assert_true(second->dirty_pages > 0);
	/* a device the job does not have */
	assert_null(sync_dirty(d->src, job, "sim9", &error));
	assert_non_null(error);
	g_clear_error(&error);

	/* vfio-migctl writes the memfd's bytes to the file */
	assert_int_equal(
	    dt_migctl(SRC_NAME, &out, "--json", "dirty-sync", job, "sim0", "-o", out_file, NULL),
	    0);
	json = dt_json_line(out);
	assert_non_null(json);
	assert_string_equal(json_object_get_string_member(json_node_get_object(json), "job"), job);
	assert_true(g_file_get_contents(out_file, &saved, &saved_len, NULL));
	saved_bytes = g_bytes_new_take(g_steal_pointer(&saved), saved_len);
	from_file = migd_dirty_file_parse(saved_bytes, &error);
	if (from_file == NULL)
		fail_msg("%s: %s", out_file, error->message);
	assert_int_equal(json_object_get_int_member(json_node_get_object(json), "dirty_pages"),
			 from_file->dirty_pages);
	unlink(out_file);

	job_call_ok(d->src, job, "Switchover");
	if (!dt_job_wait_completed(d->src, job, &message))
		fail_msg("migration failed: %s", message);
	for (guint i = 0; i < 2; i++)
		assert_true(dt_device_digest(d->dst, i) == dt_device_digest(d->src, i));
}

/* vfio-migctl as the VMM: expect, migrate --switchover manual, switchover, start */
static void
test_migctl_plays_the_vmm(void **state)
{
	const gchar *const src_specs[] = {"mlx5:state_size=8M,seed=1", "hisi_acc:seed=3", NULL};
	const gchar *const dst_specs[] = {"mlx5:seed=101", "hisi_acc:seed=103", NULL};
	Daemons *d = daemons_new(state, src_specs, dst_specs);
	g_autofree gchar *listen = dt_listen_plain(d->dst);
	g_autofree gchar *out = NULL;
	g_autofree gchar *out2 = NULL;
	g_autofree gchar *out3 = NULL;
	g_autofree gchar *out4 = NULL;
	g_autofree gchar *job = NULL;
	g_autofree gchar *dst_job = NULL;
	g_autofree gchar *message = NULL;
	g_autoptr(JsonNode) json = NULL;
	g_autoptr(JsonNode) json3 = NULL;
	g_autoptr(JsonNode) json4 = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *address;

	assert_int_equal(dt_migctl(DST_NAME, &out, "--json", "expect", "vm-c", "--device", "sim0",
				   "--device", "sim1", "--start", "manual", NULL),
			 0);
	json = dt_json_line(out);
	assert_non_null(json);
	assert_string_equal(
	    json_object_get_string_member(json_node_get_object(json), "migration_id"), "vm-c");
	address = json_object_get_string_member(json_node_get_object(json), "address");
	assert_string_equal(address, listen);

	assert_int_equal(dt_migctl(SRC_NAME, &out2, "--plain", "--no-wait", "--switchover",
				   "manual", "--migration-id", "vm-c", "migrate", address, NULL),
			 0);
	job = g_strstrip(g_strdup(out2));
	assert_true(g_variant_is_object_path(job));
	wait_converged(d->src, job);

	assert_int_equal(dt_migctl(SRC_NAME, &out3, "--json", "switchover", job, NULL), 0);
	json3 = dt_json_line(out3);
	assert_true(json_object_get_boolean_member(json_node_get_object(json3), "switched_over"));
	assert_states(d->dst, "STOP", "destination after switchover");
	dst_job = find_job(d->dst, "vm-c");
	assert_int_equal(dt_migctl(DST_NAME, &out4, "--json", "start", dst_job, NULL), 0);
	json4 = dt_json_line(out4);
	assert_true(json_object_get_boolean_member(json_node_get_object(json4), "started"));
	assert_states(d->dst, "RUNNING", "destination after start");
	if (!dt_job_wait_completed(d->src, job, &message))
		fail_msg("migration failed: %s", message);
	for (guint i = 0; i < 2; i++)
		assert_true(dt_device_digest(d->dst, i) == dt_device_digest(d->src, i));
}

static void
wait_job_phase(DtDaemon *d, const gchar *path, const gchar *want)
{
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;

	for (;;) {
		g_autofree gchar *phase = job_string(d, path, "Phase");
		if (g_strcmp0(phase, want) == 0)
			return;
		if (g_get_monotonic_time() > deadline)
			fail_msg("job %s is %s, never %s", path, phase, want);
		g_usleep(20 * 1000);
	}
}

/* [listen] start=manual: a Listen without "start" keeps the devices in STOP until Start */
static void
test_listen_start_from_config(void **state)
{
	const gchar *const src_specs[] = {"mlx5:state_size=4M,seed=1", NULL};
	const gchar *const dst_specs[] = {"mlx5:seed=101", NULL};
	Daemons *d = g_new0(Daemons, 1);
	g_autofree gchar *conf = NULL;
	g_autofree gchar *address = NULL;
	g_autofree gchar *job = NULL;
	g_autofree gchar *dst_job = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *phase = NULL;

	*state = d;
	d->dir = g_dir_make_tmp("migd-flow-XXXXXX", NULL);
	conf = g_build_filename(d->dir, "dst.conf", NULL);
	assert_true(g_file_set_contents(conf, "[listen]\nstart=manual\n", -1, NULL));
	d->src = dt_daemon_start(SRC_NAME, src_specs);
	d->dst = dt_daemon_start_full(DST_NAME, dst_specs, conf);
	address = dt_listen_plain(d->dst);
	job = migrate(d->src, address, "auto", NULL, 0);
	dst_job = find_job(d->dst, NULL);
	wait_job_phase(d->dst, dst_job, "handover");
	assert_states(d->dst, "STOP", "destination before Start");
	phase = job_string(d->src, job, "Phase");
	assert_string_equal(phase, "handover");
	job_call_ok(d->dst, dst_job, "Start");
	if (!dt_job_wait_completed(d->src, job, &message))
		fail_msg("migration failed: %s", message);
	assert_states(d->dst, "RUNNING", "destination after Start");
	assert_true(dt_device_digest(d->dst, 0) == dt_device_digest(d->src, 0));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_coordinated_step_by_step, teardown),
	    cmocka_unit_test_teardown(test_rollback_after_switchover, teardown),
	    cmocka_unit_test_teardown(test_destination_abandon, teardown),
	    cmocka_unit_test_teardown(test_destination_killed_after_commit, teardown),
	    cmocka_unit_test_teardown(test_handover_timeout, teardown),
	    cmocka_unit_test_teardown(test_two_vms_one_destination, teardown),
	    cmocka_unit_test_teardown(test_expectation_lifecycle, teardown),
	    cmocka_unit_test_teardown(test_sync_dirty_bitmap, teardown),
	    cmocka_unit_test_teardown(test_migctl_plays_the_vmm, teardown),
	    cmocka_unit_test_teardown(test_listen_start_from_config, teardown),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests_name("dbus-coordinated-flow", tests, dt_bus_up, dt_bus_down);
}
