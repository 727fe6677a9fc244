/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

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
	PROP_LAST
};
static GParamSpec *migd_job_props[PROP_LAST];

static const gchar *const migd_job_phase_names[] = {
    [MIGD_JOB_PHASE_CONNECTING] = "connecting", [MIGD_JOB_PHASE_NEGOTIATING] = "negotiating",
    [MIGD_JOB_PHASE_PRECOPY] = "precopy",	[MIGD_JOB_PHASE_SWITCHOVER] = "switchover",
    [MIGD_JOB_PHASE_STOPCOPY] = "stopcopy",	[MIGD_JOB_PHASE_COMMIT] = "commit",
    [MIGD_JOB_PHASE_ROLLBACK] = "rollback",	[MIGD_JOB_PHASE_COMPLETED] = "completed",
    [MIGD_JOB_PHASE_FAILED] = "failed",
};
G_STATIC_ASSERT(G_N_ELEMENTS(migd_job_phase_names) == MIGD_JOB_PHASE_LAST);

const gchar *
migd_job_phase_to_string(MigdJobPhase phase)
{
	if ((guint)phase >= MIGD_JOB_PHASE_LAST)
		return "unknown";
	return migd_job_phase_names[phase];
}

MigdJob *
migd_job_new(MigdJobRole role, const gchar *id)
{
	MigdJob *self = g_object_new(MIGD_TYPE_JOB, NULL);
	self->role = role;
	self->id = g_strdup(id);
	return self;
}

const gchar *
migd_job_get_id(MigdJob *self)
{
	return self->id;
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
	migd_job_set_phase(self, success ? MIGD_JOB_PHASE_COMPLETED : MIGD_JOB_PHASE_FAILED);
	if (success)
		migd_job_update(self, 1.0, self->bytes, 0);
	self->finished = TRUE;
	self->success = success;
	self->message = g_strdup(message != NULL ? message : "");
	if (success)
		g_message("job %s: completed: %s", self->id, self->message);
	else
		g_warning("job %s: failed: %s", self->id, self->message);
	g_signal_emit(self, migd_job_signals[SIGNAL_COMPLETED], 0, success, self->message);
}

gboolean
migd_job_cancel(MigdJob *self)
{
	if (self->finished)
		return FALSE;
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
	G_OBJECT_CLASS(migd_job_parent_class)->finalize(object);
}

static void
migd_job_init(MigdJob *self)
{
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
	g_object_class_install_properties(object_class, PROP_LAST, migd_job_props);

	migd_job_signals[SIGNAL_COMPLETED] =
	    g_signal_new("completed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 2, G_TYPE_BOOLEAN, G_TYPE_STRING);
	migd_job_signals[SIGNAL_CANCEL_REQUESTED] =
	    g_signal_new("cancel-requested", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
			 NULL, NULL, G_TYPE_NONE, 0);
}
