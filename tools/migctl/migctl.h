/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What vfio-migctl's files share: the options, the exit codes, JSON output
 * (migctl-json.c), following a job (migctl-watch.c), the VMM's controls
 * (migctl-vmm.c) and the few helpers of vfio-migctl.c they call.
 */
#pragma once

#include <gio/gunixfdlist.h>
#include <json-glib/json-glib.h>

#include "migd-dbus-generated.h"

#define MIGCTL_OBJECT_PATH   "/org/vfiomigd/Migd1"
#define MIGCTL_BUS_NAME	     "org.vfiomigd.Migd1"
#define MIGCTL_BAR_WIDTH     30 /* at most: less on a narrow terminal */
#define MIGCTL_BAR_MIN	     10
#define MIGCTL_CANCEL_WAIT_S 30
#define MIGCTL_LINE_INTERVAL G_USEC_PER_SEC /* plain progress lines: at most one a second */
#define MIGCTL_EXIT_OK	     0
#define MIGCTL_EXIT_FAIL     1
#define MIGCTL_EXIT_USAGE    2

typedef struct {
	/* global */
	gboolean session;
	gchar *bus_name;
	gboolean json;
	gboolean version;
	/* transport */
	gboolean plain;
	gboolean insecure_plain_tcp;
	gchar **allowed_uids;
	gchar *cert;
	gchar *key;
	gchar *ca;
	gchar *peer_name;
	/* migrate */
	gchar **devices;
	guint32 downtime_ms; /* 0: not given, the daemon's default */
	guint32 max_rounds;
	guint32 timeout_s;
	gboolean no_wait;
	gchar *switchover;	    /* migrate: "auto" or "manual" */
	gchar *migration_id;	    /* migrate: the VM migration's id */
	guint32 handover_timeout_s; /* migrate; 0: not given */
	/* listen, expect */
	gchar *start;  /* "auto" or "manual" */
	gboolean stop; /* listen --stop: StopListening instead of Listen */
	/* expect */
	guint32 expect_timeout_s; /* 0: none */
	/* dirty-bitmap */
	gchar *output;
	/* add, attach, migrate */
	gchar **iova_ranges; /* add/attach: RANGES; migrate: DEVICE=RANGES */
	gchar *sim_spec;
	gboolean persist; /* add: the daemon writes devices.d/NAME.conf */
	gint fd;
	gchar *address; /* attach: which device the fd is */
	/* runtime */
	GDBusConnection *connection;
	gchar *job_path; /* the JOB argument, a short id made a path */
} MigctlOptions;

/*
 * SIGINT, SIGTERM during migrate, caught from before the Migrate call: a signal
 * that comes before the watch runs is held (the main context is not iterated
 * until then) and acted on once the job is known
 */
typedef struct {
	gpointer watch; /* MigctlWatch, while one runs */
	gboolean pending;
} MigctlInterrupt;

/* one job followed until it ends (watch, migrate) */
typedef struct {
	const MigctlOptions *options;
	const gchar *path;
	MigdDbusJob *job;
	GMainLoop *loop;
	gboolean tty;
	gboolean done;
	gint exit_status;
	gchar *last_phase;
	gint64 last_line;
	gboolean bar_drawn;
	gboolean cancelling; /* a signal asked for Job.Cancel */
	guint cancel_timeout_id;
	const gchar *outcome; /* set once Completed came: the properties may lag behind */
} MigctlWatch;

void migctl_json_double(JsonBuilder *builder, gdouble value);
void migctl_json_member_uint(JsonBuilder *builder, const gchar *key, guint64 value);
void migctl_json_print(JsonBuilder *builder);
void migctl_json_print_result(const gchar *key, const gchar *value, const gchar *flag);
void migctl_json_string(JsonBuilder *builder, const gchar *value);
void migctl_json_variant(JsonBuilder *builder, const gchar *key, GVariant *value);
gint migctl_dirty_report(const MigctlOptions *options, const gchar *job, const gchar *device,
			 GBytes *bytes);
gint migctl_fail(const MigctlOptions *options, GError *error);
void migctl_json_job_id(JsonBuilder *builder, const gchar *path);
MigdDbusManager *migctl_manager(const MigctlOptions *options, GError **error);
GBytes *migctl_read_fd(GUnixFDList *fds, GVariant *handle, GError **error);
gint migctl_cmd_cancel_expectation(const MigctlOptions *options, const gchar *migration_id);
gint migctl_cmd_control(const MigctlOptions *options, const gchar *cmd, const gchar *path);
gint migctl_cmd_dirty_sync(const MigctlOptions *options, const gchar *path, const gchar *device);
gint migctl_cmd_expect(const MigctlOptions *options, const gchar *migration_id);
gint migctl_cmd_expectations(const MigctlOptions *options);
const gchar *migctl_job_outcome(MigdDbusJob *job);
void migctl_json_job_fields(JsonBuilder *builder, MigctlWatch *watch);
gboolean migctl_phase_is_final(const gchar *phase);
gchar *migctl_size(guint64 bytes);
gint migctl_watch(const MigctlOptions *options, const gchar *path);
gint migctl_watch_full(const MigctlOptions *options, const gchar *path, MigctlInterrupt *interrupt);
gboolean migctl_watch_signal_cb(gpointer user_data);
