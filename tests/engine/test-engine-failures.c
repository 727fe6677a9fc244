/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The failure matrix: a failure injected at every phase must end with the
 * source devices RUNNING, the destination devices reset, and the cause named
 * in the job's result. Scripted raw peers stand in for broken daemons.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "engine-test-util.h"
#include "migd-error.h"
#include "migd-plugin.h"
#include "migd-wire-frame.h"
#include "migd-wire-limits.h"

static void
assert_source_rolled_back(EngineFixture *fx, const gchar *needle)
{
	const gchar *message;

	assert_non_null(fx->src_job);
	assert_true(migd_job_is_finished(fx->src_job));
	assert_false(migd_job_get_success(fx->src_job));
	assert_int_equal(migd_job_get_phase(fx->src_job), MIGD_JOB_PHASE_FAILED);
	message = migd_job_get_message(fx->src_job);
	if (strstr(message, needle) == NULL)
		fail_msg("source message '%s' lacks '%s'", message, needle);
	assert_non_null(strstr(message, "source devices back to RUNNING"));
	for (guint i = 0; i < fx->src_devices->len; i++)
		assert_int_equal(engine_fixture_state(fx->src_devices, i), MIGD_STATE_RUNNING);
}

static void
assert_destination_reset(EngineFixture *fx)
{
	for (guint i = 0; i < fx->dst_devices->len; i++)
		assert_int_equal(engine_fixture_state(fx->dst_devices, i), MIGD_STATE_RUNNING);
	if (fx->dst_job != NULL) {
		assert_true(migd_job_is_finished(fx->dst_job));
		assert_false(migd_job_get_success(fx->dst_job));
	}
}

/* ---- real peers with faults ---- */

static void
test_compatibility_mismatch_touches_nothing(void **state)
{
	const gchar *src[] = {"mlx5:state_size=4M,seed=1", "hisi_acc:seed=2", NULL};
	const gchar *dst[] = {"mlx5:seed=3", "pds:seed=4", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "destination rejected src1");
	assert_non_null(strstr(migd_job_get_message(fx->src_job), "hisi_acc_vfio_pci"));
	/* refused before the source moved: it never pre-copied */
	assert_int_equal(migd_job_get_precopy_rounds(fx->src_job), 0);
	assert_int_equal(migd_job_get_bytes(fx->src_job), 0);
	assert_destination_reset(fx);
}

static void
test_device_count_mismatch(void **state)
{
	const gchar *src[] = {"mtty:seed=1", NULL};
	const gchar *dst[] = {"mtty:seed=2", "mtty:seed=3", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "1 devices offered, this host prepared 2");
	assert_destination_reset(fx);
}

static void
test_rejected_offer_resets_nothing(void **state)
{
	const gchar *src[] = {"hisi_acc:seed=2", NULL};
	const gchar *dst[] = {"pds:seed=4", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "destination rejected src0");
	assert_destination_reset(fx);
	/* nothing was touched, so nothing was reset: the message must not claim it */
	assert_non_null(fx->dst_job);
	if (strstr(migd_job_get_message(fx->dst_job), "reset") != NULL)
		fail_msg("destination: %s", migd_job_get_message(fx->dst_job));
}

static void
test_destination_device_busy(void **state)
{
	const gchar *src[] = {"mtty:seed=1", NULL};
	const gchar *dst[] = {"mtty:seed=2", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(MigdDataFd) busy_fd = NULL;

	/* the destination's device is in another save session */
	assert_true(migd_device_transition(g_ptr_array_index(fx->dst_devices, 0),
					   MIGD_STATE_PRE_COPY, MIGD_STATE_RUNNING, &busy_fd, NULL,
					   NULL));
	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "PRE_COPY, not idle");
	/* left alone: it is somebody else's */
	assert_int_equal(engine_fixture_state(fx->dst_devices, 0), MIGD_STATE_PRE_COPY);
}

