/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The per-connection checks (MigdWireSession) and version negotiation: a whole
 * migration's message flow from each side, then every rule broken once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "migd-error.h"
#include "migd-wire-session.h"
#include "wire-test-util.h"

#define assert_protocol_error(err, substr)                                                         \
	do {                                                                                       \
		assert_non_null(err);                                                              \
		if (!g_error_matches(err, MIGD_ERROR, MIGD_ERROR_PROTOCOL) ||                      \
		    strstr((err)->message, (substr)) == NULL)                                      \
			fail_msg("expected protocol error with \"%s\", got \"%s\"", (substr),      \
				 (err)->message);                                                  \
	} while (0)

static void
recv_ok(MigdWireSession *s, MigdWireFrame *frame)
{
	g_autoptr(MigdWireFrame) owned = frame;
	g_autoptr(GError) error = NULL;

	assert_true(migd_wire_frame_validate(owned, NULL));
	if (!migd_wire_session_check_received(s, owned, &error))
		fail_msg("%s refused: %s", migd_wire_msg_type_to_string(owned->type),
			 error->message);
}

static void
recv_fails(MigdWireSession *s, MigdWireFrame *frame, const gchar *msg)
{
	g_autoptr(MigdWireFrame) owned = frame;
	g_autoptr(GError) error = NULL;

	assert_false(migd_wire_session_check_received(s, owned, &error));
	assert_protocol_error(error, msg);
}

static MigdWireFrame *
hello(guint devices, guint64 caps)
{
	MigdWireFrame *f = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO, 0);

	f->hello->device_count = devices;
	f->hello->capabilities = caps;
	return f;
}

static MigdWireFrame *
offer(guint device)
{
	MigdWireFrame *f = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER, 0);

	f->device_offer->device = device;
	return f;
}

static MigdWireFrame *
chunk(guint device, Migd__Wire__Phase phase, guint64 seq, gsize len, gboolean last)
{
	MigdWireFrame *f = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK, 0);

	f->state_chunk->device = device;
	f->state_chunk->phase = phase;
	f->state_chunk->sequence = seq;
	f->state_chunk->data.data = g_realloc(f->state_chunk->data.data, MAX(len, 1));
	f->state_chunk->data.len = len;
	f->state_chunk->last = last;
	return f;
}

static MigdWireFrame *
progress(guint device)
{
	MigdWireFrame *f = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_PRECOPY_PROGRESS, 0);

	f->precopy_progress->device = device;
	return f;
}

static MigdWireFrame *
commit(guint n, const guint64 *chunks, const guint64 *bytes)
{
	MigdWireFrame *f = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT, 0);

	for (guint i = 0; i < n; i++) {
		f->commit->devices[i]->chunks = chunks[i];
		f->commit->devices[i]->bytes = bytes[i];
	}
	return f;
}

static MigdWireFrame *
keepalive(guint64 usec)
{
	MigdWireFrame *f = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE, 0);

	f->keepalive->monotonic_usec = usec;
	return f;
}

#define PRE  MIGD__WIRE__PHASE__PHASE_PRECOPY
#define STOP MIGD__WIRE__PHASE__PHASE_STOPCOPY

/* a destination that has received Hello (2 devices) and answered it */
static MigdWireSession *
destination_ready(guint64 caps)
{
	MigdWireSession *s = migd_wire_session_new(MIGD_WIRE_ROLE_DESTINATION);
	g_autoptr(MigdWireFrame) h = hello(2, caps);
	g_autoptr(GError) error = NULL;
	Migd__Wire__HelloReply reply;

	assert_true(migd_wire_session_check_received(s, h, &error));
	assert_true(migd_wire_negotiate(h->hello, MIGD_WIRE_PROTOCOL_VERSION_MIN,
					MIGD_WIRE_PROTOCOL_VERSION_MAX, MIGD_WIRE_CAPS_KNOWN,
					&reply, &error));
	migd_wire_session_note_hello_reply_sent(s, &reply);
	return s;
}

