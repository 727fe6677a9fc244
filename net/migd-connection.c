/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "migd-connection.h"
#include "migd-error.h"
#include "migd-wire-limits.h"

/* prefixes and small frames are read through this; big bodies go straight to the decoder */
#define MIGD_CONNECTION_SMALL_READ (64u * 1024u)
/* at most this many queued pieces go to one writev */
#define MIGD_CONNECTION_MAX_VECTORS 16
/* reads done in a row while the stream has data, before an async read (main loop) */
#define MIGD_CONNECTION_SYNC_READS 64
/* the same for writes while the stream takes data: a TLS stream takes a record a write */
#define MIGD_CONNECTION_SYNC_WRITES 64
/* a close waits this long for queued frames (e.g. an Abort) to leave */
#define MIGD_CONNECTION_FLUSH_TIMEOUT_S 10

struct _MigdConnection {
	GObject parent_instance;
	GIOStream *stream;
	GCancellable *cancellable;
	MigdWireDecoder *decoder;
	MigdWireSession *session;
	gchar *peer_identity;
	MigdConnectionCallbacks cb;
	gpointer user_data;
	guint8 *small_buf; /* MIGD_CONNECTION_SMALL_READ bytes */
	gboolean read_direct;
	gboolean reading_enabled;
	gboolean read_pending;
	GQueue send_queue;  /* of GBytes, pieces of encoded frames, in order */
	gsize head_written; /* bytes of the queue's head that a nonblocking write took */
	gsize queued_bytes;
	gboolean write_pending; /* a writev_all (a stream that cannot poll) */
	GSource *write_source;	/* a pollable stream: attached while frames are queued */
	GError *write_error;	/* a failed write, reported a main-loop round later */
	GOutputVector vectors[MIGD_CONNECTION_MAX_VECTORS]; /* of the write pending */
	guint n_vectors;
	MigdWireFrame *delivering; /* the frame the frame callback is looking at */
	gboolean congested;
	gboolean closing;
	gboolean closed;
	GError *close_reason;
	guint tick_id;
	guint flush_timeout_id;
	gint64 last_rx_us;   /* the last whole frame: bytes alone are no progress */
	gboolean heard_peer; /* a whole frame arrived: the peer speaks our protocol */
	MigdWireRole role;
	gint64 last_tx_us;
	guint frame_timeout_ms;
	guint frame_timer_id; /* armed while a frame is partly received */
	gboolean refused;     /* we sent an Abort for the peer's data: read nothing more */
};

G_DEFINE_TYPE(MigdConnection, migd_connection, G_TYPE_OBJECT)

static void migd_connection_read_next(MigdConnection *self);
static void migd_connection_write_next(MigdConnection *self);
static void migd_connection_stop_writing(MigdConnection *self);
static void migd_connection_finish(MigdConnection *self, const GError *error);

/* ---- the daemon-wide budget of partially received frames ---- */

G_LOCK_DEFINE_STATIC(migd_connection_budget);
static gsize migd_connection_partial_bytes;
static gsize migd_connection_partial_max = MIGD_WIRE_PARTIAL_FRAME_BUDGET_DEFAULT;

void
migd_connection_set_partial_frame_budget(gsize max_bytes)
{
	G_LOCK(migd_connection_budget);
	migd_connection_partial_max =
	    max_bytes > 0 ? max_bytes : MIGD_WIRE_PARTIAL_FRAME_BUDGET_DEFAULT;
	G_UNLOCK(migd_connection_budget);
}

static gsize
migd_connection_budget_read(const gsize *value)
{
	gsize v;
	G_LOCK(migd_connection_budget);
	v = *value;
	G_UNLOCK(migd_connection_budget);
	return v;
}

gsize
migd_connection_get_partial_frame_budget(void)
{
	return migd_connection_budget_read(&migd_connection_partial_max);
}

gsize
migd_connection_get_partial_frame_bytes(void)
{
	return migd_connection_budget_read(&migd_connection_partial_bytes);
}

