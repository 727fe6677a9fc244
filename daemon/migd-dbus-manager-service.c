/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <unistd.h>

#include "migd-authority.h"
#include "migd-dbus-job-service.h"
#include "migd-dbus-manager-service.h"
#include "migd-dbus-options.h"
#include "migd-error.h"
#include "migd-host-devices.h"
#include "migd-log.h"
#include "migd-vm.h"

struct _MigdDbusManagerService {
	MigdDbusManagerSkeleton parent_instance;
	MigdManager *manager;
	MigdAuthority *authority;    /* who may call: root, or whom polkit allows */
	GHashTable *jobs;	     /* path -> MigdDbusJobService (owned) */
	GPtrArray *capabilities;     /* gchar *, NULL-terminated */
	GDBusConnection *connection; /* set while exported */
	GHashTable *vms;	     /* name -> MigdVm (owned), the dbus-vmstate adapters */
};

static void migd_dbus_manager_service_iface_init(MigdDbusManagerIface *iface);

G_DEFINE_TYPE_WITH_CODE(MigdDbusManagerService, migd_dbus_manager_service,
			MIGD_DBUS_TYPE_MANAGER_SKELETON,
			G_IMPLEMENT_INTERFACE(MIGD_DBUS_TYPE_MANAGER,
					      migd_dbus_manager_service_iface_init))

/*
 * Everything a method returns goes out as a MIGD_ERROR name: the engine and GIO
 * may fail with their own domains, which would otherwise cross the bus as
 * org.gtk.GDBus.UnmappedGError names no client can match. Takes @error.
 */
static gboolean
migd_dbus_return_error(GDBusMethodInvocation *invocation, GError *error)
{
	migd_error_convert(&error);
	migd_log_caller(invocation, G_LOG_LEVEL_INFO, NULL, NULL, "%s.%s failed: %s; called by",
			g_dbus_method_invocation_get_interface_name(invocation),
			g_dbus_method_invocation_get_method_name(invocation), error->message);
	g_dbus_method_invocation_take_error(invocation, error);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- jobs: one object per job of the manager ---- */

static gchar *
migd_dbus_job_path(guint64 id)
{
	return g_strdup_printf(MIGD_DBUS_JOBS_PATH "/%" G_GUINT64_FORMAT, id);
}

static void
migd_dbus_job_service_drop(MigdDbusJobService *service)
{
	if (g_dbus_interface_skeleton_get_connection(G_DBUS_INTERFACE_SKELETON(service)) != NULL)
		g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(service));
	g_object_unref(service);
}

static void
migd_dbus_manager_service_job_added_cb(MigdManager *manager, guint64 id, MigdJob *job,
				       gpointer user_data)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(user_data);
	g_autoptr(MigdDbusJobService) service = migd_dbus_job_service_new(job, self->authority);
	g_autoptr(GError) error = NULL;
	gchar *path = migd_dbus_job_path(id);

	if (self->connection != NULL &&
	    !g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(service), self->connection,
					      path, &error)) {
		g_warning("cannot export job %s at %s: %s", migd_job_get_id(job), path,
			  error->message);
		g_free(path);
		return;
	}
	g_info("job %s exported at %s", migd_job_get_id(job), path);
	g_hash_table_replace(self->jobs, path, g_steal_pointer(&service));
}

static void
migd_dbus_manager_service_job_removed_cb(MigdManager *manager, guint64 id, gpointer user_data)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(user_data);
	g_autofree gchar *path = migd_dbus_job_path(id);

	g_hash_table_remove(self->jobs, path);
}

static gboolean
migd_dbus_manager_service_handle_list_jobs(MigdDbusManager *iface,
					   GDBusMethodInvocation *invocation)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_autoptr(GArray) ids = migd_manager_get_job_ids(self->manager);
	g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; i < ids->len; i++)
		g_ptr_array_add(paths, migd_dbus_job_path(g_array_index(ids, guint64, i)));
	g_ptr_array_add(paths, NULL);
	migd_dbus_manager_complete_list_jobs(iface, invocation, (const gchar *const *)paths->pdata);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- ListDevices ---- */

