/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The mlx5 plugin: rules of mlx5_vfio_pci (drivers/vfio/pci/mlx5), the
 * ConnectX VF variant driver. See README.md beside this file for what it
 * handles and since which kernel.
 */
#include "config.h"

#include <gmodule.h>
#include <string.h>

#include "migd-error.h"
#include "migd-plugin.h"

#define MLX5_DRIVER	     "mlx5_vfio_pci"
#define MLX5_PCI_VENDOR	     0x15b3
#define MLX5_READ_SIZE	     (4u * 1024 * 1024) /* half of the driver's 8 MiB save chunk */
#define MLX5_TRACKER_PAGE    4096u
#define MLX5_FW_VERSION_PATH "fw_ver"

/* firmware versions are "major.minor.sub" (e.g. 28.39.1002) */
typedef enum {
	MLX5_FW_MATCH_IGNORE,
	MLX5_FW_MATCH_MAJOR,
	MLX5_FW_MATCH_EXACT,
} Mlx5FwMatch;

struct _MigdPluginMlx5 {
	MigdPlugin parent_instance;
	guint64 read_size;
	guint64 max_precopy_rounds;
	guint64 tracker_max_ranges;
	guint64 tracker_page_size;
	MigdTrackerErrorAction on_tracker_error;
	Mlx5FwMatch fw_match;
};

#define MIGD_TYPE_PLUGIN_MLX5 (migd_plugin_mlx5_get_type())
G_DECLARE_FINAL_TYPE(MigdPluginMlx5, migd_plugin_mlx5, MIGD, PLUGIN_MLX5, MigdPlugin)
G_DEFINE_TYPE(MigdPluginMlx5, migd_plugin_mlx5, MIGD_TYPE_PLUGIN)

/* ConnectX VF device ids the driver is known to migrate (mlx5_vfio_pci_table is generic) */
static const guint16 mlx5_vf_device_ids[] = {
    0x101e, /* ConnectX family mlx5Gen Virtual Function (CX-6 Dx, CX-7, BlueField-2/3) */
};

static guint
migd_plugin_mlx5_match(MigdPlugin *plugin, MigdDevice *device, const MigdDeviceIdentity *identity)
{
	if (g_strcmp0(identity->driver, MLX5_DRIVER) == 0)
		return MIGD_PLUGIN_SCORE_DRIVER;
	/* a known VF whose driver cannot be read (e.g. a passed-in fd) */
	if (identity->vendor_id == MLX5_PCI_VENDOR && g_strcmp0(identity->driver, "unknown") == 0) {
		for (guint i = 0; i < G_N_ELEMENTS(mlx5_vf_device_ids); i++) {
			if (identity->device_id == mlx5_vf_device_ids[i])
				return MIGD_PLUGIN_SCORE_DRIVER / 2;
		}
	}
	return MIGD_PLUGIN_SCORE_NONE;
}

