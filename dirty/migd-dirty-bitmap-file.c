/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty-bitmap file: its writer (the destination's sink) and its reader
 * (vfio-migctl). Only glib and the error domain, so that tools link it alone.
 */
#include "config.h"

#include "migd-dirty-bitmap-file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migd-error.h"

/* field offsets in the header and in an entry */
#define MIGD_DIRTY_FILE_OFF_VERSION	8u
#define MIGD_DIRTY_FILE_OFF_N_WINDOWS	12u
#define MIGD_DIRTY_FILE_OFF_PAGE_SIZE	16u
#define MIGD_DIRTY_FILE_OFF_DIRTY_PAGES 24u
#define MIGD_DIRTY_FILE_OFF_ROUNDS	32u
#define MIGD_DIRTY_FILE_OFF_RESERVED	36u
#define MIGD_DIRTY_FILE_ENTRY_IOVA	0u
#define MIGD_DIRTY_FILE_ENTRY_N_PAGES	8u
#define MIGD_DIRTY_FILE_ENTRY_OFFSET	16u
#define MIGD_DIRTY_FILE_ENTRY_DIRTY	24u

/* words written per write(): the bitmaps go out through a bounded buffer */
#define MIGD_DIRTY_FILE_BOUNCE_WORDS 4096u

G_STATIC_ASSERT(MIGD_DIRTY_FILE_OFF_RESERVED < MIGD_DIRTY_FILE_HEADER_SIZE);

static guint64
migd_dirty_file_words(guint64 n_pages)
{
	/* n_pages comes from the file: (n_pages + 63) could wrap */
	return n_pages / 64 + (n_pages % 64 != 0 ? 1 : 0);
}

/* the bits of the last word that are pages */
static guint64
migd_dirty_file_last_mask(guint64 n_pages)
{
	return n_pages % 64 == 0 ? G_MAXUINT64 : (G_GUINT64_CONSTANT(1) << (n_pages % 64)) - 1;
}

static gboolean
migd_dirty_file_page_size_ok(guint64 page_size)
{
	return page_size >= MIGD_DIRTY_FILE_MIN_PAGE && (page_size & (page_size - 1)) == 0;
}

static void
migd_dirty_file_put_le64(guint8 *p, guint64 v)
{
	v = GUINT64_TO_LE(v);
	memcpy(p, &v, sizeof(v));
}

static void
migd_dirty_file_put_le32(guint8 *p, guint32 v)
{
	v = GUINT32_TO_LE(v);
	memcpy(p, &v, sizeof(v));
}

static guint64
migd_dirty_file_le64(const guint8 *p)
{
	guint64 v;
	memcpy(&v, p, sizeof(v));
	return GUINT64_FROM_LE(v);
}

static guint32
migd_dirty_file_le32(const guint8 *p)
{
	guint32 v;
	memcpy(&v, p, sizeof(v));
	return GUINT32_FROM_LE(v);
}

/* ---- writer ---- */

static gboolean
migd_dirty_file_write_all(gint fd, const void *buf, gsize len, GError **error)
{
	const guint8 *p = buf;
	while (len > 0) {
		gssize n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			migd_set_errno_error(error, n < 0 ? errno : EIO,
					     "writing the dirty bitmap");
			return FALSE;
		}
		p += n;
		len -= n;
	}
	return TRUE;
}

static guint64
migd_dirty_file_count(const MigdDirtyFileWindow *win)
{
	guint64 words = migd_dirty_file_words(win->n_pages);
	guint64 n = 0;

	for (guint64 w = 0; w < words; w++) {
		guint64 v = win->bitmap[w];
		if (w == words - 1)
			v &= migd_dirty_file_last_mask(win->n_pages);
		n += (guint64)__builtin_popcountll(v);
	}
	return n;
}

