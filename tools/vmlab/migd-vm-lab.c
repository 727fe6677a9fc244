/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The real-QEMU lab: see migd-vm-lab.h.
 */
#include "config.h"

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "migd-error.h"
#include "migd-vm-lab.h"

#define MANAGER_PATH  "/org/vfiomigd/Migd1"
#define MANAGER_IFACE "org.vfiomigd.Migd1.Manager"
#define JOB_IFACE     "org.vfiomigd.Migd1.Job"
/* a D-Bus call to a daemon */
#define CALL_MS 30000
/* between two polls of a state that has no signal */
#define POLL_MS 20

struct _MigdVmLab {
	gchar *dir;
	guint serial;	    /* unique names within the lab */
	GPtrArray *qemus;   /* MigdVmLabQemu, owned */
	GPtrArray *daemons; /* MigdVmLabDaemon, owned */
	GPtrArray *buses;   /* MigdVmLabBus, owned */
};

/* a child process and whether it was reaped (one wait_async from the start) */
typedef struct {
	GSubprocess *process;
	gboolean exited;
} Child;

struct _MigdVmLabBus {
	Child child;
	gchar *address;
	gchar *path_address;
	GDBusConnection *connection;
};

struct _MigdVmLabDaemon {
	Child child;
	gchar *bus_name;
	gchar *log_path;
	GDBusConnection *connection; /* the control bus's, borrowed from its MigdVmLabBus */
};

struct _MigdVmLabQemu {
	Child child;
	gchar *socket_path;
	gchar *log_path;
	MigdQmp *qmp;
	gulong event_id;
	gulong closed_id;
	gboolean closed;
	GPtrArray *events; /* MigdVmLabEvent */
};

/* ---- processes ---- */

static void
child_exited_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	/* the Child outlives its process's wait: it is freed only once exited */
	Child *child = user_data;

	g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL);
	child->exited = TRUE;
}

static void
child_watch(Child *child, GSubprocess *process)
{
	child->process = process;
	g_subprocess_wait_async(process, NULL, child_exited_cb, child);
}

static gboolean
child_exited(gpointer data)
{
	return ((Child *)data)->exited;
}

static gboolean
wait_until(gboolean (*done)(gpointer), gpointer data, guint timeout_ms)
{
	GMainContext *context = g_main_context_get_thread_default();
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (!done(data)) {
		if (g_get_monotonic_time() >= deadline)
			return FALSE;
		/* a bounded nap when nothing is pending: processes end without a wake-up of ours */
		if (!g_main_context_iteration(context, FALSE))
			g_usleep(2000);
	}
	return TRUE;
}

void
migd_vm_lab_spin(guint ms)
{
	GMainContext *context = g_main_context_get_thread_default();
	gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;

	while (g_get_monotonic_time() < deadline) {
		if (!g_main_context_iteration(context, FALSE))
			g_usleep(1000);
	}
}

/* @signum (0: none, the process is asked otherwise), bounded wait, SIGKILL past it, reaped */
static void
child_end(Child *child, int signum, guint timeout_ms)
{
	if (child->process == NULL)
		return;
	if (!child->exited && signum != 0)
		g_subprocess_send_signal(child->process, signum);
	if (!wait_until(child_exited, child, timeout_ms)) {
		g_warning("process %s did not exit within %u ms: killed",
			  g_subprocess_get_identifier(child->process), timeout_ms);
		g_subprocess_force_exit(child->process);
		/* SIGKILL cannot be ignored; a process in D state is the only one still here */
		if (!wait_until(child_exited, child, MIGD_VM_LAB_STOP_MS))
			g_warning("process did not die after SIGKILL");
	}
}

/* frees the child once reaped; a process that never died keeps its memory (its wait holds it) */
static gboolean
child_clear(Child *child)
{
	if (child->process != NULL && !child->exited)
		return FALSE;
	g_clear_object(&child->process);
	return TRUE;
}

/* ---- the lab ---- */

MigdVmLab *
migd_vm_lab_new(GError **error)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-vm-lab-XXXXXX", error);
	MigdVmLab *lab;

	if (dir == NULL)
		return NULL;
	lab = g_new0(MigdVmLab, 1);
	lab->dir = g_steal_pointer(&dir);
	lab->qemus = g_ptr_array_new();
	lab->daemons = g_ptr_array_new();
	lab->buses = g_ptr_array_new();
	return lab;
}

