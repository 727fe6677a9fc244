/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The pds profile: STOP_COPY|P2P, 64 KiB state, EIO around ERROR, DMA logging
 * with few regions and single-region reports.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sim-test-util.h"

static void
test_probe(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("pds");
	g_autoptr(GError) error = NULL;
	const MigdDeviceFeatures *f;
	g_autoptr(MigdDataFd) fd = NULL;

	assert_true(migd_device_probe(dev, &error));
	f = migd_device_get_features(dev);
	assert_int_equal(f->mig_flags, 0x3);
	assert_true(f->dma_logging);
	assert_true(f->low_power);
	assert_int_equal(f->stop_copy_length, 65536);
	/* no PRE_COPY: the kernel answers EINVAL */
	assert_false(sim_raw_set(dev, MIGD_STATE_PRE_COPY, &fd, &error));
	sim_assert_errno(error, EINVAL);
	assert_null(fd);
	assert_int_equal(sim_state(dev), MIGD_STATE_RUNNING);
}

static void
test_migrate(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("pds:seed=21");
	g_autoptr(MigdDevice) dst = sim_new("pds:seed=22");
	g_autoptr(GByteArray) stream = NULL;
	g_autoptr(GError) error = NULL;

	migd_sim_device_touch_state(MIGD_SIM_DEVICE(src), 100);
	stream = sim_save_stopped(src);
	assert_int_equal(stream->len, 65536);
	assert_true(sim_digest(src) != sim_digest(dst));
	assert_true(sim_load(dst, stream->data, stream->len, &error));
	assert_true(sim_digest(src) == sim_digest(dst));
	sim_go(dst, MIGD_STATE_RUNNING, NULL);
}

static void
test_restore_limits(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("pds");
	g_autoptr(GByteArray) stream = sim_save_stopped(src);
	g_autoptr(GError) error = NULL;
	guint8 extra = 0;

	{
		g_autoptr(MigdDevice) dst = sim_new("pds:seed=3");
		g_autoptr(MigdDataFd) fd = NULL;
		sim_go(dst, MIGD_STATE_RESUMING, &fd);
		sim_write(fd, stream->data, stream->len);
		/* past the 64 KiB restore buffer */
		sim_write_expect_errno(fd, &extra, 1, EINVAL);
	}
	{
		g_autoptr(MigdDevice) dst = sim_new("pds:seed=3");
		assert_false(sim_load(dst, stream->data, 1000, &error));
		sim_assert_errno(error, EINVAL);
	}
}

static void
test_error_state(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("pds:fail_arc=RUNNING_P2P->STOP,fail_to_error=1");
	g_autoptr(GError) error = NULL;

	/* ends in ERROR: EIO whatever the arc said */
	assert_false(sim_raw_set(dev, MIGD_STATE_STOP, NULL, &error));
	sim_assert_errno(error, EIO);
	g_clear_error(&error);
	assert_int_equal(sim_state(dev), MIGD_STATE_ERROR);
	/* the FSM does not run from ERROR: EIO */
	assert_false(sim_raw_set(dev, MIGD_STATE_RUNNING, NULL, &error));
	sim_assert_errno(error, EIO);
	g_clear_error(&error);
	assert_true(migd_device_reset(dev, &error));
	assert_int_equal(sim_state(dev), MIGD_STATE_RUNNING);
}

static void
test_reset_drops_fd(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("pds");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error = NULL;
	guint8 buf[128];
	gsize n = 0;
	MigdDataReadStatus status;

	sim_go(dev, MIGD_STATE_STOP_COPY, &fd);
	assert_true(migd_data_fd_read_chunk(fd, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n, &status,
					    NULL, &error));
	assert_int_equal(n, sizeof(buf));
	assert_true(migd_device_reset(dev, &error));
	assert_int_equal(sim_state(dev), MIGD_STATE_RUNNING);
	assert_false(migd_data_fd_read_chunk(fd, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n,
					     &status, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED));
}

static void
test_dma_logging(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("pds:dma_pattern=random");
	g_autoptr(GError) error = NULL;
	MigdIovaRange ranges[10];
	guint64 page_size = 4096;
	guint64 bitmap[64] = {0};
	guint64 bits = 0;

	/* ten ranges, 8 regions: combined; the page size is used as is */
	for (guint i = 0; i < 10; i++) {
		ranges[i].iova = i * 16 * MiB;
		ranges[i].length = 1 * MiB;
	}
	assert_true(migd_device_dma_logging_start(dev, ranges, 10, &page_size, &error));
	assert_int_equal(page_size, 4096);
	assert_true(migd_sim_device_dma_write(MIGD_SIM_DEVICE(dev), 64 * 4096) > 0);
	/* a report across two tracked regions: EINVAL */
	assert_false(migd_device_dma_logging_report(dev, 0, 128 * MiB, 4096, bitmap, &error));
	sim_assert_errno(error, EINVAL);
	g_clear_error(&error);
	assert_true(migd_device_dma_logging_report(dev, 0, 1 * MiB, 4096, bitmap, &error));
	for (guint i = 0; i < G_N_ELEMENTS(bitmap); i++)
		bits += (guint64)__builtin_popcountll(bitmap[i]);
	assert_true(bits <= 256);
	assert_true(migd_device_dma_logging_stop(dev, &error));
	/* a second start after stop is fine, a double start is not */
	assert_true(migd_device_dma_logging_start(dev, ranges, 2, &page_size, &error));
	assert_false(migd_device_dma_logging_start(dev, ranges, 2, &page_size, &error));
	assert_non_null(error);
}

static void
test_report_eio(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("pds:report_eio=1");
	g_autoptr(GError) error = NULL;
	MigdIovaRange range = {0, 1 * MiB};
	guint64 page_size = 4096;
	guint64 bitmap[4] = {0};

	assert_true(migd_device_dma_logging_start(dev, &range, 1, &page_size, &error));
	assert_false(migd_device_dma_logging_report(dev, 0, 1 * MiB, 4096, bitmap, &error));
	sim_assert_errno(error, EIO);
	g_clear_error(&error);
	/* stop + start clears the tracker error */
	assert_true(migd_device_dma_logging_stop(dev, &error));
	assert_true(migd_device_dma_logging_start(dev, &range, 1, &page_size, &error));
	assert_true(migd_device_dma_logging_report(dev, 0, 1 * MiB, 4096, bitmap, &error));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probe),	   cmocka_unit_test(test_migrate),
	    cmocka_unit_test(test_restore_limits), cmocka_unit_test(test_error_state),
	    cmocka_unit_test(test_reset_drops_fd), cmocka_unit_test(test_dma_logging),
	    cmocka_unit_test(test_report_eio),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
