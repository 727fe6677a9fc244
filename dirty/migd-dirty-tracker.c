/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty tracker (see migd-dirty-tracker.h): one device's DMA writes over a
 * migration, from the device's own DMA logging, the IOMMU's dirty bits, or
 * nothing at all (every page dirty).
 *
 * Three sets of ranges are in play:
 *   mapped   the caller's ranges, sorted and joined: what the guest can be
 *            written at;
 *   tracked  what the provider was STARTed on: mapped reduced to the range
 *            limit (migd_dirty_ranges_plan) and aligned out to the page size
 *            asked for (the vfio core checks the ranges against that hint);
 *   windows  mapped aligned out to the page size the provider chose, joined
 *            where two would share a page: one bitmap each, what a sync fills.
 * The provider may track more than the windows (the gaps the plan closed, and
 * whatever the driver combines further), but those bits never reach a window.
 */
#include "config.h"

#include "migd-dirty-tracker.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "migd-dirty-bitmap.h"
#include "migd-dirty-ranges.h"
#include "migd-error.h"
#include "migd-plugin-generic.h"

/*
 * Guest IOVAs stay far below this (x86 5-level paging: 2^57); with it no
 * alignment below (at most MIGD_DIRTY_TRACKER_MAX_PAGE_SIZE * 64) can wrap.
 */
#define MIGD_DIRTY_TRACKER_MAX_END (1ull << 63)
/* the largest page size asked for or accepted (mlx5 firmware goes up to 2 MiB or 1 GiB) */
#define MIGD_DIRTY_TRACKER_MAX_PAGE_SIZE (1ull << 40)
/* REPORT takes no smaller page size (the vfio core: SZ_4K) */
#define MIGD_DIRTY_TRACKER_MIN_PAGE_SIZE 4096ull
/* pages one REPORT covers at most: a multiple of 64, so slices stay word-aligned */
#define MIGD_DIRTY_TRACKER_REPORT_PAGES ((guint64)MIGD_DIRTY_TRACKER_REPORT_BYTES * 8)

typedef enum {
	MIGD_DIRTY_PROVIDER_DEVICE,
	MIGD_DIRTY_PROVIDER_IOMMU,
	MIGD_DIRTY_PROVIDER_ALL_DIRTY,
} MigdDirtyProvider;

struct _MigdDirtyTracker {
	MigdDevice *device;
	MigdPlugin *plugin;
	MigdPluginPolicy policy;
	MigdDirtyFallback fallback;
	MigdDirtyProvider provider;
	gboolean started; /* the provider's START succeeded and no STOP followed */
	gboolean stopped; /* migd_dirty_tracker_stop() ran: no more syncs */
	guint64 hint;	  /* the page size asked for at START (and every restart) */
	guint64 page_size;
	GArray *mapped;	 /* MigdIovaRange, sorted, joined */
	GArray *tracked; /* MigdIovaRange, sorted, disjoint: what START got */
	MigdDirtyWindow *windows;
	guint n_windows;
	guint64 *scratch; /* one REPORT's bitmap */
	gsize scratch_words;
	gboolean carry; /* the windows hold a trial REPORT's bits: the next sync keeps them */
	MigdDirtyTrackerStats stats;
};

static gboolean migd_dirty_tracker_report_extent(MigdDirtyTracker *self, guint64 start, guint64 end,
						 GError **error);
static gboolean migd_dirty_tracker_trial_report(MigdDirtyTracker *self, MigdDirtyProvider provider,
						GError **error);

static const gchar *
migd_dirty_provider_to_string(MigdDirtyProvider provider)
{
	switch (provider) {
	case MIGD_DIRTY_PROVIDER_DEVICE:
		return "device";
	case MIGD_DIRTY_PROVIDER_IOMMU:
		return "iommu";
	case MIGD_DIRTY_PROVIDER_ALL_DIRTY:
	default:
		return "all-dirty";
	}
}

/* what the logs call it */
static const gchar *
migd_dirty_provider_describe(MigdDirtyProvider provider)
{
	switch (provider) {
	case MIGD_DIRTY_PROVIDER_DEVICE:
		return "device DMA logging";
	case MIGD_DIRTY_PROVIDER_IOMMU:
		return "IOMMU dirty tracking";
	case MIGD_DIRTY_PROVIDER_ALL_DIRTY:
	default:
		return "all-dirty tracking";
	}
}

