/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty tracker (dirty/migd-dirty-tracker.c) on the simulator's mlx5,
 * pds and hisi_acc profiles, with the real plugin modules, and on a fake
 * device that records every call (the IOMMU provider, E2BIG, device loss,
 * REPORT slices) until the backends implement the IOMMU's dirty tracking.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migd-dirty-ranges.h"
#include "migd-dirty-tracker.h"
#include "migd-error.h"
#include "migd-plugin-generic.h"
#include "migd-plugin-manager.h"
#include "migd-sim-device-private.h"
#include "migd-test-util.h"
#include "migd-sim-device.h"
#include "migd-sim-dirty.h"
#include "engine-test-util.h"
#include "migd-test-log.h"
#include "migd-test-plugins.h"

#define KiB  ((guint64)1024)
#define MiB  (1024 * KiB)
#define GiB  (1024 * MiB)
#define PAGE (4 * KiB)

/* ---- a plugin whose policy the test sets ---- */

struct _TestPlugin {
	MigdPlugin parent_instance;
	MigdDirtyTrackerKind tracker;
	guint max_ranges;
	guint64 page_size;
	MigdTrackerErrorAction on_error;
};

#define TEST_TYPE_PLUGIN (test_plugin_get_type())
G_DECLARE_FINAL_TYPE(TestPlugin, test_plugin, TEST, PLUGIN, MigdPlugin)
G_DEFINE_TYPE(TestPlugin, test_plugin, MIGD_TYPE_PLUGIN)

static void
test_plugin_get_policy(MigdPlugin *plugin, MigdDevice *device, MigdPluginPolicy *policy)
{
	TestPlugin *self = TEST_PLUGIN(plugin);

	policy->tracker = self->tracker;
	policy->tracker_max_ranges = self->max_ranges;
	policy->tracker_page_size = self->page_size;
	policy->on_tracker_error = self->on_error;
}

static void
test_plugin_init(TestPlugin *self)
{
}

static void
test_plugin_class_init(TestPluginClass *klass)
{
	MIGD_PLUGIN_CLASS(klass)->get_policy = test_plugin_get_policy;
}

static MigdPlugin *
test_plugin_new(MigdDirtyTrackerKind tracker, guint max_ranges, guint64 page_size,
		MigdTrackerErrorAction on_error)
{
	TestPlugin *self = g_object_new(TEST_TYPE_PLUGIN, "name", "test", NULL);

	self->tracker = tracker;
	self->max_ranges = max_ranges;
	self->page_size = page_size;
	self->on_error = on_error;
	return MIGD_PLUGIN(self);
}

/* ---- a fake device that records what the tracker does ---- */

typedef struct {
	guint64 iova;
	guint64 length;
	guint64 page_size;
	gboolean iommu;
} FakeReport;

struct _FakeDevice {
	MigdDevice parent_instance;
	gboolean dma_logging;	  /* what the probe answers */
	MigdSimDirty *dma;	  /* NULL: the DMA logging calls fail with ENOTTY */
	MigdSimDirty *iommu;	  /* NULL: MIGD_ERROR_NOT_SUPPORTED */
	gint dma_start_errno;	  /* every DMA logging START fails so */
	guint e2big_above;	  /* a START with more ranges fails with E2BIG (0: never) */
	gint report_errno;	  /* every REPORT fails so */
	gint stop_errno;	  /* every STOP fails so (after stopping) */
	guint iommu_starts_left;  /* G_MAXUINT: any; then EOPNOTSUPP */
	gboolean check_words;	  /* REPORTs start a whole number of words into their range (pds) */
	guint64 answer_page_size; /* != 0: what a successful START writes back */
	GArray *starts;		  /* guint: n_ranges of each START tried */
	GArray *reports;	  /* FakeReport */
	guint n_dma_stops;
	guint n_iommu_stops;
	guint violations; /* REPORTs unaligned, too large or into an unzeroed buffer */
};

#define FAKE_TYPE_DEVICE (fake_device_get_type())
G_DECLARE_FINAL_TYPE(FakeDevice, fake_device, FAKE, DEVICE, MigdDevice)
G_DEFINE_TYPE(FakeDevice, fake_device, MIGD_TYPE_DEVICE)

static gboolean
fake_probe(MigdDevice *device, MigdDeviceFeatures *features, GError **error)
{
	FakeDevice *self = FAKE_DEVICE(device);

	memset(features, 0, sizeof(*features));
	features->migration = TRUE;
	features->dma_logging = self->dma_logging;
	return TRUE;
}

static gboolean
fake_start(FakeDevice *self, MigdSimDirty *dirty, const MigdIovaRange *ranges, guint n_ranges,
	   guint64 *page_size, GError **error)
{
	g_array_append_val(self->starts, n_ranges);
	if (self->e2big_above != 0 && n_ranges > self->e2big_above) {
		migd_set_errno_error(error, E2BIG, "fake START: %u ranges", n_ranges);
		return FALSE;
	}
	if (!migd_sim_dirty_start(dirty, ranges, n_ranges, page_size, error))
		return FALSE;
	if (self->answer_page_size != 0)
		*page_size = self->answer_page_size;
	return TRUE;
}

static gboolean
fake_report(FakeDevice *self, MigdSimDirty *dirty, gboolean iommu, guint64 iova, guint64 length,
	    guint64 page_size, guint64 *bitmap, GError **error)
{
	FakeReport r = {.iova = iova, .length = length, .page_size = page_size, .iommu = iommu};
	guint64 words = migd_sim_dirty_report_bitmap_words(length, page_size);

	g_array_append_val(self->reports, r);
	if (page_size == 0 || iova % page_size != 0 || length % page_size != 0 ||
	    length / page_size > (guint64)MIGD_DIRTY_TRACKER_REPORT_BYTES * 8)
		self->violations++;
	for (guint64 w = 0; w < words; w++) {
		if (bitmap[w] != 0) {
			self->violations++;
			break;
		}
	}
	if (self->check_words) {
		guint n = 0;
		const MigdIovaRange *tracked = migd_sim_dirty_get_tracked_ranges(dirty, &n);
		gboolean ok = FALSE;
		for (guint i = 0; i < n; i++) {
			if (iova >= tracked[i].iova && iova < tracked[i].iova + tracked[i].length)
				ok = (iova - tracked[i].iova) % (64 * page_size) == 0;
		}
		if (!ok)
			self->violations++;
	}
	if (self->report_errno != 0) {
		migd_set_errno_error(error, self->report_errno, "fake REPORT");
		return FALSE;
	}
	return migd_sim_dirty_report(dirty, iova, length, page_size, bitmap, error);
}

static gboolean
fake_dma_logging_start(MigdDevice *device, const MigdIovaRange *ranges, guint n_ranges,
		       guint64 *page_size, GError **error)
{
	FakeDevice *self = FAKE_DEVICE(device);

	if (self->dma == NULL) {
		migd_set_errno_error(error, ENOTTY, "fake: no DMA logging");
		return FALSE;
	}
	if (self->dma_start_errno != 0) {
		migd_set_errno_error(error, self->dma_start_errno, "fake DMA_LOGGING_START");
		return FALSE;
	}
	return fake_start(self, self->dma, ranges, n_ranges, page_size, error);
}

static gboolean
fake_dma_logging_stop(MigdDevice *device, GError **error)
{
	FakeDevice *self = FAKE_DEVICE(device);

	if (self->dma == NULL) {
		migd_set_errno_error(error, ENOTTY, "fake: no DMA logging");
		return FALSE;
	}
	self->n_dma_stops++;
	migd_sim_dirty_stop(self->dma);
	if (self->stop_errno != 0) {
		migd_set_errno_error(error, self->stop_errno, "fake DMA_LOGGING_STOP");
		return FALSE;
	}
	return TRUE;
}

static gboolean
fake_dma_logging_report(MigdDevice *device, guint64 iova, guint64 length, guint64 page_size,
			guint64 *bitmap, GError **error)
{
	FakeDevice *self = FAKE_DEVICE(device);

	if (self->dma == NULL) {
		migd_set_errno_error(error, ENOTTY, "fake: no DMA logging");
		return FALSE;
	}
	return fake_report(self, self->dma, FALSE, iova, length, page_size, bitmap, error);
}

static gboolean
fake_iommu_dirty_start(MigdDevice *device, const MigdIovaRange *ranges, guint n_ranges,
		       guint64 *page_size, GError **error)
{
	FakeDevice *self = FAKE_DEVICE(device);

	if (self->iommu == NULL) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "fake: no IOMMU dirty tracking");
		return FALSE;
	}
	if (self->iommu_starts_left == 0) {
		migd_set_errno_error(error, EOPNOTSUPP, "fake IOMMU start");
		return FALSE;
	}
	if (!fake_start(self, self->iommu, ranges, n_ranges, page_size, error))
		return FALSE;
	if (self->iommu_starts_left != G_MAXUINT)
		self->iommu_starts_left--;
	return TRUE;
}

