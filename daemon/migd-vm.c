/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dbus-vmstate adapter: one MigdVm per VM (see migd-vm.h, docs/qemu.md).
 */
#include "config.h"

#include "migd-vm.h"

#include <string.h>

#include "migd-error.h"
#include "migd-plugin.h"
#include "migd-qmp.h"
#include "migd-vm-record.h"
#include "migd-wire-frame.h"
#include "migd-wire-limits.h"

/* the bus is dialled again after 100 ms, doubling up to 5 s */
#define MIGD_VM_BACKOFF_MIN_MS 100u
#define MIGD_VM_BACKOFF_MAX_MS 5000u
/* QEMU's monitor: again after 100 ms, doubling up to 2 s (a restarted QEMU is seen soon) */
#define MIGD_VM_QMP_BACKOFF_MIN_MS 100u
#define MIGD_VM_QMP_BACKOFF_MAX_MS 2000u
/* a connect and QMP's negotiation together */
#define MIGD_VM_QMP_TIMEOUT_MS 5000u
/* Load polls the incoming job until it reaches handover */
#define MIGD_VM_LOAD_POLL_MS 20u
/* a VM's name and a VMState Id: as QEMU's Id, 1..255 bytes */
#define MIGD_VM_MAX_NAME 255u

/* ---- configuration ---- */

static const gchar *const migd_vm_keys[] = {"bus",
					    "id",
					    "devices",
					    "role",
					    "migration-id",
					    "peer",
					    "plain",
					    "insecure-plain-tcp",
					    "cert",
					    "key",
					    "ca",
					    "peer-name",
					    "downtime-ms",
					    "handover-timeout",
					    "save-timeout-ms",
					    "listen",
					    "load-timeout-ms",
					    "qmp",
					    NULL};
static const gchar *const migd_vm_source_keys[] = {
    "peer", "peer-name", "downtime-ms", "handover-timeout", "save-timeout-ms", NULL};
static const gchar *const migd_vm_destination_keys[] = {"listen", "load-timeout-ms", NULL};

void
migd_vm_config_free(MigdVmConfig *config)
{
	if (config == NULL)
		return;
	g_free(config->name);
	g_free(config->bus);
	g_free(config->id);
	g_strfreev(config->devices);
	g_free(config->migration_id);
	g_free(config->transport.cert_file);
	g_free(config->transport.key_file);
	g_free(config->transport.ca_file);
	g_free(config->transport.peer_name);
	g_free(config->peer);
	g_free(config->listen);
	g_free(config->qmp);
	g_free(config);
}

/* @key's value when present and not empty; absent: *@dest untouched */
static gboolean
migd_vm_config_get_string(GKeyFile *kf, const gchar *group, const gchar *key, gchar **dest,
			  GError **error)
{
	g_autofree gchar *value = NULL;

	if (!g_key_file_has_key(kf, group, key, NULL))
		return TRUE;
	value = migd_plugin_config_get_string(kf, group, key, error);
	if (value == NULL)
		return FALSE;
	if (value[0] == '\0') {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "%s: must not be empty",
			    key);
		return FALSE;
	}
	g_free(*dest);
	*dest = g_steal_pointer(&value);
	return TRUE;
}

/* a name or an Id: 1..255 bytes of UTF-8 without control characters */
static gboolean
migd_vm_check_label(const gchar *what, const gchar *value, const gchar *forbidden, GError **error)
{
	gsize len = strlen(value);

	if (len == 0 || len > MIGD_VM_MAX_NAME || !g_utf8_validate(value, len, NULL)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s must be 1 to %u bytes of UTF-8", what, MIGD_VM_MAX_NAME);
		return FALSE;
	}
	for (const gchar *p = value; *p != '\0'; p++) {
		if (g_ascii_iscntrl(*p) || strchr(forbidden, *p) != NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "%s '%s' must not contain control characters or any of '%s'",
				    what, value, forbidden);
			return FALSE;
		}
	}
	return TRUE;
}

/* devices=NAME;NAME...: 1..MIGD_WIRE_MAX_DEVICES distinct names */
static GStrv
migd_vm_config_parse_devices(const gchar *value, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(value, ";", -1);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; parts[i] != NULL; i++) {
		const gchar *name = g_strstrip(parts[i]);

		if (name[0] == '\0')
			continue;
		if (!migd_vm_check_label("devices: a device name", name, "", error))
			return NULL;
		for (guint j = 0; j < names->len; j++) {
			if (g_strcmp0(g_ptr_array_index(names, j), name) == 0) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "devices: '%s' is named twice", name);
				return NULL;
			}
		}
		g_ptr_array_add(names, g_strdup(name));
	}
	if (names->len == 0 || names->len > MIGD_WIRE_MAX_DEVICES) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "devices: %u names (1 to %u)", names->len, MIGD_WIRE_MAX_DEVICES);
		return NULL;
	}
	g_ptr_array_add(names, NULL);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&names), FALSE);
}

static gboolean
migd_vm_config_get_ms(GKeyFile *kf, const gchar *group, const gchar *key, guint *dest,
		      GError **error)
{
	guint64 v = *dest;

	if (!migd_plugin_config_get_uint(kf, group, key, MIGD_VM_MIN_CALL_TIMEOUT_MS,
					 MIGD_VM_MAX_CALL_TIMEOUT_MS, &v, error))
		return FALSE;
	*dest = (guint)v;
	return TRUE;
}

