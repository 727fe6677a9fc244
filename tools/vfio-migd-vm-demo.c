/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The VM demo (`make demo`): a real QEMU guest migrates with its devices. Two
 * vfio-migd daemons hold simulated devices (an mlx5 that dirties its state and
 * DMA-writes guest memory, a hisi_acc) bound to the VM through QEMU's
 * dbus-vmstate (docs/qemu.md); the device pre-copy starts, QEMU migrates over
 * QMP, Save switches the devices over inside QEMU's downtime and Load starts
 * them on the destination. For scale, the same guest first migrates without
 * devices in the same run. The last line sums it up.
 */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

#include "migd-vm-lab.h"

#define DEMO_VM		"demo"
#define DEMO_VMSTATE_ID "vfio-migd"
#define DEMO_SRC	"org.vfiomigd.VmDemo.Source"
#define DEMO_DST	"org.vfiomigd.VmDemo.Destination"
#define DEMO_WAIT_MS	60000
/* QEMU's downtime under TCG varies run to run by tens of ms: the baseline is a median */
#define DEMO_BASELINE_RUNS 3

static const gchar *const demo_src_specs[] = {
    "mlx5:state_size=64M,seed=1,dirty_rate=8M,dma_pattern=random,dma_rate=16M",
    "hisi_acc:seed=2",
    NULL,
};
static const gchar *const demo_dst_specs[] = {"mlx5:state_size=64M,seed=101", "hisi_acc:seed=102",
					      NULL};

typedef struct {
	gint64 vm_downtime_ms;	 /* QEMU's, with the devices */
	gint64 base_downtime_ms; /* QEMU's, the same guest without devices: the median */
	gint64 base_min_ms;
	gint64 base_max_ms;
	guint64 device_downtime_us;
	guint64 bytes;
	guint64 dirty_pages;
	guint rounds;
	gint64 save_ms;
	gboolean match;
} DemoResult;

static void demo_step(const gchar *format, ...) G_GNUC_PRINTF(1, 2);

static void
demo_step(const gchar *format, ...)
{
	va_list args;
	g_autofree gchar *text = NULL;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	g_print("  %s\n", text);
}

static int
demo_cmp_gint64(const void *a, const void *b)
{
	gint64 x = *(const gint64 *)a;
	gint64 y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}

/* a QEMU pair on @port migrates; returns QEMU's downtime (ms) or -1 and @error */
static gint64
demo_migrate_vm(MigdVmLabQemu *src, guint16 port, GError **error)
{
	g_auto(MigdVmLabMigrateInfo) info = {0};
	g_autofree gchar *status = NULL;

	if (!migd_vm_lab_qemu_migrate(src, port, error))
		return -1;
	status = migd_vm_lab_qemu_wait_migration(src, DEMO_WAIT_MS, error);
	if (status == NULL)
		return -1;
	if (!migd_vm_lab_qemu_query_migrate(src, &info, error))
		return -1;
	if (g_strcmp0(status, "completed") != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "QEMU's migration %s", status);
		return -1;
	}
	return info.downtime_ms;
}

/* a QEMU pair without devices (their dbus-vmstate buses empty): QEMU's downtime alone */
static gint64
demo_baseline(MigdVmLab *lab, const gchar *qemu, guint run, GError **error)
{
	g_autofree gchar *src_name = g_strdup_printf("base%u-src", run);
	g_autofree gchar *dst_name = g_strdup_printf("base%u-dst", run);
	MigdVmLabBus *src_bus = migd_vm_lab_bus_start(lab, src_name, error);
	MigdVmLabBus *dst_bus = NULL;
	MigdVmLabQemu *src = NULL;
	MigdVmLabQemu *dst = NULL;
	g_autofree gchar *incoming = NULL;
	guint16 port;
	gint64 downtime;

	if (src_bus == NULL)
		return -1;
	dst_bus = migd_vm_lab_bus_start(lab, dst_name, error);
	port = migd_vm_lab_unused_port(error);
	if (dst_bus == NULL || port == 0)
		return -1;
	incoming = g_strdup_printf("tcp:127.0.0.1:%u", port);
	dst = migd_vm_lab_qemu_start(lab, qemu, dst_name, dst_bus, NULL, incoming, error);
	if (dst == NULL)
		return -1;
	src = migd_vm_lab_qemu_start(lab, qemu, src_name, src_bus, NULL, NULL, error);
	if (src == NULL || !migd_vm_lab_qemu_set_capability(dst, "return-path", TRUE, error) ||
	    !migd_vm_lab_qemu_set_capability(src, "return-path", TRUE, error) ||
	    !migd_vm_lab_qemu_wait_status(src, "running", DEMO_WAIT_MS, error))
		return -1;
	downtime = demo_migrate_vm(src, port, error);
	migd_vm_lab_qemu_stop(src);
	migd_vm_lab_qemu_stop(dst);
	return downtime;
}