static void
test_destination_flow(void **state)
{
	g_autoptr(MigdWireSession) s = destination_ready(MIGD_WIRE_CAPS_KNOWN);
	const guint64 chunks[] = {4, 2};
	const guint64 bytes[] = {100 + 200 + 300 + 0, 50 + 60};

	assert_int_equal(migd_wire_session_get_device_count(s), 2);
	assert_int_equal(migd_wire_session_get_version(s), 1);
	assert_true(migd_wire_session_get_capabilities(s) == MIGD_WIRE_CAPS_KNOWN);
	recv_ok(s, keepalive(10));
	recv_ok(s, offer(0));
	recv_ok(s, offer(1));
	recv_ok(s, chunk(0, PRE, 0, 100, FALSE));
	recv_ok(s, progress(0));
	recv_ok(s, chunk(0, PRE, 1, 200, FALSE));
	recv_ok(s, chunk(1, STOP, 0, 50, FALSE));
	recv_ok(s, keepalive(10));
	recv_ok(s, chunk(0, STOP, 2, 300, FALSE));
	recv_ok(s, chunk(0, STOP, 3, 0, TRUE));
	recv_ok(s, chunk(1, STOP, 1, 60, TRUE));
	recv_ok(s, commit(2, chunks, bytes));
	assert_false(migd_wire_session_is_over(s));
	/* after Commit, only Abort and Keepalive */
	recv_fails(s, progress(0), "PRECOPY_PROGRESS received after Commit");
	recv_ok(s, keepalive(11));
	recv_ok(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT, 0));
	assert_true(migd_wire_session_is_over(s));
	recv_fails(s, keepalive(12), "KEEPALIVE received after the session ended");
}

static void
test_source_flow(void **state)
{
	g_autoptr(MigdWireSession) s = migd_wire_session_new(MIGD_WIRE_ROLE_SOURCE);
	g_autoptr(MigdWireFrame) h = hello(2, MIGD_WIRE_CAPS_KNOWN);
	MigdWireFrame *reply = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, 0);
	MigdWireFrame *reject = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_REJECT, 1);
	MigdWireFrame *ack = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_SWITCHOVER_ACK, 0);

	recv_fails(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, 0),
		   "received before our Hello was sent");
	migd_wire_session_note_hello_sent(s, h->hello);
	recv_fails(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT, 0),
		   "DEVICE_ACCEPT received before HELLO_REPLY");
	recv_ok(s, reply);
	assert_int_equal(migd_wire_session_get_version(s), 1);
	assert_true(migd_wire_session_get_capabilities(s) == MIGD_WIRE_CAP_PRECOPY);
	recv_ok(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT, 0));
	recv_ok(s, reject);
	recv_fails(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT, 1),
		   "DeviceAccept: device 1 was already accepted or rejected");
	recv_ok(s, ack); /* all devices */
	recv_ok(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_SWITCHOVER_ACK, 1));
	recv_fails(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, 0),
		   "a second HELLO_REPLY received");
	recv_ok(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT, 0));
	assert_true(migd_wire_session_is_over(s));
	recv_fails(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT, 0),
		   "received after the session ended");
}

static void
test_source_hello_reply_checks(void **state)
{
	g_autoptr(MigdWireFrame) h = hello(2, MIGD_WIRE_CAP_PRECOPY);

	{
		g_autoptr(MigdWireSession) s = migd_wire_session_new(MIGD_WIRE_ROLE_SOURCE);
		MigdWireFrame *r = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, 0);

		migd_wire_session_note_hello_sent(s, h->hello);
		r->hello_reply->version = 7;
		recv_fails(s, r, "protocol version 7 not supported (supported 1..1)");
	}
	{
		g_autoptr(MigdWireSession) s = migd_wire_session_new(MIGD_WIRE_ROLE_SOURCE);
		MigdWireFrame *r = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, 0);

		migd_wire_session_note_hello_sent(s, h->hello);
		r->hello_reply->capabilities = MIGD_WIRE_CAP_KEEPALIVE;
		recv_fails(s, r, "capabilities 0x8 were not offered (offered 0x1)");
	}
	{
		g_autoptr(MigdWireSession) s = migd_wire_session_new(MIGD_WIRE_ROLE_SOURCE);
		MigdWireFrame *r = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, 1);

		migd_wire_session_note_hello_sent(s, h->hello);
		recv_fails(s, r, "HelloReply for session sess-00000001, expected sess-00000000");
	}
	/* a refusal ends the session */
	{
		g_autoptr(MigdWireSession) s = migd_wire_session_new(MIGD_WIRE_ROLE_SOURCE);
		MigdWireFrame *r = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, 1);

		migd_wire_session_note_hello_sent(s, h->hello);
		g_free(r->hello_reply->session_id);
		r->hello_reply->session_id = g_strdup("sess-00000000");
		recv_ok(s, r);
		assert_true(migd_wire_session_is_over(s));
		assert_int_equal(migd_wire_session_get_version(s), 0);
	}
}

