/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The mtty profile against what Linux 6.12's mtty sample answered
 * (real-kernel-mtty.md) and samples/vfio-mdev/mtty.c.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sim-test-util.h"

#define MTTY_MAGIC 0x7e9d09898c3e2c4eull

static void
test_probe(void **state)
{
	g_autoptr(MigdDevice) dev2 = sim_new("mtty");
	g_autoptr(MigdDevice) dev1 = sim_new("mtty:ports=1");
	g_autoptr(GError) error = NULL;
	const MigdDeviceFeatures *f;
	guint64 size = 0;

	assert_true(migd_device_probe(dev2, &error));
	f = migd_device_get_features(dev2);
	assert_true(f->migration);
	assert_int_equal(f->mig_flags, 0x7);
	assert_true(f->dma_logging);
	/* an mdev: no vfio-pci-core, no LOW_POWER_* */
	assert_false(f->low_power);
	assert_false(f->low_power_wakeup);
	assert_int_equal(f->stop_copy_length, 96);
	assert_true(migd_device_get_data_size(dev1, &size, &error));
	assert_int_equal(size, 60);
	assert_int_equal(sim_state(dev2), MIGD_STATE_RUNNING);

	assert_false(migd_device_low_power_entry(dev2, -1, &error));
	sim_assert_errno(error, ENOTTY);
	g_clear_error(&error);
	assert_false(migd_device_low_power_exit(dev2, &error));
	sim_assert_errno(error, ENOTTY);
}

static void
test_precopy_then_stop_copy(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mtty:seed=3");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	guint64 initial = 99, dirty = 99, magic = 0;
	guint32 nr_ports = 0;

	sim_go(dev, MIGD_STATE_PRE_COPY, &fd);
	assert_non_null(fd);
	assert_true(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	assert_int_equal(initial, 24);
	assert_int_equal(dirty, 0);
	/* the temporary end is read() == 0, not ENOMSG */
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_PRE_COPY, stream, 10),
			 MIGD_DATA_READ_TEMP_END);
	assert_int_equal(stream->len, 24);
	assert_true(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	assert_int_equal(initial, 0);
	assert_int_equal(dirty, 0);

	/* PRE_COPY -> PRE_COPY_P2P -> STOP_COPY: the same fd gives the ports */
	sim_go(dev, MIGD_STATE_STOP_COPY, NULL);
	assert_int_equal(sim_state(dev), MIGD_STATE_STOP_COPY);
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_STOP_COPY, stream, 4096),
			 MIGD_DATA_READ_END);
	assert_int_equal(stream->len, 96);
	memcpy(&magic, stream->data, 8);
	memcpy(&nr_ports, stream->data + 16, 4);
	assert_true(magic == MTTY_MAGIC);
	assert_int_equal(nr_ports, 2);
	/* PRECOPY_INFO outside PRE_COPY: EINVAL */
	assert_false(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	sim_assert_errno(error, EINVAL);
}

static void
test_migrate_digest(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("mtty:seed=11");
	g_autoptr(MigdDevice) dst = sim_new("mtty:seed=12");
	g_autoptr(GByteArray) stream = NULL;
	g_autoptr(GError) error = NULL;

	migd_sim_device_touch_state(MIGD_SIM_DEVICE(src), 5);
	assert_true(sim_digest(src) != sim_digest(dst));
	stream = sim_save_stopped(src);
	assert_int_equal(stream->len, 96);
	assert_true(sim_load(dst, stream->data, stream->len, &error));
	assert_int_equal(sim_state(dst), MIGD_STATE_STOP);
	assert_true(sim_digest(src) == sim_digest(dst));
	sim_go(dst, MIGD_STATE_RUNNING, NULL);
	sim_go(src, MIGD_STATE_STOP, NULL);
}

