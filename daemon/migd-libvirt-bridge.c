/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdLibvirtBridge: libvirt's domain migrations drive the device migrations
 * (the source side here; the destination side in migd-libvirt-incoming.c).
 */
#include "config.h"

#include "migd-libvirt-bridge.h"

#include <libvirt/libvirt.h>

#include "migd-error.h"
#include "migd-libvirt-incoming.h"
#include "migd-libvirt-loop.h"
#include "migd-plugin.h"

/* one outgoing domain's device job, from libvirt's start until the job ends */
typedef struct {
	gint ref_count;		   /* the table's, and an in-flight Switchover's */
	MigdLibvirtBridge *bridge; /* NULL once the entry left the table */
	gchar *uuid;
	gchar *name;
	guint64 id;
	MigdJob *job;
	gulong completed_id;
	gboolean switchover_sent; /* Job.Switchover was called: Rollback from now on */
	gboolean libvirt_ended;	  /* libvirt's job finished or failed: ours only follows */
	gboolean libvirt_done;	  /* ... finished: the guest runs on the destination */
	gboolean libvirt_failed;  /* ... failed: the job's failure is our rollback */
	gboolean abort_sent;	  /* libvirt's job was asked to abort */
} MigdLvOutgoing;

struct _MigdLibvirtBridge {
	MigdManager *manager;
	MigdLibvirtWatcher *watcher;
	MigdLibvirtIncoming *incoming;
	MigdMigrateOptions *options; /* the transport to the peers, the handover timeout */
	GHashTable *jobs;	     /* domain uuid -> MigdLvOutgoing */
	gboolean read_write;
	GCancellable *cancellable; /* cancelled when freed: no state answer reaches us then */
	MigdLibvirtBridgeMigrateFunc migrate_func; /* tests */
	MigdLibvirtBridgeAbortFunc abort_func;
	gpointer test_data;
};

static MigdLvOutgoing *
migd_lv_outgoing_ref(MigdLvOutgoing *e)
{
	g_atomic_int_inc(&e->ref_count);
	return e;
}

static void
migd_lv_outgoing_unref(gpointer data)
{
	MigdLvOutgoing *e = data;

	if (!g_atomic_int_dec_and_test(&e->ref_count))
		return;
	g_clear_object(&e->job);
	g_free(e->uuid);
	g_free(e->name);
	g_free(e);
}

/* the table's value destroy: the entry stops following its job */
static void
migd_lv_outgoing_detach(gpointer data)
{
	MigdLvOutgoing *e = data;

	g_clear_signal_handler(&e->completed_id, e->job);
	e->bridge = NULL;
	migd_lv_outgoing_unref(e);
}

static void
migd_lv_abort_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autofree gchar *what = user_data;
	g_autoptr(GError) error = NULL;

	if (migd_libvirt_watcher_abort_job_finish(MIGD_LIBVIRT_WATCHER(source), result, &error))
		g_message("libvirt aborted its migration of %s", what);
	else
		g_warning("libvirt did not abort its migration of %s: %s", what, error->message);
}

/* the devices cannot follow: libvirt must not finish the migration without them */
static void
migd_lv_abort_libvirt(MigdLvOutgoing *e, const gchar *why)
{
	MigdLibvirtBridge *self = e->bridge;

	if (e->abort_sent || e->libvirt_ended)
		return;
	e->abort_sent = TRUE; /* said once, whatever the answer */
	if (!self->read_write) {
		g_warning("device job %" G_GUINT64_FORMAT " of domain %s %s, but [libvirt] "
			  "read-write is off: libvirt may finish the migration without the devices",
			  e->id, e->name, why);
		return;
	}
	g_message("device job %" G_GUINT64_FORMAT " of domain %s %s: aborting libvirt's "
		  "migration",
		  e->id, e->name, why);
	if (self->abort_func != NULL)
		self->abort_func(e->uuid, self->test_data);
	else
		migd_libvirt_watcher_abort_job(self->watcher, e->uuid, NULL, migd_lv_abort_done,
					       g_strdup(e->name));
}

