/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * TEMP stub of the report API (bench-report.h), only so that bench-stream.c builds and runs
 * on this branch; the real implementation lands from another branch and replaces this file.
 */
#include "config.h"

#include <math.h>

#include "bench-report.h"

typedef struct {
	gchar *line;
	gboolean missed;
} BenchRow;

struct _BenchReport {
	GPtrArray *rows;
};

static void
bench_row_free(gpointer data)
{
	BenchRow *row = data;
	g_free(row->line);
	g_free(row);
}

BenchReport *
bench_report_new(void)
{
	BenchReport *report = g_new0(BenchReport, 1);
	report->rows = g_ptr_array_new_with_free_func(bench_row_free);
	return report;
}

void
bench_report_free(BenchReport *report)
{
	if (report == NULL)
		return;
	g_ptr_array_unref(report->rows);
	g_free(report);
}

void
bench_report_add(BenchReport *report, const gchar *group, const gchar *metric, gdouble ours,
		 const gchar *ours_unit, const gchar *reference, gdouble reference_value,
		 gdouble ratio, BenchTargetKind kind, gdouble target, guint runs, const gchar *note)
{
	BenchRow *row = g_new0(BenchRow, 1);

	row->missed = (kind == BENCH_TARGET_AT_LEAST && !(ratio >= target)) ||
		      (kind == BENCH_TARGET_AT_MOST && !(ratio <= target));
	row->line = g_strdup_printf(
	    "%s: %s: %.1f %s, %s %.1f: ratio %.3f (%s %.2f) %s, %u runs%s%s", group, metric, ours,
	    ours_unit, reference ? reference : "-", reference_value, ratio,
	    kind == BENCH_TARGET_AT_LEAST  ? ">="
	    : kind == BENCH_TARGET_AT_MOST ? "<="
					   : "info",
	    target,
	    kind == BENCH_TARGET_NONE ? ""
	    : row->missed	      ? "MISSED"
				      : "MET",
	    runs, note ? "; " : "", note ? note : "");
	g_ptr_array_add(report->rows, row);
}

void
bench_report_print(BenchReport *report, FILE *out)
{
	for (guint i = 0; i < report->rows->len; i++)
		fprintf(out, "%s\n", ((BenchRow *)report->rows->pdata[i])->line);
}

gboolean
bench_report_write_json(BenchReport *report, const gchar *path, GError **error)
{
	return TRUE;
}

guint
bench_report_missed(BenchReport *report)
{
	guint n = 0;
	for (guint i = 0; i < report->rows->len; i++)
		n += ((BenchRow *)report->rows->pdata[i])->missed;
	return n;
}
