/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migctl: following a job until it ends (watch, migrate): the progress line or bar, the
 * outcome, Ctrl-C.
 */
#include "config.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "migd-dirty-bitmap-file.h"
#include "migd-dirty-ranges.h"
#include "migctl.h"
#include "migctl-help.h"
#include "migctl-util.h"

/* ---- watch ---- */

/*
 * "completed", "failed", "cancelled" or "rolled-back": how the job ended (the
 * daemon's Outcome), or "" while it runs
 */
const gchar *
migctl_job_outcome(MigdDbusJob *job)
{
	const gchar *outcome = migd_dbus_job_get_outcome(job);
	const gchar *phase = migd_dbus_job_get_phase(job);

	if (outcome != NULL)
		return outcome;
	/* a daemon older than the Outcome property: its cancel's message tells */
	if (migctl_is_cancelled(phase, migd_dbus_job_get_message(job)))
		return "cancelled";
	if (g_strcmp0(phase, "completed") == 0 || g_strcmp0(phase, "failed") == 0)
		return phase;
	return "";
}

gchar *
migctl_size(guint64 bytes)
{
	return g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);
}

void
migctl_json_job_fields(JsonBuilder *builder, MigctlWatch *watch)
{
	MigdDbusJob *job = watch->job;
	const struct {
		const gchar *key;
		guint64 value;
	} numbers[] = {
	    {"bytes", migd_dbus_job_get_bytes(job)},
	    {"rate", migd_dbus_job_get_rate(job)},
	    {"downtime_us", migd_dbus_job_get_downtime(job)},
	    {"expected_downtime_us", migd_dbus_job_get_expected_downtime(job)},
	    {"precopy_rounds", migd_dbus_job_get_precopy_rounds(job)},
	    {"dirty_pages", migd_dbus_job_get_dirty_pages(job)},
	    {"dirty_wire_bytes", migd_dbus_job_get_dirty_wire_bytes(job)},
	    {"devices", migd_dbus_job_get_devices(job)},
	};
	const gchar *const *names = migd_dbus_job_get_device_names(job);

	json_builder_set_member_name(builder, "job");
	migctl_json_string(builder, watch->path);
	migctl_json_job_id(builder, watch->path);
	json_builder_set_member_name(builder, "outcome");
	migctl_json_string(builder,
			   watch->outcome != NULL ? watch->outcome : migctl_job_outcome(job));
	json_builder_set_member_name(builder, "role");
	migctl_json_string(builder, migd_dbus_job_get_role(job));
	json_builder_set_member_name(builder, "phase");
	migctl_json_string(builder, migd_dbus_job_get_phase(job));
	json_builder_set_member_name(builder, "progress");
	migctl_json_double(builder, migd_dbus_job_get_progress(job));
	for (guint i = 0; i < G_N_ELEMENTS(numbers); i++)
		migctl_json_member_uint(builder, numbers[i].key, numbers[i].value);
	/* VM coordination; a daemon older than it has none of these: the defaults */
	json_builder_set_member_name(builder, "converged");
	json_builder_add_boolean_value(builder, migd_dbus_job_get_converged(job));
	json_builder_set_member_name(builder, "rolled_back");
	json_builder_add_boolean_value(builder, migd_dbus_job_get_rolled_back(job));
	json_builder_set_member_name(builder, "migration_id");
	migctl_json_string(builder, migd_dbus_job_get_migration_id(job));
	json_builder_set_member_name(builder, "switchover_mode");
	migctl_json_string(builder, migd_dbus_job_get_switchover_mode(job) != NULL
					? migd_dbus_job_get_switchover_mode(job)
					: "auto");
	json_builder_set_member_name(builder, "start_mode");
	migctl_json_string(builder, migd_dbus_job_get_start_mode(job) != NULL
					? migd_dbus_job_get_start_mode(job)
					: "auto");
	json_builder_set_member_name(builder, "device_names");
	json_builder_begin_array(builder);
	for (guint i = 0; names != NULL && names[i] != NULL; i++)
		migctl_json_string(builder, names[i]);
	json_builder_end_array(builder);
}

