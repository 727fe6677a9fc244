/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A lab for vfio-migd with a real QEMU: private dbus-daemons, vfio-migd
 * daemons with simulated devices and a configuration text, and
 * qemu-system-x86_64 as a migration source or destination with dbus-vmstate,
 * driven over QMP (MigdQmp). Used by the real-QEMU test tier (tests/vmm) and
 * the VM demo.
 *
 * Everything lives in one MigdVmLab: a private temporary directory (sockets,
 * configuration files) and the processes started in it. The calls are
 * synchronous for their caller: they iterate the thread-default main context
 * (where MigdQmp reads and QMP events are recorded) until done, and every
 * wait is bounded. migd_vm_lab_free() ends the processes in order (QEMUs,
 * then daemons, then buses; each wait bounded, SIGKILL past it) and removes
 * the directory (kept, for a post-mortem, with MIGD_VM_LAB_KEEP=1 in the
 * environment).
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "migd-qmp.h"

G_BEGIN_DECLS

/* how long a process may take to come up (a bus owned, a QMP socket answering) */
#define MIGD_VM_LAB_START_MS 20000
/* how long a process may take to exit after SIGTERM (or `quit`) before SIGKILL */
#define MIGD_VM_LAB_STOP_MS 5000
/* a QMP command's answer */
#define MIGD_VM_LAB_COMMAND_MS 10000

typedef struct _MigdVmLab MigdVmLab;
typedef struct _MigdVmLabBus MigdVmLabBus;
typedef struct _MigdVmLabDaemon MigdVmLabDaemon;
typedef struct _MigdVmLabQemu MigdVmLabQemu;

/* a private temporary directory; the lab owns everything started in it */
MigdVmLab *migd_vm_lab_new(GError **error);
/* ends every process (QEMUs, daemons, buses, in that order) and removes the directory */
void migd_vm_lab_free(MigdVmLab *lab);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdVmLab, migd_vm_lab_free)
const gchar *migd_vm_lab_get_dir(MigdVmLab *lab);

/* iterates the thread-default main context for @ms */
void migd_vm_lab_spin(guint ms);

/* ---- buses ---- */

/* a private `dbus-daemon --session` listening on unix:path=DIR/NAME.bus */
MigdVmLabBus *migd_vm_lab_bus_start(MigdVmLab *lab, const gchar *name, GError **error);
/* the address dbus-daemon printed (with its guid) */
const gchar *migd_vm_lab_bus_get_address(MigdVmLabBus *bus);
/* unix:path=...: the address without the guid, as QEMU's addr= and [vm] bus= take it */
const gchar *migd_vm_lab_bus_get_path_address(MigdVmLabBus *bus);
/* the lab's own connection to the bus (method calls, property reads) */
GDBusConnection *migd_vm_lab_bus_get_connection(MigdVmLabBus *bus);

/* a TCP port on 127.0.0.1 nobody listens on (bound, then closed) */
guint16 migd_vm_lab_unused_port(GError **error);
/* an abstract UNIX address (unix:@...) unique to this lab */
gchar *migd_vm_lab_unused_unix_address(MigdVmLab *lab);

/* ---- vfio-migd ---- */

/*
 * Starts @migd_path (vfio-migd) with --session on @control (as its session
 * bus), --bus-name @bus_name, a --sim-device for each of @sim_specs
 * (NULL-terminated) and, unless NULL, @config_text written to DIR/NAME.conf
 * as its --config; returns once it owns @bus_name on @control. The daemon's
 * output goes to DIR/NAME.log.
 */
MigdVmLabDaemon *migd_vm_lab_daemon_start(MigdVmLab *lab, const gchar *migd_path,
					  MigdVmLabBus *control, const gchar *bus_name,
					  const gchar *const *sim_specs, const gchar *config_text,
					  GError **error);
const gchar *migd_vm_lab_daemon_get_bus_name(MigdVmLabDaemon *daemon);
const gchar *migd_vm_lab_daemon_get_log_path(MigdVmLabDaemon *daemon);
/* a Manager method; the reply or NULL with @error */
GVariant *migd_vm_lab_daemon_call(MigdVmLabDaemon *daemon, const gchar *method, GVariant *params,
				  GError **error);
/* ListDevices' properties (a{sv}) of device @index */
GVariant *migd_vm_lab_daemon_device_props(MigdVmLabDaemon *daemon, guint index, GError **error);
/* device @index's state ("RUNNING", "STOP", ...) */
gchar *migd_vm_lab_daemon_device_state(MigdVmLabDaemon *daemon, guint index, GError **error);
/* device @index's sim-digest (waiting, bounded, while it is being computed) */
gboolean migd_vm_lab_daemon_device_digest(MigdVmLabDaemon *daemon, guint index, guint64 *digest,
					  GError **error);
/* waits (bounded by @timeout_ms) until device @index is @state and in no job */
gboolean migd_vm_lab_daemon_wait_device(MigdVmLabDaemon *daemon, guint index, const gchar *state,
					guint timeout_ms, GError **error);
/* the object path of the newest job, NULL (and @error) without one */
gchar *migd_vm_lab_daemon_last_job(MigdVmLabDaemon *daemon, GError **error);
/* a property of the job at @job_path */
GVariant *migd_vm_lab_daemon_job_property(MigdVmLabDaemon *daemon, const gchar *job_path,
					  const gchar *name, GError **error);
