/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "migd-error.h"

/* indexed by MigdError; the single definition of the D-Bus error names */
static const gchar *const migd_error_dbus_names[] = {
    [MIGD_ERROR_FAILED] = "org.vfiomigd.Migd1.Error.Failed",
    [MIGD_ERROR_INVALID_ARGUMENT] = "org.vfiomigd.Migd1.Error.InvalidArgument",
    [MIGD_ERROR_NOT_SUPPORTED] = "org.vfiomigd.Migd1.Error.NotSupported",
    [MIGD_ERROR_REFUSED_ARC] = "org.vfiomigd.Migd1.Error.RefusedArc",
    [MIGD_ERROR_DEVICE_GONE] = "org.vfiomigd.Migd1.Error.DeviceGone",
    [MIGD_ERROR_SESSION_ENDED] = "org.vfiomigd.Migd1.Error.SessionEnded",
    [MIGD_ERROR_DEVICE_ERROR] = "org.vfiomigd.Migd1.Error.DeviceError",
    [MIGD_ERROR_RECOVERY_FAILED] = "org.vfiomigd.Migd1.Error.RecoveryFailed",
    [MIGD_ERROR_BUSY] = "org.vfiomigd.Migd1.Error.Busy",
    [MIGD_ERROR_TIMED_OUT] = "org.vfiomigd.Migd1.Error.TimedOut",
    [MIGD_ERROR_CANCELLED] = "org.vfiomigd.Migd1.Error.Cancelled",
    [MIGD_ERROR_PROTOCOL] = "org.vfiomigd.Migd1.Error.Protocol",
    [MIGD_ERROR_INCOMPATIBLE] = "org.vfiomigd.Migd1.Error.Incompatible",
    [MIGD_ERROR_NOT_AUTHORIZED] = "org.vfiomigd.Migd1.Error.NotAuthorized",
};
G_STATIC_ASSERT(G_N_ELEMENTS(migd_error_dbus_names) == MIGD_ERROR_LAST);

/* code: a code of the domain, or MIGD_ERROR_CONVERT_ANY_CODE for all of them */
#define MIGD_ERROR_CONVERT_ANY_CODE (-1)

typedef struct {
	GQuark (*domain)(void); /* the domains are not constants: their quark functions */
	gint code;
	MigdError migd_code;
} MigdErrorConvertEntry;

/*
 * The one table of foreign errors. GIO's own codes say what went wrong; TLS,
 * file and key-file errors come from certificate, key and configuration files
 * a caller named, so they are the caller's to fix.
 */
