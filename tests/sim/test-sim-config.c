/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The simulator's knobs: spec strings, key files, and every kind of bad input.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "migd-error.h"
#include "migd-sim-config.h"
#include "migd-sim-device.h"

static void
test_full_spec(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdSimConfig) cfg = migd_sim_config_new_from_string(
	    "mlx5:state_size=64M,seed=7,save_rate=1G,load_rate=1G,dirty_rate=8M,"
	    "dma_pattern=hotspot:10,fail_arc=STOP->STOP_COPY,fail_errno=EIO,fail_to_error=1,"
	    "report_eio=1,short_reads=1,dma_rate=2M,fail_count=3",
	    &error);

	if (cfg == NULL)
		fail_msg("%s", error->message);
	assert_string_equal(cfg->profile->name, "mlx5");
	assert_int_equal(cfg->state_size, 64 * 1024 * 1024);
	assert_int_equal(cfg->seed, 7);
	assert_int_equal(cfg->save_rate, 1ull << 30);
	assert_int_equal(cfg->load_rate, 1ull << 30);
	assert_int_equal(cfg->dirty_rate, 8 * 1024 * 1024);
	assert_int_equal(cfg->dma_rate, 2 * 1024 * 1024);
	assert_int_equal(cfg->dma_pattern.kind, MIGD_SIM_DMA_PATTERN_HOTSPOT);
	assert_int_equal(cfg->dma_pattern.hotspot_percent, 10);
	assert_true(cfg->fail_arc_set);
	assert_int_equal(cfg->fail_from, MIGD_STATE_STOP);
	assert_int_equal(cfg->fail_to, MIGD_STATE_STOP_COPY);
	assert_int_equal(cfg->fail_errno, EIO);
	assert_true(cfg->fail_to_error);
	assert_int_equal(cfg->fail_count, 3);
	assert_true(cfg->report_eio);
	assert_true(cfg->short_reads);
	/* the platform IOMMU tracks dirty pages unless told otherwise */
	assert_true(cfg->iommu_dirty);
}

/* every profile DMA-writes guest memory and sits behind an IOMMU: the same knobs */
static void
test_dma_and_iommu_knobs(void **state)
{
	const gchar *profiles[] = {"mlx5", "hisi_acc", "mtty", "pds"};

	for (guint i = 0; i < G_N_ELEMENTS(profiles); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *spec = g_strdup_printf(
		    "%s:dma_pattern=sequential,dma_rate=1M,iommu_dirty=0", profiles[i]);
		g_autoptr(MigdSimConfig) cfg = migd_sim_config_new_from_string(spec, &error);

		if (cfg == NULL)
			fail_msg("%s: %s", spec, error->message);
		assert_int_equal(cfg->dma_pattern.kind, MIGD_SIM_DMA_PATTERN_SEQUENTIAL);
		assert_int_equal(cfg->dma_rate, 1024 * 1024);
		assert_false(cfg->iommu_dirty);
	}
}

static void
test_defaults(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdSimConfig) mtty = migd_sim_config_new_from_string("mtty", &error);
	g_autoptr(MigdSimConfig) mtty1 = migd_sim_config_new_from_string("mtty:ports=1", &error);
	g_autoptr(MigdSimConfig) hisi = migd_sim_config_new_from_string(
	    "hisi_acc:dev_id=0xa256,qp_num=4,que_iso_cfg=1", &error);
	g_autoptr(MigdSimConfig) pds = migd_sim_config_new("pds", &error);

	assert_int_equal(mtty->state_size, 96);
	assert_int_equal(mtty1->state_size, 60);
	assert_int_equal(hisi->state_size, 176);
	assert_int_equal(hisi->hisi_dev_id, 0xa256);
	assert_int_equal(hisi->hisi_qp_num, 4);
	assert_int_equal(hisi->hisi_que_iso_cfg, 1);
	assert_int_equal(pds->state_size, 65536);
	assert_int_equal(mtty->save_rate, 0);
}

