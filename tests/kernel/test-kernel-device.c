/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdKernelDevice against the fake kernel in fake-vfio-kernel.c, which checks
 * every request's argsz, flags, feature index and payload.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fake-vfio-kernel.h"

static MigdDeviceClass *
klass_of(MigdKernelDevice *kdev)
{
	return MIGD_DEVICE_GET_CLASS(kdev);
}

static gboolean
fd_is_closed(gint fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* --- probe --- */

static void
test_probe_all(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	g_autoptr(GError) error = NULL;
	const MigdDeviceFeatures *f;

	assert_true(migd_device_probe(MIGD_DEVICE(kdev), &error));
	assert_null(error);
	f = migd_device_get_features(MIGD_DEVICE(kdev));
	assert_true(f->migration);
	assert_int_equal(f->mig_flags,
			 VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY);
	assert_true(f->dma_logging);
	assert_true(f->low_power);
	assert_true(f->low_power_wakeup);
	assert_true(f->mig_data_size);
	assert_int_equal(f->stop_copy_length, 96);
}

static void
test_probe_absent(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	MigdDeviceFeatures f;
	g_autoptr(GError) error = NULL;

	/* no mig_ops/log_ops on 6.6+ is ENOTTY; 6.3's default and bad op bits are EINVAL */
	fk.mig_errno = ENOTTY;
	fk.dma_probe_errno = ENOTTY;
	fk.lp_probe_errno = EINVAL;
	fk.lpw_probe_errno = ENOTTY;
	fk.size_errno = EINVAL;
	memset(&f, 0xff, sizeof(f));
	assert_true(klass_of(kdev)->probe(MIGD_DEVICE(kdev), &f, &error));
	assert_null(error);
	assert_false(f.migration);
	assert_int_equal(f.mig_flags, 0);
	assert_false(f.dma_logging);
	assert_false(f.low_power);
	assert_false(f.low_power_wakeup);
	assert_false(f.mig_data_size);
	assert_int_equal(f.stop_copy_length, 0);

	/* hisi_acc: migration without device dirty tracking */
	fk.mig_errno = 0;
	fk.mig_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY;
	fk.size_errno = 0;
	assert_true(klass_of(kdev)->probe(MIGD_DEVICE(kdev), &f, &error));
	assert_true(f.migration);
	assert_int_equal(f.mig_flags, VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY);
	assert_false(f.dma_logging);
	assert_true(f.mig_data_size);
}

static void
test_probe_errors(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	MigdDeviceFeatures f;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;

	/* a failing probe is not "absent" */
	fk.dma_probe_errno = EIO;
	assert_false(klass_of(kdev)->probe(MIGD_DEVICE(kdev), &f, &error));
	assert_error(error, MIGD_KERNEL_ERROR, EIO);
	assert_non_null(strstr(error->message, "PROBE SET DMA_LOGGING_START"));

	fk.dma_probe_errno = 0;
	fk.mig_errno = ENODEV;
	assert_false(klass_of(kdev)->probe(MIGD_DEVICE(kdev), &f, &error2));
	assert_error(error2, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE);
	assert_non_null(strstr(error2->message, g_strerror(ENODEV)));
}

/* --- state --- */

static void
test_get_state(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	MigdState st = MIGD_STATE_ERROR;
	g_autoptr(GError) error = NULL;

	fk.state = MIGD_STATE_PRE_COPY_P2P;
	assert_true(migd_device_get_state(MIGD_DEVICE(kdev), &st, &error));
	assert_int_equal(st, MIGD_STATE_PRE_COPY_P2P);
	assert_int_equal(fk.last_argsz, 16);
	assert_int_equal(fk.last_flags,
			 VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE);
}

static void
test_set_state_no_fd(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	g_autoptr(MigdDataFd) dfd = NULL;
	g_autoptr(GError) error = NULL;

	assert_true(
	    klass_of(kdev)->set_state(MIGD_DEVICE(kdev), MIGD_STATE_RUNNING_P2P, &dfd, &error));
	assert_null(error);
	assert_null(dfd);
	assert_int_equal(fk.state, MIGD_STATE_RUNNING_P2P);
	assert_int_equal(fk.last_argsz, 16);
	assert_int_equal(fk.last_flags,
			 VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE);
	assert_int_equal(fk.set_targets->len, 1);
}

static void
test_set_state_save_fd(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	g_autoptr(MigdDataFd) dfd = NULL;
	g_autoptr(GError) error = NULL;
	guint8 buf[16] = {0};
	gsize n = 0;
	MigdDataReadStatus st;

	fk.state = MIGD_STATE_STOP;
	assert_true(
	    klass_of(kdev)->set_state(MIGD_DEVICE(kdev), MIGD_STATE_STOP_COPY, &dfd, &error));
	assert_non_null(dfd);
	assert_int_equal(migd_data_fd_get_fd(dfd), fk.data_fd_given);
	assert_int_equal(migd_data_fd_get_direction(dfd), MIGD_DATA_FD_SAVE);

	/* the wrapped fd really reads what the "driver" streams, then the end */
	assert_int_equal(write(fk.data_fd_peer, "state", 5), 5);
	close(fk.data_fd_peer);
	fk.data_fd_peer = -1;
	assert_true(migd_data_fd_read_chunk(dfd, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n, &st,
					    NULL, &error));
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "state", 5);
	assert_true(migd_data_fd_read_chunk(dfd, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n, &st,
					    NULL, &error));
	assert_int_equal(st, MIGD_DATA_READ_END);
}