static gboolean
migd_connection_budget_reserve(gsize len, gpointer user_data, GError **error)
{
	MigdConnection *self = MIGD_CONNECTION(user_data);
	gsize used, max;
	gboolean ok;

	G_LOCK(migd_connection_budget);
	used = migd_connection_partial_bytes;
	max = migd_connection_partial_max;
	ok = len <= max && used <= max - len;
	if (ok)
		migd_connection_partial_bytes += len;
	G_UNLOCK(migd_connection_budget);
	if (ok)
		return TRUE;
	g_warning("refusing a frame of %" G_GSIZE_FORMAT " bytes from %s: partial frames already "
		  "hold %" G_GSIZE_FORMAT " of the daemon's %" G_GSIZE_FORMAT
		  " bytes (max-partial-frame-bytes)",
		  len, self->peer_identity, used, max);
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_BUSY,
		    "a frame of %" G_GSIZE_FORMAT " bytes refused: the receiver's memory for "
		    "partial frames is exhausted (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
		    " bytes in use)",
		    len, used, max);
	return FALSE;
}

static void
migd_connection_budget_release(gsize len, gpointer user_data)
{
	G_LOCK(migd_connection_budget);
	g_warn_if_fail(migd_connection_partial_bytes >= len);
	migd_connection_partial_bytes -= MIN(len, migd_connection_partial_bytes);
	G_UNLOCK(migd_connection_budget);
}

/* ---- the frame deadline ---- */

static gboolean
migd_connection_frame_timeout_cb(gpointer user_data)
{
	MigdConnection *self = MIGD_CONNECTION(user_data);
	g_autoptr(GError) error = NULL;

	self->frame_timer_id = 0;
	g_set_error(&error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
		    "%s did not complete a frame within %u ms", self->peer_identity,
		    self->frame_timeout_ms);
	g_message("closing the connection to %s: %s", self->peer_identity, error->message);
	migd_connection_finish(self, error);
	return G_SOURCE_REMOVE;
}

/* a started frame must finish in time, however slowly its bytes trickle in */
static void
migd_connection_update_frame_timer(MigdConnection *self)
{
	gboolean partial =
	    !self->closed && self->reading_enabled && migd_wire_decoder_is_partial(self->decoder);

	if (!partial) {
		g_clear_handle_id(&self->frame_timer_id, g_source_remove);
		return;
	}
	if (self->frame_timer_id == 0)
		self->frame_timer_id =
		    g_timeout_add(self->frame_timeout_ms, migd_connection_frame_timeout_cb, self);
}

/* ends the connection once; the owner hears about it through the closed callback */
static void
migd_connection_finish(MigdConnection *self, const GError *error)
{
	if (self->closed)
		return;
	self->closed = TRUE;
	g_cancellable_cancel(self->cancellable);
	g_clear_handle_id(&self->tick_id, g_source_remove);
	g_clear_handle_id(&self->flush_timeout_id, g_source_remove);
	g_clear_handle_id(&self->frame_timer_id, g_source_remove);
	migd_connection_stop_writing(self);
	/* a pending writev may still read the queued pieces: finalize drops them then */
	if (!self->write_pending)
		g_queue_clear_full(&self->send_queue, (GDestroyNotify)g_bytes_unref);
	self->queued_bytes = 0;
	/* closing a GIOStream with pending operations fails; ours were just cancelled */
	g_io_stream_close_async(self->stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
	if (self->cb.closed != NULL)
		self->cb.closed(self, error, self->user_data);
}

static void
migd_connection_fail(MigdConnection *self, const GError *error)
{
	if (!self->closed)
		g_debug("connection to %s failed: %s", self->peer_identity, error->message);
	migd_connection_finish(self, error);
}

/*
 * The peer sent something we refuse (malformed, against the session rules, over
 * the memory budget): tell it why with an Abort, then close once that has left.
 */
static void
migd_connection_refuse(MigdConnection *self, const GError *error)
{
	if (self->closed)
		return;
	g_debug("refusing data from %s: %s", self->peer_identity, error->message);
	self->refused = TRUE;
	g_clear_handle_id(&self->frame_timer_id, g_source_remove);
	migd_connection_send_abort(self, error);
	migd_connection_close(self, error);
}

static void
migd_connection_deliver_frames(MigdConnection *self)
{
	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MigdWireFrame) frame = migd_wire_decoder_next(self->decoder, &error);

		if (frame == NULL) {
			if (error != NULL)
				migd_connection_refuse(self, error);
			return;
		}
		if (!migd_wire_session_check_received(self->session, frame, &error)) {
			migd_connection_refuse(self, error);
			return;
		}
		self->last_rx_us = g_get_monotonic_time();
		self->heard_peer = TRUE;
		if (frame->type == MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE)
			continue;
		if (self->cb.frame != NULL) {
			/* a callback may resume reading, which delivers frames from within it */
			MigdWireFrame *outer = self->delivering;
			self->delivering = frame;
			self->cb.frame(self, frame, self->user_data);
			self->delivering = outer;
		}
		/* the owner may have closed or paused us from its callback */
		if (self->closed || !self->reading_enabled)
			return;
	}
}

