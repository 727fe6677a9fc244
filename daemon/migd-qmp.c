/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdQmp: a QMP client on the main loop (greeting, qmp_capabilities,
 * commands matched to replies by id, events), bounded against its peer.
 */
#include "config.h"

#include "migd-qmp.h"

#include <gio/gunixsocketaddress.h>
#include <string.h>

#include "migd-error.h"

typedef enum {
	MIGD_QMP_STATE_NEW,	    /* nothing read yet */
	MIGD_QMP_STATE_GREETING,    /* waiting for {"QMP": ...} */
	MIGD_QMP_STATE_NEGOTIATING, /* qmp_capabilities sent */
	MIGD_QMP_STATE_READY,
	MIGD_QMP_STATE_CLOSED,
} MigdQmpState;

typedef struct {
	gint64 id;
	GTask *task;		/* NULL: cancelled (or the capabilities): the reply is dropped */
	GSource *cancel_source; /* the caller's cancellable on our context */
	gboolean capabilities;	/* our own qmp_capabilities */
} MigdQmpPending;

struct _MigdQmp {
	GObject parent_instance;
	GMainContext *context; /* where it was made: every source and callback */
	GIOStream *stream;
	GInputStream *input;
	GOutputStream *output;
	GCancellable *io_cancellable; /* the reads and writes: cancelled on close */
	MigdQmpState state;
	guint timeout_ms;
	gsize max_message;
	GByteArray *line; /* the message being received, without its newline */
	gsize buffer_peak;
	GTask *negotiate_task;
	JsonObject *greeting; /* the "QMP" member */
	GSource *timeout_source;
	GSource *negotiate_cancel_source;
	GHashTable *pending; /* gint64 id -> MigdQmpPending */
	gint64 next_id;
	GQueue writes; /* GBytes, one message each */
	gboolean writing;
};

G_DEFINE_TYPE(MigdQmp, migd_qmp, G_TYPE_OBJECT)

enum { SIGNAL_EVENT, SIGNAL_CLOSED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* the buffers of an asynchronous read or write outlive the object if it goes first */
typedef struct {
	GWeakRef self;
	guint8 buf[MIGD_QMP_READ_CHUNK];
} MigdQmpRead;

typedef struct {
	GWeakRef self;
	GBytes *bytes;
} MigdQmpWrite;

static void
migd_qmp_source_clear(GSource **source)
{
	if (*source == NULL)
		return;
	g_source_destroy(*source);
	g_clear_pointer(source, g_source_unref);
}

static void
migd_qmp_pending_free(MigdQmpPending *pending)
{
	migd_qmp_source_clear(&pending->cancel_source);
	/* every task was returned before it is dropped */
	g_clear_object(&pending->task);
	g_free(pending);
}

static GHashTable *
migd_qmp_pending_table_new(void)
{
	return g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
				     (GDestroyNotify)migd_qmp_pending_free);
}

/*
 * Ends the connection once: the stream closed, every waiting task failed
 * with @error (a copy each), "closed" emitted. NULL: an orderly end (pending
 * commands then fail with MIGD_ERROR_CANCELLED).
 */
