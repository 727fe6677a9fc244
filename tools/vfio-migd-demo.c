/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The simulated migration demo: for each simulated device, a source and a
 * destination instance of the same variant driver; the source runs PRE_COPY
 * rounds (where the driver has them) while the destination already loads,
 * then stops, streams the rest, and the destination validates and runs. Every
 * step goes through the core (planner, one arc at a time, recovery policy,
 * data-fd loops), as the engine will; the engine itself comes with issue 4.
 */
#include "config.h"

#include <locale.h>
#include <stdio.h>

#include "migd-device.h"
#include "migd-error.h"
#include "migd-sim-device.h"

#define DEMO_BUFFER_SIZE  (1024 * 1024) /* QEMU's VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE */
#define DEMO_MAX_ROUNDS	  16
#define DEMO_DIRTY_TARGET (4 * 1024 * 1024) /* stop once a round leaves less than this */

static const gchar *const demo_default_devices[] = {
    "mlx5:state_size=256M,seed=11,dirty_rate=64M",
    "mlx5:state_size=64M,seed=12,dirty_rate=16M,save_rate=1G",
    "hisi_acc:seed=13",
    "mtty:seed=14,ports=2",
    "pds:seed=15",
    NULL,
};

typedef struct {
	guint64 bytes;
	guint rounds;
	gdouble downtime_ms;
	gboolean match;
} DemoResult;

static gchar *
demo_size(guint64 bytes)
{
	return g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);
}

/* reads @src_fd until its (temporary or final) end and writes everything to @dst_fd */
static gboolean
demo_pump(MigdDataFd *src_fd, MigdDataFd *dst_fd, MigdState phase, guint8 *buf, guint64 *bytes,
	  GError **error)
{
	for (;;) {
		gsize n = 0;
		MigdDataReadStatus status = MIGD_DATA_READ_DATA;

		if (!migd_data_fd_read_chunk(src_fd, phase, buf, DEMO_BUFFER_SIZE, &n, &status,
					     NULL, error))
			return FALSE;
		if (status != MIGD_DATA_READ_DATA)
			return TRUE;
		if (!migd_data_fd_write_all(dst_fd, buf, n, NULL, error))
			return FALSE;
		*bytes += n;
	}
}

static gboolean
demo_precopy(MigdDevice *src, MigdDataFd *src_fd, MigdDataFd *dst_fd, guint8 *buf,
	     DemoResult *result, GError **error)
{
	const gchar *name = migd_device_get_name(src);

	for (guint round = 1; round <= DEMO_MAX_ROUNDS; round++) {
		guint64 initial = 0;
		guint64 dirty = 0;
		guint64 before = result->bytes;

		/* for mlx5 this also starts the next incremental save */
		if (!migd_data_fd_get_precopy_info(src_fd, &initial, &dirty, error))
			return FALSE;
		if (round > 1 && initial == 0 && dirty < DEMO_DIRTY_TARGET) {
			g_autofree gchar *left = demo_size(dirty);
			g_print("  %-10s precopy converged: %s dirty left for stop-copy\n", name,
				left);
			return TRUE;
		}
		if (!demo_pump(src_fd, dst_fd, MIGD_STATE_PRE_COPY, buf, &result->bytes, error))
			return FALSE;
		result->rounds++;
		{
			g_autofree gchar *moved = demo_size(result->bytes - before);
			g_autofree gchar *ini = demo_size(initial);
			g_autofree gchar *dir = demo_size(dirty);
			g_print("  %-10s precopy round %u: %s (initial %s, dirty %s)\n", name,
				round, moved, ini, dir);
		}
	}
	return TRUE;
}