/* the words little-endian, the tail past n_pages cleared */
static gboolean
migd_dirty_file_write_bitmap(gint fd, const MigdDirtyFileWindow *win, GError **error)
{
	guint64 words = migd_dirty_file_words(win->n_pages);
	g_autofree guint64 *bounce = g_new(guint64, MIGD_DIRTY_FILE_BOUNCE_WORDS);

	for (guint64 done = 0; done < words;) {
		guint64 n = MIN(words - done, MIGD_DIRTY_FILE_BOUNCE_WORDS);
		for (guint64 w = 0; w < n; w++) {
			guint64 v = win->bitmap[done + w];
			if (done + w == words - 1)
				v &= migd_dirty_file_last_mask(win->n_pages);
			bounce[w] = GUINT64_TO_LE(v);
		}
		if (!migd_dirty_file_write_all(fd, bounce, n * 8, error))
			return FALSE;
		done += n;
	}
	return TRUE;
}

gboolean
migd_dirty_file_write(gint fd, guint64 page_size, guint32 rounds,
		      const MigdDirtyFileWindow *windows, guint n_windows, GError **error)
{
	gsize table = MIGD_DIRTY_FILE_HEADER_SIZE + (gsize)n_windows * MIGD_DIRTY_FILE_ENTRY_SIZE;
	g_autofree guint8 *head = g_malloc0(table);
	guint64 offset = table;
	guint64 total = 0;

	g_return_val_if_fail(windows != NULL || n_windows == 0, FALSE);

	memcpy(head, MIGD_DIRTY_FILE_MAGIC, 8);
	migd_dirty_file_put_le32(head + MIGD_DIRTY_FILE_OFF_VERSION, MIGD_DIRTY_FILE_VERSION);
	migd_dirty_file_put_le32(head + MIGD_DIRTY_FILE_OFF_N_WINDOWS, n_windows);
	migd_dirty_file_put_le64(head + MIGD_DIRTY_FILE_OFF_PAGE_SIZE, page_size);
	migd_dirty_file_put_le32(head + MIGD_DIRTY_FILE_OFF_ROUNDS, rounds);
	for (guint i = 0; i < n_windows; i++) {
		const MigdDirtyFileWindow *win = &windows[i];
		guint8 *e =
		    head + MIGD_DIRTY_FILE_HEADER_SIZE + (gsize)i * MIGD_DIRTY_FILE_ENTRY_SIZE;
		guint64 dirty;

		/* a window number never used stays an all-zero entry */
		if (win->n_pages == 0)
			continue;
		dirty = migd_dirty_file_count(win);
		migd_dirty_file_put_le64(e + MIGD_DIRTY_FILE_ENTRY_IOVA, win->iova);
		migd_dirty_file_put_le64(e + MIGD_DIRTY_FILE_ENTRY_N_PAGES, win->n_pages);
		migd_dirty_file_put_le64(e + MIGD_DIRTY_FILE_ENTRY_OFFSET, offset);
		migd_dirty_file_put_le64(e + MIGD_DIRTY_FILE_ENTRY_DIRTY, dirty);
		offset += migd_dirty_file_words(win->n_pages) * 8;
		total += dirty;
	}
	migd_dirty_file_put_le64(head + MIGD_DIRTY_FILE_OFF_DIRTY_PAGES, total);
	if (!migd_dirty_file_write_all(fd, head, table, error))
		return FALSE;
	for (guint i = 0; i < n_windows; i++) {
		if (windows[i].n_pages != 0 &&
		    !migd_dirty_file_write_bitmap(fd, &windows[i], error))
			return FALSE;
	}
	return TRUE;
}

