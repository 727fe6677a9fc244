/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-device.h"
#include "migd-job.h"
#include "migd-transport.h"

G_BEGIN_DECLS

/*
 * The destination side: listens, and runs a job for each authenticated peer
 * into its devices, writing streams with bounded memory: a session tagged with
 * a migration id into the devices its expectation reserved (several at once,
 * never two in one device), an untagged one into every prepared device (device
 * i of the offer into local device i) while nothing is expected and no other
 * session runs. Anything but a validated commit resets the session's devices.
 */
#define MIGD_TYPE_DESTINATION (migd_destination_get_type())
G_DECLARE_FINAL_TYPE(MigdDestination, migd_destination, MIGD, DESTINATION, GObject)

/* @devices: MigdDevice, the local devices that will receive state */
MigdDestination *migd_destination_new(GPtrArray *devices);

/* listens on @address (tcp:HOST:PORT, tcp:[V6]:PORT, unix:/path; port 0 picks one) */
gboolean migd_destination_listen(MigdDestination *self, const gchar *address,
				 const MigdTransportConfig *transport, GError **error);
/* the bound address, e.g. with the port chosen for 0 */
/* as migd_destination_listen(), on a listening socket handed over (systemd socket activation) */
gboolean migd_destination_listen_fd(MigdDestination *self, gint fd,
				    const MigdTransportConfig *transport, GError **error);
gchar *migd_destination_get_address(MigdDestination *self);
void migd_destination_close(MigdDestination *self);
/*
 * The accumulated dirty bitmap of device @index (its index in this
 * destination's devices) from the last migration into it that completed, as a sealed
 * memfd (docs/ABI/testing/dirty-bitmap-file); -1 and @error if there is none.
 */
gint migd_destination_dup_dirty_bitmap_fd(MigdDestination *self, guint index, GError **error);
/* an incoming migration is running (any session; see migd_destination_device_is_busy) */
gboolean migd_destination_is_busy(MigdDestination *self);
/*
 * the devices incoming migrations go into from now on (a device that stays
 * keeps its dirty bitmap); MIGD_ERROR_BUSY if a device it drops is busy
 */
gboolean migd_destination_set_devices(MigdDestination *self, GPtrArray *devices, GError **error);
/* incoming streams take from @budget, the daemon's bound on state in flight (NULL: none) */
typedef struct _MigdStreamBudget MigdStreamBudget;
void migd_destination_set_budget(MigdDestination *self, MigdStreamBudget *budget);
/* records incoming jobs in @journal (borrowed; must outlive @self), see migd-journal.h */
typedef struct _MigdJournal MigdJournal;
void migd_destination_set_journal(MigdDestination *self, MigdJournal *journal);

/*
 * The start mode of untagged sessions (those with no migration id); default
 * MIGD_START_AUTO. Jobs that start from now on use it.
 */
void migd_destination_set_start_mode(MigdDestination *self, MigdStartMode mode);

/*
 * Reserves @devices (MigdDevice, a subset of the destination's devices, idle
 * and in no other expectation) for the session whose Hello carries
 * @migration_id; the offer's device i goes into @devices[i]. Several
 * expectations and their sessions run at once. While any expectation exists,
 * an untagged session is refused; a session whose id nobody expects is always
 * refused (REASON_UNKNOWN_MIGRATION), without touching a device. The
 * expectation ends when its session ends, after @timeout_s without a session
 * (0: never), or by migd_destination_cancel_expectation().
 */
gboolean migd_destination_expect(MigdDestination *self, const gchar *migration_id,
				 GPtrArray *devices, MigdStartMode start, guint timeout_s,
				 GError **error);
/* ends an expectation; its running session fails (devices reset). FALSE: no such id */
gboolean migd_destination_cancel_expectation(MigdDestination *self, const gchar *migration_id,
					     GError **error);
/* the ids of the current expectations (a NULL-terminated array to free with g_strfreev) */
gchar **migd_destination_list_expectations(MigdDestination *self);
/* @device is reserved by an expectation or in an incoming session */
gboolean migd_destination_device_is_busy(MigdDestination *self, MigdDevice *device);
/* the migration id of the expectation that reserves @device, or NULL */
const gchar *migd_destination_get_reservation(MigdDestination *self, MigdDevice *device);
/* @device is in an incoming session: its state is the engine's (reserved alone is not) */
gboolean migd_destination_device_in_session(MigdDestination *self, MigdDevice *device);

/*
 * signal "job-started" (MigdJob *job): a peer began a migration into us
 * signal "expectation-ended" (const gchar *migration_id, const gchar *why): the
 *   expectation is gone and its devices are free (a failed session's reset);
 *   why: "completed" or "failed" (its session ended so), "timed-out",
 *   "cancelled", "closed" (the destination closed)
 */

G_END_DECLS
