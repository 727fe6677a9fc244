/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * migd_error_convert(): every foreign (domain, code) it knows, written out
 * here by hand as the oracle, keeps its message and gets its MIGD_ERROR code;
 * anything else is FAILED; MIGD_ERROR passes untouched; NULL is harmless. And
 * every MIGD_ERROR code crosses D-Bus under its own name once registered.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>

#include "migd-error.h"

typedef struct {
	GQuark domain;
	gint code;
	MigdError expected;
} ErrorRow;

static void
assert_converts(GQuark domain, gint code, MigdError expected)
{
	g_autoptr(GError) error = g_error_new(domain, code, "what went wrong %d", code);
	g_autofree gchar *message = g_strdup(error->message);

	migd_error_convert(&error);
	assert_non_null(error);
	if (error->domain != MIGD_ERROR || error->code != (gint)expected)
		fail_msg("%s/%d: got %s/%d, expected MIGD_ERROR/%d", g_quark_to_string(domain),
			 code, g_quark_to_string(error->domain), error->code, expected);
	assert_string_equal(error->message, message);
}

static void
test_error_table_rows(void **state)
{
	const ErrorRow rows[] = {
	    {G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, MIGD_ERROR_INVALID_ARGUMENT},
	    {G_IO_ERROR, G_IO_ERROR_INVALID_DATA, MIGD_ERROR_INVALID_ARGUMENT},
	    {G_IO_ERROR, G_IO_ERROR_NOT_FOUND, MIGD_ERROR_INVALID_ARGUMENT},
	    {G_IO_ERROR, G_IO_ERROR_INVALID_FILENAME, MIGD_ERROR_INVALID_ARGUMENT},
	    {G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG, MIGD_ERROR_INVALID_ARGUMENT},
	    {G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE, MIGD_ERROR_INVALID_ARGUMENT},
	    {G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY, MIGD_ERROR_INVALID_ARGUMENT},
	    {G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE, MIGD_ERROR_BUSY},
	    {G_IO_ERROR, G_IO_ERROR_BUSY, MIGD_ERROR_BUSY},
	    {G_IO_ERROR, G_IO_ERROR_TIMED_OUT, MIGD_ERROR_TIMED_OUT},
	    {G_IO_ERROR, G_IO_ERROR_CANCELLED, MIGD_ERROR_CANCELLED},
	    {G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, MIGD_ERROR_NOT_SUPPORTED},
	    {G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS, MIGD_ERROR_INVALID_ARGUMENT},
	    {G_DBUS_ERROR, G_DBUS_ERROR_NOT_SUPPORTED, MIGD_ERROR_NOT_SUPPORTED},
	    {G_DBUS_ERROR, G_DBUS_ERROR_TIMEOUT, MIGD_ERROR_TIMED_OUT},
	    {G_DBUS_ERROR, G_DBUS_ERROR_TIMED_OUT, MIGD_ERROR_TIMED_OUT},
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++)
		assert_converts(rows[i].domain, rows[i].code, rows[i].expected);
}

/* certificate, key and configuration files are the caller's: every code */
static void
test_error_whole_domains(void **state)
{
	const gint tls[] = {
	    G_TLS_ERROR_UNAVAILABLE, G_TLS_ERROR_MISC,	    G_TLS_ERROR_BAD_CERTIFICATE,
	    G_TLS_ERROR_NOT_TLS,     G_TLS_ERROR_HANDSHAKE, G_TLS_ERROR_CERTIFICATE_REQUIRED,
	    G_TLS_ERROR_EOF};
	const gint file[] = {G_FILE_ERROR_EXIST, G_FILE_ERROR_NOENT, G_FILE_ERROR_ACCES,
			     G_FILE_ERROR_ISDIR, G_FILE_ERROR_FAILED};
	const gint key_file[] = {G_KEY_FILE_ERROR_UNKNOWN_ENCODING, G_KEY_FILE_ERROR_PARSE,
				 G_KEY_FILE_ERROR_NOT_FOUND,	    G_KEY_FILE_ERROR_KEY_NOT_FOUND,
				 G_KEY_FILE_ERROR_GROUP_NOT_FOUND,  G_KEY_FILE_ERROR_INVALID_VALUE};

	for (guint i = 0; i < G_N_ELEMENTS(tls); i++)
		assert_converts(G_TLS_ERROR, tls[i], MIGD_ERROR_INVALID_ARGUMENT);
	for (guint i = 0; i < G_N_ELEMENTS(file); i++)
		assert_converts(G_FILE_ERROR, file[i], MIGD_ERROR_INVALID_ARGUMENT);
	for (guint i = 0; i < G_N_ELEMENTS(key_file); i++)
		assert_converts(G_KEY_FILE_ERROR, key_file[i], MIGD_ERROR_INVALID_ARGUMENT);
}

static void
test_error_unknown_is_failed(void **state)
{
	/* codes of known domains without a row, an errno and a domain nobody maps */
	assert_converts(G_IO_ERROR, G_IO_ERROR_FAILED, MIGD_ERROR_FAILED);
	assert_converts(G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, MIGD_ERROR_FAILED);
	assert_converts(G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED, MIGD_ERROR_FAILED);
	assert_converts(G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, MIGD_ERROR_FAILED);
	assert_converts(G_IO_ERROR, 9999, MIGD_ERROR_FAILED);
	assert_converts(G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED, MIGD_ERROR_FAILED);
	assert_converts(G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD, MIGD_ERROR_FAILED);
	assert_converts(MIGD_KERNEL_ERROR, 19 /* ENODEV */, MIGD_ERROR_FAILED);
	assert_converts(g_quark_from_static_string("test-other-error-quark"),
			G_IO_ERROR_INVALID_ARGUMENT, MIGD_ERROR_FAILED);
}

static void
test_error_migd_untouched(void **state)
{
	for (gint code = 0; code < MIGD_ERROR_LAST; code++) {
		g_autoptr(GError) error = g_error_new(MIGD_ERROR, code, "mine %d", code);
		GError *before = error;
		migd_error_convert(&error);
		assert_ptr_equal(error, before);
		assert_true(g_error_matches(error, MIGD_ERROR, code));
		assert_string_equal(error->message, before->message);
	}
}

static void
test_error_null_safe(void **state)
{
	GError *error = NULL;

	migd_error_convert(NULL);
	migd_error_convert(&error);
	assert_null(error);
}

/* registered, each code leaves as its own name and comes back as itself */
static void
test_error_dbus_names(void **state)
{
	migd_error_register_dbus();
	migd_error_register_dbus(); /* idempotent */
	for (gint code = 0; code < MIGD_ERROR_LAST; code++) {
		g_autoptr(GError) error = g_error_new(MIGD_ERROR, code, "code %d", code);
		g_autoptr(GError) back = NULL;
		g_autofree gchar *name = g_dbus_error_encode_gerror(error);
		assert_string_equal(name, migd_error_to_dbus_name(code));
		back = g_dbus_error_new_for_dbus_error(name, "remote");
		assert_true(g_error_matches(back, MIGD_ERROR, code));
	}
	assert_string_equal(migd_error_to_dbus_name(MIGD_ERROR_LAST),
			    "org.vfiomigd.Migd1.Error.Failed");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_table_rows),
	    cmocka_unit_test(test_error_whole_domains),
	    cmocka_unit_test(test_error_unknown_is_failed),
	    cmocka_unit_test(test_error_migd_untouched),
	    cmocka_unit_test(test_error_null_safe),
	    cmocka_unit_test(test_error_dbus_names),
	};
	return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
