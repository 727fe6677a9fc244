/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdQmp against a fake QEMU monitor (tests/common/migd-test-qmp-server.h):
 * negotiation, commands and their replies matched by id, events, the end of
 * the connection, and a peer that misbehaves (oversized, garbage, silent).
 * One case against the real qemu-system-x86_64.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "migd-error.h"
#include "migd-qmp.h"
#include "migd-test-qmp-server.h"
#include "migd-test-util.h"

#define WAIT_MS 5000

typedef struct {
	gchar *name;
	gchar *data; /* JSON, or NULL */
	gint64 timestamp_us;
} Event;

typedef struct {
	MigdTestQmpServer *server;
	MigdQmp *qmp;
	GPtrArray *events; /* Event */
	gint n_closed;
	GError *closed_error;
	gulong event_id;
	gulong closed_id;
} Fixture;

typedef struct {
	gboolean done;
	JsonNode *ret;
	GError *error;
	gint order; /* when it completed, counting from 1 */
} Call;

static gint completions;

static void
event_free(Event *event)
{
	g_free(event->name);
	g_free(event->data);
	g_free(event);
}

static gchar *
json_text(JsonNode *node)
{
	g_autoptr(JsonGenerator) generator = json_generator_new();

	json_generator_set_root(generator, node);
	return json_generator_to_data(generator, NULL);
}

static void
on_event(MigdQmp *qmp, const gchar *name, JsonObject *data, gint64 timestamp_us, gpointer user_data)
{
	Fixture *f = user_data;
	Event *event = g_new0(Event, 1);

	event->name = g_strdup(name);
	if (data != NULL) {
		g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

		json_node_set_object(node, data);
		event->data = json_text(node);
	}
	event->timestamp_us = timestamp_us;
	g_ptr_array_add(f->events, event);
}

static void
on_closed(MigdQmp *qmp, const GError *error, gpointer user_data)
{
	Fixture *f = user_data;

	f->n_closed++;
	g_clear_error(&f->closed_error);
	if (error != NULL)
		f->closed_error = g_error_copy(error);
}

static void
fixture_watch(Fixture *f)
{
	f->event_id = g_signal_connect(f->qmp, "event", G_CALLBACK(on_event), f);
	f->closed_id = g_signal_connect(f->qmp, "closed", G_CALLBACK(on_closed), f);
}

static void
negotiated_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Call *call = user_data;

	migd_qmp_negotiate_finish(MIGD_QMP(source), result, &call->error);
	call->done = TRUE;
}

static gboolean
call_done(gpointer data)
{
	return ((Call *)data)->done;
}

static void
call_wait(Call *call)
{
	if (!migd_test_wait_until(call_done, call, WAIT_MS))
		fail_msg("no completion within %u ms", WAIT_MS);
}

static void
call_clear(Call *call)
{
	g_clear_pointer(&call->ret, json_node_unref);
	g_clear_error(&call->error);
	call->done = FALSE;
}

static int
setup(void **state)
{
	Fixture *f = g_new0(Fixture, 1);

	f->events = g_ptr_array_new_with_free_func((GDestroyNotify)event_free);
	*state = f;
	return 0;
}

/* a socketpair with the fake server; negotiated when @greet */
static void
fixture_pair(Fixture *f, gboolean greet, guint timeout_ms)
{
	g_autoptr(GIOStream) client = NULL;
	Call call = {0};

	f->server = migd_test_qmp_server_new_pair(greet, &client);
	f->qmp = migd_qmp_new_for_stream(client);
	fixture_watch(f);
	migd_qmp_set_timeout(f->qmp, timeout_ms);
	if (!greet)
		return;
	migd_qmp_negotiate_async(f->qmp, NULL, negotiated_cb, &call);
	call_wait(&call);
	assert_null(call.error);
	assert_false(migd_qmp_is_closed(f->qmp));
}

