/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The daemon's log writer (daemon/migd-log.c) against a fake journal: a datagram socket in a
 * temporary directory that reads the native protocol. Jobs are real MigdJobs, so the fields
 * the engine sets are the ones checked. Plain text is checked in child processes, against
 * GLib's own writer.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "migd-job.h"
#include "migd-log.h"
#include "migd-test-util.h"

static gchar *fake_dir;
static gchar *fake_path;
static gint fake_fd = -1;

/* one datagram of the native protocol -> KEY -> VALUE (the last one wins) */
static GHashTable *
parse_record(const guint8 *data, gsize size)
{
	GHashTable *fields = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	gsize pos = 0;

	while (pos < size) {
		const guint8 *nl = memchr(data + pos, '\n', size - pos);
		const guint8 *eq = memchr(data + pos, '=', size - pos);

		assert_non_null(nl);
		if (eq != NULL && eq < nl) {
			g_hash_table_replace(fields,
					     g_strndup((const gchar *)data + pos, eq - data - pos),
					     g_strndup((const gchar *)eq + 1, nl - eq - 1));
			pos = nl - data + 1;
		} else {
			gchar *key = g_strndup((const gchar *)data + pos, nl - data - pos);
			guint64 le;

			pos = nl - data + 1;
			assert_true(pos + sizeof(le) <= size);
			memcpy(&le, data + pos, sizeof(le));
			pos += sizeof(le);
			assert_true(pos + GUINT64_FROM_LE(le) + 1 <= size);
			g_hash_table_replace(
			    fields, key, g_strndup((const gchar *)data + pos, GUINT64_FROM_LE(le)));
			pos += GUINT64_FROM_LE(le);
			assert_int_equal(data[pos], '\n');
			pos++;
		}
	}
	return fields;
}

