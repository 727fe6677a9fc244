/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Getting a VFIO device fd from the kernel: the legacy group + type1 container
 * path, and the device cdev bound to an iommufd (6.6+). Both are exclusive, so
 * this only works when vfio-migd owns the device (not while a VMM has it open).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "migd-error.h"
#include "migd-host-devices.h"
#include "migd-kernel-open.h"
#include "uapi/migd-vfio-uapi.h"

/* offsetofend(struct vfio_device_attach_iommufd_pt, pt_id): accepted by 6.6 .. 6.19 */
#define MIGD_VFIO_ATTACH_IOMMUFD_PT_MINSZ 12u

void
migd_close_fd(gint *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

void
migd_kernel_handles_init(MigdKernelHandles *handles)
{
	memset(handles, 0, sizeof(*handles));
	handles->device_fd = -1;
	handles->container_fd = -1;
	handles->group_fd = -1;
	handles->iommufd = -1;
}

void
migd_kernel_handles_clear(MigdKernelHandles *handles)
{
	migd_close_fd(&handles->device_fd);
	migd_close_fd(&handles->group_fd);
	migd_close_fd(&handles->container_fd);
	migd_close_fd(&handles->iommufd);
	g_free(handles->open_name);
	g_free(handles->cdev_path);
	migd_kernel_handles_init(handles);
}

/* the name ends up in paths: refuse anything that could walk out of sysfs */
static gboolean
migd_kernel_check_name(const gchar *device_name, GError **error)
{
	if (device_name == NULL || device_name[0] == '\0' || strchr(device_name, '/') != NULL ||
	    g_strcmp0(device_name, ".") == 0 || g_strcmp0(device_name, "..") == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "invalid VFIO device name '%s'",
			    device_name != NULL ? device_name : "(null)");
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_kernel_open_path(const gchar *path, const gchar *hint, gint *fd, GError **error)
{
	*fd = open(path, O_RDWR | O_CLOEXEC);
	if (*fd < 0) {
		gint errsv = errno;
		migd_set_errno_error(error, errsv, "open(%s)%s", path, hint != NULL ? hint : "");
		return FALSE;
	}
	return TRUE;
}

/* @arg is a pointer or a small integer, as each ioctl wants */
static gboolean
migd_kernel_ioctl(gint fd, gulong request, gulong arg, const gchar *what, const gchar *device_name,
		  gint *ret, GError **error)
{
	gint rc;

	do {
		rc = ioctl(fd, request, arg);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		gint errsv = errno;
		if (errsv == ENODEV) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE, "%s on %s: %s", what,
				    device_name, g_strerror(errsv));
			return FALSE;
		}
		migd_set_errno_error(error, errsv, "%s on %s", what, device_name);
		return FALSE;
	}
	if (ret != NULL)
		*ret = rc;
	return TRUE;
}

/* the error of migd_kernel_ioctl() for an errno already in hand (0: success) */
static gboolean
migd_kernel_ioctl_check(gint errsv, const gchar *what, const gchar *device_name, GError **error)
{
	if (errsv == 0)
		return TRUE;
	if (errsv == ENODEV) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE, "%s on %s: %s", what,
			    device_name, g_strerror(errsv));
		return FALSE;
	}
	migd_set_errno_error(error, errsv, "%s on %s", what, device_name);
	return FALSE;
}

