/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gunixfdlist.h>
#include <unistd.h>

#include "migd-authority.h"
#include "migd-dbus-job-service.h"
#include "migd-error.h"
#include "migd-log.h"

/* the engine may update per chunk; D-Bus clients see at most 5 updates a second */
#define MIGD_DBUS_JOB_SYNC_INTERVAL_MS 200

struct _MigdDbusJobService {
	MigdDbusJobSkeleton parent_instance;
	MigdJob *job;
	MigdAuthority *authority;
	guint sync_id;
};

static void migd_dbus_job_service_iface_init(MigdDbusJobIface *iface);

G_DEFINE_TYPE_WITH_CODE(MigdDbusJobService, migd_dbus_job_service, MIGD_DBUS_TYPE_JOB_SKELETON,
			G_IMPLEMENT_INTERFACE(MIGD_DBUS_TYPE_JOB, migd_dbus_job_service_iface_init))

static const gchar *
migd_dbus_job_role_to_string(MigdJobRole role)
{
	return role == MIGD_JOB_ROLE_DESTINATION ? "destination" : "source";
}

/* the generated setter signals every set of a boxed value: only set what changed */
static void
migd_dbus_job_service_sync_device_names(MigdDbusJobService *self)
{
	const gchar *const *names = migd_job_get_device_names(self->job);
	const gchar *const *current = migd_dbus_job_get_device_names(MIGD_DBUS_JOB(self));
	const gchar *const none[] = {NULL};

	if (names == NULL)
		names = none;
	if (current != NULL && g_strv_equal((const gchar **)current, (const gchar **)names))
		return;
	migd_dbus_job_set_device_names(MIGD_DBUS_JOB(self), names);
}

void
migd_dbus_job_service_sync(MigdDbusJobService *self)
{
	MigdDbusJob *iface = MIGD_DBUS_JOB(self);
	MigdJob *job = self->job;

	g_return_if_fail(MIGD_IS_DBUS_JOB_SERVICE(self));

	/* the generated setters only signal values that changed */
	migd_dbus_job_set_phase(iface, migd_job_phase_to_string(migd_job_get_phase(job)));
	migd_dbus_job_set_progress(iface, migd_job_get_progress(job));
	migd_dbus_job_set_bytes(iface, migd_job_get_bytes(job));
	migd_dbus_job_set_rate(iface, migd_job_get_rate(job));
	migd_dbus_job_set_downtime(iface, migd_job_get_downtime_us(job));
	migd_dbus_job_set_expected_downtime(iface, migd_job_get_expected_downtime_us(job));
	migd_dbus_job_set_precopy_rounds(iface, migd_job_get_precopy_rounds(job));
	migd_dbus_job_set_dirty_pages(iface, migd_job_get_dirty_pages(job));
	migd_dbus_job_set_dirty_wire_bytes(iface, migd_job_get_dirty_wire_bytes(job));
	migd_dbus_job_set_devices(iface, migd_job_get_n_devices(job));
	migd_dbus_job_set_converged(iface, migd_job_get_converged(job));
	migd_dbus_job_set_migration_id(
	    iface, migd_job_get_migration_id(job) != NULL ? migd_job_get_migration_id(job) : "");
	migd_dbus_job_set_rolled_back(iface, migd_job_get_rolled_back(job));
	migd_dbus_job_set_outcome(iface, migd_job_get_outcome(job));
	migd_dbus_job_set_switchover_mode(
	    iface, migd_switchover_mode_to_string(migd_job_get_switchover_mode(job)));
	migd_dbus_job_set_start_mode(iface,
				     migd_start_mode_to_string(migd_job_get_start_mode(job)));
	migd_dbus_job_set_devices_stopped_at(iface, (guint64)migd_job_get_devices_stopped_at(job));
	migd_dbus_job_set_devices_started_at(iface, (guint64)migd_job_get_devices_started_at(job));
	migd_dbus_job_service_sync_device_names(self);
	if (migd_job_is_finished(job)) {
		const gchar *message = migd_job_get_message(job);
		migd_dbus_job_set_message(iface, message != NULL ? message : "");
	}
}

static gboolean
migd_dbus_job_service_sync_cb(gpointer user_data)
{
	MigdDbusJobService *self = MIGD_DBUS_JOB_SERVICE(user_data);
	migd_dbus_job_service_sync(self);
	return G_SOURCE_CONTINUE;
}

static void
migd_dbus_job_service_completed_cb(MigdJob *job, gboolean success, const gchar *message,
				   gpointer user_data)
{
	MigdDbusJobService *self = MIGD_DBUS_JOB_SERVICE(user_data);

	g_clear_handle_id(&self->sync_id, g_source_remove);
	migd_dbus_job_service_sync(self);
	migd_dbus_job_set_message(MIGD_DBUS_JOB(self), message != NULL ? message : "");
	/* property changes go out from an idle; a client that reacts to Completed must
	 * already see the final values, so send them first */
	g_dbus_interface_skeleton_flush(G_DBUS_INTERFACE_SKELETON(self));
	migd_dbus_job_emit_completed(MIGD_DBUS_JOB(self), success, message != NULL ? message : "");
	g_info("job %s: %s: %s", migd_job_get_id(job), success ? "completed" : "failed",
	       message != NULL ? message : "");
}

