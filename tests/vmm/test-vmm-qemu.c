/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The real-QEMU tier: qemu-system-x86_64 (TCG, 64 MiB, no guest) migrates
 * over loopback with dbus-vmstate, and two vfio-migd daemons with simulated
 * devices take part through their [vm vm1] groups, each side's QEMU and
 * daemon on a private dbus-daemon (a third private bus is the daemons'
 * control bus). The test drives QEMU over QMP and reads the daemons' jobs
 * over D-Bus: success with a pre-copy job and without one, a device fault
 * during Save, the destination QEMU killed mid-migration, and a destination
 * refusing Load. A missing QEMU fails the tier: the installer provides it.
 *
 * Both QEMUs run with the return-path capability: the source then completes
 * only once the destination loaded everything (Load included), and fails,
 * resuming its VM, when the destination's load fails or it dies. Without it
 * the source's QEMU would report "completed" as soon as its stream is sent.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>

#include "migd-vm-lab.h"

#define SRC_NAME   "org.vfiomigd.Test.QemuSource"
#define DST_NAME   "org.vfiomigd.Test.QemuDestination"
#define VMSTATE_ID "vfio-migd"
/* a migration of 64 MiB by TCG over loopback takes about a second; this bounds it */
#define MIGRATION_MS 60000
#define SETTLE_MS    20000
/* the source's handover timeout ([vm] handover-timeout, seconds) */
#define HANDOVER_S 5

static const gchar *migd_path;
static gchar *qemu_path;

typedef struct {
	MigdVmLab *lab;
	MigdVmLabBus *control;
	MigdVmLabBus *src_bus;
	MigdVmLabBus *dst_bus;
	MigdVmLabDaemon *src;
	MigdVmLabDaemon *dst;
	MigdVmLabQemu *src_qemu;
	MigdVmLabQemu *dst_qemu;
	gchar *listen; /* the destination daemon's listener */
	guint16 port;  /* the destination QEMU's incoming port */
	guint n_devices;
} Fixture;

#define CHECK(expr, error)                                                                         \
	do {                                                                                       \
		if (!(expr))                                                                       \
			fail_msg("%s: %s", #expr, (error) != NULL ? (error)->message : "?");       \
	} while (0)

static int
teardown(void **state)
{
	Fixture *f = *state;

	if (f == NULL)
		return 0;
	/* on a failure, what the processes said is the first thing to read */
	migd_vm_lab_free(f->lab);
	g_free(f->listen);
	g_free(f);
	*state = NULL;
	return 0;
}

static Fixture *
fixture_new(void **state)
{
	Fixture *f = g_new0(Fixture, 1);
	g_autoptr(GError) error = NULL;

	*state = f;
	if (qemu_path == NULL)
		fail_msg("qemu-system-x86_64 is not installed (scripts/install-deps.sh installs "
			 "qemu-system-x86): the vmm tier needs it");
	f->lab = migd_vm_lab_new(&error);
	CHECK(f->lab != NULL, error);
	f->control = migd_vm_lab_bus_start(f->lab, "control", &error);
	CHECK(f->control != NULL, error);
	f->src_bus = migd_vm_lab_bus_start(f->lab, "src-vmstate", &error);
	CHECK(f->src_bus != NULL, error);
	f->dst_bus = migd_vm_lab_bus_start(f->lab, "dst-vmstate", &error);
	CHECK(f->dst_bus != NULL, error);
	f->listen = migd_vm_lab_unused_unix_address(f->lab);
	f->port = migd_vm_lab_unused_port(&error);
	CHECK(f->port != 0, error);
	return f;
}

/* the destination daemon: [vm vm1] on @bus, listening on @listen */
static MigdVmLabDaemon *
start_destination_on(Fixture *f, const gchar *bus_name, MigdVmLabBus *bus, const gchar *listen,
		     const gchar *const *specs, const gchar *devices, const gchar *extra)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *conf = g_strdup_printf("[vm vm1]\nbus=%s\nrole=destination\ndevices=%s\n"
						 "listen=%s\nplain=true\n%s",
						 migd_vm_lab_bus_get_path_address(bus), devices,
						 listen, extra != NULL ? extra : "");
	MigdVmLabDaemon *d =
	    migd_vm_lab_daemon_start(f->lab, migd_path, f->control, bus_name, specs, conf, &error);

	CHECK(d != NULL, error);
	return d;
}

