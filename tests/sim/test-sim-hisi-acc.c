/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The hisi_acc profile: 176-byte acc_vf_data, 40 match bytes in PRE_COPY, the
 * destination's vf_qm_check_match(), and the reset quirk.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sim-test-util.h"

static void
test_probe(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("hisi_acc");
	g_autoptr(GError) error = NULL;
	const MigdDeviceFeatures *f;
	MigdIovaRange range = {0, 1 * MiB};
	guint64 page_size = 4096;

	assert_true(migd_device_probe(dev, &error));
	f = migd_device_get_features(dev);
	assert_int_equal(f->mig_flags, 0x5); /* STOP_COPY|PRE_COPY, no P2P */
	assert_false(f->dma_logging);
	assert_true(f->low_power);
	assert_true(f->low_power_wakeup);
	assert_int_equal(f->stop_copy_length, 176);
	/* no log_ops */
	assert_false(migd_device_dma_logging_start(dev, &range, 1, &page_size, &error));
	sim_assert_errno(error, ENOTTY);
}

static void
test_precopy(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("hisi_acc:seed=4");
	g_autoptr(MigdDevice) dst = sim_new("hisi_acc:seed=5");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(MigdDataFd) rfd = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	guint64 initial = 0, dirty = 1;

	sim_go(src, MIGD_STATE_PRE_COPY, &fd);
	assert_true(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	assert_int_equal(initial, 40);
	assert_int_equal(dirty, 0);
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_PRE_COPY, stream, 16),
			 MIGD_DATA_READ_TEMP_END);
	assert_int_equal(stream->len, 40);
	/* the destination checks the match data already during pre-copy */
	sim_go(dst, MIGD_STATE_RESUMING, &rfd);
	sim_write(rfd, stream->data, stream->len);

	/* PRE_COPY -> STOP_COPY is direct without P2P; the file grows to 176 */
	assert_true(migd_device_set_state_arc(src, MIGD_STATE_STOP_COPY, NULL, &error));
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_STOP_COPY, stream, 4096),
			 MIGD_DATA_READ_END);
	assert_int_equal(stream->len, 176);
	sim_write(rfd, stream->data + 40, 136);
	assert_true(migd_device_set_state_arc(dst, MIGD_STATE_STOP, NULL, &error));
	assert_true(sim_digest(src) == sim_digest(dst));
	sim_go(dst, MIGD_STATE_RUNNING, NULL);
}

static void
test_match_and_limits(void **state)
{
	g_autoptr(MigdDevice) src = sim_new("hisi_acc:seed=1");
	g_autoptr(GByteArray) stream = sim_save_stopped(src);
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *big = g_malloc0(177);

	assert_int_equal(stream->len, 176);
	/* another VF device id: EFAULT as soon as 40 bytes are in */
	{
		g_autoptr(MigdDevice) dst = sim_new("hisi_acc:dev_id=0xa256");
		g_autoptr(MigdDataFd) fd = NULL;
		sim_go(dst, MIGD_STATE_RESUMING, &fd);
		sim_write(fd, stream->data, 39);
		sim_write_expect_errno(fd, stream->data + 39, 1, EFAULT);
	}
	{
		g_autoptr(MigdDevice) dst = sim_new("hisi_acc:qp_num=16");
		g_autoptr(MigdDataFd) fd = NULL;
		sim_go(dst, MIGD_STATE_RESUMING, &fd);
		sim_write_expect_errno(fd, stream->data, 176, EFAULT);
	}
	{
		g_autoptr(MigdDevice) dst = sim_new("hisi_acc:que_iso_cfg=1");
		g_autoptr(MigdDataFd) fd = NULL;
		sim_go(dst, MIGD_STATE_RESUMING, &fd);
		sim_write_expect_errno(fd, stream->data, 176, EFAULT);
	}
	/* a corrupted magic */
	{
		g_autoptr(MigdDevice) dst = sim_new("hisi_acc");
		g_autoptr(MigdDataFd) fd = NULL;
		guint8 *copy = g_memdup2(stream->data, stream->len);
		copy[3] ^= 0x10;
		sim_go(dst, MIGD_STATE_RESUMING, &fd);
		sim_write_expect_errno(fd, copy, 176, EFAULT);
		g_free(copy);
	}
	/* beyond 176: ENOMEM */
	{
		g_autoptr(MigdDevice) dst = sim_new("hisi_acc");
		g_autoptr(MigdDataFd) fd = NULL;
		memcpy(big, stream->data, 176);
		sim_go(dst, MIGD_STATE_RESUMING, &fd);
		sim_write_expect_errno(fd, big, 177, ENOMEM);
	}
	/* only the match data: RESUMING -> STOP loads nothing and succeeds */
	{
		g_autoptr(MigdDevice) dst = sim_new("hisi_acc:seed=9");
		guint64 before = sim_digest(dst);
		assert_true(sim_load(dst, stream->data, 40, &error));
		assert_true(sim_digest(dst) == before);
	}
	/* between 40 and 176: EINVAL */
	{
		g_autoptr(MigdDevice) dst = sim_new("hisi_acc:seed=9");
		assert_false(sim_load(dst, stream->data, 100, &error));
		sim_assert_errno(error, EINVAL);
		g_clear_error(&error);
	}
	/* a flipped register byte loads; the digests differ */
	{
		g_autoptr(MigdDevice) dst = sim_new("hisi_acc:seed=9");
		guint8 *copy = g_memdup2(stream->data, stream->len);
		copy[100] ^= 0x01;
		assert_true(sim_load(dst, copy, 176, &error));
		assert_true(sim_digest(dst) != sim_digest(src));
		g_free(copy);
	}
}

