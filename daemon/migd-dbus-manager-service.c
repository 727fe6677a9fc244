/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <string.h>
#include <unistd.h>

#include "migd-dbus-job-service.h"
#include "migd-dbus-manager-service.h"
#include "migd-destination.h"
#include "migd-error.h"
#include "migd-source.h"
#include "migd-transport.h"

/* one exported job and what it holds */
typedef struct {
	MigdDbusManagerService *manager; /* not a reference: the manager owns the entry */
	gchar *path;
	MigdDbusJobService *service;
	GPtrArray *devices; /* MigdDevice the job keeps busy until it finishes */
	gulong completed_id;
	guint retain_id;
} MigdDbusJobEntry;

struct _MigdDbusManagerService {
	MigdDbusManagerSkeleton parent_instance;
	GPtrArray *devices;	     /* MigdDevice */
	GHashTable *busy;	     /* MigdDevice -> MigdDbusJobEntry (borrowed) */
	GHashTable *jobs;	     /* path -> MigdDbusJobEntry (owned) */
	GQueue finished;	     /* MigdDbusJobEntry (borrowed), oldest first */
	GPtrArray *capabilities;     /* gchar *, NULL-terminated */
	GDBusConnection *connection; /* set while exported */
	MigdDestination *destination;
	guint64 next_job_id;
	MigdDbusDeviceInfoFunc info_func;
	gpointer info_data;
	MigdJournal *journal; /* borrowed */
	MigdDbusDeviceOpenFunc open_func;
	gpointer open_data;
	MigdLowPower *low_power; /* borrowed; NULL: idle devices stay powered */
};

static void migd_dbus_manager_service_iface_init(MigdDbusManagerIface *iface);

G_DEFINE_TYPE_WITH_CODE(MigdDbusManagerService, migd_dbus_manager_service,
			MIGD_DBUS_TYPE_MANAGER_SKELETON,
			G_IMPLEMENT_INTERFACE(MIGD_DBUS_TYPE_MANAGER,
					      migd_dbus_manager_service_iface_init))

void
migd_dbus_error_register(void)
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

/*
 * Everything a method returns goes out as a MIGD_ERROR name: the engine and GIO
 * may fail with their own domains, which would otherwise cross the bus as
 * org.gtk.GDBus.UnmappedGError names no client can match.
 */
static void
migd_dbus_error_convert(GError **error)
{
	GError *e;
	gint code = MIGD_ERROR_FAILED;

	if (error == NULL || *error == NULL)
		return;
	e = *error;
	if (e->domain == MIGD_ERROR)
		return;
	if (e->domain == G_IO_ERROR) {
		switch (e->code) {
		case G_IO_ERROR_INVALID_ARGUMENT:
		case G_IO_ERROR_INVALID_DATA:
		case G_IO_ERROR_NOT_FOUND:
		case G_IO_ERROR_INVALID_FILENAME:
		case G_IO_ERROR_FILENAME_TOO_LONG:
		case G_IO_ERROR_NOT_REGULAR_FILE:
		case G_IO_ERROR_IS_DIRECTORY:
			code = MIGD_ERROR_INVALID_ARGUMENT;
			break;
		case G_IO_ERROR_ADDRESS_IN_USE:
		case G_IO_ERROR_BUSY:
			code = MIGD_ERROR_BUSY;
			break;
		case G_IO_ERROR_TIMED_OUT:
			code = MIGD_ERROR_TIMED_OUT;
			break;
		case G_IO_ERROR_CANCELLED:
			code = MIGD_ERROR_CANCELLED;
			break;
		case G_IO_ERROR_NOT_SUPPORTED:
			code = MIGD_ERROR_NOT_SUPPORTED;
			break;
		default:
			break;
		}
	} else if (e->domain == G_TLS_ERROR || e->domain == G_FILE_ERROR ||
		   e->domain == G_KEY_FILE_ERROR) {
		/* certificate and key files come from the caller */
		code = MIGD_ERROR_INVALID_ARGUMENT;
	}
	e->domain = MIGD_ERROR;
	e->code = code;
}

/* takes @error */
static void
migd_dbus_return_error(GDBusMethodInvocation *invocation, GError *error)
{
	migd_dbus_error_convert(&error);
	g_info("%s.%s from %s failed: %s", g_dbus_method_invocation_get_interface_name(invocation),
	       g_dbus_method_invocation_get_method_name(invocation),
	       g_dbus_method_invocation_get_sender(invocation), error->message);
	g_dbus_method_invocation_take_error(invocation, error);
}

/* ---- jobs ---- */

static void
migd_dbus_job_entry_free(MigdDbusJobEntry *entry)
{
	MigdJob *job = migd_dbus_job_service_get_job(entry->service);

	g_clear_signal_handler(&entry->completed_id, job);
	g_clear_handle_id(&entry->retain_id, g_source_remove);
	if (g_dbus_interface_skeleton_get_connection(G_DBUS_INTERFACE_SKELETON(entry->service)) !=
	    NULL)
		g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(entry->service));
	g_object_unref(entry->service);
	g_ptr_array_unref(entry->devices);
	g_free(entry->path);
	g_free(entry);
}

