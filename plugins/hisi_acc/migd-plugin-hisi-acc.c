/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The hisi_acc plugin: rules of hisi_acc_vfio_pci
 * (drivers/vfio/pci/hisilicon/hisi_acc_vfio_pci.c), the HiSilicon SEC/HPRE/ZIP
 * accelerator VF driver. See README.md beside this file.
 */
#include "config.h"

#include <errno.h>
#include <gmodule.h>
#include <string.h>

#include "migd-error.h"
#include "migd-plugin.h"

#define HISI_DRIVER	"hisi_acc_vfio_pci"
#define HISI_PCI_VENDOR 0x19e5
#define HISI_READ_SIZE	(64u * 1024) /* the stream's minimum; the state is 176 bytes */
/* struct acc_vf_data: the first QM_MATCH_SIZE bytes are the match data */
#define HISI_QM_MATCH_SIZE    40u
#define HISI_ACC_DEV_MAGIC_V1 G_GUINT64_CONSTANT(0xCDCDCDCDFEEDAACC)
#define HISI_ACC_DEV_MAGIC_V2 G_GUINT64_CONSTANT(0xAACCFEEDDECADEDE)
#define HISI_ACC_DRV_MAJOR    1u
#define HISI_OFF_MAGIC	      0
#define HISI_OFF_QP_NUM	      8
#define HISI_OFF_DEV_ID	      12
#define HISI_OFF_QUE_ISO_CFG  16
#define HISI_OFF_MAJOR	      28
#define HISI_OFF_MINOR	      30
#define HISI_SOURCE_MATCH_KEY "migd-hisi-acc-source-match"

struct _MigdPluginHisiAcc {
	MigdPlugin parent_instance;
	guint64 read_size;
};

#define MIGD_TYPE_PLUGIN_HISI_ACC (migd_plugin_hisi_acc_get_type())
G_DECLARE_FINAL_TYPE(MigdPluginHisiAcc, migd_plugin_hisi_acc, MIGD, PLUGIN_HISI_ACC, MigdPlugin)
G_DEFINE_TYPE(MigdPluginHisiAcc, migd_plugin_hisi_acc, MIGD_TYPE_PLUGIN)

/* the VFs hisi_acc_vfio_pci_table lists: SEC, HPRE and ZIP */
static const guint16 hisi_vf_device_ids[] = {0xa256, 0xa259, 0xa251};

/* what the source VF sent as match data, kept on the destination device for messages */
typedef struct {
	guint32 qp_num;
	guint32 dev_id;
	guint32 que_iso_cfg;
} HisiMatch;