/* the source daemon: [vm vm1] on the source's bus, its peer @peer; @extra: more text */
static void
start_source(Fixture *f, const gchar *const *specs, const gchar *devices, const gchar *peer,
	     const gchar *extra)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *conf =
	    g_strdup_printf("[vm vm1]\nbus=%s\nrole=source\ndevices=%s\npeer=%s\nplain=true\n"
			    "handover-timeout=%d\n%s",
			    migd_vm_lab_bus_get_path_address(f->src_bus), devices, peer, HANDOVER_S,
			    extra != NULL ? extra : "");

	f->src =
	    migd_vm_lab_daemon_start(f->lab, migd_path, f->control, SRC_NAME, specs, conf, &error);
	CHECK(f->src != NULL, error);
	f->n_devices = g_strv_length((gchar **)specs);
}

/* the two QEMUs, the destination waiting on its port; return-path on both */
static void
start_qemus(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *incoming = g_strdup_printf("tcp:127.0.0.1:%u", f->port);

	f->dst_qemu = migd_vm_lab_qemu_start(f->lab, qemu_path, "dst-qemu", f->dst_bus, VMSTATE_ID,
					     incoming, &error);
	CHECK(f->dst_qemu != NULL, error);
	f->src_qemu = migd_vm_lab_qemu_start(f->lab, qemu_path, "src-qemu", f->src_bus, VMSTATE_ID,
					     NULL, &error);
	CHECK(f->src_qemu != NULL, error);
	CHECK(migd_vm_lab_qemu_set_capability(f->dst_qemu, "return-path", TRUE, &error), error);
	CHECK(migd_vm_lab_qemu_set_capability(f->src_qemu, "return-path", TRUE, &error), error);
	CHECK(migd_vm_lab_qemu_wait_status(f->src_qemu, "running", SETTLE_MS, &error), error);
}

/* the adapter's "Save done in N ms" from the source daemon's log: for the report only */
static gchar *
save_duration(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = migd_vm_lab_daemon_call(f->src, "ListVMs", NULL, &error);
	g_autoptr(GVariantIter) iter = NULL;
	const gchar *name = NULL;
	GVariant *props = NULL;
	guint64 ms = 0;
	gboolean found = FALSE;

	CHECK(reply != NULL, error);
	g_variant_get(reply, "(a(sa{sv}))", &iter);
	while (g_variant_iter_next(iter, "(&s@a{sv})", &name, &props)) {
		found = found || g_variant_lookup(props, "last-save-ms", "t", &ms);
		g_variant_unref(props);
	}
	/* the adapter's own figure: Save answered, so it must have one */
	assert_true(found);
	return g_strdup_printf("%" G_GUINT64_FORMAT " ms", ms);
}

/* the end of a case: QEMUs first, then each daemon must exit cleanly (status 0: under ASan,
 * no leak and no error) */
static void
stop_all(Fixture *f, MigdVmLabDaemon *other)
{
	MigdVmLabDaemon *daemons[] = {f->src, f->dst, other};

	if (f->src_qemu != NULL)
		migd_vm_lab_qemu_stop(f->src_qemu);
	if (f->dst_qemu != NULL)
		migd_vm_lab_qemu_stop(f->dst_qemu);
	for (guint i = 0; i < G_N_ELEMENTS(daemons); i++) {
		if (daemons[i] != NULL && !migd_vm_lab_daemon_stop(daemons[i]))
			fail_msg("%s did not exit cleanly (log: %s)",
				 migd_vm_lab_daemon_get_bus_name(daemons[i]),
				 migd_vm_lab_daemon_get_log_path(daemons[i]));
	}
}

static guint64
digest(MigdVmLabDaemon *d, guint index)
{
	g_autoptr(GError) error = NULL;
	guint64 value = 0;

	CHECK(migd_vm_lab_daemon_device_digest(d, index, &value, &error), error);
	return value;
}

static void
wait_device(MigdVmLabDaemon *d, guint index, const gchar *state, guint timeout_ms)
{
	g_autoptr(GError) error = NULL;

	CHECK(migd_vm_lab_daemon_wait_device(d, index, state, timeout_ms, &error), error);
}