static void
migd_dbus_manager_service_release_devices(MigdDbusManagerService *self, MigdDbusJobEntry *entry)
{
	for (guint i = 0; i < entry->devices->len; i++) {
		gpointer device = g_ptr_array_index(entry->devices, i);
		if (g_hash_table_lookup(self->busy, device) == entry)
			g_hash_table_remove(self->busy, device);
	}
}

static gboolean
migd_dbus_job_entry_retain_cb(gpointer user_data)
{
	MigdDbusJobEntry *entry = user_data;
	MigdDbusManagerService *self = entry->manager;

	entry->retain_id = 0;
	g_queue_remove(&self->finished, entry);
	g_hash_table_remove(self->jobs, entry->path);
	return G_SOURCE_REMOVE;
}

/* idle devices go to low power when that is enabled; a driver without it is told once */
static void
migd_dbus_manager_service_idle_devices(MigdDbusManagerService *self, GPtrArray *devices)
{
	for (guint i = 0; self->low_power != NULL && i < devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(devices, i);
		g_autoptr(GError) error = NULL;
		if (g_hash_table_contains(self->busy, device))
			continue;
		if (!migd_low_power_enter(self->low_power, device, &error) &&
		    !g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED))
			g_message("%s: stays powered: %s", migd_device_get_name(device),
				  error->message);
	}
}

/* a job is about to use @devices: out of low power, or the job cannot start */
static gboolean
migd_dbus_manager_service_wake_devices(MigdDbusManagerService *self, GPtrArray *devices,
				       GError **error)
{
	for (guint i = 0; self->low_power != NULL && i < devices->len; i++) {
		if (!migd_low_power_exit(self->low_power, g_ptr_array_index(devices, i), error))
			return FALSE;
	}
	return TRUE;
}

static void
migd_dbus_job_entry_completed_cb(MigdJob *job, gboolean success, const gchar *message,
				 gpointer user_data)
{
	MigdDbusJobEntry *entry = user_data;
	MigdDbusManagerService *self = entry->manager;

	migd_dbus_manager_service_release_devices(self, entry);
	g_clear_signal_handler(&entry->completed_id, job);
	/* idle again, except a destination's devices after success: a guest runs on them */
	if (!(success && migd_job_get_role(job) == MIGD_JOB_ROLE_DESTINATION))
		migd_dbus_manager_service_idle_devices(self, entry->devices);

	/* finished jobs stay readable for a while, but never pile up without bound */
	entry->retain_id =
	    g_timeout_add_seconds(MIGD_DBUS_JOB_RETAIN_S, migd_dbus_job_entry_retain_cb, entry);
	g_queue_push_tail(&self->finished, entry);
	while (g_queue_get_length(&self->finished) > MIGD_DBUS_JOB_RETAIN_COUNT) {
		MigdDbusJobEntry *oldest = g_queue_pop_head(&self->finished);
		g_hash_table_remove(self->jobs, oldest->path);
	}
}

/* exports @job and keeps @devices busy until it finishes; returns the object path */
static const gchar *
migd_dbus_manager_service_add_job(MigdDbusManagerService *self, MigdJob *job, GPtrArray *devices,
				  GError **error)
{
	MigdDbusJobEntry *entry = g_new0(MigdDbusJobEntry, 1);

	entry->manager = self;
	entry->path =
	    g_strdup_printf(MIGD_DBUS_JOBS_PATH "/%" G_GUINT64_FORMAT, self->next_job_id++);
	entry->service = migd_dbus_job_service_new(job);
	entry->devices = g_ptr_array_ref(devices);
	if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(entry->service),
					      self->connection, entry->path, error)) {
		migd_dbus_job_entry_free(entry);
		return NULL;
	}
	g_hash_table_insert(self->jobs, entry->path, entry);
	if (migd_job_is_finished(job)) {
		migd_dbus_job_entry_completed_cb(job, migd_job_get_success(job),
						 migd_job_get_message(job), entry);
		return entry->path;
	}
	for (guint i = 0; i < devices->len; i++)
		g_hash_table_insert(self->busy, g_ptr_array_index(devices, i), entry);
	/* after the job service's own handler: Completed is on the bus before devices free up */
	entry->completed_id =
	    g_signal_connect(job, "completed", G_CALLBACK(migd_dbus_job_entry_completed_cb), entry);
	g_info("job %s exported at %s (%s, %u devices)", migd_job_get_id(job), entry->path,
	       migd_job_get_role(job) == MIGD_JOB_ROLE_SOURCE ? "source" : "destination",
	       devices->len);
	return entry->path;
}

