/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * hisi_acc_vfio_pci (drivers/vfio/pci/hisilicon/hisi_acc_vfio_pci.c): the
 * 176-byte struct acc_vf_data, of which the first 40 bytes (QM_MATCH_SIZE) are
 * sent in PRE_COPY and checked by the destination as soon as they arrive.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "migd-sim-flat.h"
#include "migd-sim-prng.h"

#define HISI_ACC_VF_DATA_SIZE 176
#define HISI_QM_MATCH_SIZE    40
#define HISI_ACC_DEV_MAGIC_V1 0xCDCDCDCDFEEDAACCull
#define HISI_ACC_DEV_MAGIC_V2 0xAACCFEEDDECADEDEull
#define HISI_ACC_DRV_MAJOR    1
#define HISI_QM_READY	      1

/* struct acc_vf_data offsets (vfio-uapi.md §6.2) */
#define OFF_MAGIC	0
#define OFF_QP_NUM	8
#define OFF_DEV_ID	12
#define OFF_QUE_ISO_CFG 16
#define OFF_QP_BASE	20
#define OFF_VF_QM_STATE 24
#define OFF_MAJOR	28
#define OFF_MINOR	30
#define OFF_REGS	40 /* aeq_int_mask .. qm_rsv_regs[5] */
#define OFF_REGS_END	140
#define OFF_DMA		144 /* eqe_dma, aeqe_dma, sqc_dma, cqc_dma */

/* struct acc_vf_data is host-endian */
static void
hisi_put32(guint8 *p, guint32 v)
{
	memcpy(p, &v, 4);
}

static guint32
hisi_get32(const guint8 *p)
{
	guint32 v;
	memcpy(&v, p, 4);
	return v;
}

static void
migd_sim_hisi_acc_generate(MigdSimDevice *self, guint8 *d)
{
	const MigdSimConfig *cfg = self->config;
	guint64 magic = HISI_ACC_DEV_MAGIC_V2;
	guint16 major = HISI_ACC_DRV_MAJOR;
	guint64 rng = cfg->seed;

	memset(d, 0, HISI_ACC_VF_DATA_SIZE);
	memcpy(d + OFF_MAGIC, &magic, 8);
	hisi_put32(d + OFF_QP_NUM, cfg->hisi_qp_num);
	hisi_put32(d + OFF_DEV_ID, cfg->hisi_dev_id);
	hisi_put32(d + OFF_QUE_ISO_CFG, cfg->hisi_que_iso_cfg);
	hisi_put32(d + OFF_QP_BASE, (guint32)(cfg->seed % 16) * cfg->hisi_qp_num);
	hisi_put32(d + OFF_VF_QM_STATE, HISI_QM_READY);
	memcpy(d + OFF_MAJOR, &major, 2);
	/* registers: seeded */
	migd_sim_fill_bytes(migd_sim_prng_next(&rng), 0, d + OFF_REGS, OFF_REGS_END - OFF_REGS);
	/* eqe/aeqe/sqc/cqc DMA addresses: non-zero and page aligned, so the VF is "ready" */
	for (guint i = 0; i < 4; i++) {
		guint64 dma =
		    ((migd_sim_prng_next(&rng) & 0xffffffffffull) | 0x100000ull) & ~0xfffull;
		memcpy(d + OFF_DMA + i * 8, &dma, 8);
	}
}

/* vf_qm_check_match(): any mismatch makes the write fail with EFAULT */
static gint
migd_sim_hisi_acc_check(MigdSimDevice *self, const guint8 *d)
{
	MigdSimFlat *flat = self->priv;
	const MigdSimConfig *cfg = self->config;
	guint64 magic;
	guint16 major;

	memcpy(&magic, d + OFF_MAGIC, 8);
	memcpy(&major, d + OFF_MAJOR, 2);
	if (!(magic == HISI_ACC_DEV_MAGIC_V2 && major == HISI_ACC_DRV_MAJOR) &&
	    magic != HISI_ACC_DEV_MAGIC_V1)
		return EFAULT;
	if (hisi_get32(d + OFF_DEV_ID) != cfg->hisi_dev_id)
		return EFAULT;
	if (hisi_get32(d + OFF_QP_NUM) != cfg->hisi_qp_num)
		return EFAULT;
	if (hisi_get32(d + OFF_QUE_ISO_CFG) != cfg->hisi_que_iso_cfg)
		return EFAULT;
	/* observed in source: set once and never cleared */
	flat->match_done = TRUE;
	return 0;
}

/* hisi_acc_vf_load_state() on RESUMING -> STOP */
static gint
migd_sim_hisi_acc_finish(MigdSimDevice *self, const guint8 *d, gsize len, guint8 *state)
{
	guint64 dma_or = 0;

	/* only the match data came (the source VF was not ready): nothing to load */
	if (len == HISI_QM_MATCH_SIZE)
		return 0;
	if (len < HISI_ACC_VF_DATA_SIZE)
		return EINVAL;
	for (guint i = 0; i < 4; i++) {
		guint64 dma;
		memcpy(&dma, d + OFF_DMA + i * 8, 8);
		dma_or |= dma;
	}
	/* all DMA addresses zero: the VF is left QM_NOT_READY, registers untouched */
	if (dma_or == 0)
		return 0;
	memcpy(state, d, HISI_ACC_VF_DATA_SIZE);
	return 0;
}

static void
migd_sim_hisi_acc_touch(MigdSimDevice *self, guint8 *d, guint64 n_units)
{
	for (guint64 i = 0; i < n_units; i++) {
		guint64 r = migd_sim_prng_next(&self->rng);
		gsize off = OFF_REGS + (r % ((OFF_REGS_END - OFF_REGS) / 4)) * 4;
		hisi_put32(d + off, (guint32)(r >> 32));
	}
}

static const MigdSimFlatSpec migd_sim_hisi_acc_spec = {
    .size = HISI_ACC_VF_DATA_SIZE,
    .precopy_size = HISI_QM_MATCH_SIZE,
    .check_len = HISI_QM_MATCH_SIZE,
    .check = migd_sim_hisi_acc_check,
    /* hisi_acc_vf_resume_write(): pos + len > sizeof(struct acc_vf_data) */
    .overflow_errno = ENOMEM,
    .size_check_first = TRUE,
    .finish = migd_sim_hisi_acc_finish,
    .generate = migd_sim_hisi_acc_generate,
    .touch = migd_sim_hisi_acc_touch,
};

static gboolean
migd_sim_hisi_acc_init(MigdSimDevice *self, GError **error)
{
	return migd_sim_flat_init(self, &migd_sim_hisi_acc_spec, error);
}

const MigdSimBackend migd_sim_hisi_acc_backend = {
    .init = migd_sim_hisi_acc_init,
    .finalize = migd_sim_flat_finalize,
    .arc = migd_sim_flat_arc,
    .read = migd_sim_flat_read,
    .write = migd_sim_flat_write,
    .write_precheck = migd_sim_flat_write_precheck,
    .precopy_info = migd_sim_flat_precopy_info,
    .data_size = migd_sim_flat_data_size,
    .digest = migd_sim_flat_digest,
    .touch = migd_sim_flat_touch,
};