static GVariant *
migd_dbus_manager_service_device_to_variant(MigdDbusManagerService *self, MigdDevice *device)
{
	g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *flags = migd_mig_flags_to_string(migd_device_get_mig_flags(device));
	MigdLowPower *low_power = migd_manager_get_low_power(self->manager);
	MigdState state = MIGD_STATE_ERROR;
	const gchar *reserved_for;

	if (migd_device_get_state(device, &state, &error_local)) {
		g_variant_dict_insert(&dict, "state", "s", migd_state_to_string(state));
	} else {
		g_variant_dict_insert(&dict, "state", "s", "unknown");
		g_variant_dict_insert(&dict, "error", "s", error_local->message);
	}
	g_variant_dict_insert(&dict, "flags", "s", flags);
	g_variant_dict_insert(&dict, "busy", "b",
			      migd_manager_device_is_busy(self->manager, device));
	/* which VM's incoming migration holds it (Manager.Expect) */
	reserved_for = migd_manager_device_get_reservation(self->manager, device);
	if (reserved_for != NULL)
		g_variant_dict_insert(&dict, "reserved-for", "s", reserved_for);
	if (low_power != NULL)
		g_variant_dict_insert(&dict, "low-power", "b",
				      migd_low_power_is_engaged(low_power, device));
	migd_manager_device_info(self->manager, device, &dict);
	return g_variant_new("(s@a{sv})", migd_device_get_name(device), g_variant_dict_end(&dict));
}

static gboolean
migd_dbus_manager_service_handle_list_devices(MigdDbusManager *iface,
					      GDBusMethodInvocation *invocation)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	GPtrArray *devices = migd_manager_get_devices(self->manager);
	g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(sa{sv})"));

	for (guint i = 0; i < devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(devices, i);
		g_variant_builder_add_value(
		    &builder, migd_dbus_manager_service_device_to_variant(self, device));
	}
	migd_dbus_manager_complete_list_devices(iface, invocation, g_variant_builder_end(&builder));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- ListHostDevices ---- */

static GVariant *
migd_dbus_host_device_to_variant(MigdHostDevice *device)
{
	g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

	g_variant_dict_insert(&dict, "kind", "s", migd_host_device_kind_to_string(device->kind));
	if (device->driver != NULL)
		g_variant_dict_insert(&dict, "driver", "s", device->driver);
	if (device->has_ids) {
		g_variant_dict_insert(&dict, "vendor-id", "q", device->vendor_id);
		g_variant_dict_insert(&dict, "device-id", "q", device->device_id);
	}
	if (device->iommu_group >= 0)
		g_variant_dict_insert(&dict, "iommu-group", "u", (guint32)device->iommu_group);
	if (device->cdev != NULL) {
		g_variant_dict_insert(&dict, "cdev", "s", device->cdev);
		g_variant_dict_insert(&dict, "cdev-node", "b", device->cdev_node);
	}
	if (device->plugin != NULL)
		g_variant_dict_insert(&dict, "plugin", "s", device->plugin);
	if (device->kind != MIGD_HOST_DEVICE_MDEV_TYPE) {
		g_variant_dict_insert(&dict, "served", "b", device->served);
		g_variant_dict_insert_value(
		    &dict, "held-by",
		    g_variant_new_strv((const gchar *const *)device->held_by->pdata,
				       device->held_by->len));
	}
	if (device->parent != NULL)
		g_variant_dict_insert(&dict, "parent", "s", device->parent);
	if (device->type != NULL)
		g_variant_dict_insert(&dict, "type", "s", device->type);
	if (device->type_name != NULL)
		g_variant_dict_insert(&dict, "type-name", "s", device->type_name);
	if (device->description != NULL)
		g_variant_dict_insert(&dict, "description", "s", device->description);
	if (device->device_api != NULL)
		g_variant_dict_insert(&dict, "device-api", "s", device->device_api);
	if (device->available_instances >= 0)
		g_variant_dict_insert(&dict, "available-instances", "u",
				      (guint32)device->available_instances);
	return g_variant_new("(s@a{sv})", device->name, g_variant_dict_end(&dict));
}

static gboolean
migd_dbus_manager_service_handle_list_host_devices(MigdDbusManager *iface,
						   GDBusMethodInvocation *invocation)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_autoptr(GPtrArray) devices = migd_manager_list_host_devices(self->manager);
	g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(sa{sv})"));

	for (guint i = 0; i < devices->len; i++)
		g_variant_builder_add_value(
		    &builder, migd_dbus_host_device_to_variant(g_ptr_array_index(devices, i)));
	migd_dbus_manager_complete_list_host_devices(iface, invocation,
						     g_variant_builder_end(&builder));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- Migrate ---- */

