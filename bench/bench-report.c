/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The one table every benchmark fills (bench-report.h): rows kept in the order added, printed
 * grouped by section in that order, and written as JSON (docs/ABI/testing/bench-json).
 */
#include "config.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "bench-report.h"

/* the table's columns, in characters: 116 in all with the separators */
#define COL_METRIC 40
#define COL_OURS   13
#define COL_REF	   31
#define COL_RATIO  7
#define COL_TARGET 8
#define COL_MET	   7
#define COL_NOTE   (COL_METRIC + COL_OURS + COL_REF + COL_RATIO + COL_TARGET + COL_MET + 10 - 4)

typedef struct {
	gchar *group;
	gchar *metric;
	gdouble ours;
	gchar *ours_unit;
	gchar *reference;
	gdouble reference_value;
	gdouble ratio;
	BenchTargetKind kind;
	gdouble target;
	guint runs;
	gchar *note;
} BenchRow;

struct _BenchReport {
	GPtrArray *rows;
	GDateTime *started;
};

static void
bench_row_free(BenchRow *row)
{
	g_free(row->group);
	g_free(row->metric);
	g_free(row->ours_unit);
	g_free(row->reference);
	g_free(row->note);
	g_free(row);
}

BenchReport *
bench_report_new(void)
{
	BenchReport *report = g_new0(BenchReport, 1);

	report->rows = g_ptr_array_new_with_free_func((GDestroyNotify)bench_row_free);
	report->started = g_date_time_new_now_utc();
	return report;
}

void
bench_report_free(BenchReport *report)
{
	if (report == NULL)
		return;
	g_ptr_array_unref(report->rows);
	g_date_time_unref(report->started);
	g_free(report);
}

void
bench_report_add(BenchReport *report, const gchar *group, const gchar *metric, gdouble ours,
		 const gchar *ours_unit, const gchar *reference, gdouble reference_value,
		 gdouble ratio, BenchTargetKind kind, gdouble target, guint runs, const gchar *note)
{
	BenchRow *row = g_new0(BenchRow, 1);

	row->group = g_strdup(group);
	row->metric = g_strdup(metric);
	row->ours = ours;
	row->ours_unit = g_strdup(ours_unit != NULL ? ours_unit : "");
	row->reference = g_strdup(reference);
	row->reference_value = reference_value;
	row->ratio = ratio;
	row->kind = kind;
	row->target = target;
	row->runs = runs;
	row->note = g_strdup(note);
	g_ptr_array_add(report->rows, row);
}

/* a row with a target is missed when its ratio does not meet it, or could not be measured */
static gboolean
bench_row_missed(const BenchRow *row)
{
	switch (row->kind) {
	case BENCH_TARGET_AT_LEAST:
		return !(row->ratio >= row->target);
	case BENCH_TARGET_AT_MOST:
		return !(row->ratio <= row->target);
	case BENCH_TARGET_NONE:
		break;
	}
	return FALSE;
}

static const gchar *
bench_row_status(const BenchRow *row)
{
	if (row->kind == BENCH_TARGET_NONE)
		return "info";
	return bench_row_missed(row) ? "MISSED" : "met";
}

guint
bench_report_missed(BenchReport *report)
{
	guint missed = 0;

	for (guint i = 0; i < report->rows->len; i++)
		missed += bench_row_missed(g_ptr_array_index(report->rows, i));
	return missed;
}

static guint
bench_report_targets(BenchReport *report)
{
	guint targets = 0;

	for (guint i = 0; i < report->rows->len; i++)
		targets +=
		    ((BenchRow *)g_ptr_array_index(report->rows, i))->kind != BENCH_TARGET_NONE;
	return targets;
}

