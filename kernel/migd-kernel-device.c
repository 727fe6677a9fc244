/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The kernel backend: one VFIO_DEVICE_FEATURE (or VFIO_DEVICE_RESET) per
 * MigdDevice vfunc. No planning and no recovery here: MigdDevice never asks for
 * an arc its planner forbids, and it GETs the state after a failed SET. IOMMU dirty
 * tracking is in migd-kernel-iommu-dirty.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "migd-error.h"
#include "migd-kernel-device-private.h"
#include "uapi/migd-vfio-uapi.h"

G_DEFINE_TYPE(MigdKernelDevice, migd_kernel_device, MIGD_TYPE_DEVICE)

/* the largest payload we send: vfio_device_feature_dma_logging_report */
#define MIGD_FEATURE_PAYLOAD_MAX 32

/* header + payload on the stack, aligned for the __aligned_u64 members */
typedef union {
	struct vfio_device_feature hdr;
	guint64 align;
	guint8 raw[sizeof(struct vfio_device_feature) + MIGD_FEATURE_PAYLOAD_MAX];
} MigdFeatureBuf;

static const gchar *
migd_kernel_feature_name(guint32 index)
{
	switch (index) {
	case VFIO_DEVICE_FEATURE_MIGRATION:
		return "MIGRATION";
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
		return "MIG_DEVICE_STATE";
	case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY:
		return "LOW_POWER_ENTRY";
	case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP:
		return "LOW_POWER_ENTRY_WITH_WAKEUP";
	case VFIO_DEVICE_FEATURE_LOW_POWER_EXIT:
		return "LOW_POWER_EXIT";
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
		return "DMA_LOGGING_START";
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
		return "DMA_LOGGING_STOP";
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
		return "DMA_LOGGING_REPORT";
	case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
		return "MIG_DATA_SIZE";
	default:
		return "UNKNOWN";
	}
}

/* "SET MIG_DEVICE_STATE=STOP_COPY", "PROBE SET DMA_LOGGING_START"; @detail is appended */
static gchar *
migd_kernel_feature_describe(guint32 flags, const gchar *detail)
{
	GString *str = g_string_new(NULL);

	if (flags & VFIO_DEVICE_FEATURE_PROBE)
		g_string_append(str, "PROBE ");
	if (flags & VFIO_DEVICE_FEATURE_GET)
		g_string_append(str, "GET ");
	if (flags & VFIO_DEVICE_FEATURE_SET)
		g_string_append(str, "SET ");
	g_string_append(str, migd_kernel_feature_name(flags & VFIO_DEVICE_FEATURE_MASK));
	if (detail != NULL)
		g_string_append(str, detail);
	return g_string_free(str, FALSE);
}

/* ENODEV on a device fd means the device went away (hot-unplug, driver unbound) */
static void
migd_kernel_device_set_error(MigdKernelDevice *self, gint errsv, const gchar *what, GError **error)
{
	const gchar *name = migd_device_get_name(MIGD_DEVICE(self));

	if (errsv == ENODEV) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE, "%s on %s: %s", what, name,
			    g_strerror(errsv));
		return;
	}
	migd_set_errno_error(error, errsv, "%s on %s", what, name);
}

/*
 * One VFIO_DEVICE_FEATURE with @payload copied in and, on success, back out.
 * Returns 0 or the errno, so probes can tell "absent" from "broken".
 */