static void
migd_qmp_close_with_error(MigdQmp *self, const GError *error)
{
	g_autoptr(MigdQmp) keep = g_object_ref(self); /* callbacks below may drop the last ref */
	g_autoptr(GHashTable) pending = NULL;
	g_autoptr(GTask) negotiate = NULL;
	g_autoptr(GError) task_error = NULL;
	GHashTableIter iter;
	gpointer value;

	if (self->state == MIGD_QMP_STATE_CLOSED)
		return;
	self->state = MIGD_QMP_STATE_CLOSED;
	if (error != NULL)
		g_debug("QMP connection closed: %s", error->message);
	g_cancellable_cancel(self->io_cancellable);
	migd_qmp_source_clear(&self->timeout_source);
	migd_qmp_source_clear(&self->negotiate_cancel_source);
	/* a socket's close does not block; the pending read ends with the cancellation */
	g_io_stream_close(self->stream, NULL, NULL);
	g_queue_clear_full(&self->writes, (GDestroyNotify)g_bytes_unref);
	g_byte_array_set_size(self->line, 0);

	task_error = error != NULL ? g_error_copy(error)
				   : g_error_new_literal(MIGD_ERROR, MIGD_ERROR_CANCELLED,
							 "the QMP connection was closed");
	pending = g_steal_pointer(&self->pending);
	self->pending = migd_qmp_pending_table_new();
	negotiate = g_steal_pointer(&self->negotiate_task);
	if (negotiate != NULL)
		g_task_return_error(negotiate, g_error_copy(task_error));
	g_hash_table_iter_init(&iter, pending);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		MigdQmpPending *p = value;
		g_autoptr(GTask) task = g_steal_pointer(&p->task);

		migd_qmp_source_clear(&p->cancel_source);
		if (task != NULL)
			g_task_return_error(task, g_error_copy(task_error));
	}
	g_signal_emit(self, signals[SIGNAL_CLOSED], 0, error);
}

static void migd_qmp_fail(MigdQmp *self, gint code, const gchar *format, ...) G_GNUC_PRINTF(3, 4);

static void
migd_qmp_fail(MigdQmp *self, gint code, const gchar *format, ...)
{
	g_autoptr(GError) error = NULL;
	va_list args;

	va_start(args, format);
	error = g_error_new_valist(MIGD_ERROR, code, format, args);
	va_end(args);
	migd_qmp_close_with_error(self, error);
}

/* ---- writing ---- */

static void migd_qmp_write_next(MigdQmp *self);

static void
migd_qmp_write_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdQmpWrite *w = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdQmp) self = g_weak_ref_get(&w->self);
	gboolean ok =
	    g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, NULL, &error);

	g_weak_ref_clear(&w->self);
	g_bytes_unref(w->bytes);
	g_free(w);
	if (self == NULL || self->state == MIGD_QMP_STATE_CLOSED)
		return;
	self->writing = FALSE;
	if (!ok) {
		migd_qmp_fail(self, MIGD_ERROR_DEVICE_GONE, "writing to the QMP monitor: %s",
			      error->message);
		return;
	}
	migd_qmp_write_next(self);
}

static void
migd_qmp_write_next(MigdQmp *self)
{
	MigdQmpWrite *w;
	gsize size;
	gconstpointer data;

	if (self->writing || self->state == MIGD_QMP_STATE_CLOSED ||
	    g_queue_is_empty(&self->writes))
		return;
	w = g_new0(MigdQmpWrite, 1);
	g_weak_ref_init(&w->self, self);
	w->bytes = g_queue_pop_head(&self->writes);
	data = g_bytes_get_data(w->bytes, &size);
	self->writing = TRUE;
	g_output_stream_write_all_async(self->output, data, size, G_PRIORITY_DEFAULT,
					self->io_cancellable, migd_qmp_write_cb, w);
}

/* queues {"execute": @command, "arguments": @arguments, "id": N}; returns N */
static gint64
migd_qmp_send_command(MigdQmp *self, const gchar *command, JsonObject *arguments)
{
	g_autoptr(JsonObject) message = json_object_new();
	g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
	g_autoptr(JsonGenerator) generator = json_generator_new();
	g_autofree gchar *text = NULL;
	gint64 id = ++self->next_id;

	json_object_set_string_member(message, "execute", command);
	if (arguments != NULL)
		json_object_set_object_member(message, "arguments", json_object_ref(arguments));
	json_object_set_int_member(message, "id", id);
	json_node_set_object(root, message);
	json_generator_set_root(generator, root);
	text = json_generator_to_data(generator, NULL);
	g_queue_push_tail(&self->writes,
			  g_bytes_new_take(g_strconcat(text, "\n", NULL), strlen(text) + 1));
	migd_qmp_write_next(self);
	return id;
}

