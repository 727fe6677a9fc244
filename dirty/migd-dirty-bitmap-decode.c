/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty-bitmap decoder (migd-dirty-bitmap.h, migd_dirty_decode_merge): the receiving end
 * of the wire formats described at the top of migd-dirty-bitmap.c.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include "migd-dirty-bitmap-private.h"
#include "migd-dirty-bitmap.h"
#include "migd-error.h"

/*
 * Decoding: everything a peer sends is checked; the result goes to a scratch bitmap that is
 * ORed into the caller's only when all checks passed.
 */

static gboolean protocol_error(GError **error, const gchar *fmt, ...) G_GNUC_PRINTF(2, 3);

static gboolean
protocol_error(GError **error, const gchar *fmt, ...)
{
	va_list ap;
	g_autofree gchar *msg = NULL;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, msg);
	return FALSE;
}

/* one LEB128 varint at data[*pos]: minimal, at most 64 bits, not cut short */
static gboolean
read_varint(const gchar *what, const guint8 *data, gsize len, gsize *pos, guint64 *value,
	    GError **error)
{
	gsize start = *pos, i = *pos;
	guint64 v = 0;

	for (guint shift = 0;; shift += 7) {
		guint8 byte;

		if (i >= len)
			return protocol_error(
			    error, "%s payload: varint at byte %" G_GSIZE_FORMAT " is truncated",
			    what, start);
		byte = data[i++];
		if (shift == 63 && byte > 1)
			return protocol_error(error,
					      "%s payload: varint at byte %" G_GSIZE_FORMAT
					      " does not fit in 64 bits",
					      what, start);
		v |= (guint64)(byte & 0x7f) << shift;
		if ((byte & 0x80) == 0) {
			if (byte == 0 && shift > 0)
				return protocol_error(error,
						      "%s payload: varint at byte %" G_GSIZE_FORMAT
						      " is not minimal",
						      what, start);
			break;
		}
	}
	*pos = i;
	*value = v;
	return TRUE;
}

static inline void
set_bit(guint64 *bitmap, guint64 page)
{
	bitmap[page / 64] |= G_GUINT64_CONSTANT(1) << (page % 64);
}

/* sets pages [start, start + n), n >= 1 */
static void
set_range(guint64 *bitmap, guint64 start, guint64 n)
{
	guint64 end = start + n; /* exclusive */
	guint64 first = start / 64, last = (end - 1) / 64;
	guint64 head = ALL_ONES << (start % 64);
	guint64 tail = ALL_ONES >> (63 - (end - 1) % 64);

	if (first == last) {
		bitmap[first] |= head & tail;
		return;
	}
	bitmap[first] |= head;
	for (guint64 i = first + 1; i < last; i++)
		bitmap[i] = ALL_ONES;
	bitmap[last] |= tail;
}

static gboolean
decode_sparse(const guint8 *data, gsize len, guint64 n_pages, guint64 n_dirty, guint64 *scratch,
	      guint64 *count, GError **error)
{
	guint64 next = 0, n = 0; /* next: the smallest page the next index may name */
	gsize pos = 0;

	while (pos < len) {
		gsize at = pos;
		guint64 delta;

		if (!read_varint("SPARSE", data, len, &pos, &delta, error))
			return FALSE;
		if (delta >= n_pages - next)
			return protocol_error(error,
					      "SPARSE payload: the index at byte %" G_GSIZE_FORMAT
					      " is past the chunk's %" G_GUINT64_FORMAT " pages",
					      at, n_pages);
		if (++n > n_dirty)
			return protocol_error(error,
					      "SPARSE payload: more than the %" G_GUINT64_FORMAT
					      " dirty pages the chunk announces",
					      n_dirty);
		set_bit(scratch, next + delta);
		next += delta + 1;
	}
	*count = n;
	return TRUE;
}

static gboolean
decode_runs(const guint8 *data, gsize len, guint64 n_pages, guint64 n_dirty, guint64 *scratch,
	    guint64 *count, GError **error)
{
	guint64 page = 0, n = 0, k = 0; /* k: the index of the varint; even = clean */
	gsize pos = 0;

	for (; pos < len; k++) {
		gsize at = pos;
		guint64 run;

		if (!read_varint("RUNS", data, len, &pos, &run, error))
			return FALSE;
		if (run == 0 && k > 0)
			return protocol_error(
			    error, "RUNS payload: the %s run at byte %" G_GSIZE_FORMAT " is empty",
			    k % 2 == 1 ? "dirty" : "clean", at);
		if (run > n_pages - page)
			return protocol_error(error,
					      "RUNS payload: the run at byte %" G_GSIZE_FORMAT
					      " goes past the chunk's %" G_GUINT64_FORMAT " pages",
					      at, n_pages);
		if (k % 2 == 1) {
			if (run > n_dirty - n)
				return protocol_error(
				    error,
				    "RUNS payload: more than the %" G_GUINT64_FORMAT
				    " dirty pages the chunk announces",
				    n_dirty);
			set_range(scratch, page, run);
			n += run;
		}
		page += run;
	}
	if (k % 2 == 1 && page != n_pages)
		return protocol_error(error,
				      "RUNS payload: the runs end at page %" G_GUINT64_FORMAT
				      ", not at the chunk's end (%" G_GUINT64_FORMAT ")",
				      page, n_pages);
	*count = n;
	return TRUE;
}