static const gchar *
migd_dirty_tracker_name(MigdDirtyTracker *self)
{
	const gchar *name = migd_device_get_name(self->device);
	return name != NULL ? name : "device";
}

static gboolean
migd_dirty_error_is_gone(const GError *error)
{
	return g_error_matches(error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE) ||
	       migd_error_matches_errno(error, ENODEV);
}

static gboolean
migd_dirty_is_pow2(guint64 v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

static guint64
migd_dirty_host_page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	guint64 v = ps > 0 ? (guint64)ps : MIGD_DIRTY_TRACKER_MIN_PAGE_SIZE;

	if (!migd_dirty_is_pow2(v) || v > MIGD_DIRTY_TRACKER_MAX_PAGE_SIZE)
		return MIGD_DIRTY_TRACKER_MIN_PAGE_SIZE;
	return MAX(v, MIGD_DIRTY_TRACKER_MIN_PAGE_SIZE);
}

/* the page size to ask @provider for: the plugin's wish for the device, else the host's */
static guint64
migd_dirty_tracker_hint(MigdDirtyTracker *self, MigdDirtyProvider provider)
{
	guint64 wish = self->policy.tracker_page_size;

	if (provider != MIGD_DIRTY_PROVIDER_DEVICE || wish == 0)
		return migd_dirty_host_page_size();
	wish = MIN(wish, MIGD_DIRTY_TRACKER_MAX_PAGE_SIZE);
	/* a power of two, as every driver takes ilog2() of it */
	return 1ull << (63 - __builtin_clzll(wish));
}

/* ---- ranges ---- */

/* what START is given: the mapped ranges reduced to @max_ranges, aligned to @hint */
static GArray *
migd_dirty_tracker_plan_tracked(MigdDirtyTracker *self, guint max_ranges, guint64 hint)
{
	g_autoptr(GArray) plan = NULL;
	g_autoptr(GError) error = NULL;

	/* cannot fail: the mapped ranges were checked by a plan already */
	plan = migd_dirty_ranges_plan((const MigdIovaRange *)self->mapped->data, self->mapped->len,
				      max_ranges, &error);
	g_assert_no_error(error);
	return migd_dirty_ranges_align(plan, hint);
}

/* ---- windows ---- */

static void
migd_dirty_tracker_free_windows(MigdDirtyTracker *self)
{
	for (guint i = 0; i < self->n_windows; i++)
		g_free(self->windows[i].bitmap);
	g_clear_pointer(&self->windows, g_free);
	self->n_windows = 0;
	g_clear_pointer(&self->scratch, g_free);
	self->scratch_words = 0;
	self->stats.total_pages = 0;
}

static guint64
migd_dirty_words(guint64 n_pages)
{
	return n_pages / 64 + (n_pages % 64 != 0 ? 1 : 0);
}

/* one window per mapped range at @page_size, joined where two would share a page */
static gboolean
migd_dirty_tracker_set_windows(MigdDirtyTracker *self, guint64 page_size, GError **error)
{
	g_autoptr(GArray) spans = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	MigdDirtyWindow *windows;
	guint64 total_pages = 0;

	for (guint i = 0; i < self->mapped->len; i++) {
		const MigdIovaRange *r = &g_array_index(self->mapped, MigdIovaRange, i);
		guint64 start = migd_dirty_ranges_align_down(r->iova, page_size);
		guint64 end = migd_dirty_ranges_align_up(r->iova + r->length, page_size);

		if (spans->len > 0) {
			MigdIovaRange *prev = &g_array_index(spans, MigdIovaRange, spans->len - 1);
			/* overlapping only: touching windows keep their own bitmaps */
			if (start < prev->iova + prev->length) {
				prev->length = MAX(prev->iova + prev->length, end) - prev->iova;
				continue;
			}
		}
		g_array_append_val(spans, ((MigdIovaRange){.iova = start, .length = end - start}));
	}

	windows = g_new0(MigdDirtyWindow, spans->len);
	for (guint i = 0; i < spans->len; i++) {
		const MigdIovaRange *s = &g_array_index(spans, MigdIovaRange, i);
		MigdDirtyWindow *w = &windows[i];

		w->iova = s->iova;
		w->page_size = page_size;
		w->n_pages = s->length / page_size;
		w->bitmap = g_try_new0(guint64, migd_dirty_words(w->n_pages));
		if (w->bitmap == NULL) {
			for (guint j = 0; j < i; j++)
				g_free(windows[j].bitmap);
			g_free(windows);
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
				    "%s: cannot allocate a dirty bitmap of %" G_GUINT64_FORMAT
				    " pages",
				    migd_dirty_tracker_name(self), w->n_pages);
			return FALSE;
		}
		total_pages += w->n_pages;
	}

	migd_dirty_tracker_free_windows(self);
	self->windows = windows;
	self->n_windows = spans->len;
	self->page_size = page_size;
	self->stats.total_pages = total_pages;
	return TRUE;
}