/* every record the fake journal holds now, in order */
static GPtrArray *
drain(void)
{
	GPtrArray *records = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);
	guint8 buf[65536];
	ssize_t n;

	while ((n = recv(fake_fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0)
		g_ptr_array_add(records, parse_record(buf, n));
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	return records;
}

static GHashTable *
find_event(GPtrArray *records, const gchar *event)
{
	for (guint i = 0; i < records->len; i++) {
		GHashTable *r = g_ptr_array_index(records, i);

		if (g_strcmp0(g_hash_table_lookup(r, "VFIO_MIGD_EVENT"), event) == 0)
			return r;
	}
	return NULL;
}

static int
setup(void **state)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	fake_dir = g_dir_make_tmp("migd-test-log-XXXXXX", NULL);
	assert_non_null(fake_dir);
	fake_path = g_build_filename(fake_dir, "socket", NULL);
	assert_true(strlen(fake_path) < sizeof(addr.sun_path));
	strcpy(addr.sun_path, fake_path);
	fake_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fake_fd >= 0);
	assert_int_equal(bind(fake_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	migd_log_use_journal(fake_path);
	return 0;
}

static int
teardown(void **state)
{
	migd_log_use_journal(NULL);
	close(fake_fd);
	unlink(fake_path);
	rmdir(fake_dir);
	g_clear_pointer(&fake_path, g_free);
	g_clear_pointer(&fake_dir, g_free);
	return 0;
}

static void
assert_job_record(GHashTable *r, const gchar *priority, const gchar *message_id, const gchar *job,
		  const gchar *message)
{
	assert_non_null(r);
	assert_string_equal(g_hash_table_lookup(r, "PRIORITY"), priority);
	assert_string_equal(g_hash_table_lookup(r, "MESSAGE_ID"), message_id);
	assert_string_equal(g_hash_table_lookup(r, "VFIO_MIGD_JOB"), job);
	assert_string_equal(g_hash_table_lookup(r, "MESSAGE"), message);
	assert_string_equal(g_hash_table_lookup(r, "GLIB_DOMAIN"), "Migd");
	assert_non_null(g_hash_table_lookup(r, "SYSLOG_IDENTIFIER"));
}

static void
test_job_failed(void **state)
{
	g_autoptr(MigdJob) job = migd_job_new(MIGD_JOB_ROLE_SOURCE, "7");
	g_autoptr(GPtrArray) records = NULL;

	migd_job_complete(job, FALSE, "connection lost");
	records = drain();
	/* started is info, written to the journal without G_MESSAGES_DEBUG */
	assert_job_record(find_event(records, "job-started"), "6", MIGD_LOG_MESSAGE_ID_JOB_STARTED,
			  "7", "job 7: started (source)");
	assert_job_record(find_event(records, "job-failed"), "3", MIGD_LOG_MESSAGE_ID_JOB_FAILED,
			  "7", "job 7: failed: connection lost");
	assert_null(find_event(records, "job-rolled-back"));
	assert_null(find_event(records, "job-completed"));
}

static void
test_job_completed(void **state)
{
	g_autoptr(MigdJob) job = migd_job_new(MIGD_JOB_ROLE_DESTINATION, "12");
	g_autoptr(GPtrArray) records = NULL;

	migd_job_complete(job, TRUE, "3 devices");
	records = drain();
	assert_job_record(find_event(records, "job-started"), "6", MIGD_LOG_MESSAGE_ID_JOB_STARTED,
			  "12", "job 12: started (destination)");
	assert_job_record(find_event(records, "job-completed"), "6",
			  MIGD_LOG_MESSAGE_ID_JOB_COMPLETED, "12", "job 12: completed: 3 devices");
	assert_null(find_event(records, "job-failed"));
}

static void
test_job_rolled_back(void **state)
{
	g_autoptr(MigdJob) job = migd_job_new(MIGD_JOB_ROLE_SOURCE, "9");
	g_autoptr(GPtrArray) records = NULL;

	migd_job_set_rolled_back(job);
	migd_job_complete(job, FALSE, "rolled back after the switchover (abandoned)");
	records = drain();
	assert_job_record(find_event(records, "job-rolled-back"), "3",
			  MIGD_LOG_MESSAGE_ID_JOB_ROLLED_BACK, "9",
			  "job 9: failed: rolled back after the switchover (abandoned)");
	assert_null(find_event(records, "job-failed"));
}

/* the fields libmigd sets when a device cannot be brought back, and a message on two lines */
static void
test_device_recovery_failed(void **state)
{
	g_autoptr(GPtrArray) records = NULL;
	GHashTable *r;

	g_log_structured("Migd", G_LOG_LEVEL_WARNING, "VFIO_MIGD_EVENT", "device-recovery-failed",
			 "VFIO_MIGD_DEVICE", "0000:65:00.2", "MESSAGE", "%s", "reset failed\nEIO");
	records = drain();
	assert_int_equal(records->len, 1);
	r = find_event(records, "device-recovery-failed");
	assert_non_null(r);
	assert_string_equal(g_hash_table_lookup(r, "PRIORITY"), "3");
	assert_string_equal(g_hash_table_lookup(r, "MESSAGE_ID"),
			    MIGD_LOG_MESSAGE_ID_DEVICE_RECOVERY_FAILED);
	assert_string_equal(g_hash_table_lookup(r, "VFIO_MIGD_DEVICE"), "0000:65:00.2");
	assert_string_equal(g_hash_table_lookup(r, "MESSAGE"), "reset failed\nEIO");
}

/* ordinary messages: priorities by level, no MESSAGE_ID, debug dropped without G_MESSAGES_DEBUG */
static void
test_plain_levels(void **state)
{
	g_autoptr(GPtrArray) records = NULL;

	g_warning("a warning");
	g_message("a message");
	g_debug("a debug message");
	records = drain();
	assert_int_equal(records->len, 2);
	assert_string_equal(g_hash_table_lookup(records->pdata[0], "MESSAGE"), "a warning");
	assert_string_equal(g_hash_table_lookup(records->pdata[0], "PRIORITY"), "4");
	assert_null(g_hash_table_lookup(records->pdata[0], "MESSAGE_ID"));
	assert_string_equal(g_hash_table_lookup(records->pdata[1], "MESSAGE"), "a message");
	assert_string_equal(g_hash_table_lookup(records->pdata[1], "PRIORITY"), "6");
}

static gchar *self_exe;

/* runs this program as CHILD (see main()) with stderr captured; returns what it wrote */
static gchar *
run_child(const gchar *child)
{
	const gchar *argv[] = {self_exe, child, NULL};
	g_auto(GStrv) envp = g_get_environ();
	g_autoptr(GError) error = NULL;
	gchar *err = NULL;
	gint status;

	envp = g_environ_unsetenv(envp, "JOURNAL_STREAM");
	envp = g_environ_unsetenv(envp, "G_MESSAGES_DEBUG");
	assert_true(g_spawn_sync(NULL, (gchar **)argv, envp, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
				 NULL, &err, &status, &error));
	assert_true(g_spawn_check_wait_status(status, NULL));
	return err;
}

static void
log_a_run(void)
{
	g_autoptr(MigdJob) done = migd_job_new(MIGD_JOB_ROLE_SOURCE, "3");
	g_autoptr(MigdJob) failed = migd_job_new(MIGD_JOB_ROLE_SOURCE, "4");

	migd_job_complete(done, TRUE, "2 devices");
	migd_job_set_rolled_back(failed);
	migd_job_complete(failed, FALSE, "rolled back");
	g_warning("a warning");
	g_message("a message");
}

/* the daemon's writer, as vfio-migd's main() installs it */
static void
child_with_writer(void)
{
	g_autofree gchar *journal = NULL;

	migd_log_install();
	journal = migd_log_dup_journal();
	if (journal != NULL)
		_exit(3);
	log_a_run();
}

/* what the engine printed before its records were structured: g_message and g_warning */
static void
child_glib_default(void)
{
	g_log("Migd", G_LOG_LEVEL_MESSAGE, "job %s: completed: %s", "3", "2 devices");
	g_log("Migd", G_LOG_LEVEL_WARNING, "job %s: failed: %s", "4", "rolled back");
	g_warning("a warning");
	g_message("a message");
}

/* the times and the pids differ between two runs, nothing else may */
static gchar *
normalize(const gchar *text)
{
	g_autoptr(GRegex) time = g_regex_new("[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}", 0, 0, NULL);
	g_autoptr(GRegex) pid = g_regex_new("\\(([^():]*):[0-9]+\\)", 0, 0, NULL);
	g_autofree gchar *a = g_regex_replace(time, text, -1, 0, "TIME", 0, NULL);

	return g_regex_replace(pid, a, -1, 0, "(\\1:PID)", 0, NULL);
}

/* without JOURNAL_STREAM: plain text, exactly what GLib's default writer printed before */
static void
test_plain_text_unchanged(void **state)
{
	g_autofree gchar *ours = run_child("child-writer");
	g_autofree gchar *glib = run_child("child-glib");
	g_autofree gchar *ours_n = normalize(ours);
	g_autofree gchar *glib_n = normalize(glib);
	g_autoptr(GPtrArray) records = drain();

	assert_string_equal(ours_n, glib_n);
	assert_non_null(strstr(ours, "Migd-Message: "));
	assert_non_null(strstr(ours, "job 3: completed: 2 devices\n"));
	assert_non_null(strstr(ours, "Migd-WARNING **: "));
	assert_non_null(strstr(ours, "job 4: failed: rolled back\n"));
	assert_null(strstr(ours, "started"));
	/* and nothing reached the (fake) journal */
	assert_int_equal(records->len, 0);
}

/* with JOURNAL_STREAM naming stderr, main()'s writer goes to journald's socket */
static void
child_journal_stream(void)
{
	struct stat st;
	g_autofree gchar *stream = NULL;
	g_autofree gchar *journal = NULL;

	gint pair[2];

	/* journald hands a service a stream socket; GLib checks for one */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0 || dup2(pair[0], STDERR_FILENO) < 0 ||
	    fstat(STDERR_FILENO, &st) != 0)
		_exit(4);
	stream = g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, (guint64)st.st_dev,
				 (guint64)st.st_ino);
	g_setenv("JOURNAL_STREAM", stream, TRUE);
	migd_log_install();
	journal = migd_log_dup_journal();
	if (g_strcmp0(journal, MIGD_LOG_JOURNAL_SOCKET) != 0)
		_exit(5);
}

