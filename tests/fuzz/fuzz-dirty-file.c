/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer harness for the dirty-bitmap file reader (migd_dirty_file_parse in
 * dirty/migd-dirty-bitmap-file.c): the input is the file. A file the reader accepts is checked
 * here without its help (windows inside the file, a page size that is a power of two >= 4096,
 * no window wrapping past 2^64 or overlapping another, counts equal to the bits), then written
 * again with migd_dirty_file_write and read back: the same windows, counts and bits. A file it
 * refuses is MIGD_ERROR_PROTOCOL.
 */
#include "config.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migd-dirty-bitmap-file.h"
#include "migd-error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static guint64
le64_at(const guint8 *p)
{
	guint64 v = 0;
	for (guint k = 0; k < 8; k++)
		v |= (guint64)p[k] << (8 * k);
	return v;
}

/* the last byte a window covers, or FALSE when it wraps past 2^64 */
static gboolean
window_last(const MigdDirtyFile *file, const MigdDirtyFileEntry *e, guint64 *last)
{
	guint64 bytes;

	if (!g_uint64_checked_mul(&bytes, e->n_pages, file->page_size))
		return FALSE;
	return g_uint64_checked_add(last, e->iova, bytes - 1);
}

static void
check_file(const MigdDirtyFile *file, const guint8 *data, gsize size)
{
	guint64 total = 0;

	g_assert_cmpuint(file->n_windows, <=, (size - MIGD_DIRTY_FILE_HEADER_SIZE) / 32);
	for (guint i = 0; i < file->n_windows; i++) {
		const MigdDirtyFileEntry *e = &file->windows[i];
		guint64 n_words = (e->n_pages + 63) / 64, count = 0, last = 0;

		if (e->n_pages == 0) {
			g_assert_cmpuint(e->dirty_pages, ==, 0);
			continue;
		}
		g_assert_true(file->page_size >= MIGD_DIRTY_FILE_MIN_PAGE &&
			      (file->page_size & (file->page_size - 1)) == 0);
		g_assert_true(window_last(file, e, &last));
		g_assert_cmpuint(e->offset % 8, ==, 0);
		g_assert_cmpuint(e->offset, >=,
				 MIGD_DIRTY_FILE_HEADER_SIZE +
				     (guint64)file->n_windows * MIGD_DIRTY_FILE_ENTRY_SIZE);
		g_assert_cmpuint(e->offset, <=, size);
		g_assert_cmpuint(n_words, <=, (size - e->offset) / 8);
		for (guint64 p = 0; p < n_words * 64; p++) {
			gboolean bit = (data[e->offset + p / 8] >> (p % 8)) & 1;
			if (p >= e->n_pages) {
				g_assert_false(bit);
				continue;
			}
			g_assert_cmpint(bit, ==, migd_dirty_file_page_is_dirty(file, i, p));
			count += bit;
		}
		g_assert_cmpuint(count, ==, e->dirty_pages);
		total += count;
		for (guint j = 0; j < i; j++) {
			const MigdDirtyFileEntry *o = &file->windows[j];
			guint64 o_last = 0;

			if (o->n_pages == 0)
				continue;
			g_assert_true(window_last(file, o, &o_last));
			g_assert_true(last < o->iova || o_last < e->iova);
		}
	}
	g_assert_cmpuint(total, ==, file->dirty_pages);
	g_assert_cmpuint(le64_at(data + 16), ==, file->page_size);
}

/* what migd_dirty_file_write makes of the windows it reads back: the same file, laid out anew */
static void
check_rewrite(const MigdDirtyFile *file, const guint8 *data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) bitmaps = g_ptr_array_new_with_free_func(g_free);
	g_autofree MigdDirtyFileWindow *windows = g_new0(MigdDirtyFileWindow, file->n_windows + 1);
	g_autoptr(MigdDirtyFile) again = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autofree gchar *contents = NULL;
	gsize len = 0;
	gint fd = memfd_create("fuzz-dirty-file", MFD_CLOEXEC);

	g_assert_cmpint(fd, >=, 0);
	for (guint i = 0; i < file->n_windows; i++) {
		const MigdDirtyFileEntry *e = &file->windows[i];
		guint64 *bitmap = NULL;

		windows[i].iova = e->iova;
		windows[i].n_pages = e->n_pages;
		if (e->n_pages == 0)
			continue;
		bitmap = g_new0(guint64, (e->n_pages + 63) / 64);
		for (guint64 w = 0; w < (e->n_pages + 63) / 64; w++)
			bitmap[w] = le64_at(data + e->offset + w * 8);
		windows[i].bitmap = bitmap;
		g_ptr_array_add(bitmaps, bitmap);
	}
	g_assert_true(migd_dirty_file_write(fd, file->page_size, file->rounds, windows,
					    file->n_windows, &error));
	g_assert_no_error(error);
	g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
	{
		g_autoptr(GIOChannel) channel = g_io_channel_unix_new(fd);
		g_io_channel_set_close_on_unref(channel, TRUE);
		g_assert_cmpint(g_io_channel_set_encoding(channel, NULL, NULL), ==,
				G_IO_STATUS_NORMAL);
		g_assert_cmpint(g_io_channel_read_to_end(channel, &contents, &len, &error), ==,
				G_IO_STATUS_NORMAL);
	}
	bytes = g_bytes_new_take(g_steal_pointer(&contents), len);
	again = migd_dirty_file_parse(bytes, &error);
	g_assert_no_error(error);
	g_assert_nonnull(again);
	g_assert_cmpuint(again->n_windows, ==, file->n_windows);
	g_assert_cmpuint(again->page_size, ==, file->page_size);
	g_assert_cmpuint(again->rounds, ==, file->rounds);
	g_assert_cmpuint(again->dirty_pages, ==, file->dirty_pages);
	for (guint i = 0; i < file->n_windows; i++) {
		g_assert_cmpuint(again->windows[i].n_pages, ==, file->windows[i].n_pages);
		if (file->windows[i].n_pages == 0)
			continue;
		g_assert_cmpuint(again->windows[i].iova, ==, file->windows[i].iova);
		g_assert_cmpuint(again->windows[i].dirty_pages, ==, file->windows[i].dirty_pages);
		for (guint64 p = 0; p < file->windows[i].n_pages; p++)
			g_assert_cmpint(migd_dirty_file_page_is_dirty(again, i, p), ==,
					migd_dirty_file_page_is_dirty(file, i, p));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GBytes) bytes = g_bytes_new(data, size);
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdDirtyFile) file = migd_dirty_file_parse(bytes, &error);

	if (file == NULL) {
		g_assert_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL);
		return 0;
	}
	g_assert_no_error(error);
	check_file(file, g_bytes_get_data(file->bytes, NULL), size);
	check_rewrite(file, g_bytes_get_data(file->bytes, NULL));
	return 0;
}
