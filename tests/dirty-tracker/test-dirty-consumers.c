/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Consumers of one job's dirty reports (dirty/migd-dirty-source.c): the peer
 * stream's syncs and the VMM's takes read and clear the same trackers, on
 * simulated devices whose DMA follows their dma_pattern. Every result is
 * checked against the simulator's own record of what the device wrote: each
 * consumer gets every page written since its previous result, exactly once,
 * and nothing else (all-dirty: everything). Also the simulator's record
 * itself, a take after stop, a take queued behind a running sync, and errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>

#include "engine-test-util.h"
#include "migd-dirty-bitmap-file.h"
#include "migd-dirty-bitmap.h"
#include "migd-dirty-source.h"
#include "migd-error.h"
#include "migd-sim-device-private.h"
#include "migd-sim-device.h"
#include "migd-test-log.h"

#define KiB  ((guint64)1024)
#define MiB  (1024 * KiB)
#define GiB  (1024 * MiB)
#define PAGE (4 * KiB)

/* ---- a plugin whose tracker choice the test sets ---- */

struct _TestPlugin {
	MigdPlugin parent_instance;
	MigdDirtyTrackerKind tracker;
};

#define TEST_TYPE_PLUGIN (test_plugin_get_type())
G_DECLARE_FINAL_TYPE(TestPlugin, test_plugin, TEST, PLUGIN, MigdPlugin)
G_DEFINE_TYPE(TestPlugin, test_plugin, MIGD_TYPE_PLUGIN)

static void
test_plugin_get_policy(MigdPlugin *plugin, MigdDevice *device, MigdPluginPolicy *policy)
{
	policy->tracker = TEST_PLUGIN(plugin)->tracker;
	policy->tracker_max_ranges = 0;
	policy->tracker_page_size = 0;
	policy->on_tracker_error = MIGD_TRACKER_ERROR_RESTART;
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
test_plugin_new(MigdDirtyTrackerKind tracker)
{
	TestPlugin *self = g_object_new(TEST_TYPE_PLUGIN, "name", "test", NULL);

	self->tracker = tracker;
	return MIGD_PLUGIN(self);
}

/* ---- a device whose IOMMU answers another page size at a restart ---- */

struct _FakeDevice {
	MigdDevice parent_instance;
	MigdSimDirty *iommu;
	guint64 answer_page_size; /* != 0: what a START writes back */
};

#define FAKE_TYPE_DEVICE (fake_device_get_type())
G_DECLARE_FINAL_TYPE(FakeDevice, fake_device, FAKE, DEVICE, MigdDevice)
G_DEFINE_TYPE(FakeDevice, fake_device, MIGD_TYPE_DEVICE)

static gboolean
fake_probe(MigdDevice *device, MigdDeviceFeatures *features, GError **error)
{
	memset(features, 0, sizeof(*features));
	features->migration = TRUE;
	return TRUE;
}

static gboolean
fake_iommu_dirty_start(MigdDevice *device, const MigdIovaRange *ranges, guint n_ranges,
		       guint64 *page_size, GError **error)
{
	FakeDevice *self = FAKE_DEVICE(device);

	if (self->answer_page_size != 0)
		*page_size = self->answer_page_size;
	return migd_sim_dirty_start(self->iommu, ranges, n_ranges, page_size, error);
}

static gboolean
fake_iommu_dirty_stop(MigdDevice *device, GError **error)
{
	migd_sim_dirty_stop(FAKE_DEVICE(device)->iommu);
	return TRUE;
}

static gboolean
fake_iommu_dirty_report(MigdDevice *device, guint64 iova, guint64 length, guint64 page_size,
			gboolean no_clear, guint64 *bitmap, GError **error)
{
	return migd_sim_dirty_report_full(FAKE_DEVICE(device)->iommu, iova, length, page_size,
					  no_clear, bitmap, error);
}

static void
fake_device_finalize(GObject *object)
{
	g_clear_pointer(&FAKE_DEVICE(object)->iommu, migd_sim_dirty_free);
	G_OBJECT_CLASS(fake_device_parent_class)->finalize(object);
}

static void
fake_device_init(FakeDevice *self)
{
	const MigdSimDirtyLimits limits = {.max_ranges = G_MAXUINT, .iommu = TRUE};

	self->iommu = migd_sim_dirty_new(&limits);
	migd_device_set_name(MIGD_DEVICE(self), "fake-iommu");
}

static void
fake_device_class_init(FakeDeviceClass *klass)
{
	MigdDeviceClass *device_class = MIGD_DEVICE_CLASS(klass);

	G_OBJECT_CLASS(klass)->finalize = fake_device_finalize;
	device_class->probe = fake_probe;
	device_class->iommu_dirty_start = fake_iommu_dirty_start;
	device_class->iommu_dirty_stop = fake_iommu_dirty_stop;
	device_class->iommu_dirty_report = fake_iommu_dirty_report;
}

/* ---- page sets: IOVAs of 4 KiB pages ---- */

static GHashTable *
pages_new(void)
{
	return g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
}

static void
pages_add(GHashTable *set, guint64 iova)
{
	gint64 *key = g_new(gint64, 1);

	*key = (gint64)iova;
	g_hash_table_add(set, key);
}

static gboolean
pages_has(GHashTable *set, guint64 iova)
{
	gint64 key = (gint64)iova;
	return g_hash_table_contains(set, &key);
}

/* the windows a result covered (from the file or the chunks) */
typedef struct {
	guint64 iova;
	guint64 n_pages;
} Window;

static gboolean
windows_cover(GArray *windows, guint64 iova)
{
	for (guint i = 0; i < windows->len; i++) {
		const Window *w = &g_array_index(windows, Window, i);
		if (iova >= w->iova && iova < w->iova + w->n_pages * PAGE)
			return TRUE;
	}
	return FALSE;
}

/* ---- the fixture: a dirty source over simulated devices, and what each consumer is owed ---- */

typedef struct {
	MigdDirtySource *src;
	GPtrArray *devices; /* MigdDevice, by job index */
	guint n_consumers;  /* the peer stream (0) and the extra ones */
	/* per consumer * device: the pages written since its last result */
	GPtrArray *owed; /* GHashTable */
	/* per consumer * device: every page is owed (a tracker error) */
	gboolean *all_owed;
	gboolean *all_dirty; /* per device: its tracker is all-dirty */
	guint32 *takes;	     /* per consumer * device */
	guint64 written;     /* pages the devices wrote, all in all */
	guint64 checked;     /* pages found where they were owed */
} Fx;

static Fx *
fx_new(void)
{
	Fx *fx = g_new0(Fx, 1);

	fx->src = migd_dirty_source_new();
	fx->devices = g_ptr_array_new_with_free_func(g_object_unref);
	fx->n_consumers = 1;
	return fx;
}

static void
fx_free(Fx *fx)
{
	g_clear_pointer(&fx->src, migd_dirty_source_unref);
	g_ptr_array_unref(fx->devices);
	g_clear_pointer(&fx->owed, g_ptr_array_unref);
	g_free(fx->all_owed);
	g_free(fx->all_dirty);
	g_free(fx->takes);
	g_free(fx);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Fx, fx_free)

/* a simulated device with @ranges mapped, tracked as @tracker chooses; its index */
static guint
fx_add_device(Fx *fx, const gchar *spec, MigdDirtyTrackerKind tracker, const MigdIovaRange *ranges,
	      guint n_ranges, const gchar *expect_kind)
{
	g_autoptr(MigdPlugin) plugin = test_plugin_new(tracker);
	g_autoptr(GError) error = NULL;
	MigdDevice *dev = migd_test_sim_device(spec, NULL);
	guint index = fx->devices->len;

	migd_sim_device_set_dma_record(MIGD_SIM_DEVICE(dev), TRUE);
	migd_device_set_iova_ranges(dev, ranges, n_ranges);
	if (!migd_dirty_source_add_device(fx->src, index, dev, plugin, MIGD_DIRTY_FALLBACK_ALLOW,
					  &error))
		fail_msg("%s: %s", spec, error->message);
	g_ptr_array_add(fx->devices, dev);
	if (expect_kind != NULL)
		assert_string_equal(migd_dirty_source_get_kind(fx->src, index), expect_kind);
	return index;
}

static guint
fx_add_consumer(Fx *fx)
{
	g_autoptr(GError) error = NULL;
	guint c = migd_dirty_source_add_consumer(fx->src, &error);

	assert_null(error);
	assert_int_equal(c, fx->n_consumers);
	fx->n_consumers++;
	return c;
}

#define OWED(fx, c, d) ((GHashTable *)g_ptr_array_index((fx)->owed, (c) * (fx)->devices->len + (d)))

/* once devices and consumers are in: the books start empty */
static void
fx_ready(Fx *fx)
{
	guint n = fx->n_consumers * fx->devices->len;

	fx->owed = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);
	for (guint i = 0; i < n; i++)
		g_ptr_array_add(fx->owed, pages_new());
	fx->all_owed = g_new0(gboolean, n);
	fx->takes = g_new0(guint32, n);
	fx->all_dirty = g_new0(gboolean, fx->devices->len);
	for (guint d = 0; d < fx->devices->len; d++) {
		const gchar *kind = migd_dirty_source_get_kind(fx->src, d);
		fx->all_dirty[d] = g_strcmp0(kind, "all-dirty") == 0;
	}
}

