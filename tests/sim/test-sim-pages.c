/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The mlx5 profile's paged state holds no key while every page has a seeded one (its own
 * seed's, or one other device's after a load), remembers only the loaded pages whose bytes
 * differed, and a full image of an untouched device generated from its seed (what
 * migd-sim-mlx5.c saves, so that a device of GiBs costs its daemon no memory) is byte for byte
 * the image listed from a snapshot.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "migd-sim-mlx5-stream.h"
#include "migd-sim-pages.h"
#include "migd-sim-prng.h"

/* three records (ENTRIES_PER_CHUNK pages each) and a short last page */
#define TEST_SIZE ((guint64)MIGD_SIM_MLX5_ENTRIES_PER_CHUNK * 2 * MIGD_SIM_PAGE_SIZE + 12345)

static guint8 *
test_image_bytes(MigdSimMlx5Image *img)
{
	guint8 *buf = g_malloc(img->len);

	/* in odd pieces, as a reader's chunks cut it */
	for (guint64 off = 0; off < img->len; off += 7777)
		migd_sim_mlx5_image_read(img, off, buf + off, MIN(7777, img->len - off));
	return buf;
}

static void
test_seeded_image_equals_listed(void **state)
{
	g_autoptr(MigdSimPages) pages = migd_sim_pages_new(TEST_SIZE, 42);
	MigdSimMlx5Image *listed;
	MigdSimMlx5Image *seeded;
	g_autofree guint8 *a = NULL;
	g_autofree guint8 *b = NULL;

	assert_true(migd_sim_pages_seeded(pages));
	assert_null(pages->keys);
	seeded = migd_sim_mlx5_image_new_seeded(1, TEST_SIZE, pages->seed, TRUE, 0);
	listed =
	    migd_sim_mlx5_image_new(1, TEST_SIZE, migd_sim_pages_snapshot(pages, FALSE), TRUE, 0);
	/* a snapshot reads keys, it does not hold them */
	assert_true(migd_sim_pages_seeded(pages));
	assert_int_equal(seeded->n_entries, pages->n_pages);
	assert_int_equal(seeded->n_chunks, listed->n_chunks);
	assert_int_equal(seeded->len, listed->len);
	a = test_image_bytes(seeded);
	b = test_image_bytes(listed);
	assert_memory_equal(a, b, seeded->len);
	migd_sim_mlx5_image_unref(seeded);
	migd_sim_mlx5_image_unref(listed);
}

static void
test_touch_holds_keys(void **state)
{
	g_autoptr(MigdSimPages) src = migd_sim_pages_new(TEST_SIZE, 7);
	guint64 changed = 0;

	assert_int_equal(migd_sim_pages_key(src, 3), migd_sim_pages_seeded_key(7, 3));
	migd_sim_pages_touch(src, 0);
	assert_true(migd_sim_pages_seeded(src));
	migd_sim_pages_touch(src, 16);
	assert_false(migd_sim_pages_seeded(src));
	assert_non_null(src->keys);
	assert_true(src->n_dirty > 0);
	/* untouched pages kept their seeded keys, touched ones got new ones */
	for (guint64 p = 0; p < src->n_pages; p++) {
		if (migd_sim_pages_key(src, p) != migd_sim_pages_seeded_key(7, p))
			changed++;
	}
	assert_true(changed > 0 && changed <= 16);
}

