/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The source engine. Order of a migration (docs/protocol.md):
 *   connect, Hello, DeviceOffer per device, DeviceAccept from the destination
 *   (nothing on the source has moved yet) -> PRE_COPY rounds, each started by
 *   PRECOPY_INFO (which some drivers use to start their next incremental save:
 *   plugins/mlx5/README.md) and decided
 *   by the convergence policy -> wait for every SwitchoverAck -> P2P quiesce of
 *   every device that has it -> all devices to STOP_COPY at once, one reader
 *   thread each -> Commit -> CommitResult: success leaves the source devices
 *   stopped; anything else, at any point, brings them back to RUNNING.
 * With switchover=manual pre-copy goes on (paced once converged) until the
 * VMM's Switchover. With CAP_HANDOVER an ok CommitResult is not the end: the
 * devices wait in STOP, state intact, for the destination's StartRequest
 * (StartGrant, handed over) or a rollback (Job.Rollback, the destination's
 * Abort, a lost link, the handover timeout): then they go back to RUNNING.
 */
#include "config.h"

#include <string.h>

#include "migd-connection.h"
#include "migd-crc32c.h"
#include "migd-dirty-source.h"
#include "migd-error.h"
#include "migd-plugin-generic.h"
#include "migd-source.h"
#include "migd-stream-reader.h"
#include "migd-wire-limits.h"

typedef struct _MigdSource MigdSource;

/* switchover=manual and converged: pre-copy goes on, one round at most this often */
#define MIGD_SOURCE_PACE_US (100 * G_TIME_SPAN_MILLISECOND)

/* the send rate (Job.Rate, and the link rate convergence uses) is sampled this often */
#define MIGD_SOURCE_RATE_WINDOW_US (250 * G_TIME_SPAN_MILLISECOND)

typedef struct {
	MigdSource *source;
	guint index;
	MigdDevice *device;
	gchar *name;
	guint32 flags;
	gboolean precopy; /* pre-copies in this job */
	gboolean touched; /* left RUNNING: needs recovery on failure */
	guint64 stop_copy_length;
	MigdDeviceIdentity identity;
	MigdPlugin *plugin;
	MigdPluginPolicy policy;
	GBytes *plugin_data; /* the descriptor's, encoded */
	MigdStreamReader *reader;
	guint64 sequence;
	guint64 chunks_sent;
	guint64 bytes_sent;
	guint32 crc32c; /* of every chunk sent, with CAP_CHECKSUM */
	guint64 initial_bytes;
	guint64 dirty_bytes;
	gboolean acked;
	gboolean done;	 /* stop-copy stream complete */
	GPtrArray *held; /* chunks sent but kept in flight while the link is congested */
} MigdSourceDevice;

typedef enum {
	MIGD_SOURCE_STAGE_CONNECT,
	MIGD_SOURCE_STAGE_HELLO,
	MIGD_SOURCE_STAGE_OFFERS,
	MIGD_SOURCE_STAGE_PRECOPY_INFO,
	MIGD_SOURCE_STAGE_PRECOPY_DRAIN,
	MIGD_SOURCE_STAGE_PRECOPY_WAIT, /* between rounds (paced), or nothing to pre-copy */
	MIGD_SOURCE_STAGE_SWITCHOVER,
	MIGD_SOURCE_STAGE_STOPCOPY,
	MIGD_SOURCE_STAGE_COMMIT,
	MIGD_SOURCE_STAGE_HANDOVER, /* committed; devices in STOP until StartRequest or rollback */
	MIGD_SOURCE_STAGE_DONE,
} MigdSourceStage;

struct _MigdSource {
	gint refcount; /* one for running, one per pending connect */
	MigdJob *job;
	GPtrArray *devices; /* MigdSourceDevice */
	gchar *address;
	MigdTransportConfig *transport;
	MigdSourceOptions options;
	GCancellable *cancellable;
	MigdConnection *conn;
	gchar *session_id;
	MigdSourceStage stage;
	guint64 capabilities;
	guint n_accepted;
	guint n_pending; /* devices that still owe an answer in this stage */
	guint round;
	MigdRateEstimator link_rate;
	guint64 total_bytes;
	guint64 expected_bytes;
	gint64 rate_window_us;
	guint64 rate_window_bytes;
	gint64 stop_start_us;
	guint timeout_id;
	gulong cancel_handler;
	gboolean finished;
	MigdDirtySource *dirty; /* NULL: no device is tracked, or nobody takes bitmaps */
	gboolean dirty_peer;	/* the peer takes bitmaps (CAP_DIRTY_BITMAP): sync for it */
	guint vmm_consumer;	/* the VMM's consumer (switchover=manual), else 0 */
	guint32 dirty_syncs;	/* syncs started: the next one's round number - 1 */
	gboolean journaled;	/* a journal record exists for this job */
	GTask *switchover_task; /* the VMM's Switchover, until the CommitResult or a failure */
	gboolean switchover_requested; /* switch over at the next chance, whatever converged */
	guint pace_id;		       /* the next pre-copy round, when paced */
	gint64 round_start_us;
	guint handover_id;	 /* the handover timeout */
	gchar *handover_message; /* the job's message once handed over */
};

static void migd_source_fail(MigdSource *self, const GError *error);
static void migd_source_next_round(MigdSource *self);
static void migd_source_start_stopcopy(MigdSource *self);
static void migd_source_dirty_round_cb(GObject *object, GAsyncResult *result, gpointer user_data);
static void migd_source_begin_switchover(MigdSource *self);

static void
migd_source_device_free(MigdSourceDevice *sd)
{
	if (sd->reader != NULL) {
		migd_stream_reader_cancel(sd->reader);
		g_object_unref(sd->reader);
	}
	g_ptr_array_unref(sd->held);
	migd_device_identity_clear(&sd->identity);
	g_clear_object(&sd->plugin);
	g_clear_pointer(&sd->plugin_data, g_bytes_unref);
	g_object_unref(sd->device);
	g_free(sd->name);
	g_free(sd);
}

static void
migd_source_free(MigdSource *self)
{
	g_clear_handle_id(&self->timeout_id, g_source_remove);
	g_clear_handle_id(&self->pace_id, g_source_remove);
	g_clear_handle_id(&self->handover_id, g_source_remove);
	g_clear_object(&self->switchover_task);
	g_free(self->handover_message);
	if (self->conn != NULL)
		migd_connection_detach(self->conn);
	if (self->cancel_handler != 0)
		g_signal_handler_disconnect(self->job, self->cancel_handler);
	g_cancellable_cancel(self->cancellable);
	g_clear_object(&self->conn);
	g_ptr_array_unref(self->devices);
	g_clear_object(&self->cancellable);
	g_clear_pointer(&self->transport, migd_transport_config_free);
	g_clear_pointer(&self->dirty, migd_dirty_source_unref);
	g_free(self->address);
	g_free(self->session_id);
	g_free((gchar *)self->options.migration_id);
	g_object_unref(self->job);
	g_free(self);
}

static MigdSource *
migd_source_ref(MigdSource *self)
{
	self->refcount++;
	return self;
}

static void
migd_source_unref(MigdSource *self)
{
	if (--self->refcount == 0)
		migd_source_free(self);
}