static void
test_source_arc_fails(void **state)
{
	/* the source device fails entering STOP_COPY: after pre-copy, mid-switchover */
	const gchar *src[] = {
	    "mlx5:state_size=4M,seed=1,fail_arc=PRE_COPY_P2P->STOP_COPY,fail_errno=EIO",
	    "hisi_acc:seed=2", NULL};
	const gchar *dst[] = {"mlx5:seed=3", "hisi_acc:seed=4", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "PRE_COPY_P2P -> STOP_COPY");
	assert_non_null(strstr(migd_job_get_message(fx->src_job), "Input/output error"));
	assert_destination_reset(fx);
	assert_non_null(strstr(migd_job_get_message(fx->dst_job), "source aborted"));
}

static void
test_destination_validation_fails(void **state)
{
	/* the mtty header says 2 ports, the destination has 1: its write fails with EFAULT */
	const gchar *src[] = {"mtty:seed=1,ports=2", "pds:seed=2", NULL};
	const gchar *dst[] = {"mtty:seed=3,ports=1", "pds:seed=4", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "destination aborted");
	assert_non_null(strstr(migd_job_get_message(fx->src_job), "Bad address"));
	assert_destination_reset(fx);
}

static void
test_destination_device_in_error_is_reset(void **state)
{
	/* the driver's RESUMING -> STOP fails into ERROR: the device must be reset, and
	 * the next migration into it must be accepted */
	const gchar *src[] = {"mlx5:state_size=4M,seed=1", NULL};
	const gchar *dst[] = {"mlx5:seed=3,fail_arc=RESUMING->STOP,fail_to_error=1", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "could not validate");
	assert_non_null(strstr(migd_job_get_message(fx->dst_job), "destination devices reset"));
	assert_null(strstr(migd_job_get_message(fx->dst_job), "RESET FAILED"));
	assert_destination_reset(fx);
}

static void
test_hisi_acc_reset_quirk_walked_back(void **state)
{
	/* hisi_acc match data differs (EFAULT); its VFIO_DEVICE_RESET leaves the FSM in
	 * RESUMING, so recovery must notice and walk it back instead of assuming RUNNING */
	const gchar *src[] = {"hisi_acc:seed=1", NULL};
	const gchar *dst[] = {"hisi_acc:seed=3,dev_id=0xa256", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "Bad address");
	assert_false(migd_job_get_success(fx->dst_job));
	assert_null(strstr(migd_job_get_message(fx->dst_job), "RESET FAILED"));
	assert_destination_reset(fx);
}

/*
 * ---- hisi_acc destinations with nothing loaded ----
 * A failure before the 40 bytes of match data arrive leaves a destination VF in
 * RESUMING: its reset keeps the FSM and RESUMING -> STOP is EINVAL with nothing
 * loaded. The plugin's quirk (set here as plugins/hisi_acc does; the engine
 * tests load no plugins) has the device closed and reopened, which the driver
 * answers with RUNNING.
 */

static void
hisi_dst_quirks(EngineFixture *fx)
{
	for (guint i = 0; i < fx->dst_devices->len; i++)
		migd_device_set_recovery_quirks(g_ptr_array_index(fx->dst_devices, i),
						MIGD_RECOVERY_QUIRK_RESET_KEEPS_STATE |
						    MIGD_RECOVERY_QUIRK_REOPEN_RESETS_STATE);
}

static void
assert_hisi_dst_running(EngineFixture *fx)
{
	assert_non_null(fx->dst_job);
	assert_true(migd_job_is_finished(fx->dst_job));
	assert_false(migd_job_get_success(fx->dst_job));
	if (strstr(migd_job_get_message(fx->dst_job), "RESET FAILED") != NULL)
		fail_msg("destination: %s", migd_job_get_message(fx->dst_job));
	for (guint i = 0; i < fx->dst_devices->len; i++)
		assert_int_equal(engine_fixture_state(fx->dst_devices, i), MIGD_STATE_RUNNING);
}