/*
 * "[####      ] TAIL" in at most @columns - 1 characters, so that the line never
 * wraps (a wrapped line breaks \r): the bar shrinks first, then the first of
 * @tails (most to least detailed) that fits is taken, then the last one is cut
 */
static gchar *
migctl_bar_line(gdouble progress, const gchar *const *tails, guint columns)
{
	const gchar *tail = NULL;
	glong room;
	guint width;
	g_autofree gchar *bar = NULL;
	g_autofree gchar *line = NULL;
	glong max = (glong)columns - 1;

	for (guint i = 0; tails[i] != NULL; i++) {
		tail = tails[i];
		if ((glong)columns - 1 - 2 - MIGCTL_BAR_MIN >= g_utf8_strlen(tail, -1))
			break;
	}
	room = (glong)columns - 1 - 2 - g_utf8_strlen(tail, -1);
	width = (guint)CLAMP(room, MIGCTL_BAR_MIN, MIGCTL_BAR_WIDTH);
	bar = g_strnfill(width, ' ');

	memset(bar, '#', (gsize)(CLAMP(progress, 0.0, 1.0) * width));
	line = g_strdup_printf("[%s]%s", bar, tail);
	if (max < 1)
		max = 1;
	if (g_utf8_strlen(line, -1) > max)
		*g_utf8_offset_to_pointer(line, max) = '\0';
	return g_steal_pointer(&line);
}

static void
migctl_watch_progress(MigctlWatch *watch)
{
	MigdDbusJob *job = watch->job;
	const gchar *phase = migd_dbus_job_get_phase(job);
	gdouble progress = CLAMP(migd_dbus_job_get_progress(job), 0.0, 1.0);
	g_autofree gchar *bytes = migctl_size(migd_dbus_job_get_bytes(job));
	g_autofree gchar *rate = migctl_size(migd_dbus_job_get_rate(job));
	g_autofree gchar *eta =
	    migctl_eta(progress, migd_dbus_job_get_bytes(job), migd_dbus_job_get_rate(job));
	g_autofree gchar *rounds = migctl_count(migd_dbus_job_get_precopy_rounds(job),
						"pre-copy round", "pre-copy rounds");
	gboolean phase_changed = g_strcmp0(phase, watch->last_phase) != 0;

	if (phase == NULL)
		return;
	if (watch->options->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "event");
		migctl_json_string(builder, "progress");
		migctl_json_job_fields(builder, watch);
		json_builder_end_object(builder);
		migctl_json_print(builder);
	} else if (watch->tty) {
		const gchar *converged = migd_dbus_job_get_converged(job) ? ", converged" : "";
		g_autofree gchar *full =
		    g_strdup_printf(" %3.0f%% %s %s %s/s ETA %s, %s%s", progress * 100.0, phase,
				    bytes, rate, eta, rounds, converged);
		g_autofree gchar *mid = g_strdup_printf(
		    " %3.0f%% %s %s/s ETA %s%s", progress * 100.0, phase, rate, eta, converged);
		g_autofree gchar *tiny = g_strdup_printf(" %3.0f%% ETA %s", progress * 100.0, eta);
		const gchar *const tails[] = {full, mid, tiny, NULL};
		g_autofree gchar *line = migctl_bar_line(progress, tails, migctl_term_columns());

		g_print("\r\033[K%s", line);
		fflush(stdout);
		watch->bar_drawn = TRUE;
	} else if (phase_changed ||
		   g_get_monotonic_time() - watch->last_line >= MIGCTL_LINE_INTERVAL) {
		g_print("%s: %.0f%%, %s, %s/s, ETA %s, %s%s\n", phase, progress * 100.0, bytes,
			rate, eta, rounds, migd_dbus_job_get_converged(job) ? ", converged" : "");
		fflush(stdout);
		watch->last_line = g_get_monotonic_time();
	}
	g_free(watch->last_phase);
	watch->last_phase = g_strdup(phase);
}

