/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Dirty bitmaps and their wire encodings (DirtyBitmapChunk, docs/protocol.md).
 *
 * A bitmap is host-endian guint64 words, bit n (word n / 64, bit n % 64) = page
 * n; bits at and after n_pages in the last word are zero. On the wire a chunk
 * covers n_pages (1 .. MIGD_DIRTY_MAX_CHUNK_PAGES) pages and is encoded as the
 * smallest of:
 *   RAW     the words, little-endian, ceil(n_pages / 64) * 8 bytes;
 *   RUNS    LEB128 varints alternating clean-run length, dirty-run length,
 *           starting with a (possibly zero) clean run; the runs sum to n_pages
 *           (a final clean run may be omitted); no run but the first is zero;
 *   SPARSE  LEB128 varints: the first dirty page's index, then each next dirty
 *           page's distance from the previous minus one.
 * Varints are minimal and fit in 64 bits. Ties prefer SPARSE, then RUNS, then
 * RAW. The checksum (migd_dirty_checksum) is over the decoded bitmap, so it
 * proves the encoder, the link and the decoder together. The exact formats and
 * the checksum's algorithm are at the top of migd-dirty-bitmap.c.
 */

/* 64 Mi pages (256 GiB at 4 KiB) per chunk: a RAW chunk is 8 MiB (MIGD_WIRE_MAX_BITMAP_BYTES) */
#define MIGD_DIRTY_MAX_CHUNK_PAGES (64ull * 1024 * 1024)

typedef enum {
	MIGD_DIRTY_ENCODING_RAW = 1,
	MIGD_DIRTY_ENCODING_RUNS = 2,
	MIGD_DIRTY_ENCODING_SPARSE = 3,
} MigdDirtyEncoding;

const gchar *migd_dirty_encoding_to_string(MigdDirtyEncoding encoding);

typedef struct {
	MigdDirtyEncoding encoding;
	guint64 n_pages;
	guint64 n_dirty;  /* set bits */
	guint64 checksum; /* migd_dirty_checksum() of the bitmap */
	GBytes *data;	  /* the payload; RAW on a little-endian host may reference the bitmap */
} MigdDirtyEncoded;

void migd_dirty_encoded_clear(MigdDirtyEncoded *encoded);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MigdDirtyEncoded, migd_dirty_encoded_clear)

/*
 * Encodes pages [0, @n_pages) of @bitmap (1 <= @n_pages <= MIGD_DIRTY_MAX_CHUNK_PAGES)
 * in the smallest encoding. When the result is RAW, @encoded->data may point into
 * @bitmap (g_bytes_new_static): keep @bitmap unchanged while the bytes live.
 * Bits of the last word at and after @n_pages are not pages: they are ignored
 * (and RAW then copies). @encoded must be initialised ({0} or a previous result,
 * which is released first).
 */
void migd_dirty_encode(const guint64 *bitmap, guint64 n_pages, MigdDirtyEncoded *encoded);

/*
 * Decodes a chunk from a peer and ORs it into @bitmap (which holds at least
 * ceil(@n_pages / 64) words). Everything is checked before @bitmap changes: the
 * encoding is known, @n_pages in range, the payload well formed (minimal
 * varints, no overflow, runs and indices inside @n_pages, RAW of exactly the
 * right length with a zero tail), the decoded count equals @n_dirty and the
 * checksum matches. Any failure is MIGD_ERROR_PROTOCOL and leaves @bitmap as it was.
 */
gboolean migd_dirty_decode_merge(guint encoding, const guint8 *data, gsize len, guint64 n_pages,
				 guint64 n_dirty, guint64 checksum, guint64 *bitmap,
				 GError **error);

/*
 * a fast 64-bit checksum of the first @n_pages bits (the tail of the last word counts as zero);
 * any @n_pages, also beyond a chunk
 */
guint64 migd_dirty_checksum(const guint64 *bitmap, guint64 n_pages);

/* set bits among the first @n_pages */
guint64 migd_dirty_count(const guint64 *bitmap, guint64 n_pages);

G_END_DECLS
