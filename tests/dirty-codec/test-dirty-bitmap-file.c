/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dirty-bitmap file (dirty/migd-dirty-bitmap-file.c): what the writer puts
 * at which offset (docs/ABI/testing/dirty-bitmap-file, read here by hand),
 * round trips through the reader, and the reader against files that lie:
 * every truncation, bad magic, version or page size, and size, offset and
 * count fields that overflow or disagree with the file.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "migd-dirty-bitmap-file.h"
#include "migd-error.h"

#define PAGE 4096u

/* the file @windows make, as bytes */
static GBytes *
write_file(guint64 page_size, guint32 rounds, const MigdDirtyFileWindow *windows, guint n)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) data = g_byte_array_new();
	gint fd = memfd_create("test-dirty-bitmap-file", MFD_CLOEXEC);
	guint8 buf[4096];
	gssize got;

	assert_true(fd >= 0);
	if (!migd_dirty_file_write(fd, page_size, rounds, windows, n, &error))
		fail_msg("write: %s", error->message);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	while ((got = read(fd, buf, sizeof(buf))) > 0)
		g_byte_array_append(data, buf, (guint)got);
	assert_int_equal(got, 0);
	close(fd);
	return g_byte_array_free_to_bytes(g_steal_pointer(&data));
}

/* the @size-byte little-endian number at @offset */
static guint64
get_le(GBytes *bytes, gsize offset, guint size)
{
	gsize len;
	const guint8 *p = g_bytes_get_data(bytes, &len);
	guint64 v = 0;

	assert_true(offset + size <= len);
	memcpy(&v, p + offset, size);
	return GUINT64_FROM_LE(v);
}

static guint64
get_le64(GBytes *bytes, gsize offset)
{
	return get_le(bytes, offset, 8);
}

static guint32
get_le32(GBytes *bytes, gsize offset)
{
	return (guint32)get_le(bytes, offset, 4);
}

/* a copy of @bytes with @size bytes at @offset replaced by @value, little-endian */
static GBytes *
patched(GBytes *bytes, gsize offset, guint64 value, guint size)
{
	gsize len;
	const guint8 *p = g_bytes_get_data(bytes, &len);
	guint8 *copy = g_memdup2(p, len);

	value = GUINT64_TO_LE(value);
	assert_true(offset + size <= len);
	memcpy(copy + offset, &value, size);
	return g_bytes_new_take(copy, len);
}

/* parsing fails with MIGD_ERROR_PROTOCOL, naming @what */
static void
assert_rejected(GBytes *bytes, const gchar *what)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdDirtyFile) file = migd_dirty_file_parse(bytes, &error);

	if (file != NULL)
		fail_msg("accepted a file with %s", what);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
	if (strstr(error->message, what) == NULL)
		fail_msg("'%s' does not say '%s'", error->message, what);
}

/* two windows around an unused window number; bits in the tails past n_pages */
typedef struct {
	guint64 a[3]; /* 130 pages */
	guint64 c[1]; /* 5 pages */
	MigdDirtyFileWindow windows[3];
} Sample;

static void
sample_init(Sample *s)
{
	memset(s, 0, sizeof(*s));
	s->a[0] = G_GUINT64_CONSTANT(0x8000000000000001);
	s->a[1] = G_GUINT64_CONSTANT(0xf0);
	s->a[2] = G_GUINT64_CONSTANT(0x2) | G_GUINT64_CONSTANT(0xff00); /* page 129; tail bits */
	s->c[0] = G_GUINT64_CONSTANT(0x11) | G_GUINT64_CONSTANT(0x100); /* pages 0 and 4; tail */
	s->windows[0] = (MigdDirtyFileWindow){.iova = 0x100000, .n_pages = 130, .bitmap = s->a};
	s->windows[2] = (MigdDirtyFileWindow){.iova = 0x0, .n_pages = 5, .bitmap = s->c};
}

static GBytes *
sample_file(void)
{
	Sample s;
	sample_init(&s);
	return write_file(PAGE, 7, s.windows, 3);
}

static void
test_layout(void **state)
{
	g_autoptr(GBytes) bytes = sample_file();
	const guint8 *p = g_bytes_get_data(bytes, NULL);
	const gsize table = 64 + 3 * 32;

	/* header */
	assert_memory_equal(p, "MIGDDIRT", 8);
	assert_int_equal(get_le32(bytes, 8), 1);
	assert_int_equal(get_le32(bytes, 12), 3);
	assert_int_equal(get_le64(bytes, 16), PAGE);
	assert_int_equal(get_le64(bytes, 24), 2 + 4 + 1 + 2);
	assert_int_equal(get_le32(bytes, 32), 7);
	for (guint i = 36; i < 64; i++)
		assert_int_equal(p[i], 0);
	/* entries: the unused window number is all zero */
	assert_int_equal(get_le64(bytes, 64), 0x100000);
	assert_int_equal(get_le64(bytes, 64 + 8), 130);
	assert_int_equal(get_le64(bytes, 64 + 16), table);
	assert_int_equal(get_le64(bytes, 64 + 24), 7);
	for (guint i = 0; i < 32; i++)
		assert_int_equal(p[96 + i], 0);
	assert_int_equal(get_le64(bytes, 128), 0);
	assert_int_equal(get_le64(bytes, 128 + 8), 5);
	assert_int_equal(get_le64(bytes, 128 + 16), table + 3 * 8);
	assert_int_equal(get_le64(bytes, 128 + 24), 2);
	/* bitmaps, the tails past n_pages cleared */
	assert_int_equal(g_bytes_get_size(bytes), table + 4 * 8);
	assert_int_equal(get_le64(bytes, table), G_GUINT64_CONSTANT(0x8000000000000001));
	assert_int_equal(get_le64(bytes, table + 8), 0xf0);
	assert_int_equal(get_le64(bytes, table + 16), 0x2);
	assert_int_equal(get_le64(bytes, table + 24), 0x11);
}