/* a figure with the digits that matter at its size: 1176, 24.6, 0.95, 0.0017 */
static gchar *
bench_format_number(gdouble v)
{
	gdouble a = fabs(v);

	if (isnan(v))
		return g_strdup("-");
	if (a >= 100 || a == 0)
		return g_strdup_printf("%.0f", v);
	if (a >= 10)
		return g_strdup_printf("%.1f", v);
	if (a >= 0.1)
		return g_strdup_printf("%.2f", v);
	if (a >= 0.001)
		return g_strdup_printf("%.4f", v);
	return g_strdup_printf("%.2g", v);
}

static gchar *
bench_format_value(gdouble v, const gchar *unit)
{
	g_autofree gchar *num = bench_format_number(v);

	if (isnan(v) || unit == NULL || *unit == '\0')
		return g_steal_pointer(&num);
	return g_strdup_printf("%s %s", num, unit);
}

static gchar *
bench_format_target(const BenchRow *row)
{
	g_autofree gchar *num = bench_format_number(row->target);

	switch (row->kind) {
	case BENCH_TARGET_AT_LEAST:
		return g_strdup_printf(">= %s", num);
	case BENCH_TARGET_AT_MOST:
		return g_strdup_printf("<= %s", num);
	case BENCH_TARGET_NONE:
		break;
	}
	return g_strdup("-");
}

/* @text cut into lines of at most @width characters at spaces (a longer word is cut) */
static GPtrArray *
bench_wrap(const gchar *text, guint width)
{
	GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
	const gchar *p = text != NULL ? text : "";

	while (*p == ' ')
		p++;
	while (*p != '\0') {
		gsize len = strlen(p);
		gsize cut = len;

		if (len > width) {
			cut = width;
			/* never between a number and its "%" */
			while (cut > 0 && (p[cut] != ' ' || p[cut + 1] == '%'))
				cut--;
			if (cut == 0)
				cut = width;
		}
		g_ptr_array_add(lines, g_strndup(p, cut));
		p += cut;
		while (*p == ' ')
			p++;
	}
	if (lines->len == 0)
		g_ptr_array_add(lines, g_strdup(""));
	return lines;
}

static const gchar *
bench_line(GPtrArray *lines, guint i)
{
	return i < lines->len ? g_ptr_array_index(lines, i) : "";
}

static void
bench_print_rule(FILE *out)
{
	guint width = COL_METRIC + COL_OURS + COL_REF + COL_RATIO + COL_TARGET + COL_MET + 10;

	for (guint i = 0; i < width; i++)
		fputc('-', out);
	fputc('\n', out);
}

static void
bench_print_row(const BenchRow *row, FILE *out)
{
	g_autofree gchar *ours = bench_format_value(row->ours, row->ours_unit);
	g_autofree gchar *ref_value =
	    isnan(row->reference_value) ? NULL
					: bench_format_value(row->reference_value, row->ours_unit);
	g_autofree gchar *ref = NULL;
	g_autofree gchar *ratio = bench_format_number(row->ratio);
	g_autofree gchar *target = bench_format_target(row);
	g_autoptr(GPtrArray) metric = bench_wrap(row->metric, COL_METRIC);
	g_autoptr(GPtrArray) reference = NULL;
	guint n;

	if (row->reference != NULL && ref_value != NULL)
		ref = g_strdup_printf("%s: %s", ref_value, row->reference);
	else
		ref = g_strdup(row->reference != NULL ? row->reference
			       : ref_value != NULL    ? ref_value
						      : "-");
	reference = bench_wrap(ref, COL_REF);
	n = MAX(metric->len, reference->len);
	for (guint i = 0; i < n; i++) {
		gboolean first = i == 0;

		/* continuation lines carry only the wrapped words: no padding at their ends */
		g_autofree gchar *line = g_strdup_printf(
		    "%-*s  %*s  %-*s  %*s  %-*s  %s", COL_METRIC, bench_line(metric, i), COL_OURS,
		    first ? ours : "", COL_REF, bench_line(reference, i), COL_RATIO,
		    first ? ratio : "", COL_TARGET, first ? target : "",
		    first ? bench_row_status(row) : "");

		fprintf(out, "%s\n", g_strchomp(line));
	}
	if (row->note != NULL || row->runs > 1) {
		g_autofree gchar *note =
		    row->runs > 1
			? g_strdup_printf("%u runs%s%s", row->runs, row->note != NULL ? "; " : "",
					  row->note != NULL ? row->note : "")
			: g_strdup(row->note);
		g_autoptr(GPtrArray) lines = bench_wrap(note, COL_NOTE);

		for (guint i = 0; i < lines->len; i++)
			fprintf(out, "    %s\n", (const gchar *)g_ptr_array_index(lines, i));
	}
}

