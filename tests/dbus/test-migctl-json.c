/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migctl's machine-readable output (docs/ABI/testing/cli-json): every line
 * of stdout one JSON object, escaping that survives hostile strings, and the
 * exit codes 0 / 1 / 2.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dbus-test-util.h"

#define SRC_NAME "org.vfiomigd.Test.CliSource"
#define DST_NAME "org.vfiomigd.Test.CliDestination"

/* every line one JSON object; returns them (JsonObject) */
static GPtrArray *
parse_lines(const gchar *out)
{
	g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
	GPtrArray *objects = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);

	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) node = NULL;

		if (lines[i][0] == '\0' && lines[i + 1] == NULL)
			break; /* after the final newline */
		node = dt_json_parse(lines[i], &error);
		if (node == NULL)
			fail_msg("line %u is not JSON (%s): %s", i, error->message, lines[i]);
		if (!JSON_NODE_HOLDS_OBJECT(node))
			fail_msg("line %u is not an object: %s", i, lines[i]);
		g_ptr_array_add(objects, json_object_ref(json_node_get_object(node)));
	}
	return objects;
}

/* the value of @key, of JSON type @type (G_TYPE_STRING, G_TYPE_INT64, ...) */
static JsonNode *
obj_value(JsonObject *obj, const gchar *key, GType type)
{
	JsonNode *node = json_object_get_member(obj, key);

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != type)
		fail_msg("no %s '%s'", g_type_name(type), key);
	return node;
}

static const gchar *
obj_str(JsonObject *obj, const gchar *key)
{
	return json_node_get_string(obj_value(obj, key, G_TYPE_STRING));
}

/* a number: an integer, or (progress) a fraction */
static gdouble
obj_num(JsonObject *obj, const gchar *key)
{
	JsonNode *node = json_object_get_member(obj, key);

	if (node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
	    json_node_get_value_type(node) == G_TYPE_DOUBLE)
		return json_node_get_double(node);
	return (gdouble)json_node_get_int(obj_value(obj, key, G_TYPE_INT64));
}

/* an integer the documentation spells as a JSON integer */
static gint64
obj_int(JsonObject *obj, const gchar *key)
{
	return json_node_get_int(obj_value(obj, key, G_TYPE_INT64));
}

static gboolean
obj_bool(JsonObject *obj, const gchar *key)
{
	return json_node_get_boolean(obj_value(obj, key, G_TYPE_BOOLEAN));
}

/* the objects of the array @key */
static JsonArray *
obj_array(JsonObject *obj, const gchar *key)
{
	JsonNode *node = json_object_get_member(obj, key);

	if (node == NULL || !JSON_NODE_HOLDS_ARRAY(node))
		fail_msg("no array '%s'", key);
	return json_node_get_array(node);
}

static JsonObject *
array_obj(JsonArray *array, guint index)
{
	JsonNode *node;

	assert_true(index < json_array_get_length(array));
	node = json_array_get_element(array, index);
	if (!JSON_NODE_HOLDS_OBJECT(node))
		fail_msg("element %u is not an object", index);
	return json_node_get_object(node);
}

static void
test_json_parser_self_check(void **state)
{
	g_autoptr(JsonNode) v = dt_json_parse("{\"a\":[1,2.5,true,null],\"b\":\"x\\\"\\n\"}", NULL);
	g_autoptr(JsonNode) bad = dt_json_parse("{\"a\":1,}", NULL);
	g_autoptr(JsonNode) bad2 = dt_json_parse("{\"a\":\"raw\nnewline\"}", NULL);

	assert_non_null(v);
	assert_string_equal(obj_str(json_node_get_object(v), "b"), "x\"\n");
	assert_null(bad);
	assert_null(bad2);
}

