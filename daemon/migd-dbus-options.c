/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "migd-dbus-options.h"
#include "migd-error.h"
#include "migd-wire-frame.h"

static gboolean
migd_dbus_option_check_type(const gchar *key, GVariant *value, const GVariantType *type,
			    GError **error)
{
	if (!g_variant_is_of_type(value, type)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "option '%s' must be of type '%.*s', not '%s'", key,
			    (gint)g_variant_type_get_string_length(type),
			    g_variant_type_peek_string(type), g_variant_get_type_string(value));
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_dbus_option_get_path(const gchar *key, GVariant *value, gchar **dest, GError **error)
{
	if (!migd_dbus_option_check_type(key, value, G_VARIANT_TYPE_STRING, error))
		return FALSE;
	if (g_variant_get_string(value, NULL)[0] == '\0') {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "option '%s' must not be empty", key);
		return FALSE;
	}
	g_free(*dest);
	*dest = g_variant_dup_string(value, NULL);
	return TRUE;
}

static gboolean
migd_dbus_option_get_positive(const gchar *key, GVariant *value, guint *dest, GError **error)
{
	if (!migd_dbus_option_check_type(key, value, G_VARIANT_TYPE_UINT32, error))
		return FALSE;
	if (g_variant_get_uint32(value) == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "option '%s' must be greater than 0", key);
		return FALSE;
	}
	*dest = g_variant_get_uint32(value);
	return TRUE;
}

/* "allowed-uids" (au): plain UNIX peers let in besides root and the daemon's uid */
static gboolean
migd_dbus_option_get_uids(const gchar *key, GVariant *value, MigdTransportConfig *transport,
			  GError **error)
{
	gsize n = 0;
	const guint32 *uids = NULL;

	if (!migd_dbus_option_check_type(key, value, G_VARIANT_TYPE("au"), error))
		return FALSE;
	uids = g_variant_get_fixed_array(value, &n, sizeof(guint32));
	for (gsize i = 0; i < n; i++) {
		if (!migd_transport_config_add_allowed_uid(transport, uids[i], error)) {
			g_prefix_error(error, "option '%s': ", key);
			return FALSE;
		}
	}
	return TRUE;
}

/* a(tt), already of that type, as MigdIovaRange; the manager checks the values */
static GArray *
migd_dbus_option_ranges_from_variant(GVariant *value)
{
	GArray *ranges = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	GVariantIter iter;
	guint64 iova, length;

	g_variant_iter_init(&iter, value);
	while (g_variant_iter_next(&iter, "(tt)", &iova, &length)) {
		MigdIovaRange r = {.iova = iova, .length = length};
		g_array_append_val(ranges, r);
	}
	return ranges;
}

/* "iova-ranges" of Migrate: a{sa(tt)}, device name -> ranges */
static gboolean
migd_dbus_option_get_ranges_map(const gchar *key, GVariant *value, MigdMigrateOptions *migrate,
				GError **error)
{
	GVariantIter iter;
	const gchar *name;
	GVariant *ranges_tmp;

	if (!migd_dbus_option_check_type(key, value, G_VARIANT_TYPE("a{sa(tt)}"), error))
		return FALSE;
	g_variant_iter_init(&iter, value);
	while (g_variant_iter_next(&iter, "{&s@a(tt)}", &name, &ranges_tmp)) {
		g_autoptr(GVariant) ranges_variant = ranges_tmp;
		g_autoptr(GArray) ranges = migd_dbus_option_ranges_from_variant(ranges_variant);
		migd_migrate_options_add_iova_ranges(migrate, name, ranges);
	}
	return TRUE;
}

static gboolean
migd_dbus_option_get_dirty_fallback(const gchar *key, GVariant *value, MigdDirtyFallback *dest,
				    GError **error)
{
	const gchar *str;

	if (!migd_dbus_option_check_type(key, value, G_VARIANT_TYPE_STRING, error))
		return FALSE;
	str = g_variant_get_string(value, NULL);
	if (g_strcmp0(str, "allow") == 0) {
		*dest = MIGD_DIRTY_FALLBACK_ALLOW;
	} else if (g_strcmp0(str, "refuse") == 0) {
		*dest = MIGD_DIRTY_FALLBACK_REFUSE;
	} else {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "option 'dirty-fallback': expected \"allow\" or \"refuse\"");
		return FALSE;
	}
	return TRUE;
}