static void
test_load_seeded_keys(void **state)
{
	g_autoptr(MigdSimPages) dst = migd_sim_pages_new(TEST_SIZE, 8);
	g_autoptr(MigdSimPages) whole = migd_sim_pages_new(TEST_SIZE, 8);

	/* another device's seeded key: one bit, no key held */
	assert_true(migd_sim_pages_load(dst, 5, migd_sim_pages_seeded_key(7, 5), TRUE, 0));
	assert_null(dst->keys);
	assert_non_null(dst->foreign);
	assert_false(migd_sim_pages_seeded(dst));
	assert_int_equal(migd_sim_pages_key(dst, 5), migd_sim_pages_seeded_key(7, 5));
	assert_int_equal(migd_sim_pages_key(dst, 6), migd_sim_pages_seeded_key(8, 6));
	/* our own seeded key back: the bit goes */
	assert_true(migd_sim_pages_load(dst, 5, migd_sim_pages_seeded_key(8, 5), TRUE, 0));
	assert_int_equal(dst->n_foreign, 0);
	assert_true(migd_sim_pages_load(dst, 5, migd_sim_pages_seeded_key(7, 5), TRUE, 0));
	/* a third seed: every key is held, none changes */
	assert_true(migd_sim_pages_load(dst, 6, migd_sim_pages_seeded_key(9, 6), TRUE, 0));
	assert_non_null(dst->keys);
	assert_null(dst->foreign);
	assert_int_equal(migd_sim_pages_key(dst, 5), migd_sim_pages_seeded_key(7, 5));
	assert_int_equal(migd_sim_pages_key(dst, 6), migd_sim_pages_seeded_key(9, 6));
	assert_int_equal(migd_sim_pages_key(dst, 7), migd_sim_pages_seeded_key(8, 7));
	assert_false(migd_sim_pages_load(dst, dst->n_pages, 1, TRUE, 0));

	/* every page loaded from one device: its seed becomes ours, a full save lists nothing */
	for (guint64 p = 0; p < whole->n_pages; p++)
		assert_true(
		    migd_sim_pages_load(whole, p, migd_sim_pages_seeded_key(7, p), TRUE, 0));
	assert_true(migd_sim_pages_seeded(whole));
	assert_int_equal(whole->seed, 7);
	assert_null(whole->keys);
}

static void
test_bad_page_in_digest(void **state)
{
	g_autoptr(MigdSimPages) src = migd_sim_pages_new(TEST_SIZE, 7);
	g_autoptr(MigdSimPages) dst = migd_sim_pages_new(TEST_SIZE, 8);

	for (guint64 p = 0; p < dst->n_pages; p++)
		assert_true(migd_sim_pages_load(dst, p, migd_sim_pages_key(src, p), TRUE, 0));
	assert_int_equal(migd_sim_pages_digest(dst), migd_sim_pages_digest(src));
	/* bytes that were not the key's stream are remembered, and the digest says so */
	assert_true(migd_sim_pages_load(dst, 3, migd_sim_pages_key(src, 3), FALSE, 0x1234));
	assert_true(migd_sim_pages_digest(dst) != migd_sim_pages_digest(src));
	/* until the page arrives intact again */
	assert_true(migd_sim_pages_load(dst, 3, migd_sim_pages_key(src, 3), TRUE, 0));
	assert_int_equal(migd_sim_pages_digest(dst), migd_sim_pages_digest(src));
}

static void
test_seeded_digest_unchanged(void **state)
{
	g_autoptr(MigdSimPages) seeded = migd_sim_pages_new(TEST_SIZE, 99);
	g_autoptr(MigdSimPages) held = migd_sim_pages_new(TEST_SIZE, 99);

	/* a load of every page with its seeded key, each with the hash of its bytes as if they
	 * differed from the key's stream: the digest is the same */
	for (guint64 p = 0; p < held->n_pages; p++) {
		guint8 page[MIGD_SIM_PAGE_SIZE];
		gsize len = migd_sim_pages_page_len(held->size, p);
		guint64 key = migd_sim_pages_seeded_key(99, p);

		migd_sim_fill_bytes(key, 0, page, len);
		assert_true(migd_sim_pages_load(held, p, key, FALSE,
						migd_sim_pages_content_hash(page, len)));
	}
	assert_non_null(held->bad);
	assert_int_equal(g_hash_table_size(held->bad), held->n_pages);
	assert_int_equal(migd_sim_pages_digest(seeded), migd_sim_pages_digest(held));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seeded_image_equals_listed),
	    cmocka_unit_test(test_touch_holds_keys),
	    cmocka_unit_test(test_load_seeded_keys),
	    cmocka_unit_test(test_bad_page_in_digest),
	    cmocka_unit_test(test_seeded_digest_unchanged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
