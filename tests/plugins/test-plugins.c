/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Plugins: the module loader (ABI refusal, fallback to the generic plugin),
 * configuration, and the mlx5 and hisi_acc rules against the simulator, alone
 * and inside whole migrations between two engines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <gio/gio.h>
#include <gmodule.h>
#include <string.h>
#include <unistd.h>

#include "engine-test-util.h"
#include "migd-error.h"
#include "migd-plugin-manager.h"

/* ---- captured log messages ---- */

static GPtrArray *captured; /* "LEVEL message" */

static GLogWriterOutput
capture_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	for (gsize i = 0; captured != NULL && i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
			g_ptr_array_add(
			    captured,
			    g_strdup_printf("%s %s",
					    (level & G_LOG_LEVEL_WARNING) ? "WARNING" : "OTHER",
					    (const gchar *)fields[i].value));
	}
	return G_LOG_WRITER_HANDLED;
}

static gboolean
captured_has(const gchar *level, const gchar *needle)
{
	for (guint i = 0; i < captured->len; i++) {
		const gchar *line = g_ptr_array_index(captured, i);
		if (g_str_has_prefix(line, level) && strstr(line, needle) != NULL)
			return TRUE;
	}
	return FALSE;
}

static int
setup(void **state)
{
	captured = g_ptr_array_new_with_free_func(g_free);
	return 0;
}

static int
teardown(void **state)
{
	g_clear_pointer(&captured, g_ptr_array_unref);
	return 0;
}

/* ---- helpers ---- */

static const gchar *
built_plugin_dir(void)
{
	const gchar *dir = g_getenv(MIGD_PLUGIN_DIR_ENV);
	if (dir == NULL)
		fail_msg("%s is not set (run through meson test)", MIGD_PLUGIN_DIR_ENV);
	return dir;
}

static gchar *
module_path(const gchar *dir, const gchar *name)
{
	g_autofree gchar *file = g_strdup_printf("migd-plugin-%s.%s", name, G_MODULE_SUFFIX);
	return g_build_filename(dir, file, NULL);
}

static MigdPluginManager *
manager_with_built_plugins(void)
{
	g_autoptr(MigdPluginManager) manager = migd_plugin_manager_new();
	g_autoptr(GError) error = NULL;

	if (!migd_plugin_manager_load_dir(manager, built_plugin_dir(), &error))
		fail_msg("load_dir: %s", error->message);
	if (!migd_plugin_manager_configure(manager, NULL, &error))
		fail_msg("configure: %s", error->message);
	return g_steal_pointer(&manager);
}

static MigdDevice *
sim_device(const gchar *spec)
{
	g_autoptr(GError) error = NULL;
	MigdSimDevice *dev = migd_sim_device_new_from_string(spec, &error);
	if (dev == NULL)
		fail_msg("%s: %s", spec, error->message);
	return MIGD_DEVICE(dev);
}

/*
 * A plugin directory made of links to the built modules: a module is loaded
 * once per process, and the dynamic linker knows a link for the same file.
 */
static void
link_module(const gchar *from, const gchar *to)
{
	g_autofree gchar *target = g_canonicalize_filename(from, NULL);
	if (symlink(target, to) != 0)
		fail_msg("symlink %s: %s", to, g_strerror(errno));
}

