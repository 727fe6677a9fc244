/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * pds_vfio_pci (drivers/vfio/pci/pds/{lm.c,vfio_dev.c}): STOP_COPY|P2P, a 64 KiB
 * opaque LM state (union pds_lm_dev_state), DMA logging with few regions.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "migd-sim-flat.h"
#include "migd-sim-prng.h"

/* PDS_LM_DEVICE_STATE_LENGTH */
#define PDS_LM_STATE_SIZE 65536

static void
migd_sim_pds_generate(MigdSimDevice *self, guint8 *d)
{
	migd_sim_fill_bytes(migd_sim_mix64(self->config->seed ^ 0x7064735f6c6d0000ull), 0, d,
			    PDS_LM_STATE_SIZE);
}

/*
 * pds_vfio_set_lm_state_cmd() hands the file to firmware; what it says about a
 * short state is not in the driver: the simulator answers EINVAL [unverified]
 */
static gint
migd_sim_pds_finish(MigdSimDevice *self, const guint8 *d, gsize len, guint8 *state)
{
	if (len < PDS_LM_STATE_SIZE)
		return EINVAL;
	memcpy(state, d, PDS_LM_STATE_SIZE);
	return 0;
}

static void
migd_sim_pds_touch(MigdSimDevice *self, guint8 *d, guint64 n_units)
{
	for (guint64 i = 0; i < n_units; i++) {
		guint64 r = migd_sim_prng_next(&self->rng);
		guint64 w = migd_sim_prng_next(&self->rng);
		memcpy(d + (r % (PDS_LM_STATE_SIZE / 8)) * 8, &w, 8);
	}
}

static const MigdSimFlatSpec migd_sim_pds_spec = {
    .size = PDS_LM_STATE_SIZE,
    /* no PRE_COPY */
    .precopy_size = 0,
    /* the restore file is a fixed 64 KiB buffer: pds_vfio_restore_write() */
    .overflow_errno = EINVAL,
    .finish = migd_sim_pds_finish,
    .generate = migd_sim_pds_generate,
    .touch = migd_sim_pds_touch,
};

static gboolean
migd_sim_pds_init(MigdSimDevice *self, GError **error)
{
	return migd_sim_flat_init(self, &migd_sim_pds_spec, error);
}

const MigdSimBackend migd_sim_pds_backend = {
    .init = migd_sim_pds_init,
    .finalize = migd_sim_flat_finalize,
    .arc = migd_sim_flat_arc,
    .read = migd_sim_flat_read,
    .write = migd_sim_flat_write,
    .data_size = migd_sim_flat_data_size,
    .digest = migd_sim_flat_digest,
    .touch = migd_sim_flat_touch,
};
