/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty-bitmap codec (migd-dirty-bitmap.h): the wire formats, the checksum and the
 * encoder; the decoder that checks what a peer sent is migd-dirty-bitmap-decode.c.
 *
 * Wire formats (DirtyBitmapChunk.encoding, .data, .n_dirty, .checksum). A chunk covers
 * pages [0, n_pages), 1 <= n_pages <= 2^26; word i of the bitmap holds pages 64i .. 64i+63,
 * page 64i+b in bit b. Varints are unsigned LEB128: 7 bits per byte, least significant group
 * first, the top bit set on every byte but the last; a varint must be minimal (its last byte is
 * not 0x00 unless it is the only byte) and fit in 64 bits.
 *
 *   RAW (1)     the ceil(n_pages / 64) words, each as 8 bytes little-endian; bits at and after
 *               n_pages in the last word are zero.
 *   RUNS (2)    varints c0, d1, c1, d2, c2, ..., alternately the length of a clean run and of
 *               a dirty run, starting at page 0 with a clean run. c0 may be 0; every other run
 *               is at least 1. The runs cover at most n_pages pages; when the last varint is a
 *               dirty run the pages after it are clean (the encoder always leaves the final
 *               clean run out), and when it is a clean run the runs must end exactly at n_pages.
 *               No dirty pages: an empty payload (or the single varint n_pages).
 *   SPARSE (3)  one varint per dirty page, in increasing page order: the first dirty page's
 *               index, then for each next dirty page (index - previous index - 1). No dirty
 *               pages: an empty payload.
 *
 * n_dirty is the number of dirty pages. The sender picks the shortest payload; on a tie SPARSE
 * wins over RUNS and both over RAW. The receiver accepts any valid encoding.
 *
 * Checksum (migd_dirty_checksum, also DirtyBitmapChunk.checksum). Arithmetic on unsigned 64-bit
 * integers modulo 2^64; rotl(x, r) rotates x left by r bits; ^ is exclusive or.
 *
 *   M = 0x9E3779B185EBCA87
 *   v[j] = (j + 1) * 0xC2B2AE3D27D4EB4F                  for the 8 lanes j = 0 .. 7
 *   for i = 0 .. ceil(n_pages / 64) - 1:
 *       w = word i, bits at and after n_pages cleared
 *       v[i % 8] = rotl(v[i % 8] ^ w, 31) * M
 *   h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)
 *     + rotl(v[4], 23) + rotl(v[5], 29) + rotl(v[6], 34) + rotl(v[7], 40)
 *   h = h ^ n_pages
 *   h = h ^ (h >> 33); h = h * 0xFF51AFD7ED558CCD;       (MurmurHash3's fmix64)
 *   h = h ^ (h >> 33); h = h * 0xC4CEB9FE1A85EC53;
 *   h = h ^ (h >> 33)
 *   checksum = h
 *
 * Every step of a lane is a bijection of the lane for a given word, the sum is a bijection of
 * each lane given the others and fmix64 is a bijection, so any change confined to one word
 * always changes the checksum. The 8 lanes are independent chains, so the loop is bound by
 * loads and multiplier throughput rather than by the multiply's latency.
 *
 * Encoder (one chunk of up to 1 Mi words = 8 MiB), by pieces of 4096 words (32 KiB):
 *   pass 1 of a piece reads every word once, in blocks of 8 (one word per lane): the checksum
 *     lanes, the popcount, and the list of the words that hold a run boundary ("bounds";
 *     between two of them the words are all clean or all dirty); for the first piece also the
 *     run starts. A block of zeros or of ones costs only the lanes where few words are listed.
 *   pass 2 of the piece follows at once, while the piece is still in L1/L2 (a second pass over
 *     the whole chunk would read it from memory again): it reads only the listed words and
 *     writes the formats that may still win as the counts so far say, SPARSE (set bits, in
 *     batches of page numbers, then varints) and/or RUNS (varints as the boundaries are found),
 *     each into a buffer of the RAW size, and counts the runs. A format stops when it passes
 *     the RAW size, or is no longer written when it looks hopeless: SPARSE when n_dirty passes
 *     the RAW bytes seen or 2.5 runs (each with a piece's margin), RUNS when 2 * runs passes
 *     the RAW bytes seen or 1.5 * runs passes n_dirty. The AVX2 pass 1 also says whether a
 *     word it did not list is dirty; when none is, only the piece's first listed word may
 *     follow dirty words that are not listed, and the SPARSE walk tests only that one.
 *   scattered pieces (AVX2): once SPARSE is the only format written and the previous piece
 *     was 0.9 % to 3 % dirty, both passes of a piece are one (sparse_fused): every word is
 *     flattened as it is read, clean ones too, which costs less than listing nearly half of
 *     the words or more and reading them again.
 *   sizes: RUNS = sum vlen(c) + sum vlen(d) and SPARSE = (n_dirty - runs) + sum vlen(c), so
 *     SPARSE <= RUNS whenever n_dirty <= 2 * runs, and a complete RUNS walk gives SPARSE's
 *     exact size too. The smallest wins (ties: SPARSE, RUNS, RAW). When the winner, or a size
 *     the choice needs, was not written for every piece (a chunk whose density changes
 *     along the way), the chunk is encoded again in two whole passes (encode_whole: the same
 *     pass 1 over the chunk with a check for a certain RAW every 4096 words, then one walk).
 *   RAW on a little-endian host references the bitmap itself.
 *
 * On x86-64 the loops are compiled for the baseline ISA, for POPCNT, for AVX2 and for AVX-512,
 * and the best the CPU has is chosen at run time: AVX2 (with BMI1/2) for pass 1 by pieces (two
 * registers a block, the listed words from a table of masks) and for the SPARSE varints (8 at
 * a time, the bytes packed by a shuffle from a table); AVX-512 F/DQ/VL/VPOPCNTDQ for the count,
 * the checksum and the whole-chunk pass 1, with BW/VBMI2 also for its walks (VPCOMPRESSB). By
 * pieces, AVX-512 CPUs run the AVX2 loops. VFIO_MIGD_DIRTY_KERNEL=generic, popcnt, avx2 or
 * avx512 asks for a lesser kernel, for tests (each is tested) and for hosts where AVX-512
 * slows the other cores down.
 */
#include "config.h"

#include <string.h>

#include "migd-dirty-bitmap-private.h"
#include "migd-dirty-bitmap.h"
#include "migd-error.h"

#if defined(__x86_64__) && !defined(__POPCNT__) && (defined(__GNUC__) || defined(__clang__))
/* x86-64 baseline: the hot loops also exist for POPCNT and AVX-512, chosen at run time */
#define MIGD_DIRTY_DISPATCH 1
#include <immintrin.h>
#define POPCNT_TARGET __attribute__((target("popcnt")))
/* pass 1 by pieces, and the walks */
#define AVX2_TARGET __attribute__((target("popcnt,avx2,bmi,bmi2")))
/* pass 1, count and checksum */
#define AVX512_TARGET __attribute__((target("popcnt,avx512f,avx512dq,avx512vl,avx512vpopcntdq")))
/* and the SPARSE walk */
#define VBMI2_TARGET                                                                               \
	__attribute__((target("popcnt,avx512f,avx512dq,avx512vl,avx512vpopcntdq,avx512bw,"         \
			      "avx512vbmi2")))
#endif

#define CK_MUL	    G_GUINT64_CONSTANT(0x9E3779B185EBCA87)
#define CK_SEED	    G_GUINT64_CONSTANT(0xC2B2AE3D27D4EB4F)
#define CK_FMIX1    G_GUINT64_CONSTANT(0xFF51AFD7ED558CCD)
#define CK_FMIX2    G_GUINT64_CONSTANT(0xC4CEB9FE1A85EC53)
#define CK_LANES    8
#define BLOCK	    8			  /* words per block: one per checksum lane */
#define SEG_BLOCKS  512			  /* blocks between two checks for a certain RAW */
#define PIECE_WORDS (SEG_BLOCKS * BLOCK)  /* 32 KiB: both passes of a piece find it cached */
#define BATCH	    512			  /* page numbers extracted before they become varints */
#define BATCH_ROOM  (BATCH + 2 * 64)	  /* and the pages of two more words */
#define SLACK	    (4 * BATCH_ROOM + 64) /* bytes a flush may write past the limit */
/* dirty pages in the previous piece for which the next one is encoded by sparse_fused: 0.9 %
 * to 3 % dirty (below about 0.85 % the clean words it flattens cost more than the list) */
#define FUSED_MIN (PIECE_WORDS * 9 / 16)
#define FUSED_MAX (PIECE_WORDS * 2)

#define ALWAYS_INLINE inline __attribute__((always_inline))

const gchar *
migd_dirty_encoding_to_string(MigdDirtyEncoding encoding)
{
	switch (encoding) {
	case MIGD_DIRTY_ENCODING_RAW:
		return "raw";
	case MIGD_DIRTY_ENCODING_RUNS:
		return "runs";
	case MIGD_DIRTY_ENCODING_SPARSE:
		return "sparse";
	}
	return "unknown";
}

void
migd_dirty_encoded_clear(MigdDirtyEncoded *encoded)
{
	g_clear_pointer(&encoded->data, g_bytes_unref);
	memset(encoded, 0, sizeof(*encoded));
}

static inline guint64
rotl64(guint64 x, guint r)
{
	return (x << r) | (x >> (64 - r));
}

static inline guint64
ck_step(guint64 v, guint64 w)
{
	return rotl64(v ^ w, 31) * CK_MUL;
}

static void
ck_init(guint64 v[CK_LANES])
{
	for (guint j = 0; j < CK_LANES; j++)
		v[j] = (j + 1) * CK_SEED;
}

static guint64
ck_final(const guint64 v[CK_LANES], guint64 n_pages)
{
	static const guint rot[CK_LANES] = {1, 7, 12, 18, 23, 29, 34, 40};
	guint64 h = 0;

	for (guint j = 0; j < CK_LANES; j++)
		h += rotl64(v[j], rot[j]);
	h ^= n_pages;
	h ^= h >> 33;
	h *= CK_FMIX1;
	h ^= h >> 33;
	h *= CK_FMIX2;
	h ^= h >> 33;
	return h;
}

#define LANES_LOAD(v)                                                                              \
	guint64 v0 = (v)[0], v1 = (v)[1], v2 = (v)[2], v3 = (v)[3], v4 = (v)[4], v5 = (v)[5],      \
		v6 = (v)[6], v7 = (v)[7]
#define LANES_STORE(v)                                                                             \
	do {                                                                                       \
		(v)[0] = v0, (v)[1] = v1, (v)[2] = v2, (v)[3] = v3;                                \
		(v)[4] = v4, (v)[5] = v5, (v)[6] = v6, (v)[7] = v7;                                \
	} while (0)
#define LANES_STEP(p)                                                                              \
	do {                                                                                       \
		v0 = ck_step(v0, (p)[0]), v1 = ck_step(v1, (p)[1]);                                \
		v2 = ck_step(v2, (p)[2]), v3 = ck_step(v3, (p)[3]);                                \
		v4 = ck_step(v4, (p)[4]), v5 = ck_step(v5, (p)[5]);                                \
		v6 = ck_step(v6, (p)[6]), v7 = ck_step(v7, (p)[7]);                                \
	} while (0)
#define POP8(p)                                                                                    \
	((guint64)__builtin_popcountll((p)[0]) + __builtin_popcountll((p)[1]) +                    \
	 __builtin_popcountll((p)[2]) + __builtin_popcountll((p)[3]) +                             \
	 __builtin_popcountll((p)[4]) + __builtin_popcountll((p)[5]) +                             \
	 __builtin_popcountll((p)[6]) + __builtin_popcountll((p)[7]))

/*
 * Kernels: the loops over words, instantiated once per instruction set.
 */

/* blocks [b, n_blocks) of whole words: count and checksum */
static ALWAYS_INLINE void
light_blocks(const guint64 *bitmap, gsize b, gsize n_blocks, guint64 *count, guint64 v[CK_LANES])
{
	guint64 n = *count;
	LANES_LOAD(v);

	for (; b < n_blocks; b++) {
		const guint64 *p = bitmap + b * BLOCK;
		LANES_STEP(p);
		n += POP8(p);
	}
	LANES_STORE(v);
	*count = n;
}

/* the words after the last whole block, the last one masked: count and checksum */
static ALWAYS_INLINE void
light_tail(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 *count,
	   guint64 v[CK_LANES])
{
	for (gsize i = n_words - (n_words - 1) % BLOCK - 1; i < n_words; i++) {
		guint64 x = i == n_words - 1 ? bitmap[i] & last_mask : bitmap[i];
		v[i % CK_LANES] = ck_step(v[i % CK_LANES], x);
		*count += __builtin_popcountll(x);
	}
}

static ALWAYS_INLINE void
light_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 *count,
	   guint64 v[CK_LANES])
{
	*count = 0;
	ck_init(v);
	if (n_words == 0)
		return;
	light_blocks(bitmap, 0, (n_words - 1) / BLOCK, count, v);
	light_tail(bitmap, n_words, last_mask, count, v);
}

typedef struct {
	guint64 n_dirty;
	guint64 n_runs; /* dirty runs; not complete when raw_certain */
	guint64 v[CK_LANES];
	gsize n_bounds; /* words listed in bounds */
	gboolean raw_certain;
} ScanResult;

/* run starts in @x, whose previous page is @carry */
#define STARTS(x, carry) __builtin_popcountll((x) & ~(((x) << 1) | (carry)))
/* lists word @i when it holds a run boundary */
#define BOUND(x, carry, i)                                                                         \
	do {                                                                                       \
		bounds[m] = (guint32)(i);                                                          \
		m += (x) != (((x) << 1) | (carry));                                                \
	} while (0)

/*
 * Pass 1 of the encoder: count, runs, checksum and the list of the words that hold a run
 * boundary (@bounds has room for @n_words entries).
 */
static ALWAYS_INLINE void
scan_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 raw_bytes,
	  guint32 *bounds, ScanResult *res)
{
	gsize n_blocks = (n_words - 1) / BLOCK;
	guint64 n = 0, r = 0, carry = 0;
	gsize m = 0, b = 0;
	gboolean certain = FALSE;
	guint64 v[CK_LANES];

	ck_init(v);
	{
		LANES_LOAD(v);
		while (b < n_blocks && !certain) {
			gsize seg_end = MIN(n_blocks, b + SEG_BLOCKS);

			for (; b < seg_end; b++) {
				const guint64 *p = bitmap + b * BLOCK;
				gsize i = b * BLOCK;
				guint64 w0 = p[0], w1 = p[1], w2 = p[2], w3 = p[3];
				guint64 w4 = p[4], w5 = p[5], w6 = p[6], w7 = p[7];
				guint64 any = (w0 | w1) | (w2 | w3) | (w4 | w5) | (w6 | w7);
				guint64 all = (w0 & w1) & (w2 & w3) & (w4 & w5) & (w6 & w7);

				LANES_STEP(p);
				if (any == 0) {
					/* a dirty run may end at the block's first page */
					bounds[m] = (guint32)i;
					m += carry;
					carry = 0;
					continue;
				}
				if (all == ALL_ONES) {
					/* a dirty run may start at the block's first page */
					bounds[m] = (guint32)i;
					m += carry ^ 1;
					r += carry ^ 1;
					n += 64 * BLOCK;
					carry = 1;
					continue;
				}
				n += POP8(p);
				r += STARTS(w0, carry) + STARTS(w1, w0 >> 63) +
				     STARTS(w2, w1 >> 63) + STARTS(w3, w2 >> 63) +
				     STARTS(w4, w3 >> 63) + STARTS(w5, w4 >> 63) +
				     STARTS(w6, w5 >> 63) + STARTS(w7, w6 >> 63);
				BOUND(w0, carry, i);
				BOUND(w1, w0 >> 63, i + 1);
				BOUND(w2, w1 >> 63, i + 2);
				BOUND(w3, w2 >> 63, i + 3);
				BOUND(w4, w3 >> 63, i + 4);
				BOUND(w5, w4 >> 63, i + 5);
				BOUND(w6, w5 >> 63, i + 6);
				BOUND(w7, w6 >> 63, i + 7);
				carry = w7 >> 63;
			}
			/* SPARSE >= n_dirty bytes and RUNS >= 2 * runs bytes: RAW is shorter */
			certain = n > raw_bytes && 2 * r > raw_bytes;
		}
		LANES_STORE(v);
	}
	light_blocks(bitmap, b, n_blocks, &n, v);
	for (gsize i = n_blocks * BLOCK; i < n_words; i++) {
		guint64 x = i == n_words - 1 ? bitmap[i] & last_mask : bitmap[i];

		v[i % CK_LANES] = ck_step(v[i % CK_LANES], x);
		n += __builtin_popcountll(x);
		r += STARTS(x, carry);
		BOUND(x, carry, i);
		carry = x >> 63;
	}
	res->n_dirty = n;
	res->n_runs = r;
	memcpy(res->v, v, sizeof(v));
	res->n_bounds = m;
	res->raw_certain = certain || (n > raw_bytes && 2 * r > raw_bytes);
}