gint
migd_dirty_file_new_sealed(guint64 page_size, guint32 rounds, const MigdDirtyFileWindow *windows,
			   guint n_windows, GError **error)
{
	gint fd = memfd_create("vfio-migd-dirty-bitmap", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0) {
		migd_set_errno_error(error, errno, "memfd_create");
		return -1;
	}
	if (!migd_dirty_file_write(fd, page_size, rounds, windows, n_windows, error)) {
		close(fd);
		return -1;
	}
	/* a snapshot: the consumer can rely on it never changing under it */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		migd_set_errno_error(error, errno, "sealing the dirty bitmap");
		close(fd);
		return -1;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		migd_set_errno_error(error, errno, "lseek");
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- reader ---- */

void
migd_dirty_file_free(MigdDirtyFile *file)
{
	if (file == NULL)
		return;
	g_free(file->windows);
	g_clear_pointer(&file->bytes, g_bytes_unref);
	g_free(file);
}

/* the set bits of the entry's bitmap, or FALSE when bits past n_pages are set */
static gboolean
migd_dirty_file_count_entry(const guint8 *data, const MigdDirtyFileEntry *e, guint64 *count)
{
	guint64 words = migd_dirty_file_words(e->n_pages);

	*count = 0;
	for (guint64 w = 0; w < words; w++) {
		guint64 v = migd_dirty_file_le64(data + e->offset + w * 8);
		if (w == words - 1 && (v & ~migd_dirty_file_last_mask(e->n_pages)) != 0)
			return FALSE;
		*count += (guint64)__builtin_popcountll(v);
	}
	return TRUE;
}

/* checks one used entry against the file; the table ends at @table_end */
static gboolean
migd_dirty_file_check_entry(const MigdDirtyFile *file, guint i, gsize len, guint64 table_end,
			    GError **error)
{
	const MigdDirtyFileEntry *e = &file->windows[i];
	const guint8 *data = g_bytes_get_data(file->bytes, NULL);
	guint64 words = migd_dirty_file_words(e->n_pages);
	guint64 count;

	if (e->n_pages > (G_MAXUINT64 - e->iova) / file->page_size) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "bad dirty-bitmap file: window %u wraps past 2^64", i);
		return FALSE;
	}
	if (words > len / 8 || e->offset % 8 != 0 || e->offset < table_end || e->offset > len ||
	    words * 8 > len - e->offset) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "bad dirty-bitmap file: window %u: %" G_GUINT64_FORMAT
			    " pages at offset %" G_GUINT64_FORMAT
			    " do not fit a file of %" G_GSIZE_FORMAT " bytes",
			    i, e->n_pages, e->offset, len);
		return FALSE;
	}
	if (!migd_dirty_file_count_entry(data, e, &count)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "bad dirty-bitmap file: window %u has bits set past its pages", i);
		return FALSE;
	}
	if (count != e->dirty_pages) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "bad dirty-bitmap file: window %u claims %" G_GUINT64_FORMAT
			    " dirty pages, its bitmap has %" G_GUINT64_FORMAT,
			    i, e->dirty_pages, count);
		return FALSE;
	}
	return TRUE;
}

static gint
migd_dirty_file_cmp_iova(gconstpointer a, gconstpointer b, gpointer user_data)
{
	const MigdDirtyFile *file = user_data;
	guint64 ia = file->windows[*(const guint *)a].iova;
	guint64 ib = file->windows[*(const guint *)b].iova;
	return ia < ib ? -1 : ia > ib ? 1 : 0;
}

/* windows never overlap: the consumer reads one bit per guest page */
static gboolean
migd_dirty_file_check_overlap(const MigdDirtyFile *file, GError **error)
{
	g_autoptr(GArray) used = g_array_new(FALSE, FALSE, sizeof(guint));

	for (guint i = 0; i < file->n_windows; i++) {
		if (file->windows[i].n_pages != 0)
			g_array_append_val(used, i);
	}
	g_array_sort_with_data(used, migd_dirty_file_cmp_iova, (gpointer)file);
	for (guint k = 1; k < used->len; k++) {
		const MigdDirtyFileEntry *a = &file->windows[g_array_index(used, guint, k - 1)];
		const MigdDirtyFileEntry *b = &file->windows[g_array_index(used, guint, k)];
		/* no wrap: checked per window before */
		if (a->iova + a->n_pages * file->page_size > b->iova) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "bad dirty-bitmap file: windows %u and %u overlap",
				    g_array_index(used, guint, k - 1),
				    g_array_index(used, guint, k));
			return FALSE;
		}
	}
	return TRUE;
}

