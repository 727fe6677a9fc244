/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "migd-device.h"

G_BEGIN_DECLS

/*
 * Emulation of device DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_START/STOP/
 * REPORT) as the vfio core plus the mlx5 or pds variant driver implement it,
 * and (limits.iommu) of an IOMMU's dirty bits, which the simulated device's
 * platform IOMMU uses.
 *
 * Errors are MIGD_KERNEL_ERROR with the errno the kernel would return. The
 * object is NOT thread-safe: the simulated device serialises every call under
 * its own mutex, exactly as the drivers do under their state mutex.
 */

/* the core's LOG_MAX_RANGES: PAGE_SIZE / sizeof(struct ..._dma_logging_range) at 4 KiB */
#define MIGD_SIM_DIRTY_LOG_MAX_RANGES 256u
/* no device tracks this much at once; a larger request is a bug, not a workload */
#define MIGD_SIM_DIRTY_MAX_BITMAP_BYTES (256ull * 1024 * 1024)
/* the smallest REPORT page size the core accepts (SZ_4K) */
#define MIGD_SIM_DIRTY_MIN_REPORT_PAGE_SIZE 4096ull

typedef struct {
	/*
	 * ranges the device can track at once (mlx5 pg_track_max_num_range, pds
	 * max_regions); more are combined. 0: no device logging (EOPNOTSUPP).
	 * G_MAXUINT: unlimited.
	 */
	guint max_ranges;
	/*
	 * powers of two: mlx5 rounds the requested page size down to a power of two,
	 * clamps it into [min, max] and writes it back. Both 0: used as is (pds).
	 */
	guint64 min_page_size;
	guint64 max_page_size;
	/*
	 * bytes (a power of two): mlx5 rejects ilog2(roundup_pow_of_two(sum of the
	 * tracked lengths)) > ilog2(max_addr_space) with EOPNOTSUPP. 0: no limit.
	 */
	guint64 max_addr_space;
	/* pds: one REPORT must lie inside one tracked range, else EINVAL */
	gboolean report_single_range;
	/*
	 * An IOMMU's dirty tracking rather than a device's: START tracks the
	 * mappings it is given, any number (none too), without the vfio core's
	 * DMA_LOGGING_START checks; overlapping ranges are joined, empty ones
	 * ignored. Use with max_ranges G_MAXUINT.
	 */
	gboolean iommu;
} MigdSimDirtyLimits;

typedef struct _MigdSimDirty MigdSimDirty;

MigdSimDirty *migd_sim_dirty_new(const MigdSimDirtyLimits *limits);
void migd_sim_dirty_free(MigdSimDirty *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdSimDirty, migd_sim_dirty_free)

const MigdSimDirtyLimits *migd_sim_dirty_get_limits(MigdSimDirty *self);

/*
 * DMA_LOGGING_START. @ranges is not modified. *@page_size in: the hint; out (only
 * on success): the tracker page size the driver chose.
 */
gboolean migd_sim_dirty_start(MigdSimDirty *self, const MigdIovaRange *ranges, guint n_ranges,
			      guint64 *page_size, GError **error);
/* DMA_LOGGING_STOP: always succeeds, also when not started (mlx5) */
void migd_sim_dirty_stop(MigdSimDirty *self);

/*
 * DMA_LOGGING_REPORT: read and clear the log for [@iova, @iova + @length). Only
 * sets bits in @bitmap (host-endian u64 words, bit n = @iova + n * @page_size),
 * which must hold migd_sim_dirty_report_bitmap_words(@length, @page_size) words.
 */
gboolean migd_sim_dirty_report(MigdSimDirty *self, guint64 iova, guint64 length, guint64 page_size,
			       guint64 *bitmap, GError **error);
/* the same; with @no_clear the log is only read (iommufd's GET_DIRTY_BITMAP_NO_CLEAR) */
gboolean migd_sim_dirty_report_full(MigdSimDirty *self, guint64 iova, guint64 length,
				    guint64 page_size, gboolean no_clear, guint64 *bitmap,
				    GError **error);
