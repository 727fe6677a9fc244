/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dbus-vmstate adapter's qmp= (daemon/migd-vm.c) against a fake QEMU
 * monitor (tests/common/migd-test-qmp-server) listening on the VM's qmp=
 * path, with the test as QEMU on each VM's private dbus-daemon (Save, Load)
 * and two vfio-migd daemons with simulated devices. Source: MIGRATION
 * "failed" or RESUME after Save rolls the devices back at once (not at the
 * 30 s handover bound); MIGRATION "setup" starts the device pre-copy that
 * Save then switches over. Destination: its QEMU's monitor closing (QEMU
 * died) abandons the incoming job and the source rolls back at once; the
 * source's monitor closing in handover leaves the job to its bound. A qmp=
 * path where nobody listens: Save and Load are served; the monitor is found
 * once it appears, and again after it restarts.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib/gstdio.h>
#include <string.h>

#include "dbus-test-util.h"
#include "vmm-test-util.h"
#include "migd-test-qmp-server.h"

#define SRC_NAME "org.vfiomigd.Test.VmQmpSource"
#define DST_NAME "org.vfiomigd.Test.VmQmpDestination"
/* QEMU's own bound on Save and Load */
/* the source's handover bound: far longer than what QMP must achieve */
#define HANDOVER_S "30"
/* what "at once" means here, against the 30 s bound */
#define AT_ONCE_MS 2000

/* the fake monitor runs on the default main context: the test turns it while it waits */

/* a private dbus-daemon: one VM's dbus-vmstate bus */

typedef struct {
	gchar *dir;
	VtBus *src_bus;
	VtBus *dst_bus;
	DtDaemon *src;
	DtDaemon *dst;
	gchar *listen;		 /* the destination's listener */
	gchar *qmp_path;	 /* the fake QEMU monitor's socket */
	MigdTestQmpServer *qmp;	 /* the fake QEMU monitor, once listening */
	gchar *qmp_key;		 /* "qmp=PATH\n" */
	gchar *qmp_handover_key; /* ... and the handover bound */
} Fixture;

static int
teardown(void **state)
{
	Fixture *f = *state;

	if (f == NULL)
		return 0;
	dt_daemon_stop(f->src);
	dt_daemon_stop(f->dst);
	g_clear_pointer(&f->qmp, migd_test_qmp_server_free);
	/* the server's cancelled operations end on the main context */
	vt_pump(10);
	vt_bus_stop(f->src_bus);
	vt_bus_stop(f->dst_bus);
	if (f->dir != NULL) {
		g_autoptr(GDir) dir = g_dir_open(f->dir, 0, NULL);
		const gchar *name;
		while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
			g_autofree gchar *path = g_build_filename(f->dir, name, NULL);
			g_unlink(path);
		}
		g_rmdir(f->dir);
	}
	g_free(f->dir);
	g_free(f->listen);
	g_free(f->qmp_path);
	g_free(f->qmp_key);
	g_free(f->qmp_handover_key);
	g_free(f);
	*state = NULL;
	return 0;
}

static Fixture *
fixture_new(void **state)
{
	Fixture *f = g_new0(Fixture, 1);

	*state = f;
	f->dir = g_dir_make_tmp("vmstate-XXXXXX", NULL);
	assert_non_null(f->dir);
	f->src_bus = vt_bus_start(f->dir, "src-bus");
	f->dst_bus = vt_bus_start(f->dir, "dst-bus");
	f->listen = dt_unused_unix_address();
	f->qmp_path = g_build_filename(f->dir, "qmp.sock", NULL);
	f->qmp_key = g_strdup_printf("qmp=%s\n", f->qmp_path);
	f->qmp_handover_key =
	    g_strdup_printf("qmp=%s\nhandover-timeout=" HANDOVER_S "\n", f->qmp_path);
	return f;
}

/* the destination daemon, [vm vm1] role=destination on its bus */
static void
start_destination(Fixture *f, const gchar *const *specs, const gchar *devices, const gchar *extra)
{
	g_autofree gchar *path = g_build_filename(f->dir, "dst.conf", NULL);
	g_autofree gchar *bus = vt_bus_path_address(f->dst_bus);
	g_autofree gchar *conf =
	    g_strdup_printf("[vm vm1]\nbus=%s\nrole=destination\n"
			    "devices=%s\nlisten=%s\nplain=true\n"
			    "load-timeout-ms=300\n%s",
			    bus, devices, f->listen, extra != NULL ? extra : "");

	vt_write_file(path, conf);
	f->dst = dt_daemon_start_full(DST_NAME, specs, path);
}

