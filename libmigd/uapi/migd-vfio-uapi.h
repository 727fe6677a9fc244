/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The VFIO and iommufd uAPI vfio-migd needs, on top of whatever the system's
 * <linux/vfio.h> provides. Debian 12 ships the 6.1 header, which lacks PRE_COPY
 * (6.2), MIG_DATA_SIZE (6.2), the device cdev (6.6) and iommufd dirty tracking
 * (6.7: HWPT_ALLOC's DIRTY_TRACKING flag, GET_HW_INFO's capabilities). Type1's
 * VFIO_IOMMU_DIRTY_PAGES (5.8) is in 6.1's header already. Every definition here is guarded by the
 * macro the newer kernel header defines, so a newer system header always wins; static assertions at
 * the end prove that either way the layout and the ioctl numbers are the kernel's ABI.
 */
#pragma once

#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/vfio.h>
#if defined(__has_include)
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif
#endif

#ifndef __aligned_u64
#define __aligned_u64 __u64 __attribute__((aligned(8)))
#endif

/* --- migration v2, 6.2: PRE_COPY and the precopy info ioctl on the data fd --- */

#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY (1 << 2)
#endif

/*
 * enum vfio_device_mig_state in 6.1 stops at RUNNING_P2P (5); the values are
 * ABI, so the later states are defined by number rather than by enum member.
 */
#define MIGD_VFIO_DEVICE_STATE_PRE_COPY	    6
#define MIGD_VFIO_DEVICE_STATE_PRE_COPY_P2P 7
#define MIGD_VFIO_DEVICE_STATE_NR	    8

#ifndef VFIO_MIG_GET_PRECOPY_INFO
struct vfio_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};
#define VFIO_MIG_GET_PRECOPY_INFO _IO(VFIO_TYPE, VFIO_BASE + 21)
#endif

#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
struct vfio_device_feature_mig_data_size {
	__aligned_u64 stop_copy_length;
};
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif

/* --- device cdev, 6.6: /dev/vfio/devices/vfioX bound to an iommufd --- */

#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
};
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif

#ifndef VFIO_DEVICE_ATTACH_IOMMUFD_PT
struct vfio_device_attach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
	__u32 pt_id;
};
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#endif

#ifndef VFIO_DEVICE_DETACH_IOMMUFD_PT
struct vfio_device_detach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
};
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)
#endif

/* --- iommufd (6.2+, dirty tracking 6.7): only the ioctls vfio-migd issues --- */

#ifndef IOMMUFD_TYPE
#define IOMMUFD_TYPE (';')
#endif

#ifndef IOMMU_IOAS_ALLOC
struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, 0x81)
#endif

#ifndef IOMMU_HWPT_ALLOC
struct iommu_hwpt_alloc {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 pt_id;
	__u32 out_hwpt_id;
	__u32 __reserved;
	__u32 data_type;
	__u32 data_len;
	__aligned_u64 data_uptr;
};
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, 0x89)
#endif

#ifndef IOMMU_HWPT_SET_DIRTY_TRACKING
#define IOMMU_HWPT_ALLOC_DIRTY_TRACKING	 (1 << 1)
#define IOMMU_HWPT_DIRTY_TRACKING_ENABLE 1
struct iommu_hwpt_set_dirty_tracking {
	__u32 size;
	__u32 flags;
	__u32 hwpt_id;
	__u32 __reserved;
};
#define IOMMU_HWPT_SET_DIRTY_TRACKING _IO(IOMMUFD_TYPE, 0x8b)
#endif

#ifndef IOMMU_HWPT_GET_DIRTY_BITMAP
#define IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR 1
struct iommu_hwpt_get_dirty_bitmap {
	__u32 size;
	__u32 hwpt_id;
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 page_size;
	__aligned_u64 data;
};
#define IOMMU_HWPT_GET_DIRTY_BITMAP _IO(IOMMUFD_TYPE, 0x8c)
#endif

