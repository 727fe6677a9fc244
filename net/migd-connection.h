/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "migd-wire-frame.h"
#include "migd-wire-session.h"

G_BEGIN_DECLS

/*
 * One peer connection on the main loop: reads frames asynchronously (large
 * payloads straight into the decoder's buffer), checks each against the session
 * rules, and writes queued frames in order. Backpressure both ways: the owner
 * pauses reading while its device writers are full, and holds back new frames
 * while more than the high watermark is queued for sending.
 */

/* every how long an idle sender says it is alive, and how long silence is tolerated */
#define MIGD_CONNECTION_KEEPALIVE_INTERVAL_S 5
#define MIGD_CONNECTION_IDLE_TIMEOUT_S	     30
/* queued-for-send bytes above which the owner should stop producing */
#define MIGD_CONNECTION_SEND_HIGH_WATER (32u * 1024u * 1024u)
#define MIGD_CONNECTION_SEND_LOW_WATER	(8u * 1024u * 1024u)

#define MIGD_TYPE_CONNECTION (migd_connection_get_type())
G_DECLARE_FINAL_TYPE(MigdConnection, migd_connection, MIGD, CONNECTION, GObject)

typedef struct {
	/* a validated frame; owned by the connection, valid during the call */
	void (*frame)(MigdConnection *conn, const MigdWireFrame *frame, gpointer user_data);
	/* the connection ended: @error NULL for a close we asked for; called once */
	void (*closed)(MigdConnection *conn, const GError *error, gpointer user_data);
	/* the send queue fell below the low watermark */
	void (*drained)(MigdConnection *conn, gpointer user_data);
} MigdConnectionCallbacks;

MigdConnection *migd_connection_new(GIOStream *stream, MigdWireRole role,
				    const gchar *peer_identity,
				    const MigdConnectionCallbacks *callbacks, gpointer user_data);
void migd_connection_start(MigdConnection *self);
const gchar *migd_connection_get_peer_identity(MigdConnection *self);
MigdWireSession *migd_connection_get_session(MigdConnection *self);

/* queues @frame (encoded now, so the caller may free it); fails once closed */
gboolean migd_connection_send(MigdConnection *self, const MigdWireFrame *frame, GError **error);
/*
 * Like migd_connection_send, but the bytes field of @frame whose data is
 * @payload's is not copied: the connection keeps a reference to @payload until
 * the frame has been written.
 */
gboolean migd_connection_send_with_payload(MigdConnection *self, const MigdWireFrame *frame,
					   GBytes *payload, GError **error);
/*
 * From within the frame callback, for the frame it was given: takes the payload
 * of a STATE_CHUNK out of it without a copy (the frame's data is empty after).
 * NULL for an empty payload.
 */
GBytes *migd_connection_steal_chunk_payload(MigdConnection *self, const MigdWireFrame *frame);
gsize migd_connection_get_queued_bytes(MigdConnection *self);
gboolean migd_connection_is_congested(MigdConnection *self);

/*
 * A frame whose first byte arrived must be complete within @timeout_ms (0: the
 * default, MIGD_WIRE_FRAME_TIMEOUT_MS_DEFAULT), or the connection ends with
 * MIGD_ERROR_TIMED_OUT. The idle timeout counts whole frames only.
 */
void migd_connection_set_frame_timeout(MigdConnection *self, guint timeout_ms);

/*
 * Daemon-wide: the bytes that partially received frames of all connections may
 * hold together (0: MIGD_WIRE_PARTIAL_FRAME_BUDGET_DEFAULT). A frame that would
 * exceed it is refused before its buffer is allocated: the connection sends
 * Abort{BUSY} and closes, with a warning in the log.
 */
void migd_connection_set_partial_frame_budget(gsize max_bytes);
gsize migd_connection_get_partial_frame_budget(void);
/* what partial frames hold now */
gsize migd_connection_get_partial_frame_bytes(void);

/* pause or resume reading from the peer (destination backpressure) */
void migd_connection_set_reading(MigdConnection *self, gboolean enabled);

/* flushes what is queued, then closes; @reason (may be NULL) goes to the closed callback */
void migd_connection_close(MigdConnection *self, const GError *reason);
gboolean migd_connection_is_closed(MigdConnection *self);

/*
 * Queues Abort{reason, message} for @error: the reason follows the error's
 * domain and code, the message is the error's, made valid UTF-8 and cut at a
 * character boundary to MIGD_WIRE_MAX_MESSAGE_LEN. Best effort: a closed
 * connection sends nothing.
 */
void migd_connection_send_abort(MigdConnection *self, const GError *error);

/* the owner is going away: no callback will reach it any more (pending I/O still ends) */
void migd_connection_detach(MigdConnection *self);

G_END_DECLS
