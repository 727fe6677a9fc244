/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdManager: the device and job registries, the listener and the operations
 * every front door of the service calls.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "migd-destination.h"
#include "migd-dirty-ranges.h"
#include "migd-error.h"
#include "migd-host-devices.h"
#include "migd-manager.h"
#include "migd-source.h"
#include "migd-wire-frame.h"

/* one registered job and what it holds */
typedef struct {
	MigdManager *manager; /* not a reference: the manager owns the entry */
	guint64 id;
	MigdJob *job;
	/*
	 * MigdDevice the job uses: a source job keeps them busy until it finishes;
	 * a destination job's busy-ness is the destination's (its expectation's
	 * or session's devices), these only wake up and go idle with the job
	 */
	GPtrArray *devices;
	gulong completed_id;
	guint retain_id;
} MigdManagerJob;

struct _MigdManager {
	GObject parent_instance;
	GPtrArray *devices; /* MigdDevice */
	GHashTable *busy;   /* MigdDevice -> MigdManagerJob (borrowed) */
	GHashTable *jobs;   /* &id -> MigdManagerJob (owned) */
	GQueue finished;    /* MigdManagerJob (borrowed), oldest first */
	MigdDestination *destination;
	MigdStartMode start_mode; /* of untagged incoming migrations (Listen's "start") */
	guint64 next_job_id;
	guint retain_s;
	guint retain_count;
	MigdManagerDeviceInfoFunc info_func;
	gpointer info_data;
	MigdManagerDeviceOpenFunc open_func;
	gpointer open_data;
	MigdJournal *journal;	  /* borrowed */
	MigdLowPower *low_power;  /* borrowed; NULL: idle devices stay powered */
	MigdStreamBudget *budget; /* state in flight, over every stream of every job */
	/* NULL: host devices name no plugin */
	MigdPluginManager *plugins;
	gchar *config_dir; /* NULL: AddDevice's "persist" is refused */
};

enum {
	SIGNAL_JOB_ADDED,
	SIGNAL_JOB_FINISHED,
	SIGNAL_JOB_REMOVED,
	SIGNAL_DEVICES_CHANGED,
	SIGNAL_LAST
};
static guint signals[SIGNAL_LAST] = {0};

G_DEFINE_TYPE(MigdManager, migd_manager, G_TYPE_OBJECT)

/* ---- options ---- */

static void
migd_manager_iova_ranges_free(MigdManagerIovaRanges *entry)
{
	g_free(entry->name);
	g_array_unref(entry->ranges);
	g_free(entry);
}

MigdMigrateOptions *
migd_migrate_options_new(void)
{
	MigdMigrateOptions *options = g_new0(MigdMigrateOptions, 1);
	MigdSourceOptions defaults;

	migd_source_options_init(&defaults);
	options->dirty_fallback = defaults.dirty_fallback;
	return options;
}

void
migd_migrate_options_free(MigdMigrateOptions *options)
{
	if (options == NULL)
		return;
	g_free(options->transport.cert_file);
	g_free(options->transport.key_file);
	g_free(options->transport.ca_file);
	g_free(options->transport.peer_name);
	g_clear_pointer(&options->iova_ranges, g_ptr_array_unref);
	g_free(options->requester);
	g_free(options->migration_id);
	g_free(options);
}

void
migd_migrate_options_add_iova_ranges(MigdMigrateOptions *options, const gchar *name, GArray *ranges)
{
	MigdManagerIovaRanges *entry = g_new0(MigdManagerIovaRanges, 1);

	g_return_if_fail(options != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(ranges != NULL);

	if (options->iova_ranges == NULL)
		options->iova_ranges =
		    g_ptr_array_new_with_free_func((GDestroyNotify)migd_manager_iova_ranges_free);
	entry->name = g_strdup(name);
	entry->ranges = g_array_sized_new(FALSE, FALSE, sizeof(MigdIovaRange), ranges->len);
	g_array_append_vals(entry->ranges, ranges->data, ranges->len);
	g_ptr_array_add(options->iova_ranges, entry);
}

/* the operator's ranges as the config's (migd_dirty_ranges_check), then set on @device */
static gboolean
migd_manager_set_iova_ranges(MigdDevice *device, GArray *ranges, GError **error)
{
	if (!migd_dirty_ranges_check((const MigdIovaRange *)ranges->data, ranges->len, error)) {
		g_prefix_error(error, "option 'iova-ranges' of %s: ", migd_device_get_name(device));
		return FALSE;
	}
	migd_device_set_iova_ranges(device, (const MigdIovaRange *)ranges->data, ranges->len);
	return TRUE;
}

/* ---- low power ---- */

/* idle devices go to low power when that is enabled; a driver without it is told once */
static void
migd_manager_idle_devices(MigdManager *self, GPtrArray *devices)
{
	for (guint i = 0; self->low_power != NULL && i < devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(devices, i);
		g_autoptr(GError) error = NULL;
		if (migd_manager_device_is_busy(self, device))
			continue;
		if (!migd_low_power_enter(self->low_power, device, &error) &&
		    !g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED))
			g_message("%s: stays powered: %s", migd_device_get_name(device),
				  error->message);
	}
}