const gchar *
migd_vm_lab_get_dir(MigdVmLab *lab)
{
	return lab->dir;
}

static void
qemu_free(MigdVmLabQemu *qemu)
{
	if (qemu->qmp != NULL) {
		g_signal_handler_disconnect(qemu->qmp, qemu->event_id);
		g_signal_handler_disconnect(qemu->qmp, qemu->closed_id);
		migd_qmp_close(qemu->qmp);
		g_clear_object(&qemu->qmp);
	}
	g_ptr_array_unref(qemu->events);
	g_free(qemu->socket_path);
	g_free(qemu->log_path);
	if (child_clear(&qemu->child))
		g_free(qemu);
}

static void
daemon_free(MigdVmLabDaemon *daemon)
{
	g_free(daemon->bus_name);
	g_free(daemon->log_path);
	if (child_clear(&daemon->child))
		g_free(daemon);
}

static void
bus_free(MigdVmLabBus *bus)
{
	if (bus->connection != NULL) {
		g_dbus_connection_close_sync(bus->connection, NULL, NULL);
		g_clear_object(&bus->connection);
	}
	g_free(bus->address);
	g_free(bus->path_address);
	if (child_clear(&bus->child))
		g_free(bus);
}

static void
remove_tree(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);

		if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
			remove_tree(child);
		else
			g_unlink(child);
	}
	g_rmdir(path);
}

void
migd_vm_lab_free(MigdVmLab *lab)
{
	if (lab == NULL)
		return;
	/* QEMU first: it calls the daemons over its bus; then the daemons, then their buses */
	for (guint i = 0; i < lab->qemus->len; i++) {
		migd_vm_lab_qemu_stop(lab->qemus->pdata[i]);
		qemu_free(lab->qemus->pdata[i]);
	}
	for (guint i = 0; i < lab->daemons->len; i++) {
		migd_vm_lab_daemon_stop(lab->daemons->pdata[i]);
		daemon_free(lab->daemons->pdata[i]);
	}
	for (guint i = 0; i < lab->buses->len; i++) {
		MigdVmLabBus *bus = lab->buses->pdata[i];

		if (bus->connection != NULL)
			g_dbus_connection_close_sync(bus->connection, NULL, NULL);
		child_end(&bus->child, SIGTERM, MIGD_VM_LAB_STOP_MS);
		bus_free(bus);
	}
	/* the closed connections' last callbacks */
	migd_vm_lab_spin(10);
	g_ptr_array_unref(lab->qemus);
	g_ptr_array_unref(lab->daemons);
	g_ptr_array_unref(lab->buses);
	/* MIGD_VM_LAB_KEEP=1: the logs, configurations and sockets stay for a post-mortem */
	if (g_strcmp0(g_getenv("MIGD_VM_LAB_KEEP"), "1") == 0)
		g_printerr("migd-vm-lab: kept %s\n", lab->dir);
	else
		remove_tree(lab->dir);
	g_free(lab->dir);
	g_free(lab);
}

/* ---- buses ---- */

typedef struct {
	gboolean done;
	gchar *text;
	GError *error;
} Line;

static gboolean
line_done(gpointer data)
{
	return ((Line *)data)->done;
}

static void
line_read_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Line *line = user_data;

	line->text = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(source), result, NULL,
							  &line->error);
	line->done = TRUE;
}

MigdVmLabBus *
migd_vm_lab_bus_start(MigdVmLab *lab, const gchar *name, GError **error)
{
	g_autofree gchar *listen = g_strdup_printf("--address=unix:path=%s/%s.bus", lab->dir, name);
	g_autoptr(GDataInputStream) out = NULL;
	GSubprocess *process;
	MigdVmLabBus *bus;
	const gchar *guid;

	process = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, error, "dbus-daemon",
				   "--session", "--nofork", "--print-address=1", listen, NULL);
	if (process == NULL)
		return NULL;
	bus = g_new0(MigdVmLabBus, 1);
	child_watch(&bus->child, process);
	g_ptr_array_add(lab->buses, bus);

	/* dbus-daemon prints its address once it listens; a dbus-daemon that hangs instead
	 * fails the start after MIGD_VM_LAB_START_MS */
	out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(process));
	{
		g_autoptr(GCancellable) cancellable = g_cancellable_new();
		Line line = {0};

		g_data_input_stream_read_line_async(out, G_PRIORITY_DEFAULT, cancellable,
						    line_read_cb, &line);
		if (!wait_until(line_done, &line, MIGD_VM_LAB_START_MS)) {
			g_cancellable_cancel(cancellable);
			wait_until(line_done, &line, 1000);
		}
		bus->address = line.text;
		if (bus->address == NULL) {
			if (line.error != NULL)
				g_propagate_prefixed_error(error, line.error, "dbus-daemon: ");
			else
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
					    "dbus-daemon printed no address");
			return NULL;
		}
		g_clear_error(&line.error);
	}
	guid = strstr(bus->address, ",guid=");
	bus->path_address = g_strndup(bus->address, guid != NULL ? (gsize)(guid - bus->address)
								 : strlen(bus->address));
	bus->connection = g_dbus_connection_new_for_address_sync(
	    bus->address,
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL, NULL, error);
	if (bus->connection == NULL) {
		g_prefix_error(error, "%s: ", bus->address);
		return NULL;
	}
	g_dbus_connection_set_exit_on_close(bus->connection, FALSE);
	return bus;
}

