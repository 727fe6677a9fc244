/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The destination engine. Sessions tagged with a migration id go into the
 * devices an expectation reserved for that id, several at once; an untagged
 * session takes every device, when nothing is expected and nothing else runs.
 * Offers are checked against the prepared local devices before the source
 * touches anything; accepted devices go to RESUMING and get a writer thread
 * each; a full writer pauses reading from the network (TCP carries the
 * backpressure to the source). A device's initial pre-copy data, once written,
 * is acknowledged (switchover-ack).
 * Commit: every device RESUMING -> STOP (the driver validates); only if all
 * pass do they go RUNNING. Anything else resets them. With CAP_HANDOVER they
 * stay in STOP after the ok CommitResult until the start (start=auto: at
 * once; manual: Job.Start), the StartRequest and the source's StartGrant; then
 * RUNNING_P2P (where the device has it) and RUNNING. The source's rollback, a
 * lost link or Job.Abandon before the grant reset them.
 */
#include "config.h"

#include <string.h>

#include "migd-connection.h"
#include "migd-crc32c.h"
#include "migd-dirty-sink.h"
#include "migd-destination-private.h"
#include "migd-destination.h"
#include "migd-error.h"
#include "migd-journal.h"
#include "migd-plugin-generic.h"
#include "migd-stream-writer.h"
#include "migd-wire-limits.h"

/* while acks are owed, how often to look whether the writers have caught up */
#define MIGD_DESTINATION_ACK_CHECK_MS 5

static void
migd_dest_chunk_free(MigdDestChunk *chunk)
{
	g_bytes_unref(chunk->bytes);
	g_free(chunk);
}

G_DEFINE_TYPE(MigdDestination, migd_destination, G_TYPE_OBJECT)

enum { SIGNAL_JOB_STARTED, SIGNAL_EXPECTATION_ENDED, SIGNAL_LAST };
static guint migd_destination_signals[SIGNAL_LAST];

static void
migd_dest_device_free(MigdDestDevice *dd)
{
	if (dd->writer != NULL) {
		migd_stream_writer_cancel(dd->writer);
		g_object_unref(dd->writer);
	}
	g_queue_clear_full(&dd->pending, (GDestroyNotify)migd_dest_chunk_free);
	g_clear_pointer(&dd->head, g_byte_array_unref);
	g_clear_pointer(&dd->dirty, migd_dirty_sink_free);
	g_clear_object(&dd->plugin);
	g_object_unref(dd->device);
	g_free(dd->name);
	g_free(dd);
}

static void
migd_dest_session_unref(MigdDestSession *self)
{
	if (--self->refcount > 0)
		return;
	g_clear_handle_id(&self->ack_timer_id, g_source_remove);
	g_clear_handle_id(&self->handshake_timer_id, g_source_remove);
	if (self->conn != NULL) {
		migd_connection_detach(self->conn);
		g_object_unref(self->conn);
	}
	if (self->job != NULL) {
		if (self->cancel_handler != 0)
			g_signal_handler_disconnect(self->job, self->cancel_handler);
		g_object_unref(self->job);
	}
	g_ptr_array_unref(self->devices);
	if (self->commit != NULL)
		migd__wire__commit__free_unpacked(self->commit, NULL);
	g_clear_object(&self->start_task);
	g_free(self);
}

static gboolean
migd_dest_session_unref_idle_cb(gpointer user_data)
{
	migd_dest_session_unref(user_data);
	return G_SOURCE_REMOVE;
}

static gboolean
migd_dest_session_send(MigdDestSession *self, MigdWireMsgType type, gpointer body)
{
	MigdWireFrame frame;
	g_autoptr(GError) error = NULL;

	migd_wire_frame_init(&frame, type, body);
	if (!migd_connection_send(self->conn, &frame, &error)) {
		migd_dest_session_fail(self, error, FALSE);
		return FALSE;
	}
	return TRUE;
}

/*
 * An aborted RESUMING session can only end by reset (uAPI), or by closing and
 * reopening where the driver's reset keeps the FSM (the recovery policy).
 * Returns the failures (NULL: none); *@outcome says what was done to the
 * devices this session touched, NULL when it touched none.
 */
static gchar *
migd_dest_session_reset_devices(MigdDestSession *self, gchar **outcome)
{
	g_autoptr(GString) problems = g_string_new(NULL);
	guint n_reset = 0;
	guint n_reopened = 0;
	guint n_other = 0;

	for (guint i = 0; i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		if (dd->writer != NULL)
			migd_stream_writer_cancel(dd->writer);
		g_queue_clear_full(&dd->pending, (GDestroyNotify)migd_dest_chunk_free);
	}
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		g_auto(MigdRecoveryReport) report = {0};
		g_autoptr(GError) error = NULL;
		if (!dd->touched)
			continue;
		if (!migd_device_recover(dd->device, MIGD_STATE_ERROR, &report, &error))
			g_string_append_printf(problems, "%s%s", problems->len > 0 ? "; " : "",
					       error->message);
		else if (report.action == MIGD_RECOVERY_RESET)
			n_reset++;
		else if (report.action == MIGD_RECOVERY_REOPENED)
			n_reopened++;
		else
			n_other++;
		dd->touched = FALSE;
		g_clear_object(&dd->writer);
	}
	if (n_reset > 0 && n_reopened > 0)
		*outcome = g_strdup("destination devices reset and reopened");
	else if (n_reset > 0)
		*outcome = g_strdup("destination devices reset");
	else if (n_reopened > 0)
		*outcome = g_strdup("destination devices reopened");
	else if (n_other > 0)
		*outcome = g_strdup("destination devices back to RUNNING");
	else
		*outcome = NULL;
	return problems->len > 0 ? g_string_free(g_steal_pointer(&problems), FALSE) : NULL;
}

static void
migd_dest_session_finish(MigdDestSession *self, gboolean success, const gchar *message)
{
	MigdDestination *dest = self->dest;

	if (self->finished)
		return;
	self->finished = TRUE;
	g_clear_handle_id(&self->ack_timer_id, g_source_remove);
	g_clear_handle_id(&self->handshake_timer_id, g_source_remove);
	if (self->pending) {
		self->pending = FALSE;
		g_ptr_array_remove_fast(dest->pending, self);
	}
	if (self->conn != NULL)
		migd_connection_close(self->conn, NULL);
	/* success: running; failure: already reset */
	if (self->journaled)
		migd_journal_end(dest->journal, self->job);
	if (self->job != NULL)
		migd_job_complete(self->job, success, message);
	else if (!success)
		g_message("session from %s ended: %s",
			  self->conn != NULL ? migd_connection_get_peer_identity(self->conn) : "?",
			  message);
	g_ptr_array_remove_fast(dest->sessions, self);
	/*
	 * what a device's DMA dirtied stays readable until the next migration into
	 * that device completes; sessions into other devices leave it alone
	 */
	for (guint i = 0; success && i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		guint index;
		if (!g_ptr_array_find(dest->devices, dd->device, &index))
			continue;
		if (dest->dirty->len < dest->devices->len)
			g_ptr_array_set_size(dest->dirty, dest->devices->len);
		g_clear_pointer(&dest->dirty->pdata[index], migd_dirty_sink_free);
		dest->dirty->pdata[index] = g_steal_pointer(&dd->dirty);
	}
	/* the expectation's devices are free again once its session is gone */
	if (self->expectation != NULL)
		migd_destination_end_expectation(dest, self->expectation,
						 success ? "completed" : "failed");
	g_idle_add(migd_dest_session_unref_idle_cb, self);
	/* last: the VMM's callback may run at once */
	if (self->start_task != NULL) {
		g_autoptr(GTask) task = g_steal_pointer(&self->start_task);
		if (success)
			g_task_return_boolean(task, TRUE);
		else
			g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_FAILED, "%s", message);
	}
}

