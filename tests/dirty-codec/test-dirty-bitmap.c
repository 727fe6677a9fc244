/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty-bitmap codec (dirty/migd-dirty-bitmap.c) against a reference written from the
 * wire format's description: bit by bit, with no shared code (dirty-reference.h). Round trips on
 * seeded random and adversarial bitmaps, the choice of the shortest encoding, byte-exact payloads,
 * the checksum's known answers, strict rejection of malformed chunks (leaving the target bitmap
 * unchanged) and a seeded mutation fuzz of valid chunks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "dirty-reference.h"
#include "migd-dirty-bitmap.h"
#include "migd-error.h"

#define MAX_PAGES MIGD_DIRTY_MAX_CHUNK_PAGES

/* splitmix64: seeded, so every run sees the same bitmaps */
static guint64 rng_state;

static void
rng_seed(guint64 seed)
{
	rng_state = seed;
}

static guint64
rng_next(void)
{
	guint64 z = (rng_state += G_GUINT64_CONSTANT(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static guint64
rng_below(guint64 n)
{
	return n == 0 ? 0 : rng_next() % n;
}

static double
rng_unit(void)
{
	return (rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static guint64 *
bm_new(guint64 n_pages)
{
	return g_new0(guint64, MAX(n_words_of(n_pages), 1));
}

static void
bm_set_range(guint64 *w, guint64 start, guint64 n)
{
	for (guint64 p = start; p < start + n; p++) {
		if (p % 64 == 0 && p + 64 <= start + n) {
			w[p / 64] = G_MAXUINT64;
			p += 63;
			continue;
		}
		bm_set(w, p);
	}
}

/* a copy with the bits at and after n_pages cleared */
static guint64 *
bm_masked(const guint64 *w, guint64 n_pages)
{
	gsize n = n_words_of(n_pages);
	guint64 *c = g_memdup2(w, n * 8);
	c[n - 1] &= tail_mask(n_pages);
	return c;
}

typedef enum {
	PAT_SCATTERED, /* every page dirty with probability d */
	PAT_CLUSTERED, /* runs of about 2 * mean pages */
	PAT_SHORT,     /* runs of 1..3 pages */
} Pattern;

static void
fill_random(guint64 *w, guint64 n_pages, double d, Pattern pat, guint64 mean_run)
{
	if (d <= 0)
		return;
	if (d >= 1) {
		bm_set_range(w, 0, n_pages);
		return;
	}
	if (pat == PAT_SCATTERED) {
		double l = log1p(-d);
		for (guint64 p = 0;;) {
			double skip = floor(log(1.0 - rng_unit()) / l);
			if (skip >= (double)(n_pages - p))
				break;
			p += (guint64)skip;
			bm_set(w, p);
			if (++p >= n_pages)
				break;
		}
		return;
	}
	{
		guint64 mean = pat == PAT_SHORT ? 2 : MAX(mean_run, 1);
		double clean_mean = mean * (1 - d) / d;
		guint64 p = rng_below((guint64)(2 * clean_mean) + 1);
		while (p < n_pages) {
			guint64 len = pat == PAT_SHORT ? 1 + rng_below(3) : 1 + rng_below(2 * mean);
			len = MIN(len, n_pages - p);
			bm_set_range(w, p, len);
			p += len + 1 + rng_below((guint64)(2 * clean_mean) + 1);
		}
	}
}

/* assert_memory_equal for large buffers (cmocka's compares byte by byte, slowly) */
static void
assert_words_equal(const guint64 *a, const guint64 *b, gsize n_words)
{
	if (memcmp(a, b, n_words * 8) == 0)
		return;
	for (gsize i = 0; i < n_words; i++) {
		if (a[i] != b[i])
			fail_msg("word %zu: %016" G_GINT64_MODIFIER "x != %016" G_GINT64_MODIFIER
				 "x",
				 i, a[i], b[i]);
	}
}

/* decodes into a copy of @target; asserts success and returns the result */
static guint64 *
decode_ok(guint encoding, const guint8 *data, gsize len, guint64 n_pages, guint64 n_dirty,
	  guint64 checksum, const guint64 *target)
{
	g_autoptr(GError) error = NULL;
	guint64 *out = g_memdup2(target, n_words_of(n_pages) * 8);

	if (!migd_dirty_decode_merge(encoding, data, len, n_pages, n_dirty, checksum, out, &error))
		fail_msg("decode %s of %" G_GUINT64_FORMAT " pages failed: %s",
			 migd_dirty_encoding_to_string(encoding), n_pages, error->message);
	return out;
}

/* asserts a protocol error whose message contains @needle, and @target unchanged */
static void
decode_bad(guint encoding, const guint8 *data, gsize len, guint64 n_pages, guint64 n_dirty,
	   guint64 checksum, const gchar *needle)
{
	g_autoptr(GError) error = NULL;
	gsize n_words = MAX(n_words_of(MIN(n_pages, MAX_PAGES)), 1);
	g_autofree guint64 *target = g_new(guint64, n_words);
	g_autofree guint64 *before = NULL;

	for (gsize i = 0; i < n_words; i++)
		target[i] = rng_next() & rng_next();
	before = g_memdup2(target, n_words * 8);
	assert_false(migd_dirty_decode_merge(encoding, data, len, n_pages, n_dirty, checksum,
					     target, &error));
	assert_non_null(error);
	if (!g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL))
		fail_msg("not a protocol error: %s", error->message);
	if (needle != NULL && strstr(error->message, needle) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", error->message, needle);
	assert_words_equal(target, before, n_words);
}

/*
 * The whole contract on one bitmap: counts, checksum, the shortest encoding and its exact
 * bytes, RAW by reference, the three encodings decoded into a zero and a non-empty bitmap.
 */
static void
check_bitmap(const guint64 *w, guint64 n_pages)
{
	g_auto(MigdDirtyEncoded) enc = {0};
	g_autoptr(GArray) runs = ref_runs(w, n_pages);
	g_autofree guint64 *masked = bm_masked(w, n_pages);
	gsize n_words = n_words_of(n_pages);
	guint64 checksum = ref_checksum(w, n_pages);
	guint64 count = ref_count(runs);
	MigdDirtyEncoding best = ref_best(n_pages, runs);
	g_autoptr(GByteArray) want = ref_encode(best, w, n_pages, runs);
	g_autofree guint64 *zero = g_new0(guint64, n_words);
	g_autofree guint64 *noise = g_new(guint64, n_words);
	gsize len;
	const guint8 *data;

	migd_dirty_encode(w, n_pages, &enc);
	assert_int_equal(enc.n_pages, n_pages);
	assert_int_equal(enc.n_dirty, count);
	assert_int_equal(migd_dirty_count(w, n_pages), count);
	assert_int_equal(enc.checksum, checksum);
	assert_int_equal(migd_dirty_checksum(w, n_pages), checksum);
	if (enc.encoding != best)
		fail_msg("%" G_GUINT64_FORMAT " pages, %" G_GUINT64_FORMAT
			 " dirty: %s chosen, %s is shortest (raw %zu runs %zu sparse %zu)",
			 n_pages, count, migd_dirty_encoding_to_string(enc.encoding),
			 migd_dirty_encoding_to_string(best),
			 ref_size(MIGD_DIRTY_ENCODING_RAW, n_pages, runs),
			 ref_size(MIGD_DIRTY_ENCODING_RUNS, n_pages, runs),
			 ref_size(MIGD_DIRTY_ENCODING_SPARSE, n_pages, runs));
	data = g_bytes_get_data(enc.data, &len);
	assert_int_equal(len, want->len);
	if (len > 0 && memcmp(data, want->data, len) != 0)
		fail_msg("%" G_GUINT64_FORMAT " pages: the %s payload differs from the reference",
			 n_pages, migd_dirty_encoding_to_string(enc.encoding));
	if (best == MIGD_DIRTY_ENCODING_RAW && G_BYTE_ORDER == G_LITTLE_ENDIAN &&
	    memcmp(masked, w, n_words * 8) == 0)
		assert_ptr_equal(data, w); /* no copy */

	for (gsize i = 0; i < n_words; i++)
		noise[i] = rng_next() & rng_next() & rng_next();
	for (MigdDirtyEncoding e = MIGD_DIRTY_ENCODING_RAW; e <= MIGD_DIRTY_ENCODING_SPARSE; e++) {
		g_autoptr(GByteArray) bytes = NULL;
		g_autofree guint64 *into_zero = NULL;
		g_autofree guint64 *into_noise = NULL;

		/* a frame carries at most 8 MiB: skip the longer (SPARSE of the largest chunks) */
		if (ref_size(e, n_pages, runs) > 8 * 1024 * 1024)
			continue;
		bytes = ref_encode(e, w, n_pages, runs);
		into_zero = decode_ok(e, bytes->data, bytes->len, n_pages, count, checksum, zero);
		assert_words_equal(into_zero, masked, n_words);
		into_noise = decode_ok(e, bytes->data, bytes->len, n_pages, count, checksum, noise);
		for (gsize i = 0; i < n_words; i++)
			into_zero[i] |= noise[i];
		assert_words_equal(into_noise, into_zero, n_words);
	}
}

static void
check_random(guint64 n_pages, double d, Pattern pat, guint64 mean_run)
{
	g_autofree guint64 *w = bm_new(n_pages);
	fill_random(w, n_pages, d, pat, mean_run);
	check_bitmap(w, n_pages);
}

static void
test_encoding_names(void **state)
{
	assert_string_equal(migd_dirty_encoding_to_string(MIGD_DIRTY_ENCODING_RAW), "raw");
	assert_string_equal(migd_dirty_encoding_to_string(MIGD_DIRTY_ENCODING_RUNS), "runs");
	assert_string_equal(migd_dirty_encoding_to_string(MIGD_DIRTY_ENCODING_SPARSE), "sparse");
	assert_string_equal(migd_dirty_encoding_to_string((MigdDirtyEncoding)0), "unknown");
	assert_string_equal(migd_dirty_encoding_to_string((MigdDirtyEncoding)4), "unknown");
}

/* known answers: the checksum is part of the wire format and must never change */
static void
test_checksum_known_answers(void **state)
{
	guint64 w[20];
	g_auto(MigdDirtyEncoded) enc = {0};

	memset(w, 0, sizeof(w));
	assert_int_equal(migd_dirty_checksum(w, 1), G_GUINT64_CONSTANT(0x7F5ED6A6A9135806));
	w[0] = 1;
	assert_int_equal(migd_dirty_checksum(w, 1), G_GUINT64_CONSTANT(0xFF4E36895652F75C));
	/* the tail counts as zero */
	w[0] = 0xff;
	assert_int_equal(migd_dirty_checksum(w, 1), G_GUINT64_CONSTANT(0xFF4E36895652F75C));
	for (guint i = 0; i < 20; i++)
		w[i] = G_GUINT64_CONSTANT(0x0123456789ABCDEF) * (i + 1);
	assert_int_equal(migd_dirty_checksum(w, 1234), G_GUINT64_CONSTANT(0x75DE07B50C4E3A0D));
	assert_int_equal(migd_dirty_checksum(w, 0), G_GUINT64_CONSTANT(0xDFC4762BF3D6D5E0));
	memset(w, 0, sizeof(w));
	assert_int_equal(migd_dirty_checksum(w, 64), G_GUINT64_CONSTANT(0xE62C0E183D48B048));
	w[1] = 1;
	assert_int_equal(migd_dirty_checksum(w, 100), G_GUINT64_CONSTANT(0x4AB1B7254DF48138));
	w[0] = G_MAXUINT64;
	assert_int_equal(migd_dirty_checksum(w, 64), G_GUINT64_CONSTANT(0x372D54F931D6E77F));
	for (guint i = 0; i < 20; i++)
		w[i] = G_GUINT64_CONSTANT(0x0123456789ABCDEF) * (i + 1);
	migd_dirty_encode(w, 1234, &enc);
	assert_int_equal(enc.checksum, G_GUINT64_CONSTANT(0x75DE07B50C4E3A0D));
	assert_int_equal(ref_checksum(w, 1234), G_GUINT64_CONSTANT(0x75DE07B50C4E3A0D));
}

/* whole chunks as the wire format's description gives them */
static void
test_wire_examples(void **state)
{
	guint64 w[16] = {0};
	g_auto(MigdDirtyEncoded) enc = {0};
	const guint8 *data;
	gsize len;

	/* 100 pages, page 64 dirty: SPARSE 40 (RUNS 40 01, RAW 16 bytes) */
	w[1] = 1;
	migd_dirty_encode(w, 100, &enc);
	data = g_bytes_get_data(enc.data, &len);
	assert_int_equal(enc.encoding, MIGD_DIRTY_ENCODING_SPARSE);
	assert_int_equal(len, 1);
	assert_int_equal(data[0], 0x40);
	assert_int_equal(enc.n_dirty, 1);
	assert_int_equal(enc.checksum, G_GUINT64_CONSTANT(0x4AB1B7254DF48138));

	/* 1000 pages, pages 200..202 dirty: RUNS c8 01 03 (SPARSE c8 01 00 00) */
	w[1] = 0;
	bm_set_range(w, 200, 3);
	migd_dirty_encode(w, 1000, &enc);
	data = g_bytes_get_data(enc.data, &len);
	assert_int_equal(enc.encoding, MIGD_DIRTY_ENCODING_RUNS);
	assert_int_equal(len, 3);
	assert_memory_equal(data, ((guint8[]){0xc8, 0x01, 0x03}), 3);
	assert_int_equal(enc.n_dirty, 3);
	assert_int_equal(enc.checksum, G_GUINT64_CONSTANT(0xCF9045919BC03D69));
}

/* the checksum depends on every word, its position and n_pages */
static void
test_checksum_sensitivity(void **state)
{
	guint64 w[64];
	guint64 base;

	rng_seed(7);
	for (guint i = 0; i < 64; i++)
		w[i] = rng_next();
	base = migd_dirty_checksum(w, 64 * 64);
	assert_int_equal(base, ref_checksum(w, 64 * 64));
	for (guint bit = 0; bit < 64 * 64; bit++) {
		w[bit / 64] ^= G_GUINT64_CONSTANT(1) << (bit % 64);
		assert_int_not_equal(migd_dirty_checksum(w, 64 * 64), base);
		w[bit / 64] ^= G_GUINT64_CONSTANT(1) << (bit % 64);
	}
	/* swapping two words, lanes or not */
	for (guint i = 0; i < 20; i++) {
		guint a = rng_below(64), b = rng_below(64);
		guint64 t = w[a];
		if (w[a] == w[b])
			continue;
		w[a] = w[b];
		w[b] = t;
		assert_int_not_equal(migd_dirty_checksum(w, 64 * 64), base);
		w[b] = w[a];
		w[a] = t;
	}
	/* a different length, same bits */
	memset(w, 0, sizeof(w));
	assert_int_not_equal(migd_dirty_checksum(w, 64), migd_dirty_checksum(w, 128));
	assert_int_not_equal(migd_dirty_checksum(w, 64), migd_dirty_checksum(w, 63));
}

/* counts and checksums of windows larger than a chunk */
static void
test_count_and_checksum_large(void **state)
{
	guint64 n_pages = 2 * MAX_PAGES + 77;
	g_autofree guint64 *w = bm_new(n_pages);
	g_autoptr(GArray) runs = NULL;

	rng_seed(11);
	fill_random(w, n_pages, 0.001, PAT_SCATTERED, 0);
	w[n_words_of(n_pages) - 1] |= ~tail_mask(n_pages); /* the tail does not count */
	runs = ref_runs(w, n_pages);
	assert_int_equal(migd_dirty_count(w, n_pages), ref_count(runs));
	assert_int_equal(migd_dirty_checksum(w, n_pages), ref_checksum(w, n_pages));
	assert_int_equal(migd_dirty_count(w, 0), 0);
	for (guint64 n = 1; n < 200; n++) {
		g_autoptr(GArray) r = ref_runs(w, n);
		assert_int_equal(migd_dirty_count(w, n), ref_count(r));
		assert_int_equal(migd_dirty_checksum(w, n), ref_checksum(w, n));
	}
}

static const guint64 sizes[] = {1,    2,    3,	  63,	64,   65,   127,	128,   129, 191,
				255,  511,  512,  513,	575,  576,  577,	639,   640, 1000,
				1024, 4095, 4096, 4097, 8191, 8193, 65536 + 17, 300000};

static void
test_roundtrip_random(void **state)
{
	static const double densities[] = {0,	1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1,
					   0.2, 0.3,  0.5,  0.7,  0.9,	0.99, 1};

	rng_seed(1);
	for (guint s = 0; s < G_N_ELEMENTS(sizes); s++) {
		for (guint d = 0; d < G_N_ELEMENTS(densities); d++) {
			check_random(sizes[s], densities[d], PAT_SCATTERED, 0);
			check_random(sizes[s], densities[d], PAT_CLUSTERED, 4);
			check_random(sizes[s], densities[d], PAT_CLUSTERED, 300);
			check_random(sizes[s], densities[d], PAT_SHORT, 0);
		}
	}
	/* and sizes at random */
	for (guint i = 0; i < 300; i++) {
		guint64 n_pages = 1 + rng_below(i % 10 == 0 ? 200000 : 3000);
		check_random(n_pages, rng_unit() * rng_unit(), (Pattern)rng_below(3),
			     1 + rng_below(1000));
	}
}

static void
test_roundtrip_adversarial(void **state)
{
	rng_seed(2);
	for (guint s = 0; s < G_N_ELEMENTS(sizes); s++) {
		guint64 n = sizes[s];
		gsize n_words = n_words_of(n);
		g_autofree guint64 *w = bm_new(n);

		check_bitmap(w, n); /* all clean */
		bm_set(w, 0);
		check_bitmap(w, n); /* first page */
		memset(w, 0, n_words * 8);
		bm_set(w, n - 1);
		check_bitmap(w, n); /* last page */
		bm_set(w, 0);
		check_bitmap(w, n); /* first and last */
		memset(w, 0, n_words * 8);
		bm_set_range(w, 0, n);
		check_bitmap(w, n); /* all dirty */
		for (guint pat = 0; pat < 6; pat++) {
			static const guint64 words[] = {
			    G_GUINT64_CONSTANT(0x5555555555555555), /* alternating */
			    G_GUINT64_CONSTANT(0xAAAAAAAAAAAAAAAA),
			    G_GUINT64_CONSTANT(0x3333333333333333), /* runs of 2 */
			    G_GUINT64_CONSTANT(0x7777777777777777), /* runs of 3 */
			    G_GUINT64_CONSTANT(0x8000000000000001), /* across words */
			    G_GUINT64_CONSTANT(0x0101010101010101), /* gaps of 7 */
			};
			for (gsize i = 0; i < n_words; i++)
				w[i] = words[pat];
			w[n_words - 1] &= tail_mask(n);
			check_bitmap(w, n);
		}
		/* huge runs: all dirty but one page, all clean but a long run */
		memset(w, 0, n_words * 8);
		bm_set_range(w, 0, n);
		w[(n / 2) / 64] &= ~(G_GUINT64_CONSTANT(1) << ((n / 2) % 64));
		check_bitmap(w, n);
		memset(w, 0, n_words * 8);
		bm_set_range(w, n / 3, n - n / 3 - n / 5);
		check_bitmap(w, n);
		/* whole words of ones between zero words, and the reverse */
		for (gsize i = 0; i < n_words; i++)
			w[i] = (i / 3) % 2 ? G_MAXUINT64 : 0;
		w[n_words - 1] &= tail_mask(n);
		check_bitmap(w, n);
		for (gsize i = 0; i < n_words; i++)
			w[i] = (i / 9) % 2 ? 0 : G_MAXUINT64;
		w[n_words - 1] &= tail_mask(n);
		check_bitmap(w, n);
		for (gsize i = 0; i < n_words; i++)
			w[i] = (i / 8) % 2 ? G_MAXUINT64 : rng_next() & rng_next();
		w[n_words - 1] &= tail_mask(n);
		check_bitmap(w, n);
	}
}

/* bits past n_pages in the caller's last word are not pages: ignored, never sent */
static void
test_encode_ignores_tail(void **state)
{
	guint64 w[3] = {0, G_GUINT64_CONSTANT(1) << 5, G_MAXUINT64};
	g_auto(MigdDirtyEncoded) enc = {0};
	g_autofree guint64 *out = NULL;
	const guint8 *data;
	gsize len;

	check_bitmap(w, 130);
	migd_dirty_encode(w, 130, &enc);
	assert_int_equal(enc.n_dirty, 3);
	/* dense enough for RAW: a masked copy, not the caller's word */
	w[0] = G_GUINT64_CONSTANT(0x5555555555555555);
	w[1] = G_GUINT64_CONSTANT(0x5555555555555555);
	migd_dirty_encode(w, 130, &enc);
	assert_int_equal(enc.encoding, MIGD_DIRTY_ENCODING_RAW);
	assert_int_equal(enc.n_dirty, 64 + 2);
	data = g_bytes_get_data(enc.data, &len);
	assert_int_equal(len, 24);
	assert_ptr_not_equal(data, w);
	assert_int_equal(data[16], 3);
	for (guint i = 17; i < 24; i++)
		assert_int_equal(data[i], 0);
	out = decode_ok(enc.encoding, data, len, 130, enc.n_dirty, enc.checksum,
			(guint64[3]){0, 0, G_GUINT64_CONSTANT(1) << 40});
	/* ORed: the target's own bits past n_pages stay */
	assert_int_equal(out[2], 3 | G_GUINT64_CONSTANT(1) << 40);
}

/* one encoder struct used again and again */
static void
test_encode_reuses_struct(void **state)
{
	g_auto(MigdDirtyEncoded) enc = {0};
	guint64 w[4] = {G_MAXUINT64, 1, 0, 0x10};

	for (guint i = 0; i < 4; i++) {
		w[i] ^= G_GUINT64_CONSTANT(0x5555555555555555);
		migd_dirty_encode(w, 256, &enc);
		assert_int_equal(enc.n_dirty, migd_dirty_count(w, 256));
	}
	migd_dirty_encoded_clear(&enc);
	assert_null(enc.data);
	migd_dirty_encoded_clear(&enc);
}

/* ties and the exact-size cases between the three encodings */
static void
test_choice_ties(void **state)
{
	g_autofree guint64 *w = bm_new(300000);
	g_auto(MigdDirtyEncoded) enc = {0};
	guint64 p;

	/* SPARSE == RUNS: one run of 2 pages (2 bytes each) */
	bm_set_range(w, 10, 2);
	migd_dirty_encode(w, 640, &enc);
	assert_int_equal(enc.encoding, MIGD_DIRTY_ENCODING_SPARSE);
	assert_int_equal(g_bytes_get_size(enc.data), 2);
	check_bitmap(w, 640);

	/* SPARSE == RAW == 8 bytes, RUNS 16 */
	memset(w, 0, 8);
	for (guint i = 0; i < 8; i++)
		bm_set(w, i * 8);
	migd_dirty_encode(w, 64, &enc);
	assert_int_equal(enc.encoding, MIGD_DIRTY_ENCODING_SPARSE);
	assert_int_equal(g_bytes_get_size(enc.data), 8);
	check_bitmap(w, 64);
	/* one more page: RAW */
	bm_set(w, 63);
	migd_dirty_encode(w, 64, &enc);
	assert_int_equal(enc.encoding, MIGD_DIRTY_ENCODING_RAW);
	check_bitmap(w, 64);

	/* RUNS == RAW == 8 bytes (4 runs of 3), SPARSE 12 */
	w[0] = 0;
	for (guint i = 0; i < 4; i++)
		bm_set_range(w, i * 4, 3);
	migd_dirty_encode(w, 64, &enc);
	assert_int_equal(enc.encoding, MIGD_DIRTY_ENCODING_RUNS);
	assert_int_equal(g_bytes_get_size(enc.data), 8);
	check_bitmap(w, 64);
	bm_set_range(w, 20, 3); /* 5 runs: RAW */
	migd_dirty_encode(w, 64, &enc);
	assert_int_equal(enc.encoding, MIGD_DIRTY_ENCODING_RAW);
	check_bitmap(w, 64);

	/*
	 * More than two dirty pages per run, so the encoder writes RUNS first, yet SPARSE is
	 * as short (a tie: SPARSE) or shorter: 16381 single pages and one run of 16384 (a
	 * 3-byte varint in RUNS, 16383 zero bytes in SPARSE).
	 */
	for (guint extra = 0; extra < 2; extra++) {
		memset(w, 0, n_words_of(300000) * 8);
		p = 0;
		for (guint i = 0; i < 16380 + extra; i++, p += 2)
			bm_set(w, p);
		bm_set_range(w, p, 16384);
		migd_dirty_encode(w, 300000, &enc);
		assert_int_equal(enc.encoding, MIGD_DIRTY_ENCODING_SPARSE);
		check_bitmap(w, 300000);
	}
	/* and one page fewer in the long run: RUNS wins */
	memset(w, 0, n_words_of(300000) * 8);
	p = 0;
	for (guint i = 0; i < 16380; i++, p += 2)
		bm_set(w, p);
	bm_set_range(w, p, 16385);
	migd_dirty_encode(w, 300000, &enc);
	check_bitmap(w, 300000);
}

/* the largest chunk: 64 Mi pages, an 8 MiB bitmap */
static void
test_roundtrip_max_chunk(void **state)
{
	g_autofree guint64 *w = bm_new(MAX_PAGES);
	gsize n_words = n_words_of(MAX_PAGES);
	g_auto(MigdDirtyEncoded) enc = {0};

	rng_seed(3);
	check_bitmap(w, MAX_PAGES);
	bm_set(w, MAX_PAGES - 1);
	check_bitmap(w, MAX_PAGES);
	bm_set(w, 0);
	check_bitmap(w, MAX_PAGES);
	memset(w, 0xff, n_words * 8);
	check_bitmap(w, MAX_PAGES);
	memset(w, 0, n_words * 8);
	fill_random(w, MAX_PAGES, 0.0001, PAT_SCATTERED, 0);
	check_bitmap(w, MAX_PAGES);
	memset(w, 0, n_words * 8);
	fill_random(w, MAX_PAGES, 0.01, PAT_SCATTERED, 0);
	check_bitmap(w, MAX_PAGES);
	memset(w, 0, n_words * 8);
	fill_random(w, MAX_PAGES, 0.5, PAT_CLUSTERED, 512);
	check_bitmap(w, MAX_PAGES);
	/* 50 % scattered: RAW, without a copy */
	for (gsize i = 0; i < n_words; i++)
		w[i] = rng_next();
	migd_dirty_encode(w, MAX_PAGES, &enc);
	assert_int_equal(enc.encoding, MIGD_DIRTY_ENCODING_RAW);
	assert_ptr_equal(g_bytes_get_data(enc.data, NULL), w);
	assert_int_equal(g_bytes_get_size(enc.data), 8 * 1024 * 1024);
	assert_int_equal(enc.checksum, ref_checksum(w, MAX_PAGES));
	{
		g_autofree guint64 *zero = bm_new(MAX_PAGES);
		g_autofree guint64 *out =
		    decode_ok(enc.encoding, g_bytes_get_data(enc.data, NULL), 8 * 1024 * 1024,
			      MAX_PAGES, enc.n_dirty, enc.checksum, zero);
		assert_words_equal(out, w, n_words);
	}
}

/* ORs @src (@n pages) into @w at page @at */
static void
bm_or_at(guint64 *w, guint64 at, const guint64 *src, guint64 n)
{
	for (gsize i = 0; i < n_words_of(n); i++) {
		for (guint64 x = src[i]; x != 0; x &= x - 1) {
			guint64 p = i * 64 + __builtin_ctzll(x);

			if (p < n)
				bm_set(w, at + p);
		}
	}
}

/*
 * Chunks of several 32 KiB pieces (the encoder works on 4096 words at a time and picks the
 * formats worth writing from the counts so far) whose density changes along the way, in
 * segments that start and end anywhere: the format that wins in the end may be one the early
 * pieces made unlikely, and the encoder must still write exactly the reference's bytes.
 */
#define PIECE_PAGES (4096 * 64)

static void
check_segments(guint64 n_pages, guint n_segments, const double *d, const Pattern *pat)
{
	g_autofree guint64 *w = bm_new(n_pages);
	guint64 at = 0;

	for (guint s = 0; s < n_segments; s++) {
		guint64 len =
		    s == n_segments - 1 ? n_pages - at : (n_pages - at) / (n_segments - s);
		g_autofree guint64 *seg = NULL;

		len += s == n_segments - 1 ? 0 : rng_below(len / 3 + 1);
		len = MIN(len, n_pages - at);
		seg = bm_new(MAX(len, 1));
		fill_random(seg, len, d[s], pat[s], 1 + rng_below(600));
		bm_or_at(w, at, seg, len);
		at += len;
	}
	check_bitmap(w, n_pages);
}

static void
test_roundtrip_pieces(void **state)
{
	static const double densities[] = {0, 1e-4, 0.003, 0.01, 0.05, 0.2, 0.5, 0.9, 1};
	static const guint64 extra[] = {0, 1, 63, 64, 65, 4095, PIECE_PAGES - 1};
	/* the bench's kinds, then changes of kind a piece or more in */
	static const struct {
		double d[3];
		Pattern pat[3];
	} kinds[] = {
	    {{0.01, 0.01, 0.01}, {PAT_SCATTERED, PAT_SCATTERED, PAT_SCATTERED}},
	    {{0.5, 0.5, 0.5}, {PAT_CLUSTERED, PAT_CLUSTERED, PAT_CLUSTERED}},
	    {{0.5, 0, 0}, {PAT_SCATTERED, PAT_SCATTERED, PAT_SCATTERED}}, /* dense, then clean */
	    {{0, 0, 0.5}, {PAT_SCATTERED, PAT_SCATTERED, PAT_SCATTERED}}, /* clean, then dense */
	    {{0.3, 0.001, 0.001},
	     {PAT_CLUSTERED, PAT_SCATTERED, PAT_SCATTERED}}, /* runs, then pages */
	    {{0.001, 0.001, 0.4},
	     {PAT_SCATTERED, PAT_SCATTERED, PAT_CLUSTERED}}, /* pages, then runs */
	    {{0.01, 0.6, 0.01}, {PAT_SCATTERED, PAT_CLUSTERED, PAT_SCATTERED}},
	    {{1, 0.01, 1},
	     {PAT_SCATTERED, PAT_SCATTERED, PAT_SCATTERED}}, /* all dirty at both ends */
	    {{0.1, 0.2, 0.3}, {PAT_SHORT, PAT_SHORT, PAT_SHORT}},
	    {{0.45, 0.45, 0.45}, {PAT_SHORT, PAT_SHORT, PAT_SHORT}}, /* near RUNS = SPARSE = RAW */
	};

	rng_seed(7);
	for (guint k = 0; k < G_N_ELEMENTS(kinds); k++) {
		for (guint e = 0; e < G_N_ELEMENTS(extra); e += 3) {
			guint64 n_pages = (2 + k % 2) * PIECE_PAGES + extra[e];

			check_segments(n_pages, 3, kinds[k].d, kinds[k].pat);
		}
	}
	/* and at random: sizes, how many segments, their densities and kinds */
	for (guint i = 0; i < 30; i++) {
		guint64 n_pages = PIECE_PAGES + 1 + rng_below(3 * PIECE_PAGES);
		guint n_segments = 1 + rng_below(5);
		double d[5];
		Pattern pat[5];

		if (i < G_N_ELEMENTS(extra))
			n_pages = (1 + i % 3) * PIECE_PAGES + extra[i];
		for (guint s = 0; s < n_segments; s++) {
			d[s] = densities[rng_below(G_N_ELEMENTS(densities))];
			pat[s] = (Pattern)rng_below(3);
		}
		check_segments(n_pages, n_segments, d, pat);
	}
	/* a long dirty run across pieces, and a bitmap ending dirty at a piece boundary */
	{
		guint64 n_pages = 3 * PIECE_PAGES;
		g_autofree guint64 *w = bm_new(n_pages);

		fill_random(w, n_pages, 0.01, PAT_SCATTERED, 0);
		bm_set_range(w, PIECE_PAGES - 100, PIECE_PAGES + 200);
		check_bitmap(w, n_pages);
		bm_set_range(w, 2 * PIECE_PAGES, PIECE_PAGES);
		check_bitmap(w, n_pages);
		check_bitmap(w, 2 * PIECE_PAGES);
		check_bitmap(w, 2 * PIECE_PAGES + 1);
		/* a short dirty tail after scattered pages: SPARSE ends with a run of zeros */
		memset(w, 0, n_words_of(n_pages) * 8);
		fill_random(w, n_pages, 0.001, PAT_SCATTERED, 0);
		bm_set_range(w, n_pages - 1000, 1000);
		check_bitmap(w, n_pages);
		check_bitmap(w, n_pages - 935);
	}
	/*
	 * scattered pages with a dirty run that ends at a piece's last page, a word before it or a
	 * word into the next piece: at the first, the first word the next piece lists follows
	 * dirty words that no piece lists, while the piece itself has none
	 */
	for (guint i = 0; i < 3; i++) {
		static const gint64 shift[] = {0, -64, 64};
		guint64 n_pages = 4 * PIECE_PAGES;
		guint64 end = 2 * PIECE_PAGES + shift[i];
		g_autofree guint64 *w = bm_new(n_pages);

		fill_random(w, n_pages, 0.01, PAT_SCATTERED, 0);
		bm_set_range(w, end - 300, 300);
		check_bitmap(w, n_pages);
	}
	/*
	 * scattered pages where the pieces after the first (once RUNS is out) are written by both
	 * passes at once (sparse_fused): the first of them starts after dirty words that the
	 * piece before it did not list, others end dirty or have whole dirty words inside
	 */
	{
		guint64 n_pages = 8 * PIECE_PAGES;
		g_autofree guint64 *w = bm_new(n_pages);

		fill_random(w, n_pages, 0.01, PAT_SCATTERED, 0);
		check_bitmap(w, n_pages);
		/* short enough for RUNS to be out after the first piece */
		bm_set_range(w, PIECE_PAGES - 100, 100);
		check_bitmap(w, n_pages);
		bm_set_range(w, 3 * PIECE_PAGES - 300, 300);
		check_bitmap(w, n_pages);
		bm_set_range(w, 5 * PIECE_PAGES + 5000, 2000);
		bm_set_range(w, 6 * PIECE_PAGES + 64 * 100, 64 * 9);
		bm_set_range(w, 7 * PIECE_PAGES - 64, 64);
		check_bitmap(w, n_pages);
	}
	/* a long run first makes SPARSE unlikely, scattered pages then make it shortest */
	{
		guint64 n_pages = 6 * PIECE_PAGES;
		g_autofree guint64 *w = bm_new(n_pages);

		fill_random(w, n_pages, 0.01, PAT_SCATTERED, 0);
		bm_set_range(w, 100, 9000);
		check_bitmap(w, n_pages);
	}
	/* SPARSE written until it outgrows RAW, just past one piece */
	for (guint i = 0; i < 10; i++) {
		guint64 n_pages = PIECE_PAGES + 1 + rng_below(200);
		g_autofree guint64 *w = bm_new(n_pages);

		fill_random(w, n_pages, 0.11 + i * 0.005, i % 2 ? PAT_SHORT : PAT_SCATTERED, 0);
		check_bitmap(w, n_pages);
	}
}

/* decoding: the wire forms the encoder never writes but a peer may */
static void
test_decode_accepted_forms(void **state)
{
	guint64 zero[2] = {0, 0};
	g_autofree guint64 *a = NULL;
	g_autofree guint64 *b = NULL;
	g_autofree guint64 *c = NULL;
	g_autofree guint64 *d = NULL;
	g_autofree guint64 *e = NULL;
	guint64 one_page[2] = {0, 1};  /* page 64 */
	guint64 pair[2] = {3 << 5, 0}; /* pages 5 and 6 */
	guint8 runs_all_clean[] = {100};
	guint8 runs_with_final_clean[] = {64, 1, 35}; /* 64 + 1 + 35 = 100 */
	guint8 sparse_pair[] = {5, 0};		      /* gaps: increasing by construction */
	guint8 raw_unaligned[17] = {0};

	/* all clean as a single clean run */
	a = decode_ok(MIGD_DIRTY_ENCODING_RUNS, runs_all_clean, 1, 100, 0,
		      migd_dirty_checksum(zero, 100), zero);
	assert_memory_equal(a, zero, 16);
	/* the final clean run written out */
	b = decode_ok(MIGD_DIRTY_ENCODING_RUNS, runs_with_final_clean, 3, 100, 1,
		      migd_dirty_checksum(one_page, 100), zero);
	assert_memory_equal(b, one_page, 16);
	c = decode_ok(MIGD_DIRTY_ENCODING_SPARSE, sparse_pair, 2, 100, 2,
		      migd_dirty_checksum(pair, 100), zero);
	assert_memory_equal(c, pair, 16);
	/* empty payloads: nothing dirty */
	d = decode_ok(MIGD_DIRTY_ENCODING_SPARSE, NULL, 0, 100, 0, migd_dirty_checksum(zero, 100),
		      zero);
	assert_memory_equal(d, zero, 16);
	/* RAW from an unaligned buffer */
	raw_unaligned[1 + 8] = 1;
	e = decode_ok(MIGD_DIRTY_ENCODING_RAW, raw_unaligned + 1, 16, 100, 1,
		      migd_dirty_checksum(one_page, 100), zero);
	assert_memory_equal(e, one_page, 16);
}

static void
test_decode_rejects(void **state)
{
	guint64 w[2] = {0, 0};
	guint64 ck0 = migd_dirty_checksum(w, 100);
	guint64 one_page[2] = {0, 1};
	guint64 ck1 = migd_dirty_checksum(one_page, 100);
	guint8 raw[16] = {0};
	guint8 raw_long[17] = {0};

	rng_seed(4);
	/* the chunk's fields */
	decode_bad(0, NULL, 0, 100, 0, ck0, "unknown dirty bitmap encoding 0");
	decode_bad(4, NULL, 0, 100, 0, ck0, "unknown dirty bitmap encoding 4");
	decode_bad(255, NULL, 0, 100, 0, ck0, "unknown");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, NULL, 0, 0, 0, ck0, "outside 1..");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, NULL, 0, MAX_PAGES + 1, 0, ck0, "outside 1..");
	decode_bad(MIGD_DIRTY_ENCODING_RAW, NULL, 0, G_MAXUINT64, 0, ck0, "outside 1..");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, NULL, 0, 100, 101, ck0, "101 dirty pages");

	/* varints */
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){0x80}, 1, 100, 1, ck1, "truncated");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){0x40, 0x80}, 2, 100, 2, ck1,
		   "byte 1 is truncated");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){0xc0, 0x00}, 2, 100, 1, ck1,
		   "not minimal"); /* 64 in two bytes */
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){0x80, 0x00}, 2, 100, 1, ck1,
		   "not minimal");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){0x80, 0x80, 0x00}, 3, 100, 0, ck0,
		   "not minimal");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE,
		   (guint8[]){0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 10, 100,
		   1, ck1, "64 bits");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE,
		   (guint8[]){0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00}, 11,
		   100, 1, ck1, "64 bits");
	/* 2^63 + ... fits in 64 bits but is far past n_pages */
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE,
		   (guint8[]){0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, 100,
		   1, ck1, "past the chunk");

	/* SPARSE */
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){100}, 1, 100, 1, ck1, "past the chunk");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){98, 0, 0}, 3, 100, 3, ck1,
		   "at byte 2 is past");
	/* a delta that would wrap around to an earlier page */
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE,
		   (guint8[]){64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 11,
		   100, 2, ck1, "at byte 1 is past");
	/* trailing garbage: a further index, a dangling byte */
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){64, 0}, 2, 100, 1, ck1,
		   "more than the 1 dirty pages");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){64, 0x80}, 2, 100, 1, ck1, "truncated");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){64}, 1, 100, 2, ck1,
		   "holds 1 dirty pages, the chunk announces 2");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){64}, 1, 100, 0, ck1, "more than the 0");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){64}, 1, 100, 1, ck1 ^ 1, "checksum");
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){63}, 1, 100, 1, ck1, "checksum");

	/* RUNS */
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 0}, 2, 100, 0, ck0,
		   "dirty run at byte 1 is empty");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){0, 1, 0, 1}, 4, 100, 2, ck0,
		   "clean run at byte 2 is empty");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 1, 35, 0}, 4, 100, 1, ck1,
		   "dirty run at byte 3 is empty");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 1, 0}, 3, 100, 1, ck1,
		   "clean run at byte 2 is empty");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){101}, 1, 100, 0, ck0, "goes past");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 37}, 2, 100, 37, ck0, "goes past");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 1, 36}, 3, 100, 1, ck1, "goes past");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){99}, 1, 100, 0, ck0,
		   "end at page 99, not at the chunk's end (100)");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 1, 34}, 3, 100, 1, ck1,
		   "end at page 99");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){0}, 1, 100, 0, ck0, "end at page 0");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 1}, 2, 100, 2, ck1,
		   "holds 1 dirty pages");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 2}, 2, 100, 1, ck1, "more than the 1");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 1}, 2, 100, 1, ck0, "checksum");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 1, 35, 1}, 4, 100, 1, ck1, "goes past");
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 1, 0x80}, 3, 100, 1, ck1, "truncated");

	/* RAW */
	raw[8] = 1;
	decode_bad(MIGD_DIRTY_ENCODING_RAW, raw, 15, 100, 1, ck1, "RAW payload of 15 bytes");
	decode_bad(MIGD_DIRTY_ENCODING_RAW, raw, 8, 100, 1, ck1, "16 expected");
	decode_bad(MIGD_DIRTY_ENCODING_RAW, NULL, 0, 100, 0, ck0, "0 bytes");
	raw_long[8] = 1;
	decode_bad(MIGD_DIRTY_ENCODING_RAW, raw_long, 17, 100, 1, ck1, "17 bytes");
	raw[8 + 4] = 0x10; /* page 64 + 36 = 100: past the end */
	decode_bad(MIGD_DIRTY_ENCODING_RAW, raw, 16, 100, 1, ck1, "bits past");
	raw[8 + 4] = 0;
	raw[15] = 0x80;
	decode_bad(MIGD_DIRTY_ENCODING_RAW, raw, 16, 100, 1, ck1, "bits past");
	raw[15] = 0;
	decode_bad(MIGD_DIRTY_ENCODING_RAW, raw, 16, 100, 2, ck1, "holds 1 dirty pages");
	decode_bad(MIGD_DIRTY_ENCODING_RAW, raw, 16, 100, 1, ck1 + 1, "checksum");
	decode_bad(MIGD_DIRTY_ENCODING_RAW, raw, 16, 100, 1, ck0, "checksum");
	decode_bad(MIGD_DIRTY_ENCODING_RAW, raw, 16, 128, 1, ck1, "checksum");
	{
		/* the valid chunks pass, for contrast */
		g_autofree guint64 *ok =
		    decode_ok(MIGD_DIRTY_ENCODING_RAW, raw, 16, 100, 1, ck1, w);
		g_autofree guint64 *ok2 =
		    decode_ok(MIGD_DIRTY_ENCODING_RUNS, (guint8[]){64, 1}, 2, 100, 1, ck1, w);
		g_autofree guint64 *ok3 =
		    decode_ok(MIGD_DIRTY_ENCODING_SPARSE, (guint8[]){64}, 1, 100, 1, ck1, w);
		assert_memory_equal(ok, one_page, 16);
		assert_memory_equal(ok2, one_page, 16);
		assert_memory_equal(ok3, one_page, 16);
	}
}