static gint
migd_kernel_device_feature_raw(MigdKernelDevice *self, guint32 flags, void *payload,
			       gsize payload_len)
{
	MigdFeatureBuf buf;
	gint rc;

	g_return_val_if_fail(payload_len <= MIGD_FEATURE_PAYLOAD_MAX, EINVAL);
	memset(&buf, 0, sizeof(buf));
	buf.hdr.argsz = (guint32)(sizeof(buf.hdr) + payload_len);
	buf.hdr.flags = flags;
	if (payload_len > 0)
		memcpy(buf.hdr.data, payload, payload_len);
	do {
		rc = ioctl(self->handles.device_fd, VFIO_DEVICE_FEATURE, &buf);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return errno;
	if (payload_len > 0)
		memcpy(payload, buf.hdr.data, payload_len);
	return 0;
}

static gboolean
migd_kernel_device_feature(MigdKernelDevice *self, guint32 flags, const gchar *detail,
			   void *payload, gsize payload_len, GError **error)
{
	gint errsv = migd_kernel_device_feature_raw(self, flags, payload, payload_len);

	if (errsv != 0) {
		g_autofree gchar *desc = migd_kernel_feature_describe(flags, detail);
		g_autofree gchar *what = g_strdup_printf("VFIO_DEVICE_FEATURE(%s)", desc);
		migd_kernel_device_set_error(self, errsv, what, error);
		return FALSE;
	}
	return TRUE;
}

/*
 * An optional feature: ENOTTY (no driver op; 6.6+) or EINVAL (6.3 and older, or
 * an unsupported GET/SET bit) mean "absent"; anything else is a real failure.
 */
static gboolean
migd_kernel_device_feature_optional(MigdKernelDevice *self, guint32 flags, void *payload,
				    gsize payload_len, gboolean *present, GError **error)
{
	gint errsv = migd_kernel_device_feature_raw(self, flags, payload, payload_len);

	*present = errsv == 0;
	if (errsv == 0 || errsv == ENOTTY || errsv == EINVAL)
		return TRUE;
	{
		g_autofree gchar *desc = migd_kernel_feature_describe(flags, NULL);
		g_autofree gchar *what = g_strdup_printf("VFIO_DEVICE_FEATURE(%s)", desc);
		migd_kernel_device_set_error(self, errsv, what, error);
	}
	return FALSE;
}

static gboolean
migd_kernel_device_probe(MigdDevice *device, MigdDeviceFeatures *features, GError **error)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(device);
	struct vfio_device_feature_migration mig = {0};
	struct vfio_device_feature_mig_data_size size = {0};

	memset(features, 0, sizeof(*features));
	if (!migd_kernel_device_feature_optional(
		self, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION, &mig, sizeof(mig),
		&features->migration, error))
		return FALSE;
	if (features->migration)
		features->mig_flags = (guint32)mig.flags;

	/* a probe needs no payload: the core answers before looking at it */
	if (!migd_kernel_device_feature_optional(self,
						 VFIO_DEVICE_FEATURE_PROBE |
						     VFIO_DEVICE_FEATURE_SET |
						     VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
						 NULL, 0, &features->dma_logging, error))
		return FALSE;
	if (!migd_kernel_device_feature_optional(self,
						 VFIO_DEVICE_FEATURE_PROBE |
						     VFIO_DEVICE_FEATURE_SET |
						     VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
						 NULL, 0, &features->low_power, error))
		return FALSE;
	if (!migd_kernel_device_feature_optional(
		self,
		VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
		    VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
		NULL, 0, &features->low_power_wakeup, error))
		return FALSE;
	if (!migd_kernel_device_feature_optional(
		self, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &size,
		sizeof(size), &features->mig_data_size, error))
		return FALSE;
	if (features->mig_data_size)
		features->stop_copy_length = size.stop_copy_length;
	return TRUE;
}

static gboolean
migd_kernel_device_get_state(MigdDevice *device, MigdState *state, GError **error)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(device);
	struct vfio_device_feature_mig_state mig = {.data_fd = -1};

	if (!migd_kernel_device_feature(
		self, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, NULL, &mig,
		sizeof(mig), error))
		return FALSE;
	*state = (MigdState)mig.device_state;
	return TRUE;
}

static gboolean
migd_kernel_device_set_state(MigdDevice *device, MigdState state, MigdDataFd **data_fd,
			     GError **error)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(device);
	struct vfio_device_feature_mig_state mig = {.device_state = state, .data_fd = -1};
	MigdDataFdDirection direction;
	g_autofree gchar *detail = NULL;

	if (data_fd != NULL)
		*data_fd = NULL;
	if (!migd_state_is_valid(state)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "invalid device state %u", (guint)state);
		return FALSE;
	}
	detail = g_strdup_printf("=%s", migd_state_to_string(state));
	/*
	 * On failure the kernel copies back the *requested* state, not the real
	 * one; only the errno is worth reporting (the caller GETs the state).
	 */
	if (!migd_kernel_device_feature(
		self, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, detail, &mig,
		sizeof(mig), error))
		return FALSE;
	if (mig.data_fd < 0)
		return TRUE;

	if (migd_state_is_saving(state)) {
		direction = MIGD_DATA_FD_SAVE;
	} else if (state == MIGD_STATE_RESUMING) {
		direction = MIGD_DATA_FD_RESUME;
	} else {
		close(mig.data_fd);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "VFIO_DEVICE_FEATURE(SET MIG_DEVICE_STATE=%s) on %s returned a data "
			    "fd for a state without a data session",
			    migd_state_to_string(state), migd_device_get_name(device));
		return FALSE;
	}
	if (data_fd == NULL) {
		/* nobody to hand it to; the driver keeps its own reference */
		close(mig.data_fd);
		return TRUE;
	}
	*data_fd = migd_data_fd_new(mig.data_fd, direction, NULL, NULL, NULL);
	return TRUE;
}