gboolean
migd_dirty_decode_merge(guint encoding, const guint8 *data, gsize len, guint64 n_pages,
			guint64 n_dirty, guint64 checksum, guint64 *bitmap, GError **error)
{
	g_autofree guint64 *owned = NULL;
	const guint64 *decoded;
	gsize n_words, raw_bytes;
	guint64 last_mask, count = 0, sum;

	g_return_val_if_fail(data != NULL || len == 0, FALSE);
	g_return_val_if_fail(bitmap != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	if (encoding != MIGD_DIRTY_ENCODING_RAW && encoding != MIGD_DIRTY_ENCODING_RUNS &&
	    encoding != MIGD_DIRTY_ENCODING_SPARSE)
		return protocol_error(error, "unknown dirty bitmap encoding %u", encoding);
	if (n_pages < 1 || n_pages > MIGD_DIRTY_MAX_CHUNK_PAGES)
		return protocol_error(
		    error, "%s chunk of %" G_GUINT64_FORMAT " pages: outside 1..%" G_GUINT64_FORMAT,
		    migd_dirty_encoding_to_string(encoding), n_pages,
		    (guint64)MIGD_DIRTY_MAX_CHUNK_PAGES);
	if (n_dirty > n_pages)
		return protocol_error(error,
				      "%" G_GUINT64_FORMAT
				      " dirty pages in a chunk of %" G_GUINT64_FORMAT " pages",
				      n_dirty, n_pages);
	n_words = words_for(n_pages);
	raw_bytes = n_words * 8;
	last_mask = last_word_mask(n_pages);

	if (encoding == MIGD_DIRTY_ENCODING_RAW) {
		if (len != raw_bytes)
			return protocol_error(error,
					      "RAW payload of %" G_GSIZE_FORMAT
					      " bytes for %" G_GUINT64_FORMAT
					      " pages: %" G_GSIZE_FORMAT " expected",
					      len, n_pages, raw_bytes);
		if (G_BYTE_ORDER == G_LITTLE_ENDIAN && (guintptr)data % sizeof(guint64) == 0) {
			decoded = (const guint64 *)data;
		} else {
			owned = g_new(guint64, n_words);
			memcpy(owned, data, raw_bytes);
			for (gsize i = 0; i < n_words; i++)
				owned[i] = GUINT64_FROM_LE(owned[i]);
			decoded = owned;
		}
		if ((decoded[n_words - 1] & ~last_mask) != 0)
			return protocol_error(
			    error,
			    "RAW payload: bits past the chunk's %" G_GUINT64_FORMAT
			    " pages are set",
			    n_pages);
	} else {
		gboolean ok;

		owned = g_new0(guint64, n_words);
		if (encoding == MIGD_DIRTY_ENCODING_SPARSE)
			ok = decode_sparse(data, len, n_pages, n_dirty, owned, &count, error);
		else
			ok = decode_runs(data, len, n_pages, n_dirty, owned, &count, error);
		if (!ok)
			return FALSE;
		if (count != n_dirty)
			return protocol_error(
			    error,
			    "%s payload holds %" G_GUINT64_FORMAT
			    " dirty pages, the chunk announces %" G_GUINT64_FORMAT,
			    migd_dirty_encoding_to_string(encoding), count, n_dirty);
		decoded = owned;
	}

	sum = migd_dirty_count_and_checksum(decoded, n_pages, &count);
	if (count != n_dirty)
		return protocol_error(error,
				      "%s payload holds %" G_GUINT64_FORMAT
				      " dirty pages, the chunk announces %" G_GUINT64_FORMAT,
				      migd_dirty_encoding_to_string(encoding), count, n_dirty);
	if (sum != checksum)
		return protocol_error(
		    error,
		    "%s payload: checksum %016" G_GINT64_MODIFIER
		    "x of the decoded bitmap, the chunk announces %016" G_GINT64_MODIFIER "x",
		    migd_dirty_encoding_to_string(encoding), sum, checksum);

	for (gsize i = 0; i < n_words; i++)
		bitmap[i] |= decoded[i];
	return TRUE;
}