static guint32
hisi_get32(const guint8 *p)
{
	guint32 v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static guint
migd_plugin_hisi_acc_match(MigdPlugin *plugin, MigdDevice *device,
			   const MigdDeviceIdentity *identity)
{
	if (g_strcmp0(identity->driver, HISI_DRIVER) == 0)
		return MIGD_PLUGIN_SCORE_DRIVER;
	if (identity->vendor_id == HISI_PCI_VENDOR && g_strcmp0(identity->driver, "unknown") == 0) {
		for (guint i = 0; i < G_N_ELEMENTS(hisi_vf_device_ids); i++) {
			if (identity->device_id == hisi_vf_device_ids[i])
				return MIGD_PLUGIN_SCORE_DRIVER / 2;
		}
	}
	return MIGD_PLUGIN_SCORE_NONE;
}

static gboolean
migd_plugin_hisi_acc_configure(MigdPlugin *plugin, GKeyFile *config, const gchar *group,
			       GError **error)
{
	MigdPluginHisiAcc *self = MIGD_PLUGIN_HISI_ACC(plugin);
	const gchar *const known[] = {"read-size", NULL};

	return migd_plugin_config_check_keys(config, group, known, error) &&
	       migd_plugin_config_get_size(config, group, "read-size", 64 * 1024, 8 * 1024 * 1024,
					   &self->read_size, error);
}

static void
migd_plugin_hisi_acc_get_policy(MigdPlugin *plugin, MigdDevice *device, MigdPluginPolicy *policy)
{
	MigdPluginHisiAcc *self = MIGD_PLUGIN_HISI_ACC(plugin);

	policy->read_size = self->read_size;
	/* no DMA logging in the driver: the IOMMU tracks the VF's writes */
	policy->tracker = MIGD_DIRTY_TRACKER_IOMMU;
	/*
	 * hisi_acc_vf_pci_aer_reset_done() returns early unless the migration
	 * flags are exactly STOP_COPY; since 6.2 they are STOP_COPY|PRE_COPY, so
	 * VFIO_DEVICE_RESET leaves the FSM (and the open fds) where they were.
	 * RESUMING with nothing loaded then has no way out (RESUMING -> STOP is
	 * EINVAL below 176 bytes), but hisi_acc_vfio_pci_close_device() drops the
	 * files and hisi_acc_vfio_pci_open_device() sets RUNNING: reopen.
	 */
	policy->recovery_quirks =
	    MIGD_RECOVERY_QUIRK_RESET_KEEPS_STATE | MIGD_RECOVERY_QUIRK_REOPEN_RESETS_STATE;
	/* the match data leads the stream (alone in PRE_COPY since 6.2): check it first */
	policy->initial_check_bytes = HISI_QM_MATCH_SIZE;
}

static gboolean
migd_plugin_hisi_acc_check_initial_data(MigdPlugin *plugin, MigdDevice *device, const guint8 *data,
					gsize len, GError **error)
{
	HisiMatch *match;
	guint64 magic;
	guint16 major, minor;

	if (len < HISI_QM_MATCH_SIZE) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE,
			    "the stream starts with %zu bytes, less than the %u bytes of "
			    "hisi_acc match data",
			    len, HISI_QM_MATCH_SIZE);
		return FALSE;
	}
	memcpy(&magic, data + HISI_OFF_MAGIC, sizeof(magic));
	memcpy(&major, data + HISI_OFF_MAJOR, sizeof(major));
	memcpy(&minor, data + HISI_OFF_MINOR, sizeof(minor));
	/* vf_qm_check_match(): V2 carries a version, V1 (6.3 and older) none */
	if (magic == HISI_ACC_DEV_MAGIC_V2) {
		if (major != HISI_ACC_DRV_MAJOR) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE,
				    "hisi_acc stream format %u.%u from the source; this driver "
				    "loads major version %u",
				    major, minor, HISI_ACC_DRV_MAJOR);
			return FALSE;
		}
	} else if (magic != HISI_ACC_DEV_MAGIC_V1) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE,
			    "not a hisi_acc migration stream (magic 0x%016" G_GINT64_MODIFIER "x)",
			    magic);
		return FALSE;
	}
	match = g_new0(HisiMatch, 1);
	match->qp_num = hisi_get32(data + HISI_OFF_QP_NUM);
	match->dev_id = hisi_get32(data + HISI_OFF_DEV_ID);
	match->que_iso_cfg = hisi_get32(data + HISI_OFF_QUE_ISO_CFG);
	g_object_set_data_full(G_OBJECT(device), HISI_SOURCE_MATCH_KEY, match, g_free);
	return TRUE;
}

/*
 * The driver answers a mismatch of the match data with a bare EFAULT from
 * write(); say what must agree, in words an operator can act on.
 */
static gchar *
migd_plugin_hisi_acc_explain_load_error(MigdPlugin *plugin, MigdDevice *device, const GError *error)
{
	const HisiMatch *match = g_object_get_data(G_OBJECT(device), HISI_SOURCE_MATCH_KEY);

	if (match == NULL ||
	    !(migd_error_matches_errno(error, EFAULT) || migd_error_matches_errno(error, EINVAL)))
		return NULL;
	return g_strdup_printf("this VF refused the source VF's match data (dev_id %u, qp_num "
			       "%u, que_iso_cfg %u): both VFs must be the same accelerator with "
			       "the same queue count and isolation setting",
			       match->dev_id, match->qp_num, match->que_iso_cfg);
}

static void
migd_plugin_hisi_acc_init(MigdPluginHisiAcc *self)
{
	self->read_size = HISI_READ_SIZE;
}

static void
migd_plugin_hisi_acc_class_init(MigdPluginHisiAccClass *klass)
{
	MigdPluginClass *plugin_class = MIGD_PLUGIN_CLASS(klass);

	plugin_class->match = migd_plugin_hisi_acc_match;
	plugin_class->configure = migd_plugin_hisi_acc_configure;
	plugin_class->get_policy = migd_plugin_hisi_acc_get_policy;
	plugin_class->check_initial_data = migd_plugin_hisi_acc_check_initial_data;
	plugin_class->explain_load_error = migd_plugin_hisi_acc_explain_load_error;
}

MIGD_PLUGIN_DEFINE_MODULE("hisi_acc", migd_plugin_hisi_acc_get_type);