/* the largest chunk's limits */
static void
test_decode_rejects_max(void **state)
{
	gsize n_words = n_words_of(MAX_PAGES);
	g_autofree guint64 *zero = bm_new(MAX_PAGES);
	g_autofree guint64 *w = bm_new(MAX_PAGES);
	guint8 sparse_last[4] = {0xff, 0xff, 0xff, 0x1f}; /* 2^26 - 1 */
	guint8 sparse_past[4] = {0x80, 0x80, 0x80, 0x20}; /* 2^26 */
	guint8 runs_all[4] = {0x80, 0x80, 0x80, 0x20};	  /* one clean run of 2^26 */
	guint64 ck0 = migd_dirty_checksum(zero, MAX_PAGES);
	guint64 ck;

	bm_set(w, MAX_PAGES - 1);
	ck = migd_dirty_checksum(w, MAX_PAGES);
	{
		g_autofree guint64 *out =
		    decode_ok(MIGD_DIRTY_ENCODING_SPARSE, sparse_last, 4, MAX_PAGES, 1, ck, zero);
		assert_words_equal(out, w, n_words);
	}
	decode_bad(MIGD_DIRTY_ENCODING_SPARSE, sparse_past, 4, MAX_PAGES, 1, ck, "past the chunk");
	{
		g_autofree guint64 *out =
		    decode_ok(MIGD_DIRTY_ENCODING_RUNS, runs_all, 4, MAX_PAGES, 0, ck0, zero);
		assert_words_equal(out, zero, n_words);
	}
	decode_bad(MIGD_DIRTY_ENCODING_RUNS, runs_all, 4, MAX_PAGES - 1, 0,
		   migd_dirty_checksum(zero, MAX_PAGES - 1), "goes past");
	decode_bad(MIGD_DIRTY_ENCODING_RAW, (guint8 *)zero, n_words * 8 - 8, MAX_PAGES, 0, ck0,
		   "8388600 bytes");
	decode_bad(MIGD_DIRTY_ENCODING_RAW, (guint8 *)w, n_words * 8, MAX_PAGES, 1, ck0,
		   "checksum");
}

