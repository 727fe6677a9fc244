/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

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
	/*
	 * the destination loaded every device (its devices in STOP). Source: its
	 * devices stopped with their state intact until the destination's
	 * StartRequest (handed over) or a rollback. Destination: waiting for
	 * Start (start=manual) and the source's grant.
	 */
	MIGD_JOB_PHASE_HANDOVER,
	MIGD_JOB_PHASE_ROLLBACK,  /* failed: devices going back (source) or reset (destination) */
	MIGD_JOB_PHASE_COMPLETED, /* success */
	MIGD_JOB_PHASE_FAILED,	  /* ended without success; see the message */
	MIGD_JOB_PHASE_LAST,
} MigdJobPhase;

#define MIGD_TYPE_JOB (migd_job_get_type())
G_DECLARE_FINAL_TYPE(MigdJob, migd_job, MIGD, JOB, GObject)

MigdJob *migd_job_new(MigdJobRole role, const gchar *id);
const gchar *migd_job_get_id(MigdJob *self);
/* the service renames a job to the number it is known by (D-Bus path, CLI), so every log line
 * agrees */
void migd_job_set_id(MigdJob *self, const gchar *id);
MigdJobRole migd_job_get_role(MigdJob *self);
/* who decides when a source job's devices stop (Migrate option "switchover") */
typedef enum {
	MIGD_SWITCHOVER_AUTO,	/* the convergence policy (and the destination's acks) */
	MIGD_SWITCHOVER_MANUAL, /* migd_job_switchover_async(): the VMM, after pausing the vCPUs */
} MigdSwitchoverMode;

/* who decides when a destination job's devices run (Listen/Expect option "start") */
typedef enum {
	MIGD_START_AUTO,   /* as soon as every device validated */
	MIGD_START_MANUAL, /* migd_job_start_async(): the VMM, when the guest starts */
} MigdStartMode;

/* "auto"/"manual"; FALSE and @error for anything else */
gboolean migd_switchover_mode_from_string(const gchar *str, MigdSwitchoverMode *mode,
					  GError **error);
gboolean migd_start_mode_from_string(const gchar *str, MigdStartMode *mode, GError **error);
const gchar *migd_switchover_mode_to_string(MigdSwitchoverMode mode);
const gchar *migd_start_mode_to_string(MigdStartMode mode);

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
 * How the job ended, the D-Bus Outcome property's values: "" while it runs,
 * then "completed", "failed", "cancelled" (migd_job_cancel() was called and
 * the job did not succeed) or "rolled-back" (RolledBack set by a rollback the
 * operator did not ask for by a cancel)
 */
const gchar *migd_job_get_outcome(MigdJob *self);
/*
 * the operator cancelled the migration on the peer (destination: the
 * source's Abort with REASON_CANCELLED): outcome "cancelled" unless it succeeds
 */
void migd_job_set_cancelled(MigdJob *self);

/* ---- VM coordination (docs/coordination.md) ---- */

/* the VM migration this job belongs to (Hello.migration_id), or NULL */
const gchar *migd_job_get_migration_id(MigdJob *self);
void migd_job_set_migration_id(MigdJob *self, const gchar *migration_id);
/* source: the mode it was started with; destination: always AUTO */
MigdSwitchoverMode migd_job_get_switchover_mode(MigdJob *self);
void migd_job_set_switchover_mode(MigdJob *self, MigdSwitchoverMode mode);
/* destination: the mode of its expectation or listener; source: always AUTO */
MigdStartMode migd_job_get_start_mode(MigdJob *self);
void migd_job_set_start_mode(MigdJob *self, MigdStartMode mode);
/*
 * source, switchover=manual: the remaining device state fits the downtime
 * target (ExpectedDowntime) or pre-copy can do no better; property "converged"
 */
gboolean migd_job_get_converged(MigdJob *self);
void migd_job_set_converged(MigdJob *self, gboolean converged);
/*
 * the job ended with its devices taken back after the switchover (source:
 * RUNNING again; destination: reset), so the VM runs on the source; the
 * job's success is FALSE then
 */
