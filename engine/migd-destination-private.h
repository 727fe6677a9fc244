/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the destination engine's files share: the destination, its sessions
 * and their devices (migd-destination.c: sessions, streams, commit,
 * handover), and the expectations (migd-destination-expect.c).
 */
#pragma once

#include "migd-connection.h"
#include "migd-destination.h"
#include "migd-dirty-sink.h"
#include "migd-journal.h"
#include "migd-plugin.h"
#include "migd-stream-writer.h"

G_BEGIN_DECLS

typedef struct _MigdDestSession MigdDestSession;
typedef struct _MigdDestExpectation MigdDestExpectation;

/* a received chunk and the CRC32C the source sent with it */
typedef struct {
	GBytes *bytes;
	guint32 crc32c;
} MigdDestChunk;

typedef struct {
	MigdDestSession *session;
	guint index;
	MigdDevice *device;
	gchar *name;
	MigdPlugin *plugin;
	MigdPluginPolicy policy;
	GByteArray *head;     /* the stream's first bytes, until the plugin has seen them */
	MigdDirtySink *dirty; /* the pages the source device's DMA dirtied; NULL until a chunk */
	gboolean head_checked;
	MigdStreamWriter *writer;
	GQueue pending; /* MigdDestChunk refused by the full writer, in order */
	gboolean accepted;
	gboolean touched; /* left its idle state: reset on failure */
	gboolean initial_done;
	gboolean acked;
	gboolean last_received;
	gboolean finish_requested;
	gboolean finished;
	guint64 chunks_received;
	guint64 bytes_received;
} MigdDestDevice;

struct _MigdDestSession {
	gint refcount;
	MigdDestination *dest;
	MigdConnection *conn;
	MigdJob *job;
	GPtrArray *devices; /* MigdDestDevice */
	gboolean commit_received;
	Migd__Wire__Commit *commit; /* copy of the counts, to check at the end */
	guint ack_timer_id;
	gulong cancel_handler;
	gboolean finished;
	gboolean journaled; /* a journal record exists for this job */
	gboolean checksum;  /* CAP_CHECKSUM: every chunk and the whole stream are checked */
	guint64 total_bytes;
	guint handshake_timer_id; /* until Hello and every offer arrived */
	guint n_offers;
	gboolean pending; /* in the destination's pending: no Hello yet */
	MigdStartMode start_mode;
	MigdDestExpectation *expectation; /* the one this session fulfils; NULL: untagged */
	gboolean validated;	  /* CAP_HANDOVER: ok CommitResult sent, devices held in STOP */
	gboolean start_wanted;	  /* start=auto, or Job.Start came: ask once validated */
	gboolean start_requested; /* our StartRequest left: waiting for the grant */
	GTask *start_task;	  /* the VMM's Start, until the job ends */
};

/* devices reserved for the incoming migration that carries an id */
struct _MigdDestExpectation {
	MigdDestination *dest;
	gchar *id;
	GPtrArray *devices; /* MigdDevice, in offer order */
	MigdStartMode start_mode;
	guint timeout_s;
	guint timeout_id;	  /* while no session came */
	MigdDestSession *session; /* the session receiving it, or NULL */
};

struct _MigdDestination {
	GObject parent_instance;
	GPtrArray *devices; /* MigdDevice */
	MigdTransportListener *listener;
	/* MigdDestSession (unowned) past Hello; no two share a device */
	GPtrArray *sessions;
	GPtrArray *expectations; /* MigdDestExpectation (owned) */
	/* MigdDirtySink or NULL per device (index in devices), of its last completed migration */
	GPtrArray *dirty;
	MigdJournal *journal;	  /* borrowed; NULL: jobs are not recorded */
	MigdStreamBudget *budget; /* NULL: the writers' windows alone bound the streams */
	guint job_counter;
	MigdTransportConfig *transport; /* the listener's: deadlines and caps */
	GPtrArray *pending;		/* MigdDestSession (unowned) without a Hello yet */
	MigdStartMode start_mode;	/* of untagged sessions */
};

/* fails @self: devices reset, the job completes with @error; Abort to the peer if @tell_peer */
void migd_dest_session_fail(MigdDestSession *self, const GError *error, gboolean tell_peer);

/* ---- expectations (migd-destination-expect.c) ---- */

MigdDestExpectation *migd_destination_find_expectation(MigdDestination *self,
						       const gchar *migration_id);
/* takes @exp out (its devices are free then), tells who listens, frees it */
void migd_destination_end_expectation(MigdDestination *self, MigdDestExpectation *exp,
				      const gchar *why);
/* the "expectation-ended" signal */
void migd_destination_emit_expectation_ended(MigdDestination *self, const gchar *migration_id,
					     const gchar *why);

G_END_DECLS