static gboolean
fake_iommu_dirty_stop(MigdDevice *device, GError **error)
{
	FakeDevice *self = FAKE_DEVICE(device);

	if (self->iommu == NULL) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "fake: no IOMMU dirty tracking");
		return FALSE;
	}
	self->n_iommu_stops++;
	migd_sim_dirty_stop(self->iommu);
	if (self->stop_errno != 0) {
		migd_set_errno_error(error, self->stop_errno, "fake IOMMU stop");
		return FALSE;
	}
	return TRUE;
}

static gboolean
fake_iommu_dirty_report(MigdDevice *device, guint64 iova, guint64 length, guint64 page_size,
			gboolean no_clear, guint64 *bitmap, GError **error)
{
	FakeDevice *self = FAKE_DEVICE(device);

	if (self->iommu == NULL) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "fake: no IOMMU dirty tracking");
		return FALSE;
	}
	/* the tracker always reads and clears */
	if (no_clear)
		self->violations++;
	return fake_report(self, self->iommu, TRUE, iova, length, page_size, bitmap, error);
}

static void
fake_device_finalize(GObject *object)
{
	FakeDevice *self = FAKE_DEVICE(object);

	g_clear_pointer(&self->dma, migd_sim_dirty_free);
	g_clear_pointer(&self->iommu, migd_sim_dirty_free);
	g_array_unref(self->starts);
	g_array_unref(self->reports);
	G_OBJECT_CLASS(fake_device_parent_class)->finalize(object);
}

static void
fake_device_init(FakeDevice *self)
{
	self->starts = g_array_new(FALSE, FALSE, sizeof(guint));
	self->reports = g_array_new(FALSE, FALSE, sizeof(FakeReport));
	self->iommu_starts_left = G_MAXUINT;
}

static void
fake_device_class_init(FakeDeviceClass *klass)
{
	MigdDeviceClass *device_class = MIGD_DEVICE_CLASS(klass);

	G_OBJECT_CLASS(klass)->finalize = fake_device_finalize;
	device_class->probe = fake_probe;
	device_class->dma_logging_start = fake_dma_logging_start;
	device_class->dma_logging_stop = fake_dma_logging_stop;
	device_class->dma_logging_report = fake_dma_logging_report;
	device_class->iommu_dirty_start = fake_iommu_dirty_start;
	device_class->iommu_dirty_stop = fake_iommu_dirty_stop;
	device_class->iommu_dirty_report = fake_iommu_dirty_report;
}

/* DMA logging and/or an IOMMU tracker, any number of ranges, page sizes as asked, pds's report
 * rule */
static FakeDevice *
fake_new(const gchar *name, gboolean dma_logging, gboolean iommu)
{
	const MigdSimDirtyLimits limits = {.max_ranges = G_MAXUINT, .report_single_range = TRUE};
	FakeDevice *self = g_object_new(FAKE_TYPE_DEVICE, NULL);

	migd_device_set_name(MIGD_DEVICE(self), name);
	self->dma_logging = dma_logging;
	if (dma_logging)
		self->dma = migd_sim_dirty_new(&limits);
	if (iommu)
		self->iommu = migd_sim_dirty_new(&limits);
	return self;
}

/* ---- helpers ---- */

/*
 * a simulated device whose platform IOMMU cannot track dirty pages (the knob
 * iommu_dirty=0 where the simulator has the IOMMU's tracking, as is otherwise)
 */
static MigdDevice *
sim_new_no_iommu(const gchar *spec, const gchar *name)
{
	g_autofree gchar *full = g_strdup_printf("%s,iommu_dirty=0", spec);
	MigdSimDevice *dev = migd_sim_device_new_from_string(full, NULL);

	if (dev == NULL)
		return migd_test_sim_device(spec, name);
	migd_device_set_name(MIGD_DEVICE(dev), name);
	return MIGD_DEVICE(dev);
}

/* the device's DMA writes landing in guest memory, at chosen addresses */
static void
sim_write(MigdDevice *dev, guint64 iova, guint64 length)
{
	MigdSimDevice *sim = MIGD_SIM_DEVICE(dev);

	g_mutex_lock(&sim->lock);
	migd_sim_dirty_record_dma_write(sim->dirty, iova, length);
	g_mutex_unlock(&sim->lock);
}

static gboolean
sim_active(MigdDevice *dev)
{
	return migd_sim_device_dirty_is_active(MIGD_SIM_DEVICE(dev));
}

/* what the simulated driver tracks after its own combining */
static GArray *
sim_tracked(MigdDevice *dev)
{
	MigdSimDevice *sim = MIGD_SIM_DEVICE(dev);
	GArray *out = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	const MigdIovaRange *r;
	guint n = 0;

	g_mutex_lock(&sim->lock);
	r = migd_sim_dirty_get_tracked_ranges(sim->dirty, &n);
	g_array_append_vals(out, r, n);
	g_mutex_unlock(&sim->lock);
	return out;
}

/*
 * whether the backend has the IOMMU's dirty tracking (the simulator's is
 * another piece of work): tests of the fallback to all-dirty need it absent
 */
static gboolean
iommu_supported(MigdDevice *dev, const MigdIovaRange *ranges, guint n)
{
	guint64 page_size = PAGE;

	if (!migd_device_iommu_dirty_start(dev, ranges, n, &page_size, NULL))
		return FALSE;
	assert_true(migd_device_iommu_dirty_stop(dev, NULL));
	return TRUE;
}

static MigdDirtyTracker *
tracker_ok(MigdDevice *dev, MigdPlugin *plugin, const MigdIovaRange *ranges, guint n,
	   MigdDirtyFallback fallback)
{
	g_autoptr(GError) error = NULL;
	MigdDirtyTracker *t = migd_dirty_tracker_start(dev, plugin, ranges, n, fallback, &error);

	if (t == NULL)
		fail_msg("tracker: %s", error->message);
	return t;
}

static void
sync_ok(MigdDirtyTracker *t)
{
	g_autoptr(GError) error = NULL;
	if (!migd_dirty_tracker_sync(t, &error))
		fail_msg("sync: %s", error->message);
}

static MigdDirtyTrackerStats
stats_of(MigdDirtyTracker *t)
{
	MigdDirtyTrackerStats stats;
	migd_dirty_tracker_get_stats(t, &stats);
	return stats;
}

static gboolean
bit_is_set(const MigdDirtyWindow *w, guint64 page)
{
	return (w->bitmap[page / 64] >> (page % 64)) & 1;
}

/*
 * The windows hold exactly the pages that contain one of @dirty (IOVAs): no more
 * (gaps, other windows), no less, and nothing past n_pages.
 */
static void
assert_dirty_exactly(MigdDirtyTracker *t, const guint64 *dirty, guint n_dirty)
{
	guint64 expected_total = 0;

	for (guint i = 0; i < migd_dirty_tracker_get_n_windows(t); i++) {
		const MigdDirtyWindow *w = migd_dirty_tracker_get_window(t, i);
		guint64 end = w->iova + w->n_pages * w->page_size;
		guint64 n_words = (w->n_pages + 63) / 64;
		g_autofree guint64 *expect = g_new0(guint64, n_words);

		for (guint d = 0; d < n_dirty; d++) {
			if (dirty[d] >= w->iova && dirty[d] < end) {
				guint64 p = (dirty[d] - w->iova) / w->page_size;
				expect[p / 64] |= 1ull << (p % 64);
			}
		}
		for (guint64 k = 0; k < n_words; k++) {
			if (expect[k] != w->bitmap[k])
				fail_msg("window %u (0x%" G_GINT64_MODIFIER
					 "x): word %" G_GUINT64_FORMAT
					 " is 0x%016" G_GINT64_MODIFIER
					 "x, expected 0x%016" G_GINT64_MODIFIER "x",
					 i, w->iova, k, w->bitmap[k], expect[k]);
			expected_total += (guint64)__builtin_popcountll(expect[k]);
		}
	}
	assert_int_equal(stats_of(t).dirty_pages, expected_total);
}

static void
assert_all_dirty(MigdDirtyTracker *t)
{
	for (guint i = 0; i < migd_dirty_tracker_get_n_windows(t); i++) {
		const MigdDirtyWindow *w = migd_dirty_tracker_get_window(t, i);
		for (guint64 p = 0; p < w->n_pages; p++)
			assert_true(bit_is_set(w, p));
		/* the tail of the last word stays zero */
		if (w->n_pages % 64 != 0)
			assert_int_equal(w->bitmap[w->n_pages / 64] >> (w->n_pages % 64), 0);
	}
	assert_int_equal(stats_of(t).dirty_pages, stats_of(t).total_pages);
}

static void
assert_windows_are(MigdDirtyTracker *t, const MigdIovaRange *expect, guint n, guint64 page_size)
{
	assert_int_equal(migd_dirty_tracker_get_n_windows(t), n);
	for (guint i = 0; i < n; i++) {
		const MigdDirtyWindow *w = migd_dirty_tracker_get_window(t, i);
		assert_int_equal(w->iova, expect[i].iova);
		assert_int_equal(w->page_size, page_size);
		assert_int_equal(w->n_pages * page_size, expect[i].length);
	}
}