gboolean migd_job_get_rolled_back(MigdJob *self);
void migd_job_set_rolled_back(MigdJob *self);
/*
 * When the devices left their running state (source: the first leaves
 * RUNNING/PRE_COPY at the switchover) and when they run again (destination:
 * the last one reached RUNNING), in g_get_real_time() microseconds, to set
 * against a VMM's own event times (QMP's STOP and RESUME); 0: not (yet)
 */
gint64 migd_job_get_devices_stopped_at(MigdJob *self);
void migd_job_set_devices_stopped_at(MigdJob *self, gint64 realtime_us);
gint64 migd_job_get_devices_started_at(MigdJob *self);
void migd_job_set_devices_started_at(MigdJob *self, gint64 realtime_us);
/* the names of the job's devices, in job order (the engine sets them) */
const gchar *const *migd_job_get_device_names(MigdJob *self);
void migd_job_set_device_names(MigdJob *self, const gchar *const *names);
/*
 * Device @index's whole stream (job order): its bytes and CRC32C (0 when the
 * peers negotiated no checksums). Source: set when the Commit is sent;
 * destination: once the stream checked against the Commit. The get returns
 * FALSE until then (the dbus-vmstate record compares the two sides).
 */
void migd_job_set_device_stream(MigdJob *self, guint index, guint64 bytes, guint32 crc32c);
gboolean migd_job_get_device_stream(MigdJob *self, guint index, guint64 *bytes, guint32 *crc32c);

/*
 * The VMM's controls. The engine installs its implementation; a control it
 * does not install (the other role's) fails with MIGD_ERROR_NOT_SUPPORTED,
 * and any control on a finished job with MIGD_ERROR_INVALID_ARGUMENT. Every
 * callback runs on the job's main context.
 */
typedef struct {
	/*
	 * source: stop every device (P2P quiesce first, then STOP_COPY), stream the
	 * rest and return (g_task_return_boolean) once the destination loaded and
	 * validated every device; on failure the devices are back in RUNNING and
	 * the task carries the cause
	 */
	void (*switchover)(gpointer engine, GTask *task);
	/* destination: StartRequest, the source's grant, then RUNNING_P2P, RUNNING */
	void (*start)(gpointer engine, GTask *task);
	/*
	 * destination: give the incoming VM up: reset the devices, tell the
	 * source; @reason (NULL: the VMM's Job.Abandon) goes into both messages
	 */
	gboolean (*abandon)(gpointer engine, const gchar *reason, GError **error);
	/* source: take the devices back (RUNNING), tell the destination */
	gboolean (*rollback)(gpointer engine, GError **error);
	/*
	 * source: the pages device @name's DMA dirtied since the previous call
	 * (the first: since tracking started) as a sealed memfd in the dirty
	 * bitmap file format (g_task_return_int: the fd)
	 */
	void (*sync_dirty_bitmap)(gpointer engine, const gchar *name, GTask *task);
} MigdJobControl;

/* @control: static; @engine: outlives the job's control (until migd_job_complete) */
void migd_job_set_control(MigdJob *self, const MigdJobControl *control, gpointer engine);

void migd_job_switchover_async(MigdJob *self, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
gboolean migd_job_switchover_finish(MigdJob *self, GAsyncResult *result, GError **error);
void migd_job_start_async(MigdJob *self, GCancellable *cancellable, GAsyncReadyCallback callback,
			  gpointer user_data);
gboolean migd_job_start_finish(MigdJob *self, GAsyncResult *result, GError **error);
gboolean migd_job_abandon(MigdJob *self, const gchar *reason, GError **error);
gboolean migd_job_rollback(MigdJob *self, GError **error);
void migd_job_sync_dirty_bitmap_async(MigdJob *self, const gchar *device_name,
				      GCancellable *cancellable, GAsyncReadyCallback callback,
				      gpointer user_data);
/* the sealed memfd (the caller owns it), or -1 and @error */
gint migd_job_sync_dirty_bitmap_finish(MigdJob *self, GAsyncResult *result, GError **error);

/*
 * Cancel: the engine connects to "cancel-requested" and aborts with rollback;
 * returns FALSE if the job already finished.
 */
gboolean migd_job_cancel(MigdJob *self);

G_END_DECLS