void
migd_dest_session_fail(MigdDestSession *self, const GError *error, gboolean tell_peer)
{
	g_autofree gchar *problems = NULL;
	g_autofree gchar *outcome = NULL;
	g_autofree gchar *message = NULL;

	if (self->finished)
		return;
	if (self->job != NULL)
		migd_job_set_phase(self->job, MIGD_JOB_PHASE_ROLLBACK);
	/* validated and given up: the VM goes on (or back) on the source */
	if (self->validated)
		migd_job_set_rolled_back(self->job);
	if (tell_peer && self->conn != NULL)
		migd_connection_send_abort(self->conn, error);
	problems = migd_dest_session_reset_devices(self, &outcome);
	/* only what was done: a session that touched no device reset none */
	message = g_strdup_printf("%s%s%s%s%s", error->message, outcome != NULL ? "; " : "",
				  outcome != NULL ? outcome : "",
				  problems != NULL ? "; RESET FAILED: " : "",
				  problems != NULL ? problems : "");
	migd_dest_session_finish(self, FALSE, message);
}

static void
migd_dest_session_fail_literal(MigdDestSession *self, gint code, const gchar *message,
			       gboolean tell_peer)
{
	g_autoptr(GError) error = g_error_new_literal(MIGD_ERROR, code, message);
	migd_dest_session_fail(self, error, tell_peer);
}

/* ---- writers ---- */

static gboolean
migd_dest_device_flushed(MigdDestDevice *dd)
{
	MigdStreamStats stats = {0};
	if (dd->writer == NULL || !g_queue_is_empty(&dd->pending))
		return FALSE;
	migd_stream_writer_get_stats(dd->writer, &stats);
	return stats.chunks_in_flight == 0;
}

static gboolean migd_dest_session_ack_check_cb(gpointer user_data);

/* acknowledge each device whose initial data is complete and written */
static void
migd_dest_session_check_acks(MigdDestSession *self)
{
	gboolean owed = FALSE;

	for (guint i = 0; i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		Migd__Wire__SwitchoverAck ack = MIGD__WIRE__SWITCHOVER_ACK__INIT;
		if (!dd->initial_done || dd->acked)
			continue;
		if (!migd_dest_device_flushed(dd)) {
			owed = TRUE;
			continue;
		}
		dd->acked = TRUE;
		ack.has_device = TRUE;
		ack.device = dd->index;
		if (!migd_dest_session_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_SWITCHOVER_ACK,
					    &ack))
			return;
	}
	if (owed && self->ack_timer_id == 0)
		self->ack_timer_id = g_timeout_add(MIGD_DESTINATION_ACK_CHECK_MS,
						   migd_dest_session_ack_check_cb, self);
}

static gboolean
migd_dest_session_ack_check_cb(gpointer user_data)
{
	MigdDestSession *self = user_data;
	self->ack_timer_id = 0;
	migd_dest_session_check_acks(self);
	return G_SOURCE_REMOVE;
}

static void migd_dest_session_maybe_commit(MigdDestSession *self);

static void
migd_dest_device_maybe_finish(MigdDestDevice *dd)
{
	if (dd->last_received && !dd->finish_requested && g_queue_is_empty(&dd->pending)) {
		dd->finish_requested = TRUE;
		migd_stream_writer_finish(dd->writer);
	}
}

/* pushes what the full writer refused before; TRUE when nothing is left waiting */
static gboolean
migd_dest_device_push_pending(MigdDestDevice *dd)
{
	while (!g_queue_is_empty(&dd->pending)) {
		MigdDestChunk *chunk = g_queue_peek_head(&dd->pending);
		/* the writer's thread checks it, where the bytes are in cache for the write */
		if (dd->session->checksum
			? !migd_stream_writer_push_checked(dd->writer, chunk->bytes, chunk->crc32c)
			: !migd_stream_writer_push(dd->writer, chunk->bytes))
			return FALSE;
		migd_dest_chunk_free(g_queue_pop_head(&dd->pending));
	}
	migd_dest_device_maybe_finish(dd);
	return TRUE;
}

static void
migd_dest_session_update_reading(MigdDestSession *self)
{
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		if (!g_queue_is_empty(&dd->pending)) {
			migd_connection_set_reading(self->conn, FALSE);
			return;
		}
	}
	migd_connection_set_reading(self->conn, TRUE);
}

static void
migd_dest_writer_space_cb(MigdStreamWriter *writer, gpointer user_data)
{
	MigdDestDevice *dd = user_data;
	MigdDestSession *self = dd->session;

	if (self->finished)
		return;
	migd_dest_device_push_pending(dd);
	migd_dest_session_check_acks(self);
	migd_dest_session_update_reading(self);
}

static void
migd_dest_writer_finished_cb(MigdStreamWriter *writer, guint64 total_bytes, gpointer user_data)
{
	MigdDestDevice *dd = user_data;
	dd->finished = TRUE;
	g_debug("%s: stream written, %" G_GUINT64_FORMAT " bytes", dd->name, total_bytes);
	migd_dest_session_maybe_commit(dd->session);
}

static void
migd_dest_writer_error_cb(MigdStreamWriter *writer, const GError *error, gpointer user_data)
{
	MigdDestDevice *dd = user_data;
	g_autoptr(GError) copy = g_error_copy(error);
	g_autofree gchar *why = NULL;

	/* a chunk that failed its checksum never reached the device: nothing to explain */
	if (g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL)) {
		migd_dest_session_fail(dd->session, copy, TRUE);
		return;
	}
	why = migd_plugin_explain_load_error(dd->plugin, dd->device, error);
	if (why != NULL) {
		/* the driver's errno alone rarely says what an operator must fix */
		g_clear_error(&copy);
		g_set_error(&copy, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE, "%s (%s)", why,
			    error->message);
	}
	g_prefix_error(&copy, "%s: loading the state failed: ", dd->name);
	migd_dest_session_fail(dd->session, copy, TRUE);
}

/* ---- frames ---- */

