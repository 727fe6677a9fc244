/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The descriptors one opened VFIO device needs kept alive: the group path holds
 * a type1 container and a group; the cdev path an iommufd with the device bound
 * to it and attached to a HWPT of its IOAS. Unused fds are -1.
 */
typedef struct {
	gint device_fd;
	gint container_fd;
	gint group_fd;
	gint iommufd;
	guint32 dev_id;	 /* iommufd device id from VFIO_DEVICE_BIND_IOMMUFD */
	guint32 ioas_id; /* IOAS allocated for the device */
	guint32 hwpt_id; /* what VFIO_DEVICE_ATTACH_IOMMUFD_PT attached */
	/*
	 * cdev: hwpt_id was allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING. If not,
	 * the step that ruled it out and its errno (EOPNOTSUPP: the IOMMU reports
	 * no IOMMU_HW_CAP_DIRTY_TRACKING for the device); the device then sits on
	 * the kernel's automatic domain for the IOAS.
	 */
	gboolean hwpt_dirty;
	const gchar *hwpt_dirty_step;
	gint hwpt_dirty_errno;
	/* how to open the device again (migd_kernel_reopen); NULL for an adopted fd */
	gchar *open_name; /* the name VFIO_GROUP_GET_DEVICE_FD takes */
	gchar *cdev_path; /* cdev: /dev/vfio/devices/vfioX */
	/* the open failed because another process has the device (or its group) open */
	gboolean held_elsewhere;
} MigdKernelHandles;

#define MIGD_KERNEL_SYSFS_ROOT "/sys"
#define MIGD_KERNEL_DEV_ROOT   "/dev"

void migd_kernel_handles_init(MigdKernelHandles *handles);
/* closes every fd (device first, so it unbinds before its iommufd goes away) */
void migd_kernel_handles_clear(MigdKernelHandles *handles);

/* closes *fd if open and sets it to -1 */
void migd_close_fd(gint *fd);

/*
 * Opens @device_name (a PCI address or an mdev UUID) through its IOMMU group
 * and a type1v2 container. @sysfs_root and @dev_root stand for /sys and /dev.
 * On failure everything opened so far is closed and @handles stays empty.
 */
gboolean migd_kernel_open_group(const gchar *sysfs_root, const gchar *dev_root,
				const gchar *device_name, MigdKernelHandles *handles,
				GError **error);

/*
 * Opens the device cdev /dev/vfio/devices/vfioX and binds it to a new iommufd
 * and IOAS. When IOMMU_GET_HW_INFO reports IOMMU_HW_CAP_DIRTY_TRACKING for the
 * device, it is attached to a HWPT allocated on that IOAS with
 * IOMMU_HWPT_ALLOC_DIRTY_TRACKING (as QEMU does), otherwise (or if that fails)
 * to the IOAS itself, which gives it the kernel's automatic domain.
 */
gboolean migd_kernel_open_cdev(const gchar *sysfs_root, const gchar *dev_root,
			       const gchar *device_name, MigdKernelHandles *handles,
			       GError **error);

/*
 * Closes the device fd and opens the device again the way @handles were made
 * (the group's VFIO_GROUP_GET_DEVICE_FD, or the cdev bound to the same iommufd
 * and attached to the same HWPT), so the driver's close_device and
 * open_device run. The container, group and iommufd stay. An adopted fd is its
 * owner's to reopen: MIGD_ERROR_NOT_SUPPORTED.
 */
gboolean migd_kernel_reopen(MigdKernelHandles *handles, GError **error);

G_END_DECLS
