/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A fake QEMU monitor (QMP) on the main loop, for MigdQmp's tests.
 */
#include "migd-test-qmp-server.h"

#include <gio/gunixsocketaddress.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct {
	gboolean is_error;
	gchar *text; /* the return value's JSON, or the error's class */
	gchar *desc;
	gboolean hold;
} MigdTestQmpAnswer;

typedef struct {
	gchar *command;
	JsonNode *id; /* NULL: none */
} MigdTestQmpHeld;

struct _MigdTestQmpServer {
	GSocketListener *listener;
	GIOStream *conn;
	GCancellable *cancellable; /* this connection's reads and writes */
	guint n_ops;		   /* asynchronous operations outstanding */
	guint generation;	   /* of the connection: callbacks of an older one are ignored */
	gboolean greet;
	GHashTable *answers; /* command -> MigdTestQmpAnswer */
	GPtrArray *held;     /* MigdTestQmpHeld */
	GPtrArray *commands; /* gchar* */
	GString *line;
	guint8 buf[4096];
	GQueue writes; /* GBytes; NULL: close here */
	gboolean writing;
	guint64 bytes_sent;
};

static void
migd_test_qmp_answer_free(MigdTestQmpAnswer *answer)
{
	g_free(answer->text);
	g_free(answer->desc);
	g_free(answer);
}

static void
migd_test_qmp_held_free(MigdTestQmpHeld *held)
{
	g_free(held->command);
	g_clear_pointer(&held->id, json_node_unref);
	g_free(held);
}

static void
migd_test_qmp_server_drop(MigdTestQmpServer *self)
{
	if (self->conn == NULL)
		return;
	g_cancellable_cancel(self->cancellable);
	g_io_stream_close(self->conn, NULL, NULL);
	g_clear_object(&self->conn);
	self->writing = FALSE;
	g_queue_clear_full(&self->writes, (GDestroyNotify)g_bytes_unref);
	g_string_truncate(self->line, 0);
}

static void migd_test_qmp_server_write_next(MigdTestQmpServer *self);

static void
migd_test_qmp_server_write_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdTestQmpServer *self = user_data;
	gsize written = 0;
	gboolean ok =
	    g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, &written, NULL);

	self->n_ops--;
	if (self->conn == NULL ||
	    GPOINTER_TO_UINT(g_object_get_data(source, "generation")) != self->generation)
		return;
	self->writing = FALSE;
	self->bytes_sent += written;
	if (!ok) {
		migd_test_qmp_server_drop(self);
		return;
	}
	migd_test_qmp_server_write_next(self);
}

static void
migd_test_qmp_server_write_next(MigdTestQmpServer *self)
{
	GBytes *bytes;
	GOutputStream *out;

	if (self->writing || self->conn == NULL || g_queue_is_empty(&self->writes))
		return;
	bytes = g_queue_pop_head(&self->writes);
	if (bytes == NULL) {
		migd_test_qmp_server_drop(self);
		return;
	}
	out = g_io_stream_get_output_stream(self->conn);
	g_object_set_data(G_OBJECT(out), "generation", GUINT_TO_POINTER(self->generation));
	/* the bytes stay alive with the stream until the write is done */
	g_object_set_data_full(G_OBJECT(out), "bytes", bytes, (GDestroyNotify)g_bytes_unref);
	self->writing = TRUE;
	self->n_ops++;
	g_output_stream_write_all_async(out, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes),
					G_PRIORITY_DEFAULT, self->cancellable,
					migd_test_qmp_server_write_cb, self);
}

static void
migd_test_qmp_server_queue(MigdTestQmpServer *self, GBytes *bytes)
{
	if (self->conn == NULL) {
		if (bytes != NULL)
			g_bytes_unref(bytes);
		return;
	}
	g_queue_push_tail(&self->writes, bytes);
	migd_test_qmp_server_write_next(self);
}