static gboolean
migd_dbus_manager_service_handle_migrate(MigdDbusManager *iface, GDBusMethodInvocation *invocation,
					 const gchar *address, const gchar *const *device_names,
					 GVariant *options)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_autoptr(MigdMigrateOptions) migrate = migd_migrate_options_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = NULL;
	MigdJob *job;
	guint64 id;

	/* the address first, as before the options: a caller sees the first mistake */
	if (!migd_manager_check_address(address, &error) ||
	    !migd_dbus_options_parse_migrate(options, migrate, &error))
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	migrate->requester = g_strdup(g_dbus_method_invocation_get_sender(invocation));
	id = migd_manager_migrate(self->manager, device_names, address, migrate, &error);
	if (id == 0)
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	path = migd_dbus_job_path(id);
	/* the manager names the bus name; the audit trail wants the uid and pid */
	job = migd_manager_get_job(self->manager, id);
	migd_log_caller(invocation, G_LOG_LEVEL_INFO, job != NULL ? migd_job_get_id(job) : NULL,
			NULL, "job %" G_GUINT64_FORMAT ": migration requested by", id);
	migd_dbus_manager_complete_migrate(iface, invocation, path);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- Listen ---- */

static gboolean
migd_dbus_manager_service_handle_listen(MigdDbusManager *iface, GDBusMethodInvocation *invocation,
					const gchar *address, GVariant *options)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_autoptr(MigdTransportConfig) transport = g_new0(MigdTransportConfig, 1);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *bound = NULL;
	/* without the option: the daemon's ([listen] start=) */
	MigdStartMode start = migd_manager_get_start_mode(self->manager);

	if (!migd_manager_check_address(address, &error) ||
	    !migd_dbus_options_parse_listen(options, transport, &start, &error))
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	bound = migd_manager_listen(self->manager, address, transport, &error);
	if (bound == NULL)
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	/* only once listening: a refused Listen changes nothing */
	migd_manager_set_start_mode(self->manager, start);
	migd_log_caller(invocation, G_LOG_LEVEL_MESSAGE, NULL, NULL, "listening on %s for", bound);
	migd_dbus_manager_complete_listen(iface, invocation, bound);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