/* /sys/bus/{pci,mdev}/devices/<name>/iommu_group -> ../../kernel/iommu_groups/<N> */
static gchar *
migd_kernel_find_group(const gchar *sysfs_root, const gchar *device_name, GError **error)
{
	const gchar *buses[] = {"pci", "mdev"};

	for (guint i = 0; i < G_N_ELEMENTS(buses); i++) {
		g_autofree gchar *dev_dir =
		    g_build_filename(sysfs_root, "bus", buses[i], "devices", device_name, NULL);
		g_autofree gchar *link = NULL;
		g_autofree gchar *target = NULL;
		g_autofree gchar *group = NULL;
		g_autoptr(GError) error_local = NULL;

		if (!g_file_test(dev_dir, G_FILE_TEST_IS_DIR))
			continue;
		link = g_build_filename(dev_dir, "iommu_group", NULL);
		target = g_file_read_link(link, &error_local);
		if (target == NULL) {
			/* no IOMMU, or IOMMU off: VFIO cannot isolate this device */
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "%s has no IOMMU group (%s: %s); is the IOMMU enabled?",
				    device_name, link, error_local->message);
			return NULL;
		}
		group = g_path_get_basename(target);
		for (const gchar *p = group; *p != '\0'; p++) {
			if (!g_ascii_isdigit(*p)) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
					    "%s: unexpected IOMMU group '%s'", device_name, group);
				return NULL;
			}
		}
		return g_steal_pointer(&group);
	}
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
		    "no PCI device or mdev named %s under %s/bus", device_name, sysfs_root);
	return NULL;
}

static gboolean
migd_kernel_setup_group(const gchar *dev_root, const gchar *device_name, const gchar *group,
			MigdKernelHandles *h, GError **error)
{
	g_autofree gchar *container_path = g_build_filename(dev_root, "vfio", "vfio", NULL);
	g_autofree gchar *group_path = g_build_filename(dev_root, "vfio", group, NULL);
	struct vfio_group_status status = {.argsz = sizeof(status)};
	gint version = -1;
	gint has_type1v2 = 0;
	gint device_fd = -1;

	if (!migd_kernel_open_path(container_path, " (is vfio loaded?)", &h->container_fd, error))
		return FALSE;
	if (!migd_kernel_ioctl(h->container_fd, VFIO_GET_API_VERSION, 0, "VFIO_GET_API_VERSION",
			       device_name, &version, error))
		return FALSE;
	if (version != VFIO_API_VERSION) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "VFIO API version %d, expected %d", version, VFIO_API_VERSION);
		return FALSE;
	}
	if (!migd_kernel_ioctl(h->container_fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU,
			       "VFIO_CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU)", device_name,
			       &has_type1v2, error))
		return FALSE;
	if (has_type1v2 <= 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: the VFIO container does not support VFIO_TYPE1v2_IOMMU",
			    device_name);
		return FALSE;
	}
	/* EBUSY: another process has the group, or one of its devices by cdev */
	h->group_fd = open(group_path, O_RDWR | O_CLOEXEC);
	if (h->group_fd < 0) {
		gint errsv = errno;
		h->held_elsewhere = errsv == EBUSY;
		migd_set_errno_error(error, errsv, "open(%s)", group_path);
		return FALSE;
	}
	if (!migd_kernel_ioctl(h->group_fd, VFIO_GROUP_GET_STATUS, (gulong)&status,
			       "VFIO_GROUP_GET_STATUS", device_name, NULL, error))
		return FALSE;
	if ((status.flags & VFIO_GROUP_FLAGS_VIABLE) == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "IOMMU group %s of %s is not viable: bind every device in it to "
			    "vfio-pci (or unbind it)",
			    group, device_name);
		return FALSE;
	}
	if (!migd_kernel_ioctl(h->group_fd, VFIO_GROUP_SET_CONTAINER, (gulong)&h->container_fd,
			       "VFIO_GROUP_SET_CONTAINER", device_name, NULL, error))
		return FALSE;
	if (!migd_kernel_ioctl(h->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU,
			       "VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)", device_name, NULL, error))
		return FALSE;
	if (!migd_kernel_ioctl(h->group_fd, VFIO_GROUP_GET_DEVICE_FD, (gulong)device_name,
			       "VFIO_GROUP_GET_DEVICE_FD", device_name, &device_fd, error))
		return FALSE;
	h->device_fd = device_fd;
	h->open_name = g_strdup(device_name);
	return TRUE;
}