static guint64
job_u64(MigdVmLabDaemon *d, const gchar *job, const gchar *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) v = migd_vm_lab_daemon_job_property(d, job, name, &error);

	CHECK(v != NULL, error);
	return g_variant_get_uint64(v);
}

static gboolean
job_bool(MigdVmLabDaemon *d, const gchar *job, const gchar *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) v = migd_vm_lab_daemon_job_property(d, job, name, &error);

	CHECK(v != NULL, error);
	return g_variant_get_boolean(v);
}

static gchar *
wait_job(MigdVmLabDaemon *d, const gchar *job)
{
	g_autoptr(GError) error = NULL;
	gchar *phase = migd_vm_lab_daemon_wait_job(d, job, SETTLE_MS, &error);

	CHECK(phase != NULL, error);
	return phase;
}

static gchar *
last_job(MigdVmLabDaemon *d)
{
	g_autoptr(GError) error = NULL;
	gchar *job = migd_vm_lab_daemon_last_job(d, &error);

	CHECK(job != NULL, error);
	return job;
}

static gchar *
migrate_and_wait(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	gchar *status;

	CHECK(migd_vm_lab_qemu_migrate(f->src_qemu, f->port, &error), error);
	status = migd_vm_lab_qemu_wait_migration(f->src_qemu, MIGRATION_MS, &error);
	CHECK(status != NULL, error);
	return status;
}