/*
 * Mutation fuzz: valid chunks with bytes flipped, replaced, cut, added or removed, and with
 * their fields changed. Decoding must never crash; it fails with a protocol error and the
 * target unchanged, or succeeds with a bitmap whose count and checksum are the chunk's.
 */
static void
test_fuzz_mutations(void **state)
{
	guint iterations = 6000;
	guint accepted = 0, rejected = 0;
	const gchar *env = g_getenv("MIGD_TEST_FUZZ_ITERATIONS");

	if (env != NULL)
		iterations = (guint)g_ascii_strtoull(env, NULL, 10);
	rng_seed(5);
	for (guint it = 0; it < iterations; it++) {
		guint64 n_pages = 1 + rng_below(it % 50 == 0 ? 100000 : 2000);
		gsize n_words = n_words_of(n_pages);
		g_autofree guint64 *w = bm_new(n_pages);
		g_autofree guint64 *target = g_new(guint64, n_words);
		g_autofree guint64 *before = NULL;
		g_autofree guint64 *alone = g_new0(guint64, n_words);
		g_autoptr(GArray) runs = NULL;
		g_autoptr(GByteArray) bytes = NULL;
		g_autoptr(GError) error = NULL;
		guint encoding = MIGD_DIRTY_ENCODING_RAW + rng_below(3);
		guint64 n_dirty, checksum;
		guint n_mutations = 1 + rng_below(3);

		fill_random(w, n_pages, rng_unit() * rng_unit(), (Pattern)rng_below(3),
			    1 + rng_below(100));
		runs = ref_runs(w, n_pages);
		bytes = ref_encode(encoding, w, n_pages, runs);
		n_dirty = ref_count(runs);
		checksum = ref_checksum(w, n_pages);
		for (guint m = 0; m < n_mutations; m++) {
			guint what = rng_below(9);
			gsize len = bytes->len;
			gsize at = rng_below(len);

			if (what == 0 && len > 0) {
				bytes->data[at] ^= 1 << rng_below(8);
			} else if (what == 1 && len > 0) {
				bytes->data[at] = (guint8)rng_next();
			} else if (what == 2 && len > 0) {
				g_byte_array_set_size(bytes, at);
			} else if (what == 3) {
				guint8 extra[4];
				guint n = 1 + rng_below(4);
				for (guint k = 0; k < n; k++)
					extra[k] = rng_below(2) ? (guint8)rng_next() : 0x80;
				g_byte_array_append(bytes, extra, n);
			} else if (what == 4 && len > 0) {
				g_byte_array_remove_index(bytes, at);
			} else if (what == 5) {
				guint8 b = rng_below(2) ? 0 : (guint8)rng_next();
				g_array_insert_vals((GArray *)bytes, rng_below(len + 1), &b, 1);
			} else if (what == 6) {
				n_dirty += rng_below(2) ? 1 : -1;
			} else if (what == 7) {
				encoding = rng_below(5);
			} else {
				checksum ^= G_GUINT64_CONSTANT(1) << rng_below(64);
			}
		}
		for (gsize i = 0; i < n_words; i++)
			target[i] = rng_next() & rng_next();
		before = g_memdup2(target, n_words * 8);
		if (migd_dirty_decode_merge(encoding, bytes->data, bytes->len, n_pages, n_dirty,
					    checksum, target, &error)) {
			assert_true(migd_dirty_decode_merge(encoding, bytes->data, bytes->len,
							    n_pages, n_dirty, checksum, alone,
							    NULL));
			assert_int_equal(migd_dirty_count(alone, n_pages), n_dirty);
			assert_int_equal(migd_dirty_checksum(alone, n_pages), checksum);
			assert_int_equal(alone[n_words - 1] & ~tail_mask(n_pages), 0);
			for (gsize i = 0; i < n_words; i++)
				assert_int_equal(target[i], before[i] | alone[i]);
			accepted++;
		} else {
			if (!g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL))
				fail_msg("not a protocol error: %s", error->message);
			assert_words_equal(target, before, n_words);
			rejected++;
		}
	}
	/* most mutations break the chunk; a few (a flipped bit past a checksum...) may not */
	if (iterations >= 1000)
		assert_true(rejected > iterations / 2);
	print_message("# fuzz: %u accepted, %u rejected\n", accepted, rejected);
}