static void
migctl_watch_finish(MigctlWatch *watch, gboolean success, const gchar *message)
{
	MigdDbusJob *job = watch->job;

	if (watch->done)
		return;
	watch->done = TRUE;
	/* Completed follows the final properties, Outcome included */
	watch->outcome = migctl_job_outcome(job);
	if (watch->outcome[0] == '\0')
		watch->outcome = success ? "completed" : "failed";
	watch->exit_status = success ? MIGCTL_EXIT_OK : MIGCTL_EXIT_FAIL;
	if (watch->cancel_timeout_id != 0) {
		g_source_remove(watch->cancel_timeout_id);
		watch->cancel_timeout_id = 0;
	}
	if (watch->options->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "event");
		migctl_json_string(builder, "completed");
		json_builder_set_member_name(builder, "success");
		json_builder_add_boolean_value(builder, success);
		json_builder_set_member_name(builder, "message");
		migctl_json_string(builder, message);
		migctl_json_job_fields(builder, watch);
		json_builder_end_object(builder);
		migctl_json_print(builder);
	} else {
		g_autofree gchar *bytes = migctl_size(migd_dbus_job_get_bytes(job));
		g_autofree gchar *devices =
		    migctl_count(migd_dbus_job_get_devices(job), "device", "devices");
		g_autofree gchar *rounds = migctl_count(migd_dbus_job_get_precopy_rounds(job),
							"pre-copy round", "pre-copy rounds");
		if (watch->bar_drawn)
			g_print("\n");
		if (success) {
			g_print("Migration completed: %s, %s, %s, downtime %.1f ms\n", devices,
				bytes, rounds, migd_dbus_job_get_downtime(job) / 1000.0);
		} else if (g_strcmp0(watch->outcome, "cancelled") == 0) {
			g_print("Migration cancelled: %s\n", message != NULL ? message : "");
		} else {
			g_print("Migration failed%s: %s\n",
				migd_dbus_job_get_rolled_back(job) ? " (rolled back)" : "",
				message != NULL ? message : "");
		}
	}
	g_main_loop_quit(watch->loop);
}

static void
migctl_watch_properties_changed_cb(GDBusProxy *proxy, GVariant *changed,
				   const gchar *const *invalidated, gpointer user_data)
{
	MigctlWatch *watch = user_data;
	if (!watch->done)
		migctl_watch_progress(watch);
}

static void
migctl_watch_completed_cb(MigdDbusJob *job, gboolean success, const gchar *message,
			  gpointer user_data)
{
	migctl_watch_finish(user_data, success, message);
}

static void
migctl_watch_owner_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	MigctlWatch *watch = user_data;
	g_autofree gchar *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(object));

	if (owner == NULL && !watch->done)
		migctl_watch_finish(watch, FALSE, "the daemon went away");
}

gboolean
migctl_phase_is_final(const gchar *phase)
{
	return g_strcmp0(phase, "completed") == 0 || g_strcmp0(phase, "failed") == 0;
}

static gboolean
migctl_watch_cancel_timeout_cb(gpointer user_data)
{
	MigctlWatch *watch = user_data;

	watch->cancel_timeout_id = 0;
	migctl_watch_finish(watch, FALSE,
			    "the job did not end within " G_STRINGIFY(
				MIGCTL_CANCEL_WAIT_S) " s of the cancel: see 'vfio-migctl jobs'");
	return G_SOURCE_REMOVE;
}

static void
migctl_watch_cancel_done_cb(GObject *object, GAsyncResult *result, gpointer user_data)
{
	MigctlWatch *watch = user_data;
	g_autoptr(GError) error = NULL;

	/* a job that ended meanwhile refuses the cancel: its Completed tells the outcome */
	if (!migd_dbus_job_call_cancel_finish(MIGD_DBUS_JOB(object), result, &error) &&
	    !watch->done)
		g_printerr("vfio-migctl: cancel: %s\n", error->message);
}