static MigdQmpPending *
migd_qmp_pending_add(MigdQmp *self, gint64 id)
{
	MigdQmpPending *pending = g_new0(MigdQmpPending, 1);

	pending->id = id;
	g_hash_table_insert(self->pending, &pending->id, pending);
	return pending;
}

/* ---- what QEMU sends ---- */

static void
migd_qmp_negotiated(MigdQmp *self, JsonObject *message)
{
	g_autoptr(GTask) task = NULL;

	if (json_object_has_member(message, "error")) {
		migd_qmp_fail(self, MIGD_ERROR_PROTOCOL, "QEMU refused qmp_capabilities");
		return;
	}
	self->state = MIGD_QMP_STATE_READY;
	migd_qmp_source_clear(&self->timeout_source);
	migd_qmp_source_clear(&self->negotiate_cancel_source);
	task = g_steal_pointer(&self->negotiate_task);
	if (task != NULL)
		g_task_return_boolean(task, TRUE);
}

static GError *
migd_qmp_reply_error(JsonObject *message)
{
	JsonNode *node = json_object_get_member(message, "error");
	const gchar *klass = "GenericError";
	const gchar *desc = "(no description)";

	if (JSON_NODE_HOLDS_OBJECT(node)) {
		JsonObject *error = json_node_get_object(node);
		JsonNode *member = json_object_get_member(error, "class");

		if (member != NULL && json_node_get_value_type(member) == G_TYPE_STRING)
			klass = json_node_get_string(member);
		member = json_object_get_member(error, "desc");
		if (member != NULL && json_node_get_value_type(member) == G_TYPE_STRING)
			desc = json_node_get_string(member);
	}
	return g_error_new(MIGD_ERROR, MIGD_ERROR_FAILED, "%s: %s", klass, desc);
}

static void
migd_qmp_handle_reply(MigdQmp *self, JsonObject *message)
{
	JsonNode *id_node = json_object_get_member(message, "id");
	MigdQmpPending *pending = NULL;
	g_autoptr(GTask) task = NULL;
	gint64 id;

	if (id_node != NULL && JSON_NODE_HOLDS_VALUE(id_node) &&
	    json_node_get_value_type(id_node) == G_TYPE_INT64) {
		id = json_node_get_int(id_node);
		pending = g_hash_table_lookup(self->pending, &id);
	}
	if (pending == NULL) {
		migd_qmp_fail(self, MIGD_ERROR_PROTOCOL, "QMP: a reply to an unknown id");
		return;
	}
	if (pending->capabilities) {
		g_hash_table_remove(self->pending, &id);
		migd_qmp_negotiated(self, message);
		return;
	}
	task = g_steal_pointer(&pending->task);
	g_hash_table_remove(self->pending, &id);
	if (task == NULL)
		return; /* cancelled by its caller */
	if (json_object_has_member(message, "error"))
		g_task_return_error(task, migd_qmp_reply_error(message));
	else
		g_task_return_pointer(task,
				      json_node_copy(json_object_get_member(message, "return")),
				      (GDestroyNotify)json_node_unref);
}

static void
migd_qmp_handle_event(MigdQmp *self, JsonObject *message)
{
	JsonNode *name = json_object_get_member(message, "event");
	JsonNode *data = json_object_get_member(message, "data");
	JsonNode *timestamp = json_object_get_member(message, "timestamp");
	gint64 timestamp_us = -1;

	if (!JSON_NODE_HOLDS_VALUE(name) || json_node_get_value_type(name) != G_TYPE_STRING) {
		migd_qmp_fail(self, MIGD_ERROR_PROTOCOL, "QMP: an event without a name");
		return;
	}
	if (data != NULL && !JSON_NODE_HOLDS_OBJECT(data)) {
		migd_qmp_fail(self, MIGD_ERROR_PROTOCOL, "QMP: event %s: data is no object",
			      json_node_get_string(name));
		return;
	}
	if (timestamp != NULL && JSON_NODE_HOLDS_OBJECT(timestamp)) {
		JsonObject *ts = json_node_get_object(timestamp);
		gint64 seconds = json_object_get_int_member_with_default(ts, "seconds", -1);
		gint64 us = json_object_get_int_member_with_default(ts, "microseconds", 0);

		/* QEMU sends -1 without a clock; a bogus value is not worth the connection */
		if (seconds >= 0 && seconds < G_MAXINT64 / G_USEC_PER_SEC - 1 && us >= 0 &&
		    us < G_USEC_PER_SEC)
			timestamp_us = seconds * G_USEC_PER_SEC + us;
	}
	g_signal_emit(self, signals[SIGNAL_EVENT], 0, json_node_get_string(name),
		      data != NULL ? json_node_get_object(data) : NULL, timestamp_us);
}