static void
test_journal_stream_detected(void **state)
{
	g_autofree gchar *out = run_child("child-journal-stream");

	assert_string_equal(out, "");
}

/* ---- D-Bus callers, on a private bus ---- */

static const gchar ping_xml[] = "<node><interface name='org.vfiomigd.Test'>"
				"<method name='Ping'/></interface></node>";

static void
ping_method(GDBusConnection *connection, const gchar *sender, const gchar *path, const gchar *iface,
	    const gchar *method, GVariant *params, GDBusMethodInvocation *invocation,
	    gpointer user_data)
{
	/* info: debug-only in plain text, kept in the journal as an action of a caller */
	migd_log_caller(invocation, G_LOG_LEVEL_INFO, "5", "sim0", "job %s: rolled back by", "5");
	g_dbus_method_invocation_return_value(invocation, NULL);
}

static void
ping_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(GVariant) reply =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, NULL);

	assert_non_null(reply);
	*(gboolean *)user_data = TRUE;
}

/* calls Ping from @client; the records the fake journal holds once the reply came */
static GPtrArray *
ping(GDBusConnection *client, const gchar *server_name, gboolean wait_for_record)
{
	gboolean done = FALSE;
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	GPtrArray *records = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);

	g_dbus_connection_call(client, server_name, "/test", "org.vfiomigd.Test", "Ping", NULL,
			       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, ping_done, &done);
	while (!done || (wait_for_record && records->len == 0)) {
		g_autoptr(GPtrArray) more = NULL;

		assert_true(g_get_monotonic_time() < deadline);
		g_main_context_iteration(NULL, TRUE);
		more = drain();
		while (more->len > 0)
			g_ptr_array_add(records, g_ptr_array_steal_index(more, 0));
	}
	return records;
}