static void
migd_lv_job_completed_cb(MigdJob *job, gboolean success, const gchar *message, gpointer user_data)
{
	MigdLvOutgoing *e = user_data;
	MigdLibvirtBridge *self = e->bridge;

	if (success)
		g_message("device job %" G_GUINT64_FORMAT " of domain %s handed over: %s", e->id,
			  e->name, message);
	else if (e->libvirt_failed)
		g_message("device job %" G_GUINT64_FORMAT " of domain %s ended with libvirt's "
			  "failed migration (%s): %s",
			  e->id, e->name,
			  migd_job_get_rolled_back(job) ? "rolled back" : "cancelled", message);
	else if (e->libvirt_done)
		/* the guest runs on the destination; its devices did not get there */
		g_critical("libvirt migrated domain %s, but its device job %" G_GUINT64_FORMAT
			   " failed: %s",
			   e->name, e->id, message);
	else if (e->libvirt_ended)
		g_warning("device job %" G_GUINT64_FORMAT " of domain %s failed after libvirt's "
			  "migration ended: %s",
			  e->id, e->name, message);
	else
		migd_lv_abort_libvirt(e, "failed");
	g_hash_table_remove(self->jobs, e->uuid); /* @e may be gone after this */
}

static void
migd_libvirt_bridge_started_cb(MigdLibvirtWatcher *watcher, const MigdLibvirtMigration *m,
			       gpointer user_data)
{
	MigdLibvirtBridge *self = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdJob) job = NULL;
	MigdLvOutgoing *e;
	guint64 id = 0;

	if (m->late) {
		/* seen only at its end: the guest already switched over without its devices */
		g_warning("libvirt migrated domain %s before vfio-migd saw it start: its devices "
			  "were not migrated",
			  m->name);
		return;
	}
	g_free(self->options->requester);
	self->options->requester = g_strdup_printf("libvirt domain %s", m->name);
	/* the destination's hook expects the domain's UUID; the VMM (libvirt) switches over */
	g_free(self->options->migration_id);
	self->options->migration_id = g_strdup(m->uuid);
	self->options->switchover = MIGD_SWITCHOVER_MANUAL;
	if (self->migrate_func != NULL) {
		job = self->migrate_func((const gchar *const *)m->map->devices, m->map->peer,
					 self->options, &id, self->test_data, &error);
	} else {
		id = migd_manager_migrate(self->manager, (const gchar *const *)m->map->devices,
					  m->map->peer, self->options, &error);
		if (id != 0)
			job = g_object_ref(migd_manager_get_job(self->manager, id));
	}
	if (job == NULL) {
		g_warning("libvirt migrates domain %s, but its devices cannot follow: %s", m->name,
			  error->message);
		return;
	}
	e = g_new0(MigdLvOutgoing, 1);
	e->ref_count = 1;
	e->bridge = self;
	e->uuid = g_strdup(m->uuid);
	e->name = g_strdup(m->name);
	e->id = id;
	e->job = g_steal_pointer(&job);
	g_message("libvirt migrates domain %s: device job %" G_GUINT64_FORMAT " (switchover "
		  "manual, migration id %s) to %s",
		  m->name, id, m->uuid, m->map->peer);
	/* a job that already failed (it may complete synchronously) reports at once */
	g_hash_table_replace(self->jobs, e->uuid, e);
	e->completed_id =
	    g_signal_connect(e->job, "completed", G_CALLBACK(migd_lv_job_completed_cb), e);
	if (migd_job_get_phase(e->job) == MIGD_JOB_PHASE_FAILED)
		migd_lv_job_completed_cb(e->job, FALSE, "failed at once", e);
}

static void
migd_lv_switchover_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdLvOutgoing *e = user_data;
	g_autoptr(GError) error = NULL;

	if (migd_job_switchover_finish(MIGD_JOB(source), result, &error)) {
		g_message("device job %" G_GUINT64_FORMAT " of domain %s switched over: the "
			  "destination holds every device",
			  e->id, e->name);
	} else if (e->bridge == NULL) {
		g_message("device job %" G_GUINT64_FORMAT " of domain %s: switchover ended: %s",
			  e->id, e->name, error->message);
	} else {
		/* the devices run here again: the guest must too */
		g_warning("device job %" G_GUINT64_FORMAT " of domain %s could not switch over: "
			  "%s",
			  e->id, e->name, error->message);
		if (!e->libvirt_failed)
			migd_lv_abort_libvirt(e, "could not switch over");
	}
	migd_lv_outgoing_unref(e);
}