static gboolean
migd_dbus_job_service_handle_cancel(MigdDbusJob *iface, GDBusMethodInvocation *invocation)
{
	MigdDbusJobService *self = MIGD_DBUS_JOB_SERVICE(iface);

	if (!migd_job_cancel(self->job)) {
		g_dbus_method_invocation_return_error(invocation, MIGD_ERROR, MIGD_ERROR_FAILED,
						      "job %s already finished",
						      migd_job_get_id(self->job));
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	migd_log_caller(invocation, G_LOG_LEVEL_INFO, migd_job_get_id(self->job), NULL,
			"job %s: cancel requested by", migd_job_get_id(self->job));
	migd_dbus_job_complete_cancel(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* takes @error, as a MIGD_ERROR name on the bus */
static void
migd_dbus_job_service_return_error(GDBusMethodInvocation *invocation, GError *error)
{
	migd_error_convert(&error);
	migd_log_caller(invocation, G_LOG_LEVEL_INFO, NULL, NULL,
			"%s.%s on %s failed: %s; called by",
			g_dbus_method_invocation_get_interface_name(invocation),
			g_dbus_method_invocation_get_method_name(invocation),
			g_dbus_method_invocation_get_object_path(invocation), error->message);
	g_dbus_method_invocation_take_error(invocation, error);
}

/*
 * Switchover and Start reply when the engine's task completes, which can be
 * seconds later: the invocation (the handler's, consumed by the reply)
 * outlives the handler, and the reply needs neither the service nor the job
 * object.
 */
static void
migd_dbus_job_service_switchover_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	GDBusMethodInvocation *invocation = user_data;
	GError *error = NULL;

	if (!migd_job_switchover_finish(MIGD_JOB(source), result, &error))
		migd_dbus_job_service_return_error(invocation, error);
	else
		g_dbus_method_invocation_return_value(invocation, NULL);
}

static gboolean
migd_dbus_job_service_handle_switchover(MigdDbusJob *iface, GDBusMethodInvocation *invocation)
{
	MigdDbusJobService *self = MIGD_DBUS_JOB_SERVICE(iface);

	migd_log_caller(invocation, G_LOG_LEVEL_INFO, migd_job_get_id(self->job), NULL,
			"job %s: switchover requested by", migd_job_get_id(self->job));
	migd_job_switchover_async(self->job, NULL, migd_dbus_job_service_switchover_cb, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
migd_dbus_job_service_start_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	GDBusMethodInvocation *invocation = user_data;
	GError *error = NULL;

	if (!migd_job_start_finish(MIGD_JOB(source), result, &error))
		migd_dbus_job_service_return_error(invocation, error);
	else
		g_dbus_method_invocation_return_value(invocation, NULL);
}

static gboolean
migd_dbus_job_service_handle_start(MigdDbusJob *iface, GDBusMethodInvocation *invocation)
{
	MigdDbusJobService *self = MIGD_DBUS_JOB_SERVICE(iface);

	migd_log_caller(invocation, G_LOG_LEVEL_INFO, migd_job_get_id(self->job), NULL,
			"job %s: start requested by", migd_job_get_id(self->job));
	migd_job_start_async(self->job, NULL, migd_dbus_job_service_start_cb, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
migd_dbus_job_service_handle_abandon(MigdDbusJob *iface, GDBusMethodInvocation *invocation)
{
	MigdDbusJobService *self = MIGD_DBUS_JOB_SERVICE(iface);
	GError *error = NULL;

	if (!migd_job_abandon(self->job, NULL, &error)) {
		migd_dbus_job_service_return_error(invocation, error);
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	migd_log_caller(invocation, G_LOG_LEVEL_MESSAGE, migd_job_get_id(self->job), NULL,
			"job %s: abandoned by", migd_job_get_id(self->job));
	migd_dbus_job_complete_abandon(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
migd_dbus_job_service_handle_rollback(MigdDbusJob *iface, GDBusMethodInvocation *invocation)
{
	MigdDbusJobService *self = MIGD_DBUS_JOB_SERVICE(iface);
	GError *error = NULL;

	if (!migd_job_rollback(self->job, &error)) {
		migd_dbus_job_service_return_error(invocation, error);
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	migd_log_caller(invocation, G_LOG_LEVEL_MESSAGE, migd_job_get_id(self->job), NULL,
			"job %s: rolled back by", migd_job_get_id(self->job));
	migd_dbus_job_complete_rollback(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
migd_dbus_job_service_sync_dirty_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	GDBusMethodInvocation *invocation = user_data;
	g_autoptr(GUnixFDList) out = NULL;
	GError *error = NULL;
	gint handle;
	gint fd = migd_job_sync_dirty_bitmap_finish(MIGD_JOB(source), result, &error);

	if (fd < 0) {
		migd_dbus_job_service_return_error(invocation, error);
		return;
	}
	out = g_unix_fd_list_new();
	handle = g_unix_fd_list_append(out, fd, &error);
	close(fd);
	if (handle < 0) {
		migd_dbus_job_service_return_error(invocation, error);
		return;
	}
	g_dbus_method_invocation_return_value_with_unix_fd_list(invocation,
								g_variant_new("(h)", handle), out);
}

static gboolean
migd_dbus_job_service_handle_sync_dirty_bitmap(MigdDbusJob *iface,
					       GDBusMethodInvocation *invocation,
					       GUnixFDList *fd_list, const gchar *device)
{
	MigdDbusJobService *self = MIGD_DBUS_JOB_SERVICE(iface);

	migd_job_sync_dirty_bitmap_async(self->job, device, NULL,
					 migd_dbus_job_service_sync_dirty_cb, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
migd_dbus_job_service_iface_init(MigdDbusJobIface *iface)
{
	iface->handle_cancel = migd_dbus_job_service_handle_cancel;
	iface->handle_switchover = migd_dbus_job_service_handle_switchover;
	iface->handle_start = migd_dbus_job_service_handle_start;
	iface->handle_abandon = migd_dbus_job_service_handle_abandon;
	iface->handle_rollback = migd_dbus_job_service_handle_rollback;
	iface->handle_sync_dirty_bitmap = migd_dbus_job_service_handle_sync_dirty_bitmap;
}

MigdJob *
migd_dbus_job_service_get_job(MigdDbusJobService *self)
{
	g_return_val_if_fail(MIGD_IS_DBUS_JOB_SERVICE(self), NULL);
	return self->job;
}

/* the generated dispatcher, called once the caller passed the authority (see the Manager's) */
static GDBusInterfaceMethodCallFunc migd_dbus_job_service_generated_method_call;

static void
migd_dbus_job_service_method_call(GDBusConnection *connection, const gchar *sender,
				  const gchar *object_path, const gchar *interface_name,
				  const gchar *method_name, GVariant *parameters,
				  GDBusMethodInvocation *invocation, gpointer user_data)
{
	MigdDbusJobService *self = MIGD_DBUS_JOB_SERVICE(user_data);

	migd_authority_dispatch(self->authority, G_DBUS_INTERFACE_SKELETON(self),
				migd_dbus_job_service_generated_method_call, invocation);
}

static GDBusInterfaceVTable *
migd_dbus_job_service_get_vtable(GDBusInterfaceSkeleton *skeleton)
{
	static GDBusInterfaceVTable vtable;
	static gsize once;

	if (g_once_init_enter(&once)) {
		vtable = *G_DBUS_INTERFACE_SKELETON_CLASS(migd_dbus_job_service_parent_class)
			      ->get_vtable(skeleton);
		migd_dbus_job_service_generated_method_call = vtable.method_call;
		vtable.method_call = migd_dbus_job_service_method_call;
		g_once_init_leave(&once, 1);
	}
	return &vtable;
}

static void
migd_dbus_job_service_init(MigdDbusJobService *self)
{
}

static void
migd_dbus_job_service_dispose(GObject *object)
{
	MigdDbusJobService *self = MIGD_DBUS_JOB_SERVICE(object);

	g_clear_handle_id(&self->sync_id, g_source_remove);
	g_clear_object(&self->job);
	g_clear_object(&self->authority);
	G_OBJECT_CLASS(migd_dbus_job_service_parent_class)->dispose(object);
}

static void
migd_dbus_job_service_class_init(MigdDbusJobServiceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = migd_dbus_job_service_dispose;
	G_DBUS_INTERFACE_SKELETON_CLASS(klass)->get_vtable = migd_dbus_job_service_get_vtable;
}

MigdDbusJobService *
migd_dbus_job_service_new(MigdJob *job, MigdAuthority *authority)
{
	MigdDbusJobService *self;

	g_return_val_if_fail(MIGD_IS_JOB(job), NULL);
	g_return_val_if_fail(MIGD_IS_AUTHORITY(authority), NULL);

	self = g_object_new(MIGD_TYPE_DBUS_JOB_SERVICE, NULL);
	self->job = g_object_ref(job);
	self->authority = g_object_ref(authority);
	migd_dbus_job_set_role(MIGD_DBUS_JOB(self),
			       migd_dbus_job_role_to_string(migd_job_get_role(job)));
	migd_dbus_job_set_message(MIGD_DBUS_JOB(self), "");
	migd_dbus_job_service_sync(self);
	if (!migd_job_is_finished(job)) {
		g_signal_connect_object(job, "completed",
					G_CALLBACK(migd_dbus_job_service_completed_cb), self, 0);
		/* a phase is news at once, even a short one the timer would miss */
		g_signal_connect_object(job, "notify::phase",
					G_CALLBACK(migd_dbus_job_service_sync), self,
					G_CONNECT_SWAPPED);
		/* Converged is what a VMM waits for before it pauses the guest */
		g_signal_connect_object(job, "notify::converged",
					G_CALLBACK(migd_dbus_job_service_sync), self,
					G_CONNECT_SWAPPED);
		self->sync_id = g_timeout_add(MIGD_DBUS_JOB_SYNC_INTERVAL_MS,
					      migd_dbus_job_service_sync_cb, self);
	}
	return self;
}
