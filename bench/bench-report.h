/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <stdio.h>

G_BEGIN_DECLS

/*
 * What every benchmark reports, in one place: each row is one metric measured side by side
 * with its reference in the same run, their ratio and the target the ratio must meet. The
 * report prints one table (metric, ours, reference, ratio, target, met), a summary line, and
 * writes the same rows as JSON (docs/ABI/testing/bench-json) for the chart and the history.
 * A missed target is a row of the table, not an error: only the caller decides (bench-strict).
 */

typedef enum {
	BENCH_TARGET_NONE,     /* an information row: shown, never missed */
	BENCH_TARGET_AT_LEAST, /* met when ratio >= target */
	BENCH_TARGET_AT_MOST,  /* met when ratio <= target */
} BenchTargetKind;

typedef struct _BenchReport BenchReport;

BenchReport *bench_report_new(void);
void bench_report_free(BenchReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BenchReport, bench_report_free)

/*
 * One row. @group: the section ("stream", "downtime", "dirty codec", ...); @metric: what was
 * measured, in words; @ours/@ours_unit: our figure ("MiB/s", "ms", "MiB"); @reference: what it
 * is compared with, in words (NULL for none), @reference_value in @ours_unit; @ratio: ours /
 * reference as the metric defines it (NAN for none); @runs: how many runs the figures are the
 * median of (their spread goes into @note, e.g. "min 0.88, max 0.93"); @note may be NULL.
 */
void bench_report_add(BenchReport *report, const gchar *group, const gchar *metric, gdouble ours,
		      const gchar *ours_unit, const gchar *reference, gdouble reference_value,
		      gdouble ratio, BenchTargetKind kind, gdouble target, guint runs,
		      const gchar *note);

/* prints the table and the summary line ("N targets: M met, K missed: ...") */
void bench_report_print(BenchReport *report, FILE *out);
/* the rows as one JSON document at @path */
gboolean bench_report_write_json(BenchReport *report, const gchar *path, GError **error);
/* the rows whose target was missed */
guint bench_report_missed(BenchReport *report);

G_END_DECLS