static void
test_round_trip(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(MigdDirtyFile) file = NULL;
	g_autofree guint64 *big = NULL;
	MigdDirtyFileWindow windows[2];
	const guint64 n_pages = 200000; /* more words than the writer buffers at once */
	guint64 set = 0;
	guint32 rng = 1;

	big = g_new0(guint64, (n_pages + 63) / 64);
	for (guint64 i = 0; i < n_pages; i++) {
		rng = rng * 1103515245u + 12345u;
		if ((rng >> 16) % 7 == 0) {
			big[i / 64] |= G_GUINT64_CONSTANT(1) << (i % 64);
			set++;
		}
	}
	windows[0] = (MigdDirtyFileWindow){.iova = 1ull << 32, .n_pages = n_pages, .bitmap = big};
	windows[1] = (MigdDirtyFileWindow){
	    .iova = (1ull << 32) - 64 * 65536ull, .n_pages = 64, .bitmap = big};
	bytes = write_file(65536, 3, windows, 2);
	file = migd_dirty_file_parse(bytes, &error);
	if (file == NULL)
		fail_msg("%s", error->message);
	assert_int_equal(file->page_size, 65536);
	assert_int_equal(file->rounds, 3);
	assert_int_equal(file->n_windows, 2);
	assert_int_equal(file->windows[0].iova, 1ull << 32);
	assert_int_equal(file->windows[0].n_pages, n_pages);
	assert_int_equal(file->windows[0].dirty_pages, set);
	assert_int_equal(file->windows[1].dirty_pages, __builtin_popcountll(big[0]));
	assert_int_equal(file->dirty_pages, set + __builtin_popcountll(big[0]));
	for (guint64 i = 0; i < n_pages; i++) {
		gboolean want = (big[i / 64] >> (i % 64)) & 1;
		if (migd_dirty_file_page_is_dirty(file, 0, i) != want)
			fail_msg("page %" G_GUINT64_FORMAT, i);
	}
	for (guint64 i = 0; i < 64; i++)
		assert_int_equal(migd_dirty_file_page_is_dirty(file, 1, i), (big[0] >> i) & 1);
	assert_true(file->bytes == bytes || g_bytes_equal(file->bytes, bytes));
}

/* an empty sink: no windows, no page size yet */
static void
test_empty(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = write_file(0, 0, NULL, 0);
	g_autoptr(MigdDirtyFile) file = migd_dirty_file_parse(bytes, &error);

	assert_int_equal(g_bytes_get_size(bytes), 64);
	assert_non_null(file);
	assert_int_equal(file->n_windows, 0);
	assert_int_equal(file->dirty_pages, 0);
}

static void
test_truncated(void **state)
{
	g_autoptr(GBytes) bytes = sample_file();
	gsize len = g_bytes_get_size(bytes);

	for (gsize n = 0; n < len; n++) {
		g_autoptr(GBytes) part = g_bytes_new_from_bytes(bytes, 0, n);
		g_autoptr(GError) error = NULL;
		g_autoptr(MigdDirtyFile) file = migd_dirty_file_parse(part, &error);
		if (file != NULL)
			fail_msg("accepted the first %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
				 " bytes",
				 n, len);
		assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
	}
	{
		/* bytes after the bitmaps are a newer writer's business */
		g_autoptr(GByteArray) longer = g_byte_array_new();
		g_autoptr(GBytes) more = NULL;
		g_autoptr(MigdDirtyFile) file = NULL;
		g_byte_array_append(longer, g_bytes_get_data(bytes, NULL), (guint)len);
		g_byte_array_append(longer, (const guint8 *)"trailer!", 8);
		more = g_byte_array_free_to_bytes(g_steal_pointer(&longer));
		file = migd_dirty_file_parse(more, NULL);
		assert_non_null(file);
	}
}

static void
test_bad_header(void **state)
{
	g_autoptr(GBytes) bytes = sample_file();
	g_autoptr(GBytes) magic = patched(bytes, 0, 0x54524944444749, 8); /* "IGDDIRT" */
	g_autoptr(GBytes) v0 = patched(bytes, 8, 0, 4);
	g_autoptr(GBytes) v2 = patched(bytes, 8, 2, 4);
	g_autoptr(GBytes) reserved = patched(bytes, 63, 1, 1);

	assert_rejected(magic, "not a version 1 dirty-bitmap file");
	assert_rejected(v0, "not a version 1 dirty-bitmap file");
	assert_rejected(v2, "not a version 1 dirty-bitmap file");
	assert_rejected(reserved, "reserved byte 63");
}

