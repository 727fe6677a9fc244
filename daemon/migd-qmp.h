/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* a connect, or the greeting and capabilities negotiation, must finish within this */
#define MIGD_QMP_TIMEOUT_MS_DEFAULT 10000
/* the longest message QEMU may send (bytes, newline excluded); longer: closed */
#define MIGD_QMP_MAX_MESSAGE_DEFAULT (1024 * 1024)
/* one read takes at most this; with the message being received (at most max-message), all input
 * held */
#define MIGD_QMP_READ_CHUNK 16384
/* commands sent and not yet answered; one more fails with MIGD_ERROR_BUSY */
#define MIGD_QMP_MAX_PENDING 64

/*
 * A client of QEMU's monitor protocol (QMP) on a UNIX socket (`-qmp
 * unix:PATH,server=on,wait=off`, or `-chardev socket,...` with `-mon
 * mode=control`). Everything runs on the thread-default main context of the
 * thread that created it, and is called from that thread: reads and writes
 * are asynchronous, nothing blocks or polls.
 *
 * QEMU is trusted to run the guest, not to be well-formed: messages are
 * newline-delimited JSON objects, and a message longer than the limit
 * (refused before more is buffered), text that is not a JSON object, a reply
 * to an id never sent or an object that is neither greeting, reply nor event
 * closes the connection with MIGD_ERROR_PROTOCOL.
 *
 * Signals:
 *  event (const gchar *name, JsonObject *data or NULL, gint64 timestamp_us):
 *    an asynchronous event (MIGRATION, RESUME, STOP, ...); @timestamp_us is
 *    QEMU's realtime clock ({"seconds","microseconds"}) in microseconds,
 *    -1 without one
 *  closed (const GError *error or NULL): the connection ended, once. NULL:
 *    closed by migd_qmp_close(), or QEMU closed it between messages with no
 *    command pending (the orderly end, e.g. after `quit`). Otherwise:
 *    MIGD_ERROR_DEVICE_GONE (QEMU went away mid-message or with commands
 *    pending, or an I/O error), MIGD_ERROR_PROTOCOL (bad input, above),
 *    MIGD_ERROR_TIMED_OUT (no greeting or negotiation in time),
 *    G_IO_ERROR_CANCELLED (the negotiation's cancellable).
 *
 * Pending commands fail with the error that closed the connection
 * (MIGD_ERROR_CANCELLED after migd_qmp_close(), MIGD_ERROR_DEVICE_GONE when
 * QEMU left without a word); commands executed after the end fail with
 * MIGD_ERROR_DEVICE_GONE.
 */
#define MIGD_TYPE_QMP (migd_qmp_get_type())
G_DECLARE_FINAL_TYPE(MigdQmp, migd_qmp, MIGD, QMP, GObject)

/* over an already connected stream (a socketpair in tests); nothing is read until negotiated */
MigdQmp *migd_qmp_new_for_stream(GIOStream *stream);
/* before negotiating: the greeting's bound (0: MIGD_QMP_TIMEOUT_MS_DEFAULT) */
void migd_qmp_set_timeout(MigdQmp *self, guint timeout_ms);
/* before negotiating: the message limit (0: MIGD_QMP_MAX_MESSAGE_DEFAULT) */
void migd_qmp_set_max_message(MigdQmp *self, gsize max_bytes);

/*
 * Reads the greeting ({"QMP": {...}}) and sends qmp_capabilities; completes
 * once QEMU accepted it. Fails with MIGD_ERROR_TIMED_OUT when that takes
 * longer than the timeout, G_IO_ERROR_CANCELLED when @cancellable is
 * cancelled first (the connection is closed then, either way).
 */
void migd_qmp_negotiate_async(MigdQmp *self, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data);
gboolean migd_qmp_negotiate_finish(MigdQmp *self, GAsyncResult *result, GError **error);

/*
 * Connects to the monitor socket at @path and negotiates; @timeout_ms (0:
 * MIGD_QMP_TIMEOUT_MS_DEFAULT) bounds the connect and the negotiation
 * together. A missing socket or a refused connect: MIGD_ERROR_DEVICE_GONE.
 */
void migd_qmp_connect_async(const gchar *path, guint timeout_ms, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);
MigdQmp *migd_qmp_connect_finish(GAsyncResult *result, GError **error);

/*
 * Sends @command with @arguments (NULL: none) once negotiated; completes with
 * QEMU's "return" member (json_node_unref it). QEMU's "error" reply becomes
 * MIGD_ERROR_FAILED "CLASS: desc". Cancelling completes the call at once with
 * G_IO_ERROR_CANCELLED (QEMU still runs the command; its reply is dropped).
 * MIGD_ERROR_BUSY with MIGD_QMP_MAX_PENDING commands unanswered,
 * MIGD_ERROR_INVALID_ARGUMENT before the negotiation completed,
 * MIGD_ERROR_DEVICE_GONE once closed.
 */
void migd_qmp_execute_async(MigdQmp *self, const gchar *command, JsonObject *arguments,
			    GCancellable *cancellable, GAsyncReadyCallback callback,
			    gpointer user_data);
JsonNode *migd_qmp_execute_finish(MigdQmp *self, GAsyncResult *result, GError **error);

/* ends the connection: pending commands fail (MIGD_ERROR_CANCELLED), "closed" (NULL); idempotent */
void migd_qmp_close(MigdQmp *self);
gboolean migd_qmp_is_closed(MigdQmp *self);
/* the greeting's {"version": ..., "capabilities": ...}; NULL before it arrived */
JsonObject *migd_qmp_get_greeting(MigdQmp *self);
/* the most bytes an incomplete message ever held (tests: the bound holds) */
gsize migd_qmp_get_buffer_peak(MigdQmp *self);

G_END_DECLS
