/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The VMM adapter tests' stand-in for QEMU's side of dbus-vmstate: a private
 * bus per VM, finding the helpers as QEMU does, Save and Load; and the waits
 * those tests share.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <string.h>

#include "vmm-test-util.h"

void
vt_pump(guint ms)
{
	gint64 until = g_get_monotonic_time() + (gint64)ms * 1000;

	do {
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_usleep(1000);
	} while (g_get_monotonic_time() < until);
}

VtBus *
vt_bus_start(const gchar *dir, const gchar *name)
{
	VtBus *bus = g_new0(VtBus, 1);
	g_autofree gchar *listen = g_strdup_printf("--address=unix:path=%s/%s", dir, name);
	g_autoptr(GError) error = NULL;
	g_autoptr(GDataInputStream) out = NULL;

	bus->process = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, "dbus-daemon",
					"--session", "--nofork", "--print-address=1", listen, NULL);
	if (bus->process == NULL)
		fail_msg("dbus-daemon: %s", error->message);
	out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(bus->process));
	bus->address = g_data_input_stream_read_line(out, NULL, NULL, &error);
	if (bus->address == NULL)
		fail_msg("dbus-daemon printed no address: %s",
			 error != NULL ? error->message : "EOF");
	bus->connection = g_dbus_connection_new_for_address_sync(
	    bus->address,
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL, NULL, &error);
	if (bus->connection == NULL)
		fail_msg("cannot connect to %s: %s", bus->address, error->message);
	g_dbus_connection_set_exit_on_close(bus->connection, FALSE);
	return bus;
}
void
vt_bus_stop(VtBus *bus)
{
	if (bus == NULL)
		return;
	g_dbus_connection_close_sync(bus->connection, NULL, NULL);
	g_object_unref(bus->connection);
	g_subprocess_send_signal(bus->process, SIGTERM);
	g_subprocess_wait(bus->process, NULL, NULL);
	g_object_unref(bus->process);
	g_free(bus->address);
	g_free(bus);
}
GVariant *
vt_bus_call(GDBusConnection *c, const gchar *dest, const gchar *path, const gchar *iface,
	    const gchar *method, GVariant *params, const gchar *reply_type, gint timeout_ms,
	    GError **error)
{
	return g_dbus_connection_call_sync(c, dest, path, iface, method, params,
					   reply_type != NULL ? G_VARIANT_TYPE(reply_type) : NULL,
					   G_DBUS_CALL_FLAGS_NONE, timeout_ms, NULL, error);
}
/* ListQueuedOwners(org.qemu.VMState1), as QEMU finds its helpers */
gchar **
vt_queued_owners(VtBus *bus)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    vt_bus_call(bus->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			"org.freedesktop.DBus", "ListQueuedOwners",
			g_variant_new("(s)", VMSTATE_NAME), "(as)", 5000, &error);
	gchar **owners = NULL;

	if (reply == NULL)
		return g_new0(gchar *, 1);
	g_variant_get(reply, "(^as)", &owners);
	return owners;
}
/* waits for @n owners of the name; returns the last one (the newest in the queue) */
gchar *
vt_wait_owners(VtBus *bus, guint n)
{
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;

	for (;;) {
		g_auto(GStrv) owners = vt_queued_owners(bus);
		if (g_strv_length(owners) >= n)
			return g_strdup(owners[g_strv_length(owners) - 1]);
		if (g_get_monotonic_time() > deadline)
			fail_msg("%u owners of " VMSTATE_NAME " on %s after %d s", n, bus->address,
				 DT_TIMEOUT_S);
		vt_pump(20);
	}
}
/* QEMU's Save: the record, or NULL and @error */
GBytes *
vt_save(VtBus *bus, GError **error)
{
	g_autofree gchar *owner = vt_wait_owners(bus, 1);
	g_autoptr(GVariant) reply = vt_bus_call(bus->connection, owner, VMSTATE_PATH, VMSTATE_IFACE,
						"Save", NULL, "(ay)", QEMU_CALL_MS, error);
	g_autoptr(GVariant) data = NULL;

	if (reply == NULL)
		return NULL;
	g_variant_get(reply, "(@ay)", &data);
	return g_variant_get_data_as_bytes(data);
}
gboolean
vt_load(VtBus *bus, GBytes *record, GError **error)
{
	g_autofree gchar *owner = vt_wait_owners(bus, 1);
	g_autoptr(GVariant) reply =
	    vt_bus_call(bus->connection, owner, VMSTATE_PATH, VMSTATE_IFACE, "Load",
			g_variant_new("(@ay)", g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING,
									record, TRUE)),
			NULL, QEMU_CALL_MS, error);
	return reply != NULL;
}
void
vt_write_file(const gchar *path, const gchar *text)
{
	g_autoptr(GError) error = NULL;

	if (!g_file_set_contents(path, text, -1, &error))
		fail_msg("%s: %s", path, error->message);
}
/* the address without its guid, as a configuration names a bus that may restart */
gchar *
vt_bus_path_address(VtBus *bus)
{
	const gchar *guid = strstr(bus->address, ",guid=");
	return g_strndup(bus->address,
			 guid != NULL ? (gsize)(guid - bus->address) : strlen(bus->address));
}
/* waits (the engine settles asynchronously) until device @index is @expected and in no job
 * (an expectation's reservation is no job) */
void
vt_wait_state(DtDaemon *d, guint index, const gchar *expected)
{
	gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;

	for (;;) {
		g_autoptr(GVariant) props = dt_device_props(d, index);
		const gchar *state = NULL;
		gboolean busy = TRUE;

		g_variant_lookup(props, "state", "&s", &state);
		g_variant_lookup(props, "busy", "b", &busy);
		/* only reserved by the VM's next expectation: in no job */
		if (g_variant_lookup(props, "reserved-for", "&s", NULL))
			busy = FALSE;
		if (!busy && g_strcmp0(state, expected) == 0)
			return;
		if (g_get_monotonic_time() > deadline)
			fail_msg("device %u: %s%s after %d s, expected %s", index, state,
				 busy ? " (busy)" : "", DT_TIMEOUT_S, expected);
		vt_pump(20);
	}
}
/* the newest job's path on @d */
gchar *
vt_last_job(DtDaemon *d)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = dt_manager_call(d, "ListJobs", NULL, &error);
	g_autofree const gchar **paths = NULL;
	gsize n = 0;

	if (reply == NULL)
		fail_msg("ListJobs: %s", error->message);
	{
		g_autoptr(GVariant) list = g_variant_get_child_value(reply, 0);
		paths = g_variant_get_objv(list, &n);
		assert_true(n > 0);
		return g_strdup(paths[n - 1]);
	}
}