static void
test_corrupt_streams(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("mtty:seed=1");
	g_autoptr(MigdDevice) src1 = sim_new("mtty:seed=1,ports=1");
	g_autoptr(GByteArray) stream = sim_save_stopped(src);
	g_autoptr(GByteArray) stream1 = sim_save_stopped(src1);
	g_autofree guint8 *big = g_malloc0(97);
	g_autoptr(GError) error = NULL;

	/* the first byte flipped: the header check, EFAULT (as the real kernel) */
	{
		g_autoptr(MigdDevice) dst = sim_new("mtty:seed=2");
		g_autoptr(MigdDataFd) fd = NULL;
		guint8 *copy = g_memdup2(stream->data, stream->len);
		copy[0] ^= 0x01;
		sim_go(dst, MIGD_STATE_RESUMING, &fd);
		sim_write_expect_errno(fd, copy, stream->len, EFAULT);
		g_free(copy);
	}
	/* nr_ports differs (mtty-1 into mtty-2) */
	{
		g_autoptr(MigdDevice) dst = sim_new("mtty:seed=2");
		g_autoptr(MigdDataFd) fd = NULL;
		sim_go(dst, MIGD_STATE_RESUMING, &fd);
		sim_write_expect_errno(fd, stream1->data, stream1->len, EFAULT);
	}
	/* beyond the data size: ENOMEM */
	{
		g_autoptr(MigdDevice) dst = sim_new("mtty:seed=2");
		g_autoptr(MigdDataFd) fd = NULL;
		memcpy(big, stream->data, stream->len);
		sim_go(dst, MIGD_STATE_RESUMING, &fd);
		sim_write_expect_errno(fd, big, 97, ENOMEM);
	}
	/* short: RESUMING -> STOP fails with EINVAL and the state stays RESUMING */
	{
		g_autoptr(MigdDevice) dst = sim_new("mtty:seed=2");
		guint64 before = sim_digest(dst);
		assert_false(sim_load(dst, stream->data, 50, &error));
		sim_assert_errno(error, EINVAL);
		assert_int_equal(sim_state(dst), MIGD_STATE_RESUMING);
		assert_true(sim_digest(dst) == before);
	}
	/* a flipped port byte loads, but the digests tell */
	{
		g_autoptr(MigdDevice) dst = sim_new("mtty:seed=2");
		guint8 *copy = g_memdup2(stream->data, stream->len);
		g_clear_error(&error);
		copy[60] ^= 0x40;
		assert_true(sim_load(dst, copy, stream->len, &error));
		assert_true(sim_digest(dst) != sim_digest(src));
		g_free(copy);
	}
}

static void
test_reset_and_enodev(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mtty");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error = NULL;
	guint8 buf[64];
	gsize n = 0;
	MigdDataReadStatus status;

	/* leaving PRE_COPY disables the file */
	sim_go(dev, MIGD_STATE_PRE_COPY, &fd);
	sim_go(dev, MIGD_STATE_RUNNING, NULL);
	assert_false(migd_data_fd_read_chunk(fd, MIGD_STATE_PRE_COPY, buf, sizeof(buf), &n, &status,
					     NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED));
	g_clear_error(&error);
	g_clear_pointer(&fd, migd_data_fd_free);

	/* reset: RUNNING, files disabled */
	sim_go(dev, MIGD_STATE_STOP_COPY, &fd);
	assert_true(migd_device_reset(dev, &error));
	assert_int_equal(sim_state(dev), MIGD_STATE_RUNNING);
	assert_false(migd_data_fd_read_chunk(fd, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n,
					     &status, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED));
}

static void
test_refused_arcs(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mtty");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(MigdDataFd) fd2 = NULL;
	g_autoptr(GError) error = NULL;

	sim_go(dev, MIGD_STATE_STOP_COPY, &fd);
	/* the fixed kernel refuses STOP_COPY -> PRE_COPY(_P2P) with EINVAL */
	assert_false(sim_raw_set(dev, MIGD_STATE_PRE_COPY, &fd2, &error));
	sim_assert_errno(error, EINVAL);
	g_clear_error(&error);
	assert_false(sim_raw_set(dev, MIGD_STATE_PRE_COPY_P2P, &fd2, &error));
	sim_assert_errno(error, EINVAL);
	g_clear_error(&error);
	assert_false(sim_raw_set(dev, MIGD_STATE_ERROR, &fd2, &error));
	sim_assert_errno(error, EINVAL);
	g_clear_error(&error);
	assert_int_equal(sim_state(dev), MIGD_STATE_STOP_COPY);
	assert_null(fd2);
	/* a multi-arc SET is walked inside the sim, like the kernel: SC -> ST -> RP -> RU */
	assert_true(sim_raw_set(dev, MIGD_STATE_RUNNING, &fd2, &error));
	assert_null(fd2);
	assert_int_equal(sim_state(dev), MIGD_STATE_RUNNING);
	/* and a fd from the final arc of a walk */
	assert_true(sim_raw_set(dev, MIGD_STATE_STOP_COPY, &fd2, &error));
	assert_non_null(fd2);
}

