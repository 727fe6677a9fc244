/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migd-host-devices.h"

const gchar *
migd_host_device_kind_to_string(MigdHostDeviceKind kind)
{
	switch (kind) {
	case MIGD_HOST_DEVICE_PCI:
		return "pci";
	case MIGD_HOST_DEVICE_MDEV:
		return "mdev";
	case MIGD_HOST_DEVICE_MDEV_TYPE:
		return "mdev-type";
	}
	return "unknown";
}

void
migd_host_device_free(MigdHostDevice *device)
{
	if (device == NULL)
		return;
	g_free(device->name);
	g_free(device->driver);
	g_free(device->cdev);
	g_free(device->parent);
	g_free(device->type);
	g_free(device->type_name);
	g_free(device->description);
	g_free(device->device_api);
	g_free(device->plugin);
	if (device->held_by != NULL)
		g_ptr_array_unref(device->held_by);
	g_free(device);
}

static MigdHostDevice *
migd_host_device_new(MigdHostDeviceKind kind, const gchar *name)
{
	MigdHostDevice *device = g_new0(MigdHostDevice, 1);

	device->kind = kind;
	device->name = g_strdup(name);
	device->iommu_group = -1;
	device->available_instances = -1;
	device->held_by = g_ptr_array_new_with_free_func(g_free);
	return device;
}

const gchar *
migd_host_devices_sysfs_root(void)
{
	const gchar *root = g_getenv(MIGD_HOST_SYSFS_ROOT_ENV);
	return root != NULL && root[0] != '\0' ? root : "/sys";
}

const gchar *
migd_host_devices_dev_root(void)
{
	const gchar *root = g_getenv(MIGD_HOST_DEV_ROOT_ENV);
	return root != NULL && root[0] != '\0' ? root : "/dev";
}

/* ---- bounded reads ---- */

/*
 * The first line of a small regular file, at most MIGD_HOST_DEVICES_READ_MAX
 * bytes read; NULL if absent, not a regular file (a FIFO would block), empty or
 * not text.
 */
static gchar *
migd_host_read_line(const gchar *path)
{
	gchar buf[MIGD_HOST_DEVICES_READ_MAX + 1];
	gsize len = 0;
	struct stat st;
	gint fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	gchar *nl;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return NULL;
	}
	while (len < MIGD_HOST_DEVICES_READ_MAX) {
		gssize n = read(fd, buf + len, MIGD_HOST_DEVICES_READ_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (gsize)n;
	}
	close(fd);
	buf[len] = '\0';
	nl = strchr(buf, '\n');
	if (nl != NULL)
		*nl = '\0';
	g_strstrip(buf);
	if (buf[0] == '\0' || !g_utf8_validate(buf, -1, NULL))
		return NULL;
	return g_strdup(buf);
}

static gchar *
migd_host_read_file(const gchar *dir, const gchar *file)
{
	g_autofree gchar *path = g_build_filename(dir, file, NULL);
	return migd_host_read_line(path);
}

/* a symlink's target (not followed further), or NULL */
static gchar *
migd_host_read_link(const gchar *dir, const gchar *file)
{
	g_autofree gchar *path = g_build_filename(dir, file, NULL);
	gchar buf[PATH_MAX];
	gssize n = readlink(path, buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return g_strdup(buf);
}

static gchar *
migd_host_link_basename(const gchar *dir, const gchar *file)
{
	g_autofree gchar *target = migd_host_read_link(dir, file);
	g_autofree gchar *base = NULL;

	if (target == NULL)
		return NULL;
	base = g_path_get_basename(target);
	if (base[0] == '\0' || g_strcmp0(base, ".") == 0 || g_strcmp0(base, "..") == 0 ||
	    g_strcmp0(base, "/") == 0 || !g_utf8_validate(base, -1, NULL))
		return NULL;
	return g_steal_pointer(&base);
}

/* "0x15b3" -> 0x15b3; FALSE for anything else */
static gboolean
migd_host_parse_id(const gchar *text, guint16 *id)
{
	guint64 v;
	gchar *end = NULL;

	if (text == NULL || !g_str_has_prefix(text, "0x") || !g_ascii_isxdigit(text[2]))
		return FALSE;
	errno = 0;
	v = g_ascii_strtoull(text + 2, &end, 16);
	if (errno != 0 || *end != '\0' || v > G_MAXUINT16)
		return FALSE;
	*id = (guint16)v;
	return TRUE;
}

static gint64
migd_host_parse_uint(const gchar *text)
{
	guint64 v;

	if (text == NULL || !g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT32, &v, NULL))
		return -1;
	return (gint64)v;
}

