/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "migd-error.h"
#include "migd-job.h"

struct _MigdJob {
	GObject parent_instance;
	gchar *id;
	MigdJobRole role;
	MigdJobPhase phase;
	gdouble progress;
	guint64 bytes;
	guint64 rate;
	guint64 downtime_us;
	guint64 expected_downtime_us;
	guint precopy_rounds;
	guint64 dirty_pages;
	guint64 dirty_wire_bytes;
	guint n_devices;
	gboolean finished;
	gboolean success;
	gchar *message;
	gchar *migration_id;
	MigdSwitchoverMode switchover_mode;
	MigdStartMode start_mode;
	gboolean converged;
	gboolean rolled_back;
	gboolean cancel_requested; /* migd_job_cancel() ran: a failure is the operator's cancel */
	const gchar *outcome;	   /* static; "" until complete */
	gint64 devices_stopped_at;
	gint64 devices_started_at;
	GStrv device_names;
	GArray *streams; /* MigdJobStream, by device index */
	const MigdJobControl *control;
	gpointer engine;
};

G_DEFINE_TYPE(MigdJob, migd_job, G_TYPE_OBJECT)

enum { SIGNAL_COMPLETED, SIGNAL_CANCEL_REQUESTED, SIGNAL_LAST };
static guint migd_job_signals[SIGNAL_LAST];

enum {
	PROP_0,
	PROP_PHASE,
	PROP_PROGRESS,
	PROP_BYTES,
	PROP_RATE,
	PROP_DOWNTIME,
	PROP_EXPECTED_DOWNTIME,
	PROP_PRECOPY_ROUNDS,
	PROP_DIRTY_PAGES,
	PROP_DIRTY_WIRE_BYTES,
	PROP_CONVERGED,
	PROP_LAST
};
static GParamSpec *migd_job_props[PROP_LAST];

static const gchar *const migd_job_phase_names[] = {
    [MIGD_JOB_PHASE_CONNECTING] = "connecting", [MIGD_JOB_PHASE_NEGOTIATING] = "negotiating",
    [MIGD_JOB_PHASE_PRECOPY] = "precopy",	[MIGD_JOB_PHASE_SWITCHOVER] = "switchover",
    [MIGD_JOB_PHASE_STOPCOPY] = "stopcopy",	[MIGD_JOB_PHASE_COMMIT] = "commit",
    [MIGD_JOB_PHASE_HANDOVER] = "handover",	[MIGD_JOB_PHASE_ROLLBACK] = "rollback",
    [MIGD_JOB_PHASE_COMPLETED] = "completed",	[MIGD_JOB_PHASE_FAILED] = "failed",
};
G_STATIC_ASSERT(G_N_ELEMENTS(migd_job_phase_names) == MIGD_JOB_PHASE_LAST);

const gchar *
migd_job_phase_to_string(MigdJobPhase phase)
{
	if ((guint)phase >= MIGD_JOB_PHASE_LAST)
		return "unknown";
	return migd_job_phase_names[phase];
}

gboolean
migd_switchover_mode_from_string(const gchar *str, MigdSwitchoverMode *mode, GError **error)
{
	if (g_strcmp0(str, "auto") == 0)
		*mode = MIGD_SWITCHOVER_AUTO;
	else if (g_strcmp0(str, "manual") == 0)
		*mode = MIGD_SWITCHOVER_MANUAL;
	else {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "switchover must be \"auto\" or \"manual\", not \"%s\"", str);
		return FALSE;
	}
	return TRUE;
}

gboolean
migd_start_mode_from_string(const gchar *str, MigdStartMode *mode, GError **error)
{
	if (g_strcmp0(str, "auto") == 0)
		*mode = MIGD_START_AUTO;
	else if (g_strcmp0(str, "manual") == 0)
		*mode = MIGD_START_MANUAL;
	else {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "start must be \"auto\" or \"manual\", not \"%s\"", str);
		return FALSE;
	}
	return TRUE;
}

const gchar *
migd_switchover_mode_to_string(MigdSwitchoverMode mode)
{
	return mode == MIGD_SWITCHOVER_MANUAL ? "manual" : "auto";
}

const gchar *
migd_start_mode_to_string(MigdStartMode mode)
{
	return mode == MIGD_START_MANUAL ? "manual" : "auto";
}

