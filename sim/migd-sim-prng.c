/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Seeded content and hashing for the simulator: word-at-a-time, no per-byte work,
 * so that streaming GiBs costs about as much as copying them.
 */
#include "config.h"

#include <string.h>

#include "migd-sim-prng.h"

void
migd_sim_fill_words(guint64 key, guint64 word_offset, void *buf, gsize n_words)
{
	guint8 *out = buf;

	for (gsize i = 0; i < n_words; i++) {
		guint64 w = migd_sim_mix64(key ^ ((word_offset + i) * MIGD_SIM_GOLDEN));
		memcpy(out + i * 8, &w, 8);
	}
}

void
migd_sim_fill_bytes(guint64 key, guint64 offset, void *buf, gsize len)
{
	guint8 *out = buf;
	guint64 word = offset / 8;
	gsize head = offset % 8;

	/* a partial first word */
	if (head != 0 && len > 0) {
		guint64 w = migd_sim_mix64(key ^ (word * MIGD_SIM_GOLDEN));
		gsize n = MIN(len, 8 - head);
		memcpy(out, (guint8 *)&w + head, n);
		out += n;
		len -= n;
		word++;
	}
	migd_sim_fill_words(key, word, out, len / 8);
	out += (len / 8) * 8;
	word += len / 8;
	/* a partial last word */
	if (len % 8 != 0) {
		guint64 w = migd_sim_mix64(key ^ (word * MIGD_SIM_GOLDEN));
		memcpy(out, &w, len % 8);
	}
}

guint64
migd_sim_hash(const void *buf, gsize len, guint64 seed)
{
	const guint8 *p = buf;
	guint64 h[4] = {seed ^ 0x243f6a8885a308d3ull, seed ^ 0x13198a2e03707344ull,
			seed ^ 0xa4093822299f31d0ull, seed ^ 0x082efa98ec4e6c89ull};
	guint64 tail = 0;
	gsize i = 0;

	/* four independent lanes so the multiplies overlap */
	for (; i + 32 <= len; i += 32) {
		for (guint l = 0; l < 4; l++) {
			guint64 w;
			memcpy(&w, p + i + l * 8, 8);
			h[l] = (h[l] ^ w) * 0x9fb21c651e98df25ull;
			h[l] ^= h[l] >> 29;
		}
	}
	for (; i + 8 <= len; i += 8) {
		guint64 w;
		memcpy(&w, p + i, 8);
		h[0] = (h[0] ^ w) * 0x9fb21c651e98df25ull;
		h[0] ^= h[0] >> 29;
	}
	if (i < len)
		memcpy(&tail, p + i, len - i);
	return migd_sim_mix64(h[0] ^ migd_sim_mix64(h[1] ^ migd_sim_mix64(h[2] ^ h[3])) ^
			      migd_sim_mix64(tail ^ len));
}
