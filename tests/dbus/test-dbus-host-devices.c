/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Manager.ListHostDevices and vfio-migctl host-devices on a daemon whose scan
 * is pointed at a fake sysfs ($VFIO_MIGD_SYSFS_ROOT, $VFIO_MIGD_DEV_ROOT):
 * every property, the plugin each device would take (the build tree's mlx5 and
 * hisi_acc plugins), "served" for a device the daemon holds under that name
 * or under a name of its own (its sysfs node says which device it is),
 * "held-by" for this test process holding a fake node, and the CLI's table and
 * JSON.
 */
#include "config.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>
#include <unistd.h>

#include "dbus-test-util.h"
#include "tests/kernel/fake-host-sysfs.h"

#define BUS_NAME "org.vfiomigd.Test.HostDevices"

static gchar *root;

static int
setup(void **state)
{
	g_autofree gchar *sys = NULL;
	g_autofree gchar *dev = NULL;

	root = fake_host_new();
	sys = g_build_filename(root, "sys", NULL);
	dev = g_build_filename(root, "dev", NULL);
	/* the daemon inherits them */
	g_setenv("VFIO_MIGD_SYSFS_ROOT", sys, TRUE);
	g_setenv("VFIO_MIGD_DEV_ROOT", dev, TRUE);
	return dt_bus_up(state);
}

static int
teardown(void **state)
{
	fake_host_remove(root);
	g_clear_pointer(&root, g_free);
	return dt_bus_down(state);
}

/* the properties of @name in ListHostDevices' answer, NULL if absent */
static GVariant *
host_device(GVariant *devices, const gchar *name)
{
	GVariantIter iter;
	const gchar *n;
	GVariant *props;

	g_variant_iter_init(&iter, devices);
	while (g_variant_iter_next(&iter, "(&s@a{sv})", &n, &props)) {
		if (g_strcmp0(n, name) == 0)
			return props;
		g_variant_unref(props);
	}
	return NULL;
}

static const gchar *
prop_str(GVariant *props, const gchar *key)
{
	const gchar *v = NULL;
	if (!g_variant_lookup(props, key, "&s", &v))
		fail_msg("no string '%s' in %s", key, g_variant_print(props, TRUE));
	return v;
}