/*
 * json-glib 1.6 takes "{...} {...}" as a sequence, keeps one value and leaks
 * the others: a line must hold one value and nothing after it. Checked before
 * parsing; what this lets through unbalanced, the parser refuses.
 */
static gboolean
migd_qmp_one_value(const gchar *text, gsize len)
{
	gsize depth = 0;
	gboolean in_string = FALSE;
	gsize i;

	for (i = 0; i < len; i++) {
		gchar ch = text[i];

		if (in_string) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_string = FALSE;
			continue;
		}
		if (ch == '"') {
			in_string = TRUE;
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			if (depth == 0)
				return TRUE;
			if (--depth == 0)
				break;
		}
	}
	for (i++; i < len; i++)
		if (!g_ascii_isspace(text[i]))
			return FALSE;
	return TRUE;
}

static void
migd_qmp_handle_message(MigdQmp *self, const gchar *text, gsize len)
{
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(GError) error = NULL;
	JsonNode *root;
	JsonObject *message;
	gsize i;

	for (i = 0; i < len && g_ascii_isspace(text[i]); i++)
		;
	if (i == len)
		return; /* QEMU ends lines with \r\n; an empty line says nothing */
	if (memchr(text, '\0', len) != NULL || !g_utf8_validate(text, (gssize)len, NULL)) {
		migd_qmp_fail(self, MIGD_ERROR_PROTOCOL, "QMP: a message that is not UTF-8 text");
		return;
	}
	if (!migd_qmp_one_value(text, len)) {
		migd_qmp_fail(self, MIGD_ERROR_PROTOCOL,
			      "QMP: more than one JSON value in a message");
		return;
	}
	parser = json_parser_new_immutable();
	if (!json_parser_load_from_data(parser, text, (gssize)len, &error)) {
		migd_qmp_fail(self, MIGD_ERROR_PROTOCOL, "QMP: a message that is not JSON: %s",
			      error->message);
		return;
	}
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		migd_qmp_fail(self, MIGD_ERROR_PROTOCOL, "QMP: a message that is no JSON object");
		return;
	}
	message = json_node_get_object(root);

	if (self->state == MIGD_QMP_STATE_GREETING) {
		MigdQmpPending *pending;

		if (!JSON_NODE_HOLDS_OBJECT(json_object_get_member(message, "QMP"))) {
			migd_qmp_fail(self, MIGD_ERROR_PROTOCOL,
				      "QMP: the monitor did not greet with {\"QMP\": ...}");
			return;
		}
		self->greeting =
		    json_object_ref(json_node_get_object(json_object_get_member(message, "QMP")));
		self->state = MIGD_QMP_STATE_NEGOTIATING;
		pending = migd_qmp_pending_add(
		    self, migd_qmp_send_command(self, "qmp_capabilities", NULL));
		pending->capabilities = TRUE;
		return;
	}
	if (json_object_has_member(message, "event"))
		migd_qmp_handle_event(self, message);
	else if (json_object_has_member(message, "return") ||
		 json_object_has_member(message, "error"))
		migd_qmp_handle_reply(self, message);
	else
		migd_qmp_fail(self, MIGD_ERROR_PROTOCOL, "QMP: a message neither reply nor event");
}