/* every key of the other role is a mistake worth saying */
static gboolean
migd_vm_config_check_role_keys(GKeyFile *kf, const gchar *group, MigdVmRole role, GError **error)
{
	const gchar *const *other =
	    role == MIGD_VM_ROLE_SOURCE ? migd_vm_destination_keys : migd_vm_source_keys;

	for (guint i = 0; other[i] != NULL; i++) {
		if (g_key_file_has_key(kf, group, other[i], NULL)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "%s: only for role=%s", other[i],
				    role == MIGD_VM_ROLE_SOURCE ? "destination" : "source");
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
migd_vm_config_read(GKeyFile *kf, const gchar *group, MigdVmConfig *config, GError **error)
{
	g_autofree gchar *role = NULL;
	g_autofree gchar *devices = NULL;
	guint64 v;

	if (!migd_plugin_config_check_keys(kf, group, migd_vm_keys, error))
		return FALSE;
	if (!g_key_file_has_key(kf, group, "bus", NULL) ||
	    !g_key_file_has_key(kf, group, "devices", NULL) ||
	    !g_key_file_has_key(kf, group, "role", NULL)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "bus, devices and role are required");
		return FALSE;
	}
	if (!migd_vm_config_get_string(kf, group, "role", &role, error))
		return FALSE;
	if (g_strcmp0(role, "source") == 0) {
		config->role = MIGD_VM_ROLE_SOURCE;
	} else if (g_strcmp0(role, "destination") == 0) {
		config->role = MIGD_VM_ROLE_DESTINATION;
	} else {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "role: expected source or destination, not '%s'", role);
		return FALSE;
	}
	if (!migd_vm_config_check_role_keys(kf, group, config->role, error))
		return FALSE;
	if (!migd_vm_config_get_string(kf, group, "bus", &config->bus, error))
		return FALSE;
	if (!g_dbus_is_supported_address(config->bus, error)) {
		g_prefix_error(error, "bus: ");
		migd_error_convert(error);
		return FALSE;
	}
	if (!migd_vm_config_get_string(kf, group, "id", &config->id, error))
		return FALSE;
	if (config->id == NULL)
		config->id = g_strdup(MIGD_VM_DEFAULT_ID);
	/* QEMU's id-list separates Ids with commas */
	if (!migd_vm_check_label("id", config->id, ",", error))
		return FALSE;
	if (!migd_vm_config_get_string(kf, group, "devices", &devices, error))
		return FALSE;
	config->devices = migd_vm_config_parse_devices(devices, error);
	if (config->devices == NULL)
		return FALSE;
	if (!migd_vm_config_get_string(kf, group, "migration-id", &config->migration_id, error))
		return FALSE;
	if (config->migration_id == NULL) {
		config->migration_id = g_strdup(config->name);
		if (!migd_wire_check_migration_id("the VM's name (the default migration-id)",
						  config->migration_id, MIGD_ERROR_INVALID_ARGUMENT,
						  error)) {
			g_prefix_error(error, "migration-id: ");
			return FALSE;
		}
	} else if (!migd_wire_check_migration_id("migration-id", config->migration_id,
						 MIGD_ERROR_INVALID_ARGUMENT, error)) {
		return FALSE;
	}
	if (!migd_plugin_config_get_boolean(kf, group, "plain", &config->transport.plain, error) ||
	    !migd_plugin_config_get_boolean(kf, group, "insecure-plain-tcp",
					    &config->transport.insecure_plain_tcp, error) ||
	    !migd_vm_config_get_string(kf, group, "cert", &config->transport.cert_file, error) ||
	    !migd_vm_config_get_string(kf, group, "key", &config->transport.key_file, error) ||
	    !migd_vm_config_get_string(kf, group, "ca", &config->transport.ca_file, error) ||
	    !migd_vm_config_get_string(kf, group, "qmp", &config->qmp, error))
		return FALSE;
	config->save_timeout_ms = MIGD_VM_DEFAULT_CALL_TIMEOUT_MS;
	config->load_timeout_ms = MIGD_VM_DEFAULT_CALL_TIMEOUT_MS;
	if (config->role == MIGD_VM_ROLE_DESTINATION) {
		if (!migd_vm_config_get_string(kf, group, "listen", &config->listen, error) ||
		    !migd_vm_config_get_ms(kf, group, "load-timeout-ms", &config->load_timeout_ms,
					   error))
			return FALSE;
		if (config->listen != NULL && !migd_manager_check_address(config->listen, error)) {
			g_prefix_error(error, "listen: ");
			return FALSE;
		}
		return TRUE;
	}
	if (!g_key_file_has_key(kf, group, "peer", NULL)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "peer: required for role=source");
		return FALSE;
	}
	if (!migd_vm_config_get_string(kf, group, "peer", &config->peer, error) ||
	    !migd_vm_config_get_string(kf, group, "peer-name", &config->transport.peer_name,
				       error) ||
	    !migd_vm_config_get_ms(kf, group, "save-timeout-ms", &config->save_timeout_ms, error))
		return FALSE;
	if (!migd_manager_check_address(config->peer, error)) {
		g_prefix_error(error, "peer: ");
		return FALSE;
	}
	v = 0;
	if (!migd_plugin_config_get_uint(kf, group, "downtime-ms", 1, G_MAXUINT32, &v, error))
		return FALSE;
	config->downtime_ms = (guint)v;
	v = 0;
	if (!migd_plugin_config_get_uint(kf, group, "handover-timeout", 1, 86400, &v, error))
		return FALSE;
	config->handover_timeout_s = (guint)v;
	return TRUE;
}

MigdVmConfig *
migd_vm_config_from_key_file(GKeyFile *key_file, const gchar *group, GError **error)
{
	g_autoptr(MigdVmConfig) config = g_new0(MigdVmConfig, 1);

	g_return_val_if_fail(g_str_has_prefix(group, "vm "), NULL);
	config->name = g_strdup(group + strlen("vm "));
	if (!migd_vm_check_label("a VM's name", config->name, "[]", error) ||
	    !migd_vm_config_read(key_file, group, config, error)) {
		g_prefix_error(error, "[%s] ", group);
		return NULL;
	}
	return g_steal_pointer(&config);
}

/* an option's value as the file would hold it */
static gboolean
migd_vm_option_to_key_file(GKeyFile *kf, const gchar *group, const gchar *key, GVariant *value,
			   GError **error)
{
	if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
		g_key_file_set_string(kf, group, key, g_variant_get_string(value, NULL));
	} else if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT32)) {
		g_key_file_set_uint64(kf, group, key, g_variant_get_uint32(value));
	} else if (g_variant_is_of_type(value, G_VARIANT_TYPE_BOOLEAN)) {
		g_key_file_set_boolean(kf, group, key, g_variant_get_boolean(value));
	} else if (g_strcmp0(key, "devices") == 0 &&
		   g_variant_is_of_type(value, G_VARIANT_TYPE_STRING_ARRAY)) {
		g_autofree const gchar **names = g_variant_get_strv(value, NULL);
		g_autofree gchar *joined = NULL;

		for (guint i = 0; names[i] != NULL; i++) {
			if (strchr(names[i], ';') != NULL || names[i][0] == '\0') {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "option 'devices': bad device name '%s'", names[i]);
				return FALSE;
			}
		}
		joined = g_strjoinv(";", (gchar **)names);
		g_key_file_set_string(kf, group, key, joined);
	} else {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "option '%s' must be a string (s), a number (u)%s or a boolean (b), "
			    "not '%s'",
			    key, g_strcmp0(key, "devices") == 0 ? ", a list (as)" : "",
			    g_variant_get_type_string(value));
		return FALSE;
	}
	return TRUE;
}

MigdVmConfig *
migd_vm_config_from_options(const gchar *name, GVariant *options, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree gchar *group = NULL;
	GVariantIter iter;
	const gchar *key;
	GVariant *value_tmp;

	if (!migd_vm_check_label("a VM's name", name, "[]", error))
		return NULL;
	group = g_strconcat("vm ", name, NULL);
	g_variant_iter_init(&iter, options);
	while (g_variant_iter_next(&iter, "{&sv}", &key, &value_tmp)) {
		g_autoptr(GVariant) value = value_tmp;

		if (!g_strv_contains(migd_vm_keys, key)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "unknown option '%s' (known: " MIGD_VM_KEYS ")", key);
			return NULL;
		}
		if (!migd_vm_option_to_key_file(kf, group, key, value, error))
			return NULL;
	}
	return migd_vm_config_from_key_file(kf, group, error);
}

