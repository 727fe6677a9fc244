/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "migd-sim-dirty.h"

G_BEGIN_DECLS

typedef enum {
	MIGD_SIM_PROFILE_MLX5,
	MIGD_SIM_PROFILE_HISI_ACC,
	MIGD_SIM_PROFILE_MTTY,
	MIGD_SIM_PROFILE_PDS,
	MIGD_SIM_PROFILE_LAST,
} MigdSimProfileId;

/* the configuration knobs, as a mask of what a profile accepts */
typedef enum {
	MIGD_SIM_KNOB_STATE_SIZE = 1 << 0,
	MIGD_SIM_KNOB_SEED = 1 << 1,
	MIGD_SIM_KNOB_SAVE_RATE = 1 << 2,
	MIGD_SIM_KNOB_LOAD_RATE = 1 << 3,
	MIGD_SIM_KNOB_DIRTY_RATE = 1 << 4,
	MIGD_SIM_KNOB_DMA_PATTERN = 1 << 5,
	MIGD_SIM_KNOB_DMA_RATE = 1 << 6,
	MIGD_SIM_KNOB_PORTS = 1 << 7,
	MIGD_SIM_KNOB_FAIL = 1 << 8, /* fail_arc, fail_errno, fail_to_error, fail_count */
	MIGD_SIM_KNOB_REPORT_EIO = 1 << 9,
	MIGD_SIM_KNOB_SHORT_READS = 1 << 10,
	MIGD_SIM_KNOB_HISI_MATCH = 1 << 11, /* dev_id, qp_num, que_iso_cfg */
	MIGD_SIM_KNOB_IOMMUFD_DRIVER = 1 << 12,
	MIGD_SIM_KNOB_SYSFS = 1 << 13,	     /* a directory standing for the device's sysfs node */
	MIGD_SIM_KNOB_IOMMU_DIRTY = 1 << 14, /* the platform IOMMU can track dirty pages */
	MIGD_SIM_KNOB_FAST_DATA = 1 << 15,   /* data fds at memory speed (benchmarks) */
} MigdSimKnob;

/* What a variant driver looks like from userspace (vfio-uapi.md §6). */
typedef struct {
	MigdSimProfileId id;
	const gchar *name;
	guint32 mig_flags;
	gboolean log_ops;      /* DMA logging features present */
	gboolean log_ops_noop; /* present but doing nothing (mtty) */
	MigdSimDirtyLimits dirty_limits;
	gboolean pci_core;	   /* vfio-pci-core: LOW_POWER_* answered */
	gboolean read_blocks;	   /* reads wait for data; EAGAIN with O_NONBLOCK (mlx5) */
	gboolean temp_end_enomsg;  /* PRE_COPY temporary end: ENOMSG (else read returns 0) */
	gboolean reset_to_running; /* VFIO_DEVICE_RESET: RUNNING + files disabled */
	/*
	 * open_device sets RUNNING (hisi_acc_vfio_pci_open_device): a reopened
	 * device, or one a new process opens (persist=), starts RUNNING; without
	 * it the FSM outlives the fd (mtty keeps its state across close)
	 */
	gboolean open_sets_running;
	gboolean error_gives_eio; /* refuses to run in ERROR and returns EIO ending there (pds) */
	/*
	 * The IOMMU's dirty tracking (iommu_dirty_*): an mdev sits in a type1
	 * container as an emulated IOMMU group, so it answers as
	 * VFIO_IOMMU_DIRTY_PAGES does (page size fixed at 4 KiB, GET_BITMAP always
	 * clears, refuses to bisect a mapping); a PCI device's IOMMU answers as an
	 * iommufd HWPT allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING does.
	 */
	gboolean iommu_type1;
	guint64 default_state_size;
	guint32 knobs;
	/* what a real device of this driver would show in sysfs */
	const gchar *driver;
	guint16 vendor_id, device_id, subsystem_vendor_id, subsystem_device_id;
} MigdSimProfileInfo;

const MigdSimProfileInfo *migd_sim_profile_get(MigdSimProfileId id);
/* NULL when @name is not a profile */
const MigdSimProfileInfo *migd_sim_profile_lookup(const gchar *name);
/* "mlx5, hisi_acc, mtty, pds" */
const gchar *migd_sim_profile_list(void);

G_END_DECLS