static void
migd_test_qmp_server_send_node(MigdTestQmpServer *self, JsonNode *root)
{
	g_autoptr(JsonGenerator) generator = json_generator_new();
	g_autofree gchar *text = NULL;
	gchar *line;

	json_generator_set_root(generator, root);
	text = json_generator_to_data(generator, NULL);
	/* as QEMU ends its lines */
	line = g_strconcat(text, "\r\n", NULL);
	migd_test_qmp_server_queue(self, g_bytes_new_take(line, strlen(line)));
}

static JsonNode *
migd_test_qmp_parse(const gchar *json)
{
	g_autoptr(JsonParser) parser = json_parser_new();

	g_assert_true(json_parser_load_from_data(parser, json, -1, NULL));
	return json_node_copy(json_parser_get_root(parser));
}

static void
migd_test_qmp_server_reply(MigdTestQmpServer *self, const gchar *command, JsonNode *id)
{
	MigdTestQmpAnswer *answer = g_hash_table_lookup(self->answers, command);
	g_autoptr(JsonObject) reply = json_object_new();
	g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);

	if (answer == NULL || answer->is_error) {
		JsonObject *error = json_object_new();
		g_autofree gchar *desc = NULL;

		if (answer == NULL)
			desc = g_strdup_printf("The command %s has not been found", command);
		json_object_set_string_member(error, "class",
					      answer != NULL ? answer->text : "CommandNotFound");
		json_object_set_string_member(error, "desc", answer != NULL ? answer->desc : desc);
		json_object_set_object_member(reply, "error", error);
	} else {
		json_object_set_member(reply, "return", migd_test_qmp_parse(answer->text));
	}
	if (id != NULL)
		json_object_set_member(reply, "id", json_node_copy(id));
	json_node_set_object(root, reply);
	migd_test_qmp_server_send_node(self, root);
}

static void
migd_test_qmp_server_handle(MigdTestQmpServer *self, const gchar *text)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *message;
	const gchar *command;
	JsonNode *id;
	JsonNode *arguments;
	MigdTestQmpAnswer *answer;

	g_assert_true(json_parser_load_from_data(parser, text, -1, NULL));
	message = json_node_get_object(json_parser_get_root(parser));
	command = json_object_get_string_member(message, "execute");
	id = json_object_get_member(message, "id");
	arguments = json_object_get_member(message, "arguments");
	if (g_strcmp0(command, "qmp_capabilities") == 0) {
		g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
		g_autoptr(JsonObject) reply = json_object_new();

		json_object_set_object_member(reply, "return", json_object_new());
		if (id != NULL)
			json_object_set_member(reply, "id", json_node_copy(id));
		json_node_set_object(root, reply);
		migd_test_qmp_server_send_node(self, root);
		return;
	}
	if (arguments != NULL) {
		g_autoptr(JsonGenerator) generator = json_generator_new();
		g_autofree gchar *args = NULL;

		json_generator_set_root(generator, arguments);
		args = json_generator_to_data(generator, NULL);
		g_ptr_array_add(self->commands, g_strdup_printf("%s %s", command, args));
	} else {
		g_ptr_array_add(self->commands, g_strdup(command));
	}
	answer = g_hash_table_lookup(self->answers, command);
	if (answer != NULL && answer->hold) {
		MigdTestQmpHeld *held = g_new0(MigdTestQmpHeld, 1);

		held->command = g_strdup(command);
		held->id = id != NULL ? json_node_copy(id) : NULL;
		g_ptr_array_add(self->held, held);
		return;
	}
	migd_test_qmp_server_reply(self, command, id);
}

static void migd_test_qmp_server_read_next(MigdTestQmpServer *self);

static void
migd_test_qmp_server_read_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdTestQmpServer *self = user_data;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, NULL);
	gchar *nl;

	self->n_ops--;
	if (self->conn == NULL ||
	    GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(source), "generation")) != self->generation)
		return;
	if (n <= 0) {
		migd_test_qmp_server_drop(self);
		return;
	}
	g_string_append_len(self->line, (const gchar *)self->buf, n);
	while (self->conn != NULL && (nl = strchr(self->line->str, '\n')) != NULL) {
		g_autofree gchar *text = g_strndup(self->line->str, nl - self->line->str);

		g_string_erase(self->line, 0, nl - self->line->str + 1);
		migd_test_qmp_server_handle(self, text);
	}
	migd_test_qmp_server_read_next(self);
}