/* ((length - 1) / page_size) / 64 + 1, as the kernel's iova_bitmap; 0 for bad input */
guint64 migd_sim_dirty_report_bitmap_words(guint64 length, guint64 page_size);

/* the device wrote guest memory; ignored outside the tracked ranges or when stopped */
void migd_sim_dirty_record_dma_write(MigdSimDirty *self, guint64 iova, guint64 length);

gboolean migd_sim_dirty_is_active(MigdSimDirty *self);
/* active, but every REPORT fails with EIO until stop + start (mlx5 tracker error) */
gboolean migd_sim_dirty_is_in_error(MigdSimDirty *self);
/* the tracker page size chosen by the last successful start; 0 when stopped */
guint64 migd_sim_dirty_get_page_size(MigdSimDirty *self);
/* the ranges being tracked after combining, sorted; valid until the next start or stop */
const MigdIovaRange *migd_sim_dirty_get_tracked_ranges(MigdSimDirty *self, guint *n_ranges);
/* dirty tracker pages not yet reported */
guint64 migd_sim_dirty_count_dirty(MigdSimDirty *self);
/* bytes of bitmap memory held for the tracked ranges */
guint64 migd_sim_dirty_get_memory_usage(MigdSimDirty *self);

/*
 * Fault injection: the next @n_ok_reports_before_failure REPORTs that pass every
 * check succeed, the one after fails with EIO and puts the tracker in error.
 * Stays armed across stop/start until it fires.
 */
void migd_sim_dirty_inject_report_error(MigdSimDirty *self, guint n_ok_reports_before_failure);
void migd_sim_dirty_cancel_report_error(MigdSimDirty *self);

/* The simulator's "DMA write pattern" knob. */
typedef enum {
	MIGD_SIM_DMA_PATTERN_NONE,	 /* the device writes nothing */
	MIGD_SIM_DMA_PATTERN_SEQUENTIAL, /* walks the tracked space, wrapping */
	MIGD_SIM_DMA_PATTERN_RANDOM,	 /* uniform over the tracked pages */
	MIGD_SIM_DMA_PATTERN_HOTSPOT,	 /* uniform over the first hotspot_percent % */
} MigdSimDmaPatternKind;

typedef struct {
	MigdSimDmaPatternKind kind;
	guint hotspot_percent; /* 1..100, HOTSPOT only */
} MigdSimDmaPattern;

/* "none", "sequential", "random", "hotspot:<1..100>"; MIGD_ERROR_INVALID_ARGUMENT */
gboolean migd_sim_dma_pattern_parse(const gchar *str, MigdSimDmaPattern *pattern, GError **error);
gchar *migd_sim_dma_pattern_to_string(const MigdSimDmaPattern *pattern);

/*
 * Records ceil(@bytes / tracker page size) page-sized writes following @pattern
 * over the tracked space (the tracked ranges laid end to end). Deterministic
 * given *@rng_state (advanced) and, for SEQUENTIAL, the position reached by the
 * previous calls since start. Costs O(writes). Returns the writes recorded.
 */
guint64 migd_sim_dirty_generate(MigdSimDirty *self, const MigdSimDmaPattern *pattern, guint64 bytes,
				guint64 *rng_state);
/*
 * The same, and every page written is also recorded in @mirror (if not NULL):
 * one DMA stream seen by a device's logging and by the IOMMU alike.
 */
guint64 migd_sim_dirty_generate_mirrored(MigdSimDirty *self, const MigdSimDmaPattern *pattern,
					 guint64 bytes, guint64 *rng_state, MigdSimDirty *mirror);
/*
 * The same, and every page written is also appended to @record (if not NULL)
 * as a MigdIovaRange of one page at this tracker's page size (a page right
 * after the last range extends it): the simulator's own account of its DMA,
 * independent of any bitmap that is read and cleared.
 */
guint64 migd_sim_dirty_generate_recorded(MigdSimDirty *self, const MigdSimDmaPattern *pattern,
					 guint64 bytes, guint64 *rng_state, MigdSimDirty *mirror,
					 GArray *record);

G_END_DECLS