static gchar *
bench_report_summary(BenchReport *report)
{
	GString *summary = g_string_new(NULL);
	guint targets = bench_report_targets(report);
	guint missed = bench_report_missed(report);
	guint info = report->rows->len - targets;
	const gchar *group = NULL;
	gboolean first = TRUE;

	g_string_append_printf(summary, "%u target%s: %u met, %u missed", targets,
			       targets == 1 ? "" : "s", targets - missed, missed);
	for (guint i = 0; i < report->rows->len; i++) {
		const BenchRow *row = g_ptr_array_index(report->rows, i);

		if (!bench_row_missed(row))
			continue;
		/* "group: a, b; other group: c" */
		if (first || g_strcmp0(group, row->group) != 0)
			g_string_append_printf(summary, "%s%s: %s", first ? " (" : "; ", row->group,
					       row->metric);
		else
			g_string_append_printf(summary, ", %s", row->metric);
		group = row->group;
		first = FALSE;
	}
	if (!first)
		g_string_append_c(summary, ')');
	g_string_append_printf(summary, "; %u information row%s", info, info == 1 ? "" : "s");
	return g_string_free(summary, FALSE);
}

static gdouble
bench_load_average(void)
{
	g_autofree gchar *text = NULL;

	if (!g_file_get_contents("/proc/loadavg", &text, NULL, NULL))
		return NAN;
	return g_ascii_strtod(text, NULL);
}

void
bench_report_print(BenchReport *report, FILE *out)
{
	g_autofree gchar *date = g_date_time_format(report->started, "%Y-%m-%d %H:%M UTC");
	g_autofree gchar *summary = bench_report_summary(report);
	g_autoptr(GHashTable) printed = g_hash_table_new(g_str_hash, g_str_equal);

	fprintf(out,
		"\nvfio-migd bench, %s, %u CPUs, load average %.1f at the end (one run: compare "
		"ratios, not rates)\n",
		date, g_get_num_processors(), bench_load_average());
	bench_print_rule(out);
	fprintf(out, "%-*s  %*s  %-*s  %*s  %-*s  %s\n", COL_METRIC, "metric", COL_OURS, "ours",
		COL_REF, "reference", COL_RATIO, "ratio", COL_TARGET, "target", "met");
	/* rows of a section together, the sections in the order they first came */
	for (guint i = 0; i < report->rows->len; i++) {
		const BenchRow *row = g_ptr_array_index(report->rows, i);
		const gchar *group = row->group;

		if (!g_hash_table_add(printed, row->group))
			continue;
		bench_print_rule(out);
		fprintf(out, "[%s]\n", group);
		for (guint j = i; j < report->rows->len; j++) {
			const BenchRow *r = g_ptr_array_index(report->rows, j);
			if (g_strcmp0(r->group, group) == 0)
				bench_print_row(r, out);
		}
	}
	bench_print_rule(out);
	{
		g_autoptr(GPtrArray) lines = bench_wrap(summary, COL_NOTE + 4);

		for (guint i = 0; i < lines->len; i++)
			fprintf(out, "%s%s\n", i > 0 ? "  " : "",
				(const gchar *)g_ptr_array_index(lines, i));
	}
	fflush(out);
}

