/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Dirty bitmaps through the engines: trackers started on the source devices'
 * IOVA ranges, a sync per pre-copy round and one after the stop, the
 * destination's accumulated bitmap as a sealed memfd; the sink's checks of
 * what a peer sends; a malicious source's bitmap refused with the source
 * devices untouched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine-test-util.h"
#include "migd-dirty-bitmap-file.h"
#include "migd-dirty-bitmap.h"
#include "migd-dirty-sink.h"
#include "migd-sim-device.h"
#include "migd-error.h"
#include "migd-wire-frame.h"
#include "migd-wire-limits.h"

#define GiB (1024ull * 1024 * 1024)
#define MiB (1024ull * 1024)

/* the header of a dirty-bitmap file (docs/ABI/testing/dirty-bitmap-file) */
typedef struct {
	guint32 n_windows;
	guint64 page_size;
	guint64 dirty_pages;
	guint32 rounds;
	guint64 iova[8];
	guint64 pages[8];
	guint64 window_dirty[8];
	guint64 counted; /* set bits actually in the file's bitmaps */
} DirtyFile;

/* reads @fd from where it stands through the one reader of the format, which checks every number */
static MigdDirtyFile *
parse_dirty_fd(gint fd)
{
	g_autoptr(GByteArray) data = g_byte_array_new();
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error = NULL;
	MigdDirtyFile *file;
	guint8 buf[65536];
	gssize n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		g_byte_array_append(data, buf, n);
	bytes = g_byte_array_free_to_bytes(g_steal_pointer(&data));
	file = migd_dirty_file_parse(bytes, &error);
	if (file == NULL)
		fail_msg("dirty-bitmap file: %s", error->message);
	return file;
}

/* the guest IOVA of every dirty page of @file, into @pages (a set of guint64) */
static void
add_dirty_pages(MigdDirtyFile *file, GHashTable *pages)
{
	for (guint w = 0; w < file->n_windows; w++) {
		for (guint64 p = 0; p < file->windows[w].n_pages; p++) {
			guint64 iova = file->windows[w].iova + p * file->page_size;
			if (migd_dirty_file_page_is_dirty(file, w, p))
				g_hash_table_add(pages, g_memdup2(&iova, sizeof(iova)));
		}
	}
}

static void
read_dirty_file(gint fd, DirtyFile *out)
{
	g_autoptr(MigdDirtyFile) file = parse_dirty_fd(fd);

	memset(out, 0, sizeof(*out));
	out->n_windows = file->n_windows;
	out->page_size = file->page_size;
	out->dirty_pages = file->dirty_pages;
	out->rounds = file->rounds;
	assert_true(out->n_windows <= 8);
	for (guint i = 0; i < out->n_windows; i++) {
		out->iova[i] = file->windows[i].iova;
		out->pages[i] = file->windows[i].n_pages;
		out->window_dirty[i] = file->windows[i].dirty_pages;
		for (guint64 p = 0; p < out->pages[i]; p++)
			out->counted += migd_dirty_file_page_is_dirty(file, i, p) ? 1 : 0;
	}
}

static void
set_ranges(MigdDevice *device, const MigdIovaRange *ranges, guint n)
{
	migd_device_set_iova_ranges(device, ranges, n);
}

/* ---- through the engines ---- */

