/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Writes the generated part of the seed corpora (tests/fuzz/corpus/<harness>/) from the
 * encoders the tests use: a sample frame of every wire message type, alone and as one stream
 * (tests/proto/wire-test-util.c), dirty-bitmap chunks in every encoding (the codec test's wire
 * examples and their edges), and dirty-bitmap files. The config corpus is written by hand.
 *   fuzz-make-seeds CORPUS_DIR   (writes CORPUS_DIR/fuzz-wire-frame/ etc., which must exist)
 */
#include "config.h"

#include <sys/mman.h>
#include <unistd.h>

#include "migd-dirty-bitmap-file.h"
#include "migd-dirty-bitmap.h"
#include "proto/wire-test-util.h"

static void
save(const gchar *dir, const gchar *harness, const gchar *name, const guint8 *data, gsize len)
{
	g_autofree gchar *path = g_build_filename(dir, harness, name, NULL);
	g_autoptr(GError) error = NULL;

	if (!g_file_set_contents(path, (const gchar *)data, len, &error))
		g_error("%s", error->message);
}

/* the input of fuzz-wire-frame: a slice-size byte, then the stream */
static void
wire_seeds(const gchar *dir)
{
	g_autoptr(GByteArray) all = g_byte_array_new();
	guint8 slice = 0xff;

	g_byte_array_append(all, &slice, 1);
	for (gsize i = 0; i < wire_test_n_types; i++) {
		g_autoptr(MigdWireFrame) frame = wire_test_sample(wire_test_types[i], (guint)i);
		g_autoptr(GByteArray) one = g_byte_array_new();
		g_autofree gchar *name = NULL;
		g_autoptr(GError) error = NULL;

		g_byte_array_append(one, &slice, 1);
		if (!migd_wire_frame_append(frame, one, &error) ||
		    !migd_wire_frame_append(frame, all, &error))
			g_error("%s", error->message);
		name =
		    g_strdup_printf("frame-%s", migd_wire_msg_type_to_string(wire_test_types[i]));
		save(dir, "fuzz-wire-frame", name, one->data, one->len);
	}
	save(dir, "fuzz-wire-frame", "stream-all-types", all->data, all->len);
	/* the same stream in 3-byte slices */
	all->data[0] = 2;
	save(dir, "fuzz-wire-frame", "stream-all-types-sliced", all->data, all->len);
}

/* the input of fuzz-dirty-bitmap: flags, n_pages - 1 (le16; / 64 for a large chunk), the payload */
static void
bitmap_seed(const gchar *dir, const gchar *name, const guint64 *w, guint64 n_pages, guint8 flags)
{
	g_auto(MigdDirtyEncoded) enc = {0};
	g_autoptr(GByteArray) in = g_byte_array_new();
	guint64 field = ((flags & 0x20) ? n_pages / 64 : n_pages) - 1;
	guint8 head[3] = {flags, (guint8)(field & 0xff), (guint8)(field >> 8)};
	const guint8 *payload;
	gsize len;

	migd_dirty_encode(w, n_pages, &enc);
	payload = g_bytes_get_data(enc.data, &len);
	g_byte_array_append(in, head, sizeof(head));
	g_byte_array_append(in, payload, len);
	save(dir, "fuzz-dirty-bitmap", name, in->data, in->len);
}

static void
bitmap_seeds(const gchar *dir)
{
	g_autofree guint64 *w = g_new0(guint64, 16384);
	guint64 x = 1;

	/* the codec test's wire examples: 100 pages, page 64 (SPARSE 40) ... */
	w[1] = 1;
	bitmap_seed(dir, "sparse-100-page64", w, 100, 0);
	/* ... and 1000 pages, pages 200..202 (RUNS c8 01 03) */
	w[1] = 0;
	w[3] = 7 << 8;
	bitmap_seed(dir, "runs-1000-200to202", w, 1000, 0);
	bitmap_seed(dir, "runs-1000-200to202-target", w, 1000, 0x02);
	bitmap_seed(dir, "runs-1000-200to202-badcount", w, 1000, 0x04);
	bitmap_seed(dir, "runs-1000-200to202-badsum", w, 1000, 0x08);
	memset(w, 0, 1024 * 8);
	bitmap_seed(dir, "clean-1", w, 1, 0);
	bitmap_seed(dir, "clean-16384", w, 16384, 0);
	bitmap_seed(dir, "clean-1M-large", w, 16384 * 64, 0x20);
	w[0] = 1;
	bitmap_seed(dir, "dirty-1", w, 1, 0);
	memset(w, 0xff, 1024 * 8);
	bitmap_seed(dir, "dirty-16384", w, 16384, 0);
	bitmap_seed(dir, "dirty-64", w, 64, 0);
	/* dense and scattered: RAW, on and off alignment */
	for (guint i = 0; i < 1024; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		w[i] = x ^ (x >> 29);
	}
	bitmap_seed(dir, "raw-4000", w, 4000, 0);
	bitmap_seed(dir, "raw-4000-misaligned", w, 4000, 0x10);
	bitmap_seed(dir, "raw-65", w, 65, 0x12);
	for (guint i = 0; i < 1024; i++)
		w[i] &= w[(i + 1) % 1024] & w[(i + 2) % 1024] & w[(i + 3) % 1024];
	bitmap_seed(dir, "sparse-16384", w, 16384, 0);
	bitmap_seed(dir, "bad-pages", w, 64, 0x01);
}

static void
file_seed(const gchar *dir, const gchar *name, guint64 page_size, guint32 rounds,
	  const MigdDirtyFileWindow *windows, guint n_windows)
{
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *buf = NULL;
	gint fd = memfd_create(name, MFD_CLOEXEC);
	off_t len;

	if (fd < 0 || !migd_dirty_file_write(fd, page_size, rounds, windows, n_windows, &error))
		g_error("%s: %s", name, error != NULL ? error->message : g_strerror(errno));
	len = lseek(fd, 0, SEEK_CUR);
	buf = g_malloc(len);
	if (pread(fd, buf, len, 0) != len)
		g_error("%s: short read", name);
	close(fd);
	save(dir, "fuzz-dirty-file", name, buf, len);
}

static void
file_seeds(const gchar *dir)
{
	guint64 a[2] = {0x8000000000000001ull, 0x5}, b[1] = {0xf0}, full[4];
	MigdDirtyFileWindow two[] = {
	    {.iova = 0, .n_pages = 70, .bitmap = a},
	    {.iova = 0x100000000ull, .n_pages = 8, .bitmap = b},
	};
	MigdDirtyFileWindow unused[] = {
	    {.iova = 0, .n_pages = 0},
	    {.iova = 0x200000, .n_pages = 64, .bitmap = b},
	};
	MigdDirtyFileWindow top[] = {
	    /* the last window below 2^64 */
	    {.iova = G_MAXUINT64 - 256 * 4096 + 1, .n_pages = 256, .bitmap = full},
	};

	memset(full, 0xff, sizeof(full));
	file_seed(dir, "empty", 0, 0, NULL, 0);
	file_seed(dir, "no-page-size", 0, 0, unused, 1);
	file_seed(dir, "two-windows", 4096, 3, two, G_N_ELEMENTS(two));
	file_seed(dir, "unused-window", 2 * 1024 * 1024, 1, unused, G_N_ELEMENTS(unused));
	file_seed(dir, "top-of-iova", 4096, 7, top, G_N_ELEMENTS(top));
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		g_printerr("usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	wire_seeds(argv[1]);
	bitmap_seeds(argv[1]);
	file_seeds(argv[1]);
	return 0;
}
