/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Three implementations: the SSE4.2 crc32 instruction over three interleaved
 * streams (the instruction's latency is three cycles and its throughput one, so
 * one stream leaves two thirds of it idle), joined with shift tables; where the
 * CPU also has VPCLMULQDQ, four such streams and, in the same loop, carry-less
 * multiply folding of as many bytes again, which runs on other execution units
 * (about 1.5 times the crc32 streams alone); and slicing-by-8 tables elsewhere.
 * The joins follow zlib's crc32_combine: shifting a CRC past n zero bytes is a
 * multiplication by x^(8n) modulo the polynomial.
 */
#include "config.h"

#include <string.h>

#include "migd-crc32c.h"

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define MIGD_CRC32C_HAVE_X86 1
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#define MIGD_CRC32C_HAVE_CLMUL 1
#endif

/* the Castagnoli polynomial, bit-reflected */
#define MIGD_CRC32C_POLY 0x82f63b78u

/* the interleaved blocks: three streams of LONG bytes, then of SHORT bytes */
#define MIGD_CRC32C_LONG  8192u
#define MIGD_CRC32C_SHORT 256u
/* the folding path's blocks: four crc32 streams of STREAM bytes, then 4 * STREAM folded */
#define MIGD_CRC32C_STREAM 2048u
#define MIGD_CRC32C_FOLD   (4u * MIGD_CRC32C_STREAM)