static void
migd_dirty_tracker_clear_windows(MigdDirtyTracker *self)
{
	for (guint i = 0; i < self->n_windows; i++)
		memset(self->windows[i].bitmap, 0,
		       migd_dirty_words(self->windows[i].n_pages) * sizeof(guint64));
}

/* every page of every window dirty; the bits past n_pages stay zero */
static void
migd_dirty_tracker_fill_windows(MigdDirtyTracker *self)
{
	for (guint i = 0; i < self->n_windows; i++) {
		MigdDirtyWindow *w = &self->windows[i];
		guint64 full = w->n_pages / 64;

		memset(w->bitmap, 0xff, full * sizeof(guint64));
		if (w->n_pages % 64 != 0)
			w->bitmap[full] = (1ull << (w->n_pages % 64)) - 1;
	}
}

/* @n (1..64) bits of @src from bit @bit on, in the low bits */
static guint64
migd_dirty_bits_get(const guint64 *src, guint64 bit, guint n)
{
	guint64 word = bit / 64;
	guint off = (guint)(bit % 64);
	guint64 v = src[word] >> off;

	if (off != 0 && off + n > 64)
		v |= src[word + 1] << (64 - off);
	return n == 64 ? v : v & ((1ull << n) - 1);
}

/* ORs bits [@src_bit, @src_bit + @n) of @src into @dst from @dst_bit on */
static void
migd_dirty_bits_or(guint64 *dst, guint64 dst_bit, const guint64 *src, guint64 src_bit, guint64 n)
{
	while (n > 0) {
		guint off = (guint)(dst_bit % 64);
		guint take = (guint)MIN((guint64)(64 - off), n);

		dst[dst_bit / 64] |= migd_dirty_bits_get(src, src_bit, take) << off;
		dst_bit += take;
		src_bit += take;
		n -= take;
	}
}

