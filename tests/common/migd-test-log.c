/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "migd-test-log.h"

typedef struct {
	MigdTestLogLevel level;
	gchar *message;
} MigdTestLogEntry;

static MigdTestLogFlags migd_test_log_flags;
/* engines log from their worker threads too */
static GMutex migd_test_log_mutex;
static GArray *migd_test_log_entries; /* of MigdTestLogEntry; NULL when not capturing */

static void
migd_test_log_entry_clear(gpointer data)
{
	g_free(((MigdTestLogEntry *)data)->message);
}

static GLogWriterOutput
migd_test_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
		     gpointer user_data)
{
	if ((migd_test_log_flags & MIGD_TEST_LOG_CRITICALS) && (level & G_LOG_LEVEL_CRITICAL))
		return g_log_writer_standard_streams(level, fields, n_fields, user_data);
	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "MESSAGE") != 0)
			continue;
		g_mutex_lock(&migd_test_log_mutex);
		if (migd_test_log_entries != NULL) {
			MigdTestLogEntry entry = {
			    .level = (level & G_LOG_LEVEL_WARNING) ? MIGD_TEST_LOG_WARNING
								   : MIGD_TEST_LOG_OTHER,
			    .message = g_strdup(fields[i].value),
			};
			g_array_append_val(migd_test_log_entries, entry);
		}
		g_mutex_unlock(&migd_test_log_mutex);
		if ((migd_test_log_flags & MIGD_TEST_LOG_ECHO) &&
		    (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE)))
			fprintf(stderr, "# log: %s\n", (const gchar *)fields[i].value);
	}
	return G_LOG_WRITER_HANDLED;
}

void
migd_test_log_init(MigdTestLogFlags flags)
{
	migd_test_log_flags = flags;
	g_log_set_writer_func(migd_test_log_writer, NULL, NULL);
}

int
migd_test_log_setup(void **state)
{
	g_mutex_lock(&migd_test_log_mutex);
	if (migd_test_log_entries == NULL) {
		migd_test_log_entries = g_array_new(FALSE, FALSE, sizeof(MigdTestLogEntry));
		g_array_set_clear_func(migd_test_log_entries, migd_test_log_entry_clear);
	}
	g_array_set_size(migd_test_log_entries, 0);
	g_mutex_unlock(&migd_test_log_mutex);
	return 0;
}

int
migd_test_log_teardown(void **state)
{
	g_mutex_lock(&migd_test_log_mutex);
	g_clear_pointer(&migd_test_log_entries, g_array_unref);
	g_mutex_unlock(&migd_test_log_mutex);
	return 0;
}

void
migd_test_log_clear(void)
{
	g_mutex_lock(&migd_test_log_mutex);
	if (migd_test_log_entries != NULL)
		g_array_set_size(migd_test_log_entries, 0);
	g_mutex_unlock(&migd_test_log_mutex);
}

static gboolean
migd_test_log_entry_matches(const MigdTestLogEntry *entry, const gchar *needle, va_list args)
{
	for (const gchar *s = needle; s != NULL; s = va_arg(args, const gchar *)) {
		if (strstr(entry->message, s) == NULL)
			return FALSE;
	}
	return TRUE;
}

gboolean
migd_test_log_has(MigdTestLogLevel level, const gchar *needle, ...)
{
	gboolean found = FALSE;

	g_mutex_lock(&migd_test_log_mutex);
	for (guint i = 0; !found && migd_test_log_entries != NULL && i < migd_test_log_entries->len;
	     i++) {
		const MigdTestLogEntry *entry =
		    &g_array_index(migd_test_log_entries, MigdTestLogEntry, i);
		va_list args;
		if (entry->level != level)
			continue;
		va_start(args, needle);
		found = migd_test_log_entry_matches(entry, needle, args);
		va_end(args);
	}
	g_mutex_unlock(&migd_test_log_mutex);
	return found;
}

guint
migd_test_log_count(MigdTestLogLevel level)
{
	guint n = 0;

	g_mutex_lock(&migd_test_log_mutex);
	for (guint i = 0; migd_test_log_entries != NULL && i < migd_test_log_entries->len; i++)
		n += g_array_index(migd_test_log_entries, MigdTestLogEntry, i).level == level;
	g_mutex_unlock(&migd_test_log_mutex);
	return n;
}