static void
assert_ranges_equal(GArray *a, GArray *b)
{
	assert_int_equal(a->len, b->len);
	for (guint i = 0; i < a->len; i++) {
		MigdIovaRange ra = g_array_index(a, MigdIovaRange, i);
		MigdIovaRange rb = g_array_index(b, MigdIovaRange, i);
		assert_int_equal(ra.iova, rb.iova);
		assert_int_equal(ra.length, rb.length);
	}
}

/* seven mappings, gaps of 64K, 768K, ~1G, 1M, ~6G, 4M (unsorted on purpose) */
static const MigdIovaRange seven[] = {
    {.iova = 2 * GiB, .length = 1 * MiB},
    {.iova = 1 * GiB, .length = 64 * KiB},
    {.iova = 1 * GiB + 128 * KiB, .length = 128 * KiB},
    {.iova = 1 * GiB + 1 * MiB, .length = 64 * KiB},
    {.iova = 2 * GiB + 2 * MiB, .length = 1 * MiB},
    {.iova = 8 * GiB, .length = 4 * MiB},
    {.iova = 8 * GiB + 8 * MiB, .length = 1 * MiB},
};

static GArray *
plan_of(const MigdIovaRange *ranges, guint n, guint max)
{
	g_autoptr(GError) error = NULL;
	GArray *plan = migd_dirty_ranges_plan(ranges, n, max, &error);
	g_assert_no_error(error);
	return plan;
}

/* ---- device provider on mlx5 ---- */

/* our own limit of 4: the three smallest gaps close, nothing else is tracked */
static void
test_mlx5_merges_to_limit(void **state)
{
	g_autoptr(MigdPluginManager) manager =
	    migd_test_plugins_new("[plugin mlx5]\ntracker-max-ranges=4\n");
	g_autoptr(MigdDevice) dev = migd_test_sim_device("mlx5:seed=1", "sim-mlx5-a");
	g_autoptr(MigdDirtyTracker) t = NULL;
	g_autoptr(GArray) plan = plan_of(seven, G_N_ELEMENTS(seven), 4);
	g_autoptr(GArray) all = plan_of(seven, G_N_ELEMENTS(seven), 0);
	g_autoptr(GArray) tracked = NULL;
	const guint64 dirty[] = {1 * GiB + 4 * KiB,	1 * GiB + 128 * KiB, 1 * GiB + 1 * MiB,
				 2 * GiB + 1 * MiB - 1, 2 * GiB + 2 * MiB,   8 * GiB + 3 * MiB,
				 8 * GiB + 8 * MiB};
	/* tracked (the merged gaps) but not mapped */
	const guint64 gaps[] = {1 * GiB + 64 * KiB, 1 * GiB + 512 * KiB, 2 * GiB + 1 * MiB};
	MigdDirtyTrackerStats stats;

	migd_plugin_manager_assign(manager, dev);
	t = tracker_ok(dev, NULL, seven, G_N_ELEMENTS(seven), MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "device");
	assert_int_equal(migd_dirty_tracker_get_page_size(t), PAGE);
	assert_true(sim_active(dev));

	/* 64K, 768K and 1M close: the fewest bytes four ranges can cover */
	assert_int_equal(plan->len, 4);
	tracked = sim_tracked(dev);
	assert_ranges_equal(tracked, plan);
	stats = stats_of(t);
	assert_int_equal(stats.tracked_bytes, 1 * MiB + 64 * KiB + 3 * MiB + 4 * MiB + 1 * MiB);
	assert_int_equal(stats.tracked_bytes,
			 migd_dirty_ranges_total((const MigdIovaRange *)plan->data, plan->len));
	/* the windows are the mappings, not the tracked ranges */
	assert_windows_are(t, (const MigdIovaRange *)all->data, all->len, PAGE);
	assert_int_equal(stats.total_pages,
			 migd_dirty_ranges_total(seven, G_N_ELEMENTS(seven)) / PAGE);

	for (guint i = 0; i < G_N_ELEMENTS(dirty); i++)
		sim_write(dev, dirty[i], 1);
	for (guint i = 0; i < G_N_ELEMENTS(gaps); i++)
		sim_write(dev, gaps[i], PAGE);
	sync_ok(t);
	assert_dirty_exactly(t, dirty, G_N_ELEMENTS(dirty));
	assert_int_equal(stats_of(t).dirty_pages, 7);

	/* read and clear: nothing new, nothing dirty (the gap pages were cleared too) */
	sync_ok(t);
	assert_dirty_exactly(t, NULL, 0);
	sim_write(dev, 8 * GiB + 8 * MiB + 12 * KiB, 2);
	sync_ok(t);
	assert_dirty_exactly(t, (const guint64[]){8 * GiB + 8 * MiB + 12 * KiB}, 1);
	stats = stats_of(t);
	assert_int_equal(stats.syncs, 3);
	assert_int_equal(stats.provider_errors, 0);
	assert_int_equal(migd_test_log_count(MIGD_TEST_LOG_WARNING), 0);

	g_clear_pointer(&t, migd_dirty_tracker_free);
	assert_false(sim_active(dev));
}

/* mlx5's default (no limit of ours): all seven go down, the driver combines as we would */
static void
test_mlx5_driver_combines(void **state)
{
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
	g_autoptr(MigdDevice) dev = migd_test_sim_device("mlx5:seed=2", "sim-mlx5-b");
	g_autoptr(MigdDirtyTracker) t = NULL;
	g_autoptr(GArray) plan4 = plan_of(seven, G_N_ELEMENTS(seven), 4);
	g_autoptr(GArray) tracked = NULL;
	const guint64 dirty[] = {1 * GiB, 8 * GiB + 9 * MiB - PAGE};

	migd_plugin_manager_assign(manager, dev);
	t = tracker_ok(dev, NULL, seven, G_N_ELEMENTS(seven), MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "device");
	/* what we asked for: the mappings themselves */
	assert_int_equal(stats_of(t).tracked_bytes,
			 migd_dirty_ranges_total(seven, G_N_ELEMENTS(seven)));
	/* what the firmware's four ranges hold: the kernel's smallest-gap merge = our plan */
	tracked = sim_tracked(dev);
	assert_ranges_equal(tracked, plan4);

	for (guint i = 0; i < G_N_ELEMENTS(dirty); i++)
		sim_write(dev, dirty[i], PAGE);
	sim_write(dev, 1 * GiB + 64 * KiB, 64 * KiB); /* a gap the driver merged */
	sync_ok(t);
	assert_dirty_exactly(t, dirty, G_N_ELEMENTS(dirty));
	migd_dirty_tracker_free(g_steal_pointer(&t));
	assert_false(sim_active(dev));
}

/* the public DMA generator: sequential writes walk the tracked space, gap included */
static void
test_mlx5_sequential_dma(void **state)
{
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
	g_autoptr(MigdDevice) dev =
	    migd_test_sim_device("mlx5:seed=3,dma_pattern=sequential", "sim-mlx5-c");
	g_autoptr(MigdDirtyTracker) t = NULL;
	/* A and B 64K apart close first (five mappings, four firmware ranges) */
	const MigdIovaRange mapped[] = {
	    {.iova = 1 * MiB, .length = 64 * KiB},	       /* A: 16 pages */
	    {.iova = 1 * MiB + 128 * KiB, .length = 64 * KiB}, /* B */
	    {.iova = 64 * MiB, .length = 64 * KiB},
	    {.iova = 512 * MiB, .length = 64 * KiB},
	    {.iova = 1 * GiB, .length = 64 * KiB},
	};
	g_autofree guint64 *dirty = g_new(guint64, 24);

	migd_plugin_manager_assign(manager, dev);
	t = tracker_ok(dev, NULL, mapped, G_N_ELEMENTS(mapped), MIGD_DIRTY_FALLBACK_REFUSE);
	/* 40 pages from the first tracked byte: A's 16, the gap's 16, B's first 8 */
	assert_int_equal(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 40 * PAGE), 40);
	for (guint i = 0; i < 16; i++)
		dirty[i] = 1 * MiB + i * PAGE;
	for (guint i = 0; i < 8; i++)
		dirty[16 + i] = 1 * MiB + 128 * KiB + i * PAGE;
	sync_ok(t);
	assert_dirty_exactly(t, dirty, 24);
	assert_int_equal(stats_of(t).dirty_pages, 24);
	sync_ok(t);
	assert_int_equal(stats_of(t).dirty_pages, 0);
}

