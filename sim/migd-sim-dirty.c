/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migd-error.h"
#include "migd-sim-dirty.h"

/* one tracked range with its dirty bitmap at the tracker page size */
typedef struct {
	guint64 start;	    /* first byte */
	guint64 last;	    /* last byte, inclusive (the kernel's interval_tree_node) */
	guint64 first_page; /* start / page_size: pages are aligned to absolute IOVA */
	guint64 n_pages;
	guint64 gen_offset; /* pages of the ranges before this one, for the generator */
	guint64 *bits;
} MigdSimDirtyRegion;

struct _MigdSimDirty {
	MigdSimDirtyLimits limits;
	gboolean active;
	gboolean in_error;
	guint64 page_size;
	MigdSimDirtyRegion *regions;
	guint n_regions;
	MigdIovaRange *tracked; /* the same ranges for get_tracked_ranges() */
	guint64 total_pages;
	guint64 seq_cursor;
	gboolean fault_armed;
	guint fault_countdown;
};

static gboolean
migd_sim_dirty_is_pow2(guint64 v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

static guint
migd_sim_dirty_ilog2(guint64 v)
{
	return 63 - (guint)__builtin_clzll(v);
}

/* u64 words for @n_pages bits, without wrapping for any @n_pages */
static guint64
migd_sim_dirty_words(guint64 n_pages)
{
	return n_pages / 64 + (n_pages % 64 != 0 ? 1 : 0);
}

MigdSimDirty *
migd_sim_dirty_new(const MigdSimDirtyLimits *limits)
{
	MigdSimDirty *self;

	g_return_val_if_fail(limits != NULL, NULL);
	/* either no clamp at all, or a valid power-of-two window */
	g_return_val_if_fail((limits->min_page_size == 0 && limits->max_page_size == 0) ||
				 (migd_sim_dirty_is_pow2(limits->min_page_size) &&
				  migd_sim_dirty_is_pow2(limits->max_page_size) &&
				  limits->min_page_size <= limits->max_page_size),
			     NULL);
	g_return_val_if_fail(
	    limits->max_addr_space == 0 || migd_sim_dirty_is_pow2(limits->max_addr_space), NULL);
	g_return_val_if_fail(!limits->iommu || limits->max_ranges == G_MAXUINT, NULL);

	self = g_new0(MigdSimDirty, 1);
	self->limits = *limits;
	return self;
}

static void
migd_sim_dirty_clear_regions(MigdSimDirty *self)
{
	for (guint i = 0; i < self->n_regions; i++)
		g_free(self->regions[i].bits);
	g_clear_pointer(&self->regions, g_free);
	g_clear_pointer(&self->tracked, g_free);
	self->n_regions = 0;
	self->total_pages = 0;
}

void
migd_sim_dirty_free(MigdSimDirty *self)
{
	if (self == NULL)
		return;
	migd_sim_dirty_clear_regions(self);
	g_free(self);
}

const MigdSimDirtyLimits *
migd_sim_dirty_get_limits(MigdSimDirty *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	return &self->limits;
}

/* IS_ALIGNED() from the kernel: a mask test, so it says nothing sane for non-powers of two */
static gboolean
migd_sim_dirty_is_aligned(guint64 v, guint64 a)
{
	return (v & (a - 1)) == 0;
}

/* [start, last] inclusive, as the kernel's interval tree; zero-length ranges are empty */
typedef struct {
	guint64 start;
	guint64 last;
} MigdSimDirtySpan;

static gint
migd_sim_dirty_span_cmp(gconstpointer a, gconstpointer b)
{
	const MigdSimDirtySpan *sa = a;
	const MigdSimDirtySpan *sb = b;
	if (sa->start != sb->start)
		return sa->start < sb->start ? -1 : 1;
	return 0;
}

/*
 * vfio_core's START checks in the kernel's order: per range alignment, then
 * overflow, then overlap with the ranges before it. The overlap test is pairwise
 * (at most 256² comparisons) so that the first failing range decides the errno
 * exactly as the kernel's incremental interval-tree insert does.
 */
static gboolean
migd_sim_dirty_core_check_start(const MigdIovaRange *ranges, guint n_ranges, guint64 page_size,
				GError **error)
{
	if (n_ranges == 0) {
		migd_set_errno_error(error, EINVAL, "DMA_LOGGING_START: num_ranges is 0");
		return FALSE;
	}
	if (n_ranges > MIGD_SIM_DIRTY_LOG_MAX_RANGES) {
		migd_set_errno_error(error, E2BIG, "DMA_LOGGING_START: %u ranges, at most %u",
				     n_ranges, MIGD_SIM_DIRTY_LOG_MAX_RANGES);
		return FALSE;
	}
	for (guint i = 0; i < n_ranges; i++) {
		guint64 end;

		if (!migd_sim_dirty_is_aligned(ranges[i].iova, page_size) ||
		    !migd_sim_dirty_is_aligned(ranges[i].length, page_size)) {
			migd_set_errno_error(error, EINVAL,
					     "DMA_LOGGING_START: range %u (0x%" G_GINT64_MODIFIER
					     "x+0x%" G_GINT64_MODIFIER
					     "x) not aligned to page size 0x%" G_GINT64_MODIFIER
					     "x",
					     i, ranges[i].iova, ranges[i].length, page_size);
			return FALSE;
		}
		if (__builtin_add_overflow(ranges[i].iova, ranges[i].length, &end) ||
		    end > G_MAXULONG) {
			migd_set_errno_error(error, EOVERFLOW,
					     "DMA_LOGGING_START: range %u (0x%" G_GINT64_MODIFIER
					     "x+0x%" G_GINT64_MODIFIER "x) overflows",
					     i, ranges[i].iova, ranges[i].length);
			return FALSE;
		}
		if (ranges[i].length == 0)
			continue;
		for (guint j = 0; j < i; j++) {
			if (ranges[j].length == 0)
				continue;
			if (ranges[j].iova <= ranges[i].iova + ranges[i].length - 1 &&
			    ranges[j].iova + ranges[j].length - 1 >= ranges[i].iova) {
				migd_set_errno_error(
				    error, EINVAL, "DMA_LOGGING_START: range %u overlaps range %u",
				    i, j);
				return FALSE;
			}
		}
	}
	return TRUE;
}

/* vfio_combine_iova_ranges(): @spans sorted; returns the new count */
static guint
migd_sim_dirty_combine(MigdSimDirtySpan *spans, guint n_spans, guint req)
{
	if (req == 1) {
		spans[0].last = spans[n_spans - 1].last;
		return 1;
	}
	while (n_spans > req) {
		guint64 min_gap = G_MAXUINT64;
		guint best = 0;

		/* strict '<': the lowest of equal gaps merges first, as in the kernel */
		for (guint i = 1; i < n_spans; i++) {
			guint64 gap = spans[i].start - spans[i - 1].last;
			if (gap < min_gap) {
				min_gap = gap;
				best = i;
			}
		}
		spans[best - 1].last = spans[best].last;
		memmove(&spans[best], &spans[best + 1], (n_spans - best - 1) * sizeof(spans[0]));
		n_spans--;
	}
	return n_spans;
}

/* the page size the driver tracks at: mlx5 ilog2 + clamp, pds as is */
static gboolean
migd_sim_dirty_choose_page_size(MigdSimDirty *self, guint64 hint, guint64 *chosen, GError **error)
{
	guint log;

	if (self->limits.min_page_size == 0) {
		/* pds takes ilog2() of it; a non-power of two would silently round */
		if (!migd_sim_dirty_is_pow2(hint)) {
			migd_set_errno_error(error, EINVAL,
					     "DMA_LOGGING_START: page size 0x%" G_GINT64_MODIFIER
					     "x is not a power of two",
					     hint);
			return FALSE;
		}
		*chosen = hint;
		return TRUE;
	}
	if (hint == 0) {
		migd_set_errno_error(error, EINVAL, "DMA_LOGGING_START: page size is 0");
		return FALSE;
	}
	log = migd_sim_dirty_ilog2(hint);
	log = MAX(log, migd_sim_dirty_ilog2(self->limits.min_page_size));
	log = MIN(log, migd_sim_dirty_ilog2(self->limits.max_page_size));
	*chosen = 1ull << log;
	return TRUE;
}

static gboolean
migd_sim_dirty_check_addr_space(MigdSimDirty *self, const MigdSimDirtySpan *spans, guint n_spans,
				GError **error)
{
	guint64 sum = 0;
	guint log;

	if (self->limits.max_addr_space == 0)
		return TRUE;
	/* non-overlapping ranges below ULONG_MAX: the sum cannot wrap */
	for (guint i = 0; i < n_spans; i++)
		sum += spans[i].last - spans[i].start + 1;
	/* ilog2(roundup_pow_of_two(sum)) */
	if (sum <= 1)
		log = 0;
	else if (sum > (1ull << 63))
		log = 64;
	else
		log = migd_sim_dirty_ilog2(sum - 1) + 1;
	if (log > migd_sim_dirty_ilog2(self->limits.max_addr_space)) {
		migd_set_errno_error(error, EOPNOTSUPP,
				     "DMA_LOGGING_START: address space 2^%u exceeds the device's "
				     "2^%u",
				     log, migd_sim_dirty_ilog2(self->limits.max_addr_space));
		return FALSE;
	}
	return TRUE;
}

/* bitmaps for the combined spans, or ENOMEM before allocating anything absurd */
static gboolean
migd_sim_dirty_alloc_regions(MigdSimDirty *self, const MigdSimDirtySpan *spans, guint n_spans,
			     guint64 page_size, GError **error)
{
	guint64 total_bytes = 0;
	guint64 total_pages = 0;
	g_autofree MigdSimDirtyRegion *regions = g_new0(MigdSimDirtyRegion, n_spans);

	for (guint i = 0; i < n_spans; i++) {
		MigdSimDirtyRegion *r = &regions[i];
		r->start = spans[i].start;
		r->last = spans[i].last;
		r->first_page = r->start / page_size;
		r->n_pages = r->last / page_size - r->first_page + 1;
		r->gen_offset = total_pages;
		/* checked per region first so that neither sum can wrap */
		if (migd_sim_dirty_words(r->n_pages) > MIGD_SIM_DIRTY_MAX_BITMAP_BYTES / 8) {
			total_pages = r->n_pages;
			total_bytes = migd_sim_dirty_words(r->n_pages) * sizeof(guint64);
			break;
		}
		total_pages += r->n_pages;
		total_bytes += migd_sim_dirty_words(r->n_pages) * sizeof(guint64);
	}
	if (total_bytes > MIGD_SIM_DIRTY_MAX_BITMAP_BYTES) {
		migd_set_errno_error(error, ENOMEM,
				     "DMA_LOGGING_START: tracking %" G_GUINT64_FORMAT
				     " pages of 0x%" G_GINT64_MODIFIER
				     "x bytes needs %" G_GUINT64_FORMAT
				     " MiB of bitmap, the simulator allows %llu MiB",
				     total_pages, page_size, total_bytes >> 20,
				     MIGD_SIM_DIRTY_MAX_BITMAP_BYTES >> 20);
		return FALSE;
	}
	for (guint i = 0; i < n_spans; i++) {
		regions[i].bits = g_try_new0(guint64, migd_sim_dirty_words(regions[i].n_pages));
		if (regions[i].bits == NULL) {
			for (guint j = 0; j < i; j++)
				g_free(regions[j].bits);
			migd_set_errno_error(error, ENOMEM,
					     "DMA_LOGGING_START: cannot allocate the bitmap");
			return FALSE;
		}
	}

	self->regions = g_steal_pointer(&regions);
	self->n_regions = n_spans;
	self->total_pages = total_pages;
	self->tracked = g_new0(MigdIovaRange, n_spans);
	for (guint i = 0; i < n_spans; i++) {
		self->tracked[i].iova = spans[i].start;
		self->tracked[i].length = spans[i].last - spans[i].start + 1;
	}
	return TRUE;
}

/*
 * The IOMMU's START: the mappings as they are, sorted, overlaps joined (an IOAS
 * or a type1 container never holds overlapping ones), empty ones dropped.
 * Touching mappings stay apart: type1 tells them apart in GET_BITMAP.
 */
static gboolean
migd_sim_dirty_start_iommu(MigdSimDirty *self, const MigdIovaRange *ranges, guint n_ranges,
			   guint64 *page_size, GError **error)
{
	g_autofree MigdSimDirtySpan *spans = g_new(MigdSimDirtySpan, MAX(n_ranges, 1));
	guint n_spans = 0;
	guint64 chosen = 0;

	if (self->active) {
		migd_set_errno_error(error, EINVAL, "IOMMU dirty tracking already started");
		return FALSE;
	}
	for (guint i = 0; i < n_ranges; i++) {
		guint64 end;

		if (__builtin_add_overflow(ranges[i].iova, ranges[i].length, &end) ||
		    end > G_MAXULONG) {
			migd_set_errno_error(error, EOVERFLOW,
					     "IOMMU dirty tracking: range %u (0x%" G_GINT64_MODIFIER
					     "x+0x%" G_GINT64_MODIFIER "x) overflows",
					     i, ranges[i].iova, ranges[i].length);
			return FALSE;
		}
		if (ranges[i].length == 0)
			continue;
		spans[n_spans].start = ranges[i].iova;
		spans[n_spans].last = end - 1;
		n_spans++;
	}
	qsort(spans, n_spans, sizeof(spans[0]), migd_sim_dirty_span_cmp);
	if (n_spans > 1) {
		guint out = 0;
		for (guint i = 1; i < n_spans; i++) {
			if (spans[i].start <= spans[out].last) {
				spans[out].last = MAX(spans[out].last, spans[i].last);
				continue;
			}
			spans[++out] = spans[i];
		}
		n_spans = out + 1;
	}
	if (!migd_sim_dirty_choose_page_size(self, *page_size, &chosen, error))
		return FALSE;
	if (!migd_sim_dirty_alloc_regions(self, spans, n_spans, chosen, error))
		return FALSE;
	self->active = TRUE;
	self->in_error = FALSE;
	self->page_size = chosen;
	self->seq_cursor = 0;
	*page_size = chosen;
	return TRUE;
}

gboolean
migd_sim_dirty_start(MigdSimDirty *self, const MigdIovaRange *ranges, guint n_ranges,
		     guint64 *page_size, GError **error)
{
	g_autofree MigdSimDirtySpan *spans = NULL;
	guint n_spans;
	guint64 chosen = 0;

	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(ranges != NULL || n_ranges == 0, FALSE);
	g_return_val_if_fail(page_size != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (self->limits.iommu)
		return migd_sim_dirty_start_iommu(self, ranges, n_ranges, page_size, error);
	if (!migd_sim_dirty_core_check_start(ranges, n_ranges, *page_size, error))
		return FALSE;

	/* from here on the driver's log_start */
	if (self->active) {
		migd_set_errno_error(error, EINVAL, "DMA_LOGGING_START: logging already started");
		return FALSE;
	}
	if (self->limits.max_ranges == 0) {
		migd_set_errno_error(error, EOPNOTSUPP,
				     "DMA_LOGGING_START: the device has no dirty tracking regions");
		return FALSE;
	}
	/* the core lets these through [unverified]; no device can track nothing */
	for (guint i = 0; i < n_ranges; i++) {
		if (ranges[i].length == 0) {
			migd_set_errno_error(error, EINVAL,
					     "DMA_LOGGING_START: range %u has length 0", i);
			return FALSE;
		}
	}

	/* a sorted copy: the caller's array is const */
	spans = g_new(MigdSimDirtySpan, n_ranges);
	for (guint i = 0; i < n_ranges; i++) {
		spans[i].start = ranges[i].iova;
		spans[i].last = ranges[i].iova + ranges[i].length - 1;
	}
	qsort(spans, n_ranges, sizeof(spans[0]), migd_sim_dirty_span_cmp);
	n_spans = n_ranges;
	if (n_spans > self->limits.max_ranges)
		n_spans = migd_sim_dirty_combine(spans, n_spans, self->limits.max_ranges);

	if (!migd_sim_dirty_choose_page_size(self, *page_size, &chosen, error))
		return FALSE;
	if (!migd_sim_dirty_check_addr_space(self, spans, n_spans, error))
		return FALSE;
	if (!migd_sim_dirty_alloc_regions(self, spans, n_spans, chosen, error))
		return FALSE;

	self->active = TRUE;
	self->in_error = FALSE;
	self->page_size = chosen;
	self->seq_cursor = 0;
	/* the core copies the control struct back only on success */
	*page_size = chosen;
	return TRUE;
}

void
migd_sim_dirty_stop(MigdSimDirty *self)
{
	g_return_if_fail(self != NULL);
	migd_sim_dirty_clear_regions(self);
	self->active = FALSE;
	self->in_error = FALSE;
	self->page_size = 0;
}

guint64
migd_sim_dirty_report_bitmap_words(guint64 length, guint64 page_size)
{
	if (length == 0 || page_size == 0)
		return 0;
	return ((length - 1) / page_size) / 64 + 1;
}

/* sets bits @lo..@hi inclusive */
static void
migd_sim_dirty_set_bits(guint64 *bitmap, guint64 lo, guint64 hi)
{
	while (lo <= hi) {
		guint64 word = lo / 64;

		if (hi / 64 == word) {
			bitmap[word] |= (~0ull << (lo % 64)) & (~0ull >> (63 - hi % 64));
			break;
		}
		bitmap[word] |= ~0ull << (lo % 64);
		lo = (word + 1) * 64;
	}
}

static const MigdSimDirtyRegion *
migd_sim_dirty_find_region(MigdSimDirty *self, guint64 iova, guint64 last)
{
	for (guint i = 0; i < self->n_regions; i++) {
		if (iova >= self->regions[i].start && last <= self->regions[i].last)
			return &self->regions[i];
	}
	return NULL;
}

/*
 * Reports and clears the dirty pages of @r overlapping [@iova, @rep_last]. A
 * tracker page is cleared only if the report covers all of it: a partly covered
 * page is reported now and again later, never lost (over-reporting is safe).
 */
static void
migd_sim_dirty_report_region(MigdSimDirty *self, MigdSimDirtyRegion *r, guint64 iova,
			     guint64 rep_last, guint64 rpage, gboolean no_clear, guint64 *bitmap)
{
	guint64 lo = MAX(r->start, iova);
	guint64 hi = MIN(r->last, rep_last);
	guint64 p0, p1;

	if (lo > hi)
		return;
	p0 = lo / self->page_size - r->first_page;
	p1 = hi / self->page_size - r->first_page;
	for (guint64 w = p0 / 64; w <= p1 / 64; w++) {
		guint64 bits = r->bits[w];
		if (w == p0 / 64)
			bits &= ~0ull << (p0 % 64);
		if (w == p1 / 64)
			bits &= ~0ull >> (63 - p1 % 64);
		while (bits != 0) {
			guint b = (guint)__builtin_ctzll(bits);
			guint64 page_start = (r->first_page + w * 64 + b) * self->page_size;
			guint64 page_last = page_start + (self->page_size - 1);
			guint64 a = MAX(page_start, iova);
			guint64 z = MIN(page_last, rep_last);

			/* iova_bitmap_set(): every report bit the dirty page overlaps */
			migd_sim_dirty_set_bits(bitmap, (a - iova) / rpage, (z - iova) / rpage);
			if (!no_clear && page_start >= iova && page_last <= rep_last)
				r->bits[w] &= ~(1ull << b);
			bits &= bits - 1;
		}
	}
}

gboolean
migd_sim_dirty_report(MigdSimDirty *self, guint64 iova, guint64 length, guint64 page_size,
		      guint64 *bitmap, GError **error)
{
	return migd_sim_dirty_report_full(self, iova, length, page_size, FALSE, bitmap, error);
}

gboolean
migd_sim_dirty_report_full(MigdSimDirty *self, guint64 iova, guint64 length, guint64 page_size,
			   gboolean no_clear, guint64 *bitmap, GError **error)
{
	guint64 end;
	guint64 rep_last;

	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	/* vfio core */
	if (page_size < MIGD_SIM_DIRTY_MIN_REPORT_PAGE_SIZE || !migd_sim_dirty_is_pow2(page_size)) {
		migd_set_errno_error(error, EINVAL,
				     "DMA_LOGGING_REPORT: bad page size 0x%" G_GINT64_MODIFIER "x",
				     page_size);
		return FALSE;
	}
	if (__builtin_add_overflow(iova, length, &end) || end > G_MAXULONG) {
		migd_set_errno_error(error, EOVERFLOW,
				     "DMA_LOGGING_REPORT: 0x%" G_GINT64_MODIFIER
				     "x+0x%" G_GINT64_MODIFIER "x overflows",
				     iova, length);
		return FALSE;
	}
	/* the kernel's iova_bitmap would compute a huge index for 0 [unverified] */
	if (length == 0) {
		migd_set_errno_error(error, EINVAL, "DMA_LOGGING_REPORT: length is 0");
		return FALSE;
	}
	if (bitmap == NULL) {
		migd_set_errno_error(error, EFAULT, "DMA_LOGGING_REPORT: no bitmap");
		return FALSE;
	}
	rep_last = iova + length - 1;

	/* the driver's log_read_and_clear */
	if (!self->active) {
		migd_set_errno_error(error, EINVAL, "DMA_LOGGING_REPORT: logging not started");
		return FALSE;
	}
	if (self->in_error) {
		migd_set_errno_error(error, EIO,
				     "DMA_LOGGING_REPORT: tracker in error, stop and start again");
		return FALSE;
	}
	if (self->limits.report_single_range &&
	    migd_sim_dirty_find_region(self, iova, rep_last) == NULL) {
		migd_set_errno_error(error, EINVAL,
				     "DMA_LOGGING_REPORT: 0x%" G_GINT64_MODIFIER
				     "x+0x%" G_GINT64_MODIFIER "x is not inside one tracked region",
				     iova, length);
		return FALSE;
	}
	if (self->fault_armed) {
		if (self->fault_countdown == 0) {
			/* like a CQ error: the tracker stays active but broken */
			self->fault_armed = FALSE;
			self->in_error = TRUE;
			migd_set_errno_error(error, EIO,
					     "DMA_LOGGING_REPORT: injected tracker failure");
			return FALSE;
		}
		self->fault_countdown--;
	}

	for (guint i = 0; i < self->n_regions; i++)
		migd_sim_dirty_report_region(self, &self->regions[i], iova, rep_last, page_size,
					     no_clear, bitmap);
	return TRUE;
}

void
migd_sim_dirty_record_dma_write(MigdSimDirty *self, guint64 iova, guint64 length)
{
	guint64 last;

	g_return_if_fail(self != NULL);
	if (!self->active || length == 0)
		return;
	/* a write running past the top of the address space is clipped there */
	if (__builtin_add_overflow(iova, length - 1, &last))
		last = G_MAXUINT64;

	for (guint i = 0; i < self->n_regions; i++) {
		MigdSimDirtyRegion *r = &self->regions[i];
		guint64 lo = MAX(r->start, iova);
		guint64 hi = MIN(r->last, last);
		guint64 p0, p1;

		if (lo > hi)
			continue;
		p0 = lo / self->page_size - r->first_page;
		p1 = hi / self->page_size - r->first_page;
		migd_sim_dirty_set_bits(r->bits, p0, p1);
	}
}

gboolean
migd_sim_dirty_is_active(MigdSimDirty *self)
{
	g_return_val_if_fail(self != NULL, FALSE);
	return self->active;
}

gboolean
migd_sim_dirty_is_in_error(MigdSimDirty *self)
{
	g_return_val_if_fail(self != NULL, FALSE);
	return self->in_error;
}

guint64
migd_sim_dirty_get_page_size(MigdSimDirty *self)
{
	g_return_val_if_fail(self != NULL, 0);
	return self->page_size;
}

const MigdIovaRange *
migd_sim_dirty_get_tracked_ranges(MigdSimDirty *self, guint *n_ranges)
{
	g_return_val_if_fail(self != NULL, NULL);
	if (n_ranges != NULL)
		*n_ranges = self->n_regions;
	return self->tracked;
}

guint64
migd_sim_dirty_count_dirty(MigdSimDirty *self)
{
	guint64 count = 0;

	g_return_val_if_fail(self != NULL, 0);
	for (guint i = 0; i < self->n_regions; i++) {
		guint64 n_words = migd_sim_dirty_words(self->regions[i].n_pages);
		for (guint64 w = 0; w < n_words; w++)
			count += (guint64)__builtin_popcountll(self->regions[i].bits[w]);
	}
	return count;
}

guint64
migd_sim_dirty_get_memory_usage(MigdSimDirty *self)
{
	guint64 bytes = 0;

	g_return_val_if_fail(self != NULL, 0);
	for (guint i = 0; i < self->n_regions; i++)
		bytes += migd_sim_dirty_words(self->regions[i].n_pages) * sizeof(guint64);
	return bytes;
}

void
migd_sim_dirty_inject_report_error(MigdSimDirty *self, guint n_ok_reports_before_failure)
{
	g_return_if_fail(self != NULL);
	self->fault_armed = TRUE;
	self->fault_countdown = n_ok_reports_before_failure;
}

void
migd_sim_dirty_cancel_report_error(MigdSimDirty *self)
{
	g_return_if_fail(self != NULL);
	self->fault_armed = FALSE;
	self->fault_countdown = 0;
}

gboolean
migd_sim_dma_pattern_parse(const gchar *str, MigdSimDmaPattern *pattern, GError **error)
{
	const gchar *arg;
	guint64 percent = 0;
	g_autoptr(GError) error_local = NULL;

	g_return_val_if_fail(pattern != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (str == NULL || str[0] == '\0') {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "DMA write pattern is empty; expected none, sequential, "
				    "random or hotspot:<percent>");
		return FALSE;
	}
	if (g_strcmp0(str, "none") == 0) {
		*pattern = (MigdSimDmaPattern){.kind = MIGD_SIM_DMA_PATTERN_NONE};
		return TRUE;
	}
	if (g_strcmp0(str, "sequential") == 0) {
		*pattern = (MigdSimDmaPattern){.kind = MIGD_SIM_DMA_PATTERN_SEQUENTIAL};
		return TRUE;
	}
	if (g_strcmp0(str, "random") == 0) {
		*pattern = (MigdSimDmaPattern){.kind = MIGD_SIM_DMA_PATTERN_RANDOM};
		return TRUE;
	}
	if (!g_str_has_prefix(str, "hotspot")) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "unknown DMA write pattern '%s'; expected none, sequential, random or "
			    "hotspot:<percent>",
			    str);
		return FALSE;
	}
	arg = str + strlen("hotspot");
	if (arg[0] != ':') {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "DMA write pattern '%s': expected hotspot:<percent>", str);
		return FALSE;
	}
	if (!g_ascii_string_to_unsigned(arg + 1, 10, 1, 100, &percent, &error_local)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "DMA write pattern '%s': the hotspot percentage must be an integer "
			    "from 1 to 100: %s",
			    str, error_local->message);
		return FALSE;
	}
	*pattern = (MigdSimDmaPattern){.kind = MIGD_SIM_DMA_PATTERN_HOTSPOT,
				       .hotspot_percent = (guint)percent};
	return TRUE;
}