/* a job is about to use @devices: out of low power, or the job cannot start */
static gboolean
migd_manager_wake_devices(MigdManager *self, GPtrArray *devices, GError **error)
{
	for (guint i = 0; self->low_power != NULL && i < devices->len; i++) {
		if (!migd_low_power_exit(self->low_power, g_ptr_array_index(devices, i), error))
			return FALSE;
	}
	return TRUE;
}

/* ---- jobs ---- */

static void
migd_manager_job_free(MigdManagerJob *entry)
{
	g_clear_signal_handler(&entry->completed_id, entry->job);
	g_clear_handle_id(&entry->retain_id, g_source_remove);
	g_object_unref(entry->job);
	g_ptr_array_unref(entry->devices);
	g_free(entry);
}

/* drops a finished job and tells the front doors */
static void
migd_manager_remove_job(MigdManager *self, MigdManagerJob *entry)
{
	guint64 id = entry->id;

	g_queue_remove(&self->finished, entry);
	g_hash_table_remove(self->jobs, &entry->id);
	g_signal_emit(self, signals[SIGNAL_JOB_REMOVED], 0, id);
}

static gboolean
migd_manager_job_retain_cb(gpointer user_data)
{
	MigdManagerJob *entry = user_data;

	entry->retain_id = 0;
	migd_manager_remove_job(entry->manager, entry);
	return G_SOURCE_REMOVE;
}

/*
 * An incoming job's devices: its expectation's when the engine named them;
 * otherwise (untagged, or not named yet) it may write into any local device.
 */
static GPtrArray *
migd_manager_incoming_devices(MigdManager *self, MigdJob *job)
{
	GPtrArray *devices = g_ptr_array_new_with_free_func(g_object_unref);
	const gchar *const *names = migd_job_get_device_names(job);

	for (guint i = 0; names != NULL && names[i] != NULL; i++) {
		MigdDevice *device = migd_manager_find_device(self, names[i]);
		if (device != NULL)
			g_ptr_array_add(devices, g_object_ref(device));
	}
	if (devices->len == 0) {
		for (guint i = 0; i < self->devices->len; i++)
			g_ptr_array_add(devices, g_object_ref(g_ptr_array_index(self->devices, i)));
	}
	return devices;
}

static void
migd_manager_job_completed_cb(MigdJob *job, gboolean success, const gchar *message,
			      gpointer user_data)
{
	MigdManagerJob *entry = user_data;
	MigdManager *self = entry->manager;

	for (guint i = 0; i < entry->devices->len; i++) {
		gpointer device = g_ptr_array_index(entry->devices, i);
		if (g_hash_table_lookup(self->busy, device) == entry)
			g_hash_table_remove(self->busy, device);
	}
	g_clear_signal_handler(&entry->completed_id, job);
	/* the engine may have named an incoming job's devices after it started */
	if (migd_job_get_role(job) == MIGD_JOB_ROLE_DESTINATION) {
		g_ptr_array_unref(entry->devices);
		entry->devices = migd_manager_incoming_devices(self, job);
	}
	/*
	 * idle again, except a destination's devices after success: a guest runs
	 * on them; devices of other incoming sessions or expectations stay as
	 * they are (idle_devices skips busy ones)
	 */
	if (!(success && migd_job_get_role(job) == MIGD_JOB_ROLE_DESTINATION))
		migd_manager_idle_devices(self, entry->devices);

	/* finished jobs stay readable for a while, but never pile up without bound */
	entry->retain_id = g_timeout_add_seconds(self->retain_s, migd_manager_job_retain_cb, entry);
	g_queue_push_tail(&self->finished, entry);
	g_signal_emit(self, signals[SIGNAL_JOB_FINISHED], 0, entry->id, job);
	while (g_queue_get_length(&self->finished) > self->retain_count)
		migd_manager_remove_job(self, g_queue_peek_head(&self->finished));
}

/* registers @job and keeps @devices busy until it finishes; returns its id */
static guint64
migd_manager_add_job(MigdManager *self, MigdJob *job, GPtrArray *devices)
{
	MigdManagerJob *entry = g_new0(MigdManagerJob, 1);

	entry->manager = self;
	entry->id = self->next_job_id++;
	entry->job = g_object_ref(job);
	entry->devices = g_ptr_array_ref(devices);
	g_hash_table_insert(self->jobs, &entry->id, entry);
	{
		/* from now on the engine's log lines name the job by its D-Bus number too */
		g_autofree gchar *number = g_strdup_printf("%" G_GUINT64_FORMAT, entry->id);
		g_info("job %s registered as %s (%s, %u device%s)", migd_job_get_id(job), number,
		       migd_job_get_role(job) == MIGD_JOB_ROLE_SOURCE ? "source" : "destination",
		       devices->len, devices->len == 1 ? "" : "s");
		migd_job_set_id(job, number);
	}
	/* front doors first: a job object sees "completed" before the devices free up */
	g_signal_emit(self, signals[SIGNAL_JOB_ADDED], 0, entry->id, job);
	if (migd_job_is_finished(job)) {
		guint64 id = entry->id;
		migd_manager_job_completed_cb(job, migd_job_get_success(job),
					      migd_job_get_message(job), entry);
		return id;
	}
	/* several incoming sessions run at once: the destination knows which devices each holds */
	for (guint i = 0; migd_job_get_role(job) == MIGD_JOB_ROLE_SOURCE && i < devices->len; i++)
		g_hash_table_insert(self->busy, g_ptr_array_index(devices, i), entry);
	entry->completed_id =
	    g_signal_connect(job, "completed", G_CALLBACK(migd_manager_job_completed_cb), entry);
	return entry->id;
}