/* ---- the VM ---- */

/* QEMU's Save or Load in progress: one at a time, as QEMU calls them */
typedef struct {
	MigdVm *vm;
	GDBusMethodInvocation *invocation;
	gboolean save;
	MigdJob *job;		/* the job it drives, once known */
	MigdVmRecord *record;	/* Load: what the source's Save returned */
	guint timeout_id;	/* the whole call's bound */
	guint poll_id;		/* Load: waiting for the job's handover */
	gboolean async_pending; /* a switchover or start is in flight */
	gboolean done;		/* QEMU was answered */
	guint holds;		/* migd_vm_call_finish() still uses it */
	gint64 started_us;
} MigdVmCall;

struct _MigdVm {
	GObject parent_instance;
	MigdManager *manager;
	MigdVmConfig *config;
	GCancellable *cancellable; /* the bus connection in progress; cancelled on detach */
	GDBusConnection *connection;
	guint registration_id;
	gulong closed_handler;
	guint reconnect_id;
	guint backoff_ms;
	gboolean name_requested;
	gboolean queued;
	gulong job_finished_handler;
	guint expect_id;
	gboolean expecting;
	MigdVmCall *call;
	gboolean detached;
	/* qmp=: QEMU's monitor, watched for MIGRATION and RESUME */
	MigdQmp *qmp;
	gulong qmp_event_handler;
	gulong qmp_closed_handler;
	guint qmp_reconnect_id;
	guint qmp_backoff_ms;
	gboolean qmp_connecting;
	gboolean qmp_warned; /* "nobody listens" said once per absence */
	MigdJob *qmp_job;    /* the pre-copy job QMP's "setup" started */
	/* how long the last successful Save and Load took (ms; -1: none yet): ListVMs */
	gint64 last_save_ms;
	gint64 last_load_ms;
};

G_DEFINE_TYPE(MigdVm, migd_vm, G_TYPE_OBJECT)

static void migd_vm_connect(MigdVm *self);
static void migd_vm_qmp_connect(MigdVm *self);

static const gchar migd_vm_introspection[] =
    "<node>"
    "  <interface name='" MIGD_VM_DBUS_INTERFACE "'>"
    "    <property name='Id' type='s' access='read'/>"
    "    <method name='Load'><arg name='data' type='ay' direction='in'/></method>"
    "    <method name='Save'><arg name='data' type='ay' direction='out'/></method>"
    "  </interface>"
    "</node>";

static GDBusInterfaceInfo *
migd_vm_interface_info(void)
{
	static GDBusNodeInfo *node;

	if (g_once_init_enter(&node)) {
		/* a constant: parsing cannot fail */
		GDBusNodeInfo *info = g_dbus_node_info_new_for_xml(migd_vm_introspection, NULL);
		g_once_init_leave(&node, info);
	}
	return node->interfaces[0];
}

static void
migd_vm_call_free(MigdVmCall *call)
{
	g_clear_handle_id(&call->timeout_id, g_source_remove);
	g_clear_handle_id(&call->poll_id, g_source_remove);
	g_clear_object(&call->invocation);
	g_clear_object(&call->job);
	g_clear_pointer(&call->record, migd_vm_record_free);
	g_clear_object(&call->vm);
	g_free(call);
}

/* freed once answered and no engine callback is still to come */
static void
migd_vm_call_maybe_free(MigdVmCall *call)
{
	if (call->done && !call->async_pending && call->holds == 0)
		migd_vm_call_free(call);
}

/* the job's devices back: source RUNNING (rollback or cancel), destination reset (abandon) */
static void
migd_vm_call_take_back(MigdVmCall *call, const gchar *why)
{
	g_autoptr(GError) error = NULL;

	if (call->job == NULL || migd_job_is_finished(call->job))
		return;
	if (call->save) {
		/* after the switchover a rollback; before it, a cancel rolls back too */
		if (!migd_job_rollback(call->job, &error) && !migd_job_cancel(call->job))
			g_warning("VM %s: job %s: cannot take the devices back: %s",
				  call->vm->config->name, migd_job_get_id(call->job),
				  error->message);
		return;
	}
	if (!migd_job_abandon(call->job, why, &error))
		g_warning("VM %s: job %s: cannot abandon: %s", call->vm->config->name,
			  migd_job_get_id(call->job), error->message);
}

/* answers QEMU once: @error (taken) or @reply (floating, or NULL for ()) */
static void
migd_vm_call_finish(MigdVmCall *call, GError *error, GVariant *reply)
{
	MigdVm *self = call->vm;
	const gchar *method = call->save ? "Save" : "Load";
	gint64 ms = (g_get_monotonic_time() - call->started_us) / 1000;

	/* answered already (the bound, a detach): the engine's late outcome only frees it */
	if (call->done) {
		if (error != NULL)
			g_error_free(error);
		if (reply != NULL)
			g_variant_unref(g_variant_ref_sink(reply));
		migd_vm_call_maybe_free(call);
		return;
	}
	call->done = TRUE;
	g_clear_handle_id(&call->timeout_id, g_source_remove);
	g_clear_handle_id(&call->poll_id, g_source_remove);
	if (error != NULL) {
		migd_error_convert(&error);
		g_warning("VM %s: %s failed after %" G_GINT64_FORMAT " ms: %s", self->config->name,
			  method, ms, error->message);
		/* a cancel may complete the switchover, and its callback run, right here */
		call->holds++;
		migd_vm_call_take_back(call, error->message);
		call->holds--;
		g_dbus_method_invocation_take_error(g_steal_pointer(&call->invocation), error);
	} else {
		g_message("VM %s: %s done in %" G_GINT64_FORMAT " ms%s%s", self->config->name,
			  method, ms, call->job != NULL ? ", job " : "",
			  call->job != NULL ? migd_job_get_id(call->job) : "");
		if (call->save)
			self->last_save_ms = ms;
		else
			self->last_load_ms = ms;
		g_dbus_method_invocation_return_value(g_steal_pointer(&call->invocation), reply);
	}
	if (self->call == call)
		self->call = NULL;
	migd_vm_call_maybe_free(call);
}

static MigdVmCall *
migd_vm_call_new(MigdVm *self, GDBusMethodInvocation *invocation, gboolean save)
{
	MigdVmCall *call = g_new0(MigdVmCall, 1);

	call->vm = g_object_ref(self);
	/* the method handler owns the invocation: the answer gives it back */
	call->invocation = invocation;
	call->save = save;
	call->started_us = g_get_monotonic_time();
	self->call = call;
	return call;
}

static gboolean
migd_vm_call_timeout_cb(gpointer user_data)
{
	MigdVmCall *call = user_data;
	guint bound =
	    call->save ? call->vm->config->save_timeout_ms : call->vm->config->load_timeout_ms;

	call->timeout_id = 0;
	if (call->job == NULL)
		migd_vm_call_finish(call,
				    g_error_new(MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
						"no incoming migration '%s' within %u ms",
						call->vm->config->migration_id, bound),
				    NULL);
	else
		migd_vm_call_finish(
		    call,
		    g_error_new(MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
				"job %s still in phase %s after %u ms", migd_job_get_id(call->job),
				migd_job_phase_to_string(migd_job_get_phase(call->job)), bound),
		    NULL);
	return G_SOURCE_REMOVE;
}