static void
migd_libvirt_bridge_switchover_cb(MigdLibvirtWatcher *watcher, const MigdLibvirtMigration *m,
				  gpointer user_data)
{
	MigdLibvirtBridge *self = user_data;
	MigdLvOutgoing *e = g_hash_table_lookup(self->jobs, m->uuid);

	if (e == NULL) {
		g_warning("libvirt paused domain %s for the switchover: it has no device job",
			  m->name);
		return;
	}
	if (e->switchover_sent)
		return;
	e->switchover_sent = TRUE;
	/* post-copy: the guest already runs on the destination; its devices must follow */
	g_message("libvirt paused domain %s for the switchover%s: switching device job "
		  "%" G_GUINT64_FORMAT " over",
		  m->name, m->postcopy ? " (post-copy)" : "", e->id);
	migd_job_switchover_async(e->job, NULL, migd_lv_switchover_done, migd_lv_outgoing_ref(e));
}

/* libvirt's migration failed: the guest stays (or resumes) here, so do its devices */
static void
migd_lv_take_back(MigdLvOutgoing *e, const gchar *why)
{
	g_autoptr(GError) error = NULL;

	e->libvirt_failed = TRUE;
	if (e->switchover_sent) {
		if (migd_job_rollback(e->job, &error)) {
			g_message("libvirt's migration of %s ended (%s): rolled device job "
				  "%" G_GUINT64_FORMAT " back",
				  e->name, why, e->id);
			return;
		}
		g_message("libvirt's migration of %s ended (%s): device job %" G_GUINT64_FORMAT
			  " cannot roll back (%s): cancelling it",
			  e->name, why, e->id, error->message);
	}
	/* before the switchover the devices never stopped: a cancel takes them back */
	if (migd_job_cancel(e->job))
		g_message("libvirt's migration of %s ended (%s): cancelled device job "
			  "%" G_GUINT64_FORMAT,
			  e->name, why, e->id);
	else
		g_message("libvirt's migration of %s ended (%s): device job %" G_GUINT64_FORMAT
			  " had already ended",
			  e->name, why, e->id);
}

static void
migd_libvirt_bridge_failed_cb(MigdLibvirtWatcher *watcher, const MigdLibvirtMigration *m,
			      MigdLibvirtEnd end, const gchar *message, gpointer user_data)
{
	MigdLibvirtBridge *self = user_data;
	MigdLvOutgoing *e = g_hash_table_lookup(self->jobs, m->uuid);
	g_autofree gchar *why =
	    g_strdup_printf("%s%s%s", migd_libvirt_end_to_string(end), message != NULL ? ": " : "",
			    message != NULL ? message : "");

	if (e == NULL) {
		g_message("libvirt's migration of %s ended (%s); it had no device job", m->name,
			  why);
		return;
	}
	e->libvirt_ended = TRUE;
	if (end == MIGD_LIBVIRT_END_POSTCOPY_FAILED) {
		/* the guest's state is split between the hosts: rolling back would lose it */
		g_critical("libvirt's post-copy migration of %s failed: its device job "
			   "%" G_GUINT64_FORMAT " is left as it is until libvirt recovers the "
			   "migration",
			   m->name, e->id);
		return;
	}
	if (end == MIGD_LIBVIRT_END_UNKNOWN) {
		/* the domain vanished while we were disconnected: the device job decides */
		g_warning("libvirt lost track of %s: its device job %" G_GUINT64_FORMAT
			  " decides by itself",
			  m->name, e->id);
		return;
	}
	migd_lv_take_back(e, why);
}