static void
assert_caller_record(GPtrArray *records, const gchar *unique_name)
{
	g_autofree gchar *uid = g_strdup_printf("%u", (guint)getuid());
	g_autofree gchar *pid = g_strdup_printf("%d", (gint)getpid());
	g_autofree gchar *message =
	    g_strdup_printf("job 5: rolled back by uid %s pid %s", uid, pid);
	GHashTable *r;

	assert_int_equal(records->len, 1);
	r = records->pdata[0];
	assert_string_equal(g_hash_table_lookup(r, "MESSAGE"), message);
	assert_string_equal(g_hash_table_lookup(r, "VFIO_MIGD_CALLER_UID"), uid);
	assert_string_equal(g_hash_table_lookup(r, "VFIO_MIGD_CALLER_PID"), pid);
	assert_string_equal(g_hash_table_lookup(r, "VFIO_MIGD_CALLER"), unique_name);
	assert_string_equal(g_hash_table_lookup(r, "VFIO_MIGD_JOB"), "5");
	assert_string_equal(g_hash_table_lookup(r, "VFIO_MIGD_DEVICE"), "sim0");
	assert_string_equal(g_hash_table_lookup(r, "PRIORITY"), "6");
	assert_null(g_hash_table_lookup(r, "MESSAGE_ID"));
}