/* the first window that ends after @iova */
static guint
migd_dirty_tracker_window_after(MigdDirtyTracker *self, guint64 iova)
{
	guint lo = 0;
	guint hi = self->n_windows;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		const MigdDirtyWindow *w = &self->windows[mid];
		if (w->iova + w->n_pages * w->page_size <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* a REPORT's bits (pages from @iova on, @n_pages of them) into every window they overlap */
static void
migd_dirty_tracker_distribute(MigdDirtyTracker *self, guint64 iova, guint64 n_pages,
			      const guint64 *bits)
{
	guint64 first = iova / self->page_size;
	guint64 end = first + n_pages;

	for (guint i = migd_dirty_tracker_window_after(self, iova); i < self->n_windows; i++) {
		MigdDirtyWindow *w = &self->windows[i];
		guint64 w_first = w->iova / w->page_size;
		guint64 lo = MAX(first, w_first);
		guint64 hi = MIN(end, w_first + w->n_pages);

		if (w_first >= end)
			break;
		if (lo < hi)
			migd_dirty_bits_or(w->bitmap, lo - w_first, bits, lo - first, hi - lo);
	}
}

/* ---- providers ---- */

static gboolean
migd_dirty_tracker_provider_start(MigdDirtyTracker *self, MigdDirtyProvider provider,
				  const GArray *ranges, guint64 *page_size, GError **error)
{
	const MigdIovaRange *r = (const MigdIovaRange *)ranges->data;

	if (provider == MIGD_DIRTY_PROVIDER_DEVICE)
		return migd_device_dma_logging_start(self->device, r, ranges->len, page_size,
						     error);
	return migd_device_iommu_dirty_start(self->device, r, ranges->len, page_size, error);
}

static gboolean
migd_dirty_tracker_provider_stop(MigdDirtyTracker *self, GError **error)
{
	if (self->provider == MIGD_DIRTY_PROVIDER_DEVICE)
		return migd_device_dma_logging_stop(self->device, error);
	if (self->provider == MIGD_DIRTY_PROVIDER_IOMMU)
		return migd_device_iommu_dirty_stop(self->device, error);
	return TRUE;
}

/* STOP once for a START, logging a failure: nothing else can be done about it */
static void
migd_dirty_tracker_stop_provider(MigdDirtyTracker *self)
{
	g_autoptr(GError) error = NULL;

	if (!self->started)
		return;
	self->started = FALSE;
	if (migd_dirty_tracker_provider_stop(self, &error))
		return;
	if (migd_dirty_error_is_gone(error))
		g_message("%s: stopping %s: %s (the device is gone)", migd_dirty_tracker_name(self),
			  migd_dirty_provider_describe(self->provider), error->message);
	else
		g_warning("%s: stopping %s failed, the device is left as it is: %s",
			  migd_dirty_tracker_name(self),
			  migd_dirty_provider_describe(self->provider), error->message);
}

static gboolean
migd_dirty_tracker_check_page_size(MigdDirtyTracker *self, MigdDirtyProvider provider,
				   guint64 page_size, GError **error)
{
	if (migd_dirty_is_pow2(page_size) && page_size >= MIGD_DIRTY_TRACKER_MIN_PAGE_SIZE &&
	    page_size <= MIGD_DIRTY_TRACKER_MAX_PAGE_SIZE)
		return TRUE;
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
		    "%s: %s chose page size %" G_GUINT64_FORMAT
		    ", REPORT needs a power of two from %llu to %llu",
		    migd_dirty_tracker_name(self), migd_dirty_provider_describe(provider),
		    page_size, MIGD_DIRTY_TRACKER_MIN_PAGE_SIZE, MIGD_DIRTY_TRACKER_MAX_PAGE_SIZE);
	return FALSE;
}

/*
 * STARTs @provider on the mapped ranges reduced to the plugin's limit (device
 * only); a driver that answers E2BIG gets half as many ranges, down to one.
 */
static gboolean
migd_dirty_tracker_start_provider(MigdDirtyTracker *self, MigdDirtyProvider provider,
				  GError **error)
{
	guint max_ranges =
	    provider == MIGD_DIRTY_PROVIDER_DEVICE ? self->policy.tracker_max_ranges : 0;
	guint64 hint = migd_dirty_tracker_hint(self, provider);
	g_autoptr(GArray) tracked = NULL;
	g_autoptr(GError) error_local = NULL;
	guint64 page_size;

	for (;;) {
		g_clear_pointer(&tracked, g_array_unref);
		g_clear_error(&error_local);
		tracked = migd_dirty_tracker_plan_tracked(self, max_ranges, hint);
		page_size = hint;
		if (migd_dirty_tracker_provider_start(self, provider, tracked, &page_size,
						      &error_local))
			break;
		if (!migd_error_matches_errno(error_local, E2BIG) || tracked->len <= 1) {
			g_propagate_error(error, g_steal_pointer(&error_local));
			return FALSE;
		}
		max_ranges = MAX(tracked->len / 2, 1u);
		g_message("%s: %s refused %u ranges (%s): trying %u", migd_dirty_tracker_name(self),
			  migd_dirty_provider_describe(provider), tracked->len,
			  error_local->message, max_ranges);
	}
	self->provider = provider;
	self->started = TRUE;
	if (!migd_dirty_tracker_check_page_size(self, provider, page_size, error) ||
	    !migd_dirty_tracker_set_windows(self, page_size, error)) {
		migd_dirty_tracker_stop_provider(self);
		return FALSE;
	}
	self->hint = hint;
	g_clear_pointer(&self->tracked, g_array_unref);
	self->tracked = g_steal_pointer(&tracked);
	self->stats.tracked_bytes =
	    migd_dirty_ranges_total((const MigdIovaRange *)self->tracked->data, self->tracked->len);
	if (!migd_dirty_tracker_trial_report(self, provider, error)) {
		migd_dirty_tracker_stop_provider(self);
		return FALSE;
	}
	return TRUE;
}

/*
 * A START that succeeds does not prove REPORT works: mtty's DMA logging ops
 * start and stop, but its REPORT is EOPNOTSUPP on kernels without the
 * iova_bitmap (CONFIG_IOMMUFD_DRIVER). One REPORT of the first window's first
 * pages now tells; EOPNOTSUPP / ENOTTY mean this provider can never report, so
 * the caller falls back. Any other error is left to the syncs (and recovery).
 * What the trial read is kept for the first sync (read-and-clear).
 */
static gboolean
migd_dirty_tracker_trial_report(MigdDirtyTracker *self, MigdDirtyProvider provider, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	const MigdDirtyWindow *w;
	guint64 start;

	if (self->n_windows == 0)
		return TRUE;
	w = &self->windows[0];
	start = w->iova;
	migd_dirty_tracker_clear_windows(self);
	self->carry = TRUE;
	if (migd_dirty_tracker_report_extent(
		self, start, start + MIN(w->n_pages, (guint64)64) * w->page_size, &error_local))
		return TRUE;
	if (migd_error_matches_errno(error_local, EOPNOTSUPP) ||
	    migd_error_matches_errno(error_local, ENOTTY)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: %s starts but cannot report: %s", migd_dirty_tracker_name(self),
			    migd_dirty_provider_describe(provider), error_local->message);
		return FALSE;
	}
	g_debug("%s: trial REPORT: %s (left to the syncs)", migd_dirty_tracker_name(self),
		error_local->message);
	return TRUE;
}