static gboolean
migd_kernel_device_get_data_size(MigdDevice *device, guint64 *stop_copy_length, GError **error)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(device);
	struct vfio_device_feature_mig_data_size size = {0};

	if (!migd_kernel_device_feature(self,
					VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
					NULL, &size, sizeof(size), error))
		return FALSE;
	*stop_copy_length = size.stop_copy_length;
	return TRUE;
}

static gboolean
migd_kernel_device_reset(MigdDevice *device, GError **error)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(device);
	gint rc;

	do {
		rc = ioctl(self->handles.device_fd, VFIO_DEVICE_RESET);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		migd_kernel_device_set_error(self, errno, "VFIO_DEVICE_RESET", error);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_kernel_device_dma_logging_start(MigdDevice *device, const MigdIovaRange *ranges,
				     guint n_ranges, guint64 *page_size, GError **error)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(device);
	g_autofree struct vfio_device_feature_dma_logging_range *kranges = NULL;
	struct vfio_device_feature_dma_logging_control control = {0};
	g_autofree gchar *detail = NULL;

	/* the kernel reads the ranges through a user pointer, so they live on the heap */
	kranges = g_new0(struct vfio_device_feature_dma_logging_range, MAX(n_ranges, 1));
	for (guint i = 0; i < n_ranges; i++) {
		kranges[i].iova = ranges[i].iova;
		kranges[i].length = ranges[i].length;
	}
	control.page_size = *page_size;
	control.num_ranges = n_ranges;
	control.ranges = (guint64)(guintptr)kranges;
	detail =
	    g_strdup_printf(" (%u ranges, page size %" G_GUINT64_FORMAT ")", n_ranges, *page_size);
	if (!migd_kernel_device_feature(
		self, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START, detail,
		&control, sizeof(control), error))
		return FALSE;
	/* mlx5 clamps the page size to what its tracker supports */
	*page_size = control.page_size;
	return TRUE;
}

static gboolean
migd_kernel_device_dma_logging_stop(MigdDevice *device, GError **error)
{
	return migd_kernel_device_feature(
	    MIGD_KERNEL_DEVICE(device),
	    VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, NULL, 0, error);
}

static gboolean
migd_kernel_device_dma_logging_report(MigdDevice *device, guint64 iova, guint64 length,
				      guint64 page_size, guint64 *bitmap, GError **error)
{
	struct vfio_device_feature_dma_logging_report report = {
	    .iova = iova,
	    .length = length,
	    .page_size = page_size,
	    .bitmap = (guint64)(guintptr)bitmap,
	};
	return migd_kernel_device_feature(MIGD_KERNEL_DEVICE(device),
					  VFIO_DEVICE_FEATURE_GET |
					      VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
					  NULL, &report, sizeof(report), error);
}

static gboolean
migd_kernel_device_low_power_entry(MigdDevice *device, gint wakeup_eventfd, GError **error)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(device);
	struct vfio_device_low_power_entry_with_wakeup wakeup = {.wakeup_eventfd = wakeup_eventfd};

	if (wakeup_eventfd < 0) {
		return migd_kernel_device_feature(
		    self, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, NULL, NULL,
		    0, error);
	}
	return migd_kernel_device_feature(
	    self, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, NULL,
	    &wakeup, sizeof(wakeup), error);
}

static gboolean
migd_kernel_device_low_power_exit(MigdDevice *device, GError **error)
{
	return migd_kernel_device_feature(
	    MIGD_KERNEL_DEVICE(device),
	    VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, NULL, NULL, 0, error);
}