static void
test_json_devices_listen_migrate(void **state)
{
	const gchar *const src_specs[] = {"mlx5:state_size=16M,seed=1,dirty_rate=8M",
					  "hisi_acc:seed=3", NULL};
	const gchar *const dst_specs[] = {"mlx5:state_size=16M,seed=11", "hisi_acc:seed=13", NULL};
	g_autoptr(DtDaemon) src = dt_daemon_start(SRC_NAME, src_specs);
	g_autoptr(DtDaemon) dst = dt_daemon_start(DST_NAME, dst_specs);
	g_autofree gchar *out = NULL;
	g_autofree gchar *out_listen = NULL;
	g_autofree gchar *listen_address = dt_unused_unix_address();
	g_autofree gchar *out_migrate = NULL;
	g_autofree gchar *out_after = NULL;
	g_autofree gchar *out_watch = NULL;
	g_autofree gchar *src_digest = NULL;
	g_autofree gchar *address = NULL;
	g_autoptr(GPtrArray) devices_obj = NULL;
	g_autoptr(GPtrArray) listen_obj = NULL;
	g_autoptr(GPtrArray) events = NULL;
	g_autoptr(GPtrArray) after = NULL;
	g_autoptr(GPtrArray) watch = NULL;
	JsonArray *devices;
	JsonObject *last;
	const gchar *job;

	/* devices: one line, {"devices": [{name, state, flags, busy, backend, ...}]} */
	assert_int_equal(dt_migctl(SRC_NAME, &out, "--json", "devices", NULL), 0);
	devices_obj = parse_lines(out);
	assert_int_equal(devices_obj->len, 1);
	devices = obj_array(g_ptr_array_index(devices_obj, 0), "devices");
	assert_int_equal(json_array_get_length(devices), 2);
	{
		JsonObject *dev = array_obj(devices, 0);
		assert_string_equal(obj_str(dev, "name"), "sim0");
		assert_string_equal(obj_str(dev, "state"), "RUNNING");
		assert_string_equal(obj_str(dev, "profile"), "mlx5");
		assert_string_equal(obj_str(dev, "backend"), "sim");
		assert_false(obj_bool(dev, "busy"));
		assert_true(obj_int(dev, "state-size") > 0);
		/* digests are 16 hex digits as a string: exact in any JSON parser */
		assert_int_equal(strlen(obj_str(dev, "sim-digest")), 16);
	}

	/* listen: {"address": "..."} */
	assert_int_equal(
	    dt_migctl(DST_NAME, &out_listen, "--json", "listen", listen_address, "--plain", NULL),
	    0);
	listen_obj = parse_lines(out_listen);
	assert_int_equal(listen_obj->len, 1);
	address = g_strdup(obj_str(g_ptr_array_index(listen_obj, 0), "address"));
	assert_string_equal(address, listen_address);

	/* migrate: progress events, then one completed object, exit 0 */
	assert_int_equal(dt_migctl(SRC_NAME, &out_migrate, "--json", "migrate", address, "--plain",
				   "--downtime-ms", "500", NULL),
			 0);
	events = parse_lines(out_migrate);
	/* first the job, at once: {"event":"started","job":PATH,"job_id":N} */
	assert_true(events->len >= 2);
	assert_string_equal(obj_str(g_ptr_array_index(events, 0), "event"), "started");
	assert_int_equal(obj_int(g_ptr_array_index(events, 0), "job_id"), 1);
	assert_string_equal(obj_str(g_ptr_array_index(events, 0), "job"),
			    "/org/vfiomigd/Migd1/jobs/1");
	for (guint i = 1; i + 1 < events->len; i++) {
		JsonObject *e = g_ptr_array_index(events, i);
		assert_string_equal(obj_str(e, "event"), "progress");
		assert_true(g_str_has_prefix(obj_str(e, "job"), "/org/vfiomigd/Migd1/jobs/"));
		assert_string_equal(obj_str(e, "role"), "source");
		obj_str(e, "phase");
		assert_true(obj_num(e, "progress") >= 0 && obj_num(e, "progress") <= 1);
		obj_int(e, "bytes");
		obj_int(e, "rate");
		obj_int(e, "precopy_rounds");
		obj_int(e, "expected_downtime_us");
	}
	last = g_ptr_array_index(events, events->len - 1);
	assert_string_equal(obj_str(last, "event"), "completed");
	assert_true(obj_bool(last, "success"));
	obj_str(last, "message");
	assert_string_equal(obj_str(last, "phase"), "completed");
	assert_true(obj_int(last, "bytes") > 16 * 1024 * 1024);
	assert_true(obj_int(last, "downtime_us") > 0);
	assert_int_equal(obj_int(last, "devices"), 2);
	assert_string_equal(obj_str(last, "outcome"), "completed");
	assert_int_equal(obj_int(last, "job_id"), 1);
	job = obj_str(last, "job");

	/* watch on a finished job: just the completed object, same numbers */
	assert_int_equal(dt_migctl(SRC_NAME, &out_watch, "--json", "watch", job, NULL), 0);
	watch = parse_lines(out_watch);
	assert_int_equal(watch->len, 1);
	assert_string_equal(obj_str(g_ptr_array_index(watch, 0), "event"), "completed");
	assert_true(obj_int(g_ptr_array_index(watch, 0), "bytes") == obj_int(last, "bytes"));

	/* the destination holds the (stopped) source's state */
	g_free(dt_job_wait_final(dst, "/org/vfiomigd/Migd1/jobs/1"));
	{
		g_autofree gchar *out_src = NULL;
		g_autoptr(GPtrArray) src_objs = NULL;

		assert_int_equal(dt_migctl(SRC_NAME, &out_src, "--json", "devices", NULL), 0);
		src_objs = parse_lines(out_src);
		src_digest = g_strdup(
		    obj_str(array_obj(obj_array(g_ptr_array_index(src_objs, 0), "devices"), 0),
			    "sim-digest"));
	}
	assert_int_equal(dt_migctl(DST_NAME, &out_after, "--json", "devices", NULL), 0);
	after = parse_lines(out_after);
	assert_string_equal(
	    obj_str(array_obj(obj_array(g_ptr_array_index(after, 0), "devices"), 0), "sim-digest"),
	    src_digest);
}