const gchar *
migd_vm_lab_bus_get_address(MigdVmLabBus *bus)
{
	return bus->address;
}

const gchar *
migd_vm_lab_bus_get_path_address(MigdVmLabBus *bus)
{
	return bus->path_address;
}

GDBusConnection *
migd_vm_lab_bus_get_connection(MigdVmLabBus *bus)
{
	return bus->connection;
}

guint16
migd_vm_lab_unused_port(GError **error)
{
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;

	socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
	if (socket == NULL || !g_socket_bind(socket, any, FALSE, error))
		return 0;
	bound = g_socket_get_local_address(socket, error);
	if (bound == NULL)
		return 0;
	return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

gchar *
migd_vm_lab_unused_unix_address(MigdVmLab *lab)
{
	g_autofree gchar *base = g_path_get_basename(lab->dir);

	return g_strdup_printf("unix:@%s-%u", base, ++lab->serial);
}

/* ---- vfio-migd ---- */

static gboolean
name_owned(GDBusConnection *connection, const gchar *name)
{
	g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
	    connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
	    "NameHasOwner", g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"),
	    G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
	gboolean owned = FALSE;

	if (reply != NULL)
		g_variant_get(reply, "(b)", &owned);
	return owned;
}

MigdVmLabDaemon *
migd_vm_lab_daemon_start(MigdVmLab *lab, const gchar *migd_path, MigdVmLabBus *control,
			 const gchar *bus_name, const gchar *const *sim_specs,
			 const gchar *config_text, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *tag = g_strdup_printf("migd%u", ++lab->serial);
	g_autofree gchar *config_path = NULL;
	GSubprocess *process;
	MigdVmLabDaemon *daemon;
	gint64 deadline;

	g_ptr_array_add(argv, g_strdup(migd_path));
	g_ptr_array_add(argv, g_strdup("--session"));
	g_ptr_array_add(argv, g_strdup("--bus-name"));
	g_ptr_array_add(argv, g_strdup(bus_name));
	for (guint i = 0; sim_specs != NULL && sim_specs[i] != NULL; i++) {
		g_ptr_array_add(argv, g_strdup("--sim-device"));
		g_ptr_array_add(argv, g_strdup(sim_specs[i]));
	}
	if (config_text != NULL) {
		g_autofree gchar *file = g_strdup_printf("%s.conf", tag);

		config_path = g_build_filename(lab->dir, file, NULL);
		if (!g_file_set_contents(config_path, config_text, -1, error))
			return NULL;
		g_ptr_array_add(argv, g_strdup("--config"));
		g_ptr_array_add(argv, g_strdup(config_path));
	}
	g_ptr_array_add(argv, NULL);

	daemon = g_new0(MigdVmLabDaemon, 1);
	daemon->bus_name = g_strdup(bus_name);
	{
		g_autofree gchar *file = g_strdup_printf("%s.log", tag);
		daemon->log_path = g_build_filename(lab->dir, file, NULL);
	}
	daemon->connection = control->connection;
	g_subprocess_launcher_setenv(launcher, "DBUS_SESSION_BUS_ADDRESS", control->address, TRUE);
	g_subprocess_launcher_set_stdout_file_path(launcher, daemon->log_path);
	process = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, error);
	if (process == NULL) {
		daemon_free(daemon);
		return NULL;
	}
	child_watch(&daemon->child, process);
	g_ptr_array_add(lab->daemons, daemon);

	deadline = g_get_monotonic_time() + MIGD_VM_LAB_START_MS * 1000;
	while (!name_owned(control->connection, bus_name)) {
		migd_vm_lab_spin(POLL_MS);
		if (daemon->child.exited) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
				    "vfio-migd exited at start (log: %s)", daemon->log_path);
			return NULL;
		}
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
				    "vfio-migd did not own %s within %d ms (log: %s)", bus_name,
				    MIGD_VM_LAB_START_MS, daemon->log_path);
			return NULL;
		}
	}
	return daemon;
}

