/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Helpers for the D-Bus tests: a private session bus (GTestDBus), vfio-migd
 * processes on it, calls with a deadline, and reading vfio-migctl's JSON
 * output (json-glib). Everything fails the test through cmocka on error.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#define DT_MIGD_ERROR_PREFIX "org.vfiomigd.Migd1.Error."
#define DT_MANAGER_PATH	     "/org/vfiomigd/Migd1"
#define DT_MANAGER_IFACE     "org.vfiomigd.Migd1.Manager"
#define DT_JOB_IFACE	     "org.vfiomigd.Migd1.Job"
#define DT_TIMEOUT_S	     60

typedef struct {
	gchar *bus_name;
	GSubprocess *process;
	gboolean exited; /* set from the one wait_async started with the process */
	/* every job's Completed, recorded from before the daemon started: a job may end
	 * before its path is even known to the test */
	guint completed_id;
	GHashTable *completed; /* path -> GVariant (bs) */
} DtDaemon;

/* argv[1] = vfio-migd, argv[2] = vfio-migctl (set by meson) */
void dt_init(int argc, char **argv);
const gchar *dt_migd_path(void);
const gchar *dt_migctl_path(void);

/* group setup/teardown: the private bus */
int dt_bus_up(void **state);
int dt_bus_down(void **state);
GDBusConnection *dt_connection(void);

/* starts vfio-migd on the private bus with --sim-device for each of @specs (NULL-terminated)
 * and waits until it owns @bus_name */
DtDaemon *dt_daemon_start(const gchar *bus_name, const gchar *const *specs);
/* ... with more arguments (NULL-terminated, may be NULL) */
DtDaemon *dt_daemon_start_args(const gchar *bus_name, const gchar *const *specs,
			       const gchar *const *extra_args);
/* SIGKILL: a crash, with no chance to roll anything back */
void dt_daemon_crash(DtDaemon *daemon);
/* ... with --config @config_path (may be NULL) */
DtDaemon *dt_daemon_start_full(const gchar *bus_name, const gchar *const *specs,
			       const gchar *config_path);
/* SIGTERM, and checks it exits cleanly (status 0) */
void dt_daemon_stop(DtDaemon *daemon);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DtDaemon, dt_daemon_stop)

/* a method call on the Manager; NULL with @error on failure */
GVariant *dt_manager_call(DtDaemon *daemon, const gchar *method, GVariant *params, GError **error);
/* ListDevices: the properties of device @index (a{sv}) */
GVariant *dt_device_props(DtDaemon *daemon, guint index);
guint dt_n_devices(DtDaemon *daemon);
gchar *dt_device_state(DtDaemon *daemon, guint index);
guint64 dt_device_digest(DtDaemon *daemon, guint index);
/* Listen(a fresh unix:@ address, {"plain": true}) -> the bound address */
gchar *dt_listen_plain(DtDaemon *daemon);
/* a property of the object at @path */
GVariant *dt_get_property(DtDaemon *daemon, const gchar *path, const gchar *iface,
			  const gchar *name);

/* waits for the Completed signal of the job at @job_path (fails the test after
 * DT_TIMEOUT_S or when it came twice); @message: (out) (transfer full) */
gboolean dt_job_wait_completed(DtDaemon *daemon, const gchar *job_path, gchar **message);
/* waits until the job's Phase is "completed" or "failed"; returns it */
gchar *dt_job_wait_final(DtDaemon *daemon, const gchar *job_path);

/* a TCP port on 127.0.0.1 nobody listens on (bound, then closed) */
guint16 dt_unused_port(void);
/* an abstract UNIX address nobody listens on yet: plain is for UNIX sockets only */
gchar *dt_unused_unix_address(void);

/* runs vfio-migctl --session --bus-name @bus_name ARGS; returns the exit status */
gint dt_migctl(const gchar *bus_name, gchar **out, const gchar *first_arg,
	       ...) G_GNUC_NULL_TERMINATED;

/* parses one line of vfio-migctl's JSON output; NULL with @error on a syntax error,
 * no value, or a raw control character */
JsonNode *dt_json_parse(const gchar *text, GError **error);
/* vfio-migctl's one line of JSON (without its newline); fails the test if it is not JSON */
JsonNode *dt_json_line(const gchar *out);
/* @error is the D-Bus error @name (e.g. DT_MIGD_ERROR_PREFIX "InvalidArgument") */
void dt_assert_dbus_error(GError *error, const gchar *name);