static void
test_sequence_regression(void **state)
{
	g_autoptr(MigdWireSession) s = destination_ready(MIGD_WIRE_CAPS_KNOWN);

	recv_ok(s, offer(0));
	recv_ok(s, offer(1));
	recv_ok(s, chunk(0, PRE, 0, 10, FALSE));
	recv_ok(s, chunk(0, PRE, 1, 10, FALSE));
	recv_fails(s, chunk(0, PRE, 1, 10, FALSE), "device 0: state chunk sequence 1, expected 2");
	recv_fails(s, chunk(0, PRE, 0, 10, FALSE), "device 0: state chunk sequence 0, expected 2");
	recv_fails(s, chunk(0, PRE, 3, 10, FALSE), "device 0: state chunk sequence 3, expected 2");
	/* sequences are per device */
	recv_ok(s, chunk(1, PRE, 0, 10, FALSE));
	recv_ok(s, chunk(0, STOP, 2, 10, FALSE));
	recv_fails(s, chunk(0, PRE, 3, 10, FALSE), "device 0: PRECOPY chunk after STOPCOPY");
	recv_ok(s, chunk(0, STOP, 3, 10, TRUE));
	recv_fails(s, chunk(0, STOP, 4, 10, FALSE), "StateChunk for device 0 after its last");
}

static void
test_device_range(void **state)
{
	g_autoptr(MigdWireSession) s = destination_ready(MIGD_WIRE_CAPS_KNOWN);
	MigdWireFrame *ack;

	recv_fails(s, offer(2),
		   "DeviceOffer: device index 2 out of range (the session has 2 devices)");
	recv_ok(s, offer(0));
	recv_fails(s, offer(0), "DeviceOffer: device 0 offered twice");
	recv_fails(s, chunk(1, STOP, 0, 1, FALSE),
		   "StateChunk for device 1, which was never offered");
	recv_fails(s, chunk(5, STOP, 0, 1, FALSE), "StateChunk: device index 5 out of range");
	recv_fails(s, progress(3), "PrecopyProgress: device index 3 out of range");

	/* source side: SwitchoverAck and CommitResult device indexes */
	{
		g_autoptr(MigdWireSession) src = migd_wire_session_new(MIGD_WIRE_ROLE_SOURCE);
		g_autoptr(MigdWireFrame) h = hello(1, MIGD_WIRE_CAPS_KNOWN);

		migd_wire_session_note_hello_sent(src, h->hello);
		recv_ok(src, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, 0));
		ack = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_SWITCHOVER_ACK, 1);
		recv_fails(src, ack, "SwitchoverAck: device index 1 out of range");
		recv_fails(src, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT, 0),
			   "CommitResult: device index 1 out of range");
	}
}

static void
test_direction_and_order(void **state)
{
	g_autoptr(MigdWireSession) dst = migd_wire_session_new(MIGD_WIRE_ROLE_DESTINATION);
	g_autoptr(MigdWireSession) src = migd_wire_session_new(MIGD_WIRE_ROLE_SOURCE);
	g_autoptr(MigdWireFrame) h = hello(2, MIGD_WIRE_CAPS_KNOWN);
	g_autoptr(MigdWireFrame) bogus =
	    wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE, 0);
	g_autoptr(GError) error = NULL;

	recv_fails(dst, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, 0),
		   "HELLO_REPLY is not sent by a source");
	recv_fails(dst, offer(0), "DEVICE_OFFER received before HELLO");
	recv_fails(dst, keepalive(1), "KEEPALIVE received before HELLO");
	recv_ok(dst, hello(2, MIGD_WIRE_CAPS_KNOWN));
	recv_fails(dst, hello(2, 0), "a second HELLO received");
	recv_fails(dst, offer(0), "DEVICE_OFFER received before our HelloReply was sent");

	migd_wire_session_note_hello_sent(src, h->hello);
	recv_fails(src, offer(0), "DEVICE_OFFER is not sent by a destination");
	recv_fails(src, hello(1, 0), "HELLO is not sent by a destination");

	/* an Abort is always acceptable, even first */
	{
		g_autoptr(MigdWireSession) s = migd_wire_session_new(MIGD_WIRE_ROLE_DESTINATION);

		recv_ok(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT, 0));
		assert_true(migd_wire_session_is_over(s));
	}
	/* a frame whose type this build does not know */
	bogus->type = 99;
	assert_false(migd_wire_session_check_received(src, bogus, &error));
	assert_protocol_error(error, "unknown message type 99");
}