MigdJob *
migd_manager_get_job(MigdManager *self, guint64 id)
{
	MigdManagerJob *entry;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);

	entry = g_hash_table_lookup(self->jobs, &id);
	return entry != NULL ? entry->job : NULL;
}

static gint
migd_manager_id_cmp(gconstpointer a, gconstpointer b)
{
	guint64 na = *(const guint64 *)a;
	guint64 nb = *(const guint64 *)b;
	return na < nb ? -1 : na > nb;
}

GArray *
migd_manager_get_job_ids(MigdManager *self)
{
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(guint64));
	GHashTableIter iter;
	gpointer key;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), ids);

	g_hash_table_iter_init(&iter, self->jobs);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		g_array_append_val(ids, *(guint64 *)key);
	g_array_sort(ids, migd_manager_id_cmp);
	return ids;
}

gchar *
migd_manager_describe(MigdManager *self)
{
	g_autoptr(GString) str = g_string_new(NULL);
	GHashTableIter iter;
	gpointer value;
	guint active = 0;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);

	g_hash_table_iter_init(&iter, self->jobs);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		MigdJob *job = ((MigdManagerJob *)value)->job;
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
migd_manager_get_n_active_jobs(MigdManager *self)
{
	GHashTableIter iter;
	gpointer value;
	guint n = 0;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), 0);

	g_hash_table_iter_init(&iter, self->jobs);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		if (!migd_job_is_finished(((MigdManagerJob *)value)->job))
			n++;
	}
	return n;
}

gboolean
migd_manager_cancel_job(MigdManager *self, guint64 id)
{
	MigdJob *job;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), FALSE);

	job = migd_manager_get_job(self, id);
	return job != NULL && migd_job_cancel(job);
}

guint
migd_manager_cancel_all(MigdManager *self)
{
	g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func(g_object_unref);
	GHashTableIter iter;
	gpointer value;
	guint n = 0;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), 0);

	/* a copy: a job may complete synchronously while being cancelled */
	g_hash_table_iter_init(&iter, self->jobs);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_ptr_array_add(jobs, g_object_ref(((MigdManagerJob *)value)->job));
	for (guint i = 0; i < jobs->len; i++) {
		if (migd_job_cancel(g_ptr_array_index(jobs, i)))
			n++;
	}
	return n;
}

/* ---- devices ---- */

GPtrArray *
migd_manager_get_devices(MigdManager *self)
{
	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);
	return self->devices;
}

MigdDevice *
migd_manager_find_device(MigdManager *self, const gchar *name)
{
	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);

	for (guint i = 0; i < self->devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(self->devices, i);
		if (g_strcmp0(migd_device_get_name(device), name) == 0)
			return device;
	}
	return NULL;
}

gboolean
migd_manager_device_is_busy(MigdManager *self, MigdDevice *device)
{
	g_return_val_if_fail(MIGD_IS_MANAGER(self), FALSE);
	/* in an outgoing job, reserved by an expectation, or in an incoming session */
	return g_hash_table_contains(self->busy, device) ||
	       (self->destination != NULL &&
		migd_destination_device_is_busy(self->destination, device));
}

const gchar *
migd_manager_device_get_reservation(MigdManager *self, MigdDevice *device)
{
	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);
	if (self->destination == NULL)
		return NULL;
	return migd_destination_get_reservation(self->destination, device);
}

void
migd_manager_device_info(MigdManager *self, MigdDevice *device, GVariantDict *dict)
{
	/* a device only reserved for an incoming migration still holds a state of its own */
	gboolean in_job = g_hash_table_contains(self->busy, device) ||
			  (self->destination != NULL &&
			   migd_destination_device_in_session(self->destination, device));

	if (self->info_func != NULL)
		self->info_func(device, in_job, dict, self->info_data);
}

/* the devices changed: an idle listener receives into the new set */
static gboolean
migd_manager_devices_changed(MigdManager *self, GError **error)
{
	if (self->destination != NULL &&
	    !migd_destination_set_devices(self->destination, self->devices, error))
		return FALSE;
	return TRUE;
}

static gboolean
migd_manager_check_unique(MigdManager *self, MigdDevice *device, GError **error)
{
	if (migd_manager_find_device(self, migd_device_get_name(device)) != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "a device named '%s' already exists", migd_device_get_name(device));
		return FALSE;
	}
	return TRUE;
}