/* what the devices wrote since the last look is owed to every consumer */
static void
fx_collect(Fx *fx)
{
	for (guint d = 0; d < fx->devices->len; d++) {
		MigdDevice *dev = g_ptr_array_index(fx->devices, d);
		g_autoptr(GArray) record = migd_sim_device_take_dma_record(MIGD_SIM_DEVICE(dev));

		for (guint i = 0; i < record->len; i++) {
			const MigdIovaRange *r = &g_array_index(record, MigdIovaRange, i);
			assert_int_equal(r->iova % PAGE, 0);
			assert_int_equal(r->length % PAGE, 0);
			for (guint64 a = r->iova; a < r->iova + r->length; a += PAGE) {
				fx->written++;
				for (guint c = 0; c < fx->n_consumers; c++)
					pages_add(OWED(fx, c, d), a);
			}
		}
	}
}

/* the device DMA-writes @bytes following its pattern */
static void
fx_write(Fx *fx, guint d, guint64 bytes)
{
	migd_sim_device_dma_write(g_ptr_array_index(fx->devices, d), bytes);
}

/*
 * Consumer @c's result for device @d (@result over @windows) is exactly what it
 * was owed inside the windows (device logging also writes the gaps it tracks,
 * which no window holds); then it is owed nothing.
 */
static void
fx_check(Fx *fx, guint c, guint d, GHashTable *result, GArray *windows, const gchar *what)
{
	GHashTable *owed = OWED(fx, c, d);
	gboolean all = fx->all_owed[c * fx->devices->len + d] || fx->all_dirty[d];
	GHashTableIter iter;
	gpointer key;
	guint64 expected = 0;

	if (all) {
		for (guint i = 0; i < windows->len; i++) {
			const Window *w = &g_array_index(windows, Window, i);
			for (guint64 p = 0; p < w->n_pages; p++) {
				if (!pages_has(result, w->iova + p * PAGE))
					fail_msg(
					    "%s: consumer %u, device %u: page 0x%" G_GINT64_MODIFIER
					    "x missing from an all-dirty result",
					    what, c, d, w->iova + p * PAGE);
				expected++;
			}
		}
	} else {
		g_hash_table_iter_init(&iter, owed);
		while (g_hash_table_iter_next(&iter, &key, NULL)) {
			guint64 iova = (guint64) * (gint64 *)key;
			if (!windows_cover(windows, iova))
				continue;
			if (!pages_has(result, iova))
				fail_msg(
				    "%s: consumer %u, device %u: written page 0x%" G_GINT64_MODIFIER
				    "x lost",
				    what, c, d, iova);
			expected++;
		}
	}
	if (g_hash_table_size(result) != expected) {
		g_hash_table_iter_init(&iter, result);
		while (g_hash_table_iter_next(&iter, &key, NULL)) {
			if (!pages_has(owed, (guint64) * (gint64 *)key))
				fail_msg("%s: consumer %u, device %u: page 0x%" G_GINT64_MODIFIER
					 "x reported but not written since its last result",
					 what, c, d, (guint64) * (gint64 *)key);
		}
		fail_msg("%s: consumer %u, device %u: %u pages, expected %" G_GUINT64_FORMAT, what,
			 c, d, g_hash_table_size(result), expected);
	}
	fx->checked += expected;
	g_hash_table_remove_all(owed);
	fx->all_owed[c * fx->devices->len + d] = FALSE;
}

/* ---- running the main loop until an operation is done ---- */

typedef struct {
	GAsyncResult *result;
	guint order; /* when it completed, among the waits of one test */
} Done;

static guint done_counter;

static void
done_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	Done *done = user_data;

	done->result = g_object_ref(result);
	done->order = ++done_counter;
}

static void
wait_done(Done *done)
{
	gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

	while (done->result == NULL) {
		if (g_get_monotonic_time() > deadline)
			fail_msg("timed out waiting for a dirty sync or take");
		g_main_context_iteration(NULL, TRUE);
	}
}

/* iterates the main context for about @ms without blocking on it */
static void
spin(guint ms)
{
	gint64 end = g_get_monotonic_time() + ms * 1000;

	while (g_get_monotonic_time() < end) {
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_usleep(2000);
	}
}

/* ---- reading results ---- */

/* a sync's chunks, decoded: the pages of each device (GHashTable) and its windows (GArray) */
static void
decode_chunks(Fx *fx, GPtrArray *chunks, GPtrArray *results, GPtrArray *windows)
{
	for (guint d = 0; d < fx->devices->len; d++) {
		g_ptr_array_add(results, pages_new());
		g_ptr_array_add(windows, g_array_new(FALSE, FALSE, sizeof(Window)));
	}
	for (guint i = 0; i < chunks->len; i++) {
		const MigdDirtyChunk *ch = g_ptr_array_index(chunks, i);
		g_autofree guint64 *bits = NULL;
		g_autoptr(GError) error = NULL;
		GArray *wins;
		gsize len = 0;
		const guint8 *data;

		assert_true(ch->device < fx->devices->len);
		assert_int_equal(ch->page_size, PAGE);
		wins = g_ptr_array_index(windows, ch->device);
		if (ch->first_page == 0)
			g_array_append_val(wins, ((Window){ch->window_iova, ch->window_pages}));
		bits = g_new0(guint64, (ch->encoded.n_pages + 63) / 64);
		data = g_bytes_get_data(ch->encoded.data, &len);
		/* the checksum was taken at encoding: a payload changed since then fails here */
		if (!migd_dirty_decode_merge(ch->encoded.encoding, data, len, ch->encoded.n_pages,
					     ch->encoded.n_dirty, ch->encoded.checksum, bits,
					     &error))
			fail_msg("chunk of device %u window %u: %s", ch->device, ch->window,
				 error->message);
		for (guint64 p = 0; p < ch->encoded.n_pages; p++) {
			if ((bits[p / 64] >> (p % 64)) & 1)
				pages_add(g_ptr_array_index(results, ch->device),
					  ch->window_iova + (ch->first_page + p) * PAGE);
		}
	}
}