/* 1..4 bytes of LEB128 for @x < 2^28, written as 4 bytes; returns the length */
static ALWAYS_INLINE guint
put_varint28(guint8 *out, guint32 x)
{
	guint32 e =
	    (x & 0x7f) | ((x << 1) & 0x7f00) | ((x << 2) & 0x7f0000) | ((x << 3) & 0x7f000000);
	guint len = 1 + (x >= 1u << 7) + (x >= 1u << 14) + (x >= 1u << 21);

	e |= 0x808080u & ((1u << (8 * (len - 1))) - 1);
	e = GUINT32_TO_LE(e);
	memcpy(out, &e, 4);
	return len;
}

/* the same, quicker below 2^14 (SPARSE's gaps at any density where SPARSE wins) */
static ALWAYS_INLINE guint
put_varint28_short(guint8 *out, guint32 x)
{
	guint16 e;
	guint two;

	if (G_UNLIKELY(x >= 1u << 14))
		return put_varint28(out, x);
	two = x >= 1u << 7;
	e = GUINT16_TO_LE((x & 0x7f) | ((x << 1) & 0x7f00) | (two << 7));
	memcpy(out, &e, 2);
	return 1 + two;
}

/*
 * Appends the page numbers of the set bits of @x (word @i) to @buf[*n], branch-free for up to
 * two bits; @buf has room for 64 more.
 */
static ALWAYS_INLINE void
flatten(guint32 *buf, gsize *n, guint64 x, gsize i)
{
	const guint64 top = G_GUINT64_CONSTANT(1) << 63;
	guint32 base = (guint32)(i * 64);
	guint32 *o = buf + *n;
	guint cnt = __builtin_popcountll(x);

	o[0] = base + __builtin_ctzll(x | top);
	x &= x - 1;
	o[1] = base + __builtin_ctzll(x | top);
	x &= x - 1;
	if (G_UNLIKELY(cnt > 2)) {
		for (guint k = 2; x != 0; k++) {
			o[k] = base + __builtin_ctzll(x);
			x &= x - 1;
		}
	}
	*n += cnt;
}

typedef struct {
	guint8 *buf;	   /* at least MIN(upper bound, limit) + SLACK bytes */
	gsize limit;	   /* the output is only wanted up to this length */
	gsize len;	   /* bytes written (SPARSE), or the whole length (RUNS) */
	gboolean overflow; /* len passed limit */
	guint64 n_items;   /* dirty pages (SPARSE) or run boundaries (RUNS) seen */
	guint64 n_runs;	   /* SPARSE: the pages not right after the previous one */
	/* RUNS */
	gsize len_clean; /* bytes of the clean-run varints */
	guint32 last_end, run_start;
	gboolean in_run;
	/* SPARSE */
	guint32 next;	 /* the smallest page the next index may name */
	gsize next_word; /* the word after the last listed one (walks by pieces) */
	guint64 top;	 /* its last page: the state of the unlisted words after it */
} Walk;

