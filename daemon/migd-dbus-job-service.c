/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "migd-dbus-job-service.h"
#include "migd-error.h"

/* the engine may update per chunk; D-Bus clients see at most 5 updates a second */
#define MIGD_DBUS_JOB_SYNC_INTERVAL_MS 200

struct _MigdDbusJobService {
	MigdDbusJobSkeleton parent_instance;
	MigdJob *job;
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
	g_info("job %s: cancel requested by %s", migd_job_get_id(self->job),
	       g_dbus_method_invocation_get_sender(invocation));
	migd_dbus_job_complete_cancel(iface, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
migd_dbus_job_service_iface_init(MigdDbusJobIface *iface)
{
	iface->handle_cancel = migd_dbus_job_service_handle_cancel;
}

MigdJob *
migd_dbus_job_service_get_job(MigdDbusJobService *self)
{
	g_return_val_if_fail(MIGD_IS_DBUS_JOB_SERVICE(self), NULL);
	return self->job;
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
	G_OBJECT_CLASS(migd_dbus_job_service_parent_class)->dispose(object);
}

static void
migd_dbus_job_service_class_init(MigdDbusJobServiceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = migd_dbus_job_service_dispose;
}

MigdDbusJobService *
migd_dbus_job_service_new(MigdJob *job)
{
	MigdDbusJobService *self;

	g_return_val_if_fail(MIGD_IS_JOB(job), NULL);

	self = g_object_new(MIGD_TYPE_DBUS_JOB_SERVICE, NULL);
	self->job = g_object_ref(job);
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
		self->sync_id = g_timeout_add(MIGD_DBUS_JOB_SYNC_INTERVAL_MS,
					      migd_dbus_job_service_sync_cb, self);
	}
	return self;
}
