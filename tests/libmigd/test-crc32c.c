/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CRC32C: RFC 3720's vectors, a bit-at-a-time reference, and every
 * implementation against it on every length 0..4096 at every misalignment; the
 * folding path, whose blocks are 16 KiB, around every block boundary too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "migd-crc32c.h"
#include "migd-test-util.h"

/* the definition: one bit at a time, nothing shared with the code under test */
static guint32
crc32c_reference(guint32 crc, const guint8 *p, gsize len)
{
	guint32 c = ~crc;
	for (gsize i = 0; i < len; i++) {
		c ^= p[i];
		for (guint k = 0; k < 8; k++)
			c = (c & 1) != 0 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

typedef guint32 (*Crc32cFunc)(guint32, gconstpointer, gsize);

static void
check_rfc3720(Crc32cFunc func)
{
	guint8 buf[48];

	/* RFC 3720 appendix B.4 */
	memset(buf, 0, 32);
	assert_int_equal(func(0, buf, 32), 0x8a9136aa);
	memset(buf, 0xff, 32);
	assert_int_equal(func(0, buf, 32), 0x62a8ab43);
	for (guint i = 0; i < 32; i++)
		buf[i] = i;
	assert_int_equal(func(0, buf, 32), 0x46dd794e);
	for (guint i = 0; i < 32; i++)
		buf[i] = 31 - i;
	assert_int_equal(func(0, buf, 32), 0x113fdb5c);
	/* the iSCSI read command PDU of B.4 */
	{
		static const guint8 pdu[48] = {
		    0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		    0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		    0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		    0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
		assert_int_equal(func(0, pdu, sizeof(pdu)), 0xd9963a56);
	}
	/* the usual check value: "123456789" */
	assert_int_equal(func(0, "123456789", 9), 0xe3069283);
	assert_int_equal(func(0, NULL, 0), 0);
	assert_int_equal(func(0x12345678, buf, 0), 0x12345678);
}

static void
test_vectors(void **state)
{
	check_rfc3720(migd_crc32c_update);
	check_rfc3720(migd_crc32c_update_generic);
	if (migd_crc32c_have_hw())
		check_rfc3720(migd_crc32c_update_hw);
	else
		print_message("# no SSE4.2 on this CPU: the instruction path is not tested\n");
	if (migd_crc32c_have_clmul())
		check_rfc3720(migd_crc32c_update_clmul);
	else
		print_message("# no VPCLMULQDQ on this CPU: the folding path is not tested\n");
	assert_non_null(migd_crc32c_implementation());
}

/* every length 0..4096 at every start misalignment 0..15, against the reference */
static void
check_lengths(Crc32cFunc func)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(3720);
	g_autofree guint8 *buf = g_malloc(4096 + 16);

	for (gsize i = 0; i < 4096 + 16; i++)
		buf[i] = (guint8)g_rand_int(rand);
	for (gsize len = 0; len <= 4096; len++) {
		guint off = len % 16;
		guint32 seed = len % 3 == 0 ? 0 : g_rand_int(rand);
		guint32 want = crc32c_reference(seed, buf + off, len);
		if (func(seed, buf + off, len) != want)
			fail_msg("length %zu at +%u: %08x, want %08x", len, off,
				 func(seed, buf + off, len), want);
	}
	for (guint off = 0; off < 16; off++) {
		for (gsize len = 4096 - 40; len <= 4096; len++)
			assert_int_equal(func(0, buf + off, len),
					 crc32c_reference(0, buf + off, len));
	}
}

static void
test_lengths_generic(void **state)
{
	check_lengths(migd_crc32c_update_generic);
}

static void
test_lengths_hw(void **state)
{
	MIGD_TEST_SKIP_IF(!migd_crc32c_have_hw(), "no SSE4.2 on this CPU");
	check_lengths(migd_crc32c_update_hw);
}

/* the folding path around its 16 KiB blocks */
static void
check_clmul_blocks(void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(1024);
	const gsize block = 16384, max = 4 * block + 64;
	g_autofree guint8 *buf = g_malloc(max);

	for (gsize i = 0; i < max; i++)
		buf[i] = (guint8)g_rand_int(rand);
	/* around one, two and three blocks, at every misalignment, with and without a seed */
	for (gsize blocks = 1; blocks <= 3; blocks++) {
		for (gsize len = blocks * block - 24; len <= blocks * block + 24; len++) {
			for (guint off = 0; off < 16; off++) {
				guint32 seed = (len + off) % 2 == 0 ? 0 : g_rand_int(rand);
				guint32 want = migd_crc32c_update_generic(seed, buf + off, len);
				if (migd_crc32c_update_clmul(seed, buf + off, len) != want)
					fail_msg("length %zu at +%u: %08x, want %08x", len, off,
						 migd_crc32c_update_clmul(seed, buf + off, len),
						 want);
			}
		}
	}
	/* and the definition itself on two blocks and a bit */
	assert_int_equal(migd_crc32c_update_clmul(0x1234, buf + 3, 2 * block + 9),
			 crc32c_reference(0x1234, buf + 3, 2 * block + 9));
	/* one flipped bit anywhere changes it */
	for (gsize bit = 0; bit < 2 * block * 8; bit += 4099) {
		guint32 before = migd_crc32c_update_clmul(0, buf, 2 * block);
		buf[bit / 8] ^= (guint8)(1u << (bit % 8));
		assert_int_not_equal(migd_crc32c_update_clmul(0, buf, 2 * block), before);
		buf[bit / 8] ^= (guint8)(1u << (bit % 8));
	}
}

static void
test_lengths_clmul(void **state)
{
	MIGD_TEST_SKIP_IF(!migd_crc32c_have_clmul(),
			  "no VPCLMULQDQ on this CPU (or valgrind hides it)");
	check_lengths(migd_crc32c_update_clmul);
	check_clmul_blocks();
}

/* large buffers cross the interleaved blocks (3 x 8 KiB, 3 x 256 bytes) */
static void
test_large(void **state)
{
	static const gsize sizes[] = {3 * 8192 - 1,	   3 * 8192,	3 * 8192 + 7,
				      3 * 8192 + 768 + 5,  1024 * 1024, 1024 * 1024 + 3,
				      4 * 1024 * 1024 - 11};
	g_autoptr(GRand) rand = g_rand_new_with_seed(42);
	gsize max = 4 * 1024 * 1024 + 16;
	g_autofree guint8 *buf = g_malloc(max);

	for (gsize i = 0; i < max; i++)
		buf[i] = (guint8)g_rand_int(rand);
	for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
		guint off = i % 8;
		guint32 want = crc32c_reference(0, buf + off, sizes[i]);
		assert_int_equal(migd_crc32c_update_generic(0, buf + off, sizes[i]), want);
		assert_int_equal(migd_crc32c_update(0, buf + off, sizes[i]), want);
		if (migd_crc32c_have_hw())
			assert_int_equal(migd_crc32c_update_hw(0, buf + off, sizes[i]), want);
		if (migd_crc32c_have_clmul())
			assert_int_equal(migd_crc32c_update_clmul(0, buf + off, sizes[i]), want);
	}
}

/* chaining and combining give the CRC of the concatenation */
static void
test_combine(void **state)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(7);
	g_autofree guint8 *buf = g_malloc(70000);

	for (gsize i = 0; i < 70000; i++)
		buf[i] = (guint8)g_rand_int(rand);
	for (guint i = 0; i < 200; i++) {
		gsize len = g_rand_int_range(rand, 0, 70000);
		gsize cut = len > 0 ? g_rand_int_range(rand, 0, len + 1) : 0;
		guint32 whole = migd_crc32c_update(0, buf, len);
		guint32 a = migd_crc32c_update(0, buf, cut);
		guint32 b = migd_crc32c_update(0, buf + cut, len - cut);
		assert_int_equal(migd_crc32c_update(a, buf + cut, len - cut), whole);
		assert_int_equal(migd_crc32c_combine(a, b, len - cut), whole);
	}
	assert_int_equal(migd_crc32c_combine(0, 0, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),    cmocka_unit_test(test_lengths_generic),
	    cmocka_unit_test(test_lengths_hw), cmocka_unit_test(test_lengths_clmul),
	    cmocka_unit_test(test_large),      cmocka_unit_test(test_combine),
	};
	return cmocka_run_group_tests_name("crc32c", tests, NULL, NULL);
}