/* the newest unfinished job of this VM's migration id in @role */
static MigdJob *
migd_vm_find_job(MigdVm *self, MigdJobRole role)
{
	g_autoptr(GArray) ids = migd_manager_get_job_ids(self->manager);

	for (guint i = ids->len; i > 0; i--) {
		MigdJob *job =
		    migd_manager_get_job(self->manager, g_array_index(ids, guint64, i - 1));

		if (job != NULL && migd_job_get_role(job) == role && !migd_job_is_finished(job) &&
		    g_strcmp0(migd_job_get_migration_id(job), self->config->migration_id) == 0)
			return job;
	}
	return NULL;
}

/* ---- Save (source) ---- */

static void
migd_vm_save_switchover_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdVmCall *call = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdVmRecord) record = NULL;
	g_autoptr(GBytes) bytes = NULL;

	call->async_pending = FALSE;
	if (!migd_job_switchover_finish(MIGD_JOB(source), result, &error)) {
		g_prefix_error(&error, "switchover of job %s: ", migd_job_get_id(call->job));
		migd_vm_call_finish(call, g_steal_pointer(&error), NULL);
		return;
	}
	/* answered already (the bound, a detach): the devices must not stay stopped */
	if (call->done) {
		migd_vm_call_take_back(call, "Save was answered already");
		migd_vm_call_maybe_free(call);
		return;
	}
	record = migd_vm_record_from_job(call->job, &error);
	if (record == NULL) {
		migd_vm_call_finish(call, g_steal_pointer(&error), NULL);
		return;
	}
	bytes = migd_vm_record_encode(record);
	migd_vm_call_finish(call, NULL,
			    g_variant_new("(@ay)", g_variant_new_from_bytes(
						       G_VARIANT_TYPE_BYTESTRING, bytes, TRUE)));
}

static void
migd_vm_transport_copy(MigdTransportConfig *dst, const MigdTransportConfig *src)
{
	g_free(dst->cert_file);
	g_free(dst->key_file);
	g_free(dst->ca_file);
	g_free(dst->peer_name);
	*dst = *src;
	dst->cert_file = g_strdup(src->cert_file);
	dst->key_file = g_strdup(src->key_file);
	dst->ca_file = g_strdup(src->ca_file);
	dst->peer_name = g_strdup(src->peer_name);
}

/*
 * A job of this VM's devices that switches over only when told: Save with no
 * pre-copy job (the whole stop-and-copy inside the call), or QMP's MIGRATION
 * "setup" (the device pre-copy alongside QEMU's RAM pre-copy)
 */
static MigdJob *
migd_vm_save_migrate(MigdVm *self, const gchar *requester, GError **error)
{
	g_autoptr(MigdMigrateOptions) options = migd_migrate_options_new();
	guint64 id;

	migd_vm_transport_copy(&options->transport, &self->config->transport);
	options->downtime_ms = self->config->downtime_ms;
	options->handover_timeout_s = self->config->handover_timeout_s;
	options->switchover = MIGD_SWITCHOVER_MANUAL;
	options->migration_id = g_strdup(self->config->migration_id);
	options->requester = g_strdup_printf("%s of VM %s", requester, self->config->name);
	id = migd_manager_migrate(self->manager, (const gchar *const *)self->config->devices,
				  self->config->peer, options, error);
	if (id == 0)
		return NULL;
	return migd_manager_get_job(self->manager, id);
}

static void
migd_vm_save(MigdVm *self, GDBusMethodInvocation *invocation)
{
	g_autoptr(GError) error = NULL;
	MigdVmCall *call;
	MigdJob *job;

	if (self->config->role != MIGD_VM_ROLE_SOURCE) {
		g_dbus_method_invocation_return_error(
		    invocation, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
		    "VM %s is the destination here: Save belongs to the source",
		    self->config->name);
		return;
	}
	if (self->call != NULL) {
		g_dbus_method_invocation_return_error(
		    invocation, MIGD_ERROR, MIGD_ERROR_BUSY, "VM %s: a %s is in progress",
		    self->config->name, self->call->save ? "Save" : "Load");
		return;
	}
	call = migd_vm_call_new(self, invocation, TRUE);
	call->timeout_id =
	    g_timeout_add(self->config->save_timeout_ms, migd_vm_call_timeout_cb, call);
	job = migd_vm_find_job(self, MIGD_JOB_ROLE_SOURCE);
	if (job != NULL && migd_job_get_switchover_mode(job) != MIGD_SWITCHOVER_MANUAL) {
		migd_vm_call_finish(call,
				    g_error_new(MIGD_ERROR, MIGD_ERROR_BUSY,
						"job %s of VM %s switches over by itself "
						"(switchover=auto): QEMU cannot time it",
						migd_job_get_id(job), self->config->name),
				    NULL);
		return;
	}
	if (job == NULL) {
		job = migd_vm_save_migrate(self, "QEMU's Save", &error);
		if (job == NULL) {
			g_prefix_error(&error,
				       "cannot migrate the devices of VM %s: ", self->config->name);
			migd_vm_call_finish(call, g_steal_pointer(&error), NULL);
			return;
		}
		g_message("VM %s: Save with no pre-copy job: job %s does the stop-and-copy",
			  self->config->name, migd_job_get_id(job));
	} else {
		g_message("VM %s: Save switches job %s over (%s)", self->config->name,
			  migd_job_get_id(job), migd_job_phase_to_string(migd_job_get_phase(job)));
	}
	call->job = g_object_ref(job);
	call->async_pending = TRUE;
	/* the engine remembers a switchover asked before pre-copy began */
	migd_job_switchover_async(job, NULL, migd_vm_save_switchover_cb, call);
}

/* ---- Load (destination) ---- */

static void
migd_vm_load_start_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdVmCall *call = user_data;
	g_autoptr(GError) error = NULL;

	call->async_pending = FALSE;
	if (!migd_job_start_finish(MIGD_JOB(source), result, &error)) {
		g_prefix_error(&error, "start of job %s: ", migd_job_get_id(call->job));
		migd_vm_call_finish(call, g_steal_pointer(&error), NULL);
		return;
	}
	if (call->done) {
		/* QEMU was told it failed: its guest will not run here */
		g_warning("VM %s: job %s started after Load had failed", call->vm->config->name,
			  migd_job_get_id(call->job));
		migd_vm_call_maybe_free(call);
		return;
	}
	migd_vm_call_finish(call, NULL, NULL);
}