static gchar *migd_kernel_find_cdev(const gchar *sysfs_root, const gchar *device_name,
				    GError **error);

/*
 * A device already open elsewhere (held_elsewhere from a setup): says who has
 * its cdev or group open, from /proc (best effort), and that this owner is the
 * one to hand the fd over, since neither way in opens a device twice.
 */
static void
migd_kernel_explain_busy(const gchar *sysfs_root, const gchar *dev_root, const gchar *device_name,
			 GError **error)
{
	g_autoptr(GPtrArray) devices =
	    g_ptr_array_new_with_free_func((GDestroyNotify)migd_host_device_free);
	MigdHostDevice *device = g_new0(MigdHostDevice, 1);
	g_autofree gchar *group = NULL;
	g_autofree gchar *holders = NULL;
	g_autofree gchar *old = NULL;
	guint64 group_nr;

	device->held_by = g_ptr_array_new_with_free_func(g_free);
	device->iommu_group = -1;
	g_ptr_array_add(devices, device);
	device->cdev = migd_kernel_find_cdev(sysfs_root, device_name, NULL);
	group = migd_kernel_find_group(sysfs_root, device_name, NULL);
	if (group != NULL && g_ascii_string_to_unsigned(group, 10, 0, G_MAXINT32, &group_nr, NULL))
		device->iommu_group = (gint64)group_nr;
	migd_host_devices_scan_holders(devices, dev_root, NULL, (gint)getpid());
	g_ptr_array_add(device->held_by, NULL);
	holders = g_strjoinv(", ", (gchar **)device->held_by->pdata);
	old = (*error)->message;
	(*error)->message = g_strdup_printf(
	    "%s is already open, by %s (%s). A VFIO device opens only once: the process "
	    "holding it should hand its device fd over (AttachDevice; vfio-migctl attach "
	    "NAME --fd N)",
	    device_name, holders[0] != '\0' ? holders : "a process not visible here", old);
}

typedef gchar *(*MigdKernelFindFunc)(const gchar *sysfs_root, const gchar *device_name,
				     GError **error);
typedef gboolean (*MigdKernelSetupFunc)(const gchar *dev_root, const gchar *device_name,
					const gchar *node, MigdKernelHandles *h, GError **error);

