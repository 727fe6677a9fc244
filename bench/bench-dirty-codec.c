/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * make bench dirty: the dirty-bitmap codec (dirty/migd-dirty-bitmap.c).
 *
 * A 32 MiB bitmap (256 Mi pages: 1 TiB of IOVA at 4 KiB) at 0.01 %, 1 % and 50 % dirty, the
 * dirty pages clustered (runs of 256..768 pages, about 2 MiB) or scattered (each page dirty
 * with the same probability). In the same run, interleaved, best of REPS:
 *   reference  a popcount scan of the bitmap: a plain loop summing __builtin_popcountll over
 *              the words, compiled with the project's flags;
 *   measured   report-to-wire: migd_dirty_encode of the whole bitmap in chunks of
 *              MIGD_DIRTY_MAX_CHUNK_PAGES (4 chunks), checksums included, payloads released.
 * The allocator is tuned as vfio-migd tunes it (migd_tune_allocator). Targets: report-to-wire
 * >= 0.5 of the scan; wire bytes <= 0.02 of the raw bitmap at 0.01 %
 * scattered and <= 1.05 at 50 %.
 *
 * On x86-64 the project's flags target the baseline ISA, which has no POPCNT instruction: that
 * loop calls libgcc's __popcountdi2 per word and runs well below memory bandwidth. The
 * reference is therefore the faster of the two scans: the same loop compiled for POPCNT when
 * the CPU has it (the memory-bandwidth limit the target means); the libgcc loop is printed as
 * information.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-dirty.h"
#include "migd-dirty-bitmap.h"
#include "migd-tune.h"

#define BITMAP_BYTES (32u * 1024 * 1024)
#define N_WORDS	     (BITMAP_BYTES / 8)
#define N_PAGES	     ((guint64)N_WORDS * 64)
#define CHUNK_WORDS  (MIGD_DIRTY_MAX_CHUNK_PAGES / 64)
#define N_CHUNKS     (N_WORDS / CHUNK_WORDS)
#define REPS	     15

static guint64 rng_state = 0x5eed;

