/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* the polkit actions of data/org.vfiomigd.migd.policy */
#define MIGD_AUTHORITY_ACTION_READ   "org.vfiomigd.migd.read"
#define MIGD_AUTHORITY_ACTION_CHANGE "org.vfiomigd.migd.change"

/* how long polkit may take: an interactive check waits for a human at an agent */
#define MIGD_AUTHORITY_TIMEOUT_MS	      (25 * 1000)
#define MIGD_AUTHORITY_INTERACTIVE_TIMEOUT_MS (120 * 1000)

/*
 * Decides whether a D-Bus caller may call a method of vfio-migd's interfaces:
 * root (and the daemon's own uid, which on the system bus is root and on a
 * session bus is the only user that can connect) always; anyone else when polkit
 * (org.freedesktop.PolicyKit1 on the same bus, spoken to over D-Bus) grants the
 * method's action. polkit absent or failing means refused: fail closed.
 */
#define MIGD_TYPE_AUTHORITY (migd_authority_get_type())
G_DECLARE_FINAL_TYPE(MigdAuthority, migd_authority, MIGD, AUTHORITY, GObject)

MigdAuthority *migd_authority_new(void);

/*
 * The action guarding @interface_name.@method_name: the one table, each method
 * once. NULL for a method the table lacks; the check treats that as the change
 * action, so that a new method is refused to others until it is classified.
 */
const gchar *migd_authority_lookup_action(const gchar *interface_name, const gchar *method_name);

/*
 * Checks the caller of @invocation; calls @callback on the thread-default main
 * context of the call. Fails with MIGD_ERROR_NOT_AUTHORIZED, its message naming
 * the method, the action and why ("ListDevices needs root or the polkit action
 * org.vfiomigd.migd.read (not authorized: ...)").
 */
void migd_authority_check_async(MigdAuthority *self, GDBusMethodInvocation *invocation,
				GAsyncReadyCallback callback, gpointer user_data);
gboolean migd_authority_check_finish(MigdAuthority *self, GAsyncResult *result, GError **error);

/*
 * For a skeleton's GDBusInterfaceVTable.method_call: checks the caller, then calls
 * @method_call (the generated dispatcher) with @skeleton as its user data, or
 * returns the refusal (logged with the caller's uid and pid). Takes @invocation.
 */
void migd_authority_dispatch(MigdAuthority *self, GDBusInterfaceSkeleton *skeleton,
			     GDBusInterfaceMethodCallFunc method_call,
			     GDBusMethodInvocation *invocation);

G_END_DECLS
