/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Host discovery: what VFIO-capable devices the host has, read from sysfs
 * alone (nothing is opened). Since Linux 6.1 a VFIO device has a struct
 * device (/sys/class/vfio-dev/vfioN, a child of the PCI function or mdev);
 * mdev types are described by the mdev core under each parent's
 * mdev_supported_types/. Every read is capped (MIGD_HOST_DEVICES_READ_MAX), so a
 * strange or hostile tree gives entries with fields missing, never a failure.
 */

/* a test points the daemon's scan at a fake tree (for tests only) */
#define MIGD_HOST_SYSFS_ROOT_ENV "VFIO_MIGD_SYSFS_ROOT"
/* ... and its /dev (for /dev/vfio/devices/vfioN and /dev/vfio/GROUP) */
#define MIGD_HOST_DEV_ROOT_ENV "VFIO_MIGD_DEV_ROOT"

/* the most bytes read from any one sysfs file */
#define MIGD_HOST_DEVICES_READ_MAX 4096u
/* entries per directory listed; a larger directory is cut there */
#define MIGD_HOST_DEVICES_DIR_MAX 4096u
/* /proc/PID/fd links read in all by the held-by scan */
#define MIGD_HOST_DEVICES_FD_LINKS_MAX 65536u

typedef enum {
	MIGD_HOST_DEVICE_PCI,	    /* a PCI function bound to vfio-pci or a variant driver */
	MIGD_HOST_DEVICE_MDEV,	    /* an mdev instance */
	MIGD_HOST_DEVICE_MDEV_TYPE, /* an mdev type a parent can create */
} MigdHostDeviceKind;

const gchar *migd_host_device_kind_to_string(MigdHostDeviceKind kind);

/* One entry; a field that could not be read is NULL, -1 or FALSE (has_ids). */
typedef struct {
	MigdHostDeviceKind kind;
	gchar *name;   /* PCI address, mdev UUID, or "PARENT/TYPE" */
	gchar *driver; /* the bound driver's name */
	gboolean has_ids;
	guint16 vendor_id;
	guint16 device_id;
	gint64 iommu_group;
	gchar *cdev;	    /* "vfioN" (the vfio-dev child), NULL if none */
	gboolean cdev_node; /* DEV_ROOT/vfio/devices/vfioN exists */
	gchar *parent;	    /* mdev and mdev type: the parent device's name */
	gchar *type;	    /* mdev: its type id; mdev type: the type id */
	gchar *type_name;   /* mdev type: its name file */
	gchar *description; /* mdev type: first line of its description */
	gchar *device_api;  /* mdev type: e.g. "vfio-pci" */
	gint64 available_instances;
	GPtrArray *held_by; /* "pid:comm" of processes with its cdev or group open */
	/* filled by the caller (the daemon), not by the scan */
	gchar *plugin;
	gboolean served;
} MigdHostDevice;

void migd_host_device_free(MigdHostDevice *device);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdHostDevice, migd_host_device_free)

/*
 * Lists the host's VFIO devices under @sysfs_root (NULL: /sys), with /dev at
 * @dev_root (NULL: /dev): PCI functions bound to a vfio driver, mdev
 * instances, creatable mdev types. Sorted by kind, then name.
 */
GPtrArray *migd_host_devices_scan(const gchar *sysfs_root, const gchar *dev_root);

/*
 * Best effort: fills each device's held_by with the processes (other than
 * @exclude_pid, 0 for none) having DEV_ROOT/vfio/devices/vfioN or
 * DEV_ROOT/vfio/GROUP open, from @proc_root's (NULL: /proc) /proc/PID/fd links.
 * Only processes the caller may inspect are seen (root sees all); at most
 * MIGD_HOST_DEVICES_FD_LINKS_MAX links are read, and a process that exits
 * meanwhile is skipped. A group fd is counted for every device of its group.
 */
void migd_host_devices_scan_holders(GPtrArray *devices, const gchar *dev_root,
				    const gchar *proc_root, gint exclude_pid);

/* the roots the daemon uses: $VFIO_MIGD_SYSFS_ROOT / $VFIO_MIGD_DEV_ROOT or the real ones */
const gchar *migd_host_devices_sysfs_root(void);
const gchar *migd_host_devices_dev_root(void);

G_END_DECLS