MigdJob *
migd_job_new(MigdJobRole role, const gchar *id)
{
	MigdJob *self = g_object_new(MIGD_TYPE_JOB, NULL);
	self->role = role;
	self->id = g_strdup(id);
	/* structured: a log writer may key on the event and the job
	 * (docs/ABI/testing/journal-fields) */
	g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_INFO, "VFIO_MIGD_EVENT", "job-started",
			 "VFIO_MIGD_JOB", self->id, "MESSAGE", "job %s: started (%s)", self->id,
			 role == MIGD_JOB_ROLE_SOURCE ? "source" : "destination");
	return self;
}

const gchar *
migd_job_get_id(MigdJob *self)
{
	return self->id;
}

void
migd_job_set_id(MigdJob *self, const gchar *id)
{
	g_free(self->id);
	self->id = g_strdup(id);
}

MigdJobRole
migd_job_get_role(MigdJob *self)
{
	return self->role;
}

MigdJobPhase
migd_job_get_phase(MigdJob *self)
{
	return self->phase;
}

gdouble
migd_job_get_progress(MigdJob *self)
{
	return self->progress;
}

guint64
migd_job_get_bytes(MigdJob *self)
{
	return self->bytes;
}

guint64
migd_job_get_rate(MigdJob *self)
{
	return self->rate;
}

guint64
migd_job_get_downtime_us(MigdJob *self)
{
	return self->downtime_us;
}

guint64
migd_job_get_expected_downtime_us(MigdJob *self)
{
	return self->expected_downtime_us;
}

guint
migd_job_get_precopy_rounds(MigdJob *self)
{
	return self->precopy_rounds;
}

guint
migd_job_get_n_devices(MigdJob *self)
{
	return self->n_devices;
}

gboolean
migd_job_is_finished(MigdJob *self)
{
	return self->finished;
}

gboolean
migd_job_get_success(MigdJob *self)
{
	return self->success;
}

const gchar *
migd_job_get_message(MigdJob *self)
{
	return self->message;
}

void
migd_job_set_phase(MigdJob *self, MigdJobPhase phase)
{
	if (self->finished || self->phase == phase)
		return;
	g_debug("job %s: phase %s", self->id, migd_job_phase_to_string(phase));
	self->phase = phase;
	g_object_notify_by_pspec(G_OBJECT(self), migd_job_props[PROP_PHASE]);
}

void
migd_job_set_n_devices(MigdJob *self, guint n_devices)
{
	self->n_devices = n_devices;
}

void
migd_job_update(MigdJob *self, gdouble progress, guint64 bytes, guint64 rate)
{
	progress = CLAMP(progress, 0.0, 1.0);
	if (progress != self->progress) {
		self->progress = progress;
		g_object_notify_by_pspec(G_OBJECT(self), migd_job_props[PROP_PROGRESS]);
	}
	if (bytes != self->bytes) {
		self->bytes = bytes;
		g_object_notify_by_pspec(G_OBJECT(self), migd_job_props[PROP_BYTES]);
	}
	if (rate != self->rate) {
		self->rate = rate;
		g_object_notify_by_pspec(G_OBJECT(self), migd_job_props[PROP_RATE]);
	}
}

void
migd_job_set_expected_downtime_us(MigdJob *self, guint64 us)
{
	if (us == self->expected_downtime_us)
		return;
	self->expected_downtime_us = us;
	g_object_notify_by_pspec(G_OBJECT(self), migd_job_props[PROP_EXPECTED_DOWNTIME]);
}

void
migd_job_set_downtime_us(MigdJob *self, guint64 us)
{
	if (us == self->downtime_us)
		return;
	self->downtime_us = us;
	g_object_notify_by_pspec(G_OBJECT(self), migd_job_props[PROP_DOWNTIME]);
}

void
migd_job_set_precopy_rounds(MigdJob *self, guint rounds)
{
	if (rounds == self->precopy_rounds)
		return;
	self->precopy_rounds = rounds;
	g_object_notify_by_pspec(G_OBJECT(self), migd_job_props[PROP_PRECOPY_ROUNDS]);
}

void
migd_job_add_dirty(MigdJob *self, guint64 pages, guint64 wire_bytes)
{
	self->dirty_pages += pages;
	self->dirty_wire_bytes += wire_bytes;
	g_object_notify_by_pspec(G_OBJECT(self), migd_job_props[PROP_DIRTY_PAGES]);
	g_object_notify_by_pspec(G_OBJECT(self), migd_job_props[PROP_DIRTY_WIRE_BYTES]);
}

