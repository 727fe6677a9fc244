/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdDirtySink: one device's accumulated dirty bitmap on the destination.
 */
#include "config.h"

#include "migd-dirty-sink.h"

#include <string.h>

#include "migd-dirty-bitmap.h"
#include "migd-error.h"
#include "migd-wire-limits.h"

typedef struct {
	guint64 iova;
	guint64 n_pages;
	guint64 *bitmap; /* accumulated, host-endian words */
} MigdDirtySinkWindow;

struct _MigdDirtySink {
	gchar *name;
	guint64 page_size; /* 0 until the first chunk */
	guint32 round;
	GPtrArray *windows; /* MigdDirtySinkWindow or NULL, indexed by window number */
	guint64 total_pages;
};

static void
migd_dirty_sink_window_free(MigdDirtySinkWindow *win)
{
	if (win == NULL)
		return;
	g_free(win->bitmap);
	g_free(win);
}

MigdDirtySink *
migd_dirty_sink_new(const gchar *device_name)
{
	MigdDirtySink *self = g_new0(MigdDirtySink, 1);
	self->name = g_strdup(device_name);
	self->windows = g_ptr_array_new_with_free_func((GDestroyNotify)migd_dirty_sink_window_free);
	return self;
}

void
migd_dirty_sink_free(MigdDirtySink *self)
{
	if (self == NULL)
		return;
	g_ptr_array_unref(self->windows);
	g_free(self->name);
	g_free(self);
}

static gboolean migd_dirty_sink_fail(MigdDirtySink *self, GError **error, const gchar *format, ...)
    G_GNUC_PRINTF(3, 4);

static gboolean
migd_dirty_sink_fail(MigdDirtySink *self, GError **error, const gchar *format, ...)
{
	va_list args;
	g_autofree gchar *msg = NULL;

	va_start(args, format);
	msg = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "%s: dirty bitmap: %s", self->name,
		    msg);
	return FALSE;
}

/* the chunk's window, created on first sight; NULL (and @error) if it contradicts the past */
static MigdDirtySinkWindow *
migd_dirty_sink_window(MigdDirtySink *self, const Migd__Wire__DirtyBitmapChunk *c, GError **error)
{
	MigdDirtySinkWindow *win =
	    c->window < self->windows->len ? g_ptr_array_index(self->windows, c->window) : NULL;

	if (win != NULL) {
		if (win->iova != c->window_iova || win->n_pages != c->window_pages) {
			migd_dirty_sink_fail(
			    self, error,
			    "window %u was 0x%" G_GINT64_MODIFIER "x+%" G_GUINT64_FORMAT
			    " pages, now 0x%" G_GINT64_MODIFIER "x+%" G_GUINT64_FORMAT,
			    c->window, win->iova, win->n_pages, c->window_iova, c->window_pages);
			return NULL;
		}
		return win;
	}
	/* bounded before anything is allocated: the peer chooses these numbers */
	if (c->window_pages > MIGD_WIRE_MAX_DIRTY_PAGES_PER_DEVICE - self->total_pages) {
		migd_dirty_sink_fail(
		    self, error,
		    "window %u of %" G_GUINT64_FORMAT
		    " pages exceeds the limit of %" G_GUINT64_FORMAT " pages per device",
		    c->window, c->window_pages, (guint64)MIGD_WIRE_MAX_DIRTY_PAGES_PER_DEVICE);
		return NULL;
	}
	/* windows may not overlap: the consumer reads one bit per guest page */
	for (guint i = 0; i < self->windows->len; i++) {
		MigdDirtySinkWindow *other = g_ptr_array_index(self->windows, i);
		guint64 end = c->window_iova + c->window_pages * c->page_size;
		if (other != NULL && c->window_iova < other->iova + other->n_pages * c->page_size &&
		    other->iova < end) {
			migd_dirty_sink_fail(self, error, "window %u overlaps window %u", c->window,
					     i);
			return NULL;
		}
	}
	win = g_new0(MigdDirtySinkWindow, 1);
	win->iova = c->window_iova;
	win->n_pages = c->window_pages;
	win->bitmap = g_try_new0(guint64, (c->window_pages + 63) / 64);
	if (win->bitmap == NULL) {
		g_free(win);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
			    "%s: dirty bitmap: out of memory for %" G_GUINT64_FORMAT " pages",
			    self->name, c->window_pages);
		return NULL;
	}
	if (c->window >= self->windows->len)
		g_ptr_array_set_size(self->windows, c->window + 1);
	g_ptr_array_index(self->windows, c->window) = win;
	self->total_pages += c->window_pages;
	return win;
}

gboolean
migd_dirty_sink_merge(MigdDirtySink *self, const Migd__Wire__DirtyBitmapChunk *c, GError **error)
{
	MigdDirtySinkWindow *win;

	/* the frame layer checked the geometry on its own; here, against the past */
	if (self->page_size != 0 && c->page_size != self->page_size)
		return migd_dirty_sink_fail(
		    self, error, "page size %" G_GUINT64_FORMAT " after %" G_GUINT64_FORMAT,
		    c->page_size, self->page_size);
	if (c->round < self->round)
		return migd_dirty_sink_fail(self, error, "round %u after round %u", c->round,
					    self->round);
	if (c->window >= self->windows->len && c->window > self->windows->len + 64)
		/* windows are numbered densely from 0: a far jump is a broken peer */
		return migd_dirty_sink_fail(self, error, "window %u out of sequence", c->window);
	win = migd_dirty_sink_window(self, c, error);
	if (win == NULL)
		return FALSE;
	if (!migd_dirty_decode_merge(c->encoding, c->data.data, c->data.len, c->n_pages, c->n_dirty,
				     c->checksum, win->bitmap + c->first_page / 64, error)) {
		g_prefix_error(error,
			       "%s: dirty bitmap window %u pages %" G_GUINT64_FORMAT
			       "+%" G_GUINT64_FORMAT ": ",
			       self->name, c->window, c->first_page, c->n_pages);
		return FALSE;
	}
	self->page_size = c->page_size;
	self->round = c->round;
	return TRUE;
}

guint64
migd_dirty_sink_get_dirty_pages(MigdDirtySink *self)
{
	guint64 n = 0;
	for (guint i = 0; i < self->windows->len; i++) {
		MigdDirtySinkWindow *win = g_ptr_array_index(self->windows, i);
		if (win != NULL)
			n += migd_dirty_count(win->bitmap, win->n_pages);
	}
	return n;
}

guint32
migd_dirty_sink_get_rounds(MigdDirtySink *self)
{
	return self->round;
}

guint
migd_dirty_sink_get_n_windows(MigdDirtySink *self)
{
	return self->windows->len;
}

gint
migd_dirty_sink_dup_fd(MigdDirtySink *self, GError **error)
{
	guint n = self->windows->len;
	g_autofree MigdDirtyFileWindow *windows = g_new0(MigdDirtyFileWindow, MAX(n, 1));

	for (guint i = 0; i < n; i++) {
		MigdDirtySinkWindow *win = g_ptr_array_index(self->windows, i);
		/* a window number never used stays an empty entry */
		if (win == NULL)
			continue;
		windows[i].iova = win->iova;
		windows[i].n_pages = win->n_pages;
		windows[i].bitmap = win->bitmap;
	}
	return migd_dirty_file_new_sealed(self->page_size, self->round, windows, n, error);
}
