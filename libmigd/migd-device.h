/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

#include "migd-data-fd.h"
#include "migd-state.h"

G_BEGIN_DECLS

/* What one probe of a device found. */
typedef struct {
	gboolean migration;	   /* VFIO_DEVICE_FEATURE_MIGRATION answered */
	guint32 mig_flags;	   /* its VFIO_MIGRATION_* flags */
	gboolean dma_logging;	   /* PROBE of DMA_LOGGING_START|SET succeeded */
	gboolean low_power;	   /* PROBE of LOW_POWER_ENTRY|SET succeeded */
	gboolean low_power_wakeup; /* PROBE of LOW_POWER_ENTRY_WITH_WAKEUP|SET succeeded */
	gboolean mig_data_size;	   /* MIG_DATA_SIZE answered */
	guint64 stop_copy_length;  /* ... with this estimate */
} MigdDeviceFeatures;

typedef struct {
	guint64 iova;
	guint64 length;
} MigdIovaRange;

/* Who a device is, for the compatibility descriptor a migration offers. */
typedef struct {
	gchar *driver; /* the bound variant driver, e.g. "mlx5_vfio_pci"; "unknown" if unknown */
	guint16 vendor_id;
	guint16 device_id;
	guint16 subsystem_vendor_id;
	guint16 subsystem_device_id;
} MigdDeviceIdentity;

void migd_device_identity_clear(MigdDeviceIdentity *identity);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MigdDeviceIdentity, migd_device_identity_clear)

#define MIGD_TYPE_DEVICE (migd_device_get_type())
G_DECLARE_DERIVABLE_TYPE(MigdDevice, migd_device, MIGD, DEVICE, GObject)

/*
 * A backend implements the raw uAPI operations, one kernel call each, with
 * errors in MIGD_KERNEL_ERROR (the errno) or MIGD_ERROR. It does no planning and
 * no recovery: MigdDevice does that for every backend alike.
 */
struct _MigdDeviceClass {
	GObjectClass parent_class;

	gboolean (*probe)(MigdDevice *self, MigdDeviceFeatures *features, GError **error);
	gboolean (*get_state)(MigdDevice *self, MigdState *state, GError **error);
	/* one SET of MIG_DEVICE_STATE; *data_fd is set when the kernel returned one */
	gboolean (*set_state)(MigdDevice *self, MigdState state, MigdDataFd **data_fd,
			      GError **error);
	gboolean (*get_data_size)(MigdDevice *self, guint64 *stop_copy_length, GError **error);
	gboolean (*reset)(MigdDevice *self, GError **error);
	/* *page_size in: the hint; out: what the driver chose */
	gboolean (*dma_logging_start)(MigdDevice *self, const MigdIovaRange *ranges, guint n_ranges,
				      guint64 *page_size, GError **error);
	gboolean (*dma_logging_stop)(MigdDevice *self, GError **error);
	/* sets bits in @bitmap (host-endian u64 words, bit n = iova + n * page_size) */
	gboolean (*dma_logging_report)(MigdDevice *self, guint64 iova, guint64 length,
				       guint64 page_size, guint64 *bitmap, GError **error);
	/* @wakeup_eventfd < 0: plain LOW_POWER_ENTRY */
	gboolean (*low_power_entry)(MigdDevice *self, gint wakeup_eventfd, GError **error);
	gboolean (*low_power_exit)(MigdDevice *self, GError **error);
	/*
	 * Region access (VFIO_DEVICE_GET_REGION_INFO + pread/pwrite on the device
	 * fd): @len bytes at @offset inside region @index (VFIO_PCI_*_REGION_INDEX)
	 */
	gboolean (*region_read)(MigdDevice *self, guint index, guint64 offset, void *buf, gsize len,
				GError **error);
	gboolean (*region_write)(MigdDevice *self, guint index, guint64 offset, const void *buf,
				 gsize len, GError **error);

	/* optional: fills @identity (driver name, PCI ids) */
	gboolean (*get_identity)(MigdDevice *self, MigdDeviceIdentity *identity, GError **error);

