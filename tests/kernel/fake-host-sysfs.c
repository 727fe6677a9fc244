/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake-host-sysfs.h"

static void
fh_mkdir(const gchar *root, const gchar *rel)
{
	g_autofree gchar *path = g_build_filename(root, rel, NULL);
	g_assert_cmpint(g_mkdir_with_parents(path, 0755), ==, 0);
}

static void
fh_write(const gchar *root, const gchar *rel, const gchar *text)
{
	g_autofree gchar *path = g_build_filename(root, rel, NULL);
	g_autofree gchar *dir = g_path_get_dirname(path);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

/* @rel -> @target (relative, as sysfs links are) */
static void
fh_link(const gchar *root, const gchar *rel, const gchar *target)
{
	g_autofree gchar *path = g_build_filename(root, rel, NULL);
	g_autofree gchar *dir = g_path_get_dirname(path);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	g_assert_cmpint(symlink(target, path), ==, 0);
}

/* a PCI function under devices/pci0000:00, linked from bus/pci/devices */
static void
fh_pci(const gchar *sys, const gchar *addr, const gchar *driver, const gchar *vendor,
       const gchar *device, const gchar *group, const gchar *cdev)
{
	g_autofree gchar *dir = g_strdup_printf("devices/pci0000:00/%s", addr);
	g_autofree gchar *bus = g_strdup_printf("bus/pci/devices/%s", addr);
	g_autofree gchar *bus_target = g_strdup_printf("../../../devices/pci0000:00/%s", addr);

	fh_mkdir(sys, dir);
	fh_link(sys, bus, bus_target);
	if (vendor != NULL) {
		g_autofree gchar *f = g_strdup_printf("%s/vendor", dir);
		fh_write(sys, f, vendor);
	}
	if (device != NULL) {
		g_autofree gchar *f = g_strdup_printf("%s/device", dir);
		fh_write(sys, f, device);
	}
	if (driver != NULL) {
		g_autofree gchar *f = g_strdup_printf("%s/driver", dir);
		g_autofree gchar *t = g_strdup_printf("../../../bus/pci/drivers/%s", driver);
		g_autofree gchar *d = g_strdup_printf("bus/pci/drivers/%s", driver);
		fh_mkdir(sys, d);
		fh_link(sys, f, t);
	}
	if (group != NULL) {
		g_autofree gchar *f = g_strdup_printf("%s/iommu_group", dir);
		g_autofree gchar *t = g_strdup_printf("../../../kernel/iommu_groups/%s", group);
		fh_link(sys, f, t);
	}
	if (cdev != NULL) {
		g_autofree gchar *f = g_strdup_printf("%s/vfio-dev/%s/dev", dir, cdev);
		fh_write(sys, f, "511:0\n");
	}
}

gchar *
fake_host_new(void)
{
	g_autoptr(GError) error = NULL;
	gchar *root = g_dir_make_tmp("migd-host-XXXXXX", &error);
	g_autofree gchar *sys = NULL;
	g_autofree gchar *dev = NULL;
	const gchar *mtty = "devices/virtual/mtty/mtty";
	g_autofree gchar *mdev = g_strdup_printf("devices/virtual/mtty/mtty/%s", FAKE_MDEV_UUID);

	g_assert_no_error(error);
	sys = g_build_filename(root, "sys", NULL);
	dev = g_build_filename(root, "dev", NULL);
	fh_pci(sys, FAKE_MLX5_ADDR, "mlx5_vfio_pci", "0x15b3\n", "0x101e\n", "12", "vfio0");
	fh_pci(sys, FAKE_HISI_ADDR, "hisi_acc_vfio_pci", "0x19e5\n", "0xa251\n", "13", "vfio1");
	fh_pci(sys, FAKE_VFIOPCI_ADDR, "vfio-pci", "0x15b3\n", "0x101e\n", "14", "vfio3");
	fh_pci(sys, FAKE_AHCI_ADDR, "ahci", "0x8086\n", "0x2922\n", "2", NULL);
	fh_write(dev, "vfio/devices/vfio0", "");
	fh_write(dev, "vfio/12", "");

	/* mtty: a virtual parent with two types and one instance */
	fh_mkdir(sys, mtty);
	fh_link(sys, "class/mdev_bus/mtty", "../../devices/virtual/mtty/mtty");
	fh_write(sys, "devices/virtual/mtty/mtty/mdev_supported_types/mtty-1/name",
		 "Single port serial\n");
	fh_write(sys, "devices/virtual/mtty/mtty/mdev_supported_types/mtty-1/description",
		 "virtual serial ports\nsecond line\n");
	fh_write(sys, "devices/virtual/mtty/mtty/mdev_supported_types/mtty-1/device_api",
		 "vfio-pci\n");
	fh_write(sys, "devices/virtual/mtty/mtty/mdev_supported_types/mtty-1/available_instances",
		 "2\n");
	fh_write(sys, "devices/virtual/mtty/mtty/mdev_supported_types/mtty-2/name",
		 "Dual port serial\n");
	fh_write(sys, "devices/virtual/mtty/mtty/mdev_supported_types/mtty-2/device_api",
		 "vfio-pci\n");
	fh_write(sys, "devices/virtual/mtty/mtty/mdev_supported_types/mtty-2/available_instances",
		 "0\n");
	{
		g_autofree gchar *f = g_strdup_printf("%s/mdev_type", mdev);
		g_autofree gchar *drv = g_strdup_printf("%s/driver", mdev);
		g_autofree gchar *grp = g_strdup_printf("%s/iommu_group", mdev);
		g_autofree gchar *cdev = g_strdup_printf("%s/vfio-dev/vfio2/dev", mdev);
		g_autofree gchar *bus = g_strdup_printf("bus/mdev/devices/%s", FAKE_MDEV_UUID);
		g_autofree gchar *bus_target =
		    g_strdup_printf("../../../devices/virtual/mtty/mtty/%s", FAKE_MDEV_UUID);
		fh_mkdir(sys, mdev);
		fh_link(sys, f, "../mdev_supported_types/mtty-2");
		fh_link(sys, drv, "../../../../../bus/mdev/drivers/mtty");
		fh_link(sys, grp, "../../../../../kernel/iommu_groups/20");
		fh_write(sys, cdev, "511:2\n");
		fh_link(sys, bus, bus_target);
	}
	return root;
}

void
fake_host_add_garbage(const gchar *root)
{
	g_autofree gchar *sys = g_build_filename(root, "sys", NULL);
	g_autofree gchar *fifo = NULL;
	g_autofree gchar *huge = g_strnfill(10000, 'x');
	const gchar *types = "devices/virtual/mtty/mtty/mdev_supported_types";

	/* vfio-pci with garbage ids, a group that is no number, a cdev that is no vfioN */
	fh_pci(sys, FAKE_BAD_ADDR, "vfio-pci", "0xzzzz\n", NULL, "notanumber", "vfioX");
	/* its vendor-less sibling: vendor is a FIFO (a read would block forever) */
	fh_pci(sys, "0000:ff:00.1", "vfio-pci", NULL, "0x1234\n", "99999999999", NULL);
	fifo = g_build_filename(sys, "devices/pci0000:00/0000:ff:00.1/vendor", NULL);
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	/* symlink loops: a device entry, a driver link */
	fh_link(sys, "bus/pci/devices/0000:ee:00.0", "0000:ee:00.0");
	fh_mkdir(sys, "devices/pci0000:00/0000:ee:00.1");
	fh_link(sys, "bus/pci/devices/0000:ee:00.1", "../../../devices/pci0000:00/0000:ee:00.1");
	fh_link(sys, "devices/pci0000:00/0000:ee:00.1/driver", "driver");
	/* an entry that is no UUID, and a UUID whose link dangles */
	fh_link(sys, "bus/mdev/devices/not-a-uuid", "../../../devices/nowhere");
	fh_link(sys, "bus/mdev/devices/00000000-0000-0000-0000-000000000bad",
		"../../../devices/nowhere/00000000-0000-0000-0000-000000000bad");
	/* an mdev type with a huge name, negative and too large counts, a file for a type */
	{
		g_autofree gchar *f = g_strdup_printf("%s/mtty-9/name", types);
		fh_write(sys, f, huge);
	}
	{
		g_autofree gchar *f = g_strdup_printf("%s/mtty-9/available_instances", types);
		fh_write(sys, f, "-5\n");
	}
	{
		g_autofree gchar *f = g_strdup_printf("%s/mtty-8/available_instances", types);
		fh_write(sys, f, "99999999999999999999\n");
	}
	{
		g_autofree gchar *f = g_strdup_printf("%s/not-a-dir", types);
		fh_write(sys, f, "x");
	}
	/* a parent whose link loops */
	fh_link(sys, "class/mdev_bus/loop", "loop");
}

static void
fh_remove_tree(const gchar *path)
{
	GStatBuf st;

	if (g_lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
		const gchar *name;
		while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
			g_autofree gchar *child = g_build_filename(path, name, NULL);
			fh_remove_tree(child);
		}
		g_rmdir(path);
	} else {
		g_unlink(path);
	}
}

void
fake_host_remove(const gchar *root)
{
	fh_remove_tree(root);
}