static gint
migd_host_str_ptr_cmp(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

/* the names in @dir (sorted, at most MIGD_HOST_DEVICES_DIR_MAX), an empty array if unreadable */
static GPtrArray *
migd_host_list_dir(const gchar *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	const gchar *name;

	if (d == NULL)
		return names;
	while ((name = g_dir_read_name(d)) != NULL && names->len < MIGD_HOST_DEVICES_DIR_MAX) {
		if (g_utf8_validate(name, -1, NULL))
			g_ptr_array_add(names, g_strdup(name));
	}
	g_ptr_array_sort(names, migd_host_str_ptr_cmp);
	return names;
}

/* ---- common fields ---- */

/* the vfio-dev child ("vfioN") of the device at @dir, its group and /dev node */
static void
migd_host_read_vfio(MigdHostDevice *device, const gchar *dir, const gchar *dev_root)
{
	g_autofree gchar *vfio_dev = g_build_filename(dir, "vfio-dev", NULL);
	g_autoptr(GPtrArray) children = migd_host_list_dir(vfio_dev);
	g_autofree gchar *group = migd_host_link_basename(dir, "iommu_group");

	for (guint i = 0; i < children->len; i++) {
		const gchar *child = g_ptr_array_index(children, i);
		guint64 n;
		if (g_str_has_prefix(child, "vfio") &&
		    g_ascii_string_to_unsigned(child + 4, 10, 0, G_MAXUINT32, &n, NULL)) {
			device->cdev = g_strdup(child);
			break;
		}
	}
	if (device->cdev != NULL) {
		g_autofree gchar *node =
		    g_build_filename(dev_root, "vfio", "devices", device->cdev, NULL);
		device->cdev_node = g_file_test(node, G_FILE_TEST_EXISTS);
	}
	device->iommu_group = migd_host_parse_uint(group);
	device->driver = migd_host_link_basename(dir, "driver");
}

/* ---- PCI ---- */

static void
migd_host_scan_pci(GPtrArray *out, const gchar *sysfs_root, const gchar *dev_root)
{
	g_autofree gchar *bus = g_build_filename(sysfs_root, "bus", "pci", "devices", NULL);
	g_autoptr(GPtrArray) names = migd_host_list_dir(bus);

	for (guint i = 0; i < names->len; i++) {
		const gchar *name = g_ptr_array_index(names, i);
		g_autofree gchar *dir = g_build_filename(bus, name, NULL);
		g_autoptr(MigdHostDevice) device = migd_host_device_new(MIGD_HOST_DEVICE_PCI, name);
		g_autofree gchar *vendor = NULL;
		g_autofree gchar *id = NULL;

		migd_host_read_vfio(device, dir, dev_root);
		/* vfio-pci and its variants (mlx5_vfio_pci, ...), or anything with a VFIO cdev */
		if (device->cdev == NULL &&
		    (device->driver == NULL || strstr(device->driver, "vfio") == NULL))
			continue;
		vendor = migd_host_read_file(dir, "vendor");
		id = migd_host_read_file(dir, "device");
		device->has_ids = migd_host_parse_id(vendor, &device->vendor_id) &&
				  migd_host_parse_id(id, &device->device_id);
		g_ptr_array_add(out, g_steal_pointer(&device));
	}
}

/* ---- mdev ---- */

static void
migd_host_scan_mdevs(GPtrArray *out, const gchar *sysfs_root, const gchar *dev_root)
{
	g_autofree gchar *bus = g_build_filename(sysfs_root, "bus", "mdev", "devices", NULL);
	g_autoptr(GPtrArray) names = migd_host_list_dir(bus);

	for (guint i = 0; i < names->len; i++) {
		const gchar *name = g_ptr_array_index(names, i);
		g_autofree gchar *dir = g_build_filename(bus, name, NULL);
		g_autoptr(MigdHostDevice) device =
		    migd_host_device_new(MIGD_HOST_DEVICE_MDEV, name);
		/* .../devices/virtual/mtty/mtty/UUID: the parent is the directory above */
		g_autofree gchar *target = migd_host_read_link(bus, name);

		if (!g_uuid_string_is_valid(name))
			continue;
		if (target != NULL) {
			g_autofree gchar *up = g_path_get_dirname(target);
			g_autofree gchar *parent = g_path_get_basename(up);
			if (g_strcmp0(parent, ".") != 0 && g_strcmp0(parent, "/") != 0 &&
			    g_strcmp0(parent, "..") != 0 && g_utf8_validate(parent, -1, NULL))
				device->parent = g_steal_pointer(&parent);
		}
		device->type = migd_host_link_basename(dir, "mdev_type");
		migd_host_read_vfio(device, dir, dev_root);
		g_ptr_array_add(out, g_steal_pointer(&device));
	}
}

static void
migd_host_scan_mdev_types(GPtrArray *out, const gchar *sysfs_root)
{
	g_autofree gchar *class = g_build_filename(sysfs_root, "class", "mdev_bus", NULL);
	g_autoptr(GPtrArray) parents = migd_host_list_dir(class);

	for (guint i = 0; i < parents->len; i++) {
		const gchar *parent = g_ptr_array_index(parents, i);
		g_autofree gchar *types_dir =
		    g_build_filename(class, parent, "mdev_supported_types", NULL);
		g_autoptr(GPtrArray) types = migd_host_list_dir(types_dir);
		g_autofree gchar *parent_dir = g_build_filename(class, parent, NULL);
		g_autofree gchar *driver = migd_host_link_basename(parent_dir, "driver");

		for (guint t = 0; t < types->len; t++) {
			const gchar *type = g_ptr_array_index(types, t);
			g_autofree gchar *dir = g_build_filename(types_dir, type, NULL);
			g_autofree gchar *name = g_strdup_printf("%s/%s", parent, type);
			g_autofree gchar *available = NULL;
			MigdHostDevice *device;

			if (!g_file_test(dir, G_FILE_TEST_IS_DIR))
				continue;
			device = migd_host_device_new(MIGD_HOST_DEVICE_MDEV_TYPE, name);
			device->parent = g_strdup(parent);
			device->type = g_strdup(type);
			device->driver = g_strdup(driver);
			device->type_name = migd_host_read_file(dir, "name");
			device->description = migd_host_read_file(dir, "description");
			device->device_api = migd_host_read_file(dir, "device_api");
			available = migd_host_read_file(dir, "available_instances");
			device->available_instances = migd_host_parse_uint(available);
			g_ptr_array_add(out, device);
		}
	}
}

GPtrArray *
migd_host_devices_scan(const gchar *sysfs_root, const gchar *dev_root)
{
	GPtrArray *devices = g_ptr_array_new_with_free_func((GDestroyNotify)migd_host_device_free);

	if (sysfs_root == NULL)
		sysfs_root = "/sys";
	if (dev_root == NULL)
		dev_root = "/dev";
	/* each listing is sorted by name: the kinds in this order keep the whole sorted */
	migd_host_scan_pci(devices, sysfs_root, dev_root);
	migd_host_scan_mdevs(devices, sysfs_root, dev_root);
	migd_host_scan_mdev_types(devices, sysfs_root);
	return devices;
}

/* ---- holders ---- */

static void
migd_host_add_holder(GHashTable *paths, const gchar *path, MigdHostDevice *device)
{
	GPtrArray *list = g_hash_table_lookup(paths, path);

	if (list == NULL) {
		list = g_ptr_array_new();
		g_hash_table_insert(paths, g_strdup(path), list);
	}
	g_ptr_array_add(list, device);
}

void
migd_host_devices_scan_holders(GPtrArray *devices, const gchar *dev_root, const gchar *proc_root,
			       gint exclude_pid)
{
	g_autoptr(GHashTable) paths = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							    (GDestroyNotify)g_ptr_array_unref);
	g_autoptr(GDir) proc = NULL;
	const gchar *pid_name;
	guint budget = MIGD_HOST_DEVICES_FD_LINKS_MAX;

	if (dev_root == NULL)
		dev_root = "/dev";
	if (proc_root == NULL)
		proc_root = "/proc";
	for (guint i = 0; i < devices->len; i++) {
		MigdHostDevice *device = g_ptr_array_index(devices, i);
		if (device->cdev != NULL) {
			g_autofree gchar *node =
			    g_build_filename(dev_root, "vfio", "devices", device->cdev, NULL);
			migd_host_add_holder(paths, node, device);
		}
		if (device->iommu_group >= 0) {
			g_autofree gchar *group =
			    g_strdup_printf("%" G_GINT64_FORMAT, device->iommu_group);
			g_autofree gchar *node = g_build_filename(dev_root, "vfio", group, NULL);
			migd_host_add_holder(paths, node, device);
		}
	}
	if (g_hash_table_size(paths) == 0)
		return;
	proc = g_dir_open(proc_root, 0, NULL);
	if (proc == NULL)
		return;
	while (budget > 0 && (pid_name = g_dir_read_name(proc)) != NULL) {
		guint64 pid;
		g_autofree gchar *fd_dir = NULL;
		g_autofree gchar *pid_dir = NULL;
		g_autofree gchar *holder = NULL;
		g_autoptr(GDir) fds = NULL;
		const gchar *fd_name;

		if (!g_ascii_string_to_unsigned(pid_name, 10, 1, G_MAXINT32, &pid, NULL) ||
		    (gint)pid == exclude_pid)
			continue;
		pid_dir = g_build_filename(proc_root, pid_name, NULL);
		fd_dir = g_build_filename(pid_dir, "fd", NULL);
		/* another user's process: EACCES unless root; it exited: ENOENT */
		fds = g_dir_open(fd_dir, 0, NULL);
		if (fds == NULL)
			continue;
		while (budget > 0 && (fd_name = g_dir_read_name(fds)) != NULL) {
			g_autofree gchar *target = migd_host_read_link(fd_dir, fd_name);
			GPtrArray *list;

			budget--;
			if (target == NULL || (list = g_hash_table_lookup(paths, target)) == NULL)
				continue;
			if (holder == NULL) {
				g_autofree gchar *comm = migd_host_read_file(pid_dir, "comm");
				holder =
				    g_strdup_printf("%s:%s", pid_name, comm != NULL ? comm : "");
			}
			for (guint i = 0; i < list->len; i++) {
				MigdHostDevice *device = g_ptr_array_index(list, i);
				if (!g_ptr_array_find_with_equal_func(device->held_by, holder,
								      g_str_equal, NULL))
					g_ptr_array_add(device->held_by, g_strdup(holder));
			}
		}
	}
	for (guint i = 0; i < devices->len; i++) {
		MigdHostDevice *device = g_ptr_array_index(devices, i);
		g_ptr_array_sort(device->held_by, migd_host_str_ptr_cmp);
	}
}