/* TRUE once the job reached handover (matched and starting, or refused): no more polling */
static gboolean
migd_vm_load_try(MigdVmCall *call)
{
	g_autoptr(GError) error = NULL;
	MigdJob *job = migd_vm_find_job(call->vm, MIGD_JOB_ROLE_DESTINATION);

	if (job == NULL)
		return FALSE;
	g_set_object(&call->job, job);
	if (migd_job_get_phase(job) != MIGD_JOB_PHASE_HANDOVER)
		return FALSE;
	/* the poll ends here: the answer below may free @call */
	call->poll_id = 0;
	if (!migd_vm_record_match_job(call->record, job, &error)) {
		g_prefix_error(&error, "the record does not match job %s: ", migd_job_get_id(job));
		migd_vm_call_finish(call, g_steal_pointer(&error), NULL);
		return TRUE;
	}
	g_message("VM %s: Load: job %s matches the source's record, starting its devices",
		  call->vm->config->name, migd_job_get_id(job));
	call->async_pending = TRUE;
	migd_job_start_async(job, NULL, migd_vm_load_start_cb, call);
	return TRUE;
}

static gboolean
migd_vm_load_poll_cb(gpointer user_data)
{
	return migd_vm_load_try(user_data) ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static void
migd_vm_load(MigdVm *self, GDBusMethodInvocation *invocation, GVariant *parameters)
{
	g_autoptr(GVariant) data = NULL;
	g_autoptr(GError) error = NULL;
	MigdVmCall *call;
	gconstpointer bytes;
	gsize len = 0;

	if (self->config->role != MIGD_VM_ROLE_DESTINATION) {
		g_dbus_method_invocation_return_error(
		    invocation, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
		    "VM %s is the source here: Load belongs to the destination",
		    self->config->name);
		return;
	}
	if (self->call != NULL) {
		g_dbus_method_invocation_return_error(
		    invocation, MIGD_ERROR, MIGD_ERROR_BUSY, "VM %s: a %s is in progress",
		    self->config->name, self->call->save ? "Save" : "Load");
		return;
	}
	call = migd_vm_call_new(self, invocation, FALSE);
	/* whatever happens next, an incoming job already there is this Load's to settle */
	g_set_object(&call->job, migd_vm_find_job(self, MIGD_JOB_ROLE_DESTINATION));
	g_variant_get(parameters, "(@ay)", &data);
	bytes = g_variant_get_fixed_array(data, &len, 1);
	call->record = migd_vm_record_decode(bytes, len, &error);
	if (call->record == NULL) {
		g_prefix_error(&error, "bad record: ");
		migd_vm_call_finish(call, g_steal_pointer(&error), NULL);
		return;
	}
	if (g_strcmp0(call->record->migration_id, self->config->migration_id) != 0) {
		migd_vm_call_finish(
		    call,
		    g_error_new(MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE,
				"the record is of migration '%s'; VM %s expects '%s'",
				call->record->migration_id, self->config->name,
				self->config->migration_id),
		    NULL);
		return;
	}
	/* the job is usually in handover already: QEMU loads RAM after the devices */
	if (migd_vm_load_try(call))
		return;
	call->timeout_id =
	    g_timeout_add(self->config->load_timeout_ms, migd_vm_call_timeout_cb, call);
	call->poll_id = g_timeout_add(MIGD_VM_LOAD_POLL_MS, migd_vm_load_poll_cb, call);
}

/* ---- org.qemu.VMState1 ---- */

static void
migd_vm_method_call(GDBusConnection *connection, const gchar *sender, const gchar *object_path,
		    const gchar *interface_name, const gchar *method_name, GVariant *parameters,
		    GDBusMethodInvocation *invocation, gpointer user_data)
{
	MigdVm *self = user_data;

	g_info("VM %s: %s from %s", self->config->name, method_name, sender);
	if (g_strcmp0(method_name, "Save") == 0)
		migd_vm_save(self, invocation);
	else if (g_strcmp0(method_name, "Load") == 0)
		migd_vm_load(self, invocation, parameters);
	else
		g_dbus_method_invocation_return_error(invocation, G_DBUS_ERROR,
						      G_DBUS_ERROR_UNKNOWN_METHOD, "no method %s",
						      method_name);
}

static GVariant *
migd_vm_get_property(GDBusConnection *connection, const gchar *sender, const gchar *object_path,
		     const gchar *interface_name, const gchar *property_name, GError **error,
		     gpointer user_data)
{
	MigdVm *self = user_data;

	if (g_strcmp0(property_name, "Id") == 0)
		return g_variant_new_string(self->config->id);
	g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "no property %s",
		    property_name);
	return NULL;
}

static const GDBusInterfaceVTable migd_vm_vtable = {
    .method_call = migd_vm_method_call,
    .get_property = migd_vm_get_property,
};

/* ---- the bus ---- */

static void
migd_vm_disconnect(MigdVm *self)
{
	if (self->connection == NULL)
		return;
	g_clear_signal_handler(&self->closed_handler, self->connection);
	if (self->registration_id != 0)
		g_dbus_connection_unregister_object(self->connection, self->registration_id);
	self->registration_id = 0;
	self->name_requested = FALSE;
	self->queued = FALSE;
	/* closing releases the name; nothing waits for it */
	if (!g_dbus_connection_is_closed(self->connection))
		g_dbus_connection_close(self->connection, NULL, NULL, NULL);
	g_clear_object(&self->connection);
}

static gboolean
migd_vm_reconnect_cb(gpointer user_data)
{
	MigdVm *self = user_data;

	self->reconnect_id = 0;
	migd_vm_connect(self);
	return G_SOURCE_REMOVE;
}

static void
migd_vm_schedule_reconnect(MigdVm *self)
{
	if (self->detached || self->reconnect_id != 0)
		return;
	self->reconnect_id = g_timeout_add(self->backoff_ms, migd_vm_reconnect_cb, self);
	self->backoff_ms = MIN(self->backoff_ms * 2, MIGD_VM_BACKOFF_MAX_MS);
}

static void
migd_vm_closed_cb(GDBusConnection *connection, gboolean remote_peer_vanished, GError *error,
		  gpointer user_data)
{
	MigdVm *self = user_data;

	g_warning("VM %s: lost the bus %s%s%s; connecting again", self->config->name,
		  self->config->bus, error != NULL ? ": " : "",
		  error != NULL ? error->message : "");
	/* QEMU cannot get the answer: its migration fails, so the devices come back */
	if (self->call != NULL)
		migd_vm_call_finish(self->call,
				    g_error_new(MIGD_ERROR, MIGD_ERROR_FAILED,
						"the bus %s went away", self->config->bus),
				    NULL);
	migd_vm_disconnect(self);
	migd_vm_schedule_reconnect(self);
}