const gchar *
migd_vm_lab_daemon_get_bus_name(MigdVmLabDaemon *daemon)
{
	return daemon->bus_name;
}

const gchar *
migd_vm_lab_daemon_get_log_path(MigdVmLabDaemon *daemon)
{
	return daemon->log_path;
}

GVariant *
migd_vm_lab_daemon_call(MigdVmLabDaemon *daemon, const gchar *method, GVariant *params,
			GError **error)
{
	return g_dbus_connection_call_sync(daemon->connection, daemon->bus_name, MANAGER_PATH,
					   MANAGER_IFACE, method, params, NULL,
					   G_DBUS_CALL_FLAGS_NONE, CALL_MS, NULL, error);
}

GVariant *
migd_vm_lab_daemon_device_props(MigdVmLabDaemon *daemon, guint index, GError **error)
{
	g_autoptr(GVariant) reply = migd_vm_lab_daemon_call(daemon, "ListDevices", NULL, error);
	g_autoptr(GVariant) devices = NULL;
	g_autoptr(GVariant) device = NULL;

	if (reply == NULL)
		return NULL;
	devices = g_variant_get_child_value(reply, 0);
	if (index >= g_variant_n_children(devices)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "no device %u (%zu devices)", index, g_variant_n_children(devices));
		return NULL;
	}
	device = g_variant_get_child_value(devices, index);
	return g_variant_get_child_value(device, 1);
}

gchar *
migd_vm_lab_daemon_device_state(MigdVmLabDaemon *daemon, guint index, GError **error)
{
	g_autoptr(GVariant) props = migd_vm_lab_daemon_device_props(daemon, index, error);
	gchar *state = NULL;

	if (props == NULL)
		return NULL;
	if (!g_variant_lookup(props, "state", "s", &state))
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "device %u has no state",
			    index);
	return state;
}

gboolean
migd_vm_lab_daemon_device_digest(MigdVmLabDaemon *daemon, guint index, guint64 *digest,
				 GError **error)
{
	gint64 deadline = g_get_monotonic_time() + CALL_MS * 1000;

	/* a large state is hashed on a worker: sim-digest-pending until it is known */
	for (;;) {
		g_autoptr(GVariant) props = migd_vm_lab_daemon_device_props(daemon, index, error);

		if (props == NULL)
			return FALSE;
		if (g_variant_lookup(props, "sim-digest", "t", digest))
			return TRUE;
		if (!g_variant_lookup(props, "sim-digest-pending", "b", NULL)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "device %u has no sim-digest", index);
			return FALSE;
		}
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
				    "device %u: no digest after %d ms", index, CALL_MS);
			return FALSE;
		}
		migd_vm_lab_spin(POLL_MS);
	}
}

gboolean
migd_vm_lab_daemon_wait_device(MigdVmLabDaemon *daemon, guint index, const gchar *state,
			       guint timeout_ms, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	for (;;) {
		g_autoptr(GVariant) props = migd_vm_lab_daemon_device_props(daemon, index, error);
		const gchar *now = NULL;
		gboolean busy = TRUE;

		if (props == NULL)
			return FALSE;
		g_variant_lookup(props, "state", "&s", &now);
		g_variant_lookup(props, "busy", "b", &busy);
		/* only reserved for a VM's next incoming migration: in no job */
		if (g_variant_lookup(props, "reserved-for", "&s", NULL))
			busy = FALSE;
		if (!busy && g_strcmp0(now, state) == 0)
			return TRUE;
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
				    "device %u: %s%s after %u ms, expected %s", index, now,
				    busy ? " (busy)" : "", timeout_ms, state);
			return FALSE;
		}
		migd_vm_lab_spin(POLL_MS);
	}
}

