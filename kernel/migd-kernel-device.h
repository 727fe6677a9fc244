/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-device.h"

G_BEGIN_DECLS

/*
 * The real backend: each MigdDevice vfunc is one ioctl on a VFIO device fd.
 * Kernel errors are MIGD_KERNEL_ERROR (code = errno, message names the ioctl,
 * the feature and the device), except ENODEV, which is MIGD_ERROR_DEVICE_GONE.
 * IOMMU dirty tracking (iommu_dirty_*) runs on the container (type1
 * VFIO_IOMMU_DIRTY_PAGES) or the iommufd HWPT the device was opened with; an
 * adopted fd answers MIGD_ERROR_NOT_SUPPORTED (see migd-kernel-iommu-dirty.c).
 */
#define MIGD_TYPE_KERNEL_DEVICE (migd_kernel_device_get_type())
G_DECLARE_FINAL_TYPE(MigdKernelDevice, migd_kernel_device, MIGD, KERNEL_DEVICE, MigdDevice)

/* @device_name: a PCI address (0000:3b:00.1) or an mdev UUID; opened via its IOMMU group */
MigdKernelDevice *migd_kernel_device_open_group(const gchar *device_name, GError **error);
/* the same with /sys and /dev replaced by @sysfs_root and @dev_root (NULL: the real ones) */
MigdKernelDevice *migd_kernel_device_open_group_full(const gchar *device_name,
						     const gchar *sysfs_root, const gchar *dev_root,
						     GError **error);

/*
 * A PCI device or an mdev through /dev/vfio/devices/vfioX bound to a new
 * iommufd and IOAS (6.6+)
 */
MigdKernelDevice *migd_kernel_device_open_cdev(const gchar *device_name, GError **error);
MigdKernelDevice *migd_kernel_device_open_cdev_full(const gchar *device_name,
						    const gchar *sysfs_root, const gchar *dev_root,
						    GError **error);

/*
 * What a daemon is given: a device cdev path (DEV_ROOT/vfio/devices/vfioX)
 * opens that cdev (iommufd), anything else (a PCI address or an mdev UUID)
 * the device's group. The device is named after the device (its PCI address
 * or UUID, from /sys/class/vfio-dev/vfioX/device), however it was opened.
 */
MigdKernelDevice *migd_kernel_device_open(const gchar *what, GError **error);
MigdKernelDevice *migd_kernel_device_open_full(const gchar *what, const gchar *sysfs_root,
					       const gchar *dev_root, GError **error);

/*
 * Takes over a device fd opened by someone else (e.g. a VMM, over SCM_RIGHTS).
 * Always takes ownership of @device_fd: on failure it has been closed.
 */
MigdKernelDevice *migd_kernel_device_adopt_fd(gint device_fd, const gchar *name, GError **error);

/*
 * Who an adopted fd is, so its identity (driver, PCI ids) and plugin are the
 * device's: from the fd where the kernel tells (a device cdev:
 * /dev/vfio/devices/vfioX -> /sys/class/vfio-dev/vfioX/device), else from
 * @address (a PCI address, an mdev UUID or a sysfs path; may be NULL) checked
 * against what the fd reports (VFIO_DEVICE_GET_INFO's PCI flag against the
 * device's kind or its mdev type's device_api; a PCI function's vendor and
 * device ids against its config space). A mismatch is refused. With neither,
 * the identity stays unknown, with a warning. @sysfs_root, @dev_root: NULL for
 * /sys and /dev.
 */
gboolean migd_kernel_device_identify(MigdKernelDevice *self, const gchar *address,
				     const gchar *sysfs_root, const gchar *dev_root,
				     GError **error);

gint migd_kernel_device_get_fd(MigdKernelDevice *self);
/* -1 unless opened with open_cdev */
gint migd_kernel_device_get_iommufd(MigdKernelDevice *self);
/* the iommufd ids (0 unless opened with open_cdev) */
guint32 migd_kernel_device_get_dev_id(MigdKernelDevice *self);
guint32 migd_kernel_device_get_ioas_id(MigdKernelDevice *self);
guint32 migd_kernel_device_get_hwpt_id(MigdKernelDevice *self);
/* cdev: the HWPT was allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING (IOMMU dirty tracking works) */
gboolean migd_kernel_device_has_dirty_hwpt(MigdKernelDevice *self);

G_END_DECLS
