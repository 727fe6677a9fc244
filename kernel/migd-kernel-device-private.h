/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Shared by the two halves of MigdKernelDevice: migd-kernel-device.c (migration, data fd, DMA
 * logging, regions, low power) and migd-kernel-iommu-dirty.c (IOMMU dirty tracking). Not for
 * users of the kernel backend: they include migd-kernel-device.h.
 */
#pragma once

#include "migd-kernel-device.h"
#include "migd-kernel-open.h"

G_BEGIN_DECLS

struct _MigdKernelDevice {
	MigdDevice parent_instance;
	MigdKernelHandles handles;
	/* type1: CAP_MIGRATION's max_dirty_bitmap_size, read at iommu_dirty_start; 0: unknown */
	guint64 type1_max_bitmap;
};

/* the MigdDevice IOMMU dirty-tracking vfuncs (migd-kernel-iommu-dirty.c) */
gboolean migd_kernel_iommu_dirty_start(MigdDevice *device, const MigdIovaRange *ranges,
				       guint n_ranges, guint64 *page_size, GError **error);
gboolean migd_kernel_iommu_dirty_stop(MigdDevice *device, GError **error);
gboolean migd_kernel_iommu_dirty_report(MigdDevice *device, guint64 iova, guint64 length,
					guint64 page_size, gboolean no_clear, guint64 *bitmap,
					GError **error);

G_END_DECLS