gchar *
migd_vm_lab_daemon_last_job(MigdVmLabDaemon *daemon, GError **error)
{
	g_autoptr(GVariant) reply = migd_vm_lab_daemon_call(daemon, "ListJobs", NULL, error);
	g_autoptr(GVariant) list = NULL;
	g_autofree const gchar **paths = NULL;
	gsize n = 0;

	if (reply == NULL)
		return NULL;
	list = g_variant_get_child_value(reply, 0);
	paths = g_variant_get_objv(list, &n);
	if (n == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "%s has no job",
			    daemon->bus_name);
		return NULL;
	}
	return g_strdup(paths[n - 1]);
}

GVariant *
migd_vm_lab_daemon_job_property(MigdVmLabDaemon *daemon, const gchar *job_path, const gchar *name,
				GError **error)
{
	g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
	    daemon->connection, daemon->bus_name, job_path, "org.freedesktop.DBus.Properties",
	    "Get", g_variant_new("(ss)", JOB_IFACE, name), G_VARIANT_TYPE("(v)"),
	    G_DBUS_CALL_FLAGS_NONE, CALL_MS, NULL, error);
	GVariant *value = NULL;

	if (reply == NULL)
		return NULL;
	g_variant_get(reply, "(v)", &value);
	return value;
}

gchar *
migd_vm_lab_daemon_wait_job(MigdVmLabDaemon *daemon, const gchar *job_path, guint timeout_ms,
			    GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	for (;;) {
		g_autoptr(GVariant) phase =
		    migd_vm_lab_daemon_job_property(daemon, job_path, "Phase", error);
		const gchar *now;

		if (phase == NULL)
			return NULL;
		now = g_variant_get_string(phase, NULL);
		if (g_str_equal(now, "completed") || g_str_equal(now, "failed"))
			return g_strdup(now);
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
				    "job %s still %s after %u ms", job_path, now, timeout_ms);
			return NULL;
		}
		migd_vm_lab_spin(POLL_MS);
	}
}

gboolean
migd_vm_lab_daemon_stop(MigdVmLabDaemon *daemon)
{
	gboolean in_time = TRUE;

	if (daemon->child.process == NULL)
		return FALSE;
	if (!daemon->child.exited) {
		g_subprocess_send_signal(daemon->child.process, SIGTERM);
		in_time = wait_until(child_exited, &daemon->child, MIGD_VM_LAB_STOP_MS);
	}
	/* past the bound: SIGKILL, and that is no clean exit */
	child_end(&daemon->child, 0, 0);
	if (!in_time || !daemon->child.exited)
		return FALSE;
	return g_subprocess_get_if_exited(daemon->child.process) &&
	       g_subprocess_get_exit_status(daemon->child.process) == 0;
}

/* ---- QEMU ---- */

static void
event_free(MigdVmLabEvent *event)
{
	g_free(event->name);
	g_clear_pointer(&event->data, json_object_unref);
	g_free(event);
}

void
migd_vm_lab_migrate_info_clear(MigdVmLabMigrateInfo *info)
{
	g_clear_pointer(&info->status, g_free);
}

static void
qemu_event_cb(MigdQmp *qmp, const gchar *name, JsonObject *data, gint64 timestamp_us,
	      gpointer user_data)
{
	MigdVmLabQemu *qemu = user_data;
	MigdVmLabEvent *event = g_new0(MigdVmLabEvent, 1);

	event->name = g_strdup(name);
	event->data = data != NULL ? json_object_ref(data) : NULL;
	event->timestamp_us = timestamp_us;
	g_ptr_array_add(qemu->events, event);
}

static void
qemu_closed_cb(MigdQmp *qmp, const GError *error, gpointer user_data)
{
	((MigdVmLabQemu *)user_data)->closed = TRUE;
}

typedef struct {
	gboolean done;
	GObject *object;
	JsonNode *ret;
	GError *error;
} Call;

static gboolean
call_done(gpointer data)
{
	return ((Call *)data)->done;
}

static void
connected_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Call *call = user_data;

	call->object = G_OBJECT(migd_qmp_connect_finish(result, &call->error));
	call->done = TRUE;
}

static void
executed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Call *call = user_data;

	call->ret = migd_qmp_execute_finish(MIGD_QMP(source), result, &call->error);
	call->done = TRUE;
}

