/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * IOVA range planning for dirty trackers (see migd-dirty-ranges.h).
 *
 * Ranges are handled as [start, last] with an inclusive last byte, as the
 * kernel's interval tree does, so that a range ending at 2^64 needs no 65th bit.
 */
#include "config.h"

#include "migd-dirty-ranges.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migd-error.h"

typedef struct {
	guint64 start;
	guint64 last; /* inclusive */
} MigdDirtySpan;

static gint
migd_dirty_span_cmp(gconstpointer a, gconstpointer b)
{
	const MigdDirtySpan *sa = a;
	const MigdDirtySpan *sb = b;

	if (sa->start != sb->start)
		return sa->start < sb->start ? -1 : 1;
	if (sa->last != sb->last)
		return sa->last < sb->last ? -1 : 1;
	return 0;
}

/* sorts @spans and joins the overlapping and touching ones in place; returns the new count */
static guint
migd_dirty_spans_join(MigdDirtySpan *spans, guint n_spans)
{
	guint n = 0;

	if (n_spans == 0)
		return 0;
	qsort(spans, n_spans, sizeof(spans[0]), migd_dirty_span_cmp);
	for (guint i = 1; i < n_spans; i++) {
		MigdDirtySpan *cur = &spans[n];
		/* touching: the next starts right after cur (cur->last + 1 cannot wrap then) */
		if (cur->last == G_MAXUINT64 || spans[i].start <= cur->last + 1) {
			cur->last = MAX(cur->last, spans[i].last);
			continue;
		}
		spans[++n] = spans[i];
	}
	return n + 1;
}

typedef struct {
	guint64 size;
	guint index; /* the gap between spans[index] and spans[index + 1] */
} MigdDirtyGap;

/* smallest first; of equal gaps the lowest first, as vfio_combine_iova_ranges() */
static gint
migd_dirty_gap_cmp(gconstpointer a, gconstpointer b)
{
	const MigdDirtyGap *ga = a;
	const MigdDirtyGap *gb = b;

	if (ga->size != gb->size)
		return ga->size < gb->size ? -1 : 1;
	return ga->index < gb->index ? -1 : ga->index > gb->index ? 1 : 0;
}

/*
 * Closes the n_spans - @max_spans smallest gaps of sorted, disjoint, not
 * touching @spans in place; returns the new count. Every merge adds exactly its
 * gap to the tracked bytes and leaves the other gaps as they were, so closing
 * the smallest ones is optimal (and the same as merging the smallest gap one
 * at a time, as the kernel does).
 */
static guint
migd_dirty_spans_reduce(MigdDirtySpan *spans, guint n_spans, guint max_spans)
{
	g_autofree MigdDirtyGap *gaps = NULL;
	g_autofree gboolean *closed = NULL;
	guint n_close;
	guint n = 0;

	if (max_spans == 0 || n_spans <= max_spans)
		return n_spans;
	gaps = g_new(MigdDirtyGap, n_spans - 1);
	closed = g_new0(gboolean, n_spans - 1);
	for (guint i = 0; i + 1 < n_spans; i++) {
		/* joined spans do not touch: start > last + 1 */
		gaps[i].size = spans[i + 1].start - spans[i].last - 1;
		gaps[i].index = i;
	}
	qsort(gaps, n_spans - 1, sizeof(gaps[0]), migd_dirty_gap_cmp);
	n_close = n_spans - max_spans;
	for (guint i = 0; i < n_close; i++)
		closed[gaps[i].index] = TRUE;
	for (guint i = 1; i < n_spans; i++) {
		if (closed[i - 1])
			spans[n].last = spans[i].last;
		else
			spans[++n] = spans[i];
	}
	return n + 1;
}