static void
migd_vm_request_name_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(MigdVm) self = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	guint32 code = 0;

	reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
	if (self->detached || G_DBUS_CONNECTION(source) != self->connection)
		return;
	if (reply == NULL) {
		g_warning("VM %s: cannot request " MIGD_VM_DBUS_NAME " on %s: %s",
			  self->config->name, self->config->bus, error->message);
		migd_vm_disconnect(self);
		migd_vm_schedule_reconnect(self);
		return;
	}
	g_variant_get(reply, "(u)", &code);
	self->name_requested = TRUE;
	/* 1: primary owner; 2: in the queue (QEMU lists queued owners too); 4: already */
	if (code == 2) {
		self->queued = TRUE;
		g_message("VM %s: queued behind another owner of " MIGD_VM_DBUS_NAME
			  " on %s, Id '%s'",
			  self->config->name, self->config->bus, self->config->id);
	} else {
		g_message("VM %s: serving " MIGD_VM_DBUS_NAME " on %s, Id '%s'", self->config->name,
			  self->config->bus, self->config->id);
	}
}

static void
migd_vm_connected_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(MigdVm) self = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) connection =
	    g_dbus_connection_new_for_address_finish(result, &error);

	if (connection == NULL) {
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->detached)
			return;
		g_warning("VM %s: cannot connect to the bus %s: %s (again in %u ms)",
			  self->config->name, self->config->bus, error->message, self->backoff_ms);
		migd_vm_schedule_reconnect(self);
		return;
	}
	if (self->detached) {
		g_dbus_connection_close(connection, NULL, NULL, NULL);
		return;
	}
	g_dbus_connection_set_exit_on_close(connection, FALSE);
	self->registration_id = g_dbus_connection_register_object(
	    connection, MIGD_VM_DBUS_PATH, migd_vm_interface_info(), &migd_vm_vtable, self, NULL,
	    &error);
	if (self->registration_id == 0) {
		g_warning("VM %s: cannot export " MIGD_VM_DBUS_PATH " on %s: %s",
			  self->config->name, self->config->bus, error->message);
		g_dbus_connection_close(connection, NULL, NULL, NULL);
		migd_vm_schedule_reconnect(self);
		return;
	}
	self->connection = g_steal_pointer(&connection);
	self->backoff_ms = MIGD_VM_BACKOFF_MIN_MS;
	self->closed_handler =
	    g_signal_connect(self->connection, "closed", G_CALLBACK(migd_vm_closed_cb), self);
	/* flags 0: queued behind an owner, never replacing one nor letting us be replaced */
	g_dbus_connection_call(self->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "RequestName",
			       g_variant_new("(su)", MIGD_VM_DBUS_NAME, 0u), G_VARIANT_TYPE("(u)"),
			       G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable,
			       migd_vm_request_name_cb, g_object_ref(self));
}

static void
migd_vm_connect(MigdVm *self)
{
	g_dbus_connection_new_for_address(self->config->bus,
					  G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
					      G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
					  NULL, self->cancellable, migd_vm_connected_cb,
					  g_object_ref(self));
}

/* ---- QEMU's monitor (qmp=) ---- */

/* the switchover is under way or done: the devices are (being) stopped for QEMU */
static gboolean
migd_vm_job_past_switchover(MigdJob *job)
{
	switch (migd_job_get_phase(job)) {
	case MIGD_JOB_PHASE_SWITCHOVER:
	case MIGD_JOB_PHASE_STOPCOPY:
	case MIGD_JOB_PHASE_COMMIT:
	case MIGD_JOB_PHASE_HANDOVER:
		return TRUE;
	default:
		return FALSE;
	}
}

/* QEMU's migration failed or the VM runs again after Save: the devices back to RUNNING now */
static void
migd_vm_qmp_source_failed(MigdVm *self, const gchar *event)
{
	g_autoptr(GError) error = NULL;
	MigdJob *job = migd_vm_find_job(self, MIGD_JOB_ROLE_SOURCE);

	if (job == NULL)
		return;
	if (!migd_vm_job_past_switchover(job)) {
		/* QEMU gave up during its RAM pre-copy: the device pre-copy it caused goes too */
		if (job == self->qmp_job && g_strcmp0(event, "RESUME") != 0) {
			g_message("VM %s: QEMU reports %s before the switchover: cancelling the "
				  "device pre-copy job %s",
				  self->config->name, event, migd_job_get_id(job));
			migd_job_cancel(job);
		}
		return;
	}
	g_warning("VM %s: QEMU reports %s after the switchover of job %s (%s): rolling back, the "
		  "devices run again on the source",
		  self->config->name, event, migd_job_get_id(job),
		  migd_job_phase_to_string(migd_job_get_phase(job)));
	/* a Save in progress takes its job back when answered */
	if (self->call != NULL && self->call->save && self->call->job == job) {
		migd_vm_call_finish(self->call,
				    g_error_new(MIGD_ERROR, MIGD_ERROR_CANCELLED,
						"QEMU reports %s during Save", event),
				    NULL);
		return;
	}
	if (!migd_job_rollback(job, &error) && !migd_job_cancel(job))
		g_warning("VM %s: job %s: cannot roll back: %s", self->config->name,
			  migd_job_get_id(job), error->message);
}

/* QEMU's migration began: the device pre-copy runs alongside its RAM pre-copy */
static void
migd_vm_qmp_source_setup(MigdVm *self, const gchar *status)
{
	g_autoptr(GError) error = NULL;
	MigdJob *job;

	if (self->call != NULL || migd_vm_find_job(self, MIGD_JOB_ROLE_SOURCE) != NULL)
		return;
	job = migd_vm_save_migrate(self, "QEMU's migration (QMP)", &error);
	if (job == NULL) {
		/* Save will try again with a stop-and-copy */
		g_warning("VM %s: QEMU's migration is in %s: cannot start the device pre-copy: %s",
			  self->config->name, status, error->message);
		return;
	}
	g_set_object(&self->qmp_job, job);
	g_message("VM %s: QEMU's migration is in %s: job %s pre-copies the devices until Save",
		  self->config->name, status, migd_job_get_id(job));
}

/* the destination's QEMU will not run this guest: give the incoming devices up */
static void
migd_vm_qmp_destination_failed(MigdVm *self, const gchar *why)
{
	g_autoptr(GError) error = NULL;
	MigdJob *job = migd_vm_find_job(self, MIGD_JOB_ROLE_DESTINATION);

	/* no job yet: the expectation stays for QEMU's next attempt */
	if (job == NULL)
		return;
	if (self->call != NULL && !self->call->save) {
		if (self->call->async_pending) {
			g_warning("VM %s: %s while job %s starts its devices", self->config->name,
				  why, migd_job_get_id(job));
			return;
		}
		g_warning("VM %s: %s during Load: abandoning job %s", self->config->name, why,
			  migd_job_get_id(job));
		migd_vm_call_finish(self->call,
				    g_error_new(MIGD_ERROR, MIGD_ERROR_CANCELLED, "%s", why), NULL);
		return;
	}
	if (migd_job_get_devices_started_at(job) != 0)
		return;
	g_warning("VM %s: %s: abandoning job %s (%s); the source rolls back", self->config->name,
		  why, migd_job_get_id(job), migd_job_phase_to_string(migd_job_get_phase(job)));
	if (!migd_job_abandon(job, why, &error))
		g_warning("VM %s: job %s: cannot abandon: %s", self->config->name,
			  migd_job_get_id(job), error->message);
}

