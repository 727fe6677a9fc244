/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdLibvirtIncoming: libvirt's events of an incoming domain start or
 * abandon the devices its expectation received.
 */
#include "config.h"

#include "migd-libvirt-incoming.h"

#include <libvirt/libvirt.h>

#include "migd-error.h"

/* one incoming job whose migration id is (maybe) a domain's UUID */
typedef struct {
	MigdLibvirtIncoming *owner;
	gchar *uuid; /* the migration id, lower case: libvirt's UUID strings are */
	guint64 id;
	MigdJob *job;
	gulong phase_id;
	gulong completed_id;
	gchar *domain;	       /* the name from the last event, for the log */
	gboolean start_wanted; /* libvirt resumed the guest here */
	gboolean start_sent;   /* Job.Start was called */
	gboolean abandon_sent; /* the guest stopped: the devices were given up */
} MigdLvIncomingJob;

struct _MigdLibvirtIncoming {
	MigdManager *manager;
	gulong job_added_id;
	GHashTable *jobs;	   /* uuid -> MigdLvIncomingJob */
	GCancellable *cancellable; /* cancelled when freed: no Start reply reaches us then */
};

static void
migd_lv_incoming_job_free(gpointer data)
{
	MigdLvIncomingJob *e = data;

	g_clear_signal_handler(&e->phase_id, e->job);
	g_clear_signal_handler(&e->completed_id, e->job);
	g_clear_object(&e->job);
	g_free(e->uuid);
	g_free(e->domain);
	g_free(e);
}

static const gchar *
migd_lv_incoming_name(MigdLvIncomingJob *e)
{
	return e->domain != NULL ? e->domain : e->uuid;
}

static void
migd_lv_incoming_start_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdJob *job = MIGD_JOB(source);
	g_autoptr(GError) error = NULL;

	if (migd_job_start_finish(job, result, &error)) {
		g_message("libvirt runs the incoming domain %s: its devices run (job %s)",
			  migd_job_get_migration_id(job), migd_job_get_id(job));
		return;
	}
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return; /* shutting down: @user_data is gone */
	/* the guest already runs here: nothing can take that back from vfio-migd */
	g_critical("libvirt runs the incoming domain %s, but its devices could not start "
		   "(job %s): %s; the guest runs without them",
		   migd_job_get_migration_id(job), migd_job_get_id(job), error->message);
}

static void
migd_lv_incoming_start(MigdLvIncomingJob *e)
{
	if (e->start_sent || !e->start_wanted || e->abandon_sent ||
	    migd_job_get_phase(e->job) != MIGD_JOB_PHASE_HANDOVER)
		return;
	e->start_sent = TRUE;
	g_message("libvirt resumed the incoming domain %s: starting its devices (job %s)",
		  migd_lv_incoming_name(e), migd_job_get_id(e->job));
	migd_job_start_async(e->job, e->owner->cancellable, migd_lv_incoming_start_cb, e->owner);
}

static void
migd_lv_incoming_abandon(MigdLvIncomingJob *e, const gchar *why)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reason = NULL;

	if (e->abandon_sent)
		return;
	e->abandon_sent = TRUE;
	reason =
	    g_strdup_printf("libvirt %s the incoming domain %s", why, migd_lv_incoming_name(e));
	if (migd_job_abandon(e->job, reason, &error)) {
		g_message("libvirt %s the incoming domain %s: abandoned its devices (job %s)", why,
			  migd_lv_incoming_name(e), migd_job_get_id(e->job));
		return;
	}
	/* before the handover the engine may not know Abandon: a cancel resets too */
	if (migd_job_cancel(e->job))
		g_message("libvirt %s the incoming domain %s: cancelled job %s (%s)", why,
			  migd_lv_incoming_name(e), migd_job_get_id(e->job), error->message);
	else
		g_message("libvirt %s the incoming domain %s: job %s has already ended", why,
			  migd_lv_incoming_name(e), migd_job_get_id(e->job));
}

static void
migd_lv_incoming_phase_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	/* a resume that came before the destination loaded every device waits for it */
	migd_lv_incoming_start(user_data);
}

static void
migd_lv_incoming_completed_cb(MigdJob *job, gboolean success, const gchar *message,
			      gpointer user_data)
{
	MigdLvIncomingJob *e = user_data;

	if (!success && e->start_wanted && !e->abandon_sent)
		g_critical("libvirt runs the incoming domain %s, but its device job %s failed: %s",
			   migd_lv_incoming_name(e), migd_job_get_id(job), message);
	g_hash_table_remove(e->owner->jobs, e->uuid); /* frees @e */
}

