/* PLACEHOLDER for integration work in the worktree; not committed */
#include "config.h"

#include "migd-dirty-bitmap.h"

#include <string.h>

#include "migd-error.h"

const gchar *
migd_dirty_encoding_to_string(MigdDirtyEncoding e)
{
	return e == MIGD_DIRTY_ENCODING_RAW ? "raw" : e == MIGD_DIRTY_ENCODING_RUNS ? "runs" : "sparse";
}

void
migd_dirty_encoded_clear(MigdDirtyEncoded *encoded)
{
	g_clear_pointer(&encoded->data, g_bytes_unref);
}

guint64
migd_dirty_checksum(const guint64 *bitmap, guint64 n_pages)
{
	guint64 h = 0;
	for (guint64 i = 0; i < (n_pages + 63) / 64; i++) {
		guint64 w = bitmap[i];
		if (i == n_pages / 64 && n_pages % 64)
			w &= (1ull << (n_pages % 64)) - 1;
		h = (h ^ w) * 0x9E3779B97F4A7C15ull;
	}
	return h;
}

guint64
migd_dirty_count(const guint64 *bitmap, guint64 n_pages)
{
	guint64 n = 0;
	for (guint64 i = 0; i < (n_pages + 63) / 64; i++) {
		guint64 w = bitmap[i];
		if (i == n_pages / 64 && n_pages % 64)
			w &= (1ull << (n_pages % 64)) - 1;
		n += __builtin_popcountll(w);
	}
	return n;
}

void
migd_dirty_encode(const guint64 *bitmap, guint64 n_pages, MigdDirtyEncoded *encoded)
{
	gsize words = (n_pages + 63) / 64;
	encoded->encoding = MIGD_DIRTY_ENCODING_RAW;
	encoded->n_pages = n_pages;
	encoded->n_dirty = migd_dirty_count(bitmap, n_pages);
	encoded->checksum = migd_dirty_checksum(bitmap, n_pages);
	encoded->data = g_bytes_new(bitmap, words * 8);
}

gboolean
migd_dirty_decode_merge(guint encoding, const guint8 *data, gsize len, guint64 n_pages,
			guint64 n_dirty, guint64 checksum, guint64 *bitmap, GError **error)
{
	gsize words = (n_pages + 63) / 64;
	g_autofree guint64 *tmp = NULL;
	if (encoding != MIGD_DIRTY_ENCODING_RAW || len != words * 8) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "placeholder: bad chunk");
		return FALSE;
	}
	tmp = g_memdup2(data, len);
	if (migd_dirty_checksum(tmp, n_pages) != checksum || migd_dirty_count(tmp, n_pages) != n_dirty) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "checksum mismatch");
		return FALSE;
	}
	for (gsize i = 0; i < words; i++)
		bitmap[i] |= tmp[i];
	return TRUE;
}