static void
test_match_done_quirk(void **state)
{
	g_autoptr(MigdDevice) good = sim_new("hisi_acc:seed=1");
	g_autoptr(MigdDevice) other = sim_new("hisi_acc:seed=2,dev_id=0xa259");
	g_autoptr(MigdDevice) dst = sim_new("hisi_acc:seed=3");
	g_autoptr(GByteArray) s1 = sim_save_stopped(good);
	g_autoptr(GByteArray) s2 = sim_save_stopped(other);
	g_autoptr(GError) error = NULL;

	assert_true(sim_load(dst, s1->data, s1->len, &error));
	/* match_done is never cleared: a second resume skips the check */
	assert_true(sim_load(dst, s2->data, s2->len, &error));
	assert_true(sim_digest(dst) == sim_digest(other));
}

static void
test_reset_quirk(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("hisi_acc");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(GError) error = NULL;

	sim_go(dev, MIGD_STATE_PRE_COPY, &fd);
	/* VFIO_DEVICE_RESET: aer_reset_done returns early, FSM and file untouched */
	assert_true(migd_device_reset(dev, &error));
	assert_int_equal(sim_state(dev), MIGD_STATE_PRE_COPY);
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_PRE_COPY, stream, 64),
			 MIGD_DATA_READ_TEMP_END);
	assert_int_equal(stream->len, 40);
	sim_go(dev, MIGD_STATE_RUNNING, NULL);
	g_clear_pointer(&fd, migd_data_fd_free);

	/* stuck in ERROR: reset does not help, recovery must fail loudly */
	{
		g_autoptr(MigdDevice) bad =
		    sim_new("hisi_acc:fail_arc=RUNNING->STOP,fail_to_error=1");
		MigdRecoveryReport report = {0};
		assert_false(migd_device_transition(bad, MIGD_STATE_STOP, MIGD_STATE_RUNNING, NULL,
						    &report, &error));
		assert_int_equal(report.action, MIGD_RECOVERY_FAILED);
		assert_int_equal(sim_state(bad), MIGD_STATE_ERROR);
		g_clear_error(&error);
		assert_true(migd_device_reset(bad, &error));
		assert_int_equal(sim_state(bad), MIGD_STATE_ERROR);
		migd_recovery_report_clear(&report);
	}
}

/*
 * hisi_acc_vfio_pci_close_device() disables the files and open_device() sets
 * RUNNING: a destination left in RESUMING with nothing loaded, which neither
 * VFIO_DEVICE_RESET nor RESUMING -> STOP leaves, is RUNNING once reopened, and
 * so is one a new process opens (persist=, a restarted daemon).
 */