static void
test_set_state_precopy_fd(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	g_autoptr(MigdDataFd) dfd = NULL;
	g_autoptr(MigdDataFd) dfd2 = NULL;
	g_autoptr(GError) error = NULL;

	assert_true(
	    klass_of(kdev)->set_state(MIGD_DEVICE(kdev), MIGD_STATE_PRE_COPY, &dfd, &error));
	assert_non_null(dfd);
	assert_int_equal(migd_data_fd_get_direction(dfd), MIGD_DATA_FD_SAVE);
	/* moving inside the saving group keeps the same session: no new fd */
	assert_true(
	    klass_of(kdev)->set_state(MIGD_DEVICE(kdev), MIGD_STATE_PRE_COPY_P2P, &dfd2, &error));
	assert_null(dfd2);
	assert_int_equal(fk.state, MIGD_STATE_PRE_COPY_P2P);
}

static void
test_set_state_resume_fd(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	g_autoptr(MigdDataFd) dfd = NULL;
	g_autoptr(GError) error = NULL;
	guint8 buf[8] = {0};

	fk.state = MIGD_STATE_STOP;
	assert_true(
	    klass_of(kdev)->set_state(MIGD_DEVICE(kdev), MIGD_STATE_RESUMING, &dfd, &error));
	assert_non_null(dfd);
	assert_int_equal(migd_data_fd_get_direction(dfd), MIGD_DATA_FD_RESUME);
	assert_true(migd_data_fd_write_all(dfd, "image", 5, NULL, &error));
	assert_null(error);
	assert_int_equal(read(fk.data_fd_peer, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "image", 5);
}

static void
test_set_state_errors(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	g_autoptr(MigdDataFd) dfd = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	MigdState st = MIGD_STATE_ERROR;

	fk.state = MIGD_STATE_STOP;
	fk.set_errno = EINVAL;
	assert_false(
	    klass_of(kdev)->set_state(MIGD_DEVICE(kdev), MIGD_STATE_STOP_COPY, &dfd, &error));
	assert_error(error, MIGD_KERNEL_ERROR, EINVAL);
	assert_string_equal(error->message, "VFIO_DEVICE_FEATURE(SET MIG_DEVICE_STATE=STOP_COPY) "
					    "on " DEV_NAME ": Invalid argument");
	assert_null(dfd);
	/* the kernel echoed STOP_COPY; a GET tells the truth */
	assert_true(migd_device_get_state(MIGD_DEVICE(kdev), &st, NULL));
	assert_int_equal(st, MIGD_STATE_STOP);

	fk.set_errno = ENODEV;
	assert_false(
	    klass_of(kdev)->set_state(MIGD_DEVICE(kdev), MIGD_STATE_RUNNING, &dfd, &error2));
	assert_error(error2, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE);
	assert_non_null(strstr(error2->message, "SET MIG_DEVICE_STATE=RUNNING"));
	assert_non_null(strstr(error2->message, g_strerror(ENODEV)));
}

static void
test_set_state_unexpected_fd(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	g_autoptr(MigdDataFd) dfd = NULL;
	g_autoptr(GError) error = NULL;

	/* a data fd for RUNNING_P2P means we and the driver disagree: refuse and close it */
	fk.set_returns_bogus_fd = TRUE;
	assert_false(
	    klass_of(kdev)->set_state(MIGD_DEVICE(kdev), MIGD_STATE_RUNNING_P2P, &dfd, &error));
	assert_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL);
	assert_null(dfd);
	assert_true(fd_is_closed(fk.data_fd_given));
}

