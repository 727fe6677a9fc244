/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The mlx5 plugin against the simulator: the firmware version in the descriptor
 * and its check, the restart of DMA logging after a tracker error, and its
 * rules inside whole migrations between two engines. Only this plugin is
 * loaded; devices of other drivers get the generic plugin.
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
	g_autofree gchar *a = migd_test_mlx5_sysfs(root, "a", "28.39.1002");
	g_autofree gchar *b = migd_test_mlx5_sysfs(root, "b", "28.40.1000");
	g_autofree gchar *c = migd_test_mlx5_sysfs(root, "c", "22.36.1010");
	g_autofree gchar *spec_a = g_strdup_printf("mlx5:seed=1,sysfs=%s", a);
	g_autofree gchar *spec_b = g_strdup_printf("mlx5:seed=2,sysfs=%s", b);
	g_autofree gchar *spec_c = g_strdup_printf("mlx5:seed=3,sysfs=%s", c);
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
	g_autoptr(MigdPluginManager) exact = NULL;
	g_autoptr(MigdDevice) dev_a = migd_test_sim_device(spec_a, NULL);
	g_autoptr(MigdDevice) dev_b = migd_test_sim_device(spec_b, NULL);
	g_autoptr(MigdDevice) dev_c = migd_test_sim_device(spec_c, NULL);
	g_autoptr(MigdDevice) dev_none = migd_test_sim_device("mlx5:seed=4", NULL);
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
	assert_true(
	    migd_test_plugins_load("[plugin mlx5]\nfirmware-match=exact\n", &exact, &error));
	migd_plugin_manager_assign(exact, dev_b);
	assert_false(judge(dev_a, dev_b, &error));
	assert_non_null(strstr(error->message, "firmware-match=exact"));
	migd_test_rm_rf(root);
}

/* mlx5 tracker EIO: the plugin restarts tracking, and reports work again */
static void
test_mlx5_tracker_eio_restarts(void **state)
{
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
	g_autoptr(MigdDevice) dev =
	    migd_test_sim_device("mlx5:seed=1,report_eio=1,dma_pattern=sequential", NULL);
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
	assert_true(migd_test_log_has(MIGD_TEST_LOG_OTHER, "DMA logging restarted", NULL));
	assert_true(
	    migd_device_dma_logging_report(dev, 0, range.length, page_size, bitmap, &error));
	assert_true(migd_device_dma_logging_stop(dev, &error));
}

/* ---- whole migrations ---- */

/* the plugin's round cap binds the job: a device that never converges stops after it */
static void
test_migrate_plugin_caps_rounds(void **state)
{
	const gchar *src[] = {"mlx5:state_size=8M,seed=1,dirty_rate=512M,save_rate=64M", NULL};
	const gchar *dst[] = {"mlx5:seed=11", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(MigdPluginManager) manager = NULL;
	g_autoptr(GError) error = NULL;

	assert_true(
	    migd_test_plugins_load("[plugin mlx5]\nmax-precopy-rounds=1\n", &manager, &error));
	migd_test_plugins_assign_all(manager, fx->src_devices);
	migd_test_plugins_assign_all(manager, fx->dst_devices);
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
	g_autofree gchar *a = migd_test_mlx5_sysfs(root, "a", "28.39.1002");
	g_autofree gchar *b = migd_test_mlx5_sysfs(root, "b", "22.36.1010");
	g_autofree gchar *src0 = g_strdup_printf("mlx5:state_size=4M,seed=1,sysfs=%s", a);
	g_autofree gchar *dst0 = g_strdup_printf("mlx5:seed=11,sysfs=%s", b);
	const gchar *src[] = {src0, "hisi_acc:seed=3", NULL};
	const gchar *dst[] = {dst0, "hisi_acc:seed=13", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);

	migd_test_plugins_assign_all(manager, fx->src_devices);
	migd_test_plugins_assign_all(manager, fx->dst_devices);
	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 60);
	assert_false(migd_job_get_success(fx->src_job));
	assert_non_null(strstr(migd_job_get_message(fx->src_job), "firmware 28.39.1002"));
	assert_int_equal(migd_job_get_bytes(fx->src_job), 0);
	assert_int_equal(migd_job_get_downtime_us(fx->src_job), 0);
	for (guint i = 0; i < fx->src_devices->len; i++)
		assert_int_equal(engine_fixture_state(fx->src_devices, i), MIGD_STATE_RUNNING);
	migd_test_rm_rf(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    migd_test_log_unit_test(test_mlx5_firmware_judged),
	    migd_test_log_unit_test(test_mlx5_tracker_eio_restarts),
	    migd_test_log_unit_test(test_migrate_plugin_caps_rounds),
	    migd_test_log_unit_test(test_migrate_firmware_mismatch_refused),
	};
	/* once per process (GLib refuses a second writer): every test captures */
	migd_test_log_init(MIGD_TEST_LOG_QUIET);
	return cmocka_run_group_tests_name("plugin-mlx5", tests, NULL, NULL);
}