/* connects once QEMU created its socket (it does so after parsing its options) */
static MigdQmp *
qemu_connect(MigdVmLabQemu *qemu, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + MIGD_VM_LAB_START_MS * 1000;

	for (;;) {
		g_autoptr(GCancellable) cancellable = g_cancellable_new();
		Call call = {0};

		if (g_file_test(qemu->socket_path, G_FILE_TEST_EXISTS)) {
			migd_qmp_connect_async(qemu->socket_path, MIGD_VM_LAB_START_MS, cancellable,
					       connected_cb, &call);
			if (!wait_until(call_done, &call, MIGD_VM_LAB_START_MS + 1000)) {
				g_cancellable_cancel(cancellable);
				wait_until(call_done, &call, 1000);
			}
			if (call.object != NULL)
				return MIGD_QMP(call.object);
			/* the socket file exists a moment before QEMU listens on it */
			if (!g_error_matches(call.error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE) ||
			    g_get_monotonic_time() > deadline) {
				if (call.error == NULL)
					g_set_error(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
						    "QMP connect did not complete");
				else
					g_propagate_error(error, call.error);
				return NULL;
			}
			g_clear_error(&call.error);
		}
		if (qemu->child.exited) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
				    "QEMU exited at start (log: %s)", qemu->log_path);
			return NULL;
		}
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
				    "QEMU's monitor %s did not answer within %d ms (log: %s)",
				    qemu->socket_path, MIGD_VM_LAB_START_MS, qemu->log_path);
			return NULL;
		}
		migd_vm_lab_spin(POLL_MS);
	}
}

gchar *
migd_vm_lab_qemu_daemon_qmp_path(MigdVmLab *lab, const gchar *name)
{
	g_autofree gchar *file = g_strdup_printf("%s-daemon.qmp", name);
	return g_build_filename(lab->dir, file, NULL);
}

MigdVmLabQemu *
migd_vm_lab_qemu_start(MigdVmLab *lab, const gchar *qemu_path, const gchar *name,
		       MigdVmLabBus *vmstate_bus, const gchar *id_list, const gchar *incoming,
		       GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *socket_file = g_strdup_printf("%s.qmp", name);
	g_autofree gchar *log_file = g_strdup_printf("%s.log", name);
	GSubprocess *process;
	MigdVmLabQemu *qemu;

	g_ptr_array_add(argv, g_strdup(qemu_path != NULL ? qemu_path : "qemu-system-x86_64"));
	for (const gchar *const *arg =
		 (const gchar *const[]){"-M", "q35", "-m", "64", "-nodefaults", "-display", "none",
					"-accel", "tcg", NULL};
	     *arg != NULL; arg++)
		g_ptr_array_add(argv, g_strdup(*arg));
	g_ptr_array_add(argv, g_strdup("-object"));
	g_ptr_array_add(argv, g_strdup_printf("dbus-vmstate,id=vmstate0,addr=%s%s%s",
					      vmstate_bus->path_address,
					      id_list != NULL ? ",id-list=" : "",
					      id_list != NULL ? id_list : ""));
	qemu = g_new0(MigdVmLabQemu, 1);
	qemu->socket_path = g_build_filename(lab->dir, socket_file, NULL);
	qemu->log_path = g_build_filename(lab->dir, log_file, NULL);
	qemu->events = g_ptr_array_new_with_free_func((GDestroyNotify)event_free);
	g_ptr_array_add(argv, g_strdup("-qmp"));
	g_ptr_array_add(argv, g_strdup_printf("unix:%s,server=on,wait=off", qemu->socket_path));
	/* a second monitor for vfio-migd's [vm] qmp= (a QMP socket serves one client) */
	{
		g_autofree gchar *daemon_qmp = migd_vm_lab_qemu_daemon_qmp_path(lab, name);
		g_ptr_array_add(argv, g_strdup("-chardev"));
		g_ptr_array_add(
		    argv,
		    g_strdup_printf("socket,id=migdmon,path=%s,server=on,wait=off", daemon_qmp));
		g_ptr_array_add(argv, g_strdup("-mon"));
		g_ptr_array_add(argv, g_strdup("chardev=migdmon,mode=control"));
	}
	if (incoming != NULL) {
		g_ptr_array_add(argv, g_strdup("-incoming"));
		g_ptr_array_add(argv, g_strdup(incoming));
	}
	g_ptr_array_add(argv, NULL);

	g_subprocess_launcher_set_stdout_file_path(launcher, qemu->log_path);
	process = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, error);
	if (process == NULL) {
		g_prefix_error(error, "%s: ", (const gchar *)argv->pdata[0]);
		qemu_free(qemu);
		return NULL;
	}
	child_watch(&qemu->child, process);
	g_ptr_array_add(lab->qemus, qemu);

	qemu->qmp = qemu_connect(qemu, error);
	if (qemu->qmp == NULL)
		return NULL;
	qemu->event_id = g_signal_connect(qemu->qmp, "event", G_CALLBACK(qemu_event_cb), qemu);
	qemu->closed_id = g_signal_connect(qemu->qmp, "closed", G_CALLBACK(qemu_closed_cb), qemu);

	/* MIGRATION events are off by default */
	if (!migd_vm_lab_qemu_set_capability(qemu, "events", TRUE, error))
		return NULL;
	return qemu;
}