/* more ranges than the vfio core takes (256): E2BIG, then half as many */
static void
test_e2big_halves(void **state)
{
	g_autoptr(MigdDevice) dev = migd_test_sim_device("mlx5:seed=4", "sim-mlx5-d");
	g_autoptr(MigdDirtyTracker) t = NULL;
	g_autofree MigdIovaRange *mapped = g_new(MigdIovaRange, 300);
	g_autoptr(GArray) plan150 = NULL;
	const guint64 dirty[] = {0, 299 * 16 * KiB + 4 * KiB, 150 * 16 * KiB};

	for (guint i = 0; i < 300; i++)
		mapped[i] = (MigdIovaRange){.iova = i * 16 * KiB, .length = 8 * KiB};
	plan150 = plan_of(mapped, 300, 150);
	/* no plugin assigned: the generic one, which sets no limit */
	t = tracker_ok(dev, NULL, mapped, 300, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "device");
	assert_true(
	    migd_test_log_has(MIGD_TEST_LOG_OTHER, "sim-mlx5-d", "refused 300 ranges", NULL));
	assert_true(migd_test_log_has(MIGD_TEST_LOG_OTHER, "sim-mlx5-d", "trying 150", NULL));
	assert_int_equal(stats_of(t).tracked_bytes,
			 migd_dirty_ranges_total((const MigdIovaRange *)plan150->data, 150));
	assert_int_equal(migd_dirty_tracker_get_n_windows(t), 300);

	for (guint i = 0; i < G_N_ELEMENTS(dirty); i++)
		sim_write(dev, dirty[i], 1);
	sim_write(dev, 8 * KiB, 8 * KiB); /* merged gap */
	sync_ok(t);
	assert_dirty_exactly(t, dirty, G_N_ELEMENTS(dirty));
	assert_int_equal(migd_test_log_count(MIGD_TEST_LOG_WARNING), 0);
	migd_dirty_tracker_stop(t);
	assert_false(sim_active(dev));
}

/* ask 1 GiB: mlx5 clamps to its 2 MiB maximum; ask 1 KiB: up to its 4 KiB minimum */
static void
test_mlx5_page_size_clamp(void **state)
{
	g_autoptr(MigdPluginManager) manager =
	    migd_test_plugins_new("[plugin mlx5]\ntracker-page-size=1G\n");
	g_autoptr(MigdDevice) dev = migd_test_sim_device("mlx5:seed=5", "sim-mlx5-e");
	g_autoptr(MigdDevice) dev2 = migd_test_sim_device("mlx5:seed=6", "sim-mlx5-f");
	g_autoptr(MigdPlugin) small =
	    test_plugin_new(MIGD_DIRTY_TRACKER_DEVICE, 0, 1024, MIGD_TRACKER_ERROR_ALL_DIRTY);
	g_autoptr(MigdDirtyTracker) t = NULL;
	g_autoptr(MigdDirtyTracker) t2 = NULL;
	g_autoptr(GArray) tracked = NULL;
	const MigdIovaRange mapped[] = {
	    {.iova = 0, .length = 3 * GiB},
	    {.iova = 4 * GiB, .length = 2 * GiB},
	    {.iova = 6 * GiB + 512 * MiB, .length = 4 * MiB},
	};
	const guint64 dirty[] = {6 * GiB + 513 * MiB, 2 * GiB + 3 * MiB};

	migd_plugin_manager_assign(manager, dev);
	t = tracker_ok(dev, NULL, mapped, G_N_ELEMENTS(mapped), MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "device");
	assert_int_equal(migd_dirty_tracker_get_page_size(t), 2 * MiB);
	/* START had 1 GiB-aligned ranges: the vfio core checks them against the hint */
	tracked = sim_tracked(dev);
	assert_int_equal(tracked->len, 2);
	assert_int_equal(g_array_index(tracked, MigdIovaRange, 1).iova, 4 * GiB);
	assert_int_equal(g_array_index(tracked, MigdIovaRange, 1).length, 3 * GiB);
	/* the windows at the driver's page size: 1536, 1024 and 2 pages */
	assert_windows_are(t, mapped, G_N_ELEMENTS(mapped), 2 * MiB);
	sim_write(dev, 6 * GiB + 100 * MiB, PAGE); /* tracked, not mapped */
	for (guint i = 0; i < G_N_ELEMENTS(dirty); i++)
		sim_write(dev, dirty[i], PAGE);
	sync_ok(t);
	assert_dirty_exactly(t, dirty, G_N_ELEMENTS(dirty));

	t2 = tracker_ok(dev2, small, mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t2), "device");
	assert_int_equal(migd_dirty_tracker_get_page_size(t2), 4 * KiB);
	assert_int_equal(migd_dirty_tracker_get_window(t2, 0)->n_pages, 3 * GiB / PAGE);
	sim_write(dev2, 3 * GiB - 1, 1);
	sync_ok(t2);
	assert_dirty_exactly(t2, (const guint64[]){3 * GiB - 1}, 1);
	g_clear_pointer(&t, migd_dirty_tracker_free);
	g_clear_pointer(&t2, migd_dirty_tracker_free);
	assert_false(sim_active(dev));
	assert_false(sim_active(dev2));
}