MigdDevice *
migd_manager_open_device(MigdManager *self, const gchar *name, const gchar *sim_spec, gint fd,
			 const gchar *address, GError **error)
{
	g_autoptr(MigdDevice) device = NULL;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);
	g_return_val_if_fail(name != NULL, NULL);

	if (name[0] == '\0' || !g_utf8_validate(name, -1, NULL) || strlen(name) > 255) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "a device name must be 1 to 255 bytes of UTF-8");
		return NULL;
	}
	if (self->open_func == NULL) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "this daemon cannot open devices");
		return NULL;
	}
	if (address != NULL && fd < 0) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "an address only goes with a device fd (AttachDevice)");
		return NULL;
	}
	device = self->open_func(name, sim_spec, fd, address, self->open_data, error);
	if (device == NULL)
		return NULL;
	/* the open func may name it differently (a sysfs path by its last element) */
	if (!migd_manager_check_unique(self, device, error))
		return NULL;
	return g_steal_pointer(&device);
}

gboolean
migd_manager_add_device(MigdManager *self, MigdDevice *device, GArray *ranges, GError **error)
{
	g_autoptr(GPtrArray) one = g_ptr_array_new();

	g_return_val_if_fail(MIGD_IS_MANAGER(self), FALSE);
	g_return_val_if_fail(MIGD_IS_DEVICE(device), FALSE);

	/* running incoming sessions keep the devices they began with: a new one changes none */
	if (!migd_manager_check_unique(self, device, error))
		return FALSE;
	if (ranges != NULL && !migd_manager_set_iova_ranges(device, ranges, error))
		return FALSE;
	g_ptr_array_add(self->devices, g_object_ref(device));
	if (!migd_manager_devices_changed(self, error)) {
		g_ptr_array_remove(self->devices, device);
		return FALSE;
	}
	g_ptr_array_add(one, device);
	migd_manager_idle_devices(self, one);
	g_signal_emit(self, signals[SIGNAL_DEVICES_CHANGED], 0);
	return TRUE;
}

void
migd_manager_set_config_dir(MigdManager *self, const gchar *dir)
{
	g_return_if_fail(MIGD_IS_MANAGER(self));
	g_free(self->config_dir);
	self->config_dir = g_strdup(dir);
}

gboolean
migd_manager_check_persist(MigdManager *self, const gchar *name, GError **error)
{
	g_return_val_if_fail(MIGD_IS_MANAGER(self), FALSE);

	if (self->config_dir == NULL) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "this daemon has no configuration directory to persist into");
		return FALSE;
	}
	/* the name becomes a file name and a group name: nothing that escapes either */
	if (name[0] == '.' || strpbrk(name, "/[]\n\r\\") != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "'%s' cannot be persisted (no '/', '[', ']', newline or leading '.')",
			    name);
		return FALSE;
	}
	return TRUE;
}

gboolean
migd_manager_persist_device(MigdManager *self, MigdDevice *device, const gchar *address,
			    const gchar *sim_spec, GArray *ranges, GError **error)
{
	const gchar *name = migd_device_get_name(device);
	g_autoptr(GString) text = g_string_new(NULL);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree gchar *group = g_strdup_printf("device %s", name);
	g_autofree gchar *dir = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *data = NULL;

	if (!migd_manager_check_persist(self, name, error))
		return FALSE;
	if (sim_spec != NULL)
		g_key_file_set_string(kf, group, "sim-spec", sim_spec);
	else
		g_key_file_set_string(kf, group, "address", address);
	for (guint i = 0; ranges != NULL && i < ranges->len; i++) {
		const MigdIovaRange *r = &g_array_index(ranges, MigdIovaRange, i);
		g_string_append_printf(text,
				       "%s0x%" G_GINT64_MODIFIER "x+0x%" G_GINT64_MODIFIER "x",
				       i > 0 ? "," : "", r->iova, r->length);
	}
	if (text->len > 0)
		g_key_file_set_string(kf, group, "iova-ranges", text->str);
	data = g_key_file_to_data(kf, NULL, NULL);
	dir = g_build_filename(self->config_dir, "devices.d", NULL);
	path = g_strdup_printf("%s/%s.conf", dir, name);
	if (g_mkdir_with_parents(dir, 0755) < 0) {
		migd_set_errno_error(error, errno, "%s", dir);
		return FALSE;
	}
	/* written whole (rename): a daemon starting now reads the old file or the new one */
	if (!g_file_set_contents(path, data, -1, error)) {
		migd_error_convert(error);
		return FALSE;
	}
	g_message("%s: persisted in %s", name, path);
	return TRUE;
}

gboolean
migd_manager_detach_device(MigdManager *self, const gchar *name, GError **error)
{
	MigdDevice *device;
	g_autoptr(MigdDevice) keep = NULL;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), FALSE);

	device = migd_manager_find_device(self, name);
	if (device == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "unknown device '%s'",
			    name);
		return FALSE;
	}
	if (migd_manager_device_is_busy(self, device)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
			    "device '%s' is in a job or reserved by an expectation", name);
		return FALSE;
	}
	keep = g_object_ref(device);
	if (self->low_power != NULL)
		migd_low_power_remove(self->low_power, device);
	g_ptr_array_remove(self->devices, device);
	if (!migd_manager_devices_changed(self, error)) {
		g_ptr_array_add(self->devices, g_object_ref(keep));
		return FALSE;
	}
	g_signal_emit(self, signals[SIGNAL_DEVICES_CHANGED], 0);
	return TRUE;
}

