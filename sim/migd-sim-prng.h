/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <string.h>

G_BEGIN_DECLS

#define MIGD_SIM_GOLDEN 0x9e3779b97f4a7c15ull

/* splitmix64's finaliser: a good 64-bit mix, two multiplies per word */
static inline guint64
migd_sim_mix64(guint64 z)
{
	z += MIGD_SIM_GOLDEN;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* splitmix64 generator step */
static inline guint64
migd_sim_prng_next(guint64 *state)
{
	*state += MIGD_SIM_GOLDEN;
	return migd_sim_mix64(*state);
}

/*
 * Seeded content: word i of the stream for @key is mix(key ^ i * golden), so any
 * offset can be generated without the words before it. Writes @n_words words
 * starting at word @word_offset to @buf (any alignment).
 */
void migd_sim_fill_words(guint64 key, guint64 word_offset, void *buf, gsize n_words);
/* the same for a byte range [@offset, @offset + @len) of the stream for @key */
void migd_sim_fill_bytes(guint64 key, guint64 offset, void *buf, gsize len);

/* a fast 64-bit content hash (4 lanes, 8 bytes per step) */
guint64 migd_sim_hash(const void *buf, gsize len, guint64 seed);

/* host <-> little-endian field access on byte buffers (no alignment needed) */
static inline void
migd_sim_put_le64(guint8 *p, guint64 v)
{
	v = GUINT64_TO_LE(v);
	memcpy(p, &v, 8);
}

static inline void
migd_sim_put_le32(guint8 *p, guint32 v)
{
	v = GUINT32_TO_LE(v);
	memcpy(p, &v, 4);
}

static inline guint64
migd_sim_get_le64(const guint8 *p)
{
	guint64 v;
	memcpy(&v, p, 8);
	return GUINT64_FROM_LE(v);
}

static inline guint32
migd_sim_get_le32(const guint8 *p)
{
	guint32 v;
	memcpy(&v, p, 4);
	return GUINT32_FROM_LE(v);
}

G_END_DECLS
