/* PLACEHOLDER for integration work in the worktree; not committed */
#include "config.h"

#include "migd-dirty-tracker.h"

#include "migd-dirty-ranges.h"
#include "migd-error.h"
#include "migd-plugin-generic.h"
#include <string.h>

struct _MigdDirtyTracker {
	MigdDevice *device;
	gboolean device_logging;
	gboolean started;
	guint64 page_size;
	GArray *windows;
	MigdDirtyTrackerStats stats;
};

MigdDirtyTracker *
migd_dirty_tracker_start(MigdDevice *device, MigdPlugin *plugin, const MigdIovaRange *ranges,
			 guint n_ranges, MigdDirtyFallback fallback, GError **error)
{
	MigdDirtyTracker *self = g_new0(MigdDirtyTracker, 1);
	g_autoptr(GArray) plan = migd_dirty_ranges_plan(ranges, n_ranges, 0, NULL);
	g_autoptr(GError) e = NULL;
	self->device = g_object_ref(device);
	self->page_size = 4096;
	if (migd_device_dma_logging_start(device, (MigdIovaRange *)plan->data, plan->len, &self->page_size, &e)) {
		self->device_logging = TRUE;
		self->started = TRUE;
	} else if (fallback == MIGD_DIRTY_FALLBACK_REFUSE) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED, "%s: no dirty tracker: %s", migd_device_get_name(device), e->message);
		g_object_unref(self->device);
		g_free(self);
		return NULL;
	} else {
		g_warning("%s: no dirty tracker (%s): all dirty", migd_device_get_name(device), e->message);
		self->page_size = 4096;
	}
	self->windows = g_array_new(FALSE, TRUE, sizeof(MigdDirtyWindow));
	for (guint i = 0; i < plan->len; i++) {
		MigdIovaRange *r = &g_array_index(plan, MigdIovaRange, i);
		MigdDirtyWindow w = {.iova = r->iova, .page_size = self->page_size, .n_pages = r->length / self->page_size};
		w.bitmap = g_new0(guint64, (w.n_pages + 63) / 64);
		g_array_append_val(self->windows, w);
		self->stats.total_pages += w.n_pages;
	}
	return self;
}

const gchar *
migd_dirty_tracker_get_kind(MigdDirtyTracker *self)
{
	return self->device_logging ? "device" : "all-dirty";
}

guint64
migd_dirty_tracker_get_page_size(MigdDirtyTracker *self)
{
	return self->page_size;
}

gboolean
migd_dirty_tracker_sync(MigdDirtyTracker *self, GError **error)
{
	self->stats.syncs++;
	self->stats.dirty_pages = 0;
	for (guint i = 0; i < self->windows->len; i++) {
		MigdDirtyWindow *w = &g_array_index(self->windows, MigdDirtyWindow, i);
		gsize words = (w->n_pages + 63) / 64;
		memset(w->bitmap, 0, words * 8);
		if (!self->device_logging || !migd_device_dma_logging_report(self->device, w->iova, w->n_pages * w->page_size, w->page_size, w->bitmap, NULL)) {
			memset(w->bitmap, 0xff, words * 8);
			if (w->n_pages % 64)
				w->bitmap[words - 1] = (1ull << (w->n_pages % 64)) - 1;
		}
		for (gsize k = 0; k < words; k++)
			self->stats.dirty_pages += __builtin_popcountll(w->bitmap[k]);
	}
	return TRUE;
}

guint
migd_dirty_tracker_get_n_windows(MigdDirtyTracker *self)
{
	return self->windows->len;
}

const MigdDirtyWindow *
migd_dirty_tracker_get_window(MigdDirtyTracker *self, guint index)
{
	return &g_array_index(self->windows, MigdDirtyWindow, index);
}

void
migd_dirty_tracker_get_stats(MigdDirtyTracker *self, MigdDirtyTrackerStats *stats)
{
	*stats = self->stats;
}

void
migd_dirty_tracker_stop(MigdDirtyTracker *self)
{
	if (self->started)
		migd_device_dma_logging_stop(self->device, NULL);
	self->started = FALSE;
}

void
migd_dirty_tracker_free(MigdDirtyTracker *self)
{
	if (self == NULL)
		return;
	migd_dirty_tracker_stop(self);
	for (guint i = 0; i < self->windows->len; i++)
		g_free(g_array_index(self->windows, MigdDirtyWindow, i).bitmap);
	g_array_unref(self->windows);
	g_object_unref(self->device);
	g_free(self);
}