/* the source lives until its job finished; dropped from idle so no callback frame still uses it */
static gboolean
migd_source_unref_idle_cb(gpointer user_data)
{
	migd_source_unref(user_data);
	return G_SOURCE_REMOVE;
}

void
migd_source_options_init(MigdSourceOptions *options)
{
	memset(options, 0, sizeof(*options));
	migd_convergence_policy_init(&options->policy);
	/* all-dirty is slow but correct: the consumer resends every page */
	options->dirty_fallback = MIGD_DIRTY_FALLBACK_ALLOW;
}

static gboolean
migd_source_send(MigdSource *self, MigdWireMsgType type, gpointer body)
{
	MigdWireFrame frame;
	g_autoptr(GError) error = NULL;

	migd_wire_frame_init(&frame, type, body);
	if (!migd_connection_send(self->conn, &frame, &error)) {
		migd_source_fail(self, error);
		return FALSE;
	}
	return TRUE;
}

static void
migd_source_update_job(MigdSource *self)
{
	gdouble progress = 0;
	gint64 now = g_get_monotonic_time();
	guint64 rate;

	/* sample the send rate over windows long enough to mean something */
	if (self->rate_window_us == 0) {
		self->rate_window_us = now;
		self->rate_window_bytes = self->total_bytes;
	} else if (now - self->rate_window_us >= MIGD_SOURCE_RATE_WINDOW_US) {
		migd_rate_estimator_add(&self->link_rate,
					self->total_bytes - self->rate_window_bytes,
					now - self->rate_window_us);
		self->rate_window_us = now;
		self->rate_window_bytes = self->total_bytes;
	}
	rate = migd_rate_estimator_get(&self->link_rate);

	if (self->expected_bytes > 0)
		progress = (gdouble)self->total_bytes /
			   (gdouble)MAX(self->expected_bytes, self->total_bytes + 1);
	migd_job_update(self->job, progress, self->total_bytes, rate);
}

/* every device back to RUNNING; returns a sentence on what could not be recovered */
static gchar *
migd_source_rollback(MigdSource *self)
{
	g_autoptr(GString) problems = g_string_new(NULL);

	/* stop the readers first: a state change then ends any read they are in */
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		if (sd->reader != NULL)
			migd_stream_reader_cancel(sd->reader);
		g_ptr_array_set_size(sd->held, 0);
	}
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		g_auto(MigdRecoveryReport) report = {0};
		g_autoptr(GError) error = NULL;

		if (!sd->touched)
			continue;
		if (!migd_device_recover(sd->device, MIGD_STATE_RUNNING, &report, &error)) {
			g_string_append_printf(problems, "%s%s", problems->len > 0 ? "; " : "",
					       error->message);
			continue;
		}
		sd->touched = FALSE;
	}
	/* the sessions are over now; the worker threads have returned or will at once */
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		g_clear_object(&sd->reader);
	}
	return problems->len > 0 ? g_string_free(g_steal_pointer(&problems), FALSE) : NULL;
}

/*
 * The VMM's pending Switchover learns the outcome (NULL: the destination
 * validated every device). Last in a step: its callback may run at once.
 */
static void
migd_source_return_switchover(MigdSource *self, const GError *error)
{
	g_autoptr(GTask) task = g_steal_pointer(&self->switchover_task);

	if (task == NULL)
		return;
	if (error != NULL)
		g_task_return_error(task, g_error_copy(error));
	else
		g_task_return_boolean(task, TRUE);
}

static void
migd_source_finish(MigdSource *self, gboolean success, const gchar *message)
{
	if (self->finished)
		return;
	self->finished = TRUE;
	self->stage = MIGD_SOURCE_STAGE_DONE;
	if (self->dirty != NULL)
		migd_dirty_source_stop(self->dirty);
	g_clear_handle_id(&self->timeout_id, g_source_remove);
	g_clear_handle_id(&self->pace_id, g_source_remove);
	g_clear_handle_id(&self->handover_id, g_source_remove);
	if (self->conn != NULL)
		migd_connection_close(self->conn, NULL);
	/* success leaves the devices stopped on purpose; failure has rolled them back */
	if (self->journaled)
		migd_journal_end(self->options.journal, self->job);
	migd_job_complete(self->job, success, message);
	g_idle_add(migd_source_unref_idle_cb, self);
	if (success)
		migd_source_return_switchover(self, NULL);
}

/* the destination must not start: it resets its devices, the VM resumes here */
static void
migd_source_send_rolled_back(MigdSource *self, const GError *why)
{
	Migd__Wire__Abort msg = MIGD__WIRE__ABORT__INIT;
	MigdWireFrame frame;
	g_autofree gchar *text = g_utf8_make_valid(why->message, -1);

	if (strlen(text) > MIGD_WIRE_MAX_MESSAGE_LEN)
		*g_utf8_find_prev_char(text, text + MIGD_WIRE_MAX_MESSAGE_LEN + 1) = '\0';
	msg.reason = MIGD__WIRE__REASON__REASON_ROLLED_BACK;
	msg.message = text;
	migd_wire_frame_init(&frame, MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT, &msg);
	/* a link already gone says the same to the destination */
	migd_connection_send(self->conn, &frame, NULL);
}

static void
migd_source_fail(MigdSource *self, const GError *error)
{
	g_autofree gchar *problems = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *why = NULL;
	g_autoptr(GError) outcome = NULL;
	/* the devices had stopped: the VM resumes here, and the VMM must know */
	gboolean after_switchover;

	if (self->finished)
		return;
	after_switchover = self->stage >= MIGD_SOURCE_STAGE_STOPCOPY;
	migd_job_set_phase(self->job, MIGD_JOB_PHASE_ROLLBACK);
	g_clear_handle_id(&self->pace_id, g_source_remove);
	g_clear_handle_id(&self->handover_id, g_source_remove);
	/* trackers stop before their devices move (waits for a sync in flight) */
	if (self->dirty != NULL)
		migd_dirty_source_stop(self->dirty);
	/* tell the destination why, so it resets its devices at once */
	if (self->conn != NULL) {
		if (self->stage == MIGD_SOURCE_STAGE_HANDOVER)
			migd_source_send_rolled_back(self, error);
		else
			migd_connection_send_abort(self->conn, error);
		migd_connection_close(self->conn, NULL);
	}
	problems = migd_source_rollback(self);
	if (after_switchover) {
		migd_job_set_rolled_back(self->job);
		why = g_strdup_printf("rolled back after the switchover (%s)", error->message);
	} else {
		why = g_strdup(error->message);
	}
	if (problems != NULL)
		message = g_strdup_printf("%s; RECOVERY FAILED: %s", why, problems);
	else
		message = g_strdup_printf("%s; source devices back to RUNNING", why);
	outcome = g_error_new_literal(error->domain, error->code, message);
	migd_source_finish(self, FALSE, message);
	migd_source_return_switchover(self, outcome);
}

static void
migd_source_fail_literal(MigdSource *self, gint code, const gchar *message)
{
	g_autoptr(GError) error = g_error_new_literal(MIGD_ERROR, code, message);
	migd_source_fail(self, error);
}

/* ---- data path: reader callbacks ---- */