/*
 * A peer that hangs up before its first frame refused us in a layer that cannot say why
 * on the wire: a TLS listener drops a plain client, and with TLS 1.3 a refused client
 * certificate arrives only after our side of the handshake has finished. Name both.
 */
static const gchar *
migd_connection_early_close_hint(MigdConnection *self)
{
	/* only the side that connected can have been refused by its peer's listener */
	if (self->heard_peer || self->role != MIGD_WIRE_ROLE_SOURCE)
		return "";
	if (G_IS_TLS_CONNECTION(self->stream))
		return " before its first message (did it refuse our certificate? with TLS 1.3 "
		       "that shows only after the handshake; its log says why)";
	return " before its first message (if it expects TLS, it hangs up on a plain peer: use "
	       "TLS on both sides, or plain on both; its log says why)";
}

/*
 * What one read of @n bytes (or @error) means; FALSE when the connection ended or failed
 * (or a callback closed it), so no further read may start.
 */
static gboolean
migd_connection_handle_read(MigdConnection *self, gssize n, GError *error)
{
	g_autoptr(GError) local = NULL;

	if (self->closed || self->refused)
		return FALSE;
	if (n < 0) {
		g_prefix_error(&error, "reading from %s: ", self->peer_identity);
		if (!self->heard_peer) {
			g_autofree gchar *message = g_strconcat(
			    error->message, migd_connection_early_close_hint(self), NULL);
			g_free(error->message);
			error->message = g_steal_pointer(&message);
		}
		migd_connection_fail(self, error);
		return FALSE;
	}
	if (n == 0) {
		if (!migd_wire_decoder_finish(self->decoder, &local)) {
			migd_connection_fail(self, local);
			return FALSE;
		}
		if (self->closing || migd_wire_session_is_over(self->session)) {
			migd_connection_finish(self, self->close_reason);
			return FALSE;
		}
		g_set_error(&local, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "%s closed the connection%s",
			    self->peer_identity, migd_connection_early_close_hint(self));
		migd_connection_fail(self, local);
		return FALSE;
	}
	if (self->read_direct) {
		migd_wire_decoder_advance(self->decoder, (gsize)n);
	} else if (!migd_wire_decoder_feed(self->decoder, self->small_buf, (gsize)n, &local)) {
		migd_connection_refuse(self, local);
		return FALSE;
	}
	migd_connection_deliver_frames(self);
	migd_connection_update_frame_timer(self);
	return !self->closed;
}

/* where the next read goes: straight into the decoder's buffer, or the small buffer */
static guint8 *
migd_connection_read_space(MigdConnection *self, gsize *len)
{
	guint8 *buf = migd_wire_decoder_peek_space(self->decoder, len);

	self->read_direct = buf != NULL && *len > 0;
	if (!self->read_direct) {
		buf = self->small_buf;
		*len = MIGD_CONNECTION_SMALL_READ;
	}
	return buf;
}