static void
rm_rf(const gchar *path)
{
	g_autofree gchar *cmd = g_strdup_printf("rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

/* a fake sysfs node of an mlx5 VF whose PF shows firmware @fw */
static gchar *
fake_mlx5_sysfs(const gchar *root, const gchar *name, const gchar *fw)
{
	g_autofree gchar *ib = g_build_filename(root, name, "physfn", "infiniband", "mlx5_0", NULL);
	g_autofree gchar *file = g_build_filename(ib, "fw_ver", NULL);
	g_autofree gchar *contents = g_strdup_printf("%s\n", fw);

	assert_int_equal(g_mkdir_with_parents(ib, 0700), 0);
	assert_true(g_file_set_contents(file, contents, -1, NULL));
	return g_build_filename(root, name, NULL);
}

/* ---- the loader ---- */

static void
test_load_built_plugins(void **state)
{
	g_autoptr(MigdPluginManager) manager = manager_with_built_plugins();
	GPtrArray *plugins = migd_plugin_manager_get_plugins(manager);

	assert_non_null(migd_plugin_manager_find(manager, "mlx5"));
	assert_non_null(migd_plugin_manager_find(manager, "hisi_acc"));
	assert_int_equal(plugins->len, 3);
	/* the generic plugin is the fallback, last */
	assert_string_equal(migd_plugin_get_name(g_ptr_array_index(plugins, plugins->len - 1)),
			    "generic");
}

static void
test_assign_by_driver(void **state)
{
	g_autoptr(MigdPluginManager) manager = manager_with_built_plugins();
	g_autoptr(MigdDevice) mlx5 = sim_device("mlx5:seed=1");
	g_autoptr(MigdDevice) hisi = sim_device("hisi_acc:seed=2");
	g_autoptr(MigdDevice) mtty = sim_device("mtty:seed=3");
	MigdPluginPolicy policy;

	migd_plugin_manager_assign(manager, mlx5);
	migd_plugin_manager_assign(manager, hisi);
	migd_plugin_manager_assign(manager, mtty);

	assert_string_equal(migd_plugin_get_name(migd_device_get_plugin(mlx5)), "mlx5");
	migd_plugin_get_policy(migd_device_get_plugin(mlx5), mlx5, &policy);
	assert_int_equal(policy.tracker, MIGD_DIRTY_TRACKER_DEVICE);
	assert_int_equal(policy.read_size, 4 * 1024 * 1024);
	assert_int_equal(policy.on_tracker_error, MIGD_TRACKER_ERROR_RESTART);
	assert_int_equal(policy.recovery_quirks, 0);

	assert_string_equal(migd_plugin_get_name(migd_device_get_plugin(hisi)), "hisi_acc");
	migd_plugin_get_policy(migd_device_get_plugin(hisi), hisi, &policy);
	assert_int_equal(policy.tracker, MIGD_DIRTY_TRACKER_IOMMU);
	assert_int_equal(policy.initial_check_bytes, 40);
	assert_int_equal(migd_device_get_recovery_quirks(hisi),
			 MIGD_RECOVERY_QUIRK_RESET_KEEPS_STATE);

	/* mtty has no plugin: generic, and the operator is told */
	assert_string_equal(migd_plugin_get_name(migd_device_get_plugin(mtty)), "generic");
	assert_true(captured_has("WARNING", "no plugin for driver mtty"));
	assert_true(captured_has("OTHER", "plugin mlx5 (driver mlx5_vfio_pci"));
}

/* removing a module: its devices fall back to the generic plugin, with a warning */
static void
test_removed_module_falls_back(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-plugins-XXXXXX", NULL);
	g_autofree gchar *from = module_path(built_plugin_dir(), "hisi_acc");
	g_autofree gchar *to = module_path(dir, "hisi_acc");
	g_autoptr(MigdPluginManager) manager = migd_plugin_manager_new();
	g_autoptr(MigdDevice) mlx5 = sim_device("mlx5:seed=1");
	g_autoptr(MigdDevice) hisi = sim_device("hisi_acc:seed=2");
	g_autoptr(GError) error = NULL;
	MigdPluginPolicy policy;

	link_module(from, to);
	assert_true(migd_plugin_manager_load_dir(manager, dir, &error));
	assert_null(migd_plugin_manager_find(manager, "mlx5"));
	migd_plugin_manager_assign(manager, mlx5);
	migd_plugin_manager_assign(manager, hisi);
	assert_string_equal(migd_plugin_get_name(migd_device_get_plugin(mlx5)), "generic");
	assert_string_equal(migd_plugin_get_name(migd_device_get_plugin(hisi)), "hisi_acc");
	assert_true(captured_has("WARNING", "no plugin for driver mlx5_vfio_pci"));
	/* the generic rules: the uAPI's choices, no mlx5 read size, no restart */
	migd_plugin_get_policy(migd_device_get_plugin(mlx5), mlx5, &policy);
	assert_int_equal(policy.read_size, 1024 * 1024);
	assert_int_equal(policy.on_tracker_error, MIGD_TRACKER_ERROR_ALL_DIRTY);
	rm_rf(dir);
}

static void
test_bad_abi_refused(void **state)
{
	g_autofree gchar *bad = module_path(PLUGIN_TEST_MODULE_DIR, "bad-abi");
	g_autofree gchar *dir = g_dir_make_tmp("migd-plugins-XXXXXX", NULL);
	g_autofree gchar *from = module_path(built_plugin_dir(), "mlx5");
	g_autofree gchar *to = module_path(dir, "mlx5");
	g_autofree gchar *bad_copy = module_path(dir, "bad-abi");
	g_autoptr(MigdPluginManager) manager = migd_plugin_manager_new();
	g_autoptr(MigdPluginManager) manager2 = migd_plugin_manager_new();
	g_autoptr(GError) error = NULL;

	/* alone: refused with both versions named; its get_type (abort) never runs */
	assert_false(migd_plugin_manager_load_module(manager, bad, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	assert_non_null(strstr(error->message, "plugin ABI version 99"));
	assert_non_null(strstr(error->message, "speaks version 1"));
	assert_null(migd_plugin_manager_find(manager, "bad-abi"));

	/* in a directory: skipped with a warning, the good plugin still loads */
	link_module(bad, bad_copy);
	link_module(from, to);
	g_clear_error(&error);
	assert_true(migd_plugin_manager_load_dir(manager2, dir, &error));
	assert_non_null(migd_plugin_manager_find(manager2, "mlx5"));
	assert_null(migd_plugin_manager_find(manager2, "bad-abi"));
	assert_true(captured_has("WARNING", "plugin ABI version 99"));
	rm_rf(dir);
}

static void
test_not_a_plugin_refused(void **state)
{
	g_autofree gchar *path = module_path(PLUGIN_TEST_MODULE_DIR, "not-a-plugin");
	g_autofree gchar *dup = module_path(built_plugin_dir(), "mlx5");
	g_autoptr(MigdPluginManager) manager = manager_with_built_plugins();
	g_autoptr(GError) error = NULL;

	assert_false(migd_plugin_manager_load_module(manager, path, &error));
	assert_non_null(strstr(error->message, "not a vfio-migd plugin"));
	g_clear_error(&error);
	/* the same plugin twice: the second is refused */
	assert_false(migd_plugin_manager_load_module(manager, dup, &error));
	assert_non_null(strstr(error->message, "already loaded"));
	g_clear_error(&error);
	assert_false(migd_plugin_manager_load_module(manager, "/nonexistent/x.so", &error));
	assert_non_null(strstr(error->message, "cannot load"));
}

/* ---- configuration ---- */

static gboolean
configure_with(const gchar *text, MigdPluginManager **out, GError **error)
{
	g_autoptr(GKeyFile) config = g_key_file_new();
	g_autoptr(MigdPluginManager) manager = migd_plugin_manager_new();

	if (!g_key_file_load_from_data(config, text, -1, G_KEY_FILE_NONE, error))
		return FALSE;
	if (!migd_plugin_manager_load_dir(manager, built_plugin_dir(), error) ||
	    !migd_plugin_manager_configure(manager, config, error))
		return FALSE;
	if (out != NULL)
		*out = g_steal_pointer(&manager);
	return TRUE;
}

static void
test_config_tunables(void **state)
{
	g_autoptr(MigdPluginManager) manager = NULL;
	g_autoptr(MigdDevice) mlx5 = sim_device("mlx5:seed=1");
	g_autoptr(MigdDevice) hisi = sim_device("hisi_acc:seed=2");
	g_autoptr(GError) error = NULL;
	MigdPluginPolicy policy;

	assert_true(configure_with("[plugin mlx5]\nread-size=2M\non-tracker-error=all-dirty\n"
				   "tracker-max-ranges=16\n[plugin hisi_acc]\nread-size=128K\n",
				   &manager, &error));
	migd_plugin_manager_assign(manager, mlx5);
	migd_plugin_manager_assign(manager, hisi);
	migd_plugin_get_policy(migd_device_get_plugin(mlx5), mlx5, &policy);
	assert_int_equal(policy.read_size, 2 * 1024 * 1024);
	assert_int_equal(policy.on_tracker_error, MIGD_TRACKER_ERROR_ALL_DIRTY);
	assert_int_equal(policy.tracker_max_ranges, 16);
	migd_plugin_get_policy(migd_device_get_plugin(hisi), hisi, &policy);
	assert_int_equal(policy.read_size, 128 * 1024);
}

static void
test_config_errors(void **state)
{
	const struct {
		const gchar *text;
		const gchar *expect;
	} cases[] = {
	    {"[plugin mlx5]\nread-sise=2M\n", "unknown key 'read-sise'"},
	    {"[plugin mlx5]\nread-size=2X\n", "not a size"},
	    {"[plugin mlx5]\nread-size=1K\n", "out of range"},
	    {"[plugin mlx5]\ntracker-page-size=12K\n", "not a power of two"},
	    {"[plugin mlx5]\non-tracker-error=panic\n", "expected restart or all-dirty"},
	    {"[plugin mlx5]\nfirmware-match=close\n", "expected ignore, major or exact"},
	    {"[plugin hisi_acc]\ntracker=device\n", "unknown key 'tracker'"},
	    {"[plugin hisi_acc]\nread-size=4K\n", "out of range"},
	    {"[plugin generic]\nread-size=1M\n", "unknown key 'read-size' (known: none)"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		assert_false(configure_with(cases[i].text, NULL, &error));
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		if (strstr(error->message, cases[i].expect) == NULL)
			fail_msg("case %u: '%s' does not say '%s'", i, error->message,
				 cases[i].expect);
		/* the group is named, so the operator finds the line */
		assert_non_null(strstr(error->message, "[plugin "));
	}
}

/* the shipped example, uncommented, is a valid configuration with the defaults */
static void
test_config_example_valid(void **state)
{
	g_autofree gchar *text = NULL;
	g_autoptr(GString) uncommented = g_string_new(NULL);
	g_autoptr(MigdPluginManager) manager = NULL;
	g_autoptr(MigdDevice) mlx5 = sim_device("mlx5:seed=1");
	g_auto(GStrv) lines = NULL;
	g_autoptr(GError) error = NULL;
	MigdPluginPolicy policy;

	assert_true(g_file_get_contents(EXAMPLE_CONFIG, &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		/* "#key" and "#[group]" are settings; "# words" are comments */
		if (lines[i][0] == '#' && lines[i][1] != ' ' && lines[i][1] != '\0')
			g_string_append_printf(uncommented, "%s\n", lines[i] + 1);
	}
	assert_non_null(strstr(uncommented->str, "[plugin mlx5]"));
	if (!configure_with(uncommented->str, &manager, &error))
		fail_msg("%s", error->message);
	migd_plugin_manager_assign(manager, mlx5);
	migd_plugin_get_policy(migd_device_get_plugin(mlx5), mlx5, &policy);
	assert_int_equal(policy.read_size, 4 * 1024 * 1024);
	assert_int_equal(policy.on_tracker_error, MIGD_TRACKER_ERROR_RESTART);
}

static void
test_config_absent_plugin_warns(void **state)
{
	g_autoptr(GError) error = NULL;

	assert_true(configure_with("[plugin pds]\nread-size=1M\n", NULL, &error));
	assert_true(captured_has("WARNING", "[plugin pds]: no such plugin is loaded"));
}

/* ---- mlx5 ---- */

/* descriptor of @src judged by @dst's plugin, through the wire encoding */
static gboolean
judge(MigdDevice *src, MigdDevice *dst, GError **error)
{
	g_autoptr(GVariant) data = migd_plugin_describe(migd_device_get_plugin(src), src, error);
	g_autoptr(GBytes) wire = NULL;
	g_autoptr(GVariant) back = NULL;
	MigdPeerDescriptor peer = {.driver = "mlx5_vfio_pci"};

	assert_non_null(data);
	wire = migd_plugin_data_encode(data, error);
	assert_non_null(wire);
	back = migd_plugin_data_decode(g_bytes_get_data(wire, NULL), g_bytes_get_size(wire), error);
	assert_non_null(back);
	g_variant_lookup(back, "plugin", "&s", &peer.plugin);
	peer.plugin_data = back;
	return migd_plugin_check_peer(migd_device_get_plugin(dst), dst, &peer, error);
}

static void
test_mlx5_firmware_judged(void **state)
{
	g_autofree gchar *root = g_dir_make_tmp("migd-sysfs-XXXXXX", NULL);
	g_autofree gchar *a = fake_mlx5_sysfs(root, "a", "28.39.1002");
	g_autofree gchar *b = fake_mlx5_sysfs(root, "b", "28.40.1000");
	g_autofree gchar *c = fake_mlx5_sysfs(root, "c", "22.36.1010");
	g_autofree gchar *spec_a = g_strdup_printf("mlx5:seed=1,sysfs=%s", a);
	g_autofree gchar *spec_b = g_strdup_printf("mlx5:seed=2,sysfs=%s", b);
	g_autofree gchar *spec_c = g_strdup_printf("mlx5:seed=3,sysfs=%s", c);
	g_autoptr(MigdPluginManager) manager = manager_with_built_plugins();
	g_autoptr(MigdPluginManager) exact = NULL;
	g_autoptr(MigdDevice) dev_a = sim_device(spec_a);
	g_autoptr(MigdDevice) dev_b = sim_device(spec_b);
	g_autoptr(MigdDevice) dev_c = sim_device(spec_c);
	g_autoptr(MigdDevice) dev_none = sim_device("mlx5:seed=4");
	g_autoptr(GVariant) data = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *fw = NULL;

	migd_plugin_manager_assign(manager, dev_a);
	migd_plugin_manager_assign(manager, dev_b);
	migd_plugin_manager_assign(manager, dev_c);
	migd_plugin_manager_assign(manager, dev_none);

	data = migd_plugin_describe(migd_device_get_plugin(dev_a), dev_a, &error);
	assert_true(g_variant_lookup(data, "fw-version", "&s", &fw));
	assert_string_equal(fw, "28.39.1002");

	/* same major: accepted by default */
	assert_true(judge(dev_a, dev_b, &error));
	/* another major: refused, both versions named */
	assert_false(judge(dev_a, dev_c, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE));
	assert_non_null(
	    strstr(error->message, "firmware 28.39.1002 on the source, 22.36.1010 here"));
	g_clear_error(&error);
	/* an unknown firmware on either side is not compared */
	assert_true(judge(dev_none, dev_c, &error));
	assert_true(judge(dev_a, dev_none, &error));

	/* firmware-match=exact refuses a minor difference */
	assert_true(configure_with("[plugin mlx5]\nfirmware-match=exact\n", &exact, &error));
	migd_plugin_manager_assign(exact, dev_b);
	assert_false(judge(dev_a, dev_b, &error));
	assert_non_null(strstr(error->message, "firmware-match=exact"));
	rm_rf(root);
}

/* mlx5 tracker EIO: the plugin restarts tracking, and reports work again */
static void
test_mlx5_tracker_eio_restarts(void **state)
{
	g_autoptr(MigdPluginManager) manager = manager_with_built_plugins();
	g_autoptr(MigdDevice) dev = sim_device("mlx5:seed=1,report_eio=1,dma_pattern=sequential");
	const MigdIovaRange range = {.iova = 0, .length = 1024 * 1024};
	guint64 page_size = 4096;
	guint64 bitmap[4] = {0};
	g_autoptr(GError) error = NULL;
	MigdPluginPolicy policy;

	migd_plugin_manager_assign(manager, dev);
	migd_plugin_get_policy(migd_device_get_plugin(dev), dev, &policy);
	assert_int_equal(policy.on_tracker_error, MIGD_TRACKER_ERROR_RESTART);
	assert_true(migd_device_dma_logging_start(dev, &range, 1, &page_size, &error));
	assert_false(
	    migd_device_dma_logging_report(dev, 0, range.length, page_size, bitmap, &error));
	assert_true(migd_error_matches_errno(error, EIO));
	g_clear_error(&error);

	assert_true(migd_plugin_recover_tracker(migd_device_get_plugin(dev), dev, &range, 1,
						&page_size, &error));
	assert_true(captured_has("OTHER", "DMA logging restarted"));
	assert_true(
	    migd_device_dma_logging_report(dev, 0, range.length, page_size, bitmap, &error));
	assert_true(migd_device_dma_logging_stop(dev, &error));
}

/* the generic rule for the same fault: the tracker is left alone (all dirty) */
static void
test_generic_tracker_eio_all_dirty(void **state)
{
	g_autoptr(MigdPluginManager) manager = migd_plugin_manager_new();
	g_autoptr(MigdDevice) dev = sim_device("mlx5:seed=1,report_eio=1");
	const MigdIovaRange range = {.iova = 0, .length = 1024 * 1024};
	guint64 page_size = 4096;
	guint64 bitmap[4] = {0};
	g_autoptr(GError) error = NULL;

	migd_plugin_manager_assign(manager, dev);
	assert_true(migd_device_dma_logging_start(dev, &range, 1, &page_size, &error));
	assert_true(migd_plugin_recover_tracker(migd_device_get_plugin(dev), dev, &range, 1,
						&page_size, &error));
	/* not restarted: the report still fails, the caller counts every page dirty */
	assert_false(
	    migd_device_dma_logging_report(dev, 0, range.length, page_size, bitmap, &error));
	assert_true(migd_error_matches_errno(error, EIO));
	assert_true(migd_device_dma_logging_stop(dev, NULL));
}

/* ---- hisi_acc ---- */

static void
put_match(guint8 *buf, guint64 magic, guint16 major)
{
	memset(buf, 0, 40);
	memcpy(buf, &magic, 8);
	memcpy(buf + 28, &major, 2);
}

static void
test_hisi_initial_data(void **state)
{
	g_autoptr(MigdPluginManager) manager = manager_with_built_plugins();
	g_autoptr(MigdDevice) dev = sim_device("hisi_acc:seed=1");
	MigdPlugin *plugin;
	guint8 buf[64];
	g_autoptr(GError) error = NULL;

	plugin = migd_plugin_manager_assign(manager, dev);
	put_match(buf, G_GUINT64_CONSTANT(0xAACCFEEDDECADEDE), 1);
	assert_true(migd_plugin_check_initial_data(plugin, dev, buf, 40, &error));
	/* V1 (before 6.4) carries no version */
	put_match(buf, G_GUINT64_CONSTANT(0xCDCDCDCDFEEDAACC), 7);
	assert_true(migd_plugin_check_initial_data(plugin, dev, buf, 40, &error));

	put_match(buf, G_GUINT64_CONSTANT(0xAACCFEEDDECADEDE), 2);
	assert_false(migd_plugin_check_initial_data(plugin, dev, buf, 40, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE));
	assert_non_null(strstr(error->message, "stream format 2.0"));
	g_clear_error(&error);

	put_match(buf, G_GUINT64_CONSTANT(0x1122334455667788), 1);
	assert_false(migd_plugin_check_initial_data(plugin, dev, buf, 40, &error));
	assert_non_null(strstr(error->message, "not a hisi_acc migration stream"));
	g_clear_error(&error);

	assert_false(migd_plugin_check_initial_data(plugin, dev, buf, 12, &error));
	assert_non_null(strstr(error->message, "less than the 40 bytes"));
}

/* ---- whole migrations through the plugins ---- */

static void
assign_all(MigdPluginManager *manager, GPtrArray *devices)
{
	for (guint i = 0; i < devices->len; i++)
		migd_plugin_manager_assign(manager, g_ptr_array_index(devices, i));
}

static void
test_migrate_through_plugins(void **state)
{
	g_autofree gchar *root = g_dir_make_tmp("migd-sysfs-XXXXXX", NULL);
	g_autofree gchar *a = fake_mlx5_sysfs(root, "a", "28.39.1002");
	g_autofree gchar *b = fake_mlx5_sysfs(root, "b", "28.39.1002");
	g_autofree gchar *src0 = g_strdup_printf("mlx5:state_size=16M,seed=1,sysfs=%s", a);
	g_autofree gchar *dst0 = g_strdup_printf("mlx5:seed=11,sysfs=%s", b);
	const gchar *src[] = {src0, "mlx5:state_size=4M,seed=2", "hisi_acc:seed=3", NULL};
	const gchar *dst[] = {dst0, "mlx5:seed=12", "hisi_acc:seed=13", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(MigdPluginManager) manager = manager_with_built_plugins();

	assign_all(manager, fx->src_devices);
	assign_all(manager, fx->dst_devices);
	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 60);
	if (!migd_job_get_success(fx->src_job))
		fail_msg("source: %s", migd_job_get_message(fx->src_job));
	assert_true(migd_job_get_success(fx->dst_job));
	for (guint i = 0; i < fx->src_devices->len; i++) {
		assert_int_equal(engine_fixture_state(fx->dst_devices, i), MIGD_STATE_RUNNING);
		assert_true(engine_fixture_digest(fx->src_devices, i) ==
			    engine_fixture_digest(fx->dst_devices, i));
	}
	/* both ends handled each device with the same plugin: no mismatch warning */
	assert_false(captured_has("WARNING", "the source handled this device with plugin"));
	rm_rf(root);
}

/* the plugin's round cap binds the job: a device that never converges stops after it */
static void
test_migrate_plugin_caps_rounds(void **state)
{
	const gchar *src[] = {"mlx5:state_size=8M,seed=1,dirty_rate=512M,save_rate=64M", NULL};
	const gchar *dst[] = {"mlx5:seed=11", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(MigdPluginManager) manager = NULL;
	g_autoptr(GError) error = NULL;

	assert_true(configure_with("[plugin mlx5]\nmax-precopy-rounds=1\n", &manager, &error));
	assign_all(manager, fx->src_devices);
	assign_all(manager, fx->dst_devices);
	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 60);
	if (!migd_job_get_success(fx->src_job))
		fail_msg("source: %s", migd_job_get_message(fx->src_job));
	assert_int_equal(migd_job_get_precopy_rounds(fx->src_job), 1);
	assert_true(engine_fixture_digest(fx->src_devices, 0) ==
		    engine_fixture_digest(fx->dst_devices, 0));
}

/* the destination's mlx5 plugin refuses other firmware before anything moves */
static void
test_migrate_firmware_mismatch_refused(void **state)
{
	g_autofree gchar *root = g_dir_make_tmp("migd-sysfs-XXXXXX", NULL);
	g_autofree gchar *a = fake_mlx5_sysfs(root, "a", "28.39.1002");
	g_autofree gchar *b = fake_mlx5_sysfs(root, "b", "22.36.1010");
	g_autofree gchar *src0 = g_strdup_printf("mlx5:state_size=4M,seed=1,sysfs=%s", a);
	g_autofree gchar *dst0 = g_strdup_printf("mlx5:seed=11,sysfs=%s", b);
	const gchar *src[] = {src0, "hisi_acc:seed=3", NULL};
	const gchar *dst[] = {dst0, "hisi_acc:seed=13", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(MigdPluginManager) manager = manager_with_built_plugins();

	assign_all(manager, fx->src_devices);
	assign_all(manager, fx->dst_devices);
	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 60);
	assert_false(migd_job_get_success(fx->src_job));
	assert_non_null(strstr(migd_job_get_message(fx->src_job), "firmware 28.39.1002"));
	assert_int_equal(migd_job_get_bytes(fx->src_job), 0);
	assert_int_equal(migd_job_get_downtime_us(fx->src_job), 0);
	for (guint i = 0; i < fx->src_devices->len; i++)
		assert_int_equal(engine_fixture_state(fx->src_devices, i), MIGD_STATE_RUNNING);
	rm_rf(root);
}

/* hisi_acc match data that the destination VF refuses: named, and the source never stopped */
static void
test_migrate_hisi_mismatch_before_stop(void **state)
{
	const gchar *src[] = {"mlx5:state_size=4M,seed=1", "hisi_acc:seed=3,qp_num=64", NULL};
	const gchar *dst[] = {"mlx5:seed=11", "hisi_acc:seed=13,qp_num=32", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(MigdPluginManager) manager = manager_with_built_plugins();
	const gchar *msg;

	assign_all(manager, fx->src_devices);
	assign_all(manager, fx->dst_devices);
	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 60);
	assert_false(migd_job_get_success(fx->src_job));
	msg = migd_job_get_message(fx->src_job);
	if (strstr(msg, "refused the source VF's match data (dev_id") == NULL ||
	    strstr(msg, "qp_num 64") == NULL)
		fail_msg("source job message does not name the match data: %s", msg);
	/* the switchover-ack never came: no device stopped, no downtime */
	assert_int_equal(migd_job_get_downtime_us(fx->src_job), 0);
	for (guint i = 0; i < fx->src_devices->len; i++)
		assert_int_equal(engine_fixture_state(fx->src_devices, i), MIGD_STATE_RUNNING);
	/* the destination device was reset, not left RESUMING */
	assert_int_not_equal(engine_fixture_state(fx->dst_devices, 1), MIGD_STATE_RESUMING);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_load_built_plugins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_assign_by_driver, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_removed_module_falls_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_abi_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_plugin_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_tunables, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_example_valid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_absent_plugin_warns, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mlx5_firmware_judged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mlx5_tracker_eio_restarts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_generic_tracker_eio_all_dirty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hisi_initial_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_through_plugins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_plugin_caps_rounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_firmware_mismatch_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_hisi_mismatch_before_stop, setup,
					    teardown),
	};
	/* once per process (GLib refuses a second writer): every test captures */
	g_log_set_writer_func(capture_writer, NULL, NULL);
	return cmocka_run_group_tests_name("plugins", tests, NULL, NULL);
}