static void
test_hisi_acc_source_precopy_fails(void **state)
{
	const gchar *src[] = {"hisi_acc:seed=1,fail_arc=RUNNING->PRE_COPY,fail_errno=EIO", NULL};
	const gchar *dst[] = {"hisi_acc:seed=3", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);

	hisi_dst_quirks(fx);
	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "RUNNING -> PRE_COPY");
	assert_hisi_dst_running(fx);
	assert_non_null(strstr(migd_job_get_message(fx->dst_job), "destination devices reopened"));
}

static void
test_hisi_acc_dirty_tracking_fails(void **state)
{
	/* the source's IOMMU cannot track dirty pages and the job refuses to go on without */
	const gchar *src[] = {"hisi_acc:seed=2,iommu_dirty=0", NULL};
	const gchar *dst[] = {"hisi_acc:seed=12", NULL};
	const MigdIovaRange ranges[] = {{0, 64 * 1024 * 1024}};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	MigdSourceOptions options;

	hisi_dst_quirks(fx);
	migd_source_options_init(&options);
	options.dirty_fallback = MIGD_DIRTY_FALLBACK_REFUSE;
	migd_device_set_iova_ranges(g_ptr_array_index(fx->src_devices, 0), ranges, 1);
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "dirty tracking");
	assert_hisi_dst_running(fx);
}

/* ---- a raw source: Hello and one offer, accepted; then it closes or holds ---- */

typedef struct {
	gchar *address;
	MigdDevice *like; /* a device like the destination's, for the offer */
	gboolean hold;	  /* hold the connection after the accept until the peer closes */
	gint accepted;	  /* atomic */
	gint done;	  /* atomic: the connection is closed */
} OfferSource;

static gpointer
offer_source_thread(gpointer user_data)
{
	OfferSource *os = user_data;
	g_autoptr(MigdWireDecoder) decoder = migd_wire_decoder_new();
	MigdWireFrame *frame;
	gint fd = engine_raw_connect(os->address);

	g_assert(fd >= 0);
	g_assert(engine_raw_hello_offer(fd, decoder, 0, os->like));
	g_atomic_int_set(&os->accepted, 1);
	/* holding: until the destination goes away */
	while (os->hold && (frame = engine_raw_next(fd, decoder)) != NULL)
		migd_wire_frame_free(frame);
	close(fd);
	g_atomic_int_set(&os->done, 1);
	return NULL;
}

