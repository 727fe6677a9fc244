/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The IOMMU half of MigdKernelDevice's dirty tracking: the iommu_dirty_start, _stop and
 * _report vfuncs over the container (type1 VFIO_IOMMU_DIRTY_PAGES) or the iommufd HWPT
 * (IOMMU_HWPT_SET_DIRTY_TRACKING, IOMMU_HWPT_GET_DIRTY_BITMAP) the device was opened with.
 * The device's own DMA logging stays in migd-kernel-device.c.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "migd-error.h"
#include "migd-kernel-device-private.h"
#include "uapi/migd-vfio-uapi.h"

/*
 * How each IOMMU tracks:
 *
 * type1 (group + container, drivers/vfio/vfio_iommu_type1.c):
 *   VFIO_IOMMU_DIRTY_PAGES on the container. START and STOP take no range: the
 *   whole container is tracked (vfio_iommu_type1_dirty_pages(); a second START
 *   or a STOP when stopped is a no-op). The page size is not ours to choose:
 *   GET_BITMAP takes only the smallest IOMMU page size (1 << __ffs(pgsize_bitmap),
 *   what VFIO_IOMMU_GET_INFO reports in iova_pgsizes and CAP_MIGRATION), iova
 *   and size aligned to it, a non-empty range that bisects no mapping
 *   (vfio_iova_dirty_bitmap()), and a bitmap of at least DIRTY_BITMAP_BYTES(npages)
 *   and at most max_dirty_bitmap_size bytes (verify_bitmap_size()); each answers
 *   EINVAL, as does GET_BITMAP while not tracking. It always clears, and it
 *   writes whole words of the user's bitmap (update_user_bitmap()), so the
 *   report goes through a zeroed buffer and is ORed into the caller's. While any
 *   group of the container has an IOMMU domain and pins nothing (a passthrough
 *   PCI device), every mapped page is reported dirty (update_user_bitmap(): num_
 *   non_pinned_groups); only emulated devices (mdev: mtty) report pinned pages
 *   only. No NO_CLEAR: refused with MIGD_ERROR_NOT_SUPPORTED rather than cleared
 *   behind a caller who asked to keep the bits. iommufd's VFIO compatibility
 *   container answers ENOTTY (vfio_compat.c).
 *
 * iommufd (cdev, drivers/iommu/iommufd/): the device was attached at open to a
 *   HWPT allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING when its IOMMU can track
 *   (migd-kernel-open.c); else every call answers EOPNOTSUPP, as the kernel does
 *   for a domain without dirty_ops. START/STOP are IOMMU_HWPT_SET_DIRTY_TRACKING
 *   (enabling clears the dirty bits first: iopt_set_dirty_tracking()). The report
 *   page size is the caller's (iommufd_check_iova_range(): iova and end aligned
 *   to it and to the IOAS, else EINVAL; EOVERFLOW), so START answers the wish as
 *   a power of two, at least the host page size. GET_DIRTY_BITMAP only sets bits
 *   and honours NO_CLEAR.
 *
 * An adopted fd: the container or IOAS is the VMM's, MIGD_ERROR_NOT_SUPPORTED.
 */

typedef enum {
	MIGD_KERNEL_IOMMU_ADOPTED,
	MIGD_KERNEL_IOMMU_TYPE1,
	MIGD_KERNEL_IOMMU_IOMMUFD,
} MigdKernelIommu;

static MigdKernelIommu
migd_kernel_iommu_kind(MigdKernelDevice *self)
{
	if (self->handles.iommufd >= 0)
		return MIGD_KERNEL_IOMMU_IOMMUFD;
	if (self->handles.container_fd >= 0)
		return MIGD_KERNEL_IOMMU_TYPE1;
	return MIGD_KERNEL_IOMMU_ADOPTED;
}

static gboolean
migd_kernel_iommu_not_ours(MigdKernelDevice *self, const gchar *what, GError **error)
{
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
		    "%s: IOMMU dirty tracking %s: the device fd was adopted, so its IOMMU "
		    "container or IOAS belongs to the VMM that opened it, not to vfio-migd; "
		    "the VMM must track the IOMMU's dirty pages itself",
		    migd_device_get_name(MIGD_DEVICE(self)), what);
	return FALSE;
}