typedef struct {
	guint32 slice[8][256];	    /* slicing-by-8 */
	guint32 x2n[32];	    /* x^(2^n) mod P */
	guint32 shift_long[4][256]; /* multiply by x^(8 * LONG) mod P, a byte at a time */
	guint32 shift_short[4][256];
	guint32 shift_stream[4][256]; /* by x^(8 * STREAM) */
	/* folding a 128-bit lane forward by 1024 and by 128 bits: x^(d+32), x^(d-32), each << 1 */
	guint64 fold1024[2];
	guint64 fold128[2];
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
	migd_crc32c_shift_table_init(t, t->shift_stream, MIGD_CRC32C_STREAM);
	/*
	 * Reflected folding (Intel's "Fast CRC Computation Using PCLMULQDQ"): a lane's low
	 * quadword (the earlier bytes, the higher powers) times x^(d+32) mod P, its high one
	 * times x^(d-32) mod P, both reflected and shifted left by one for the carry-less
	 * product's bit order. For the IEEE polynomial and d = 512 this gives zlib-ng's
	 * 0x154442bd4 and 0x1c6e41596.
	 */
	t->fold1024[0] = (guint64)migd_crc32c_x8nmodp(t, (1024 + 32) / 8) << 1;
	t->fold1024[1] = (guint64)migd_crc32c_x8nmodp(t, (1024 - 32) / 8) << 1;
	t->fold128[0] = (guint64)migd_crc32c_x8nmodp(t, (128 + 32) / 8) << 1;
	t->fold128[1] = (guint64)migd_crc32c_x8nmodp(t, (128 - 32) / 8) << 1;
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

#ifdef MIGD_CRC32C_HAVE_CLMUL

#define MIGD_CRC32C_CLMUL_TARGET __attribute__((target("sse4.2,pclmul,avx2,vpclmulqdq")))

/* both 128-bit lanes of @x carried 1024 bits forward */
MIGD_CRC32C_CLMUL_TARGET static inline __m256i
migd_crc32c_fold256(__m256i x, __m256i k)
{
	return _mm256_xor_si256(_mm256_clmulepi64_epi128(x, k, 0x00),
				_mm256_clmulepi64_epi128(x, k, 0x11));
}

MIGD_CRC32C_CLMUL_TARGET static inline __m128i
migd_crc32c_fold128(__m128i x, __m128i k)
{
	return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

MIGD_CRC32C_CLMUL_TARGET static inline __m256i
migd_crc32c_load256(const guint8 *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

/*
 * One block of MIGD_CRC32C_FOLD * 2 bytes from register @c: four crc32 streams over the
 * first half, carry-less folding of the second half in the same loop, then joined.
 */
MIGD_CRC32C_CLMUL_TARGET static guint32
migd_crc32c_clmul_block(const MigdCrc32cTables *t, guint32 c, const guint8 *p)
{
	const __m256i k1024 = _mm256_set_epi64x((gint64)t->fold1024[1], (gint64)t->fold1024[0],
						(gint64)t->fold1024[1], (gint64)t->fold1024[0]);
	const __m128i k128 = _mm_set_epi64x((gint64)t->fold128[1], (gint64)t->fold128[0]);
	const guint8 *f = p + MIGD_CRC32C_FOLD;
	guint64 c0 = c, c1 = 0, c2 = 0, c3 = 0, cf;
	__m256i x0 = migd_crc32c_load256(f), x1 = migd_crc32c_load256(f + 32);
	__m256i x2 = migd_crc32c_load256(f + 64), x3 = migd_crc32c_load256(f + 96);
	__m128i v;

	f += 128;
	for (gsize i = 0; i < MIGD_CRC32C_STREAM; i += 32) {
		for (gsize k = i; k < i + 32; k += 8) {
			guint64 w0, w1, w2, w3;
			memcpy(&w0, p + k, 8);
			memcpy(&w1, p + MIGD_CRC32C_STREAM + k, 8);
			memcpy(&w2, p + 2 * MIGD_CRC32C_STREAM + k, 8);
			memcpy(&w3, p + 3 * MIGD_CRC32C_STREAM + k, 8);
			c0 = _mm_crc32_u64(c0, w0);
			c1 = _mm_crc32_u64(c1, w1);
			c2 = _mm_crc32_u64(c2, w2);
			c3 = _mm_crc32_u64(c3, w3);
		}
		/* 128 folded bytes a step, the first 128 loaded before the loop */
		if (i + 32 < MIGD_CRC32C_STREAM) {
			x0 = _mm256_xor_si256(migd_crc32c_fold256(x0, k1024),
					      migd_crc32c_load256(f));
			x1 = _mm256_xor_si256(migd_crc32c_fold256(x1, k1024),
					      migd_crc32c_load256(f + 32));
			x2 = _mm256_xor_si256(migd_crc32c_fold256(x2, k1024),
					      migd_crc32c_load256(f + 64));
			x3 = _mm256_xor_si256(migd_crc32c_fold256(x3, k1024),
					      migd_crc32c_load256(f + 96));
			f += 128;
		}
	}
	/* the eight lanes, in memory order, into one; its CRC from zero is the half's */
	v = migd_crc32c_fold128(_mm256_castsi256_si128(x0), k128);
	v = _mm_xor_si128(v, _mm256_extracti128_si256(x0, 1));
	v = _mm_xor_si128(migd_crc32c_fold128(v, k128), _mm256_castsi256_si128(x1));
	v = _mm_xor_si128(migd_crc32c_fold128(v, k128), _mm256_extracti128_si256(x1, 1));
	v = _mm_xor_si128(migd_crc32c_fold128(v, k128), _mm256_castsi256_si128(x2));
	v = _mm_xor_si128(migd_crc32c_fold128(v, k128), _mm256_extracti128_si256(x2, 1));
	v = _mm_xor_si128(migd_crc32c_fold128(v, k128), _mm256_castsi256_si128(x3));
	v = _mm_xor_si128(migd_crc32c_fold128(v, k128), _mm256_extracti128_si256(x3, 1));
	cf = _mm_crc32_u64(0, (guint64)_mm_cvtsi128_si64(v));
	cf = _mm_crc32_u64(cf, (guint64)_mm_extract_epi64(v, 1));
	c = migd_crc32c_shift(t->shift_stream, (guint32)c0) ^ (guint32)c1;
	c = migd_crc32c_shift(t->shift_stream, c) ^ (guint32)c2;
	c = migd_crc32c_shift(t->shift_stream, c) ^ (guint32)c3;
	/* the first half's CRC past the folded half's bytes (LONG = FOLD) */
	return migd_crc32c_shift(t->shift_long, c) ^ (guint32)cf;
}

MIGD_CRC32C_CLMUL_TARGET guint32
migd_crc32c_update_clmul(guint32 crc, gconstpointer buf, gsize len)
{
	const MigdCrc32cTables *t = migd_crc32c_get_tables();
	const guint8 *p = buf;
	guint32 c = ~crc;

	G_STATIC_ASSERT(MIGD_CRC32C_FOLD == MIGD_CRC32C_LONG);
	while (len >= 2 * MIGD_CRC32C_FOLD) {
		c = migd_crc32c_clmul_block(t, c, p);
		p += 2 * MIGD_CRC32C_FOLD;
		len -= 2 * MIGD_CRC32C_FOLD;
	}
	/* the rest (under 16 KiB) as the crc32 streams do it */
	return migd_crc32c_update_hw(~c, p, len);
}

gboolean
migd_crc32c_have_clmul(void)
{
	return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("avx2") &&
	       __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("vpclmulqdq");
}

#else

guint32
migd_crc32c_update_clmul(guint32 crc, gconstpointer buf, gsize len)
{
	g_return_val_if_reached(migd_crc32c_update_generic(crc, buf, len));
}

gboolean
migd_crc32c_have_clmul(void)
{
	return FALSE;
}

#endif

typedef struct {
	const gchar *name;
	guint32 (*update)(guint32 crc, gconstpointer buf, gsize len);
} MigdCrc32cImpl;

/* the fastest implementation this CPU runs, asked once */
static const MigdCrc32cImpl *
migd_crc32c_choose(void)
{
	static const MigdCrc32cImpl impls[] = {
	    {"vpclmulqdq", migd_crc32c_update_clmul},
	    {"sse4.2", migd_crc32c_update_hw},
	    {"tables", migd_crc32c_update_generic},
	};
	static gsize choice = 0; /* 1 + index in impls[] */

	if (g_once_init_enter(&choice)) {
		gsize i = migd_crc32c_have_clmul() ? 0 : migd_crc32c_have_hw() ? 1 : 2;
		g_once_init_leave(&choice, i + 1);
	}
	return &impls[choice - 1];
}

guint32
migd_crc32c_update(guint32 crc, gconstpointer buf, gsize len)
{
	return migd_crc32c_choose()->update(crc, buf, len);
}

const gchar *
migd_crc32c_implementation(void)
{
	return migd_crc32c_choose()->name;
}
