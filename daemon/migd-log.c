/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "migd-log.h"

/* engines log from their worker threads: the socket and its path are shared */
static GMutex migd_log_mutex;
static gchar *migd_log_journal_path; /* NULL: plain text */
static gint migd_log_journal_fd = -1;
static gsize migd_log_installed;

static const struct {
	const gchar *event;
	const gchar *message_id;
	gint priority;
} migd_log_events[] = {
    {MIGD_LOG_EVENT_JOB_STARTED, MIGD_LOG_MESSAGE_ID_JOB_STARTED, LOG_INFO},
    {MIGD_LOG_EVENT_JOB_COMPLETED, MIGD_LOG_MESSAGE_ID_JOB_COMPLETED, LOG_INFO},
    {MIGD_LOG_EVENT_JOB_FAILED, MIGD_LOG_MESSAGE_ID_JOB_FAILED, LOG_ERR},
    {MIGD_LOG_EVENT_JOB_ROLLED_BACK, MIGD_LOG_MESSAGE_ID_JOB_ROLLED_BACK, LOG_ERR},
    {MIGD_LOG_EVENT_DEVICE_RECOVERY_FAILED, MIGD_LOG_MESSAGE_ID_DEVICE_RECOVERY_FAILED, LOG_ERR},
};

const gchar *
migd_log_event_message_id(const gchar *event)
{
	for (gsize i = 0; event != NULL && i < G_N_ELEMENTS(migd_log_events); i++)
		if (strcmp(migd_log_events[i].event, event) == 0)
			return migd_log_events[i].message_id;
	return NULL;
}

static gint
migd_log_level_priority(GLogLevelFlags level)
{
	if (level & G_LOG_LEVEL_ERROR)
		return LOG_CRIT; /* g_error aborts: never on daemon paths */
	if (level & G_LOG_LEVEL_CRITICAL)
		return LOG_ERR;
	if (level & G_LOG_LEVEL_WARNING)
		return LOG_WARNING;
	if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
		return LOG_INFO;
	return LOG_DEBUG;
}

/* journald's rule: A-Z, 0-9 and _, not starting with _ (those are trusted fields) */
static gboolean
migd_log_field_name_ok(const gchar *key)
{
	if (key == NULL || key[0] == '\0' || key[0] == '_' || strlen(key) > 64)
		return FALSE;
	for (const gchar *p = key; *p != '\0'; p++)
		if (!g_ascii_isupper(*p) && !g_ascii_isdigit(*p) && *p != '_')
			return FALSE;
	return TRUE;
}

/* one field in the native protocol: KEY=VALUE\n, or KEY\n<le64 size>VALUE\n when it has a \n */
static void
migd_log_append_field(GByteArray *buf, const gchar *key, gconstpointer value, gssize length)
{
	gsize size = length < 0 ? strlen(value) : (gsize)length;

	g_byte_array_append(buf, (const guint8 *)key, strlen(key));
	if (memchr(value, '\n', size) == NULL) {
		g_byte_array_append(buf, (const guint8 *)"=", 1);
	} else {
		guint64 le = GUINT64_TO_LE((guint64)size);

		g_byte_array_append(buf, (const guint8 *)"\n", 1);
		g_byte_array_append(buf, (const guint8 *)&le, sizeof(le));
	}
	g_byte_array_append(buf, value, size);
	g_byte_array_append(buf, (const guint8 *)"\n", 1);
}

static gboolean
migd_log_journal_send(const GByteArray *buf)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	gboolean sent = FALSE;

	g_mutex_lock(&migd_log_mutex);
	if (migd_log_journal_path != NULL &&
	    strlen(migd_log_journal_path) < sizeof(addr.sun_path)) {
		strcpy(addr.sun_path, migd_log_journal_path);
		if (migd_log_journal_fd < 0)
			migd_log_journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (migd_log_journal_fd >= 0) {
			ssize_t n;

			do
				n = sendto(migd_log_journal_fd, buf->data, buf->len, MSG_NOSIGNAL,
					   (struct sockaddr *)&addr, sizeof(addr));
			while (n < 0 && errno == EINTR);
			sent = n == (ssize_t)buf->len;
		}
	}
	g_mutex_unlock(&migd_log_mutex);
	return sent;
}