static void
test_sizes(void **state)
{
	g_autoptr(GError) error = NULL;
	guint64 v = 0;

	assert_true(migd_sim_parse_size("0", &v, &error));
	assert_int_equal(v, 0);
	assert_true(migd_sim_parse_size("4K", &v, &error));
	assert_int_equal(v, 4096);
	assert_true(migd_sim_parse_size("3m", &v, &error));
	assert_int_equal(v, 3 * 1024 * 1024);
	assert_true(migd_sim_parse_size("2G", &v, &error));
	assert_int_equal(v, 2ull << 30);
	assert_true(migd_sim_parse_size("1T", &v, &error));
	assert_int_equal(v, 1ull << 40);
	assert_false(migd_sim_parse_size("", &v, &error));
	g_clear_error(&error);
	assert_false(migd_sim_parse_size("-1", &v, &error));
	g_clear_error(&error);
	assert_false(migd_sim_parse_size("12Q", &v, &error));
	g_clear_error(&error);
	assert_false(migd_sim_parse_size("1KB", &v, &error));
	g_clear_error(&error);
	assert_false(migd_sim_parse_size("99999999999999999999", &v, &error));
	g_clear_error(&error);
	assert_false(migd_sim_parse_size("17179869184G", &v, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
}

/* @spec fails with MIGD_ERROR_INVALID_ARGUMENT and a message containing @needle */
static void
assert_spec_error(const gchar *spec, const gchar *needle)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdSimConfig) cfg = migd_sim_config_new_from_string(spec, &error);

	assert_null(cfg);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	if (strstr(error->message, needle) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", spec, error->message, needle);
}

/* state_size: 4K..16G, the bound a large device needs and a digest can cover */
static void
test_state_size_bounds(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdSimConfig) max =
	    migd_sim_config_new_from_string("mlx5:state_size=16G", &error);

	assert_non_null(max);
	assert_int_equal(max->state_size, 16ull << 30);
	assert_spec_error("mlx5:state_size=1T", "1T is out of range (allowed: 4K..16G)");
	assert_spec_error("mlx5:state_size=16385M", "out of range (allowed: 4K..16G)");
	assert_spec_error("mlx5:state_size=4095", "out of range (allowed: 4K..16G)");
}

/* a persist file that is a FIFO or a device: ignored at once, never waited on */
static void
test_persist_not_a_file(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-sim-XXXXXX", NULL);
	g_autofree gchar *fifo = g_build_filename(dir, "state", NULL);
	g_autofree gchar *spec = g_strdup_printf("mtty:persist=%s", fifo);
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdSimDevice) dev = NULL;
	g_autoptr(MigdSimDevice) zero = NULL;
	MigdState s = MIGD_STATE_ERROR;

	assert_int_equal(mkfifo(fifo, 0600), 0);
	dev = migd_sim_device_new_from_string(spec, &error);
	assert_non_null(dev);
	assert_true(migd_device_get_state(MIGD_DEVICE(dev), &s, &error));
	assert_int_equal(s, MIGD_STATE_RUNNING);
	zero = migd_sim_device_new_from_string("mtty:persist=/dev/zero", &error);
	assert_non_null(zero);
	g_unlink(fifo);
	g_rmdir(dir);
}

static void
test_bad_specs(void **state)
{
	assert_spec_error("virtio", "mlx5, hisi_acc, mtty, pds");
	assert_spec_error("", "unknown simulator profile");
	assert_spec_error("mlx5:colour=blue", "colour");
	assert_spec_error("mlx5:colour=blue", "state_size");
	assert_spec_error("mlx5:seed=x", "seed");
	assert_spec_error("mlx5:state_size=lots", "state_size");
	assert_spec_error("mlx5:state_size=1", "4K..16G");
	assert_spec_error("mlx5:ports=2", "ports");
	assert_spec_error("hisi_acc:state_size=1M", "does not apply");
	assert_spec_error("mtty:ports=3", "1, 2");
	assert_spec_error("mtty:report_eio=1", "report_eio");
	assert_spec_error("mlx5:iommu_dirty=maybe", "iommu_dirty");
	assert_spec_error("hisi_acc:report_eio=1", "report_eio");
	assert_spec_error("pds:dirty_rate=1M", "dirty_rate");
	assert_spec_error("mlx5:fail_arc=STOP->RUNNING", "not a real arc");
	assert_spec_error("pds:fail_arc=RUNNING->PRE_COPY", "not a real arc");
	assert_spec_error("mlx5:fail_arc=STOP_COPY->PRE_COPY", "not a real arc");
	assert_spec_error("mlx5:fail_arc=STOP", "FROM->TO");
	assert_spec_error("mlx5:fail_arc=STOP->BANANA", "FROM->TO");
	assert_spec_error("mlx5:fail_errno=EWHATEVER", "fail_errno");
	assert_spec_error("mlx5:fail_errno=0", "EIO");
	assert_spec_error("mlx5:fail_to_error=maybe", "fail_to_error");
	assert_spec_error("mlx5:dma_pattern=hotspot:0", "dma_pattern");
	assert_spec_error("mlx5:seed", "key=value");
	assert_spec_error("mlx5:seed=1,,", "key=value");
	assert_spec_error("hisi_acc:dev_id=0xZZ", "dev_id");
	assert_spec_error("hisi_acc:qp_num=4294967296", "qp_num");
}