static void
migd_connection_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(MigdConnection) self = MIGD_CONNECTION(user_data);
	g_autoptr(GError) error = NULL;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &error);
	GPollableInputStream *pollable =
	    G_IS_POLLABLE_INPUT_STREAM(source) &&
		    g_pollable_input_stream_can_poll(G_POLLABLE_INPUT_STREAM(source))
		? G_POLLABLE_INPUT_STREAM(source)
		: NULL;

	self->read_pending = FALSE;
	if (!migd_connection_handle_read(self, n, error))
		return;
	/*
	 * While the stream has more, read on here rather than through the main loop once per
	 * read: a TLS stream gives one record (16 KiB) per read, and an async read per record
	 * cost more than the record's decryption. Bounded, so that other sources still run.
	 */
	for (guint i = 0; pollable != NULL && i < MIGD_CONNECTION_SYNC_READS; i++) {
		g_autoptr(GError) more_error = NULL;
		gsize len = 0;
		guint8 *buf;

		if (self->closed || self->refused || !self->reading_enabled || self->read_pending)
			return;
		buf = migd_connection_read_space(self, &len);
		self->read_pending = TRUE;
		n = g_pollable_input_stream_read_nonblocking(pollable, buf, len, self->cancellable,
							     &more_error);
		self->read_pending = FALSE;
		if (n < 0 && g_error_matches(more_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			break;
		if (!migd_connection_handle_read(self, n, more_error))
			return;
	}
	migd_connection_read_next(self);
}

static void
migd_connection_read_next(MigdConnection *self)
{
	GInputStream *input = g_io_stream_get_input_stream(self->stream);
	gsize len = 0;
	guint8 *buf;

	if (self->closed || self->refused || !self->reading_enabled || self->read_pending)
		return;
	buf = migd_connection_read_space(self, &len);
	self->read_pending = TRUE;
	g_input_stream_read_async(input, buf, len, G_PRIORITY_DEFAULT, self->cancellable,
				  migd_connection_read_cb, g_object_ref(self));
}

static void
migd_connection_really_close(MigdConnection *self)
{
	g_autoptr(GError) reason = g_steal_pointer(&self->close_reason);
	migd_connection_finish(self, reason);
}

/* fills vectors from the send queue, the head from where a nonblocking write left it */
static guint
migd_connection_fill_vectors(MigdConnection *self, GOutputVector *vectors)
{
	guint n = 0;

	/* the queued GBytes stay referenced until written: no copy here */
	for (GList *l = self->send_queue.head; l != NULL && n < MIGD_CONNECTION_MAX_VECTORS;
	     l = l->next, n++)
		vectors[n].buffer = g_bytes_get_data(l->data, &vectors[n].size);
	if (n > 0) {
		vectors[0].buffer = (const guint8 *)vectors[0].buffer + self->head_written;
		vectors[0].size -= self->head_written;
	}
	return n;
}

/* @n_bytes left from the head of the send queue */
static void
migd_connection_consume(MigdConnection *self, gsize n_bytes)
{
	while (n_bytes > 0) {
		GBytes *head = g_queue_peek_head(&self->send_queue);
		gsize rest = g_bytes_get_size(head) - self->head_written;
		if (n_bytes < rest) {
			self->head_written += n_bytes;
			return;
		}
		n_bytes -= rest;
		self->queued_bytes -= g_bytes_get_size(head);
		self->head_written = 0;
		g_bytes_unref(g_queue_pop_head(&self->send_queue));
	}
}

/*
 * Writes while the stream takes data, rather than through the main loop once per write
 * (a TLS stream takes one 16 KiB record per write, and a main-loop round per record cost
 * more than its encryption). Bounded, so that other sources still run. FALSE with @error
 * if a write failed.
 */
static gboolean
migd_connection_write_ready(MigdConnection *self, GPollableOutputStream *pollable, GError **error)
{
	for (guint i = 0; i < MIGD_CONNECTION_SYNC_WRITES && !g_queue_is_empty(&self->send_queue);
	     i++) {
		GOutputVector vectors[MIGD_CONNECTION_MAX_VECTORS];
		guint n = migd_connection_fill_vectors(self, vectors);
		g_autoptr(GError) error_local = NULL;
		gsize written = 0;
		GPollableReturn ret = g_pollable_output_stream_writev_nonblocking(
		    pollable, vectors, n, &written, self->cancellable, &error_local);

		if (ret == G_POLLABLE_RETURN_WOULD_BLOCK)
			break;
		if (ret == G_POLLABLE_RETURN_FAILED) {
			g_propagate_error(error, g_steal_pointer(&error_local));
			return FALSE;
		}
		migd_connection_consume(self, written);
		self->last_tx_us = g_get_monotonic_time();
	}
	return TRUE;
}

/* frames left (or some did): closes a closing connection, lifts congestion. FALSE: closed */
static gboolean
migd_connection_wrote(MigdConnection *self)
{
	if (self->closing && g_queue_is_empty(&self->send_queue)) {
		migd_connection_really_close(self);
		return FALSE;
	}
	if (self->congested && self->queued_bytes <= MIGD_CONNECTION_SEND_LOW_WATER) {
		self->congested = FALSE;
		if (self->cb.drained != NULL)
			self->cb.drained(self, self->user_data);
	}
	return !self->closed;
}

/* a stream that cannot poll: one writev_all of the queue's first pieces at a time */
static void
migd_connection_write_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(MigdConnection) self = MIGD_CONNECTION(user_data);
	g_autoptr(GError) error = NULL;
	guint n_sent = self->n_vectors;

	self->write_pending = FALSE;
	self->n_vectors = 0;
	if (!g_output_stream_writev_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error)) {
		if (!self->closed) {
			g_prefix_error(&error, "writing to %s: ", self->peer_identity);
			migd_connection_fail(self, error);
		}
		return;
	}
	if (self->closed)
		return;
	for (guint i = 0; i < n_sent; i++) {
		GBytes *sent = g_queue_pop_head(&self->send_queue);
		self->queued_bytes -= g_bytes_get_size(sent);
		g_bytes_unref(sent);
	}
	self->last_tx_us = g_get_monotonic_time();
	if (migd_connection_wrote(self))
		migd_connection_write_next(self);
}