/* a take's file, through the format's one reader: its pages, windows and rounds */
static GHashTable *
read_take(gint fd, GArray *windows, guint32 *rounds)
{
	g_autoptr(GByteArray) data = g_byte_array_new();
	g_autoptr(MigdDirtyFile) file = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error = NULL;
	GHashTable *pages = pages_new();
	guint8 buf[65536];
	gssize n;

	/* sealed: nobody changes it under the consumer */
	assert_true((fcntl(fd, F_GET_SEALS) & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)) ==
		    (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW));
	assert_int_equal(write(fd, "x", 1), -1);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		g_byte_array_append(data, buf, n);
	bytes = g_byte_array_free_to_bytes(g_steal_pointer(&data));
	file = migd_dirty_file_parse(bytes, &error);
	if (file == NULL)
		fail_msg("dirty-bitmap file: %s", error->message);
	assert_int_equal(file->page_size, PAGE);
	*rounds = file->rounds;
	for (guint i = 0; i < file->n_windows; i++) {
		const MigdDirtyFileEntry *e = &file->windows[i];
		g_array_append_val(windows, ((Window){e->iova, e->n_pages}));
		for (guint64 p = 0; p < e->n_pages; p++) {
			if (migd_dirty_file_page_is_dirty(file, i, p))
				pages_add(pages, e->iova + p * PAGE);
		}
	}
	assert_int_equal(g_hash_table_size(pages), file->dirty_pages);
	return pages;
}

/* ---- the operations, checked ---- */

static void
fx_check_sync(Fx *fx, GPtrArray *chunks)
{
	g_autoptr(GPtrArray) results =
	    g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);
	g_autoptr(GPtrArray) windows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);

	decode_chunks(fx, chunks, results, windows);
	for (guint d = 0; d < fx->devices->len; d++)
		fx_check(fx, 0, d, g_ptr_array_index(results, d), g_ptr_array_index(windows, d),
			 "peer sync");
}

static void
fx_sync(Fx *fx)
{
	g_autoptr(GPtrArray) chunks = NULL;
	g_autoptr(GError) error = NULL;
	Done done = {0};
	MigdDirtyRoundStats stats;

	fx_collect(fx);
	migd_dirty_source_sync_async(fx->src, 1, done_cb, &done);
	wait_done(&done);
	chunks = migd_dirty_source_sync_finish(fx->src, done.result, &stats, &error);
	g_object_unref(done.result);
	if (chunks == NULL)
		fail_msg("sync: %s", error->message);
	fx_check_sync(fx, chunks);
}

static void
fx_check_take(Fx *fx, guint c, guint d, gint fd)
{
	g_autoptr(GArray) windows = g_array_new(FALSE, FALSE, sizeof(Window));
	g_autoptr(GHashTable) pages = NULL;
	guint32 rounds = 0;

	pages = read_take(fd, windows, &rounds);
	close(fd);
	assert_int_equal(rounds, ++fx->takes[c * fx->devices->len + d]);
	fx_check(fx, c, d, pages, windows, "take");
}

static void
fx_take(Fx *fx, guint c, guint d)
{
	g_autoptr(GError) error = NULL;
	Done done = {0};
	gint fd;

	fx_collect(fx);
	migd_dirty_source_take_bitmap_async(fx->src, c, d, NULL, done_cb, &done);
	wait_done(&done);
	fd = migd_dirty_source_take_bitmap_finish(fx->src, done.result, &error);
	g_object_unref(done.result);
	if (fd < 0)
		fail_msg("take: %s", error->message);
	fx_check_take(fx, c, d, fd);
}

/* @steps random writes, peer syncs and takes by every consumer */
static void
fx_interleave(Fx *fx, guint steps, guint32 seed)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(seed);

	for (guint s = 0; s < steps; s++) {
		gint choice = g_rand_int_range(rand, 0, 10);
		guint d = g_rand_int_range(rand, 0, fx->devices->len);

		if (choice < 4)
			fx_write(fx, d, g_rand_int_range(rand, 1, 96) * PAGE);
		else if (choice < 6)
			fx_sync(fx);
		else
			fx_take(fx, g_rand_int_range(rand, 1, fx->n_consumers), d);
	}
	/* every consumer once more: whatever was still owed arrives */
	fx_sync(fx);
	for (guint c = 1; c < fx->n_consumers; c++)
		for (guint d = 0; d < fx->devices->len; d++)
			fx_take(fx, c, d);
}

/* six mappings: mlx5 tracks at most four ranges, so its driver's ranges cover gaps */
static const MigdIovaRange six[] = {
    {.iova = 0, .length = 1 * MiB},	     {.iova = 4 * MiB, .length = 512 * KiB},
    {.iova = 16 * MiB, .length = 256 * KiB}, {.iova = 17 * MiB, .length = 64 * KiB},
    {.iova = 64 * MiB, .length = 2 * MiB},   {.iova = 1 * GiB, .length = 128 * KiB},
};

static const MigdIovaRange two[] = {
    {.iova = 2 * MiB, .length = 1 * MiB},
    {.iova = 32 * MiB, .length = 256 * KiB},
};

/* ---- the simulator's record ---- */

static void
test_sim_dma_record(void **state)
{
	g_autoptr(MigdDevice) dev =
	    migd_test_sim_device("mlx5:seed=1,dma_pattern=sequential", NULL);
	MigdSimDevice *sim = MIGD_SIM_DEVICE(dev);
	const MigdIovaRange range = {.iova = 1 * MiB, .length = 256 * KiB};
	g_autoptr(GArray) none = NULL;
	g_autoptr(GArray) record = NULL;
	g_autoptr(GArray) again = NULL;
	g_autoptr(GArray) off = NULL;
	g_autofree guint64 *bitmap = g_new0(guint64, 1);
	g_autoptr(GError) error = NULL;
	guint64 page_size = PAGE;
	guint64 pages = 0;

	assert_true(migd_device_dma_logging_start(dev, &range, 1, &page_size, &error));
	assert_int_equal(page_size, PAGE);
	/* off by default: nothing is kept */
	assert_int_equal(migd_sim_device_dma_write(sim, 4 * PAGE), 4);
	none = migd_sim_device_take_dma_record(sim);
	assert_int_equal(none->len, 0);
	assert_true(
	    migd_device_dma_logging_report(dev, range.iova, range.length, PAGE, bitmap, &error));

	migd_sim_device_set_dma_record(sim, TRUE);
	/* sequential goes on where it was: pages 4..9, then 10..11, joined in one range */
	assert_int_equal(migd_sim_device_dma_write(sim, 6 * PAGE), 6);
	assert_int_equal(migd_sim_device_dma_write(sim, 2 * PAGE), 2);
	record = migd_sim_device_take_dma_record(sim);
	assert_int_equal(record->len, 1);
	assert_int_equal(g_array_index(record, MigdIovaRange, 0).iova, range.iova + 4 * PAGE);
	assert_int_equal(g_array_index(record, MigdIovaRange, 0).length, 8 * PAGE);
	/* what the log reports is what the record says */
	memset(bitmap, 0, sizeof(guint64));
	assert_true(
	    migd_device_dma_logging_report(dev, range.iova, range.length, PAGE, bitmap, &error));
	assert_int_equal(bitmap[0], 0xffull << 4);
	for (guint i = 0; i < record->len; i++)
		pages += g_array_index(record, MigdIovaRange, i).length / PAGE;
	assert_int_equal(pages, 8);
	/* read and cleared */
	again = migd_sim_device_take_dma_record(sim);
	assert_int_equal(again->len, 0);

	/* disabled: what was not taken is dropped */
	assert_int_equal(migd_sim_device_dma_write(sim, PAGE), 1);
	migd_sim_device_set_dma_record(sim, FALSE);
	off = migd_sim_device_take_dma_record(sim);
	assert_int_equal(off->len, 0);
	assert_true(migd_device_dma_logging_stop(dev, &error));
	assert_null(error);
}