static void
migd_source_reader_chunk_cb(MigdStreamReader *reader, GBytes *chunk, guint32 crc32c,
			    gpointer user_data)
{
	MigdSourceDevice *sd = user_data;
	MigdSource *self = sd->source;
	Migd__Wire__StateChunk msg = MIGD__WIRE__STATE_CHUNK__INIT;
	g_autoptr(GError) error = NULL;
	MigdWireFrame frame;
	gsize len = 0;

	if (self->finished)
		return;
	msg.device = sd->index;
	msg.phase = self->stage == MIGD_SOURCE_STAGE_STOPCOPY ? MIGD__WIRE__PHASE__PHASE_STOPCOPY
							      : MIGD__WIRE__PHASE__PHASE_PRECOPY;
	msg.sequence = sd->sequence++;
	msg.data.data = (guint8 *)g_bytes_get_data(chunk, &len);
	msg.data.len = len;
	/* the reader computed it on its thread; the stream's value needs no pass over the bytes */
	if ((self->capabilities & MIGD_WIRE_CAP_CHECKSUM) != 0) {
		msg.has_crc32c = TRUE;
		msg.crc32c = crc32c;
		sd->crc32c = migd_crc32c_combine(sd->crc32c, crc32c, len);
	}
	migd_wire_frame_init(&frame, MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK, &msg);
	/* the connection references @chunk until it is written: no copy of the payload */
	if (!migd_connection_send_with_payload(self->conn, &frame, chunk, &error)) {
		migd_source_fail(self, error);
		return;
	}
	sd->chunks_sent++;
	sd->bytes_sent += len;
	self->total_bytes += len;
	/* the send queue holds a reference; keep the chunk in flight (in the reader's
	 * accounting) while the link is congested so the reader (and so the device) slows
	 * down with the network */
	if (migd_connection_is_congested(self->conn))
		g_ptr_array_add(sd->held, g_bytes_ref(chunk));
	else
		migd_stream_reader_release(reader, chunk);
	migd_source_update_job(self);
}

static void
migd_source_conn_drained_cb(MigdConnection *conn, gpointer user_data)
{
	MigdSource *self = user_data;

	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		for (guint j = 0; j < sd->held->len; j++)
			migd_stream_reader_release(sd->reader, g_ptr_array_index(sd->held, j));
		g_ptr_array_set_size(sd->held, 0);
	}
}

static void
migd_source_reader_error_cb(MigdStreamReader *reader, const GError *error, gpointer user_data)
{
	MigdSourceDevice *sd = user_data;
	g_autoptr(GError) copy = g_error_copy(error);

	g_prefix_error(&copy, "%s: ", sd->name);
	migd_source_fail(sd->source, copy);
}

static void
migd_source_commit(MigdSource *self)
{
	Migd__Wire__Commit commit = MIGD__WIRE__COMMIT__INIT;
	g_autofree Migd__Wire__CommitDevice *entries =
	    g_new0(Migd__Wire__CommitDevice, self->devices->len);
	g_autofree Migd__Wire__CommitDevice **ptrs =
	    g_new0(Migd__Wire__CommitDevice *, self->devices->len);

	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		migd__wire__commit_device__init(&entries[i]);
		entries[i].device = sd->index;
		entries[i].chunks = sd->chunks_sent;
		entries[i].bytes = sd->bytes_sent;
		entries[i].has_crc32c = (self->capabilities & MIGD_WIRE_CAP_CHECKSUM) != 0;
		entries[i].crc32c = sd->crc32c;
		ptrs[i] = &entries[i];
		migd_job_set_device_stream(self->job, i, sd->bytes_sent, sd->crc32c);
	}
	commit.n_devices = self->devices->len;
	commit.devices = ptrs;
	self->stage = MIGD_SOURCE_STAGE_COMMIT;
	migd_job_set_phase(self->job, MIGD_JOB_PHASE_COMMIT);
	migd_source_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT, &commit);
}

static void
migd_source_reader_drained_cb(MigdStreamReader *reader, MigdState phase, guint64 drain_bytes,
			      MigdDataReadStatus status, gpointer user_data)
{
	MigdSourceDevice *sd = user_data;
	MigdSource *self = sd->source;

	if (self->finished)
		return;
	if (phase == MIGD_STATE_STOP_COPY) {
		Migd__Wire__StateChunk last = MIGD__WIRE__STATE_CHUNK__INIT;
		last.device = sd->index;
		last.phase = MIGD__WIRE__PHASE__PHASE_STOPCOPY;
		last.sequence = sd->sequence++;
		last.has_last = TRUE;
		last.last = TRUE;
		if (!migd_source_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_STATE_CHUNK, &last))
			return;
		sd->chunks_sent++;
		sd->done = TRUE;
		g_debug("%s: stop-copy stream complete, %" G_GUINT64_FORMAT " bytes", sd->name,
			sd->bytes_sent);
		if (--self->n_pending == 0)
			migd_source_commit(self);
		return;
	}
	if (--self->n_pending > 0)
		return;
	/* a pre-copy round is complete on every device: ship what their DMA dirtied */
	migd_job_set_precopy_rounds(self->job, self->round);
	/*
	 * the VMM waits in its downtime: stop-copy's final sync covers this
	 * round's writes; one more PRECOPY_INFO tells what initial data is left
	 */
	if (self->switchover_requested) {
		migd_source_next_round(self);
		return;
	}
	if (self->dirty_peer) {
		migd_dirty_source_sync_async(self->dirty, ++self->dirty_syncs,
					     migd_source_dirty_round_cb, migd_source_ref(self));
		return;
	}
	migd_source_next_round(self);
}

static void
migd_source_send_progress(MigdSource *self, MigdSourceDevice *sd)
{
	Migd__Wire__PrecopyProgress msg = MIGD__WIRE__PRECOPY_PROGRESS__INIT;
	msg.device = sd->index;
	msg.initial_bytes = sd->initial_bytes;
	msg.dirty_bytes = sd->dirty_bytes;
	msg.round = self->round;
	migd_source_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_PRECOPY_PROGRESS, &msg);
}

static gboolean
migd_source_all_acked(MigdSource *self)
{
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		if (sd->precopy && !sd->acked)
			return FALSE;
	}
	return TRUE;
}

static void
migd_source_begin_switchover(MigdSource *self)
{
	self->stage = MIGD_SOURCE_STAGE_SWITCHOVER;
	migd_job_set_phase(self->job, MIGD_JOB_PHASE_SWITCHOVER);
	/* the final progress tells the destination the initial data is complete */
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		if (!sd->precopy)
			continue;
		migd_source_send_progress(self, sd);
		/* at the round cap initial data may be left: stop-copy carries it */
		if (sd->initial_bytes > 0) {
			g_message("%s: switching over with %" G_GUINT64_FORMAT
				  " initial bytes unsent (%s)",
				  sd->name, sd->initial_bytes,
				  self->switchover_requested ? "switchover requested"
							     : "round cap");
			sd->acked = TRUE;
		}
	}
	if (self->finished)
		return;
	if ((self->capabilities & MIGD_WIRE_CAP_SWITCHOVER_ACK) == 0 || migd_source_all_acked(self))
		migd_source_start_stopcopy(self);
}