/* the source daemon, [vm vm1] role=source; @extra: more keys */
static void
start_source(Fixture *f, const gchar *const *specs, const gchar *devices, const gchar *extra)
{
	g_autofree gchar *path = g_build_filename(f->dir, "src.conf", NULL);
	g_autofree gchar *bus = vt_bus_path_address(f->src_bus);
	g_autofree gchar *conf =
	    g_strdup_printf("[vm vm1]\nbus=%s\nrole=source\ndevices=%s\n"
			    "peer=%s\nplain=true\n%s",
			    bus, devices, f->listen, extra != NULL ? extra : "");

	vt_write_file(path, conf);
	f->src = dt_daemon_start_full(SRC_NAME, specs, path);
}

static const gchar *const two_devices[] = {"hisi_acc:seed=7", "mlx5:state_size=256K,seed=9", NULL};

/* ListVMs' vm1 "qmp-connected" on @d */
static gboolean
qmp_connected(DtDaemon *d)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = dt_manager_call(d, "ListVMs", NULL, &error);
	g_autoptr(GVariant) vms = NULL;
	g_autoptr(GVariant) props = NULL;
	const gchar *name = NULL;
	gboolean connected = FALSE;

	if (reply == NULL)
		fail_msg("ListVMs: %s", error->message);
	vms = g_variant_get_child_value(reply, 0);
	assert_int_equal(g_variant_n_children(vms), 1);
	g_variant_get_child(vms, 0, "(&s@a{sv})", &name, &props);
	assert_string_equal(name, "vm1");
	assert_true(g_variant_lookup(props, "qmp-connected", "b", &connected));
	return connected;
}

static void
wait_qmp_connected(Fixture *f, DtDaemon *d)
{
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;

	while (!qmp_connected(d) || !migd_test_qmp_server_is_connected(f->qmp)) {
		if (g_get_monotonic_time() > deadline)
			fail_msg("the daemon did not connect to the monitor %s", f->qmp_path);
		vt_pump(20);
	}
}

static void
listen_qmp(Fixture *f)
{
	g_unlink(f->qmp_path);
	f->qmp = migd_test_qmp_server_new_listen(f->qmp_path);
}

/* the event written to the daemon before the test blocks in its D-Bus calls */
static void
emit(Fixture *f, const gchar *name, const gchar *data_json)
{
	guint64 before = migd_test_qmp_server_get_bytes_sent(f->qmp);
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;
	gint64 now_us = g_get_real_time();

	migd_test_qmp_server_emit_event(f->qmp, name, data_json, now_us / G_USEC_PER_SEC,
					now_us % G_USEC_PER_SEC);
	while (migd_test_qmp_server_get_bytes_sent(f->qmp) == before) {
		if (g_get_monotonic_time() > deadline)
			fail_msg("event %s not sent", name);
		vt_pump(5);
	}
}

static gchar *
job_string(DtDaemon *d, const gchar *job, const gchar *property)
{
	g_autoptr(GVariant) v = dt_get_property(d, job, DT_JOB_IFACE, property);
	return g_variant_dup_string(v, NULL);
}

static gboolean
job_rolled_back(DtDaemon *d, const gchar *job)
{
	g_autoptr(GVariant) v = dt_get_property(d, job, DT_JOB_IFACE, "RolledBack");
	return g_variant_get_boolean(v);
}

static guint
n_jobs(DtDaemon *d)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = dt_manager_call(d, "ListJobs", NULL, &error);
	g_autoptr(GVariant) list = NULL;

	if (reply == NULL)
		fail_msg("ListJobs: %s", error->message);
	list = g_variant_get_child_value(reply, 0);
	return (guint)g_variant_n_children(list);
}

