/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Host discovery on a fake sysfs (tests/kernel/fake-host-sysfs.c): what is
 * listed and how, what is not, malformed entries (fields missing, no crash, no
 * hang on a FIFO, no loop on a symlink loop), and the best-effort holder scan
 * over the real /proc with this process holding a fake node.
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fake-host-sysfs.h"
#include "migd-host-devices.h"
#include "test-kernel-common.h"

static MigdHostDevice *
find(GPtrArray *devices, const gchar *name)
{
	for (guint i = 0; i < devices->len; i++) {
		MigdHostDevice *device = g_ptr_array_index(devices, i);
		if (g_strcmp0(device->name, name) == 0)
			return device;
	}
	return NULL;
}

/* the entry, which must be there (g_error: noreturn, so no NULL flows on) */
static MigdHostDevice *
get(GPtrArray *devices, const gchar *name)
{
	MigdHostDevice *device = find(devices, name);
	if (device == NULL)
		g_error("%s is not listed", name);
	return device;
}

static GPtrArray *
scan(const gchar *root)
{
	g_autofree gchar *sys = g_build_filename(root, "sys", NULL);
	g_autofree gchar *dev = g_build_filename(root, "dev", NULL);
	return migd_host_devices_scan(sys, dev);
}

static void
test_scan(void **state)
{
	g_autofree gchar *root = fake_host_new();
	g_autoptr(GPtrArray) devices = scan(root);
	MigdHostDevice *d;

	/* 3 PCI functions, 1 mdev, 2 types; the ahci function is no VFIO device */
	assert_int_equal(devices->len, 6);
	assert_null(find(devices, FAKE_AHCI_ADDR));

	d = get(devices, FAKE_MLX5_ADDR);
	assert_int_equal(d->kind, MIGD_HOST_DEVICE_PCI);
	assert_string_equal(d->driver, "mlx5_vfio_pci");
	assert_true(d->has_ids);
	assert_int_equal(d->vendor_id, 0x15b3);
	assert_int_equal(d->device_id, 0x101e);
	assert_int_equal(d->iommu_group, 12);
	assert_string_equal(d->cdev, "vfio0");
	assert_true(d->cdev_node);
	assert_int_equal(d->held_by->len, 0);

	d = get(devices, FAKE_HISI_ADDR);
	assert_string_equal(d->driver, "hisi_acc_vfio_pci");
	assert_int_equal(d->vendor_id, 0x19e5);
	assert_int_equal(d->device_id, 0xa251);
	assert_int_equal(d->iommu_group, 13);
	assert_string_equal(d->cdev, "vfio1");
	assert_false(d->cdev_node); /* no /dev/vfio/devices/vfio1 */

	d = get(devices, FAKE_VFIOPCI_ADDR);
	assert_string_equal(d->driver, "vfio-pci");
	assert_int_equal(d->iommu_group, 14);

	d = get(devices, FAKE_MDEV_UUID);
	assert_int_equal(d->kind, MIGD_HOST_DEVICE_MDEV);
	assert_string_equal(d->parent, "mtty");
	assert_string_equal(d->type, "mtty-2");
	assert_string_equal(d->driver, "mtty");
	assert_string_equal(d->cdev, "vfio2");
	assert_int_equal(d->iommu_group, 20);
	assert_false(d->has_ids);

	d = get(devices, "mtty/mtty-1");
	assert_int_equal(d->kind, MIGD_HOST_DEVICE_MDEV_TYPE);
	assert_string_equal(d->parent, "mtty");
	assert_string_equal(d->type, "mtty-1");
	assert_string_equal(d->type_name, "Single port serial");
	assert_string_equal(d->description, "virtual serial ports");
	assert_string_equal(d->device_api, "vfio-pci");
	assert_int_equal(d->available_instances, 2);
	assert_null(d->cdev);

	d = get(devices, "mtty/mtty-2");
	assert_int_equal(d->available_instances, 0);
	assert_null(d->description);

	/* sorted: PCI by address, then mdevs, then types */
	assert_string_equal(((MigdHostDevice *)g_ptr_array_index(devices, 0))->name,
			    FAKE_MLX5_ADDR);
	assert_string_equal(((MigdHostDevice *)g_ptr_array_index(devices, 3))->name,
			    FAKE_MDEV_UUID);
	assert_string_equal(((MigdHostDevice *)g_ptr_array_index(devices, 5))->name, "mtty/mtty-2");
	fake_host_remove(root);
}