static gboolean
migd_plugin_mlx5_configure(MigdPlugin *plugin, GKeyFile *config, const gchar *group, GError **error)
{
	MigdPluginMlx5 *self = MIGD_PLUGIN_MLX5(plugin);
	const gchar *const known[] = {"read-size",
				      "max-precopy-rounds",
				      "tracker-max-ranges",
				      "tracker-page-size",
				      "on-tracker-error",
				      "firmware-match",
				      NULL};
	g_autofree gchar *action = NULL;
	g_autofree gchar *fw = NULL;

	if (!migd_plugin_config_check_keys(config, group, known, error) ||
	    !migd_plugin_config_get_size(config, group, "read-size", 64 * 1024, 8 * 1024 * 1024,
					 &self->read_size, error) ||
	    !migd_plugin_config_get_uint(config, group, "max-precopy-rounds", 0, 1000,
					 &self->max_precopy_rounds, error) ||
	    /* 256: the vfio core's LOG_MAX_RANGES */
	    !migd_plugin_config_get_uint(config, group, "tracker-max-ranges", 0, 256,
					 &self->tracker_max_ranges, error) ||
	    !migd_plugin_config_get_size(config, group, "tracker-page-size", 4096, 1ull << 30,
					 &self->tracker_page_size, error))
		return FALSE;
	if ((self->tracker_page_size & (self->tracker_page_size - 1)) != 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "tracker-page-size=%" G_GUINT64_FORMAT ": not a power of two",
			    self->tracker_page_size);
		return FALSE;
	}
	if (config != NULL && g_key_file_has_key(config, group, "on-tracker-error", NULL)) {
		action = migd_plugin_config_get_string(config, group, "on-tracker-error", error);
		if (action == NULL)
			return FALSE;
		if (g_strcmp0(action, "restart") == 0) {
			self->on_tracker_error = MIGD_TRACKER_ERROR_RESTART;
		} else if (g_strcmp0(action, "all-dirty") == 0) {
			self->on_tracker_error = MIGD_TRACKER_ERROR_ALL_DIRTY;
		} else {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "on-tracker-error=%s: expected restart or all-dirty", action);
			return FALSE;
		}
	}
	if (config != NULL && g_key_file_has_key(config, group, "firmware-match", NULL)) {
		fw = migd_plugin_config_get_string(config, group, "firmware-match", error);
		if (fw == NULL)
			return FALSE;
		if (g_strcmp0(fw, "ignore") == 0) {
			self->fw_match = MLX5_FW_MATCH_IGNORE;
		} else if (g_strcmp0(fw, "major") == 0) {
			self->fw_match = MLX5_FW_MATCH_MAJOR;
		} else if (g_strcmp0(fw, "exact") == 0) {
			self->fw_match = MLX5_FW_MATCH_EXACT;
		} else {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "firmware-match=%s: expected ignore, major or exact", fw);
			return FALSE;
		}
	}
	return TRUE;
}

static void
migd_plugin_mlx5_get_policy(MigdPlugin *plugin, MigdDevice *device, MigdPluginPolicy *policy)
{
	MigdPluginMlx5 *self = MIGD_PLUGIN_MLX5(plugin);
	const MigdDeviceFeatures *features = migd_device_get_features(device);

	/*
	 * Large reads: with chunk mode (6.7+) the driver saves stop-copy state in
	 * chunks of up to 8 MiB; a read never spans two, so 4 MiB halves the syscalls
	 * of the generic 1 MiB without holding a whole chunk per buffer.
	 */
	policy->read_size = self->read_size;
	policy->max_precopy_rounds = (guint)self->max_precopy_rounds;
	/* the device's own page tracker when the firmware offers it, else the IOMMU */
	policy->tracker = features != NULL && features->dma_logging ? MIGD_DIRTY_TRACKER_DEVICE
								    : MIGD_DIRTY_TRACKER_IOMMU;
	/* the driver combines ranges beyond the firmware's limit itself (6.6+): 0 = let it */
	policy->tracker_max_ranges = (guint)self->tracker_max_ranges;
	policy->tracker_page_size = self->tracker_page_size;
	/*
	 * A tracker error (REPORT -> EIO: the firmware tracker hit an error and
	 * mlx5vf_tracker_read_and_clear fails until it is restarted) is cured by
	 * STOP + START; the pages of the failed round count as dirty.
	 */
	policy->on_tracker_error = self->on_tracker_error;
}

/* the firmware version of the PF behind this VF, as mlx5_ib shows it in sysfs */
static gchar *
migd_plugin_mlx5_read_fw_version(MigdDevice *device)
{
	const gchar *sysfs = migd_device_get_sysfs_path(device);
	g_autofree gchar *ib_dir = NULL;
	g_autoptr(GDir) dir = NULL;
	const gchar *name;

	if (sysfs == NULL)
		return NULL;
	/* a VF's own directory has no infiniband/; its physfn (the PF) has */
	ib_dir = g_build_filename(sysfs, "physfn", "infiniband", NULL);
	dir = g_dir_open(ib_dir, 0, NULL);
	if (dir == NULL) {
		g_free(ib_dir);
		ib_dir = g_build_filename(sysfs, "infiniband", NULL);
		dir = g_dir_open(ib_dir, 0, NULL);
	}
	if (dir == NULL)
		return NULL;
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(ib_dir, name, MLX5_FW_VERSION_PATH, NULL);
		gchar *contents = NULL;
		if (g_file_get_contents(path, &contents, NULL, NULL))
			return g_strstrip(contents);
	}
	return NULL;
}

