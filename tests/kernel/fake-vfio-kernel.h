/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The fake VFIO kernel behind test-kernel-device (see fake-vfio-kernel.c).
 */
#pragma once

#include "test-kernel-common.h"

#include "migd-error.h"
#include "migd-kernel-device.h"
#include "uapi/migd-vfio-uapi.h"

#define DEV_NAME "0000:3b:00.1"

typedef enum {
	FD_OTHER,
	FD_DEVICE, /* the group's device node, or a bound cdev */
	FD_CDEV,   /* /dev/vfio/devices/vfio3 */
	FD_CONTAINER,
	FD_GROUP,
	FD_IOMMU,
} FdKind;

typedef struct {
	gchar *tmpdir;
	gchar *device_path; /* what VFIO_GROUP_GET_DEVICE_FD opens */
	/* the device */
	gboolean gone; /* every device ioctl: ENODEV */
	guint32 mig_flags;
	gint mig_errno, dma_probe_errno, lp_probe_errno, lpw_probe_errno, size_errno;
	guint64 stop_copy_length;
	MigdState state;
	gint set_errno, get_errno, reset_errno, dma_errno;
	gboolean set_returns_bogus_fd;
	gint data_fd_peer; /* our end of the data fd the "driver" handed out */
	gint data_fd_given;
	GArray *set_targets;
	guint n_reset;
	guint64 chosen_page_size;
	struct vfio_device_feature_dma_logging_range ranges[8];
	guint n_ranges;
	guint64 page_size_hint;
	guint64 report_iova, report_length, report_page_size;
	guint64 *report_bitmap;
	gint lp_eventfd;
	guint n_lp_entry, n_lp_wakeup, n_lp_exit;
	guint32 last_argsz, last_flags;
	/* the open paths */
	gboolean group_not_viable;
	gboolean container_set, iommu_set;
	gint bind_errno;
	gboolean cdev_bound;
	gint iommufd_seen;
	guint32 ioas_id, attached_pt;
} FakeKernel;

/* what the fake kernel does and saw; reset by fake_setup() */
extern FakeKernel fk;

int fake_setup(void **state);
int fake_teardown(void **state);
/* @rel inside the temporary root */
gchar *tmp_path(const gchar *rel);
/* sys/bus/pci/devices/DEV_NAME/iommu_group -> group 42 */
void make_group_link(void);
guint count_open_fds(void);
/* a MigdKernelDevice on the fake device node, through adopt_fd */
MigdKernelDevice *adopt_device(void);