static GLogWriterOutput
migd_log_write_journal(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
		       gpointer user_data)
{
	g_autoptr(GByteArray) buf = g_byte_array_sized_new(256);
	const gchar *domain = NULL;
	const gchar *event = NULL;
	gboolean has_identifier = FALSE;
	gboolean caller = FALSE;
	gint priority = migd_log_level_priority(level);
	gchar priority_str[8];

	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0)
			domain = fields[i].value;
		else if (g_strcmp0(fields[i].key, "VFIO_MIGD_EVENT") == 0 && fields[i].length < 0)
			event = fields[i].value;
		else if (g_strcmp0(fields[i].key, "VFIO_MIGD_CALLER") == 0)
			caller = TRUE;
	}
	/* debug and info only with G_MESSAGES_DEBUG, as GLib's own writer; job events and what a
	 * D-Bus caller did (the audit trail) always */
	if (migd_log_event_message_id(event) == NULL && !caller &&
	    g_log_writer_default_would_drop(level, domain))
		return G_LOG_WRITER_HANDLED;

	for (gsize i = 0; i < G_N_ELEMENTS(migd_log_events); i++) {
		if (event != NULL && strcmp(migd_log_events[i].event, event) == 0) {
			priority = migd_log_events[i].priority;
			migd_log_append_field(buf, "MESSAGE_ID", migd_log_events[i].message_id, -1);
		}
	}
	g_snprintf(priority_str, sizeof(priority_str), "%d", priority);
	migd_log_append_field(buf, "PRIORITY", priority_str, -1);
	for (gsize i = 0; i < n_fields; i++) {
		/* ours wins; GLib's old API sends its own PRIORITY */
		if (!migd_log_field_name_ok(fields[i].key) ||
		    strcmp(fields[i].key, "PRIORITY") == 0 ||
		    strcmp(fields[i].key, "MESSAGE_ID") == 0 || fields[i].value == NULL)
			continue;
		has_identifier |= strcmp(fields[i].key, "SYSLOG_IDENTIFIER") == 0;
		migd_log_append_field(buf, fields[i].key, fields[i].value, fields[i].length);
	}
	if (!has_identifier)
		migd_log_append_field(buf, "SYSLOG_IDENTIFIER",
				      g_get_prgname() != NULL ? g_get_prgname() : "vfio-migd", -1);

	/* a record too large for a datagram, or no journald: stderr is the journal's stream */
	if (!migd_log_journal_send(buf))
		return g_log_writer_standard_streams(level, fields, n_fields, user_data);
	return G_LOG_WRITER_HANDLED;
}

static gboolean
migd_log_journal_active(void)
{
	gboolean journal;

	g_mutex_lock(&migd_log_mutex);
	journal = migd_log_journal_path != NULL;
	g_mutex_unlock(&migd_log_mutex);
	return journal;
}

GLogWriterOutput
migd_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if (!migd_log_journal_active())
		return g_log_writer_default(level, fields, n_fields, user_data);
	return migd_log_write_journal(level, fields, n_fields, user_data);
}

void
migd_log_use_journal(const gchar *journal_socket)
{
	g_mutex_lock(&migd_log_mutex);
	g_free(migd_log_journal_path);
	migd_log_journal_path = g_strdup(journal_socket);
	if (migd_log_journal_fd >= 0)
		close(migd_log_journal_fd);
	migd_log_journal_fd = -1;
	g_mutex_unlock(&migd_log_mutex);
}

gchar *
migd_log_dup_journal(void)
{
	gchar *path;

	g_mutex_lock(&migd_log_mutex);
	path = g_strdup(migd_log_journal_path);
	g_mutex_unlock(&migd_log_mutex);
	return path;
}

/*
 * systemd's documented test: JOURNAL_STREAM holds the device and inode of the stream it
 * connected stderr to. GLib 2.74's g_log_writer_is_journald() looks at the socket's peer name
 * only; either will do.
 */
