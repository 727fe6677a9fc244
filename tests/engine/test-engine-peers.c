/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Peers that try to hold a destination: silent before Hello, one byte at a time
 * inside a frame, too many at once, a flood of unfinished frames, an invalid
 * Hello. Raw clients on the destination's UNIX socket, with deadlines of tens of
 * milliseconds so that each case takes well under a second.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>

#include "engine-test-util.h"
#include "migd-connection.h"
#include "migd-error.h"
#include "migd-test-log.h"
#include "migd-test-util.h"
#include "migd-wire-frame.h"
#include "migd-wire-limits.h"

#define HELLO_TIMEOUT_MS 150
#define FRAME_TIMEOUT_MS 150

static const gchar *const src_specs[] = {"mtty:seed=2", NULL};
static const gchar *const dst_specs[] = {"mtty:seed=3", NULL};

static EngineFixture *
fixture_new(guint hello_timeout_ms, guint frame_timeout_ms, guint max_pending)
{
	MigdTransportConfig transport = {
	    .hello_timeout_ms = hello_timeout_ms,
	    .frame_timeout_ms = frame_timeout_ms,
	    .max_pending_peers = max_pending,
	};
	return engine_fixture_new_full(src_specs, dst_specs, &transport);
}

/* a raw, non-blocking client of the fixture's destination */
static gint
raw_connect(EngineFixture *fx)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	gint fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(g_str_has_prefix(fx->address, "unix:/"));
	g_strlcpy(sun.sun_path, fx->address + strlen("unix:"), sizeof(sun.sun_path));
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_true(g_unix_set_fd_nonblocking(fd, TRUE, NULL));
	return fd;
}

static void
raw_send(gint fd, const guint8 *data, gsize len)
{
	assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (gssize)len);
}

/* drains @fd into @out while the main loop runs; TRUE at end of stream within @timeout_ms */
static gboolean
raw_read_until_eof(gint fd, GByteArray *out, guint timeout_ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (g_get_monotonic_time() < end) {
		guint8 buf[4096];
		gssize n;
		while (g_main_context_iteration(NULL, FALSE))
			;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			return TRUE;
		if (n > 0) {
			g_byte_array_append(out, buf, (guint)n);
			continue;
		}
		if (errno == ECONNRESET)
			return TRUE;
		assert_true(errno == EAGAIN || errno == EINTR);
		g_usleep(2000);
	}
	return FALSE;
}

/* the one frame the destination sent before it hung up: an Abort with a reason */
static void
assert_abort(GByteArray *bytes, Migd__Wire__Reason reason, const gchar *needle)
{
	g_autoptr(MigdWireDecoder) decoder = migd_wire_decoder_new();
	g_autoptr(MigdWireFrame) frame = NULL;
	g_autoptr(GError) error = NULL;

	assert_true(migd_wire_decoder_feed(decoder, bytes->data, bytes->len, &error));
	frame = migd_wire_decoder_next(decoder, &error);
	if (frame == NULL)
		fail_msg("no frame from the destination (%u bytes)", bytes->len);
	assert_int_equal(frame->type, MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT);
	assert_int_equal(frame->abort->reason, reason);
	if (strstr(frame->abort->message, needle) == NULL)
		fail_msg("abort message '%s' lacks '%s'", frame->abort->message, needle);
}

static GByteArray *
hello_bytes(guint32 version_min, guint32 version_max)
{
	Migd__Wire__Frame frame = MIGD__WIRE__FRAME__INIT;
	Migd__Wire__Hello hello = MIGD__WIRE__HELLO__INIT;
	GByteArray *out = g_byte_array_new();
	guint8 prefix[MIGD_WIRE_VARINT_MAX_BYTES];
	g_autofree guint8 *buf = NULL;
	gsize len;

	hello.version_min = version_min;
	hello.version_max = version_max;
	hello.capabilities = 0;
	hello.host_identity = (gchar *)"raw";
	hello.session_id = (gchar *)"raw-1";
	hello.device_count = 1;
	frame.type = MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO;
	frame.body_case = MIGD__WIRE__FRAME__BODY_HELLO;
	frame.hello = &hello;
	/* packed by hand: our encoder refuses to send what a receiver must refuse */
	len = migd__wire__frame__get_packed_size(&frame);
	buf = g_malloc(len);
	migd__wire__frame__pack(&frame, buf);
	g_byte_array_append(out, prefix, (guint)migd_wire_varint_encode(len, prefix));
	g_byte_array_append(out, buf, (guint)len);
	return out;
}