/* the driver plugin's judgement of the peer, after the core's generic checks */
static gboolean
migd_dest_session_check_offer_plugin(MigdDestDevice *dd, const Migd__Wire__DeviceDescriptor *desc,
				     GError **error)
{
	g_autoptr(GVariant) data = NULL;
	MigdPeerDescriptor peer = {
	    .driver = desc->driver_name,
	    .vendor_id = desc->vendor_id,
	    .device_id = desc->device_id,
	    .subsystem_vendor_id = desc->subsystem_vendor_id,
	    .subsystem_device_id = desc->subsystem_device_id,
	    .migration_flags = desc->migration_flags,
	    .stop_copy_length = desc->stop_copy_length,
	};

	if (desc->has_plugin_data && desc->plugin_data.len > 0) {
		data =
		    migd_plugin_data_decode(desc->plugin_data.data, desc->plugin_data.len, error);
		if (data == NULL) {
			g_prefix_error(error, "%s: offer: ", dd->name);
			return FALSE;
		}
		g_variant_lookup(data, "plugin", "&s", &peer.plugin);
		peer.plugin_data = data;
	}
	return migd_plugin_check_peer(dd->plugin, dd->device, &peer, error);
}

static gboolean
migd_dest_session_check_offer(MigdDestDevice *dd, const Migd__Wire__DeviceDescriptor *desc,
			      GError **error)
{
	g_auto(MigdDeviceIdentity) identity = {0};
	MigdState state = MIGD_STATE_ERROR;
	guint32 flags;

	if (!migd_device_probe(dd->device, error) ||
	    !migd_device_get_identity(dd->device, &identity, error))
		return FALSE;
	flags = migd_device_get_mig_flags(dd->device);
	/* a device busy in another migration (or left mid-way) must not be taken over */
	if (!migd_device_get_state(dd->device, &state, error))
		return FALSE;
	if (state != MIGD_STATE_RUNNING && state != MIGD_STATE_STOP) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY, "%s is %s, not idle", dd->name,
			    migd_state_to_string(state));
		return FALSE;
	}
	if (g_strcmp0(identity.driver, desc->driver_name) != 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "driver %s offered, %s is bound to %s", desc->driver_name, dd->name,
			    identity.driver);
		return FALSE;
	}
	if (identity.vendor_id != desc->vendor_id || identity.device_id != desc->device_id ||
	    identity.subsystem_vendor_id != desc->subsystem_vendor_id ||
	    identity.subsystem_device_id != desc->subsystem_device_id) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "PCI ids %04x:%04x (%04x:%04x) offered, %s is %04x:%04x (%04x:%04x)",
			    desc->vendor_id, desc->device_id, desc->subsystem_vendor_id,
			    desc->subsystem_device_id, dd->name, identity.vendor_id,
			    identity.device_id, identity.subsystem_vendor_id,
			    identity.subsystem_device_id);
		return FALSE;
	}
	if (flags != desc->migration_flags) {
		g_autofree gchar *ours = migd_mig_flags_to_string(flags);
		g_autofree gchar *theirs = migd_mig_flags_to_string(desc->migration_flags);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "migration flags %s offered, %s has %s", theirs, dd->name, ours);
		return FALSE;
	}
	return migd_dest_session_check_offer_plugin(dd, desc, error);
}

static void
migd_dest_session_handle_offer(MigdDestSession *self, const Migd__Wire__DeviceOffer *offer)
{
	MigdDestDevice *dd = g_ptr_array_index(self->devices, offer->device);
	g_autoptr(GError) error = NULL;
	MigdDataFd *data_fd = NULL;
	const MigdStreamWriterCallbacks callbacks = {
	    .space_available = migd_dest_writer_space_cb,
	    .finished = migd_dest_writer_finished_cb,
	    .error = migd_dest_writer_error_cb,
	};
	MigdStreamConfig config = {.name = dd->name};

	if (!migd_dest_session_check_offer(dd, offer->descriptor, &error)) {
		Migd__Wire__DeviceReject reject = MIGD__WIRE__DEVICE_REJECT__INIT;
		g_message("rejecting device %u: %s", offer->device, error->message);
		reject.device = offer->device;
		reject.reason = MIGD__WIRE__REASON__REASON_INCOMPATIBLE_DEVICE;
		reject.message = error->message;
		migd_dest_session_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_REJECT, &reject);
		return;
	}
	/*
	 * recorded before the device leaves its idle state, with the others this
	 * job moved: a restarted daemon brings back these and only these
	 */
	if (self->dest->journal != NULL) {
		g_autoptr(GPtrArray) moved = g_ptr_array_new();
		for (guint i = 0; i < self->devices->len; i++) {
			MigdDestDevice *other = g_ptr_array_index(self->devices, i);
			if (other->touched || other == dd)
				g_ptr_array_add(moved, other->device);
		}
		if (!migd_journal_begin(self->dest->journal, self->job, moved, &error)) {
			migd_dest_session_fail(self, error, TRUE);
			return;
		}
		self->journaled = TRUE;
	}
	dd->touched = TRUE;
	if (!migd_device_transition(dd->device, MIGD_STATE_RESUMING, MIGD_STATE_ERROR, &data_fd,
				    NULL, &error)) {
		migd_dest_session_fail(self, error, TRUE);
		return;
	}
	dd->writer = migd_stream_writer_new(data_fd, NULL, &config, &callbacks, dd, &error);
	if (dd->writer == NULL) {
		migd_dest_session_fail(self, error, TRUE);
		return;
	}
	migd_stream_writer_set_budget(dd->writer, self->dest->budget);
	dd->accepted = TRUE;
	{
		Migd__Wire__DeviceAccept accept = MIGD__WIRE__DEVICE_ACCEPT__INIT;
		accept.device = offer->device;
		migd_dest_session_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT, &accept);
	}
	migd_job_set_phase(self->job, MIGD_JOB_PHASE_PRECOPY);
}

/*
 * The plugin sees the stream's first bytes before the device does (hisi_acc:
 * the match data), so a mismatch is refused with the plugin's words and the
 * source, waiting for the switchover-ack, has stopped nothing. FALSE: failed.
 */
static gboolean
migd_dest_device_check_head(MigdDestDevice *dd, const guint8 *data, gsize len, gboolean last)
{
	gsize want = dd->policy.initial_check_bytes;
	g_autoptr(GError) error = NULL;

	if (dd->head_checked)
		return TRUE;
	if (dd->head == NULL)
		dd->head = g_byte_array_sized_new(want);
	g_byte_array_append(dd->head, data, MIN(len, want - dd->head->len));
	if (dd->head->len < want && !last)
		return TRUE;
	dd->head_checked = TRUE;
	if (!migd_plugin_check_initial_data(dd->plugin, dd->device, dd->head->data, dd->head->len,
					    &error)) {
		migd_dest_session_fail(dd->session, error, TRUE);
		return FALSE;
	}
	return TRUE;
}

