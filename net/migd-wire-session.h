/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The checks that need the history of a connection (which side sent what, the
 * device count, per-device sequence numbers), and version negotiation.
 */
#pragma once

#include "migd-wire-frame.h"

G_BEGIN_DECLS

typedef enum {
	MIGD_WIRE_ROLE_SOURCE,
	MIGD_WIRE_ROLE_DESTINATION,
} MigdWireRole;

const gchar *migd_wire_role_to_string(MigdWireRole role);

typedef struct _MigdWireSession MigdWireSession;

/* @local_role: our side; frames checked are the ones the peer sent us */
MigdWireSession *migd_wire_session_new(MigdWireRole local_role);
void migd_wire_session_free(MigdWireSession *self);

/* source side: record the Hello we sent (session id, versions, capabilities, devices) */
void migd_wire_session_note_hello_sent(MigdWireSession *self, const Migd__Wire__Hello *hello);

/* destination side: record the HelloReply we sent (version, capabilities, refusal) */
void migd_wire_session_note_hello_reply_sent(MigdWireSession *self,
					     const Migd__Wire__HelloReply *reply);

/*
 * Records a frame we sent where the rules depend on it (Hello, HelloReply,
 * StartRequest); any other type is ignored. The connection calls it for every
 * frame it queues.
 */
void migd_wire_session_note_sent(MigdWireSession *self, const MigdWireFrame *frame);

/*
 * Checks a frame received from the peer (already validated by the decoder)
 * against the session so far, and records it. MIGD_ERROR_PROTOCOL when it breaks
 * the message flow of docs/protocol.md.
 */
gboolean migd_wire_session_check_received(MigdWireSession *self, const MigdWireFrame *frame,
					  GError **error);

/* 0 until the Hello was sent (source) or received (destination) */
guint migd_wire_session_get_device_count(MigdWireSession *self);
/* the version chosen in the HelloReply, 0 before it or after a refusal */
guint32 migd_wire_session_get_version(MigdWireSession *self);
guint64 migd_wire_session_get_capabilities(MigdWireSession *self);
/*
 * an Abort, a refusing HelloReply, a CommitResult (but an ok one with
 * CAP_HANDOVER) or a StartGrant ended the session
 */
gboolean migd_wire_session_is_over(MigdWireSession *self);

/*
 * Picks the highest version in both [local_min, local_max] and [peer_min,
 * peer_max]. MIGD_ERROR_PROTOCOL "protocol version 7 not supported (supported
 * 1..1)" when they do not overlap.
 */
gboolean migd_wire_negotiate_version(guint32 local_min, guint32 local_max, guint32 peer_min,
				     guint32 peer_max, guint32 *version, GError **error);

/*
 * Destination side: fills @reply for @hello. On success the reply carries the
 * version and the common capabilities; on failure it carries refusal
 * REASON_VERSION_UNSUPPORTED, and @error says why (put error->message into
 * reply->message if wanted). @reply borrows hello->session_id.
 */
gboolean migd_wire_negotiate(const Migd__Wire__Hello *hello, guint32 local_min, guint32 local_max,
			     guint64 local_caps, Migd__Wire__HelloReply *reply, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdWireSession, migd_wire_session_free)

G_END_DECLS