static void
test_real_arcs(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdSimConfig) hisi =
	    migd_sim_config_new_from_string("hisi_acc:fail_arc=PRE_COPY->STOP_COPY", &error);
	g_autoptr(MigdSimConfig) hisi2 =
	    migd_sim_config_new_from_string("hisi_acc:fail_arc=STOP->RUNNING", &error);
	g_autoptr(MigdSimConfig) mtty =
	    migd_sim_config_new_from_string("mtty:fail_arc=PRE_COPY_P2P->STOP_COPY", &error);

	assert_non_null(hisi);
	assert_non_null(hisi2);
	assert_non_null(mtty);
	/* without P2P, PRE_COPY -> STOP_COPY is one arc; with it, it is not */
	assert_spec_error("mtty:fail_arc=PRE_COPY->STOP_COPY", "not a real arc");
	assert_spec_error("mtty:fail_arc=STOP->RUNNING", "not a real arc");
}

static void
test_keyfile(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(MigdSimConfig) cfg = NULL;
	g_autoptr(MigdSimConfig) bad = NULL;
	g_autoptr(MigdSimConfig) none = NULL;
	g_autoptr(MigdSimDevice) dev = NULL;
	const gchar *data = "[sim]\nprofile=mtty\nports=1\nseed=42\nsave_rate=1M\n"
			    "[bad]\nprofile=pds\nports=1\n"
			    "[noprofile]\nseed=1\n";

	assert_true(g_key_file_load_from_data(kf, data, -1, G_KEY_FILE_NONE, &error));
	cfg = migd_sim_config_new_from_keyfile(kf, "sim", &error);
	assert_non_null(cfg);
	assert_int_equal(cfg->ports, 1);
	assert_int_equal(cfg->seed, 42);
	assert_int_equal(cfg->save_rate, 1024 * 1024);
	dev = migd_sim_device_new(cfg, &error);
	assert_non_null(dev);
	assert_int_equal(migd_sim_device_get_state_size(dev), 60);

	bad = migd_sim_config_new_from_keyfile(kf, "bad", &error);
	assert_null(bad);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "[bad]"));
	assert_non_null(strstr(error->message, "ports"));
	g_clear_error(&error);
	none = migd_sim_config_new_from_keyfile(kf, "noprofile", &error);
	assert_null(none);
	assert_non_null(strstr(error->message, "profile"));
	g_clear_error(&error);

	/* a bad escape: GLib returns a value and an error, and only its error counts (found by
	 * fuzz-config: the knob's own error was set over it) */
	assert_true(g_key_file_load_from_data(kf, "[escape]\nprofile=mtty\nports=\\j1\n", -1,
					      G_KEY_FILE_NONE, &error));
	assert_null(migd_sim_config_new_from_keyfile(kf, "escape", &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "ports: "));
}

static void
test_set_and_copy(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdSimConfig) cfg = migd_sim_config_new("pds", &error);
	g_autoptr(MigdSimConfig) copy = NULL;

	assert_true(migd_sim_config_set(cfg, "fail_errno", "22", &error));
	assert_int_equal(cfg->fail_errno, EINVAL);
	assert_false(migd_sim_config_set(cfg, "fail_errno", NULL, &error));
	g_clear_error(&error);
	assert_false(migd_sim_config_set(cfg, NULL, "1", &error));
	g_clear_error(&error);
	copy = migd_sim_config_copy(cfg);
	assert_int_equal(copy->fail_errno, EINVAL);
	assert_ptr_equal(copy->profile, cfg->profile);
	assert_null(migd_sim_config_new(NULL, &error));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_spec),	      cmocka_unit_test(test_dma_and_iommu_knobs),
	    cmocka_unit_test(test_defaults),	      cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_bad_specs),	      cmocka_unit_test(test_real_arcs),
	    cmocka_unit_test(test_keyfile),	      cmocka_unit_test(test_set_and_copy),
	    cmocka_unit_test(test_state_size_bounds), cmocka_unit_test(test_persist_not_a_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