static ALWAYS_INLINE void
sparse_flush(Walk *w, guint32 *batch, gsize *n)
{
	guint8 *out = w->buf + w->len;
	guint32 next = w->next;

	guint64 runs = 0;

	for (gsize k = 0; k < *n; k++) {
		runs += batch[k] != next;
		out += put_varint28_short(out, batch[k] - next);
		next = batch[k] + 1;
	}
	w->next = next;
	w->len = out - w->buf;
	w->overflow = w->len > w->limit;
	w->n_items += *n;
	w->n_runs += runs;
	*n = 0;
}

#ifdef MIGD_DIRTY_DISPATCH
/* flatten() with AVX-512 VBMI2: the set bits' positions compressed out of 0..63 */
static VBMI2_TARGET inline void
flatten512(guint32 *buf, gsize *n, guint64 x, gsize i)
{
	static const guint8 iota[64] = {
	    0,	1,  2,	3,  4,	5,  6,	7,  8,	9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
	    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
	    44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};
	__m512i bits = _mm512_maskz_compress_epi8(_cvtu64_mask64(x), _mm512_loadu_si512(iota));
	__m512i base = _mm512_set1_epi32((int)(i * 64));
	guint32 *o = buf + *n;
	guint cnt = __builtin_popcountll(x);

	_mm512_storeu_si512(
	    o, _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(bits)), base));
	if (G_UNLIKELY(cnt > 16)) {
		_mm512_storeu_si512(
		    o + 16, _mm512_add_epi32(
				_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(bits, 1)), base));
		_mm512_storeu_si512(
		    o + 32, _mm512_add_epi32(
				_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(bits, 2)), base));
		_mm512_storeu_si512(
		    o + 48, _mm512_add_epi32(
				_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(bits, 3)), base));
	}
	*n += cnt;
}

/*
 * sparse_flush() with AVX-512 VBMI2, 16 pages at a time: the gaps as 2-byte LEB128 (gaps below
 * 2^14), then the high bytes of the gaps below 128 compressed away. A group with a longer gap
 * goes the scalar way.
 */
static VBMI2_TARGET void
sparse_flush512(Walk *w, guint32 *batch, gsize *n)
{
	guint8 *out = w->buf + w->len;
	guint32 next = w->next;

	for (gsize k = 0; k < *n; k += 16) {
		guint cnt = MIN(16, *n - k);
		__mmask16 valid = (__mmask16)(cnt == 16 ? 0xffff : (1u << cnt) - 1);
		__mmask32 bytes = cnt == 16 ? 0xffffffffu : (1u << (2 * cnt)) - 1;
		__m512i p = _mm512_maskz_loadu_epi32(valid, batch + k);
		/* each page's previous page: next - 1, then p[0..14] */
		__m512i prev = _mm512_alignr_epi32(p, _mm512_set1_epi32((int)(next - 1)), 15);
		__m512i gap = _mm512_sub_epi32(_mm512_sub_epi32(p, prev), _mm512_set1_epi32(1));
		__mmask16 two, big;
		__m512i lo, enc;
		__m256i enc16;
		__mmask32 keep;

		big = _mm512_mask_cmpge_epu32_mask(valid, gap, _mm512_set1_epi32(1 << 14));
		if (G_UNLIKELY(big != 0)) {
			for (gsize j = k; j < k + cnt; j++) {
				out += put_varint28_short(out, batch[j] - next);
				next = batch[j] + 1;
			}
			continue;
		}
		two = _mm512_cmpge_epu32_mask(gap, _mm512_set1_epi32(1 << 7));
		lo = _mm512_and_si512(gap, _mm512_set1_epi32(0x7f));
		lo = _mm512_mask_or_epi32(lo, two, lo, _mm512_set1_epi32(0x80));
		enc = _mm512_or_si512(lo, _mm512_slli_epi32(_mm512_srli_epi32(gap, 7), 8));
		enc16 = _mm512_cvtepi32_epi16(enc);
		/* every low byte, and the high bytes that are not 0 (the gaps >= 128) */
		keep = (_mm256_test_epi8_mask(enc16, enc16) | 0x55555555u) & bytes;
		_mm256_storeu_si256((__m256i *)out, _mm256_maskz_compress_epi8(keep, enc16));
		out += __builtin_popcount(keep);
		next = batch[k + cnt - 1] + 1;
	}
	w->next = next;
	w->len = out - w->buf;
	w->overflow = w->len > w->limit;
	w->n_items += *n;
	*n = 0;
}
#endif

static ALWAYS_INLINE void
sparse_flush_any(Walk *w, guint32 *batch, gsize *n, gboolean simd)
{
#ifdef MIGD_DIRTY_DISPATCH
	if (simd) {
		sparse_flush512(w, batch, n);
		return;
	}
#endif
	sparse_flush(w, batch, n);
}

static ALWAYS_INLINE void
flatten_any(guint32 *buf, gsize *n, guint64 x, gsize i, gboolean simd)
{
#ifdef MIGD_DIRTY_DISPATCH
	if (simd) {
		flatten512(buf, n, x, i);
		return;
	}
#endif
	flatten(buf, n, x, i);
}

/* dirty pages [w->next, end), all directly after the previous dirty page: one 0 byte each */
static ALWAYS_INLINE void
sparse_fill(Walk *w, guint32 *batch, gsize *n, guint32 end, gboolean simd)
{
	gsize bytes;

	sparse_flush_any(w, batch, n, simd);
	if (w->overflow)
		return;
	bytes = end - w->next;
	if (w->len + bytes > w->limit) {
		w->overflow = TRUE;
		return;
	}
	memset(w->buf + w->len, 0, bytes);
	w->len += bytes;
	w->n_items += bytes;
	w->next = end;
}

/*
 * SPARSE from the listed words; between two of them the words are all clean or all dirty, as
 * the bit before the next listed word says. Stops early on overflow.
 */
static ALWAYS_INLINE void
sparse_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
	    const guint32 *bounds, gsize n_bounds, Walk *w, gboolean simd)
{
	guint32 batch[BATCH_ROOM];
	gsize n = 0, next_word = 0;

	for (gsize m = 0; m < n_bounds; m++) {
		gsize i = bounds[m];
		guint64 x = bitmap[i];
		/* branch-free: whether i > next_word is a coin toss on scattered bitmaps */
		guint64 dirty_before = (bitmap[i - (i > 0)] >> 63) & (i > next_word);

		if (G_UNLIKELY(dirty_before)) {
			/* words [next_word, i) are all dirty */
			sparse_fill(w, batch, &n, (guint32)(i * 64), simd);
			if (w->overflow)
				return;
		}
		if (i == n_words - 1)
			x &= last_mask;
		flatten_any(batch, &n, x, i, simd);
		if (n >= BATCH) {
			sparse_flush_any(w, batch, &n, simd);
			if (w->overflow)
				return;
		}
		next_word = i + 1;
	}
	if (next_word < n_words && next_word > 0 && bitmap[next_word - 1] >> 63) {
		/* dirty to the end */
		sparse_fill(w, batch, &n, (guint32)n_pages, simd);
		if (w->overflow)
			return;
	}
	sparse_flush_any(w, batch, &n, simd);
}

static ALWAYS_INLINE void
runs_flush(Walk *w, guint32 *batch, gsize *n)
{
	guint8 *out = w->buf + (w->overflow ? 0 : w->len);
	gsize len_clean = 0, len_dirty = 0, k = 0;
	guint32 last_end = w->last_end, run_start = w->run_start;
	gboolean in_run = w->in_run;

	if (in_run && k < *n) {
		/* the end of the run the previous batch started */
		guint l = put_varint28(out, batch[k] - run_start);

		len_dirty += l;
		out += l;
		last_end = batch[k++];
		in_run = FALSE;
	}
	/* the rest alternate start, end: a pair is a clean run and a dirty run */
	for (; k + 1 < *n; k += 2) {
		guint32 start = batch[k], end = batch[k + 1];
		guint lc = put_varint28(out, start - last_end);
		guint ld = put_varint28(out + lc, end - start);

		len_clean += lc;
		len_dirty += ld;
		out += lc + ld;
		last_end = end;
	}
	if (k < *n) {
		guint l = put_varint28(out, batch[k] - last_end);

		len_clean += l;
		run_start = batch[k];
		in_run = TRUE;
	}
	w->len += len_clean + len_dirty;
	w->len_clean += len_clean;
	w->n_items += *n;
	w->last_end = last_end;
	w->run_start = run_start;
	w->in_run = in_run;
	/* past the limit the bytes are no longer wanted, only the lengths: rewrite the start */
	w->overflow = w->overflow || w->len > w->limit;
	*n = 0;
}

/* RUNS from the listed words; on overflow only the lengths go on */
static ALWAYS_INLINE void
runs_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
	  const guint32 *bounds, gsize n_bounds, Walk *w, gboolean simd)
{
	guint32 batch[BATCH_ROOM];
	gsize n = 0;

	for (gsize m = 0; m < n_bounds; m++) {
		gsize i = bounds[m];
		guint64 x = i == n_words - 1 ? bitmap[i] & last_mask : bitmap[i];
		guint64 carry = (bitmap[i - (i > 0)] >> 63) & (i > 0);

		flatten_any(batch, &n, x ^ ((x << 1) | carry), i, simd);
		if (n >= BATCH)
			runs_flush(w, batch, &n);
	}
	if (w->in_run ^ (n % 2 == 1)) {
		/* the bitmap ends dirty: the last run ends at n_pages */
		batch[n++] = (guint32)n_pages;
	}
	runs_flush(w, batch, &n);
}

