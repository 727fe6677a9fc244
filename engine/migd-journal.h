/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-device.h"
#include "migd-job.h"

G_BEGIN_DECLS

/*
 * The journal of jobs in flight: one small file per job in the state directory
 * (systemd's StateDirectory, /var/lib/vfio-migd), written atomically before a
 * job first moves a device and removed when the job ends. A daemon that
 * crashed leaves its files behind; at the next start migd_journal_recover()
 * brings the devices they name back: a source's to RUNNING, a destination's
 * reset (to RUNNING). A destination records only the devices it moved, before
 * each one leaves RUNNING. A source job whose Commit succeeded removes its file at
 * once, so devices deliberately left stopped are never restarted.
 */
typedef struct _MigdJournal MigdJournal;

/* @dir is created (0700) if missing; NULL: no journal (tests, --session without --state-dir) */
MigdJournal *migd_journal_new(const gchar *dir, GError **error);
void migd_journal_free(MigdJournal *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdJournal, migd_journal_free)
const gchar *migd_journal_get_dir(MigdJournal *self);

/* records that @job (role, id) is about to move @devices; replaces an older record */
gboolean migd_journal_begin(MigdJournal *self, MigdJob *job, GPtrArray *devices, GError **error);
/* the job ended: its devices are where they should be */
void migd_journal_end(MigdJournal *self, MigdJob *job);

typedef struct {
	guint jobs;	 /* records found */
	guint recovered; /* devices brought back (not those that were RUNNING already) */
	guint failed;	 /* devices that could not be brought back (logged loudly) */
	guint unknown;	 /* devices named in a record that this daemon does not have */
} MigdJournalRecovery;

/*
 * At start, before serving: every record left by a previous run names devices
 * a crashed job may have left stopped or resuming. Each one this daemon has is
 * brought back to RUNNING (source: the recovery policy; destination: reset, or
 * closed and reopened where the driver's quirks say so; a destination device
 * still RUNNING is left alone), and the records are removed. Unreadable records are moved aside
 * (*.bad) with a warning, never deleted silently.
 */
void migd_journal_recover(MigdJournal *self, GPtrArray *devices, MigdJournalRecovery *result);

G_END_DECLS