static void
test_dma_logging_noop(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mtty");
	g_autoptr(MigdDevice) dev_iommufd = sim_new("mtty:iommufd_driver=1");
	g_autoptr(GError) error = NULL;
	MigdIovaRange ranges[2] = {{0, 1 * MiB}, {4 * MiB, 1 * MiB}};
	guint64 page_size = 4096;
	guint64 bitmap[8] = {0};

	assert_true(migd_device_dma_logging_start(dev, ranges, 2, &page_size, &error));
	assert_int_equal(page_size, 4096);
	/* mtty_log_start() twice: still 0 */
	assert_true(migd_device_dma_logging_start(dev, ranges, 2, &page_size, &error));
	/* Debian 12's 6.12 has no CONFIG_IOMMUFD_DRIVER: the iova_bitmap stubs say EOPNOTSUPP */
	assert_false(migd_device_dma_logging_report(dev, 0, 256 * 4096, 4096, bitmap, &error));
	sim_assert_errno(error, EOPNOTSUPP);
	g_clear_error(&error);
	/* with it, mtty_log_read_and_clear() reports nothing */
	assert_true(
	    migd_device_dma_logging_report(dev_iommufd, 0, 256 * 4096, 4096, bitmap, &error));
	for (guint i = 0; i < G_N_ELEMENTS(bitmap); i++)
		assert_true(bitmap[i] == 0);
	assert_true(migd_device_dma_logging_stop(dev, &error));
	/* the core's checks still apply */
	assert_false(migd_device_dma_logging_start(dev, ranges, 0, &page_size, &error));
	sim_assert_errno(error, EINVAL);
	g_clear_error(&error);
	assert_false(migd_device_dma_logging_report(dev, 0, 4096, 1024, bitmap, &error));
	sim_assert_errno(error, EINVAL);
}

static void
test_fault_injection(void **state)
{
	g_autoptr(GError) error = NULL;
	MigdRecoveryReport report = {0};

	/* the arc fails, the state stays where the walk was */
	{
		g_autoptr(MigdDevice) dev =
		    sim_new("mtty:fail_arc=RUNNING_P2P->STOP,fail_errno=EBUSY,fail_count=1");
		assert_false(sim_raw_set(dev, MIGD_STATE_STOP, NULL, &error));
		sim_assert_errno(error, EBUSY);
		g_clear_error(&error);
		assert_int_equal(sim_state(dev), MIGD_STATE_RUNNING_P2P);
		/* fail_count=1: the second time works */
		sim_go(dev, MIGD_STATE_STOP, NULL);
	}
	/* fail_to_error: ERROR, then the core's recovery resets to RUNNING */
	{
		g_autoptr(MigdDevice) dev =
		    sim_new("mtty:fail_arc=STOP->STOP_COPY,fail_errno=EIO,fail_to_error=1");
		g_autoptr(MigdDataFd) fd = NULL;
		sim_go(dev, MIGD_STATE_STOP, NULL);
		assert_false(migd_device_transition(dev, MIGD_STATE_STOP_COPY, MIGD_STATE_STOP, &fd,
						    &report, &error));
		sim_assert_errno(error, EIO);
		assert_null(fd);
		assert_int_equal(report.state_read_back, MIGD_STATE_ERROR);
		assert_int_equal(report.action, MIGD_RECOVERY_RESET);
		assert_int_equal(sim_state(dev), MIGD_STATE_RUNNING);
		migd_recovery_report_clear(&report);
	}
}

static void
test_short_reads(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("mtty:seed=5,short_reads=1");
	g_autoptr(MigdDevice) dst = sim_new("mtty:seed=6");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	guint8 buf[4096];
	gsize n = 0;
	MigdDataReadStatus status;

	sim_go(src, MIGD_STATE_STOP_COPY, &fd);
	assert_true(migd_data_fd_read_chunk(fd, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n, &status,
					    NULL, &error));
	assert_int_equal(status, MIGD_DATA_READ_DATA);
	assert_true(n >= 1 && n <= 7);
	g_byte_array_append(stream, buf, (guint)n);
	sim_read_until_end(fd, MIGD_STATE_STOP_COPY, stream, 4096);
	assert_int_equal(stream->len, 96);
	assert_true(sim_load(dst, stream->data, stream->len, &error));
	assert_true(sim_digest(src) == sim_digest(dst));
}

