/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "dbus-test-util.h"

#define VMSTATE_NAME  "org.qemu.VMState1"
#define VMSTATE_PATH  "/org/qemu/VMState1"
#define VMSTATE_IFACE "org.qemu.VMState1"
/* QEMU's own bound on Save and Load: GDBus's default call timeout */
#define QEMU_CALL_MS 25000

/* a VM's private dbus-daemon, and the test's connection to it (as QEMU's) */
typedef struct {
	GSubprocess *process;
	gchar *address;
	GDBusConnection *connection;
} VtBus;

/* iterates the thread-default main context for @ms (fake servers run there) */
void vt_pump(guint ms);
/* a private bus listening on unix:path=@dir/@name; fails the test if it does not start */
VtBus *vt_bus_start(const gchar *dir, const gchar *name);
void vt_bus_stop(VtBus *bus);
GVariant *vt_bus_call(GDBusConnection *c, const gchar *dest, const gchar *path, const gchar *iface,
		      const gchar *method, GVariant *params, const gchar *reply_type,
		      gint timeout_ms, GError **error);
/* ListQueuedOwners(org.qemu.VMState1), as QEMU finds its helpers */
gchar **vt_queued_owners(VtBus *bus);
/* waits for @n owners of the name; returns the last one (the newest in the queue) */
gchar *vt_wait_owners(VtBus *bus, guint n);
/* QEMU's Save: the record, or NULL and @error */
GBytes *vt_save(VtBus *bus, GError **error);
/* QEMU's Load */
gboolean vt_load(VtBus *bus, GBytes *record, GError **error);
void vt_write_file(const gchar *path, const gchar *text);
/* the address without its guid, as a configuration names a bus that may restart */
gchar *vt_bus_path_address(VtBus *bus);
/* waits until device @index of @d is @expected and in no job (only reserved counts as free) */
void vt_wait_state(DtDaemon *d, guint index, const gchar *expected);
/* the newest job's path on @d */
gchar *vt_last_job(DtDaemon *d);
