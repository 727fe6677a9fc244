/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two implementations: the SSE4.2 crc32 instruction over three interleaved
 * streams (the instruction's latency is three cycles and its throughput one, so
 * one stream leaves two thirds of it idle), joined with shift tables; and
 * slicing-by-8 tables elsewhere. The joins follow zlib's crc32_combine: shifting
 * a CRC past n zero bytes is a multiplication by x^(8n) modulo the polynomial.
 */
#include "config.h"

#include <string.h>

#include "migd-crc32c.h"

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define MIGD_CRC32C_HAVE_X86 1
#endif

/* the Castagnoli polynomial, bit-reflected */
#define MIGD_CRC32C_POLY 0x82f63b78u

/* the interleaved blocks: three streams of LONG bytes, then of SHORT bytes */
#define MIGD_CRC32C_LONG  8192u
#define MIGD_CRC32C_SHORT 256u

typedef struct {
	guint32 slice[8][256];	    /* slicing-by-8 */
	guint32 x2n[32];	    /* x^(2^n) mod P */
	guint32 shift_long[4][256]; /* multiply by x^(8 * LONG) mod P, a byte at a time */
	guint32 shift_short[4][256];
} MigdCrc32cTables;

static MigdCrc32cTables migd_crc32c_tables;

/* a(x) * b(x) mod P, reflected */
static guint32
migd_crc32c_multmodp(guint32 a, guint32 b)
{
	guint32 m = 1u << 31;
	guint32 p = 0;

	for (;;) {
		if ((a & m) != 0) {
			p ^= b;
			if ((a & (m - 1)) == 0)
				break;
		}
		m >>= 1;
		b = (b & 1) != 0 ? (b >> 1) ^ MIGD_CRC32C_POLY : b >> 1;
	}
	return p;
}

/* x^(8n) mod P */
static guint32
migd_crc32c_x8nmodp(const MigdCrc32cTables *t, guint64 n)
{
	guint32 xp = 1u << 31; /* x^0 */
	guint k = 3;

	while (n != 0) {
		if ((n & 1) != 0)
			xp = migd_crc32c_multmodp(t->x2n[k & 31], xp);
		n >>= 1;
		k++;
	}
	return xp;
}

static void
migd_crc32c_shift_table_init(const MigdCrc32cTables *t, guint32 table[4][256], guint64 n_bytes)
{
	guint32 op = migd_crc32c_x8nmodp(t, n_bytes);

	for (guint j = 0; j < 4; j++) {
		for (guint b = 0; b < 256; b++)
			table[j][b] = migd_crc32c_multmodp(op, (guint32)b << (8 * j));
	}
}

static const MigdCrc32cTables *
migd_crc32c_get_tables(void)
{
	static gsize once = 0;
	MigdCrc32cTables *t = &migd_crc32c_tables;

	if (!g_once_init_enter(&once))
		return t;
	for (guint b = 0; b < 256; b++) {
		guint32 c = b;
		for (guint k = 0; k < 8; k++)
			c = (c & 1) != 0 ? (c >> 1) ^ MIGD_CRC32C_POLY : c >> 1;
		t->slice[0][b] = c;
	}
	for (guint b = 0; b < 256; b++) {
		for (guint s = 1; s < 8; s++)
			t->slice[s][b] =
			    (t->slice[s - 1][b] >> 8) ^ t->slice[0][t->slice[s - 1][b] & 0xff];
	}
	t->x2n[0] = 1u << 30; /* x^1 */
	for (guint n = 1; n < 32; n++)
		t->x2n[n] = migd_crc32c_multmodp(t->x2n[n - 1], t->x2n[n - 1]);
	migd_crc32c_shift_table_init(t, t->shift_long, MIGD_CRC32C_LONG);
	migd_crc32c_shift_table_init(t, t->shift_short, MIGD_CRC32C_SHORT);
	g_once_init_leave(&once, 1);
	return t;
}

guint32
migd_crc32c_combine(guint32 crc_a, guint32 crc_b, guint64 len_b)
{
	const MigdCrc32cTables *t = migd_crc32c_get_tables();
	return migd_crc32c_multmodp(migd_crc32c_x8nmodp(t, len_b), crc_a) ^ crc_b;
}