/* the shared frame of both ways in: check the name, find the node in sysfs, open it */
static gboolean
migd_kernel_open_with(const gchar *sysfs_root, const gchar *dev_root, const gchar *device_name,
		      MigdKernelFindFunc find, MigdKernelSetupFunc setup,
		      MigdKernelHandles *handles, GError **error)
{
	MigdKernelHandles h;
	g_autofree gchar *node = NULL;

	g_return_val_if_fail(handles != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	migd_kernel_handles_init(handles);
	if (!migd_kernel_check_name(device_name, error))
		return FALSE;
	node = find(sysfs_root != NULL ? sysfs_root : MIGD_KERNEL_SYSFS_ROOT, device_name, error);
	if (node == NULL)
		return FALSE;
	migd_kernel_handles_init(&h);
	if (!setup(dev_root != NULL ? dev_root : MIGD_KERNEL_DEV_ROOT, device_name, node, &h,
		   error)) {
		gboolean held_elsewhere = h.held_elsewhere;

		/* our own fds first: they would count as holders */
		migd_kernel_handles_clear(&h);
		if (held_elsewhere && error != NULL)
			migd_kernel_explain_busy(
			    sysfs_root != NULL ? sysfs_root : MIGD_KERNEL_SYSFS_ROOT,
			    dev_root != NULL ? dev_root : MIGD_KERNEL_DEV_ROOT, device_name, error);
		return FALSE;
	}
	g_debug("%s: opened through %s (iommufd dev_id %u, IOAS %u, HWPT %u%s)", device_name, node,
		h.dev_id, h.ioas_id, h.hwpt_id, h.hwpt_dirty ? ", dirty tracking" : "");
	*handles = h;
	return TRUE;
}

gboolean
migd_kernel_open_group(const gchar *sysfs_root, const gchar *dev_root, const gchar *device_name,
		       MigdKernelHandles *handles, GError **error)
{
	return migd_kernel_open_with(sysfs_root, dev_root, device_name, migd_kernel_find_group,
				     migd_kernel_setup_group, handles, error);
}

/*
 * /sys/bus/{pci,mdev}/devices/<name>/vfio-dev/vfioX: present with
 * CONFIG_VFIO_DEVICE_CDEV (an mdev's vfio device is the mdev's child, as a PCI
 * function's is the function's)
 */
static gchar *
migd_kernel_find_cdev(const gchar *sysfs_root, const gchar *device_name, GError **error)
{
	const gchar *buses[] = {"pci", "mdev"};
	g_autofree gchar *dir_path = NULL;
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GError) error_local = NULL;
	const gchar *entry;

	for (guint i = 0; i < G_N_ELEMENTS(buses) && dir == NULL; i++) {
		g_clear_pointer(&dir_path, g_free);
		g_clear_error(&error_local);
		dir_path = g_build_filename(sysfs_root, "bus", buses[i], "devices", device_name,
					    "vfio-dev", NULL);
		dir = g_dir_open(dir_path, 0, &error_local);
	}
	if (dir == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s has no VFIO device cdev (%s); needs Linux 6.6+ with "
			    "CONFIG_VFIO_DEVICE_CDEV and a vfio driver bound",
			    device_name, error_local->message);
		return NULL;
	}
	while ((entry = g_dir_read_name(dir)) != NULL) {
		if (g_str_has_prefix(entry, "vfio") && strlen(entry) > 4)
			return g_strdup(entry);
	}
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED, "%s: %s holds no vfioX entry",
		    device_name, dir_path);
	return NULL;
}

/* one ioctl, EINTR retried: 0 or the errno (for steps whose failure is not fatal) */
static gint
migd_kernel_ioctl_raw(gint fd, gulong request, gulong arg)
{
	gint rc;

	do {
		rc = ioctl(fd, request, arg);
	} while (rc < 0 && errno == EINTR);
	return rc < 0 ? errno : 0;
}

static void
migd_kernel_note_no_dirty_hwpt(MigdKernelHandles *h, const gchar *device_name, const gchar *step,
			       gint errsv)
{
	h->hwpt_dirty_step = step;
	h->hwpt_dirty_errno = errsv;
	g_debug("%s: no dirty-tracking HWPT (%s: %s): attaching the IOAS", device_name, step,
		g_strerror(errsv));
}

/*
 * A HWPT on the IOAS that can track dirty pages, if the device's IOMMU can:
 * IOMMU_GET_HW_INFO's IOMMU_HW_CAP_DIRTY_TRACKING, then IOMMU_HWPT_ALLOC with
 * IOMMU_HWPT_ALLOC_DIRTY_TRACKING (which the kernel refuses with EOPNOTSUPP
 * without the capability, hw_pagetable.c). Returns its id, or 0 (iommufd ids
 * start at 1) with the reason noted in @h.
 */
static guint32
migd_kernel_alloc_dirty_hwpt(MigdKernelHandles *h, const gchar *device_name)
{
	struct iommu_hw_info info = {.size = sizeof(info), .dev_id = h->dev_id};
	struct iommu_hwpt_alloc alloc = {
	    .size = sizeof(alloc),
	    .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
	    .dev_id = h->dev_id,
	    .pt_id = h->ioas_id,
	};
	gint errsv;

	/* ENOTTY before 6.6; an emulated (mdev) device has no iommufd_device: ENOENT */
	errsv = migd_kernel_ioctl_raw(h->iommufd, IOMMU_GET_HW_INFO, (gulong)&info);
	if (errsv != 0) {
		migd_kernel_note_no_dirty_hwpt(h, device_name, "IOMMU_GET_HW_INFO", errsv);
		return 0;
	}
	if ((info.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING) == 0) {
		migd_kernel_note_no_dirty_hwpt(h, device_name,
					       "IOMMU_GET_HW_INFO: no IOMMU_HW_CAP_DIRTY_TRACKING",
					       EOPNOTSUPP);
		return 0;
	}
	errsv = migd_kernel_ioctl_raw(h->iommufd, IOMMU_HWPT_ALLOC, (gulong)&alloc);
	if (errsv != 0) {
		migd_kernel_note_no_dirty_hwpt(h, device_name, "IOMMU_HWPT_ALLOC(DIRTY_TRACKING)",
					       errsv);
		return 0;
	}
	return alloc.out_hwpt_id;
}