gchar *
migd_dbus_manager_service_describe(MigdDbusManagerService *self)
{
	g_autoptr(GString) str = g_string_new(NULL);
	GHashTableIter iter;
	gpointer value;
	guint active = 0;

	g_hash_table_iter_init(&iter, self->jobs);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		MigdDbusJobEntry *entry = value;
		MigdJob *job = migd_dbus_job_service_get_job(entry->service);
		if (migd_job_is_finished(job))
			continue;
		g_string_append_printf(
		    str, "%sjob %s %s %s %.0f%%, %" G_GUINT64_FORMAT " MiB",
		    active++ > 0 ? "; " : "", migd_job_get_id(job),
		    migd_job_get_role(job) == MIGD_JOB_ROLE_SOURCE ? "out" : "in",
		    migd_job_phase_to_string(migd_job_get_phase(job)),
		    migd_job_get_progress(job) * 100.0, migd_job_get_bytes(job) / (1024 * 1024));
	}
	if (active == 0)
		g_string_printf(str, "Idle, %u device(s)%s", self->devices->len,
				self->destination != NULL ? ", listening" : "");
	return g_string_free(g_steal_pointer(&str), FALSE);
}

guint
migd_dbus_manager_service_get_n_active_jobs(MigdDbusManagerService *self)
{
	GHashTableIter iter;
	gpointer value;
	guint n = 0;

	g_return_val_if_fail(MIGD_IS_DBUS_MANAGER_SERVICE(self), 0);

	g_hash_table_iter_init(&iter, self->jobs);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		MigdDbusJobEntry *entry = value;
		if (!migd_job_is_finished(migd_dbus_job_service_get_job(entry->service)))
			n++;
	}
	return n;
}

guint
migd_dbus_manager_service_cancel_all(MigdDbusManagerService *self)
{
	g_autoptr(GList) entries = NULL;
	guint n = 0;

	g_return_val_if_fail(MIGD_IS_DBUS_MANAGER_SERVICE(self), 0);

	/* a copy: a job may complete synchronously while being cancelled */
	entries = g_hash_table_get_values(self->jobs);
	for (GList *l = entries; l != NULL; l = l->next) {
		MigdDbusJobEntry *entry = l->data;
		if (migd_job_cancel(migd_dbus_job_service_get_job(entry->service)))
			n++;
	}
	return n;
}

/* ---- ListDevices ---- */

static GVariant *
migd_dbus_manager_service_device_to_variant(MigdDbusManagerService *self, MigdDevice *device)
{
	g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *flags = migd_mig_flags_to_string(migd_device_get_mig_flags(device));
	gboolean busy = g_hash_table_contains(self->busy, device);
	MigdState state = MIGD_STATE_ERROR;

	if (migd_device_get_state(device, &state, &error_local)) {
		g_variant_dict_insert(&dict, "state", "s", migd_state_to_string(state));
	} else {
		g_variant_dict_insert(&dict, "state", "s", "unknown");
		g_variant_dict_insert(&dict, "error", "s", error_local->message);
	}
	g_variant_dict_insert(&dict, "flags", "s", flags);
	g_variant_dict_insert(&dict, "busy", "b", busy);
	if (self->low_power != NULL)
		g_variant_dict_insert(&dict, "low-power", "b",
				      migd_low_power_is_engaged(self->low_power, device));
	if (self->info_func != NULL)
		self->info_func(device, busy, &dict, self->info_data);
	return g_variant_new("(s@a{sv})", migd_device_get_name(device), g_variant_dict_end(&dict));
}

static gboolean
migd_dbus_manager_service_handle_list_devices(MigdDbusManager *iface,
					      GDBusMethodInvocation *invocation)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(sa{sv})"));

	for (guint i = 0; i < self->devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(self->devices, i);
		g_variant_builder_add_value(
		    &builder, migd_dbus_manager_service_device_to_variant(self, device));
	}
	migd_dbus_manager_complete_list_devices(iface, invocation, g_variant_builder_end(&builder));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- options ---- */

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

