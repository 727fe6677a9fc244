/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-sim-pages.h"

G_BEGIN_DECLS

/*
 * The mlx5 migration stream (drivers/vfio/pci/mlx5/cmd.h): records of
 *   struct mlx5_vf_migration_header { le64 record_size; le32 flags; le32 tag; }
 * flags 0 = mandatory, 1 = optional; tag 0 = FW_DATA, 1 = STOP_COPY_SIZE (le64).
 * Each save file starts with a STOP_COPY_SIZE record. The FW_DATA payload is
 * the firmware's own business; the simulator's "firmware" writes, per record
 * (one <= 8 MiB chunk as in chunk mode):
 *   chunk header { le64 magic; le32 n_entries; le32 flags (1 = last chunk of an
 *   image); le64 image seq; le64 state_size; le64 check } + n_entries x
 *   { le64 page; le64 key; u8 content[page length] }
 * and rejects (EIO, like a failed LOAD) a record whose header or entry list
 * does not match its check.
 */
#define MIGD_SIM_MLX5_HDR_SIZE		 16u
#define MIGD_SIM_MLX5_TAG_FW_DATA	 0u
#define MIGD_SIM_MLX5_TAG_STOP_COPY_SIZE 1u
#define MIGD_SIM_MLX5_FLAG_OPTIONAL	 1u
#define MIGD_SIM_MLX5_SIZE_RECORD	 (MIGD_SIM_MLX5_HDR_SIZE + 8u)
/* load_vhca_state_in.size is 32 bits */
#define MIGD_SIM_MLX5_MAX_LOAD_SIZE  0xffffffffull
#define MIGD_SIM_MLX5_CHUNK_HDR_SIZE 40u
/* the largest device image the simulated firmware loads (bounds the page table) */
#define MIGD_SIM_MLX5_MAX_STATE_SIZE (1ull << 40)
#define MIGD_SIM_MLX5_ENTRY_HDR_SIZE 16u
#define MIGD_SIM_MLX5_ENTRY_SIZE     (MIGD_SIM_MLX5_ENTRY_HDR_SIZE + MIGD_SIM_PAGE_SIZE)
/* keeps a record just under MAX_CHUNK_SIZE (SZ_8M) */
#define MIGD_SIM_MLX5_ENTRIES_PER_CHUNK 2040u

/* One SAVE: an immutable snapshot of (page, key) pairs, streamed from @file_off. */
typedef struct {
	gint ref;
	guint64 seq;
	guint64 state_size;
	GArray *entries;   /* MigdSimPageEntry, pages ascending; NULL: seeded */
	guint64 n_entries; /* entries->len, or every page of a seeded device */
	guint64 seed;	   /* entries NULL: entry i is (i, migd_sim_pages_seeded_key(seed, i)) */
	gboolean size_record;
	guint64 stop_copy_size;
	guint64 n_chunks;
	guint64 *chunk_check;
	guint64 len;
	/* set by the save file */
	guint64 file_off;
	gint64 start_us;
} MigdSimMlx5Image;

/* takes @entries */
MigdSimMlx5Image *migd_sim_mlx5_image_new(guint64 seq, guint64 state_size, GArray *entries,
					  gboolean size_record, guint64 stop_copy_size);
/* every page of a device whose keys are all seeded (migd_sim_pages_seeded): no list held, so a
 * full image of GiBs costs no memory */
MigdSimMlx5Image *migd_sim_mlx5_image_new_seeded(guint64 seq, guint64 state_size, guint64 seed,
						 gboolean size_record, guint64 stop_copy_size);
void migd_sim_mlx5_image_unref(MigdSimMlx5Image *self);
/* stream bytes of a FW image of @n_entries pages (an estimate when one is short) */
guint64 migd_sim_mlx5_image_estimate(guint64 n_entries);
/* generates image bytes [@off, @off + @len) */
void migd_sim_mlx5_image_read(MigdSimMlx5Image *self, guint64 off, guint8 *buf, gsize len);

/* The resume side: parses records as they arrive and loads complete ones. */
typedef struct _MigdSimMlx5Loader MigdSimMlx5Loader;

MigdSimMlx5Loader *migd_sim_mlx5_loader_new(MigdSimPages *pages);
void migd_sim_mlx5_loader_free(MigdSimMlx5Loader *self);
/* 0, or ENOMEM (record > MAX_LOAD_SIZE), EOPNOTSUPP (unknown mandatory tag), EINVAL, EIO */
gint migd_sim_mlx5_loader_write(MigdSimMlx5Loader *self, const guint8 *buf, gsize len);

G_END_DECLS