static guint64
demo_job_uint64(MigdVmLabDaemon *daemon, const gchar *job, const gchar *name)
{
	g_autoptr(GVariant) v = migd_vm_lab_daemon_job_property(daemon, job, name, NULL);
	if (v == NULL)
		return 0;
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
		return g_variant_get_uint32(v);
	return g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64) ? g_variant_get_uint64(v) : 0;
}

static gboolean
demo_job_converged(MigdVmLabDaemon *daemon, const gchar *job)
{
	g_autoptr(GVariant) v = migd_vm_lab_daemon_job_property(daemon, job, "Converged", NULL);
	return v != NULL && g_variant_get_boolean(v);
}

/* the adapter's own figure for its last Save (ListVMs' "last-save-ms"), -1 without one */
static gint64
demo_save_ms(MigdVmLabDaemon *daemon)
{
	g_autoptr(GVariant) reply = migd_vm_lab_daemon_call(daemon, "ListVMs", NULL, NULL);
	g_autoptr(GVariantIter) iter = NULL;
	const gchar *name = NULL;
	GVariant *props = NULL;
	gint64 save_ms = -1;

	if (reply == NULL)
		return -1;
	g_variant_get(reply, "(a(sa{sv}))", &iter);
	while (g_variant_iter_next(iter, "(&s@a{sv})", &name, &props)) {
		guint64 ms = 0;
		if (g_strcmp0(name, DEMO_VM) == 0 &&
		    g_variant_lookup(props, "last-save-ms", "t", &ms))
			save_ms = (gint64)ms;
		g_variant_unref(props);
	}
	return save_ms;
}