MigdDirtyFile *
migd_dirty_file_parse(GBytes *bytes, GError **error)
{
	g_autoptr(MigdDirtyFile) file = g_new0(MigdDirtyFile, 1);
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);
	guint64 table_end;
	guint64 total = 0;
	gboolean any_used = FALSE;

	file->bytes = g_bytes_ref(bytes);
	if (len < MIGD_DIRTY_FILE_HEADER_SIZE || memcmp(data, MIGD_DIRTY_FILE_MAGIC, 8) != 0 ||
	    migd_dirty_file_le32(data + MIGD_DIRTY_FILE_OFF_VERSION) != MIGD_DIRTY_FILE_VERSION) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "not a version 1 dirty-bitmap file");
		return NULL;
	}
	for (guint i = MIGD_DIRTY_FILE_OFF_RESERVED; i < MIGD_DIRTY_FILE_HEADER_SIZE; i++) {
		if (data[i] != 0) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "bad dirty-bitmap file: reserved byte %u is not zero", i);
			return NULL;
		}
	}
	file->n_windows = migd_dirty_file_le32(data + MIGD_DIRTY_FILE_OFF_N_WINDOWS);
	file->page_size = migd_dirty_file_le64(data + MIGD_DIRTY_FILE_OFF_PAGE_SIZE);
	file->dirty_pages = migd_dirty_file_le64(data + MIGD_DIRTY_FILE_OFF_DIRTY_PAGES);
	file->rounds = migd_dirty_file_le32(data + MIGD_DIRTY_FILE_OFF_ROUNDS);
	/* before anything is allocated for the table */
	if ((len - MIGD_DIRTY_FILE_HEADER_SIZE) / MIGD_DIRTY_FILE_ENTRY_SIZE < file->n_windows) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "truncated dirty-bitmap file: %u windows in %" G_GSIZE_FORMAT " bytes",
			    file->n_windows, len);
		return NULL;
	}
	table_end =
	    MIGD_DIRTY_FILE_HEADER_SIZE + (guint64)file->n_windows * MIGD_DIRTY_FILE_ENTRY_SIZE;
	file->windows = g_new0(MigdDirtyFileEntry, MAX(file->n_windows, 1));
	for (guint i = 0; i < file->n_windows; i++) {
		const guint8 *e =
		    data + MIGD_DIRTY_FILE_HEADER_SIZE + (gsize)i * MIGD_DIRTY_FILE_ENTRY_SIZE;
		file->windows[i].iova = migd_dirty_file_le64(e + MIGD_DIRTY_FILE_ENTRY_IOVA);
		file->windows[i].n_pages = migd_dirty_file_le64(e + MIGD_DIRTY_FILE_ENTRY_N_PAGES);
		file->windows[i].offset = migd_dirty_file_le64(e + MIGD_DIRTY_FILE_ENTRY_OFFSET);
		file->windows[i].dirty_pages =
		    migd_dirty_file_le64(e + MIGD_DIRTY_FILE_ENTRY_DIRTY);
		any_used |= file->windows[i].n_pages != 0;
	}
	/* an empty sink has no page size yet */
	if (!migd_dirty_file_page_size_ok(file->page_size) && (any_used || file->page_size != 0)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "bad dirty-bitmap file: bad page size %" G_GUINT64_FORMAT,
			    file->page_size);
		return NULL;
	}
	for (guint i = 0; i < file->n_windows; i++) {
		const MigdDirtyFileEntry *e = &file->windows[i];
		if (e->n_pages == 0) {
			if (e->dirty_pages != 0) {
				g_set_error(
				    error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "bad dirty-bitmap file: unused window %u has dirty pages", i);
				return NULL;
			}
			continue;
		}
		if (!migd_dirty_file_check_entry(file, i, len, table_end, error))
			return NULL;
		/* windows may share a bitmap: the sum can still wrap */
		if (!g_uint64_checked_add(&total, total, e->dirty_pages)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "bad dirty-bitmap file: dirty page counts overflow");
			return NULL;
		}
	}
	if (total != file->dirty_pages) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "bad dirty-bitmap file: %" G_GUINT64_FORMAT
			    " dirty pages in the header, %" G_GUINT64_FORMAT " in the windows",
			    file->dirty_pages, total);
		return NULL;
	}
	if (!migd_dirty_file_check_overlap(file, error))
		return NULL;
	return g_steal_pointer(&file);
}

gboolean
migd_dirty_file_page_is_dirty(const MigdDirtyFile *file, guint window, guint64 page)
{
	const MigdDirtyFileEntry *e;
	const guint8 *data;

	g_return_val_if_fail(window < file->n_windows, FALSE);
	e = &file->windows[window];
	g_return_val_if_fail(page < e->n_pages, FALSE);
	data = g_bytes_get_data(file->bytes, NULL);
	return (migd_dirty_file_le64(data + e->offset + page / 64 * 8) >> (page % 64)) & 1;
}