/* SIGINT, SIGTERM during migrate: cancel the job, then wait (bounded) for its end */
gboolean
migctl_watch_signal_cb(gpointer user_data)
{
	MigctlWatch *watch = user_data;

	if (watch->done || watch->cancelling)
		return G_SOURCE_CONTINUE;
	watch->cancelling = TRUE;
	if (watch->bar_drawn)
		g_print("\n");
	watch->bar_drawn = FALSE;
	g_printerr("vfio-migctl: interrupted: cancelling job %s (the source devices keep "
		   "running; 'migrate --detach' leaves a migration running)\n",
		   migctl_job_number(watch->path));
	migd_dbus_job_call_cancel(watch->job, NULL, migctl_watch_cancel_done_cb, watch);
	watch->cancel_timeout_id =
	    g_timeout_add_seconds(MIGCTL_CANCEL_WAIT_S, migctl_watch_cancel_timeout_cb, watch);
	return G_SOURCE_CONTINUE;
}

gint
migctl_watch(const MigctlOptions *options, const gchar *path)
{
	return migctl_watch_full(options, path, NULL);
}

gint
migctl_watch_full(const MigctlOptions *options, const gchar *path, MigctlInterrupt *interrupt)
{
	gboolean migrating = interrupt != NULL;
	g_autoptr(MigdDbusJob) job = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autofree gchar *owner = NULL;
	g_auto(GStrv) names = NULL;
	MigctlWatch watch = {0};
	const gchar *phase;

	/* signals are subscribed before the properties are read: no update is lost */
	job = migd_dbus_job_proxy_new_sync(options->connection, G_DBUS_PROXY_FLAGS_NONE,
					   options->bus_name, path, NULL, &error);
	if (job == NULL)
		return migctl_fail(options, error);
	owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(job));
	names = g_dbus_proxy_get_cached_property_names(G_DBUS_PROXY(job));
	if (owner == NULL) {
		g_set_error(&error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN, "%s has no owner",
			    options->bus_name);
		return migctl_fail(options, error);
	}
	if (names == NULL || names[0] == NULL) {
		g_set_error(&error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT, "no object at %s",
			    path);
		return migctl_fail(options, error);
	}

	watch.options = options;
	watch.path = path;
	watch.job = job;
	watch.loop = loop;
	watch.tty = isatty(STDOUT_FILENO) && !options->json;
	watch.exit_status = MIGCTL_EXIT_FAIL;

	phase = migd_dbus_job_get_phase(job);
	if (migctl_phase_is_final(phase)) {
		migctl_watch_finish(&watch, g_strcmp0(phase, "completed") == 0,
				    migd_dbus_job_get_message(job));
		return watch.exit_status;
	}
	if (!options->json && !watch.tty && !migrating)
		g_print("Job %s (%s)\n", migctl_job_number(path), path);
	g_signal_connect(job, "g-properties-changed",
			 G_CALLBACK(migctl_watch_properties_changed_cb), &watch);
	g_signal_connect(job, "completed", G_CALLBACK(migctl_watch_completed_cb), &watch);
	g_signal_connect(job, "notify::g-name-owner", G_CALLBACK(migctl_watch_owner_cb), &watch);
	migctl_watch_progress(&watch);
	if (interrupt != NULL) {
		interrupt->watch = &watch;
		if (interrupt->pending)
			migctl_watch_signal_cb(&watch);
	}
	g_main_loop_run(loop);
	if (interrupt != NULL)
		interrupt->watch = NULL;
	if (watch.cancel_timeout_id != 0)
		g_source_remove(watch.cancel_timeout_id);
	g_signal_handlers_disconnect_by_data(job, &watch);
	g_free(watch.last_phase);
	return watch.exit_status;
}