/* one ioctl on the container or the iommufd; errors keep the errno */
static gboolean
migd_kernel_iommu_ioctl(MigdKernelDevice *self, gint fd, gulong request, void *arg,
			const gchar *what, GError **error)
{
	gint rc;

	do {
		rc = ioctl(fd, request, arg);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		gint errsv = errno;
		const gchar *hint = "";

		if (errsv == ENOTTY && request == VFIO_IOMMU_DIRTY_PAGES)
			hint = " (the container has no type1 dirty tracking: iommufd's VFIO "
			       "compatibility container does not implement it)";
		migd_set_errno_error(error, errsv, "%s on %s%s", what,
				     migd_device_get_name(MIGD_DEVICE(self)), hint);
		return FALSE;
	}
	return TRUE;
}

static guint64
migd_kernel_lowest_bit(guint64 v)
{
	return v & (~v + 1);
}

/*
 * VFIO_IOMMU_GET_INFO with its capability chain: the smallest IOMMU page size
 * (the only one GET_BITMAP accepts) and CAP_MIGRATION's max_dirty_bitmap_size
 * (0 when the chain has no such capability).
 */
static gboolean
migd_kernel_iommu_type1_info(MigdKernelDevice *self, guint64 *pgsize, guint64 *max_bitmap,
			     GError **error)
{
	struct vfio_iommu_type1_info probe = {.argsz = sizeof(probe)};
	g_autofree guint8 *buf = NULL;
	const guint8 *chain = (const guint8 *)&probe;
	struct vfio_iommu_type1_info info;
	guint32 argsz = sizeof(probe);
	guint32 offset;

	if (!migd_kernel_iommu_ioctl(self, self->handles.container_fd, VFIO_IOMMU_GET_INFO, &probe,
				     "VFIO_IOMMU_GET_INFO", error))
		return FALSE;
	info = probe;
	/* the kernel sets argsz to what the capabilities need; 64 KiB is far beyond any */
	if ((probe.flags & VFIO_IOMMU_INFO_CAPS) != 0 && probe.argsz > sizeof(probe) &&
	    probe.argsz <= 65536) {
		argsz = probe.argsz;
		buf = g_malloc0(argsz);
		memcpy(buf, &probe, sizeof(probe));
		((struct vfio_iommu_type1_info *)(void *)buf)->argsz = argsz;
		if (!migd_kernel_iommu_ioctl(self, self->handles.container_fd, VFIO_IOMMU_GET_INFO,
					     buf, "VFIO_IOMMU_GET_INFO", error))
			return FALSE;
		memcpy(&info, buf, sizeof(info));
		chain = buf;
	}
	if ((info.flags & VFIO_IOMMU_INFO_PGSIZES) == 0 || info.iova_pgsizes == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: VFIO_IOMMU_GET_INFO reports no IOMMU page sizes",
			    migd_device_get_name(MIGD_DEVICE(self)));
		return FALSE;
	}
	*pgsize = migd_kernel_lowest_bit(info.iova_pgsizes);
	*max_bitmap = 0;
	/* offsets count from the start of the info; each must move forward */
	offset = (info.flags & VFIO_IOMMU_INFO_CAPS) != 0 ? info.cap_offset : 0;
	while (offset >= sizeof(info) && offset <= argsz - sizeof(struct vfio_info_cap_header)) {
		struct vfio_info_cap_header hdr;
		struct vfio_iommu_type1_info_cap_migration mig;

		memcpy(&hdr, chain + offset, sizeof(hdr));
		if (hdr.id == VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION &&
		    offset <= argsz - sizeof(mig)) {
			memcpy(&mig, chain + offset, sizeof(mig));
			if (mig.pgsize_bitmap != 0)
				*pgsize = migd_kernel_lowest_bit(mig.pgsize_bitmap);
			*max_bitmap = mig.max_dirty_bitmap_size;
			break;
		}
		if (hdr.next <= offset)
			break;
		offset = hdr.next;
	}
	return TRUE;
}

static gboolean
migd_kernel_iommu_type1_dirty_pages(MigdKernelDevice *self, guint32 flag, const gchar *what,
				    GError **error)
{
	struct vfio_iommu_type1_dirty_bitmap dirty = {.argsz = sizeof(dirty), .flags = flag};

	return migd_kernel_iommu_ioctl(self, self->handles.container_fd, VFIO_IOMMU_DIRTY_PAGES,
				       &dirty, what, error);
}