static gboolean
migd_dirty_tracker_start_all_dirty(MigdDirtyTracker *self, GError **error)
{
	if (!migd_dirty_tracker_set_windows(
		self, migd_dirty_tracker_hint(self, MIGD_DIRTY_PROVIDER_ALL_DIRTY), error))
		return FALSE;
	self->provider = MIGD_DIRTY_PROVIDER_ALL_DIRTY;
	self->stats.tracked_bytes = 0;
	return TRUE;
}

/* ---- public ---- */

MigdDirtyTracker *
migd_dirty_tracker_start(MigdDevice *device, MigdPlugin *plugin, const MigdIovaRange *ranges,
			 guint n_ranges, MigdDirtyFallback fallback, GError **error)
{
	g_autoptr(MigdDirtyTracker) self = NULL;
	g_autoptr(GError) error_probe = NULL;
	g_autoptr(GString) reasons = g_string_new(NULL);
	MigdDirtyProvider provider;

	g_return_val_if_fail(MIGD_IS_DEVICE(device), NULL);
	g_return_val_if_fail(plugin == NULL || MIGD_IS_PLUGIN(plugin), NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	self = g_new0(MigdDirtyTracker, 1);
	self->device = g_object_ref(device);
	self->fallback = fallback;
	self->provider = MIGD_DIRTY_PROVIDER_ALL_DIRTY;
	self->mapped = migd_dirty_ranges_plan(ranges, n_ranges, 0, error);
	if (self->mapped == NULL) {
		g_prefix_error(error, "%s: dirty tracking: ", migd_dirty_tracker_name(self));
		return NULL;
	}
	for (guint i = 0; i < self->mapped->len; i++) {
		const MigdIovaRange *r = &g_array_index(self->mapped, MigdIovaRange, i);
		if (r->iova >= MIGD_DIRTY_TRACKER_MAX_END ||
		    r->length > MIGD_DIRTY_TRACKER_MAX_END - r->iova) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "%s: dirty tracking: IOVA range 0x%" G_GINT64_MODIFIER
				    "x+0x%" G_GINT64_MODIFIER "x ends above 2^63",
				    migd_dirty_tracker_name(self), r->iova, r->length);
			return NULL;
		}
	}

	/* the plugin's choice depends on what the probe found */
	if (!migd_device_probe(device, &error_probe)) {
		if (migd_dirty_error_is_gone(error_probe)) {
			g_propagate_error(error, g_steal_pointer(&error_probe));
			return NULL;
		}
		g_debug("%s: dirty tracking without a probe: %s", migd_dirty_tracker_name(self),
			error_probe->message);
	}
	self->plugin = plugin != NULL ? g_object_ref(plugin) : migd_plugin_dup_for_device(device);
	migd_plugin_get_policy(self->plugin, device, &self->policy);

	switch (self->policy.tracker) {
	case MIGD_DIRTY_TRACKER_DEVICE:
		provider = MIGD_DIRTY_PROVIDER_DEVICE;
		break;
	case MIGD_DIRTY_TRACKER_IOMMU:
		provider = MIGD_DIRTY_PROVIDER_IOMMU;
		break;
	case MIGD_DIRTY_TRACKER_NONE:
	default:
		/* the plugin's own choice, not a failure: no fallback rule applies */
		g_message("%s: plugin %s chose no dirty tracker: every page counts as dirty",
			  migd_dirty_tracker_name(self), migd_plugin_get_name(self->plugin));
		provider = MIGD_DIRTY_PROVIDER_ALL_DIRTY;
		break;
	}

	while (provider != MIGD_DIRTY_PROVIDER_ALL_DIRTY) {
		g_autoptr(GError) error_start = NULL;
		MigdDirtyProvider next = provider == MIGD_DIRTY_PROVIDER_DEVICE
					     ? MIGD_DIRTY_PROVIDER_IOMMU
					     : MIGD_DIRTY_PROVIDER_ALL_DIRTY;

		if (migd_dirty_tracker_start_provider(self, provider, &error_start))
			return g_steal_pointer(&self);
		if (migd_dirty_error_is_gone(error_start)) {
			g_propagate_prefixed_error(
			    error, g_steal_pointer(&error_start),
			    "%s: starting %s: ", migd_dirty_tracker_name(self),
			    migd_dirty_provider_describe(provider));
			return NULL;
		}
		g_string_append_printf(reasons, "%s%s: %s", reasons->len > 0 ? "; " : "",
				       migd_dirty_provider_describe(provider),
				       error_start->message);
		if (next == MIGD_DIRTY_PROVIDER_ALL_DIRTY &&
		    fallback == MIGD_DIRTY_FALLBACK_REFUSE) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "%s: no dirty tracker can start (%s)",
				    migd_dirty_tracker_name(self), reasons->str);
			return NULL;
		}
		g_warning("%s: %s cannot start (%s): falling back to %s",
			  migd_dirty_tracker_name(self), migd_dirty_provider_describe(provider),
			  error_start->message,
			  next == MIGD_DIRTY_PROVIDER_IOMMU
			      ? "IOMMU dirty tracking"
			      : "all-dirty, every page counts as dirty in every sync");
		provider = next;
	}
	if (!migd_dirty_tracker_start_all_dirty(self, error))
		return NULL;
	return g_steal_pointer(&self);
}