/* the source's job ended rolled back within AT_ONCE_MS of @since_us; its devices run */
static void
assert_source_rolled_back_at_once(Fixture *f, const gchar *src_job, gint64 since_us,
				  const guint64 *digests)
{
	g_autofree gchar *phase = dt_job_wait_final(f->src, src_job);
	gint64 took_ms = (g_get_monotonic_time() - since_us) / 1000;

	assert_string_equal(phase, "failed");
	assert_true(job_rolled_back(f->src, src_job));
	if (took_ms > AT_ONCE_MS)
		fail_msg("the source rolled back after %" G_GINT64_FORMAT
			 " ms (handover bound " HANDOVER_S " s)",
			 took_ms);
	for (guint i = 0; i < 2; i++) {
		vt_wait_state(f->src, i, "RUNNING");
		assert_int_equal(dt_device_digest(f->src, i), digests[i]);
	}
}

/* the destination's incoming job failed, its devices reset (RUNNING, in no job) */
static void
assert_destination_reset(Fixture *f, const gchar *dst_job)
{
	g_autofree gchar *phase = dt_job_wait_final(f->dst, dst_job);

	assert_string_equal(phase, "failed");
	for (guint i = 0; i < 2; i++)
		vt_wait_state(f->dst, i, "RUNNING");
}

/* Save returned (the source's job in handover), then QEMU says the migration failed */
static void
run_source_told(void **state, const gchar *event, const gchar *data_json)
{
	Fixture *f = fixture_new(state);
	g_autoptr(GBytes) record = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *dst_job = NULL;
	g_autofree gchar *phase = NULL;
	guint64 digests[2];
	gint64 start;

	listen_qmp(f);
	start_destination(f, two_devices, "sim0;sim1", NULL);
	start_source(f, two_devices, "sim0;sim1", f->qmp_handover_key);
	wait_qmp_connected(f, f->src);
	for (guint i = 0; i < 2; i++)
		digests[i] = dt_device_digest(f->src, i);
	record = vt_save(f->src_bus, &error);
	if (record == NULL)
		fail_msg("Save: %s", error->message);
	src_job = vt_last_job(f->src);
	dst_job = vt_last_job(f->dst);
	phase = job_string(f->src, src_job, "Phase");
	assert_string_equal(phase, "handover");

	start = g_get_monotonic_time();
	emit(f, event, data_json);
	assert_source_rolled_back_at_once(f, src_job, start, digests);
	assert_destination_reset(f, dst_job);
	/* QEMU's next attempt finds the destination expecting vm1 again, Load refused meanwhile */
	assert_false(vt_load(f->dst_bus, record, &error));
}

static void
test_source_migration_failed(void **state)
{
	run_source_told(state, "MIGRATION", "{\"status\": \"failed\"}");
}

static void
test_source_resume(void **state)
{
	run_source_told(state, "RESUME", NULL);
}

/* MIGRATION "setup" with no job: the device pre-copy starts; Save switches that job over */
static void
test_source_setup_precopy(void **state)
{
	Fixture *f = fixture_new(state);
	g_autoptr(GBytes) record = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *s = NULL;
	guint64 digests[2];
	gint64 deadline;

	listen_qmp(f);
	start_destination(f, two_devices, "sim0;sim1", NULL);
	start_source(f, two_devices, "sim0;sim1", f->qmp_key);
	wait_qmp_connected(f, f->src);
	for (guint i = 0; i < 2; i++)
		digests[i] = dt_device_digest(f->src, i);
	assert_int_equal(n_jobs(f->src), 0);
	/* events QEMU sends on its way that start nothing */
	emit(f, "STOP", NULL);
	emit(f, "MIGRATION", "{\"status\": \"completed\"}");
	emit(f, "MIGRATION", "{\"status\": \"setup\"}");
	deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;
	while (n_jobs(f->src) == 0) {
		if (g_get_monotonic_time() > deadline)
			fail_msg("MIGRATION setup started no job");
		vt_pump(20);
	}
	src_job = vt_last_job(f->src);
	s = job_string(f->src, src_job, "MigrationId");
	assert_string_equal(s, "vm1");
	g_free(s);
	s = job_string(f->src, src_job, "SwitchoverMode");
	assert_string_equal(s, "manual");
	g_free(s);
	s = job_string(f->src, src_job, "Role");
	assert_string_equal(s, "source");
	/* "active" after "setup": still the one job */
	emit(f, "MIGRATION", "{\"status\": \"active\"}");
	vt_pump(200);
	assert_int_equal(n_jobs(f->src), 1);
	{
		/* pre-copy runs and waits for Save: no switchover by itself */
		g_autofree gchar *phase = NULL;
		deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;
		for (;;) {
			g_free(phase);
			phase = job_string(f->src, src_job, "Phase");
			if (g_strcmp0(phase, "precopy") == 0)
				break;
			if (g_get_monotonic_time() > deadline)
				fail_msg("job in %s, expected precopy", phase);
			vt_pump(20);
		}
		vt_pump(300);
		g_free(phase);
		phase = job_string(f->src, src_job, "Phase");
		assert_string_equal(phase, "precopy");
	}

	record = vt_save(f->src_bus, &error);
	if (record == NULL)
		fail_msg("Save: %s", error->message);
	assert_int_equal(n_jobs(f->src), 1);
	{
		g_autofree gchar *last = vt_last_job(f->src);
		assert_string_equal(last, src_job);
	}
	if (!vt_load(f->dst_bus, record, &error))
		fail_msg("Load: %s", error->message);
	g_free(s);
	s = dt_job_wait_final(f->src, src_job);
	assert_string_equal(s, "completed");
	for (guint i = 0; i < 2; i++) {
		vt_wait_state(f->dst, i, "RUNNING");
		assert_int_equal(dt_device_digest(f->dst, i), digests[i]);
	}
	/* the migration's end (the job finished) starts nothing more */
	emit(f, "MIGRATION", "{\"status\": \"completed\"}");
	vt_pump(200);
	assert_int_equal(n_jobs(f->src), 1);
}