static void
test_commit_mismatch(void **state)
{
	g_autoptr(MigdWireSession) s = destination_ready(MIGD_WIRE_CAPS_KNOWN);
	const guint64 chunks[] = {2, 1};
	const guint64 bytes_short[] = {15, 7};
	const guint64 bytes[] = {10, 7};

	recv_ok(s, offer(0));
	recv_ok(s, offer(1));
	recv_ok(s, chunk(0, STOP, 0, 10, FALSE));
	recv_ok(s, chunk(0, STOP, 1, 0, TRUE));
	recv_ok(s, chunk(1, STOP, 0, 7, FALSE));
	recv_fails(s, commit(2, chunks, bytes_short),
		   "Commit: device 0 sent 2 chunks / 15 bytes, received 2 / 10");
	recv_fails(s, commit(2, chunks, bytes), "Commit: device 1 has not sent its last chunk");
}

static void
test_precopy_not_negotiated(void **state)
{
	g_autoptr(MigdWireSession) s = destination_ready(MIGD_WIRE_CAP_KEEPALIVE);

	assert_true(migd_wire_session_get_capabilities(s) == MIGD_WIRE_CAP_KEEPALIVE);
	recv_ok(s, offer(0));
	recv_fails(s, chunk(0, PRE, 0, 10, FALSE), "PRECOPY was not negotiated");
	recv_ok(s, chunk(0, STOP, 0, 10, FALSE));
}

static void
test_keepalive_monotonic(void **state)
{
	g_autoptr(MigdWireSession) s = destination_ready(MIGD_WIRE_CAPS_KNOWN);

	recv_ok(s, keepalive(1000));
	recv_ok(s, keepalive(1000));
	recv_ok(s, keepalive(2000));
	recv_fails(s, keepalive(1999), "Keepalive timestamp went back from 2000 to 1999");
}

static void
test_negotiate_version(void **state)
{
	struct {
		guint32 lmin, lmax, pmin, pmax;
		guint32 chosen; /* 0: refused */
		const gchar *msg;
	} cases[] = {
	    {1, 1, 1, 1, 1, NULL},
	    {1, 3, 2, 5, 3, NULL},
	    {2, 5, 1, 3, 3, NULL},
	    {1, 1, 1, 4, 1, NULL},
	    {1, 1, 7, 7, 0, "protocol version 7 not supported (supported 1..1)"},
	    {1, 1, 2, 5, 0, "protocol versions 2..5 not supported (supported 1..1)"},
	    {3, 4, 1, 2, 0, "protocol versions 1..2 not supported (supported 3..4)"},
	    {1, 1, 3, 2, 0, "invalid protocol version range 3..2"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		guint32 v = 0;
		gboolean ok = migd_wire_negotiate_version(cases[i].lmin, cases[i].lmax,
							  cases[i].pmin, cases[i].pmax, &v, &error);

		if (cases[i].chosen != 0) {
			assert_true(ok);
			assert_int_equal(v, cases[i].chosen);
			continue;
		}
		assert_false(ok);
		assert_protocol_error(error, cases[i].msg);
		assert_string_equal(error->message, cases[i].msg);
	}
}

static void
test_negotiate_reply(void **state)
{
	g_autoptr(MigdWireFrame) h = hello(1, MIGD_WIRE_CAP_PRECOPY | MIGD_WIRE_CAP_DIRTY_BITMAP |
						  (G_GUINT64_CONSTANT(1) << 50));
	g_autoptr(GError) error = NULL;
	Migd__Wire__HelloReply reply;
	MigdWireFrame frame;

	/* accepted: common capabilities, unknown bits dropped, session echoed */
	assert_true(migd_wire_negotiate(
	    h->hello, 1, 1, MIGD_WIRE_CAP_PRECOPY | MIGD_WIRE_CAP_SWITCHOVER_ACK, &reply, &error));
	assert_true(reply.has_version && !reply.has_refusal);
	assert_int_equal(reply.version, 1);
	assert_true(reply.capabilities == MIGD_WIRE_CAP_PRECOPY);
	assert_ptr_equal(reply.session_id, h->hello->session_id);
	migd_wire_frame_init(&frame, MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, &reply);
	assert_true(migd_wire_frame_validate(&frame, NULL));

	/* refused: a valid refusal frame, the reason in the error */
	h->hello->version_min = 7;
	h->hello->version_max = 7;
	assert_false(migd_wire_negotiate(h->hello, 1, 1, MIGD_WIRE_CAPS_KNOWN, &reply, &error));
	assert_protocol_error(error, "protocol version 7 not supported (supported 1..1)");
	assert_true(reply.has_refusal && !reply.has_version);
	assert_int_equal(reply.refusal, MIGD__WIRE__REASON__REASON_VERSION_UNSUPPORTED);
	reply.message = error->message;
	migd_wire_frame_init(&frame, MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, &reply);
	assert_true(migd_wire_frame_validate(&frame, NULL));
	{
		g_autoptr(GByteArray) out = g_byte_array_new();

		assert_true(migd_wire_frame_append(&frame, out, NULL));
	}
	/* and a destination that sent it is done */
	{
		g_autoptr(MigdWireSession) s = migd_wire_session_new(MIGD_WIRE_ROLE_DESTINATION);

		recv_ok(s, hello(1, 0));
		migd_wire_session_note_hello_reply_sent(s, &reply);
		assert_true(migd_wire_session_is_over(s));
	}
}

/* an ok CommitResult (both devices validated) */
static MigdWireFrame *
commit_result_ok(void)
{
	MigdWireFrame *f = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT, 0);

	f->commit_result->ok = TRUE;
	for (gsize i = 0; i < f->commit_result->n_devices; i++) {
		Migd__Wire__CommitDeviceResult *r = f->commit_result->devices[i];
		r->ok = TRUE;
		r->has_reason = FALSE;
		g_clear_pointer(&r->message, g_free);
	}
	return f;
}

