/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-device.h"

G_BEGIN_DECLS

/*
 * Which IOVA ranges a tracker is started on. A device tracks at most a few
 * ranges (mlx5's firmware limit, the vfio core's 256); the guest's mappings
 * are many. The plan sorts and joins overlapping and touching mappings, then
 * closes the smallest gaps until at most @max_ranges remain: for a given limit
 * that tracks the fewest bytes (every merge adds its gap, so the cheapest gaps
 * go first).
 */

/*
 * Returns a GArray of MigdIovaRange, sorted, disjoint, non-empty. @max_ranges 0
 * means no limit. Fails (MIGD_ERROR_INVALID_ARGUMENT) on an empty list, a
 * zero-length range or one that wraps past 2^64 (ending exactly at 2^64 is
 * fine), and when one range would have to span all 2^64 bytes.
 */
GArray *migd_dirty_ranges_plan(const MigdIovaRange *ranges, guint n_ranges, guint max_ranges,
			       GError **error);

/*
 * QEMU's reduction, for comparison (hw/vfio/listener.c, before 10.0
 * hw/vfio/common.c: vfio_dirty_tracking_init / _update_range,
 * vfio_device_feature_dma_logging_start_create): the min..max span of the
 * mappings that end below 4 GiB, of the others, and of those in the 64-bit PCI
 * hole, so at most three ranges whatever the mapping, in that order (not
 * sorted; they may overlap when the hole lies below other mappings, as in
 * QEMU). QEMU's third bucket takes the sections an assigned device's BAR owns
 * that start at or above 0xffffffff; here, the mappings from there on that lie
 * inside @pci_hole64, which may be NULL (no such range). Empty or wrapping
 * ranges are skipped (QEMU never sees them). Never NULL; empty for no input.
 */
GArray *migd_dirty_ranges_plan_qemu(const MigdIovaRange *ranges, guint n_ranges,
				    const MigdIovaRange *pci_hole64);

/* the bytes the ranges cover (their union: overlaps count once; saturates at 2^64 - 1) */
guint64 migd_dirty_ranges_total(const MigdIovaRange *ranges, guint n_ranges);

/* @v rounded down / up to a multiple of @align, a power of two */
static inline guint64
migd_dirty_ranges_align_down(guint64 v, guint64 align)
{
	return v & ~(align - 1);
}

static inline guint64
migd_dirty_ranges_align_up(guint64 v, guint64 align)
{
	return (v + (align - 1)) & ~(align - 1);
}

/*
 * @ranges (a GArray of MigdIovaRange) sorted and disjoint, aligned out to
 * @align and joined where that made them overlap or touch (the vfio core
 * refuses overlapping ranges). Returns a new GArray of MigdIovaRange.
 */
GArray *migd_dirty_ranges_align(const GArray *ranges, guint64 align);

/*
 * "0x0+0x40000000,0x100000000+0x80000000" (iova+length, hex or decimal, K/M/G/T
 * suffixes, spaces around the numbers allowed); MIGD_ERROR_INVALID_ARGUMENT for
 * anything else, an empty list, or what migd_dirty_ranges_check() refuses
 */
GArray *migd_dirty_ranges_parse(const gchar *text, GError **error);

/* what the device's guest memory ranges must be: 4 KiB is the smallest IOMMU page */
#define MIGD_DIRTY_RANGES_ALIGN 4096

/*
 * @ranges as an operator gives them (config iova-ranges=, D-Bus AddDevice/Migrate
 * iova-ranges): each non-empty, not past 2^64, start and length aligned to
 * MIGD_DIRTY_RANGES_ALIGN, no two overlapping (touching is fine). Else
 * MIGD_ERROR_INVALID_ARGUMENT naming the range(s) by index and value.
 */
gboolean migd_dirty_ranges_check(const MigdIovaRange *ranges, guint n_ranges, GError **error);

G_END_DECLS