static void
migd_dest_session_handle_chunk(MigdDestSession *self, const MigdWireFrame *frame)
{
	const Migd__Wire__StateChunk *chunk = frame->state_chunk;
	MigdDestDevice *dd = g_ptr_array_index(self->devices, chunk->device);

	if (!dd->accepted || dd->last_received) {
		g_autofree gchar *msg =
		    g_strdup_printf("state chunk for device %u, which is %s", chunk->device,
				    dd->accepted ? "already complete" : "not accepted");
		migd_dest_session_fail_literal(self, MIGD_ERROR_PROTOCOL, msg, TRUE);
		return;
	}
	if (self->checksum && chunk->data.len > 0 && !chunk->has_crc32c) {
		g_autofree gchar *msg =
		    g_strdup_printf("%s: state chunk %" G_GUINT64_FORMAT " carries no checksum",
				    dd->name, chunk->sequence);
		migd_dest_session_fail_literal(self, MIGD_ERROR_PROTOCOL, msg, TRUE);
		return;
	}
	if (chunk->phase == MIGD__WIRE__PHASE__PHASE_STOPCOPY)
		migd_job_set_phase(self->job, MIGD_JOB_PHASE_STOPCOPY);
	if (!migd_dest_device_check_head(dd, chunk->data.data, chunk->data.len,
					 chunk->has_last && chunk->last))
		return;
	dd->chunks_received++;
	if (chunk->data.len > 0) {
		gsize len = chunk->data.len;
		/* the unpacked payload, taken from the frame without a copy */
		MigdDestChunk *item = g_new0(MigdDestChunk, 1);
		item->bytes = migd_connection_steal_chunk_payload(self->conn, frame);
		if (item->bytes == NULL)
			item->bytes = g_bytes_new(chunk->data.data, len);
		item->crc32c = chunk->crc32c;
		dd->bytes_received += len;
		self->total_bytes += len;
		g_queue_push_tail(&dd->pending, item);
		if (!migd_dest_device_push_pending(dd))
			migd_connection_set_reading(self->conn, FALSE);
		migd_job_update(self->job, 0, self->total_bytes, 0);
	}
	if (chunk->has_last && chunk->last) {
		dd->last_received = TRUE;
		migd_dest_device_maybe_finish(dd);
	}
}

static void
migd_dest_session_handle_dirty(MigdDestSession *self, const Migd__Wire__DirtyBitmapChunk *chunk)
{
	MigdDestDevice *dd = g_ptr_array_index(self->devices, chunk->device);
	g_autoptr(GError) error = NULL;

	if (!dd->accepted || self->commit_received) {
		g_autofree gchar *msg =
		    g_strdup_printf("dirty bitmap for device %u, which is %s", chunk->device,
				    dd->accepted ? "already committed" : "not accepted");
		migd_dest_session_fail_literal(self, MIGD_ERROR_PROTOCOL, msg, TRUE);
		return;
	}
	if (dd->dirty == NULL)
		dd->dirty = migd_dirty_sink_new(dd->name);
	if (!migd_dirty_sink_merge(dd->dirty, chunk, &error)) {
		migd_dest_session_fail(self, error, TRUE);
		return;
	}
	migd_job_add_dirty(self->job, chunk->n_dirty, chunk->data.len);
}

/* the Commit's counts and, with CAP_CHECKSUM, the CRC32C of the whole stream */
static gboolean
migd_dest_session_check_stream(MigdDestSession *self, MigdDestDevice *dd, GError **error)
{
	const Migd__Wire__CommitDevice *sent = NULL;
	guint32 crc;

	for (gsize j = 0; j < self->commit->n_devices; j++) {
		if (self->commit->devices[j]->device == dd->index)
			sent = self->commit->devices[j];
	}
	if (sent == NULL || sent->chunks != dd->chunks_received ||
	    sent->bytes != dd->bytes_received) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s: the source sent %" G_GUINT64_FORMAT " bytes in %" G_GUINT64_FORMAT
			    " chunks, %" G_GUINT64_FORMAT " in %" G_GUINT64_FORMAT " arrived",
			    dd->name, sent != NULL ? sent->bytes : 0,
			    sent != NULL ? sent->chunks : 0, dd->bytes_received,
			    dd->chunks_received);
		return FALSE;
	}
	if (!self->checksum) {
		migd_job_set_device_stream(self->job, dd->index, dd->bytes_received, 0);
		return TRUE;
	}
	if (!sent->has_crc32c) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s: the commit carries no checksum of the stream", dd->name);
		return FALSE;
	}
	/* the writers have finished: every chunk was checked and written */
	crc = dd->writer != NULL ? migd_stream_writer_get_crc32c(dd->writer) : 0;
	if (crc != sent->crc32c) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s: stream checksum mismatch: CRC32C %08x of the %" G_GUINT64_FORMAT
			    " bytes written, the source sent %08x",
			    dd->name, crc, dd->bytes_received, sent->crc32c);
		return FALSE;
	}
	migd_job_set_device_stream(self->job, dd->index, dd->bytes_received, crc);
	return TRUE;
}

/* device @entry failed: its result says why, and so will the job's message */
static void
migd_dest_commit_entry_fail(Migd__Wire__CommitDeviceResult *entry, const GError *error,
			    GPtrArray *messages, GString *problems)
{
	entry->ok = FALSE;
	entry->has_reason = TRUE;
	entry->reason = MIGD__WIRE__REASON__REASON_VALIDATION_FAILED;
	entry->message = g_strdup(error->message);
	g_ptr_array_add(messages, entry->message);
	g_string_append_printf(problems, "%s%s", problems->len > 0 ? "; " : "", error->message);
}

/* the guest starts here: may our devices run? (CAP_HANDOVER, once validated) */
static void
migd_dest_session_maybe_request_start(MigdDestSession *self)
{
	Migd__Wire__StartRequest request = MIGD__WIRE__START_REQUEST__INIT;

	if (self->finished || !self->validated || !self->start_wanted || self->start_requested)
		return;
	self->start_requested = TRUE;
	migd_dest_session_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_START_REQUEST, &request);
}

/* the source gave its devices' state up for good: ours run, P2P first (QEMU's order) */
static void
migd_dest_session_handle_grant(MigdDestSession *self)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *msg = NULL;

	if (!self->start_requested) {
		migd_dest_session_fail_literal(self, MIGD_ERROR_PROTOCOL,
					       "StartGrant from the source before our StartRequest",
					       TRUE);
		return;
	}
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		if ((migd_device_get_mig_flags(dd->device) & MIGD_MIG_FLAG_P2P) == 0)
			continue;
		if (!migd_device_transition(dd->device, MIGD_STATE_RUNNING_P2P, MIGD_STATE_ERROR,
					    NULL, NULL, &error)) {
			g_prefix_error(&error, "the source granted the start, but ");
			migd_dest_session_fail(self, error, FALSE);
			return;
		}
	}
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		if (!migd_device_transition(dd->device, MIGD_STATE_RUNNING, MIGD_STATE_ERROR, NULL,
					    NULL, &error)) {
			g_prefix_error(&error, "the source granted the start, but ");
			migd_dest_session_fail(self, error, FALSE);
			return;
		}
	}
	migd_job_set_devices_started_at(self->job, g_get_real_time());
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		dd->touched = FALSE;
	}
	msg = g_strdup_printf("received %u devices, %" G_GUINT64_FORMAT " bytes; running",
			      self->devices->len, self->total_bytes);
	migd_dest_session_finish(self, TRUE, msg);
}

