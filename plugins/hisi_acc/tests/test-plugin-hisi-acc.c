/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The hisi_acc plugin against the simulator: the match data checked before the
 * device sees it, and refused inside a whole migration before the source stops.
 * Only this plugin is loaded; devices of other drivers get the generic plugin.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <string.h>

#include "engine-test-util.h"
#include "migd-error.h"
#include "migd-test-log.h"
#include "migd-test-plugins.h"

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
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
	g_autoptr(MigdDevice) dev = migd_test_sim_device("hisi_acc:seed=1", NULL);
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

/* ---- a whole migration ---- */

/* hisi_acc match data that the destination VF refuses: named, and the source never stopped */
static void
test_migrate_hisi_mismatch_before_stop(void **state)
{
	const gchar *src[] = {"mlx5:state_size=4M,seed=1", "hisi_acc:seed=3,qp_num=64", NULL};
	const gchar *dst[] = {"mlx5:seed=11", "hisi_acc:seed=13,qp_num=32", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(MigdPluginManager) manager = migd_test_plugins_new(NULL);
	const gchar *msg;

	migd_test_plugins_assign_all(manager, fx->src_devices);
	migd_test_plugins_assign_all(manager, fx->dst_devices);
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
	    migd_test_log_unit_test(test_hisi_initial_data),
	    migd_test_log_unit_test(test_migrate_hisi_mismatch_before_stop),
	};
	/* once per process (GLib refuses a second writer): every test captures */
	migd_test_log_init(MIGD_TEST_LOG_QUIET);
	return cmocka_run_group_tests_name("plugin-hisi-acc", tests, NULL, NULL);
}