gchar *
migd_sim_dma_pattern_to_string(const MigdSimDmaPattern *pattern)
{
	g_return_val_if_fail(pattern != NULL, NULL);
	switch (pattern->kind) {
	case MIGD_SIM_DMA_PATTERN_NONE:
		return g_strdup("none");
	case MIGD_SIM_DMA_PATTERN_SEQUENTIAL:
		return g_strdup("sequential");
	case MIGD_SIM_DMA_PATTERN_RANDOM:
		return g_strdup("random");
	case MIGD_SIM_DMA_PATTERN_HOTSPOT:
		return g_strdup_printf("hotspot:%u", pattern->hotspot_percent);
	default:
		break;
	}
	return g_strdup("invalid");
}

/* splitmix64: tiny, fast, and every seed (including 0) gives a good stream */
static guint64
migd_sim_dirty_splitmix64(guint64 *state)
{
	guint64 z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* appends the page at @iova to @record, extending the last range when it is the next page */
static void
migd_sim_dirty_record_page(GArray *record, guint64 iova, guint64 page_size)
{
	if (record->len > 0) {
		MigdIovaRange *last = &g_array_index(record, MigdIovaRange, record->len - 1);
		if (last->iova + last->length == iova) {
			last->length += page_size;
			return;
		}
	}
	g_array_append_val(record, ((MigdIovaRange){.iova = iova, .length = page_size}));
}

/*
 * marks the @index-th page of the tracked space (ranges laid end to end) dirty, in @mirror
 * and @record too
 */
static void
migd_sim_dirty_mark_linear(MigdSimDirty *self, guint64 index, MigdSimDirty *mirror, GArray *record)
{
	guint lo = 0;
	guint hi = self->n_regions - 1;
	MigdSimDirtyRegion *r;
	guint64 p;

	/* the last region whose gen_offset <= index */
	while (lo < hi) {
		guint mid = lo + (hi - lo + 1) / 2;
		if (self->regions[mid].gen_offset <= index)
			lo = mid;
		else
			hi = mid - 1;
	}
	r = &self->regions[lo];
	p = index - r->gen_offset;
	r->bits[p / 64] |= 1ull << (p % 64);
	if (mirror != NULL)
		migd_sim_dirty_record_dma_write(mirror, (r->first_page + p) * self->page_size,
						self->page_size);
	if (record != NULL)
		migd_sim_dirty_record_page(record, (r->first_page + p) * self->page_size,
					   self->page_size);
}

guint64
migd_sim_dirty_generate(MigdSimDirty *self, const MigdSimDmaPattern *pattern, guint64 bytes,
			guint64 *rng_state)
{
	return migd_sim_dirty_generate_mirrored(self, pattern, bytes, rng_state, NULL);
}

guint64
migd_sim_dirty_generate_mirrored(MigdSimDirty *self, const MigdSimDmaPattern *pattern,
				 guint64 bytes, guint64 *rng_state, MigdSimDirty *mirror)
{
	return migd_sim_dirty_generate_recorded(self, pattern, bytes, rng_state, mirror, NULL);
}

guint64
migd_sim_dirty_generate_recorded(MigdSimDirty *self, const MigdSimDmaPattern *pattern,
				 guint64 bytes, guint64 *rng_state, MigdSimDirty *mirror,
				 GArray *record)
{
	guint64 n_writes;
	guint64 span;

	g_return_val_if_fail(self != NULL, 0);
	g_return_val_if_fail(pattern != NULL, 0);
	g_return_val_if_fail(rng_state != NULL, 0);

	if (!self->active || self->total_pages == 0 || pattern->kind == MIGD_SIM_DMA_PATTERN_NONE)
		return 0;
	n_writes = bytes / self->page_size + (bytes % self->page_size != 0 ? 1 : 0);

	switch (pattern->kind) {
	case MIGD_SIM_DMA_PATTERN_SEQUENTIAL:
		/* past one full lap the same pages are written again: skip the repeats */
		for (guint64 i = 0; i < MIN(n_writes, self->total_pages); i++)
			migd_sim_dirty_mark_linear(self, (self->seq_cursor + i) % self->total_pages,
						   mirror, record);
		self->seq_cursor =
		    (self->seq_cursor + n_writes % self->total_pages) % self->total_pages;
		break;
	case MIGD_SIM_DMA_PATTERN_RANDOM:
	case MIGD_SIM_DMA_PATTERN_HOTSPOT:
		span = self->total_pages;
		if (pattern->kind == MIGD_SIM_DMA_PATTERN_HOTSPOT) {
			guint percent = CLAMP(pattern->hotspot_percent, 1, 100);
			/* total_pages < 2^31 (bitmap cap), so * 100 cannot wrap */
			span = MAX((self->total_pages * percent) / 100, 1);
		}
		/* modulo bias is < span / 2^64: irrelevant for a load generator */
		for (guint64 i = 0; i < n_writes; i++)
			migd_sim_dirty_mark_linear(
			    self, migd_sim_dirty_splitmix64(rng_state) % span, mirror, record);
		break;
	default:
		return 0;
	}
	return n_writes;
}