MigdQmp *
migd_vm_lab_qemu_get_qmp(MigdVmLabQemu *qemu)
{
	return qemu->qmp;
}

const gchar *
migd_vm_lab_qemu_get_log_path(MigdVmLabQemu *qemu)
{
	return qemu->log_path;
}

gboolean
migd_vm_lab_qemu_wait_exit(MigdVmLabQemu *qemu, guint timeout_ms)
{
	return qemu->child.process != NULL && wait_until(child_exited, &qemu->child, timeout_ms);
}

gboolean
migd_vm_lab_qemu_exited(MigdVmLabQemu *qemu)
{
	return qemu->child.exited;
}

JsonNode *
migd_vm_lab_qemu_execute(MigdVmLabQemu *qemu, const gchar *command, JsonObject *arguments,
			 GError **error)
{
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	Call call = {0};

	migd_qmp_execute_async(qemu->qmp, command, arguments, cancellable, executed_cb, &call);
	if (!wait_until(call_done, &call, MIGD_VM_LAB_COMMAND_MS)) {
		/* cancelling completes the call at once */
		g_cancellable_cancel(cancellable);
		wait_until(call_done, &call, 1000);
		g_clear_pointer(&call.ret, json_node_unref);
		g_clear_error(&call.error);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT, "%s: no answer within %d ms",
			    command, MIGD_VM_LAB_COMMAND_MS);
		return NULL;
	}
	if (call.ret == NULL) {
		g_propagate_prefixed_error(error, call.error, "%s: ", command);
		return NULL;
	}
	return call.ret;
}

GPtrArray *
migd_vm_lab_qemu_get_events(MigdVmLabQemu *qemu)
{
	return qemu->events;
}

static const MigdVmLabEvent *
find_event(MigdVmLabQemu *qemu, guint from, const gchar *name, const gchar *status)
{
	for (guint i = from; i < qemu->events->len; i++) {
		const MigdVmLabEvent *event = qemu->events->pdata[i];

		if (!g_str_equal(event->name, name))
			continue;
		if (status == NULL ||
		    (event->data != NULL && g_strcmp0(json_object_get_string_member_with_default(
							  event->data, "status", NULL),
						      status) == 0))
			return event;
	}
	return NULL;
}

const MigdVmLabEvent *
migd_vm_lab_qemu_wait_event(MigdVmLabQemu *qemu, guint from, const gchar *name, const gchar *status,
			    guint timeout_ms, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	for (;;) {
		const MigdVmLabEvent *event = find_event(qemu, from, name, status);

		if (event != NULL)
			return event;
		if (qemu->closed || g_get_monotonic_time() >= deadline) {
			g_set_error(error, MIGD_ERROR,
				    qemu->closed ? MIGD_ERROR_DEVICE_GONE : MIGD_ERROR_TIMED_OUT,
				    "no %s%s%s event %s", name, status != NULL ? " " : "",
				    status != NULL ? status : "",
				    qemu->closed ? "before QEMU's monitor closed" : "in time");
			return NULL;
		}
		if (!g_main_context_iteration(g_main_context_get_thread_default(), FALSE))
			g_usleep(1000);
	}
}

gboolean
migd_vm_lab_qemu_set_capability(MigdVmLabQemu *qemu, const gchar *capability, gboolean state,
				GError **error)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonArray) list = json_array_new();
	g_autoptr(JsonObject) cap = json_object_new();
	g_autoptr(JsonNode) ret = NULL;

	json_object_set_string_member(cap, "capability", capability);
	json_object_set_boolean_member(cap, "state", state);
	json_array_add_object_element(list, g_steal_pointer(&cap));
	json_object_set_array_member(args, "capabilities", g_steal_pointer(&list));
	ret = migd_vm_lab_qemu_execute(qemu, "migrate-set-capabilities", args, error);
	return ret != NULL;
}