static gboolean
migd_plugin_mlx5_describe(MigdPlugin *plugin, MigdDevice *device, GVariantDict *data,
			  GError **error)
{
	g_autofree gchar *fw = migd_plugin_mlx5_read_fw_version(device);
	if (fw != NULL)
		g_variant_dict_insert(data, "fw-version", "s", fw);
	return TRUE;
}

static gboolean
migd_plugin_mlx5_fw_compatible(Mlx5FwMatch match, const gchar *ours, const gchar *theirs)
{
	const gchar *dot_ours = strchr(ours, '.');
	const gchar *dot_theirs = strchr(theirs, '.');

	if (match == MLX5_FW_MATCH_EXACT)
		return g_strcmp0(ours, theirs) == 0;
	if (dot_ours == NULL || dot_theirs == NULL)
		return g_strcmp0(ours, theirs) == 0;
	return dot_ours - ours == dot_theirs - theirs &&
	       strncmp(ours, theirs, dot_ours - ours) == 0;
}

static gboolean
migd_plugin_mlx5_check_peer(MigdPlugin *plugin, MigdDevice *device, const MigdPeerDescriptor *peer,
			    GError **error)
{
	MigdPluginMlx5 *self = MIGD_PLUGIN_MLX5(plugin);
	g_autofree gchar *ours = NULL;
	const gchar *theirs = NULL;

	if (self->fw_match == MLX5_FW_MATCH_IGNORE || peer->plugin_data == NULL ||
	    !g_variant_lookup(peer->plugin_data, "fw-version", "&s", &theirs))
		return TRUE;
	ours = migd_plugin_mlx5_read_fw_version(device);
	if (ours == NULL) {
		g_info("%s: source firmware %s, ours unknown: not compared",
		       migd_device_get_name(device), theirs);
		return TRUE;
	}
	if (!migd_plugin_mlx5_fw_compatible(self->fw_match, ours, theirs)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE,
			    "firmware %s on the source, %s here (firmware-match=%s)", theirs, ours,
			    self->fw_match == MLX5_FW_MATCH_EXACT ? "exact" : "major");
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_plugin_mlx5_recover_tracker(MigdPlugin *plugin, MigdDevice *device,
				 const MigdIovaRange *ranges, guint n_ranges, guint64 *page_size,
				 GError **error)
{
	MigdPluginMlx5 *self = MIGD_PLUGIN_MLX5(plugin);
	g_autoptr(GError) error_stop = NULL;

	if (self->on_tracker_error != MIGD_TRACKER_ERROR_RESTART)
		return TRUE;
	/* STOP may fail too (the tracker is in error); START is what must succeed */
	if (!migd_device_dma_logging_stop(device, &error_stop))
		g_debug("%s: DMA logging stop before restart: %s", migd_device_get_name(device),
			error_stop->message);
	if (!migd_device_dma_logging_start(device, ranges, n_ranges, page_size, error))
		return FALSE;
	g_message("%s: DMA logging restarted after a tracker error (page size %" G_GUINT64_FORMAT
		  ")",
		  migd_device_get_name(device), *page_size);
	return TRUE;
}

static void
migd_plugin_mlx5_init(MigdPluginMlx5 *self)
{
	self->read_size = MLX5_READ_SIZE;
	self->tracker_page_size = MLX5_TRACKER_PAGE;
	self->on_tracker_error = MIGD_TRACKER_ERROR_RESTART;
	self->fw_match = MLX5_FW_MATCH_MAJOR;
}

static void
migd_plugin_mlx5_class_init(MigdPluginMlx5Class *klass)
{
	MigdPluginClass *plugin_class = MIGD_PLUGIN_CLASS(klass);

	plugin_class->match = migd_plugin_mlx5_match;
	plugin_class->configure = migd_plugin_mlx5_configure;
	plugin_class->get_policy = migd_plugin_mlx5_get_policy;
	plugin_class->describe = migd_plugin_mlx5_describe;
	plugin_class->check_peer = migd_plugin_mlx5_check_peer;
	plugin_class->recover_tracker = migd_plugin_mlx5_recover_tracker;
}

MIGD_PLUGIN_DEFINE_MODULE("mlx5", migd_plugin_mlx5_get_type);