/* "switchover" (s): "auto" or "manual" */
static gboolean
migd_dbus_option_get_switchover(const gchar *key, GVariant *value, MigdSwitchoverMode *dest,
				GError **error)
{
	if (!migd_dbus_option_check_type(key, value, G_VARIANT_TYPE_STRING, error))
		return FALSE;
	if (!migd_switchover_mode_from_string(g_variant_get_string(value, NULL), dest, error)) {
		g_prefix_error(error, "option '%s': ", key);
		return FALSE;
	}
	return TRUE;
}

/* "start" (s): "auto" or "manual" */
static gboolean
migd_dbus_option_get_start(const gchar *key, GVariant *value, MigdStartMode *dest, GError **error)
{
	if (!migd_dbus_option_check_type(key, value, G_VARIANT_TYPE_STRING, error))
		return FALSE;
	if (!migd_start_mode_from_string(g_variant_get_string(value, NULL), dest, error)) {
		g_prefix_error(error, "option '%s': ", key);
		return FALSE;
	}
	return TRUE;
}

/* "migration-id" (s): checked here, so a bad id is the caller's mistake at once */
static gboolean
migd_dbus_option_get_migration_id(const gchar *key, GVariant *value, gchar **dest, GError **error)
{
	const gchar *id;

	if (!migd_dbus_option_check_type(key, value, G_VARIANT_TYPE_STRING, error))
		return FALSE;
	id = g_variant_get_string(value, NULL);
	if (!migd_wire_check_migration_id("option 'migration-id'", id, MIGD_ERROR_INVALID_ARGUMENT,
					  error))
		return FALSE;
	g_free(*dest);
	*dest = g_strdup(id);
	return TRUE;
}

/*
 * @migrate: NULL for Listen, which takes the transport options, the
 * listener's limits and @start (NULL for Migrate)
 */
static gboolean
migd_dbus_options_parse(GVariant *options, MigdTransportConfig *transport,
			MigdMigrateOptions *migrate, MigdStartMode *start, GError **error)
{
	GVariantIter iter;
	const gchar *key = NULL;
	GVariant *value_tmp = NULL;

	g_variant_iter_init(&iter, options);
	while (g_variant_iter_next(&iter, "{&sv}", &key, &value_tmp)) {
		g_autoptr(GVariant) value = value_tmp;
		gboolean ok;

		if (g_strcmp0(key, "plain") == 0) {
			ok = migd_dbus_option_check_type(key, value, G_VARIANT_TYPE_BOOLEAN, error);
			if (ok)
				transport->plain = g_variant_get_boolean(value);
		} else if (g_strcmp0(key, "insecure-plain-tcp") == 0) {
			ok = migd_dbus_option_check_type(key, value, G_VARIANT_TYPE_BOOLEAN, error);
			if (ok)
				transport->insecure_plain_tcp = g_variant_get_boolean(value);
		} else if (g_strcmp0(key, "allowed-uids") == 0) {
			ok = migd_dbus_option_get_uids(key, value, transport, error);
		} else if (migrate == NULL && g_strcmp0(key, "hello-timeout-ms") == 0) {
			ok = migd_dbus_option_get_positive(key, value, &transport->hello_timeout_ms,
							   error);
		} else if (migrate == NULL && g_strcmp0(key, "frame-timeout-ms") == 0) {
			ok = migd_dbus_option_get_positive(key, value, &transport->frame_timeout_ms,
							   error);
		} else if (migrate == NULL && g_strcmp0(key, "max-pending-peers") == 0) {
			ok = migd_dbus_option_get_positive(key, value,
							   &transport->max_pending_peers, error);
		} else if (g_strcmp0(key, "cert") == 0) {
			ok = migd_dbus_option_get_path(key, value, &transport->cert_file, error);
		} else if (g_strcmp0(key, "key") == 0) {
			ok = migd_dbus_option_get_path(key, value, &transport->key_file, error);
		} else if (g_strcmp0(key, "ca") == 0) {
			ok = migd_dbus_option_get_path(key, value, &transport->ca_file, error);
		} else if (migrate != NULL && g_strcmp0(key, "peer-name") == 0) {
			ok = migd_dbus_option_get_path(key, value, &transport->peer_name, error);
		} else if (migrate != NULL && g_strcmp0(key, "downtime-ms") == 0) {
			ok =
			    migd_dbus_option_get_positive(key, value, &migrate->downtime_ms, error);
		} else if (migrate != NULL && g_strcmp0(key, "max-rounds") == 0) {
			ok = migd_dbus_option_get_positive(key, value, &migrate->max_rounds, error);
		} else if (migrate != NULL && g_strcmp0(key, "timeout-s") == 0) {
			ok = migd_dbus_option_get_positive(key, value, &migrate->timeout_s, error);
		} else if (migrate != NULL && g_strcmp0(key, "iova-ranges") == 0) {
			ok = migd_dbus_option_get_ranges_map(key, value, migrate, error);
		} else if (migrate != NULL && g_strcmp0(key, "dirty-fallback") == 0) {
			ok = migd_dbus_option_get_dirty_fallback(key, value,
								 &migrate->dirty_fallback, error);
		} else if (migrate != NULL && g_strcmp0(key, "switchover") == 0) {
			ok = migd_dbus_option_get_switchover(key, value, &migrate->switchover,
							     error);
		} else if (migrate != NULL && g_strcmp0(key, "handover-timeout") == 0) {
			ok = migd_dbus_option_get_positive(key, value, &migrate->handover_timeout_s,
							   error);
		} else if (migrate != NULL && g_strcmp0(key, "migration-id") == 0) {
			ok = migd_dbus_option_get_migration_id(key, value, &migrate->migration_id,
							       error);
		} else if (start != NULL && g_strcmp0(key, "start") == 0) {
			ok = migd_dbus_option_get_start(key, value, start, error);
		} else {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "unknown option '%s'", key);
			ok = FALSE;
		}
		if (!ok)
			return FALSE;
	}
	return TRUE;
}