static void
migd_vm_qmp_event_cb(MigdQmp *qmp, const gchar *name, JsonObject *data, gint64 timestamp_us,
		     gpointer user_data)
{
	MigdVm *self = user_data;
	const gchar *status = NULL;

	if (g_strcmp0(name, "MIGRATION") == 0 && data != NULL &&
	    json_object_has_member(data, "status")) {
		JsonNode *node = json_object_get_member(data, "status");
		if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING)
			status = json_node_get_string(node);
	}
	if (status == NULL && g_strcmp0(name, "RESUME") != 0)
		return;
	g_info("VM %s: QMP %s %s", self->config->name, name, status != NULL ? status : "");
	if (self->config->role == MIGD_VM_ROLE_SOURCE) {
		if (status == NULL) {
			migd_vm_qmp_source_failed(self, "RESUME");
		} else if (g_strcmp0(status, "failed") == 0 ||
			   g_strcmp0(status, "cancelled") == 0) {
			g_autofree gchar *event = g_strdup_printf("MIGRATION %s", status);
			migd_vm_qmp_source_failed(self, event);
		} else if (g_strcmp0(status, "setup") == 0 || g_strcmp0(status, "active") == 0) {
			migd_vm_qmp_source_setup(self, status);
		}
		return;
	}
	if (g_strcmp0(status, "failed") == 0 || g_strcmp0(status, "cancelled") == 0) {
		g_autofree gchar *why = g_strdup_printf("QEMU reports MIGRATION %s", status);
		migd_vm_qmp_destination_failed(self, why);
	}
}

static void
migd_vm_qmp_forget(MigdVm *self)
{
	if (self->qmp == NULL)
		return;
	g_clear_signal_handler(&self->qmp_event_handler, self->qmp);
	g_clear_signal_handler(&self->qmp_closed_handler, self->qmp);
	migd_qmp_close(self->qmp);
	g_clear_object(&self->qmp);
}

static gboolean
migd_vm_qmp_reconnect_cb(gpointer user_data)
{
	MigdVm *self = user_data;

	self->qmp_reconnect_id = 0;
	migd_vm_qmp_connect(self);
	return G_SOURCE_REMOVE;
}

static void
migd_vm_qmp_schedule_reconnect(MigdVm *self)
{
	if (self->detached || self->qmp_reconnect_id != 0)
		return;
	self->qmp_reconnect_id =
	    g_timeout_add(self->qmp_backoff_ms, migd_vm_qmp_reconnect_cb, self);
	self->qmp_backoff_ms = MIN(self->qmp_backoff_ms * 2, MIGD_VM_QMP_BACKOFF_MAX_MS);
}

static void
migd_vm_qmp_closed_cb(MigdQmp *qmp, const GError *error, gpointer user_data)
{
	MigdVm *self = user_data;
	g_autofree gchar *why =
	    g_strdup_printf("QEMU's monitor %s closed%s%s", self->config->qmp,
			    error != NULL ? ": " : "", error != NULL ? error->message : "");

	g_warning("VM %s: %s; connecting again", self->config->name, why);
	if (self->config->role == MIGD_VM_ROLE_DESTINATION) {
		/* QEMU died (or restarts): its incoming guest will not run */
		migd_vm_qmp_destination_failed(self, why);
	} else {
		MigdJob *job = migd_vm_find_job(self, MIGD_JOB_ROLE_SOURCE);

		if (job != NULL && migd_job_get_phase(job) == MIGD_JOB_PHASE_HANDOVER)
			g_warning("VM %s: job %s stays in handover: QEMU's fate is unknown, the "
				  "handover bound applies",
				  self->config->name, migd_job_get_id(job));
	}
	migd_vm_qmp_forget(self);
	migd_vm_qmp_schedule_reconnect(self);
}

static void
migd_vm_qmp_connected_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(MigdVm) self = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdQmp) qmp = migd_qmp_connect_finish(result, &error);

	self->qmp_connecting = FALSE;
	if (qmp == NULL) {
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->detached)
			return;
		/* QEMU not (yet) there is usual: said once, then quietly again */
		if (!self->qmp_warned)
			g_warning("VM %s: no QEMU monitor at %s yet (%s): Save and Load are served "
				  "without it; trying again",
				  self->config->name, self->config->qmp, error->message);
		else
			g_debug("VM %s: QEMU monitor %s: %s", self->config->name, self->config->qmp,
				error->message);
		self->qmp_warned = TRUE;
		migd_vm_qmp_schedule_reconnect(self);
		return;
	}
	if (self->detached) {
		migd_qmp_close(qmp);
		return;
	}
	self->qmp = g_steal_pointer(&qmp);
	self->qmp_backoff_ms = MIGD_VM_QMP_BACKOFF_MIN_MS;
	self->qmp_warned = FALSE;
	self->qmp_event_handler =
	    g_signal_connect(self->qmp, "event", G_CALLBACK(migd_vm_qmp_event_cb), self);
	self->qmp_closed_handler =
	    g_signal_connect(self->qmp, "closed", G_CALLBACK(migd_vm_qmp_closed_cb), self);
	g_message("VM %s: watching QEMU's monitor %s", self->config->name, self->config->qmp);
}

static void
migd_vm_qmp_connect(MigdVm *self)
{
	if (self->config->qmp == NULL || self->detached || self->qmp != NULL ||
	    self->qmp_connecting)
		return;
	self->qmp_connecting = TRUE;
	migd_qmp_connect_async(self->config->qmp, MIGD_VM_QMP_TIMEOUT_MS, self->cancellable,
			       migd_vm_qmp_connected_cb, g_object_ref(self));
}

/* ---- the destination's expectation ---- */

static gboolean
migd_vm_expect(MigdVm *self, GError **error)
{
	g_auto(GStrv) current = migd_manager_list_expectations(self->manager);
	g_autofree gchar *address = NULL;

	if (g_strv_contains((const gchar *const *)current, self->config->migration_id))
		return TRUE;
	address = migd_manager_expect(self->manager, self->config->migration_id,
				      (const gchar *const *)self->config->devices,
				      MIGD_START_MANUAL, 0, error);
	if (address == NULL)
		return FALSE;
	self->expecting = TRUE;
	g_message("VM %s: expecting migration '%s' on %s", self->config->name,
		  self->config->migration_id, address);
	return TRUE;
}

static gboolean
migd_vm_expect_again_cb(gpointer user_data)
{
	MigdVm *self = user_data;
	g_autoptr(GError) error = NULL;

	self->expect_id = 0;
	if (!self->detached && !migd_vm_expect(self, &error))
		g_warning("VM %s: cannot expect the next migration '%s': %s", self->config->name,
			  self->config->migration_id, error->message);
	return G_SOURCE_REMOVE;
}