gboolean
migd_vm_lab_qemu_migrate(MigdVmLabQemu *qemu, guint16 port, GError **error)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autofree gchar *uri = g_strdup_printf("tcp:127.0.0.1:%u", port);
	g_autoptr(JsonNode) ret = NULL;

	json_object_set_string_member(args, "uri", uri);
	ret = migd_vm_lab_qemu_execute(qemu, "migrate", args, error);
	return ret != NULL;
}

gchar *
migd_vm_lab_qemu_wait_migration(MigdVmLabQemu *qemu, guint timeout_ms, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	for (;;) {
		const gchar *const ends[] = {"completed", "failed", "cancelled"};

		for (guint i = 0; i < G_N_ELEMENTS(ends); i++) {
			if (find_event(qemu, 0, "MIGRATION", ends[i]) != NULL)
				return g_strdup(ends[i]);
		}
		if (qemu->closed || g_get_monotonic_time() >= deadline) {
			g_set_error(error, MIGD_ERROR,
				    qemu->closed ? MIGD_ERROR_DEVICE_GONE : MIGD_ERROR_TIMED_OUT,
				    "the migration did not end %s",
				    qemu->closed ? "before QEMU's monitor closed" : "in time");
			return NULL;
		}
		if (!g_main_context_iteration(g_main_context_get_thread_default(), FALSE))
			g_usleep(1000);
	}
}

static gint64
member_int(JsonObject *object, const gchar *name)
{
	if (!json_object_has_member(object, name))
		return -1;
	return json_object_get_int_member(object, name);
}

gboolean
migd_vm_lab_qemu_query_migrate(MigdVmLabQemu *qemu, MigdVmLabMigrateInfo *info, GError **error)
{
	g_autoptr(JsonNode) ret = migd_vm_lab_qemu_execute(qemu, "query-migrate", NULL, error);
	JsonObject *object;

	if (ret == NULL)
		return FALSE;
	if (!JSON_NODE_HOLDS_OBJECT(ret)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "query-migrate: not an object");
		return FALSE;
	}
	object = json_node_get_object(ret);
	info->status = g_strdup(json_object_get_string_member_with_default(object, "status", ""));
	info->downtime_ms = member_int(object, "downtime");
	info->total_time_ms = member_int(object, "total-time");
	info->setup_time_ms = member_int(object, "setup-time");
	return TRUE;
}

gchar *
migd_vm_lab_qemu_query_status(MigdVmLabQemu *qemu, GError **error)
{
	g_autoptr(JsonNode) ret = migd_vm_lab_qemu_execute(qemu, "query-status", NULL, error);

	if (ret == NULL)
		return NULL;
	if (!JSON_NODE_HOLDS_OBJECT(ret)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL, "query-status: not an object");
		return NULL;
	}
	return g_strdup(
	    json_object_get_string_member_with_default(json_node_get_object(ret), "status", ""));
}

gboolean
migd_vm_lab_qemu_wait_status(MigdVmLabQemu *qemu, const gchar *status, guint timeout_ms,
			     GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	for (;;) {
		g_autofree gchar *now = migd_vm_lab_qemu_query_status(qemu, error);

		if (now == NULL)
			return FALSE;
		if (g_str_equal(now, status))
			return TRUE;
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_TIMED_OUT,
				    "QEMU is %s after %u ms, expected %s", now, timeout_ms, status);
			return FALSE;
		}
		migd_vm_lab_spin(POLL_MS);
	}
}

void
migd_vm_lab_qemu_kill(MigdVmLabQemu *qemu)
{
	if (qemu->child.process == NULL)
		return;
	if (!qemu->child.exited)
		g_subprocess_force_exit(qemu->child.process);
	child_end(&qemu->child, 0, MIGD_VM_LAB_STOP_MS);
}

static void
quit_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(JsonNode) ret = migd_qmp_execute_finish(MIGD_QMP(source), result, NULL);
}

void
migd_vm_lab_qemu_stop(MigdVmLabQemu *qemu)
{
	if (qemu->child.process == NULL || qemu->child.exited)
		return;
	/* `quit` over QMP when the monitor is there (its answer may never come: QEMU exits) */
	if (qemu->qmp != NULL && !migd_qmp_is_closed(qemu->qmp))
		migd_qmp_execute_async(qemu->qmp, "quit", NULL, NULL, quit_cb, NULL);
	else
		g_subprocess_send_signal(qemu->child.process, SIGTERM);
	child_end(&qemu->child, 0, MIGD_VM_LAB_STOP_MS);
}