static void
migd_dest_session_commit(MigdDestSession *self)
{
	Migd__Wire__CommitResult result = MIGD__WIRE__COMMIT_RESULT__INIT;
	g_autofree Migd__Wire__CommitDeviceResult *entries =
	    g_new0(Migd__Wire__CommitDeviceResult, self->devices->len);
	g_autofree Migd__Wire__CommitDeviceResult **ptrs =
	    g_new0(Migd__Wire__CommitDeviceResult *, self->devices->len);
	g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GString) problems = g_string_new(NULL);
	gboolean all_ok = TRUE;
	gboolean streams_ok;
	gboolean handover;

	/* every stream whole and intact before any device moves on (docs/protocol.md) */
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		g_autoptr(GError) error = NULL;

		migd__wire__commit_device_result__init(&entries[i]);
		entries[i].device = dd->index;
		entries[i].ok = TRUE;
		ptrs[i] = &entries[i];
		if (migd_dest_session_check_stream(self, dd, &error))
			continue;
		all_ok = FALSE;
		migd_dest_commit_entry_fail(&entries[i], error, messages, problems);
	}
	/* RESUMING -> STOP is where the driver validates what it loaded */
	streams_ok = all_ok;
	for (guint i = 0; streams_ok && i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		g_autoptr(GError) error = NULL;

		g_clear_object(&dd->writer);
		if (migd_device_transition(dd->device, MIGD_STATE_STOP, MIGD_STATE_ERROR, NULL,
					   NULL, &error))
			continue;
		all_ok = FALSE;
		migd_dest_commit_entry_fail(&entries[i], error, messages, problems);
	}
	/*
	 * all or nothing: the source keeps its devices only if every one of ours
	 * runs; with the handover they run later, once the source granted it
	 */
	handover = (migd_wire_session_get_capabilities(migd_connection_get_session(self->conn)) &
		    MIGD_WIRE_CAP_HANDOVER) != 0;
	for (guint i = 0; all_ok && !handover && i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		g_autoptr(GError) error = NULL;
		if (!migd_device_transition(dd->device, MIGD_STATE_RUNNING, MIGD_STATE_ERROR, NULL,
					    NULL, &error)) {
			all_ok = FALSE;
			g_string_append_printf(problems, "%s%s", problems->len > 0 ? "; " : "",
					       error->message);
		}
	}
	if (all_ok && !handover)
		migd_job_set_devices_started_at(self->job, g_get_real_time());
	result.ok = all_ok;
	result.n_devices = self->devices->len;
	result.devices = ptrs;
	if (!all_ok) {
		g_autofree gchar *outcome = NULL;
		g_autofree gchar *reset = migd_dest_session_reset_devices(self, &outcome);
		g_autofree gchar *msg = NULL;
		migd_dest_session_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT, &result);
		msg = g_strdup_printf("validation failed: %s%s%s%s%s", problems->str,
				      outcome != NULL ? "; " : "", outcome != NULL ? outcome : "",
				      reset != NULL ? "; RESET FAILED: " : "",
				      reset != NULL ? reset : "");
		migd_dest_session_finish(self, FALSE, msg);
		return;
	}
	if (handover) {
		/* the devices stay ours to reset (touched) until the source's grant */
		if (!migd_dest_session_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT,
					    &result))
			return;
		self->validated = TRUE;
		migd_job_set_phase(self->job, MIGD_JOB_PHASE_HANDOVER);
		g_message("job %s: every device validated, in STOP until the start (%s)",
			  migd_job_get_id(self->job), migd_start_mode_to_string(self->start_mode));
		if (self->start_mode == MIGD_START_AUTO)
			self->start_wanted = TRUE;
		migd_dest_session_maybe_request_start(self);
		return;
	}
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		dd->touched = FALSE;
	}
	if (!migd_dest_session_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT, &result))
		return;
	{
		g_autofree gchar *msg =
		    g_strdup_printf("received %u devices, %" G_GUINT64_FORMAT " bytes; running",
				    self->devices->len, self->total_bytes);
		migd_dest_session_finish(self, TRUE, msg);
	}
}

static void
migd_dest_session_maybe_commit(MigdDestSession *self)
{
	if (self->finished || !self->commit_received)
		return;
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		if (!dd->finished)
			return;
	}
	migd_dest_session_commit(self);
}

/* ---- the VMM's controls (MigdJobControl) ---- */

static void
migd_dest_session_control_start(gpointer engine, GTask *task)
{
	MigdDestSession *self = engine;
	g_autoptr(GTask) owned = task;

	if (self->start_task != NULL) {
		g_task_return_new_error(owned, MIGD_ERROR, MIGD_ERROR_BUSY,
					"job %s: a start is already in progress",
					migd_job_get_id(self->job));
		return;
	}
	g_message("job %s: start requested (%s)", migd_job_get_id(self->job),
		  migd_job_phase_to_string(migd_job_get_phase(self->job)));
	/* completes with the job: running, or failed with the cause */
	self->start_task = g_steal_pointer(&owned);
	/* an older source (no CAP_HANDOVER): the devices run at the commit, as always */
	self->start_wanted = TRUE;
	migd_dest_session_maybe_request_start(self);
}

static gboolean
migd_dest_session_control_abandon(gpointer engine, const gchar *reason, GError **error)
{
	MigdDestSession *self = engine;
	Migd__Wire__Abort msg = MIGD__WIRE__ABORT__INIT;
	g_autoptr(GError) why =
	    g_error_new(MIGD_ERROR, MIGD_ERROR_CANCELLED, "abandoned by the VMM (%s)",
			reason != NULL ? reason : "Job.Abandon");
	MigdWireFrame frame;

	g_message("job %s: abandon requested (%s)", migd_job_get_id(self->job),
		  migd_job_phase_to_string(migd_job_get_phase(self->job)));
	/* the source takes its devices back (its rollback) instead of waiting for our start */
	if (self->conn != NULL) {
		/* an older source (no HANDOVER) knows no such reason: a cancel to it */
		msg.reason =
		    (migd_wire_session_get_capabilities(migd_connection_get_session(self->conn)) &
		     MIGD_WIRE_CAP_HANDOVER) != 0
			? MIGD__WIRE__REASON__REASON_ABANDONED
			: MIGD__WIRE__REASON__REASON_CANCELLED;
		msg.message = why->message;
		migd_wire_frame_init(&frame, MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT, &msg);
		migd_connection_send(self->conn, &frame, NULL);
	}
	if (self->commit_received)
		migd_job_set_rolled_back(self->job);
	migd_dest_session_fail(self, why, FALSE);
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDestDevice *dd = g_ptr_array_index(self->devices, i);
		if (dd->touched) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_RECOVERY_FAILED, "job %s: %s",
				    migd_job_get_id(self->job), migd_job_get_message(self->job));
			return FALSE;
		}
	}
	return TRUE;
}

static const MigdJobControl migd_dest_session_control = {
    .start = migd_dest_session_control_start,
    .abandon = migd_dest_session_control_abandon,
};

/* the job's start mode (its expectation's, or the listener's) and controls, as it is created */
static void
migd_dest_session_init_job(MigdDestSession *self, MigdStartMode start_mode)
{
	self->start_mode = start_mode;
	migd_job_set_start_mode(self->job, start_mode);
	migd_job_set_control(self->job, &migd_dest_session_control, self);
}