static void
test_garbage(void **state)
{
	g_autofree gchar *root = fake_host_new();
	g_autoptr(GPtrArray) devices = NULL;
	MigdHostDevice *d;

	fake_host_add_garbage(root);
	devices = scan(root);

	/* the good entries are unchanged */
	d = get(devices, FAKE_MLX5_ADDR);
	assert_int_equal(d->iommu_group, 12);

	/* bad ids and group, a cdev that is no vfioN: listed, those fields missing */
	d = get(devices, FAKE_BAD_ADDR);
	assert_string_equal(d->driver, "vfio-pci");
	assert_false(d->has_ids);
	assert_int_equal(d->iommu_group, -1);
	assert_null(d->cdev);

	/* a FIFO for vendor is not read; a group beyond 32 bits is no group */
	d = get(devices, "0000:ff:00.1");
	assert_false(d->has_ids);
	assert_int_equal(d->iommu_group, -1);

	/* symlink loops: the entry and the driver link lead nowhere, not listed */
	assert_null(find(devices, "0000:ee:00.0"));
	assert_null(find(devices, "0000:ee:00.1"));

	/* not a UUID: skipped; a dangling UUID: listed with its parent from the link alone */
	assert_null(find(devices, "not-a-uuid"));
	d = get(devices, "00000000-0000-0000-0000-000000000bad");
	assert_string_equal(d->parent, "nowhere");
	assert_null(d->type);
	assert_null(d->cdev);
	assert_int_equal(d->iommu_group, -1);

	/* a huge name is cut at the read cap; bad counts are left out */
	d = get(devices, "mtty/mtty-9");
	assert_int_equal(strlen(d->type_name), MIGD_HOST_DEVICES_READ_MAX);
	assert_int_equal(d->available_instances, -1);
	assert_null(d->device_api);
	d = get(devices, "mtty/mtty-8");
	assert_int_equal(d->available_instances, -1);
	assert_null(find(devices, "mtty/not-a-dir"));
	/* the looping parent has no types */
	for (guint i = 0; i < devices->len; i++) {
		d = g_ptr_array_index(devices, i);
		assert_true(d->parent == NULL || g_strcmp0(d->parent, "loop") != 0);
	}
	fake_host_remove(root);
}

static void
test_empty_root(void **state)
{
	g_autoptr(GPtrArray) devices = migd_host_devices_scan("/nonexistent-migd-root", NULL);
	assert_int_equal(devices->len, 0);
}

static void
test_holders(void **state)
{
	g_autofree gchar *root = fake_host_new();
	g_autofree gchar *dev = g_build_filename(root, "dev", NULL);
	g_autofree gchar *node = g_build_filename(dev, "vfio", "devices", "vfio0", NULL);
	g_autofree gchar *group = g_build_filename(dev, "vfio", "12", NULL);
	g_autofree gchar *me = NULL;
	g_autofree gchar *comm = NULL;
	gint fd = open(node, O_RDONLY | O_CLOEXEC);
	gint group_fd = open(group, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0 && group_fd >= 0);
	g_assert_true(g_file_get_contents("/proc/self/comm", &comm, NULL, NULL));
	g_strstrip(comm);
	me = g_strdup_printf("%d:%s", (gint)getpid(), comm);
	{
		g_autoptr(GPtrArray) devices = scan(root);
		MigdHostDevice *d;

		migd_host_devices_scan_holders(devices, dev, NULL, 0);
		d = get(devices, FAKE_MLX5_ADDR);
		/* the cdev and the group fd: one holder, named once */
		assert_int_equal(d->held_by->len, 1);
		assert_string_equal(g_ptr_array_index(d->held_by, 0), me);
		assert_int_equal(get(devices, FAKE_HISI_ADDR)->held_by->len, 0);
		assert_int_equal(get(devices, FAKE_MDEV_UUID)->held_by->len, 0);
	}
	{
		/* the caller itself left out (the daemon: "served" says it) */
		g_autoptr(GPtrArray) devices = scan(root);
		migd_host_devices_scan_holders(devices, dev, NULL, (gint)getpid());
		assert_int_equal(get(devices, FAKE_MLX5_ADDR)->held_by->len, 0);
	}
	close(fd);
	close(group_fd);
	{
		/* closed: nobody holds it */
		g_autoptr(GPtrArray) devices = scan(root);
		migd_host_devices_scan_holders(devices, dev, NULL, 0);
		assert_int_equal(get(devices, FAKE_MLX5_ADDR)->held_by->len, 0);
	}
	fake_host_remove(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scan),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_empty_root),
	    cmocka_unit_test(test_holders),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