/* a source whose Hello (2 devices) the destination answered with @caps */
static MigdWireSession *
source_ready(guint64 caps)
{
	MigdWireSession *s = migd_wire_session_new(MIGD_WIRE_ROLE_SOURCE);
	g_autoptr(MigdWireFrame) h = hello(2, MIGD_WIRE_CAPS_KNOWN);
	MigdWireFrame *reply = wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, 0);

	migd_wire_session_note_sent(s, h);
	reply->hello_reply->capabilities = caps;
	recv_ok(s, reply);
	recv_ok(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT, 0));
	recv_ok(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT, 1));
	return s;
}

#define START_REQUEST() wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_START_REQUEST, 0)
#define START_GRANT()	wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT, 0)

/* the source's side of the handover: an ok CommitResult keeps the session for one StartRequest */
static void
test_handover_source(void **state)
{
	/* the allowed order */
	{
		g_autoptr(MigdWireSession) s = source_ready(MIGD_WIRE_CAP_HANDOVER);

		recv_fails(s, START_REQUEST(), "START_REQUEST received before an ok COMMIT_RESULT");
	}
	{
		g_autoptr(MigdWireSession) s = source_ready(MIGD_WIRE_CAP_HANDOVER);

		recv_ok(s, commit_result_ok());
		assert_false(migd_wire_session_is_over(s));
		recv_fails(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_SWITCHOVER_ACK, 0),
			   "SWITCHOVER_ACK received after COMMIT_RESULT");
	}
	{
		g_autoptr(MigdWireSession) s = source_ready(MIGD_WIRE_CAP_HANDOVER);

		recv_ok(s, commit_result_ok());
		recv_ok(s, keepalive(5));
		recv_ok(s, START_REQUEST());
		assert_false(migd_wire_session_is_over(s));
		recv_fails(s, START_REQUEST(), "a second START_REQUEST received");
	}
	{
		g_autoptr(MigdWireSession) s = source_ready(MIGD_WIRE_CAP_HANDOVER);

		recv_ok(s, commit_result_ok());
		recv_ok(s, START_REQUEST());
		recv_fails(s, commit_result_ok(), "COMMIT_RESULT received after START_REQUEST");
	}
	/* the destination abandons instead of asking */
	{
		g_autoptr(MigdWireSession) s = source_ready(MIGD_WIRE_CAP_HANDOVER);

		recv_ok(s, commit_result_ok());
		recv_ok(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT, 0));
		assert_true(migd_wire_session_is_over(s));
		recv_fails(s, START_REQUEST(), "received after the session ended");
	}
	/* a failed commit ends the session even with the capability */
	{
		g_autoptr(MigdWireSession) s = source_ready(MIGD_WIRE_CAP_HANDOVER);

		recv_ok(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT, 0));
		assert_true(migd_wire_session_is_over(s));
	}
	/* without the capability: an ok CommitResult ends it, and StartRequest is refused */
	{
		g_autoptr(MigdWireSession) s = source_ready(MIGD_WIRE_CAP_PRECOPY);

		recv_fails(s, START_REQUEST(),
			   "START_REQUEST received, but HANDOVER was not negotiated");
	}
	{
		g_autoptr(MigdWireSession) s = source_ready(MIGD_WIRE_CAP_PRECOPY);

		recv_ok(s, commit_result_ok());
		assert_true(migd_wire_session_is_over(s));
		recv_fails(s, START_REQUEST(), "received after the session ended");
	}
	/* the source never receives its own message */
	{
		g_autoptr(MigdWireSession) s = source_ready(MIGD_WIRE_CAP_HANDOVER);

		recv_ok(s, commit_result_ok());
		recv_fails(s, START_GRANT(), "START_GRANT is not sent by a destination");
	}
}