/*
 * Encoding by pieces: pass 1 then pass 2 on PIECE_WORDS at a time, while the piece is still in
 * the cache, instead of each pass over the whole chunk (whose second read comes from memory).
 * Pass 2 writes the formats that may still win (see encode_pieces); the walks keep their state
 * in the Walk between pieces.
 */
typedef struct {
	guint64 v[CK_LANES];
	guint64 n_dirty, n_runs;
	guint64 carry;	   /* the last page of the previous piece */
	gsize last_listed; /* words listed in the previous piece */
	/* FALSE: every word of the piece that is not listed is clean (set by the AVX2 pass 1,
	 * read by its SPARSE walk; TRUE when not known) */
	gboolean dirty_unlisted;
} Pass1;

/* pass 1 of words [start, end): start is a multiple of BLOCK, end too unless it is n_words */
static ALWAYS_INLINE gsize
scan_piece_body(const guint64 *bitmap, gsize start, gsize end, gsize n_words, guint64 last_mask,
		guint32 *bounds, Pass1 *st)
{
	gsize b = start / BLOCK, n_blocks = MIN(end / BLOCK, (n_words - 1) / BLOCK);
	guint64 n = st->n_dirty, r = st->n_runs, carry = st->carry;
	gsize m = 0;
	LANES_LOAD(st->v);

	for (; b < n_blocks; b++) {
		const guint64 *p = bitmap + b * BLOCK;
		gsize i = b * BLOCK;
		guint64 w0 = p[0], w1 = p[1], w2 = p[2], w3 = p[3];
		guint64 w4 = p[4], w5 = p[5], w6 = p[6], w7 = p[7];
		guint64 any = (w0 | w1) | (w2 | w3) | (w4 | w5) | (w6 | w7);
		guint64 all = (w0 & w1) & (w2 & w3) & (w4 & w5) & (w6 & w7);

		LANES_STEP(p);
		if (any == 0) {
			bounds[m] = (guint32)i;
			m += carry;
			carry = 0;
			continue;
		}
		if (all == ALL_ONES) {
			bounds[m] = (guint32)i;
			m += carry ^ 1;
			r += carry ^ 1;
			n += 64 * BLOCK;
			carry = 1;
			continue;
		}
		n += POP8(p);
		r += STARTS(w0, carry) + STARTS(w1, w0 >> 63) + STARTS(w2, w1 >> 63) +
		     STARTS(w3, w2 >> 63) + STARTS(w4, w3 >> 63) + STARTS(w5, w4 >> 63) +
		     STARTS(w6, w5 >> 63) + STARTS(w7, w6 >> 63);
		BOUND(w0, carry, i);
		BOUND(w1, w0 >> 63, i + 1);
		BOUND(w2, w1 >> 63, i + 2);
		BOUND(w3, w2 >> 63, i + 3);
		BOUND(w4, w3 >> 63, i + 4);
		BOUND(w5, w4 >> 63, i + 5);
		BOUND(w6, w5 >> 63, i + 6);
		BOUND(w7, w6 >> 63, i + 7);
		carry = w7 >> 63;
	}
	LANES_STORE(st->v);
	for (gsize i = b * BLOCK; i < end; i++) {
		guint64 x = i == n_words - 1 ? bitmap[i] & last_mask : bitmap[i];

		st->v[i % CK_LANES] = ck_step(st->v[i % CK_LANES], x);
		n += __builtin_popcountll(x);
		r += STARTS(x, carry);
		BOUND(x, carry, i);
		carry = x >> 63;
	}
	st->n_dirty = n;
	st->n_runs = r;
	st->carry = carry;
	return m;
}

/*
 * SPARSE of one piece's listed words (sparse_body by pieces); @last: the chunk's last piece.
 * The words between two listed ones repeat the last page of the first, so no word but the
 * listed ones is read, and only the chunk's last word needs its mask.
 */
#ifdef MIGD_DIRTY_DISPATCH
static void sparse_flush_avx2(Walk *w, const guint32 *batch, gsize n);
#endif

/* the batch's count stays a local that no call sees: a register, not memory */
static ALWAYS_INLINE void
sparse_piece_flush(Walk *w, guint32 *batch, gsize *n, gboolean avx2)
{
#ifdef MIGD_DIRTY_DISPATCH
	if (avx2) {
		sparse_flush_avx2(w, batch, *n);
		*n = 0;
		return;
	}
#endif
	sparse_flush(w, batch, n);
}

/* one listed word of a SPARSE piece walk; FALSE once the output passed its limit */
static ALWAYS_INLINE gboolean
sparse_piece_word(Walk *w, guint32 *batch, gsize *n, gsize *next_word, guint64 *top, guint64 x,
		  gsize i, gboolean avx2)
{
	if (G_UNLIKELY(*top & (i > *next_word))) {
		/* words [next_word, i) are all dirty */
		if (*n > 0)
			sparse_piece_flush(w, batch, n, avx2);
		sparse_fill(w, batch, n, (guint32)(i * 64), FALSE);
		if (w->overflow)
			return FALSE;
	}
	flatten(batch, n, x, i);
	*next_word = i + 1;
	*top = x >> 63;
	if (*n >= BATCH) {
		sparse_piece_flush(w, batch, n, avx2);
		if (w->overflow)
			return FALSE;
	}
	return TRUE;
}

#ifdef MIGD_DIRTY_DISPATCH
/* flatten() with BMI's TZCNT, which gives 64 for 0: no bit to OR in for the entries past cnt */
static AVX2_TARGET inline void
flatten_bmi(guint32 *buf, gsize *n, guint64 x, gsize i)
{
	guint32 base = (guint32)(i * 64);
	guint32 *o = buf + *n;
	guint cnt = __builtin_popcountll(x);

	o[0] = base + (guint32)_tzcnt_u64(x);
	x = _blsr_u64(x);
	o[1] = base + (guint32)_tzcnt_u64(x);
	if (G_UNLIKELY(cnt > 2)) {
		x = _blsr_u64(x);
		for (guint k = 2; x != 0; k++) {
			o[k] = base + (guint32)_tzcnt_u64(x);
			x = _blsr_u64(x);
		}
	}
	*n += cnt;
}
#endif

static ALWAYS_INLINE void
flatten_fast(guint32 *buf, gsize *n, guint64 x, gsize i, gboolean avx2)
{
#ifdef MIGD_DIRTY_DISPATCH
	if (avx2) {
		flatten_bmi(buf, n, x, i);
		return;
	}
#endif
	flatten(buf, n, x, i);
}

static ALWAYS_INLINE void
sparse_piece_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
		  const guint32 *bounds, gsize n_bounds, gboolean last, gboolean dirty_unlisted,
		  Walk *w, gboolean avx2)
{
	guint32 batch[BATCH_ROOM];
	gboolean last_listed = last && n_bounds > 0 && bounds[n_bounds - 1] == n_words - 1;
	gsize n = 0, nb = n_bounds - last_listed, next_word = w->next_word, m = 0;
	guint64 top = w->top;

	if (!dirty_unlisted && nb > 0) {
		/* only the first listed word may follow dirty words (of the previous piece) */
		if (!sparse_piece_word(w, batch, &n, &next_word, &top, bitmap[bounds[0]], bounds[0],
				       avx2))
			return;
		/* two words a step: one check of the batch */
		for (m = 1; m + 1 < nb; m += 2) {
			gsize i = bounds[m], j = bounds[m + 1];

			flatten_fast(batch, &n, bitmap[i], i, avx2);
			flatten_fast(batch, &n, bitmap[j], j, avx2);
			if (n >= BATCH) {
				sparse_piece_flush(w, batch, &n, avx2);
				if (w->overflow)
					return;
			}
		}
		if (m < nb) {
			gsize i = bounds[m];

			flatten_fast(batch, &n, bitmap[i], i, avx2);
			if (n >= BATCH) {
				sparse_piece_flush(w, batch, &n, avx2);
				if (w->overflow)
					return;
			}
		}
		next_word = bounds[nb - 1] + 1;
		top = bitmap[bounds[nb - 1]] >> 63;
		m = nb;
	}
	for (; m < nb; m++) {
		gsize i = bounds[m];

		if (!sparse_piece_word(w, batch, &n, &next_word, &top, bitmap[i], i, avx2))
			return;
	}
	if (last_listed && !sparse_piece_word(w, batch, &n, &next_word, &top,
					      bitmap[n_words - 1] & last_mask, n_words - 1, avx2))
		return;
	w->next_word = next_word;
	w->top = top;
	if (last && next_word < n_words && top) {
		/* dirty to the end */
		if (n > 0)
			sparse_piece_flush(w, batch, &n, avx2);
		sparse_fill(w, batch, &n, (guint32)n_pages, FALSE);
		if (w->overflow)
			return;
	}
	sparse_piece_flush(w, batch, &n, avx2);
}

typedef struct {
	guint8 *out;
	gsize len, len_clean; /* all varint bytes, those of the clean runs */
	guint32 mark;	      /* the page the next varint counts from */
	guint32 in_run;	      /* 1: the next varint is a dirty run's */
} RunsCursor;

/* the varints of the run boundaries in @t (at least one) of word @i */
static ALWAYS_INLINE void
runs_word(RunsCursor *c, guint64 t, gsize i)
{
	guint32 base = (guint32)(i * 64);

	do {
		guint32 p = base + __builtin_ctzll(t);
		guint l = put_varint28_short(c->out, p - c->mark);

		c->len += l;
		c->len_clean += l & (c->in_run - 1); /* 0 - 1: all ones for a clean run */
		c->in_run ^= 1;
		c->mark = p;
		c->out += l;
		t &= t - 1;
	} while (t != 0);
}