migd_dbus_manager_service_handle_stop_listening(MigdDbusManager *iface,
						GDBusMethodInvocation *invocation)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_auto(GStrv) bound = migd_manager_list_listeners(self->manager);
	g_autoptr(GError) error = NULL;

	if (!migd_manager_close_listener(self->manager, &error))
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	migd_log_caller(invocation, G_LOG_LEVEL_MESSAGE, NULL, NULL, "stopped listening on %s by",
			bound[0] != NULL ? bound[0] : "?");
	migd_dbus_manager_complete_stop_listening(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
migd_dbus_manager_service_handle_list_listeners(MigdDbusManager *iface,
						GDBusMethodInvocation *invocation)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_auto(GStrv) addresses = migd_manager_list_listeners(self->manager);

	migd_dbus_manager_complete_list_listeners(iface, invocation,
						  (const gchar *const *)addresses);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- Expect, CancelExpectation, ListExpectations ---- */

static gboolean
migd_dbus_manager_service_handle_expect(MigdDbusManager *iface, GDBusMethodInvocation *invocation,
					const gchar *migration_id, const gchar *const *device_names,
					GVariant *options)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *address = NULL;
	MigdStartMode start = MIGD_START_AUTO;
	guint timeout_s = 0;

	if (!migd_dbus_options_parse_expect(options, &start, &timeout_s, &error))
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	address = migd_manager_expect(self->manager, migration_id, device_names, start, timeout_s,
				      &error);
	if (address == NULL)
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	/* the manager logged what it reserved; who asked is for the debug log */
	migd_log_caller(invocation, G_LOG_LEVEL_INFO, NULL, NULL, "expectation %s for",
			migration_id);
	migd_dbus_manager_complete_expect(iface, invocation, address);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
migd_dbus_manager_service_handle_cancel_expectation(MigdDbusManager *iface,
						    GDBusMethodInvocation *invocation,
						    const gchar *migration_id)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_autoptr(GError) error = NULL;

	if (!migd_manager_cancel_expectation(self->manager, migration_id, &error))
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	migd_log_caller(invocation, G_LOG_LEVEL_MESSAGE, NULL, NULL, "expectation %s cancelled by",
			migration_id);
	migd_dbus_manager_complete_cancel_expectation(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
migd_dbus_manager_service_handle_list_expectations(MigdDbusManager *iface,
						   GDBusMethodInvocation *invocation)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_auto(GStrv) ids = migd_manager_list_expectations(self->manager);

	migd_dbus_manager_complete_list_expectations(iface, invocation, (const gchar *const *)ids);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- AddDevice, AttachDevice, DetachDevice ---- */

static gboolean
migd_dbus_manager_service_add(MigdDbusManagerService *self, GDBusMethodInvocation *invocation,
			      const gchar *name, GVariant *options, gint fd)
{
	g_autoptr(MigdDevice) device = NULL;
	g_autoptr(GArray) ranges = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *sim_spec = NULL;
	const gchar *address = NULL;
	gboolean persist = FALSE;
	GVariantIter iter;
	const gchar *key;
	GVariant *value_tmp;

	/* option names first: a typo must not pass unnoticed */
	g_variant_iter_init(&iter, options);
	while (g_variant_iter_next(&iter, "{&sv}", &key, &value_tmp)) {
		g_autoptr(GVariant) value = value_tmp;
		if (g_strcmp0(key, "iova-ranges") != 0 && g_strcmp0(key, "sim-spec") != 0 &&
		    g_strcmp0(key, "address") != 0 && (fd >= 0 || g_strcmp0(key, "persist") != 0)) {
			g_set_error(&error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "unknown option '%s'", key);
			return migd_dbus_return_error(invocation, g_steal_pointer(&error));
		}
	}
	/* a "sim-spec" of another type is no spec: the name is then a kernel device's */
	g_variant_lookup(options, "sim-spec", "&s", &sim_spec);
	if (!migd_dbus_options_get_address(options, fd >= 0, &address, &error))
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	/* "persist": the daemon writes the drop-in, as it knows its config dir (and is root) */
	g_variant_lookup(options, "persist", "b", &persist);
	if (persist && !migd_manager_check_persist(self->manager, name, &error))
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	device = migd_manager_open_device(self->manager, name, sim_spec, fd, address, &error);
	if (device == NULL ||
	    !migd_dbus_options_get_iova_ranges(options, device, &ranges, &error) ||
	    !migd_manager_add_device(self->manager, device, ranges, &error))
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	if (persist &&
	    !migd_manager_persist_device(self->manager, device, name, sim_spec, ranges, &error)) {
		/* all or nothing: a device the caller was told is not persisted is not added */
		migd_manager_detach_device(self->manager, migd_device_get_name(device), NULL);
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	}
	migd_log_caller(invocation, G_LOG_LEVEL_MESSAGE, NULL, migd_device_get_name(device),
			"%s device %s for", fd >= 0 ? "attached" : "added",
			migd_device_get_name(device));
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
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	}
	/* our own duplicate: the owner keeps its fd */
	fd = g_unix_fd_list_get(fd_list, index, &error);
	if (fd < 0)
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
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
	g_autoptr(GError) error = NULL;

	if (!migd_manager_detach_device(self->manager, name, &error))
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	migd_log_caller(invocation, G_LOG_LEVEL_MESSAGE, NULL, name, "detached device %s for",
			name);
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
	gint handle;
	gint fd = migd_manager_dup_dirty_bitmap_fd(self->manager, device, &error);

	if (fd < 0)
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	out = g_unix_fd_list_new();
	handle = g_unix_fd_list_append(out, fd, &error);
	close(fd);
	if (handle < 0)
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	migd_dbus_manager_complete_get_dirty_bitmap(iface, invocation, out,
						    g_variant_new_handle(handle));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- AttachVM, DetachVM, ListVMs: the dbus-vmstate adapters ---- */

gboolean
migd_dbus_manager_service_attach_vm(MigdDbusManagerService *self, MigdVmConfig *config,
				    GError **error)
{
	g_autoptr(MigdVmConfig) owned = config;
	GHashTableIter iter;
	gpointer value;
	MigdVm *vm;

	g_return_val_if_fail(MIGD_IS_DBUS_MANAGER_SERVICE(self), FALSE);

	if (g_hash_table_contains(self->vms, config->name)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "a VM named '%s' is already attached", config->name);
		return FALSE;
	}
	/* one VM's devices are nobody else's: two Saves would fight over them */
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		const MigdVmConfig *other = migd_vm_get_config(value);
		for (guint i = 0; config->devices[i] != NULL; i++) {
			if (g_strv_contains((const gchar *const *)other->devices,
					    config->devices[i])) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
					    "device %s belongs to VM %s", config->devices[i],
					    other->name);
				return FALSE;
			}
		}
	}
	vm = migd_vm_new(self->manager, g_steal_pointer(&owned), error);
	if (vm == NULL)
		return FALSE;
	g_hash_table_insert(self->vms, g_strdup(migd_vm_get_config(vm)->name), vm);
	return TRUE;
}