static int
teardown(void **state)
{
	Fixture *f = *state;

	if (f->qmp != NULL) {
		migd_qmp_close(f->qmp);
		g_signal_handler_disconnect(f->qmp, f->event_id);
		g_signal_handler_disconnect(f->qmp, f->closed_id);
		g_clear_object(&f->qmp);
	}
	g_clear_pointer(&f->server, migd_test_qmp_server_free);
	/* the cancelled reads and writes end on the main context */
	migd_test_spin_ms(10);
	g_ptr_array_unref(f->events);
	g_clear_error(&f->closed_error);
	g_free(f);
	return 0;
}

static void
executed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Call *call = user_data;

	call->ret = migd_qmp_execute_finish(MIGD_QMP(source), result, &call->error);
	call->done = TRUE;
	call->order = ++completions;
}

static void
execute(Fixture *f, const gchar *command, JsonObject *arguments, GCancellable *cancellable,
	Call *call)
{
	call_clear(call);
	migd_qmp_execute_async(f->qmp, command, arguments, cancellable, executed_cb, call);
}

static void
assert_json(JsonNode *node, const gchar *expect)
{
	g_autofree gchar *text = NULL;

	assert_non_null(node);
	text = json_text(node);
	assert_string_equal(text, expect);
}

static gboolean
closed(gpointer data)
{
	return ((Fixture *)data)->n_closed > 0;
}

static void
wait_closed(Fixture *f)
{
	if (!migd_test_wait_until(closed, f, WAIT_MS))
		fail_msg("not closed within %u ms", WAIT_MS);
	/* once, whatever follows */
	migd_test_spin_ms(20);
	assert_int_equal(f->n_closed, 1);
	assert_true(migd_qmp_is_closed(f->qmp));
}

static void
assert_error_says(const GError *error, GQuark domain, gint code, const gchar *says)
{
	assert_non_null(error);
	if (!g_error_matches(error, domain, code))
		fail_msg("'%s' (%s %d), want %s %d", error->message,
			 g_quark_to_string(error->domain), error->code, g_quark_to_string(domain),
			 code);
	if (strstr(error->message, says) == NULL)
		fail_msg("'%s' does not say '%s'", error->message, says);
}

typedef struct {
	gboolean done;
	MigdQmp *qmp;
	GError *error;
} Connect;

static void
connected_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Connect *c = user_data;

	c->qmp = migd_qmp_connect_finish(result, &c->error);
	c->done = TRUE;
}

static gboolean
connect_done(gpointer data)
{
	return ((Connect *)data)->done;
}

static void
connect_wait(Connect *c, guint timeout_ms)
{
	if (!migd_test_wait_until(connect_done, c, timeout_ms))
		fail_msg("connect: no completion within %u ms", timeout_ms);
}

/* the next main-loop iterations until @server holds @n replies */
typedef struct {
	MigdTestQmpServer *server;
	guint n;
} Held;

static gboolean
held_reached(gpointer data)
{
	Held *h = data;
	return migd_test_qmp_server_get_n_held(h->server) >= h->n;
}

static void
wait_held(MigdTestQmpServer *server, guint n)
{
	Held h = {server, n};

	if (!migd_test_wait_until(held_reached, &h, WAIT_MS))
		fail_msg("the server holds %u commands, want %u",
			 migd_test_qmp_server_get_n_held(server), n);
}

/* ---- cases ---- */