static void
migd_connection_stop_writing(MigdConnection *self)
{
	if (self->write_source == NULL)
		return;
	g_source_destroy(self->write_source);
	g_clear_pointer(&self->write_source, g_source_unref);
}

static gboolean
migd_connection_write_failed_cb(gpointer user_data)
{
	MigdConnection *self = MIGD_CONNECTION(user_data);
	g_autoptr(GError) error = g_steal_pointer(&self->write_error);

	if (!self->closed && error != NULL)
		migd_connection_fail(self, error);
	return G_SOURCE_REMOVE;
}

/*
 * Not at once: a peer that closed (EPIPE) often said why first, and the read that delivers
 * it is ready in this same round. writev_all_async reported its errors this late too.
 */
static void
migd_connection_defer_write_error(MigdConnection *self, GError *error)
{
	g_prefix_error(&error, "writing to %s: ", self->peer_identity);
	self->write_error = error;
	migd_connection_stop_writing(self);
	g_idle_add_full(G_PRIORITY_DEFAULT, migd_connection_write_failed_cb, g_object_ref(self),
			g_object_unref);
}

/* a pollable stream can take data: as much as it takes now, then wait again if any is left */
static gboolean
migd_connection_writable_cb(GObject *stream, gpointer user_data)
{
	g_autoptr(MigdConnection) self = g_object_ref(MIGD_CONNECTION(user_data));
	g_autoptr(GError) error = NULL;

	if (self->closed)
		return G_SOURCE_REMOVE;
	if (!migd_connection_write_ready(self, G_POLLABLE_OUTPUT_STREAM(stream), &error)) {
		migd_connection_defer_write_error(self, g_steal_pointer(&error));
		return G_SOURCE_REMOVE;
	}
	if (!migd_connection_wrote(self))
		return G_SOURCE_REMOVE;
	if (g_queue_is_empty(&self->send_queue)) {
		migd_connection_stop_writing(self);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static void
migd_connection_write_next(MigdConnection *self)
{
	GOutputStream *output = g_io_stream_get_output_stream(self->stream);
	guint n;

	if (self->closed || self->write_pending || self->write_source != NULL ||
	    self->write_error != NULL || g_queue_is_empty(&self->send_queue))
		return;
	/*
	 * Written from a source that fires while the stream takes data, many writes a round:
	 * writev_all_async would go round the main loop once per write, and a TLS stream takes
	 * one 16 KiB record per write.
	 */
	if (G_IS_POLLABLE_OUTPUT_STREAM(output) &&
	    g_pollable_output_stream_can_poll(G_POLLABLE_OUTPUT_STREAM(output))) {
		g_autoptr(GError) error = NULL;
		/* at once, as writev_async did: a frame sent just before a drop still leaves */
		if (!migd_connection_write_ready(self, G_POLLABLE_OUTPUT_STREAM(output), &error)) {
			migd_connection_defer_write_error(self, g_steal_pointer(&error));
			return;
		}
		/*
		 * What is left, the drained callback and a close waiting for the queue come from
		 * the source, in a later round, as writev_all_async's callback came.
		 */
		self->write_source =
		    g_pollable_output_stream_create_source(G_POLLABLE_OUTPUT_STREAM(output), NULL);
		g_source_set_callback(self->write_source,
				      G_SOURCE_FUNC(migd_connection_writable_cb), self, NULL);
		g_source_attach(self->write_source, g_main_context_get_thread_default());
		return;
	}
	n = migd_connection_fill_vectors(self, self->vectors);
	self->n_vectors = n;
	self->write_pending = TRUE;
	g_output_stream_writev_all_async(output, self->vectors, n, G_PRIORITY_DEFAULT,
					 self->cancellable, migd_connection_write_cb,
					 g_object_ref(self));
}

gboolean
migd_connection_send(MigdConnection *self, const MigdWireFrame *frame, GError **error)
{
	return migd_connection_send_with_payload(self, frame, NULL, error);
}

gboolean
migd_connection_send_with_payload(MigdConnection *self, const MigdWireFrame *frame, GBytes *payload,
				  GError **error)
{
	gsize total = 0;

	g_return_val_if_fail(MIGD_IS_CONNECTION(self), FALSE);

	if (self->closed || self->closing) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "connection to %s is closed",
			    self->peer_identity);
		return FALSE;
	}
	if (!migd_wire_frame_encode_pieces(frame, payload, &self->send_queue, &total, error))
		return FALSE;
	migd_wire_session_note_sent(self->session, frame);
	self->queued_bytes += total;
	migd_connection_write_next(self);
	return TRUE;
}

