/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Range planning (dirty/migd-dirty-ranges.c): the plan against a brute-force
 * oracle on random small inputs, joins, limits, errors, QEMU's three-range
 * reduction, totals and the text form.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "migd-dirty-ranges.h"
#include "migd-error.h"

#define KiB ((guint64)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

static const MigdIovaRange *
ranges_of(GArray *a)
{
	return (const MigdIovaRange *)a->data;
}

static MigdIovaRange
range_at(GArray *a, guint i)
{
	return g_array_index(a, MigdIovaRange, i);
}

static void
assert_range(GArray *a, guint i, guint64 iova, guint64 length)
{
	MigdIovaRange r = range_at(a, i);
	if (r.iova != iova || r.length != length)
		fail_msg("range %u: 0x%" G_GINT64_MODIFIER "x+0x%" G_GINT64_MODIFIER
			 "x, expected 0x%" G_GINT64_MODIFIER "x+0x%" G_GINT64_MODIFIER "x",
			 i, r.iova, r.length, iova, length);
}

static GArray *
plan_ok(const MigdIovaRange *ranges, guint n, guint max)
{
	g_autoptr(GError) error = NULL;
	GArray *plan = migd_dirty_ranges_plan(ranges, n, max, &error);
	if (plan == NULL)
		fail_msg("plan: %s", error->message);
	return plan;
}

/* sorted, disjoint, not touching, non-empty, not wrapping */
static void
assert_plan_shape(GArray *plan)
{
	for (guint i = 0; i < plan->len; i++) {
		MigdIovaRange r = range_at(plan, i);
		assert_true(r.length > 0);
		assert_true(r.length - 1 <= G_MAXUINT64 - r.iova);
		if (i > 0) {
			MigdIovaRange p = range_at(plan, i - 1);
			/* a gap of at least one byte after the previous one */
			assert_true(p.iova + p.length < r.iova);
		}
	}
}

/* ---- joins and limits ---- */

static void
test_plan_joins(void **state)
{
	const MigdIovaRange in[] = {
	    {.iova = 0x3000, .length = 0x1000},	 {.iova = 0x0, .length = 0x1000},
	    {.iova = 0x1000, .length = 0x1000}, /* touches the one before */
	    {.iova = 0x500, .length = 0x100},	/* inside */
	    {.iova = 0x3800, .length = 0x1000}, /* overlaps */
	    {.iova = 0x10000, .length = 0x1000},
	};
	g_autoptr(GArray) plan = plan_ok(in, G_N_ELEMENTS(in), 0);
	g_autoptr(GArray) big = plan_ok(in, G_N_ELEMENTS(in), 100);

	assert_int_equal(plan->len, 3);
	assert_range(plan, 0, 0x0, 0x2000);
	assert_range(plan, 1, 0x3000, 0x1800);
	assert_range(plan, 2, 0x10000, 0x1000);
	assert_plan_shape(plan);
	/* a limit above the count changes nothing */
	assert_int_equal(big->len, 3);
	assert_int_equal(migd_dirty_ranges_total(ranges_of(big), big->len),
			 0x2000 + 0x1800 + 0x1000);
}

static void
test_plan_limits(void **state)
{
	/* gaps: 0x1000, 0x3000, 0x2000, 0x8000 */
	const MigdIovaRange in[] = {
	    {.iova = 0x00000, .length = 0x1000}, {.iova = 0x02000, .length = 0x1000},
	    {.iova = 0x06000, .length = 0x1000}, {.iova = 0x09000, .length = 0x1000},
	    {.iova = 0x12000, .length = 0x1000},
	};
	g_autoptr(GArray) p4 = plan_ok(in, 5, 4);
	g_autoptr(GArray) p3 = plan_ok(in, 5, 3);
	g_autoptr(GArray) p2 = plan_ok(in, 5, 2);
	g_autoptr(GArray) p1 = plan_ok(in, 5, 1);

	assert_int_equal(p4->len, 4);
	assert_range(p4, 0, 0x0, 0x3000);
	assert_int_equal(p3->len, 3);
	assert_range(p3, 0, 0x0, 0x3000);
	assert_range(p3, 1, 0x6000, 0x4000);
	assert_int_equal(p2->len, 2);
	assert_range(p2, 0, 0x0, 0xa000);
	assert_range(p2, 1, 0x12000, 0x1000);
	assert_int_equal(p1->len, 1);
	assert_range(p1, 0, 0x0, 0x13000);
}

