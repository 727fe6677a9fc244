/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the dirty-bitmap encoder (migd-dirty-bitmap.c) and decoder
 * (migd-dirty-bitmap-decode.c) share: the words of a chunk, and the one pass that counts its
 * pages and takes its checksum. Internal to dirty/.
 */
#pragma once

#include <glib.h>

#define ALL_ONES G_MAXUINT64

static inline guint64
words_for(guint64 n_pages)
{
	return n_pages / 64 + (n_pages % 64 != 0);
}

/* the valid bits of the last word */
static inline guint64
last_word_mask(guint64 n_pages)
{
	guint r = n_pages % 64;
	return r == 0 ? ALL_ONES : (G_GUINT64_CONSTANT(1) << r) - 1;
}

/* one pass over the chunk's words, with the fastest kernel the CPU has: the dirty pages in
 * *@count, the checksum returned */
guint64 migd_dirty_count_and_checksum(const guint64 *bitmap, guint64 n_pages, guint64 *count);
