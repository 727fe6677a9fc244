/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * migd_file_load_bounded(): regular files up to the cap are read whole; a FIFO (even with
 * nobody writing), a device, a directory and a file over the cap are refused at once, with
 * the path and the reason; a file larger than its size says (procfs) is refused past the cap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "migd-error.h"
#include "migd-file.h"

typedef struct {
	gchar *dir;
} Fixture;

static int
setup(void **state)
{
	Fixture *f = g_new0(Fixture, 1);
	f->dir = g_dir_make_tmp("migd-file-XXXXXX", NULL);
	assert_non_null(f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	Fixture *f = *state;
	g_autoptr(GDir) dir = g_dir_open(f->dir, 0, NULL);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(f->dir, name, NULL);
		g_unlink(path);
	}
	g_rmdir(f->dir);
	g_free(f->dir);
	g_free(f);
	return 0;
}

/* refused, with @path and @reason in the message */
static void
assert_refused(const gchar *path, gsize cap, const gchar *reason)
{
	g_autoptr(GError) error = NULL;
	gchar *contents = NULL;
	gsize len = 0;

	if (migd_file_load_bounded(path, cap, &contents, &len, &error))
		fail_msg("%s: accepted (%" G_GSIZE_FORMAT " bytes)", path, len);
	assert_null(contents);
	if (strstr(error->message, path) == NULL || strstr(error->message, reason) == NULL)
		fail_msg("'%s' does not name '%s' and '%s'", error->message, path, reason);
}

static void
test_regular(void **state)
{
	Fixture *f = *state;
	g_autofree gchar *path = g_build_filename(f->dir, "a.conf", NULL);
	g_autofree gchar *empty = g_build_filename(f->dir, "empty", NULL);
	g_autofree gchar *contents = NULL;
	g_autofree gchar *nothing = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;

	/* exactly the cap, with a NUL inside: all of it, NUL-terminated */
	assert_true(g_file_set_contents(path, "0123456789abc\0ef", 16, NULL));
	assert_true(migd_file_load_bounded(path, 16, &contents, &len, &error));
	assert_null(error);
	assert_int_equal(len, 16);
	assert_memory_equal(contents, "0123456789abc\0ef", 16);
	assert_int_equal(contents[16], '\0');

	assert_true(g_file_set_contents(empty, "", 0, NULL));
	assert_true(migd_file_load_bounded(empty, 16, &nothing, &len, &error));
	assert_int_equal(len, 0);
	assert_string_equal(nothing, "");
}

static void
test_missing(void **state)
{
	Fixture *f = *state;
	g_autofree gchar *path = g_build_filename(f->dir, "none", NULL);
	g_autoptr(GError) error = NULL;
	gchar *contents = NULL;

	assert_false(migd_file_load_bounded(path, 16, &contents, NULL, &error));
	/* the default configuration may be absent: NOENT must stay recognisable */
	assert_true(g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT));
	assert_non_null(strstr(error->message, path));
}

static void
test_too_large(void **state)
{
	Fixture *f = *state;
	g_autofree gchar *path = g_build_filename(f->dir, "big", NULL);

	assert_true(g_file_set_contents(path, "0123456789abcdefX", 17, NULL));
	assert_refused(path, 16, "17 bytes, more than the 16 allowed");
}

/* a FIFO nobody writes to: refused at once, never waited on */
static void
test_fifo(void **state)
{
	Fixture *f = *state;
	g_autofree gchar *path = g_build_filename(f->dir, "fifo", NULL);
	gint64 start;

	assert_int_equal(mkfifo(path, 0600), 0);
	start = g_get_monotonic_time();
	assert_refused(path, 1024, "a FIFO, but a regular file is required");
	assert_true(g_get_monotonic_time() - start < G_USEC_PER_SEC);
}

static void
test_devices_and_directories(void **state)
{
	Fixture *f = *state;

	/* /dev/zero once grew the daemon to 24 GB */
	assert_refused("/dev/zero", MIGD_FILE_MAX_TLS_SIZE, "a character device");
	assert_refused("/dev/null", MIGD_FILE_MAX_TLS_SIZE, "a character device");
	assert_refused(f->dir, MIGD_FILE_MAX_TLS_SIZE, "a directory");
}

/* procfs reports size 0: the read itself stops one byte past the cap */
static void
test_grows_past_cap(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *contents = NULL;
	gsize len = 0;

	assert_refused("/proc/self/status", 8, "grew past the 8 bytes allowed");
	assert_true(migd_file_load_bounded("/proc/self/status", MIGD_FILE_MAX_CONFIG_SIZE,
					   &contents, &len, &error));
	assert_true(len > 8);
	assert_int_equal(strlen(contents), len);
	assert_true(g_str_has_prefix(contents, "Name:"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_regular, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_devices_and_directories, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_grows_past_cap, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