/* VFIO_DEVICE_GET_REGION_INFO, and the access must fit inside the region */
static gboolean
migd_kernel_device_region_locate(MigdKernelDevice *self, guint index, guint64 offset, gsize len,
				 guint64 *file_offset, GError **error)
{
	struct vfio_region_info info = {.argsz = sizeof(info), .index = index};
	g_autofree gchar *what = NULL;
	gint rc;

	do {
		rc = ioctl(self->handles.device_fd, VFIO_DEVICE_GET_REGION_INFO, &info);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		what = g_strdup_printf("VFIO_DEVICE_GET_REGION_INFO(%u)", index);
		migd_kernel_device_set_error(self, errno, what, error);
		return FALSE;
	}
	if (offset > info.size || len > info.size - offset) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: %" G_GSIZE_FORMAT " bytes at 0x%" G_GINT64_MODIFIER
			    "x are outside region %u (size %" G_GUINT64_FORMAT ")",
			    migd_device_get_name(MIGD_DEVICE(self)), len, offset, index,
			    (guint64)info.size);
		return FALSE;
	}
	*file_offset = info.offset + offset;
	return TRUE;
}

/* one pread/pwrite: region accesses are all-or-nothing in every VFIO driver */
static gboolean
migd_kernel_device_region_access(MigdKernelDevice *self, guint index, guint64 offset, void *buf,
				 gsize len, gboolean is_write, GError **error)
{
	const gchar *op = is_write ? "pwrite" : "pread";
	guint64 pos = 0;
	gssize n;

	if (!migd_kernel_device_region_locate(self, index, offset, len, &pos, error))
		return FALSE;
	do {
		n = is_write ? pwrite(self->handles.device_fd, buf, len, (off_t)pos)
			     : pread(self->handles.device_fd, buf, len, (off_t)pos);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		g_autofree gchar *what = g_strdup_printf("%s of region %u", op, index);
		migd_kernel_device_set_error(self, errno, what, error);
		return FALSE;
	}
	if ((gsize)n != len) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s: short %s of region %u (%" G_GSSIZE_FORMAT " of %" G_GSIZE_FORMAT
			    ")",
			    migd_device_get_name(MIGD_DEVICE(self)), op, index, n, len);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_kernel_device_region_read(MigdDevice *device, guint index, guint64 offset, void *buf,
			       gsize len, GError **error)
{
	return migd_kernel_device_region_access(MIGD_KERNEL_DEVICE(device), index, offset, buf, len,
						FALSE, error);
}

static gboolean
migd_kernel_device_region_write(MigdDevice *device, guint index, guint64 offset, const void *buf,
				gsize len, GError **error)
{
	/* pwrite only reads @buf; the shared helper takes a plain pointer */
	return migd_kernel_device_region_access(MIGD_KERNEL_DEVICE(device), index, offset,
						(void *)buf, len, TRUE, error);
}

/* the driver's close_device and open_device run; the data fds it handed out die */
static gboolean
migd_kernel_device_reopen(MigdDevice *device, GError **error)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(device);

	if (!migd_kernel_reopen(&self->handles, error)) {
		g_prefix_error(error, "%s: ", migd_device_get_name(device));
		return FALSE;
	}
	return TRUE;
}

static MigdKernelDevice *
migd_kernel_device_new_from_handles(const gchar *name, MigdKernelHandles *handles)
{
	MigdKernelDevice *self = g_object_new(MIGD_TYPE_KERNEL_DEVICE, "name", name, NULL);

	self->handles = *handles;
	migd_kernel_handles_init(handles);
	return self;
}

/* the device's directory under /sys/bus/{pci,mdev}/devices, for plugins and identity */
static MigdKernelDevice *
migd_kernel_device_set_sysfs(MigdKernelDevice *self, const gchar *sysfs_root,
			     const gchar *device_name)
{
	const gchar *buses[] = {"pci", "mdev"};

	for (guint i = 0; self != NULL && i < G_N_ELEMENTS(buses); i++) {
		g_autofree gchar *dir =
		    g_build_filename(sysfs_root != NULL ? sysfs_root : MIGD_KERNEL_SYSFS_ROOT,
				     "bus", buses[i], "devices", device_name, NULL);
		if (g_file_test(dir, G_FILE_TEST_IS_DIR)) {
			migd_device_set_sysfs_path(MIGD_DEVICE(self), dir);
			break;
		}
	}
	return self;
}