static ALWAYS_INLINE void
runs_piece_body(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
		const guint32 *bounds, gsize n_bounds, gboolean last, Walk *w)
{
	gboolean last_listed = last && n_bounds > 0 && bounds[n_bounds - 1] == n_words - 1;
	gsize nb = n_bounds - last_listed;
	guint8 *out_limit = w->buf + w->limit;
	RunsCursor c = {
	    .out = w->buf + (w->overflow ? 0 : w->len),
	    .mark = w->in_run ? w->run_start : w->last_end,
	    .in_run = w->in_run,
	};
	gboolean overflow = w->overflow;
	guint64 top = w->top, items = 0;

	for (gsize m = 0; m < nb; m++) {
		gsize i = bounds[m];
		guint64 x = bitmap[i];
		guint64 t = x ^ ((x << 1) | top);

		top = x >> 63;
		items += __builtin_popcountll(t);
		runs_word(&c, t, i);
		if (G_UNLIKELY(c.out > out_limit)) {
			overflow = TRUE;
			c.out = w->buf;
		}
	}
	if (last_listed) {
		guint64 x = bitmap[n_words - 1] & last_mask;
		guint64 t = x ^ ((x << 1) | top);

		top = x >> 63;
		items += __builtin_popcountll(t);
		runs_word(&c, t, n_words - 1);
	}
	if (last && c.in_run) {
		/* the bitmap ends dirty: the last run ends at n_pages */
		c.len += put_varint28(c.out, (guint32)n_pages - c.mark);
		c.mark = (guint32)n_pages;
		c.in_run = 0;
		items++;
	}
	if (c.in_run)
		w->run_start = c.mark;
	else
		w->last_end = c.mark;
	w->in_run = c.in_run;
	w->top = top;
	w->len += c.len;
	w->len_clean += c.len_clean;
	w->n_items += items;
	w->overflow = overflow || w->len > w->limit;
}

/* set bits of whole words and the masked last one */
static ALWAYS_INLINE guint64
count_body(const guint64 *bitmap, gsize n_words, guint64 last_mask)
{
	guint64 n = 0;

	if (n_words == 0)
		return 0;
	for (gsize i = 0; i < n_words - 1; i++)
		n += __builtin_popcountll(bitmap[i]);
	return n + __builtin_popcountll(bitmap[n_words - 1] & last_mask);
}

typedef struct {
	guint64 (*count)(const guint64 *bitmap, gsize n_words, guint64 last_mask);
	void (*light)(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 *count,
		      guint64 v[CK_LANES]);
	void (*scan)(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 raw_bytes,
		     guint32 *bounds, ScanResult *res);
	void (*sparse)(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
		       const guint32 *bounds, gsize n_bounds, Walk *w);
	void (*runs)(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
		     const guint32 *bounds, gsize n_bounds, Walk *w);
	/* by pieces (encode_pieces); NULL: the kernels only encode by whole passes */
	gsize (*scan_piece)(const guint64 *bitmap, gsize start, gsize end, gsize n_words,
			    guint64 last_mask, guint32 *bounds, Pass1 *st);
	void (*sparse_piece)(const guint64 *bitmap, gsize n_words, guint64 last_mask,
			     guint64 n_pages, const guint32 *bounds, gsize n_bounds, gboolean last,
			     gboolean dirty_unlisted, Walk *w);
	void (*runs_piece)(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
			   const guint32 *bounds, gsize n_bounds, gboolean last, Walk *w);
	/* both passes of a whole piece at once, SPARSE only; NULL: not in these kernels */
	void (*sparse_fused)(const guint64 *bitmap, gsize start, Pass1 *st, Walk *w);
} Kernels;

#define DEFINE_KERNELS(suffix, attrs)                                                              \
	static attrs guint64 count_##suffix(const guint64 *bitmap, gsize n_words,                  \
					    guint64 last_mask)                                     \
	{                                                                                          \
		return count_body(bitmap, n_words, last_mask);                                     \
	}                                                                                          \
	static attrs void light_##suffix(const guint64 *bitmap, gsize n_words, guint64 last_mask,  \
					 guint64 *count, guint64 v[CK_LANES])                      \
	{                                                                                          \
		light_body(bitmap, n_words, last_mask, count, v);                                  \
	}                                                                                          \
	static attrs void scan_##suffix(const guint64 *bitmap, gsize n_words, guint64 last_mask,   \
					guint64 raw_bytes, guint32 *bounds, ScanResult *res)       \
	{                                                                                          \
		scan_body(bitmap, n_words, last_mask, raw_bytes, bounds, res);                     \
	}                                                                                          \
	static attrs void sparse_##suffix(const guint64 *bitmap, gsize n_words, guint64 last_mask, \
					  guint64 n_pages, const guint32 *bounds, gsize n_bounds,  \
					  Walk *w)                                                 \
	{                                                                                          \
		sparse_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, w, FALSE);      \
	}                                                                                          \
	static attrs void runs_##suffix(const guint64 *bitmap, gsize n_words, guint64 last_mask,   \
					guint64 n_pages, const guint32 *bounds, gsize n_bounds,    \
					Walk *w)                                                   \
	{                                                                                          \
		runs_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, w, FALSE);        \
	}                                                                                          \
	static attrs gsize scan_piece_##suffix(const guint64 *bitmap, gsize start, gsize end,      \
					       gsize n_words, guint64 last_mask, guint32 *bounds,  \
					       Pass1 *st)                                          \
	{                                                                                          \
		return scan_piece_body(bitmap, start, end, n_words, last_mask, bounds, st);        \
	}                                                                                          \
	static attrs void sparse_piece_##suffix(const guint64 *bitmap, gsize n_words,              \
						guint64 last_mask, guint64 n_pages,                \
						const guint32 *bounds, gsize n_bounds,             \
						gboolean last, gboolean dirty_unlisted, Walk *w)   \
	{                                                                                          \
		sparse_piece_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, last,     \
				  TRUE, w, FALSE);                                                 \
	}                                                                                          \
	static attrs void runs_piece_##suffix(                                                     \
	    const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,              \
	    const guint32 *bounds, gsize n_bounds, gboolean last, Walk *w)                         \
	{                                                                                          \
		runs_piece_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, last, w);   \
	}                                                                                          \
	static const Kernels kernels_##suffix = {                                                  \
	    count_##suffix,	   light_##suffix,	scan_##suffix,                             \
	    sparse_##suffix,	   runs_##suffix,	scan_piece_##suffix,                       \
	    sparse_piece_##suffix, runs_piece_##suffix, NULL}

DEFINE_KERNELS(generic, );

#ifdef MIGD_DIRTY_DISPATCH
DEFINE_KERNELS(popcnt, POPCNT_TARGET);

/*
 * AVX2 (with BMI1/2): pass 1 by pieces, a block as two registers of four words. Each word's
 * previous word is the load one word earlier; the listed words of a block come from a table
 * of the 256 masks, stored whole; the counts are byte popcounts (a nibble table) summed per
 * block. Checksum lanes stay scalar, beside it.
 */
static guint32 bound_table[256][BLOCK]; /* mask -> the indices of its set bits */

static void
bound_table_init(void)
{
	for (guint mask = 0; mask < 256; mask++) {
		guint k = 0;

		for (guint j = 0; j < BLOCK; j++) {
			if (mask & (1u << j))
				bound_table[mask][k++] = j;
		}
	}
}

static AVX2_TARGET inline __m256i
popcount8_avx2(__m256i x)
{
	const __m256i nibble = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0,
						1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
	const __m256i low = _mm256_set1_epi8(0x0f);

	return _mm256_add_epi8(
	    _mm256_shuffle_epi8(nibble, _mm256_and_si256(x, low)),
	    _mm256_shuffle_epi8(nibble, _mm256_and_si256(_mm256_srli_epi16(x, 4), low)));
}

static AVX2_TARGET inline guint64
sum4_avx2(__m256i x)
{
	__m128i s = _mm_add_epi64(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));

	return (guint64)_mm_cvtsi128_si64(s) + (guint64)_mm_extract_epi64(s, 1);
}

/*
 * Pass 1 of whole blocks [b, n_blocks), b > 0. @skip: blocks without a boundary skip the counts
 * and the list, worth its branch only where nearly all blocks are such (few listed words).
 */
static AVX2_TARGET ALWAYS_INLINE gsize
scan_blocks_avx2(const guint64 *bitmap, gsize b, gsize n_blocks, guint32 *bounds, Pass1 *st,
		 gboolean skip, gboolean count_starts)
{
	__m256i starts = _mm256_setzero_si256(), unlisted_dirty = _mm256_setzero_si256();
	gsize m = 0, uniform_dirty = 0;
	guint64 n_mixed = 0;
	LANES_LOAD(st->v);

	for (; b < n_blocks; b++) {
		const guint64 *p = bitmap + b * BLOCK;
		__m256i x0 = _mm256_loadu_si256((const __m256i *)p);
		__m256i x1 = _mm256_loadu_si256((const __m256i *)(p + 4));
		__m256i q0 = _mm256_loadu_si256((const __m256i *)(p - 1));
		__m256i q1 = _mm256_loadu_si256((const __m256i *)(p + 3));
		/* each page's previous page */
		__m256i s0 = _mm256_or_si256(_mm256_slli_epi64(x0, 1), _mm256_srli_epi64(q0, 63));
		__m256i s1 = _mm256_or_si256(_mm256_slli_epi64(x1, 1), _mm256_srli_epi64(q1, 63));
		__m256i e0 = _mm256_cmpeq_epi64(x0, s0), e1 = _mm256_cmpeq_epi64(x1, s1);
		guint mask;

		LANES_STEP(p);
		if (skip && _mm256_movemask_epi8(_mm256_and_si256(e0, e1)) == -1) {
			/* all clean or all dirty, as the page before */
			uniform_dirty += p[0] & 1;
			continue;
		}
		/* an unlisted word is all clean or all dirty: its bit 0 says which */
		if (!skip)
			unlisted_dirty = _mm256_or_si256(
			    unlisted_dirty,
			    _mm256_or_si256(_mm256_and_si256(e0, x0), _mm256_and_si256(e1, x1)));
		mask = ~((guint)_mm256_movemask_pd(_mm256_castsi256_pd(e0)) |
			 ((guint)_mm256_movemask_pd(_mm256_castsi256_pd(e1)) << 4)) &
		       0xff;
		_mm256_storeu_si256(
		    (__m256i *)(bounds + m),
		    _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)bound_table[mask]),
				     _mm256_set1_epi32((int)(b * BLOCK))));
		m += __builtin_popcount(mask);
		n_mixed += POP8(p);
		if (count_starts)
			starts = _mm256_add_epi64(
			    starts,
			    _mm256_sad_epu8(
				_mm256_add_epi8(popcount8_avx2(_mm256_andnot_si256(s0, x0)),
						popcount8_avx2(_mm256_andnot_si256(s1, x1))),
				_mm256_setzero_si256()));
	}
	LANES_STORE(st->v);
	st->n_dirty += n_mixed + 64 * BLOCK * uniform_dirty;
	st->n_runs += sum4_avx2(starts);
	st->carry = bitmap[n_blocks * BLOCK - 1] >> 63;
	/* skipped blocks are not looked at: not known */
	st->dirty_unlisted = skip || !_mm256_testz_si256(unlisted_dirty, _mm256_set1_epi64x(1));
	return m;
}