/* MIGRATION "failed" before Save: the pre-copy that "setup" started is cancelled, devices run */
static void
test_source_failed_before_save(void **state)
{
	Fixture *f = fixture_new(state);
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *phase = NULL;
	guint64 digests[2];
	gint64 deadline;

	listen_qmp(f);
	start_destination(f, two_devices, "sim0;sim1", NULL);
	start_source(f, two_devices, "sim0;sim1", f->qmp_key);
	wait_qmp_connected(f, f->src);
	for (guint i = 0; i < 2; i++)
		digests[i] = dt_device_digest(f->src, i);
	emit(f, "MIGRATION", "{\"status\": \"setup\"}");
	deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;
	while (n_jobs(f->src) == 0) {
		if (g_get_monotonic_time() > deadline)
			fail_msg("MIGRATION setup started no job");
		vt_pump(20);
	}
	src_job = vt_last_job(f->src);
	emit(f, "MIGRATION", "{\"status\": \"failed\"}");
	phase = dt_job_wait_final(f->src, src_job);
	assert_string_equal(phase, "failed");
	for (guint i = 0; i < 2; i++) {
		vt_wait_state(f->src, i, "RUNNING");
		assert_int_equal(dt_device_digest(f->src, i), digests[i]);
	}
}

/* the source's monitor closes in handover: the job stays (QEMU's fate unknown); once the
 * monitor is back, QEMU's "failed" rolls it back at once */
static void
test_source_monitor_closed_in_handover(void **state)
{
	Fixture *f = fixture_new(state);
	g_autoptr(GBytes) record = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *dst_job = NULL;
	g_autofree gchar *phase = NULL;
	guint64 digests[2];
	gint64 start;

	listen_qmp(f);
	start_destination(f, two_devices, "sim0;sim1", NULL);
	start_source(f, two_devices, "sim0;sim1", f->qmp_handover_key);
	wait_qmp_connected(f, f->src);
	for (guint i = 0; i < 2; i++)
		digests[i] = dt_device_digest(f->src, i);
	record = vt_save(f->src_bus, &error);
	if (record == NULL)
		fail_msg("Save: %s", error->message);
	src_job = vt_last_job(f->src);
	dst_job = vt_last_job(f->dst);
	migd_test_qmp_server_close(f->qmp);
	vt_pump(500);
	phase = job_string(f->src, src_job, "Phase");
	assert_string_equal(phase, "handover");
	g_free(phase);
	phase = job_string(f->dst, dst_job, "Phase");
	assert_string_equal(phase, "handover");
	wait_qmp_connected(f, f->src);
	start = g_get_monotonic_time();
	emit(f, "MIGRATION", "{\"status\": \"failed\"}");
	assert_source_rolled_back_at_once(f, src_job, start, digests);
	assert_destination_reset(f, dst_job);
}