static void
migd_libvirt_bridge_finished_cb(MigdLibvirtWatcher *watcher, const MigdLibvirtMigration *m,
				gpointer user_data)
{
	MigdLibvirtBridge *self = user_data;
	MigdLvOutgoing *e = g_hash_table_lookup(self->jobs, m->uuid);

	if (e == NULL) {
		g_message("libvirt migrated domain %s", m->name);
		return;
	}
	/* the device job ends by itself: handed over when the destination starts */
	e->libvirt_ended = TRUE;
	e->libvirt_done = TRUE;
	if (!e->switchover_sent) {
		/* the pause went unseen (lost while disconnected): late beats never */
		g_warning("libvirt migrated domain %s without a switchover vfio-migd saw: "
			  "switching device job %" G_GUINT64_FORMAT " over now",
			  m->name, e->id);
		e->switchover_sent = TRUE;
		migd_job_switchover_async(e->job, NULL, migd_lv_switchover_done,
					  migd_lv_outgoing_ref(e));
		return;
	}
	g_message("libvirt migrated domain %s; device job %" G_GUINT64_FORMAT " is in phase %s",
		  m->name, e->id, migd_job_phase_to_string(migd_job_get_phase(e->job)));
}

/* an incoming domain's state, asked after a reconnection, as the event it implies */
static void
migd_lv_incoming_state_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autofree gchar *uuid = user_data;
	g_autoptr(GError) error = NULL;
	MigdLibvirtBridge *self;
	gint state = 0, reason = 0;

	if (!migd_libvirt_watcher_get_state_finish(MIGD_LIBVIRT_WATCHER(source), result, &state,
						   &reason, &error)) {
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			return; /* the bridge is gone */
		if (!g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT)) {
			g_warning("incoming domain %s: %s", uuid, error->message);
			return;
		}
		state = VIR_DOMAIN_SHUTOFF; /* no such domain any more */
	}
	self = g_object_get_data(source, "migd-libvirt-bridge");
	if (self == NULL)
		return;
	if (state == VIR_DOMAIN_RUNNING)
		migd_libvirt_incoming_handle_event(self->incoming, uuid, uuid,
						   VIR_DOMAIN_EVENT_RESUMED, -1);
	else if (state == VIR_DOMAIN_SHUTOFF || state == VIR_DOMAIN_CRASHED)
		migd_libvirt_incoming_handle_event(self->incoming, uuid, uuid,
						   VIR_DOMAIN_EVENT_STOPPED, -1);
}

static void
migd_libvirt_bridge_connection_cb(MigdLibvirtWatcher *watcher, gboolean connected,
				  const gchar *message, gpointer user_data)
{
	MigdLibvirtBridge *self = user_data;
	g_auto(GStrv) waiting = NULL;

	if (!connected) {
		g_warning("libvirt connection: %s", message != NULL ? message : "lost");
		return;
	}
	g_message("connected to libvirt");
	/* a resume or stop of an incoming domain may have been missed meanwhile */
	waiting = migd_libvirt_incoming_list_waiting(self->incoming);
	for (guint i = 0; waiting[i] != NULL; i++)
		migd_libvirt_watcher_get_state(watcher, waiting[i], self->cancellable,
					       migd_lv_incoming_state_done, g_strdup(waiting[i]));
}

static void
migd_libvirt_bridge_lifecycle_cb(MigdLibvirtWatcher *watcher, const MigdLibvirtInput *input,
				 gpointer user_data)
{
	MigdLibvirtBridge *self = user_data;

	migd_libvirt_incoming_handle_event(self->incoming, input->uuid, input->name, input->event,
					   input->detail);
}

static MigdMigrateOptions *
migd_libvirt_bridge_options(GKeyFile *config, gboolean *read_write, GError **error)
{
	const gchar *const known[] = {"uri",  "read-write", "plain", "insecure-plain-tcp",
				      "cert", "key",	    "ca",    "handover-timeout-s",
				      NULL};
	g_autoptr(MigdMigrateOptions) options = migd_migrate_options_new();
	gchar **files[] = {&options->transport.cert_file, &options->transport.key_file,
			   &options->transport.ca_file};
	const gchar *const file_keys[] = {"cert", "key", "ca"};
	guint64 handover = 0;

	if (!migd_plugin_config_check_keys(config, "libvirt", known, error)) {
		g_prefix_error(error, "[libvirt]: ");
		return NULL;
	}
	if (!migd_plugin_config_get_boolean(config, "libvirt", "read-write", read_write, error) ||
	    !migd_plugin_config_get_boolean(config, "libvirt", "plain", &options->transport.plain,
					    error) ||
	    !migd_plugin_config_get_boolean(config, "libvirt", "insecure-plain-tcp",
					    &options->transport.insecure_plain_tcp, error) ||
	    !migd_plugin_config_get_uint(config, "libvirt", "handover-timeout-s", 1, 3600,
					 &handover, error)) {
		g_prefix_error(error, "[libvirt] ");
		return NULL;
	}
	options->handover_timeout_s = (guint)handover;
	for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
		*files[i] = migd_plugin_config_get_string(config, "libvirt", file_keys[i], NULL);
		/* the same rule as Migrate's options, told at start rather than at migration */
		if (*files[i] != NULL && (*files[i])[0] == '\0') {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[libvirt] option '%s' must not be empty", file_keys[i]);
			return NULL;
		}
	}
	return g_steal_pointer(&options);
}

