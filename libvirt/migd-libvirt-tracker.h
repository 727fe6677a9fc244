/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

G_BEGIN_DECLS

/*
 * What the source side makes of libvirt's domain events: a pure state machine,
 * one per watcher, with no I/O. It is fed lifecycle, migration-iteration and
 * job-completed events and the answers to job probes, and answers with actions:
 * report a migration as started / at switchover / finished / failed, or probe a
 * domain's job. The watcher (migd-libvirt-watcher.c) does the libvirt I/O.
 * The event -> action table is in docs/libvirt.md.
 */

/* ---- the mapping the caller gives: which domains, which devices, where to ---- */

typedef struct {
	gchar *domain; /* a domain name, or its UUID (36 characters, any case) */
	GStrv devices; /* vfio-migd device names, in the order they are offered */
	gchar *peer;   /* the destination vfio-migd (docs/ABI/testing/transport-address) */
} MigdLibvirtDomainMap;

MigdLibvirtDomainMap *migd_libvirt_domain_map_new(const gchar *domain, const gchar *const *devices,
						  const gchar *peer);
MigdLibvirtDomainMap *migd_libvirt_domain_map_copy(const MigdLibvirtDomainMap *map);
void migd_libvirt_domain_map_free(MigdLibvirtDomainMap *map);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdLibvirtDomainMap, migd_libvirt_domain_map_free)

/*
 * The maps of every [libvirt-domain NAME] group of @key_file: keys devices=
 * (a list, required, not empty) and peer= (required). Unknown keys, empty
 * names and a domain named twice are errors (MIGD_ERROR_INVALID_ARGUMENT,
 * naming the group). Other groups are ignored. A GPtrArray of
 * MigdLibvirtDomainMap, freed with the array.
 */
GPtrArray *migd_libvirt_domain_maps_from_key_file(GKeyFile *key_file, GError **error);

/* ---- inputs ---- */

typedef enum {
	MIGD_LIBVIRT_INPUT_LIFECYCLE,	  /* VIR_DOMAIN_EVENT_ID_LIFECYCLE */
	MIGD_LIBVIRT_INPUT_ITERATION,	  /* VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION */
	MIGD_LIBVIRT_INPUT_JOB_COMPLETED, /* VIR_DOMAIN_EVENT_ID_JOB_COMPLETED */
	MIGD_LIBVIRT_INPUT_PROBE,	  /* the answer to a job probe */
} MigdLibvirtInputKind;

/* a domain's job as a probe saw it */
typedef enum {
	MIGD_LIBVIRT_JOB_UNKNOWN,     /* the question failed (retry later) */
	MIGD_LIBVIRT_JOB_UNSUPPORTED, /* the driver has no job API (test driver) */
	MIGD_LIBVIRT_JOB_ACTIVE,      /* running, or done but not yet confirmed */
	MIGD_LIBVIRT_JOB_NONE,	      /* no job */
	MIGD_LIBVIRT_JOB_FAILED,
	MIGD_LIBVIRT_JOB_CANCELLED,
	MIGD_LIBVIRT_JOB_COMPLETED, /* only as the outcome of the last completed job */
} MigdLibvirtJob;

typedef struct {
	MigdLibvirtJob job;   /* the current job (virDomainGetJobStats) */
	gint operation;	      /* its VIR_DOMAIN_JOB_OPERATION_*, -1 when unknown */
	gboolean domain_gone; /* libvirt knows no such domain any more */
	gint state;	      /* virDomainGetState when the job is over, else -1 */
	gint reason;	      /* and its reason */
	/* the last completed job, when it was an outgoing migration (else UNKNOWN) */
	MigdLibvirtJob completed;
	const gchar *error_message; /* its VIR_DOMAIN_JOB_ERRMSG, or NULL */
} MigdLibvirtProbe;

typedef struct {
	MigdLibvirtInputKind kind;
	const gchar *uuid; /* the domain: always its UUID, and its name */
	const gchar *name;
	gint event;	/* LIFECYCLE: virDomainEventType */
	gint detail;	/* LIFECYCLE: its detail (VIR_DOMAIN_EVENT_STOPPED_MIGRATED, ...) */
	gint iteration; /* ITERATION */
	gint operation; /* JOB_COMPLETED: VIR_DOMAIN_JOB_OPERATION_*, -1 when absent */
	gint success;	/* JOB_COMPLETED: VIR_DOMAIN_JOB_SUCCESS, -1 when absent */
	const gchar *error_message; /* JOB_COMPLETED: VIR_DOMAIN_JOB_ERRMSG or NULL */
	guint64 epoch;		    /* PROBE: the epoch its request carried */
	MigdLibvirtProbe probe;	    /* PROBE */
} MigdLibvirtInput;