guint64
migd_job_get_dirty_pages(MigdJob *self)
{
	return self->dirty_pages;
}

guint64
migd_job_get_dirty_wire_bytes(MigdJob *self)
{
	return self->dirty_wire_bytes;
}

void
migd_job_complete(MigdJob *self, gboolean success, const gchar *message)
{
	if (self->finished)
		return;
	/*
	 * set before the phase, so whoever reacts to the final phase sees it; the
	 * operator's cancel wins: its rollback is how a cancel ends, not another outcome
	 */
	if (success)
		self->outcome = "completed";
	else if (self->cancel_requested)
		self->outcome = "cancelled";
	else if (self->rolled_back)
		self->outcome = "rolled-back";
	else
		self->outcome = "failed";
	migd_job_set_phase(self, success ? MIGD_JOB_PHASE_COMPLETED : MIGD_JOB_PHASE_FAILED);
	if (success)
		migd_job_update(self, 1.0, self->bytes, 0);
	self->finished = TRUE;
	/* the engine goes away after this: no control reaches it any more */
	self->control = NULL;
	self->engine = NULL;
	self->success = success;
	self->message = g_strdup(message != NULL ? message : "");
	/* the same text as g_message/g_warning, with fields a log writer may key on */
	if (success)
		g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "VFIO_MIGD_EVENT",
				 "job-completed", "VFIO_MIGD_JOB", self->id, "MESSAGE",
				 "job %s: completed: %s", self->id, self->message);
	else
		g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "VFIO_MIGD_EVENT",
				 self->rolled_back ? "job-rolled-back" : "job-failed",
				 "VFIO_MIGD_JOB", self->id, "MESSAGE", "job %s: failed: %s",
				 self->id, self->message);
	g_signal_emit(self, migd_job_signals[SIGNAL_COMPLETED], 0, success, self->message);
}

const gchar *
migd_job_get_outcome(MigdJob *self)
{
	return self->outcome;
}

void
migd_job_set_cancelled(MigdJob *self)
{
	self->cancel_requested = TRUE;
}

const gchar *
migd_job_get_migration_id(MigdJob *self)
{
	return self->migration_id;
}

void
migd_job_set_migration_id(MigdJob *self, const gchar *migration_id)
{
	g_free(self->migration_id);
	self->migration_id = g_strdup(migration_id);
}

MigdSwitchoverMode
migd_job_get_switchover_mode(MigdJob *self)
{
	return self->switchover_mode;
}

void
migd_job_set_switchover_mode(MigdJob *self, MigdSwitchoverMode mode)
{
	self->switchover_mode = mode;
}

MigdStartMode
migd_job_get_start_mode(MigdJob *self)
{
	return self->start_mode;
}

void
migd_job_set_start_mode(MigdJob *self, MigdStartMode mode)
{
	self->start_mode = mode;
}

gboolean
migd_job_get_converged(MigdJob *self)
{
	return self->converged;
}

void
migd_job_set_converged(MigdJob *self, gboolean converged)
{
	if (self->converged == !!converged)
		return;
	self->converged = !!converged;
	g_object_notify_by_pspec(G_OBJECT(self), migd_job_props[PROP_CONVERGED]);
}

gboolean
migd_job_get_rolled_back(MigdJob *self)
{
	return self->rolled_back;
}

void
migd_job_set_rolled_back(MigdJob *self)
{
	self->rolled_back = TRUE;
}

gint64
migd_job_get_devices_stopped_at(MigdJob *self)
{
	return self->devices_stopped_at;
}

void
migd_job_set_devices_stopped_at(MigdJob *self, gint64 realtime_us)
{
	self->devices_stopped_at = realtime_us;
}

gint64
migd_job_get_devices_started_at(MigdJob *self)
{
	return self->devices_started_at;
}

void
migd_job_set_devices_started_at(MigdJob *self, gint64 realtime_us)
{
	self->devices_started_at = realtime_us;
}

const gchar *const *
migd_job_get_device_names(MigdJob *self)
{
	return (const gchar *const *)self->device_names;
}