/* a destination that received both devices' streams and the Commit */
static MigdWireSession *
destination_committed(guint64 caps)
{
	MigdWireSession *s = destination_ready(caps);
	const guint64 chunks[] = {1, 1};
	const guint64 bytes[] = {10, 20};

	recv_ok(s, offer(0));
	recv_ok(s, offer(1));
	recv_ok(s, chunk(0, STOP, 0, 10, TRUE));
	recv_ok(s, chunk(1, STOP, 0, 20, TRUE));
	recv_ok(s, commit(2, chunks, bytes));
	return s;
}

/* the destination's side: the grant comes only after our StartRequest, and ends the session */
static void
test_handover_destination(void **state)
{
	{
		g_autoptr(MigdWireSession) s = destination_committed(MIGD_WIRE_CAPS_KNOWN);
		g_autoptr(MigdWireFrame) request = START_REQUEST();

		recv_fails(s, START_GRANT(),
			   "START_GRANT received before our START_REQUEST was sent");
		migd_wire_session_note_sent(s, request);
		recv_ok(s, keepalive(3));
		recv_ok(s, START_GRANT());
		assert_true(migd_wire_session_is_over(s));
		recv_fails(s, START_GRANT(), "received after the session ended");
	}
	/* the source rolled back: its Abort answers the request */
	{
		g_autoptr(MigdWireSession) s = destination_committed(MIGD_WIRE_CAPS_KNOWN);
		g_autoptr(MigdWireFrame) request = START_REQUEST();

		migd_wire_session_note_sent(s, request);
		recv_ok(s, wire_test_sample(MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT, 0));
		assert_true(migd_wire_session_is_over(s));
	}
	/* not before the Commit, whatever was sent */
	{
		g_autoptr(MigdWireSession) s = destination_ready(MIGD_WIRE_CAPS_KNOWN);

		recv_ok(s, offer(0));
		recv_fails(s, START_GRANT(),
			   "START_GRANT received before our START_REQUEST was sent");
	}
	/* without the capability */
	{
		g_autoptr(MigdWireSession) s =
		    destination_committed(MIGD_WIRE_CAPS_KNOWN & ~MIGD_WIRE_CAP_HANDOVER);
		g_autoptr(MigdWireFrame) request = START_REQUEST();

		migd_wire_session_note_sent(s, request);
		recv_fails(s, START_GRANT(),
			   "START_GRANT received, but HANDOVER was not negotiated");
	}
	/* the destination never receives its own message */
	{
		g_autoptr(MigdWireSession) s = destination_committed(MIGD_WIRE_CAPS_KNOWN);

		recv_fails(s, START_REQUEST(), "START_REQUEST is not sent by a source");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_destination_flow),
	    cmocka_unit_test(test_source_flow),
	    cmocka_unit_test(test_source_hello_reply_checks),
	    cmocka_unit_test(test_sequence_regression),
	    cmocka_unit_test(test_device_range),
	    cmocka_unit_test(test_direction_and_order),
	    cmocka_unit_test(test_commit_mismatch),
	    cmocka_unit_test(test_precopy_not_negotiated),
	    cmocka_unit_test(test_keepalive_monotonic),
	    cmocka_unit_test(test_negotiate_version),
	    cmocka_unit_test(test_negotiate_reply),
	    cmocka_unit_test(test_handover_source),
	    cmocka_unit_test(test_handover_destination),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