static gboolean
demo_migrate_one(const gchar *spec, guint index, DemoResult *result, GError **error)
{
	g_autoptr(MigdSimDevice) src = NULL;
	g_autoptr(MigdSimDevice) dst = NULL;
	g_autoptr(MigdDataFd) src_fd = NULL;
	g_autoptr(MigdDataFd) dst_fd = NULL;
	g_autoptr(GError) error_local = NULL;
	g_autofree guint8 *buf = g_malloc(DEMO_BUFFER_SIZE);
	g_autofree gchar *dst_spec = NULL;
	g_autofree gchar *src_name = NULL;
	g_auto(GStrv) parts = g_strsplit(spec, ":", 2);
	gint64 t_stop;
	gboolean precopy;

	src = migd_sim_device_new_from_string(spec, error);
	if (src == NULL)
		return FALSE;
	/* the destination: the same device model (later keys win), its own seed and state */
	dst_spec = g_strdup_printf("%s%sseed=%u", spec, parts[1] != NULL ? "," : ":", 1000 + index);
	dst = migd_sim_device_new_from_string(dst_spec, error);
	if (dst == NULL)
		return FALSE;
	src_name = g_strdup_printf("%s#%u", parts[0], index);
	migd_device_set_name(MIGD_DEVICE(src), src_name);
	migd_device_set_name(MIGD_DEVICE(dst), "dst");

	if (!migd_device_probe(MIGD_DEVICE(src), error))
		return FALSE;
	precopy = (migd_device_get_mig_flags(MIGD_DEVICE(src)) & MIGD_MIG_FLAG_PRE_COPY) != 0;
	{
		g_autofree gchar *size = demo_size(migd_sim_device_get_state_size(src));
		g_print("%s: %s, %s of device state\n", src_name, spec, size);
	}

	/* destination first: nothing on the source moves until it can receive */
	if (!migd_device_transition(MIGD_DEVICE(dst), MIGD_STATE_RESUMING, MIGD_STATE_ERROR,
				    &dst_fd, NULL, error))
		return FALSE;

	if (precopy) {
		if (!migd_device_transition(MIGD_DEVICE(src), MIGD_STATE_PRE_COPY,
					    MIGD_STATE_RUNNING, &src_fd, NULL, &error_local) ||
		    !demo_precopy(MIGD_DEVICE(src), src_fd, dst_fd, buf, result, &error_local)) {
			g_clear_pointer(&src_fd, migd_data_fd_free);
			migd_device_recover(MIGD_DEVICE(src), MIGD_STATE_RUNNING, NULL, NULL);
			migd_device_recover(MIGD_DEVICE(dst), MIGD_STATE_ERROR, NULL, NULL);
			g_propagate_error(error, g_steal_pointer(&error_local));
			return FALSE;
		}
	}

	/* downtime: from the moment the source stops until the destination runs */
	t_stop = g_get_monotonic_time();
	if (!migd_device_transition(MIGD_DEVICE(src), MIGD_STATE_STOP_COPY, MIGD_STATE_RUNNING,
				    precopy ? NULL : &src_fd, NULL, &error_local) ||
	    !demo_pump(src_fd, dst_fd, MIGD_STATE_STOP_COPY, buf, &result->bytes, &error_local) ||
	    !migd_device_transition(MIGD_DEVICE(dst), MIGD_STATE_STOP, MIGD_STATE_ERROR, NULL, NULL,
				    &error_local) ||
	    !migd_device_transition(MIGD_DEVICE(dst), MIGD_STATE_RUNNING, MIGD_STATE_ERROR, NULL,
				    NULL, &error_local)) {
		/* the source resumes; the destination is reset: nothing left stuck */
		g_clear_pointer(&src_fd, migd_data_fd_free);
		migd_device_recover(MIGD_DEVICE(src), MIGD_STATE_RUNNING, NULL, NULL);
		migd_device_recover(MIGD_DEVICE(dst), MIGD_STATE_ERROR, NULL, NULL);
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	result->downtime_ms = (g_get_monotonic_time() - t_stop) / 1000.0;

	/* the source stays stopped; leaving STOP_COPY ends its session */
	if (!migd_device_transition(MIGD_DEVICE(src), MIGD_STATE_STOP, MIGD_STATE_STOP, NULL, NULL,
				    error))
		return FALSE;
	result->match =
	    migd_sim_device_get_state_digest(src) == migd_sim_device_get_state_digest(dst);
	{
		g_autofree gchar *moved = demo_size(result->bytes);
		g_print("%s: done, %s moved, %u precopy rounds, downtime %.1f ms, state %s\n",
			src_name, moved, result->rounds, result->downtime_ms,
			result->match ? "matches byte for byte" : "DIFFERS");
	}
	return TRUE;
}

int
main(int argc, char **argv)
{
	g_auto(GStrv) devices = NULL;
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	const GOptionEntry entries[] = {
	    {"device", 'd', 0, G_OPTION_ARG_STRING_ARRAY, &devices,
	     "A simulated device, e.g. mlx5:state_size=1G,dirty_rate=64M (repeatable)", "SPEC"},
	    {NULL},
	};
	const gchar *const *specs;
	guint n_devices = 0;
	guint n_match = 0;
	guint rounds = 0;
	guint64 bytes = 0;
	gdouble max_downtime = 0;

	setlocale(LC_ALL, "");
	context = g_option_context_new("- simulated VFIO migration demo");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		g_printerr("vfio-migd-demo: %s\n", error->message);
		return 2;
	}
	specs = devices != NULL ? (const gchar *const *)devices : demo_default_devices;

	for (guint i = 0; specs[i] != NULL; i++) {
		DemoResult result = {0};
		if (!demo_migrate_one(specs[i], i, &result, &error)) {
			g_printerr("vfio-migd-demo: %s: %s\n", specs[i], error->message);
			return 1;
		}
		n_devices++;
		n_match += result.match ? 1 : 0;
		rounds += result.rounds;
		bytes += result.bytes;
		max_downtime = MAX(max_downtime, result.downtime_ms);
	}
	{
		g_autofree gchar *total = demo_size(bytes);
		g_print("demo: %u devices, %s, %u precopy rounds, max downtime %.1f ms, "
			"state match: %s\n",
			n_devices, total, rounds, max_downtime,
			n_match == n_devices ? "all byte for byte" : "MISMATCH");
	}
	return n_match == n_devices ? 0 : 1;
}