GBytes *
migd_connection_steal_chunk_payload(MigdConnection *self, const MigdWireFrame *frame)
{
	g_return_val_if_fail(MIGD_IS_CONNECTION(self), NULL);
	g_return_val_if_fail(frame != NULL, NULL);
	/* only the frame being delivered is ours to change */
	if (frame != self->delivering)
		return NULL;
	return migd_wire_frame_steal_chunk_data(self->delivering);
}

static Migd__Wire__Reason
migd_connection_reason_for_error(const GError *error)
{
	if (g_error_matches(error, MIGD_ERROR, MIGD_ERROR_CANCELLED))
		return MIGD__WIRE__REASON__REASON_CANCELLED;
	if (g_error_matches(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT))
		return MIGD__WIRE__REASON__REASON_TIMED_OUT;
	if (g_error_matches(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL))
		return MIGD__WIRE__REASON__REASON_PROTOCOL_ERROR;
	if (g_error_matches(error, MIGD_ERROR, MIGD_ERROR_BUSY))
		return MIGD__WIRE__REASON__REASON_BUSY;
	if (g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE))
		return MIGD__WIRE__REASON__REASON_INCOMPATIBLE_DEVICE;
	if (error->domain == MIGD_KERNEL_ERROR ||
	    g_error_matches(error, MIGD_ERROR, MIGD_ERROR_DEVICE_ERROR) ||
	    g_error_matches(error, MIGD_ERROR, MIGD_ERROR_SESSION_ENDED))
		return MIGD__WIRE__REASON__REASON_DEVICE_ERROR;
	return MIGD__WIRE__REASON__REASON_OTHER;
}