static void
migd_source_reader_precopy_info_cb(MigdStreamReader *reader, guint64 initial_bytes,
				   guint64 dirty_bytes, gpointer user_data)
{
	MigdSourceDevice *sd = user_data;
	MigdSource *self = sd->source;
	g_autofree MigdConvergenceDevice *cdevs = NULL;
	MigdConvergenceVerdict verdict;

	if (self->finished)
		return;
	sd->initial_bytes = initial_bytes;
	sd->dirty_bytes = dirty_bytes;
	if (--self->n_pending > 0)
		return;

	cdevs = g_new0(MigdConvergenceDevice, self->devices->len);
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *d = g_ptr_array_index(self->devices, i);
		cdevs[i].has_precopy = d->precopy;
		cdevs[i].initial_bytes = d->initial_bytes;
		cdevs[i].dirty_bytes = d->dirty_bytes;
		cdevs[i].has_data_size = FALSE; /* the sum of what remains, PRECOPY_INFO's view */
		cdevs[i].stop_copy_length = d->stop_copy_length;
	}
	verdict =
	    migd_convergence_decide(&self->options.policy, cdevs, self->devices->len,
				    self->round - 1, migd_rate_estimator_get(&self->link_rate));
	migd_job_set_expected_downtime_us(self->job, verdict.expected_downtime_us == G_MAXUINT64
							 ? 0
							 : verdict.expected_downtime_us);
	g_debug("round %u: %s, %" G_GUINT64_FORMAT " bytes remain", self->round,
		migd_convergence_reason_to_string(verdict.reason), verdict.remaining_bytes);
	/* manual: the policy's verdict is only advice to the VMM, which decides */
	if (self->options.switchover == MIGD_SWITCHOVER_MANUAL)
		migd_job_set_converged(self->job, verdict.decision == MIGD_CONVERGENCE_SWITCHOVER);
	if (self->switchover_requested || (self->options.switchover != MIGD_SWITCHOVER_MANUAL &&
					   verdict.decision == MIGD_CONVERGENCE_SWITCHOVER)) {
		migd_source_begin_switchover(self);
		return;
	}

	/* drain this round on every pre-copying device in parallel */
	self->stage = MIGD_SOURCE_STAGE_PRECOPY_DRAIN;
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *d = g_ptr_array_index(self->devices, i);
		g_autoptr(GError) error = NULL;
		if (!d->precopy)
			continue;
		migd_source_send_progress(self, d);
		if (self->finished)
			return;
		if (!migd_stream_reader_drain(d->reader, MIGD_STATE_PRE_COPY, &error)) {
			migd_source_fail(self, error);
			return;
		}
		self->n_pending++;
	}
}

static gboolean
migd_source_pace_cb(gpointer user_data)
{
	MigdSource *self = user_data;

	self->pace_id = 0;
	migd_source_next_round(self);
	return G_SOURCE_REMOVE;
}

static void
migd_source_next_round(MigdSource *self)
{
	gint64 now = g_get_monotonic_time();

	/* converged and waiting for the VMM: keep the state fresh without a busy loop */
	if (self->options.switchover == MIGD_SWITCHOVER_MANUAL && !self->switchover_requested &&
	    migd_job_get_converged(self->job) && self->round_start_us != 0 &&
	    now - self->round_start_us < MIGD_SOURCE_PACE_US) {
		self->stage = MIGD_SOURCE_STAGE_PRECOPY_WAIT;
		self->pace_id =
		    g_timeout_add((guint)((self->round_start_us + MIGD_SOURCE_PACE_US - now) /
					  G_TIME_SPAN_MILLISECOND) +
				      1,
				  migd_source_pace_cb, self);
		return;
	}
	self->round_start_us = now;
	self->round++;
	self->stage = MIGD_SOURCE_STAGE_PRECOPY_INFO;
	self->n_pending = 0;
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		g_autoptr(GError) error = NULL;
		if (!sd->precopy)
			continue;
		/* once per round: some drivers start their next incremental save here */
		if (!migd_stream_reader_query_precopy_info(sd->reader, &error)) {
			migd_source_fail(self, error);
			return;
		}
		self->n_pending++;
	}
}

static gboolean
migd_source_attach_reader(MigdSource *self, MigdSourceDevice *sd, MigdDataFd *data_fd,
			  GError **error)
{
	const MigdStreamReaderCallbacks callbacks = {
	    .chunk = migd_source_reader_chunk_cb,
	    .drained = migd_source_reader_drained_cb,
	    .precopy_info = migd_source_reader_precopy_info_cb,
	    .error = migd_source_reader_error_cb,
	};
	MigdStreamConfig config = {
	    /* the job's choice, else the driver plugin's */
	    .chunk_size =
		self->options.chunk_size != 0 ? self->options.chunk_size : sd->policy.read_size,
	    .name = sd->name,
	    .checksum = (self->capabilities & MIGD_WIRE_CAP_CHECKSUM) != 0,
	};
	sd->reader = migd_stream_reader_new(data_fd, NULL, &config, &callbacks, sd, error);
	if (sd->reader == NULL)
		return FALSE;
	migd_stream_reader_set_budget(sd->reader, self->options.budget);
	return TRUE;
}

static void
migd_source_start_precopy(MigdSource *self)
{
	guint n_precopy = 0;

	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		MigdDataFd *data_fd = NULL;
		g_autoptr(GError) error = NULL;

		sd->precopy = (sd->flags & MIGD_MIG_FLAG_PRE_COPY) != 0 &&
			      (self->capabilities & MIGD_WIRE_CAP_PRECOPY) != 0;
		if (!sd->precopy)
			continue;
		sd->touched = TRUE;
		if (!migd_device_transition(sd->device, MIGD_STATE_PRE_COPY, MIGD_STATE_RUNNING,
					    &data_fd, NULL, &error) ||
		    !migd_source_attach_reader(self, sd, data_fd, &error)) {
			migd_source_fail(self, error);
			return;
		}
		n_precopy++;
	}
	if (n_precopy == 0) {
		/* nothing to pre-copy: the devices run untouched until the VMM says */
		if (self->options.switchover == MIGD_SWITCHOVER_MANUAL &&
		    !self->switchover_requested) {
			migd_job_set_phase(self->job, MIGD_JOB_PHASE_PRECOPY);
			migd_job_set_converged(self->job, TRUE);
			self->stage = MIGD_SOURCE_STAGE_PRECOPY_WAIT;
			return;
		}
		migd_source_start_stopcopy(self);
		return;
	}
	migd_job_set_phase(self->job, MIGD_JOB_PHASE_PRECOPY);
	self->round = 0;
	migd_source_next_round(self);
}

/* before the first device leaves RUNNING: a crash from here on is recoverable */
static gboolean
migd_source_record_job(MigdSource *self)
{
	g_autoptr(GPtrArray) devices = g_ptr_array_new();
	g_autoptr(GError) error = NULL;

	if (self->options.journal == NULL)
		return TRUE;
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		g_ptr_array_add(devices, sd->device);
	}
	if (!migd_journal_begin(self->options.journal, self->job, devices, &error)) {
		migd_source_fail(self, error);
		return FALSE;
	}
	self->journaled = TRUE;
	return TRUE;
}

/* ---- dirty bitmaps ---- */

/*
 * A tracker on every device that has IOVA ranges, started before any device
 * leaves RUNNING so no write is missed, for the peer (CAP_DIRTY_BITMAP) and,
 * with switchover=manual, for the VMM's RAM copy (Job.SyncDirtyBitmap).
 * FALSE: the job failed.
 */
