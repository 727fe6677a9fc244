/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The mlx5 profile: record stream, ENOMSG temporary end, PRECOPY_INFO-driven
 * incremental rounds, blocking reads at the save rate, resume validation.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "migd-sim-mlx5-stream.h"
#include "migd-sim-prng.h"
#include "sim-test-util.h"

/* a FW_DATA record's headers (driver header + simulated firmware chunk header) */
#define REC_HDRS (MIGD_SIM_MLX5_HDR_SIZE + MIGD_SIM_MLX5_CHUNK_HDR_SIZE)
#define SIZE_REC MIGD_SIM_MLX5_SIZE_RECORD
#define ENTRY	 MIGD_SIM_MLX5_ENTRY_SIZE

static void
test_probe(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mlx5:state_size=1M");
	g_autoptr(GError) error = NULL;
	const MigdDeviceFeatures *f;

	assert_true(migd_device_probe(dev, &error));
	f = migd_device_get_features(dev);
	assert_int_equal(f->mig_flags, 0x7);
	assert_true(f->dma_logging);
	assert_true(f->low_power);
	/* size record + one FW_DATA record of 256 pages */
	assert_int_equal(f->stop_copy_length, SIZE_REC + REC_HDRS + 256 * ENTRY);
}

/* asserts the temporary end is ENOMSG: read as STOP_COPY it is a protocol error */
static void
assert_enomsg(MigdDataFd *fd)
{
	g_autoptr(GError) error = NULL;
	guint8 buf[16];
	gsize n = 0;
	MigdDataReadStatus status;

	assert_false(migd_data_fd_read_chunk(fd, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n,
					     &status, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
}

static void
test_precopy_rounds(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("mlx5:state_size=1M,seed=1");
	g_autoptr(MigdDevice) dst = sim_new("mlx5:state_size=1M,seed=2");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	guint64 initial = 0, dirty = 0, full = SIZE_REC + REC_HDRS + 256 * ENTRY;
	guint before;

	sim_go(src, MIGD_STATE_PRE_COPY, &fd);
	assert_true(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	assert_int_equal(initial, full);
	assert_int_equal(dirty, 0);
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_PRE_COPY, stream, 100000),
			 MIGD_DATA_READ_TEMP_END);
	assert_int_equal(stream->len, full);
	assert_enomsg(fd);
	assert_true(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	assert_int_equal(initial, 0);
	assert_int_equal(dirty, 0);

	/* the guest dirties 10 pages: PRECOPY_INFO reports them and starts a round */
	migd_sim_device_touch_state(MIGD_SIM_DEVICE(src), 10);
	assert_true(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	assert_int_equal(initial, 0);
	assert_true(dirty > 0 && dirty <= REC_HDRS + 10 * ENTRY);
	assert_int_equal((dirty - REC_HDRS) % ENTRY, 0);
	before = stream->len;
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_PRE_COPY, stream, 4096),
			 MIGD_DATA_READ_TEMP_END);
	assert_int_equal(stream->len - before, dirty);
	assert_true(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	assert_int_equal(dirty, 0);

	/* more dirt, then PRE_COPY_P2P: no incremental query there */
	migd_sim_device_touch_state(MIGD_SIM_DEVICE(src), 5);
	sim_go(src, MIGD_STATE_PRE_COPY_P2P, NULL);
	migd_sim_device_touch_state(MIGD_SIM_DEVICE(src), 3);
	assert_true(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	assert_int_equal(dirty, 0);
	/* STOP_COPY: the final incremental image, then read() == 0 */
	sim_go(src, MIGD_STATE_STOP_COPY, NULL);
	before = stream->len;
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_STOP_COPY, stream, 65536),
			 MIGD_DATA_READ_END);
	assert_true(stream->len - before >= REC_HDRS + ENTRY);

	assert_true(sim_digest(src) != sim_digest(dst));
	assert_true(sim_load(dst, stream->data, stream->len, &error));
	assert_true(sim_digest(src) == sim_digest(dst));
	/* without the last round the destination does not hold the source's state */
	{
		g_autoptr(MigdDevice) dst2 = sim_new("mlx5:state_size=1M,seed=3");
		assert_true(sim_load(dst2, stream->data, before, &error));
		assert_true(sim_digest(src) != sim_digest(dst2));
	}
}

static void
test_dirty_rate(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mlx5:state_size=4M,dirty_rate=40M");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error = NULL;
	guint64 initial = 0, dirty = 0;

	sim_go(dev, MIGD_STATE_PRE_COPY, &fd);
	sim_read_until_end(fd, MIGD_STATE_PRE_COPY, NULL, 1 * MiB);
	g_usleep(50000);
	/* 40 MB/s for >= 50 ms: >= ~480 pages, of 1024 */
	assert_true(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	assert_int_equal(initial, 0);
	assert_true(dirty > 100 * ENTRY);
	sim_go(dev, MIGD_STATE_RUNNING, NULL);
}

static void
test_large_migration(void **state)
{
	/* several 8 MiB records and a short last page */
	g_autoptr(MigdDevice) src = sim_new("mlx5:state_size=20M,seed=31");
	g_autoptr(MigdDevice) dst = sim_new("mlx5:state_size=20M,seed=32");
	g_autoptr(GByteArray) stream = NULL;
	g_autoptr(GError) error = NULL;
	guint64 size = 0;

	assert_true(migd_device_get_data_size(src, &size, &error));
	stream = sim_save_stopped(src);
	assert_int_equal(stream->len, size);
	assert_true(sim_load(dst, stream->data, stream->len, &error));
	assert_true(sim_digest(src) == sim_digest(dst));
	{
		g_autoptr(MigdDevice) odd_src = sim_new("mlx5:state_size=12300,seed=1");
		g_autoptr(MigdDevice) odd_dst = sim_new("mlx5:state_size=12300,seed=2");
		g_autoptr(GByteArray) s2 = sim_save_stopped(odd_src);
		assert_int_equal(s2->len, SIZE_REC + REC_HDRS + 4 * 16 + 12300);
		assert_true(sim_load(odd_dst, s2->data, s2->len, &error));
		assert_true(sim_digest(odd_src) == sim_digest(odd_dst));
	}
}

static void
test_destination_takes_image_size(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("mlx5:state_size=3M,seed=41");
	g_autoptr(MigdDevice) dst = sim_new("mlx5:seed=42");
	g_autoptr(GByteArray) stream = sim_save_stopped(src);
	g_autoptr(GError) error = NULL;

	/* a VF loads whatever image firmware gets: 3 MiB into a 4 MiB default */
	assert_int_equal(migd_sim_device_get_state_size(MIGD_SIM_DEVICE(dst)), 4 * MiB);
	assert_true(sim_load(dst, stream->data, stream->len, &error));
	assert_int_equal(migd_sim_device_get_state_size(MIGD_SIM_DEVICE(dst)), 3 * MiB);
	assert_true(sim_digest(src) == sim_digest(dst));
}

/* loads @data on a fresh destination, expecting the write to fail with @errnum */
static void
load_expect_errno(const guint8 *data, gsize len, gint errnum)
{
	g_autoptr(MigdDevice) dst = sim_new("mlx5:state_size=1M,seed=9");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error = NULL;
	guint8 more[16] = {0};

	sim_go(dst, MIGD_STATE_RESUMING, &fd);
	sim_write_expect_errno(fd, data, len, errnum);
	/* the file went to error */
	assert_false(migd_data_fd_write_all(fd, more, sizeof(more), NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED));
}

static void
test_corrupt_streams(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("mlx5:state_size=1M,seed=1");
	g_autoptr(GByteArray) stream = sim_save_stopped(src);
	g_autoptr(GError) error = NULL;
	guint8 hdr[24] = {0};
	guint8 *copy;

	/* record_size above MAX_LOAD_SIZE */
	migd_sim_put_le64(hdr, 1ull << 32);
	load_expect_errno(hdr, 16, ENOMEM);
	/* an unknown mandatory tag */
	migd_sim_put_le64(hdr, 8);
	migd_sim_put_le32(hdr + 12, 7);
	load_expect_errno(hdr, 24, EOPNOTSUPP);
	/* a flipped key: the firmware refuses the record (EIO) */
	copy = g_memdup2(stream->data, stream->len);
	copy[SIZE_REC + REC_HDRS + ENTRY * 3 + 9] ^= 0x02;
	load_expect_errno(copy, stream->len, EIO);
	g_free(copy);
	/* a flipped chunk magic */
	copy = g_memdup2(stream->data, stream->len);
	copy[24 + 16] ^= 0x80;
	load_expect_errno(copy, stream->len, EIO);
	g_free(copy);
	/* a flipped content byte loads, and the digests tell */
	{
		g_autoptr(MigdDevice) dst = sim_new("mlx5:state_size=1M,seed=9");
		copy = g_memdup2(stream->data, stream->len);
		copy[SIZE_REC + REC_HDRS + ENTRY * 100 + 16 + 1234] ^= 0x01;
		assert_true(sim_load(dst, copy, stream->len, &error));
		assert_true(sim_digest(dst) != sim_digest(src));
		g_free(copy);
	}
	/* an unknown optional record is skipped */
	{
		g_autoptr(MigdDevice) dst = sim_new("mlx5:state_size=1M,seed=9");
		g_autoptr(GByteArray) s2 = g_byte_array_new();
		migd_sim_put_le32(hdr + 8, 1);
		g_byte_array_append(s2, hdr, 24);
		g_byte_array_append(s2, stream->data, stream->len);
		assert_true(sim_load(dst, s2->data, s2->len, &error));
		assert_true(sim_digest(dst) == sim_digest(src));
	}
	/* every single-byte flip in the headers and a sample of content is caught */
	for (gsize off = 0; off < stream->len; off += off < 200 ? 1 : 4111) {
		g_autoptr(MigdDevice) dst = sim_new("mlx5:state_size=1M,seed=9");
		g_autoptr(GError) error_local = NULL;
		/* flips in the optional STOP_COPY_SIZE hint are ignored, as by mlx5 */
		if (off >= 8 && off < 24 && off != 12)
			continue;
		copy = g_memdup2(stream->data, stream->len);
		copy[off] ^= 0x01;
		if (sim_load(dst, copy, stream->len, &error_local) &&
		    sim_digest(dst) == sim_digest(src))
			fail_msg("a flip at offset %" G_GSIZE_FORMAT " went unnoticed", off);
		g_free(copy);
	}
}

static void
test_blocking_reads(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mlx5:state_size=1M,save_rate=8M");
	g_autoptr(MigdDevice) dev2 = sim_new("mlx5:state_size=1M,save_rate=8M");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(MigdDataFd) fd2 = NULL;
	g_autoptr(GByteArray) s1 = g_byte_array_new();
	g_autoptr(GByteArray) s2 = g_byte_array_new();
	gint64 start;

	/* ~1 MiB at 8 MiB/s: the reader waits in the fd for ~130 ms */
	sim_go(dev, MIGD_STATE_STOP, NULL);
	start = g_get_monotonic_time();
	sim_go(dev, MIGD_STATE_STOP_COPY, &fd);
	sim_read_until_end(fd, MIGD_STATE_STOP_COPY, s1, 4 * MiB);
	assert_true(g_get_monotonic_time() - start >= 100000);

	/*
	 * O_NONBLOCK: EAGAIN, poll, retry, same bytes. The clock starts before the
	 * arc, as the driver's SAVE starts at the arc: started after it, a test
	 * preempted for 25 ms between the two (a loaded machine) saw less than the
	 * bound, although the device paced its bytes exactly.
	 */
	sim_go(dev2, MIGD_STATE_STOP, NULL);
	start = g_get_monotonic_time();
	sim_go(dev2, MIGD_STATE_STOP_COPY, &fd2);
	assert_int_equal(fcntl(migd_data_fd_get_fd(fd2), F_SETFL, O_NONBLOCK), 0);
	g_usleep(30 * 1000); /* the preemption that made this test flaky, on purpose */
	sim_read_until_end(fd2, MIGD_STATE_STOP_COPY, s2, 4 * MiB);
	assert_true(g_get_monotonic_time() - start >= 100000);
	assert_int_equal(s1->len, s2->len);
	assert_memory_equal(s1->data, s2->data, s1->len);
}

static void
test_reset(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mlx5:state_size=1M");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error = NULL;
	guint64 initial = 0, dirty = 0;

	sim_go(dev, MIGD_STATE_PRE_COPY, &fd);
	assert_true(migd_device_reset(dev, &error));
	assert_int_equal(sim_state(dev), MIGD_STATE_RUNNING);
	/* mlx5vf_precopy_ioctl() checks the device state first: EINVAL, not ENODEV */
	assert_false(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	sim_assert_errno(error, EINVAL);
	g_clear_error(&error);
	/* the old, disabled file during a new PRE_COPY session: ENODEV */
	{
		g_autoptr(MigdDataFd) fd2 = NULL;
		sim_go(dev, MIGD_STATE_PRE_COPY, &fd2);
		assert_false(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED));
	}
}

static void
test_dma_logging(void **state)
{
	g_autoptr(MigdDevice) dev =
	    sim_new("mlx5:state_size=1M,dma_pattern=hotspot:10,report_eio=1");
	g_autoptr(GError) error = NULL;
	MigdIovaRange ranges[6];
	guint64 page_size = 4 * MiB;
	g_autofree guint64 *bitmap = g_new0(guint64, 1024);

	for (guint i = 0; i < 6; i++) {
		ranges[i].iova = i * 64 * MiB;
		ranges[i].length = 32 * MiB;
	}
	/* page size clamped into the firmware's [4K, 2M] and written back; 6 ranges -> 4 */
	assert_true(migd_device_dma_logging_start(dev, ranges, 6, &page_size, &error));
	assert_int_equal(page_size, 2 * MiB);
	assert_false(migd_device_dma_logging_start(dev, ranges, 6, &page_size, &error));
	sim_assert_errno(error, EINVAL);
	g_clear_error(&error);
	/* report_eio: the tracker is in error until stop + start */
	assert_false(migd_device_dma_logging_report(dev, 0, 32 * MiB, 4096, bitmap, &error));
	sim_assert_errno(error, EIO);
	g_clear_error(&error);
	assert_true(migd_device_dma_logging_stop(dev, &error));
	page_size = 4096;
	assert_true(migd_device_dma_logging_start(dev, ranges, 1, &page_size, &error));
	assert_true(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 16 * 4096) > 0);
	assert_true(migd_device_dma_logging_report(dev, 0, 32 * MiB, 4096, bitmap, &error));
	{
		guint64 bits = 0;
		for (guint i = 0; i < 128; i++)
			bits += (guint64)__builtin_popcountll(bitmap[i]);
		assert_true(bits > 0 && bits <= 16);
	}
}

static void
test_fault_to_error(void **state)
{
	g_autoptr(MigdDevice) dev =
	    sim_new("mlx5:state_size=1M,fail_arc=PRE_COPY_P2P->STOP_COPY,fail_errno=ETIMEDOUT");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error = NULL;
	guint8 buf[64];
	gsize n = 0;
	MigdDataReadStatus status;

	sim_go(dev, MIGD_STATE_PRE_COPY, &fd);
	/* PC -> PP -> SC fails on the last arc: the state is PRE_COPY_P2P and the fd lives */
	assert_false(sim_raw_set(dev, MIGD_STATE_STOP_COPY, NULL, &error));
	sim_assert_errno(error, ETIMEDOUT);
	assert_int_equal(sim_state(dev), MIGD_STATE_PRE_COPY_P2P);
	g_clear_error(&error);
	assert_true(migd_data_fd_read_chunk(fd, MIGD_STATE_PRE_COPY_P2P, buf, sizeof(buf), &n,
					    &status, NULL, &error));
	assert_int_equal(n, sizeof(buf));
}

static void
test_throughput(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("mlx5:state_size=256M,seed=3");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autofree guint8 *buf = g_malloc(4 * MiB);
	g_autoptr(GError) error = NULL;
	guint64 total = 0;
	gint64 start;

	sim_go(src, MIGD_STATE_STOP, NULL);
	sim_go(src, MIGD_STATE_STOP_COPY, &fd);
	start = g_get_monotonic_time();
	for (;;) {
		gsize n = 0;
		MigdDataReadStatus status;
		assert_true(migd_data_fd_read_chunk(fd, MIGD_STATE_STOP_COPY, buf, 4 * MiB, &n,
						    &status, NULL, &error));
		if (status == MIGD_DATA_READ_END)
			break;
		total += n;
	}
	print_message("# mlx5 save: %" G_GUINT64_FORMAT " MiB in %.3f s\n", total / MiB,
		      (g_get_monotonic_time() - start) / 1e6);
	assert_true(total > 256 * MiB);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probe),
	    cmocka_unit_test(test_precopy_rounds),
	    cmocka_unit_test(test_dirty_rate),
	    cmocka_unit_test(test_large_migration),
	    cmocka_unit_test(test_destination_takes_image_size),
	    cmocka_unit_test(test_corrupt_streams),
	    cmocka_unit_test(test_blocking_reads),
	    cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_dma_logging),
	    cmocka_unit_test(test_fault_to_error),
	    cmocka_unit_test(test_throughput),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