static void
test_hisi_acc_peer_closes_after_offers(void **state)
{
	const gchar *src[] = {"hisi_acc:seed=1", NULL};
	const gchar *dst[] = {"hisi_acc:seed=3", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	OfferSource os = {.address = fx->address, .like = g_ptr_array_index(fx->src_devices, 0)};
	GThread *thread;
	gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

	hisi_dst_quirks(fx);
	thread = g_thread_new("offer-source", offer_source_thread, &os);
	while ((fx->dst_job == NULL || !migd_job_is_finished(fx->dst_job)) &&
	       g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	g_thread_join(thread);
	assert_true(g_atomic_int_get(&os.accepted));
	assert_hisi_dst_running(fx);
}

static void
test_hisi_acc_destination_shuts_down(void **state)
{
	const gchar *src[] = {"hisi_acc:seed=1", NULL};
	const gchar *dst[] = {"hisi_acc:seed=3", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	OfferSource os = {
	    .address = fx->address, .like = g_ptr_array_index(fx->src_devices, 0), .hold = TRUE};
	GThread *thread;
	gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

	hisi_dst_quirks(fx);
	thread = g_thread_new("offer-source", offer_source_thread, &os);
	while (!g_atomic_int_get(&os.accepted) && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	assert_true(g_atomic_int_get(&os.accepted));
	assert_int_equal(engine_fixture_state(fx->dst_devices, 0), MIGD_STATE_RESUMING);
	/* the destination daemon stops with its device resuming and nothing loaded */
	migd_destination_close(fx->dest);
	while ((fx->dst_job == NULL || !migd_job_is_finished(fx->dst_job) ||
		!g_atomic_int_get(&os.done)) &&
	       g_get_monotonic_time() < deadline) {
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(1000);
	}
	g_thread_join(thread);
	assert_hisi_dst_running(fx);
}

static void
test_cancel_during_precopy(void **state)
{
	const gchar *src[] = {"mlx5:state_size=64M,seed=1,save_rate=16M", NULL};
	const gchar *dst[] = {"mlx5:seed=2", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	gint64 start;

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	/* let it reach pre-copy, then cancel as an operator would */
	start = g_get_monotonic_time();
	while (migd_job_get_phase(fx->src_job) != MIGD_JOB_PHASE_PRECOPY &&
	       g_get_monotonic_time() - start < 10 * G_USEC_PER_SEC)
		g_main_context_iteration(NULL, TRUE);
	assert_int_equal(migd_job_get_phase(fx->src_job), MIGD_JOB_PHASE_PRECOPY);
	assert_true(migd_job_cancel(fx->src_job));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "cancelled");
	assert_destination_reset(fx);
	/* a finished job cannot be cancelled again */
	assert_false(migd_job_cancel(fx->src_job));
}

static void
test_timeout(void **state)
{
	const gchar *src[] = {"pds:seed=1,save_rate=8K", NULL};
	const gchar *dst[] = {"pds:seed=2", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	MigdSourceOptions options;

	migd_source_options_init(&options);
	options.timeout_s = 1;
	assert_non_null(engine_fixture_migrate(fx, &options, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "did not finish within 1 s");
	assert_destination_reset(fx);
}

static void
test_destination_goes_away(void **state)
{
	const gchar *src[] = {"mlx5:state_size=64M,seed=1,save_rate=32M", NULL};
	const gchar *dst[] = {"mlx5:seed=2", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	gint64 start;

	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	start = g_get_monotonic_time();
	while (migd_job_get_bytes(fx->src_job) == 0 &&
	       g_get_monotonic_time() - start < 10 * G_USEC_PER_SEC)
		g_main_context_iteration(NULL, TRUE);
	/* the destination daemon shuts down mid-stream */
	migd_destination_close(fx->dest);
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, "destination");
	assert_destination_reset(fx);
}

static void
test_nobody_listening(void **state)
{
	const gchar *src[] = {"mtty:seed=1", NULL};
	const gchar *dst[] = {"mtty:seed=2", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autofree gchar *address = g_strdup(fx->address);

	migd_destination_close(fx->dest);
	g_free(fx->address);
	fx->address = g_strdup(address);
	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 30);
	assert_source_rolled_back(fx, address);
}

static void
test_refused_before_start(void **state)
{
	const gchar *src[] = {"mtty:seed=1", NULL};
	const gchar *dst[] = {"mtty:seed=2", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	g_autoptr(GError) e1 = NULL;
	g_autoptr(GError) e2 = NULL;
	g_autoptr(GError) e3 = NULL;
	g_autoptr(GPtrArray) none = g_ptr_array_new();
	MigdTransportConfig tls = {0};

	/* a device that is not RUNNING */
	assert_true(migd_device_transition(g_ptr_array_index(fx->src_devices, 0), MIGD_STATE_STOP,
					   MIGD_STATE_RUNNING, NULL, NULL, NULL));
	assert_null(engine_fixture_migrate(fx, NULL, &e1));
	assert_true(g_error_matches(e1, MIGD_ERROR, MIGD_ERROR_BUSY));
	assert_non_null(strstr(e1->message, "not RUNNING"));
	/* no devices, a bad address, TLS without certificates */
	assert_null(migd_source_start(none, fx->address, &fx->transport, NULL, &e2));
	assert_true(g_error_matches(e2, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_null(migd_source_start(fx->src_devices, "tcp:nohost", &fx->transport, NULL, &e3));
	assert_true(g_error_matches(e3, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&e3);
	assert_null(migd_source_start(fx->src_devices, fx->address, &tls, NULL, &e3));
	assert_non_null(e3);
}

/* ---- a scripted raw destination: accepts, reads the Hello, answers with @script ---- */

typedef struct {
	gint listen_fd;
	GBytes *script; /* NULL: close right after the Hello */
	/* or: build a HelloReply for the Hello received (it must echo the session id) */
	GBytes *(*reply_func)(const Migd__Wire__Hello *hello);
	GThread *thread;
	gboolean hold_open;
	gchar *path;
} RawPeer;

static gpointer
raw_peer_thread(gpointer user_data)
{
	RawPeer *peer = user_data;
	guint8 buf[4096];
	gssize n;
	gint fd = accept(peer->listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	/* the Hello (small: one read is enough on loopback) */
	n = read(fd, buf, sizeof(buf));
	if (n <= 0) {
		close(fd);
		return NULL;
	}
	if (peer->reply_func != NULL) {
		g_autoptr(MigdWireDecoder) decoder = migd_wire_decoder_new();
		g_autoptr(MigdWireFrame) hello = NULL;
		g_assert(migd_wire_decoder_feed(decoder, buf, (gsize)n, NULL));
		hello = migd_wire_decoder_next(decoder, NULL);
		g_assert(hello != NULL && hello->type == MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO);
		peer->script = peer->reply_func(hello->hello);
	}
	if (peer->script != NULL) {
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(peer->script, &len);
		g_assert(write(fd, data, len) == (gssize)len);
	}
	/* hold the connection until the source gives up, as a hung daemon would */
	while (peer->hold_open && read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

/* on a plain UNIX socket in @dir, as the engines use */
static gchar *
raw_peer_start(RawPeer *peer, const gchar *dir)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	g_snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/raw-peer.sock", dir);
	peer->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(peer->listen_fd >= 0);
	assert_int_equal(bind(peer->listen_fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(peer->listen_fd, 1), 0);
	peer->path = g_strdup(sun.sun_path);
	peer->thread = g_thread_new("raw-peer", raw_peer_thread, peer);
	return g_strdup_printf("unix:%s", sun.sun_path);
}

static void
raw_peer_stop(RawPeer *peer)
{
	shutdown(peer->listen_fd, SHUT_RDWR);
	g_thread_join(peer->thread);
	close(peer->listen_fd);
	g_unlink(peer->path);
	g_clear_pointer(&peer->path, g_free);
	g_clear_pointer(&peer->script, g_bytes_unref);
}

static void
run_against_raw_peer_full(GBytes *script, GBytes *(*reply_func)(const Migd__Wire__Hello *),
			  gboolean hold_open, const gchar *needle)
{
	const gchar *src[] = {"mlx5:state_size=4M,seed=1", "mtty:seed=2", NULL};
	const gchar *dst[] = {"mtty:seed=3", NULL};
	g_autoptr(EngineFixture) fx = engine_fixture_new(src, dst);
	RawPeer peer = {.script = script, .reply_func = reply_func, .hold_open = hold_open};
	g_autofree gchar *address = raw_peer_start(&peer, fx->tmpdir);

	g_free(fx->address);
	fx->address = g_strdup(address);
	assert_non_null(engine_fixture_migrate(fx, NULL, NULL));
	engine_fixture_wait(fx, 60);
	raw_peer_stop(&peer);
	assert_source_rolled_back(fx, needle);
}

static void
run_against_raw_peer(GBytes *script, gboolean hold_open, const gchar *needle)
{
	run_against_raw_peer_full(script, NULL, hold_open, needle);
}

static GBytes *
frame_bytes(MigdWireMsgType type, gpointer body)
{
	MigdWireFrame frame;
	g_autoptr(GByteArray) buf = g_byte_array_new();
	migd_wire_frame_init(&frame, type, body);
	assert_true(migd_wire_frame_append(&frame, buf, NULL));
	return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}

static void
test_peer_closes_after_hello(void **state)
{
	run_against_raw_peer(NULL, FALSE, "closed the connection");
}

static void
test_corrupt_frame(void **state)
{
	/* a valid length prefix and garbage in the body */
	static const guint8 garbage[] = {0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	run_against_raw_peer(g_bytes_new_static(garbage, sizeof(garbage)), TRUE, "");
}

static void
test_oversized_length(void **state)
{
	/* 2^40: refused from the prefix alone, nothing allocated */
	static const guint8 huge[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x20};
	run_against_raw_peer(g_bytes_new_static(huge, sizeof(huge)), TRUE, "exceeds the maximum");
}

static void
test_unknown_message(void **state)
{
	/* Frame { type = 99 }: field 1, varint */
	static const guint8 unknown[] = {0x02, 0x08, 0x63};
	run_against_raw_peer(g_bytes_new_static(unknown, sizeof(unknown)), TRUE, "unknown");
}

static GBytes *
reply_wrong_version(const Migd__Wire__Hello *hello)
{
	Migd__Wire__HelloReply reply = MIGD__WIRE__HELLO_REPLY__INIT;
	reply.has_version = TRUE;
	reply.version = MIGD_WIRE_PROTOCOL_VERSION_MAX + 6;
	reply.session_id = hello->session_id;
	return frame_bytes(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, &reply);
}

static void
test_wrong_version(void **state)
{
	run_against_raw_peer_full(NULL, reply_wrong_version, TRUE, "version 7");
}

static GBytes *
reply_refusal(const Migd__Wire__Hello *hello)
{
	Migd__Wire__HelloReply reply = MIGD__WIRE__HELLO_REPLY__INIT;
	reply.has_refusal = TRUE;
	reply.refusal = MIGD__WIRE__REASON__REASON_BUSY;
	reply.message = (gchar *)"maintenance window";
	reply.session_id = hello->session_id;
	return frame_bytes(MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, &reply);
}

static void
test_destination_refuses(void **state)
{
	run_against_raw_peer_full(NULL, reply_refusal, TRUE, "maintenance window");
}

/* a destination that refuses our Hello with a reason: the job's message carries it */
static void
test_destination_aborts_with_reason(void **state)
{
	Migd__Wire__Abort abort_msg = MIGD__WIRE__ABORT__INIT;
	abort_msg.reason = MIGD__WIRE__REASON__REASON_PROTOCOL_ERROR;
	abort_msg.message = (gchar *)"Hello.version_min 2 > version_max 1";
	run_against_raw_peer(frame_bytes(MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT, &abort_msg), TRUE,
			     "Hello.version_min 2 > version_max 1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_compatibility_mismatch_touches_nothing),
	    cmocka_unit_test(test_device_count_mismatch),
	    cmocka_unit_test(test_rejected_offer_resets_nothing),
	    cmocka_unit_test(test_destination_device_busy),
	    cmocka_unit_test(test_source_arc_fails),
	    cmocka_unit_test(test_destination_validation_fails),
	    cmocka_unit_test(test_destination_device_in_error_is_reset),
	    cmocka_unit_test(test_hisi_acc_reset_quirk_walked_back),
	    cmocka_unit_test(test_hisi_acc_source_precopy_fails),
	    cmocka_unit_test(test_hisi_acc_dirty_tracking_fails),
	    cmocka_unit_test(test_hisi_acc_peer_closes_after_offers),
	    cmocka_unit_test(test_hisi_acc_destination_shuts_down),
	    cmocka_unit_test(test_cancel_during_precopy),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_destination_goes_away),
	    cmocka_unit_test(test_nobody_listening),
	    cmocka_unit_test(test_refused_before_start),
	    cmocka_unit_test(test_peer_closes_after_hello),
	    cmocka_unit_test(test_corrupt_frame),
	    cmocka_unit_test(test_oversized_length),
	    cmocka_unit_test(test_unknown_message),
	    cmocka_unit_test(test_wrong_version),
	    cmocka_unit_test(test_destination_refuses),
	    cmocka_unit_test(test_destination_aborts_with_reason),
	};
	g_log_set_always_fatal(G_LOG_FATAL_MASK);
	return cmocka_run_group_tests_name("engine-failures", tests, NULL, NULL);
}