const gchar *
migd_dirty_tracker_get_kind(MigdDirtyTracker *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	return migd_dirty_provider_to_string(self->provider);
}

guint64
migd_dirty_tracker_get_page_size(MigdDirtyTracker *self)
{
	g_return_val_if_fail(self != NULL, 0);
	return self->page_size;
}

/* REPORTs [@start, @end) (page-aligned, inside one tracked range) in slices */
static gboolean
migd_dirty_tracker_report_extent(MigdDirtyTracker *self, guint64 start, guint64 end, GError **error)
{
	const guint64 page_size = self->page_size;

	for (guint64 iova = start; iova < end;) {
		guint64 n_pages = MIN((end - iova) / page_size, MIGD_DIRTY_TRACKER_REPORT_PAGES);
		guint64 n_words = migd_dirty_words(n_pages);
		gboolean ok;

		/* as large as the largest REPORT so far: at most MIGD_DIRTY_TRACKER_REPORT_BYTES */
		if (n_words > self->scratch_words) {
			g_free(self->scratch);
			self->scratch = g_new(guint64, n_words);
			self->scratch_words = n_words;
		}
		/* REPORT only sets bits */
		memset(self->scratch, 0, n_words * sizeof(guint64));
		if (self->provider == MIGD_DIRTY_PROVIDER_DEVICE)
			ok = migd_device_dma_logging_report(self->device, iova, n_pages * page_size,
							    page_size, self->scratch, error);
		else
			ok = migd_device_iommu_dirty_report(self->device, iova, n_pages * page_size,
							    page_size, FALSE, self->scratch, error);
		if (!ok)
			return FALSE;
		migd_dirty_tracker_distribute(self, iova, n_pages, self->scratch);
		iova += n_pages * page_size;
	}
	return TRUE;
}