/* @source: NULL for Listen, which takes only the TLS options */
static gboolean
migd_dbus_parse_options(GVariant *options, MigdTransportConfig *transport,
			MigdSourceOptions *source, GError **error)
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
		} else if (g_strcmp0(key, "cert") == 0) {
			ok = migd_dbus_option_get_path(key, value, &transport->cert_file, error);
		} else if (g_strcmp0(key, "key") == 0) {
			ok = migd_dbus_option_get_path(key, value, &transport->key_file, error);
		} else if (g_strcmp0(key, "ca") == 0) {
			ok = migd_dbus_option_get_path(key, value, &transport->ca_file, error);
		} else if (source != NULL && g_strcmp0(key, "peer-name") == 0) {
			ok = migd_dbus_option_get_path(key, value, &transport->peer_name, error);
		} else if (source != NULL && g_strcmp0(key, "downtime-ms") == 0) {
			guint ms = 0;
			ok = migd_dbus_option_get_positive(key, value, &ms, error);
			if (ok)
				source->policy.downtime_target_us =
				    (guint64)ms * G_TIME_SPAN_MILLISECOND;
		} else if (source != NULL && g_strcmp0(key, "max-rounds") == 0) {
			ok = migd_dbus_option_get_positive(key, value, &source->policy.max_rounds,
							   error);
		} else if (source != NULL && g_strcmp0(key, "timeout-s") == 0) {
			ok = migd_dbus_option_get_positive(key, value, &source->timeout_s, error);
		} else if (source != NULL && g_strcmp0(key, "iova-ranges") == 0) {
			/* applied per device by the caller, once the devices are known */
			ok = migd_dbus_option_check_type(key, value, G_VARIANT_TYPE("a{sa(tt)}"),
							 error);
		} else if (source != NULL && g_strcmp0(key, "dirty-fallback") == 0) {
			ok = migd_dbus_option_check_type(key, value, G_VARIANT_TYPE_STRING, error);
			if (ok && g_strcmp0(g_variant_get_string(value, NULL), "allow") == 0) {
				source->dirty_fallback = MIGD_DIRTY_FALLBACK_ALLOW;
			} else if (ok &&
				   g_strcmp0(g_variant_get_string(value, NULL), "refuse") == 0) {
				source->dirty_fallback = MIGD_DIRTY_FALLBACK_REFUSE;
			} else if (ok) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "option 'dirty-fallback': expected \"allow\" or "
					    "\"refuse\"");
				ok = FALSE;
			}
		} else {
			/* refused rather than ignored: a misspelt TLS option must not
			 * silently fall back to something weaker */
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "unknown option '%s'", key);
			ok = FALSE;
		}
		if (!ok)
			return FALSE;
	}
	return TRUE;
}

static gboolean
migd_dbus_check_address(const gchar *address, GError **error)
{
	g_autoptr(MigdTransportAddress) parsed = NULL;
	g_autoptr(GError) error_local = NULL;

	parsed = migd_transport_address_parse(address, &error_local);
	if (parsed == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "%s",
			    error_local->message);
		return FALSE;
	}
	return TRUE;
}

static MigdDevice *
migd_dbus_manager_service_find_device(MigdDbusManagerService *self, const gchar *name)
{
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(self->devices, i);
		if (g_strcmp0(migd_device_get_name(device), name) == 0)
			return device;
	}
	return NULL;
}

/* the devices named by the caller (none: all), each once and none busy */
static GPtrArray *
migd_dbus_manager_service_resolve_devices(MigdDbusManagerService *self, const gchar *const *names,
					  GError **error)
{
	g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(g_object_unref);

	if (names == NULL || names[0] == NULL) {
		for (guint i = 0; i < self->devices->len; i++)
			g_ptr_array_add(devices, g_object_ref(g_ptr_array_index(self->devices, i)));
	} else {
		for (guint i = 0; names[i] != NULL; i++) {
			MigdDevice *device = migd_dbus_manager_service_find_device(self, names[i]);
			if (device == NULL) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "unknown device '%s'", names[i]);
				return NULL;
			}
			if (g_ptr_array_find(devices, device, NULL)) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "device '%s' named twice", names[i]);
				return NULL;
			}
			g_ptr_array_add(devices, g_object_ref(device));
		}
	}
	if (devices->len == 0) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "this daemon has no devices");
		return NULL;
	}
	for (guint i = 0; i < devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(devices, i);
		if (g_hash_table_contains(self->busy, device)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
				    "device '%s' is busy in another job",
				    migd_device_get_name(device));
			return NULL;
		}
	}
	return g_steal_pointer(&devices);
}

/* a(tt) -> the device's IOVA ranges; every range non-empty and not wrapping */
static gboolean
migd_dbus_set_iova_ranges(MigdDevice *device, GVariant *value, GError **error)
{
	g_autoptr(GArray) ranges = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	GVariantIter iter;
	guint64 iova, length;

	if (!g_variant_is_of_type(value, G_VARIANT_TYPE("a(tt)"))) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "option 'iova-ranges' of %s: expected type a(tt), got %s",
			    migd_device_get_name(device), g_variant_get_type_string(value));
		return FALSE;
	}
	g_variant_iter_init(&iter, value);
	while (g_variant_iter_next(&iter, "(tt)", &iova, &length)) {
		MigdIovaRange r = {.iova = iova, .length = length};
		if (length == 0 || iova > G_MAXUINT64 - length) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "option 'iova-ranges' of %s: range 0x%" G_GINT64_MODIFIER
				    "x+0x%" G_GINT64_MODIFIER "x is empty or wraps",
				    migd_device_get_name(device), iova, length);
			return FALSE;
		}
		g_array_append_val(ranges, r);
	}
	migd_device_set_iova_ranges(device, (const MigdIovaRange *)ranges->data, ranges->len);
	return TRUE;
}