static void
test_json_errors_and_exit_codes(void **state)
{
	const gchar *const specs[] = {"hisi_acc:seed=3", NULL};
	g_autoptr(DtDaemon) src = dt_daemon_start(SRC_NAME "2", specs);
	/* a hostile name: quotes, backslash, control characters, non-ASCII */
	const gchar *evil = "a\"b\\c\nd\te\x01\x1f"
			    "f\xc3\xa9";
	g_autofree gchar *expected = g_strdup_printf("unknown device '%s'", evil);
	g_autofree gchar *out = NULL;
	g_autofree gchar *out2 = NULL;
	g_autofree gchar *out3 = NULL;
	g_autoptr(GPtrArray) objs = NULL;
	JsonObject *e;

	/* a failed call: exit 1, one error object naming the D-Bus error */
	assert_int_equal(dt_migctl(SRC_NAME "2", &out, "--json", "migrate", "unix:@migd-dt-nowhere",
				   "--plain", "--device", evil, NULL),
			 1);
	objs = parse_lines(out);
	assert_int_equal(objs->len, 1);
	e = g_ptr_array_index(objs, 0);
	assert_string_equal(obj_str(e, "event"), "error");
	assert_string_equal(obj_str(e, "error"), DT_MIGD_ERROR_PREFIX "InvalidArgument");
	assert_string_equal(obj_str(e, "message"), expected);
	/* the hostile bytes are escaped: no raw control character but the line's end */
	for (const gchar *p = out; *p != '\0'; p++)
		assert_true((guchar)*p >= 0x20 || (*p == '\n' && p[1] == '\0'));

	/* usage errors: exit 2, nothing on stdout */
	assert_int_equal(dt_migctl(SRC_NAME "2", &out2, "--json", "frobnicate", NULL), 2);
	assert_string_equal(out2, "");
	assert_int_equal(dt_migctl(SRC_NAME "2", &out3, "watch", "not-a-path", NULL), 2);
	assert_int_equal(dt_migctl(SRC_NAME "2", NULL, "devices", "--plain", NULL), 2);
	assert_int_equal(
	    dt_migctl(SRC_NAME "2", NULL, "migrate", "tcp:127.0.0.1:9", "--downtime-ms", "0", NULL),
	    2);
	/* -1 used to pass for "not given" */
	assert_int_equal(
	    dt_migctl(SRC_NAME "2", NULL, "migrate", "tcp:127.0.0.1:9", "--downtime-ms=-1", NULL),
	    2);
	assert_int_equal(
	    dt_migctl(SRC_NAME "2", NULL, "migrate", "tcp:127.0.0.1:9", "--max-rounds=-1", NULL),
	    2);
	assert_int_equal(dt_migctl(SRC_NAME "2", NULL, "migrate", "tcp:127.0.0.1:9",
				   "--timeout-s=4294967296", NULL),
			 2);
	{
		g_autoptr(GSubprocess) proc = NULL;
		g_autofree gchar *err = NULL;
		g_autoptr(GError) error = NULL;

		proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
					    G_SUBPROCESS_FLAGS_STDERR_PIPE,
					&error, dt_migctl_path(), "--session", "migrate",
					"tcp:127.0.0.1:9", "--downtime-ms=-1", NULL);
		assert_non_null(proc);
		assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, NULL, &err, &error));
		assert_non_null(strstr(err, "--downtime-ms=-1: expected a whole number of "
					    "milliseconds from 1 to 4294967295"));
	}
	/* a job that does not exist: exit 1 */
	assert_int_equal(
	    dt_migctl(SRC_NAME "2", NULL, "watch", "/org/vfiomigd/Migd1/jobs/999", NULL), 1);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_parser_self_check),
	    cmocka_unit_test(test_json_devices_listen_migrate),
	    cmocka_unit_test(test_json_errors_and_exit_codes),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests_name("migctl-json", tests, dt_bus_up, dt_bus_down);
}