/* splits @data into messages; FALSE once the connection closed */
static gboolean
migd_qmp_feed(MigdQmp *self, const guint8 *data, gsize len)
{
	while (len > 0) {
		const guint8 *nl = memchr(data, '\n', len);
		gsize part = nl != NULL ? (gsize)(nl - data) : len;

		/* refused before it is buffered: the peer decides how much it sends, not how much
		 * we keep */
		if (self->line->len + part > self->max_message) {
			migd_qmp_fail(self, MIGD_ERROR_PROTOCOL,
				      "QMP: a message longer than %" G_GSIZE_FORMAT " bytes",
				      self->max_message);
			return FALSE;
		}
		g_byte_array_append(self->line, data, (guint)part);
		self->buffer_peak = MAX(self->buffer_peak, self->line->len);
		if (nl == NULL)
			return TRUE;
		data += part + 1;
		len -= part + 1;
		migd_qmp_handle_message(self, (const gchar *)self->line->data, self->line->len);
		if (self->state == MIGD_QMP_STATE_CLOSED)
			return FALSE;
		g_byte_array_set_size(self->line, 0);
	}
	return TRUE;
}

static guint
migd_qmp_count_waiting(MigdQmp *self)
{
	GHashTableIter iter;
	gpointer value;
	guint n = 0;

	g_hash_table_iter_init(&iter, self->pending);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		n += ((MigdQmpPending *)value)->task != NULL ? 1 : 0;
	return n;
}

static void migd_qmp_read_next(MigdQmp *self);

static void
migd_qmp_read_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdQmpRead *r = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdQmp) self = g_weak_ref_get(&r->self);
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, &error);

	g_weak_ref_clear(&r->self);
	if (self == NULL || self->state == MIGD_QMP_STATE_CLOSED) {
		g_free(r);
		return;
	}
	/* QEMU exiting after quit resets the connection as often as it ends it */
	if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
		n = 0;
	if (n < 0) {
		g_free(r);
		migd_qmp_fail(self, MIGD_ERROR_DEVICE_GONE, "reading the QMP monitor: %s",
			      error->message);
		return;
	}
	if (n == 0) {
		guint waiting = migd_qmp_count_waiting(self);

		g_free(r);
		if (self->state != MIGD_QMP_STATE_READY)
			migd_qmp_fail(self, MIGD_ERROR_DEVICE_GONE,
				      "the QMP monitor closed before the negotiation");
		else if (self->line->len > 0)
			migd_qmp_fail(self, MIGD_ERROR_DEVICE_GONE,
				      "the QMP monitor closed in the middle of a message");
		else if (waiting > 0)
			migd_qmp_fail(self, MIGD_ERROR_DEVICE_GONE,
				      "the QMP monitor closed with %u commands unanswered",
				      waiting);
		else
			migd_qmp_close_with_error(self, NULL);
		return;
	}
	if (migd_qmp_feed(self, r->buf, (gsize)n))
		migd_qmp_read_next(self);
	g_free(r);
}

static void
migd_qmp_read_next(MigdQmp *self)
{
	MigdQmpRead *r = g_new0(MigdQmpRead, 1);

	g_weak_ref_init(&r->self, self);
	g_input_stream_read_async(self->input, r->buf, sizeof(r->buf), G_PRIORITY_DEFAULT,
				  self->io_cancellable, migd_qmp_read_cb, r);
}

/* ---- the object ---- */

static void
migd_qmp_dispose(GObject *object)
{
	MigdQmp *self = MIGD_QMP(object);

	/* no "closed" for a connection nobody holds any more */
	if (self->state != MIGD_QMP_STATE_CLOSED) {
		g_signal_handlers_destroy(self);
		migd_qmp_close_with_error(self, NULL);
	}
	G_OBJECT_CLASS(migd_qmp_parent_class)->dispose(object);
}

