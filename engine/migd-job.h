/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/*
 * One migration, as the control plane sees it (modelled on UDisks2 jobs). The
 * engines update it on the main context; the D-Bus layer exports it.
 */
typedef enum {
	MIGD_JOB_ROLE_SOURCE,
	MIGD_JOB_ROLE_DESTINATION,
} MigdJobRole;

typedef enum {
	MIGD_JOB_PHASE_CONNECTING,  /* source: dialling; destination: accepted, handshaking */
	MIGD_JOB_PHASE_NEGOTIATING, /* hello, device offers, compatibility */
	MIGD_JOB_PHASE_PRECOPY,	    /* devices running, pre-copy rounds */
	MIGD_JOB_PHASE_SWITCHOVER,  /* waiting for the destination's switchover-ack */
	MIGD_JOB_PHASE_STOPCOPY,    /* devices stopped, the rest streaming (downtime) */
	MIGD_JOB_PHASE_COMMIT,	    /* the destination validates */
	MIGD_JOB_PHASE_ROLLBACK,    /* failed: devices going back (source) or reset (destination) */
	MIGD_JOB_PHASE_COMPLETED,   /* success */
	MIGD_JOB_PHASE_FAILED,	    /* ended without success; see the message */
	MIGD_JOB_PHASE_LAST,
} MigdJobPhase;

#define MIGD_TYPE_JOB (migd_job_get_type())
G_DECLARE_FINAL_TYPE(MigdJob, migd_job, MIGD, JOB, GObject)

MigdJob *migd_job_new(MigdJobRole role, const gchar *id);
const gchar *migd_job_get_id(MigdJob *self);
MigdJobRole migd_job_get_role(MigdJob *self);
/* "precopy", "stopcopy", ...: the D-Bus Phase property's values */
const gchar *migd_job_phase_to_string(MigdJobPhase phase);

MigdJobPhase migd_job_get_phase(MigdJob *self);
gdouble migd_job_get_progress(MigdJob *self);	 /* 0.0 .. 1.0 */
guint64 migd_job_get_bytes(MigdJob *self);	 /* device state moved so far */
guint64 migd_job_get_rate(MigdJob *self);	 /* bytes/s, recent */
guint64 migd_job_get_downtime_us(MigdJob *self); /* measured; 0 until the devices stopped */
guint64 migd_job_get_expected_downtime_us(MigdJob *self);
guint migd_job_get_precopy_rounds(MigdJob *self);
guint migd_job_get_n_devices(MigdJob *self);
gboolean migd_job_is_finished(MigdJob *self);
/* after "completed": whether it succeeded, and the result message */
gboolean migd_job_get_success(MigdJob *self);
const gchar *migd_job_get_message(MigdJob *self);

/* engine side */
void migd_job_set_phase(MigdJob *self, MigdJobPhase phase);
void migd_job_set_n_devices(MigdJob *self, guint n_devices);
void migd_job_update(MigdJob *self, gdouble progress, guint64 bytes, guint64 rate);
void migd_job_set_expected_downtime_us(MigdJob *self, guint64 us);
void migd_job_set_downtime_us(MigdJob *self, guint64 us);
void migd_job_set_precopy_rounds(MigdJob *self, guint rounds);
/* a dirty-bitmap sync shipped (source) or merged (destination) @pages in @wire_bytes */
void migd_job_add_dirty(MigdJob *self, guint64 pages, guint64 wire_bytes);
guint64 migd_job_get_dirty_pages(MigdJob *self); /* summed over syncs */
guint64 migd_job_get_dirty_wire_bytes(MigdJob *self);
/* emits "completed" (gboolean success, const gchar *message) once */
void migd_job_complete(MigdJob *self, gboolean success, const gchar *message);

/*
 * Cancel: the engine connects to "cancel-requested" and aborts with rollback;
 * returns FALSE if the job already finished.
 */
gboolean migd_job_cancel(MigdJob *self);

G_END_DECLS