static void
migd_test_qmp_server_read_next(MigdTestQmpServer *self)
{
	GInputStream *in;

	if (self->conn == NULL)
		return;
	in = g_io_stream_get_input_stream(self->conn);
	g_object_set_data(G_OBJECT(in), "generation", GUINT_TO_POINTER(self->generation));
	self->n_ops++;
	g_input_stream_read_async(in, self->buf, sizeof(self->buf), G_PRIORITY_DEFAULT,
				  self->cancellable, migd_test_qmp_server_read_cb, self);
}

static void
migd_test_qmp_server_start(MigdTestQmpServer *self, GIOStream *conn)
{
	migd_test_qmp_server_drop(self);
	g_clear_object(&self->cancellable);
	self->cancellable = g_cancellable_new();
	self->conn = g_object_ref(conn);
	self->generation++;
	if (self->greet) {
		const gchar *greeting =
		    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": "
		    "2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": "
		    "[\"oob\"]}}\r\n";
		migd_test_qmp_server_queue(self, g_bytes_new_static(greeting, strlen(greeting)));
	}
	migd_test_qmp_server_read_next(self);
}

static MigdTestQmpServer *
migd_test_qmp_server_new(void)
{
	MigdTestQmpServer *self = g_new0(MigdTestQmpServer, 1);

	self->greet = TRUE;
	self->answers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					      (GDestroyNotify)migd_test_qmp_answer_free);
	self->held = g_ptr_array_new_with_free_func((GDestroyNotify)migd_test_qmp_held_free);
	self->commands = g_ptr_array_new_with_free_func(g_free);
	self->line = g_string_new(NULL);
	self->cancellable = g_cancellable_new();
	g_queue_init(&self->writes);
	return self;
}

static void migd_test_qmp_server_accept_next(MigdTestQmpServer *self);

static void
migd_test_qmp_server_accept_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdTestQmpServer *self = user_data;
	g_autoptr(GSocketConnection) conn =
	    g_socket_listener_accept_finish(G_SOCKET_LISTENER(source), result, NULL, NULL);

	self->n_ops--;
	if (conn == NULL || self->listener == NULL)
		return;
	migd_test_qmp_server_start(self, G_IO_STREAM(conn));
	migd_test_qmp_server_accept_next(self);
}

static void
migd_test_qmp_server_accept_next(MigdTestQmpServer *self)
{
	self->n_ops++;
	g_socket_listener_accept_async(self->listener, NULL, migd_test_qmp_server_accept_cb, self);
}

MigdTestQmpServer *
migd_test_qmp_server_new_listen(const gchar *path)
{
	MigdTestQmpServer *self = migd_test_qmp_server_new();
	g_autoptr(GSocketAddress) address = g_unix_socket_address_new(path);
	g_autoptr(GError) error = NULL;

	self->listener = g_socket_listener_new();
	if (!g_socket_listener_add_address(self->listener, address, G_SOCKET_TYPE_STREAM,
					   G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, &error))
		g_error("listening on %s: %s", path, error->message);
	migd_test_qmp_server_accept_next(self);
	return self;
}

static GIOStream *
migd_test_qmp_stream_for_fd(gint fd)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) socket = g_socket_new_from_fd(fd, &error);

	g_assert_no_error(error);
	return G_IO_STREAM(g_socket_connection_factory_create_connection(socket));
}

MigdTestQmpServer *
migd_test_qmp_server_new_pair(gboolean greet, GIOStream **client)
{
	MigdTestQmpServer *self = migd_test_qmp_server_new();
	g_autoptr(GIOStream) server = NULL;
	gint fds[2];

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
	server = migd_test_qmp_stream_for_fd(fds[0]);
	*client = migd_test_qmp_stream_for_fd(fds[1]);
	self->greet = greet;
	migd_test_qmp_server_start(self, server);
	return self;
}