static const MigdErrorConvertEntry migd_error_convert_table[] = {
    {g_io_error_quark, G_IO_ERROR_INVALID_ARGUMENT, MIGD_ERROR_INVALID_ARGUMENT},
    {g_io_error_quark, G_IO_ERROR_INVALID_DATA, MIGD_ERROR_INVALID_ARGUMENT},
    {g_io_error_quark, G_IO_ERROR_NOT_FOUND, MIGD_ERROR_INVALID_ARGUMENT},
    {g_io_error_quark, G_IO_ERROR_INVALID_FILENAME, MIGD_ERROR_INVALID_ARGUMENT},
    {g_io_error_quark, G_IO_ERROR_FILENAME_TOO_LONG, MIGD_ERROR_INVALID_ARGUMENT},
    {g_io_error_quark, G_IO_ERROR_NOT_REGULAR_FILE, MIGD_ERROR_INVALID_ARGUMENT},
    {g_io_error_quark, G_IO_ERROR_IS_DIRECTORY, MIGD_ERROR_INVALID_ARGUMENT},
    {g_io_error_quark, G_IO_ERROR_ADDRESS_IN_USE, MIGD_ERROR_BUSY},
    {g_io_error_quark, G_IO_ERROR_BUSY, MIGD_ERROR_BUSY},
    {g_io_error_quark, G_IO_ERROR_TIMED_OUT, MIGD_ERROR_TIMED_OUT},
    {g_io_error_quark, G_IO_ERROR_CANCELLED, MIGD_ERROR_CANCELLED},
    {g_io_error_quark, G_IO_ERROR_NOT_SUPPORTED, MIGD_ERROR_NOT_SUPPORTED},
    {g_tls_error_quark, MIGD_ERROR_CONVERT_ANY_CODE, MIGD_ERROR_INVALID_ARGUMENT},
    {g_file_error_quark, MIGD_ERROR_CONVERT_ANY_CODE, MIGD_ERROR_INVALID_ARGUMENT},
    {g_key_file_error_quark, MIGD_ERROR_CONVERT_ANY_CODE, MIGD_ERROR_INVALID_ARGUMENT},
    {g_dbus_error_quark, G_DBUS_ERROR_INVALID_ARGS, MIGD_ERROR_INVALID_ARGUMENT},
    {g_dbus_error_quark, G_DBUS_ERROR_NOT_SUPPORTED, MIGD_ERROR_NOT_SUPPORTED},
    {g_dbus_error_quark, G_DBUS_ERROR_TIMEOUT, MIGD_ERROR_TIMED_OUT},
    {g_dbus_error_quark, G_DBUS_ERROR_TIMED_OUT, MIGD_ERROR_TIMED_OUT},
};

void
migd_error_convert(GError **error)
{
	GError *e;

	if (error == NULL || *error == NULL)
		return;
	e = *error;
	if (e->domain == MIGD_ERROR)
		return;
	for (guint i = 0; i < G_N_ELEMENTS(migd_error_convert_table); i++) {
		const MigdErrorConvertEntry *entry = &migd_error_convert_table[i];
		if (e->domain != entry->domain())
			continue;
		if (entry->code != MIGD_ERROR_CONVERT_ANY_CODE && entry->code != e->code)
			continue;
		e->domain = MIGD_ERROR;
		e->code = entry->migd_code;
		return;
	}
	e->domain = MIGD_ERROR;
	e->code = MIGD_ERROR_FAILED;
}

void
migd_error_register_dbus(void)
{
	static GDBusErrorEntry entries[MIGD_ERROR_LAST];
	static gsize quark = 0;

	if (g_once_init_enter(&quark)) {
		volatile gsize registered = 0;
		for (guint i = 0; i < MIGD_ERROR_LAST; i++) {
			entries[i].error_code = (gint)i;
			entries[i].dbus_error_name = migd_error_to_dbus_name((MigdError)i);
		}
		/* the same quark name as migd_error_quark(), so MIGD_ERROR itself is mapped */
		g_dbus_error_register_error_domain("migd-error-quark", &registered, entries,
						   G_N_ELEMENTS(entries));
		g_once_init_leave(&quark, registered);
	}
}

GQuark
migd_error_quark(void)
{
	return g_quark_from_static_string("migd-error-quark");
}

GQuark
migd_kernel_error_quark(void)
{
	return g_quark_from_static_string("migd-kernel-error-quark");
}

const gchar *
migd_error_to_dbus_name(MigdError code)
{
	if ((guint)code >= MIGD_ERROR_LAST)
		return migd_error_dbus_names[MIGD_ERROR_FAILED];
	return migd_error_dbus_names[code];
}

void
migd_set_errno_error(GError **error, gint errnum, const gchar *what_fmt, ...)
{
	va_list args;
	g_autofree gchar *what = NULL;

	va_start(args, what_fmt);
	what = g_strdup_vprintf(what_fmt, args);
	va_end(args);
	g_set_error(error, MIGD_KERNEL_ERROR, errnum, "%s: %s", what, g_strerror(errnum));
}

gboolean
migd_error_matches_errno(const GError *error, gint errnum)
{
	return error != NULL && error->domain == MIGD_KERNEL_ERROR && error->code == errnum;
}