static gboolean
migd_log_stderr_is_journal(void)
{
	const gchar *stream = g_getenv("JOURNAL_STREAM");
	guint64 dev, ino;
	struct stat st;

	if (stream != NULL &&
	    sscanf(stream, "%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 && (guint64)st.st_dev == dev &&
	    (guint64)st.st_ino == ino)
		return TRUE;
	return g_log_writer_is_journald(STDERR_FILENO);
}

void
migd_log_install(void)
{
	migd_log_use_journal(migd_log_stderr_is_journal() ? MIGD_LOG_JOURNAL_SOCKET : NULL);
	/* GLib takes one writer per process, for good: a second call only looks at stderr again */
	if (g_once_init_enter(&migd_log_installed)) {
		g_log_set_writer_func(migd_log_writer, NULL, NULL);
		g_once_init_leave(&migd_log_installed, 1);
	}
}

/* ---- D-Bus callers by uid and pid ---- */

/* unique names are never reused on a bus: a cache entry cannot go stale, only pile up */
#define MIGD_LOG_CALLERS_MAX 256

typedef struct {
	gchar *uid; /* NULL: the bus could not tell */
	gchar *pid;
} MigdLogCredentials;

typedef struct {
	GLogLevelFlags level;
	gchar *sender;
	gchar *job;
	gchar *device;
	gchar *text;
} MigdLogCallerRecord;

static GHashTable *migd_log_callers; /* sender -> MigdLogCredentials; under migd_log_mutex */

static void
migd_log_credentials_free(gpointer data)
{
	MigdLogCredentials *creds = data;

	g_free(creds->uid);
	g_free(creds->pid);
	g_free(creds);
}

static void
migd_log_caller_record_free(MigdLogCallerRecord *record)
{
	g_free(record->sender);
	g_free(record->job);
	g_free(record->device);
	g_free(record->text);
	g_free(record);
}

static void
migd_log_caller_emit(MigdLogCallerRecord *record, const gchar *uid, const gchar *pid)
{
	g_autofree gchar *message = NULL;
	GLogField fields[7];
	gsize n = 0;

	if (uid != NULL && pid != NULL)
		message = g_strdup_printf("%s uid %s pid %s", record->text, uid, pid);
	else if (uid != NULL)
		message = g_strdup_printf("%s uid %s", record->text, uid);
	else
		message = g_strdup_printf("%s %s", record->text,
					  record->sender != NULL ? record->sender : "a peer");
	fields[n++] = (GLogField){"GLIB_DOMAIN", G_LOG_DOMAIN, -1};
	fields[n++] = (GLogField){"MESSAGE", message, -1};
	fields[n++] =
	    (GLogField){"VFIO_MIGD_CALLER", record->sender != NULL ? record->sender : "peer", -1};
	if (record->job != NULL)
		fields[n++] = (GLogField){"VFIO_MIGD_JOB", record->job, -1};
	if (record->device != NULL)
		fields[n++] = (GLogField){"VFIO_MIGD_DEVICE", record->device, -1};
	if (uid != NULL)
		fields[n++] = (GLogField){"VFIO_MIGD_CALLER_UID", uid, -1};
	if (pid != NULL)
		fields[n++] = (GLogField){"VFIO_MIGD_CALLER_PID", pid, -1};
	g_log_structured_array(record->level, fields, n);
}

static void
migd_log_caller_credentials_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	MigdLogCallerRecord *record = user_data;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) dict = NULL;
	MigdLogCredentials *creds = g_new0(MigdLogCredentials, 1);
	guint32 value;

	reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, NULL);
	if (reply != NULL) {
		g_variant_get(reply, "(@a{sv})", &dict);
		if (g_variant_lookup(dict, "UnixUserID", "u", &value))
			creds->uid = g_strdup_printf("%u", value);
		if (g_variant_lookup(dict, "ProcessID", "u", &value))
			creds->pid = g_strdup_printf("%u", value);
	}
	migd_log_caller_emit(record, creds->uid, creds->pid);
	g_mutex_lock(&migd_log_mutex);
	if (migd_log_callers == NULL)
		migd_log_callers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							 migd_log_credentials_free);
	if (g_hash_table_size(migd_log_callers) >= MIGD_LOG_CALLERS_MAX)
		g_hash_table_remove_all(migd_log_callers);
	g_hash_table_replace(migd_log_callers, g_strdup(record->sender), creds);
	g_mutex_unlock(&migd_log_mutex);
	migd_log_caller_record_free(record);
}

void
migd_log_caller(GDBusMethodInvocation *invocation, GLogLevelFlags level, const gchar *job,
		const gchar *device, const gchar *format, ...)
{
	GDBusConnection *connection = g_dbus_method_invocation_get_connection(invocation);
	MigdLogCallerRecord *record = g_new0(MigdLogCallerRecord, 1);
	MigdLogCredentials *cached;
	va_list args;

	/* in plain text, debug-only records cost no bus round trip unless someone reads them */
	if (!migd_log_journal_active() && g_log_writer_default_would_drop(level, G_LOG_DOMAIN)) {
		g_free(record);
		return;
	}
	va_start(args, format);
	record->text = g_strdup_vprintf(format, args);
	va_end(args);
	record->level = level;
	record->sender = g_strdup(g_dbus_method_invocation_get_sender(invocation));
	record->job = g_strdup(job);
	record->device = g_strdup(device);

	if (record->sender == NULL) {
		/* a peer-to-peer connection: the socket knows its peer */
		GCredentials *peer = g_dbus_connection_get_peer_credentials(connection);
		g_autofree gchar *uid = NULL;
		g_autofree gchar *pid = NULL;

		if (peer != NULL && g_credentials_get_unix_user(peer, NULL) != (uid_t)-1)
			uid = g_strdup_printf("%u", (guint)g_credentials_get_unix_user(peer, NULL));
		if (peer != NULL && g_credentials_get_unix_pid(peer, NULL) != -1)
			pid = g_strdup_printf("%d", (gint)g_credentials_get_unix_pid(peer, NULL));
		migd_log_caller_emit(record, uid, pid);
		migd_log_caller_record_free(record);
		return;
	}

	g_mutex_lock(&migd_log_mutex);
	cached =
	    migd_log_callers != NULL ? g_hash_table_lookup(migd_log_callers, record->sender) : NULL;
	if (cached != NULL) {
		g_autofree gchar *uid = g_strdup(cached->uid);
		g_autofree gchar *pid = g_strdup(cached->pid);

		g_mutex_unlock(&migd_log_mutex);
		migd_log_caller_emit(record, uid, pid);
		migd_log_caller_record_free(record);
		return;
	}
	g_mutex_unlock(&migd_log_mutex);
	g_dbus_connection_call(connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "GetConnectionCredentials",
			       g_variant_new("(s)", record->sender), G_VARIANT_TYPE("(a{sv})"),
			       G_DBUS_CALL_FLAGS_NONE, -1, NULL, migd_log_caller_credentials_cb,
			       record);
}