static void
test_real_fd_and_p2p_path(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mtty:load_rate=1K");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(MigdDataFd) rfd = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	guint64 initial = 0, dirty = 0;
	gint64 start;
	gint fdnum;

	/* RUNNING_P2P -> PRE_COPY_P2P opens the session too */
	sim_go(dev, MIGD_STATE_RUNNING_P2P, NULL);
	sim_go(dev, MIGD_STATE_PRE_COPY_P2P, &fd);
	fdnum = migd_data_fd_get_fd(fd);
	/* a real fd, O_CLOEXEC like the kernel's anon file */
	assert_true(fdnum >= 0);
	assert_true((fcntl(fdnum, F_GETFD) & FD_CLOEXEC) != 0);
	assert_int_equal(migd_data_fd_get_direction(fd), MIGD_DATA_FD_SAVE);
	assert_true(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	assert_int_equal(initial, 24);
	sim_go(dev, MIGD_STATE_STOP_COPY, NULL);
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_STOP_COPY, stream, 4096),
			 MIGD_DATA_READ_END);
	assert_int_equal(stream->len, 96);
	/* leaving STOP_COPY ends the session; reading again: ENODEV */
	sim_go(dev, MIGD_STATE_STOP, NULL);
	{
		guint8 b[8];
		gsize n = 0;
		MigdDataReadStatus status;
		assert_false(migd_data_fd_read_chunk(fd, MIGD_STATE_STOP_COPY, b, sizeof(b), &n,
						     &status, NULL, &error));
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED));
		g_clear_error(&error);
	}

	/* load_rate=1K: 96 bytes take ~94 ms */
	sim_go(dev, MIGD_STATE_RESUMING, &rfd);
	assert_int_equal(migd_data_fd_get_direction(rfd), MIGD_DATA_FD_RESUME);
	start = g_get_monotonic_time();
	sim_write(rfd, stream->data, stream->len);
	assert_true(g_get_monotonic_time() - start >= 80000);
	assert_true(migd_device_set_state_arc(dev, MIGD_STATE_STOP, NULL, &error));
	/* the resume file is disabled after RESUMING -> STOP */
	assert_false(migd_data_fd_write_all(rfd, stream->data, 1, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED));
}

static guint8
uart_read(MigdDevice *dev, guint port, guint reg)
{
	g_autoptr(GError) error = NULL;
	guint8 val = 0xee;
	assert_true(migd_device_region_read(dev, port, reg, &val, 1, &error));
	return val;
}

static void
uart_write(MigdDevice *dev, guint port, guint reg, guint8 val)
{
	g_autoptr(GError) error = NULL;
	assert_true(migd_device_region_write(dev, port, reg, &val, 1, &error));
}

