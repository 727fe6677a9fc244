/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Plugins: the module loader (ABI refusal, duplicates, fallback to the generic
 * plugin), configuration, the generic plugin, and a whole migration through the
 * mlx5 and hisi_acc plugins together. Each plugin's own rules are tested in its
 * folder (plugins/NAME/tests).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <gio/gio.h>
#include <string.h>

#include "engine-test-util.h"
#include "migd-error.h"
#include "migd-test-log.h"
#include "migd-test-plugins.h"
#include "migd-test-util.h"

/* ---- the loader ---- */

static void
test_load_built_plugins(void **state)
{
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
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
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
	g_autoptr(MigdDevice) mlx5 = migd_test_sim_device("mlx5:seed=1", NULL);
	g_autoptr(MigdDevice) hisi = migd_test_sim_device("hisi_acc:seed=2", NULL);
	g_autoptr(MigdDevice) mtty = migd_test_sim_device("mtty:seed=3", NULL);
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
			 MIGD_RECOVERY_QUIRK_RESET_KEEPS_STATE |
			     MIGD_RECOVERY_QUIRK_REOPEN_RESETS_STATE);

	/* mtty has no plugin: generic, and the operator is told */
	assert_string_equal(migd_plugin_get_name(migd_device_get_plugin(mtty)), "generic");
	assert_true(migd_test_log_has(MIGD_TEST_LOG_WARNING, "no plugin for driver mtty", NULL));
	assert_true(
	    migd_test_log_has(MIGD_TEST_LOG_OTHER, "plugin mlx5 (driver mlx5_vfio_pci", NULL));
}

/* removing a module: its devices fall back to the generic plugin, with a warning */
static void
test_removed_module_falls_back(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-plugins-XXXXXX", NULL);
	g_autofree gchar *from = migd_test_plugin_module_built("hisi_acc");
	g_autofree gchar *to = migd_test_plugin_module_path(dir, "hisi_acc");
	g_autoptr(MigdPluginManager) manager = migd_plugin_manager_new();
	g_autoptr(MigdDevice) mlx5 = migd_test_sim_device("mlx5:seed=1", NULL);
	g_autoptr(MigdDevice) hisi = migd_test_sim_device("hisi_acc:seed=2", NULL);
	g_autoptr(GError) error = NULL;
	MigdPluginPolicy policy;

	migd_test_plugin_link_module(from, to);
	assert_true(migd_plugin_manager_load_dir(manager, dir, &error));
	assert_null(migd_plugin_manager_find(manager, "mlx5"));
	migd_plugin_manager_assign(manager, mlx5);
	migd_plugin_manager_assign(manager, hisi);
	assert_string_equal(migd_plugin_get_name(migd_device_get_plugin(mlx5)), "generic");
	assert_string_equal(migd_plugin_get_name(migd_device_get_plugin(hisi)), "hisi_acc");
	assert_true(
	    migd_test_log_has(MIGD_TEST_LOG_WARNING, "no plugin for driver mlx5_vfio_pci", NULL));
	/* the generic rules: the uAPI's choices, no mlx5 read size, no restart */
	migd_plugin_get_policy(migd_device_get_plugin(mlx5), mlx5, &policy);
	assert_int_equal(policy.read_size, 1024 * 1024);
	assert_int_equal(policy.on_tracker_error, MIGD_TRACKER_ERROR_ALL_DIRTY);
	migd_test_rm_rf(dir);
}

/*
 * several directories (the build tree has one per plugin): modules load in the
 * order of their file names, a name in two directories from the first one
 */