/* a probe answer that says nothing yet */
void migd_libvirt_probe_init(MigdLibvirtProbe *probe);
/* the job of virDomainGetJobStats' @type */
MigdLibvirtJob migd_libvirt_job_from_type(gint type);
/* fills @probe from a JOB_COMPLETED event's or virDomainGetJobStats' parameters:
 * the operation (-1 when absent), the success flag (-1 when absent) and the
 * error message (borrowed from @params) */
void migd_libvirt_job_params_parse(virTypedParameterPtr params, gint n_params, gint *operation,
				   gint *success, const gchar **error_message);

/* ---- actions ---- */

typedef enum {
	MIGD_LIBVIRT_ACTION_STARTED,	/* start moving the devices (map: devices, peer) */
	MIGD_LIBVIRT_ACTION_SWITCHOVER, /* the guest's vCPUs stopped for the final phase */
	MIGD_LIBVIRT_ACTION_FINISHED,	/* libvirt's migration succeeded */
	MIGD_LIBVIRT_ACTION_FAILED,	/* it did not: roll the devices back */
	MIGD_LIBVIRT_ACTION_PROBE,	/* ask libvirt about the domain's job (uuid, epoch) */
} MigdLibvirtActionKind;

/* how a migration ended, for FAILED */
typedef enum {
	MIGD_LIBVIRT_END_ABORTED,	  /* the guest resumed here: cancelled or failed */
	MIGD_LIBVIRT_END_FAILED,	  /* libvirt says the job failed */
	MIGD_LIBVIRT_END_CANCELLED,	  /* libvirt says the job was cancelled */
	MIGD_LIBVIRT_END_DOMAIN_STOPPED,  /* destroyed, crashed or shut down meanwhile */
	MIGD_LIBVIRT_END_POSTCOPY_FAILED, /* post-copy failed: the guest is split */
	MIGD_LIBVIRT_END_UNKNOWN,	  /* the domain vanished; nobody can say how */
} MigdLibvirtEnd;

const gchar *migd_libvirt_end_to_string(MigdLibvirtEnd end);

typedef struct {
	MigdLibvirtActionKind kind;
	const MigdLibvirtDomainMap *map; /* the tracker's copy; valid while it lives */
	gchar *uuid;
	gchar *name;
	guint64 migration;  /* STARTED..FAILED: the migration, counting from 1 per tracker */
	guint64 epoch;	    /* PROBE: to quote in the answer */
	gboolean late;	    /* STARTED: first seen at switchover or at the end */
	gboolean postcopy;  /* SWITCHOVER: the guest now runs on the destination */
	MigdLibvirtEnd end; /* FAILED */
	gchar *message;	    /* FAILED: why, one sentence */
} MigdLibvirtAction;

/* an empty GArray of MigdLibvirtAction that clears its elements */
GArray *migd_libvirt_actions_new(void);
const gchar *migd_libvirt_action_kind_to_string(MigdLibvirtActionKind kind);

/* ---- the tracker ---- */

typedef struct _MigdLibvirtTracker MigdLibvirtTracker;

/* @maps: MigdLibvirtDomainMap*, copied */
MigdLibvirtTracker *migd_libvirt_tracker_new(GPtrArray *maps);
void migd_libvirt_tracker_free(MigdLibvirtTracker *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdLibvirtTracker, migd_libvirt_tracker_free)

/* the map of a domain (by UUID first, then by name), or NULL: not ours */
const MigdLibvirtDomainMap *migd_libvirt_tracker_lookup(MigdLibvirtTracker *self, const gchar *uuid,
							const gchar *name);
/* feeds one input, appending what to do to @actions; inputs for unmapped
 * domains are ignored */
void migd_libvirt_tracker_feed(MigdLibvirtTracker *self, const MigdLibvirtInput *input,
			       GArray *actions);
/* the domains with something in progress, to probe periodically: appends one
 * PROBE action each (uuid, epoch) */
void migd_libvirt_tracker_list_busy(MigdLibvirtTracker *self, GArray *actions);
/* "idle", "probing", "migrating", "switchover", "other-job" (logs, tests) */
const gchar *migd_libvirt_tracker_get_state(MigdLibvirtTracker *self, const gchar *uuid);

G_END_DECLS