/*
 * Reads and clears what the windows cover, one tracked range at a time (pds
 * wants every REPORT inside one of its ranges). Each window's extent starts on
 * a 64-page boundary of its tracked range (pds finds its bitmap offset in whole
 * words), so neighbouring extents may share pages: they are joined, and every
 * REPORT's bits go to each window they overlap, so no read-and-clear loses a bit.
 */
static gboolean
migd_dirty_tracker_report_all(MigdDirtyTracker *self, GError **error)
{
	const guint64 page_size = self->page_size;
	guint first = 0;

	for (guint t = 0; t < self->tracked->len; t++) {
		const MigdIovaRange *tr = &g_array_index(self->tracked, MigdIovaRange, t);
		guint64 t_start = tr->iova;
		guint64 t_end = tr->iova + tr->length;
		guint64 base = migd_dirty_ranges_align_down(t_start, page_size);
		guint64 ext_start = 0, ext_end = 0;
		gboolean have = FALSE;

		while (first < self->n_windows &&
		       self->windows[first].iova +
			       self->windows[first].n_pages * self->windows[first].page_size <=
			   t_start)
			first++;
		for (guint i = first; i < self->n_windows; i++) {
			const MigdDirtyWindow *w = &self->windows[i];
			guint64 w_end = w->iova + w->n_pages * w->page_size;
			guint64 a, b;

			if (w->iova >= t_end)
				break;
			a = MAX(w->iova, t_start);
			b = MIN(w_end, t_end);
			a = base + migd_dirty_ranges_align_down(a - base, 64 * page_size);
			b = migd_dirty_ranges_align_up(b, page_size);
			if (have && a <= ext_end) {
				ext_end = MAX(ext_end, b);
				continue;
			}
			if (have &&
			    !migd_dirty_tracker_report_extent(self, ext_start, ext_end, error))
				return FALSE;
			ext_start = a;
			ext_end = b;
			have = TRUE;
		}
		if (have && !migd_dirty_tracker_report_extent(self, ext_start, ext_end, error))
			return FALSE;
	}
	return TRUE;
}

/*
 * After a REPORT error, policy.on_tracker_error decides: RESTART (STOP + START
 * on the same ranges) or leave the tracker as it is. Device logging is the
 * plugin's to recover (migd_plugin_recover_tracker) when it implements
 * recover_tracker; the IOMMU's, and a plugin's without one, restart here,
 * because recover_tracker speaks DMA logging. Asks for the page size of the
 * first START, so the answer (and the windows) normally stay as they were.
 */
static gboolean
migd_dirty_tracker_recover(MigdDirtyTracker *self, GError **error)
{
	const MigdIovaRange *ranges = (const MigdIovaRange *)self->tracked->data;
	gboolean restart = self->policy.on_tracker_error == MIGD_TRACKER_ERROR_RESTART;
	guint64 page_size = self->hint;

	if (self->provider == MIGD_DIRTY_PROVIDER_DEVICE &&
	    MIGD_PLUGIN_GET_CLASS(self->plugin)->recover_tracker != NULL) {
		if (!migd_plugin_recover_tracker(self->plugin, self->device, ranges,
						 self->tracked->len, &page_size, error))
			return FALSE;
	} else if (restart) {
		g_autoptr(GError) error_stop = NULL;

		if (!migd_dirty_tracker_provider_stop(self, &error_stop))
			g_debug("%s: %s stop before restart: %s", migd_dirty_tracker_name(self),
				migd_dirty_provider_describe(self->provider), error_stop->message);
		self->started = FALSE;
		if (!migd_dirty_tracker_provider_start(self, self->provider, self->tracked,
						       &page_size, error)) {
			g_prefix_error(error, "%s: restarting %s: ", migd_dirty_tracker_name(self),
				       migd_dirty_provider_describe(self->provider));
			return FALSE;
		}
		self->started = TRUE;
		g_message("%s: %s restarted after a tracker error (page size %" G_GUINT64_FORMAT
			  ")",
			  migd_dirty_tracker_name(self),
			  migd_dirty_provider_describe(self->provider), page_size);
	}
	if (!restart)
		return TRUE;
	if (page_size != self->page_size) {
		if (!migd_dirty_tracker_check_page_size(self, self->provider, page_size, error) ||
		    !migd_dirty_tracker_set_windows(self, page_size, error))
			return FALSE;
	}
	self->stats.restarts++;
	return TRUE;
}

