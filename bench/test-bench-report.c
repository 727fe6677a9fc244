/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The bench report (bench-report.c) without running a benchmark: what the table and the
 * summary say for met, missed, information and unmeasured rows, that the table fits its
 * width, and that the JSON says the same (docs/ABI/testing/bench-json).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-report.h"

static BenchReport *
test_report(void)
{
	BenchReport *report = bench_report_new();

	bench_report_add(report, "stop-copy", "1 GiB mlx5 state, engine over loopback TCP", 1176,
			 "MiB/s", "plain TCP relay of the same device state", 1070, 1.10,
			 BENCH_TARGET_AT_LEAST, 0.95, 5, "min 1.02, max 1.17");
	bench_report_add(report, "downtime", "4 devices in parallel", 270, "ms",
			 "the same 4 one after another", 1008, 0.27, BENCH_TARGET_AT_MOST, 0.30, 1,
			 NULL);
	bench_report_add(report, "dirty codec", "1 % scattered report-to-wire", 4.9, "GB/s",
			 "popcount scan", 25, 0.20, BENCH_TARGET_AT_LEAST, 0.5, 1, NULL);
	/* a ratio that could not be measured cannot meet its target */
	bench_report_add(report, "dirty codec", "50 % clustered report-to-wire", NAN, "GB/s",
			 "popcount scan", 25, NAN, BENCH_TARGET_AT_LEAST, 0.5, 1, NULL);
	bench_report_add(report, "GiB devices", "8 GiB: peak RSS of the source daemon", 86.3, "MiB",
			 "bound: 64 MiB + max-inflight 32 + send queue 32", 128, 0.67,
			 BENCH_TARGET_NONE, 0, 1, "within the bound");
	/* a group that comes back later is printed with its first rows */
	bench_report_add(report, "stop-copy", "the same engine against the link", 1176, "MiB/s",
			 "TCP copy of 1 GiB from memory", 3238, 0.36, BENCH_TARGET_NONE, 0, 1,
			 NULL);
	return report;
}

static gchar *
test_print(BenchReport *report)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	gchar *text;

	assert_non_null(out);
	bench_report_print(report, out);
	fclose(out);
	/* a copy the caller frees with g_free */
	text = g_strndup(buf, len);
	free(buf);
	return text;
}

static void
test_table(void **state)
{
	g_autoptr(BenchReport) report = test_report();
	g_autofree gchar *text = test_print(report);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	const gchar *stop_copy = strstr(text, "[stop-copy]");
	const gchar *downtime = strstr(text, "[downtime]");

	assert_int_equal(bench_report_missed(report), 2);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_utf8_strlen(lines[i], -1) > 120)
			fail_msg("line %u is %ld characters: %s", i, g_utf8_strlen(lines[i], -1),
				 lines[i]);
	}
	assert_non_null(strstr(text, "metric"));
	assert_non_null(strstr(text, "1176 MiB/s"));
	assert_non_null(strstr(text, ">= 0.95"));
	assert_non_null(strstr(text, "<= 0.30"));
	assert_non_null(strstr(text, "MISSED"));
	assert_non_null(strstr(text, "info"));
	assert_non_null(strstr(text, "5 runs; min 1.02, max 1.17"));
	/* the section printed once, both its rows under it, before the next section */
	assert_non_null(stop_copy);
	assert_non_null(downtime);
	assert_null(strstr(stop_copy + 1, "[stop-copy]"));
	assert_true(strstr(text, "the same engine against the link") < downtime);
	/* the summary, last, wrapped to the table's width */
	{
		g_autofree gchar *summary = g_strdup(strstr(text, "4 targets: "));
		g_auto(GStrv) parts = NULL;
		g_autofree gchar *joined = NULL;

		assert_non_null(summary);
		parts = g_strsplit(g_strchomp(summary), "\n  ", -1);
		joined = g_strjoinv(" ", parts);
		assert_string_equal(joined,
				    "4 targets: 2 met, 2 missed (dirty codec: 1 % scattered "
				    "report-to-wire, 50 % clustered report-to-wire); 2 information "
				    "rows");
	}
}

static void
test_json(void **state)
{
	g_autoptr(BenchReport) report = test_report();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = g_dir_make_tmp("bench-report-XXXXXX", &error);
	g_autofree gchar *path = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *root;
	JsonArray *rows;
	JsonObject *row;

	assert_non_null(dir);
	/* the directory is made when missing */
	path = g_build_filename(dir, "sub", "results.json", NULL);
	assert_true(bench_report_write_json(report, path, &error));
	assert_true(json_parser_load_from_file(parser, path, &error));
	root = json_node_get_object(json_parser_get_root(parser));
	assert_int_equal(json_object_get_int_member(root, "format"), 1);
	assert_int_equal(json_object_get_int_member(root, "targets"), 4);
	assert_int_equal(json_object_get_int_member(root, "met"), 2);
	assert_int_equal(json_object_get_int_member(root, "missed"), 2);
	rows = json_object_get_array_member(root, "rows");
	assert_int_equal(json_array_get_length(rows), 6);

	row = json_array_get_object_element(rows, 0);
	assert_string_equal(json_object_get_string_member(row, "group"), "stop-copy");
	assert_string_equal(json_object_get_string_member(row, "unit"), "MiB/s");
	assert_true(json_object_get_double_member(row, "ratio") == 1.10);
	assert_string_equal(json_object_get_string_member(row, "target_kind"), "at-least");
	assert_string_equal(json_object_get_string_member(row, "status"), "met");
	assert_int_equal(json_object_get_int_member(row, "runs"), 5);

	row = json_array_get_object_element(rows, 1);
	assert_string_equal(json_object_get_string_member(row, "target_kind"), "at-most");
	assert_true(json_object_get_null_member(row, "note"));

	/* NaN is null, never a number */
	row = json_array_get_object_element(rows, 3);
	assert_true(json_object_get_null_member(row, "ratio"));
	assert_true(json_object_get_null_member(row, "ours"));
	assert_string_equal(json_object_get_string_member(row, "status"), "missed");

	row = json_array_get_object_element(rows, 4);
	assert_string_equal(json_object_get_string_member(row, "target_kind"), "none");
	assert_true(json_object_get_null_member(row, "target"));
	assert_string_equal(json_object_get_string_member(row, "status"), "info");

	g_unlink(path);
	{
		g_autofree gchar *sub = g_path_get_dirname(path);
		g_rmdir(sub);
	}
	g_rmdir(dir);
}

static void
test_json_unwritable(void **state)
{
	g_autoptr(BenchReport) report = test_report();
	g_autoptr(GError) error = NULL;

	assert_false(bench_report_write_json(report, "/proc/no-such-dir/results.json", &error));
	assert_non_null(error);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_json_unwritable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