/* ---- Migrate ---- */

gboolean
migd_manager_check_address(const gchar *address, GError **error)
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

/* the devices named by the caller (none: all), each once */
static GPtrArray *
migd_manager_resolve_names(MigdManager *self, const gchar *const *names, GError **error)
{
	g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(g_object_unref);

	if (names == NULL || names[0] == NULL) {
		for (guint i = 0; i < self->devices->len; i++)
			g_ptr_array_add(devices, g_object_ref(g_ptr_array_index(self->devices, i)));
	} else {
		for (guint i = 0; names[i] != NULL; i++) {
			MigdDevice *device = migd_manager_find_device(self, names[i]);
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
	return g_steal_pointer(&devices);
}

/* the devices named by the caller (none: all), each once and none busy */
static GPtrArray *
migd_manager_resolve_devices(MigdManager *self, const gchar *const *names, GError **error)
{
	g_autoptr(GPtrArray) devices = migd_manager_resolve_names(self, names, error);

	if (devices == NULL)
		return NULL;
	for (guint i = 0; i < devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(devices, i);
		if (g_hash_table_contains(self->busy, device)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
				    "device '%s' is busy in another job",
				    migd_device_get_name(device));
			return NULL;
		}
		if (migd_manager_device_is_busy(self, device)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
				    "device '%s' is reserved for an incoming migration",
				    migd_device_get_name(device));
			return NULL;
		}
	}
	return g_steal_pointer(&devices);
}

/* the options' IOVA ranges: only for devices of this job, all checked before any is set */
static gboolean
migd_manager_apply_ranges(MigdManager *self, GPtrArray *devices, GPtrArray *iova_ranges,
			  GError **error)
{
	if (iova_ranges == NULL)
		return TRUE;
	for (guint i = 0; i < iova_ranges->len; i++) {
		MigdManagerIovaRanges *entry = g_ptr_array_index(iova_ranges, i);
		MigdDevice *device = migd_manager_find_device(self, entry->name);
		if (device == NULL || !g_ptr_array_find(devices, device, NULL)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "option 'iova-ranges' names '%s', which is not migrated by "
				    "this job",
				    entry->name);
			return FALSE;
		}
	}
	for (guint i = 0; i < iova_ranges->len; i++) {
		MigdManagerIovaRanges *entry = g_ptr_array_index(iova_ranges, i);
		if (!migd_manager_set_iova_ranges(migd_manager_find_device(self, entry->name),
						  entry->ranges, error))
			return FALSE;
	}
	return TRUE;
}

guint64
migd_manager_migrate(MigdManager *self, const gchar *const *device_names, const gchar *address,
		     const MigdMigrateOptions *options, GError **error)
{
	g_autoptr(MigdMigrateOptions) defaults = NULL;
	g_autoptr(GPtrArray) devices = NULL;
	g_autoptr(MigdJob) job = NULL;
	MigdSourceOptions source_options;
	guint64 id;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), 0);
	g_return_val_if_fail(address != NULL, 0);

	if (options == NULL) {
		defaults = migd_migrate_options_new();
		options = defaults;
	}
	if (!migd_manager_check_address(address, error))
		return 0;
	if (options->migration_id != NULL &&
	    !migd_wire_check_migration_id("option 'migration-id'", options->migration_id,
					  MIGD_ERROR_INVALID_ARGUMENT, error))
		return 0;
	migd_source_options_init(&source_options);
	source_options.journal = self->journal;
	source_options.budget = self->budget;
	if (options->downtime_ms > 0)
		source_options.policy.downtime_target_us =
		    (guint64)options->downtime_ms * G_TIME_SPAN_MILLISECOND;
	if (options->max_rounds > 0)
		source_options.policy.max_rounds = options->max_rounds;
	source_options.timeout_s = options->timeout_s;
	source_options.dirty_fallback = options->dirty_fallback;
	source_options.switchover = options->switchover;
	source_options.handover_timeout_s = options->handover_timeout_s;
	source_options.migration_id = options->migration_id;

	devices = migd_manager_resolve_devices(self, device_names, error);
	if (devices == NULL ||
	    !migd_manager_apply_ranges(self, devices, options->iova_ranges, error) ||
	    !migd_manager_wake_devices(self, devices, error))
		return 0;
	job = migd_source_start(devices, address, &options->transport, &source_options, error);
	if (job == NULL)
		return 0;
	id = migd_manager_add_job(self, job, devices);
	g_message("migrating %u device(s) to %s for %s%s%s (switchover %s): job %" G_GUINT64_FORMAT,
		  devices->len, address,
		  options->requester != NULL ? options->requester : "(unknown)",
		  options->migration_id != NULL ? ", migration " : "",
		  options->migration_id != NULL ? options->migration_id : "",
		  migd_switchover_mode_to_string(options->switchover), id);
	return id;
}

/* ---- Listen ---- */

