/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * The daemon's log writer. When stderr is the journal (JOURNAL_STREAM), every record goes to
 * journald in its native protocol with PRIORITY, MESSAGE_ID and the VFIO_MIGD_* fields;
 * elsewhere it is GLib's default writer, so plain text stays exactly as it was.
 *
 * The layers below know nothing of journald: they log with g_log_structured() and a generic
 * VFIO_MIGD_EVENT field (one of the MIGD_LOG_EVENT_* strings), VFIO_MIGD_JOB and
 * VFIO_MIGD_DEVICE; this writer turns an event into its MESSAGE_ID and priority. Every field
 * is documented in docs/ABI/testing/journal-fields.
 */

/* the events, as the layers below spell them in VFIO_MIGD_EVENT */
#define MIGD_LOG_EVENT_JOB_STARTED	      "job-started"
#define MIGD_LOG_EVENT_JOB_COMPLETED	      "job-completed"
#define MIGD_LOG_EVENT_JOB_FAILED	      "job-failed"
#define MIGD_LOG_EVENT_JOB_ROLLED_BACK	      "job-rolled-back"
#define MIGD_LOG_EVENT_DEVICE_RECOVERY_FAILED "device-recovery-failed"

/* their MESSAGE_IDs (128-bit, as journalctl --new-id128 prints them); never change one */
#define MIGD_LOG_MESSAGE_ID_JOB_STARTED		   "0206d801be584577ab55dc355489420c"
#define MIGD_LOG_MESSAGE_ID_JOB_COMPLETED	   "2013d520afe0444e97fb849e1e7837a6"
#define MIGD_LOG_MESSAGE_ID_JOB_FAILED		   "afa4c129a3ef4d1d910836bbdbcf597f"
#define MIGD_LOG_MESSAGE_ID_JOB_ROLLED_BACK	   "1240bfadd75a42c8ba5442053a39947f"
#define MIGD_LOG_MESSAGE_ID_DEVICE_RECOVERY_FAILED "7d84aa24d0184c2f8d137791b343bd83"

/* journald's native socket */
#define MIGD_LOG_JOURNAL_SOCKET "/run/systemd/journal/socket"

/*
 * Installs the writer: to the journal at MIGD_LOG_JOURNAL_SOCKET when stderr is the journal,
 * GLib's default writer otherwise. First thing in main(); a second call only looks at stderr
 * again.
 */
void migd_log_install(void);

/*
 * Where records go from now on: journal_socket, a native-protocol datagram socket (tests use
 * one of their own), or plain text when NULL. migd_log_install() (once) makes it the writer.
 */
void migd_log_use_journal(const gchar *journal_socket);

/* the socket records go to, or NULL for plain text (newly allocated) */
gchar *migd_log_dup_journal(void);

GLogWriterOutput migd_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
				 gpointer user_data);

/* the MESSAGE_ID of an event, or NULL for an unknown one */
const gchar *migd_log_event_message_id(const gchar *event);

/*
 * Logs TEXT (printf-style) followed by the caller of @invocation, named by uid and pid
 * ("job 3: abandoned by uid 0 pid 4242"), with VFIO_MIGD_CALLER_UID and VFIO_MIGD_CALLER_PID
 * (VFIO_MIGD_CALLER: the bus name),
 * and VFIO_MIGD_JOB / VFIO_MIGD_DEVICE when @job / @device are given. On a bus the
 * credentials are asked of the bus daemon (GetConnectionCredentials) asynchronously the first
 * time a unique name calls, then cached: the record may follow the call's reply. The bus name
 * stands in when the bus cannot tell. In the journal such a record is kept at any level (the
 * audit trail of D-Bus actions); in plain text the level filters as usual.
 */
void migd_log_caller(GDBusMethodInvocation *invocation, GLogLevelFlags level, const gchar *job,
		     const gchar *device, const gchar *format, ...) G_GNUC_PRINTF(5, 6);

G_END_DECLS