static void
test_negotiate(void **state)
{
	Fixture *f = *state;
	g_autofree gchar *dir = g_dir_make_tmp("test-qmp-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(dir, "qmp.sock", NULL);
	MigdTestQmpServer *server = migd_test_qmp_server_new_listen(path);
	Connect c = {0};
	Call call = {0};

	/* over a socketpair; qmp_capabilities is the client's own business */
	fixture_pair(f, TRUE, 0);
	assert_int_equal(migd_test_qmp_server_get_commands(f->server)->len, 0);
	assert_int_equal(f->n_closed, 0);
	assert_int_equal(
	    json_object_get_int_member(
		json_object_get_object_member(
		    json_object_get_object_member(migd_qmp_get_greeting(f->qmp), "version"),
		    "qemu"),
		"major"),
	    7);

	/* a second negotiation is refused */
	migd_qmp_negotiate_async(f->qmp, NULL, negotiated_cb, &call);
	call_wait(&call);
	assert_error_says(call.error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "negotiated");
	call_clear(&call);

	/* over a UNIX socket path: usable as soon as connect completes */
	migd_test_qmp_server_set_return(server, "query-status", "{}");
	migd_qmp_connect_async(path, 0, NULL, connected_cb, &c);
	connect_wait(&c, WAIT_MS);
	assert_null(c.error);
	assert_non_null(c.qmp);
	migd_qmp_execute_async(c.qmp, "query-status", NULL, NULL, executed_cb, &call);
	call_wait(&call);
	assert_null(call.error);
	assert_json(call.ret, "{}");
	assert_string_equal(g_ptr_array_index(migd_test_qmp_server_get_commands(server), 0),
			    "query-status");
	call_clear(&call);
	migd_qmp_close(c.qmp);
	g_clear_object(&c.qmp);

	/* nobody listening: the device (the monitor) is gone */
	migd_test_qmp_server_free(server);
	memset(&c, 0, sizeof(c));
	migd_qmp_connect_async(path, 0, NULL, connected_cb, &c);
	connect_wait(&c, WAIT_MS);
	assert_null(c.qmp);
	assert_error_says(c.error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE, path);
	g_clear_error(&c.error);
	migd_test_rm_rf(dir);
}

static void
test_execute_arguments(void **state)
{
	Fixture *f = *state;
	g_autoptr(JsonObject) args = json_object_new();
	Call call = {0};
	GPtrArray *commands;

	fixture_pair(f, TRUE, 0);
	migd_test_qmp_server_set_return(f->server, "migrate-set-capabilities",
					"{\"done\": true, \"n\": 2}");
	json_object_set_string_member(args, "uri", "tcp:127.0.0.1:4444");
	json_object_set_int_member(args, "n", 7);
	json_object_set_boolean_member(args, "detach", TRUE);
	execute(f, "migrate-set-capabilities", args, NULL, &call);
	call_wait(&call);
	assert_null(call.error);
	assert_json(call.ret, "{\"done\":true,\"n\":2}");

	/* without arguments: no "arguments" member at all */
	migd_test_qmp_server_set_return(f->server, "query-migrate", "{}");
	execute(f, "query-migrate", NULL, NULL, &call);
	call_wait(&call);
	assert_null(call.error);

	commands = migd_test_qmp_server_get_commands(f->server);
	assert_int_equal(commands->len, 2);
	assert_string_equal(g_ptr_array_index(commands, 0),
			    "migrate-set-capabilities "
			    "{\"uri\":\"tcp:127.0.0.1:4444\",\"n\":7,\"detach\":true}");
	assert_string_equal(g_ptr_array_index(commands, 1), "query-migrate");
	call_clear(&call);
}

static void
test_error_reply(void **state)
{
	Fixture *f = *state;
	Call call = {0};

	fixture_pair(f, TRUE, 0);
	migd_test_qmp_server_set_error(f->server, "migrate", "GenericError",
				       "There's a migration process in progress");
	execute(f, "migrate", NULL, NULL, &call);
	call_wait(&call);
	assert_null(call.ret);
	assert_error_says(call.error, MIGD_ERROR, MIGD_ERROR_FAILED,
			  "GenericError: There's a migration process in progress");

	/* a command QEMU does not know */
	execute(f, "no-such-command", NULL, NULL, &call);
	call_wait(&call);
	assert_error_says(call.error, MIGD_ERROR, MIGD_ERROR_FAILED, "CommandNotFound: ");

	/* an error reply is no reason to end the connection */
	migd_test_qmp_server_set_return(f->server, "query-status", "{\"status\": \"running\"}");
	execute(f, "query-status", NULL, NULL, &call);
	call_wait(&call);
	assert_null(call.error);
	assert_json(call.ret, "{\"status\":\"running\"}");
	assert_int_equal(f->n_closed, 0);
	call_clear(&call);
}

static gboolean
events_reached(gpointer data)
{
	return ((Fixture *)data)->events->len >= 3;
}

static void
test_events(void **state)
{
	Fixture *f = *state;
	Event *event;

	fixture_pair(f, TRUE, 0);
	migd_test_qmp_server_emit_event(f->server, "STOP", NULL, 1764000000, 123456);
	migd_test_qmp_server_emit_event(f->server, "MIGRATION", "{\"status\": \"completed\"}",
					1764000001, 999999);
	/* QEMU without a clock says -1 */
	migd_test_qmp_server_emit_event(f->server, "RESUME", NULL, -1, -1);
	assert_true(migd_test_wait_until(events_reached, f, WAIT_MS));

	event = g_ptr_array_index(f->events, 0);
	assert_string_equal(event->name, "STOP");
	assert_null(event->data);
	assert_int_equal(event->timestamp_us, G_GINT64_CONSTANT(1764000000123456));
	event = g_ptr_array_index(f->events, 1);
	assert_string_equal(event->name, "MIGRATION");
	assert_string_equal(event->data, "{\"status\":\"completed\"}");
	assert_int_equal(event->timestamp_us, G_GINT64_CONSTANT(1764000001999999));
	event = g_ptr_array_index(f->events, 2);
	assert_string_equal(event->name, "RESUME");
	assert_int_equal(event->timestamp_us, -1);
	assert_int_equal(f->events->len, 3);
	assert_int_equal(f->n_closed, 0);
}

static void
test_out_of_order(void **state)
{
	Fixture *f = *state;
	const gchar *names[] = {"cmd-a", "cmd-b", "cmd-c"};
	Call calls[3] = {{0}};

	fixture_pair(f, TRUE, 0);
	for (guint i = 0; i < 3; i++) {
		g_autofree gchar *ret = g_strdup_printf("{\"who\": \"%s\"}", names[i]);

		migd_test_qmp_server_set_return(f->server, names[i], ret);
		migd_test_qmp_server_set_hold(f->server, names[i], TRUE);
	}
	completions = 0;
	for (guint i = 0; i < 3; i++)
		execute(f, names[i], NULL, NULL, &calls[i]);
	wait_held(f->server, 3);
	migd_test_spin_ms(20);
	for (guint i = 0; i < 3; i++)
		assert_false(calls[i].done);

	/* c, then a, then b */
	migd_test_qmp_server_release(f->server, 2);
	migd_test_qmp_server_release(f->server, 0);
	migd_test_qmp_server_release(f->server, 0);
	for (guint i = 0; i < 3; i++) {
		g_autofree gchar *want = g_strdup_printf("{\"who\":\"%s\"}", names[i]);

		call_wait(&calls[i]);
		assert_null(calls[i].error);
		assert_json(calls[i].ret, want);
	}
	assert_int_equal(calls[2].order, 1);
	assert_int_equal(calls[0].order, 2);
	assert_int_equal(calls[1].order, 3);
	for (guint i = 0; i < 3; i++)
		call_clear(&calls[i]);
}

static void
test_server_closes(void **state)
{
	Fixture *f = *state;
	Call pending = {0};
	Call after = {0};

	fixture_pair(f, TRUE, 0);
	migd_test_qmp_server_set_hold(f->server, "migrate", TRUE);
	execute(f, "migrate", NULL, NULL, &pending);
	wait_held(f->server, 1);
	migd_test_qmp_server_close(f->server);
	wait_closed(f);
	assert_error_says(f->closed_error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE,
			  "1 commands unanswered");
	call_wait(&pending);
	assert_error_says(pending.error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE,
			  "1 commands unanswered");

	execute(f, "query-status", NULL, NULL, &after);
	call_wait(&after);
	assert_error_says(after.error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE, "closed");
	call_clear(&pending);
	call_clear(&after);
}

static void
test_orderly_end(void **state)
{
	Fixture *f = *state;
	Call pending = {0};

	/* QEMU leaving between messages with nothing pending (after quit): no error */
	fixture_pair(f, TRUE, 0);
	migd_test_qmp_server_close(f->server);
	wait_closed(f);
	assert_null(f->closed_error);
	teardown(state);
	setup(state);
	f = *state;

	/* our own close: pending commands fail as cancelled, "closed" without an error */
	fixture_pair(f, TRUE, 0);
	migd_test_qmp_server_set_hold(f->server, "migrate", TRUE);
	execute(f, "migrate", NULL, NULL, &pending);
	wait_held(f->server, 1);
	migd_qmp_close(f->qmp);
	assert_int_equal(f->n_closed, 1);
	assert_null(f->closed_error);
	call_wait(&pending);
	assert_error_says(pending.error, MIGD_ERROR, MIGD_ERROR_CANCELLED, "closed");
	migd_qmp_close(f->qmp); /* idempotent */
	assert_int_equal(f->n_closed, 1);
	call_clear(&pending);
}

static void
test_close_mid_message(void **state)
{
	Fixture *f = *state;
	const gchar *half = "{\"event\": \"STO";

	fixture_pair(f, TRUE, 0);
	migd_test_qmp_server_send_raw(f->server, half, strlen(half));
	migd_test_qmp_server_close(f->server);
	wait_closed(f);
	assert_error_says(f->closed_error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE,
			  "in the middle of a message");
	assert_int_equal(f->events->len, 0);
}

static void
test_oversized(void **state)
{
	Fixture *f = *state;
	const gsize limit = 64 * 1024;
	const gsize flood = 4 * 1024 * 1024;
	g_autofree gchar *big = g_malloc(flood);
	g_autofree gchar *fits = NULL;
	g_autoptr(GString) data = g_string_new("{\"pad\": \"");
	Call pending = {0};

	fixture_pair(f, TRUE, 0);
	migd_qmp_set_max_message(f->qmp, limit);
	/* a message of exactly the limit passes */
	g_string_append_c(data, 'y');
	while (data->len + 2 + strlen("{\"event\": \"BIG\", \"data\": }") < limit)
		g_string_append_c(data, 'y');
	g_string_append(data, "\"}");
	fits = g_strdup_printf("{\"event\": \"BIG\", \"data\": %s}", data->str);
	assert_int_equal(strlen(fits), limit);
	migd_test_qmp_server_send_raw(f->server, fits, strlen(fits));
	migd_test_qmp_server_send_raw(f->server, "\n", 1);

	/* then 4 MiB without a newline: refused at the limit, not buffered */
	migd_test_qmp_server_set_hold(f->server, "query-status", TRUE);
	execute(f, "query-status", NULL, NULL, &pending);
	wait_held(f->server, 1);
	memset(big, 'x', flood);
	migd_test_qmp_server_send_raw(f->server, big, flood);
	wait_closed(f);
	assert_error_says(f->closed_error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			  "a message longer than 65536 bytes");
	call_wait(&pending);
	assert_error_says(pending.error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "longer than");
	assert_int_equal(f->events->len, 1);
	assert_string_equal(((Event *)g_ptr_array_index(f->events, 0))->name, "BIG");
	assert_true(migd_qmp_get_buffer_peak(f->qmp) <= limit);
	assert_true(migd_qmp_get_buffer_peak(f->qmp) >= limit - 1);
	call_clear(&pending);
}

static void
test_oversized_default(void **state)
{
	Fixture *f = *state;
	const gsize flood = MIGD_QMP_MAX_MESSAGE_DEFAULT + 256 * 1024;
	g_autofree gchar *big = g_malloc(flood);

	fixture_pair(f, TRUE, 0);
	memset(big, ' ', flood); /* even whitespace counts */
	migd_test_qmp_server_send_raw(f->server, big, flood);
	wait_closed(f);
	assert_error_says(f->closed_error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "longer than 1048576");
	assert_true(migd_qmp_get_buffer_peak(f->qmp) <= MIGD_QMP_MAX_MESSAGE_DEFAULT);
}

static void
test_garbage(void **state)
{
	const struct {
		const gchar *text;
		const gchar *says;
		gsize len; /* 0: strlen */
	} cases[] = {
	    {"this is not json\n", "not JSON"},
	    {"[1, 2, 3]\n", "no JSON object"},
	    {"\"text\"\n", "no JSON object"},
	    {"{\"foo\": 1}\n", "neither reply nor event"},
	    {"{\"return\": {}, \"id\": 999}\n", "unknown id"},
	    {"{\"return\": {}}\n", "unknown id"},
	    {"{\"return\": {}, \"id\": \"1\"}\n", "unknown id"},
	    {"{\"event\": 5}\n", "an event without a name"},
	    {"{\"event\": \"STOP\", \"data\": [1]}\n", "data is no object"},
	    {"{\"event\": \"ST\xff\xfeOP\"}\n", "not UTF-8"},
	    {"{\"event\": \"ST\0OP\"}\n", "not UTF-8", 19},
	    {"{\"event\": \"STOP\"} {\"event\": \"RESUME\"}\n", "more than one JSON value"},
	    {"{\"event\": \"S}\\\"TOP\"} [1]\n", "more than one JSON value"},
	    {"}{\"event\": \"STOP\"}\n", "not JSON"},
	    {"{\"event\": \"STOP\"}}\n", "more than one JSON value"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		Fixture *f = *state;
		gsize len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].text);

		fixture_pair(f, TRUE, 0);
		migd_test_qmp_server_send_raw(f->server, cases[i].text, len);
		if (!migd_test_wait_until(closed, f, WAIT_MS))
			fail_msg("case %u: not closed", i);
		if (strstr(f->closed_error->message, cases[i].says) == NULL)
			fail_msg("case %u: '%s' does not say '%s'", i, f->closed_error->message,
				 cases[i].says);
		assert_true(g_error_matches(f->closed_error, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
		assert_int_equal(f->events->len, 0);
		teardown(state);
		setup(state);
	}
}

static void
test_no_greeting(void **state)
{
	Fixture *f = *state;
	g_autofree gchar *dir = g_dir_make_tmp("test-qmp-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(dir, "qmp.sock", NULL);
	MigdTestQmpServer *server = migd_test_qmp_server_new_listen(path);
	Connect c = {0};
	Call call = {0};
	gint64 start;
	gint64 took_ms;

	/* connect: the greeting never comes */
	migd_test_qmp_server_set_greeting(server, FALSE);
	start = g_get_monotonic_time();
	migd_qmp_connect_async(path, 200, NULL, connected_cb, &c);
	connect_wait(&c, WAIT_MS);
	took_ms = (g_get_monotonic_time() - start) / 1000;
	assert_null(c.qmp);
	assert_error_says(c.error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT, "within");
	assert_true(took_ms >= 190 && took_ms < 2000);
	g_clear_error(&c.error);

	/* cancelled while waiting for the greeting: at once, as cancelled */
	{
		g_autoptr(GCancellable) cancellable = g_cancellable_new();

		memset(&c, 0, sizeof(c));
		migd_qmp_connect_async(path, 0, cancellable, connected_cb, &c);
		migd_test_spin_ms(50);
		assert_false(c.done);
		start = g_get_monotonic_time();
		g_cancellable_cancel(cancellable);
		connect_wait(&c, WAIT_MS);
		assert_true(g_get_monotonic_time() - start < G_USEC_PER_SEC);
		assert_null(c.qmp);
		assert_error_says(c.error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "");
		g_clear_error(&c.error);
	}
	migd_test_qmp_server_free(server);
	migd_test_rm_rf(dir);

	/* over a stream: negotiate times out, the connection closes with the same error */
	fixture_pair(f, FALSE, 150);
	execute(f, "query-status", NULL, NULL, &call);
	call_wait(&call);
	assert_error_says(call.error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "not negotiated");
	call_clear(&call);
	migd_qmp_negotiate_async(f->qmp, NULL, negotiated_cb, &call);
	call_wait(&call);
	assert_error_says(call.error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT, "150 ms");
	wait_closed(f);
	assert_error_says(f->closed_error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT, "150 ms");
	call_clear(&call);

	/* and a command after that end is refused */
	execute(f, "query-status", NULL, NULL, &call);
	call_wait(&call);
	assert_error_says(call.error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE, "closed");
	call_clear(&call);
}

static void
test_cancel(void **state)
{
	Fixture *f = *state;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	Call call = {0};
	Call next = {0};

	fixture_pair(f, TRUE, 0);
	migd_test_qmp_server_set_hold(f->server, "migrate", TRUE);
	execute(f, "migrate", NULL, cancellable, &call);
	wait_held(f->server, 1);
	assert_false(call.done);
	g_cancellable_cancel(cancellable);
	call_wait(&call);
	assert_error_says(call.error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "");

	/* QEMU's late reply to it is dropped, not taken for an unknown id */
	migd_test_qmp_server_set_return(f->server, "query-status", "{}");
	migd_test_qmp_server_release(f->server, 0);
	execute(f, "query-status", NULL, NULL, &next);
	call_wait(&next);
	assert_null(next.error);
	assert_int_equal(f->n_closed, 0);

	/* cancelled before it is sent: nothing is sent */
	execute(f, "stop", NULL, cancellable, &call);
	call_wait(&call);
	assert_error_says(call.error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "");
	migd_test_spin_ms(20);
	assert_int_equal(migd_test_qmp_server_get_commands(f->server)->len, 2);
	call_clear(&call);
	call_clear(&next);
}

static void
test_max_pending(void **state)
{
	Fixture *f = *state;
	Call calls[MIGD_QMP_MAX_PENDING + 1];

	memset(calls, 0, sizeof(calls));
	fixture_pair(f, TRUE, 0);
	migd_test_qmp_server_set_hold(f->server, "query-migrate", TRUE);
	for (guint i = 0; i < MIGD_QMP_MAX_PENDING; i++)
		execute(f, "query-migrate", NULL, NULL, &calls[i]);
	execute(f, "query-migrate", NULL, NULL, &calls[MIGD_QMP_MAX_PENDING]);
	call_wait(&calls[MIGD_QMP_MAX_PENDING]);
	assert_error_says(calls[MIGD_QMP_MAX_PENDING].error, MIGD_ERROR, MIGD_ERROR_BUSY,
			  "64 commands");
	wait_held(f->server, MIGD_QMP_MAX_PENDING);
	for (guint i = 0; i < MIGD_QMP_MAX_PENDING; i++)
		assert_false(calls[i].done);

	/* one answered: room for one more */
	migd_test_qmp_server_release(f->server, 0);
	call_wait(&calls[0]);
	assert_null(calls[0].error);
	execute(f, "query-migrate", NULL, NULL, &calls[MIGD_QMP_MAX_PENDING]);
	wait_held(f->server, MIGD_QMP_MAX_PENDING);
	assert_false(calls[MIGD_QMP_MAX_PENDING].done);

	migd_qmp_close(f->qmp);
	for (guint i = 0; i <= MIGD_QMP_MAX_PENDING; i++) {
		call_wait(&calls[i]);
		if (i > 0)
			assert_error_says(calls[i].error, MIGD_ERROR, MIGD_ERROR_CANCELLED, "");
		call_clear(&calls[i]);
	}
}

/* ---- the real QEMU ---- */

static gboolean
has_event(gpointer data)
{
	Fixture *f = data;

	for (guint i = 0; i < f->events->len; i++)
		if (g_strcmp0(((Event *)g_ptr_array_index(f->events, i))->name, "RESUME") == 0)
			return TRUE;
	return FALSE;
}

static gboolean
socket_exists(gpointer data)
{
	return g_file_test(data, G_FILE_TEST_EXISTS);
}

static void
subprocess_waited(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL);
	*(gboolean *)user_data = TRUE;
}

static gboolean
flag_is_set(gpointer data)
{
	return *(gboolean *)data;
}

static void
test_real_qemu(void **state)
{
	Fixture *f = *state;
	g_autofree gchar *qemu = g_find_program_in_path("qemu-system-x86_64");
	g_autofree gchar *dir = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *monitor = NULL;
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	JsonObject *status;
	gboolean exited = FALSE;
	Connect c = {0};
	Call call = {0};
	gint64 before_us;

	if (qemu == NULL) {
		/* reported, not skip(): see tests/transport/transport-test-util.h */
		print_message(
		    "# qemu-system-x86_64 is not installed: the real QEMU is not tried\n");
		return;
	}
	dir = g_dir_make_tmp("test-qmp-XXXXXX", NULL);
	path = g_build_filename(dir, "qmp.sock", NULL);
	monitor = g_strdup_printf("unix:%s,server=on,wait=off", path);
	process = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error, qemu, "-M", "q35",
				   "-m", "64", "-nodefaults", "-display", "none", "-accel", "tcg",
				   "-S", "-qmp", monitor, NULL);
	assert_non_null(process);
	g_subprocess_wait_async(process, NULL, subprocess_waited, &exited);
	/* a file appearing wakes no main loop: looked at every 20 ms */
	for (guint i = 0; i < 1000 && !socket_exists(path); i++)
		migd_test_spin_ms(20);
	if (!socket_exists(path))
		fail_msg("QEMU made no monitor socket within 20 s");

	migd_qmp_connect_async(path, 10000, NULL, connected_cb, &c);
	connect_wait(&c, 15000);
	assert_null(c.error);
	f->qmp = c.qmp;
	fixture_watch(f);
	/* Debian 12's is 7.2; any QEMU with QMP names its version */
	assert_true(json_object_has_member(
	    json_object_get_object_member(migd_qmp_get_greeting(f->qmp), "version"), "qemu"));

	execute(f, "query-status", NULL, NULL, &call);
	call_wait(&call);
	assert_null(call.error);
	assert_true(JSON_NODE_HOLDS_OBJECT(call.ret));
	status = json_node_get_object(call.ret);
	assert_string_equal(json_object_get_string_member(status, "status"), "prelaunch");
	assert_false(json_object_get_boolean_member(status, "running"));

	before_us = g_get_real_time();
	execute(f, "cont", NULL, NULL, &call);
	call_wait(&call);
	assert_null(call.error);
	if (!migd_test_wait_until(has_event, f, 10000))
		fail_msg("no RESUME event within 10 s of cont");
	for (guint i = 0; i < f->events->len; i++) {
		Event *event = g_ptr_array_index(f->events, i);

		/* QEMU's realtime clock: this machine's */
		if (g_strcmp0(event->name, "RESUME") == 0)
			assert_true(event->timestamp_us >= before_us - 1000000 &&
				    event->timestamp_us <= g_get_real_time() + 1000000);
	}

	execute(f, "quit", NULL, NULL, &call);
	call_wait(&call);
	assert_null(call.error);
	wait_closed(f);
	if (f->closed_error != NULL)
		fail_msg("closed after quit: %s", f->closed_error->message);
	if (!migd_test_wait_until(flag_is_set, &exited, 10000)) {
		g_subprocess_force_exit(process);
		fail_msg("QEMU did not exit within 10 s of quit");
	}
	assert_true(g_subprocess_get_if_exited(process));
	assert_int_equal(g_subprocess_get_exit_status(process), 0);
	call_clear(&call);
	migd_test_rm_rf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_negotiate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_execute_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_error_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_closes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_orderly_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_mid_message, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oversized_default, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_greeting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_qemu, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