static void
migd_dest_session_cancel_requested_cb(MigdDestSession *self)
{
	migd_dest_session_fail_literal(self, MIGD_ERROR_CANCELLED, "cancelled by the operator",
				       TRUE);
}

/*
 * The devices (MigdDevice, borrowed) the session @hello opens goes into: its
 * expectation's, in order, or without a migration id all of this host's,
 * and those only while nothing is expected and no other session runs. NULL,
 * *@reason and *@why: refused, nothing touched.
 */
static GPtrArray *
migd_dest_session_choose_devices(MigdDestSession *self, const Migd__Wire__Hello *hello,
				 MigdDestExpectation **expectation, Migd__Wire__Reason *reason,
				 gchar **why)
{
	MigdDestination *dest = self->dest;
	MigdDestExpectation *exp = NULL;
	GPtrArray *devices;

	*expectation = NULL;
	if (hello->migration_id != NULL) {
		exp = migd_destination_find_expectation(dest, hello->migration_id);
		if (exp == NULL) {
			*reason = MIGD__WIRE__REASON__REASON_UNKNOWN_MIGRATION;
			*why = g_strdup_printf("migration %s is not expected on this host",
					       hello->migration_id);
			return NULL;
		}
		if (exp->session != NULL) {
			*reason = MIGD__WIRE__REASON__REASON_BUSY;
			*why = g_strdup_printf("migration %s is already being received",
					       hello->migration_id);
			return NULL;
		}
		devices = exp->devices;
	} else if (dest->expectations->len > 0) {
		/* expected devices must not go to whoever comes first */
		*reason = MIGD__WIRE__REASON__REASON_UNKNOWN_MIGRATION;
		*why = g_strdup_printf("the session carries no migration id, and this host takes "
				       "only the migrations it expects (%u now)",
				       dest->expectations->len);
		return NULL;
	} else if (dest->sessions->len > 0) {
		*reason = MIGD__WIRE__REASON__REASON_BUSY;
		*why = g_strdup("another migration into this host is in progress");
		return NULL;
	} else {
		devices = dest->devices;
	}
	if (hello->device_count != devices->len) {
		*reason = MIGD__WIRE__REASON__REASON_INCOMPATIBLE_DEVICE;
		if (exp != NULL)
			*why = g_strdup_printf("%u devices offered, migration %s expects %u",
					       hello->device_count, exp->id, devices->len);
		else
			*why = g_strdup_printf("%u devices offered, this host prepared %u",
					       hello->device_count, devices->len);
		return NULL;
	}
	*expectation = exp;
	return devices;
}

static void
migd_dest_session_handle_hello(MigdDestSession *self, const Migd__Wire__Hello *hello)
{
	MigdDestination *dest = self->dest;
	Migd__Wire__HelloReply reply = MIGD__WIRE__HELLO_REPLY__INIT;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *job_id = NULL;
	gboolean ok = migd_wire_negotiate(
	    hello, MIGD_WIRE_PROTOCOL_VERSION_MIN, MIGD_WIRE_PROTOCOL_VERSION_MAX,
	    MIGD_WIRE_CAP_PRECOPY | MIGD_WIRE_CAP_SWITCHOVER_ACK | MIGD_WIRE_CAP_DIRTY_BITMAP |
		MIGD_WIRE_CAP_KEEPALIVE | MIGD_WIRE_CAP_CHECKSUM | MIGD_WIRE_CAP_HANDOVER,
	    &reply, &error);
	g_autofree gchar *refusal = NULL;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	MigdDestExpectation *exp = NULL;
	GPtrArray *devices = NULL;

	if (self->pending) {
		self->pending = FALSE;
		g_ptr_array_remove_fast(dest->pending, self);
	}
	if (ok) {
		devices =
		    migd_dest_session_choose_devices(self, hello, &exp, &reply.refusal, &refusal);
		ok = devices != NULL;
		reply.has_refusal = !ok;
	} else {
		refusal = g_strdup(error->message);
	}
	if (!ok) {
		reply.has_version = FALSE;
		reply.message = refusal;
		migd_dest_session_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, &reply);
		migd_dest_session_finish(self, FALSE, refusal);
		return;
	}
	g_ptr_array_add(dest->sessions, self);
	job_id = g_strdup_printf("in%u", ++dest->job_counter);
	self->job = migd_job_new(MIGD_JOB_ROLE_DESTINATION, job_id);
	if (exp != NULL) {
		/* from now on the expectation lasts as long as its session */
		g_clear_handle_id(&exp->timeout_id, g_source_remove);
		exp->session = self;
		self->expectation = exp;
		migd_job_set_migration_id(self->job, exp->id);
		g_message("job %s: receiving migration %s into %u devices", job_id, exp->id,
			  devices->len);
	}
	migd_dest_session_init_job(self, exp != NULL ? exp->start_mode : dest->start_mode);
	self->checksum = (reply.capabilities & MIGD_WIRE_CAP_CHECKSUM) != 0;
	if (!self->checksum)
		g_message("job %s: the source sends no state checksums (an older vfio-migd): the "
			  "streams are not checked end to end",
			  job_id);
	migd_job_set_n_devices(self->job, devices->len);
	migd_job_set_phase(self->job, MIGD_JOB_PHASE_NEGOTIATING);
	for (guint i = 0; i < devices->len; i++) {
		MigdDestDevice *dd = g_new0(MigdDestDevice, 1);
		dd->session = self;
		dd->index = i;
		dd->device = g_object_ref(g_ptr_array_index(devices, i));
		dd->name = g_strdup(migd_device_get_name(dd->device));
		g_ptr_array_add(names, g_strdup(dd->name));
		dd->plugin = migd_plugin_dup_for_device(dd->device);
		migd_plugin_get_policy(dd->plugin, dd->device, &dd->policy);
		dd->head_checked = dd->policy.initial_check_bytes == 0;
		g_queue_init(&dd->pending);
		g_ptr_array_add(self->devices, dd);
	}
	g_ptr_array_add(names, NULL);
	migd_job_set_device_names(self->job, (const gchar *const *)names->pdata);
	self->cancel_handler = g_signal_connect_swapped(
	    self->job, "cancel-requested", G_CALLBACK(migd_dest_session_cancel_requested_cb), self);
	g_signal_emit(dest, migd_destination_signals[SIGNAL_JOB_STARTED], 0, self->job);
	migd_dest_session_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY, &reply);
}