static void
test_transition_walks_arcs(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	g_autoptr(MigdDataFd) dfd = NULL;
	g_autoptr(GError) error = NULL;
	const MigdState expect[] = {MIGD_STATE_RUNNING_P2P, MIGD_STATE_STOP, MIGD_STATE_STOP_COPY};

	/* MigdDevice plans RUNNING -> STOP_COPY; the backend executes one SET per arc */
	assert_true(migd_device_transition(MIGD_DEVICE(kdev), MIGD_STATE_STOP_COPY,
					   MIGD_STATE_RUNNING, &dfd, NULL, &error));
	assert_null(error);
	assert_non_null(dfd);
	assert_int_equal(fk.set_targets->len, G_N_ELEMENTS(expect));
	for (guint i = 0; i < G_N_ELEMENTS(expect); i++)
		assert_int_equal(g_array_index(fk.set_targets, MigdState, i), expect[i]);
}

/* --- other operations --- */

static void
test_data_size(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	guint64 len = 0;
	g_autoptr(GError) error = NULL;

	assert_true(migd_device_get_data_size(MIGD_DEVICE(kdev), &len, &error));
	assert_int_equal(len, 96);
	assert_int_equal(fk.last_flags,
			 VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE);
	fk.size_errno = EIO;
	assert_false(migd_device_get_data_size(MIGD_DEVICE(kdev), &len, &error));
	assert_error(error, MIGD_KERNEL_ERROR, EIO);
	assert_non_null(strstr(error->message, "GET MIG_DATA_SIZE"));
}

static void
test_reset(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	g_autoptr(GError) error = NULL;

	fk.state = MIGD_STATE_ERROR;
	assert_true(migd_device_reset(MIGD_DEVICE(kdev), &error));
	assert_int_equal(fk.n_reset, 1);
	assert_int_equal(fk.state, MIGD_STATE_RUNNING);
	fk.reset_errno = EIO;
	assert_false(migd_device_reset(MIGD_DEVICE(kdev), &error));
	assert_error(error, MIGD_KERNEL_ERROR, EIO);
	assert_non_null(strstr(error->message, "VFIO_DEVICE_RESET on " DEV_NAME));
}

static void
test_dma_logging_start(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	const MigdIovaRange ranges[] = {
	    {0, 0x80000000},
	    {0x100000000ull, 0x40000000},
	    {0x38000000000ull, 0x200000},
	};
	guint64 page_size = 4096;
	g_autoptr(GError) error = NULL;

	assert_true(migd_device_dma_logging_start(MIGD_DEVICE(kdev), ranges, G_N_ELEMENTS(ranges),
						  &page_size, &error));
	assert_null(error);
	assert_int_equal(fk.last_argsz, 8 + 24);
	assert_int_equal(fk.last_flags,
			 VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START);
	assert_int_equal(fk.page_size_hint, 4096);
	assert_int_equal(fk.n_ranges, 3);
	for (guint i = 0; i < G_N_ELEMENTS(ranges); i++) {
		assert_int_equal(fk.ranges[i].iova, ranges[i].iova);
		assert_int_equal(fk.ranges[i].length, ranges[i].length);
	}
	/* the page size the driver chose comes back */
	assert_int_equal(page_size, 65536);

	/* too many ranges for the core: E2BIG, and the hint is left alone */
	fk.dma_errno = E2BIG;
	page_size = 4096;
	assert_false(
	    migd_device_dma_logging_start(MIGD_DEVICE(kdev), ranges, 1, &page_size, &error));
	assert_error(error, MIGD_KERNEL_ERROR, E2BIG);
	assert_non_null(strstr(error->message, "SET DMA_LOGGING_START"));
	assert_int_equal(page_size, 4096);
}