guint32
migd_crc32c_update_generic(guint32 crc, gconstpointer buf, gsize len)
{
	const MigdCrc32cTables *t = migd_crc32c_get_tables();
	const guint8 *p = buf;
	guint32 c = ~crc;

	while (len > 0 && ((guintptr)p & 7) != 0) {
		c = (c >> 8) ^ t->slice[0][(c ^ *p++) & 0xff];
		len--;
	}
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
	while (len >= 8) {
		guint64 w;
		guint32 lo;
		guint32 hi;

		memcpy(&w, p, sizeof(w));
		lo = (guint32)w ^ c;
		hi = (guint32)(w >> 32);
		c = t->slice[7][lo & 0xff] ^ t->slice[6][(lo >> 8) & 0xff] ^
		    t->slice[5][(lo >> 16) & 0xff] ^ t->slice[4][lo >> 24] ^
		    t->slice[3][hi & 0xff] ^ t->slice[2][(hi >> 8) & 0xff] ^
		    t->slice[1][(hi >> 16) & 0xff] ^ t->slice[0][hi >> 24];
		p += 8;
		len -= 8;
	}
#endif
	while (len-- > 0)
		c = (c >> 8) ^ t->slice[0][(c ^ *p++) & 0xff];
	return ~c;
}

#ifdef MIGD_CRC32C_HAVE_X86

static inline guint32
migd_crc32c_shift(const guint32 table[4][256], guint32 c)
{
	return table[0][c & 0xff] ^ table[1][(c >> 8) & 0xff] ^ table[2][(c >> 16) & 0xff] ^
	       table[3][c >> 24];
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static inline guint32
migd_crc32c_hw_word(guint32 c, const guint8 *p)
{
	guint64 w;
	memcpy(&w, p, sizeof(w));
	return (guint32)_mm_crc32_u64(c, w);
}
#define MIGD_CRC32C_WORD 8u
#else
__attribute__((target("sse4.2"))) static inline guint32
migd_crc32c_hw_word(guint32 c, const guint8 *p)
{
	guint32 w;
	memcpy(&w, p, sizeof(w));
	return _mm_crc32_u32(c, w);
}
#define MIGD_CRC32C_WORD 4u
#endif

/* three streams of @block bytes each, joined; returns the register after them */
__attribute__((target("sse4.2"))) static inline guint32
migd_crc32c_hw_blocks(guint32 c0, const guint8 **pp, gsize *len, gsize block,
		      const guint32 table[4][256])
{
	const guint8 *p = *pp;

	while (*len >= 3 * block) {
		guint32 c1 = 0;
		guint32 c2 = 0;
		const guint8 *end = p + block;

		do {
			c0 = migd_crc32c_hw_word(c0, p);
			c1 = migd_crc32c_hw_word(c1, p + block);
			c2 = migd_crc32c_hw_word(c2, p + 2 * block);
			p += MIGD_CRC32C_WORD;
		} while (p < end);
		c0 = migd_crc32c_shift(table, c0) ^ c1;
		c0 = migd_crc32c_shift(table, c0) ^ c2;
		p += 2 * block;
		*len -= 3 * block;
	}
	*pp = p;
	return c0;
}

__attribute__((target("sse4.2"))) guint32
migd_crc32c_update_hw(guint32 crc, gconstpointer buf, gsize len)
{
	const MigdCrc32cTables *t = migd_crc32c_get_tables();
	const guint8 *p = buf;
	guint32 c = ~crc;

	while (len > 0 && ((guintptr)p & (MIGD_CRC32C_WORD - 1)) != 0) {
		c = _mm_crc32_u8(c, *p++);
		len--;
	}
	c = migd_crc32c_hw_blocks(c, &p, &len, MIGD_CRC32C_LONG, t->shift_long);
	c = migd_crc32c_hw_blocks(c, &p, &len, MIGD_CRC32C_SHORT, t->shift_short);
	while (len >= MIGD_CRC32C_WORD) {
		c = migd_crc32c_hw_word(c, p);
		p += MIGD_CRC32C_WORD;
		len -= MIGD_CRC32C_WORD;
	}
	while (len-- > 0)
		c = _mm_crc32_u8(c, *p++);
	return ~c;
}

gboolean
migd_crc32c_have_hw(void)
{
	return __builtin_cpu_supports("sse4.2");
}

#else

guint32
migd_crc32c_update_hw(guint32 crc, gconstpointer buf, gsize len)
{
	g_return_val_if_reached(migd_crc32c_update_generic(crc, buf, len));
}

gboolean
migd_crc32c_have_hw(void)
{
	return FALSE;
}

#endif

guint32
migd_crc32c_update(guint32 crc, gconstpointer buf, gsize len)
{
	static guint32 (*impl)(guint32, gconstpointer, gsize) = NULL;
	static gsize once = 0;

	/* the CPU check once; a plain load afterwards */
	if (g_once_init_enter(&once)) {
		impl = migd_crc32c_have_hw() ? migd_crc32c_update_hw : migd_crc32c_update_generic;
		g_once_init_leave(&once, 1);
	}
	return impl(crc, buf, len);
}