/* a sysfs id file ("0x15b3\n"); 0 if absent (an mdev has none) */
static guint16
migd_kernel_device_read_id(const gchar *dir, const gchar *file)
{
	g_autofree gchar *path = g_build_filename(dir, file, NULL);
	g_autofree gchar *contents = NULL;
	guint64 v;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return 0;
	v = g_ascii_strtoull(g_strstrip(contents), NULL, 16);
	return v <= G_MAXUINT16 ? (guint16)v : 0;
}

static gboolean
migd_kernel_device_get_identity(MigdDevice *device, MigdDeviceIdentity *identity, GError **error)
{
	const gchar *dir = migd_device_get_sysfs_path(device);
	g_autofree gchar *link = NULL;
	g_autofree gchar *target = NULL;

	/* an adopted fd has no sysfs path: "unknown" */
	if (dir == NULL)
		return TRUE;
	link = g_build_filename(dir, "driver", NULL);
	target = g_file_read_link(link, NULL);
	if (target != NULL)
		identity->driver = g_path_get_basename(target);
	identity->vendor_id = migd_kernel_device_read_id(dir, "vendor");
	identity->device_id = migd_kernel_device_read_id(dir, "device");
	identity->subsystem_vendor_id = migd_kernel_device_read_id(dir, "subsystem_vendor");
	identity->subsystem_device_id = migd_kernel_device_read_id(dir, "subsystem_device");
	return TRUE;
}

MigdKernelDevice *
migd_kernel_device_open_group_full(const gchar *device_name, const gchar *sysfs_root,
				   const gchar *dev_root, GError **error)
{
	MigdKernelHandles handles;

	if (!migd_kernel_open_group(sysfs_root, dev_root, device_name, &handles, error))
		return NULL;
	return migd_kernel_device_set_sysfs(
	    migd_kernel_device_new_from_handles(device_name, &handles), sysfs_root, device_name);
}

MigdKernelDevice *
migd_kernel_device_open_group(const gchar *device_name, GError **error)
{
	return migd_kernel_device_open_group_full(device_name, NULL, NULL, error);
}

MigdKernelDevice *
migd_kernel_device_open_cdev_full(const gchar *device_name, const gchar *sysfs_root,
				  const gchar *dev_root, GError **error)
{
	MigdKernelHandles handles;

	if (!migd_kernel_open_cdev(sysfs_root, dev_root, device_name, &handles, error))
		return NULL;
	return migd_kernel_device_set_sysfs(
	    migd_kernel_device_new_from_handles(device_name, &handles), sysfs_root, device_name);
}

MigdKernelDevice *
migd_kernel_device_open_cdev(const gchar *device_name, GError **error)
{
	return migd_kernel_device_open_cdev_full(device_name, NULL, NULL, error);
}

/* DEV_ROOT/vfio/devices/vfioX -> the name of SYSFS_ROOT/class/vfio-dev/vfioX/device */
static gchar *
migd_kernel_device_name_of_cdev(const gchar *path, const gchar *sysfs_root, GError **error)
{
	g_autofree gchar *node = g_path_get_basename(path);
	g_autofree gchar *link = NULL;
	g_autofree gchar *target = NULL;
	g_autoptr(GError) error_local = NULL;

	if (!g_str_has_prefix(node, "vfio") || strlen(node) == 4 ||
	    strspn(node + 4, "0123456789") != strlen(node + 4)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s is not a VFIO device cdev (vfioN)", path);
		return NULL;
	}
	link = g_build_filename(sysfs_root, "class", "vfio-dev", node, "device", NULL);
	target = g_file_read_link(link, &error_local);
	if (target == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s names no VFIO device: %s", path, error_local->message);
		return NULL;
	}
	return g_path_get_basename(target);
}