void
migd_libvirt_incoming_add_job(MigdLibvirtIncoming *self, guint64 id, MigdJob *job)
{
	const gchar *migration_id = migd_job_get_migration_id(job);
	MigdLvIncomingJob *e;

	/* untagged, or started by itself: libvirt has nothing to say about it */
	if (migd_job_get_role(job) != MIGD_JOB_ROLE_DESTINATION || migration_id == NULL ||
	    migd_job_get_start_mode(job) != MIGD_START_MANUAL)
		return;
	e = g_new0(MigdLvIncomingJob, 1);
	e->owner = self;
	e->uuid = g_ascii_strdown(migration_id, -1);
	e->id = id;
	e->job = g_object_ref(job);
	e->phase_id =
	    g_signal_connect(job, "notify::phase", G_CALLBACK(migd_lv_incoming_phase_cb), e);
	e->completed_id =
	    g_signal_connect(job, "completed", G_CALLBACK(migd_lv_incoming_completed_cb), e);
	g_message("incoming job %s carries migration %s: it starts when libvirt resumes that "
		  "domain here",
		  migd_job_get_id(job), migration_id);
	g_hash_table_replace(self->jobs, e->uuid, e);
}

void
migd_libvirt_incoming_handle_event(MigdLibvirtIncoming *self, const gchar *uuid, const gchar *name,
				   gint event, gint detail)
{
	g_autofree gchar *key = g_ascii_strdown(uuid, -1);
	MigdLvIncomingJob *e = g_hash_table_lookup(self->jobs, key);
	g_autoptr(GError) error = NULL;

	if (e == NULL) {
		/* the incoming migration failed before the source's devices came */
		if (event == VIR_DOMAIN_EVENT_STOPPED &&
		    migd_manager_cancel_expectation(self->manager, key, &error))
			g_message("libvirt stopped the incoming domain %s (detail %d): cancelled "
				  "its expectation",
				  name, detail);
		return;
	}
	g_free(e->domain);
	e->domain = g_strdup(name);
	switch (event) {
	case VIR_DOMAIN_EVENT_RESUMED:
		/* RESUMED_MIGRATED after Finish, or a later resume of a paused arrival */
		e->start_wanted = TRUE;
		if (migd_job_get_phase(e->job) != MIGD_JOB_PHASE_HANDOVER)
			g_message("libvirt resumed the incoming domain %s (detail %d): its devices "
				  "start once job %s loaded them",
				  name, detail, migd_job_get_id(e->job));
		migd_lv_incoming_start(e);
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		/* STOPPED_FAILED: the incoming migration failed; or destroyed meanwhile */
		migd_lv_incoming_abandon(
		    e, detail == VIR_DOMAIN_EVENT_STOPPED_FAILED ? "failed to receive" : "stopped");
		break;
	default:
		/* STARTED_MIGRATED (paused, at Prepare), SUSPENDED_*: nothing to do */
		break;
	}
}

gchar **
migd_libvirt_incoming_list_waiting(MigdLibvirtIncoming *self)
{
	GPtrArray *uuids = g_ptr_array_new();
	GHashTableIter iter;
	MigdLvIncomingJob *e;

	g_hash_table_iter_init(&iter, self->jobs);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&e)) {
		if (!e->start_sent && !e->abandon_sent)
			g_ptr_array_add(uuids, g_strdup(e->uuid));
	}
	g_ptr_array_add(uuids, NULL);
	return (gchar **)g_ptr_array_free(uuids, FALSE);
}

guint
migd_libvirt_incoming_get_n_jobs(MigdLibvirtIncoming *self)
{
	return g_hash_table_size(self->jobs);
}

static void
migd_lv_incoming_job_added_cb(MigdManager *manager, guint64 id, MigdJob *job, gpointer user_data)
{
	migd_libvirt_incoming_add_job(user_data, id, job);
}

MigdLibvirtIncoming *
migd_libvirt_incoming_new(MigdManager *manager)
{
	MigdLibvirtIncoming *self = g_new0(MigdLibvirtIncoming, 1);

	self->manager = g_object_ref(manager);
	self->jobs =
	    g_hash_table_new_full(g_str_hash, g_str_equal, NULL, migd_lv_incoming_job_free);
	self->cancellable = g_cancellable_new();
	self->job_added_id =
	    g_signal_connect(manager, "job-added", G_CALLBACK(migd_lv_incoming_job_added_cb), self);
	return self;
}

void
migd_libvirt_incoming_free(MigdLibvirtIncoming *self)
{
	if (self == NULL)
		return;
	g_cancellable_cancel(self->cancellable);
	g_clear_signal_handler(&self->job_added_id, self->manager);
	g_clear_pointer(&self->jobs, g_hash_table_unref);
	g_clear_object(&self->cancellable);
	g_clear_object(&self->manager);
	g_free(self);
}