/* VFIO_IOMMU_DIRTY_PAGES(GET_BITMAP) into a zeroed buffer, ORed into @bitmap */
static gboolean
migd_kernel_iommu_type1_report(MigdKernelDevice *self, guint64 iova, guint64 length,
			       guint64 page_size, guint64 *bitmap, GError **error)
{
	union {
		struct vfio_iommu_type1_dirty_bitmap hdr;
		guint64 align;
		guint8 raw[sizeof(struct vfio_iommu_type1_dirty_bitmap) +
			   sizeof(struct vfio_iommu_type1_dirty_bitmap_get)];
	} buf;
	struct vfio_iommu_type1_dirty_bitmap_get get = {0};
	guint64 n_words = length == 0 ? 0 : ((length - 1) / page_size) / 64 + 1;
	g_autofree guint64 *bounce = NULL;
	g_autofree gchar *what =
	    g_strdup_printf("VFIO_IOMMU_DIRTY_PAGES(GET_BITMAP 0x%" G_GINT64_MODIFIER
			    "x+0x%" G_GINT64_MODIFIER "x, page size %" G_GUINT64_FORMAT ")",
			    iova, length, page_size);

	/* what verify_bitmap_size() would refuse, before allocating it */
	if (self->type1_max_bitmap != 0 && n_words > self->type1_max_bitmap / sizeof(guint64)) {
		migd_set_errno_error(
		    error, EINVAL,
		    "%s on %s: a bitmap of %" G_GUINT64_FORMAT
		    " bytes exceeds the container's max_dirty_bitmap_size %" G_GUINT64_FORMAT,
		    what, migd_device_get_name(MIGD_DEVICE(self)), n_words * sizeof(guint64),
		    self->type1_max_bitmap);
		return FALSE;
	}
	if (n_words > 0) {
		bounce = g_try_new0(guint64, n_words);
		if (bounce == NULL) {
			migd_set_errno_error(error, ENOMEM, "%s on %s", what,
					     migd_device_get_name(MIGD_DEVICE(self)));
			return FALSE;
		}
	}
	memset(&buf, 0, sizeof(buf));
	buf.hdr.argsz = sizeof(buf.raw);
	buf.hdr.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	get.iova = iova;
	get.size = length;
	get.bitmap.pgsize = page_size;
	get.bitmap.size = n_words * sizeof(guint64);
	get.bitmap.data = (__u64 *)bounce;
	memcpy(buf.raw + sizeof(buf.hdr), &get, sizeof(get));
	if (!migd_kernel_iommu_ioctl(self, self->handles.container_fd, VFIO_IOMMU_DIRTY_PAGES, &buf,
				     what, error))
		return FALSE;
	for (guint64 i = 0; i < n_words; i++)
		bitmap[i] |= bounce[i];
	return TRUE;
}

/* EOPNOTSUPP, as the kernel answers for a HWPT whose domain has no dirty_ops */
static gboolean
migd_kernel_iommufd_no_dirty(MigdKernelDevice *self, const gchar *what, GError **error)
{
	const MigdKernelHandles *h = &self->handles;

	migd_set_errno_error(
	    error, EOPNOTSUPP, "%s on %s: HWPT %u cannot track dirty pages (at open, %s: %s)", what,
	    migd_device_get_name(MIGD_DEVICE(self)), h->hwpt_id,
	    h->hwpt_dirty_step != NULL ? h->hwpt_dirty_step : "no dirty HWPT",
	    g_strerror(h->hwpt_dirty_errno != 0 ? h->hwpt_dirty_errno : EOPNOTSUPP));
	return FALSE;
}

static gboolean
migd_kernel_iommufd_set_tracking(MigdKernelDevice *self, gboolean enable, GError **error)
{
	struct iommu_hwpt_set_dirty_tracking set = {
	    .size = sizeof(set),
	    .flags = enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
	    .hwpt_id = self->handles.hwpt_id,
	};
	const gchar *what = enable ? "IOMMU_HWPT_SET_DIRTY_TRACKING(ENABLE)"
				   : "IOMMU_HWPT_SET_DIRTY_TRACKING(DISABLE)";

	if (!self->handles.hwpt_dirty)
		return migd_kernel_iommufd_no_dirty(self, what, error);
	return migd_kernel_iommu_ioctl(self, self->handles.iommufd, IOMMU_HWPT_SET_DIRTY_TRACKING,
				       &set, what, error);
}

/* the report page size for iommufd: the wish as a power of two, at least a host page */
static guint64
migd_kernel_iommufd_page_size(guint64 wish)
{
	long ps = sysconf(_SC_PAGESIZE);
	guint64 host = ps > 0 && (ps & (ps - 1)) == 0 ? (guint64)ps : 4096;

	if (wish <= host)
		return host;
	return 1ull << (63 - __builtin_clzll(wish));
}