/* the IOMMU's tracking records the same way, with the device's own pattern */
static void
test_sim_dma_record_iommu(void **state)
{
	g_autoptr(MigdDevice) dev = migd_test_sim_device("mtty:seed=2,dma_pattern=random", NULL);
	MigdSimDevice *sim = MIGD_SIM_DEVICE(dev);
	const MigdIovaRange range = {.iova = 0, .length = 64 * PAGE};
	g_autoptr(GArray) record = NULL;
	g_autoptr(GHashTable) written = pages_new();
	g_autoptr(GError) error = NULL;
	guint64 bitmap[1] = {0};
	guint64 page_size = PAGE;
	guint64 reported = 0;

	migd_sim_device_set_dma_record(sim, TRUE);
	assert_true(migd_device_iommu_dirty_start(dev, &range, 1, &page_size, &error));
	assert_int_equal(migd_sim_device_dma_write(sim, 20 * PAGE), 20);
	record = migd_sim_device_take_dma_record(sim);
	for (guint i = 0; i < record->len; i++) {
		const MigdIovaRange *r = &g_array_index(record, MigdIovaRange, i);
		for (guint64 a = r->iova; a < r->iova + r->length; a += PAGE)
			pages_add(written, a);
	}
	assert_true(
	    migd_device_iommu_dirty_report(dev, 0, range.length, PAGE, FALSE, bitmap, &error));
	for (guint p = 0; p < 64; p++) {
		gboolean dirty = (bitmap[0] >> p) & 1;
		assert_int_equal(dirty, pages_has(written, p * PAGE));
		reported += dirty;
	}
	assert_true(reported > 0);
	assert_int_equal(reported, g_hash_table_size(written));
	assert_true(migd_device_iommu_dirty_stop(dev, &error));
}

/* ---- consumers ---- */

/* device DMA logging (mlx5 with combined ranges, pds), the peer and two VMM consumers */
static void
test_consumers_device_logging(void **state)
{
	g_autoptr(Fx) fx = fx_new();

	fx_add_device(fx, "mlx5:seed=3,dma_pattern=random", MIGD_DIRTY_TRACKER_DEVICE, six,
		      G_N_ELEMENTS(six), "device");
	fx_add_device(fx, "pds:seed=4,dma_pattern=hotspot:30", MIGD_DIRTY_TRACKER_DEVICE, two,
		      G_N_ELEMENTS(two), "device");
	fx_add_consumer(fx);
	fx_add_consumer(fx);
	fx_ready(fx);
	fx_interleave(fx, 120, 1);
	assert_true(fx->written > 500);
	assert_true(fx->checked > fx->written / 4);
}

/* one VMM consumer alternating with the peer, sequential DMA: the common case */
static void
test_consumers_one_vmm(void **state)
{
	g_autoptr(Fx) fx = fx_new();
	guint vmm;

	fx_add_device(fx, "mlx5:seed=5,dma_pattern=sequential", MIGD_DIRTY_TRACKER_DEVICE, two,
		      G_N_ELEMENTS(two), "device");
	vmm = fx_add_consumer(fx);
	fx_ready(fx);
	/* a write seen by the peer's sync is still owed to the VMM, and the other way round */
	fx_write(fx, 0, 10 * PAGE);
	fx_sync(fx);
	fx_write(fx, 0, 3 * PAGE);
	fx_take(fx, vmm, 0);
	fx_take(fx, vmm, 0);
	fx_write(fx, 0, 5 * PAGE);
	fx_sync(fx);
	fx_sync(fx);
	fx_write(fx, 0, 7 * PAGE);
	fx_take(fx, vmm, 0);
	fx_sync(fx);
	fx_interleave(fx, 60, 2);
	assert_true(fx->checked > 0);
}

/* the IOMMU: type1 (mtty) and an iommufd HWPT (mlx5 told to use the IOMMU) */
static void
test_consumers_iommu(void **state)
{
	g_autoptr(Fx) fx = fx_new();

	fx_add_device(fx, "mtty:seed=6,dma_pattern=random", MIGD_DIRTY_TRACKER_IOMMU, six,
		      G_N_ELEMENTS(six), "iommu");
	fx_add_device(fx, "mlx5:seed=7,dma_pattern=random", MIGD_DIRTY_TRACKER_IOMMU, two,
		      G_N_ELEMENTS(two), "iommu");
	fx_add_consumer(fx);
	fx_ready(fx);
	fx_interleave(fx, 100, 3);
	assert_true(fx->written > 300);
}

/* all-dirty: every page of every window in every result, for every consumer */
static void
test_consumers_all_dirty(void **state)
{
	g_autoptr(Fx) fx = fx_new();

	fx_add_device(fx, "hisi_acc:seed=8,dma_pattern=random", MIGD_DIRTY_TRACKER_NONE, two,
		      G_N_ELEMENTS(two), "all-dirty");
	fx_add_device(fx, "mlx5:seed=9,dma_pattern=random", MIGD_DIRTY_TRACKER_DEVICE, two,
		      G_N_ELEMENTS(two), "device");
	fx_add_consumer(fx);
	fx_ready(fx);
	fx_interleave(fx, 40, 4);
}

/*
 * A tracker error (mlx5's first REPORT fails, report_eio): that report counts
 * every page, for the consumer that read it and for every other one
 */
static void
test_consumers_tracker_error(void **state)
{
	g_autoptr(Fx) fx = fx_new();
	guint vmm;

	fx_add_device(fx, "mlx5:seed=10,dma_pattern=random,report_eio=1", MIGD_DIRTY_TRACKER_DEVICE,
		      two, G_N_ELEMENTS(two), "device");
	vmm = fx_add_consumer(fx);
	fx_ready(fx);
	fx->all_owed[0] = fx->all_owed[1] = TRUE;
	fx_write(fx, 0, 8 * PAGE);
	fx_take(fx, vmm, 0);
	fx_write(fx, 0, 8 * PAGE);
	fx_sync(fx);
	fx_interleave(fx, 30, 5);
}

/* while the device writes at its dma_rate, also during the REPORTs: nothing lost, nothing made up
 */
