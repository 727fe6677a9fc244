/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The dirty-bitmap file (docs/ABI/testing/dirty-bitmap-file), the one
 * definition of its layout: the destination's sink writes it into a sealed
 * memfd, vfio-migctl reads it. All integers little-endian.
 *
 * Header, 64 bytes: magic, version, n_windows, page_size, dirty_pages, rounds,
 * reserved zero. Then n_windows entries of 32 bytes: iova, n_pages, offset,
 * dirty_pages. Then each window's bitmap, ceil(n_pages / 64) words at its
 * offset.
 */
#define MIGD_DIRTY_FILE_MAGIC	    "MIGDDIRT"
#define MIGD_DIRTY_FILE_VERSION	    1u
#define MIGD_DIRTY_FILE_HEADER_SIZE 64u
#define MIGD_DIRTY_FILE_ENTRY_SIZE  32u
#define MIGD_DIRTY_FILE_MIN_PAGE    4096u

/* one window, as the writer gets it */
typedef struct {
	guint64 iova;
	guint64 n_pages;       /* 0: an unused window number (bitmap may be NULL) */
	const guint64 *bitmap; /* host-endian, ceil(n_pages / 64) words */
} MigdDirtyFileWindow;

/*
 * Writes the file to @fd from its current position: the header, the table,
 * the bitmaps with their tails past n_pages cleared. Every count in the file
 * is counted here from the bitmaps, so they always agree with them.
 */
gboolean migd_dirty_file_write(gint fd, guint64 page_size, guint32 rounds,
			       const MigdDirtyFileWindow *windows, guint n_windows, GError **error);

/*
 * The file as a read-only snapshot: written into a new memfd, sealed against
 * any change (shrink, grow, write, seal) and rewound. Returns the fd (the
 * caller owns it) or -1 with @error.
 */
gint migd_dirty_file_new_sealed(guint64 page_size, guint32 rounds,
				const MigdDirtyFileWindow *windows, guint n_windows,
				GError **error);

/* one entry of the window table, as read */
typedef struct {
	guint64 iova;
	guint64 n_pages; /* 0: an unused window number */
	guint64 offset;	 /* of the bitmap in the file */
	guint64 dirty_pages;
} MigdDirtyFileEntry;

typedef struct {
	guint64 page_size;
	guint64 dirty_pages;
	guint32 rounds;
	guint32 n_windows;
	MigdDirtyFileEntry *windows;
	GBytes *bytes; /* the whole file */
} MigdDirtyFile;

/*
 * Reads and checks a version 1 file, trusting none of its numbers: the
 * magic and version, a table and bitmaps inside the file, 8-byte aligned and
 * after the table, page_size a power of two >= 4096 (or 0 with no used
 * window), windows that neither wrap past 2^64 nor overlap, zero bits past
 * n_pages, and counts that equal the bits. MIGD_ERROR_PROTOCOL otherwise.
 */
MigdDirtyFile *migd_dirty_file_parse(GBytes *bytes, GError **error);
void migd_dirty_file_free(MigdDirtyFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdDirtyFile, migd_dirty_file_free)

/* whether page @page of window @window (both in range) is dirty */
gboolean migd_dirty_file_page_is_dirty(const MigdDirtyFile *file, guint window, guint64 page);

G_END_DECLS