/*
 * sparse_flush() with AVX2, 8 pages at a time: the gaps as 2-byte LEB128 (gaps below 2^14),
 * then the high bytes of the gaps below 128 dropped by a byte shuffle from a table of the 256
 * masks. A group with a longer gap goes the scalar way.
 */
static guint8 varint2_shuffle[256][16]; /* mask of the 2-byte gaps -> the bytes kept */

static void
varint2_shuffle_init(void)
{
	for (guint mask = 0; mask < 256; mask++) {
		guint k = 0;

		for (guint j = 0; j < 8; j++) {
			varint2_shuffle[mask][k++] = (guint8)(2 * j);
			if (mask & (1u << j))
				varint2_shuffle[mask][k++] = (guint8)(2 * j + 1);
		}
		for (; k < 16; k++)
			varint2_shuffle[mask][k] = 0x80;
	}
}

static AVX2_TARGET void
sparse_flush_avx2(Walk *w, const guint32 *batch, gsize n)
{
	const __m256i shift = _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6);
	guint8 *out = w->buf + w->len;
	guint32 next = w->next;
	guint64 runs = 0;
	gsize k = 0;

	for (; k + 8 <= n; k += 8) {
		__m256i p = _mm256_loadu_si256((const __m256i *)(batch + k));
		/* each page's previous page: next - 1, then p[0..6] */
		__m256i prev = _mm256_blend_epi32(_mm256_permutevar8x32_epi32(p, shift),
						  _mm256_set1_epi32((int)(next - 1)), 1);
		__m256i gap = _mm256_sub_epi32(_mm256_sub_epi32(p, prev), _mm256_set1_epi32(1));
		__m256i two = _mm256_cmpgt_epi32(gap, _mm256_set1_epi32(127));
		__m256i enc;
		__m128i enc16;
		guint mask;

		if (G_UNLIKELY(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(
				   gap, _mm256_set1_epi32((1 << 14) - 1)))) != 0)) {
			for (gsize j = k; j < k + 8; j++) {
				runs += batch[j] != next;
				out += put_varint28_short(out, batch[j] - next);
				next = batch[j] + 1;
			}
			continue;
		}
		runs += 8 - __builtin_popcount((guint)_mm256_movemask_ps(_mm256_castsi256_ps(
				_mm256_cmpeq_epi32(gap, _mm256_setzero_si256()))));
		/* gap = 128 h + l: l + 256 h, and the low byte's top bit when h > 0 */
		enc = _mm256_add_epi32(
		    _mm256_add_epi32(gap, _mm256_and_si256(gap, _mm256_set1_epi32(0x3f80))),
		    _mm256_and_si256(two, _mm256_set1_epi32(0x80)));
		enc16 =
		    _mm_packus_epi32(_mm256_castsi256_si128(enc), _mm256_extracti128_si256(enc, 1));
		mask = (guint)_mm256_movemask_ps(_mm256_castsi256_ps(two));
		_mm_storeu_si128(
		    (__m128i *)out,
		    _mm_shuffle_epi8(enc16,
				     _mm_loadu_si128((const __m128i *)varint2_shuffle[mask])));
		out += 8 + __builtin_popcount(mask);
		next = batch[k + 7] + 1;
	}
	for (; k < n; k++) {
		runs += batch[k] != next;
		out += put_varint28_short(out, batch[k] - next);
		next = batch[k] + 1;
	}
	w->next = next;
	w->len = out - w->buf;
	w->overflow = w->len > w->limit;
	w->n_items += n;
	w->n_runs += runs;
}

static AVX2_TARGET gsize
scan_piece_avx2(const guint64 *bitmap, gsize start, gsize end, gsize n_words, guint64 last_mask,
		guint32 *bounds, Pass1 *st)
{
	gsize b = start / BLOCK, n_blocks = MIN(end / BLOCK, (n_words - 1) / BLOCK);
	gsize m = 0;
	gboolean dirty_unlisted = TRUE;

	if (b == 0 && n_blocks > 0) {
		/* the first block has no previous word to load */
		m = scan_piece_body(bitmap, 0, BLOCK, n_words, last_mask, bounds, st);
		b = 1;
	}
	if (b < n_blocks) {
		/* few listed words in the previous piece: most blocks have none */
		/* the run starts only for the first piece: the walks count the others' */
		if (start == 0)
			m += scan_blocks_avx2(bitmap, b, n_blocks, bounds + m, st, TRUE, TRUE);
		else if (st->last_listed * 64 < PIECE_WORDS)
			m += scan_blocks_avx2(bitmap, b, n_blocks, bounds + m, st, TRUE, FALSE);
		else {
			m += scan_blocks_avx2(bitmap, b, n_blocks, bounds + m, st, FALSE, FALSE);
			dirty_unlisted = st->dirty_unlisted;
		}
		b = n_blocks;
	}
	if (b * BLOCK < end) {
		m += scan_piece_body(bitmap, b * BLOCK, end, n_words, last_mask, bounds + m, st);
		dirty_unlisted = TRUE;
	}
	st->last_listed = m;
	st->dirty_unlisted = dirty_unlisted;
	return m;
}

static AVX2_TARGET void
sparse_piece_avx2(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
		  const guint32 *bounds, gsize n_bounds, gboolean last, gboolean dirty_unlisted,
		  Walk *w)
{
	sparse_piece_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, last,
			  dirty_unlisted, w, TRUE);
}

static AVX2_TARGET void
runs_piece_avx2(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
		const guint32 *bounds, gsize n_bounds, gboolean last, Walk *w)
{
	runs_piece_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, last, w);
}

/*
 * Pass 1 and the SPARSE walk of the whole piece [start, start + PIECE_WORDS) in one pass, for
 * a scattered bitmap where SPARSE is the only format still written: nearly half of the words
 * would be listed, and listing them, then reading them again costs more than flattening every
 * word as it is read (a clean word writes nothing). The count is the pages flattened; no list,
 * no run starts (only the first piece needs pass 1's). After an overflow only count and
 * checksum go on.
 */
static AVX2_TARGET void
sparse_fused_avx2(const guint64 *bitmap, gsize start, Pass1 *st, Walk *w)
{
	guint32 batch[BATCH + BLOCK * 64];
	gsize n = 0, end = start + PIECE_WORDS;
	guint64 count = 0;
	LANES_LOAD(st->v);

	if (w->top && w->next_word < start && !w->overflow) {
		/* words [next_word, start) are all dirty */
		sparse_fill(w, batch, &n, (guint32)(start * 64), FALSE);
	}
	for (gsize b = start; b < end; b += BLOCK) {
		const guint64 *p = bitmap + b;

		LANES_STEP(p);
		/* unrolled: the loop's own branch would cost more than its body */
		flatten_bmi(batch, &n, p[0], b), flatten_bmi(batch, &n, p[1], b + 1);
		flatten_bmi(batch, &n, p[2], b + 2), flatten_bmi(batch, &n, p[3], b + 3);
		flatten_bmi(batch, &n, p[4], b + 4), flatten_bmi(batch, &n, p[5], b + 5);
		flatten_bmi(batch, &n, p[6], b + 6), flatten_bmi(batch, &n, p[7], b + 7);
		if (n >= BATCH) {
			if (!w->overflow)
				sparse_flush_avx2(w, batch, n);
			count += n;
			n = 0;
		}
	}
	if (!w->overflow)
		sparse_flush_avx2(w, batch, n);
	count += n;
	LANES_STORE(st->v);
	st->n_dirty += count;
	st->carry = bitmap[end - 1] >> 63;
	/* the next pass 1 lists words as for a piece of many listed words */
	st->last_listed = PIECE_WORDS;
	st->dirty_unlisted = FALSE;
	w->next_word = end;
	w->top = st->carry;
}

static const Kernels kernels_avx2 = {count_popcnt,	light_popcnt,	 scan_popcnt,
				     sparse_popcnt,	runs_popcnt,	 scan_piece_avx2,
				     sparse_piece_avx2, runs_piece_avx2, sparse_fused_avx2};

/*
 * AVX-512 (F, DQ, VL, VPOPCNTDQ): count, checksum and pass 1 eight words (one block, the eight
 * lanes) per step. The listed words are compressed in a register and stored whole, then the
 * list advances by the mask's popcount: a masked compress to memory is microcoded on Zen 4.
 * The walks stay scalar.
 */
static AVX512_TARGET inline __m512i
ck_step512(__m512i v, __m512i x)
{
	return _mm512_mullo_epi64(_mm512_rol_epi64(_mm512_xor_si512(v, x), 31),
				  _mm512_set1_epi64((long long)CK_MUL));
}