static void
test_bad_page_size(void **state)
{
	g_autoptr(GBytes) bytes = sample_file();
	const guint64 bad[] = {0, 1, 2048, 4097, 3 * 4096, G_MAXUINT64};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GBytes) b = patched(bytes, 16, bad[i], 8);
		assert_rejected(b, "bad page size");
	}
	{
		/* no used window: only 0 or a real page size */
		g_autoptr(GBytes) empty = write_file(0, 0, NULL, 0);
		g_autoptr(GBytes) b = patched(empty, 16, 12345, 8);
		assert_rejected(b, "bad page size");
	}
}

/* sizes that overflow, or that the file is too short for */
static void
test_bad_sizes(void **state)
{
	g_autoptr(GBytes) bytes = sample_file();
	const gsize e0 = 64, e2 = 128; /* the entries of the two used windows */
	struct {
		gsize offset;
		guint64 value;
		guint size;
		const gchar *what;
	} cases[] = {
	    /* more windows than the file holds entries for */
	    {12, 5, 4, "truncated dirty-bitmap file"},
	    {12, G_MAXUINT32, 4, "truncated dirty-bitmap file"},
	    /* n_pages: one word too many, the most, the most that rounds to few words */
	    {e2 + 8, 65, 8, "do not fit"},
	    {e2 + 8, G_MAXUINT64, 8, "wraps past 2^64"},
	    {e2 + 8, G_MAXUINT64 / 4096, 8, "do not fit"},
	    /* offsets: past the end, wrapping with the size, unaligned, in the table */
	    {e2 + 16, 1u << 20, 8, "do not fit"},
	    {e2 + 16, G_MAXUINT64 - 7, 8, "do not fit"},
	    {e2 + 16, 64 + 3 * 32 + 4, 8, "do not fit"},
	    {e2 + 16, 64, 8, "do not fit"},
	    /* an iova whose window runs past 2^64 */
	    {e0, G_MAXUINT64 - 4095, 8, "wraps past 2^64"},
	    /* counts that disagree with the bits */
	    {e0 + 24, 6, 8, "claims 6 dirty pages, its bitmap has 7"},
	    {e0 + 24, G_MAXUINT64, 8, "claims"},
	    {24, 10, 8, "dirty pages in the header"},
	    {24, 0, 8, "dirty pages in the header"},
	    /* an unused window that claims pages */
	    {96 + 24, 1, 8, "unused window 1"},
	    /* a bit past n_pages */
	    {64 + 3 * 32 + 3 * 8, 0x31, 8, "bits set past its pages"},
	    /* windows that overlap: [0x100000, +130 pages) and one moved into it */
	    {e2, 0x100000 + 129 * 4096, 8, "overlap"},
	    {e2, 0x100000 - 4 * 4096, 8, "overlap"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GBytes) b =
		    patched(bytes, cases[i].offset, cases[i].value, cases[i].size);
		assert_rejected(b, cases[i].what);
	}
	{
		/* touching windows are fine */
		g_autoptr(GBytes) b = patched(bytes, e2, 0x100000 - 5 * 4096, 8);
		g_autoptr(MigdDirtyFile) file = migd_dirty_file_parse(b, NULL);
		assert_non_null(file);
	}
	{
		/* two windows may share one bitmap: odd, but nothing is out of bounds */
		g_autoptr(GBytes) b1 = patched(bytes, e2 + 8, 130, 8);
		g_autoptr(GBytes) b2 = patched(b1, e2 + 16, 64 + 3 * 32, 8);
		g_autoptr(GBytes) b3 = patched(b2, e2 + 24, 7, 8);
		g_autoptr(GBytes) b4 = patched(b3, 24, 14, 8);
		g_autoptr(GBytes) b5 = patched(b4, e2, 0x200000, 8);
		g_autoptr(MigdDirtyFile) file = migd_dirty_file_parse(b5, NULL);
		assert_non_null(file);
		assert_int_equal(file->dirty_pages, 14);
	}
}

static void
test_write_error(void **state)
{
	g_autoptr(GError) error = NULL;
	Sample s;
	gint fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	sample_init(&s);
	assert_true(fd >= 0);
	/* a read-only fd: the error says what failed */
	assert_false(migd_dirty_file_write(fd, PAGE, 1, s.windows, 3, &error));
	assert_true(g_error_matches(error, MIGD_KERNEL_ERROR, EBADF));
	assert_non_null(strstr(error->message, "writing the dirty bitmap"));
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout),     cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_empty),      cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_bad_header), cmocka_unit_test(test_bad_page_size),
	    cmocka_unit_test(test_bad_sizes),  cmocka_unit_test(test_write_error),
	};

	return cmocka_run_group_tests_name("dirty-bitmap-file", tests, NULL, NULL);
}