static void
migd_qmp_finalize(GObject *object)
{
	MigdQmp *self = MIGD_QMP(object);

	g_hash_table_unref(self->pending);
	g_clear_pointer(&self->greeting, json_object_unref);
	g_queue_clear_full(&self->writes, (GDestroyNotify)g_bytes_unref);
	g_byte_array_unref(self->line);
	g_clear_object(&self->io_cancellable);
	g_clear_object(&self->stream);
	g_main_context_unref(self->context);
	G_OBJECT_CLASS(migd_qmp_parent_class)->finalize(object);
}

static void
migd_qmp_class_init(MigdQmpClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = migd_qmp_dispose;
	object_class->finalize = migd_qmp_finalize;
	signals[SIGNAL_EVENT] =
	    g_signal_new("event", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
			 G_TYPE_NONE, 3, G_TYPE_STRING, JSON_TYPE_OBJECT, G_TYPE_INT64);
	signals[SIGNAL_CLOSED] = g_signal_new("closed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
					      0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
migd_qmp_init(MigdQmp *self)
{
	self->context = g_main_context_ref_thread_default();
	self->io_cancellable = g_cancellable_new();
	self->line = g_byte_array_new();
	self->pending = migd_qmp_pending_table_new();
	self->timeout_ms = MIGD_QMP_TIMEOUT_MS_DEFAULT;
	self->max_message = MIGD_QMP_MAX_MESSAGE_DEFAULT;
	g_queue_init(&self->writes);
}

MigdQmp *
migd_qmp_new_for_stream(GIOStream *stream)
{
	MigdQmp *self;

	g_return_val_if_fail(G_IS_IO_STREAM(stream), NULL);
	self = g_object_new(MIGD_TYPE_QMP, NULL);
	self->stream = g_object_ref(stream);
	self->input = g_io_stream_get_input_stream(stream);
	self->output = g_io_stream_get_output_stream(stream);
	return self;
}

void
migd_qmp_set_timeout(MigdQmp *self, guint timeout_ms)
{
	g_return_if_fail(MIGD_IS_QMP(self));
	self->timeout_ms = timeout_ms != 0 ? timeout_ms : MIGD_QMP_TIMEOUT_MS_DEFAULT;
}

void
migd_qmp_set_max_message(MigdQmp *self, gsize max_bytes)
{
	g_return_if_fail(MIGD_IS_QMP(self));
	self->max_message = max_bytes != 0 ? max_bytes : MIGD_QMP_MAX_MESSAGE_DEFAULT;
}

gboolean
migd_qmp_is_closed(MigdQmp *self)
{
	g_return_val_if_fail(MIGD_IS_QMP(self), TRUE);
	return self->state == MIGD_QMP_STATE_CLOSED;
}

JsonObject *
migd_qmp_get_greeting(MigdQmp *self)
{
	g_return_val_if_fail(MIGD_IS_QMP(self), NULL);
	return self->greeting;
}

gsize
migd_qmp_get_buffer_peak(MigdQmp *self)
{
	g_return_val_if_fail(MIGD_IS_QMP(self), 0);
	return self->buffer_peak;
}

void
migd_qmp_close(MigdQmp *self)
{
	g_return_if_fail(MIGD_IS_QMP(self));
	migd_qmp_close_with_error(self, NULL);
}

/* ---- negotiation ---- */

static gboolean
migd_qmp_negotiate_timeout_cb(gpointer user_data)
{
	MigdQmp *self = user_data;

	g_clear_pointer(&self->timeout_source, g_source_unref);
	migd_qmp_fail(self, MIGD_ERROR_TIMED_OUT, "QMP: no greeting and negotiation within %u ms",
		      self->timeout_ms);
	return G_SOURCE_REMOVE;
}

static gboolean
migd_qmp_negotiate_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	MigdQmp *self = user_data;
	g_autoptr(GError) error =
	    g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "QMP negotiation cancelled");

	g_clear_pointer(&self->negotiate_cancel_source, g_source_unref);
	migd_qmp_close_with_error(self, error);
	return G_SOURCE_REMOVE;
}