/* an incoming migration of this VM ended: the next one is expected again */
static void
migd_vm_job_finished_cb(MigdManager *manager, guint64 id, MigdJob *job, gpointer user_data)
{
	MigdVm *self = user_data;

	if (migd_job_get_role(job) != MIGD_JOB_ROLE_DESTINATION ||
	    g_strcmp0(migd_job_get_migration_id(job), self->config->migration_id) != 0)
		return;
	/* after the manager's own bookkeeping of the end */
	if (self->expect_id == 0)
		self->expect_id = g_idle_add(migd_vm_expect_again_cb, self);
}

/* ---- object ---- */

MigdVm *
migd_vm_new(MigdManager *manager, MigdVmConfig *config, GError **error)
{
	g_autoptr(MigdVmConfig) owned = config;
	g_autoptr(MigdVm) self = NULL;
	gboolean opened = FALSE;

	for (guint i = 0; config->devices[i] != NULL; i++) {
		if (migd_manager_find_device(manager, config->devices[i]) == NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "VM %s: no device %s", config->name, config->devices[i]);
			return NULL;
		}
	}
	self = g_object_new(MIGD_TYPE_VM, NULL);
	self->manager = g_object_ref(manager);
	self->config = g_steal_pointer(&owned);
	if (config->role == MIGD_VM_ROLE_DESTINATION) {
		if (config->listen != NULL && !migd_manager_is_listening(manager)) {
			g_autofree gchar *bound =
			    migd_manager_listen(manager, config->listen, &config->transport, error);
			if (bound == NULL) {
				g_prefix_error(error, "VM %s: ", config->name);
				return NULL;
			}
			g_message("VM %s: listening on %s", config->name, bound);
			opened = TRUE;
		}
		if (!migd_vm_expect(self, error)) {
			/* the listener was this VM's: a refused attach leaves no open port */
			if (opened)
				migd_manager_stop_listening(manager);
			g_prefix_error(error, "VM %s: ", config->name);
			return NULL;
		}
		self->job_finished_handler = g_signal_connect(
		    manager, "job-finished", G_CALLBACK(migd_vm_job_finished_cb), self);
	}
	g_message("VM %s: %s of migration '%s' with %u device(s), dbus-vmstate bus %s",
		  config->name, config->role == MIGD_VM_ROLE_SOURCE ? "source" : "destination",
		  config->migration_id, g_strv_length(config->devices), config->bus);
	migd_vm_connect(self);
	migd_vm_qmp_connect(self);
	return g_steal_pointer(&self);
}

const MigdVmConfig *
migd_vm_get_config(MigdVm *self)
{
	g_return_val_if_fail(MIGD_IS_VM(self), NULL);
	return self->config;
}

gboolean
migd_vm_is_connected(MigdVm *self)
{
	g_return_val_if_fail(MIGD_IS_VM(self), FALSE);
	return self->connection != NULL && self->name_requested;
}

GVariant *
migd_vm_describe(MigdVm *self)
{
	g_auto(GVariantDict) dict;
	const MigdVmConfig *c = self->config;

	g_variant_dict_init(&dict, NULL);
	g_variant_dict_insert(&dict, "bus", "s", c->bus);
	g_variant_dict_insert(&dict, "id", "s", c->id);
	g_variant_dict_insert(&dict, "role", "s",
			      c->role == MIGD_VM_ROLE_SOURCE ? "source" : "destination");
	g_variant_dict_insert(&dict, "migration-id", "s", c->migration_id);
	g_variant_dict_insert_value(&dict, "devices",
				    g_variant_new_strv((const gchar *const *)c->devices, -1));
	g_variant_dict_insert(&dict, "connected", "b", migd_vm_is_connected(self));
	g_variant_dict_insert(&dict, "queued", "b", self->queued);
	if (c->peer != NULL)
		g_variant_dict_insert(&dict, "peer", "s", c->peer);
	if (c->qmp != NULL) {
		g_variant_dict_insert(&dict, "qmp", "s", c->qmp);
		g_variant_dict_insert(&dict, "qmp-connected", "b", self->qmp != NULL);
	}
	/* Save runs inside QEMU's downtime: what it took is the devices' share of it */
	if (self->last_save_ms >= 0)
		g_variant_dict_insert(&dict, "last-save-ms", "t", (guint64)self->last_save_ms);
	if (self->last_load_ms >= 0)
		g_variant_dict_insert(&dict, "last-load-ms", "t", (guint64)self->last_load_ms);
	g_variant_dict_insert(&dict, "call", "s",
			      self->call == NULL ? ""
			      : self->call->save ? "save"
						 : "load");
	return g_variant_dict_end(&dict);
}

void
migd_vm_detach(MigdVm *self)
{
	g_return_if_fail(MIGD_IS_VM(self));
	if (self->detached)
		return;
	self->detached = TRUE;
	g_cancellable_cancel(self->cancellable);
	g_clear_handle_id(&self->reconnect_id, g_source_remove);
	g_clear_handle_id(&self->qmp_reconnect_id, g_source_remove);
	g_clear_handle_id(&self->expect_id, g_source_remove);
	migd_vm_qmp_forget(self);
	if (self->call != NULL)
		migd_vm_call_finish(self->call,
				    g_error_new(MIGD_ERROR, MIGD_ERROR_CANCELLED,
						"VM %s was detached from vfio-migd",
						self->config->name),
				    NULL);
	if (self->job_finished_handler != 0)
		g_clear_signal_handler(&self->job_finished_handler, self->manager);
	if (self->expecting) {
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) current = migd_manager_list_expectations(self->manager);

		if (g_strv_contains((const gchar *const *)current, self->config->migration_id) &&
		    !migd_manager_cancel_expectation(self->manager, self->config->migration_id,
						     &error))
			g_warning("VM %s: %s", self->config->name, error->message);
		self->expecting = FALSE;
	}
	migd_vm_disconnect(self);
	g_message("VM %s: detached", self->config->name);
}

static void
migd_vm_dispose(GObject *object)
{
	MigdVm *self = MIGD_VM(object);

	if (self->config != NULL && self->manager != NULL)
		migd_vm_detach(self);
	g_clear_object(&self->manager);
	G_OBJECT_CLASS(migd_vm_parent_class)->dispose(object);
}

static void
migd_vm_finalize(GObject *object)
{
	MigdVm *self = MIGD_VM(object);

	g_clear_object(&self->cancellable);
	g_clear_object(&self->qmp_job);
	migd_vm_config_free(self->config);
	G_OBJECT_CLASS(migd_vm_parent_class)->finalize(object);
}

static void
migd_vm_init(MigdVm *self)
{
	self->cancellable = g_cancellable_new();
	self->backoff_ms = MIGD_VM_BACKOFF_MIN_MS;
	self->qmp_backoff_ms = MIGD_VM_QMP_BACKOFF_MIN_MS;
	self->last_save_ms = -1;
	self->last_load_ms = -1;
}

static void
migd_vm_class_init(MigdVmClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = migd_vm_dispose;
	object_class->finalize = migd_vm_finalize;
}
