/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GiB devices through two daemons (bench-gib.h). What a daemon may hold in flight: the stream
 * budget, [daemon] max-inflight= (engine/migd-stream-budget.c), set here to BENCH_GIB_INFLIGHT
 * so that the bound is tight, and the connection's send queue, which the budget does not count
 * (up to MIGD_CONNECTION_SEND_HIGH_WATER before the engine stops producing). The peak RSS is
 * VmHWM, read when both jobs completed.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "bench-daemons.h"
#include "bench-gib.h"
#include "migd-connection.h"

#define BENCH_GIB_INFLIGHT ((guint64)32 * 1024 * 1024)
#define MiB		   1048576.0

static gboolean
bench_gib_one(BenchReport *report, guint gib, GError **error)
{
	BenchDaemonsConfig config = {
	    .migd = BENCH_MIGD_PATH,
	    .plugin_dir = BENCH_PLUGIN_DIR,
	    .state_size = (guint64)gib << 30,
	    .max_inflight = BENCH_GIB_INFLIGHT,
	    .timeout_s = 600,
	    .verify = TRUE,
	};
	static const gchar *const who[] = {"source", "destination"};
	BenchDaemonsResult result;
	gdouble bound =
	    (BENCH_DAEMONS_RSS_BASE + BENCH_GIB_INFLIGHT + MIGD_CONNECTION_SEND_HIGH_WATER) / MiB;
	g_autofree gchar *metric =
	    g_strdup_printf("%u GiB mlx5 device, two daemons, mutual TLS", gib);
	g_autofree gchar *note = NULL;
	g_autofree gchar *reference =
	    g_strdup_printf("bound: 64 MiB + max-inflight %.0f + send queue %.0f",
			    BENCH_GIB_INFLIGHT / MiB, MIGD_CONNECTION_SEND_HIGH_WATER / MiB);

	if (!bench_daemons_migrate(&config, &result, error)) {
		g_prefix_error(error, "%u GiB: ", gib);
		return FALSE;
	}
	note = g_strdup_printf("%.1f s from Migrate to Completed, %.2f GiB moved, %s",
			       result.seconds, result.bytes / (MiB * 1024),
			       result.verified ? "states equal (sim-digest)" : "not verified");
	bench_report_add(report, "GiB devices", metric, result.bytes / MiB / result.seconds,
			 "MiB/s", NULL, NAN, NAN, BENCH_TARGET_NONE, 0, 1, note);
	for (guint role = 0; role < 2; role++) {
		gdouble peak = result.hwm_kib[role] / 1024.0;
		g_autofree gchar *what =
		    g_strdup_printf("%u GiB: peak RSS of the %s daemon", gib, who[role]);
		g_autofree gchar *rss_note = g_strdup_printf(
		    "%s the bound; %.1f MiB before the migration",
		    peak <= bound ? "within" : "OVER", result.rss_idle_kib[role] / 1024.0);

		bench_report_add(report, "GiB devices", what, peak, "MiB", reference, bound,
				 peak / bound, BENCH_TARGET_NONE, 0, 1, rss_note);
	}
	return TRUE;
}

/* the sizes of @sizes ("4,8"), GiB, each 1 to 16 (the simulator's largest state) */
static GArray *
bench_gib_parse(const gchar *sizes, GError **error)
{
	g_auto(GStrv) words = g_strsplit(sizes, ",", -1);
	g_autoptr(GArray) gibs = g_array_new(FALSE, FALSE, sizeof(guint));

	for (guint i = 0; words[i] != NULL; i++) {
		gchar *end = NULL;
		guint64 gib = g_ascii_strtoull(words[i], &end, 10);
		guint v = (guint)gib;

		if (end == words[i] || *end != '\0' || gib == 0 || gib > 16) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "--gib-sizes: '%s' is not a size of 1 to 16 (GiB)", words[i]);
			return NULL;
		}
		g_array_append_val(gibs, v);
	}
	if (gibs->len == 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--gib-sizes: no size given");
		return NULL;
	}
	return g_steal_pointer(&gibs);
}

gboolean
bench_gib_check_sizes(const gchar *sizes, GError **error)
{
	g_autoptr(GArray) gibs = bench_gib_parse(sizes, error);
	return gibs != NULL;
}

gboolean
bench_gib(BenchReport *report, const gchar *sizes, GError **error)
{
	g_autoptr(GArray) gibs = bench_gib_parse(sizes, error);

	if (gibs == NULL)
		return FALSE;
	for (guint i = 0; i < gibs->len; i++) {
		if (!bench_gib_one(report, g_array_index(gibs, guint, i), error))
			return FALSE;
	}
	return TRUE;
}