static void
migd_manager_job_started_cb(MigdDestination *destination, MigdJob *job, gpointer user_data)
{
	MigdManager *self = MIGD_MANAGER(user_data);
	g_autoptr(GPtrArray) devices = migd_manager_incoming_devices(self, job);
	g_autoptr(GError) error_local = NULL;

	/* all out of low power before the engine touches them */
	if (!migd_manager_wake_devices(self, devices, &error_local)) {
		/* the engine's own device checks will fail and abort the job with a reason */
		g_warning("incoming job %s: %s", migd_job_get_id(job), error_local->message);
	}
	migd_manager_add_job(self, job, devices);
	g_message("incoming migration: job %s%s%s", migd_job_get_id(job),
		  migd_job_get_migration_id(job) != NULL ? ", migration " : "",
		  migd_job_get_migration_id(job) != NULL ? migd_job_get_migration_id(job) : "");
}

/* listens on @address, or the socket systemd handed over (@address NULL, @fd) */
static gboolean
migd_manager_start_listening(MigdManager *self, const gchar *address, gint fd,
			     const MigdTransportConfig *transport, GError **error)
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
	migd_destination_set_budget(destination, self->budget);
	migd_destination_set_start_mode(destination, self->start_mode);
	g_signal_connect_object(destination, "job-started", G_CALLBACK(migd_manager_job_started_cb),
				self, 0);
	if (address != NULL ? !migd_destination_listen(destination, address, transport, error)
			    : !migd_destination_listen_fd(destination, fd, transport, error))
		return FALSE;
	self->destination = g_steal_pointer(&destination);
	return TRUE;
}

gchar *
migd_manager_listen(MigdManager *self, const gchar *address, const MigdTransportConfig *transport,
		    GError **error)
{
	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);
	g_return_val_if_fail(address != NULL, NULL);
	g_return_val_if_fail(transport != NULL, NULL);

	if (!migd_manager_check_address(address, error) ||
	    !migd_manager_start_listening(self, address, -1, transport, error))
		return NULL;
	return migd_destination_get_address(self->destination);
}

gboolean
migd_manager_listen_fd(MigdManager *self, gint fd, const MigdTransportConfig *transport,
		       GError **error)
{
	g_autofree gchar *bound = NULL;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), FALSE);
	g_return_val_if_fail(transport != NULL, FALSE);

	if (!migd_manager_start_listening(self, NULL, fd, transport, error))
		return FALSE;
	bound = migd_destination_get_address(self->destination);
	g_message("listening on %s (socket activation)", bound);
	return TRUE;
}

gboolean
migd_manager_is_listening(MigdManager *self)
{
	g_return_val_if_fail(MIGD_IS_MANAGER(self), FALSE);
	return self->destination != NULL;
}

/* the ids of the incoming jobs still running, comma-separated ("" if none) */
static gchar *
migd_manager_running_incoming(MigdManager *self)
{
	g_autoptr(GString) ids = g_string_new(NULL);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->jobs);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		MigdManagerJob *mjob = value;
		if (migd_job_get_role(mjob->job) != MIGD_JOB_ROLE_DESTINATION ||
		    migd_job_is_finished(mjob->job))
			continue;
		g_string_append_printf(ids, "%s%s", ids->len > 0 ? ", " : "",
				       migd_job_get_id(mjob->job));
	}
	return g_string_free(g_steal_pointer(&ids), FALSE);
}

gboolean
migd_manager_close_listener(MigdManager *self, GError **error)
{
	g_auto(GStrv) expected = NULL;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), FALSE);

	if (self->destination == NULL) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "this daemon is not listening");
		return FALSE;
	}
	/* closing under a running session would reset the devices of a VM on its way in */
	if (migd_destination_is_busy(self->destination)) {
		g_autofree gchar *ids = migd_manager_running_incoming(self);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
			    "an incoming migration is running (job %s): wait for it or cancel it "
			    "first",
			    ids[0] != '\0' ? ids : "starting");
		return FALSE;
	}
	/* an expectation promises a VMM its migration will be received here */
	expected = migd_destination_list_expectations(self->destination);
	if (expected != NULL && expected[0] != NULL) {
		g_autofree gchar *list = g_strjoinv(", ", expected);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
			    "%u expectation(s) wait on this listener (%s): cancel them first",
			    g_strv_length(expected), list);
		return FALSE;
	}
	migd_destination_close(self->destination);
	g_clear_object(&self->destination);
	return TRUE;
}

void
migd_manager_stop_listening(MigdManager *self)
{
	g_return_if_fail(MIGD_IS_MANAGER(self));
	if (self->destination == NULL)
		return;
	/* nothing to undo once something uses the listener: keep it then */
	(void)migd_manager_close_listener(self, NULL);
}

gchar **
migd_manager_list_listeners(MigdManager *self)
{
	GStrvBuilder *builder = g_strv_builder_new();
	gchar **addresses;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);
	if (self->destination != NULL) {
		g_autofree gchar *bound = migd_destination_get_address(self->destination);
		g_strv_builder_add(builder, bound);
	}
	addresses = g_strv_builder_end(builder);
	g_strv_builder_unref(builder);
	return addresses;
}

