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
 * to it and attached to an IOAS (later HWPT dirty tracking needs the ids).
 * Unused fds are -1.
 */
typedef struct {
	gint device_fd;
	gint container_fd;
	gint group_fd;
	gint iommufd;
	guint32 dev_id;	 /* iommufd device id from VFIO_DEVICE_BIND_IOMMUFD */
	guint32 ioas_id; /* IOAS allocated for the device */
	guint32 hwpt_id; /* what VFIO_DEVICE_ATTACH_IOMMUFD_PT attached */
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

/* opens the device cdev /dev/vfio/devices/vfioX, binds it to a new iommufd and an IOAS */
gboolean migd_kernel_open_cdev(const gchar *sysfs_root, const gchar *dev_root,
			       const gchar *device_name, MigdKernelHandles *handles,
			       GError **error);

G_END_DECLS