/* waits (bounded) until the job's Phase is "completed" or "failed"; returns it */
gchar *migd_vm_lab_daemon_wait_job(MigdVmLabDaemon *daemon, const gchar *job_path, guint timeout_ms,
				   GError **error);
/* SIGTERM, bounded wait, SIGKILL past it; TRUE when it exited cleanly (status 0) */
gboolean migd_vm_lab_daemon_stop(MigdVmLabDaemon *daemon);

/* ---- QEMU ---- */

/* one QMP event as received: its name, data (or NULL) and QEMU's timestamp (µs, realtime) */
typedef struct {
	gchar *name;
	JsonObject *data;
	gint64 timestamp_us;
} MigdVmLabEvent;

/* query-migrate's main figures; -1 where QEMU gave none */
typedef struct {
	gchar *status;
	gint64 downtime_ms;
	gint64 total_time_ms;
	gint64 setup_time_ms;
} MigdVmLabMigrateInfo;
void migd_vm_lab_migrate_info_clear(MigdVmLabMigrateInfo *info);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MigdVmLabMigrateInfo, migd_vm_lab_migrate_info_clear)

/*
 * Starts @qemu_path (NULL: qemu-system-x86_64 from PATH) as `-M q35 -m 64
 * -nodefaults -display none -accel tcg -object
 * dbus-vmstate,id=vmstate0,addr=@vmstate_bus's path address,id-list=@id_list
 * -qmp unix:DIR/NAME.qmp,server=on,wait=off` (and the daemon's monitor,
 * above), and `-incoming @incoming`
 * unless NULL ("tcp:127.0.0.1:PORT" or "defer"); connects MigdQmp to it and
 * records every event from then on. A missing binary is an error
 * (G_SPAWN_ERROR).
 */
/*
 * Every QEMU started here has a second QMP monitor, for vfio-migd's [vm] qmp=
 * (the lab's MigdQmp holds the first); its socket path, known before the
 * start so a daemon can be configured first (it connects once QEMU is up)
 */
gchar *migd_vm_lab_qemu_daemon_qmp_path(MigdVmLab *lab, const gchar *name);
MigdVmLabQemu *migd_vm_lab_qemu_start(MigdVmLab *lab, const gchar *qemu_path, const gchar *name,
				      MigdVmLabBus *vmstate_bus, const gchar *id_list,
				      const gchar *incoming, GError **error);
MigdQmp *migd_vm_lab_qemu_get_qmp(MigdVmLabQemu *qemu);
/* a QMP command, bounded by MIGD_VM_LAB_COMMAND_MS; its "return" (json_node_unref) */
JsonNode *migd_vm_lab_qemu_execute(MigdVmLabQemu *qemu, const gchar *command, JsonObject *arguments,
				   GError **error);
/* the events received so far (MigdVmLabEvent), in order */
GPtrArray *migd_vm_lab_qemu_get_events(MigdVmLabQemu *qemu);
/*
 * The first event @name received at or after index @from (with data member
 * "status" == @status unless NULL), waiting for it up to @timeout_ms (0: no
 * wait); NULL (and @error) when none came, or QEMU's monitor closed.
 */
const MigdVmLabEvent *migd_vm_lab_qemu_wait_event(MigdVmLabQemu *qemu, guint from,
						  const gchar *name, const gchar *status,
						  guint timeout_ms, GError **error);
/*
 * migrate-set-capabilities with one capability, e.g. "return-path" (set on
 * both sides: the source then completes only once the destination loaded
 * everything, and fails, resuming its VM, when the destination's load fails
 * or it dies)
 */
gboolean migd_vm_lab_qemu_set_capability(MigdVmLabQemu *qemu, const gchar *capability,
					 gboolean state, GError **error);
/* `migrate` to tcp:127.0.0.1:@port (QEMU answers at once; the migration runs on) */
gboolean migd_vm_lab_qemu_migrate(MigdVmLabQemu *qemu, guint16 port, GError **error);
/*
 * Waits up to @timeout_ms for a MIGRATION event with status completed, failed
 * or cancelled (from the first event on; `migrate-set-capabilities events` is
 * on from the start) and returns that status.
 */
gchar *migd_vm_lab_qemu_wait_migration(MigdVmLabQemu *qemu, guint timeout_ms, GError **error);
gboolean migd_vm_lab_qemu_query_migrate(MigdVmLabQemu *qemu, MigdVmLabMigrateInfo *info,
					GError **error);
/* query-status' "status" ("running", "paused", "postmigrate", "inmigrate", ...) */
gchar *migd_vm_lab_qemu_query_status(MigdVmLabQemu *qemu, GError **error);
/* waits up to @timeout_ms until query-status says @status */
gboolean migd_vm_lab_qemu_wait_status(MigdVmLabQemu *qemu, const gchar *status, guint timeout_ms,
				      GError **error);
/* SIGKILL now (a crash), and reaps it (bounded) */
void migd_vm_lab_qemu_kill(MigdVmLabQemu *qemu);
/* `quit`, bounded wait, SIGKILL past it */
void migd_vm_lab_qemu_stop(MigdVmLabQemu *qemu);
/* waits up to @timeout_ms for the process to end by itself; whether it did */
gboolean migd_vm_lab_qemu_wait_exit(MigdVmLabQemu *qemu, guint timeout_ms);
/* whether the process ended */
gboolean migd_vm_lab_qemu_exited(MigdVmLabQemu *qemu);
const gchar *migd_vm_lab_qemu_get_log_path(MigdVmLabQemu *qemu);

G_END_DECLS