static gboolean
migd_kernel_iommu_check_report(MigdKernelDevice *self, guint64 page_size, const guint64 *bitmap,
			       GError **error)
{
	if (bitmap == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: IOMMU dirty report without a bitmap",
			    migd_device_get_name(MIGD_DEVICE(self)));
		return FALSE;
	}
	if (page_size != 0 && (page_size & (page_size - 1)) == 0)
		return TRUE;
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
		    "%s: IOMMU dirty report page size %" G_GUINT64_FORMAT " is not a power of two",
		    migd_device_get_name(MIGD_DEVICE(self)), page_size);
	return FALSE;
}

gboolean
migd_kernel_iommu_dirty_start(MigdDevice *device, const MigdIovaRange *ranges, guint n_ranges,
			      guint64 *page_size, GError **error)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(device);
	guint64 pgsize = 0;
	guint64 max_bitmap = 0;

	switch (migd_kernel_iommu_kind(self)) {
	case MIGD_KERNEL_IOMMU_TYPE1:
		/* the ranges are the container's mappings already: START takes none */
		if (!migd_kernel_iommu_type1_info(self, &pgsize, &max_bitmap, error) ||
		    !migd_kernel_iommu_type1_dirty_pages(self, VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
							 "VFIO_IOMMU_DIRTY_PAGES(START)", error))
			return FALSE;
		self->type1_max_bitmap = max_bitmap;
		*page_size = pgsize;
		return TRUE;
	case MIGD_KERNEL_IOMMU_IOMMUFD:
		if (!migd_kernel_iommufd_set_tracking(self, TRUE, error))
			return FALSE;
		*page_size = migd_kernel_iommufd_page_size(*page_size);
		return TRUE;
	case MIGD_KERNEL_IOMMU_ADOPTED:
	default:
		return migd_kernel_iommu_not_ours(self, "start", error);
	}
}

gboolean
migd_kernel_iommu_dirty_stop(MigdDevice *device, GError **error)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(device);

	switch (migd_kernel_iommu_kind(self)) {
	case MIGD_KERNEL_IOMMU_TYPE1:
		return migd_kernel_iommu_type1_dirty_pages(self, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
							   "VFIO_IOMMU_DIRTY_PAGES(STOP)", error);
	case MIGD_KERNEL_IOMMU_IOMMUFD:
		return migd_kernel_iommufd_set_tracking(self, FALSE, error);
	case MIGD_KERNEL_IOMMU_ADOPTED:
	default:
		return migd_kernel_iommu_not_ours(self, "stop", error);
	}
}

gboolean
migd_kernel_iommu_dirty_report(MigdDevice *device, guint64 iova, guint64 length, guint64 page_size,
			       gboolean no_clear, guint64 *bitmap, GError **error)
{
	MigdKernelDevice *self = MIGD_KERNEL_DEVICE(device);
	MigdKernelIommu iommu = migd_kernel_iommu_kind(self);

	if (iommu == MIGD_KERNEL_IOMMU_ADOPTED)
		return migd_kernel_iommu_not_ours(self, "report", error);
	if (!migd_kernel_iommu_check_report(self, page_size, bitmap, error))
		return FALSE;
	if (iommu == MIGD_KERNEL_IOMMU_TYPE1) {
		if (no_clear) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "%s: type1's VFIO_IOMMU_DIRTY_PAGES(GET_BITMAP) always clears "
				    "what it reports; NO_CLEAR is iommufd's",
				    migd_device_get_name(device));
			return FALSE;
		}
		return migd_kernel_iommu_type1_report(self, iova, length, page_size, bitmap, error);
	}
	{
		struct iommu_hwpt_get_dirty_bitmap get = {
		    .size = sizeof(get),
		    .hwpt_id = self->handles.hwpt_id,
		    .flags = no_clear ? IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR : 0,
		    .iova = iova,
		    .length = length,
		    .page_size = page_size,
		    .data = (guint64)(guintptr)bitmap,
		};
		g_autofree gchar *what = g_strdup_printf(
		    "IOMMU_HWPT_GET_DIRTY_BITMAP(0x%" G_GINT64_MODIFIER "x+0x%" G_GINT64_MODIFIER
		    "x, page size %" G_GUINT64_FORMAT "%s)",
		    iova, length, page_size, no_clear ? ", NO_CLEAR" : "");

		if (!self->handles.hwpt_dirty)
			return migd_kernel_iommufd_no_dirty(self, what, error);
		return migd_kernel_iommu_ioctl(self, self->handles.iommufd,
					       IOMMU_HWPT_GET_DIRTY_BITMAP, &get, what, error);
	}
}
