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
 * zero-length range or one that wraps past 2^64.
 */
GArray *migd_dirty_ranges_plan(const MigdIovaRange *ranges, guint n_ranges, guint max_ranges,
			       GError **error);

/*
 * QEMU's reduction, for comparison (hw/vfio/common.c vfio_dirty_tracking_init):
 * the min..max span of the mappings below 4 GiB, of those above, and of those
 * in the 64-bit PCI hole, so at most three ranges whatever the mapping.
 * @pci_hole64 may be NULL (no such range).
 */
GArray *migd_dirty_ranges_plan_qemu(const MigdIovaRange *ranges, guint n_ranges,
				    const MigdIovaRange *pci_hole64);

/* the bytes the ranges cover */
guint64 migd_dirty_ranges_total(const MigdIovaRange *ranges, guint n_ranges);

/* "0x0+0x40000000,0x100000000+0x80000000" (iova+length, hex or decimal, K/M/G suffixes) */
GArray *migd_dirty_ranges_parse(const gchar *text, GError **error);

G_END_DECLS
