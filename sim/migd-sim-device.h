/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-device.h"
#include "migd-sim-config.h"

G_BEGIN_DECLS

/*
 * A MigdDevice backend that behaves like one of the kernel's variant drivers
 * (mlx5, hisi_acc, mtty, pds), for the demo and the tests.
 */
#define MIGD_TYPE_SIM_DEVICE (migd_sim_device_get_type())
G_DECLARE_FINAL_TYPE(MigdSimDevice, migd_sim_device, MIGD, SIM_DEVICE, MigdDevice)

MigdSimDevice *migd_sim_device_new(const MigdSimConfig *config, GError **error);
/* migd_sim_config_new_from_string() + migd_sim_device_new() */
MigdSimDevice *migd_sim_device_new_from_string(const gchar *spec, GError **error);

const MigdSimConfig *migd_sim_device_get_config(MigdSimDevice *self);
/*
 * the size of the device's internal state (what STOP_COPY streams, payload
 * only); an mlx5 destination takes the size of the image it loaded
 */
guint64 migd_sim_device_get_state_size(MigdSimDevice *self);

/*
 * A 64-bit digest of the device's internal state, O(state / 4096) memory. Equal
 * on a source (after STOP_COPY) and a destination (after RESUMING -> STOP) iff
 * the destination loaded exactly the source's state.
 */
guint64 migd_sim_device_get_state_digest(MigdSimDevice *self);
/*
 * The same digest for a worker thread: the costly part (hashing a large mlx5 state) in short
 * holds of the device lock, so transitions and I/O are never held up for long, giving up
 * with G_IO_ERROR_CANCELLED between them; *@generation is the generation the digest belongs
 * to (see below).
 */
gboolean migd_sim_device_compute_state_digest(MigdSimDevice *self, GCancellable *cancellable,
					      guint64 *digest, guint64 *generation, GError **error);
/*
 * A counter that changes whenever the state a digest covers may have changed (transitions,
 * resets, data-fd I/O, region writes, touches): a digest of generation G still holds while
 * the generation is G.
 */
guint64 migd_sim_device_get_state_generation(MigdSimDevice *self);

/*
 * The guest uses the device: changes @n units of internal state (mlx5: pages,
 * tracked as dirty in PRE_COPY; mtty: UART registers; hisi_acc/pds: registers).
 */
void migd_sim_device_touch_state(MigdSimDevice *self, guint64 n_units);
/*
 * the device DMA-writes @bytes of guest memory following its dma_pattern, seen by
 * device DMA logging and the IOMMU's dirty tracking alike; returns writes
 */
guint64 migd_sim_device_dma_write(MigdSimDevice *self, guint64 bytes);
/*
 * The simulator's own record of the device's DMA writes, for tests that check
 * what trackers report against what was written. Off by default (it grows
 * until taken). Enabled, every page the DMA pattern writes (dma_rate or
 * migd_sim_device_dma_write) is recorded as device logging or, without it,
 * the IOMMU saw it (page-aligned at that tracker's page size); take returns
 * the writes since the previous take (MigdIovaRange, in write order, a page may
 * repeat) and forgets them. Disabling drops what was not taken.
 */
void migd_sim_device_set_dma_record(MigdSimDevice *self, gboolean enable);
GArray *migd_sim_device_take_dma_record(MigdSimDevice *self);
/* a host access wakes the device from low power (signals a wakeup eventfd) */
void migd_sim_device_wake(MigdSimDevice *self);
/* DMA logging is started (tests: every START met its STOP); FALSE without DMA logging */
gboolean migd_sim_device_dirty_is_active(MigdSimDevice *self);
/* the platform IOMMU's dirty tracking is started (iommu_dirty_start without a stop) */
gboolean migd_sim_device_iommu_dirty_is_active(MigdSimDevice *self);

G_END_DECLS