static gboolean
migd_source_start_dirty_tracking(MigdSource *self)
{
	gboolean vmm = self->options.switchover == MIGD_SWITCHOVER_MANUAL;

	self->dirty_peer = (self->capabilities & MIGD_WIRE_CAP_DIRTY_BITMAP) != 0;
	if (!self->dirty_peer && !vmm)
		return TRUE;
	self->dirty = migd_dirty_source_new();
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		g_autoptr(GError) error = NULL;
		if (!migd_dirty_source_add_device(self->dirty, sd->index, sd->device, sd->plugin,
						  self->options.dirty_fallback, &error)) {
			g_prefix_error(&error, "dirty tracking: ");
			migd_source_fail(self, error);
			return FALSE;
		}
	}
	if (migd_dirty_source_get_n_tracked(self->dirty) == 0) {
		g_clear_pointer(&self->dirty, migd_dirty_source_unref);
		self->dirty_peer = FALSE;
		return TRUE;
	}
	/* before the first report: from then on every read feeds both */
	if (vmm) {
		g_autoptr(GError) error = NULL;
		self->vmm_consumer = migd_dirty_source_add_consumer(self->dirty, &error);
		if (self->vmm_consumer == 0) {
			g_prefix_error(&error, "dirty tracking for the VMM: ");
			migd_source_fail(self, error);
			return FALSE;
		}
	}
	return TRUE;
}

/* sends a sync's chunks; FALSE if the job failed meanwhile */
static gboolean
migd_source_send_dirty(MigdSource *self, GAsyncResult *result)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) chunks = NULL;
	MigdDirtyRoundStats stats = {0};

	chunks = migd_dirty_source_sync_finish(self->dirty, result, &stats, &error);
	if (self->finished)
		return FALSE;
	if (chunks == NULL) {
		g_prefix_error(&error, "dirty tracking: ");
		migd_source_fail(self, error);
		return FALSE;
	}
	for (guint i = 0; i < chunks->len; i++) {
		const MigdDirtyChunk *c = g_ptr_array_index(chunks, i);
		Migd__Wire__DirtyBitmapChunk msg = MIGD__WIRE__DIRTY_BITMAP_CHUNK__INIT;
		gsize len = 0;

		msg.device = c->device;
		msg.round = c->round;
		msg.window = c->window;
		msg.window_iova = c->window_iova;
		msg.window_pages = c->window_pages;
		msg.page_size = c->page_size;
		msg.first_page = c->first_page;
		msg.n_pages = c->encoded.n_pages;
		msg.encoding = (Migd__Wire__DirtyEncoding)c->encoded.encoding;
		msg.data.data = (guint8 *)g_bytes_get_data(c->encoded.data, &len);
		msg.data.len = len;
		msg.n_dirty = c->encoded.n_dirty;
		msg.checksum = c->encoded.checksum;
		/* packed (copied) now: a RAW payload may point into the tracker's window */
		if (!migd_source_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_DIRTY_BITMAP_CHUNK, &msg))
			return FALSE;
	}
	migd_job_add_dirty(self->job, stats.dirty_pages, stats.wire_bytes);
	g_message("job %s: dirty sync %u: %" G_GUINT64_FORMAT " dirty pages (%.1f MiB of guest "
		  "memory), %" G_GUINT64_FORMAT " bytes on the wire for %" G_GUINT64_FORMAT
		  " bytes of bitmap, %u chunks, %.1f ms",
		  migd_job_get_id(self->job), stats.round, stats.dirty_pages,
		  stats.dirty_bytes / 1048576.0, stats.wire_bytes, stats.raw_bytes, stats.n_chunks,
		  stats.sync_us / 1000.0);
	return TRUE;
}

static void
migd_source_dirty_round_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	MigdSource *self = user_data;

	if (migd_source_send_dirty(self, result))
		migd_source_next_round(self);
	migd_source_unref(self);
}

static void
migd_source_dirty_final_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	MigdSource *self = user_data;

	/* the destination has every bitmap before Commit: frames arrive in order */
	if (migd_source_send_dirty(self, result) && --self->n_pending == 0)
		migd_source_commit(self);
	migd_source_unref(self);
}

static void
migd_source_start_stopcopy(MigdSource *self)
{
	self->stage = MIGD_SOURCE_STAGE_STOPCOPY;
	/* before the first device leaves RUNNING/PRE_COPY (set before the phase: one notify) */
	migd_job_set_devices_stopped_at(self->job, g_get_real_time());
	migd_job_set_phase(self->job, MIGD_JOB_PHASE_STOPCOPY);
	self->stop_start_us = g_get_monotonic_time();

	/* no device may stop while another still does peer-to-peer DMA into it */
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		g_autoptr(GError) error = NULL;
		MigdState quiesced = sd->precopy ? MIGD_STATE_PRE_COPY_P2P : MIGD_STATE_RUNNING_P2P;
		if ((sd->flags & MIGD_MIG_FLAG_P2P) == 0)
			continue;
		sd->touched = TRUE;
		if (!migd_device_transition(sd->device, quiesced, MIGD_STATE_RUNNING, NULL, NULL,
					    &error)) {
			migd_source_fail(self, error);
			return;
		}
	}
	/* then stop everything and stream all devices at once */
	self->n_pending = 0;
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		MigdDataFd *data_fd = NULL;
		g_autoptr(GError) error = NULL;

		sd->touched = TRUE;
		if (!migd_device_transition(sd->device, MIGD_STATE_STOP_COPY, MIGD_STATE_RUNNING,
					    sd->precopy ? NULL : &data_fd, NULL, &error) ||
		    (!sd->precopy && !migd_source_attach_reader(self, sd, data_fd, &error))) {
			migd_source_fail(self, error);
			return;
		}
	}
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		g_autoptr(GError) error = NULL;
		if (!migd_stream_reader_drain(sd->reader, MIGD_STATE_STOP_COPY, &error)) {
			migd_source_fail(self, error);
			return;
		}
		self->n_pending++;
	}
	/* every device has stopped: the last writes of its DMA, while the state streams */
	if (self->dirty_peer) {
		self->n_pending++;
		migd_dirty_source_sync_async(self->dirty, ++self->dirty_syncs,
					     migd_source_dirty_final_cb, migd_source_ref(self));
	}
}

/* ---- control path: frames from the destination ---- */

static gchar *
migd_source_describe_reason(guint32 reason, const gchar *message)
{
	return g_strdup_printf("%s%s%s", migd_wire_reason_to_string(reason),
			       message != NULL && message[0] != '\0' ? ": " : "",
			       message != NULL ? message : "");
}

static void
migd_source_send_offers(MigdSource *self)
{
	self->stage = MIGD_SOURCE_STAGE_OFFERS;
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		Migd__Wire__DeviceOffer offer = MIGD__WIRE__DEVICE_OFFER__INIT;
		Migd__Wire__DeviceDescriptor desc = MIGD__WIRE__DEVICE_DESCRIPTOR__INIT;

		desc.driver_name = sd->identity.driver;
		desc.vendor_id = sd->identity.vendor_id;
		desc.device_id = sd->identity.device_id;
		desc.subsystem_vendor_id = sd->identity.subsystem_vendor_id;
		desc.subsystem_device_id = sd->identity.subsystem_device_id;
		desc.migration_flags = sd->flags;
		desc.stop_copy_length = sd->stop_copy_length;
		desc.has_plugin_data = TRUE;
		desc.plugin_data.data = (guint8 *)g_bytes_get_data(sd->plugin_data, NULL);
		desc.plugin_data.len = g_bytes_get_size(sd->plugin_data);
		offer.device = sd->index;
		offer.descriptor = &desc;
		if (!migd_source_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER, &offer))
			return;
	}
}