/* Migrate(all, switchover manual, migration-id vm1): the management stack's pre-copy */
static gchar *
start_precopy(Fixture *f)
{
	g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	const gchar *const all[] = {NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	gchar *job = NULL;

	g_variant_builder_add(&b, "{sv}", "plain", g_variant_new_boolean(TRUE));
	g_variant_builder_add(&b, "{sv}", "switchover", g_variant_new_string("manual"));
	g_variant_builder_add(&b, "{sv}", "migration-id", g_variant_new_string("vm1"));
	g_variant_builder_add(&b, "{sv}", "handover-timeout", g_variant_new_uint32(HANDOVER_S));
	reply = migd_vm_lab_daemon_call(f->src, "Migrate",
					g_variant_new("(s^asa{sv})", f->listen, all, &b), &error);
	CHECK(reply != NULL, error);
	g_variant_get(reply, "(o)", &job);
	return job;
}

/* the source's devices, in job order: an mlx5 that dirties its state and DMAs, a hisi_acc */
static const gchar *const src_specs[] = {
    "mlx5:state_size=16M,seed=1,dirty_rate=4M,dma_pattern=random,dma_rate=16M", "hisi_acc:seed=2",
    NULL};
/* the destination's: the same profiles, other contents */
static const gchar *const dst_specs[] = {"mlx5:state_size=16M,seed=11", "hisi_acc:seed=12", NULL};
/* the mlx5's DMA follows the guest's 64 MiB */
#define SRC_DEVICE_GROUPS "[device sim0]\niova-ranges=0x0+64M\n"

/* 1. pre-copy first, then QEMU's migration: the devices stop inside QEMU's downtime */
static void
test_precopy_success(void **state)
{
	Fixture *f = fixture_new(state);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *dst_job = NULL;
	g_autofree gchar *status = NULL;
	g_autofree gchar *phase = NULL;
	MigdVmLabMigrateInfo info = {0};
	g_autofree gchar *save = NULL;
	const MigdVmLabEvent *stop, *resume, *active;
	guint64 stopped_at, started_at, job_downtime_us;
	gint64 deadline;

	f->dst =
	    start_destination_on(f, DST_NAME, f->dst_bus, f->listen, dst_specs, "sim0;sim1", NULL);
	start_source(f, src_specs, "sim0;sim1", f->listen, SRC_DEVICE_GROUPS);
	start_qemus(f);

	src_job = start_precopy(f);
	/* pre-copy under way (the dirtying device converges or does its best) */
	deadline = g_get_monotonic_time() + SETTLE_MS * 1000;
	while (!job_bool(f->src, src_job, "Converged")) {
		if (g_get_monotonic_time() > deadline)
			fail_msg("the pre-copy job did not converge within %d ms", SETTLE_MS);
		migd_vm_lab_spin(50);
	}

	status = migrate_and_wait(f);
	assert_string_equal(status, "completed");
	/* the destination's guest runs */
	resume = migd_vm_lab_qemu_wait_event(f->dst_qemu, 0, "RESUME", NULL, SETTLE_MS, &error);
	CHECK(resume != NULL, error);
	stop = migd_vm_lab_qemu_wait_event(f->src_qemu, 0, "STOP", NULL, 0, &error);
	CHECK(stop != NULL, error);
	active = migd_vm_lab_qemu_wait_event(f->dst_qemu, 0, "MIGRATION", "active", 0, &error);
	CHECK(active != NULL, error);

	phase = wait_job(f->src, src_job);
	assert_string_equal(phase, "completed");
	dst_job = last_job(f->dst);
	g_free(phase);
	phase = wait_job(f->dst, dst_job);
	assert_string_equal(phase, "completed");

	/* the devices stopped after the vCPUs (Save runs in the downtime) ... */
	stopped_at = job_u64(f->src, src_job, "DevicesStoppedAt");
	assert_true(stopped_at > 0);
	if ((gint64)stopped_at <= stop->timestamp_us)
		fail_msg("devices stopped at %" G_GUINT64_FORMAT
			 " µs, QEMU's STOP at %" G_GINT64_FORMAT,
			 stopped_at, stop->timestamp_us);
	/* ... and ran again on the destination after its RAM load began, before its guest */
	started_at = job_u64(f->dst, dst_job, "DevicesStartedAt");
	assert_true(started_at > 0);
	if ((gint64)started_at >= resume->timestamp_us ||
	    (gint64)started_at <= active->timestamp_us)
		fail_msg("devices started at %" G_GUINT64_FORMAT " µs, outside the destination's "
			 "load (%" G_GINT64_FORMAT ") .. RESUME (%" G_GINT64_FORMAT ")",
			 started_at, active->timestamp_us, resume->timestamp_us);

	for (guint i = 0; i < f->n_devices; i++) {
		wait_device(f->src, i, "STOP", SETTLE_MS);
		wait_device(f->dst, i, "RUNNING", SETTLE_MS);
		assert_int_equal(digest(f->dst, i), digest(f->src, i));
	}

	/* the device stop-copy lies inside QEMU's downtime (QEMU's is in whole ms) */
	CHECK(migd_vm_lab_qemu_query_migrate(f->src_qemu, &info, &error), error);
	assert_string_equal(info.status, "completed");
	job_downtime_us = job_u64(f->src, src_job, "Downtime");
	assert_true(job_downtime_us > 0);
	if (info.downtime_ms < 0 || (guint64)info.downtime_ms * 1000 + 999 < job_downtime_us)
		fail_msg("QEMU's downtime %" G_GINT64_FORMAT
			 " ms is below the devices' %" G_GUINT64_FORMAT " µs",
			 info.downtime_ms, job_downtime_us);
	save = save_duration(f);
	g_print("# pre-copy: QEMU downtime %" G_GINT64_FORMAT " ms, total %" G_GINT64_FORMAT
		" ms; Save %s; device downtime %.1f ms; vCPU stop -> devices stop %.1f ms; devices "
		"stop -> "
		"destination devices run %.1f ms; destination devices run -> RESUME %.1f ms\n",
		info.downtime_ms, info.total_time_ms, save, job_downtime_us / 1000.0,
		((gint64)stopped_at - stop->timestamp_us) / 1000.0,
		((gint64)started_at - (gint64)stopped_at) / 1000.0,
		(resume->timestamp_us - (gint64)started_at) / 1000.0);
	migd_vm_lab_migrate_info_clear(&info);
	stop_all(f, NULL);
}

/* the source VM runs again with its devices RUNNING and their states as before */
static void
assert_source_back(Fixture *f, const guint64 *digests, guint timeout_ms)
{
	g_autoptr(GError) error = NULL;

	CHECK(migd_vm_lab_qemu_wait_status(f->src_qemu, "running", SETTLE_MS, &error), error);
	for (guint i = 0; i < f->n_devices; i++) {
		wait_device(f->src, i, "RUNNING", timeout_ms);
		if (digests != NULL)
			assert_int_equal(digest(f->src, i), digests[i]);
	}
}

/* 2. a device fault during Save: QEMU's migration fails, everything runs on at the source */
static void
test_save_fault(void **state)
{
	Fixture *f = fixture_new(state);
	/* the hisi_acc cannot enter STOP_COPY (a Save job also begins with PRE_COPY, where the
	 * device has it): the stop-and-copy fails (the way back, PRE_COPY ->
	 * RUNNING, works) */
	const gchar *const faulty[] = {
	    "mlx5:state_size=1M,seed=1",
	    "hisi_acc:seed=2,fail_arc=PRE_COPY->STOP_COPY,fail_errno=EIO", NULL};
	const gchar *const dst[] = {"mlx5:state_size=1M,seed=11", "hisi_acc:seed=12", NULL};
	g_autofree gchar *status = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *phase = NULL;
	guint64 digests[2];

	f->dst = start_destination_on(f, DST_NAME, f->dst_bus, f->listen, dst, "sim0;sim1", NULL);
	start_source(f, faulty, "sim0;sim1", f->listen, NULL);
	start_qemus(f);
	for (guint i = 0; i < 2; i++)
		digests[i] = digest(f->src, i);

	status = migrate_and_wait(f);
	assert_string_equal(status, "failed");
	src_job = last_job(f->src);
	phase = wait_job(f->src, src_job);
	assert_string_equal(phase, "failed");
	assert_source_back(f, digests, SETTLE_MS);
	/* the destination's devices are usable again */
	for (guint i = 0; i < 2; i++)
		wait_device(f->dst, i, "RUNNING", SETTLE_MS);
	stop_all(f, NULL);
}

/*
 * 3. the destination QEMU dies while Save's stop-and-copy runs: back within the
 * handover bound; with both daemons watching their QEMU over QMP (@watched),
 * back at once: the destination's daemon abandons when its QEMU's monitor
 * closes, the source's rolls back on QEMU's MIGRATION "failed"
 */
static void
destination_killed(void **state, gboolean watched)
{
	Fixture *f = fixture_new(state);
	g_autofree gchar *src_qmp = migd_vm_lab_qemu_daemon_qmp_path(f->lab, "src-qemu");
	g_autofree gchar *dst_qmp = migd_vm_lab_qemu_daemon_qmp_path(f->lab, "dst-qemu");
	g_autofree gchar *src_extra = watched ? g_strdup_printf("qmp=%s\n", src_qmp) : NULL;
	g_autofree gchar *dst_extra = watched ? g_strdup_printf("qmp=%s\n", dst_qmp) : NULL;
	/* watched: well inside the handover bound; otherwise the bound itself */
	gint64 bound_ms = watched ? 3000 : (HANDOVER_S + 5) * 1000;
	/* a stop-and-copy of about a second (8 MiB read out at 8 MiB/s): time to kill */
	const gchar *const src[] = {"mlx5:state_size=8M,seed=1,save_rate=8M", "hisi_acc:seed=2",
				    NULL};
	const gchar *const dst[] = {"mlx5:state_size=8M,seed=11", "hisi_acc:seed=12", NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *status = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *phase = NULL;
	const MigdVmLabEvent *stop;
	guint64 digests[2];
	gint64 killed_at, back_ms;

	f->dst =
	    start_destination_on(f, DST_NAME, f->dst_bus, f->listen, dst, "sim0;sim1", dst_extra);
	start_source(f, src, "sim0;sim1", f->listen, src_extra);
	start_qemus(f);
	for (guint i = 0; i < 2; i++)
		digests[i] = digest(f->src, i);

	CHECK(migd_vm_lab_qemu_migrate(f->src_qemu, f->port, &error), error);
	/* the vCPUs stopped for the switchover: the final RAM pass and the non-iterable state
	 * (Save among it, a second long) follow; QEMU 7.2 reports the MIGRATION status "device"
	 * only with pause-before-switchover */
	stop = migd_vm_lab_qemu_wait_event(f->src_qemu, 0, "STOP", NULL, MIGRATION_MS, &error);
	CHECK(stop != NULL, error);
	/* Save has begun once its job exists (the stop-and-copy then lasts about a second) */
	{
		gint64 deadline = g_get_monotonic_time() + SETTLE_MS * 1000;

		while ((src_job = migd_vm_lab_daemon_last_job(f->src, NULL)) == NULL) {
			if (g_get_monotonic_time() > deadline)
				fail_msg("no Save job on the source within %d ms", SETTLE_MS);
			migd_vm_lab_spin(5);
		}
	}
	migd_vm_lab_qemu_kill(f->dst_qemu);
	killed_at = g_get_monotonic_time();

	status = migd_vm_lab_qemu_wait_migration(f->src_qemu, MIGRATION_MS, &error);
	CHECK(status != NULL, error);
	assert_string_equal(status, "failed");
	/* the devices come back at the latest when the handover times out */
	for (guint i = 0; i < 2; i++)
		wait_device(f->src, i, "RUNNING", (guint)bound_ms);
	back_ms = (g_get_monotonic_time() - killed_at) / 1000;
	phase = wait_job(f->src, src_job);
	assert_string_equal(phase, "failed");
	/* (watched, the kill may come before Save began: then the pre-copy job is cancelled) */
	if (!watched)
		assert_true(job_bool(f->src, src_job, "RolledBack"));
	assert_true(back_ms <= bound_ms);
	assert_source_back(f, digests, 1000);
	g_print("# destination killed%s: source devices RUNNING %" G_GINT64_FORMAT
		" ms after the kill (handover-timeout %d s)\n",
		watched ? ", QMP watched" : "", back_ms, HANDOVER_S);
	stop_all(f, NULL);
}

static void
test_destination_killed(void **state)
{
	destination_killed(state, FALSE);
}

static void
test_destination_killed_qmp_watched(void **state)
{
	destination_killed(state, TRUE);
}

/* 4. the destination's daemon on QEMU's bus refuses Load: QEMU's incoming fails, the source
 * takes its devices back */
static void
test_load_refused(void **state)
{
	Fixture *f = fixture_new(state);
	const gchar *const src[] = {"mlx5:state_size=1M,seed=1", "hisi_acc:seed=2", NULL};
	const gchar *const dst[] = {"mlx5:state_size=1M,seed=11", "hisi_acc:seed=12", NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *status = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *phase = NULL;
	g_autofree gchar *other_listen = migd_vm_lab_unused_unix_address(f->lab);
	MigdVmLabBus *other_bus;
	MigdVmLabDaemon *other;
	guint64 digests[2];

	/*
	 * A misconfiguration the adapter must catch: the source daemon's peer is another
	 * destination daemon (a second host's, for the same VM) than the one on the
	 * destination QEMU's bus. The devices migrate there and wait in STOP; QEMU's Load
	 * reaches the daemon that received nothing, which refuses it (no incoming job of
	 * vm1 within load-timeout-ms). The record cannot be tampered with honestly here:
	 * it travels inside QEMU's own stream.
	 */
	other_bus = migd_vm_lab_bus_start(f->lab, "other-vmstate", &error);
	CHECK(other_bus != NULL, error);
	other = start_destination_on(f, "org.vfiomigd.Test.OtherDestination", other_bus,
				     other_listen, dst, "sim0;sim1", NULL);
	f->dst = start_destination_on(f, DST_NAME, f->dst_bus, f->listen, dst, "sim0;sim1",
				      "load-timeout-ms=1000\n");
	start_source(f, src, "sim0;sim1", other_listen, NULL);
	start_qemus(f);
	for (guint i = 0; i < 2; i++)
		digests[i] = digest(f->src, i);

	status = migrate_and_wait(f);
	assert_string_equal(status, "failed");
	/* the destination QEMU's incoming migration failed: QEMU 7.2 reports it (MIGRATION
	 * failed) and exits; its monitor may close before the event is read */
	if (migd_vm_lab_qemu_wait_event(f->dst_qemu, 0, "MIGRATION", "failed", SETTLE_MS, NULL) ==
	    NULL)
		assert_true(migd_vm_lab_qemu_wait_exit(f->dst_qemu, SETTLE_MS));
	assert_null(migd_vm_lab_qemu_wait_event(f->dst_qemu, 0, "RESUME", NULL, 0, NULL));
	src_job = last_job(f->src);
	phase = wait_job(f->src, src_job);
	assert_string_equal(phase, "failed");
	assert_true(job_bool(f->src, src_job, "RolledBack"));
	assert_source_back(f, digests, SETTLE_MS);
	/* the daemon that held the devices reset them */
	for (guint i = 0; i < 2; i++) {
		wait_device(other, i, "RUNNING", SETTLE_MS);
		wait_device(f->dst, i, "RUNNING", SETTLE_MS);
	}
	stop_all(f, other);
}

/*
 * 4b. a real record mismatch: the destination daemon on QEMU's bus does hold an
 * incoming job of vm1, but another source's (a second host misconfigured with
 * the same migration id got there first and switched over); QEMU's source
 * streamed its devices elsewhere. Load compares the record's streams with that
 * job's, finds other CRC32Cs and refuses: QEMU's incoming migration fails, the
 * job's devices are reset and its source (the rogue) rolls back, and QEMU's
 * source daemon takes its devices back.
 */
static void
test_load_record_mismatch(void **state)
{
	Fixture *f = fixture_new(state);
	const gchar *const src[] = {"mlx5:state_size=1M,seed=1", "hisi_acc:seed=2", NULL};
	const gchar *const rogue_specs[] = {"mlx5:state_size=1M,seed=31", "hisi_acc:seed=32", NULL};
	const gchar *const dst[] = {"mlx5:state_size=1M,seed=11", "hisi_acc:seed=12", NULL};
	const gchar *const all[] = {NULL};
	g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) switched = NULL;
	g_autoptr(GVariant) message = NULL;
	g_autofree gchar *status = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *rogue_job = NULL;
	g_autofree gchar *dst_job = NULL;
	g_autofree gchar *phase = NULL;
	g_autofree gchar *rogue_phase = NULL;
	g_autofree gchar *dst_phase = NULL;
	g_autofree gchar *other_listen = migd_vm_lab_unused_unix_address(f->lab);
	MigdVmLabBus *other_bus;
	MigdVmLabDaemon *other;
	MigdVmLabDaemon *rogue;
	guint64 digests[2];
	guint64 rogue_digests[2];

	other_bus = migd_vm_lab_bus_start(f->lab, "other-vmstate", &error);
	CHECK(other_bus != NULL, error);
	other = start_destination_on(f, "org.vfiomigd.Test.OtherDestination", other_bus,
				     other_listen, dst, "sim0;sim1", NULL);
	f->dst = start_destination_on(f, DST_NAME, f->dst_bus, f->listen, dst, "sim0;sim1", NULL);
	rogue = migd_vm_lab_daemon_start(f->lab, migd_path, f->control, "org.vfiomigd.Test.Rogue",
					 rogue_specs, NULL, &error);
	CHECK(rogue != NULL, error);
	for (guint i = 0; i < 2; i++)
		rogue_digests[i] = digest(rogue, i);

	/* the rogue's devices reach the destination QEMU's daemon first and wait in STOP */
	g_variant_builder_add(&b, "{sv}", "plain", g_variant_new_boolean(TRUE));
	g_variant_builder_add(&b, "{sv}", "switchover", g_variant_new_string("manual"));
	g_variant_builder_add(&b, "{sv}", "migration-id", g_variant_new_string("vm1"));
	g_variant_builder_add(&b, "{sv}", "handover-timeout", g_variant_new_uint32(60));
	reply = migd_vm_lab_daemon_call(rogue, "Migrate",
					g_variant_new("(s^asa{sv})", f->listen, all, &b), &error);
	CHECK(reply != NULL, error);
	g_variant_get(reply, "(o)", &rogue_job);
	switched = g_dbus_connection_call_sync(migd_vm_lab_bus_get_connection(f->control),
					       "org.vfiomigd.Test.Rogue", rogue_job,
					       "org.vfiomigd.Migd1.Job", "Switchover", NULL, NULL,
					       G_DBUS_CALL_FLAGS_NONE, MIGRATION_MS, NULL, &error);
	CHECK(switched != NULL, error);
	dst_job = last_job(f->dst);

	/* QEMU's source daemon streams to the other destination */
	start_source(f, src, "sim0;sim1", other_listen, NULL);
	start_qemus(f);
	for (guint i = 0; i < 2; i++)
		digests[i] = digest(f->src, i);

	status = migrate_and_wait(f);
	assert_string_equal(status, "failed");
	if (migd_vm_lab_qemu_wait_event(f->dst_qemu, 0, "MIGRATION", "failed", SETTLE_MS, NULL) ==
	    NULL)
		assert_true(migd_vm_lab_qemu_wait_exit(f->dst_qemu, SETTLE_MS));
	assert_null(migd_vm_lab_qemu_wait_event(f->dst_qemu, 0, "RESUME", NULL, 0, NULL));

	/* the job the record did not match: abandoned, its devices reset, its source back */
	dst_phase = wait_job(f->dst, dst_job);
	assert_string_equal(dst_phase, "failed");
	message = migd_vm_lab_daemon_job_property(f->dst, dst_job, "Message", &error);
	CHECK(message != NULL, error);
	if (strstr(g_variant_get_string(message, NULL), "CRC32C") == NULL)
		fail_msg("the destination job did not name the mismatch: %s",
			 g_variant_get_string(message, NULL));
	rogue_phase = wait_job(rogue, rogue_job);
	assert_string_equal(rogue_phase, "failed");
	assert_true(job_bool(rogue, rogue_job, "RolledBack"));
	for (guint i = 0; i < 2; i++) {
		wait_device(rogue, i, "RUNNING", SETTLE_MS);
		assert_true(digest(rogue, i) == rogue_digests[i]);
		wait_device(f->dst, i, "RUNNING", SETTLE_MS);
	}
	/* and QEMU's source daemon: its job rolled back (its handover bound) */
	src_job = last_job(f->src);
	phase = wait_job(f->src, src_job);
	assert_string_equal(phase, "failed");
	assert_true(job_bool(f->src, src_job, "RolledBack"));
	assert_source_back(f, digests, SETTLE_MS);
	assert_true(migd_vm_lab_daemon_stop(rogue));
	stop_all(f, other);
}

/* 5. no pre-copy: Save does the whole stop-and-copy of a small device */
static void
test_stop_copy_only(void **state)
{
	Fixture *f = fixture_new(state);
	const gchar *const src[] = {"hisi_acc:seed=21", NULL};
	const gchar *const dst[] = {"hisi_acc:seed=22", NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *status = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *phase = NULL;
	MigdVmLabMigrateInfo info = {0};
	g_autofree gchar *save = NULL;
	guint64 before, job_downtime_us;

	f->dst = start_destination_on(f, DST_NAME, f->dst_bus, f->listen, dst, "sim0", NULL);
	start_source(f, src, "sim0", f->listen, NULL);
	start_qemus(f);
	before = digest(f->src, 0);

	status = migrate_and_wait(f);
	assert_string_equal(status, "completed");
	CHECK(migd_vm_lab_qemu_wait_event(f->dst_qemu, 0, "RESUME", NULL, SETTLE_MS, &error) !=
		  NULL,
	      error);
	src_job = last_job(f->src);
	phase = wait_job(f->src, src_job);
	assert_string_equal(phase, "completed");
	wait_device(f->src, 0, "STOP", SETTLE_MS);
	wait_device(f->dst, 0, "RUNNING", SETTLE_MS);
	assert_int_equal(digest(f->dst, 0), before);

	CHECK(migd_vm_lab_qemu_query_migrate(f->src_qemu, &info, &error), error);
	job_downtime_us = job_u64(f->src, src_job, "Downtime");
	save = save_duration(f);
	g_print("# stop-and-copy only: QEMU downtime %" G_GINT64_FORMAT
		" ms, total %" G_GINT64_FORMAT " ms; Save %s; device downtime %.1f ms\n",
		info.downtime_ms, info.total_time_ms, save, job_downtime_us / 1000.0);
	migd_vm_lab_migrate_info_clear(&info);
	stop_all(f, NULL);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_precopy_success, teardown),
	    cmocka_unit_test_teardown(test_save_fault, teardown),
	    cmocka_unit_test_teardown(test_destination_killed, teardown),
	    cmocka_unit_test_teardown(test_destination_killed_qmp_watched, teardown),
	    cmocka_unit_test_teardown(test_load_refused, teardown),
	    cmocka_unit_test_teardown(test_load_record_mismatch, teardown),
	    cmocka_unit_test_teardown(test_stop_copy_only, teardown),
	};

	if (argc < 2) {
		g_printerr("usage: %s VFIO-MIGD\n", argv[0]);
		return 2;
	}
	migd_path = argv[1];
	qemu_path = g_find_program_in_path("qemu-system-x86_64");
	signal(SIGPIPE, SIG_IGN);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