/* the VM with its devices; fills @result */
static gboolean
demo_vm_with_devices(MigdVmLab *lab, const gchar *migd, const gchar *qemu, DemoResult *result,
		     GError **error)
{
	MigdVmLabBus *control = migd_vm_lab_bus_start(lab, "control", error);
	MigdVmLabBus *src_bus = NULL;
	MigdVmLabBus *dst_bus = NULL;
	MigdVmLabDaemon *src = NULL;
	MigdVmLabDaemon *dst = NULL;
	MigdVmLabQemu *src_qemu = NULL;
	MigdVmLabQemu *dst_qemu = NULL;
	g_autofree gchar *listen = migd_vm_lab_unused_unix_address(lab);
	g_autofree gchar *incoming = NULL;
	g_autofree gchar *src_conf = NULL;
	g_autofree gchar *dst_conf = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree gchar *final = NULL;
	const gchar *job = NULL;
	const gchar *const none[] = {NULL};
	GVariantBuilder options;
	gint64 deadline;
	guint16 port;

	if (control == NULL ||
	    (src_bus = migd_vm_lab_bus_start(lab, "src-vmstate", error)) == NULL ||
	    (dst_bus = migd_vm_lab_bus_start(lab, "dst-vmstate", error)) == NULL)
		return FALSE;
	port = migd_vm_lab_unused_port(error);
	if (port == 0)
		return FALSE;
	dst_conf = g_strdup_printf("[vm " DEMO_VM "]\nbus=%s\nid=" DEMO_VMSTATE_ID
				   "\nrole=destination\ndevices=sim0;sim1\nlisten=%s\nplain=true\n",
				   migd_vm_lab_bus_get_path_address(dst_bus), listen);
	/* the guest's 64 MiB are what the mlx5's DMA may write: its dirty pages are tracked */
	src_conf = g_strdup_printf("[device sim0]\niova-ranges=0x0+64M\n[vm " DEMO_VM "]\nbus=%s\n"
				   "id=" DEMO_VMSTATE_ID "\nrole=source\ndevices=sim0;sim1\n"
				   "peer=%s\nplain=true\n",
				   migd_vm_lab_bus_get_path_address(src_bus), listen);
	dst =
	    migd_vm_lab_daemon_start(lab, migd, control, DEMO_DST, demo_dst_specs, dst_conf, error);
	if (dst == NULL)
		return FALSE;
	src =
	    migd_vm_lab_daemon_start(lab, migd, control, DEMO_SRC, demo_src_specs, src_conf, error);
	if (src == NULL)
		return FALSE;
	demo_step("vfio-migd: source (mlx5 64 MiB dirtying 8 MiB/s with DMA, hisi_acc) and "
		  "destination daemons, VM '" DEMO_VM "' on each dbus-vmstate bus");
	incoming = g_strdup_printf("tcp:127.0.0.1:%u", port);
	dst_qemu = migd_vm_lab_qemu_start(lab, qemu, "dst-qemu", dst_bus, DEMO_VMSTATE_ID, incoming,
					  error);
	if (dst_qemu == NULL)
		return FALSE;
	src_qemu =
	    migd_vm_lab_qemu_start(lab, qemu, "src-qemu", src_bus, DEMO_VMSTATE_ID, NULL, error);
	if (src_qemu == NULL ||
	    !migd_vm_lab_qemu_set_capability(dst_qemu, "return-path", TRUE, error) ||
	    !migd_vm_lab_qemu_set_capability(src_qemu, "return-path", TRUE, error) ||
	    !migd_vm_lab_qemu_wait_status(src_qemu, "running", DEMO_WAIT_MS, error))
		return FALSE;
	demo_step("QEMU: source guest running, destination waiting (-incoming %s), "
		  "-object dbus-vmstate,id-list=" DEMO_VMSTATE_ID,
		  incoming);

	/* the device pre-copy first, alongside the guest; the switchover is QEMU's (Save) */
	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&options, "{sv}", "plain", g_variant_new_boolean(TRUE));
	g_variant_builder_add(&options, "{sv}", "switchover", g_variant_new_string("manual"));
	g_variant_builder_add(&options, "{sv}", "migration-id", g_variant_new_string(DEMO_VM));
	reply = migd_vm_lab_daemon_call(
	    src, "Migrate", g_variant_new("(s^asa{sv})", listen, none, &options), error);
	if (reply == NULL)
		return FALSE;
	g_variant_get(reply, "(&o)", &job);
	deadline = g_get_monotonic_time() + DEMO_WAIT_MS * G_TIME_SPAN_MILLISECOND;
	while (!demo_job_converged(src, job)) {
		if (g_get_monotonic_time() > deadline) {
			g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
					    "the device pre-copy did not converge");
			return FALSE;
		}
		migd_vm_lab_spin(100);
	}
	demo_step("device pre-copy converged after %u rounds; QEMU migrates the guest now",
		  (guint)demo_job_uint64(src, job, "PrecopyRounds"));

	result->vm_downtime_ms = demo_migrate_vm(src_qemu, port, error);
	if (result->vm_downtime_ms < 0)
		return FALSE;
	final = migd_vm_lab_daemon_wait_job(src, job, DEMO_WAIT_MS, error);
	if (final == NULL)
		return FALSE;
	result->device_downtime_us = demo_job_uint64(src, job, "Downtime");
	result->bytes = demo_job_uint64(src, job, "Bytes");
	result->dirty_pages = demo_job_uint64(src, job, "DirtyPages");
	result->rounds = (guint)demo_job_uint64(src, job, "PrecopyRounds");
	result->save_ms = demo_save_ms(src);
	demo_step("QEMU: migration completed; source device job %s", final);

	/* the destination's devices run the source's state */
	result->match = g_strcmp0(final, "completed") == 0;
	for (guint i = 0; result->match && demo_src_specs[i] != NULL; i++) {
		guint64 a = 0;
		guint64 b = 0;
		if (!migd_vm_lab_daemon_wait_device(dst, i, "RUNNING", DEMO_WAIT_MS, error) ||
		    !migd_vm_lab_daemon_device_digest(src, i, &a, error) ||
		    !migd_vm_lab_daemon_device_digest(dst, i, &b, error))
			return FALSE;
		result->match = a == b;
	}
	return TRUE;
}