/*
 * Attaches the device to a dirty-tracking HWPT when its IOMMU has one, once, at
 * open: the domain is chosen before any mapping exists and never replaced under
 * a running device. The flag only asks for a domain able to track; tracking
 * stays off until IOMMU_HWPT_SET_DIRTY_TRACKING. Returns FALSE (nothing
 * attached, the reason noted) when the device must take the IOAS instead.
 */
static gboolean
migd_kernel_attach_dirty_hwpt(MigdKernelHandles *h, const gchar *device_name)
{
	struct vfio_device_attach_iommufd_pt attach = {.argsz = MIGD_VFIO_ATTACH_IOMMUFD_PT_MINSZ};
	guint32 hwpt = migd_kernel_alloc_dirty_hwpt(h, device_name);
	gint errsv;

	if (hwpt == 0)
		return FALSE;
	attach.pt_id = hwpt;
	errsv = migd_kernel_ioctl_raw(h->device_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, (gulong)&attach);
	if (errsv == 0) {
		h->hwpt_id = attach.pt_id;
		h->hwpt_dirty = TRUE;
		h->hwpt_dirty_step = NULL;
		h->hwpt_dirty_errno = 0;
		return TRUE;
	}
	migd_kernel_note_no_dirty_hwpt(h, device_name,
				       "VFIO_DEVICE_ATTACH_IOMMUFD_PT(dirty-tracking HWPT)", errsv);
	{
		struct iommu_destroy destroy = {.size = sizeof(destroy), .id = hwpt};
		errsv = migd_kernel_ioctl_raw(h->iommufd, IOMMU_DESTROY, (gulong)&destroy);
		if (errsv != 0)
			g_debug("%s: IOMMU_DESTROY of HWPT %u: %s (freed with the iommufd)",
				device_name, hwpt, g_strerror(errsv));
	}
	return FALSE;
}