static void
test_consumers_concurrent_dma(void **state)
{
	g_autoptr(Fx) fx = fx_new();
	g_autoptr(GRand) rand = g_rand_new_with_seed(6);
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) written = pages_new();
	GHashTable *seen[2][2];
	GArray *windows[2];
	guint vmm;

	fx_add_device(fx, "mlx5:seed=11,dma_pattern=random,dma_rate=4M", MIGD_DIRTY_TRACKER_DEVICE,
		      six, G_N_ELEMENTS(six), "device");
	fx_add_device(fx, "mtty:seed=12,dma_pattern=hotspot:50,dma_rate=2M",
		      MIGD_DIRTY_TRACKER_IOMMU, two, G_N_ELEMENTS(two), "iommu");
	vmm = fx_add_consumer(fx);
	fx_ready(fx);
	for (guint c = 0; c < 2; c++)
		for (guint d = 0; d < 2; d++)
			seen[c][d] = pages_new();
	for (guint d = 0; d < 2; d++)
		windows[d] = g_array_new(FALSE, FALSE, sizeof(Window));

	for (guint s = 0; s < 40; s++) {
		guint d = g_rand_int_range(rand, 0, 2);
		Done done = {0};

		g_usleep(g_rand_int_range(rand, 1, 8) * 1000);
		if (g_rand_boolean(rand)) {
			g_autoptr(GPtrArray) chunks = NULL;
			g_autoptr(GPtrArray) results =
			    g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);
			g_autoptr(GPtrArray) wins =
			    g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);

			migd_dirty_source_sync_async(fx->src, s, done_cb, &done);
			wait_done(&done);
			chunks = migd_dirty_source_sync_finish(fx->src, done.result, NULL, &error);
			g_object_unref(done.result);
			assert_non_null(chunks);
			decode_chunks(fx, chunks, results, wins);
			for (guint e = 0; e < 2; e++) {
				GHashTableIter iter;
				gpointer key;
				g_hash_table_iter_init(&iter, g_ptr_array_index(results, e));
				while (g_hash_table_iter_next(&iter, &key, NULL))
					pages_add(seen[0][e], (guint64) * (gint64 *)key);
				if (windows[e]->len == 0)
					g_array_append_vals(
					    windows[e],
					    ((GArray *)g_ptr_array_index(wins, e))->data,
					    ((GArray *)g_ptr_array_index(wins, e))->len);
			}
		} else {
			g_autoptr(GArray) wins = g_array_new(FALSE, FALSE, sizeof(Window));
			g_autoptr(GHashTable) pages = NULL;
			GHashTableIter iter;
			gpointer key;
			guint32 rounds;
			gint fd;

			migd_dirty_source_take_bitmap_async(fx->src, vmm, d, NULL, done_cb, &done);
			wait_done(&done);
			fd = migd_dirty_source_take_bitmap_finish(fx->src, done.result, &error);
			g_object_unref(done.result);
			assert_true(fd >= 0);
			pages = read_take(fd, wins, &rounds);
			close(fd);
			g_hash_table_iter_init(&iter, pages);
			while (g_hash_table_iter_next(&iter, &key, NULL))
				pages_add(seen[1][d], (guint64) * (gint64 *)key);
		}
	}
	/* the devices stop: no more DMA; each consumer reads once more */
	for (guint d = 0; d < 2; d++)
		assert_true(migd_device_transition(g_ptr_array_index(fx->devices, d),
						   MIGD_STATE_STOP, MIGD_STATE_RUNNING, NULL, NULL,
						   &error));
	{
		Done done = {0};
		g_autoptr(GPtrArray) chunks = NULL;
		g_autoptr(GPtrArray) results =
		    g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);
		g_autoptr(GPtrArray) wins =
		    g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);

		migd_dirty_source_sync_async(fx->src, 100, done_cb, &done);
		wait_done(&done);
		chunks = migd_dirty_source_sync_finish(fx->src, done.result, NULL, &error);
		g_object_unref(done.result);
		assert_non_null(chunks);
		decode_chunks(fx, chunks, results, wins);
		for (guint e = 0; e < 2; e++) {
			GHashTableIter iter;
			gpointer key;
			g_hash_table_iter_init(&iter, g_ptr_array_index(results, e));
			while (g_hash_table_iter_next(&iter, &key, NULL))
				pages_add(seen[0][e], (guint64) * (gint64 *)key);
			g_array_set_size(windows[e], 0);
			g_array_append_vals(windows[e],
					    ((GArray *)g_ptr_array_index(wins, e))->data,
					    ((GArray *)g_ptr_array_index(wins, e))->len);
		}
	}
	for (guint d = 0; d < 2; d++) {
		Done done = {0};
		g_autoptr(GArray) wins = g_array_new(FALSE, FALSE, sizeof(Window));
		g_autoptr(GHashTable) pages = NULL;
		GHashTableIter iter;
		gpointer key;
		guint32 rounds;
		gint fd;

		migd_dirty_source_take_bitmap_async(fx->src, vmm, d, NULL, done_cb, &done);
		wait_done(&done);
		fd = migd_dirty_source_take_bitmap_finish(fx->src, done.result, &error);
		g_object_unref(done.result);
		assert_true(fd >= 0);
		pages = read_take(fd, wins, &rounds);
		close(fd);
		g_hash_table_iter_init(&iter, pages);
		while (g_hash_table_iter_next(&iter, &key, NULL))
			pages_add(seen[1][d], (guint64) * (gint64 *)key);
	}

	/* the simulator's record of the whole run, inside the windows, is what each consumer saw */
	for (guint d = 0; d < 2; d++) {
		g_autoptr(GArray) record =
		    migd_sim_device_take_dma_record(g_ptr_array_index(fx->devices, d));
		guint64 n_written = 0;

		g_hash_table_remove_all(written);
		for (guint i = 0; i < record->len; i++) {
			const MigdIovaRange *r = &g_array_index(record, MigdIovaRange, i);
			for (guint64 a = r->iova; a < r->iova + r->length; a += PAGE) {
				if (windows_cover(windows[d], a))
					pages_add(written, a);
			}
		}
		n_written = g_hash_table_size(written);
		assert_true(n_written > 0);
		for (guint c = 0; c < 2; c++) {
			GHashTableIter iter;
			gpointer key;

			if (g_hash_table_size(seen[c][d]) != n_written)
				fail_msg("device %u, consumer %u: saw %u pages, the device wrote "
					 "%" G_GUINT64_FORMAT,
					 d, c, g_hash_table_size(seen[c][d]), n_written);
			g_hash_table_iter_init(&iter, written);
			while (g_hash_table_iter_next(&iter, &key, NULL))
				assert_true(pages_has(seen[c][d], (guint64) * (gint64 *)key));
		}
	}
	for (guint c = 0; c < 2; c++)
		for (guint d = 0; d < 2; d++)
			g_hash_table_unref(seen[c][d]);
	for (guint d = 0; d < 2; d++)
		g_array_unref(windows[d]);
}

/*
 * A take that arrives while a peer sync holds the trackers waits for it (even for
 * another device), and then gets what that sync read as well as its own report;
 * the sync's RAW chunks stay intact although the take reads the windows again
 * before they are decoded.
 */
