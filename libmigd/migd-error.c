/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

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
};
G_STATIC_ASSERT(G_N_ELEMENTS(migd_error_dbus_names) == MIGD_ERROR_LAST);

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