static gboolean
migd_source_handover_timeout_cb(gpointer user_data)
{
	MigdSource *self = user_data;
	g_autofree gchar *msg = g_strdup_printf(
	    "the destination did not start within %u s (handover timeout)",
	    self->options.handover_timeout_s != 0 ? self->options.handover_timeout_s
						  : MIGD_SOURCE_HANDOVER_TIMEOUT_DEFAULT_S);

	self->handover_id = 0;
	migd_source_fail_literal(self, MIGD_ERROR_TIMED_OUT, msg);
	return G_SOURCE_REMOVE;
}

static void
migd_source_handle_commit_result(MigdSource *self, const Migd__Wire__CommitResult *result)
{
	g_autofree gchar *message = NULL;
	g_autoptr(GString) problems = g_string_new(NULL);
	gboolean handover = (self->capabilities & MIGD_WIRE_CAP_HANDOVER) != 0;
	guint timeout_s;

	if (!result->ok) {
		for (gsize i = 0; i < result->n_devices; i++) {
			const Migd__Wire__CommitDeviceResult *r = result->devices[i];
			g_autofree gchar *why = NULL;
			if (r->ok)
				continue;
			why = migd_source_describe_reason(r->reason, r->message);
			g_string_append_printf(problems, "%sdevice %u: %s",
					       problems->len > 0 ? "; " : "", r->device, why);
		}
		message = g_strdup_printf("destination could not validate the state (%s)",
					  problems->len > 0 ? problems->str : "no detail");
		migd_source_fail_literal(self, MIGD_ERROR_DEVICE_ERROR, message);
		return;
	}
	/*
	 * the destination validated: leaving STOP_COPY ends our sessions, devices
	 * stay stopped; with the handover they stay ours (touched) until it starts
	 */
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		g_autoptr(GError) error = NULL;
		g_clear_object(&sd->reader);
		if (!migd_device_transition(sd->device, MIGD_STATE_STOP, MIGD_STATE_STOP, NULL,
					    NULL, &error))
			g_warning("%s: migrated, but leaving STOP_COPY failed: %s", sd->name,
				  error->message);
		if (!handover)
			sd->touched = FALSE;
	}
	migd_job_set_downtime_us(self->job,
				 (guint64)(g_get_monotonic_time() - self->stop_start_us));
	message = g_strdup_printf(
	    "migrated %u devices, %" G_GUINT64_FORMAT " bytes, %u precopy rounds, downtime %.1f ms",
	    self->devices->len, self->total_bytes, self->round > 0 ? self->round - 1 : 0,
	    migd_job_get_downtime_us(self->job) / 1000.0);
	migd_source_update_job(self);
	if (!handover) {
		migd_source_finish(self, TRUE, message);
		return;
	}
	self->stage = MIGD_SOURCE_STAGE_HANDOVER;
	migd_job_set_phase(self->job, MIGD_JOB_PHASE_HANDOVER);
	self->handover_message = g_steal_pointer(&message);
	timeout_s = self->options.handover_timeout_s != 0 ? self->options.handover_timeout_s
							  : MIGD_SOURCE_HANDOVER_TIMEOUT_DEFAULT_S;
	self->handover_id = g_timeout_add_seconds(timeout_s, migd_source_handover_timeout_cb, self);
	g_message("job %s: the destination validated every device; ours wait in STOP for its "
		  "start (%u s at most)",
		  migd_job_get_id(self->job), timeout_s);
	migd_source_return_switchover(self, NULL);
}

/* the destination's VMM starts the guest there: our devices' state is given up for good */
static void
migd_source_handle_start_request(MigdSource *self)
{
	Migd__Wire__StartGrant grant = MIGD__WIRE__START_GRANT__INIT;
	g_autofree gchar *message = NULL;

	if (self->stage != MIGD_SOURCE_STAGE_HANDOVER) {
		migd_source_fail_literal(self, MIGD_ERROR_PROTOCOL,
					 "StartRequest from the destination before the commit");
		return;
	}
	g_clear_handle_id(&self->handover_id, g_source_remove);
	/* a send that fails leaves the grant unsent: the rollback is then safe */
	if (!migd_source_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_START_GRANT, &grant))
		return;
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		sd->touched = FALSE;
	}
	message = g_strdup_printf("%s; handed over", self->handover_message);
	migd_source_finish(self, TRUE, message);
}

static void
migd_source_conn_frame_cb(MigdConnection *conn, const MigdWireFrame *frame, gpointer user_data)
{
	MigdSource *self = user_data;
	g_autofree gchar *why = NULL;
	g_autofree gchar *msg = NULL;

	if (self->finished)
		return;
	switch (frame->type) {
	case MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY:
		if (frame->hello_reply->has_refusal) {
			why = migd_source_describe_reason(frame->hello_reply->refusal,
							  frame->hello_reply->message);
			msg = g_strdup_printf("destination refused the session: %s", why);
			migd_source_fail_literal(self, MIGD_ERROR_PROTOCOL, msg);
			return;
		}
		self->capabilities = frame->hello_reply->capabilities;
		if (!self->options.no_checksum &&
		    (self->capabilities & MIGD_WIRE_CAP_CHECKSUM) == 0)
			g_message("job %s: the destination takes no state checksums (an older "
				  "vfio-migd): the streams are not checked end to end",
				  migd_job_get_id(self->job));
		migd_source_send_offers(self);
		return;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT:
		if (++self->n_accepted == self->devices->len && migd_source_record_job(self) &&
		    migd_source_start_dirty_tracking(self))
			migd_source_start_precopy(self);
		return;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_REJECT: {
		const Migd__Wire__DeviceReject *rej = frame->device_reject;
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, rej->device);
		why = migd_source_describe_reason(rej->reason, rej->message);
		msg = g_strdup_printf("destination rejected %s: %s", sd->name, why);
		migd_source_fail_literal(self, MIGD_ERROR_NOT_SUPPORTED, msg);
		return;
	}
	case MIGD__WIRE__MESSAGE_TYPE__MSG_SWITCHOVER_ACK:
		for (guint i = 0; i < self->devices->len; i++) {
			MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
			if (!frame->switchover_ack->has_device ||
			    frame->switchover_ack->device == sd->index)
				sd->acked = TRUE;
		}
		if (self->stage == MIGD_SOURCE_STAGE_SWITCHOVER && migd_source_all_acked(self))
			migd_source_start_stopcopy(self);
		return;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_COMMIT_RESULT:
		migd_source_handle_commit_result(self, frame->commit_result);
		return;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_START_REQUEST:
		migd_source_handle_start_request(self);
		return;
	case MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT:
		why = migd_source_describe_reason(frame->abort->reason, frame->abort->message);
		msg = g_strdup_printf("destination aborted: %s", why);
		migd_source_fail_literal(self, MIGD_ERROR_FAILED, msg);
		return;
	default:
		msg = g_strdup_printf("unexpected %s from the destination",
				      migd_wire_msg_type_to_string(frame->type));
		migd_source_fail_literal(self, MIGD_ERROR_PROTOCOL, msg);
		return;
	}
}