GArray *
migd_dirty_ranges_plan(const MigdIovaRange *ranges, guint n_ranges, guint max_ranges,
		       GError **error)
{
	g_autofree MigdDirtySpan *spans = NULL;
	g_autoptr(GArray) plan = NULL;
	guint n_spans;

	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (ranges == NULL || n_ranges == 0) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "no IOVA ranges to track");
		return NULL;
	}
	spans = g_new(MigdDirtySpan, n_ranges);
	for (guint i = 0; i < n_ranges; i++) {
		if (ranges[i].length == 0) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "IOVA range %u (0x%" G_GINT64_MODIFIER "x) has length 0", i,
				    ranges[i].iova);
			return NULL;
		}
		if (ranges[i].length - 1 > G_MAXUINT64 - ranges[i].iova) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "IOVA range %u (0x%" G_GINT64_MODIFIER "x+0x%" G_GINT64_MODIFIER
				    "x) wraps past 2^64",
				    i, ranges[i].iova, ranges[i].length);
			return NULL;
		}
		spans[i].start = ranges[i].iova;
		spans[i].last = ranges[i].iova + (ranges[i].length - 1);
	}
	n_spans = migd_dirty_spans_join(spans, n_ranges);
	n_spans = migd_dirty_spans_reduce(spans, n_spans, max_ranges);
	if (spans[0].start == 0 && spans[0].last == G_MAXUINT64) {
		/* a length of 2^64 does not fit a MigdIovaRange */
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "the IOVA ranges would be tracked as the whole 64-bit space");
		return NULL;
	}

	plan = g_array_sized_new(FALSE, FALSE, sizeof(MigdIovaRange), n_spans);
	for (guint i = 0; i < n_spans; i++) {
		MigdIovaRange r = {.iova = spans[i].start,
				   .length = spans[i].last - spans[i].start + 1};
		g_array_append_val(plan, r);
	}
	return g_steal_pointer(&plan);
}

/*
 * QEMU (hw/vfio/listener.c, before 10.0 hw/vfio/common.c): at log-global-start
 * vfio_dirty_tracking_init() runs vfio_dirty_tracking_update() over every
 * mapped section, which keeps only a min and a max per bucket:
 *
 *   if (update_pci && iova >= UINT32_MAX)  -> minpci64 / maxpci64
 *   else if (end <= UINT32_MAX)            -> min32 / max32
 *   else                                   -> min64 / max64
 *
 * with end the section's inclusive last byte, min32 starting at UINT32_MAX,
 * min64 and minpci64 at UINT64_MAX and the maxima at 0. update_pci is true for
 * the sections an assigned device's BAR owns (P2P mappings, which the firmware
 * puts in the 64-bit PCI hole); we have no owners, so a mapping counts as such
 * when it lies inside @pci_hole64. vfio_device_feature_dma_logging_start_create()
 * then sends !!max32 + !!max64 + !!maxpci64 ranges [min, max], in that order.
 * (QEMU's listener also skips sections with bit 63 set, which are never
 * DMA-mapped either, so they are not among the mappings this sees.) QEMU 8.0
 * had the first two buckets only; the PCI one came with 8.1.
 */
GArray *
migd_dirty_ranges_plan_qemu(const MigdIovaRange *ranges, guint n_ranges,
			    const MigdIovaRange *pci_hole64)
{
	guint64 min32 = G_MAXUINT32, max32 = 0;
	guint64 min64 = G_MAXUINT64, max64 = 0;
	guint64 minpci64 = G_MAXUINT64, maxpci64 = 0;
	guint64 hole_start = 0, hole_last = 0;
	gboolean have_hole = FALSE;
	GArray *plan = g_array_sized_new(FALSE, FALSE, sizeof(MigdIovaRange), 3);

	if (pci_hole64 != NULL && pci_hole64->length != 0) {
		have_hole = TRUE;
		hole_start = pci_hole64->iova;
		hole_last = pci_hole64->length - 1 > G_MAXUINT64 - pci_hole64->iova
				? G_MAXUINT64
				: pci_hole64->iova + (pci_hole64->length - 1);
	}
	for (guint i = 0; ranges != NULL && i < n_ranges; i++) {
		guint64 iova = ranges[i].iova;
		guint64 end;
		guint64 *min, *max;

		/* vfio_get_section_iova_range(): empty sections are not mapped */
		if (ranges[i].length == 0 || ranges[i].length - 1 > G_MAXUINT64 - iova)
			continue;
		end = iova + (ranges[i].length - 1);
		if (have_hole && iova >= G_MAXUINT32 && iova >= hole_start && end <= hole_last) {
			min = &minpci64;
			max = &maxpci64;
		} else if (end <= G_MAXUINT32) {
			min = &min32;
			max = &max32;
		} else {
			min = &min64;
			max = &max64;
		}
		*min = MIN(*min, iova);
		*max = MAX(*max, end);
	}
	if (max32 != 0) {
		MigdIovaRange r = {.iova = min32, .length = max32 - min32 + 1};
		g_array_append_val(plan, r);
	}
	if (max64 != 0) {
		MigdIovaRange r = {.iova = min64, .length = max64 - min64 + 1};
		g_array_append_val(plan, r);
	}
	if (maxpci64 != 0) {
		MigdIovaRange r = {.iova = minpci64, .length = maxpci64 - minpci64 + 1};
		g_array_append_val(plan, r);
	}
	return plan;
}