void
migd_qmp_negotiate_async(MigdQmp *self, GCancellable *cancellable, GAsyncReadyCallback callback,
			 gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(MIGD_IS_QMP(self));
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, migd_qmp_negotiate_async);
	if (self->state != MIGD_QMP_STATE_NEW) {
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					"QMP: this connection was negotiated already");
		return;
	}
	if (g_task_return_error_if_cancelled(task))
		return;
	self->state = MIGD_QMP_STATE_GREETING;
	self->negotiate_task = g_steal_pointer(&task);
	self->timeout_source = g_timeout_source_new(self->timeout_ms);
	/* the source goes with the connection (cleared on close), never after it */
	g_source_set_callback(self->timeout_source, migd_qmp_negotiate_timeout_cb, self, NULL);
	g_source_attach(self->timeout_source, self->context);
	if (cancellable != NULL) {
		self->negotiate_cancel_source = g_cancellable_source_new(cancellable);
		g_source_set_callback(self->negotiate_cancel_source,
				      G_SOURCE_FUNC(migd_qmp_negotiate_cancelled_cb), self, NULL);
		g_source_attach(self->negotiate_cancel_source, self->context);
	}
	migd_qmp_read_next(self);
}

gboolean
migd_qmp_negotiate_finish(MigdQmp *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- commands ---- */

typedef struct {
	GWeakRef self;
	gint64 id;
} MigdQmpCancel;

static void
migd_qmp_cancel_free(gpointer data)
{
	MigdQmpCancel *c = data;

	g_weak_ref_clear(&c->self);
	g_free(c);
}

static gboolean
migd_qmp_execute_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	MigdQmpCancel *c = user_data;
	g_autoptr(MigdQmp) self = g_weak_ref_get(&c->self);
	MigdQmpPending *pending;
	g_autoptr(GTask) task = NULL;

	if (self == NULL)
		return G_SOURCE_REMOVE;
	pending = g_hash_table_lookup(self->pending, &c->id);
	if (pending == NULL)
		return G_SOURCE_REMOVE;
	/* the id stays pending: QEMU's reply to it is still to come, and dropped */
	task = g_steal_pointer(&pending->task);
	g_clear_pointer(&pending->cancel_source, g_source_unref);
	if (task != NULL)
		g_task_return_error_if_cancelled(task);
	return G_SOURCE_REMOVE;
}

void
migd_qmp_execute_async(MigdQmp *self, const gchar *command, JsonObject *arguments,
		       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	MigdQmpPending *pending;

	g_return_if_fail(MIGD_IS_QMP(self));
	g_return_if_fail(command != NULL);
	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, migd_qmp_execute_async);
	if (g_task_return_error_if_cancelled(task))
		return;
	if (self->state == MIGD_QMP_STATE_CLOSED) {
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE,
					"QMP %s: the connection is closed", command);
		return;
	}
	if (self->state != MIGD_QMP_STATE_READY) {
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					"QMP %s: the connection is not negotiated yet", command);
		return;
	}
	if (g_hash_table_size(self->pending) >= MIGD_QMP_MAX_PENDING) {
		g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_BUSY,
					"QMP %s: %u commands are waiting for QEMU already", command,
					MIGD_QMP_MAX_PENDING);
		return;
	}
	pending = migd_qmp_pending_add(self, migd_qmp_send_command(self, command, arguments));
	pending->task = g_steal_pointer(&task);
	if (cancellable != NULL) {
		MigdQmpCancel *c = g_new0(MigdQmpCancel, 1);

		g_weak_ref_init(&c->self, self);
		c->id = pending->id;
		pending->cancel_source = g_cancellable_source_new(cancellable);
		g_source_set_callback(pending->cancel_source,
				      G_SOURCE_FUNC(migd_qmp_execute_cancelled_cb), c,
				      migd_qmp_cancel_free);
		g_source_attach(pending->cancel_source, self->context);
	}
}