void
migd_dbus_manager_service_detach_vms(MigdDbusManagerService *self)
{
	g_return_if_fail(MIGD_IS_DBUS_MANAGER_SERVICE(self));
	g_hash_table_remove_all(self->vms);
}

static gboolean
migd_dbus_manager_service_handle_attach_vm(MigdDbusManager *iface,
					   GDBusMethodInvocation *invocation, const gchar *name,
					   GVariant *options)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_autoptr(GError) error = NULL;
	MigdVmConfig *config = migd_vm_config_from_options(name, options, &error);

	if (config == NULL || !migd_dbus_manager_service_attach_vm(self, config, &error))
		return migd_dbus_return_error(invocation, g_steal_pointer(&error));
	migd_log_caller(invocation, G_LOG_LEVEL_MESSAGE, NULL, NULL, "attached VM %s for", name);
	migd_dbus_manager_complete_attach_vm(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
migd_dbus_manager_service_handle_detach_vm(MigdDbusManager *iface,
					   GDBusMethodInvocation *invocation, const gchar *name)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);

	if (!g_hash_table_remove(self->vms, name))
		return migd_dbus_return_error(
		    invocation,
		    g_error_new(MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "no VM named '%s'", name));
	migd_log_caller(invocation, G_LOG_LEVEL_MESSAGE, NULL, NULL, "detached VM %s for", name);
	migd_dbus_manager_complete_detach_vm(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
migd_dbus_manager_service_handle_list_vms(MigdDbusManager *iface, GDBusMethodInvocation *invocation)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(iface);
	g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(sa{sv})"));
	g_autoptr(GList) names =
	    g_list_sort(g_hash_table_get_keys(self->vms), (GCompareFunc)g_strcmp0);

	for (GList *l = names; l != NULL; l = l->next)
		g_variant_builder_add(&builder, "(s@a{sv})", (const gchar *)l->data,
				      migd_vm_describe(g_hash_table_lookup(self->vms, l->data)));
	migd_dbus_manager_complete_list_vms(iface, invocation, g_variant_builder_end(&builder));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- who may call ---- */

/*
 * Every method call passes the authority before its handler runs, without a
 * check in each handler: the class's get_vtable wraps the generated dispatcher.
 * GDBusInterfaceSkeleton calls get_vtable()->method_call at every call, on the
 * main context, when no g-authorize-method handler is connected. Not that
 * signal: in GLib 2.74 (gio/gdbusinterfaceskeleton.c,
 * g_dbus_interface_method_dispatch_helper) any handler moves its emission to a
 * GTask worker thread, and the call back to the main context after it, so an
 * asynchronous polkit check would start on a worker thread and every call would
 * cross threads twice. The generated dispatcher takes the skeleton as its user
 * data and emits only the handle-* signal, so calling it later is what GDBus
 * would have done at once. Properties (Get, GetAll) are not method calls of the
 * skeleton: they stay readable by whoever reaches the bus, as the
 * PropertiesChanged signals the bus carries to anyone are (docs/architecture.md).
 */
static GDBusInterfaceMethodCallFunc migd_dbus_manager_service_generated_method_call;

static void
migd_dbus_manager_service_method_call(GDBusConnection *connection, const gchar *sender,
				      const gchar *object_path, const gchar *interface_name,
				      const gchar *method_name, GVariant *parameters,
				      GDBusMethodInvocation *invocation, gpointer user_data)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(user_data);

	migd_authority_dispatch(self->authority, G_DBUS_INTERFACE_SKELETON(self),
				migd_dbus_manager_service_generated_method_call, invocation);
}

static GDBusInterfaceVTable *
migd_dbus_manager_service_get_vtable(GDBusInterfaceSkeleton *skeleton)
{
	static GDBusInterfaceVTable vtable;
	static gsize once;

	if (g_once_init_enter(&once)) {
		vtable = *G_DBUS_INTERFACE_SKELETON_CLASS(migd_dbus_manager_service_parent_class)
			      ->get_vtable(skeleton);
		migd_dbus_manager_service_generated_method_call = vtable.method_call;
		vtable.method_call = migd_dbus_manager_service_method_call;
		g_once_init_leave(&once, 1);
	}
	return &vtable;
}