gint
migd_manager_dup_dirty_bitmap_fd(MigdManager *self, const gchar *name, GError **error)
{
	guint index = G_MAXUINT;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), -1);

	for (guint i = 0; i < self->devices->len; i++) {
		if (g_strcmp0(migd_device_get_name(g_ptr_array_index(self->devices, i)), name) == 0)
			index = i;
	}
	if (index == G_MAXUINT) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "unknown device '%s'",
			    name);
		return -1;
	}
	if (self->destination == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "no dirty bitmap for %s: this daemon has received no migration", name);
		return -1;
	}
	return migd_destination_dup_dirty_bitmap_fd(self->destination, index, error);
}

/* ---- object ---- */

void
migd_manager_set_device_open_func(MigdManager *self, MigdManagerDeviceOpenFunc func,
				  gpointer user_data)
{
	g_return_if_fail(MIGD_IS_MANAGER(self));
	self->open_func = func;
	self->open_data = user_data;
}

void
migd_manager_set_device_info_func(MigdManager *self, MigdManagerDeviceInfoFunc func,
				  gpointer user_data)
{
	g_return_if_fail(MIGD_IS_MANAGER(self));
	self->info_func = func;
	self->info_data = user_data;
}

void
migd_manager_set_low_power(MigdManager *self, MigdLowPower *low_power)
{
	g_return_if_fail(MIGD_IS_MANAGER(self));
	self->low_power = low_power;
	migd_manager_idle_devices(self, self->devices);
}

MigdLowPower *
migd_manager_get_low_power(MigdManager *self)
{
	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);
	return self->low_power;
}

void
migd_manager_set_journal(MigdManager *self, MigdJournal *journal)
{
	g_return_if_fail(MIGD_IS_MANAGER(self));
	self->journal = journal;
}

void
migd_manager_set_job_retention(MigdManager *self, guint seconds, guint count)
{
	g_return_if_fail(MIGD_IS_MANAGER(self));
	self->retain_s = seconds;
	self->retain_count = count;
}

void
migd_manager_close(MigdManager *self)
{
	g_autoptr(GArray) ids = NULL;

	g_return_if_fail(MIGD_IS_MANAGER(self));

	if (self->destination != NULL) {
		migd_destination_close(self->destination);
		g_clear_object(&self->destination);
	}
	g_queue_clear(&self->finished);
	g_hash_table_remove_all(self->busy);
	ids = migd_manager_get_job_ids(self);
	g_hash_table_remove_all(self->jobs);
	for (guint i = 0; i < ids->len; i++)
		g_signal_emit(self, signals[SIGNAL_JOB_REMOVED], 0, g_array_index(ids, guint64, i));
}

static void
migd_manager_init(MigdManager *self)
{
	self->devices = g_ptr_array_new_with_free_func(g_object_unref);
	self->busy = g_hash_table_new(g_direct_hash, g_direct_equal);
	self->jobs = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
					   (GDestroyNotify)migd_manager_job_free);
	g_queue_init(&self->finished);
	self->next_job_id = 1;
	self->retain_s = MIGD_MANAGER_JOB_RETAIN_S;
	self->retain_count = MIGD_MANAGER_JOB_RETAIN_COUNT;
	self->budget = migd_stream_budget_new(MIGD_STREAM_BUDGET_DEFAULT);
}

void
migd_manager_set_max_inflight(MigdManager *self, guint64 bytes)
{
	g_return_if_fail(MIGD_IS_MANAGER(self));
	/* streams running keep the budget they joined; it lives until they leave */
	g_clear_pointer(&self->budget, migd_stream_budget_unref);
	self->budget = migd_stream_budget_new(bytes);
	if (self->destination != NULL)
		migd_destination_set_budget(self->destination, self->budget);
}

void
migd_manager_set_plugin_manager(MigdManager *self, MigdPluginManager *plugins)
{
	g_return_if_fail(MIGD_IS_MANAGER(self));
	g_set_object(&self->plugins, plugins);
}

/*
 * a device this manager holds as @name (PCI addresses compare without case): by its own
 * name, or, for one named otherwise ([device NAME] address=), by its sysfs directory
 */
static gboolean
migd_manager_serves(MigdManager *self, const gchar *name)
{
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(self->devices, i);
		const gchar *held = migd_device_get_name(device);
		const gchar *sysfs = migd_device_get_sysfs_path(device);
		g_autofree gchar *sysfs_name = sysfs != NULL ? g_path_get_basename(sysfs) : NULL;

		if ((held != NULL && g_ascii_strcasecmp(held, name) == 0) ||
		    (sysfs_name != NULL && g_ascii_strcasecmp(sysfs_name, name) == 0))
			return TRUE;
	}
	return FALSE;
}

GPtrArray *
migd_manager_list_host_devices(MigdManager *self)
{
	const gchar *dev_root = migd_host_devices_dev_root();
	GPtrArray *devices;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);
	devices = migd_host_devices_scan(migd_host_devices_sysfs_root(), dev_root);
	/* the daemon's own fds are what "served" says already */
	migd_host_devices_scan_holders(devices, dev_root, NULL, (gint)getpid());
	for (guint i = 0; i < devices->len; i++) {
		MigdHostDevice *device = g_ptr_array_index(devices, i);
		if (device->kind != MIGD_HOST_DEVICE_MDEV_TYPE)
			device->served = migd_manager_serves(self, device->name);
		if (self->plugins != NULL && device->kind != MIGD_HOST_DEVICE_MDEV_TYPE) {
			MigdDeviceIdentity identity = {
			    .driver = device->driver != NULL ? device->driver : (gchar *)"unknown",
			    .vendor_id = device->vendor_id,
			    .device_id = device->device_id,
			};
			MigdPlugin *plugin = migd_plugin_manager_match_identity(
			    self->plugins, device->name, &identity);
			device->plugin = g_strdup(migd_plugin_get_name(plugin));
		}
	}
	return devices;
}