/* a silent peer is cut at the Hello deadline, told why, and long before the idle timeout */
static void
test_silent_peer_cut_at_hello_deadline(void **state)
{
	g_autoptr(EngineFixture) fx = fixture_new(HELLO_TIMEOUT_MS, 0, 0);
	g_autoptr(GByteArray) got = g_byte_array_new();
	gint64 start = g_get_monotonic_time();
	gint fd = raw_connect(fx);
	gint64 elapsed_ms;

	assert_true(raw_read_until_eof(fd, got, 5000));
	elapsed_ms = (g_get_monotonic_time() - start) / 1000;
	assert_true(elapsed_ms >= HELLO_TIMEOUT_MS);
	assert_abort(got, MIGD__WIRE__REASON__REASON_TIMED_OUT, "no Hello");
	assert_true(migd_test_log_has(MIGD_TEST_LOG_OTHER, "no Hello from", NULL));
	close(fd);
	assert_null(fx->dst_job);
}

/* closing the destination ends the connections still waiting for Hello, and their timers */
static void
test_close_ends_pending_peers(void **state)
{
	g_autoptr(EngineFixture) fx = fixture_new(60000, 0, 0);
	g_autoptr(GByteArray) got = g_byte_array_new();
	gint fd = raw_connect(fx);

	migd_test_spin_ms(20);
	migd_destination_close(fx->dest);
	assert_true(raw_read_until_eof(fd, got, 5000));
	assert_abort(got, MIGD__WIRE__REASON__REASON_CANCELLED, "destination closed");
	close(fd);
}

/* the offers count too: a Hello alone does not buy time */
static void
test_missing_offers_cut_at_hello_deadline(void **state)
{
	g_autoptr(EngineFixture) fx = fixture_new(HELLO_TIMEOUT_MS, 0, 0);
	g_autoptr(GByteArray) hello = hello_bytes(1, 1);
	g_autoptr(GByteArray) got = g_byte_array_new();
	gint fd = raw_connect(fx);

	raw_send(fd, hello->data, hello->len);
	assert_true(raw_read_until_eof(fd, got, 5000));
	/* the HelloReply, then the Abort */
	{
		g_autoptr(MigdWireDecoder) decoder = migd_wire_decoder_new();
		g_autoptr(MigdWireFrame) reply = NULL;
		g_autoptr(MigdWireFrame) abort_frame = NULL;
		assert_true(migd_wire_decoder_feed(decoder, got->data, got->len, NULL));
		reply = migd_wire_decoder_next(decoder, NULL);
		assert_non_null(reply);
		assert_int_equal(reply->type, MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY);
		abort_frame = migd_wire_decoder_next(decoder, NULL);
		assert_non_null(abort_frame);
		assert_int_equal(abort_frame->type, MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT);
		assert_non_null(strstr(abort_frame->abort->message, "0 of 1 device offers"));
	}
	close(fd);
	assert_non_null(fx->dst_job);
	assert_true(migd_job_is_finished(fx->dst_job));
	assert_false(migd_job_get_success(fx->dst_job));
	assert_int_equal(engine_fixture_state(fx->dst_devices, 0), MIGD_STATE_RUNNING);
}

/* one byte per interval inside a frame is no progress: cut at the frame deadline */
static void
test_slow_loris_cut_at_frame_deadline(void **state)
{
	/* the Hello deadline is out of the way: only the frame deadline can end this */
	g_autoptr(EngineFixture) fx = fixture_new(60000, FRAME_TIMEOUT_MS, 0);
	g_autoptr(GByteArray) hello = hello_bytes(1, 1);
	gint fd = raw_connect(fx);
	gint64 start = g_get_monotonic_time();
	gboolean eof = FALSE;
	guint sent = 0;

	/* a whole frame's worth of time in single bytes, each well within the old idle rule */
	while (!eof && g_get_monotonic_time() - start < 3 * G_USEC_PER_SEC) {
		g_autoptr(GByteArray) got = g_byte_array_new();
		if (sent < hello->len - 1 && send(fd, hello->data + sent, 1, MSG_NOSIGNAL) == 1)
			sent++;
		eof = raw_read_until_eof(fd, got, 20);
	}
	assert_true(eof);
	assert_true(g_get_monotonic_time() - start < 2 * G_USEC_PER_SEC);
	assert_true(sent >= 2);
	assert_true(
	    migd_test_log_has(MIGD_TEST_LOG_OTHER, "did not complete a frame within 150 ms", NULL));
	close(fd);
}