static void
test_migrate_ships_dirty_pages(void **state)
{
	const gchar *src[] = {
	    "mlx5:state_size=8M,seed=1,dirty_rate=4M,dma_pattern=random,dma_rate=64M", "pds:seed=2",
	    NULL};
	const gchar *dst[] = {"mlx5:seed=11", "pds:seed=12", NULL};
	/* two windows with a hole between them: the hole never shows up */
	const MigdIovaRange ranges[] = {{0, 256 * MiB}, {GiB, 256 * MiB}};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(GError) error = NULL;
	DirtyFile file;
	gint fd;

	set_ranges(g_ptr_array_index(fx->src_devices, 0), ranges, G_N_ELEMENTS(ranges));
	assert_non_null(engine_fixture_migrate(fx, NULL, &error));
	engine_fixture_wait(fx, 60);
	if (!migd_job_get_success(fx->src_job))
		fail_msg("source: %s", migd_job_get_message(fx->src_job));
	assert_true(migd_job_get_success(fx->dst_job));
	assert_true(engine_fixture_digest(fx->src_devices, 0) ==
		    engine_fixture_digest(fx->dst_devices, 0));

	/* every sync's pages arrived: both ends count the same */
	assert_true(migd_job_get_dirty_pages(fx->src_job) > 0);
	assert_int_equal(migd_job_get_dirty_pages(fx->src_job),
			 migd_job_get_dirty_pages(fx->dst_job));
	assert_int_equal(migd_job_get_dirty_wire_bytes(fx->src_job),
			 migd_job_get_dirty_wire_bytes(fx->dst_job));

	fd = migd_destination_dup_dirty_bitmap_fd(fx->dest, 0, &error);
	assert_true(fd >= 0);
	read_dirty_file(fd, &file);
	assert_int_equal(file.n_windows, 2);
	assert_int_equal(file.page_size, 4096);
	assert_int_equal(file.iova[0], 0);
	assert_int_equal(file.pages[0], 256 * MiB / 4096);
	assert_int_equal(file.iova[1], GiB);
	assert_int_equal(file.pages[1], 256 * MiB / 4096);
	/* a pre-copy round or more, and the sync after the stop */
	assert_true(file.rounds >= 2);
	assert_int_equal(file.rounds, migd_job_get_precopy_rounds(fx->src_job) + 1);
	/* the union of the syncs: at most their sum, and what the header says */
	assert_true(file.dirty_pages > 0);
	assert_true(file.dirty_pages <= migd_job_get_dirty_pages(fx->src_job));
	assert_int_equal(file.counted, file.dirty_pages);
	assert_int_equal(file.window_dirty[0] + file.window_dirty[1], file.dirty_pages);
	/* sealed: the consumer's copy cannot change */
	assert_int_equal(write(fd, "x", 1), -1);
	assert_true(fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE);
	close(fd);

	/* the untracked device has no bitmap */
	assert_int_equal(migd_destination_dup_dirty_bitmap_fd(fx->dest, 1, &error), -1);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
}

/*
 * hisi_acc has no DMA logging; on a platform whose IOMMU cannot track either, "refuse"
 * moves nothing and every device stays RUNNING
 */
static void
test_no_tracker_refused(void **state)
{
	/* a platform IOMMU that cannot track dirty pages either */
	const gchar *src[] = {"mlx5:state_size=4M,seed=1", "hisi_acc:seed=2,iommu_dirty=0", NULL};
	const gchar *dst[] = {"mlx5:seed=11", "hisi_acc:seed=12", NULL};
	const MigdIovaRange ranges[] = {{0, 64 * MiB}};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	MigdSourceOptions options;

	migd_source_options_init(&options);
	options.dirty_fallback = MIGD_DIRTY_FALLBACK_REFUSE;
	set_ranges(g_ptr_array_index(fx->src_devices, 0), ranges, 1);
	set_ranges(g_ptr_array_index(fx->src_devices, 1), ranges, 1);
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	engine_fixture_wait(fx, 60);
	assert_false(migd_job_get_success(fx->src_job));
	assert_non_null(strstr(migd_job_get_message(fx->src_job), "dirty tracking"));
	assert_int_equal(migd_job_get_bytes(fx->src_job), 0);
	for (guint i = 0; i < 2; i++)
		assert_int_equal(engine_fixture_state(fx->src_devices, i), MIGD_STATE_RUNNING);
	/* the tracker that did start (mlx5) was stopped again: a REPORT finds none */
	{
		guint64 bits[16] = {0};
		assert_false(migd_device_dma_logging_report(g_ptr_array_index(fx->src_devices, 0),
							    0, 64 * MiB / 16, 4096, bits, NULL));
	}
}