#ifndef IOMMU_DESTROY
struct iommu_destroy {
	__u32 size;
	__u32 id;
};
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, 0x80)
#endif

/* 6.7 (6.6 had it without out_capabilities: its 32 bytes fail the assertion below) */
#ifndef IOMMU_GET_HW_INFO
#define IOMMU_HW_CAP_DIRTY_TRACKING (1 << 0)
struct iommu_hw_info {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 out_data_type;
	__u8 out_max_pasid_log2;
	__u8 __reserved[3];
	__aligned_u64 out_capabilities;
};
#define IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, 0x8a)
#endif

/* --- the ABI, checked whichever header supplied it --- */

_Static_assert(VFIO_TYPE == ';' && VFIO_BASE == 100, "VFIO ioctl base");
_Static_assert(VFIO_GROUP_SET_CONTAINER == 0x3b68, "VFIO_GROUP_SET_CONTAINER");
_Static_assert(VFIO_GROUP_GET_DEVICE_FD == 0x3b6a, "VFIO_GROUP_GET_DEVICE_FD");
_Static_assert(VFIO_DEVICE_RESET == 0x3b6f, "VFIO_DEVICE_RESET");
_Static_assert(VFIO_DEVICE_FEATURE == 0x3b75, "VFIO_DEVICE_FEATURE");
_Static_assert(VFIO_DEVICE_BIND_IOMMUFD == 0x3b76, "VFIO_DEVICE_BIND_IOMMUFD");
_Static_assert(VFIO_DEVICE_ATTACH_IOMMUFD_PT == 0x3b77, "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
_Static_assert(VFIO_DEVICE_DETACH_IOMMUFD_PT == 0x3b78, "VFIO_DEVICE_DETACH_IOMMUFD_PT");
_Static_assert(VFIO_MIG_GET_PRECOPY_INFO == 0x3b79, "VFIO_MIG_GET_PRECOPY_INFO");
_Static_assert(IOMMU_IOAS_ALLOC == 0x3b81, "IOMMU_IOAS_ALLOC");
_Static_assert(IOMMU_HWPT_ALLOC == 0x3b89, "IOMMU_HWPT_ALLOC");
_Static_assert(IOMMU_HWPT_SET_DIRTY_TRACKING == 0x3b8b, "IOMMU_HWPT_SET_DIRTY_TRACKING");
_Static_assert(IOMMU_HWPT_GET_DIRTY_BITMAP == 0x3b8c, "IOMMU_HWPT_GET_DIRTY_BITMAP");
_Static_assert(IOMMU_DESTROY == 0x3b80, "IOMMU_DESTROY");
_Static_assert(IOMMU_GET_HW_INFO == 0x3b8a, "IOMMU_GET_HW_INFO");
/* type1 (container fd): VFIO_BASE + 17 is also VFIO_DEVICE_FEATURE, on another fd */
_Static_assert(VFIO_IOMMU_GET_INFO == 0x3b70, "VFIO_IOMMU_GET_INFO");
_Static_assert(VFIO_IOMMU_DIRTY_PAGES == 0x3b75, "VFIO_IOMMU_DIRTY_PAGES");
_Static_assert(VFIO_IOMMU_DIRTY_PAGES_FLAG_START == 1 && VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP == 2 &&
		   VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP == 4,
	       "dirty pages flags");
_Static_assert(VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION == 2, "CAP_MIGRATION id");
_Static_assert(IOMMU_HW_CAP_DIRTY_TRACKING == 1 && IOMMU_HWPT_ALLOC_DIRTY_TRACKING == 2 &&
		   IOMMU_HWPT_DIRTY_TRACKING_ENABLE == 1 &&
		   IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR == 1,
	       "iommufd dirty tracking flags");

_Static_assert(VFIO_DEVICE_FEATURE_MIGRATION == 1, "feature index");
_Static_assert(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE == 2, "feature index");
_Static_assert(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY == 3, "feature index");
_Static_assert(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP == 4, "feature index");
_Static_assert(VFIO_DEVICE_FEATURE_LOW_POWER_EXIT == 5, "feature index");
_Static_assert(VFIO_DEVICE_FEATURE_DMA_LOGGING_START == 6, "feature index");
_Static_assert(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP == 7, "feature index");
_Static_assert(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT == 8, "feature index");
_Static_assert(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE == 9, "feature index");
_Static_assert(VFIO_DEVICE_FEATURE_GET == (1 << 16) && VFIO_DEVICE_FEATURE_SET == (1 << 17) &&
		   VFIO_DEVICE_FEATURE_PROBE == (1 << 18),
	       "feature flags");
_Static_assert(VFIO_MIGRATION_STOP_COPY == 1 && VFIO_MIGRATION_P2P == 2 &&
		   VFIO_MIGRATION_PRE_COPY == 4,
	       "migration flags");

_Static_assert(VFIO_DEVICE_STATE_ERROR == 0 && VFIO_DEVICE_STATE_STOP == 1 &&
		   VFIO_DEVICE_STATE_RUNNING == 2 && VFIO_DEVICE_STATE_STOP_COPY == 3 &&
		   VFIO_DEVICE_STATE_RESUMING == 4 && VFIO_DEVICE_STATE_RUNNING_P2P == 5,
	       "device states");

_Static_assert(sizeof(struct vfio_device_feature) == 8, "vfio_device_feature");
_Static_assert(sizeof(struct vfio_device_feature_migration) == 8, "feature_migration");
_Static_assert(sizeof(struct vfio_device_feature_mig_state) == 8, "feature_mig_state");
_Static_assert(sizeof(struct vfio_device_feature_mig_data_size) == 8, "mig_data_size");
_Static_assert(sizeof(struct vfio_precopy_info) == 24, "vfio_precopy_info");
_Static_assert(sizeof(struct vfio_device_feature_dma_logging_control) == 24, "logging_control");
_Static_assert(sizeof(struct vfio_device_feature_dma_logging_range) == 16, "logging_range");
_Static_assert(sizeof(struct vfio_device_feature_dma_logging_report) == 32, "logging_report");
_Static_assert(sizeof(struct vfio_device_low_power_entry_with_wakeup) == 8, "low_power_wakeup");
/* 16 up to 6.17, 24 from 6.18 (token_uuid_ptr): the kernel accepts minsz 16 */
_Static_assert(sizeof(struct vfio_device_bind_iommufd) >= 16, "bind_iommufd");
_Static_assert(sizeof(struct vfio_device_attach_iommufd_pt) >= 12, "attach_iommufd_pt");
_Static_assert(sizeof(struct iommu_hwpt_set_dirty_tracking) == 16, "hwpt_set_dirty_tracking");
_Static_assert(sizeof(struct iommu_hwpt_get_dirty_bitmap) == 48, "hwpt_get_dirty_bitmap");
_Static_assert(sizeof(struct iommu_ioas_alloc) == 12, "ioas_alloc");
_Static_assert(sizeof(struct iommu_hwpt_alloc) >= 40, "hwpt_alloc");
_Static_assert(sizeof(struct iommu_hw_info) == 40, "hw_info");
_Static_assert(sizeof(struct iommu_destroy) == 8, "destroy");
_Static_assert(sizeof(struct vfio_iommu_type1_info) == 24, "type1_info");
_Static_assert(sizeof(struct vfio_iommu_type1_info_cap_migration) == 32, "cap_migration");
_Static_assert(sizeof(struct vfio_iommu_type1_dirty_bitmap) == 8, "type1_dirty_bitmap");
_Static_assert(sizeof(struct vfio_iommu_type1_dirty_bitmap_get) == 40, "dirty_bitmap_get");
_Static_assert(sizeof(struct vfio_bitmap) == 24, "vfio_bitmap");

/* the minimum argsz the kernel accepts for BIND (offsetofend out_devid) */
#define MIGD_VFIO_BIND_IOMMUFD_MINSZ 16u
