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
	/* type1 IOMMU dirty tracking on the container (vfio_iommu_type1.c) */
	guint64 iova_pgsizes;	   /* VFIO_IOMMU_GET_INFO */
	guint64 cap_pgsize;	   /* CAP_MIGRATION's pgsize_bitmap (0: from iova_pgsizes) */
	guint64 max_dirty_bitmap;  /* CAP_MIGRATION's max_dirty_bitmap_size */
	gboolean no_cap_migration; /* the chain lacks it (iommufd's compat container) */
	gint get_info_errno, dirty_pages_errno;
	guint n_get_info, n_type1_start, n_type1_stop, n_get_bitmap;
	gboolean type1_tracking;
	/* the container's vfio_dma mappings, and what was pinned (dirty) in them */
	struct {
		guint64 iova, size;
	} type1_dma[4];
	guint n_type1_dma;
	guint64 type1_pinned[8];
	guint n_type1_pinned;
	gboolean type1_non_pinned; /* an IOMMU-backed group that pins nothing: all dirty */
	guint32 last_dirty_argsz;
	guint64 last_bitmap_size, last_bitmap_pgsize;
	/* iommufd HWPT dirty tracking */
	guint64 hw_caps; /* IOMMU_GET_HW_INFO out_capabilities */
	gint hw_info_errno, hwpt_alloc_errno, attach_hwpt_errno, set_dirty_errno;
	guint32 dirty_hwpt_id; /* allocated with DIRTY_TRACKING (11), 0: none */
	gboolean hwpt_destroyed;
	gboolean hwpt_tracking;
	guint n_set_dirty, n_get_dirty;
	guint32 last_get_dirty_flags;
	guint64 hwpt_dirty_iova[8]; /* pages the device wrote (4 KiB each) */
	guint n_hwpt_dirty;
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
/* through the group and a type1 container (make_group_link() done here) */
MigdKernelDevice *open_group_device(void);
/* through the cdev and an iommufd */
MigdKernelDevice *open_cdev_device(void);

/* the type1 container's dirty-bitmap id and limits, and the iommufd HWPT ids */
/* where the device node file holds the PCI config space (VFIO_DEVICE_GET_REGION_INFO) */
#define FAKE_CONFIG_OFFSET 0x10000u

#define FAKE_AUTO_HWPT_ID	   9u
#define FAKE_DIRTY_HWPT_ID	   11u
#define FAKE_DIRTY_BITMAP_SIZE_MAX 268435456ull /* DIRTY_BITMAP_BYTES(INT_MAX) */