	/*
	 * The IOMMU's dirty tracking for the address space the device is attached
	 * to (iommufd: a HWPT allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING and
	 * IOMMU_HWPT_SET_DIRTY_TRACKING / GET_DIRTY_BITMAP; type1:
	 * VFIO_IOMMU_DIRTY_PAGES on the container). *page_size in: the wish; out:
	 * what the IOMMU reports in. report sets bits like dma_logging_report and
	 * clears the IOMMU's bits unless @no_clear (iommufd's NO_CLEAR, for a
	 * report right before an unmap).
	 */
	gboolean (*iommu_dirty_start)(MigdDevice *self, const MigdIovaRange *ranges, guint n_ranges,
				      guint64 *page_size, GError **error);
	gboolean (*iommu_dirty_stop)(MigdDevice *self, GError **error);
	gboolean (*iommu_dirty_report)(MigdDevice *self, guint64 iova, guint64 length,
				       guint64 page_size, gboolean no_clear, guint64 *bitmap,
				       GError **error);

	/*
	 * optional: closes the device fd and opens the device again the way it
	 * was opened (group or cdev), so the driver's close_device and
	 * open_device run; MIGD_ERROR_NOT_SUPPORTED when the fd is not ours to
	 * reopen (handed over by its owner)
	 */
	gboolean (*reopen)(MigdDevice *self, GError **error);

	gpointer padding[1];
};

/* What the recovery policy did after a failed SET. */
typedef enum {
	MIGD_RECOVERY_NONE,	    /* the SET succeeded, nothing to recover */
	MIGD_RECOVERY_ALREADY_SAFE, /* the device was already in the recover state */
	MIGD_RECOVERY_RECOVERED,    /* a transition to the recover state succeeded */
	MIGD_RECOVERY_RESET,	    /* VFIO_DEVICE_RESET brought it back to RUNNING */
	MIGD_RECOVERY_FAILED,	    /* even reset failed, or left it elsewhere: loud */
	MIGD_RECOVERY_REOPENED,	    /* closing and reopening the device fd brought it back */
} MigdRecoveryAction;

typedef struct {
	MigdState requested;   /* the target of the failed transition */
	MigdState failed_from; /* the arc that failed */
	MigdState failed_to;
	MigdState state_read_back; /* GET after the failure (the SET only echoes) */
	MigdState recover_target;
	MigdRecoveryAction action;
	MigdState final_state;
	gchar *detail; /* a sentence for logs and job results */
} MigdRecoveryReport;

/* a report must start zeroed: g_auto(MigdRecoveryReport) report = {0}; */
void migd_recovery_report_clear(MigdRecoveryReport *report);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MigdRecoveryReport, migd_recovery_report_clear)
const gchar *migd_recovery_action_to_string(MigdRecoveryAction action);

const gchar *migd_device_get_name(MigdDevice *self);
void migd_device_set_name(MigdDevice *self, const gchar *name);
/* the device's sysfs directory (/sys/bus/pci/devices/<bdf>, ...), NULL if it has none */
const gchar *migd_device_get_sysfs_path(MigdDevice *self);
void migd_device_set_sysfs_path(MigdDevice *self, const gchar *path);

/*
 * The plugin holding this device's driver rules (migd-plugin.h), assigned by
 * the plugin manager; NULL until then, and the engines then use the uAPI alone.
 */
typedef struct _MigdPlugin MigdPlugin;
MigdPlugin *migd_device_get_plugin(MigdDevice *self);
void migd_device_set_plugin(MigdDevice *self, MigdPlugin *plugin);
/*
 * The guest IOVA ranges the device may DMA into (the VM's mappings), which
 * dirty tracking covers; from the caller or the configuration. None: untracked.
 */
void migd_device_set_iova_ranges(MigdDevice *self, const MigdIovaRange *ranges, guint n_ranges);
const MigdIovaRange *migd_device_get_iova_ranges(MigdDevice *self, guint *n_ranges);
/* MigdRecoveryQuirks of the driver (migd-plugin.h), for the recovery policy */
guint migd_device_get_recovery_quirks(MigdDevice *self);
void migd_device_set_recovery_quirks(MigdDevice *self, guint quirks);

