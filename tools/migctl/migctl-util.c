/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "migctl-util.h"

gchar *
migctl_job_path(const gchar *arg, GError **error)
{
	guint64 n = 0;

	/* the short id operators read in `jobs` and in the daemon's log */
	if (g_ascii_string_to_unsigned(arg, 10, 0, G_MAXUINT64, &n, NULL))
		return g_strdup_printf(MIGCTL_JOBS_PATH "%" G_GUINT64_FORMAT, n);
	if (g_variant_is_object_path(arg))
		return g_strdup(arg);
	g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		    "'%s' is not a job: give its number (e.g. 3) or its path (" MIGCTL_JOBS_PATH
		    "3), as 'vfio-migctl jobs' lists them",
		    arg);
	return NULL;
}

const gchar *
migctl_job_number(const gchar *path)
{
	if (path != NULL && g_str_has_prefix(path, MIGCTL_JOBS_PATH) &&
	    path[strlen(MIGCTL_JOBS_PATH)] != '\0')
		return path + strlen(MIGCTL_JOBS_PATH);
	return path;
}

static gboolean
migctl_is_hex(const gchar *p, guint n)
{
	for (guint i = 0; i < n; i++) {
		if (!g_ascii_isxdigit(p[i]))
			return FALSE;
	}
	return TRUE;
}

gchar *
migctl_pci_address(const gchar *arg)
{
	/* BB:DD.F, as lspci prints it: domain 0000 assumed */
	if (strlen(arg) == 7 && migctl_is_hex(arg, 2) && arg[2] == ':' &&
	    migctl_is_hex(arg + 3, 2) && arg[5] == '.' && arg[6] >= '0' && arg[6] <= '7') {
		g_autofree gchar *full = g_strconcat("0000:", arg, NULL);
		return g_ascii_strdown(full, -1);
	}
	return g_strdup(arg);
}

gchar *
migctl_count(guint64 n, const gchar *one, const gchar *many)
{
	return g_strdup_printf("%" G_GUINT64_FORMAT " %s", n, n == 1 ? one : many);
}

guint
migctl_term_columns(void)
{
	struct winsize ws = {0};
	const gchar *env = g_getenv("COLUMNS");
	guint64 n = 0;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (env != NULL && g_ascii_string_to_unsigned(env, 10, 1, 10000, &n, NULL))
		return (guint)n;
	return 80;
}

gchar *
migctl_eta(gdouble progress, guint64 bytes, guint64 rate)
{
	gdouble left;
	guint64 s;

	/* what is left, at the bytes-per-progress seen so far, at the current rate */
	if (progress <= 0.0 || progress >= 1.0 || rate == 0 || bytes == 0)
		return g_strdup("-");
	left = (gdouble)bytes * (1.0 - progress) / progress / (gdouble)rate;
	if (left > 99 * 3600)
		return g_strdup("-");
	s = (guint64)(left + 0.5);
	if (s >= 3600)
		return g_strdup_printf("%" G_GUINT64_FORMAT "h%02" G_GUINT64_FORMAT "m", s / 3600,
				       s % 3600 / 60);
	if (s >= 60)
		return g_strdup_printf("%" G_GUINT64_FORMAT "m%02" G_GUINT64_FORMAT "s", s / 60,
				       s % 60);
	return g_strdup_printf("%" G_GUINT64_FORMAT "s", s);
}