static void
migd_manager_dispose(GObject *object)
{
	MigdManager *self = MIGD_MANAGER(object);

	migd_manager_close(self);
	G_OBJECT_CLASS(migd_manager_parent_class)->dispose(object);
}

static void
migd_manager_finalize(GObject *object)
{
	MigdManager *self = MIGD_MANAGER(object);

	g_hash_table_unref(self->jobs);
	g_hash_table_unref(self->busy);
	g_ptr_array_unref(self->devices);
	g_clear_pointer(&self->budget, migd_stream_budget_unref);
	g_clear_object(&self->plugins);
	g_free(self->config_dir);
	G_OBJECT_CLASS(migd_manager_parent_class)->finalize(object);
}

static void
migd_manager_class_init(MigdManagerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = migd_manager_dispose;
	object_class->finalize = migd_manager_finalize;
	signals[SIGNAL_JOB_ADDED] =
	    g_signal_new("job-added", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 2, G_TYPE_UINT64, MIGD_TYPE_JOB);
	signals[SIGNAL_JOB_FINISHED] =
	    g_signal_new("job-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 2, G_TYPE_UINT64, MIGD_TYPE_JOB);
	signals[SIGNAL_JOB_REMOVED] =
	    g_signal_new("job-removed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 1, G_TYPE_UINT64);
	signals[SIGNAL_DEVICES_CHANGED] =
	    g_signal_new("devices-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
			 NULL, NULL, G_TYPE_NONE, 0);
}

MigdManager *
migd_manager_new(GPtrArray *devices)
{
	MigdManager *self;

	g_return_val_if_fail(devices != NULL, NULL);

	self = g_object_new(MIGD_TYPE_MANAGER, NULL);
	for (guint i = 0; i < devices->len; i++)
		g_ptr_array_add(self->devices, g_object_ref(g_ptr_array_index(devices, i)));
	return self;
}

/* ---- expectations ---- */

void
migd_manager_set_start_mode(MigdManager *self, MigdStartMode mode)
{
	g_return_if_fail(MIGD_IS_MANAGER(self));

	self->start_mode = mode;
	if (self->destination != NULL)
		migd_destination_set_start_mode(self->destination, mode);
}

MigdStartMode
migd_manager_get_start_mode(MigdManager *self)
{
	g_return_val_if_fail(MIGD_IS_MANAGER(self), MIGD_START_AUTO);
	return self->start_mode;
}

static gboolean
migd_manager_check_listening(MigdManager *self, const gchar *what, GError **error)
{
	if (self->destination == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s needs a listener: call Listen first", what);
		return FALSE;
	}
	return TRUE;
}

gchar *
migd_manager_expect(MigdManager *self, const gchar *migration_id, const gchar *const *device_names,
		    MigdStartMode start, guint timeout_s, GError **error)
{
	g_autoptr(GPtrArray) devices = NULL;
	g_auto(GStrv) current = NULL;

	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);

	if (!migd_wire_check_migration_id("migration id", migration_id, MIGD_ERROR_INVALID_ARGUMENT,
					  error) ||
	    !migd_manager_check_listening(self, "an expectation", error))
		return NULL;
	/* an expectation names its devices: "all" would take every other VM's */
	if (device_names == NULL || device_names[0] == NULL) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "an expectation needs at least one device");
		return NULL;
	}
	current = migd_destination_list_expectations(self->destination);
	if (g_strv_contains((const gchar *const *)current, migration_id)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "migration %s is already expected", migration_id);
		return NULL;
	}
	devices = migd_manager_resolve_devices(self, device_names, error);
	if (devices == NULL || !migd_destination_expect(self->destination, migration_id, devices,
							start, timeout_s, error))
		return NULL;
	g_message("expecting migration %s into %u device(s) (start %s, timeout %u s)", migration_id,
		  devices->len, migd_start_mode_to_string(start), timeout_s);
	return migd_destination_get_address(self->destination);
}

gboolean
migd_manager_cancel_expectation(MigdManager *self, const gchar *migration_id, GError **error)
{
	g_return_val_if_fail(MIGD_IS_MANAGER(self), FALSE);
	g_return_val_if_fail(migration_id != NULL, FALSE);

	if (self->destination == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "no expectation %s: this daemon is not listening", migration_id);
		return FALSE;
	}
	return migd_destination_cancel_expectation(self->destination, migration_id, error);
}

gchar **
migd_manager_list_expectations(MigdManager *self)
{
	g_return_val_if_fail(MIGD_IS_MANAGER(self), NULL);

	if (self->destination == NULL)
		return g_new0(gchar *, 1);
	return migd_destination_list_expectations(self->destination);
}