/* Migrate's "iova-ranges": only for devices of this job, all checked before any is set */
static gboolean
migd_dbus_manager_service_apply_ranges(MigdDbusManagerService *self, GPtrArray *devices,
				       GVariant *options, GError **error)
{
	g_autoptr(GVariant) map = g_variant_lookup_value(options, "iova-ranges", NULL);
	GVariantIter iter;
	const gchar *name;
	GVariant *ranges_tmp;

	if (map == NULL)
		return TRUE;
	g_variant_iter_init(&iter, map);
	while (g_variant_iter_next(&iter, "{&s@a(tt)}", &name, &ranges_tmp)) {
		g_autoptr(GVariant) ranges = ranges_tmp;
		MigdDevice *device = migd_dbus_manager_service_find_device(self, name);
		if (device == NULL || !g_ptr_array_find(devices, device, NULL)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "option 'iova-ranges' names '%s', which is not migrated by "
				    "this job",
				    name);
			return FALSE;
		}
	}
	g_variant_iter_init(&iter, map);
	while (g_variant_iter_next(&iter, "{&s@a(tt)}", &name, &ranges_tmp)) {
		g_autoptr(GVariant) ranges = ranges_tmp;
		if (!migd_dbus_set_iova_ranges(migd_dbus_manager_service_find_device(self, name),
					       ranges, error))
			return FALSE;
	}
	return TRUE;
}

/* ---- Migrate ---- */

gchar *
migd_dbus_manager_service_migrate(MigdDbusManagerService *self, const gchar *const *device_names,
				  const gchar *address, GVariant *options, const gchar *requester,
				  GError **error)
{
	g_autoptr(MigdTransportConfig) transport = g_new0(MigdTransportConfig, 1);
	g_autoptr(GPtrArray) devices = NULL;
	g_autoptr(MigdJob) job = NULL;
	MigdSourceOptions source_options;
	const gchar *path;

	migd_source_options_init(&source_options);
	source_options.journal = self->journal;
	if (!migd_dbus_check_address(address, error) ||
	    !migd_dbus_parse_options(options, transport, &source_options, error))
		return NULL;
	devices = migd_dbus_manager_service_resolve_devices(self, device_names, error);
	if (devices == NULL ||
	    !migd_dbus_manager_service_apply_ranges(self, devices, options, error) ||
	    !migd_dbus_manager_service_wake_devices(self, devices, error))
		return NULL;
	job = migd_source_start(devices, address, transport, &source_options, error);
	if (job == NULL)
		return NULL;
	path = migd_dbus_manager_service_add_job(self, job, devices, error);
	if (path == NULL) {
		/* the engine already started: do not leave it running unobserved */
		migd_job_cancel(job);
		return NULL;
	}
	g_message("migrating %u device(s) to %s for %s: %s", devices->len, address, requester,
		  path);
	return g_strdup(path);
}

gboolean
migd_dbus_manager_service_cancel_job(MigdDbusManagerService *self, const gchar *path)
{
	MigdDbusJobEntry *entry = g_hash_table_lookup(self->jobs, path);
	if (entry == NULL)
		return FALSE;
	return migd_job_cancel(migd_dbus_job_service_get_job(entry->service));
}

static gboolean
migd_dbus_manager_service_handle_migrate(MigdDbusManager *iface, GDBusMethodInvocation *invocation,
					 const gchar *address, const gchar *const *device_names,
					 GVariant *options)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = migd_dbus_manager_service_migrate(
	    self, device_names, address, options, g_dbus_method_invocation_get_sender(invocation),
	    &error);

	if (path == NULL) {
		migd_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	migd_dbus_manager_complete_migrate(iface, invocation, path);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- Listen ---- */

static void
migd_dbus_manager_service_job_started_cb(MigdDestination *destination, MigdJob *job,
					 gpointer user_data)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(user_data);
	g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(GError) error_local = NULL;

	/* an incoming job may write into any local device: all out of low power first */
	for (guint i = 0; i < self->devices->len; i++)
		g_ptr_array_add(devices, g_object_ref(g_ptr_array_index(self->devices, i)));
	if (!migd_dbus_manager_service_wake_devices(self, devices, &error_local)) {
		/* the engine's own device checks will fail and abort the job with a reason */
		g_warning("incoming job %s: %s", migd_job_get_id(job), error_local->message);
		g_clear_error(&error_local);
	}
	if (migd_dbus_manager_service_add_job(self, job, devices, &error_local) == NULL) {
		g_warning("cannot export incoming job %s: %s", migd_job_get_id(job),
			  error_local->message);
		return;
	}
	g_message("incoming migration: job %s", migd_job_get_id(job));
}

/* Listen, or the socket systemd handed over (@address NULL, @fd) */
static gboolean
migd_dbus_manager_service_start_listening(MigdDbusManagerService *self, const gchar *address,
					  gint fd, const MigdTransportConfig *transport,
					  GError **error)
{
	g_autoptr(MigdDestination) destination = NULL;

	if (self->destination != NULL) {
		g_autofree gchar *current = migd_destination_get_address(self->destination);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY, "already listening on %s", current);
		return FALSE;
	}
	if (self->devices->len == 0) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "this daemon has no devices to receive into");
		return FALSE;
	}
	destination = migd_destination_new(self->devices);
	migd_destination_set_journal(destination, self->journal);
	g_signal_connect_object(destination, "job-started",
				G_CALLBACK(migd_dbus_manager_service_job_started_cb), self, 0);
	if (address != NULL ? !migd_destination_listen(destination, address, transport, error)
			    : !migd_destination_listen_fd(destination, fd, transport, error))
		return FALSE;
	self->destination = g_steal_pointer(&destination);
	return TRUE;
}