static void
migd_dest_session_frame_cb(MigdConnection *conn, const MigdWireFrame *frame, gpointer user_data)
{
	MigdDestSession *self = user_data;
	g_autofree gchar *msg = NULL;

	if (self->finished)
		return;
	switch (frame->type) {
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO:
		migd_dest_session_handle_hello(self, frame->hello);
		return;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER:
		/* the session rules let each device be offered once */
		if (++self->n_offers == self->devices->len)
			g_clear_handle_id(&self->handshake_timer_id, g_source_remove);
		migd_dest_session_handle_offer(self, frame->device_offer);
		return;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_PRECOPY_PROGRESS: {
		MigdDestDevice *dd =
		    g_ptr_array_index(self->devices, frame->precopy_progress->device);
		if (frame->precopy_progress->initial_bytes == 0)
			dd->initial_done = TRUE;
		migd_job_set_precopy_rounds(self->job, frame->precopy_progress->round);
		migd_dest_session_check_acks(self);
		return;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK:
		migd_dest_session_handle_chunk(self, frame);
		return;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DIRTY_BITMAP_CHUNK:
		migd_dest_session_handle_dirty(self, frame->dirty_bitmap_chunk);
		return;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT: {
		/* keep the counts: the writers may still be busy */
		gsize len = migd__wire__commit__get_packed_size(frame->commit);
		g_autofree guint8 *buf = g_malloc(len);
		migd__wire__commit__pack(frame->commit, buf);
		self->commit = migd__wire__commit__unpack(NULL, len, buf);
		self->commit_received = TRUE;
		migd_job_set_phase(self->job, MIGD_JOB_PHASE_COMMIT);
		migd_dest_session_maybe_commit(self);
		return;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT:
		migd_dest_session_handle_grant(self);
		return;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT: {
		/* the VM stays (or is back) on the source: say so plainly */
		if (frame->abort->reason == MIGD__WIRE__REASON__REASON_ROLLED_BACK) {
			msg = g_strdup_printf(
			    "the source rolled back its devices before our start%s%s",
			    frame->abort->message != NULL ? ": " : "",
			    frame->abort->message != NULL ? frame->abort->message : "");
			migd_dest_session_fail_literal(self, MIGD_ERROR_FAILED, msg, FALSE);
			return;
		}
		/* the source's operator cancelled: the same outcome on both sides */
		if (frame->abort->reason == MIGD__WIRE__REASON__REASON_CANCELLED &&
		    self->job != NULL)
			migd_job_set_cancelled(self->job);
		msg = g_strdup_printf("source aborted: %s%s%s",
				      migd_wire_reason_to_string(frame->abort->reason),
				      frame->abort->message != NULL ? ": " : "",
				      frame->abort->message != NULL ? frame->abort->message : "");
		migd_dest_session_fail_literal(self, MIGD_ERROR_FAILED, msg, FALSE);
		return;
	}
	default:
		msg = g_strdup_printf("unexpected %s from the source",
				      migd_wire_msg_type_to_string(frame->type));
		migd_dest_session_fail_literal(self, MIGD_ERROR_PROTOCOL, msg, TRUE);
		return;
	}
}

static void
migd_dest_session_closed_cb(MigdConnection *conn, const GError *error, gpointer user_data)
{
	MigdDestSession *self = user_data;
	g_autoptr(GError) lost = NULL;

	if (self->finished)
		return;
	if (error != NULL) {
		migd_dest_session_fail(self, error, TRUE);
		return;
	}
	lost = g_error_new(MIGD_ERROR, MIGD_ERROR_PROTOCOL, "the source closed the connection%s",
			   self->validated ? " before it granted the start" : "");
	migd_dest_session_fail(self, lost, FALSE);
}

/* a peer must not hold us before the session is set up: Hello and every offer come in time */
static gboolean
migd_dest_session_handshake_timeout_cb(gpointer user_data)
{
	MigdDestSession *self = user_data;
	guint timeout_ms = migd_transport_config_get_hello_timeout_ms(self->dest->transport);
	const gchar *peer = migd_connection_get_peer_identity(self->conn);
	g_autofree gchar *msg = NULL;

	self->handshake_timer_id = 0;
	if (self->job == NULL)
		msg = g_strdup_printf("no Hello from %s within %u ms", peer, timeout_ms);
	else
		msg = g_strdup_printf("%u of %u device offers from %s within %u ms", self->n_offers,
				      self->devices->len, peer, timeout_ms);
	g_message("closing the connection: %s", msg);
	migd_dest_session_fail_literal(self, MIGD_ERROR_TIMED_OUT, msg, TRUE);
	return G_SOURCE_REMOVE;
}

/* over the cap of connections before Hello: tell the peer why, then let it go */
static void
migd_destination_refuse_pending(MigdDestination *dest, GIOStream *stream,
				const gchar *peer_identity)
{
	g_autoptr(MigdConnection) conn =
	    migd_connection_new(stream, MIGD_WIRE_ROLE_DESTINATION, peer_identity, NULL, NULL);
	g_autoptr(GError) error = NULL;
	guint max = migd_transport_config_get_max_pending_peers(dest->transport);

	g_warning("refusing the connection from %s: %u connections have not sent Hello yet "
		  "(max-pending-peers %u)",
		  peer_identity, dest->pending->len, max);
	g_set_error(&error, MIGD_ERROR, MIGD_ERROR_BUSY,
		    "too many connections waiting for Hello (%u): try again later", max);
	/* the pending write keeps the connection until the Abort left or the flush timed out */
	migd_connection_send_abort(conn, error);
	migd_connection_close(conn, error);
}

static void
migd_destination_accept_cb(MigdTransportListener *listener, GIOStream *stream,
			   const gchar *peer_identity, gpointer user_data)
{
	MigdDestination *dest = MIGD_DESTINATION(user_data);
	MigdDestSession *self = NULL;
	const MigdConnectionCallbacks callbacks = {
	    .frame = migd_dest_session_frame_cb,
	    .closed = migd_dest_session_closed_cb,
	};

	if (dest->pending->len >= migd_transport_config_get_max_pending_peers(dest->transport)) {
		migd_destination_refuse_pending(dest, stream, peer_identity);
		return;
	}
	g_message("accepted a connection from %s", peer_identity);
	self = g_new0(MigdDestSession, 1);
	self->refcount = 1;
	self->dest = dest;
	self->devices = g_ptr_array_new_with_free_func((GDestroyNotify)migd_dest_device_free);
	self->conn = migd_connection_new(stream, MIGD_WIRE_ROLE_DESTINATION, peer_identity,
					 &callbacks, self);
	migd_connection_set_frame_timeout(
	    self->conn, migd_transport_config_get_frame_timeout_ms(dest->transport));
	self->pending = TRUE;
	g_ptr_array_add(dest->pending, self);
	self->handshake_timer_id =
	    g_timeout_add(migd_transport_config_get_hello_timeout_ms(dest->transport),
			  migd_dest_session_handshake_timeout_cb, self);
	migd_connection_start(self->conn);
}

MigdDestination *
migd_destination_new(GPtrArray *devices)
{
	MigdDestination *self = g_object_new(MIGD_TYPE_DESTINATION, NULL);
	for (guint i = 0; i < devices->len; i++)
		g_ptr_array_add(self->devices, g_object_ref(g_ptr_array_index(devices, i)));
	return self;
}

/* @address, or (NULL) the listening socket @fd */
static gboolean
migd_destination_listen_full(MigdDestination *self, const gchar *address, gint fd,
			     const MigdTransportConfig *transport, GError **error)
{
	g_return_val_if_fail(MIGD_IS_DESTINATION(self), FALSE);

	if (self->devices->len == 0) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "no devices to receive state into");
		return FALSE;
	}
	if (self->listener != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY, "already listening on %s",
			    migd_transport_listener_get_address(self->listener));
		return FALSE;
	}
	/* before listening: the accept callback reads the deadlines and caps */
	migd_transport_config_free(self->transport);
	self->transport = migd_transport_config_copy(transport);
	self->listener =
	    address != NULL
		? migd_transport_listen(address, transport, migd_destination_accept_cb, self, error)
		: migd_transport_listen_fd(fd, transport, migd_destination_accept_cb, self, error);
	return self->listener != NULL;
}

