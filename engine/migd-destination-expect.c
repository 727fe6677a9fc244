/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The destination's expectations: devices reserved for the incoming migration
 * that carries a migration id (Manager.Expect), their timeouts and ends, and
 * which devices are busy because of them or of a running session.
 */
#include "config.h"

#include "migd-destination-private.h"
#include "migd-error.h"
#include "migd-wire-frame.h"
#include "migd-wire-limits.h"

MigdDestExpectation *
migd_destination_find_expectation(MigdDestination *self, const gchar *migration_id)
{
	for (guint i = 0; i < self->expectations->len; i++) {
		MigdDestExpectation *exp = g_ptr_array_index(self->expectations, i);
		if (g_strcmp0(exp->id, migration_id) == 0)
			return exp;
	}
	return NULL;
}

static void
migd_dest_expectation_free(MigdDestExpectation *exp)
{
	g_clear_handle_id(&exp->timeout_id, g_source_remove);
	g_ptr_array_unref(exp->devices);
	g_free(exp->id);
	g_free(exp);
}

/* takes @exp out (its devices are free then), tells who listens, frees it */
void
migd_destination_end_expectation(MigdDestination *self, MigdDestExpectation *exp, const gchar *why)
{
	g_ptr_array_remove(self->expectations, exp);
	g_clear_handle_id(&exp->timeout_id, g_source_remove);
	if (exp->session != NULL) {
		exp->session->expectation = NULL;
		exp->session = NULL;
	}
	g_message("expectation of migration %s ended: %s", exp->id, why);
	migd_destination_emit_expectation_ended(self, exp->id, why);
	migd_dest_expectation_free(exp);
}

static gboolean
migd_dest_expectation_timeout_cb(gpointer user_data)
{
	MigdDestExpectation *exp = user_data;

	exp->timeout_id = 0;
	g_message("migration %s: no session within %u s", exp->id, exp->timeout_s);
	migd_destination_end_expectation(exp->dest, exp, "timed-out");
	return G_SOURCE_REMOVE;
}

/* @device is one of this destination's and free: in no expectation or session */
static gboolean
migd_destination_check_reservable(MigdDestination *self, MigdDevice *device, GError **error)
{
	const gchar *name = migd_device_get_name(device);

	if (!g_ptr_array_find(self->devices, device, NULL)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s is not a device of this destination", name);
		return FALSE;
	}
	for (guint i = 0; i < self->expectations->len; i++) {
		MigdDestExpectation *exp = g_ptr_array_index(self->expectations, i);
		if (g_ptr_array_find(exp->devices, device, NULL)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
				    "%s is already reserved for migration %s", name, exp->id);
			return FALSE;
		}
	}
	if (migd_destination_device_is_busy(self, device)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
			    "%s is receiving an incoming migration", name);
		return FALSE;
	}
	return TRUE;
}

gboolean
migd_destination_expect(MigdDestination *self, const gchar *migration_id, GPtrArray *devices,
			MigdStartMode start, guint timeout_s, GError **error)
{
	MigdDestExpectation *exp;

	g_return_val_if_fail(MIGD_IS_DESTINATION(self), FALSE);
	g_return_val_if_fail(devices != NULL, FALSE);

	if (!migd_wire_check_migration_id("the migration id", migration_id,
					  MIGD_ERROR_INVALID_ARGUMENT, error))
		return FALSE;
	if (migd_destination_find_expectation(self, migration_id) != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY, "migration %s is already expected",
			    migration_id);
		return FALSE;
	}
	if (devices->len == 0 || devices->len > MIGD_WIRE_MAX_DEVICES) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "a migration takes 1 to %u devices, not %u", MIGD_WIRE_MAX_DEVICES,
			    devices->len);
		return FALSE;
	}
	for (guint i = 0; i < devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(devices, i);
		if (!migd_destination_check_reservable(self, device, error))
			return FALSE;
		/* the offer's device i goes into devices[i]: one device cannot take two */
		for (guint j = 0; j < i; j++) {
			if (g_ptr_array_index(devices, j) == device) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "%s is named twice", migd_device_get_name(device));
				return FALSE;
			}
		}
	}
	exp = g_new0(MigdDestExpectation, 1);
	exp->dest = self;
	exp->id = g_strdup(migration_id);
	exp->devices = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; i < devices->len; i++)
		g_ptr_array_add(exp->devices, g_object_ref(g_ptr_array_index(devices, i)));
	exp->start_mode = start;
	exp->timeout_s = timeout_s;
	if (timeout_s > 0)
		exp->timeout_id =
		    g_timeout_add_seconds(timeout_s, migd_dest_expectation_timeout_cb, exp);
	g_ptr_array_add(self->expectations, exp);
	g_message("expecting migration %s into %u devices (start %s, timeout %u s)", migration_id,
		  devices->len, migd_start_mode_to_string(start), timeout_s);
	return TRUE;
}

gboolean
migd_destination_cancel_expectation(MigdDestination *self, const gchar *migration_id,
				    GError **error)
{
	MigdDestExpectation *exp;
	MigdDestSession *session;

	g_return_val_if_fail(MIGD_IS_DESTINATION(self), FALSE);
	exp = migd_destination_find_expectation(self, migration_id);
	if (exp == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "no migration %s is expected", migration_id);
		return FALSE;
	}
	/* the session goes first: the signal says the devices are free, and they are reset */
	session = exp->session;
	if (session != NULL) {
		g_autoptr(GError) cancelled =
		    g_error_new(MIGD_ERROR, MIGD_ERROR_CANCELLED,
				"the expectation of migration %s was cancelled", migration_id);
		exp->session = NULL;
		session->expectation = NULL;
		migd_dest_session_fail(session, cancelled, TRUE);
	}
	migd_destination_end_expectation(self, exp, "cancelled");
	return TRUE;
}

gchar **
migd_destination_list_expectations(MigdDestination *self)
{
	GStrvBuilder *builder = g_strv_builder_new();
	gchar **ids;

	g_return_val_if_fail(MIGD_IS_DESTINATION(self), NULL);
	for (guint i = 0; i < self->expectations->len; i++) {
		MigdDestExpectation *exp = g_ptr_array_index(self->expectations, i);
		g_strv_builder_add(builder, exp->id);
	}
	ids = g_strv_builder_end(builder);
	g_strv_builder_unref(builder);
	return ids;
}

gboolean
migd_destination_device_in_session(MigdDestination *self, MigdDevice *device)
{
	g_return_val_if_fail(MIGD_IS_DESTINATION(self), FALSE);
	for (guint i = 0; i < self->sessions->len; i++) {
		MigdDestSession *session = g_ptr_array_index(self->sessions, i);
		for (guint j = 0; j < session->devices->len; j++) {
			MigdDestDevice *dd = g_ptr_array_index(session->devices, j);
			if (dd->device == device)
				return TRUE;
		}
	}
	return FALSE;
}

const gchar *
migd_destination_get_reservation(MigdDestination *self, MigdDevice *device)
{
	g_return_val_if_fail(MIGD_IS_DESTINATION(self), NULL);
	for (guint i = 0; i < self->expectations->len; i++) {
		MigdDestExpectation *exp = g_ptr_array_index(self->expectations, i);
		if (g_ptr_array_find(exp->devices, device, NULL))
			return exp->id;
	}
	return NULL;
}

gboolean
migd_destination_device_is_busy(MigdDestination *self, MigdDevice *device)
{
	g_return_val_if_fail(MIGD_IS_DESTINATION(self), FALSE);
	return migd_destination_get_reservation(self, device) != NULL ||
	       migd_destination_device_in_session(self, device);
}