JsonNode *
migd_qmp_execute_finish(MigdQmp *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- connecting ---- */

typedef struct {
	gchar *path;
	gint64 deadline_us;
	GCancellable *connect_cancellable; /* the caller's, and the timer's */
	gulong cancelled_id;
	GSource *timer;
	gboolean timed_out;
	guint timeout_ms;
} MigdQmpConnect;

static void
migd_qmp_connect_free(MigdQmpConnect *c)
{
	migd_qmp_source_clear(&c->timer);
	g_clear_object(&c->connect_cancellable);
	g_free(c->path);
	g_free(c);
}

static gboolean
migd_qmp_connect_timeout_cb(gpointer user_data)
{
	MigdQmpConnect *c = user_data;

	c->timed_out = TRUE;
	g_cancellable_cancel(c->connect_cancellable);
	return G_SOURCE_REMOVE;
}

static void
migd_qmp_connect_negotiated_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	g_autoptr(MigdQmp) qmp = MIGD_QMP(source); /* the reference migd_qmp_connected_cb made */
	GError *error = NULL;

	if (!migd_qmp_negotiate_finish(qmp, result, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, g_steal_pointer(&qmp), g_object_unref);
}

static void
migd_qmp_connected_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	MigdQmpConnect *c = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketConnection) connection =
	    g_socket_client_connect_finish(G_SOCKET_CLIENT(source), result, &error);
	GCancellable *cancellable = g_task_get_cancellable(task);
	gint64 left_ms;
	MigdQmp *qmp;

	migd_qmp_source_clear(&c->timer);
	if (cancellable != NULL)
		g_cancellable_disconnect(cancellable, c->cancelled_id);
	if (connection == NULL) {
		if (c->timed_out)
			g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
						"QMP %s: no connection within %u ms", c->path,
						c->timeout_ms);
		else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_task_return_error(task, g_steal_pointer(&error));
		else
			g_task_return_new_error(task, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE,
						"QMP %s: %s", c->path, error->message);
		return;
	}
	left_ms = (c->deadline_us - g_get_monotonic_time()) / 1000;
	qmp = migd_qmp_new_for_stream(G_IO_STREAM(connection));
	migd_qmp_set_timeout(qmp, (guint)CLAMP(left_ms, 1, G_MAXUINT));
	migd_qmp_negotiate_async(qmp, cancellable, migd_qmp_connect_negotiated_cb,
				 g_steal_pointer(&task));
}

static void
migd_qmp_connect_cancelled(GCancellable *cancellable, gpointer user_data)
{
	g_cancellable_cancel(G_CANCELLABLE(user_data));
}

void
migd_qmp_connect_async(const gchar *path, guint timeout_ms, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketAddress) address = NULL;
	MigdQmpConnect *c = g_new0(MigdQmpConnect, 1);

	g_return_if_fail(path != NULL);
	g_task_set_source_tag(task, migd_qmp_connect_async);
	c->path = g_strdup(path);
	c->timeout_ms = timeout_ms != 0 ? timeout_ms : MIGD_QMP_TIMEOUT_MS_DEFAULT;
	c->deadline_us = g_get_monotonic_time() + (gint64)c->timeout_ms * 1000;
	c->connect_cancellable = g_cancellable_new();
	g_task_set_task_data(task, c, (GDestroyNotify)migd_qmp_connect_free);
	c->timer = g_timeout_source_new(c->timeout_ms);
	g_source_set_callback(c->timer, migd_qmp_connect_timeout_cb, c, NULL);
	g_source_attach(c->timer, g_main_context_get_thread_default());
	/* the caller's cancellable cancels the connect too (disconnected once it is done) */
	if (cancellable != NULL)
		c->cancelled_id =
		    g_cancellable_connect(cancellable, G_CALLBACK(migd_qmp_connect_cancelled),
					  g_object_ref(c->connect_cancellable), g_object_unref);
	g_socket_client_set_enable_proxy(client, FALSE);
	address = g_unix_socket_address_new(path);
	g_socket_client_connect_async(client, G_SOCKET_CONNECTABLE(address), c->connect_cancellable,
				      migd_qmp_connected_cb, g_steal_pointer(&task));
}

MigdQmp *
migd_qmp_connect_finish(GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}