static void
migd_dirty_tracker_count(MigdDirtyTracker *self)
{
	guint64 dirty = 0;

	for (guint i = 0; i < self->n_windows; i++)
		dirty += migd_dirty_count(self->windows[i].bitmap, self->windows[i].n_pages);
	self->stats.dirty_pages = dirty;
	self->stats.syncs++;
}

gboolean
migd_dirty_tracker_sync(MigdDirtyTracker *self, GError **error)
{
	g_autoptr(GError) error_report = NULL;
	g_autoptr(GError) error_recover = NULL;

	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (self->stopped) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "%s: dirty tracking is stopped",
			    migd_dirty_tracker_name(self));
		return FALSE;
	}
	if (self->provider == MIGD_DIRTY_PROVIDER_ALL_DIRTY) {
		migd_dirty_tracker_fill_windows(self);
		migd_dirty_tracker_count(self);
		return TRUE;
	}

	/* a trial REPORT at START read (and cleared) some bits: they belong to this sync */
	if (!self->carry)
		migd_dirty_tracker_clear_windows(self);
	self->carry = FALSE;
	if (migd_dirty_tracker_report_all(self, &error_report)) {
		migd_dirty_tracker_count(self);
		return TRUE;
	}

	/* the log is corrupt: this sync counts every page */
	migd_dirty_tracker_fill_windows(self);
	if (migd_dirty_error_is_gone(error_report)) {
		g_propagate_prefixed_error(error, g_steal_pointer(&error_report),
					   "%s: dirty tracking: ", migd_dirty_tracker_name(self));
		return FALSE;
	}
	self->stats.provider_errors++;
	g_warning("%s: %s REPORT failed (%s): every page of this sync counts as dirty",
		  migd_dirty_tracker_name(self), migd_dirty_provider_describe(self->provider),
		  error_report->message);
	if (!migd_dirty_tracker_recover(self, &error_recover)) {
		if (migd_dirty_error_is_gone(error_recover) ||
		    self->fallback == MIGD_DIRTY_FALLBACK_REFUSE) {
			g_propagate_error(error, g_steal_pointer(&error_recover));
			return FALSE;
		}
		g_warning("%s: %s could not be restarted (%s): falling back to all-dirty",
			  migd_dirty_tracker_name(self),
			  migd_dirty_provider_describe(self->provider), error_recover->message);
		migd_dirty_tracker_stop_provider(self);
		self->provider = MIGD_DIRTY_PROVIDER_ALL_DIRTY;
		self->stats.tracked_bytes = 0;
	}
	/* a restart at another page size has rebuilt the windows: fill them (again) */
	migd_dirty_tracker_fill_windows(self);
	migd_dirty_tracker_count(self);
	return TRUE;
}

guint
migd_dirty_tracker_get_n_windows(MigdDirtyTracker *self)
{
	g_return_val_if_fail(self != NULL, 0);
	return self->n_windows;
}

const MigdDirtyWindow *
migd_dirty_tracker_get_window(MigdDirtyTracker *self, guint index)
{
	g_return_val_if_fail(self != NULL, NULL);
	g_return_val_if_fail(index < self->n_windows, NULL);
	return &self->windows[index];
}

void
migd_dirty_tracker_get_stats(MigdDirtyTracker *self, MigdDirtyTrackerStats *stats)
{
	g_return_if_fail(self != NULL);
	g_return_if_fail(stats != NULL);
	*stats = self->stats;
}

void
migd_dirty_tracker_stop(MigdDirtyTracker *self)
{
	g_return_if_fail(self != NULL);
	self->stopped = TRUE;
	migd_dirty_tracker_stop_provider(self);
}

void
migd_dirty_tracker_free(MigdDirtyTracker *self)
{
	if (self == NULL)
		return;
	if (self->device != NULL)
		migd_dirty_tracker_stop(self);
	migd_dirty_tracker_free_windows(self);
	g_clear_pointer(&self->mapped, g_array_unref);
	g_clear_pointer(&self->tracked, g_array_unref);
	g_clear_object(&self->plugin);
	g_clear_object(&self->device);
	g_free(self);
}