/* ... and with "allow", every page of its ranges counts as dirty in every sync */
static void
test_no_tracker_all_dirty(void **state)
{
	const gchar *src[] = {"hisi_acc:seed=2,iommu_dirty=0", NULL};
	const gchar *dst[] = {"hisi_acc:seed=12", NULL};
	const MigdIovaRange ranges[] = {{0, 16 * MiB}, {GiB, 16 * MiB}};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(GError) error = NULL;
	DirtyFile file;
	gint fd;

	set_ranges(g_ptr_array_index(fx->src_devices, 0), ranges, 2);
	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 60);
	if (!migd_job_get_success(fx->src_job))
		fail_msg("source: %s", migd_job_get_message(fx->src_job));
	fd = migd_destination_dup_dirty_bitmap_fd(fx->dest, 0, &error);
	assert_true(fd >= 0);
	read_dirty_file(fd, &file);
	close(fd);
	assert_int_equal(file.dirty_pages, 2 * 16 * MiB / 4096);
	assert_int_equal(migd_job_get_dirty_pages(fx->src_job),
			 (guint64)file.rounds * file.dirty_pages);
}

/* ---- the sink: what a peer sends is checked against what it sent before ---- */

typedef struct {
	Migd__Wire__DirtyBitmapChunk msg;
	MigdDirtyEncoded enc;
	guint64 *bits;
} TestChunk;

static void
test_chunk_make(TestChunk *c, guint32 round, guint window, guint64 iova, guint64 pages,
		guint64 first, guint64 n, guint64 seed)
{
	gsize len = 0;

	memset(c, 0, sizeof(*c));
	c->bits = g_new0(guint64, (n + 63) / 64);
	for (guint64 p = seed % 7; p < n; p += 5 + seed % 11)
		c->bits[p / 64] |= 1ull << (p % 64);
	migd_dirty_encode(c->bits, n, &c->enc);
	migd__wire__dirty_bitmap_chunk__init(&c->msg);
	c->msg.device = 0;
	c->msg.round = round;
	c->msg.window = window;
	c->msg.window_iova = iova;
	c->msg.window_pages = pages;
	c->msg.page_size = 4096;
	c->msg.first_page = first;
	c->msg.n_pages = n;
	c->msg.encoding = (Migd__Wire__DirtyEncoding)c->enc.encoding;
	c->msg.data.data = (guint8 *)g_bytes_get_data(c->enc.data, &len);
	c->msg.data.len = len;
	c->msg.n_dirty = c->enc.n_dirty;
	c->msg.checksum = c->enc.checksum;
}

static void
test_chunk_clear(TestChunk *c)
{
	migd_dirty_encoded_clear(&c->enc);
	g_free(c->bits);
}