/* handle_bar_write()/handle_bar_read() of samples/vfio-mdev/mtty.c */
static void
test_uart_region(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("mtty:seed=4");
	g_autoptr(MigdDevice) dev1 = sim_new("mtty:ports=1");
	g_autoptr(GError) error = NULL;
	guint8 b = 0;
	guint32 wide = 0;

	/* DLAB: THR/IER are the divisor, and setting DLAB clears it */
	uart_write(dev, 0, 3, 0x83);
	uart_write(dev, 0, 0, 0x0c);
	uart_write(dev, 0, 1, 0x00);
	assert_int_equal(uart_read(dev, 0, 0), 0x0c);
	assert_int_equal(uart_read(dev, 0, 1), 0x00);
	uart_write(dev, 0, 3, 0x03);
	assert_int_equal(uart_read(dev, 0, 3), 0x03);
	uart_write(dev, 0, 1, 0x00);

	/* FIFO on and cleared: empty, then bytes come back in order */
	uart_write(dev, 0, 2, 0x07);
	assert_int_equal(uart_read(dev, 0, 5), 0x60);
	uart_write(dev, 0, 0, 'h');
	uart_write(dev, 0, 0, 'i');
	assert_int_equal(uart_read(dev, 0, 5), 0x01);
	assert_int_equal(uart_read(dev, 0, 0), 'h');
	assert_int_equal(uart_read(dev, 0, 0), 'i');
	assert_int_equal(uart_read(dev, 0, 5), 0x60);

	/* 16 bytes fill the FIFO and head meets tail: mtty reports it empty */
	for (guint i = 0; i < 16; i++)
		uart_write(dev, 0, 0, (guint8)i);
	assert_int_equal(uart_read(dev, 0, 5), 0x60);
	/* the 17th overruns */
	uart_write(dev, 0, 0, 0xff);
	assert_int_equal(uart_read(dev, 0, 5), 0x62);
	/* FIFO off: one byte deep */
	uart_write(dev, 0, 2, 0x06);
	uart_write(dev, 0, 0, 'x');
	uart_write(dev, 0, 0, 'y');
	assert_int_equal(uart_read(dev, 0, 5), 0x03);
	assert_int_equal(uart_read(dev, 0, 0), 'x');

	/* IIR: no interrupt pending, 16550 bits; SCR; MSR with CTS */
	assert_int_equal(uart_read(dev, 0, 2), 0xc1);
	uart_write(dev, 0, 7, 0xa5);
	assert_int_equal(uart_read(dev, 0, 7), 0xa5);
	assert_int_equal(uart_read(dev, 0, 6) & 0x10, 0x10);

	/* a 4-byte access is one access using its first byte */
	assert_true(migd_device_region_read(dev, 0, 4, &wide, 4, &error));
	/* BAR1 is port 1 on mtty-2 only; the BAR is 8 bytes */
	uart_write(dev, 1, 2, 0x07);
	assert_int_equal(uart_read(dev, 1, 5), 0x60);
	assert_false(migd_device_region_read(dev1, 1, 0, &b, 1, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_false(migd_device_region_write(dev, 0, 8, &b, 1, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	/* profiles without region emulation: GET_REGION_INFO's EINVAL */
	{
		g_autoptr(MigdDevice) pds = sim_new("pds");
		assert_false(migd_device_region_read(pds, 0, 0, &b, 1, &error));
		sim_assert_errno(error, EINVAL);
	}
}

/* the FIFO is the migrated state: bytes written on the source come out of the destination */
static void
test_uart_migrates(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("mtty:seed=7");
	g_autoptr(MigdDevice) dst = sim_new("mtty:seed=8");
	g_autoptr(GByteArray) stream = NULL;
	g_autoptr(GError) error = NULL;

	uart_write(src, 1, 3, 0x03);
	uart_write(src, 1, 2, 0x07);
	uart_write(src, 1, 0, 'o');
	uart_write(src, 1, 0, 'k');
	stream = sim_save_stopped(src);
	assert_true(sim_load(dst, stream->data, stream->len, &error));
	sim_go(dst, MIGD_STATE_RUNNING, NULL);
	assert_int_equal(uart_read(dst, 1, 5), 0x01);
	assert_int_equal(uart_read(dst, 1, 0), 'o');
	assert_int_equal(uart_read(dst, 1, 0), 'k');
	assert_int_equal(uart_read(dst, 1, 5), 0x60);
}

/* mtty_resume_write() checks the header once, on the write that completes it */
static void
test_header_checked_once(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("mtty:seed=1");
	g_autoptr(MigdDevice) dst = sim_new("mtty:seed=2");
	g_autoptr(GByteArray) stream = sim_save_stopped(src);
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *copy = g_memdup2(stream->data, stream->len);

	copy[0] ^= 0x01;
	sim_go(dst, MIGD_STATE_RESUMING, &fd);
	sim_write_expect_errno(fd, copy, 24, EFAULT);
	/* the rest is taken unchecked, and RESUMING -> STOP loads it */
	sim_write(fd, copy + 24, stream->len - 24);
	assert_true(migd_device_set_state_arc(dst, MIGD_STATE_STOP, NULL, &error));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probe),
	    cmocka_unit_test(test_precopy_then_stop_copy),
	    cmocka_unit_test(test_migrate_digest),
	    cmocka_unit_test(test_corrupt_streams),
	    cmocka_unit_test(test_reset_and_enodev),
	    cmocka_unit_test(test_refused_arcs),
	    cmocka_unit_test(test_dma_logging_noop),
	    cmocka_unit_test(test_fault_injection),
	    cmocka_unit_test(test_short_reads),
	    cmocka_unit_test(test_real_fd_and_p2p_path),
	    cmocka_unit_test(test_uart_region),
	    cmocka_unit_test(test_uart_migrates),
	    cmocka_unit_test(test_header_checked_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