static void
test_dbus_caller(void **state)
{
	g_autoptr(GTestDBus) bus = NULL;
	g_autoptr(GDBusConnection) server = NULL;
	g_autoptr(GDBusConnection) client = NULL;
	g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml(ping_xml, NULL);
	g_autoptr(GPtrArray) first = NULL;
	g_autoptr(GPtrArray) second = NULL;
	const GDBusInterfaceVTable vtable = {ping_method, NULL, NULL, {NULL}};
	g_autofree gchar *dbus_daemon = g_find_program_in_path("dbus-daemon");
	guint reg;

	MIGD_TEST_SKIP_IF(dbus_daemon == NULL, "no dbus-daemon");
	bus = g_test_dbus_new(G_TEST_DBUS_NONE);
	g_test_dbus_up(bus);
	server = g_dbus_connection_new_for_address_sync(
	    g_test_dbus_get_bus_address(bus),
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL, NULL, NULL);
	client = g_dbus_connection_new_for_address_sync(
	    g_test_dbus_get_bus_address(bus),
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL, NULL, NULL);
	assert_non_null(server);
	assert_non_null(client);
	reg = g_dbus_connection_register_object(server, "/test", info->interfaces[0], &vtable, NULL,
						NULL, NULL);
	assert_true(reg > 0);

	/* first call: the credentials come from the bus after the reply */
	first = ping(client, g_dbus_connection_get_unique_name(server), TRUE);
	assert_caller_record(first, g_dbus_connection_get_unique_name(client));
	/* second call: cached, logged before the reply */
	second = ping(client, g_dbus_connection_get_unique_name(server), FALSE);
	assert_caller_record(second, g_dbus_connection_get_unique_name(client));

	g_dbus_connection_unregister_object(server, reg);
	g_dbus_connection_close_sync(client, NULL, NULL);
	g_dbus_connection_close_sync(server, NULL, NULL);
	g_test_dbus_down(bus);
}

/* once against a real journald, when this machine has one */
static void
test_real_journald(void **state)
{
	g_autofree gchar *id =
	    g_strdup_printf("test-log-%d-%" G_GINT64_FORMAT, getpid(), g_get_real_time());
	g_autofree gchar *match = g_strdup_printf("VFIO_MIGD_JOB=%s", id);
	g_autofree gchar *out = NULL;
	g_autoptr(MigdJob) job = NULL;

	/* no journald here (a container) */
	MIGD_TEST_SKIP_IF(!g_file_test(MIGD_LOG_JOURNAL_SOCKET, G_FILE_TEST_EXISTS) ||
			      g_find_program_in_path("journalctl") == NULL,
			  "no journald on this machine");
	migd_log_use_journal(MIGD_LOG_JOURNAL_SOCKET);
	job = migd_job_new(MIGD_JOB_ROLE_SOURCE, id);
	migd_job_complete(job, FALSE, "checked by test-log");
	migd_log_use_journal(fake_path);
	for (gint i = 0; i < 50; i++) {
		const gchar *argv[] = {"journalctl", "--no-pager", "-o", "export", match, NULL};

		g_clear_pointer(&out, g_free);
		if (!g_spawn_sync(NULL, (gchar **)argv, NULL,
				  G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
				  &out, NULL, NULL, NULL))
			break;
		if (strstr(out, "MESSAGE_ID=" MIGD_LOG_MESSAGE_ID_JOB_FAILED) != NULL)
			break;
		g_usleep(100 * 1000);
	}
	/* journalctl may not be allowed to read the system journal: nothing to check then */
	MIGD_TEST_SKIP_IF(out == NULL ||
			      strstr(out, "MESSAGE_ID=" MIGD_LOG_MESSAGE_ID_JOB_FAILED) == NULL,
			  "journalctl does not show the record");
	assert_non_null(strstr(out, "PRIORITY=3\n"));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_job_failed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_job_completed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_job_rolled_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_recovery_failed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plain_levels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plain_text_unchanged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_journal_stream_detected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dbus_caller, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_journald, setup, teardown),
	};

	/* GLib takes one writer per process: the plain-text checks run in children of their own */
	if (argc == 2 && strcmp(argv[1], "child-writer") == 0)
		child_with_writer();
	else if (argc == 2 && strcmp(argv[1], "child-glib") == 0)
		child_glib_default();
	else if (argc == 2 && strcmp(argv[1], "child-journal-stream") == 0)
		child_journal_stream();
	if (argc == 2)
		return 0;
	self_exe = g_file_read_link("/proc/self/exe", NULL);
	assert_non_null(self_exe);
	/* the tests log through the writer, as the daemon does */
	migd_log_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