int
main(int argc, char **argv)
{
	g_autofree gchar *migd = NULL;
	g_autofree gchar *qemu = NULL;
	const GOptionEntry entries[] = {
	    {"migd", 0, 0, G_OPTION_ARG_FILENAME, &migd, "The vfio-migd to run", "PATH"},
	    {"qemu", 0, 0, G_OPTION_ARG_FILENAME, &qemu,
	     "The QEMU to run (default: qemu-system-x86_64)", "PATH"},
	    {NULL},
	};
	g_autoptr(GOptionContext) context =
	    g_option_context_new("- migrate a QEMU VM with its devices");
	g_autoptr(MigdVmLab) lab = NULL;
	g_autoptr(GError) error = NULL;
	DemoResult result = {0};

	setlocale(LC_ALL, "");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error) || migd == NULL) {
		g_printerr("vfio-migd-vm-demo: %s\n",
			   error != NULL ? error->message : "--migd PATH is required");
		return 2;
	}
	lab = migd_vm_lab_new(&error);
	if (lab == NULL) {
		g_printerr("vfio-migd-vm-demo: %s\n", error->message);
		return 1;
	}
	g_print("A QEMU guest (q35, 64 MiB, TCG) migrates over loopback, first alone, then with "
		"two devices held by vfio-migd:\n");
	{
		gint64 runs[DEMO_BASELINE_RUNS];
		for (guint i = 0; i < DEMO_BASELINE_RUNS; i++) {
			runs[i] = demo_baseline(lab, qemu, i, &error);
			if (runs[i] < 0) {
				g_printerr("vfio-migd-vm-demo: the VM without devices: %s\n",
					   error->message);
				return 1;
			}
		}
		qsort(runs, DEMO_BASELINE_RUNS, sizeof(runs[0]), demo_cmp_gint64);
		result.base_min_ms = runs[0];
		result.base_max_ms = runs[DEMO_BASELINE_RUNS - 1];
		result.base_downtime_ms = runs[DEMO_BASELINE_RUNS / 2];
	}
	demo_step("without devices: QEMU's downtime %" G_GINT64_FORMAT
		  " ms (median of %u runs, %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT " ms)",
		  result.base_downtime_ms, DEMO_BASELINE_RUNS, result.base_min_ms,
		  result.base_max_ms);
	if (!demo_vm_with_devices(lab, migd, qemu, &result, &error)) {
		g_printerr("vfio-migd-vm-demo: the VM with devices: %s (logs: %s)\n",
			   error->message, migd_vm_lab_get_dir(lab));
		return 1;
	}
	{
		g_autofree gchar *bytes = g_format_size_full(result.bytes, G_FORMAT_SIZE_IEC_UNITS);
		g_autofree gchar *save =
		    result.save_ms >= 0
			? g_strdup_printf(", Save %" G_GINT64_FORMAT " ms", result.save_ms)
			: g_strdup("");
		g_print("VM migrated with its devices: QEMU downtime %" G_GINT64_FORMAT
			" ms (%" G_GINT64_FORMAT
			" ms without devices, median), devices' share %.1f ms%s; "
			"%s of device state in %u pre-copy rounds, %" G_GUINT64_FORMAT
			" dirty pages; state match: %s\n",
			result.vm_downtime_ms, result.base_downtime_ms,
			result.device_downtime_us / 1000.0, save, bytes, result.rounds,
			result.dirty_pages, result.match ? "yes" : "NO");
	}
	return result.match ? 0 : 1;
}