static void
test_close_reopen_runs(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("hisi_acc:seed=3");
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = g_dir_make_tmp("migd-sim-hisi-XXXXXX", NULL);
	g_autofree gchar *persist = g_build_filename(dir, "dev.state", NULL);
	g_autofree gchar *spec = g_strdup_printf("hisi_acc:seed=3,persist=%s", persist);
	g_autofree gchar *left = NULL;
	static const guint8 byte = 0;

	sim_go(dev, MIGD_STATE_STOP, NULL);
	sim_go(dev, MIGD_STATE_RESUMING, &fd);
	assert_true(migd_device_reset(dev, &error));
	assert_int_equal(sim_state(dev), MIGD_STATE_RESUMING);
	assert_false(migd_device_set_state_arc(dev, MIGD_STATE_STOP, NULL, &error));
	sim_assert_errno(error, EINVAL);
	g_clear_error(&error);
	assert_int_equal(sim_state(dev), MIGD_STATE_RESUMING);
	assert_true(migd_device_reopen(dev, &error));
	assert_int_equal(sim_state(dev), MIGD_STATE_RUNNING);
	/* the resume file was disabled with the close */
	assert_false(migd_data_fd_write_all(fd, &byte, 1, NULL, &error));
	assert_non_null(strstr(error->message, "No such device"));
	g_clear_error(&error);
	g_clear_pointer(&fd, migd_data_fd_free);

	/* a process that opens the device anew finds it RUNNING */
	{
		g_autoptr(MigdDevice) first = sim_new(spec);
		g_autoptr(MigdDevice) second = NULL;
		sim_go(first, MIGD_STATE_STOP, NULL);
		sim_go(first, MIGD_STATE_RESUMING, &fd);
		g_clear_pointer(&fd, migd_data_fd_free);
		assert_true(g_file_get_contents(persist, &left, NULL, NULL));
		assert_string_equal(left, "RESUMING");
		second = sim_new(spec);
		assert_int_equal(sim_state(second), MIGD_STATE_RUNNING);
	}
	/* mtty's FSM outlives the fd: reopening leaves it where it was */
	{
		g_autoptr(MigdDevice) mtty = sim_new("mtty:seed=1");
		sim_go(mtty, MIGD_STATE_STOP, NULL);
		assert_true(migd_device_reopen(mtty, &error));
		assert_int_equal(sim_state(mtty), MIGD_STATE_STOP);
	}
	assert_int_equal(g_unlink(persist), 0);
	assert_int_equal(g_rmdir(dir), 0);
}

static void
test_low_power(void **state)
{
	g_autoptr(MigdDevice) dev = sim_new("hisi_acc");
	g_autoptr(GError) error = NULL;
	gint efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	gint pipefd[2];
	eventfd_t val = 0;

	assert_true(efd >= 0);
	assert_int_equal(pipe(pipefd), 0);
	/* EXIT when not engaged: 0 */
	assert_true(migd_device_low_power_exit(dev, &error));
	assert_true(migd_device_low_power_entry(dev, -1, &error));
	assert_false(migd_device_low_power_entry(dev, -1, &error));
	sim_assert_errno(error, EINVAL);
	g_clear_error(&error);
	assert_true(migd_device_low_power_exit(dev, &error));

	/* not an eventfd */
	assert_false(migd_device_low_power_entry(dev, pipefd[0], &error));
	sim_assert_errno(error, EINVAL);
	g_clear_error(&error);

	/* the wakeup eventfd fires on exit */
	assert_true(migd_device_low_power_entry(dev, efd, &error));
	assert_int_equal(eventfd_read(efd, &val), -1);
	assert_true(migd_device_low_power_exit(dev, &error));
	assert_int_equal(eventfd_read(efd, &val), 0);
	assert_int_equal(val, 1);

	/* ... and on a wake-up, single-shot */
	assert_true(migd_device_low_power_entry(dev, efd, &error));
	migd_sim_device_wake(MIGD_SIM_DEVICE(dev));
	assert_int_equal(eventfd_read(efd, &val), 0);
	assert_true(migd_device_low_power_entry(dev, -1, &error));
	assert_true(migd_device_low_power_exit(dev, &error));
	close(efd);
	close(pipefd[0]);
	close(pipefd[1]);
}

static void
test_save_rate(void **state)
{
	/* 176 bytes at 1 KiB/s: the save dominates, about 170 ms */
	g_autoptr(MigdDevice) dev = sim_new("hisi_acc:save_rate=1K");
	gint64 start = g_get_monotonic_time();
	g_autoptr(GByteArray) stream = sim_save_stopped(dev);

	assert_int_equal(stream->len, 176);
	assert_true(g_get_monotonic_time() - start >= 150000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probe),
	    cmocka_unit_test(test_precopy),
	    cmocka_unit_test(test_match_and_limits),
	    cmocka_unit_test(test_match_done_quirk),
	    cmocka_unit_test(test_reset_quirk),
	    cmocka_unit_test(test_close_reopen_runs),
	    cmocka_unit_test(test_low_power),
	    cmocka_unit_test(test_save_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