static void
test_dma_logging_stop_report(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	guint64 bitmap[4] = {0};
	g_autoptr(GError) error = NULL;

	assert_true(migd_device_dma_logging_report(MIGD_DEVICE(kdev), 0x100000, 256 * 4096, 4096,
						   bitmap, &error));
	assert_null(error);
	assert_int_equal(fk.last_argsz, 8 + 32);
	assert_int_equal(fk.last_flags,
			 VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT);
	assert_int_equal(fk.report_iova, 0x100000);
	assert_int_equal(fk.report_length, 256 * 4096);
	assert_int_equal(fk.report_page_size, 4096);
	assert_ptr_equal(fk.report_bitmap, bitmap);
	assert_int_equal(bitmap[0], 0x9);
	assert_int_equal(bitmap[1], 0x1);
	assert_int_equal(bitmap[2], 0);

	assert_false(
	    migd_device_dma_logging_report(MIGD_DEVICE(kdev), 0, 4096, 1000, bitmap, &error));
	assert_error(error, MIGD_KERNEL_ERROR, EINVAL);
	g_clear_error(&error);

	assert_true(migd_device_dma_logging_stop(MIGD_DEVICE(kdev), &error));
	assert_int_equal(fk.last_argsz, 8);
	assert_int_equal(fk.last_flags,
			 VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP);
}

static void
test_low_power(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	g_autoptr(GError) error = NULL;
	gint efd = eventfd(0, EFD_CLOEXEC);

	assert_true(efd >= 0);
	assert_true(migd_device_low_power_entry(MIGD_DEVICE(kdev), -1, &error));
	assert_int_equal(fk.n_lp_entry, 1);
	assert_int_equal(fk.n_lp_wakeup, 0);
	assert_int_equal(fk.last_argsz, 8);
	assert_int_equal(fk.last_flags,
			 VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY);

	assert_true(migd_device_low_power_entry(MIGD_DEVICE(kdev), efd, &error));
	assert_int_equal(fk.n_lp_wakeup, 1);
	assert_int_equal(fk.lp_eventfd, efd);
	assert_int_equal(fk.last_argsz, 16);
	assert_int_equal(fk.last_flags,
			 VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP);

	assert_true(migd_device_low_power_exit(MIGD_DEVICE(kdev), &error));
	assert_int_equal(fk.n_lp_exit, 1);
	assert_int_equal(fk.last_flags,
			 VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT);
	assert_null(error);
	close(efd);
}

static void
test_device_gone(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = adopt_device();
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	MigdState st;

	fk.gone = TRUE;
	assert_false(migd_device_get_state(MIGD_DEVICE(kdev), &st, &error));
	assert_error(error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE);
	assert_false(migd_device_low_power_exit(MIGD_DEVICE(kdev), &error2));
	assert_error(error2, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE);
}

/* --- adopting and opening --- */