guint64
migd_dirty_ranges_total(const MigdIovaRange *ranges, guint n_ranges)
{
	g_autofree MigdDirtySpan *spans = NULL;
	guint n_spans = 0;
	guint64 total = 0;

	if (ranges == NULL || n_ranges == 0)
		return 0;
	/* the union: overlapping ranges count once; a range past 2^64 ends there */
	spans = g_new(MigdDirtySpan, n_ranges);
	for (guint i = 0; i < n_ranges; i++) {
		if (ranges[i].length == 0)
			continue;
		spans[n_spans].start = ranges[i].iova;
		spans[n_spans].last = ranges[i].length - 1 > G_MAXUINT64 - ranges[i].iova
					  ? G_MAXUINT64
					  : ranges[i].iova + (ranges[i].length - 1);
		n_spans++;
	}
	n_spans = migd_dirty_spans_join(spans, n_spans);
	for (guint i = 0; i < n_spans; i++) {
		guint64 len_minus_1 = spans[i].last - spans[i].start;
		/* saturates only when the union is all of the 64-bit space */
		if (len_minus_1 == G_MAXUINT64 || total > G_MAXUINT64 - len_minus_1 - 1)
			return G_MAXUINT64;
		total += len_minus_1 + 1;
	}
	return total;
}

GArray *
migd_dirty_ranges_align(const GArray *ranges, guint64 align)
{
	GArray *out = g_array_sized_new(FALSE, FALSE, sizeof(MigdIovaRange), ranges->len);

	for (guint i = 0; i < ranges->len; i++) {
		const MigdIovaRange *r = &g_array_index(ranges, MigdIovaRange, i);
		guint64 start = migd_dirty_ranges_align_down(r->iova, align);
		guint64 end = migd_dirty_ranges_align_up(r->iova + r->length, align);

		if (out->len > 0) {
			MigdIovaRange *prev = &g_array_index(out, MigdIovaRange, out->len - 1);
			if (start <= prev->iova + prev->length) {
				prev->length = MAX(prev->iova + prev->length, end) - prev->iova;
				continue;
			}
		}
		g_array_append_val(out, ((MigdIovaRange){.iova = start, .length = end - start}));
	}
	return out;
}

/* one number: 0x hex or decimal, then an optional K, M, G or T (powers of 1024) */
static gboolean
migd_dirty_ranges_parse_number(const gchar *text, guint64 *value, GError **error)
{
	g_autofree gchar *s = g_strstrip(g_strdup(text));
	const gchar *digits = s;
	gchar *end = NULL;
	guint base = 10;
	guint shift = 0;
	gsize len = strlen(s);
	guint64 v;

	if (len > 0) {
		switch (s[len - 1]) {
		case 'K':
		case 'k':
			shift = 10;
			break;
		case 'M':
		case 'm':
			shift = 20;
			break;
		case 'G':
		case 'g':
			shift = 30;
			break;
		case 'T':
		case 't':
			shift = 40;
			break;
		default:
			break;
		}
		if (shift != 0)
			s[--len] = '\0';
	}
	if (g_str_has_prefix(s, "0x") || g_str_has_prefix(s, "0X")) {
		base = 16;
		digits = s + 2;
	}
	/* digits only: no sign, no second prefix, no spaces inside */
	if (digits[0] == '\0' || strspn(digits, base == 16 ? "0123456789abcdefABCDEF"
							   : "0123456789") != strlen(digits)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "'%s': not a number (hex 0x... or decimal, optional K, M, G or T)",
			    text);
		return FALSE;
	}
	errno = 0;
	v = g_ascii_strtoull(digits, &end, base);
	if (errno != 0 || end == NULL || *end != '\0') {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "'%s': not a number (hex 0x... or decimal, optional K, M, G or T)%s",
			    text, errno == ERANGE ? ": too large" : "");
		return FALSE;
	}
	if (shift != 0 && v > (G_MAXUINT64 >> shift)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "'%s': too large for 64 bits", text);
		return FALSE;
	}
	*value = v << shift;
	return TRUE;
}

