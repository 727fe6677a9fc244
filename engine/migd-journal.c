/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdJournal: jobs in flight on disk, so a crash never strands a device.
 */
#include "config.h"

#include "migd-journal.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "migd-error.h"

#define MIGD_JOURNAL_GROUP   "job"
#define MIGD_JOURNAL_SUFFIX  ".job"
#define MIGD_JOURNAL_VERSION 1

struct _MigdJournal {
	gchar *dir;
};

MigdJournal *
migd_journal_new(const gchar *dir, GError **error)
{
	MigdJournal *self;

	if (g_mkdir_with_parents(dir, 0700) != 0) {
		migd_set_errno_error(error, errno, "state directory %s", dir);
		return NULL;
	}
	self = g_new0(MigdJournal, 1);
	self->dir = g_strdup(dir);
	return self;
}

void
migd_journal_free(MigdJournal *self)
{
	if (self == NULL)
		return;
	g_free(self->dir);
	g_free(self);
}

const gchar *
migd_journal_get_dir(MigdJournal *self)
{
	return self->dir;
}

static gchar *
migd_journal_path(MigdJournal *self, MigdJob *job)
{
	/* job ids are "1", "in2": safe as file names */
	g_autofree gchar *name = g_strdup_printf(
	    "%s-%s%s", migd_job_get_role(job) == MIGD_JOB_ROLE_SOURCE ? "source" : "destination",
	    migd_job_get_id(job), MIGD_JOURNAL_SUFFIX);
	return g_build_filename(self->dir, name, NULL);
}

gboolean
migd_journal_begin(MigdJournal *self, MigdJob *job, GPtrArray *devices, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GPtrArray) names = g_ptr_array_new();
	g_autofree gchar *path = migd_journal_path(self, job);
	g_autofree gchar *data = NULL;
	gsize len = 0;

	for (guint i = 0; i < devices->len; i++)
		g_ptr_array_add(names,
				(gpointer)migd_device_get_name(g_ptr_array_index(devices, i)));
	g_key_file_set_integer(kf, MIGD_JOURNAL_GROUP, "version", MIGD_JOURNAL_VERSION);
	g_key_file_set_string(kf, MIGD_JOURNAL_GROUP, "role",
			      migd_job_get_role(job) == MIGD_JOB_ROLE_SOURCE ? "source"
									     : "destination");
	g_key_file_set_string(kf, MIGD_JOURNAL_GROUP, "id", migd_job_get_id(job));
	g_key_file_set_int64(kf, MIGD_JOURNAL_GROUP, "pid", getpid());
	g_key_file_set_int64(kf, MIGD_JOURNAL_GROUP, "started", g_get_real_time() / G_USEC_PER_SEC);
	g_key_file_set_string_list(kf, MIGD_JOURNAL_GROUP, "devices",
				   (const gchar *const *)names->pdata, names->len);
	data = g_key_file_to_data(kf, &len, NULL);
	/* on disk before any device moves: a crash right after must find it */
	if (!g_file_set_contents_full(path, data, len,
				      G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
				      0600, error)) {
		g_prefix_error(error, "job journal: ");
		return FALSE;
	}
	return TRUE;
}

void
migd_journal_end(MigdJournal *self, MigdJob *job)
{
	g_autofree gchar *path = migd_journal_path(self, job);

	if (g_unlink(path) != 0 && errno != ENOENT)
		g_warning("job journal: cannot remove %s: %s", path, g_strerror(errno));
}

static MigdDevice *
migd_journal_find_device(GPtrArray *devices, const gchar *name)
{
	for (guint i = 0; i < devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(devices, i);
		if (g_strcmp0(migd_device_get_name(device), name) == 0)
			return device;
	}
	return NULL;
}

static void
migd_journal_set_aside(const gchar *path, const gchar *why)
{
	g_autofree gchar *bad = g_strdup_printf("%s.bad", path);

	g_warning("job journal: %s: %s; moved aside to %s", path, why, bad);
	if (g_rename(path, bad) != 0)
		g_warning("job journal: cannot move %s aside: %s", path, g_strerror(errno));
}

static void
migd_journal_recover_record(const gchar *path, GPtrArray *devices, MigdJournalRecovery *result)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *role = NULL;
	g_autofree gchar *id = NULL;
	g_auto(GStrv) names = NULL;
	gboolean source;

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &error) ||
	    g_key_file_get_integer(kf, MIGD_JOURNAL_GROUP, "version", NULL) !=
		MIGD_JOURNAL_VERSION ||
	    (role = g_key_file_get_string(kf, MIGD_JOURNAL_GROUP, "role", NULL)) == NULL ||
	    (g_strcmp0(role, "source") != 0 && g_strcmp0(role, "destination") != 0) ||
	    (names = g_key_file_get_string_list(kf, MIGD_JOURNAL_GROUP, "devices", NULL, NULL)) ==
		NULL) {
		migd_journal_set_aside(path, error != NULL ? error->message
							   : "not a job record of this version");
		return;
	}
	id = g_key_file_get_string(kf, MIGD_JOURNAL_GROUP, "id", NULL);
	source = g_strcmp0(role, "source") == 0;
	result->jobs++;
	g_warning("a previous run left %s job %s unfinished: bringing its devices back", role,
		  id != NULL ? id : "?");
	for (guint i = 0; names[i] != NULL; i++) {
		MigdDevice *device = migd_journal_find_device(devices, names[i]);
		g_auto(MigdRecoveryReport) report = {0};
		g_autoptr(GError) error_dev = NULL;
		gboolean ok;

		if (device == NULL) {
			g_warning("job journal: device %s of job %s is not managed by this run",
				  names[i], id != NULL ? id : "?");
			result->unknown++;
			continue;
		}
		/*
		 * a destination's device that left RUNNING holds a half-loaded state: reset
		 * (or reopen, where its plugin says so), as a failed job does. One still
		 * RUNNING was never touched, or a guest already runs on it: leave it be.
		 */
		if (!source) {
			MigdState now = MIGD_STATE_ERROR;
			if (migd_device_get_state(device, &now, NULL) &&
			    now == MIGD_STATE_RUNNING) {
				g_message("%s: RUNNING, left alone (the unfinished job %s had not "
					  "touched it)",
					  names[i], id != NULL ? id : "?");
				continue;
			}
		}
		ok = migd_device_recover(device, source ? MIGD_STATE_RUNNING : MIGD_STATE_ERROR,
					 &report, &error_dev);
		if (ok) {
			g_message("%s: back to RUNNING after the unfinished job %s (%s)", names[i],
				  id != NULL ? id : "?",
				  report.detail != NULL ? report.detail : "already RUNNING");
			result->recovered++;
		} else {
			g_critical(
			    "%s: left by the unfinished job %s and CANNOT be brought back: %s",
			    names[i], id != NULL ? id : "?", error_dev->message);
			result->failed++;
		}
	}
	if (g_unlink(path) != 0)
		g_warning("job journal: cannot remove %s: %s", path, g_strerror(errno));
}

void
migd_journal_recover(MigdJournal *self, GPtrArray *devices, MigdJournalRecovery *result)
{
	g_autoptr(GDir) dir = g_dir_open(self->dir, 0, NULL);
	const gchar *name;

	memset(result, 0, sizeof(*result));
	if (dir == NULL)
		return;
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = NULL;
		if (!g_str_has_suffix(name, MIGD_JOURNAL_SUFFIX))
			continue;
		path = g_build_filename(self->dir, name, NULL);
		migd_journal_recover_record(path, devices, result);
	}
}