/* random chunks of every encoding split at every possible length are all rejected */
static void
test_fuzz_truncations(void **state)
{
	rng_seed(6);
	for (guint it = 0; it < 200; it++) {
		guint64 n_pages = 1 + rng_below(700);
		g_autofree guint64 *w = bm_new(n_pages);
		g_autoptr(GArray) runs = NULL;
		guint64 n_dirty, checksum;

		fill_random(w, n_pages, rng_unit() * 0.3 + 0.01, (Pattern)rng_below(3),
			    1 + rng_below(20));
		runs = ref_runs(w, n_pages);
		n_dirty = ref_count(runs);
		checksum = ref_checksum(w, n_pages);
		for (MigdDirtyEncoding e = MIGD_DIRTY_ENCODING_RAW; e <= MIGD_DIRTY_ENCODING_SPARSE;
		     e++) {
			g_autoptr(GByteArray) bytes = ref_encode(e, w, n_pages, runs);
			/* every cut loses a page, a run or the end of a varint */
			for (gsize len = 0; len < bytes->len; len++)
				decode_bad(e, bytes->data, len, n_pages, n_dirty, checksum, NULL);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encoding_names),
	    cmocka_unit_test(test_checksum_known_answers),
	    cmocka_unit_test(test_wire_examples),
	    cmocka_unit_test(test_checksum_sensitivity),
	    cmocka_unit_test(test_count_and_checksum_large),
	    cmocka_unit_test(test_roundtrip_random),
	    cmocka_unit_test(test_roundtrip_adversarial),
	    cmocka_unit_test(test_encode_ignores_tail),
	    cmocka_unit_test(test_encode_reuses_struct),
	    cmocka_unit_test(test_choice_ties),
	    cmocka_unit_test(test_roundtrip_max_chunk),
	    cmocka_unit_test(test_roundtrip_pieces),
	    cmocka_unit_test(test_decode_accepted_forms),
	    cmocka_unit_test(test_decode_rejects),
	    cmocka_unit_test(test_decode_rejects_max),
	    cmocka_unit_test(test_fuzz_mutations),
	    cmocka_unit_test(test_fuzz_truncations),
	};
	return cmocka_run_group_tests_name("dirty-bitmap", tests, NULL, NULL);
}