static void
migd_source_conn_closed_cb(MigdConnection *conn, const GError *error, gpointer user_data)
{
	MigdSource *self = user_data;
	g_autoptr(GError) lost = NULL;

	if (self->finished)
		return;
	if (error != NULL) {
		migd_source_fail(self, error);
		return;
	}
	lost =
	    g_error_new(MIGD_ERROR, MIGD_ERROR_PROTOCOL, "connection to %s closed", self->address);
	migd_source_fail(self, lost);
}

static void migd_source_connected(MigdSource *self, GAsyncResult *res);

static void
migd_source_connected_cb(GObject *object, GAsyncResult *res, gpointer user_data)
{
	MigdSource *self = user_data;
	migd_source_connected(self, res);
	migd_source_unref(self);
}

static void
migd_source_connected(MigdSource *self, GAsyncResult *res)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *peer = NULL;
	g_autoptr(GIOStream) stream = migd_transport_connect_finish(res, &peer, &error);
	const MigdConnectionCallbacks callbacks = {
	    .frame = migd_source_conn_frame_cb,
	    .closed = migd_source_conn_closed_cb,
	    .drained = migd_source_conn_drained_cb,
	};
	Migd__Wire__Hello hello = MIGD__WIRE__HELLO__INIT;

	if (self->finished)
		return;
	if (stream == NULL) {
		/* the transport names the address itself, once is enough */
		if (!g_str_has_prefix(error->message, "connecting to "))
			g_prefix_error(&error, "connecting to %s: ", self->address);
		migd_source_fail(self, error);
		return;
	}
	g_message("job %s: connected to %s (%s)", migd_job_get_id(self->job), self->address, peer);
	self->conn = migd_connection_new(stream, MIGD_WIRE_ROLE_SOURCE, peer, &callbacks, self);
	migd_connection_set_frame_timeout(
	    self->conn, migd_transport_config_get_frame_timeout_ms(self->transport));
	migd_connection_start(self->conn);
	migd_job_set_phase(self->job, MIGD_JOB_PHASE_NEGOTIATING);
	self->stage = MIGD_SOURCE_STAGE_HELLO;
	hello.version_min = MIGD_WIRE_PROTOCOL_VERSION_MIN;
	hello.version_max = MIGD_WIRE_PROTOCOL_VERSION_MAX;
	hello.capabilities = MIGD_WIRE_CAP_PRECOPY | MIGD_WIRE_CAP_SWITCHOVER_ACK |
			     MIGD_WIRE_CAP_DIRTY_BITMAP | MIGD_WIRE_CAP_KEEPALIVE;
	if (!self->options.no_checksum)
		hello.capabilities |= MIGD_WIRE_CAP_CHECKSUM;
	if (!self->options.no_handover)
		hello.capabilities |= MIGD_WIRE_CAP_HANDOVER;
	hello.host_identity = (gchar *)g_get_host_name();
	hello.session_id = self->session_id;
	hello.device_count = self->devices->len;
	hello.migration_id = (gchar *)self->options.migration_id;
	migd_source_send(self, MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO, &hello);
}

/* ---- the VMM's controls (MigdJobControl) ---- */

static void
migd_source_control_switchover(gpointer engine, GTask *task)
{
	MigdSource *self = engine;
	g_autoptr(GTask) owned = task;

	/* already done: the destination holds every device, validated */
	if (self->stage == MIGD_SOURCE_STAGE_HANDOVER) {
		g_task_return_boolean(owned, TRUE);
		return;
	}
	if (self->switchover_task != NULL) {
		g_task_return_new_error(owned, MIGD_ERROR, MIGD_ERROR_BUSY,
					"job %s: a switchover is already in progress",
					migd_job_get_id(self->job));
		return;
	}
	g_message("job %s: switchover requested (%s)", migd_job_get_id(self->job),
		  migd_job_phase_to_string(migd_job_get_phase(self->job)));
	self->switchover_task = g_steal_pointer(&owned);
	/* already under way (auto decided): the task completes with it */
	if (self->stage >= MIGD_SOURCE_STAGE_SWITCHOVER)
		return;
	self->switchover_requested = TRUE;
	/*
	 * between rounds: now; otherwise when the step in flight (a round's
	 * query or drain, a dirty sync) ends, or as soon as pre-copy begins
	 */
	if (self->stage != MIGD_SOURCE_STAGE_PRECOPY_WAIT)
		return;
	g_clear_handle_id(&self->pace_id, g_source_remove);
	/* a fresh PRECOPY_INFO first (the last one predates a drain), if anything pre-copies */
	if (self->round > 0)
		migd_source_next_round(self);
	else
		migd_source_begin_switchover(self);
}

static gboolean
migd_source_control_rollback(gpointer engine, GError **error)
{
	MigdSource *self = engine;
	gboolean after_switchover = self->stage >= MIGD_SOURCE_STAGE_STOPCOPY;

	g_message("job %s: rollback requested (%s)", migd_job_get_id(self->job),
		  migd_job_phase_to_string(migd_job_get_phase(self->job)));
	/* before the switchover it is a cancel: nothing has stopped yet */
	migd_source_fail_literal(self, MIGD_ERROR_CANCELLED,
				 after_switchover ? "Job.Rollback by the VMM"
						  : "rolled back by the VMM before the switchover");
	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		if (sd->touched) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_RECOVERY_FAILED, "job %s: %s",
				    migd_job_get_id(self->job), migd_job_get_message(self->job));
			return FALSE;
		}
	}
	return TRUE;
}

static void
migd_source_dirty_take_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	MigdSource *self = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	gint fd = migd_dirty_source_take_bitmap_finish(self->dirty, result, &error);

	if (fd < 0)
		g_task_return_error(task, g_steal_pointer(&error));
	else
		g_task_return_int(task, fd);
}

/* the pages @name's DMA dirtied since the VMM's previous sync of it */
static void
migd_source_control_sync_dirty_bitmap(gpointer engine, const gchar *name, GTask *task)
{
	MigdSource *self = engine;
	g_autoptr(GTask) owned = task;
	MigdSourceDevice *found = NULL;
	GCancellable *cancellable;

	for (guint i = 0; i < self->devices->len; i++) {
		MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
		if (g_strcmp0(sd->name, name) == 0)
			found = sd;
	}
	if (found == NULL) {
		g_task_return_new_error(owned, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					"job %s has no device %s", migd_job_get_id(self->job),
					name);
		return;
	}
	if (self->options.switchover != MIGD_SWITCHOVER_MANUAL) {
		g_task_return_new_error(owned, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
					"job %s: dirty-bitmap syncs are for a VMM's job "
					"(switchover=manual)",
					migd_job_get_id(self->job));
		return;
	}
	if (self->dirty == NULL || self->vmm_consumer == 0) {
		g_task_return_new_error(owned, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					"job %s: %s is not tracked (%s)",
					migd_job_get_id(self->job), name,
					self->stage <= MIGD_SOURCE_STAGE_OFFERS
					    ? "tracking starts once the destination accepted the "
					      "devices"
					    : "it has no IOVA ranges");
		return;
	}
	/* the source lives until the take's callback, even if the job ends meanwhile */
	g_task_set_task_data(owned, migd_source_ref(self), (GDestroyNotify)migd_source_unref);
	cancellable = g_task_get_cancellable(owned);
	migd_dirty_source_take_bitmap_async(self->dirty, self->vmm_consumer, found->index,
					    cancellable, migd_source_dirty_take_cb,
					    g_steal_pointer(&owned));
}