/* probes once and caches; later calls return the cached answer */
gboolean migd_device_probe(MigdDevice *self, GError **error);
const MigdDeviceFeatures *migd_device_get_features(MigdDevice *self);
guint32 migd_device_get_mig_flags(MigdDevice *self);

/* a zeroed @identity is filled; backends without one answer driver "unknown", ids 0 */
gboolean migd_device_get_identity(MigdDevice *self, MigdDeviceIdentity *identity, GError **error);

gboolean migd_device_get_state(MigdDevice *self, MigdState *state, GError **error);

/*
 * One real arc: refused unless the planner agrees @next is the next step from
 * the device's current state. Returns the data fd the kernel handed out (if any).
 */
gboolean migd_device_set_state_arc(MigdDevice *self, MigdState next, MigdDataFd **data_fd,
				   GError **error);

/*
 * Walks the planned path to @target one arc at a time, reading the state first.
 * A data fd may only come from the final arc. On failure it runs the recovery
 * policy towards @recover_state (MIGD_STATE_ERROR: reset directly), fills
 * @report (may be NULL) and fails with the original error, prefixed.
 */
gboolean migd_device_transition(MigdDevice *self, MigdState target, MigdState recover_state,
				MigdDataFd **data_fd, MigdRecoveryReport *report, GError **error);

/*
 * The recovery policy on its own: GET the real state; if it is not
 * @recover_state, try to go there; if that fails or the device is in ERROR,
 * VFIO_DEVICE_RESET and check for RUNNING; where the driver's quirks say a
 * reset may leave the FSM stuck and only its close does not
 * (MIGD_RECOVERY_QUIRK_REOPEN_RESETS_STATE), close and reopen the device.
 * Returns FALSE only when the device could not be brought back
 * (MIGD_ERROR_RECOVERY_FAILED).
 */
gboolean migd_device_recover(MigdDevice *self, MigdState recover_state, MigdRecoveryReport *report,
			     GError **error);

gboolean migd_device_get_data_size(MigdDevice *self, guint64 *stop_copy_length, GError **error);
gboolean migd_device_reset(MigdDevice *self, GError **error);
/* the reopen vfunc (class comment): the state, data fds and tracking start afresh */
gboolean migd_device_reopen(MigdDevice *self, GError **error);
gboolean migd_device_dma_logging_start(MigdDevice *self, const MigdIovaRange *ranges,
				       guint n_ranges, guint64 *page_size, GError **error);
gboolean migd_device_dma_logging_stop(MigdDevice *self, GError **error);
gboolean migd_device_dma_logging_report(MigdDevice *self, guint64 iova, guint64 length,
					guint64 page_size, guint64 *bitmap, GError **error);
/* the IOMMU's dirty tracking (class comment); MIGD_ERROR_NOT_SUPPORTED where absent */
gboolean migd_device_iommu_dirty_start(MigdDevice *self, const MigdIovaRange *ranges,
				       guint n_ranges, guint64 *page_size, GError **error);
gboolean migd_device_iommu_dirty_stop(MigdDevice *self, GError **error);
gboolean migd_device_iommu_dirty_report(MigdDevice *self, guint64 iova, guint64 length,
					guint64 page_size, gboolean no_clear, guint64 *bitmap,
					GError **error);
gboolean migd_device_low_power_entry(MigdDevice *self, gint wakeup_eventfd, GError **error);
gboolean migd_device_low_power_exit(MigdDevice *self, GError **error);
/* device region access; an access past the region's size fails without touching it */
gboolean migd_device_region_read(MigdDevice *self, guint index, guint64 offset, void *buf,
				 gsize len, GError **error);
gboolean migd_device_region_write(MigdDevice *self, guint index, guint64 offset, const void *buf,
				  gsize len, GError **error);

G_END_DECLS