MigdLibvirtBridge *
migd_libvirt_bridge_new(GKeyFile *config, MigdManager *manager, GError **error)
{
	g_autoptr(MigdLibvirtBridge) self = NULL;
	g_autoptr(GPtrArray) maps = NULL;
	g_autofree gchar *uri = NULL;
	const MigdLibvirtWatcherCallbacks callbacks = {
	    .started = migd_libvirt_bridge_started_cb,
	    .switchover = migd_libvirt_bridge_switchover_cb,
	    .finished = migd_libvirt_bridge_finished_cb,
	    .failed = migd_libvirt_bridge_failed_cb,
	    .connection_changed = migd_libvirt_bridge_connection_cb,
	    .lifecycle = migd_libvirt_bridge_lifecycle_cb,
	};

	if (!g_key_file_has_group(config, "libvirt"))
		return NULL;
	uri = migd_plugin_config_get_string(config, "libvirt", "uri", NULL);
	if (uri == NULL || uri[0] == '\0') {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[libvirt]: uri= is required (e.g. qemu:///system)");
		return NULL;
	}
	self = g_new0(MigdLibvirtBridge, 1);
	self->manager = g_object_ref(manager);
	self->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, migd_lv_outgoing_detach);
	self->options = migd_libvirt_bridge_options(config, &self->read_write, error);
	if (self->options == NULL)
		return NULL;
	maps = migd_libvirt_domain_maps_from_key_file(config, error);
	if (maps == NULL)
		return NULL;
	if (!migd_libvirt_loop_is_registered() && !migd_libvirt_loop_register(error))
		return NULL;
	self->incoming = migd_libvirt_incoming_new(manager);
	self->cancellable = g_cancellable_new();
	self->watcher = migd_libvirt_watcher_new(uri, maps,
						 self->read_write ? MIGD_LIBVIRT_WATCHER_READ_WRITE
								  : MIGD_LIBVIRT_WATCHER_NONE,
						 &callbacks, self);
	g_object_set_data(G_OBJECT(self->watcher), "migd-libvirt-bridge", self);
	if (!migd_libvirt_watcher_start(self->watcher, error))
		return NULL;
	g_message("following libvirt at %s: outgoing migrations of %u domain(s), incoming "
		  "migrations expected by the hook",
		  uri, maps->len);
	return g_steal_pointer(&self);
}

void
migd_libvirt_bridge_set_test_funcs(MigdLibvirtBridge *self, MigdLibvirtBridgeMigrateFunc migrate,
				   MigdLibvirtBridgeAbortFunc abort, gpointer user_data)
{
	self->migrate_func = migrate;
	self->abort_func = abort;
	self->test_data = user_data;
}

MigdLibvirtWatcher *
migd_libvirt_bridge_get_watcher(MigdLibvirtBridge *self)
{
	return self->watcher;
}

void
migd_libvirt_bridge_free(MigdLibvirtBridge *self)
{
	if (self == NULL)
		return;
	if (self->cancellable != NULL)
		g_cancellable_cancel(self->cancellable);
	if (self->watcher != NULL) {
		g_object_set_data(G_OBJECT(self->watcher), "migd-libvirt-bridge", NULL);
		migd_libvirt_watcher_stop(self->watcher);
		g_object_unref(self->watcher);
	}
	g_clear_object(&self->cancellable);
	g_clear_pointer(&self->incoming, migd_libvirt_incoming_free);
	g_clear_pointer(&self->options, migd_migrate_options_free);
	g_clear_pointer(&self->jobs, g_hash_table_unref);
	g_clear_object(&self->manager);
	g_free(self);
}