static guint64
rng_next(void)
{
	guint64 z = (rng_state += G_GUINT64_CONSTANT(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static double
rng_unit(void)
{
	return (rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static void
set_page(guint64 *w, guint64 p)
{
	w[p / 64] |= G_GUINT64_CONSTANT(1) << (p % 64);
}

static void
fill(guint64 *w, double density, gboolean clustered)
{
	memset(w, 0, BITMAP_BYTES);
	if (!clustered && density == 0.5) {
		for (gsize i = 0; i < N_WORDS; i++)
			w[i] = rng_next();
	} else if (!clustered) {
		double l = log1p(-density);
		for (guint64 p = 0;;) {
			double skip = floor(log(1.0 - rng_unit()) / l);
			if (skip >= (double)(N_PAGES - p))
				break;
			p += (guint64)skip;
			set_page(w, p++);
		}
	} else {
		/* runs of 256..768 pages, clean gaps of 0 .. 2 * mean */
		double gap_mean = 512 * (1 - density) / density;
		guint64 p = (guint64)(rng_unit() * 2 * gap_mean);
		while (p < N_PAGES) {
			guint64 len = MIN(256 + rng_next() % 513, N_PAGES - p);
			for (guint64 end = p + len; p < end; p++) {
				if (p % 64 == 0 && p + 64 <= end) {
					w[p / 64] = G_MAXUINT64;
					p += 63;
				} else {
					set_page(w, p);
				}
			}
			p += (guint64)(rng_unit() * 2 * gap_mean);
		}
	}
}

/* the reference, as the project's flags compile it */
static __attribute__((noinline)) guint64
popcount_scan(const guint64 *w, gsize n)
{
	guint64 s = 0;
	for (gsize i = 0; i < n; i++)
		s += __builtin_popcountll(w[i]);
	return s;
}

#if defined(__x86_64__) && !defined(__POPCNT__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_POPCNT_SCAN 1
/* the same loop with the POPCNT instruction: memory bandwidth, for information */
static __attribute__((noinline, target("popcnt"))) guint64
popcount_scan_popcnt(const guint64 *w, gsize n)
{
	guint64 s = 0;
	for (gsize i = 0; i < n; i++)
		s += __builtin_popcountll(w[i]);
	return s;
}
#endif

static volatile guint64 sink;

/* report-to-wire of the whole bitmap; returns the wire bytes */
static gsize
encode_all(const guint64 *w, MigdDirtyEncoding *encodings)
{
	gsize wire = 0;

	for (guint c = 0; c < N_CHUNKS; c++) {
		g_auto(MigdDirtyEncoded) enc = {0};

		migd_dirty_encode(w + (gsize)c * CHUNK_WORDS, MIGD_DIRTY_MAX_CHUNK_PAGES, &enc);
		wire += g_bytes_get_size(enc.data);
		sink += enc.checksum + enc.n_dirty;
		if (encodings != NULL)
			encodings[c] = enc.encoding;
	}
	return wire;
}

static gdouble
gbps(gint64 us)
{
	return BITMAP_BYTES / (us * 1e3);
}

static int
cmp_double(gconstpointer a, gconstpointer b)
{
	gdouble x = *(const gdouble *)a, y = *(const gdouble *)b;
	return x < y ? -1 : x > y;
}

static const gchar *kernel_name(void);

static void
bench_case(BenchReport *report, guint64 *w, double density, gboolean clustered)
{
	const gchar *pattern = clustered ? "clustered" : "scattered";
	g_autofree gchar *label = g_strdup_printf("%s %% %s",
						  density < 0.001 ? "0.01"
						  : density < 0.1 ? "1"
								  : "50",
						  pattern);
	gint64 best_scan = G_MAXINT64, best_enc = G_MAXINT64, best_popcnt = G_MAXINT64;
	gdouble ratios[REPS];
	MigdDirtyEncoding encodings[N_CHUNKS];
	gsize wire;
	gdouble wire_ratio, ratio, wire_target = 0;
	GString *kinds = g_string_new(NULL);

	fill(w, density, clustered);
	sink += popcount_scan(w, N_WORDS);
	wire = encode_all(w, encodings); /* warm up, and the wire size */
	for (guint r = 0; r < REPS; r++) {
		gint64 t0 = g_get_monotonic_time(), t1, t2;

		sink += popcount_scan(w, N_WORDS);
		t1 = g_get_monotonic_time();
		encode_all(w, NULL);
		t2 = g_get_monotonic_time();
		best_scan = MIN(best_scan, t1 - t0);
		best_enc = MIN(best_enc, t2 - t1);
		ratios[r] = (gdouble)(t1 - t0) / (t2 - t1);
#ifdef HAVE_POPCNT_SCAN
		t0 = g_get_monotonic_time();
		sink += popcount_scan_popcnt(w, N_WORDS);
		best_popcnt = MIN(best_popcnt, g_get_monotonic_time() - t0);
#endif
	}
	qsort(ratios, REPS, sizeof(ratios[0]), cmp_double);

	for (guint c = 0; c < N_CHUNKS; c++)
		g_string_append_printf(kinds, "%s%s", c ? "," : "",
				       migd_dirty_encoding_to_string(encodings[c]));
	/* the reference: the fastest scan of the same bitmap this CPU can run */
	{
		gint64 best_ref = MIN(best_scan, best_popcnt);
		g_autofree gchar *metric = g_strdup_printf("%s report-to-wire", label);
		g_autofree gchar *note =
		    g_strdup_printf("best of %u, kernels %s; against the libgcc scan (%.2f GB/s): "
				    "%.2f, median %.2f",
				    REPS, kernel_name(), gbps(best_scan),
				    gbps(best_enc) / gbps(best_scan), ratios[REPS / 2]);
		ratio = gbps(best_enc) / gbps(best_ref);
		bench_report_add(report, "dirty codec", metric, gbps(best_enc), "GB/s",
				 "popcount scan", gbps(best_ref), ratio, BENCH_TARGET_AT_LEAST, 0.5,
				 1, note);
	}
	wire_ratio = (gdouble)wire / BITMAP_BYTES;
	if (density == 0.5)
		wire_target = 1.05;
	else if (density < 0.001 && !clustered)
		wire_target = 0.02;
	{
		g_autofree gchar *metric = g_strdup_printf("%s wire bytes", label);
		g_autofree gchar *note = g_strdup_printf("encodings %s", kinds->str);
		bench_report_add(report, "dirty codec", metric, wire / 1024.0, "KiB", "raw bitmap",
				 BITMAP_BYTES / 1024.0, wire_ratio,
				 wire_target > 0 ? BENCH_TARGET_AT_MOST : BENCH_TARGET_NONE,
				 wire_target, 1, note);
	}
	g_string_free(kinds, TRUE);
}

/* which kernels the codec picks here (the same tests as dirty/migd-dirty-kernels.c) */
static const gchar *
kernel_name(void)
{
	const gchar *want = g_getenv("VFIO_MIGD_DIRTY_KERNEL");
	const gchar *best = "generic";

#ifdef HAVE_POPCNT_SCAN
	__builtin_cpu_init();
	if (__builtin_cpu_supports("popcnt"))
		best = "popcnt";
	if (__builtin_cpu_supports("popcnt") && __builtin_cpu_supports("avx2") &&
	    __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2"))
		best = "avx2";
	if (__builtin_cpu_supports("popcnt") && __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512vpopcntdq"))
		best = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi2")
			   ? "avx512+vbmi2"
			   : "avx512";
#endif
	return want != NULL ? want : best;
}

void
bench_dirty_codec(BenchReport *report)
{
	g_autofree guint64 *w = g_new(guint64, N_WORDS);
	static const double densities[] = {0.0001, 0.01, 0.5};

	/* as vfio-migd does at start-up: scratch and payload buffers come from warm heap pages */
	migd_tune_allocator();
	for (guint d = 0; d < G_N_ELEMENTS(densities); d++) {
		bench_case(report, w, densities[d], TRUE);
		bench_case(report, w, densities[d], FALSE);
	}
}