static void
test_search_path(void **state)
{
	g_autofree gchar *a = g_dir_make_tmp("migd-plugins-XXXXXX", NULL);
	g_autofree gchar *b = g_dir_make_tmp("migd-plugins-XXXXXX", NULL);
	g_autofree gchar *mlx5 = migd_test_plugin_module_built("mlx5");
	g_autofree gchar *hisi = migd_test_plugin_module_built("hisi_acc");
	g_autofree gchar *mlx5_a = migd_test_plugin_module_path(a, "mlx5");
	g_autofree gchar *mlx5_b = migd_test_plugin_module_path(b, "mlx5");
	g_autofree gchar *hisi_b = migd_test_plugin_module_path(b, "hisi_acc");
	g_autofree gchar *dirs =
	    g_strjoin(G_SEARCHPATH_SEPARATOR_S, a, "", b, "/nonexistent/migd-plugins", NULL);
	g_autoptr(MigdPluginManager) manager = migd_plugin_manager_new();
	g_autoptr(MigdPluginManager) required = migd_plugin_manager_new();
	g_autoptr(GError) error = NULL;
	GPtrArray *plugins;

	migd_test_plugin_link_module(mlx5, mlx5_a);
	migd_test_plugin_link_module(mlx5, mlx5_b);
	migd_test_plugin_link_module(hisi, hisi_b);
	assert_true(migd_plugin_manager_load_dir(manager, dirs, &error));
	plugins = migd_plugin_manager_get_plugins(manager);
	assert_int_equal(plugins->len, 3);
	assert_string_equal(migd_plugin_get_name(g_ptr_array_index(plugins, 0)), "hisi_acc");
	assert_string_equal(migd_plugin_get_name(g_ptr_array_index(plugins, 1)), "mlx5");
	assert_true(migd_test_log_has(MIGD_TEST_LOG_WARNING, mlx5_b, "already loaded", NULL));
	assert_false(migd_test_log_has(MIGD_TEST_LOG_WARNING, mlx5_a, NULL));
	assert_true(migd_test_log_has(MIGD_TEST_LOG_OTHER,
				      "no plugin directory /nonexistent/migd-plugins", NULL));
	/* named by the operator: every entry must exist */
	assert_false(migd_plugin_manager_load_dirs(required, dirs, TRUE, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(
	    strstr(error->message, "plugin directory /nonexistent/migd-plugins does not exist"));
	migd_test_rm_rf(a);
	migd_test_rm_rf(b);
}

static void
test_bad_abi_refused(void **state)
{
	g_autofree gchar *bad = migd_test_plugin_module_path(PLUGIN_TEST_MODULE_DIR, "bad-abi");
	g_autofree gchar *dir = g_dir_make_tmp("migd-plugins-XXXXXX", NULL);
	g_autofree gchar *from = migd_test_plugin_module_built("mlx5");
	g_autofree gchar *to = migd_test_plugin_module_path(dir, "mlx5");
	g_autofree gchar *bad_copy = migd_test_plugin_module_path(dir, "bad-abi");
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
	migd_test_plugin_link_module(bad, bad_copy);
	migd_test_plugin_link_module(from, to);
	g_clear_error(&error);
	assert_true(migd_plugin_manager_load_dir(manager2, dir, &error));
	assert_non_null(migd_plugin_manager_find(manager2, "mlx5"));
	assert_null(migd_plugin_manager_find(manager2, "bad-abi"));
	assert_true(migd_test_log_has(MIGD_TEST_LOG_WARNING, "plugin ABI version 99", NULL));
	migd_test_rm_rf(dir);
}

static void
test_not_a_plugin_refused(void **state)
{
	g_autofree gchar *path =
	    migd_test_plugin_module_path(PLUGIN_TEST_MODULE_DIR, "not-a-plugin");
	g_autofree gchar *dup = migd_test_plugin_module_built("mlx5");
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
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

static void
test_config_tunables(void **state)
{
	g_autoptr(MigdPluginManager) manager = NULL;
	g_autoptr(MigdDevice) mlx5 = migd_test_sim_device("mlx5:seed=1", NULL);
	g_autoptr(MigdDevice) hisi = migd_test_sim_device("hisi_acc:seed=2", NULL);
	g_autoptr(GError) error = NULL;
	MigdPluginPolicy policy;

	g_autoptr(MigdPluginManager) tera = NULL;

	/* the T suffix the documentation allows: parsed, then refused as out of range */
	assert_false(migd_test_plugins_load("[plugin mlx5]\nread-size=1T\n", &tera, &error));
	assert_non_null(strstr(error->message, "read-size=1T: out of range"));
	g_clear_error(&error);
	assert_true(
	    migd_test_plugins_load("[plugin mlx5]\nread-size=2M\non-tracker-error=all-dirty\n"
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
count_log_message(const gchar *log_domain, GLogLevelFlags log_level, const gchar *message,
		  gpointer user_data)
{
	(*(guint *)user_data)++;
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
	    {"[plugin mlx5]\nread-size=-1\n", "read-size=-1: not a size (expected digits"},
	    /* a count is not a size: say what is expected */
	    {"[plugin mlx5]\nmax-precopy-rounds=-1\n",
	     "max-precopy-rounds=-1: expected a whole number from 0 to 1000"},
	    {"[plugin mlx5]\ntracker-max-ranges=4K\n",
	     "tracker-max-ranges=4K: expected a whole number from 0 to 256"},
	    {"[plugin mlx5]\ntracker-page-size=12K\n", "not a power of two"},
	    {"[plugin mlx5]\non-tracker-error=panic\n", "expected restart or all-dirty"},
	    {"[plugin mlx5]\nfirmware-match=close\n", "expected ignore, major or exact"},
	    {"[plugin hisi_acc]\ntracker=device\n", "unknown key 'tracker'"},
	    {"[plugin hisi_acc]\nread-size=4K\n", "out of range"},
	    {"[plugin generic]\nread-size=1M\n", "unknown key 'read-size' (known: none)"},
	    /* GLib returns a value and an error for a bad escape (found by fuzz-config) */
	    {"[plugin mlx5]\nread-size=2\\jM\n", "read-size: "},
	    {"[plugin mlx5]\non-tracker-error=re\\qstart\n", "on-tracker-error: "},
	    {"[plugin mlx5]\nfirmware-match=\\major\n", "firmware-match: "},
	    /* GLib sets its "escape at end of line" error over an earlier one */
	    {"[plugin mlx5]\nread-size=\\j1M\\\n", "read-size: an escape character ends"},
	};
	guint glib_warnings = 0;
	guint handler =
	    g_log_set_handler("GLib", G_LOG_LEVEL_WARNING, count_log_message, &glib_warnings);

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		assert_false(migd_test_plugins_load(cases[i].text, NULL, &error));
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		if (strstr(error->message, cases[i].expect) == NULL)
			fail_msg("case %u: '%s' does not say '%s'", i, error->message,
				 cases[i].expect);
		/* the group is named, so the operator finds the line */
		assert_non_null(strstr(error->message, "[plugin "));
	}
	/* no error was set over another */
	g_log_remove_handler("GLib", handler);
	assert_int_equal(glib_warnings, 0);
}

/* the shipped example, uncommented, is a valid configuration with the defaults */
static void
test_config_example_valid(void **state)
{
	g_autofree gchar *text = NULL;
	g_autoptr(GString) uncommented = g_string_new(NULL);
	g_autoptr(MigdPluginManager) manager = NULL;
	g_autoptr(MigdDevice) mlx5 = migd_test_sim_device("mlx5:seed=1", NULL);
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
	if (!migd_test_plugins_load(uncommented->str, &manager, &error))
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

	assert_true(migd_test_plugins_load("[plugin pds]\nread-size=1M\n", NULL, &error));
	assert_true(migd_test_log_has(MIGD_TEST_LOG_WARNING,
				      "[plugin pds]: no such plugin is loaded", NULL));
}

/* ---- the generic plugin ---- */

/* the generic rule for the same fault: the tracker is left alone (all dirty) */
static void
test_generic_tracker_eio_all_dirty(void **state)
{
	g_autoptr(MigdPluginManager) manager = migd_plugin_manager_new();
	g_autoptr(MigdDevice) dev = migd_test_sim_device("mlx5:seed=1,report_eio=1", NULL);
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

/* ---- a whole migration through both plugins ---- */

static void
test_migrate_through_plugins(void **state)
{
	g_autofree gchar *root = g_dir_make_tmp("migd-sysfs-XXXXXX", NULL);
	g_autofree gchar *a = migd_test_mlx5_sysfs(root, "a", "28.39.1002");
	g_autofree gchar *b = migd_test_mlx5_sysfs(root, "b", "28.39.1002");
	g_autofree gchar *src0 = g_strdup_printf("mlx5:state_size=16M,seed=1,sysfs=%s", a);
	g_autofree gchar *dst0 = g_strdup_printf("mlx5:seed=11,sysfs=%s", b);
	const gchar *src[] = {src0, "mlx5:state_size=4M,seed=2", "hisi_acc:seed=3", NULL};
	const gchar *dst[] = {dst0, "mlx5:seed=12", "hisi_acc:seed=13", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);

	migd_test_plugins_assign_all(manager, fx->src_devices);
	migd_test_plugins_assign_all(manager, fx->dst_devices);
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
	assert_false(migd_test_log_has(MIGD_TEST_LOG_WARNING,
				       "the source handled this device with plugin", NULL));
	migd_test_rm_rf(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    migd_test_log_unit_test(test_load_built_plugins),
	    migd_test_log_unit_test(test_assign_by_driver),
	    migd_test_log_unit_test(test_removed_module_falls_back),
	    migd_test_log_unit_test(test_search_path),
	    migd_test_log_unit_test(test_bad_abi_refused),
	    migd_test_log_unit_test(test_not_a_plugin_refused),
	    migd_test_log_unit_test(test_config_tunables),
	    migd_test_log_unit_test(test_config_errors),
	    migd_test_log_unit_test(test_config_example_valid),
	    migd_test_log_unit_test(test_config_absent_plugin_warns),
	    migd_test_log_unit_test(test_generic_tracker_eio_all_dirty),
	    migd_test_log_unit_test(test_migrate_through_plugins),
	};
	/* once per process (GLib refuses a second writer): every test captures */
	migd_test_log_init(MIGD_TEST_LOG_QUIET);
	return cmocka_run_group_tests_name("plugins", tests, NULL, NULL);
}