static void
test_take_queued_behind_sync(void **state)
{
	g_autoptr(Fx) fx = fx_new();
	g_autoptr(GPtrArray) chunks = NULL;
	g_autoptr(GError) error = NULL;
	const MigdIovaRange small = {.iova = 8 * MiB, .length = 64 * PAGE};
	MigdSimDevice *sim0;
	Done sync = {0};
	Done take = {0};
	Done take0 = {0};
	gboolean raw = FALSE;
	guint vmm;
	gint fd;

	fx_add_device(fx, "mlx5:seed=13,dma_pattern=random", MIGD_DIRTY_TRACKER_DEVICE, &small, 1,
		      "device");
	fx_add_device(fx, "pds:seed=14,dma_pattern=random", MIGD_DIRTY_TRACKER_DEVICE, two,
		      G_N_ELEMENTS(two), "device");
	vmm = fx_add_consumer(fx);
	fx_ready(fx);
	sim0 = MIGD_SIM_DEVICE(g_ptr_array_index(fx->devices, 0));

	/* dense in a small window: RAW */
	fx_write(fx, 0, 40 * PAGE);
	fx_write(fx, 1, 30 * PAGE);
	fx_collect(fx);
	done_counter = 0;
	/* the sync's first REPORT waits for the device's lock */
	g_mutex_lock(&sim0->lock);
	migd_dirty_source_sync_async(fx->src, 1, done_cb, &sync);
	migd_dirty_source_take_bitmap_async(fx->src, vmm, 1, NULL, done_cb, &take);
	migd_dirty_source_take_bitmap_async(fx->src, vmm, 0, NULL, done_cb, &take0);
	/* a second peer sync while one is in flight: refused, as always */
	{
		Done again = {0};
		g_autoptr(GPtrArray) none = NULL;
		g_autoptr(GError) busy = NULL;

		migd_dirty_source_sync_async(fx->src, 2, done_cb, &again);
		wait_done(&again);
		none = migd_dirty_source_sync_finish(fx->src, again.result, NULL, &busy);
		g_object_unref(again.result);
		assert_null(none);
		assert_true(g_error_matches(busy, MIGD_ERROR, MIGD_ERROR_FAILED));
		assert_non_null(strstr(busy->message, "already syncing"));
		done_counter = 0;
	}
	spin(150);
	/* device 1's take does not run beside the sync */
	assert_null(sync.result);
	assert_null(take.result);
	assert_null(take0.result);
	g_mutex_unlock(&sim0->lock);
	wait_done(&sync);
	wait_done(&take);
	wait_done(&take0);
	assert_int_equal(sync.order, 1);
	assert_int_equal(take.order, 2);
	assert_int_equal(take0.order, 3);

	/* the takes ran first and read the windows again: the chunks must still decode */
	chunks = migd_dirty_source_sync_finish(fx->src, sync.result, NULL, &error);
	g_object_unref(sync.result);
	assert_non_null(chunks);
	for (guint i = 0; i < chunks->len; i++) {
		const MigdDirtyChunk *ch = g_ptr_array_index(chunks, i);
		raw |= ch->device == 0 && ch->encoded.encoding == MIGD_DIRTY_ENCODING_RAW;
	}
	assert_true(raw);
	fx_check_sync(fx, chunks);
	fd = migd_dirty_source_take_bitmap_finish(fx->src, take.result, &error);
	g_object_unref(take.result);
	assert_true(fd >= 0);
	fx_check_take(fx, vmm, 1, fd);
	fd = migd_dirty_source_take_bitmap_finish(fx->src, take0.result, &error);
	g_object_unref(take0.result);
	assert_true(fd >= 0);
	fx_check_take(fx, vmm, 0, fd);
	/* and on from there */
	fx_interleave(fx, 20, 7);
}

/* a take cancelled while it waits reads nothing, so nothing is lost */
static void
test_take_cancelled_while_queued(void **state)
{
	g_autoptr(Fx) fx = fx_new();
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GPtrArray) chunks = NULL;
	g_autoptr(GError) error = NULL;
	MigdSimDevice *sim0;
	Done sync = {0};
	Done take = {0};
	guint vmm;

	fx_add_device(fx, "mlx5:seed=15,dma_pattern=random", MIGD_DIRTY_TRACKER_DEVICE, two,
		      G_N_ELEMENTS(two), "device");
	vmm = fx_add_consumer(fx);
	fx_ready(fx);
	sim0 = MIGD_SIM_DEVICE(g_ptr_array_index(fx->devices, 0));
	fx_write(fx, 0, 12 * PAGE);
	fx_collect(fx);
	g_mutex_lock(&sim0->lock);
	migd_dirty_source_sync_async(fx->src, 1, done_cb, &sync);
	migd_dirty_source_take_bitmap_async(fx->src, vmm, 0, cancellable, done_cb, &take);
	g_cancellable_cancel(cancellable);
	g_mutex_unlock(&sim0->lock);
	wait_done(&sync);
	wait_done(&take);
	chunks = migd_dirty_source_sync_finish(fx->src, sync.result, NULL, &error);
	g_object_unref(sync.result);
	assert_non_null(chunks);
	fx_check_sync(fx, chunks);
	assert_int_equal(migd_dirty_source_take_bitmap_finish(fx->src, take.result, &error), -1);
	g_object_unref(take.result);
	assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
	/* the next take has the sync's pages */
	fx_write(fx, 0, 4 * PAGE);
	fx_take(fx, vmm, 0);
}

/*
 * After stop (the final sync read, trackers stopped) a take returns what is
 * pending, without a report, once; the peer's sync fails as it always did
 */
static void
test_take_after_stop(void **state)
{
	g_autoptr(Fx) fx = fx_new();
	g_autoptr(GError) error = NULL;
	Done done = {0};
	g_autoptr(GPtrArray) chunks = NULL;
	guint vmm, other;

	fx_add_device(fx, "mlx5:seed=16,dma_pattern=random", MIGD_DIRTY_TRACKER_DEVICE, six,
		      G_N_ELEMENTS(six), "device");
	fx_add_device(fx, "mtty:seed=17,dma_pattern=random", MIGD_DIRTY_TRACKER_IOMMU, two,
		      G_N_ELEMENTS(two), "iommu");
	vmm = fx_add_consumer(fx);
	other = fx_add_consumer(fx);
	fx_ready(fx);
	fx_write(fx, 0, 20 * PAGE);
	fx_write(fx, 1, 20 * PAGE);
	fx_sync(fx);
	fx_write(fx, 0, 10 * PAGE);
	fx_take(fx, other, 0);
	fx_write(fx, 0, 10 * PAGE);
	fx_write(fx, 1, 10 * PAGE);
	/* the final sync after the devices stopped, then stop */
	fx_sync(fx);
	migd_dirty_source_stop(fx->src);
	for (guint d = 0; d < 2; d++) {
		MigdSimDevice *sim = MIGD_SIM_DEVICE(g_ptr_array_index(fx->devices, d));
		assert_false(migd_sim_device_dirty_is_active(sim));
		assert_false(migd_sim_device_iommu_dirty_is_active(sim));
		/* nothing tracks any more: no DMA reaches a bitmap or the record */
		assert_int_equal(migd_sim_device_dma_write(sim, 8 * PAGE), 0);
	}
	assert_true(g_hash_table_size(OWED(fx, vmm, 0)) > 0);
	fx_take(fx, vmm, 0);
	fx_take(fx, vmm, 1);
	fx_take(fx, other, 0);
	fx_take(fx, other, 1);
	/* once: then nothing is pending */
	fx_take(fx, vmm, 0);
	assert_int_equal(fx->takes[vmm * 2 + 0], 2);

	migd_dirty_source_sync_async(fx->src, 9, done_cb, &done);
	wait_done(&done);
	chunks = migd_dirty_source_sync_finish(fx->src, done.result, NULL, &error);
	g_object_unref(done.result);
	assert_null(chunks);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_FAILED));
	assert_non_null(strstr(error->message, "stopped"));
}

static void
expect_take_error(Fx *fx, guint c, guint d)
{
	g_autoptr(GError) error = NULL;
	Done done = {0};

	migd_dirty_source_take_bitmap_async(fx->src, c, d, NULL, done_cb, &done);
	wait_done(&done);
	assert_int_equal(migd_dirty_source_take_bitmap_finish(fx->src, done.result, &error), -1);
	g_object_unref(done.result);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
}