void
migd_test_qmp_server_free(MigdTestQmpServer *self)
{
	gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

	if (self == NULL)
		return;
	if (self->listener != NULL) {
		g_socket_listener_close(self->listener);
		g_clear_object(&self->listener);
	}
	migd_test_qmp_server_drop(self);
	/* the callbacks point here: wait until the cancelled operations ended */
	while (self->n_ops > 0 && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, FALSE);
	g_assert_cmpuint(self->n_ops, ==, 0);
	g_clear_object(&self->cancellable);
	g_hash_table_unref(self->answers);
	g_ptr_array_unref(self->held);
	g_ptr_array_unref(self->commands);
	g_string_free(self->line, TRUE);
	g_free(self);
}

void
migd_test_qmp_server_set_greeting(MigdTestQmpServer *self, gboolean greet)
{
	self->greet = greet;
}

static MigdTestQmpAnswer *
migd_test_qmp_server_answer(MigdTestQmpServer *self, const gchar *command)
{
	MigdTestQmpAnswer *answer = g_hash_table_lookup(self->answers, command);

	if (answer == NULL) {
		answer = g_new0(MigdTestQmpAnswer, 1);
		answer->text = g_strdup("{}");
		g_hash_table_insert(self->answers, g_strdup(command), answer);
	}
	return answer;
}

void
migd_test_qmp_server_set_return(MigdTestQmpServer *self, const gchar *command,
				const gchar *return_json)
{
	MigdTestQmpAnswer *answer = migd_test_qmp_server_answer(self, command);

	answer->is_error = FALSE;
	g_free(answer->text);
	answer->text = g_strdup(return_json);
}

void
migd_test_qmp_server_set_error(MigdTestQmpServer *self, const gchar *command, const gchar *klass,
			       const gchar *desc)
{
	MigdTestQmpAnswer *answer = migd_test_qmp_server_answer(self, command);

	answer->is_error = TRUE;
	g_free(answer->text);
	answer->text = g_strdup(klass);
	g_free(answer->desc);
	answer->desc = g_strdup(desc);
}

void
migd_test_qmp_server_set_hold(MigdTestQmpServer *self, const gchar *command, gboolean hold)
{
	migd_test_qmp_server_answer(self, command)->hold = hold;
}

guint
migd_test_qmp_server_get_n_held(MigdTestQmpServer *self)
{
	return self->held->len;
}

void
migd_test_qmp_server_release(MigdTestQmpServer *self, guint index)
{
	MigdTestQmpHeld *held;

	g_assert_cmpuint(index, <, self->held->len);
	held = g_ptr_array_index(self->held, index);
	migd_test_qmp_server_reply(self, held->command, held->id);
	g_ptr_array_remove_index(self->held, index);
}

void
migd_test_qmp_server_emit_event(MigdTestQmpServer *self, const gchar *name, const gchar *data_json,
				gint64 seconds, gint64 microseconds)
{
	g_autoptr(JsonObject) event = json_object_new();
	g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
	JsonObject *timestamp = json_object_new();

	json_object_set_string_member(event, "event", name);
	if (data_json != NULL)
		json_object_set_member(event, "data", migd_test_qmp_parse(data_json));
	json_object_set_int_member(timestamp, "seconds", seconds);
	json_object_set_int_member(timestamp, "microseconds", microseconds);
	json_object_set_object_member(event, "timestamp", timestamp);
	json_node_set_object(root, event);
	migd_test_qmp_server_send_node(self, root);
}

void
migd_test_qmp_server_send_raw(MigdTestQmpServer *self, const gchar *data, gsize len)
{
	migd_test_qmp_server_queue(self, g_bytes_new(data, len));
}

void
migd_test_qmp_server_close(MigdTestQmpServer *self)
{
	migd_test_qmp_server_queue(self, NULL);
}

gboolean
migd_test_qmp_server_is_connected(MigdTestQmpServer *self)
{
	return self->conn != NULL;
}

GPtrArray *
migd_test_qmp_server_get_commands(MigdTestQmpServer *self)
{
	return self->commands;
}

guint64
migd_test_qmp_server_get_bytes_sent(MigdTestQmpServer *self)
{
	return self->bytes_sent;
}