MigdKernelDevice *
migd_kernel_device_open_full(const gchar *what, const gchar *sysfs_root, const gchar *dev_root,
			     GError **error)
{
	g_autofree gchar *cdev_dir = NULL;
	g_autofree gchar *name = NULL;
	MigdKernelDevice *device;

	g_return_val_if_fail(what != NULL, NULL);

	if (sysfs_root == NULL)
		sysfs_root = MIGD_KERNEL_SYSFS_ROOT;
	if (dev_root == NULL)
		dev_root = MIGD_KERNEL_DEV_ROOT;
	cdev_dir = g_build_filename(dev_root, "vfio", "devices", NULL);
	if (!g_str_has_prefix(what, cdev_dir) || what[strlen(cdev_dir)] != '/')
		return migd_kernel_device_open_group_full(what, sysfs_root, dev_root, error);
	name = migd_kernel_device_name_of_cdev(what, sysfs_root, error);
	if (name == NULL)
		return NULL;
	device = migd_kernel_device_open_cdev_full(name, sysfs_root, dev_root, error);
	if (device != NULL)
		migd_device_set_name(MIGD_DEVICE(device), name);
	return device;
}

MigdKernelDevice *
migd_kernel_device_open(const gchar *what, GError **error)
{
	return migd_kernel_device_open_full(what, NULL, NULL, error);
}

MigdKernelDevice *
migd_kernel_device_adopt_fd(gint device_fd, const gchar *name, GError **error)
{
	MigdKernelHandles handles;
	struct vfio_device_info info = {.argsz = sizeof(info)};
	gint rc;

	if (name == NULL)
		name = "(adopted device)";
	migd_kernel_handles_init(&handles);
	handles.device_fd = device_fd;
	if (device_fd < 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "invalid device fd %d for %s", device_fd, name);
		return NULL;
	}
	/* an unbound cdev answers EINVAL here too: it is no use to us either */
	do {
		rc = ioctl(device_fd, VFIO_DEVICE_GET_INFO, &info);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		gint errsv = errno;
		migd_kernel_handles_clear(&handles);
		/* the fd number is ours, not the owner's: callers name the device */
		migd_set_errno_error(error, errsv,
				     "not a usable VFIO device fd (VFIO_DEVICE_GET_INFO)");
		return NULL;
	}
	/* an fd received over SCM_RIGHTS may lack it; keep it out of any child we spawn */
	if (fcntl(device_fd, F_SETFD, fcntl(device_fd, F_GETFD) | FD_CLOEXEC) < 0)
		g_debug("%s: cannot set FD_CLOEXEC on fd %d: %s", name, device_fd,
			g_strerror(errno));
	return migd_kernel_device_new_from_handles(name, &handles);
}

/* @path resolved, and only if it stays inside @sysfs_root */
static gchar *
migd_kernel_sysfs_canonical(const gchar *sysfs_root, const gchar *path)
{
	g_autofree gchar *root = realpath(sysfs_root, NULL);
	g_autofree gchar *real = realpath(path, NULL);

	if (root == NULL || real == NULL || !g_str_has_prefix(real, root) ||
	    real[strlen(root)] != '/')
		return NULL;
	return g_steal_pointer(&real);
}

/* a device cdev tells who it is: /dev/vfio/devices/vfioX -> class/vfio-dev/vfioX/device */
static gchar *
migd_kernel_device_dir_from_fd(gint fd, const gchar *sysfs_root, const gchar *dev_root)
{
	g_autofree gchar *proc = g_strdup_printf("/proc/self/fd/%d", fd);
	g_autofree gchar *target = g_file_read_link(proc, NULL);
	g_autofree gchar *cdev_dir = g_build_filename(dev_root, "vfio", "devices", NULL);
	g_autofree gchar *node = NULL;
	g_autofree gchar *link = NULL;

	/* a group's device fd is an anonymous inode: nothing to learn */
	if (target == NULL || !g_str_has_prefix(target, cdev_dir) ||
	    target[strlen(cdev_dir)] != '/')
		return NULL;
	node = g_path_get_basename(target);
	if (!g_str_has_prefix(node, "vfio"))
		return NULL;
	link = g_build_filename(sysfs_root, "class", "vfio-dev", node, "device", NULL);
	return migd_kernel_sysfs_canonical(sysfs_root, link);
}