static void
test_errors(void **state)
{
	g_autoptr(Fx) fx = fx_new();
	g_autoptr(MigdDevice) bare = migd_test_sim_device("mlx5:seed=18", NULL);
	g_autoptr(GError) error = NULL;
	guint vmm;

	fx_add_device(fx, "mlx5:seed=19,dma_pattern=random", MIGD_DIRTY_TRACKER_DEVICE, two,
		      G_N_ELEMENTS(two), "device");
	/* job index 1 has no IOVA ranges: not tracked */
	assert_true(migd_dirty_source_add_device(fx->src, 1, bare, NULL, MIGD_DIRTY_FALLBACK_ALLOW,
						 &error));
	assert_int_equal(migd_dirty_source_get_n_tracked(fx->src), 1);
	/* no extra consumer yet: any take is refused */
	expect_take_error(fx, 1, 0);
	vmm = fx_add_consumer(fx);
	fx_ready(fx);
	expect_take_error(fx, 0, 0); /* the peer stream syncs, it does not take */
	expect_take_error(fx, vmm + 1, 0);
	expect_take_error(fx, vmm, 1); /* untracked */
	expect_take_error(fx, vmm, 7); /* no such device */
	/* refused takes read nothing: the write is still owed to both */
	fx_write(fx, 0, 9 * PAGE);
	fx_take(fx, vmm, 0);
	fx_sync(fx);
	/* too late for a new consumer: it would have missed what was read */
	assert_int_equal(migd_dirty_source_add_consumer(fx->src, &error), 0);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_FAILED));
}

/* without extra consumers the peer's sync is as it always was, and takes are refused */
static void
test_peer_alone(void **state)
{
	g_autoptr(Fx) fx = fx_new();

	fx_add_device(fx, "pds:seed=20,dma_pattern=random", MIGD_DIRTY_TRACKER_DEVICE, six,
		      G_N_ELEMENTS(six), "device");
	fx_ready(fx);
	for (guint i = 0; i < 10; i++) {
		fx_write(fx, 0, (i + 1) * 7 * PAGE);
		fx_sync(fx);
	}
	fx_sync(fx);
	expect_take_error(fx, 1, 0);
	assert_true(fx->checked > 0);
}

/* the pages of a device's DMA record (inside @window) */
static GHashTable *
record_pages(MigdDevice *dev, const MigdIovaRange *window)
{
	g_autoptr(GArray) record = migd_sim_device_take_dma_record(MIGD_SIM_DEVICE(dev));
	GHashTable *pages = pages_new();

	for (guint i = 0; i < record->len; i++) {
		const MigdIovaRange *r = &g_array_index(record, MigdIovaRange, i);
		for (guint64 a = r->iova; a < r->iova + r->length; a += PAGE) {
			if (a >= window->iova && a < window->iova + window->length)
				pages_add(pages, a);
		}
	}
	return pages;
}

static void
assert_pages_equal(GHashTable *a, GHashTable *b)
{
	GHashTableIter iter;
	gpointer key;

	assert_int_equal(g_hash_table_size(a), g_hash_table_size(b));
	g_hash_table_iter_init(&iter, a);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		assert_true(pages_has(b, (guint64) * (gint64 *)key));
}

/*
 * A sync's chunks (RAW ones among them) stay intact while a take reads and
 * rewrites the tracker's windows before the caller finished the sync
 */
static void
test_sync_chunks_outlive_take(void **state)
{
	g_autoptr(Fx) fx = fx_new();
	const MigdIovaRange small = {.iova = 8 * MiB, .length = 64 * PAGE};
	g_autoptr(GHashTable) first = NULL;
	g_autoptr(GHashTable) second = NULL;
	g_autoptr(GHashTable) both = pages_new();
	g_autoptr(GPtrArray) chunks = NULL;
	g_autoptr(GPtrArray) results =
	    g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);
	g_autoptr(GPtrArray) windows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
	g_autoptr(GArray) take_windows = g_array_new(FALSE, FALSE, sizeof(Window));
	g_autoptr(GHashTable) taken = NULL;
	g_autoptr(GError) error = NULL;
	MigdDevice *dev;
	GHashTableIter iter;
	gpointer key;
	gboolean fresh = FALSE;
	gboolean raw = FALSE;
	Done sync = {0};
	Done take = {0};
	guint32 rounds = 0;
	guint vmm;
	gint fd;

	fx_add_device(fx, "mlx5:seed=21,dma_pattern=random", MIGD_DIRTY_TRACKER_DEVICE, &small, 1,
		      "device");
	vmm = fx_add_consumer(fx);
	fx_ready(fx);
	dev = g_ptr_array_index(fx->devices, 0);

	/* dense in a small window: the sync's chunk is RAW */
	fx_write(fx, 0, 40 * PAGE);
	first = record_pages(dev, &small);
	migd_dirty_source_sync_async(fx->src, 1, done_cb, &sync);
	wait_done(&sync);
	/* more DMA, then the VMM's take reads the windows again */
	fx_write(fx, 0, 24 * PAGE);
	second = record_pages(dev, &small);
	g_hash_table_iter_init(&iter, second);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		fresh |= !pages_has(first, (guint64) * (gint64 *)key);
	assert_true(fresh);
	migd_dirty_source_take_bitmap_async(fx->src, vmm, 0, NULL, done_cb, &take);
	wait_done(&take);
	fd = migd_dirty_source_take_bitmap_finish(fx->src, take.result, &error);
	g_object_unref(take.result);
	assert_true(fd >= 0);
	taken = read_take(fd, take_windows, &rounds);
	close(fd);
	/* the VMM gets both: what the peer's sync read, and its own report */
	g_hash_table_iter_init(&iter, first);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		pages_add(both, (guint64) * (gint64 *)key);
	g_hash_table_iter_init(&iter, second);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		pages_add(both, (guint64) * (gint64 *)key);
	assert_pages_equal(taken, both);

	/* the peer's chunks, finished only now, are the first writes alone (checksums hold) */
	chunks = migd_dirty_source_sync_finish(fx->src, sync.result, NULL, &error);
	g_object_unref(sync.result);
	assert_non_null(chunks);
	for (guint i = 0; i < chunks->len; i++)
		raw |= ((MigdDirtyChunk *)g_ptr_array_index(chunks, i))->encoded.encoding ==
		       MIGD_DIRTY_ENCODING_RAW;
	assert_true(raw);
	decode_chunks(fx, chunks, results, windows);
	assert_pages_equal(g_ptr_array_index(results, 0), first);
}

