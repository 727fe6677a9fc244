/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "migd-sim-dirty.h"
#include "migd-sim-profile.h"
#include "migd-state.h"

G_BEGIN_DECLS

/* the largest state_size (docs/ABI/testing/sim-device-spec) */
#define MIGD_SIM_MAX_STATE_SIZE (16ull << 30)

/*
 * The simulator's knobs. Parsed from a spec string
 *   "mlx5:state_size=64M,seed=7,save_rate=1G,fail_arc=STOP->STOP_COPY,fail_errno=EIO"
 * or from a GKeyFile group with a "profile" key and the same keys.
 */
typedef struct {
	const MigdSimProfileInfo *profile;
	guint64 state_size; /* bytes of device state (fixed unless the profile allows it) */
	guint64 seed;
	guint64 save_rate;  /* bytes/s, 0 = unlimited */
	guint64 load_rate;  /* bytes/s, 0 = unlimited */
	guint64 dirty_rate; /* bytes of device state dirtied per second of PRE_COPY */
	guint64 dma_rate;   /* bytes of guest memory the device DMA-writes per second */
	MigdSimDmaPattern dma_pattern;
	guint ports; /* mtty: 1 or 2 */
	/* fault injection */
	gboolean fail_arc_set;
	MigdState fail_from;
	MigdState fail_to;
	gint fail_errno;
	gboolean fail_to_error;
	guint fail_count; /* fail the first N walks of the arc; 0 = every time */
	gboolean report_eio;
	gboolean short_reads;
	/* the data fds are pipes at memory speed, verified byte for byte (migd-sim-fast.c) */
	gboolean fast_data;
	/*
	 * mtty: the kernel was built with CONFIG_IOMMUFD_DRIVER (iova_bitmap);
	 * without it, as in Debian 12's 6.12, DMA_LOGGING_REPORT is EOPNOTSUPP
	 */
	gboolean iommufd_driver;
	/* the platform IOMMU tracks dirty pages (default); 0: IOMMU dirty tracking is EOPNOTSUPP */
	gboolean iommu_dirty;
	/* hisi_acc match data (vf_qm_check_match): this device's own identity */
	guint32 hisi_dev_id;
	guint32 hisi_qp_num;
	guint32 hisi_que_iso_cfg;
	/* what plugins read as the device's sysfs directory (e.g. mlx5's firmware version) */
	gchar *sysfs;
	/* a file the FSM state is kept in, so the device outlives its process (crash tests) */
	gchar *persist;
} MigdSimConfig;

/* the defaults of @profile_name; MIGD_ERROR_INVALID_ARGUMENT for an unknown profile */
MigdSimConfig *migd_sim_config_new(const gchar *profile_name, GError **error);
MigdSimConfig *migd_sim_config_new_from_string(const gchar *spec, GError **error);
MigdSimConfig *migd_sim_config_new_from_keyfile(GKeyFile *keyfile, const gchar *group,
						GError **error);
MigdSimConfig *migd_sim_config_copy(const MigdSimConfig *self);
void migd_sim_config_free(MigdSimConfig *self);

/* one knob; refuses unknown keys, bad values and knobs the profile does not have */
gboolean migd_sim_config_set(MigdSimConfig *self, const gchar *key, const gchar *value,
			     GError **error);

/* "1G" -> 1073741824; K/M/G/T suffixes (powers of 1024) */
gboolean migd_sim_parse_size(const gchar *str, guint64 *value, GError **error);
/* "EIO" or "5" -> 5 */
gboolean migd_sim_parse_errno(const gchar *str, gint *errnum, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdSimConfig, migd_sim_config_free)

G_END_DECLS