/* a PCI address or an mdev UUID under bus/{pci,mdev}/devices, or a path inside sysfs */
static gchar *
migd_kernel_device_dir_from_address(const gchar *address, const gchar *sysfs_root, GError **error)
{
	const gchar *buses[] = {"pci", "mdev"};

	if (g_path_is_absolute(address)) {
		gchar *dir = migd_kernel_sysfs_canonical(sysfs_root, address);
		if (dir == NULL || !g_file_test(dir, G_FILE_TEST_IS_DIR)) {
			g_free(dir);
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "address %s is not a device directory in %s", address,
				    sysfs_root);
			return NULL;
		}
		return dir;
	}
	if (strchr(address, '/') == NULL && g_strcmp0(address, ".") != 0 &&
	    g_strcmp0(address, "..") != 0) {
		for (guint i = 0; i < G_N_ELEMENTS(buses); i++) {
			g_autofree gchar *path =
			    g_build_filename(sysfs_root, "bus", buses[i], "devices", address, NULL);
			gchar *dir = migd_kernel_sysfs_canonical(sysfs_root, path);
			if (dir != NULL)
				return dir;
		}
	}
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
		    "address %s names no PCI device or mdev under %s/bus", address, sysfs_root);
	return NULL;
}

static gchar *
migd_kernel_read_sysfs_line(const gchar *dir, const gchar *file)
{
	g_autofree gchar *path = g_build_filename(dir, file, NULL);
	gchar *contents = NULL;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return NULL;
	return g_strstrip(contents);
}

/* what the fd reports must be the device @dir describes */
static gboolean
migd_kernel_device_check_address(MigdKernelDevice *self, const gchar *address, const gchar *dir,
				 GError **error)
{
	MigdDevice *device = MIGD_DEVICE(self);
	struct vfio_device_info info = {.argsz = sizeof(info)};
	g_autofree gchar *device_api = NULL;
	gboolean sysfs_pci;
	gboolean fd_pci;
	gint rc;

	do {
		rc = ioctl(self->handles.device_fd, VFIO_DEVICE_GET_INFO, &info);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		migd_kernel_device_set_error(self, errno, "VFIO_DEVICE_GET_INFO", error);
		return FALSE;
	}
	fd_pci = (info.flags & VFIO_DEVICE_FLAGS_PCI) != 0;
	/* an mdev's kind is its type's device_api; a PCI function has ids in sysfs */
	device_api = migd_kernel_read_sysfs_line(dir, "mdev_type/device_api");
	if (device_api != NULL)
		sysfs_pci = g_strcmp0(device_api, "vfio-pci") == 0;
	else
		sysfs_pci = g_file_test(dir, G_FILE_TEST_IS_DIR) &&
			    migd_kernel_device_read_id(dir, "vendor") != 0;
	if (fd_pci != sysfs_pci) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "the fd is %s a vfio-pci device, but address %s (%s) is %s",
			    fd_pci ? "" : "not", address, dir,
			    device_api != NULL ? device_api
			    : sysfs_pci	       ? "a PCI function"
					       : "not");
		return FALSE;
	}
	/* a PCI function: its config space through the fd must show sysfs's ids */
	if (device_api == NULL && sysfs_pci) {
		guint16 ids[2] = {0, 0};
		guint16 vendor = migd_kernel_device_read_id(dir, "vendor");
		guint16 device_id = migd_kernel_device_read_id(dir, "device");
		if (!migd_device_region_read(device, VFIO_PCI_CONFIG_REGION_INDEX, 0, ids,
					     sizeof(ids), error)) {
			g_prefix_error(error,
				       "reading the config space to check address %s: ", address);
			return FALSE;
		}
		ids[0] = GUINT16_FROM_LE(ids[0]);
		ids[1] = GUINT16_FROM_LE(ids[1]);
		if (ids[0] != vendor || ids[1] != device_id) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "the fd's config space shows %04x:%04x, but address %s (%s) "
				    "is %04x:%04x",
				    ids[0], ids[1], address, dir, vendor, device_id);
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
migd_kernel_device_identify(MigdKernelDevice *self, const gchar *address, const gchar *sysfs_root,
			    const gchar *dev_root, GError **error)
{
	const gchar *name = migd_device_get_name(MIGD_DEVICE(self));
	g_autofree gchar *from_fd = NULL;
	g_autofree gchar *from_address = NULL;

	g_return_val_if_fail(MIGD_IS_KERNEL_DEVICE(self), FALSE);

	if (sysfs_root == NULL)
		sysfs_root = MIGD_KERNEL_SYSFS_ROOT;
	if (dev_root == NULL)
		dev_root = MIGD_KERNEL_DEV_ROOT;
	from_fd = migd_kernel_device_dir_from_fd(self->handles.device_fd, sysfs_root, dev_root);
	if (address != NULL) {
		from_address = migd_kernel_device_dir_from_address(address, sysfs_root, error);
		if (from_address == NULL)
			return FALSE;
	}
	if (from_fd != NULL && from_address != NULL && g_strcmp0(from_fd, from_address) != 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "the fd is the cdev of %s, but address %s is %s", from_fd, address,
			    from_address);
		return FALSE;
	}
	if (from_fd == NULL && from_address != NULL &&
	    !migd_kernel_device_check_address(self, address, from_address, error))
		return FALSE;
	if (from_fd == NULL && from_address == NULL) {
		g_warning("%s: the fd does not say which device it is and no address came with "
			  "it: driver unknown, so a destination will refuse it",
			  name);
		return TRUE;
	}
	migd_device_set_sysfs_path(MIGD_DEVICE(self), from_fd != NULL ? from_fd : from_address);
	g_debug("%s: %s (%s)", name, from_fd != NULL ? from_fd : from_address,
		from_fd != NULL ? "from its cdev" : "the owner's address, checked");
	return TRUE;
}

