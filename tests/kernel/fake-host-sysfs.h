/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A fake host for discovery tests: ROOT/sys laid out as Linux 6.12's sysfs
 * (devices/, bus/pci/devices links, class/mdev_bus, bus/mdev/devices) and
 * ROOT/dev/vfio. GLib only, so the D-Bus tests share it.
 */
#pragma once

#include <glib.h>

/*
 * the devices it holds:
 * - FAKE_MLX5_ADDR: mlx5_vfio_pci, 15b3:101e, group 12, vfio0 (with its /dev node)
 * - FAKE_HISI_ADDR: hisi_acc_vfio_pci, 19e5:a251, group 13, vfio1
 * - FAKE_VFIOPCI_ADDR: vfio-pci, an mlx5 VF (15b3:101e), group 14, vfio3
 * - FAKE_AHCI_ADDR: ahci, not a VFIO device
 * - FAKE_MDEV_UUID: mtty-2 under the mtty parent (types mtty-1: 2 left, mtty-2: 0),
 *   group 20, vfio2
 * - FAKE_BAD_ADDR (fake_host_add_garbage): vfio-pci with garbage ids, group and cdev
 */
#define FAKE_MLX5_ADDR	  "0000:65:00.2"
#define FAKE_HISI_ADDR	  "0000:b5:00.1"
#define FAKE_VFIOPCI_ADDR "0000:65:00.3"
#define FAKE_AHCI_ADDR	  "0000:00:1f.2"
#define FAKE_MDEV_UUID	  "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"
#define FAKE_BAD_ADDR	  "0000:ff:00.0"

/* a fresh tree in a temporary directory; returns ROOT (ROOT/sys, ROOT/dev) */
gchar *fake_host_new(void);
/* ... plus malformed entries: symlink loops, a FIFO, bad numbers, a huge file */
void fake_host_add_garbage(const gchar *root);
void fake_host_remove(const gchar *root);