static AVX512_TARGET void
light_avx512(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 *count,
	     guint64 v[CK_LANES])
{
	__m512i lanes, pop = _mm512_setzero_si512();
	gsize n_blocks;

	*count = 0;
	ck_init(v);
	if (n_words == 0)
		return;
	n_blocks = (n_words - 1) / BLOCK;
	lanes = _mm512_loadu_si512(v);
	for (gsize b = 0; b < n_blocks; b++) {
		__m512i x = _mm512_loadu_si512(bitmap + b * BLOCK);

		lanes = ck_step512(lanes, x);
		pop = _mm512_add_epi64(pop, _mm512_popcnt_epi64(x));
	}
	_mm512_storeu_si512(v, lanes);
	*count = _mm512_reduce_add_epi64(pop);
	light_tail(bitmap, n_words, last_mask, count, v);
}

static AVX512_TARGET void
scan_avx512(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 raw_bytes,
	    guint32 *bounds, ScanResult *res)
{
	gsize n_blocks = (n_words - 1) / BLOCK;
	gsize m = 0, b = 0;
	guint64 n = 0, r = 0, carry;
	gboolean certain = FALSE;
	guint64 v[CK_LANES];
	__m512i lanes, pop = _mm512_setzero_si512(), starts = _mm512_setzero_si512();
	__m512i before_block = _mm512_setzero_si512();
	__m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);

	ck_init(v);
	lanes = _mm512_loadu_si512(v);
	while (b < n_blocks && !certain) {
		gsize seg_end = MIN(n_blocks, b + SEG_BLOCKS);

		for (; b < seg_end; b++) {
			__m512i x = _mm512_loadu_si512(bitmap + b * BLOCK);
			/* each word's previous word: the last of the previous block, then x[0..6]
			 */
			__m512i prev_word = _mm512_alignr_epi64(x, before_block, 7);
			__m512i shifted = _mm512_or_si512(_mm512_slli_epi64(x, 1),
							  _mm512_srli_epi64(prev_word, 63));
			__mmask8 bound = _mm512_cmpneq_epi64_mask(x, shifted);

			lanes = ck_step512(lanes, x);
			pop = _mm512_add_epi64(pop, _mm512_popcnt_epi64(x));
			starts = _mm512_add_epi64(
			    starts, _mm512_popcnt_epi64(_mm512_andnot_si512(shifted, x)));
			_mm256_storeu_si256((__m256i *)(bounds + m),
					    _mm256_maskz_compress_epi32(bound, index));
			m += __builtin_popcount(bound);
			index = _mm256_add_epi32(index, _mm256_set1_epi32(BLOCK));
			before_block = x;
		}
		n = _mm512_reduce_add_epi64(pop);
		r = _mm512_reduce_add_epi64(starts);
		certain = n > raw_bytes && 2 * r > raw_bytes;
	}
	for (; b < n_blocks; b++) {
		__m512i x = _mm512_loadu_si512(bitmap + b * BLOCK);

		lanes = ck_step512(lanes, x);
		pop = _mm512_add_epi64(pop, _mm512_popcnt_epi64(x));
	}
	_mm512_storeu_si512(v, lanes);
	n = _mm512_reduce_add_epi64(pop);
	carry = n_blocks > 0 ? bitmap[n_blocks * BLOCK - 1] >> 63 : 0;
	for (gsize i = n_blocks * BLOCK; i < n_words; i++) {
		guint64 x = i == n_words - 1 ? bitmap[i] & last_mask : bitmap[i];

		v[i % CK_LANES] = ck_step(v[i % CK_LANES], x);
		n += __builtin_popcountll(x);
		r += STARTS(x, carry);
		BOUND(x, carry, i);
		carry = x >> 63;
	}
	res->n_dirty = n;
	res->n_runs = r;
	memcpy(res->v, v, sizeof(v));
	res->n_bounds = m;
	res->raw_certain = certain || (n > raw_bytes && 2 * r > raw_bytes);
}

static VBMI2_TARGET void
sparse_vbmi2(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
	     const guint32 *bounds, gsize n_bounds, Walk *w)
{
	sparse_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, w, TRUE);
}

static VBMI2_TARGET void
runs_vbmi2(const guint64 *bitmap, gsize n_words, guint64 last_mask, guint64 n_pages,
	   const guint32 *bounds, gsize n_bounds, Walk *w)
{
	runs_body(bitmap, n_words, last_mask, n_pages, bounds, n_bounds, w, TRUE);
}

/* by pieces as with AVX2, whose pass 1 and walks the AVX-512 ones do not beat there */
static const Kernels kernels_avx512 = {count_popcnt,	  light_avx512,	   scan_avx512,
				       sparse_popcnt,	  runs_popcnt,	   scan_piece_avx2,
				       sparse_piece_avx2, runs_piece_avx2, sparse_fused_avx2};
static const Kernels kernels_vbmi2 = {count_popcnt,	 light_avx512,	  scan_avx512,
				      sparse_vbmi2,	 runs_vbmi2,	  scan_piece_avx2,
				      sparse_piece_avx2, runs_piece_avx2, sparse_fused_avx2};
#endif

/* the kernels for this CPU (see the top of the file) */
static const Kernels *
kernels(void)
{
#ifdef MIGD_DIRTY_DISPATCH
	static const Kernels *const all[] = {&kernels_generic, &kernels_popcnt, &kernels_avx2,
					     &kernels_avx512, &kernels_vbmi2};
	static const gchar *const names[] = {"generic", "popcnt", "avx2", "avx512", "vbmi2"};
	static gsize choice; /* 1 + index in all[] */

	if (g_once_init_enter(&choice)) {
		const gchar *want = g_getenv("VFIO_MIGD_DIRTY_KERNEL");
		gsize c = 0;

		__builtin_cpu_init();
		bound_table_init();
		varint2_shuffle_init();
		if (__builtin_cpu_supports("popcnt"))
			c = 1;
		if (c == 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
		    __builtin_cpu_supports("bmi2"))
			c = 2;
		if (c == 2 && __builtin_cpu_supports("avx512f") &&
		    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
		    __builtin_cpu_supports("avx512vpopcntdq"))
			c = 3;
		if (c == 3 && __builtin_cpu_supports("avx512bw") &&
		    __builtin_cpu_supports("avx512vbmi2"))
			c = 4;
		for (gsize i = 0; want != NULL && i < c; i++) {
			if (g_strcmp0(want, names[i]) == 0)
				c = i;
		}
		g_once_init_leave(&choice, c + 1);
	}
	return all[choice - 1];
#else
	return &kernels_generic;
#endif
}

guint64
migd_dirty_count_and_checksum(const guint64 *bitmap, guint64 n_pages, guint64 *count)
{
	guint64 v[CK_LANES];

	kernels()->light(bitmap, words_for(n_pages), last_word_mask(n_pages), count, v);
	return ck_final(v, n_pages);
}

guint64
migd_dirty_checksum(const guint64 *bitmap, guint64 n_pages)
{
	guint64 count;

	g_return_val_if_fail(bitmap != NULL || n_pages == 0, 0);
	return migd_dirty_count_and_checksum(bitmap, n_pages, &count);
}

guint64
migd_dirty_count(const guint64 *bitmap, guint64 n_pages)
{
	g_return_val_if_fail(bitmap != NULL || n_pages == 0, 0);
	return kernels()->count(bitmap, words_for(n_pages), last_word_mask(n_pages));
}

/* the payload of a RAW chunk: the words, little-endian, the tail cleared */
static GBytes *
encode_raw(const guint64 *bitmap, gsize n_words, guint64 last_mask)
{
	guint64 *copy;

	if (G_BYTE_ORDER == G_LITTLE_ENDIAN && (bitmap[n_words - 1] & ~last_mask) == 0)
		return g_bytes_new_static(bitmap, n_words * 8);
	copy = g_new(guint64, n_words);
	for (gsize i = 0; i < n_words; i++)
		copy[i] = GUINT64_TO_LE(i == n_words - 1 ? bitmap[i] & last_mask : bitmap[i]);
	return g_bytes_new_take(copy, n_words * 8);
}

static GBytes *
walk_take_bytes(Walk *w)
{
	if (w->len == 0) {
		g_free(w->buf);
		w->buf = NULL;
		return g_bytes_new(NULL, 0);
	}
	return g_bytes_new_take(g_realloc(g_steal_pointer(&w->buf), w->len), w->len);
}

static void
walk_init(Walk *w, gsize upper_bound, gsize limit)
{
	memset(w, 0, sizeof(*w));
	w->limit = limit;
	w->buf = g_malloc(MIN(upper_bound, limit) + SLACK);
}