static void
test_list_host_devices(void **state)
{
	g_autoptr(DtDaemon) daemon = dt_daemon_start(BUS_NAME, NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) added = NULL;
	g_autoptr(GVariant) added_named = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) devices = NULL;
	g_autoptr(GVariant) mlx5 = NULL;
	g_autoptr(GVariant) hisi = NULL;
	g_autoptr(GVariant) vfiopci = NULL;
	g_autoptr(GVariant) mdev = NULL;
	g_autoptr(GVariant) type1 = NULL;
	g_autoptr(GVariant) type2 = NULL;
	g_autoptr(GVariant) ahci = NULL;
	g_autofree gchar *node = g_build_filename(root, "dev", "vfio", "devices", "vfio0", NULL);
	g_autofree gchar *me = g_strdup_printf("%d:", (gint)getpid());
	g_autofree gchar *mdev_spec =
	    g_strdup_printf("mtty:ports=2,sysfs=%s/sys/bus/mdev/devices/%s", root, FAKE_MDEV_UUID);
	g_autofree const gchar **held_by = NULL;
	GVariantBuilder options;
	guint16 q = 0;
	guint32 u = 0;
	gboolean b = FALSE;
	gint fd;

	/* the daemon serves a (simulated) device under the mlx5 VF's address */
	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&options, "{sv}", "sim-spec", g_variant_new_string("mlx5"));
	added = dt_manager_call(daemon, "AddDevice",
				g_variant_new("(sa{sv})", FAKE_MLX5_ADDR, &options), &error);
	assert_non_null(added);
	/* and the mdev under a name of its own, as [device NAME] address=UUID does */
	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&options, "{sv}", "sim-spec", g_variant_new_string(mdev_spec));
	added_named = dt_manager_call(daemon, "AddDevice",
				      g_variant_new("(sa{sv})", "serial-a", &options), &error);
	if (added_named == NULL)
		fail_msg("AddDevice serial-a: %s", error->message);
	/* this process holds the mlx5 VF's cdev */
	fd = open(node, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);

	reply = dt_manager_call(daemon, "ListHostDevices", NULL, &error);
	if (reply == NULL)
		fail_msg("ListHostDevices: %s", error->message);
	close(fd);
	assert_string_equal(g_variant_get_type_string(reply), "(a(sa{sv}))");
	devices = g_variant_get_child_value(reply, 0);
	assert_int_equal(g_variant_n_children(devices), 6);

	mlx5 = host_device(devices, FAKE_MLX5_ADDR);
	assert_non_null(mlx5);
	assert_string_equal(prop_str(mlx5, "kind"), "pci");
	assert_string_equal(prop_str(mlx5, "driver"), "mlx5_vfio_pci");
	assert_true(g_variant_lookup(mlx5, "vendor-id", "q", &q));
	assert_int_equal(q, 0x15b3);
	assert_true(g_variant_lookup(mlx5, "device-id", "q", &q));
	assert_int_equal(q, 0x101e);
	assert_true(g_variant_lookup(mlx5, "iommu-group", "u", &u));
	assert_int_equal(u, 12);
	assert_string_equal(prop_str(mlx5, "cdev"), "vfio0");
	assert_true(g_variant_lookup(mlx5, "cdev-node", "b", &b));
	assert_true(b);
	assert_string_equal(prop_str(mlx5, "plugin"), "mlx5");
	assert_true(g_variant_lookup(mlx5, "served", "b", &b));
	assert_true(b);
	assert_true(g_variant_lookup(mlx5, "held-by", "^a&s", &held_by));
	assert_non_null(held_by[0]);
	assert_true(g_str_has_prefix(held_by[0], me));
	assert_null(held_by[1]);

	hisi = host_device(devices, FAKE_HISI_ADDR);
	assert_non_null(hisi);
	assert_string_equal(prop_str(hisi, "plugin"), "hisi_acc");
	assert_true(g_variant_lookup(hisi, "served", "b", &b));
	assert_false(b);
	assert_true(g_variant_lookup(hisi, "cdev-node", "b", &b));
	assert_false(b);

	/* an mlx5 VF on plain vfio-pci cannot migrate: no driver rules, the generic plugin */
	vfiopci = host_device(devices, FAKE_VFIOPCI_ADDR);
	assert_non_null(vfiopci);
	assert_string_equal(prop_str(vfiopci, "driver"), "vfio-pci");
	assert_string_equal(prop_str(vfiopci, "plugin"), "generic");

	mdev = host_device(devices, FAKE_MDEV_UUID);
	assert_non_null(mdev);
	assert_string_equal(prop_str(mdev, "kind"), "mdev");
	assert_string_equal(prop_str(mdev, "parent"), "mtty");
	assert_string_equal(prop_str(mdev, "type"), "mtty-2");
	assert_string_equal(prop_str(mdev, "cdev"), "vfio2");
	assert_false(g_variant_lookup(mdev, "vendor-id", "q", &q));
	/* served under another name: known by its sysfs node */
	assert_true(g_variant_lookup(mdev, "served", "b", &b));
	assert_true(b);

	type1 = host_device(devices, "mtty/mtty-1");
	assert_non_null(type1);
	assert_string_equal(prop_str(type1, "kind"), "mdev-type");
	assert_string_equal(prop_str(type1, "type-name"), "Single port serial");
	assert_string_equal(prop_str(type1, "device-api"), "vfio-pci");
	assert_true(g_variant_lookup(type1, "available-instances", "u", &u));
	assert_int_equal(u, 2);
	/* a type is not a device: neither served nor held */
	assert_false(g_variant_lookup(type1, "served", "b", &b));
	type2 = host_device(devices, "mtty/mtty-2");
	assert_non_null(type2);
	assert_true(g_variant_lookup(type2, "available-instances", "u", &u));
	assert_int_equal(u, 0);

	ahci = host_device(devices, FAKE_AHCI_ADDR);
	assert_null(ahci);
}

/*
 * A vfio-migctl table: every column starts where its header does, one space after the
 * widest cell of the column before (no fixed widths that wrap a terminal), no trailing space.
 */