static gboolean
migd_kernel_setup_cdev(const gchar *dev_root, const gchar *device_name, const gchar *cdev,
		       MigdKernelHandles *h, GError **error)
{
	g_autofree gchar *cdev_path = g_build_filename(dev_root, "vfio", "devices", cdev, NULL);
	g_autofree gchar *iommu_path = g_build_filename(dev_root, "iommu", NULL);
	struct vfio_device_bind_iommufd bind = {0};
	struct iommu_ioas_alloc ioas = {.size = sizeof(ioas)};
	struct vfio_device_attach_iommufd_pt attach = {0};
	gint errsv;

	if (!migd_kernel_open_path(cdev_path, NULL, &h->device_fd, error))
		return FALSE;
	h->open_name = g_strdup(device_name);
	h->cdev_path = g_strdup(cdev_path);
	if (!migd_kernel_open_path(iommu_path, " (is iommufd loaded?)", &h->iommufd, error))
		return FALSE;

	/* minsz, not sizeof: 6.18 grew the struct, older kernels want exactly 16 */
	bind.argsz = MIGD_VFIO_BIND_IOMMUFD_MINSZ;
	bind.iommufd = h->iommufd;
	/*
	 * Any process may open a cdev; the bind is what is exclusive. The kernel
	 * answers EINVAL when the device is open through another cdev fd (only the
	 * group path may open a device twice) and EBUSY when its group is open.
	 */
	errsv = migd_kernel_ioctl_raw(h->device_fd, VFIO_DEVICE_BIND_IOMMUFD, (gulong)&bind);
	h->held_elsewhere = errsv == EINVAL || errsv == EBUSY;
	if (!migd_kernel_ioctl_check(errsv, "VFIO_DEVICE_BIND_IOMMUFD", device_name, error))
		return FALSE;
	h->dev_id = bind.out_devid;

	if (!migd_kernel_ioctl(h->iommufd, IOMMU_IOAS_ALLOC, (gulong)&ioas, "IOMMU_IOAS_ALLOC",
			       device_name, NULL, error))
		return FALSE;
	h->ioas_id = ioas.out_ioas_id;

	if (migd_kernel_attach_dirty_hwpt(h, device_name))
		return TRUE;
	attach.argsz = MIGD_VFIO_ATTACH_IOMMUFD_PT_MINSZ;
	attach.pt_id = h->ioas_id;
	if (!migd_kernel_ioctl(h->device_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, (gulong)&attach,
			       "VFIO_DEVICE_ATTACH_IOMMUFD_PT", device_name, NULL, error))
		return FALSE;
	/* attaching an IOAS makes the kernel pick a HWPT and return its id */
	h->hwpt_id = attach.pt_id;
	return TRUE;
}

gboolean
migd_kernel_open_cdev(const gchar *sysfs_root, const gchar *dev_root, const gchar *device_name,
		      MigdKernelHandles *handles, GError **error)
{
	return migd_kernel_open_with(sysfs_root, dev_root, device_name, migd_kernel_find_cdev,
				     migd_kernel_setup_cdev, handles, error);
}

gboolean
migd_kernel_reopen(MigdKernelHandles *h, GError **error)
{
	gint device_fd = -1;

	g_return_val_if_fail(h != NULL, FALSE);

	if (h->open_name == NULL) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "the device fd was handed over by its owner, who alone can "
				    "close and reopen the device: detach it, have the owner "
				    "reopen it and attach the new fd");
		return FALSE;
	}
	/* the last fd of the device: its driver's close_device runs now */
	migd_close_fd(&h->device_fd);
	if (h->cdev_path == NULL) {
		if (!migd_kernel_ioctl(h->group_fd, VFIO_GROUP_GET_DEVICE_FD, (gulong)h->open_name,
				       "VFIO_GROUP_GET_DEVICE_FD", h->open_name, &device_fd, error))
			return FALSE;
		h->device_fd = device_fd;
	} else {
		struct vfio_device_bind_iommufd bind = {0};
		struct vfio_device_attach_iommufd_pt attach = {0};

		if (!migd_kernel_open_path(h->cdev_path, NULL, &h->device_fd, error))
			return FALSE;
		bind.argsz = MIGD_VFIO_BIND_IOMMUFD_MINSZ;
		bind.iommufd = h->iommufd;
		if (!migd_kernel_ioctl(h->device_fd, VFIO_DEVICE_BIND_IOMMUFD, (gulong)&bind,
				       "VFIO_DEVICE_BIND_IOMMUFD", h->open_name, NULL, error)) {
			migd_close_fd(&h->device_fd);
			return FALSE;
		}
		h->dev_id = bind.out_devid;
		/* the same page table: the mappings and the dirty-tracking domain stay */
		attach.argsz = MIGD_VFIO_ATTACH_IOMMUFD_PT_MINSZ;
		attach.pt_id = h->hwpt_id;
		if (!migd_kernel_ioctl(h->device_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, (gulong)&attach,
				       "VFIO_DEVICE_ATTACH_IOMMUFD_PT", h->open_name, NULL,
				       error)) {
			migd_close_fd(&h->device_fd);
			return FALSE;
		}
	}
	g_debug("%s: closed and reopened (fd %d)", h->open_name, h->device_fd);
	return TRUE;
}