static void
bench_json_number(JsonBuilder *builder, const gchar *key, gdouble v)
{
	json_builder_set_member_name(builder, key);
	if (isnan(v) || isinf(v))
		json_builder_add_null_value(builder);
	else
		json_builder_add_double_value(builder, v);
}

static void
bench_json_string(JsonBuilder *builder, const gchar *key, const gchar *v)
{
	json_builder_set_member_name(builder, key);
	if (v == NULL)
		json_builder_add_null_value(builder);
	else
		json_builder_add_string_value(builder, v);
}

static const gchar *
bench_kind_name(BenchTargetKind kind)
{
	switch (kind) {
	case BENCH_TARGET_AT_LEAST:
		return "at-least";
	case BENCH_TARGET_AT_MOST:
		return "at-most";
	case BENCH_TARGET_NONE:
		break;
	}
	return "none";
}

gboolean
bench_report_write_json(BenchReport *report, const gchar *path, GError **error)
{
	g_autoptr(JsonBuilder) builder = json_builder_new();
	g_autoptr(JsonGenerator) generator = json_generator_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *date = g_date_time_format_iso8601(report->started);
	g_autofree gchar *summary = bench_report_summary(report);
	g_autofree gchar *text = NULL;
	g_autofree gchar *dir = g_path_get_dirname(path);
	guint targets = bench_report_targets(report);
	guint missed = bench_report_missed(report);

	json_builder_begin_object(builder);
	json_builder_set_member_name(builder, "format");
	json_builder_add_int_value(builder, 1);
	bench_json_string(builder, "date", date);
	json_builder_set_member_name(builder, "cpus");
	json_builder_add_int_value(builder, g_get_num_processors());
	bench_json_number(builder, "load_average", bench_load_average());
	json_builder_set_member_name(builder, "targets");
	json_builder_add_int_value(builder, targets);
	json_builder_set_member_name(builder, "met");
	json_builder_add_int_value(builder, targets - missed);
	json_builder_set_member_name(builder, "missed");
	json_builder_add_int_value(builder, missed);
	bench_json_string(builder, "summary", summary);
	json_builder_set_member_name(builder, "rows");
	json_builder_begin_array(builder);
	for (guint i = 0; i < report->rows->len; i++) {
		const BenchRow *row = g_ptr_array_index(report->rows, i);

		json_builder_begin_object(builder);
		bench_json_string(builder, "group", row->group);
		bench_json_string(builder, "metric", row->metric);
		bench_json_number(builder, "ours", row->ours);
		bench_json_string(builder, "unit", row->ours_unit);
		bench_json_string(builder, "reference", row->reference);
		bench_json_number(builder, "reference_value", row->reference_value);
		bench_json_number(builder, "ratio", row->ratio);
		bench_json_string(builder, "target_kind", bench_kind_name(row->kind));
		bench_json_number(builder, "target",
				  row->kind == BENCH_TARGET_NONE ? NAN : row->target);
		bench_json_string(builder, "status",
				  row->kind == BENCH_TARGET_NONE ? "info"
				  : bench_row_missed(row)	 ? "missed"
								 : "met");
		json_builder_set_member_name(builder, "runs");
		json_builder_add_int_value(builder, row->runs);
		bench_json_string(builder, "note", row->note);
		json_builder_end_object(builder);
	}
	json_builder_end_array(builder);
	json_builder_end_object(builder);

	root = json_builder_get_root(builder);
	json_generator_set_root(generator, root);
	json_generator_set_pretty(generator, TRUE);
	text = json_generator_to_data(generator, NULL);
	if (g_mkdir_with_parents(dir, 0755) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "cannot create %s: %s", dir, g_strerror(errno));
		return FALSE;
	}
	if (!g_file_set_contents(path, text, -1, error)) {
		g_prefix_error(error, "bench results: ");
		return FALSE;
	}
	return TRUE;
}