static void
test_adopt_rejects_non_vfio(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	gint fds[2];

	assert_int_equal(pipe(fds), 0);
	kdev = migd_kernel_device_adopt_fd(fds[0], "pipe", &error);
	assert_null(kdev);
	assert_non_null(error);
	assert_int_equal(error->domain, MIGD_KERNEL_ERROR);
	assert_int_equal(error->code, ENOTTY);
	assert_non_null(strstr(error->message, "VFIO_DEVICE_GET_INFO"));
	/* ownership was taken: the fd is closed on failure too */
	assert_true(fd_is_closed(fds[0]));
	close(fds[1]);

	assert_null(migd_kernel_device_adopt_fd(-1, "none", &error2));
	assert_error(error2, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
}

static void
test_open_group_no_iommu_group(void **state)
{
	g_autofree gchar *sys = tmp_path("sys");
	g_autofree gchar *dev = tmp_path("dev");
	g_autoptr(GError) error = NULL;
	guint nfds = count_open_fds();

	assert_null(migd_kernel_device_open_group_full(DEV_NAME, sys, dev, &error));
	assert_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
	assert_non_null(strstr(error->message, "no IOMMU group"));
	assert_non_null(strstr(error->message, "iommu_group"));
	assert_int_equal(count_open_fds(), nfds);
}

static void
test_open_group_bad_names(void **state)
{
	g_autofree gchar *sys = tmp_path("sys");
	g_autofree gchar *dev = tmp_path("dev");
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;

	assert_null(migd_kernel_device_open_group_full("0000:00:00.0", sys, dev, &error));
	assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	assert_null(migd_kernel_device_open_group_full("../../etc", sys, dev, &error2));
	assert_error(error2, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
}

static void
test_open_group(void **state)
{
	g_autofree gchar *sys = tmp_path("sys");
	g_autofree gchar *dev = tmp_path("dev");
	g_autoptr(GError) error = NULL;
	MigdKernelDevice *kdev;
	guint nfds = count_open_fds();
	MigdState st;

	make_group_link();
	kdev = migd_kernel_device_open_group_full(DEV_NAME, sys, dev, &error);
	assert_null(error);
	assert_non_null(kdev);
	assert_true(fk.container_set);
	assert_true(fk.iommu_set);
	assert_int_equal(migd_kernel_device_get_iommufd(kdev), -1);
	/* container, group and device stay open while the object lives */
	assert_int_equal(count_open_fds(), nfds + 3);
	assert_true(migd_device_get_state(MIGD_DEVICE(kdev), &st, &error));
	assert_int_equal(st, MIGD_STATE_RUNNING);
	g_object_unref(kdev);
	assert_int_equal(count_open_fds(), nfds);
}

static void
test_open_group_not_viable(void **state)
{
	g_autofree gchar *sys = tmp_path("sys");
	g_autofree gchar *dev = tmp_path("dev");
	g_autoptr(GError) error = NULL;
	guint nfds = count_open_fds();

	make_group_link();
	fk.group_not_viable = TRUE;
	assert_null(migd_kernel_device_open_group_full(DEV_NAME, sys, dev, &error));
	assert_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
	assert_non_null(strstr(error->message, "not viable"));
	assert_false(fk.container_set);
	assert_int_equal(count_open_fds(), nfds);
}

static void
test_open_cdev(void **state)
{
	g_autofree gchar *sys = tmp_path("sys");
	g_autofree gchar *dev = tmp_path("dev");
	g_autofree gchar *vfio_dev = tmp_path("sys/bus/pci/devices/" DEV_NAME "/vfio-dev/vfio3");
	g_autoptr(GError) error = NULL;
	MigdKernelDevice *kdev;
	guint nfds = count_open_fds();

	assert_int_equal(g_mkdir_with_parents(vfio_dev, 0755), 0);
	kdev = migd_kernel_device_open_cdev_full(DEV_NAME, sys, dev, &error);
	assert_null(error);
	assert_non_null(kdev);
	assert_int_equal(migd_kernel_device_get_iommufd(kdev), fk.iommufd_seen);
	assert_int_equal(migd_kernel_device_get_dev_id(kdev), 7);
	assert_int_equal(migd_kernel_device_get_ioas_id(kdev), 5);
	assert_int_equal(fk.attached_pt, 5);
	assert_int_equal(migd_kernel_device_get_hwpt_id(kdev), 9);
	assert_int_equal(count_open_fds(), nfds + 2);
	/* bound: feature ioctls now reach the device */
	assert_true(migd_device_probe(MIGD_DEVICE(kdev), &error));
	assert_true(migd_device_get_features(MIGD_DEVICE(kdev))->migration);
	g_object_unref(kdev);
	assert_int_equal(count_open_fds(), nfds);
}

#define MDEV_UUID "6f0e1a52-8d1c-4c3e-9a01-0000000000a1"

/*
 * A cdev path names its device through /sys/class/vfio-dev/vfioN/device; an
 * mdev's vfio-dev child is under bus/mdev, as a PCI function's under bus/pci
 */
static void
test_open_by_cdev_path(void **state)
{
	g_autofree gchar *sys = tmp_path("sys");
	g_autofree gchar *dev = tmp_path("dev");
	g_autofree gchar *uuid_dir = tmp_path("sys/bus/mdev/devices/" MDEV_UUID);
	g_autofree gchar *vfio_dev = g_build_filename(uuid_dir, "vfio-dev", "vfio3", NULL);
	g_autofree gchar *class_dir = tmp_path("sys/class/vfio-dev/vfio3");
	g_autofree gchar *link = g_build_filename(class_dir, "device", NULL);
	g_autofree gchar *cdev = g_build_filename(dev, "vfio", "devices", "vfio3", NULL);
	g_autofree gchar *bad = g_build_filename(dev, "vfio", "devices", "vfioX", NULL);
	g_autofree gchar *unknown = g_build_filename(dev, "vfio", "devices", "vfio8", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	g_autoptr(GError) error3 = NULL;
	MigdKernelDevice *kdev;
	guint nfds = count_open_fds();

	assert_int_equal(g_mkdir_with_parents(vfio_dev, 0755), 0);
	assert_int_equal(g_mkdir_with_parents(class_dir, 0755), 0);
	assert_int_equal(symlink(uuid_dir, link), 0);
	kdev = migd_kernel_device_open_full(cdev, sys, dev, &error);
	assert_null(error);
	assert_non_null(kdev);
	/* named after its device, opened through iommufd */
	assert_string_equal(migd_device_get_name(MIGD_DEVICE(kdev)), MDEV_UUID);
	assert_int_equal(migd_kernel_device_get_iommufd(kdev), fk.iommufd_seen);
	g_object_unref(kdev);
	assert_int_equal(count_open_fds(), nfds);

	assert_null(migd_kernel_device_open_full(bad, sys, dev, &error2));
	assert_error(error2, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	assert_null(migd_kernel_device_open_full(unknown, sys, dev, &error3));
	assert_error(error3, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	assert_non_null(strstr(error3->message, "names no VFIO device"));
	assert_int_equal(count_open_fds(), nfds);
}

static void
test_open_cdev_failures(void **state)
{
	g_autofree gchar *sys = tmp_path("sys");
	g_autofree gchar *dev = tmp_path("dev");
	g_autofree gchar *vfio_dev = tmp_path("sys/bus/pci/devices/" DEV_NAME "/vfio-dev/vfio3");
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	guint nfds = count_open_fds();

	/* no vfio-dev: old kernel or no CONFIG_VFIO_DEVICE_CDEV */
	assert_null(migd_kernel_device_open_cdev_full(DEV_NAME, sys, dev, &error));
	assert_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
	assert_non_null(strstr(error->message, "cdev"));

	/* BIND refused (the group is in use): both fds are closed again */
	assert_int_equal(g_mkdir_with_parents(vfio_dev, 0755), 0);
	fk.bind_errno = EBUSY;
	assert_null(migd_kernel_device_open_cdev_full(DEV_NAME, sys, dev, &error2));
	assert_error(error2, MIGD_KERNEL_ERROR, EBUSY);
	assert_non_null(strstr(error2->message, "VFIO_DEVICE_BIND_IOMMUFD on " DEV_NAME));
	/* held elsewhere: the message says the holder is the one to hand the fd over */
	assert_non_null(strstr(error2->message, DEV_NAME " is already open, by "));
	assert_non_null(strstr(error2->message, "should hand its device fd over"));
	assert_int_equal(count_open_fds(), nfds);

	/* the device bound through another cdev fd: Linux answers EINVAL (vfio_df_open) */
	g_clear_error(&error2);
	fk.bind_errno = EINVAL;
	assert_null(migd_kernel_device_open_cdev_full(DEV_NAME, sys, dev, &error2));
	assert_error(error2, MIGD_KERNEL_ERROR, EINVAL);
	assert_non_null(strstr(error2->message, DEV_NAME " is already open, by "));
	assert_int_equal(count_open_fds(), nfds);
}

/*
 * Reopen: the group path gets a new device fd from the same group (the driver's
 * close_device and open_device run), container and group stay; an adopted fd
 * is its owner's: refused, saying so.
 */
static void
test_reopen(void **state)
{
	g_autoptr(MigdKernelDevice) kdev = open_group_device();
	g_autoptr(MigdKernelDevice) adopted = adopt_device();
	g_autoptr(GError) error = NULL;
	guint nfds = count_open_fds();
	MigdState st;

	assert_true(migd_device_reopen(MIGD_DEVICE(kdev), &error));
	assert_int_equal(count_open_fds(), nfds);
	assert_true(migd_kernel_device_get_fd(kdev) >= 0);
	assert_true(migd_device_get_state(MIGD_DEVICE(kdev), &st, &error));

	assert_false(migd_device_reopen(MIGD_DEVICE(adopted), &error));
	assert_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED);
	assert_non_null(strstr(error->message, "handed over by its owner"));
	assert_int_equal(count_open_fds(), nfds);
}

/*
 * AttachDevice's identity: a cdev fd names its device (class/vfio-dev/vfioX/device);
 * a group's fd does not, so the owner's address is checked against it (the PCI
 * flag against the device's kind or mdev device_api, the config space's ids
 * against sysfs). Mismatches are refused, naming both sides.
 */
static void
identity_fixture(guint16 config_vendor, guint16 config_device)
{
	g_autofree gchar *pci = tmp_path("sys/bus/pci/devices/" DEV_NAME);
	g_autofree gchar *drv = tmp_path("sys/bus/pci/drivers/mlx5_vfio_pci");
	g_autofree gchar *driver_link = g_build_filename(pci, "driver", NULL);
	g_autofree gchar *vendor = g_build_filename(pci, "vendor", NULL);
	g_autofree gchar *device = g_build_filename(pci, "device", NULL);
	g_autofree gchar *class_dir = tmp_path("sys/class/vfio-dev/vfio3");
	g_autofree gchar *class_link = g_build_filename(class_dir, "device", NULL);
	g_autofree gchar *mdev =
	    tmp_path("sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001");
	g_autofree gchar *mdev_type = g_build_filename(mdev, "mdev_type", NULL);
	g_autofree gchar *api = g_build_filename(mdev_type, "device_api", NULL);
	guint16 ids[2] = {GUINT16_TO_LE(config_vendor), GUINT16_TO_LE(config_device)};
	gint fd;

	assert_int_equal(g_mkdir_with_parents(drv, 0755), 0);
	assert_int_equal(g_mkdir_with_parents(class_dir, 0755), 0);
	assert_int_equal(g_mkdir_with_parents(mdev_type, 0755), 0);
	assert_int_equal(symlink(drv, driver_link), 0);
	assert_true(g_file_set_contents(vendor, "0x15b3\n", -1, NULL));
	assert_true(g_file_set_contents(device, "0x101e\n", -1, NULL));
	assert_int_equal(symlink(pci, class_link), 0);
	assert_true(g_file_set_contents(api, "vfio-ccw\n", -1, NULL));
	fd = open(fk.device_path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, ids, sizeof(ids), FAKE_CONFIG_OFFSET), sizeof(ids));
	close(fd);
}

static void
assert_identity_driver(MigdKernelDevice *kdev, const gchar *driver)
{
	g_auto(MigdDeviceIdentity) id = {0};
	assert_true(migd_device_get_identity(MIGD_DEVICE(kdev), &id, NULL));
	assert_string_equal(id.driver, driver);
}

static void
test_identify(void **state)
{
	g_autofree gchar *sys = tmp_path("sys");
	g_autofree gchar *dev = tmp_path("dev");
	g_autofree gchar *cdev = tmp_path("dev/vfio/devices/vfio3");
	g_autofree gchar *sysfs_path = tmp_path("sys/bus/pci/devices/" DEV_NAME);
	g_autoptr(GError) error = NULL;

	identity_fixture(0x15b3, 0x101e);
	/* a group fd and the right address: checked, then the device's identity */
	{
		g_autoptr(MigdKernelDevice) kdev = adopt_device();
		assert_true(migd_kernel_device_identify(kdev, DEV_NAME, sys, dev, &error));
		assert_identity_driver(kdev, "mlx5_vfio_pci");
	}
	/* ... or a sysfs path */
	{
		g_autoptr(MigdKernelDevice) kdev = adopt_device();
		assert_true(migd_kernel_device_identify(kdev, sysfs_path, sys, dev, &error));
		assert_identity_driver(kdev, "mlx5_vfio_pci");
	}
	/* no address: unknown, as before, with a warning */
	{
		g_autoptr(MigdKernelDevice) kdev = adopt_device();
		assert_true(migd_kernel_device_identify(kdev, NULL, sys, dev, &error));
		assert_null(migd_device_get_sysfs_path(MIGD_DEVICE(kdev)));
	}
	/* an address nothing has, or outside sysfs */
	{
		g_autoptr(MigdKernelDevice) kdev = adopt_device();
		assert_false(migd_kernel_device_identify(kdev, "0000:00:00.7", sys, dev, &error));
		assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
		assert_non_null(strstr(error->message, "0000:00:00.7"));
		g_clear_error(&error);
		assert_false(migd_kernel_device_identify(kdev, "/etc", sys, dev, &error));
		assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
	}
	/* an mdev whose type is not vfio-pci, for a vfio-pci fd */
	{
		g_autoptr(MigdKernelDevice) kdev = adopt_device();
		assert_false(migd_kernel_device_identify(
		    kdev, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", sys, dev, &error));
		assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
		assert_non_null(strstr(error->message, "vfio-ccw"));
		g_clear_error(&error);
	}
	/* a cdev fd names its device: no address needed; a different one is refused */
	{
		g_autoptr(MigdKernelDevice) kdev = NULL;
		gint fd;
		fk.cdev_bound = TRUE;
		fd = open(cdev, O_RDWR | O_CLOEXEC);
		assert_true(fd >= 0);
		kdev = migd_kernel_device_adopt_fd(fd, "cdev", &error);
		assert_non_null(kdev);
		assert_false(migd_kernel_device_identify(
		    kdev, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", sys, dev, &error));
		assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
		assert_non_null(strstr(error->message, "is the cdev of"));
		g_clear_error(&error);
		assert_true(migd_kernel_device_identify(kdev, NULL, sys, dev, &error));
		assert_identity_driver(kdev, "mlx5_vfio_pci");
		fk.cdev_bound = FALSE;
	}
}

static void
test_identify_config_mismatch(void **state)
{
	g_autofree gchar *sys = tmp_path("sys");
	g_autofree gchar *dev = tmp_path("dev");
	g_autoptr(MigdKernelDevice) kdev = NULL;
	g_autoptr(GError) error = NULL;

	/* the fd is another function than the address names */
	identity_fixture(0x19e5, 0xa251);
	kdev = adopt_device();
	assert_false(migd_kernel_device_identify(kdev, DEV_NAME, sys, dev, &error));
	assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
	assert_non_null(strstr(error->message, "19e5:a251"));
	assert_non_null(strstr(error->message, "15b3:101e"));
	assert_null(migd_device_get_sysfs_path(MIGD_DEVICE(kdev)));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fake_setup, fake_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_probe_all),
	    T(test_probe_absent),
	    T(test_probe_errors),
	    T(test_get_state),
	    T(test_set_state_no_fd),
	    T(test_set_state_save_fd),
	    T(test_set_state_precopy_fd),
	    T(test_set_state_resume_fd),
	    T(test_set_state_errors),
	    T(test_set_state_unexpected_fd),
	    T(test_transition_walks_arcs),
	    T(test_data_size),
	    T(test_reset),
	    T(test_dma_logging_start),
	    T(test_dma_logging_stop_report),
	    T(test_low_power),
	    T(test_device_gone),
	    T(test_adopt_rejects_non_vfio),
	    T(test_open_group_no_iommu_group),
	    T(test_open_group_bad_names),
	    T(test_open_group),
	    T(test_open_group_not_viable),
	    T(test_open_cdev),
	    T(test_open_by_cdev_path),
	    T(test_open_cdev_failures),
	    T(test_reopen),
	    T(test_identify),
	    T(test_identify_config_mismatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