void
migd_connection_send_abort(MigdConnection *self, const GError *error)
{
	Migd__Wire__Abort abort_msg = MIGD__WIRE__ABORT__INIT;
	MigdWireFrame frame;
	g_autofree gchar *text = NULL;

	g_return_if_fail(MIGD_IS_CONNECTION(self));
	if (self->closed || self->closing)
		return;
	text = g_utf8_make_valid(error->message, -1);
	if (strlen(text) > MIGD_WIRE_MAX_MESSAGE_LEN) {
		/* never split a character: the peer validates the string */
		gchar *cut = g_utf8_find_prev_char(text, text + MIGD_WIRE_MAX_MESSAGE_LEN + 1);
		*cut = '\0';
	}
	abort_msg.reason = migd_connection_reason_for_error(error);
	abort_msg.message = text;
	migd_wire_frame_init(&frame, MIGD__WIRE__MESSAGE_TYPE__MSG_ABORT, &abort_msg);
	migd_connection_send(self, &frame, NULL);
}

gsize
migd_connection_get_queued_bytes(MigdConnection *self)
{
	g_return_val_if_fail(MIGD_IS_CONNECTION(self), 0);
	return self->queued_bytes;
}

gboolean
migd_connection_is_congested(MigdConnection *self)
{
	g_return_val_if_fail(MIGD_IS_CONNECTION(self), TRUE);
	if (self->queued_bytes > MIGD_CONNECTION_SEND_HIGH_WATER)
		self->congested = TRUE;
	return self->congested;
}

void
migd_connection_set_reading(MigdConnection *self, gboolean enabled)
{
	g_return_if_fail(MIGD_IS_CONNECTION(self));
	if (self->reading_enabled == enabled)
		return;
	self->reading_enabled = enabled;
	/* time spent paused by our own backpressure is not the peer's slowness */
	g_clear_handle_id(&self->frame_timer_id, g_source_remove);
	if (!enabled)
		return;
	/* nor its silence */
	self->last_rx_us = g_get_monotonic_time();
	/* frames that arrived while paused are already decoded: deliver them first */
	migd_connection_deliver_frames(self);
	migd_connection_update_frame_timer(self);
	migd_connection_read_next(self);
}

static gboolean
migd_connection_flush_timeout_cb(gpointer user_data)
{
	MigdConnection *self = MIGD_CONNECTION(user_data);
	self->flush_timeout_id = 0;
	migd_connection_really_close(self);
	return G_SOURCE_REMOVE;
}

void
migd_connection_close(MigdConnection *self, const GError *reason)
{
	g_return_if_fail(MIGD_IS_CONNECTION(self));
	if (self->closed || self->closing)
		return;
	self->closing = TRUE;
	if (reason != NULL)
		self->close_reason = g_error_copy(reason);
	if (g_queue_is_empty(&self->send_queue) && self->write_source == NULL) {
		migd_connection_really_close(self);
		return;
	}
	/* a peer that stopped reading must not hold our close forever */
	self->flush_timeout_id = g_timeout_add_seconds(MIGD_CONNECTION_FLUSH_TIMEOUT_S,
						       migd_connection_flush_timeout_cb, self);
}

void
migd_connection_detach(MigdConnection *self)
{
	g_return_if_fail(MIGD_IS_CONNECTION(self));
	memset(&self->cb, 0, sizeof(self->cb));
	self->user_data = NULL;
	migd_connection_finish(self, NULL);
}

gboolean
migd_connection_is_closed(MigdConnection *self)
{
	g_return_val_if_fail(MIGD_IS_CONNECTION(self), TRUE);
	return self->closed;
}

static gboolean
migd_connection_tick_cb(gpointer user_data)
{
	MigdConnection *self = MIGD_CONNECTION(user_data);
	gint64 now = g_get_monotonic_time();

	/* inside a frame the frame deadline rules */
	if (self->reading_enabled && !self->refused &&
	    !migd_wire_decoder_is_partial(self->decoder) &&
	    now - self->last_rx_us > MIGD_CONNECTION_IDLE_TIMEOUT_S * G_USEC_PER_SEC) {
		g_autoptr(GError) error =
		    g_error_new(MIGD_ERROR, MIGD_ERROR_TIMED_OUT, "%s sent nothing for %d s",
				self->peer_identity, MIGD_CONNECTION_IDLE_TIMEOUT_S);
		self->tick_id = 0;
		migd_connection_fail(self, error);
		return G_SOURCE_REMOVE;
	}
	if ((migd_wire_session_get_capabilities(self->session) & MIGD_WIRE_CAP_KEEPALIVE) != 0 &&
	    !self->closing && g_queue_is_empty(&self->send_queue) &&
	    now - self->last_tx_us > MIGD_CONNECTION_KEEPALIVE_INTERVAL_S * G_USEC_PER_SEC) {
		Migd__Wire__Keepalive keepalive = MIGD__WIRE__KEEPALIVE__INIT;
		MigdWireFrame frame;
		keepalive.monotonic_usec = (guint64)now;
		migd_wire_frame_init(&frame, MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE, &keepalive);
		/* a failed send means we are closing anyway */
		migd_connection_send(self, &frame, NULL);
	}
	return G_SOURCE_CONTINUE;
}