GArray *
migd_dirty_ranges_parse(const gchar *text, GError **error)
{
	g_auto(GStrv) items = NULL;
	g_autoptr(GArray) ranges = NULL;

	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (text == NULL || text[strspn(text, " \t")] == '\0') {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "no IOVA ranges (expected IOVA+LENGTH[,IOVA+LENGTH...])");
		return NULL;
	}
	items = g_strsplit(text, ",", -1);
	ranges = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	for (guint i = 0; items[i] != NULL; i++) {
		g_auto(GStrv) parts = g_strsplit(items[i], "+", -1);
		MigdIovaRange r = {0};

		if (g_strv_length(parts) != 2) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "IOVA range %u '%s': expected IOVA+LENGTH", i, items[i]);
			return NULL;
		}
		if (!migd_dirty_ranges_parse_number(parts[0], &r.iova, error) ||
		    !migd_dirty_ranges_parse_number(parts[1], &r.length, error)) {
			g_prefix_error(error, "IOVA range %u: ", i);
			return NULL;
		}
		if (r.length == 0) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "IOVA range %u '%s': length 0", i, items[i]);
			return NULL;
		}
		if (r.length - 1 > G_MAXUINT64 - r.iova) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "IOVA range %u '%s': wraps past 2^64", i, items[i]);
			return NULL;
		}
		g_array_append_val(ranges, r);
	}
	if (!migd_dirty_ranges_check((const MigdIovaRange *)ranges->data, ranges->len, error))
		return NULL;
	return g_steal_pointer(&ranges);
}

typedef struct {
	guint64 iova;
	guint index;
} MigdDirtyIndexed;

static gint
migd_dirty_indexed_cmp(gconstpointer a, gconstpointer b)
{
	const MigdDirtyIndexed *ia = a;
	const MigdDirtyIndexed *ib = b;

	if (ia->iova != ib->iova)
		return ia->iova < ib->iova ? -1 : 1;
	return ia->index < ib->index ? -1 : ia->index > ib->index ? 1 : 0;
}

gboolean
migd_dirty_ranges_check(const MigdIovaRange *ranges, guint n_ranges, GError **error)
{
	g_autofree MigdDirtyIndexed *order = NULL;

	g_return_val_if_fail(ranges != NULL || n_ranges == 0, FALSE);

	for (guint i = 0; i < n_ranges; i++) {
		const MigdIovaRange *r = &ranges[i];

		if (r->length == 0 || r->length - 1 > G_MAXUINT64 - r->iova) {
			g_set_error(
			    error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "IOVA range %u 0x%" G_GINT64_MODIFIER "x+0x%" G_GINT64_MODIFIER "x: %s",
			    i, r->iova, r->length, r->length == 0 ? "length 0" : "wraps past 2^64");
			return FALSE;
		}
		if (r->iova % MIGD_DIRTY_RANGES_ALIGN != 0 ||
		    r->length % MIGD_DIRTY_RANGES_ALIGN != 0) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "IOVA range %u 0x%" G_GINT64_MODIFIER "x+0x%" G_GINT64_MODIFIER
				    "x: %s is not aligned to 4 KiB",
				    i, r->iova, r->length,
				    r->iova % MIGD_DIRTY_RANGES_ALIGN != 0 ? "the start"
									   : "the length");
			return FALSE;
		}
	}
	/* sorted by start, an overlap is between neighbours: n log n for any D-Bus caller */
	order = g_new(MigdDirtyIndexed, MAX(n_ranges, 1));
	for (guint i = 0; i < n_ranges; i++)
		order[i] = (MigdDirtyIndexed){.iova = ranges[i].iova, .index = i};
	qsort(order, n_ranges, sizeof(order[0]), migd_dirty_indexed_cmp);
	for (guint k = 1; k < n_ranges; k++) {
		const MigdIovaRange *a = &ranges[order[k - 1].index];
		const MigdIovaRange *b = &ranges[order[k].index];

		if (b->iova <= a->iova + (a->length - 1)) {
			guint i = MIN(order[k - 1].index, order[k].index);
			guint j = MAX(order[k - 1].index, order[k].index);
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "IOVA ranges %u (0x%" G_GINT64_MODIFIER
				    "x+0x%" G_GINT64_MODIFIER "x) and %u (0x%" G_GINT64_MODIFIER
				    "x+0x%" G_GINT64_MODIFIER "x) overlap",
				    i, ranges[i].iova, ranges[i].length, j, ranges[j].iova,
				    ranges[j].length);
			return FALSE;
		}
	}
	return TRUE;
}