/* pds takes 1 KiB as is, which no REPORT can use: stopped, and the fallbacks run */
static void
test_pds_unusable_page_size(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new_no_iommu("pds:seed=1", "sim-pds-a");
	g_autoptr(MigdPlugin) small =
	    test_plugin_new(MIGD_DIRTY_TRACKER_DEVICE, 0, 1024, MIGD_TRACKER_ERROR_ALL_DIRTY);
	g_autoptr(MigdDirtyTracker) t = NULL;
	const MigdIovaRange mapped = {.iova = 0, .length = 1 * MiB};
	g_autoptr(GError) error = NULL;

	assert_false(iommu_supported(dev, &mapped, 1));
	assert_null(
	    migd_dirty_tracker_start(dev, small, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	assert_non_null(strstr(error->message, "page size 1024"));
	assert_false(sim_active(dev));

	t = tracker_ok(dev, small, &mapped, 1, MIGD_DIRTY_FALLBACK_ALLOW);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "all-dirty");
	assert_false(sim_active(dev));
	assert_true(migd_test_log_has(MIGD_TEST_LOG_WARNING, "sim-pds-a",
				      "device DMA logging cannot start", NULL));
	assert_true(migd_test_log_has(MIGD_TEST_LOG_WARNING, "sim-pds-a",
				      "IOMMU dirty tracking cannot start", NULL));
}

/* ---- errors mid-migration ---- */

static void
test_mlx5_eio_restarts(void **state)
{
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
	g_autoptr(MigdDevice) dev = migd_test_sim_device("mlx5:seed=7,report_eio=1", "sim-mlx5-g");
	g_autoptr(MigdDirtyTracker) t = NULL;
	const MigdIovaRange mapped[] = {{.iova = 0, .length = 2 * MiB},
					{.iova = 1 * GiB, .length = 1 * MiB}};
	MigdDirtyTrackerStats stats;

	migd_plugin_manager_assign(manager, dev);
	t = tracker_ok(dev, NULL, mapped, 2, MIGD_DIRTY_FALLBACK_REFUSE);
	sim_write(dev, 0, 1);

	/* REPORT -> EIO: this sync counts everything, the plugin restarts the tracker */
	sync_ok(t);
	assert_all_dirty(t);
	stats = stats_of(t);
	assert_int_equal(stats.provider_errors, 1);
	assert_int_equal(stats.restarts, 1);
	assert_int_equal(stats.dirty_pages, (3 * MiB) / PAGE);
	assert_true(migd_test_log_has(MIGD_TEST_LOG_WARNING, "sim-mlx5-g", "REPORT failed", NULL));
	assert_true(
	    migd_test_log_has(MIGD_TEST_LOG_OTHER, "sim-mlx5-g", "DMA logging restarted", NULL));
	assert_true(sim_active(dev));
	assert_string_equal(migd_dirty_tracker_get_kind(t), "device");

	/* precise again */
	sim_write(dev, 1 * GiB + 8 * KiB, 1);
	sync_ok(t);
	assert_dirty_exactly(t, (const guint64[]){1 * GiB + 8 * KiB}, 1);
	stats = stats_of(t);
	assert_int_equal(stats.provider_errors, 1);
	assert_int_equal(stats.syncs, 2);
	g_clear_pointer(&t, migd_dirty_tracker_free);
	assert_false(sim_active(dev));
}

/* the generic rule leaves the tracker alone: every sync all dirty */
static void
test_generic_eio_persists(void **state)
{
	g_autoptr(MigdDevice) dev = migd_test_sim_device("mlx5:seed=8,report_eio=1", "sim-mlx5-h");
	g_autoptr(MigdDirtyTracker) t = NULL;
	const MigdIovaRange mapped = {.iova = 16 * MiB, .length = 260 * KiB};
	MigdDirtyTrackerStats stats;

	t = tracker_ok(dev, NULL, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE);
	for (guint i = 1; i <= 3; i++) {
		sync_ok(t);
		assert_all_dirty(t);
		stats = stats_of(t);
		assert_int_equal(stats.provider_errors, i);
		assert_int_equal(stats.restarts, 0);
		assert_int_equal(stats.syncs, i);
	}
	assert_int_equal(stats.total_pages, 65);
	assert_true(sim_active(dev));
	g_clear_pointer(&t, migd_dirty_tracker_free);
	assert_false(sim_active(dev));
}

/* ---- no DMA logging ---- */

static void
test_hisi_fallback(void **state)
{
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
	g_autoptr(MigdDevice) hisi = sim_new_no_iommu("hisi_acc:seed=1", "sim-hisi-a");
	g_autoptr(MigdDevice) plain = sim_new_no_iommu("hisi_acc:seed=2", "sim-hisi-b");
	const MigdIovaRange mapped[] = {{.iova = 0, .length = 100 * PAGE},
					{.iova = 4 * GiB, .length = 30 * PAGE}};

	migd_plugin_manager_assign(manager, hisi);
	assert_false(iommu_supported(hisi, mapped, 2));
	assert_false(iommu_supported(plain, mapped, 2));
	for (guint round = 0; round < 2; round++) {
		MigdDevice *dev = round == 0 ? hisi : plain; /* the hisi_acc plugin, generic */
		const gchar *name = migd_device_get_name(dev);
		g_autoptr(MigdDirtyTracker) t = NULL;
		g_autoptr(GError) error = NULL;

		assert_null(migd_dirty_tracker_start(dev, NULL, mapped, 2,
						     MIGD_DIRTY_FALLBACK_REFUSE, &error));
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
		assert_non_null(strstr(error->message, name));
		assert_non_null(strstr(error->message, "IOMMU"));

		t = tracker_ok(dev, NULL, mapped, 2, MIGD_DIRTY_FALLBACK_ALLOW);
		assert_string_equal(migd_dirty_tracker_get_kind(t), "all-dirty");
		assert_true(migd_test_log_has(MIGD_TEST_LOG_WARNING, name,
					      "IOMMU dirty tracking cannot start", NULL));
		assert_int_equal(stats_of(t).tracked_bytes, 0);
		assert_int_equal(stats_of(t).total_pages,
				 130 * PAGE / migd_dirty_tracker_get_page_size(t));
		for (guint i = 0; i < 2; i++) {
			sync_ok(t);
			assert_all_dirty(t);
		}
		assert_int_equal(stats_of(t).provider_errors, 0);
	}
}

/* hisi_acc with the simulator's IOMMU dirty tracking, where it has one */
static void
test_hisi_iommu(void **state)
{
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
	MigdSimDevice *with_dma =
	    migd_sim_device_new_from_string("hisi_acc:seed=3,dma_pattern=sequential", NULL);
	g_autoptr(MigdDevice) hisi = with_dma != NULL
					 ? MIGD_DEVICE(with_dma)
					 : migd_test_sim_device("hisi_acc:seed=3", "sim-hisi-c");
	g_autoptr(MigdDirtyTracker) t = NULL;
	const MigdIovaRange mapped[] = {{.iova = 4 * GiB, .length = 30 * PAGE},
					{.iova = 0, .length = 100 * PAGE}};

	migd_device_set_name(hisi, "sim-hisi-c");
	migd_plugin_manager_assign(manager, hisi);
	MIGD_TEST_SKIP_IF(!iommu_supported(hisi, mapped, 2),
			  "the simulated IOMMU cannot track these mappings");
	t = tracker_ok(hisi, NULL, mapped, 2, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "iommu");
	sync_ok(t);
	if (with_dma != NULL) {
		/* sequential DMA over the IOMMU's mappings: the first ten pages */
		const MigdDirtyWindow *w = migd_dirty_tracker_get_window(t, 0);
		assert_int_equal(migd_sim_device_dma_write(with_dma, 10 * PAGE),
				 10 * PAGE / w->page_size);
		sync_ok(t);
		w = migd_dirty_tracker_get_window(t, 0);
		assert_int_equal(w->iova, 0);
		assert_int_equal(stats_of(t).dirty_pages, 10 * PAGE / w->page_size);
		for (guint64 p = 0; p < 10 * PAGE / w->page_size; p++)
			assert_true(bit_is_set(w, p));
	}
	sync_ok(t);
	assert_int_equal(stats_of(t).dirty_pages, 0);
	assert_int_equal(stats_of(t).provider_errors, 0);
	assert_int_equal(migd_test_log_count(MIGD_TEST_LOG_WARNING), 0);
	migd_dirty_tracker_stop(t);
	/* stopped once: a new START is accepted */
	assert_true(iommu_supported(hisi, mapped, 2));
}

/* ---- pds: every REPORT inside one of its ranges ---- */

static void
test_pds_single_range_reports(void **state)
{
	g_autoptr(MigdDevice) dev = migd_test_sim_device("pds:seed=2", "sim-pds-b");
	g_autoptr(MigdDevice) dev2 = migd_test_sim_device("pds:seed=3", "sim-pds-c");
	g_autoptr(MigdPlugin) two =
	    test_plugin_new(MIGD_DIRTY_TRACKER_DEVICE, 2, 0, MIGD_TRACKER_ERROR_ALL_DIRTY);
	g_autoptr(MigdDevice) dev3 = migd_test_sim_device("pds:seed=5", "sim-pds-e");
	g_autoptr(MigdPlugin) one =
	    test_plugin_new(MIGD_DIRTY_TRACKER_DEVICE, 1, 0, MIGD_TRACKER_ERROR_ALL_DIRTY);
	g_autoptr(MigdDirtyTracker) t = NULL;
	g_autoptr(MigdDirtyTracker) t2 = NULL;
	g_autoptr(MigdDirtyTracker) t3 = NULL;
	g_autoptr(GArray) plan2 = NULL;
	MigdIovaRange mapped[12];
	guint64 dirty[12];
	/* two windows in one 64-page block of one tracked range: one REPORT feeds both */
	const MigdIovaRange close[] = {{.iova = 1 * MiB, .length = 2 * PAGE},
				       {.iova = 1 * MiB + 4 * PAGE, .length = 2 * PAGE}};
	const guint64 close_dirty[] = {1 * MiB + PAGE, 1 * MiB + 4 * PAGE};

	/* twelve mappings at odd offsets; pds tracks eight regions, so it combines */
	for (guint i = 0; i < 12; i++) {
		mapped[i] = (MigdIovaRange){.iova = i * 1 * MiB + (i + 1) * 12 * KiB,
					    .length = (i + 3) * PAGE};
		dirty[i] = mapped[i].iova + (i % 3) * PAGE;
	}
	t = tracker_ok(dev, NULL, mapped, 12, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "device");
	/* ours: two ranges, so each holds windows that start anywhere inside it */
	t2 = tracker_ok(dev2, two, mapped, 12, MIGD_DIRTY_FALLBACK_REFUSE);
	plan2 = plan_of(mapped, 12, 2);
	assert_int_equal(stats_of(t2).tracked_bytes,
			 migd_dirty_ranges_total((const MigdIovaRange *)plan2->data, 2));
	for (guint round = 0; round < 3; round++) {
		for (guint i = 0; i < 12; i++) {
			sim_write(dev, dirty[i], 1);
			sim_write(dev2, dirty[i], 1);
			/* between two mappings: merged by pds or by us */
			sim_write(dev, mapped[i].iova + mapped[i].length, PAGE);
			sim_write(dev2, mapped[i].iova + mapped[i].length, PAGE);
		}
		sync_ok(t);
		sync_ok(t2);
		assert_dirty_exactly(t, dirty, 12);
		assert_dirty_exactly(t2, dirty, 12);
	}
	assert_int_equal(stats_of(t).provider_errors, 0);
	assert_int_equal(stats_of(t2).provider_errors, 0);

	t3 = tracker_ok(dev3, one, close, 2, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_int_equal(migd_dirty_tracker_get_n_windows(t3), 2);
	for (guint i = 0; i < G_N_ELEMENTS(close_dirty); i++)
		sim_write(dev3, close_dirty[i], 1);
	sim_write(dev3, 1 * MiB + 2 * PAGE, 2 * PAGE); /* the gap between them */
	sync_ok(t3);
	assert_dirty_exactly(t3, close_dirty, G_N_ELEMENTS(close_dirty));
	assert_int_equal(stats_of(t3).provider_errors, 0);

	assert_int_equal(migd_test_log_count(MIGD_TEST_LOG_WARNING), 0);
	g_clear_pointer(&t, migd_dirty_tracker_free);
	g_clear_pointer(&t2, migd_dirty_tracker_free);
	g_clear_pointer(&t3, migd_dirty_tracker_free);
	assert_false(sim_active(dev));
	assert_false(sim_active(dev2));
	assert_false(sim_active(dev3));
}

/* a window over 64 GiB at 4 KiB: REPORTs of at most 2 MiB of bitmap, on pds's rule */
static void
test_pds_report_slices(void **state)
{
	g_autoptr(MigdDevice) dev = migd_test_sim_device("pds:seed=4", "sim-pds-d");
	g_autoptr(MigdDirtyTracker) t = NULL;
	const guint64 slice = (guint64)MIGD_DIRTY_TRACKER_REPORT_BYTES * 8 * PAGE; /* 64 GiB */
	const MigdIovaRange mapped[] = {{.iova = 0, .length = slice + 1 * GiB},
					{.iova = 2 * slice, .length = 64 * KiB}};
	const guint64 dirty[] = {0, slice - PAGE, slice, slice + 1 * GiB - PAGE, 2 * slice};

	t = tracker_ok(dev, NULL, mapped, 2, MIGD_DIRTY_FALLBACK_REFUSE);
	for (guint i = 0; i < G_N_ELEMENTS(dirty); i++)
		sim_write(dev, dirty[i], 1);
	sync_ok(t);
	assert_dirty_exactly(t, dirty, G_N_ELEMENTS(dirty));
	assert_int_equal(stats_of(t).provider_errors, 0);
	sync_ok(t);
	assert_dirty_exactly(t, NULL, 0);
}

/* ---- stop ---- */

static void
test_stop_paired(void **state)
{
	g_autoptr(MigdDevice) dev = migd_test_sim_device("mlx5:seed=9", "sim-mlx5-i");
	MigdDirtyTracker *t;
	const MigdIovaRange mapped = {.iova = 0, .length = 1 * MiB};
	g_autoptr(GError) error = NULL;

	t = tracker_ok(dev, NULL, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_true(sim_active(dev));
	migd_dirty_tracker_stop(t);
	assert_false(sim_active(dev));
	migd_dirty_tracker_stop(t);
	assert_false(migd_dirty_tracker_sync(t, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_FAILED));
	migd_dirty_tracker_free(t);
	assert_false(sim_active(dev));
	/* a second tracker can start: nothing was left behind */
	t = tracker_ok(dev, NULL, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "device");
	migd_dirty_tracker_free(t);
	assert_false(sim_active(dev));
	migd_dirty_tracker_free(NULL);
}

static void
test_bad_ranges(void **state)
{
	g_autoptr(MigdDevice) dev = migd_test_sim_device("mlx5:seed=10", "sim-mlx5-j");
	const MigdIovaRange high = {.iova = (1ull << 63) - PAGE, .length = 2 * PAGE};
	const MigdIovaRange zero = {.iova = 0, .length = 0};
	const MigdIovaRange top = {.iova = G_MAXUINT64 - PAGE + 1, .length = PAGE};
	const MigdIovaRange edge = {.iova = (1ull << 63) - PAGE, .length = PAGE};
	MigdDirtyTracker *t;
	GError *error = NULL;

	assert_null(
	    migd_dirty_tracker_start(dev, NULL, &zero, 0, MIGD_DIRTY_FALLBACK_ALLOW, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_null(
	    migd_dirty_tracker_start(dev, NULL, &zero, 1, MIGD_DIRTY_FALLBACK_ALLOW, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_null(
	    migd_dirty_tracker_start(dev, NULL, &high, 1, MIGD_DIRTY_FALLBACK_ALLOW, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "sim-mlx5-j"));
	g_clear_error(&error);
	/* ending at 2^64 is a valid range, but not one a guest maps */
	assert_null(
	    migd_dirty_tracker_start(dev, NULL, &top, 1, MIGD_DIRTY_FALLBACK_ALLOW, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_false(sim_active(dev));
	/* ending at 2^63 is fine */
	t = migd_dirty_tracker_start(dev, NULL, &edge, 1, MIGD_DIRTY_FALLBACK_REFUSE, &error);
	g_assert_no_error(error);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "device");
	migd_dirty_tracker_free(t);
	assert_false(sim_active(dev));
}

/* ---- the fake device: the IOMMU provider and what the simulator cannot do ---- */

static void
assert_fake_clean(FakeDevice *fake)
{
	assert_int_equal(fake->violations, 0);
	if (fake->dma != NULL)
		assert_false(migd_sim_dirty_is_active(fake->dma));
	if (fake->iommu != NULL)
		assert_false(migd_sim_dirty_is_active(fake->iommu));
}

static void
test_iommu_provider(void **state)
{
	g_autoptr(FakeDevice) fake = fake_new("fake-a", FALSE, TRUE);
	g_autoptr(MigdDirtyTracker) t = NULL;
	const MigdIovaRange mapped[] = {{.iova = 4 * GiB, .length = 1 * MiB},
					{.iova = 0, .length = 640 * KiB},
					{.iova = 1 * MiB, .length = 1 * MiB}};
	const guint64 dirty[] = {4 * GiB, 1 * MiB + 4 * KiB};

	/* the generic plugin: no DMA logging, so the IOMMU's */
	t = tracker_ok(MIGD_DEVICE(fake), NULL, mapped, 3, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "iommu");
	assert_int_equal(migd_dirty_tracker_get_page_size(t), PAGE);
	assert_true(migd_sim_dirty_is_active(fake->iommu));
	/* the IOMMU gets the mappings themselves, no limit */
	assert_int_equal(g_array_index(fake->starts, guint, 0), 3);
	assert_int_equal(stats_of(t).tracked_bytes, 640 * KiB + 2 * MiB);
	for (guint i = 0; i < G_N_ELEMENTS(dirty); i++)
		migd_sim_dirty_record_dma_write(fake->iommu, dirty[i], 1);
	migd_sim_dirty_record_dma_write(fake->iommu, 700 * KiB, 1); /* unmapped */
	sync_ok(t);
	assert_dirty_exactly(t, dirty, G_N_ELEMENTS(dirty));
	sync_ok(t);
	assert_dirty_exactly(t, NULL, 0);
	for (guint i = 0; i < fake->reports->len; i++)
		assert_true(g_array_index(fake->reports, FakeReport, i).iommu);
	g_clear_pointer(&t, migd_dirty_tracker_free);
	assert_int_equal(fake->n_iommu_stops, 1);
	assert_fake_clean(fake);
}

/* IOMMU REPORT error: restarted here when the policy says so, else left all-dirty */
static void
test_iommu_error_recovery(void **state)
{
	const MigdIovaRange mapped = {.iova = 0, .length = 256 * KiB};

	for (guint round = 0; round < 2; round++) {
		gboolean restart = round == 0;
		g_autoptr(FakeDevice) fake = fake_new("fake-b", FALSE, TRUE);
		g_autoptr(MigdPlugin) plugin = test_plugin_new(
		    MIGD_DIRTY_TRACKER_IOMMU, 0, 0,
		    restart ? MIGD_TRACKER_ERROR_RESTART : MIGD_TRACKER_ERROR_ALL_DIRTY);
		g_autoptr(MigdDirtyTracker) t = NULL;

		t = tracker_ok(MIGD_DEVICE(fake), plugin, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE);
		assert_string_equal(migd_dirty_tracker_get_kind(t), "iommu");
		migd_sim_dirty_inject_report_error(fake->iommu, 0);
		sync_ok(t);
		assert_all_dirty(t);
		assert_int_equal(stats_of(t).provider_errors, 1);
		assert_int_equal(stats_of(t).restarts, restart ? 1 : 0);
		migd_sim_dirty_record_dma_write(fake->iommu, 8 * KiB, 1);
		sync_ok(t);
		if (restart) {
			assert_dirty_exactly(t, (const guint64[]){8 * KiB}, 1);
			assert_int_equal(fake->starts->len, 2);
			assert_int_equal(fake->n_iommu_stops, 1);
		} else {
			assert_all_dirty(t);
			assert_int_equal(stats_of(t).provider_errors, 2);
		}
		g_clear_pointer(&t, migd_dirty_tracker_free);
		assert_int_equal(fake->n_iommu_stops, restart ? 2 : 1);
		assert_fake_clean(fake);
	}
}

/* a restart that answers another page size: new windows, all dirty, then precise */
static void
test_restart_new_page_size(void **state)
{
	g_autoptr(FakeDevice) fake = fake_new("fake-l", FALSE, TRUE);
	g_autoptr(MigdPlugin) plugin =
	    test_plugin_new(MIGD_DIRTY_TRACKER_IOMMU, 0, 0, MIGD_TRACKER_ERROR_RESTART);
	g_autoptr(MigdDirtyTracker) t = NULL;
	const MigdIovaRange mapped = {.iova = 64 * KiB, .length = 128 * KiB};

	t = tracker_ok(MIGD_DEVICE(fake), plugin, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_int_equal(migd_dirty_tracker_get_page_size(t), PAGE);
	assert_int_equal(stats_of(t).total_pages, 32);
	fake->answer_page_size = 16 * KiB;
	migd_sim_dirty_inject_report_error(fake->iommu, 0);
	sync_ok(t);
	assert_int_equal(migd_dirty_tracker_get_page_size(t), 16 * KiB);
	assert_int_equal(migd_dirty_tracker_get_window(t, 0)->n_pages, 8);
	assert_int_equal(stats_of(t).total_pages, 8);
	assert_all_dirty(t);
	assert_int_equal(stats_of(t).restarts, 1);
	migd_sim_dirty_record_dma_write(fake->iommu, 100 * KiB, 1);
	sync_ok(t);
	assert_dirty_exactly(t, (const guint64[]){100 * KiB}, 1);
	g_clear_pointer(&t, migd_dirty_tracker_free);
	assert_fake_clean(fake);
}

/* a restart that fails: all-dirty from then on (ALLOW), or the sync fails (REFUSE) */
static void
test_restart_fails(void **state)
{
	const MigdIovaRange mapped = {.iova = 1 * MiB, .length = 64 * KiB};

	for (guint round = 0; round < 2; round++) {
		MigdDirtyFallback fallback =
		    round == 0 ? MIGD_DIRTY_FALLBACK_ALLOW : MIGD_DIRTY_FALLBACK_REFUSE;
		g_autoptr(FakeDevice) fake = fake_new("fake-c", FALSE, TRUE);
		g_autoptr(MigdPlugin) plugin =
		    test_plugin_new(MIGD_DIRTY_TRACKER_IOMMU, 0, 0, MIGD_TRACKER_ERROR_RESTART);
		g_autoptr(MigdDirtyTracker) t = NULL;
		g_autoptr(GError) error = NULL;

		t = tracker_ok(MIGD_DEVICE(fake), plugin, &mapped, 1, fallback);
		fake->iommu_starts_left = 0;
		migd_sim_dirty_inject_report_error(fake->iommu, 0);
		if (fallback == MIGD_DIRTY_FALLBACK_ALLOW) {
			sync_ok(t);
			assert_all_dirty(t);
			assert_string_equal(migd_dirty_tracker_get_kind(t), "all-dirty");
			assert_true(migd_test_log_has(MIGD_TEST_LOG_WARNING, "fake-c",
						      "could not be restarted", NULL));
			sync_ok(t);
			assert_all_dirty(t);
			assert_int_equal(stats_of(t).provider_errors, 1);
			assert_int_equal(stats_of(t).restarts, 0);
		} else {
			assert_false(migd_dirty_tracker_sync(t, &error));
			assert_true(migd_error_matches_errno(error, EOPNOTSUPP));
			assert_string_equal(migd_dirty_tracker_get_kind(t), "iommu");
		}
		g_clear_pointer(&t, migd_dirty_tracker_free);
		/* one START succeeded, one STOP (before the failed restart) */
		assert_int_equal(fake->n_iommu_stops, 1);
		assert_fake_clean(fake);
	}
}

/* DMA logging that cannot start: the IOMMU's instead, with a warning */
static void
test_device_falls_back_to_iommu(void **state)
{
	g_autoptr(FakeDevice) fake = fake_new("fake-d", TRUE, TRUE);
	g_autoptr(MigdDirtyTracker) t = NULL;
	const MigdIovaRange mapped = {.iova = 0, .length = 64 * KiB};

	fake->dma_start_errno = EOPNOTSUPP;
	t = tracker_ok(MIGD_DEVICE(fake), NULL, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "iommu");
	assert_true(migd_test_log_has(MIGD_TEST_LOG_WARNING, "fake-d",
				      "device DMA logging cannot start", NULL));
	assert_true(
	    migd_test_log_has(MIGD_TEST_LOG_WARNING, "fake-d", "falling back to IOMMU", NULL));
	sync_ok(t);
	g_clear_pointer(&t, migd_dirty_tracker_free);
	/* nothing started on the device side, so nothing stopped there */
	assert_int_equal(fake->n_dma_stops, 0);
	assert_int_equal(fake->n_iommu_stops, 1);
	assert_fake_clean(fake);
}

/* E2BIG at any count above one: halved down to a single range */
static void
test_e2big_down_to_one(void **state)
{
	g_autoptr(FakeDevice) fake = fake_new("fake-e", TRUE, FALSE);
	g_autoptr(FakeDevice) never = fake_new("fake-f", TRUE, FALSE);
	g_autoptr(MigdDirtyTracker) t = NULL;
	g_autoptr(GError) error = NULL;
	MigdIovaRange mapped[20];
	const guint expect[] = {20, 10, 5, 2, 1};

	for (guint i = 0; i < 20; i++)
		mapped[i] = (MigdIovaRange){.iova = i * 1 * MiB, .length = (i + 1) * PAGE};
	fake->e2big_above = 1;
	t = tracker_ok(MIGD_DEVICE(fake), NULL, mapped, 20, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "device");
	assert_int_equal(fake->starts->len, G_N_ELEMENTS(expect));
	for (guint i = 0; i < G_N_ELEMENTS(expect); i++)
		assert_int_equal(g_array_index(fake->starts, guint, i), expect[i]);
	assert_int_equal(stats_of(t).tracked_bytes, 19 * MiB + 20 * PAGE);
	migd_sim_dirty_record_dma_write(fake->dma, 19 * MiB, 1);
	migd_sim_dirty_record_dma_write(fake->dma, 5 * MiB + 6 * PAGE, 1); /* gap */
	sync_ok(t);
	assert_dirty_exactly(t, (const guint64[]){19 * MiB}, 1);
	g_clear_pointer(&t, migd_dirty_tracker_free);
	assert_fake_clean(fake);

	/* E2BIG even for one: no device tracker, no IOMMU one, refused */
	never->dma_start_errno = E2BIG;
	assert_null(migd_dirty_tracker_start(MIGD_DEVICE(never), NULL, mapped, 20,
					     MIGD_DIRTY_FALLBACK_REFUSE, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	assert_fake_clean(never);
}

/* the device went away: the sync fails, and the STOP is still tried once */
static void
test_device_gone(void **state)
{
	g_autoptr(FakeDevice) fake = fake_new("fake-g", TRUE, FALSE);
	g_autoptr(MigdDirtyTracker) t = NULL;
	g_autoptr(GError) error = NULL;
	const MigdIovaRange mapped = {.iova = 0, .length = 64 * KiB};

	t = tracker_ok(MIGD_DEVICE(fake), NULL, &mapped, 1, MIGD_DIRTY_FALLBACK_ALLOW);
	fake->report_errno = ENODEV;
	fake->stop_errno = ENODEV;
	assert_false(migd_dirty_tracker_sync(t, &error));
	assert_true(migd_error_matches_errno(error, ENODEV));
	assert_int_equal(stats_of(t).provider_errors, 0);
	/* nothing was recovered or fallen back to */
	assert_string_equal(migd_dirty_tracker_get_kind(t), "device");
	assert_int_equal(fake->starts->len, 1);
	g_clear_pointer(&t, migd_dirty_tracker_free);
	assert_int_equal(fake->n_dma_stops, 1);
	assert_int_equal(migd_test_log_count(MIGD_TEST_LOG_WARNING), 0);
	assert_fake_clean(fake);
}

/* REPORT slices: at most 2 MiB of bitmap each, page-aligned, into zeroed buffers */
static void
test_report_slices(void **state)
{
	g_autoptr(FakeDevice) fake = fake_new("fake-h", FALSE, TRUE);
	g_autoptr(MigdDirtyTracker) t = NULL;
	const guint64 slice = (guint64)MIGD_DIRTY_TRACKER_REPORT_BYTES * 8 * PAGE;
	const MigdIovaRange mapped = {.iova = 1 * GiB, .length = 2 * slice + 8 * PAGE};
	const guint64 dirty[] = {1 * GiB, 1 * GiB + slice, 1 * GiB + 2 * slice + 7 * PAGE};

	t = tracker_ok(MIGD_DEVICE(fake), NULL, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE);
	/* the trial REPORT at START is not this sync's */
	g_array_set_size(fake->reports, 0);
	for (guint i = 0; i < G_N_ELEMENTS(dirty); i++)
		migd_sim_dirty_record_dma_write(fake->iommu, dirty[i], 1);
	sync_ok(t);
	assert_dirty_exactly(t, dirty, G_N_ELEMENTS(dirty));
	assert_int_equal(fake->reports->len, 3);
	for (guint i = 0; i < 3; i++) {
		FakeReport r = g_array_index(fake->reports, FakeReport, i);
		assert_int_equal(r.iova, 1 * GiB + i * slice);
		assert_int_equal(r.length, i < 2 ? slice : 8 * PAGE);
		assert_int_equal(r.page_size, PAGE);
	}
	/* the buffer is zeroed again before every REPORT */
	for (guint i = 0; i < G_N_ELEMENTS(dirty); i++)
		migd_sim_dirty_record_dma_write(fake->iommu, dirty[i], 1);
	sync_ok(t);
	assert_dirty_exactly(t, dirty, G_N_ELEMENTS(dirty));
	g_clear_pointer(&t, migd_dirty_tracker_free);
	assert_fake_clean(fake);
}

/*
 * pds finds a REPORT's place in its bitmap in whole bytes (words): every REPORT
 * starts a multiple of 64 pages into its tracked range, and windows whose
 * extents then overlap share one REPORT
 */
static void
test_report_word_offsets(void **state)
{
	g_autoptr(FakeDevice) fake = fake_new("fake-k", TRUE, FALSE);
	g_autoptr(MigdPlugin) one =
	    test_plugin_new(MIGD_DIRTY_TRACKER_DEVICE, 1, 0, MIGD_TRACKER_ERROR_ALL_DIRTY);
	g_autoptr(MigdDirtyTracker) t = NULL;
	const MigdIovaRange mapped[] = {
	    {.iova = 12 * KiB, .length = 8 * PAGE},
	    {.iova = 1 * MiB + 20 * KiB, .length = 256 * KiB},
	    {.iova = 1 * MiB + 300 * KiB, .length = 3 * PAGE},
	    {.iova = 9 * MiB + 44 * KiB, .length = 5 * PAGE},
	};
	const guint64 dirty[] = {12 * KiB,
				 1 * MiB + 20 * KiB,
				 1 * MiB + 276 * KiB - PAGE,
				 1 * MiB + 300 * KiB,
				 1 * MiB + 308 * KiB,
				 9 * MiB + 60 * KiB};

	fake->check_words = TRUE;
	t = tracker_ok(MIGD_DEVICE(fake), one, mapped, G_N_ELEMENTS(mapped),
		       MIGD_DIRTY_FALLBACK_REFUSE);
	g_array_set_size(fake->reports, 0);
	assert_int_equal(stats_of(t).tracked_bytes, 9 * MiB + 64 * KiB - 12 * KiB);
	for (guint i = 0; i < G_N_ELEMENTS(dirty); i++)
		migd_sim_dirty_record_dma_write(fake->dma, dirty[i], 1);
	/* pages before each window that its REPORT reads too, and a gap */
	migd_sim_dirty_record_dma_write(fake->dma, 1 * MiB + 12 * KiB, 2 * PAGE);
	migd_sim_dirty_record_dma_write(fake->dma, 1 * MiB + 280 * KiB, 2 * PAGE);
	migd_sim_dirty_record_dma_write(fake->dma, 9 * MiB, 4 * PAGE);
	sync_ok(t);
	assert_dirty_exactly(t, dirty, G_N_ELEMENTS(dirty));
	/* the second and third windows share a 64-page block: one REPORT for both */
	assert_int_equal(fake->reports->len, 3);
	assert_int_equal(g_array_index(fake->reports, FakeReport, 0).iova, 12 * KiB);
	assert_int_equal(g_array_index(fake->reports, FakeReport, 1).iova, 12 * KiB + 1 * MiB);
	assert_int_equal(g_array_index(fake->reports, FakeReport, 1).length,
			 300 * KiB + 3 * PAGE - 12 * KiB);
	assert_int_equal(g_array_index(fake->reports, FakeReport, 2).iova, 12 * KiB + 9 * MiB);
	g_clear_pointer(&t, migd_dirty_tracker_free);
	assert_fake_clean(fake);
}

/* a plugin that chose no tracker: all-dirty, even with REFUSE, without a warning */
static void
test_policy_none(void **state)
{
	g_autoptr(FakeDevice) fake = fake_new("fake-i", TRUE, TRUE);
	g_autoptr(MigdPlugin) none =
	    test_plugin_new(MIGD_DIRTY_TRACKER_NONE, 0, 0, MIGD_TRACKER_ERROR_ALL_DIRTY);
	g_autoptr(MigdDirtyTracker) t = NULL;
	const MigdIovaRange mapped = {.iova = 0, .length = 10 * PAGE};

	t = tracker_ok(MIGD_DEVICE(fake), none, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "all-dirty");
	assert_true(
	    migd_test_log_has(MIGD_TEST_LOG_OTHER, "fake-i", "chose no dirty tracker", NULL));
	assert_int_equal(migd_test_log_count(MIGD_TEST_LOG_WARNING), 0);
	sync_ok(t);
	assert_all_dirty(t);
	assert_int_equal(fake->starts->len, 0);
	g_clear_pointer(&t, migd_dirty_tracker_free);
	assert_int_equal(fake->n_dma_stops + fake->n_iommu_stops, 0);
	assert_fake_clean(fake);
}

/* a device provider restarted by the tracker itself (a plugin without recover_tracker) */
static void
test_device_restart_without_hook(void **state)
{
	g_autoptr(FakeDevice) fake = fake_new("fake-j", TRUE, FALSE);
	g_autoptr(MigdPlugin) plugin =
	    test_plugin_new(MIGD_DIRTY_TRACKER_DEVICE, 0, 8 * KiB, MIGD_TRACKER_ERROR_RESTART);
	g_autoptr(MigdDirtyTracker) t = NULL;
	const MigdIovaRange mapped = {.iova = 0, .length = 64 * KiB};

	t = tracker_ok(MIGD_DEVICE(fake), plugin, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_int_equal(migd_dirty_tracker_get_page_size(t), 8 * KiB);
	migd_sim_dirty_inject_report_error(fake->dma, 0);
	sync_ok(t);
	assert_all_dirty(t);
	assert_int_equal(stats_of(t).restarts, 1);
	assert_int_equal(fake->n_dma_stops, 1);
	migd_sim_dirty_record_dma_write(fake->dma, 20 * KiB, 1);
	sync_ok(t);
	assert_dirty_exactly(t, (const guint64[]){20 * KiB}, 1);
	g_clear_pointer(&t, migd_dirty_tracker_free);
	assert_int_equal(fake->n_dma_stops, 2);
	assert_fake_clean(fake);
}

/*
 * mtty's DMA logging starts but cannot report (EOPNOTSUPP without the
 * iova_bitmap, as on Debian's 6.12): the trial REPORT at START catches it and
 * the tracker falls back to the IOMMU (type1 tracks mtty's pinned pages), or
 * with no IOMMU tracking to all-dirty / a refusal. The real kernel answers the
 * same in the real-kernel tier (conformance case dirty-tracking-fallback).
 */
static void
test_start_but_no_report_falls_back(void **state)
{
	const MigdIovaRange mapped = {.iova = 0, .length = 2 * MiB};
	g_autoptr(MigdDevice) dev = migd_test_sim_device("mtty:seed=1", "sim-mtty-a");
	g_autoptr(MigdDevice) bare = sim_new_no_iommu("mtty:seed=2", "sim-mtty-b");
	g_autoptr(MigdDirtyTracker) t = NULL;
	g_autoptr(MigdDirtyTracker) all = NULL;
	g_autoptr(GError) error = NULL;

	t = tracker_ok(dev, NULL, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE);
	assert_string_equal(migd_dirty_tracker_get_kind(t), "iommu");
	/* device logging was stopped again after the failed trial */
	assert_false(migd_sim_device_dirty_is_active(MIGD_SIM_DEVICE(dev)));
	sync_ok(t);
	assert_int_equal(stats_of(t).provider_errors, 0);

	assert_null(
	    migd_dirty_tracker_start(bare, NULL, &mapped, 1, MIGD_DIRTY_FALLBACK_REFUSE, &error));
	assert_non_null(error);
	g_clear_error(&error);
	all = tracker_ok(bare, NULL, &mapped, 1, MIGD_DIRTY_FALLBACK_ALLOW);
	assert_string_equal(migd_dirty_tracker_get_kind(all), "all-dirty");
	assert_false(migd_sim_device_dirty_is_active(MIGD_SIM_DEVICE(bare)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    migd_test_log_unit_test(test_mlx5_merges_to_limit),
	    migd_test_log_unit_test(test_mlx5_driver_combines),
	    migd_test_log_unit_test(test_mlx5_sequential_dma),
	    migd_test_log_unit_test(test_e2big_halves),
	    migd_test_log_unit_test(test_mlx5_page_size_clamp),
	    migd_test_log_unit_test(test_pds_unusable_page_size),
	    migd_test_log_unit_test(test_mlx5_eio_restarts),
	    migd_test_log_unit_test(test_generic_eio_persists),
	    migd_test_log_unit_test(test_hisi_fallback),
	    migd_test_log_unit_test(test_hisi_iommu),
	    migd_test_log_unit_test(test_pds_single_range_reports),
	    migd_test_log_unit_test(test_pds_report_slices),
	    migd_test_log_unit_test(test_stop_paired),
	    migd_test_log_unit_test(test_bad_ranges),
	    migd_test_log_unit_test(test_iommu_provider),
	    migd_test_log_unit_test(test_iommu_error_recovery),
	    migd_test_log_unit_test(test_restart_new_page_size),
	    migd_test_log_unit_test(test_restart_fails),
	    migd_test_log_unit_test(test_device_falls_back_to_iommu),
	    migd_test_log_unit_test(test_e2big_down_to_one),
	    migd_test_log_unit_test(test_device_gone),
	    migd_test_log_unit_test(test_report_slices),
	    migd_test_log_unit_test(test_report_word_offsets),
	    migd_test_log_unit_test(test_policy_none),
	    migd_test_log_unit_test(test_device_restart_without_hook),
	    migd_test_log_unit_test(test_start_but_no_report_falls_back),
	};
	/* once per process (GLib refuses a second writer): every test captures */
	migd_test_log_init(MIGD_TEST_LOG_ECHO);
	return cmocka_run_group_tests_name("dirty-tracker", tests, NULL, NULL);
}