/* of equal gaps the lowest closes first, as the kernel's vfio_combine_iova_ranges() */
static void
test_plan_equal_gaps(void **state)
{
	const MigdIovaRange in[] = {
	    {.iova = 0x0000, .length = 0x1000},
	    {.iova = 0x2000, .length = 0x1000},
	    {.iova = 0x4000, .length = 0x1000},
	};
	g_autoptr(GArray) p2 = plan_ok(in, 3, 2);

	assert_int_equal(p2->len, 2);
	assert_range(p2, 0, 0x0, 0x3000);
	assert_range(p2, 1, 0x4000, 0x1000);
}

static void
test_plan_top_of_space(void **state)
{
	const MigdIovaRange top = {.iova = G_MAXUINT64 - 0xfff, .length = 0x1000};
	const MigdIovaRange two[] = {{.iova = 0x1000, .length = 0x1000}, top};
	const MigdIovaRange all[] = {{.iova = 0, .length = 0x1000}, top};
	g_autoptr(GArray) p = plan_ok(&top, 1, 0);
	g_autoptr(GArray) p1 = plan_ok(two, 2, 1);
	g_autoptr(GError) error = NULL;

	/* a range may end exactly at 2^64 */
	assert_range(p, 0, G_MAXUINT64 - 0xfff, 0x1000);
	assert_range(p1, 0, 0x1000, G_MAXUINT64 - 0xfff);
	assert_int_equal(migd_dirty_ranges_total(ranges_of(p1), 1), G_MAXUINT64 - 0xfff);
	/* but one range over all of it has no length */
	assert_null(migd_dirty_ranges_plan(all, 2, 1, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_int_equal(migd_dirty_ranges_total(all, 2), 0x2000);
}

static void
test_plan_errors(void **state)
{
	const MigdIovaRange zero[] = {{.iova = 0x1000, .length = 0x1000},
				      {.iova = 0x5000, .length = 0}};
	const MigdIovaRange wrap = {.iova = G_MAXUINT64 - 0xfff, .length = 0x2000};
	const MigdIovaRange whole[] = {{.iova = 0, .length = 1ull << 63},
				       {.iova = 1ull << 63, .length = 1ull << 63}};
	const MigdIovaRange one = {.iova = 0, .length = 0x1000};
	GError *error = NULL;

	assert_null(migd_dirty_ranges_plan(&one, 0, 0, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_null(migd_dirty_ranges_plan(NULL, 0, 4, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_null(migd_dirty_ranges_plan(zero, 2, 0, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "length 0"));
	g_clear_error(&error);
	assert_null(migd_dirty_ranges_plan(&wrap, 1, 0, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "wraps"));
	g_clear_error(&error);
	/* two halves make a length of 2^64, which no MigdIovaRange holds */
	assert_null(migd_dirty_ranges_plan(whole, 2, 0, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
}

/* ---- the oracle ---- */

#define ORACLE_SPACE 256 /* bytes of address space the random inputs live in */

/* joined spans of @in as [start, end) over a byte map */
static guint
oracle_spans(const gboolean *covered, guint64 *starts, guint64 *ends)
{
	guint n = 0;
	for (guint b = 0; b < ORACLE_SPACE; b++) {
		if (!covered[b])
			continue;
		if (b > 0 && covered[b - 1]) {
			ends[n - 1] = b + 1;
			continue;
		}
		starts[n] = b;
		ends[n] = b + 1;
		n++;
	}
	return n;
}

/* the fewest bytes @max ranges can cover the spans with: tries every set of gaps to close */
static guint64
oracle_min_bytes(const guint64 *starts, const guint64 *ends, guint n, guint max)
{
	guint64 best = G_MAXUINT64;
	guint n_gaps = n - 1;

	if (max == 0 || n <= max) {
		guint64 sum = 0;
		for (guint i = 0; i < n; i++)
			sum += ends[i] - starts[i];
		return sum;
	}
	for (guint mask = 0; mask < (1u << n_gaps); mask++) {
		guint64 bytes = 0;
		guint closed = (guint)__builtin_popcount(mask);

		/* closing k gaps leaves n - k ranges */
		if (n - closed > max)
			continue;
		for (guint i = 0; i < n; i++)
			bytes += ends[i] - starts[i];
		for (guint g = 0; g < n_gaps; g++) {
			if (mask & (1u << g))
				bytes += starts[g + 1] - ends[g];
		}
		best = MIN(best, bytes);
	}
	return best;
}

static void
test_plan_oracle(void **state)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(0x5eed);

	for (guint iter = 0; iter < 3000; iter++) {
		guint n = (guint)g_rand_int_range(rand, 1, 11);
		MigdIovaRange in[10];
		gboolean covered[ORACLE_SPACE] = {FALSE};
		guint64 starts[ORACLE_SPACE], ends[ORACLE_SPACE];
		guint n_spans;

		for (guint i = 0; i < n; i++) {
			guint64 iova = (guint64)g_rand_int_range(rand, 0, ORACLE_SPACE - 1);
			guint64 len = (guint64)g_rand_int_range(rand, 1, 24);
			len = MIN(len, ORACLE_SPACE - iova);
			in[i] = (MigdIovaRange){.iova = iova, .length = len};
			for (guint64 b = iova; b < iova + len; b++)
				covered[b] = TRUE;
		}
		n_spans = oracle_spans(covered, starts, ends);
		/* limit 0 (none), then every limit from 1 to past the count */
		for (guint max = 0; max <= n_spans + 1; max++) {
			g_autoptr(GArray) plan = plan_ok(in, n, max);
			guint64 total = migd_dirty_ranges_total(ranges_of(plan), plan->len);
			guint expect_len = max == 0 ? n_spans : MIN(max, n_spans);

			assert_plan_shape(plan);
			assert_int_equal(plan->len, expect_len);
			assert_int_equal(total, oracle_min_bytes(starts, ends, n_spans, max));
			/* every input byte covered; every range starts and ends on a span edge */
			for (guint i = 0; i < n; i++) {
				gboolean inside = FALSE;
				for (guint j = 0; j < plan->len; j++) {
					MigdIovaRange r = range_at(plan, j);
					inside |= in[i].iova >= r.iova &&
						  in[i].iova + in[i].length <= r.iova + r.length;
				}
				assert_true(inside);
			}
			for (guint j = 0; j < plan->len; j++) {
				MigdIovaRange r = range_at(plan, j);
				gboolean start_ok = FALSE, end_ok = FALSE;
				for (guint s = 0; s < n_spans; s++) {
					start_ok |= starts[s] == r.iova;
					end_ok |= ends[s] == r.iova + r.length;
				}
				assert_true(start_ok && end_ok);
			}
		}
	}
}

/* ---- QEMU's reduction ---- */

static void
test_qemu_three_ranges(void **state)
{
	const MigdIovaRange in[] = {
	    {.iova = 0, .length = 640 * KiB},		    /* low RAM */
	    {.iova = 1 * MiB, .length = 2 * GiB - 1 * MiB}, /* RAM below the 32-bit PCI hole */
	    {.iova = 0xfe000000, .length = 16 * MiB},	    /* a 32-bit BAR */
	    {.iova = 4 * GiB, .length = 4 * GiB},	    /* RAM above 4 GiB */
	    {.iova = 10 * GiB, .length = 2 * GiB},	    /* a DIMM */
	    {.iova = 64 * GiB, .length = 16 * MiB},	    /* BARs in the 64-bit hole */
	    {.iova = 80 * GiB, .length = 1 * GiB},
	};
	const MigdIovaRange hole = {.iova = 64 * GiB, .length = 32 * GiB};
	g_autoptr(GArray) q = migd_dirty_ranges_plan_qemu(in, G_N_ELEMENTS(in), &hole);
	g_autoptr(GArray) q2 = migd_dirty_ranges_plan_qemu(in, G_N_ELEMENTS(in), NULL);
	g_autoptr(GArray) ours = plan_ok(in, G_N_ELEMENTS(in), 3);

	/* 32-bit, 64-bit, PCI 64-bit, in QEMU's order */
	assert_int_equal(q->len, 3);
	assert_range(q, 0, 0, 0xff000000ull);
	assert_range(q, 1, 4 * GiB, 8 * GiB);
	assert_range(q, 2, 64 * GiB, 17 * GiB);
	/* without a hole the BARs are 64-bit mappings like any other */
	assert_int_equal(q2->len, 2);
	assert_range(q2, 0, 0, 0xff000000ull);
	assert_range(q2, 1, 4 * GiB, 77 * GiB);
	/* ours at the same limit never tracks more */
	assert_true(migd_dirty_ranges_total(ranges_of(ours), ours->len) <=
		    migd_dirty_ranges_total(ranges_of(q), q->len));
}

static void
test_qemu_buckets(void **state)
{
	/* a mapping ending at 0xffffffff is 32-bit; one crossing 4 GiB is 64-bit */
	const MigdIovaRange low = {.iova = 0xfffff000, .length = 0x1000};
	const MigdIovaRange cross = {.iova = 3 * GiB, .length = 2 * GiB};
	const MigdIovaRange in_hole_low = {.iova = 0x80000000, .length = 0x1000};
	const MigdIovaRange hole = {.iova = 0, .length = 16 * GiB};
	g_autoptr(GArray) a = migd_dirty_ranges_plan_qemu(&low, 1, NULL);
	g_autoptr(GArray) b = migd_dirty_ranges_plan_qemu(&cross, 1, NULL);
	g_autoptr(GArray) c = migd_dirty_ranges_plan_qemu(&in_hole_low, 1, &hole);
	g_autoptr(GArray) d = migd_dirty_ranges_plan_qemu(&cross, 1, &hole);
	g_autoptr(GArray) e = migd_dirty_ranges_plan_qemu(NULL, 0, NULL);

	assert_int_equal(a->len, 1);
	assert_range(a, 0, 0xfffff000, 0x1000);
	assert_int_equal(b->len, 1);
	assert_range(b, 0, 3 * GiB, 2 * GiB);
	/* the PCI bucket takes only what starts at or above UINT32_MAX */
	assert_int_equal(c->len, 1);
	assert_range(c, 0, 0x80000000, 0x1000);
	assert_int_equal(d->len, 1);
	assert_range(d, 0, 3 * GiB, 2 * GiB);
	assert_int_equal(e->len, 0);
}

/* random mappings: ours at three ranges covers no more than QEMU's three */
static void
test_qemu_never_smaller(void **state)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(42);
	const MigdIovaRange hole = {.iova = 256 * GiB, .length = 64 * GiB};

	for (guint iter = 0; iter < 500; iter++) {
		guint n = (guint)g_rand_int_range(rand, 1, 40);
		g_autofree MigdIovaRange *in = g_new(MigdIovaRange, n);
		g_autoptr(GArray) q = NULL;
		g_autoptr(GArray) ours = NULL;

		for (guint i = 0; i < n; i++) {
			guint64 iova = ((guint64)g_rand_int_range(rand, 0, 320 * 1024)) * MiB;
			guint64 len = ((guint64)g_rand_int_range(rand, 1, 4096)) * MiB;
			in[i] = (MigdIovaRange){.iova = iova, .length = len};
		}
		q = migd_dirty_ranges_plan_qemu(in, n, &hole);
		ours = plan_ok(in, n, 3);
		assert_true(q->len >= 1 && q->len <= 3);
		assert_true(migd_dirty_ranges_total(ranges_of(ours), ours->len) <=
			    migd_dirty_ranges_total(ranges_of(q), q->len));
	}
}

/* ---- totals ---- */

static void
test_total(void **state)
{
	const MigdIovaRange in[] = {
	    {.iova = 0x1000, .length = 0x2000},
	    {.iova = 0x2000, .length = 0x2000}, /* overlaps: counted once */
	    {.iova = 0x9000, .length = 0},	/* empty */
	    {.iova = 0x10000, .length = 0x1000},
	};

	assert_int_equal(migd_dirty_ranges_total(in, G_N_ELEMENTS(in)), 0x3000 + 0x1000);
	assert_int_equal(migd_dirty_ranges_total(in, 1), 0x2000);
	assert_int_equal(migd_dirty_ranges_total(NULL, 0), 0);
}

/* ---- text ---- */

static GArray *
parse_ok(const gchar *text)
{
	g_autoptr(GError) error = NULL;
	GArray *a = migd_dirty_ranges_parse(text, &error);
	if (a == NULL)
		fail_msg("'%s': %s", text, error->message);
	return a;
}

static void
test_parse_good(void **state)
{
	g_autoptr(GArray) a = parse_ok("0x0+0x40000000,0x100000000+0x80000000");
	g_autoptr(GArray) b = parse_ok(" 2G+1G , 4G + 2G,0x1000+4K,1M+0x10M ");
	g_autoptr(GArray) c = parse_ok("4096+4096");
	g_autoptr(GArray) d = parse_ok("0xFFFFFFFFFFFFF000+0x1000");
	/* T, as documented (docs/ABI/testing/config-file) */
	g_autoptr(GArray) t = parse_ok("0+1T,0x20000000000+4t,16777215T+1T");

	assert_int_equal(a->len, 2);
	assert_range(a, 0, 0, 0x40000000);
	assert_range(a, 1, 0x100000000ull, 0x80000000);
	assert_int_equal(b->len, 4);
	assert_range(b, 0, 2 * GiB, 1 * GiB);
	assert_range(b, 1, 4 * GiB, 2 * GiB);
	assert_range(b, 2, 0x1000, 4 * KiB);
	assert_range(b, 3, 1 * MiB, 16 * MiB);
	assert_int_equal(c->len, 1);
	assert_range(c, 0, 4096, 4096);
	assert_range(d, 0, 0xfffffffffffff000ull, 0x1000);
	assert_int_equal(t->len, 3);
	assert_range(t, 0, 0, 1024 * GiB);
	assert_range(t, 1, 2048 * GiB, 4096 * GiB);
	assert_range(t, 2, 16777215ull << 40, 1ull << 40);
}

static void
test_parse_bad(void **state)
{
	const gchar *bad[] = {
	    "",
	    "   ",
	    "0x1000",
	    "0x1000+",
	    "+0x1000",
	    "1+2+3",
	    "0x+1",
	    "12abc+1",
	    "1+0",
	    "0xffffffffffffffff+2",
	    "17179869184G+1",
	    "99999999999999999999+1",
	    "1+4096,",
	    "-1+5",
	    "0x0x5+1",
	    "1 2+3",
	    "1+4Q",
	    "16777216T+1",
	    "1+4TB",
	    /* unaligned to 4 KiB, overlapping (touching is fine: see test_parse_good) */
	    "0x800+4K",
	    "0+6K",
	    "0+1G,0x3ffff000+8K",
	    "0+1G,512M+4K",
	    "4G+4G,0+8G",
	    "0+4K,0+4K",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		GArray *a = migd_dirty_ranges_parse(bad[i], &error);
		if (a != NULL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	}
	{
		g_autoptr(GError) error = NULL;
		assert_null(migd_dirty_ranges_parse("4G+4G,0x1000+4K,0+8G", &error));
		/* sorted, the neighbours that overlap are named by their places in the list */
		assert_string_equal(
		    error->message,
		    "IOVA ranges 1 (0x1000+0x1000) and 2 (0x0+0x200000000) overlap");
		g_clear_error(&error);
		assert_null(migd_dirty_ranges_parse("0+4K,0x1000+0x1800", &error));
		assert_string_equal(
		    error->message,
		    "IOVA range 1 0x1000+0x1800: the length is not aligned to 4 KiB");
	}
	{
		g_autoptr(GError) error = NULL;
		assert_null(migd_dirty_ranges_parse(NULL, &error));
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plan_joins),	       cmocka_unit_test(test_plan_limits),
	    cmocka_unit_test(test_plan_equal_gaps),    cmocka_unit_test(test_plan_top_of_space),
	    cmocka_unit_test(test_plan_errors),	       cmocka_unit_test(test_plan_oracle),
	    cmocka_unit_test(test_qemu_three_ranges),  cmocka_unit_test(test_qemu_buckets),
	    cmocka_unit_test(test_qemu_never_smaller), cmocka_unit_test(test_total),
	    cmocka_unit_test(test_parse_good),	       cmocka_unit_test(test_parse_bad),
	};
	return cmocka_run_group_tests_name("dirty-ranges", tests, NULL, NULL);
}
