/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The profile table: one row per variant driver the simulator stands in for.
 * Every value is taken from vfio-uapi.md §6; where the kernel gets a value from
 * firmware, the number here is a plausible one and is marked as such.
 */
#include "config.h"

#include "migd-sim-profile.h"
#include "migd-state.h"

#define KNOBS_COMMON                                                                               \
	(MIGD_SIM_KNOB_SEED | MIGD_SIM_KNOB_SAVE_RATE | MIGD_SIM_KNOB_LOAD_RATE |                  \
	 MIGD_SIM_KNOB_FAIL | MIGD_SIM_KNOB_SHORT_READS | MIGD_SIM_KNOB_SYSFS |                    \
	 MIGD_SIM_KNOB_IOMMU_DIRTY)
/* every profile's device writes guest memory: device DMA logging and the IOMMU see it */
#define KNOBS_DMA (MIGD_SIM_KNOB_DMA_PATTERN | MIGD_SIM_KNOB_DMA_RATE)

static const MigdSimProfileInfo migd_sim_profiles[MIGD_SIM_PROFILE_LAST] = {
    [MIGD_SIM_PROFILE_MLX5] =
	{
	    .id = MIGD_SIM_PROFILE_MLX5,
	    .name = "mlx5",
	    .driver = "mlx5_vfio_pci",
	    .vendor_id = 0x15b3,
	    .device_id = 0x101e,
	    .subsystem_vendor_id = 0x15b3,
	    .subsystem_device_id = 0x0026,
	    .mig_flags = MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_P2P | MIGD_MIG_FLAG_PRE_COPY,
	    .log_ops = TRUE,
	    /*
	     * pg_track_max_num_range / log_{min,max}_page_size / log_max_addr_space
	     * come from firmware caps (mlx5vf_start_page_tracker); these are
	     * plausible values, not measured ones
	     */
	    .dirty_limits = {.max_ranges = 4,
			     .min_page_size = 4096,
			     .max_page_size = 2 * 1024 * 1024,
			     .max_addr_space = 1ull << 50},
	    .pci_core = TRUE,
	    .read_blocks = TRUE,
	    .temp_end_enomsg = TRUE,
	    .reset_to_running = TRUE,
	    .default_state_size = 4 * 1024 * 1024,
	    .knobs = KNOBS_COMMON | KNOBS_DMA | MIGD_SIM_KNOB_STATE_SIZE |
		     MIGD_SIM_KNOB_DIRTY_RATE | MIGD_SIM_KNOB_REPORT_EIO | MIGD_SIM_KNOB_FAST_DATA,
	},
    [MIGD_SIM_PROFILE_HISI_ACC] =
	{
	    .id = MIGD_SIM_PROFILE_HISI_ACC,
	    .name = "hisi_acc",
	    .driver = "hisi_acc_vfio_pci",
	    .vendor_id = 0x19e5,
	    .device_id = 0xa251,
	    .subsystem_vendor_id = 0x19e5,
	    .subsystem_device_id = 0x0000,
	    .mig_flags = MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_PRE_COPY,
	    .pci_core = TRUE,
	    /* hisi_acc_vf_pci_aer_reset_done() returns early unless flags == STOP_COPY */
	    .reset_to_running = FALSE,
	    /* hisi_acc_vfio_pci_close_device() disables the files, open_device sets RUNNING */
	    .open_sets_running = TRUE,
	    .default_state_size = 176,
	    .knobs = KNOBS_COMMON | KNOBS_DMA | MIGD_SIM_KNOB_HISI_MATCH,
	},
    [MIGD_SIM_PROFILE_MTTY] =
	{
	    .id = MIGD_SIM_PROFILE_MTTY,
	    .name = "mtty",
	    .driver = "mtty",
	    .vendor_id = 0,
	    .device_id = 0,
	    .subsystem_vendor_id = 0,
	    .subsystem_device_id = 0,
	    .mig_flags = MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_P2P | MIGD_MIG_FLAG_PRE_COPY,
	    .log_ops = TRUE,
	    .log_ops_noop = TRUE,
	    .reset_to_running = TRUE,
	    /* vfio_register_emulated_iommu_dev(): an emulated group in a type1 container */
	    .iommu_type1 = TRUE,
	    .default_state_size = 96,
	    /* mtty does no DMA; the knobs stand for pages an mdev pins and writes (vfio_dma_rw) */
	    .knobs = KNOBS_COMMON | KNOBS_DMA | MIGD_SIM_KNOB_PORTS | MIGD_SIM_KNOB_IOMMUFD_DRIVER,
	},
    [MIGD_SIM_PROFILE_PDS] =
	{
	    .id = MIGD_SIM_PROFILE_PDS,
	    .name = "pds",
	    .driver = "pds_vfio_pci",
	    .vendor_id = 0x1dd8,
	    .device_id = 0x1003,
	    .subsystem_vendor_id = 0x1dd8,
	    .subsystem_device_id = 0x5101,
	    .mig_flags = MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_P2P,
	    .log_ops = TRUE,
	    /* max_regions comes from a device STATUS command: plausible value */
	    .dirty_limits = {.max_ranges = 8, .report_single_range = TRUE},
	    .pci_core = TRUE,
	    .reset_to_running = TRUE,
	    .error_gives_eio = TRUE,
	    .default_state_size = 65536,
	    .knobs = KNOBS_COMMON | KNOBS_DMA | MIGD_SIM_KNOB_REPORT_EIO,
	},
};

const MigdSimProfileInfo *
migd_sim_profile_get(MigdSimProfileId id)
{
	g_return_val_if_fail(id < MIGD_SIM_PROFILE_LAST, NULL);
	return &migd_sim_profiles[id];
}

const MigdSimProfileInfo *
migd_sim_profile_lookup(const gchar *name)
{
	if (name == NULL)
		return NULL;
	for (guint i = 0; i < MIGD_SIM_PROFILE_LAST; i++) {
		if (g_strcmp0(migd_sim_profiles[i].name, name) == 0)
			return &migd_sim_profiles[i];
	}
	return NULL;
}

const gchar *
migd_sim_profile_list(void)
{
	return "mlx5, hisi_acc, mtty, pds";
}