static void
assert_table_aligned(const gchar *table)
{
	g_auto(GStrv) lines = g_strsplit(table, "\n", -1);
	const gchar *header = lines[0];
	GArray *starts = g_array_new(FALSE, FALSE, sizeof(gsize));
	guint n_rows = 0;

	for (gsize i = 0; header[i] != '\0'; i++)
		if (header[i] != ' ' && (i == 0 || header[i - 1] == ' '))
			g_array_append_val(starts, i);
	assert_true(starts->len >= 2);
	for (guint l = 0; lines[l] != NULL; l++) {
		gsize len = strlen(lines[l]);
		if (len == 0)
			continue;
		n_rows++;
		assert_true(lines[l][len - 1] != ' ');
		for (guint c = 1; c < starts->len; c++) {
			gsize at = g_array_index(starts, gsize, c);
			assert_true(len > at);
			assert_true(lines[l][at - 1] == ' ');
			assert_true(lines[l][at] != ' ');
		}
	}
	/* the widest cell of each column ends right before the next column */
	for (guint c = 1; c < starts->len; c++) {
		gsize at = g_array_index(starts, gsize, c);
		gboolean tight = FALSE;
		for (guint l = 0; lines[l] != NULL; l++)
			tight |= strlen(lines[l]) > at && lines[l][at - 2] != ' ';
		assert_true(tight);
	}
	assert_true(n_rows >= 2);
	g_array_unref(starts);
}

static void
test_migctl_host_devices(void **state)
{
	/* simulated devices too, for the devices table: they are not host devices */
	const gchar *const specs[] = {"mlx5:state_size=1M,seed=1", "hisi_acc:seed=3", NULL};
	g_autoptr(DtDaemon) daemon = dt_daemon_start(BUS_NAME "2", specs);
	g_autofree gchar *out = NULL;
	g_autofree gchar *table = NULL;
	g_autofree gchar *devices = NULL;
	g_autoptr(JsonNode) node = NULL;
	JsonArray *array;
	gboolean seen_mlx5 = FALSE, seen_type = FALSE;

	assert_int_equal(dt_migctl(BUS_NAME "2", &out, "--json", "host-devices", NULL), 0);
	node = dt_json_line(out);
	assert_true(JSON_NODE_HOLDS_OBJECT(node));
	array = json_object_get_array_member(json_node_get_object(node), "host-devices");
	assert_non_null(array);
	assert_int_equal(json_array_get_length(array), 6);
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonObject *obj = json_array_get_object_element(array, i);
		const gchar *name = json_object_get_string_member(obj, "name");
		if (g_strcmp0(name, FAKE_MLX5_ADDR) == 0) {
			seen_mlx5 = TRUE;
			assert_string_equal(json_object_get_string_member(obj, "vendor-id"),
					    "0x15b3");
			assert_int_equal(json_object_get_int_member(obj, "iommu-group"), 12);
			assert_string_equal(json_object_get_string_member(obj, "plugin"), "mlx5");
			assert_false(json_object_get_boolean_member(obj, "served"));
			assert_int_equal(
			    json_array_get_length(json_object_get_array_member(obj, "held-by")), 0);
		} else if (g_strcmp0(name, "mtty/mtty-1") == 0) {
			seen_type = TRUE;
			assert_int_equal(json_object_get_int_member(obj, "available-instances"), 2);
			assert_string_equal(json_object_get_string_member(obj, "kind"),
					    "mdev-type");
		}
	}
	assert_true(seen_mlx5 && seen_type);

	/* the table: a header, one row per entry */
	assert_int_equal(dt_migctl(BUS_NAME "2", &table, "host-devices", NULL), 0);
	assert_true(g_str_has_prefix(table, "NAME "));
	assert_table_aligned(table);
	/* the served devices' table too */
	assert_int_equal(dt_migctl(BUS_NAME "2", &devices, "devices", NULL), 0);
	assert_true(g_str_has_prefix(devices, "NAME "));
	assert_table_aligned(devices);
	assert_true(g_regex_match_simple(
	    "^0000:65:00\\.2 +pci +mlx5_vfio_pci +15b3:101e +12 +vfio0 +mlx5 +free$", table,
	    G_REGEX_MULTILINE, 0));
	assert_true(g_regex_match_simple("^" FAKE_MDEV_UUID
					 " +mdev +mtty +mtty-2 +20 +vfio2 +generic +free$",
					 table, G_REGEX_MULTILINE, 0));
	assert_non_null(strstr(table, "2 available (vfio-pci)"));
	assert_non_null(strstr(table, "0 available (vfio-pci)"));
	assert_null(strstr(table, FAKE_AHCI_ADDR));
	/* no arguments taken */
	assert_int_equal(dt_migctl(BUS_NAME "2", NULL, "host-devices", "extra", NULL), 2);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list_host_devices),
	    cmocka_unit_test(test_migctl_host_devices),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests_name("dbus-host-devices", tests, setup, teardown);
}