gboolean
migd_dbus_options_parse_listen(GVariant *options, MigdTransportConfig *transport,
			       MigdStartMode *start, GError **error)
{
	return migd_dbus_options_parse(options, transport, NULL, start, error);
}

gboolean
migd_dbus_options_parse_migrate(GVariant *options, MigdMigrateOptions *migrate, GError **error)
{
	return migd_dbus_options_parse(options, &migrate->transport, migrate, NULL, error);
}

gboolean
migd_dbus_options_parse_expect(GVariant *options, MigdStartMode *start, guint *timeout_s,
			       GError **error)
{
	GVariantIter iter;
	const gchar *key = NULL;
	GVariant *value_tmp = NULL;

	*start = MIGD_START_AUTO;
	*timeout_s = 0;
	g_variant_iter_init(&iter, options);
	while (g_variant_iter_next(&iter, "{&sv}", &key, &value_tmp)) {
		g_autoptr(GVariant) value = value_tmp;
		gboolean ok;

		if (g_strcmp0(key, "start") == 0) {
			ok = migd_dbus_option_get_start(key, value, start, error);
		} else if (g_strcmp0(key, "timeout") == 0) {
			/* 0 is allowed here: it means "no timeout", as absent */
			ok = migd_dbus_option_check_type(key, value, G_VARIANT_TYPE_UINT32, error);
			if (ok)
				*timeout_s = g_variant_get_uint32(value);
		} else {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "unknown option '%s'", key);
			ok = FALSE;
		}
		if (!ok)
			return FALSE;
	}
	return TRUE;
}

gboolean
migd_dbus_options_get_iova_ranges(GVariant *options, MigdDevice *device, GArray **ranges,
				  GError **error)
{
	g_autoptr(GVariant) value = g_variant_lookup_value(options, "iova-ranges", NULL);

	*ranges = NULL;
	if (value == NULL)
		return TRUE;
	if (!g_variant_is_of_type(value, G_VARIANT_TYPE("a(tt)"))) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "option 'iova-ranges' of %s: expected type a(tt), got %s",
			    migd_device_get_name(device), g_variant_get_type_string(value));
		return FALSE;
	}
	*ranges = migd_dbus_option_ranges_from_variant(value);
	return TRUE;
}

gboolean
migd_dbus_options_get_address(GVariant *options, gboolean with_fd, const gchar **address,
			      GError **error)
{
	g_autoptr(GVariant) value = g_variant_lookup_value(options, "address", NULL);

	*address = NULL;
	if (value == NULL)
		return TRUE;
	if (!with_fd) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "option 'address' goes with a device fd (AttachDevice); "
				    "AddDevice takes the address as the device's name");
		return FALSE;
	}
	if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "option 'address' must be a string (s), not %s",
			    g_variant_get_type_string(value));
		return FALSE;
	}
	/* borrowed from @options, which the caller holds */
	g_variant_lookup(options, "address", "&s", address);
	if ((*address)[0] == '\0') {
		*address = NULL;
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "option 'address' is empty");
		return FALSE;
	}
	return TRUE;
}