void
migd_connection_start(MigdConnection *self)
{
	g_return_if_fail(MIGD_IS_CONNECTION(self));
	self->last_rx_us = self->last_tx_us = g_get_monotonic_time();
	if (self->tick_id == 0)
		self->tick_id = g_timeout_add_seconds(1, migd_connection_tick_cb, self);
	migd_connection_read_next(self);
}

void
migd_connection_set_frame_timeout(MigdConnection *self, guint timeout_ms)
{
	g_return_if_fail(MIGD_IS_CONNECTION(self));
	self->frame_timeout_ms = timeout_ms > 0 ? timeout_ms : MIGD_WIRE_FRAME_TIMEOUT_MS_DEFAULT;
}

const gchar *
migd_connection_get_peer_identity(MigdConnection *self)
{
	g_return_val_if_fail(MIGD_IS_CONNECTION(self), NULL);
	return self->peer_identity;
}

MigdWireSession *
migd_connection_get_session(MigdConnection *self)
{
	g_return_val_if_fail(MIGD_IS_CONNECTION(self), NULL);
	return self->session;
}

MigdConnection *
migd_connection_new(GIOStream *stream, MigdWireRole role, const gchar *peer_identity,
		    const MigdConnectionCallbacks *callbacks, gpointer user_data)
{
	MigdConnection *self = g_object_new(MIGD_TYPE_CONNECTION, NULL);

	self->stream = g_object_ref(stream);
	self->session = migd_wire_session_new(role);
	self->role = role;
	self->peer_identity = g_strdup(peer_identity != NULL ? peer_identity : "peer");
	if (callbacks != NULL)
		self->cb = *callbacks;
	self->user_data = user_data;
	return self;
}

static void
migd_connection_dispose(GObject *object)
{
	MigdConnection *self = MIGD_CONNECTION(object);
	/* no callbacks from a connection its owner dropped */
	memset(&self->cb, 0, sizeof(self->cb));
	if (!self->closed)
		migd_connection_finish(self, NULL);
	G_OBJECT_CLASS(migd_connection_parent_class)->dispose(object);
}

static void
migd_connection_finalize(GObject *object)
{
	MigdConnection *self = MIGD_CONNECTION(object);
	migd_connection_stop_writing(self);
	g_clear_error(&self->write_error);
	g_queue_clear_full(&self->send_queue, (GDestroyNotify)g_bytes_unref);
	g_clear_object(&self->stream);
	g_clear_object(&self->cancellable);
	g_clear_pointer(&self->decoder, migd_wire_decoder_free);
	g_clear_pointer(&self->session, migd_wire_session_free);
	g_clear_error(&self->close_reason);
	g_free(self->peer_identity);
	g_free(self->small_buf);
	G_OBJECT_CLASS(migd_connection_parent_class)->finalize(object);
}

static void
migd_connection_init(MigdConnection *self)
{
	self->cancellable = g_cancellable_new();
	self->small_buf = g_malloc(MIGD_CONNECTION_SMALL_READ);
	self->decoder = migd_wire_decoder_new();
	migd_wire_decoder_set_budget(self->decoder, migd_connection_budget_reserve,
				     migd_connection_budget_release, self);
	self->frame_timeout_ms = MIGD_WIRE_FRAME_TIMEOUT_MS_DEFAULT;
	self->reading_enabled = TRUE;
	g_queue_init(&self->send_queue);
}

static void
migd_connection_class_init(MigdConnectionClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = migd_connection_dispose;
	object_class->finalize = migd_connection_finalize;
}