void
migd_job_set_device_names(MigdJob *self, const gchar *const *names)
{
	g_strfreev(self->device_names);
	self->device_names = g_strdupv((gchar **)names);
}

typedef struct {
	gboolean set;
	guint64 bytes;
	guint32 crc32c;
} MigdJobStream;

void
migd_job_set_device_stream(MigdJob *self, guint index, guint64 bytes, guint32 crc32c)
{
	MigdJobStream *stream;

	g_return_if_fail(MIGD_IS_JOB(self));
	if (self->streams == NULL)
		self->streams = g_array_new(FALSE, TRUE, sizeof(MigdJobStream));
	if (index >= self->streams->len)
		g_array_set_size(self->streams, index + 1);
	stream = &g_array_index(self->streams, MigdJobStream, index);
	stream->set = TRUE;
	stream->bytes = bytes;
	stream->crc32c = crc32c;
}

gboolean
migd_job_get_device_stream(MigdJob *self, guint index, guint64 *bytes, guint32 *crc32c)
{
	const MigdJobStream *stream;

	g_return_val_if_fail(MIGD_IS_JOB(self), FALSE);
	if (self->streams == NULL || index >= self->streams->len)
		return FALSE;
	stream = &g_array_index(self->streams, MigdJobStream, index);
	if (!stream->set)
		return FALSE;
	*bytes = stream->bytes;
	*crc32c = stream->crc32c;
	return TRUE;
}

void
migd_job_set_control(MigdJob *self, const MigdJobControl *control, gpointer engine)
{
	self->control = control;
	self->engine = engine;
}

/* NULL when @self can take the control @what (@impl non-NULL); else the error */
static GError *
migd_job_check_control(MigdJob *self, gconstpointer impl, const gchar *what)
{
	if (self->finished)
		return g_error_new(MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				   "job %s has already ended: %s", self->id, self->message);
	if (self->control == NULL || impl == NULL)
		return g_error_new(
		    MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED, "job %s is a %s job: it has no %s",
		    self->id, self->role == MIGD_JOB_ROLE_SOURCE ? "source" : "destination", what);
	return NULL;
}

void
migd_job_switchover_async(MigdJob *self, GCancellable *cancellable, GAsyncReadyCallback callback,
			  gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	GError *error = migd_job_check_control(
	    self, self->control != NULL ? (gconstpointer)self->control->switchover : NULL,
	    "switchover");

	g_task_set_source_tag(task, migd_job_switchover_async);
	if (error != NULL) {
		g_task_return_error(task, error);
		return;
	}
	self->control->switchover(self->engine, g_steal_pointer(&task));
}

