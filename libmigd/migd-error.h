/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * MIGD_ERROR: what vfio-migd itself decides. Every code has one D-Bus error name
 * (migd_error_to_dbus_name) so that the control plane never invents its own.
 */
#define MIGD_ERROR (migd_error_quark())

typedef enum {
	MIGD_ERROR_FAILED,	     /* generic, with a message */
	MIGD_ERROR_INVALID_ARGUMENT, /* bad input from a caller, a config file or a peer */
	MIGD_ERROR_NOT_SUPPORTED,    /* the device or kernel lacks the feature */
	MIGD_ERROR_REFUSED_ARC,	     /* the planner refuses this transition */
	MIGD_ERROR_DEVICE_GONE,	     /* ENODEV / hot-unplug */
	MIGD_ERROR_SESSION_ENDED,    /* the data fd was disabled by the driver */
	MIGD_ERROR_DEVICE_ERROR,     /* the device is in the ERROR state */
	MIGD_ERROR_RECOVERY_FAILED,  /* even reset did not bring the device back */
	MIGD_ERROR_BUSY,	     /* another operation owns the device */
	MIGD_ERROR_TIMED_OUT,
	MIGD_ERROR_CANCELLED,
	MIGD_ERROR_PROTOCOL,	   /* malformed or unexpected data from a peer or device */
	MIGD_ERROR_INCOMPATIBLE,   /* the peer's device or stream does not fit this device */
	MIGD_ERROR_NOT_AUTHORIZED, /* the D-Bus caller is neither root nor allowed by polkit */
	MIGD_ERROR_LAST,
} MigdError;

GQuark migd_error_quark(void);
const gchar *migd_error_to_dbus_name(MigdError code);

/*
 * Turns a foreign error (GIO, TLS, file, key file, D-Bus) into the MIGD_ERROR
 * code it means, keeping the message: what leaves vfio-migd carries a name
 * clients can match. Codes without a row become MIGD_ERROR_FAILED; MIGD_ERROR
 * and a NULL @error or *@error are left alone.
 */
void migd_error_convert(GError **error);

/* registers MIGD_ERROR's D-Bus names (idempotent); errors then cross D-Bus by name */
void migd_error_register_dbus(void);

/*
 * MIGD_KERNEL_ERROR: a call into the kernel (or the simulator standing in for
 * it) failed; the code is the errno value itself, so callers and tests can tell
 * EINVAL from E2BIG without a lossy mapping.
 */
#define MIGD_KERNEL_ERROR (migd_kernel_error_quark())

GQuark migd_kernel_error_quark(void);

/* sets MIGD_KERNEL_ERROR with code @errnum and "@what: strerror" */
void migd_set_errno_error(GError **error, gint errnum, const gchar *what_fmt, ...)
    G_GNUC_PRINTF(3, 4);
gboolean migd_error_matches_errno(const GError *error, gint errnum);

G_END_DECLS