gint
migd_kernel_device_get_fd(MigdKernelDevice *self)
{
	g_return_val_if_fail(MIGD_IS_KERNEL_DEVICE(self), -1);
	return self->handles.device_fd;
}

gint
migd_kernel_device_get_iommufd(MigdKernelDevice *self)
{
	g_return_val_if_fail(MIGD_IS_KERNEL_DEVICE(self), -1);
	return self->handles.iommufd;
}

guint32
migd_kernel_device_get_dev_id(MigdKernelDevice *self)
{
	g_return_val_if_fail(MIGD_IS_KERNEL_DEVICE(self), 0);
	return self->handles.dev_id;
}

guint32
migd_kernel_device_get_ioas_id(MigdKernelDevice *self)
{
	g_return_val_if_fail(MIGD_IS_KERNEL_DEVICE(self), 0);
	return self->handles.ioas_id;
}

guint32
migd_kernel_device_get_hwpt_id(MigdKernelDevice *self)
{
	g_return_val_if_fail(MIGD_IS_KERNEL_DEVICE(self), 0);
	return self->handles.hwpt_id;
}

gboolean
migd_kernel_device_has_dirty_hwpt(MigdKernelDevice *self)
{
	g_return_val_if_fail(MIGD_IS_KERNEL_DEVICE(self), FALSE);
	return self->handles.hwpt_dirty;
}

static void
migd_kernel_device_finalize(GObject *object)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(object);

	migd_kernel_handles_clear(&self->handles);
	G_OBJECT_CLASS(migd_kernel_device_parent_class)->finalize(object);
}

static void
migd_kernel_device_init(MigdKernelDevice *self)
{
	migd_kernel_handles_init(&self->handles);
}

static void
migd_kernel_device_class_init(MigdKernelDeviceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	MigdDeviceClass *device_class = MIGD_DEVICE_CLASS(klass);

	object_class->finalize = migd_kernel_device_finalize;
	device_class->probe = migd_kernel_device_probe;
	device_class->get_state = migd_kernel_device_get_state;
	device_class->set_state = migd_kernel_device_set_state;
	device_class->get_data_size = migd_kernel_device_get_data_size;
	device_class->reset = migd_kernel_device_reset;
	device_class->reopen = migd_kernel_device_reopen;
	device_class->dma_logging_start = migd_kernel_device_dma_logging_start;
	device_class->dma_logging_stop = migd_kernel_device_dma_logging_stop;
	device_class->dma_logging_report = migd_kernel_device_dma_logging_report;
	device_class->iommu_dirty_start = migd_kernel_iommu_dirty_start;
	device_class->iommu_dirty_stop = migd_kernel_iommu_dirty_stop;
	device_class->iommu_dirty_report = migd_kernel_iommu_dirty_report;
	device_class->low_power_entry = migd_kernel_device_low_power_entry;
	device_class->low_power_exit = migd_kernel_device_low_power_exit;
	device_class->region_read = migd_kernel_device_region_read;
	device_class->region_write = migd_kernel_device_region_write;
	device_class->get_identity = migd_kernel_device_get_identity;
}