/* N pending connections are served; the N+1st is refused with a reason and a log line */
static void
test_pending_peers_capped(void **state)
{
	const guint max = 3;
	g_autoptr(EngineFixture) fx = fixture_new(60000, 0, max);
	g_autoptr(GByteArray) got = g_byte_array_new();
	gint fds[3];
	gint extra;

	for (guint i = 0; i < max; i++)
		fds[i] = raw_connect(fx);
	migd_test_spin_ms(50);
	extra = raw_connect(fx);
	assert_true(raw_read_until_eof(extra, got, 5000));
	assert_abort(got, MIGD__WIRE__REASON__REASON_BUSY,
		     "too many connections waiting for Hello");
	assert_true(
	    migd_test_log_has(MIGD_TEST_LOG_WARNING, "max-pending-peers 3", "refusing", NULL));
	close(extra);
	/* the first ones are still held open, waiting for their Hello */
	for (guint i = 0; i < max; i++) {
		g_autoptr(GByteArray) none = g_byte_array_new();
		assert_false(raw_read_until_eof(fds[i], none, 10));
		assert_int_equal(none->len, 0);
	}
	/* one of them goes: room for another */
	close(fds[0]);
	migd_test_spin_ms(50);
	fds[0] = raw_connect(fx);
	{
		g_autoptr(GByteArray) none = g_byte_array_new();
		assert_false(raw_read_until_eof(fds[0], none, 50));
	}
	for (guint i = 0; i < max; i++)
		close(fds[i]);
}

/* many unfinished big frames: what they hold stays under the daemon's budget */
static void
test_partial_frame_flood_bounded(void **state)
{
	const gsize budget = 4u * 1024u * 1024u;
	const gsize frame_len = 1536u * 1024u; /* two fit, the third does not */
	g_autoptr(EngineFixture) fx = fixture_new(60000, 60000, 16);
	guint8 prefix[MIGD_WIRE_VARINT_MAX_BYTES];
	gsize prefix_len = migd_wire_varint_encode(frame_len, prefix);
	guint8 body[100] = {0};
	gint fds[8];
	guint refused = 0;

	assert_int_equal(migd_connection_get_partial_frame_bytes(), 0);
	migd_connection_set_partial_frame_budget(budget);
	for (guint i = 0; i < G_N_ELEMENTS(fds); i++) {
		g_autoptr(GByteArray) got = g_byte_array_new();
		fds[i] = raw_connect(fx);
		raw_send(fds[i], prefix, prefix_len);
		raw_send(fds[i], body, sizeof(body));
		migd_test_spin_ms(20);
		assert_true(migd_connection_get_partial_frame_bytes() <= budget);
		if (raw_read_until_eof(fds[i], got, 30)) {
			assert_abort(got, MIGD__WIRE__REASON__REASON_BUSY,
				     "memory for partial frames is exhausted");
			refused++;
		}
	}
	assert_int_equal(migd_connection_get_partial_frame_bytes(), 2 * frame_len);
	assert_int_equal(refused, G_N_ELEMENTS(fds) - 2);
	assert_true(migd_test_log_has(MIGD_TEST_LOG_WARNING, "max-partial-frame-bytes", NULL));
	for (guint i = 0; i < G_N_ELEMENTS(fds); i++)
		close(fds[i]);
	/* the peers are gone: so is what their frames held */
	{
		gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
		while (migd_connection_get_partial_frame_bytes() > 0 &&
		       g_get_monotonic_time() < end)
			g_main_context_iteration(NULL, TRUE);
	}
	assert_int_equal(migd_connection_get_partial_frame_bytes(), 0);
	migd_connection_set_partial_frame_budget(0);
	assert_int_equal(migd_connection_get_partial_frame_budget(),
			 MIGD_WIRE_PARTIAL_FRAME_BUDGET_DEFAULT);
}

/* an invalid Hello is answered with an Abort that says what is wrong, not a dropped line */
static void
test_invalid_hello_refused_with_reason(void **state)
{
	g_autoptr(EngineFixture) fx = fixture_new(60000, 0, 0);
	g_autoptr(GByteArray) hello = hello_bytes(2, 1);
	g_autoptr(GByteArray) got = g_byte_array_new();
	gint fd = raw_connect(fx);

	raw_send(fd, hello->data, hello->len);
	assert_true(raw_read_until_eof(fd, got, 5000));
	assert_abort(got, MIGD__WIRE__REASON__REASON_PROTOCOL_ERROR, "version");
	close(fd);
	assert_null(fx->dst_job);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    migd_test_log_unit_test(test_silent_peer_cut_at_hello_deadline),
	    migd_test_log_unit_test(test_close_ends_pending_peers),
	    migd_test_log_unit_test(test_missing_offers_cut_at_hello_deadline),
	    migd_test_log_unit_test(test_slow_loris_cut_at_frame_deadline),
	    migd_test_log_unit_test(test_pending_peers_capped),
	    migd_test_log_unit_test(test_partial_frame_flood_bounded),
	    migd_test_log_unit_test(test_invalid_hello_refused_with_reason),
	};
	migd_test_log_init(MIGD_TEST_LOG_QUIET);
	return cmocka_run_group_tests_name("engine-peers", tests, NULL, NULL);
}