static const MigdJobControl migd_source_control = {
    .switchover = migd_source_control_switchover,
    .rollback = migd_source_control_rollback,
    .sync_dirty_bitmap = migd_source_control_sync_dirty_bitmap,
};

static void
migd_source_cancel_requested_cb(MigdJob *job, gpointer user_data)
{
	migd_source_fail_literal(user_data, MIGD_ERROR_CANCELLED, "cancelled by the operator");
}

static gboolean
migd_source_timeout_cb(gpointer user_data)
{
	MigdSource *self = user_data;
	g_autofree gchar *msg =
	    g_strdup_printf("migration did not finish within %u s", self->options.timeout_s);
	self->timeout_id = 0;
	migd_source_fail_literal(self, MIGD_ERROR_TIMED_OUT, msg);
	return G_SOURCE_REMOVE;
}

/* everything that can be checked before anything moves */
static MigdSourceDevice *
migd_source_device_prepare(MigdSource *self, MigdDevice *device, guint index, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	MigdSourceDevice *sd = g_new0(MigdSourceDevice, 1);
	MigdState state = MIGD_STATE_ERROR;

	sd->source = self;
	sd->index = index;
	sd->device = g_object_ref(device);
	sd->name = g_strdup(migd_device_get_name(device));
	sd->held = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	if (!migd_device_probe(device, error) ||
	    !migd_device_get_identity(device, &sd->identity, error) ||
	    !migd_device_get_state(device, &state, error)) {
		migd_source_device_free(sd);
		return NULL;
	}
	sd->flags = migd_device_get_mig_flags(device);
	if ((sd->flags & MIGD_MIG_FLAG_STOP_COPY) == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s does not support VFIO migration", sd->name);
		migd_source_device_free(sd);
		return NULL;
	}
	if (state != MIGD_STATE_RUNNING) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY, "%s is %s, not RUNNING", sd->name,
			    migd_state_to_string(state));
		migd_source_device_free(sd);
		return NULL;
	}
	/* an estimate only: drivers without MIG_DATA_SIZE still migrate */
	if (!migd_device_get_data_size(device, &sd->stop_copy_length, &error_local))
		g_debug("%s: no MIG_DATA_SIZE: %s", sd->name, error_local->message);
	/* the driver's rules: read size and what the destination's plugin will judge */
	sd->plugin = migd_plugin_dup_for_device(device);
	migd_plugin_get_policy(sd->plugin, device, &sd->policy);
	{
		g_autoptr(GVariant) data = migd_plugin_describe(sd->plugin, device, error);
		if (data != NULL)
			sd->plugin_data = migd_plugin_data_encode(data, error);
		if (sd->plugin_data == NULL) {
			migd_source_device_free(sd);
			return NULL;
		}
	}
	return sd;
}

MigdJob *
migd_source_start(GPtrArray *devices, const gchar *address, const MigdTransportConfig *transport,
		  const MigdSourceOptions *options, GError **error)
{
	static guint job_counter = 0;
	MigdSource *self;
	g_autoptr(MigdTransportAddress) addr = NULL;
	g_autofree gchar *job_id = NULL;

	g_return_val_if_fail(devices != NULL, NULL);

	if (devices->len == 0 || devices->len > MIGD_WIRE_MAX_DEVICES) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "a migration takes 1 to %u devices, not %u", MIGD_WIRE_MAX_DEVICES,
			    devices->len);
		return NULL;
	}
	addr = migd_transport_address_parse(address, error);
	if (addr == NULL)
		return NULL;
	if (!migd_transport_config_check(transport, addr, FALSE, error))
		return NULL;
	/* refused here rather than by the Hello's encoder after connecting */
	if (options != NULL && options->migration_id != NULL &&
	    !migd_wire_check_migration_id("migration-id", options->migration_id,
					  MIGD_ERROR_INVALID_ARGUMENT, error))
		return NULL;

	self = g_new0(MigdSource, 1);
	self->refcount = 1;
	self->devices = g_ptr_array_new_with_free_func((GDestroyNotify)migd_source_device_free);
	self->address = g_strdup(address);
	self->transport = migd_transport_config_copy(transport);
	if (options != NULL)
		self->options = *options;
	else
		migd_source_options_init(&self->options);
	/* the caller's string may go before the job does */
	self->options.migration_id = g_strdup(self->options.migration_id);
	self->cancellable = g_cancellable_new();
	self->session_id = g_uuid_string_random();
	migd_rate_estimator_init(&self->link_rate);
	job_id = g_strdup_printf("%u", ++job_counter);
	self->job = migd_job_new(MIGD_JOB_ROLE_SOURCE, job_id);
	migd_job_set_n_devices(self->job, devices->len);
	migd_job_set_migration_id(self->job, self->options.migration_id);

	for (guint i = 0; i < devices->len; i++) {
		MigdSourceDevice *sd =
		    migd_source_device_prepare(self, g_ptr_array_index(devices, i), i, error);
		if (sd == NULL) {
			migd_source_free(self);
			return NULL;
		}
		self->expected_bytes += sd->stop_copy_length;
		/* a driver that converges in fewer rounds caps the job (the strictest wins) */
		if (sd->policy.max_precopy_rounds > 0 &&
		    sd->policy.max_precopy_rounds < self->options.policy.max_rounds) {
			g_debug("%s: plugin %s caps pre-copy at %u rounds", sd->name,
				migd_plugin_get_name(sd->plugin), sd->policy.max_precopy_rounds);
			self->options.policy.max_rounds = sd->policy.max_precopy_rounds;
		}
		g_ptr_array_add(self->devices, sd);
	}

	self->cancel_handler = g_signal_connect(self->job, "cancel-requested",
						G_CALLBACK(migd_source_cancel_requested_cb), self);
	migd_job_set_switchover_mode(self->job, self->options.switchover);
	{
		g_autoptr(GPtrArray) names = g_ptr_array_new();
		for (guint i = 0; i < self->devices->len; i++) {
			MigdSourceDevice *sd = g_ptr_array_index(self->devices, i);
			g_ptr_array_add(names, sd->name);
		}
		g_ptr_array_add(names, NULL);
		migd_job_set_device_names(self->job, (const gchar *const *)names->pdata);
	}
	migd_job_set_control(self->job, &migd_source_control, self);
	if (self->options.timeout_s > 0)
		self->timeout_id =
		    g_timeout_add_seconds(self->options.timeout_s, migd_source_timeout_cb, self);
	migd_job_set_phase(self->job, MIGD_JOB_PHASE_CONNECTING);
	migd_transport_connect_async(address, self->transport, self->cancellable,
				     migd_source_connected_cb, migd_source_ref(self));
	return g_object_ref(self->job);
}