gboolean
migd_job_switchover_finish(MigdJob *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

void
migd_job_start_async(MigdJob *self, GCancellable *cancellable, GAsyncReadyCallback callback,
		     gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	GError *error = migd_job_check_control(
	    self, self->control != NULL ? (gconstpointer)self->control->start : NULL, "start");

	g_task_set_source_tag(task, migd_job_start_async);
	if (error != NULL) {
		g_task_return_error(task, error);
		return;
	}
	self->control->start(self->engine, g_steal_pointer(&task));
}

gboolean
migd_job_start_finish(MigdJob *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

gboolean
migd_job_abandon(MigdJob *self, const gchar *reason, GError **error)
{
	GError *err = migd_job_check_control(
	    self, self->control != NULL ? (gconstpointer)self->control->abandon : NULL, "abandon");
	if (err != NULL) {
		g_propagate_error(error, err);
		return FALSE;
	}
	return self->control->abandon(self->engine, reason, error);
}

gboolean
migd_job_rollback(MigdJob *self, GError **error)
{
	GError *err = migd_job_check_control(
	    self, self->control != NULL ? (gconstpointer)self->control->rollback : NULL,
	    "rollback");
	if (err != NULL) {
		g_propagate_error(error, err);
		return FALSE;
	}
	return self->control->rollback(self->engine, error);
}

void
migd_job_sync_dirty_bitmap_async(MigdJob *self, const gchar *device_name, GCancellable *cancellable,
				 GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	GError *error = migd_job_check_control(
	    self, self->control != NULL ? (gconstpointer)self->control->sync_dirty_bitmap : NULL,
	    "dirty-bitmap sync");

	g_task_set_source_tag(task, migd_job_sync_dirty_bitmap_async);
	if (error != NULL) {
		g_task_return_error(task, error);
		return;
	}
	self->control->sync_dirty_bitmap(self->engine, device_name, g_steal_pointer(&task));
}

gint
migd_job_sync_dirty_bitmap_finish(MigdJob *self, GAsyncResult *result, GError **error)
{
	gssize fd;
	g_return_val_if_fail(g_task_is_valid(result, self), -1);
	fd = g_task_propagate_int(G_TASK(result), error);
	return fd < 0 ? -1 : (gint)fd;
}

gboolean
migd_job_cancel(MigdJob *self)
{
	if (self->finished)
		return FALSE;
	/* before the signal: the engine may fail the job from inside it */
	self->cancel_requested = TRUE;
	g_signal_emit(self, migd_job_signals[SIGNAL_CANCEL_REQUESTED], 0);
	return TRUE;
}

static void
migd_job_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	MigdJob *self = MIGD_JOB(object);
	switch (prop_id) {
	case PROP_PHASE:
		g_value_set_uint(value, self->phase);
		break;
	case PROP_PROGRESS:
		g_value_set_double(value, self->progress);
		break;
	case PROP_BYTES:
		g_value_set_uint64(value, self->bytes);
		break;
	case PROP_RATE:
		g_value_set_uint64(value, self->rate);
		break;
	case PROP_DOWNTIME:
		g_value_set_uint64(value, self->downtime_us);
		break;
	case PROP_EXPECTED_DOWNTIME:
		g_value_set_uint64(value, self->expected_downtime_us);
		break;
	case PROP_PRECOPY_ROUNDS:
		g_value_set_uint(value, self->precopy_rounds);
		break;
	case PROP_DIRTY_PAGES:
		g_value_set_uint64(value, self->dirty_pages);
		break;
	case PROP_DIRTY_WIRE_BYTES:
		g_value_set_uint64(value, self->dirty_wire_bytes);
		break;
	case PROP_CONVERGED:
		g_value_set_boolean(value, self->converged);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
migd_job_finalize(GObject *object)
{
	MigdJob *self = MIGD_JOB(object);
	g_free(self->id);
	g_free(self->message);
	g_free(self->migration_id);
	g_strfreev(self->device_names);
	g_clear_pointer(&self->streams, g_array_unref);
	G_OBJECT_CLASS(migd_job_parent_class)->finalize(object);
}

static void
migd_job_init(MigdJob *self)
{
	self->outcome = "";
}

static void
migd_job_class_init(MigdJobClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

	object_class->get_property = migd_job_get_property;
	object_class->finalize = migd_job_finalize;

	migd_job_props[PROP_PHASE] =
	    g_param_spec_uint("phase", NULL, NULL, 0, MIGD_JOB_PHASE_LAST - 1, 0, ro);
	migd_job_props[PROP_PROGRESS] = g_param_spec_double("progress", NULL, NULL, 0, 1, 0, ro);
	migd_job_props[PROP_BYTES] =
	    g_param_spec_uint64("bytes", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	migd_job_props[PROP_RATE] = g_param_spec_uint64("rate", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	migd_job_props[PROP_DOWNTIME] =
	    g_param_spec_uint64("downtime", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	migd_job_props[PROP_EXPECTED_DOWNTIME] =
	    g_param_spec_uint64("expected-downtime", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	migd_job_props[PROP_PRECOPY_ROUNDS] =
	    g_param_spec_uint("precopy-rounds", NULL, NULL, 0, G_MAXUINT, 0, ro);
	migd_job_props[PROP_DIRTY_PAGES] =
	    g_param_spec_uint64("dirty-pages", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	migd_job_props[PROP_DIRTY_WIRE_BYTES] =
	    g_param_spec_uint64("dirty-wire-bytes", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	migd_job_props[PROP_CONVERGED] = g_param_spec_boolean("converged", NULL, NULL, FALSE, ro);
	g_object_class_install_properties(object_class, PROP_LAST, migd_job_props);

	migd_job_signals[SIGNAL_COMPLETED] =
	    g_signal_new("completed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 2, G_TYPE_BOOLEAN, G_TYPE_STRING);
	migd_job_signals[SIGNAL_CANCEL_REQUESTED] =
	    g_signal_new("cancel-requested", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
			 NULL, NULL, G_TYPE_NONE, 0);
}