gboolean
migd_dbus_manager_service_listen_fd(MigdDbusManagerService *self, gint fd,
				    const MigdTransportConfig *transport, GError **error)
{
	g_autofree gchar *bound = NULL;

	if (!migd_dbus_manager_service_start_listening(self, NULL, fd, transport, error))
		return FALSE;
	bound = migd_destination_get_address(self->destination);
	g_message("listening on %s (socket activation)", bound);
	return TRUE;
}

static gboolean
migd_dbus_manager_service_handle_listen(MigdDbusManager *iface, GDBusMethodInvocation *invocation,
					const gchar *address, GVariant *options)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_autoptr(MigdTransportConfig) transport = g_new0(MigdTransportConfig, 1);
	g_autoptr(MigdDestination) destination = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *bound = NULL;

	if (!migd_dbus_check_address(address, &error) ||
	    !migd_dbus_parse_options(options, transport, NULL, &error)) {
		migd_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	if (!migd_dbus_manager_service_start_listening(self, address, -1, transport, &error)) {
		migd_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	destination = g_object_ref(self->destination);
	bound = migd_destination_get_address(destination);
	g_message("listening on %s for %s", bound, g_dbus_method_invocation_get_sender(invocation));
	migd_dbus_manager_complete_listen(iface, invocation, bound);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- ListJobs ---- */

static gint
migd_dbus_job_path_cmp(gconstpointer a, gconstpointer b)
{
	const gchar *pa = *(const gchar *const *)a;
	const gchar *pb = *(const gchar *const *)b;
	/* ".../jobs/N": by N, so job 10 comes after job 9 */
	guint64 na = g_ascii_strtoull(strrchr(pa, '/') + 1, NULL, 10);
	guint64 nb = g_ascii_strtoull(strrchr(pb, '/') + 1, NULL, 10);
	return na < nb ? -1 : na > nb;
}

static gboolean
migd_dbus_manager_service_handle_list_jobs(MigdDbusManager *iface,
					   GDBusMethodInvocation *invocation)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_autoptr(GPtrArray) paths = g_ptr_array_new();
	GHashTableIter iter;
	gpointer key;

	g_hash_table_iter_init(&iter, self->jobs);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		g_ptr_array_add(paths, key);
	g_ptr_array_sort(paths, migd_dbus_job_path_cmp);
	g_ptr_array_add(paths, NULL);
	migd_dbus_manager_complete_list_jobs(iface, invocation, (const gchar *const *)paths->pdata);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- AddDevice, AttachDevice, DetachDevice ---- */

/* the devices changed: an idle listener receives into the new set */
static gboolean
migd_dbus_manager_service_devices_changed(MigdDbusManagerService *self, GError **error)
{
	if (self->destination != NULL &&
	    !migd_destination_set_devices(self->destination, self->devices, error))
		return FALSE;
	return TRUE;
}

static gboolean
migd_dbus_manager_service_add(MigdDbusManagerService *self, GDBusMethodInvocation *invocation,
			      const gchar *name, GVariant *options, gint fd)
{
	g_autoptr(MigdDevice) device = NULL;
	g_autoptr(GVariant) ranges = NULL;
	g_autoptr(GError) error = NULL;
	GVariantIter iter;
	const gchar *key;
	GVariant *value_tmp;

	/* option names first: a typo must not pass unnoticed */
	g_variant_iter_init(&iter, options);
	while (g_variant_iter_next(&iter, "{&sv}", &key, &value_tmp)) {
		g_autoptr(GVariant) value = value_tmp;
		if (g_strcmp0(key, "iova-ranges") != 0 && g_strcmp0(key, "sim-spec") != 0) {
			g_set_error(&error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "unknown option '%s'", key);
			migd_dbus_return_error(invocation, g_steal_pointer(&error));
			return G_DBUS_METHOD_INVOCATION_HANDLED;
		}
	}
	if (name[0] == '\0' || !g_utf8_validate(name, -1, NULL) || strlen(name) > 255) {
		g_set_error_literal(&error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "a device name must be 1 to 255 bytes of UTF-8");
	} else if (self->open_func == NULL) {
		g_set_error_literal(&error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "this daemon cannot open devices");
	} else if (self->destination != NULL && migd_destination_is_busy(self->destination)) {
		g_set_error_literal(&error, MIGD_ERROR, MIGD_ERROR_BUSY,
				    "an incoming migration is running");
	}
	if (error == NULL)
		device = self->open_func(name, options, fd, self->open_data, &error);
	if (device != NULL &&
	    migd_dbus_manager_service_find_device(self, migd_device_get_name(device)) != NULL)
		g_set_error(&error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "a device named '%s' already exists", migd_device_get_name(device));
	ranges = g_variant_lookup_value(options, "iova-ranges", NULL);
	if (error == NULL && ranges != NULL)
		migd_dbus_set_iova_ranges(device, ranges, &error);
	if (error == NULL) {
		g_ptr_array_add(self->devices, g_object_ref(device));
		if (!migd_dbus_manager_service_devices_changed(self, &error))
			g_ptr_array_remove(self->devices, device);
	}
	if (error == NULL) {
		g_autoptr(GPtrArray) one = g_ptr_array_new();
		g_ptr_array_add(one, device);
		migd_dbus_manager_service_idle_devices(self, one);
	}
	if (error != NULL) {
		migd_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	g_message("%s device %s for %s", fd >= 0 ? "attached" : "added",
		  migd_device_get_name(device), g_dbus_method_invocation_get_sender(invocation));
	g_dbus_method_invocation_return_value(invocation, NULL);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
migd_dbus_manager_service_handle_add_device(MigdDbusManager *iface,
					    GDBusMethodInvocation *invocation, const gchar *name,
					    GVariant *options)
{
	return migd_dbus_manager_service_add(MIGD_DBUS_MANAGER_SERVICE(iface), invocation, name,
					     options, -1);
}

static gboolean
migd_dbus_manager_service_handle_attach_device(MigdDbusManager *iface,
					       GDBusMethodInvocation *invocation,
					       GUnixFDList *fd_list, GVariant *handle,
					       const gchar *name, GVariant *options)
{
	g_autoptr(GError) error = NULL;
	gint index = g_variant_get_handle(handle);
	gint fd;
	gboolean ret;

	if (fd_list == NULL || index < 0 || index >= g_unix_fd_list_get_length(fd_list)) {
		g_set_error_literal(&error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "no file descriptor passed");
		migd_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	/* our own duplicate: the owner keeps its fd */
	fd = g_unix_fd_list_get(fd_list, index, &error);
	if (fd < 0) {
		migd_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	ret = migd_dbus_manager_service_add(MIGD_DBUS_MANAGER_SERVICE(iface), invocation, name,
					    options, fd);
	close(fd);
	return ret;
}

static gboolean
migd_dbus_manager_service_handle_detach_device(MigdDbusManager *iface,
					       GDBusMethodInvocation *invocation, const gchar *name)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	MigdDevice *device = migd_dbus_manager_service_find_device(self, name);
	g_autoptr(MigdDevice) keep = NULL;
	g_autoptr(GError) error = NULL;

	if (device == NULL) {
		g_set_error(&error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "unknown device '%s'",
			    name);
	} else if (g_hash_table_contains(self->busy, device) ||
		   (self->destination != NULL && migd_destination_is_busy(self->destination))) {
		g_set_error(&error, MIGD_ERROR, MIGD_ERROR_BUSY, "device '%s' is in a job", name);
	} else {
		keep = g_object_ref(device);
		if (self->low_power != NULL)
			migd_low_power_remove(self->low_power, device);
		g_ptr_array_remove(self->devices, device);
		if (!migd_dbus_manager_service_devices_changed(self, &error))
			g_ptr_array_add(self->devices, g_object_ref(keep));
	}
	if (error != NULL) {
		migd_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	g_message("detached device %s for %s", name,
		  g_dbus_method_invocation_get_sender(invocation));
	migd_dbus_manager_complete_detach_device(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- GetDirtyBitmap ---- */

static gboolean
migd_dbus_manager_service_handle_get_dirty_bitmap(MigdDbusManager *iface,
						  GDBusMethodInvocation *invocation,
						  GUnixFDList *fd_list, const gchar *device)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_autoptr(GUnixFDList) out = NULL;
	g_autoptr(GError) error = NULL;
	gint fd = -1;
	gint handle;
	guint index = G_MAXUINT;

	for (guint i = 0; i < self->devices->len; i++) {
		if (g_strcmp0(migd_device_get_name(g_ptr_array_index(self->devices, i)), device) ==
		    0)
			index = i;
	}
	if (index == G_MAXUINT) {
		g_set_error(&error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "unknown device '%s'",
			    device);
	} else if (self->destination == NULL) {
		g_set_error(&error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "no dirty bitmap for %s: this daemon has received no migration",
			    device);
	} else {
		fd = migd_destination_dup_dirty_bitmap_fd(self->destination, index, &error);
	}
	if (fd < 0) {
		migd_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	out = g_unix_fd_list_new();
	handle = g_unix_fd_list_append(out, fd, &error);
	close(fd);
	if (handle < 0) {
		migd_dbus_return_error(invocation, g_steal_pointer(&error));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	migd_dbus_manager_complete_get_dirty_bitmap(iface, invocation, out,
						    g_variant_new_handle(handle));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- object ---- */

static void
migd_dbus_manager_service_iface_init(MigdDbusManagerIface *iface)
{
	iface->handle_list_devices = migd_dbus_manager_service_handle_list_devices;
	iface->handle_migrate = migd_dbus_manager_service_handle_migrate;
	iface->handle_listen = migd_dbus_manager_service_handle_listen;
	iface->handle_get_dirty_bitmap = migd_dbus_manager_service_handle_get_dirty_bitmap;
	iface->handle_add_device = migd_dbus_manager_service_handle_add_device;
	iface->handle_list_jobs = migd_dbus_manager_service_handle_list_jobs;
	iface->handle_attach_device = migd_dbus_manager_service_handle_attach_device;
	iface->handle_detach_device = migd_dbus_manager_service_handle_detach_device;
}

void
migd_dbus_manager_service_set_device_open_func(MigdDbusManagerService *self,
					       MigdDbusDeviceOpenFunc func, gpointer user_data)
{
	self->open_func = func;
	self->open_data = user_data;
}

void
migd_dbus_manager_service_set_low_power(MigdDbusManagerService *self, MigdLowPower *low_power)
{
	self->low_power = low_power;
	migd_dbus_manager_service_idle_devices(self, self->devices);
}

void
migd_dbus_manager_service_set_journal(MigdDbusManagerService *self, MigdJournal *journal)
{
	self->journal = journal;
}

void
migd_dbus_manager_service_set_device_info_func(MigdDbusManagerService *self,
					       MigdDbusDeviceInfoFunc func, gpointer user_data)
{
	g_return_if_fail(MIGD_IS_DBUS_MANAGER_SERVICE(self));
	self->info_func = func;
	self->info_data = user_data;
}

void
migd_dbus_manager_service_add_capability(MigdDbusManagerService *self, const gchar *capability)
{
	g_return_if_fail(MIGD_IS_DBUS_MANAGER_SERVICE(self));
	g_return_if_fail(capability != NULL);

	if (g_strv_contains((const gchar *const *)self->capabilities->pdata, capability))
		return;
	/* keep the array NULL-terminated for the property */
	g_ptr_array_insert(self->capabilities, (gint)self->capabilities->len - 1,
			   g_strdup(capability));
	migd_dbus_manager_set_capabilities(MIGD_DBUS_MANAGER(self),
					   (const gchar *const *)self->capabilities->pdata);
}

gboolean
migd_dbus_manager_service_export(MigdDbusManagerService *self, GDBusConnection *connection,
				 GError **error)
{
	g_return_val_if_fail(MIGD_IS_DBUS_MANAGER_SERVICE(self), FALSE);
	g_return_val_if_fail(G_IS_DBUS_CONNECTION(connection), FALSE);

	if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(self), connection,
					      MIGD_DBUS_OBJECT_PATH, error))
		return FALSE;
	g_set_object(&self->connection, connection);
	return TRUE;
}

void
migd_dbus_manager_service_unexport(MigdDbusManagerService *self)
{
	g_return_if_fail(MIGD_IS_DBUS_MANAGER_SERVICE(self));

	if (self->destination != NULL) {
		migd_destination_close(self->destination);
		g_clear_object(&self->destination);
	}
	g_queue_clear(&self->finished);
	g_hash_table_remove_all(self->busy);
	g_hash_table_remove_all(self->jobs);
	if (self->connection != NULL) {
		g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(self));
		g_clear_object(&self->connection);
	}
}

static void
migd_dbus_manager_service_init(MigdDbusManagerService *self)
{
	self->devices = g_ptr_array_new_with_free_func(g_object_unref);
	self->busy = g_hash_table_new(g_direct_hash, g_direct_equal);
	self->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					   (GDestroyNotify)migd_dbus_job_entry_free);
	g_queue_init(&self->finished);
	self->capabilities = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(self->capabilities, NULL);
	self->next_job_id = 1;
}

static void
migd_dbus_manager_service_dispose(GObject *object)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(object);

	migd_dbus_manager_service_unexport(self);
	G_OBJECT_CLASS(migd_dbus_manager_service_parent_class)->dispose(object);
}

static void
migd_dbus_manager_service_finalize(GObject *object)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(object);

	g_hash_table_unref(self->jobs);
	g_hash_table_unref(self->busy);
	g_ptr_array_unref(self->devices);
	g_ptr_array_unref(self->capabilities);
	G_OBJECT_CLASS(migd_dbus_manager_service_parent_class)->finalize(object);
}

static void
migd_dbus_manager_service_class_init(MigdDbusManagerServiceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = migd_dbus_manager_service_dispose;
	object_class->finalize = migd_dbus_manager_service_finalize;
	migd_dbus_error_register();
}

MigdDbusManagerService *
migd_dbus_manager_service_new(GPtrArray *devices)
{
	MigdDbusManagerService *self;
	const gchar *const capabilities[] = {"migrate", "listen", "tls", "plain-transport"};

	g_return_val_if_fail(devices != NULL, NULL);

	self = g_object_new(MIGD_TYPE_DBUS_MANAGER_SERVICE, NULL);
	for (guint i = 0; i < devices->len; i++)
		g_ptr_array_add(self->devices, g_object_ref(g_ptr_array_index(devices, i)));
	migd_dbus_manager_set_version(MIGD_DBUS_MANAGER(self), PACKAGE_VERSION);
	for (guint i = 0; i < G_N_ELEMENTS(capabilities); i++)
		migd_dbus_manager_service_add_capability(self, capabilities[i]);
	return self;
}