/* ---- object ---- */

static void
migd_dbus_manager_service_iface_init(MigdDbusManagerIface *iface)
{
	iface->handle_list_devices = migd_dbus_manager_service_handle_list_devices;
	iface->handle_list_host_devices = migd_dbus_manager_service_handle_list_host_devices;
	iface->handle_migrate = migd_dbus_manager_service_handle_migrate;
	iface->handle_listen = migd_dbus_manager_service_handle_listen;
	iface->handle_stop_listening = migd_dbus_manager_service_handle_stop_listening;
	iface->handle_list_listeners = migd_dbus_manager_service_handle_list_listeners;
	iface->handle_get_dirty_bitmap = migd_dbus_manager_service_handle_get_dirty_bitmap;
	iface->handle_add_device = migd_dbus_manager_service_handle_add_device;
	iface->handle_list_jobs = migd_dbus_manager_service_handle_list_jobs;
	iface->handle_attach_device = migd_dbus_manager_service_handle_attach_device;
	iface->handle_detach_device = migd_dbus_manager_service_handle_detach_device;
	iface->handle_expect = migd_dbus_manager_service_handle_expect;
	iface->handle_cancel_expectation = migd_dbus_manager_service_handle_cancel_expectation;
	iface->handle_list_expectations = migd_dbus_manager_service_handle_list_expectations;
	iface->handle_attach_vm = migd_dbus_manager_service_handle_attach_vm;
	iface->handle_detach_vm = migd_dbus_manager_service_handle_detach_vm;
	iface->handle_list_vms = migd_dbus_manager_service_handle_list_vms;
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

	g_hash_table_remove_all(self->jobs);
	if (self->connection != NULL) {
		g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(self));
		g_clear_object(&self->connection);
	}
}

static void
migd_dbus_manager_service_init(MigdDbusManagerService *self)
{
	self->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					   (GDestroyNotify)migd_dbus_job_service_drop);
	self->capabilities = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(self->capabilities, NULL);
	self->vms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
	self->authority = migd_authority_new();
}

static void
migd_dbus_manager_service_dispose(GObject *object)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(object);

	/* before the manager goes: a detach cancels the VMs' expectations */
	g_hash_table_remove_all(self->vms);
	migd_dbus_manager_service_unexport(self);
	if (self->manager != NULL)
		g_signal_handlers_disconnect_by_data(self->manager, self);
	g_clear_object(&self->manager);
	G_OBJECT_CLASS(migd_dbus_manager_service_parent_class)->dispose(object);
}

static void
migd_dbus_manager_service_finalize(GObject *object)
{
	MigdDbusManagerService *self = MIGD_DBUS_MANAGER_SERVICE(object);

	g_hash_table_unref(self->jobs);
	g_hash_table_unref(self->vms);
	g_object_unref(self->authority);
	g_ptr_array_unref(self->capabilities);
	G_OBJECT_CLASS(migd_dbus_manager_service_parent_class)->finalize(object);
}

static void
migd_dbus_manager_service_class_init(MigdDbusManagerServiceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = migd_dbus_manager_service_dispose;
	object_class->finalize = migd_dbus_manager_service_finalize;
	G_DBUS_INTERFACE_SKELETON_CLASS(klass)->get_vtable = migd_dbus_manager_service_get_vtable;
	migd_error_register_dbus();
}

MigdDbusManagerService *
migd_dbus_manager_service_new(MigdManager *manager)
{
	MigdDbusManagerService *self;
	const gchar *const capabilities[] = {"migrate",		"listen",	   "tls",
					     "plain-transport", "vm-coordination", "dbus-vmstate"};

	g_return_val_if_fail(MIGD_IS_MANAGER(manager), NULL);

	self = g_object_new(MIGD_TYPE_DBUS_MANAGER_SERVICE, NULL);
	self->manager = g_object_ref(manager);
	g_signal_connect(manager, "job-added", G_CALLBACK(migd_dbus_manager_service_job_added_cb),
			 self);
	g_signal_connect(manager, "job-removed",
			 G_CALLBACK(migd_dbus_manager_service_job_removed_cb), self);
	migd_dbus_manager_set_version(MIGD_DBUS_MANAGER(self), PACKAGE_VERSION);
	for (guint i = 0; i < G_N_ELEMENTS(capabilities); i++)
		migd_dbus_manager_service_add_capability(self, capabilities[i]);
	return self;
}