gboolean
migd_destination_listen(MigdDestination *self, const gchar *address,
			const MigdTransportConfig *transport, GError **error)
{
	return migd_destination_listen_full(self, address, -1, transport, error);
}

gboolean
migd_destination_listen_fd(MigdDestination *self, gint fd, const MigdTransportConfig *transport,
			   GError **error)
{
	return migd_destination_listen_full(self, NULL, fd, transport, error);
}

gchar *
migd_destination_get_address(MigdDestination *self)
{
	g_return_val_if_fail(MIGD_IS_DESTINATION(self), NULL);
	if (self->listener == NULL)
		return NULL;
	return g_strdup(migd_transport_listener_get_address(self->listener));
}

void
migd_destination_close(MigdDestination *self)
{
	g_return_if_fail(MIGD_IS_DESTINATION(self));
	if (self->listener != NULL) {
		migd_transport_listener_close(self->listener);
		g_clear_object(&self->listener);
	}
	if (self->sessions->len > 0) {
		/* a copy: each failure takes its session out of the list */
		g_autoptr(GPtrArray) running = g_ptr_array_copy(self->sessions, NULL, NULL);
		g_autoptr(GError) error =
		    g_error_new_literal(MIGD_ERROR, MIGD_ERROR_CANCELLED, "destination closed");
		for (guint i = 0; i < running->len; i++)
			migd_dest_session_fail(g_ptr_array_index(running, i), error, TRUE);
	}
	/* nothing can arrive for them any more */
	while (self->expectations->len > 0)
		migd_destination_end_expectation(self, g_ptr_array_index(self->expectations, 0),
						 "closed");
	/* connections still waiting for Hello: their timers must not outlive us */
	while (self->pending->len > 0) {
		g_autoptr(GError) error =
		    g_error_new_literal(MIGD_ERROR, MIGD_ERROR_CANCELLED, "destination closed");
		migd_dest_session_fail(g_ptr_array_index(self->pending, 0), error, TRUE);
	}
}

static void
migd_destination_dispose(GObject *object)
{
	MigdDestination *self = MIGD_DESTINATION(object);
	migd_destination_close(self);
	G_OBJECT_CLASS(migd_destination_parent_class)->dispose(object);
}

static void
migd_destination_finalize(GObject *object)
{
	MigdDestination *self = MIGD_DESTINATION(object);
	g_ptr_array_unref(self->devices);
	g_ptr_array_unref(self->dirty);
	migd_transport_config_free(self->transport);
	g_ptr_array_unref(self->pending);
	g_ptr_array_unref(self->sessions);
	g_ptr_array_unref(self->expectations);
	g_clear_pointer(&self->budget, migd_stream_budget_unref);
	G_OBJECT_CLASS(migd_destination_parent_class)->finalize(object);
}

static void
migd_destination_init(MigdDestination *self)
{
	self->devices = g_ptr_array_new_with_free_func(g_object_unref);
	self->dirty = g_ptr_array_new_with_free_func((GDestroyNotify)migd_dirty_sink_free);
	self->pending = g_ptr_array_new();
	self->sessions = g_ptr_array_new();
	self->expectations = g_ptr_array_new();
}

gboolean
migd_destination_is_busy(MigdDestination *self)
{
	return self->sessions->len > 0;
}

gboolean
migd_destination_set_devices(MigdDestination *self, GPtrArray *devices, GError **error)
{
	g_autoptr(GPtrArray) kept = NULL;
	g_autoptr(GPtrArray) dirty = NULL;

	g_return_val_if_fail(MIGD_IS_DESTINATION(self), FALSE);
	/* sessions and expectations go on in the devices that stay */
	for (guint i = 0; i < self->devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(self->devices, i);
		if (!g_ptr_array_find(devices, device, NULL) &&
		    migd_destination_device_is_busy(self, device)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
				    "%s is reserved for or receiving an incoming migration",
				    migd_device_get_name(device));
			return FALSE;
		}
	}
	kept = g_ptr_array_new_with_free_func(g_object_unref);
	dirty = g_ptr_array_new_with_free_func((GDestroyNotify)migd_dirty_sink_free);
	for (guint i = 0; i < devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(devices, i);
		guint old;
		gpointer sink = NULL;
		/* a device that stays keeps its bitmap, at its new index */
		if (g_ptr_array_find(self->devices, device, &old) && old < self->dirty->len)
			sink = g_steal_pointer(&self->dirty->pdata[old]);
		g_ptr_array_add(kept, g_object_ref(device));
		g_ptr_array_add(dirty, sink);
	}
	g_ptr_array_unref(self->devices);
	self->devices = g_steal_pointer(&kept);
	g_ptr_array_unref(self->dirty);
	self->dirty = g_steal_pointer(&dirty);
	return TRUE;
}

void
migd_destination_set_budget(MigdDestination *self, MigdStreamBudget *budget)
{
	g_return_if_fail(MIGD_IS_DESTINATION(self));
	if (budget != NULL)
		migd_stream_budget_ref(budget);
	g_clear_pointer(&self->budget, migd_stream_budget_unref);
	self->budget = budget;
}

void
migd_destination_set_journal(MigdDestination *self, MigdJournal *journal)
{
	self->journal = journal;
}

gint
migd_destination_dup_dirty_bitmap_fd(MigdDestination *self, guint index, GError **error)
{
	MigdDirtySink *sink =
	    index < self->dirty->len ? g_ptr_array_index(self->dirty, index) : NULL;

	g_return_val_if_fail(MIGD_IS_DESTINATION(self), -1);
	if (sink == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "no dirty bitmap for device %u: no completed incoming migration "
			    "tracked it",
			    index);
		return -1;
	}
	return migd_dirty_sink_dup_fd(sink, error);
}

void
migd_destination_emit_expectation_ended(MigdDestination *self, const gchar *migration_id,
					const gchar *why)
{
	g_signal_emit(self, migd_destination_signals[SIGNAL_EXPECTATION_ENDED], 0, migration_id,
		      why);
}

static void
migd_destination_class_init(MigdDestinationClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = migd_destination_dispose;
	object_class->finalize = migd_destination_finalize;
	migd_destination_signals[SIGNAL_JOB_STARTED] =
	    g_signal_new("job-started", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 1, MIGD_TYPE_JOB);
	migd_destination_signals[SIGNAL_EXPECTATION_ENDED] =
	    g_signal_new("expectation-ended", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
			 NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
}

void
migd_destination_set_start_mode(MigdDestination *self, MigdStartMode mode)
{
	g_return_if_fail(MIGD_IS_DESTINATION(self));
	self->start_mode = mode;
}