/* the destination's QEMU dies while its incoming job waits in handover */
static void
test_destination_monitor_closed(void **state)
{
	Fixture *f = fixture_new(state);
	g_autoptr(GBytes) record = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *dst_job = NULL;
	g_autofree gchar *phase = NULL;
	guint64 digests[2];
	gint64 start;

	listen_qmp(f);
	start_destination(f, two_devices, "sim0;sim1", f->qmp_key);
	start_source(f, two_devices, "sim0;sim1", "handover-timeout=" HANDOVER_S "\n");
	wait_qmp_connected(f, f->dst);
	for (guint i = 0; i < 2; i++)
		digests[i] = dt_device_digest(f->src, i);
	record = vt_save(f->src_bus, &error);
	if (record == NULL)
		fail_msg("Save: %s", error->message);
	src_job = vt_last_job(f->src);
	dst_job = vt_last_job(f->dst);
	phase = job_string(f->dst, dst_job, "Phase");
	assert_string_equal(phase, "handover");

	start = g_get_monotonic_time();
	migd_test_qmp_server_close(f->qmp);
	assert_source_rolled_back_at_once(f, src_job, start, digests);
	assert_destination_reset(f, dst_job);
	/* the destination dials the monitor again (a restarted QEMU) */
	wait_qmp_connected(f, f->dst);
}

/* the destination's QEMU reports its incoming migration failed before Load */
static void
test_destination_migration_failed(void **state)
{
	Fixture *f = fixture_new(state);
	g_autoptr(GBytes) record = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *dst_job = NULL;
	guint64 digests[2];
	gint64 start;

	listen_qmp(f);
	start_destination(f, two_devices, "sim0;sim1", f->qmp_key);
	start_source(f, two_devices, "sim0;sim1", "handover-timeout=" HANDOVER_S "\n");
	wait_qmp_connected(f, f->dst);
	for (guint i = 0; i < 2; i++)
		digests[i] = dt_device_digest(f->src, i);
	record = vt_save(f->src_bus, &error);
	if (record == NULL)
		fail_msg("Save: %s", error->message);
	src_job = vt_last_job(f->src);
	dst_job = vt_last_job(f->dst);
	start = g_get_monotonic_time();
	emit(f, "MIGRATION", "{\"status\": \"failed\"}");
	assert_source_rolled_back_at_once(f, src_job, start, digests);
	assert_destination_reset(f, dst_job);
}

/* qmp= where nobody listens: Save and Load work; the monitor is found once it appears */
static void
test_monitor_absent(void **state)
{
	Fixture *f = fixture_new(state);
	g_autoptr(GBytes) record = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *phase = NULL;

	start_destination(f, two_devices, "sim0;sim1", NULL);
	start_source(f, two_devices, "sim0;sim1", f->qmp_key);
	g_free(vt_wait_owners(f->src_bus, 1));
	assert_false(qmp_connected(f->src));
	record = vt_save(f->src_bus, &error);
	if (record == NULL)
		fail_msg("Save: %s", error->message);
	src_job = vt_last_job(f->src);
	if (!vt_load(f->dst_bus, record, &error))
		fail_msg("Load: %s", error->message);
	phase = dt_job_wait_final(f->src, src_job);
	assert_string_equal(phase, "completed");
	assert_false(qmp_connected(f->src));

	listen_qmp(f);
	wait_qmp_connected(f, f->src);
	/* QEMU restarts: found again */
	migd_test_qmp_server_free(f->qmp);
	f->qmp = NULL;
	{
		gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;
		while (qmp_connected(f->src)) {
			if (g_get_monotonic_time() > deadline)
				fail_msg("the monitor's end went unnoticed");
			vt_pump(20);
		}
	}
	listen_qmp(f);
	wait_qmp_connected(f, f->src);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_source_migration_failed, teardown),
	    cmocka_unit_test_teardown(test_source_resume, teardown),
	    cmocka_unit_test_teardown(test_source_setup_precopy, teardown),
	    cmocka_unit_test_teardown(test_source_failed_before_save, teardown),
	    cmocka_unit_test_teardown(test_source_monitor_closed_in_handover, teardown),
	    cmocka_unit_test_teardown(test_destination_monitor_closed, teardown),
	    cmocka_unit_test_teardown(test_destination_migration_failed, teardown),
	    cmocka_unit_test_teardown(test_monitor_absent, teardown),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests(tests, dt_bus_up, dt_bus_down);
}