/* the dirty pages of a take's file, as page indices of its one window at @page_size */
static GArray *
take_one_window(MigdDirtySource *src, guint c, guint d, guint64 page_size, guint64 n_pages)
{
	g_autoptr(GByteArray) data = g_byte_array_new();
	g_autoptr(MigdDirtyFile) file = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error = NULL;
	GArray *dirty = g_array_new(FALSE, FALSE, sizeof(guint64));
	Done done = {0};
	guint8 buf[4096];
	gssize n;
	gint fd;

	migd_dirty_source_take_bitmap_async(src, c, d, NULL, done_cb, &done);
	wait_done(&done);
	fd = migd_dirty_source_take_bitmap_finish(src, done.result, &error);
	g_object_unref(done.result);
	assert_true(fd >= 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		g_byte_array_append(data, buf, n);
	close(fd);
	bytes = g_byte_array_free_to_bytes(g_steal_pointer(&data));
	file = migd_dirty_file_parse(bytes, &error);
	assert_non_null(file);
	assert_int_equal(file->page_size, page_size);
	assert_int_equal(file->n_windows, 1);
	assert_int_equal(file->windows[0].n_pages, n_pages);
	for (guint64 p = 0; p < n_pages; p++) {
		if (migd_dirty_file_page_is_dirty(file, 0, p))
			g_array_append_val(dirty, p);
	}
	return dirty;
}

/* the dirty pages of a sync's one window at @page_size */
static GArray *
sync_one_window(MigdDirtySource *src, guint64 page_size, guint64 n_pages)
{
	g_autoptr(GPtrArray) chunks = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree guint64 *bits = g_new0(guint64, (n_pages + 63) / 64);
	GArray *dirty = g_array_new(FALSE, FALSE, sizeof(guint64));
	const MigdDirtyChunk *ch;
	Done done = {0};
	gsize len = 0;
	const guint8 *payload;

	migd_dirty_source_sync_async(src, 1, done_cb, &done);
	wait_done(&done);
	chunks = migd_dirty_source_sync_finish(src, done.result, NULL, &error);
	g_object_unref(done.result);
	assert_non_null(chunks);
	assert_int_equal(chunks->len, 1);
	ch = g_ptr_array_index(chunks, 0);
	assert_int_equal(ch->page_size, page_size);
	assert_int_equal(ch->window_pages, n_pages);
	payload = g_bytes_get_data(ch->encoded.data, &len);
	assert_true(migd_dirty_decode_merge(ch->encoded.encoding, payload, len, ch->encoded.n_pages,
					    ch->encoded.n_dirty, ch->encoded.checksum, bits,
					    &error));
	for (guint64 p = 0; p < n_pages; p++) {
		if ((bits[p / 64] >> (p % 64)) & 1)
			g_array_append_val(dirty, p);
	}
	return dirty;
}

/*
 * A tracker error whose restart comes back at another page size rebuilds the
 * windows: what the other consumers had pending cannot be moved page by page,
 * so every page is pending for them (nothing lost); then exact again
 */
static void
test_window_change(void **state)
{
	g_autoptr(FakeDevice) fake = g_object_new(FAKE_TYPE_DEVICE, NULL);
	g_autoptr(MigdPlugin) plugin = test_plugin_new(MIGD_DIRTY_TRACKER_IOMMU);
	g_autoptr(MigdDirtySource) src = migd_dirty_source_new();
	g_autoptr(GError) error = NULL;
	const MigdIovaRange mapped = {.iova = 64 * KiB, .length = 1 * MiB};
	g_autoptr(GArray) a = NULL;
	g_autoptr(GArray) b = NULL;
	g_autoptr(GArray) c = NULL;
	g_autoptr(GArray) d = NULL;
	g_autoptr(GArray) e = NULL;
	guint vmm;

	/* 16 KiB pages at first: 64 of them, one word of bitmap */
	fake->answer_page_size = 16 * KiB;
	migd_device_set_iova_ranges(MIGD_DEVICE(fake), &mapped, 1);
	assert_true(migd_dirty_source_add_device(src, 0, MIGD_DEVICE(fake), plugin,
						 MIGD_DIRTY_FALLBACK_REFUSE, &error));
	assert_string_equal(migd_dirty_source_get_kind(src, 0), "iommu");
	vmm = migd_dirty_source_add_consumer(src, &error);
	assert_int_equal(vmm, 1);

	/* the peer reads page 2, which the VMM is then owed */
	migd_sim_dirty_record_dma_write(fake->iommu, 100 * KiB, 1);
	a = sync_one_window(src, 16 * KiB, 64);
	assert_int_equal(a->len, 1);
	assert_int_equal(g_array_index(a, guint64, 0), 2);

	/*
	 * the VMM's report fails; the restart answers 4 KiB: 256 pages (four words
	 * per bitmap), all dirty, for both consumers
	 */
	fake->answer_page_size = PAGE;
	migd_sim_dirty_inject_report_error(fake->iommu, 0);
	b = take_one_window(src, vmm, 0, PAGE, 256);
	assert_int_equal(b->len, 256);
	c = sync_one_window(src, PAGE, 256);
	assert_int_equal(c->len, 256);

	/* precise again, at 4 KiB, both ways round */
	migd_sim_dirty_record_dma_write(fake->iommu, 100 * KiB, 1);
	d = sync_one_window(src, PAGE, 256);
	assert_int_equal(d->len, 1);
	assert_int_equal(g_array_index(d, guint64, 0), 9);
	migd_sim_dirty_record_dma_write(fake->iommu, 1 * MiB, 1);
	e = take_one_window(src, vmm, 0, PAGE, 256);
	assert_int_equal(e->len, 2);
	assert_int_equal(g_array_index(e, guint64, 0), 9);
	assert_int_equal(g_array_index(e, guint64, 1), (1 * MiB - 64 * KiB) / PAGE);
}

/*
 * A take whose file cannot be made (no fd left) fails, and keeps what it read
 * for the next take of that consumer; the others lose nothing either
 */
static void
test_take_file_fails(void **state)
{
	g_autoptr(Fx) fx = fx_new();
	g_autoptr(GError) error = NULL;
	struct rlimit saved, low;
	Done done = {0};
	guint vmm;
	gint probe;

	fx_add_device(fx, "mlx5:seed=22,dma_pattern=random", MIGD_DIRTY_TRACKER_DEVICE, six,
		      G_N_ELEMENTS(six), "device");
	vmm = fx_add_consumer(fx);
	fx_ready(fx);
	fx_write(fx, 0, 30 * PAGE);
	fx_sync(fx);
	fx_write(fx, 0, 30 * PAGE);
	fx_collect(fx);

	/* no fd can be opened: memfd_create fails with EMFILE */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	probe = dup(0);
	assert_true(probe >= 0);
	close(probe);
	low = saved;
	low.rlim_cur = probe;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	migd_dirty_source_take_bitmap_async(fx->src, vmm, 0, NULL, done_cb, &done);
	wait_done(&done);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	assert_int_equal(migd_dirty_source_take_bitmap_finish(fx->src, done.result, &error), -1);
	g_object_unref(done.result);
	assert_true(migd_error_matches_errno(error, EMFILE));

	/* the failed take's report reached the peer, and stays owed to the VMM */
	fx_write(fx, 0, 10 * PAGE);
	fx_take(fx, vmm, 0);
	fx_sync(fx);
	fx_interleave(fx, 20, 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    migd_test_log_unit_test(test_sim_dma_record),
	    migd_test_log_unit_test(test_sim_dma_record_iommu),
	    migd_test_log_unit_test(test_consumers_device_logging),
	    migd_test_log_unit_test(test_consumers_one_vmm),
	    migd_test_log_unit_test(test_consumers_iommu),
	    migd_test_log_unit_test(test_consumers_all_dirty),
	    migd_test_log_unit_test(test_consumers_tracker_error),
	    migd_test_log_unit_test(test_consumers_concurrent_dma),
	    migd_test_log_unit_test(test_take_queued_behind_sync),
	    migd_test_log_unit_test(test_sync_chunks_outlive_take),
	    migd_test_log_unit_test(test_take_cancelled_while_queued),
	    migd_test_log_unit_test(test_take_after_stop),
	    migd_test_log_unit_test(test_window_change),
	    migd_test_log_unit_test(test_take_file_fails),
	    migd_test_log_unit_test(test_errors),
	    migd_test_log_unit_test(test_peer_alone),
	};

	migd_test_log_init(MIGD_TEST_LOG_QUIET);
	return cmocka_run_group_tests_name("dirty-consumers", tests, NULL, NULL);
}