gchar *
migctl_explain_error(const GError *error, const gchar *remote_name, const gchar *bus_name,
		     gboolean session)
{
	const gchar *bus = session ? "session" : "system";

	if (g_strcmp0(remote_name, "org.vfiomigd.Migd1.Error.NotAuthorized") == 0)
		/* the daemon's refusal names the method, the polkit action and why */
		return g_strdup_printf(
		    "%s: run vfio-migctl as root (sudo), or ask an administrator "
		    "to grant that polkit action",
		    error->message);
	if (g_strcmp0(remote_name, "org.freedesktop.DBus.Error.AccessDenied") == 0 ||
	    g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED))
		/* the shipped policy lets anyone reach the daemon: this bus's policy is stricter */
		return g_strdup_printf(
		    "access denied by the %s bus policy: vfio-migctl needs root "
		    "(run it with sudo), or the polkit action "
		    "org.vfiomigd.migd.read (to list) or org.vfiomigd.migd.change "
		    "(to act) and a bus policy that lets others reach %s "
		    "(the shipped org.vfiomigd.Migd1.conf does)",
		    bus, bus_name);
	if (g_strcmp0(remote_name, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
	    g_strcmp0(remote_name, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0 ||
	    g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
	    g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER)) {
		if (session)
			return g_strdup_printf("vfio-migd is not running: nothing owns %s on the "
					       "session bus",
					       bus_name);
		return g_strdup_printf("vfio-migd is not running (nothing owns %s on the system "
				       "bus): systemctl start vfio-migd",
				       bus_name);
	}
	if (g_strcmp0(remote_name, "org.freedesktop.DBus.Error.NoReply") == 0 ||
	    g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
		return g_strdup_printf("vfio-migd did not reply in time (busy, stuck or it died "
				       "during the call): see journalctl -u vfio-migd");
	if (g_strcmp0(remote_name, "org.freedesktop.DBus.Error.UnknownObject") == 0 ||
	    g_strcmp0(remote_name, "org.freedesktop.DBus.Error.UnknownMethod") == 0 ||
	    g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
	    g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD)) {
		/* GDBus answers UnknownMethod for a path nobody exported, such as an expired job */
		const gchar *job = strstr(error->message, MIGCTL_JOBS_PATH);

		if (job != NULL) {
			g_autofree gchar *number =
			    g_strndup(job + strlen(MIGCTL_JOBS_PATH),
				      strspn(job + strlen(MIGCTL_JOBS_PATH), "0123456789"));
			return g_strdup_printf(
			    "no job %s: it never existed or has expired (finished "
			    "jobs are kept for 10 minutes; 'vfio-migctl jobs' "
			    "lists them)",
			    number);
		}
		return g_strdup_printf("%s (an older vfio-migd: 'vfio-migctl status' shows its "
				       "version)",
				       error->message);
	}
	if (remote_name == NULL && error->domain == G_IO_ERROR)
		/* g_bus_get_sync: no bus socket, or the bus refused us */
		return g_strdup_printf("cannot connect to the %s D-Bus (%s)%s", bus, error->message,
				       session ? ": is DBUS_SESSION_BUS_ADDRESS set?"
					       : ": is dbus running? systemctl start dbus");
	return g_strdup(error->message);
}

gboolean
migctl_is_cancelled(const gchar *phase, const gchar *message)
{
	/* Job.Cancel ends a source or destination job with exactly this message
	 * (engine/migd-source.c, engine/migd-destination.c) */
	return g_strcmp0(phase, "failed") == 0 && message != NULL &&
	       strstr(message, "cancelled by the operator") != NULL;
}

/* ---- tables ---- */

struct _MigctlTable {
	guint n_columns;
	GPtrArray *cells; /* of gchar *, row after row, the header first */
};

static void
migctl_table_add_valist(MigctlTable *table, va_list ap)
{
	for (guint i = 0; i < table->n_columns; i++) {
		const gchar *cell = va_arg(ap, const gchar *);
		g_ptr_array_add(table->cells, g_strdup(cell != NULL ? cell : "-"));
	}
}

MigctlTable *
migctl_table_new(guint n_columns, ...)
{
	MigctlTable *table = g_new0(MigctlTable, 1);
	va_list ap;

	g_return_val_if_fail(n_columns > 0, NULL);
	table->n_columns = n_columns;
	table->cells = g_ptr_array_new_with_free_func(g_free);
	va_start(ap, n_columns);
	migctl_table_add_valist(table, ap);
	va_end(ap);
	return table;
}

void
migctl_table_add_row(MigctlTable *table, ...)
{
	va_list ap;

	va_start(ap, table);
	migctl_table_add_valist(table, ap);
	va_end(ap);
}

void
migctl_table_print(MigctlTable *table)
{
	g_autofree glong *width = g_new0(glong, table->n_columns);
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; i < table->cells->len; i++) {
		guint col = i % table->n_columns;
		width[col] = MAX(width[col], g_utf8_strlen(g_ptr_array_index(table->cells, i), -1));
	}
	for (guint i = 0; i < table->cells->len; i++) {
		guint col = i % table->n_columns;
		const gchar *cell = g_ptr_array_index(table->cells, i);

		g_string_append(out, cell);
		if (col + 1 == table->n_columns) {
			g_string_append_c(out, '\n');
			continue;
		}
		for (glong pad = g_utf8_strlen(cell, -1); pad <= width[col]; pad++)
			g_string_append_c(out, ' ');
	}
	g_print("%s", out->str);
}

void
migctl_table_free(MigctlTable *table)
{
	g_ptr_array_unref(table->cells);
	g_free(table);
}