static void
assert_merge_fails(MigdDirtySink *sink, TestChunk *c, const gchar *needle)
{
	g_autoptr(GError) error = NULL;
	guint64 before = migd_dirty_sink_get_dirty_pages(sink);

	assert_false(migd_dirty_sink_merge(sink, &c->msg, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
	if (needle != NULL && strstr(error->message, needle) == NULL)
		fail_msg("'%s' does not say '%s'", error->message, needle);
	/* nothing merged */
	assert_int_equal(migd_dirty_sink_get_dirty_pages(sink), before);
}

static void
test_sink_checks(void **state)
{
	g_autoptr(MigdDirtySink) sink = migd_dirty_sink_new("dev");
	g_autoptr(GError) error = NULL;
	TestChunk a, b, c;

	test_chunk_make(&a, 2, 0, 0, 4096, 0, 4096, 1);
	assert_true(migd_dirty_sink_merge(sink, &a.msg, &error));
	assert_int_equal(migd_dirty_sink_get_dirty_pages(sink), a.enc.n_dirty);

	/* an older round */
	test_chunk_make(&b, 1, 0, 0, 4096, 0, 4096, 2);
	assert_merge_fails(sink, &b, "round 1 after round 2");
	/* the same window with another geometry */
	b.msg.round = 2;
	b.msg.window_pages = 8192;
	assert_merge_fails(sink, &b, "window 0 was");
	b.msg.window_pages = 4096;
	/* another page size */
	b.msg.page_size = 8192;
	assert_merge_fails(sink, &b, "page size 8192 after 4096");
	b.msg.page_size = 4096;
	/* a corrupted checksum or count: refused by the decoder, nothing merged */
	b.msg.checksum ^= 1;
	assert_merge_fails(sink, &b, NULL);
	b.msg.checksum ^= 1;
	assert_true(migd_dirty_sink_merge(sink, &b.msg, &error));
	test_chunk_clear(&b);

	/* a window overlapping window 0 */
	test_chunk_make(&c, 2, 1, 4096 * 100, 64, 0, 64, 3);
	assert_merge_fails(sink, &c, "overlaps window 0");
	/* beyond what one device may hold */
	c.msg.window_iova = 1ull << 40;
	c.msg.window_pages = MIGD_WIRE_MAX_DIRTY_PAGES_PER_DEVICE;
	assert_merge_fails(sink, &c, "exceeds the limit");
	/* a far jump in window numbers */
	c.msg.window_pages = 64;
	c.msg.window = 1000;
	assert_merge_fails(sink, &c, "out of sequence");
	c.msg.window = 1;
	assert_true(migd_dirty_sink_merge(sink, &c.msg, &error));
	assert_int_equal(migd_dirty_sink_get_n_windows(sink), 2);
	test_chunk_clear(&c);
	test_chunk_clear(&a);
}

/* ---- a malicious source: a bitmap that lies about its checksum ---- */

typedef struct {
	gchar *address;
	MigdDevice *like; /* a device like the destination's, for the offer */
	gboolean got_abort;
	guint32 abort_reason;
	gint done; /* atomic: the thread read its answer and closed */
} RawSource;

static gpointer
raw_source_thread(gpointer user_data)
{
	RawSource *rs = user_data;
	g_autoptr(MigdWireDecoder) decoder = migd_wire_decoder_new();
	MigdWireFrame *frame;
	TestChunk bad;
	gint fd = engine_raw_connect(rs->address);

	g_assert(fd >= 0);
	g_assert(engine_raw_hello_offer(fd, decoder, MIGD_WIRE_CAP_DIRTY_BITMAP, rs->like));

	/* a well-formed chunk whose checksum is off by one bit */
	test_chunk_make(&bad, 1, 0, 0, 1024, 0, 1024, 5);
	bad.msg.checksum ^= 1;
	g_assert(engine_raw_send(fd, MIGD__WIRE__MESSAGE_TYPE__MSG_DIRTY_BITMAP_CHUNK, &bad.msg));
	test_chunk_clear(&bad);
	frame = engine_raw_next(fd, decoder);
	if (frame != NULL && frame->type == MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT) {
		rs->got_abort = TRUE;
		rs->abort_reason = frame->abort->reason;
	}
	if (frame != NULL)
		migd_wire_frame_free(frame);
	close(fd);
	g_atomic_int_set(&rs->done, 1);
	return NULL;
}

static void
test_bad_bitmap_from_source(void **state)
{
	const gchar *src[] = {"mlx5:seed=1", NULL};
	const gchar *dst[] = {"mlx5:seed=11", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	RawSource rs = {.address = fx->address, .like = g_ptr_array_index(fx->src_devices, 0)};
	GThread *thread = g_thread_new("raw-source", raw_source_thread, &rs);
	gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

	/*
	 * Until the thread is done too: the Abort it reads is written by this main loop, which
	 * may still hold it when the job has finished (joining then waited forever under ASan).
	 */
	while ((fx->dst_job == NULL || !migd_job_is_finished(fx->dst_job) ||
		!g_atomic_int_get(&rs.done)) &&
	       g_get_monotonic_time() < deadline) {
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(1000);
	}
	assert_true(g_atomic_int_get(&rs.done));
	g_thread_join(thread);
	assert_non_null(fx->dst_job);
	assert_true(migd_job_is_finished(fx->dst_job));
	assert_false(migd_job_get_success(fx->dst_job));
	assert_non_null(strstr(migd_job_get_message(fx->dst_job), "dirty bitmap"));
	/* the source was told why */
	assert_true(rs.got_abort);
	assert_int_equal(rs.abort_reason, MIGD__WIRE__REASON__REASON_PROTOCOL_ERROR);
	/* the destination device went back to its idle state */
	assert_int_not_equal(engine_fixture_state(fx->dst_devices, 0), MIGD_STATE_RESUMING);
	/* and no bitmap from a failed migration is handed out */
	assert_int_equal(migd_destination_dup_dirty_bitmap_fd(fx->dest, 0, NULL), -1);
}

/* ---- the VMM's dirty syncs (Job.SyncDirtyBitmap) ---- */

typedef struct {
	gboolean done;
	gboolean ok;
	gint fd;
	gchar *error;
} VmmCall;

static void
vmm_sync_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	VmmCall *call = user_data;
	g_autoptr(GError) error = NULL;

	call->fd = migd_job_sync_dirty_bitmap_finish(MIGD_JOB(object), result, &error);
	if (call->fd < 0)
		call->error = g_strdup(error->message);
	call->done = TRUE;
}

static void
vmm_switchover_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	VmmCall *call = user_data;
	g_autoptr(GError) error = NULL;

	call->ok = migd_job_switchover_finish(MIGD_JOB(object), result, &error);
	if (!call->ok)
		call->error = g_strdup(error->message);
	call->done = TRUE;
}

/* one VMM sync of @name: its pages (guest IOVA of each page) go into @pages */
static guint64
vmm_sync(MigdJob *job, const gchar *name, GHashTable *pages)
{
	VmmCall call = {0};
	g_autoptr(MigdDirtyFile) file = NULL;

	migd_job_sync_dirty_bitmap_async(job, name, NULL, vmm_sync_cb, &call);
	engine_run_until_flag(&call.done, 30);
	if (call.fd < 0)
		fail_msg("SyncDirtyBitmap(%s): %s", name, call.error);
	file = parse_dirty_fd(call.fd);
	close(call.fd);
	add_dirty_pages(file, pages);
	return file->dirty_pages;
}

/* the simulator's record of its DMA writes since the last take, as 4 KiB pages */
static void
take_dma_record(MigdDevice *device, GHashTable *pages)
{
	g_autoptr(GArray) record = migd_sim_device_take_dma_record(MIGD_SIM_DEVICE(device));

	for (guint i = 0; record != NULL && i < record->len; i++) {
		const MigdIovaRange *r = &g_array_index(record, MigdIovaRange, i);
		for (guint64 a = r->iova & ~(guint64)4095; a < r->iova + r->length; a += 4096)
			g_hash_table_add(pages, g_memdup2(&a, sizeof(a)));
	}
}

/*
 * The VMM syncs during pre-copy and once after the switchover while the peer
 * stream consumes the same read-and-clear reports: every page the device
 * DMA-wrote (the simulator's own record) is in some VMM sync, and no sync
 * holds a page nobody wrote; the destination's accumulated bitmap, from the
 * peer's syncs, is the same set.
 */
static void
test_vmm_syncs_see_every_dma_write(void **state)
{
	const gchar *src[] = {"mlx5:state_size=8M,seed=1,dirty_rate=4M,dma_pattern=random,"
			      "dma_rate=16M",
			      NULL};
	const gchar *dst[] = {"mlx5:seed=11", NULL};
	const MigdIovaRange ranges[] = {{0, 64 * MiB}, {GiB, 64 * MiB}};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	MigdDevice *device = g_ptr_array_index(fx->src_devices, 0);
	g_autoptr(GHashTable) written =
	    g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	g_autoptr(GHashTable) synced =
	    g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	g_autoptr(GHashTable) at_dest =
	    g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	g_autoptr(GError) error = NULL;
	MigdSourceOptions options;
	VmmCall sw = {0};
	GHashTableIter iter;
	gpointer key;
	gint fd;
	guint n_syncs = 0;

	set_ranges(device, ranges, G_N_ELEMENTS(ranges));
	migd_sim_device_set_dma_record(MIGD_SIM_DEVICE(device), TRUE);
	migd_source_options_init(&options);
	options.switchover = MIGD_SWITCHOVER_MANUAL;
	migd_destination_set_start_mode(fx->dest, MIGD_START_MANUAL);
	assert_non_null(engine_fixture_migrate(fx, &options, &error));
	/* the VMM's syncs while pre-copy (and the peer's syncs) run */
	while (n_syncs < 8) {
		if (migd_job_get_phase(fx->src_job) != MIGD_JOB_PHASE_PRECOPY) {
			g_main_context_iteration(NULL, TRUE);
			continue;
		}
		vmm_sync(fx->src_job, "src0", synced);
		n_syncs++;
		g_usleep(50 * 1000);
	}
	assert_true(migd_job_get_precopy_rounds(fx->src_job) >= 1);
	migd_job_switchover_async(fx->src_job, NULL, vmm_switchover_cb, &sw);
	engine_run_until_flag(&sw.done, 60);
	if (!sw.ok)
		fail_msg("switchover: %s", sw.error);
	/* the device is stopped: the last sync takes what its last writes dirtied */
	vmm_sync(fx->src_job, "src0", synced);
	take_dma_record(device, written);
	assert_true(g_hash_table_size(written) > 0);
	/* the peer consumed reports too, while the VMM took its share */
	assert_true(migd_job_get_dirty_pages(fx->src_job) > 0);

	g_hash_table_iter_init(&iter, written);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		if (!g_hash_table_contains(synced, key))
			fail_msg("page 0x%" G_GINT64_MODIFIER "x was written but in no VMM sync",
				 *(guint64 *)key);
	}
	g_hash_table_iter_init(&iter, synced);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		if (!g_hash_table_contains(written, key))
			fail_msg("page 0x%" G_GINT64_MODIFIER
				 "x is in a VMM sync but never written",
				 *(guint64 *)key);
	}

	/* start the destination: the peer's syncs, merged there, are the same set */
	migd_job_start_async(fx->dst_job, NULL, NULL, NULL);
	engine_fixture_wait(fx, 60);
	if (!migd_job_get_success(fx->src_job))
		fail_msg("source: %s", migd_job_get_message(fx->src_job));
	fd = migd_destination_dup_dirty_bitmap_fd(fx->dest, 0, &error);
	if (fd < 0)
		fail_msg("destination bitmap: %s", error->message);
	{
		g_autoptr(MigdDirtyFile) file = parse_dirty_fd(fd);
		close(fd);
		add_dirty_pages(file, at_dest);
	}
	assert_int_equal(g_hash_table_size(at_dest), g_hash_table_size(written));
	g_hash_table_iter_init(&iter, written);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		assert_true(g_hash_table_contains(at_dest, key));
	g_free(sw.error);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_migrate_ships_dirty_pages),
	    cmocka_unit_test(test_no_tracker_refused),
	    cmocka_unit_test(test_no_tracker_all_dirty),
	    cmocka_unit_test(test_sink_checks),
	    cmocka_unit_test(test_bad_bitmap_from_source),
	    cmocka_unit_test(test_vmm_syncs_see_every_dma_write),
	};
	return cmocka_run_group_tests_name("engine-dirty", tests, NULL, NULL);
}
