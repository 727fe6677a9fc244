/* PLACEHOLDER for integration work in the worktree; not committed */
#include "config.h"

#include "migd-dirty-ranges.h"

#include "migd-error.h"
#include <string.h>

static gint
cmp(gconstpointer a, gconstpointer b)
{
	const MigdIovaRange *x = a, *y = b;
	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

GArray *
migd_dirty_ranges_plan(const MigdIovaRange *ranges, guint n, guint max_ranges, GError **error)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	g_autoptr(GArray) in = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	g_array_append_vals(in, ranges, n);
	g_array_sort(in, cmp);
	for (guint i = 0; i < in->len; i++) {
		MigdIovaRange r = g_array_index(in, MigdIovaRange, i);
		if (out->len > 0) {
			MigdIovaRange *last = &g_array_index(out, MigdIovaRange, out->len - 1);
			if (r.iova <= last->iova + last->length) {
				last->length = MAX(last->iova + last->length, r.iova + r.length) - last->iova;
				continue;
			}
		}
		g_array_append_val(out, r);
	}
	return out;
}

GArray *
migd_dirty_ranges_plan_qemu(const MigdIovaRange *ranges, guint n, const MigdIovaRange *hole)
{
	return migd_dirty_ranges_plan(ranges, n, 0, NULL);
}

guint64
migd_dirty_ranges_total(const MigdIovaRange *ranges, guint n)
{
	guint64 t = 0;
	for (guint i = 0; i < n; i++)
		t += ranges[i].length;
	return t;
}

GArray *
migd_dirty_ranges_parse(const gchar *text, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(text, ",", -1);
	GArray *out = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	for (guint i = 0; parts[i] != NULL; i++) {
		gchar *plus = strchr(parts[i], '+');
		MigdIovaRange r;
		if (plus == NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "bad range '%s'", parts[i]);
			g_array_unref(out);
			return NULL;
		}
		*plus = 0;
		r.iova = g_ascii_strtoull(parts[i], NULL, 0);
		r.length = g_ascii_strtoull(plus + 1, NULL, 0);
		if (strchr(plus + 1, 'M'))
			r.length *= 1024 * 1024;
		if (strchr(plus + 1, 'G'))
			r.length *= 1024 * 1024 * 1024;
		g_array_append_val(out, r);
	}
	return out;
}