/* the encoder in two passes over the whole chunk (see the top of the file) */
static void
encode_whole(const Kernels *k, const guint64 *bitmap, guint64 n_pages, MigdDirtyEncoded *encoded)
{
	g_autofree guint32 *bounds = NULL;
	gsize n_words = words_for(n_pages), raw_bytes = n_words * 8;
	guint64 last_mask = last_word_mask(n_pages);
	ScanResult s;
	Walk w;

	bounds = g_new(guint32, n_words + BLOCK); /* AVX-512 stores 8 entries at a time */
	k->scan(bitmap, n_words, last_mask, raw_bytes, bounds, &s);

	encoded->n_pages = n_pages;
	encoded->n_dirty = s.n_dirty;
	encoded->checksum = ck_final(s.v, n_pages);

	if (s.n_dirty == 0) {
		encoded->encoding = MIGD_DIRTY_ENCODING_SPARSE;
		encoded->data = g_bytes_new(NULL, 0);
		return;
	}
	if (s.raw_certain)
		goto raw;

	if (s.n_dirty <= 2 * s.n_runs) {
		/* SPARSE <= RUNS: SPARSE unless it is longer than RAW */
		walk_init(&w, s.n_dirty + 3 * s.n_runs, raw_bytes);
		k->sparse(bitmap, n_words, last_mask, n_pages, bounds, s.n_bounds, &w);
		if (w.overflow) {
			g_free(w.buf);
			goto raw;
		}
		g_assert(w.n_items == s.n_dirty);
		encoded->encoding = MIGD_DIRTY_ENCODING_SPARSE;
		encoded->data = walk_take_bytes(&w);
		return;
	}

	/* RUNS, whose varint lengths also give SPARSE's exact length */
	walk_init(&w, 8 * s.n_runs, raw_bytes);
	k->runs(bitmap, n_words, last_mask, n_pages, bounds, s.n_bounds, &w);
	g_assert(w.n_items == 2 * s.n_runs);
	{
		gsize runs_len = w.len;
		gsize sparse_len = w.len_clean + (s.n_dirty - s.n_runs);

		if (sparse_len <= runs_len && sparse_len <= raw_bytes) {
			g_free(w.buf);
			walk_init(&w, sparse_len, sparse_len);
			k->sparse(bitmap, n_words, last_mask, n_pages, bounds, s.n_bounds, &w);
			g_assert(!w.overflow && w.len == sparse_len);
			encoded->encoding = MIGD_DIRTY_ENCODING_SPARSE;
			encoded->data = walk_take_bytes(&w);
			return;
		}
		if (runs_len <= raw_bytes) {
			g_assert(!w.overflow);
			encoded->encoding = MIGD_DIRTY_ENCODING_RUNS;
			encoded->data = walk_take_bytes(&w);
			return;
		}
		g_free(w.buf);
	}
raw:
	encoded->encoding = MIGD_DIRTY_ENCODING_RAW;
	encoded->data = encode_raw(bitmap, n_words, last_mask);
}

/* a format's walk in encode_pieces */
typedef enum {
	WALK_LIVE,   /* written for every piece so far */
	WALK_OVER,   /* longer than RAW: it cannot win */
	WALK_MISSED, /* a piece was not written: its bytes (maybe even its length) are unknown */
} WalkState;

/*
 * Pass 1 and pass 2 of the piece [start, end) (encode_pieces); @r: the runs up to the previous
 * piece (pass 1's for the first piece). FALSE when neither format can be written any more.
 */
static gboolean
encode_piece(const Kernels *k, const guint64 *bitmap, guint64 n_pages, gsize start, gsize end,
	     guint32 *bounds, Pass1 *st, Walk *sw, Walk *rw, WalkState *sparse, WalkState *runs,
	     guint64 *r)
{
	gsize n_words = words_for(n_pages), raw_bytes = n_words * 8;
	guint64 last_mask = last_word_mask(n_pages);
	gsize m = k->scan_piece(bitmap, start, end, n_words, last_mask, bounds, st);
	gboolean last = end == n_words;
	guint64 seen = end * 8; /* RAW bytes so far */
	guint64 n;

	/* the margins of a piece keep both while the counts are small; the runs are pass
	 * 1's for the first piece, then the walks' up to the previous piece */
	n = st->n_dirty;
	if (start == 0)
		*r = st->n_runs;
	if (*sparse == WALK_LIVE && (n > seen + PIECE_WORDS || 2 * n > 5 * *r + 2 * PIECE_WORDS))
		*sparse = WALK_MISSED;
	if (*runs == WALK_LIVE && (2 * *r > seen + PIECE_WORDS || 3 * *r > 2 * n + PIECE_WORDS / 2))
		*runs = WALK_MISSED;
	if (*sparse == WALK_MISSED && *runs == WALK_MISSED)
		return FALSE;
	if (*sparse == WALK_LIVE) {
		if (sw->buf == NULL)
			walk_init(sw, raw_bytes, raw_bytes);
		k->sparse_piece(bitmap, n_words, last_mask, n_pages, bounds, m, last,
				st->dirty_unlisted, sw);
		if (sw->overflow)
			*sparse = WALK_OVER;
	}
	if (*runs == WALK_LIVE) {
		if (rw->buf == NULL)
			walk_init(rw, raw_bytes, raw_bytes);
		k->runs_piece(bitmap, n_words, last_mask, n_pages, bounds, m, last, rw);
		if (rw->overflow)
			*runs = WALK_OVER;
	}
	return TRUE;
}

/*
 * The encoder by pieces: pass 1 and pass 2 of each piece in turn, writing the formats that may
 * still win, as the counts so far say (SPARSE can only beat RUNS near n_dirty <= 2 * runs, and
 * RUNS only above it; neither beats RAW past the RAW size). Returns FALSE, and leaves
 * @encoded alone, when the winner turns out to be a format that was not written for every
 * piece (a chunk whose density changes along the way): encode_whole then does it again.
 */
static gboolean
encode_pieces(const Kernels *k, const guint64 *bitmap, guint64 n_pages, MigdDirtyEncoded *encoded)
{
	gsize n_words = words_for(n_pages), raw_bytes = n_words * 8;
	guint64 last_mask = last_word_mask(n_pages);
	guint32 bounds[PIECE_WORDS + BLOCK];
	Pass1 st = {.n_dirty = 0};
	Walk sw = {.buf = NULL}, rw = {.buf = NULL};
	WalkState sparse = WALK_LIVE, runs = WALK_LIVE;
	gsize sparse_len = G_MAXSIZE, runs_len = G_MAXSIZE;
	guint64 n, r = 0, prev_dirty = 0;
	gboolean known = TRUE, lost = FALSE;

	ck_init(st.v);
	for (gsize start = 0; start < n_words; start += PIECE_WORDS) {
		gsize end = MIN(start + PIECE_WORDS, n_words);
		gboolean last = end == n_words;
		guint64 n_before = st.n_dirty;

		if (k->sparse_fused != NULL && start > 0 && !last && sparse == WALK_LIVE &&
		    runs != WALK_LIVE && prev_dirty >= FUSED_MIN && prev_dirty <= FUSED_MAX) {
			/* scattered, SPARSE alone: both passes at once */
			k->sparse_fused(bitmap, start, &st, &sw);
			if (sw.overflow)
				sparse = WALK_OVER;
		} else if (!encode_piece(k, bitmap, n_pages, start, end, bounds, &st, &sw, &rw,
					 &sparse, &runs, &r)) {
			lost = TRUE;
			break;
		}
		prev_dirty = st.n_dirty - n_before;
		/* the runs so far, from a walk that saw every piece (a page 0 that is dirty
		 * starts a run that SPARSE writes as index 0, with no gap) */
		if (sparse == WALK_LIVE)
			r = sw.n_runs + (bitmap[0] & 1);
		else if (runs == WALK_LIVE)
			r = (rw.n_items + 1) / 2;
		else if (sparse != WALK_OVER || runs != WALK_OVER)
			lost = TRUE;
		if (sparse == WALK_LIVE && runs == WALK_LIVE)
			g_assert(sw.n_runs + (bitmap[0] & 1) == (rw.n_items + 1) / 2);
	}
	n = st.n_dirty;
	if (lost) {
		g_free(sw.buf);
		g_free(rw.buf);
		return FALSE;
	}

	/* the exact lengths, where they are known (G_MAXSIZE: longer than RAW) */
	if (sparse == WALK_LIVE) {
		g_assert(sw.n_items == n);
		sparse_len = sw.len;
	} else if (sparse == WALK_MISSED) {
		if (runs == WALK_LIVE)
			sparse_len = rw.len_clean + (n - r);
		else
			known = FALSE;
	}
	if (runs == WALK_LIVE) {
		g_assert(rw.n_items == 2 * r);
		runs_len = rw.len;
	} else if (runs == WALK_MISSED && n > 2 * r) {
		known = FALSE; /* when n <= 2 * r RUNS is not shorter than SPARSE: no matter */
	}
	if (known && n > 0 && sparse_len <= runs_len && sparse_len <= raw_bytes &&
	    sparse != WALK_LIVE)
		known = FALSE; /* SPARSE wins but was not written */
	if (!known) {
		g_free(sw.buf);
		g_free(rw.buf);
		return FALSE;
	}

	encoded->n_pages = n_pages;
	encoded->n_dirty = n;
	encoded->checksum = ck_final(st.v, n_pages);
	if (n == 0) {
		encoded->encoding = MIGD_DIRTY_ENCODING_SPARSE;
		encoded->data = g_bytes_new(NULL, 0);
		g_free(sw.buf);
		g_free(rw.buf);
	} else if (sparse_len <= runs_len && sparse_len <= raw_bytes) {
		encoded->encoding = MIGD_DIRTY_ENCODING_SPARSE;
		encoded->data = walk_take_bytes(&sw);
		g_free(rw.buf);
	} else if (runs_len <= raw_bytes) {
		encoded->encoding = MIGD_DIRTY_ENCODING_RUNS;
		encoded->data = walk_take_bytes(&rw);
		g_free(sw.buf);
	} else {
		encoded->encoding = MIGD_DIRTY_ENCODING_RAW;
		encoded->data = encode_raw(bitmap, n_words, last_mask);
		g_free(sw.buf);
		g_free(rw.buf);
	}
	return TRUE;
}

void
migd_dirty_encode(const guint64 *bitmap, guint64 n_pages, MigdDirtyEncoded *encoded)
{
	const Kernels *k = kernels();

	g_return_if_fail(encoded != NULL);
	migd_dirty_encoded_clear(encoded);
	g_return_if_fail(bitmap != NULL);
	g_return_if_fail(n_pages >= 1 && n_pages <= MIGD_DIRTY_MAX_CHUNK_PAGES);

	/* one piece is in the cache for both passes anyway */
	if (k->scan_piece != NULL && words_for(n_pages) > PIECE_WORDS &&
	    encode_pieces(k, bitmap, n_pages, encoded))
		return;
	encode_whole(k, bitmap, n_pages, encoded);
}
