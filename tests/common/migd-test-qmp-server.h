/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * A fake QEMU monitor for MigdQmp's tests, on the default main context: it
 * greets ({"QMP": ...}), answers qmp_capabilities, answers every other
 * command from a table (a return value or an error; an unknown command gets
 * CommandNotFound) or holds its reply until the test releases it, records the
 * commands it received, emits events on demand and misbehaves on demand
 * (raw bytes: garbage, an oversized message, half a message; no greeting;
 * closing). One client at a time.
 */
typedef struct _MigdTestQmpServer MigdTestQmpServer;

/* listens on the UNIX socket @path (accepting one client after another) */
MigdTestQmpServer *migd_test_qmp_server_new_listen(const gchar *path);
/* serves one end of a socketpair, greeting when @greet; *@client: the other end */
MigdTestQmpServer *migd_test_qmp_server_new_pair(gboolean greet, GIOStream **client);
/* closes the connection and waits (bounded) for its operations to end */
void migd_test_qmp_server_free(MigdTestQmpServer *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdTestQmpServer, migd_test_qmp_server_free)

/* whether the next client accepted is greeted (default TRUE) */
void migd_test_qmp_server_set_greeting(MigdTestQmpServer *self, gboolean greet);
/* @command answers {"return": @return_json} */
void migd_test_qmp_server_set_return(MigdTestQmpServer *self, const gchar *command,
				     const gchar *return_json);
/* @command answers {"error": {"class": @klass, "desc": @desc}} */
void migd_test_qmp_server_set_error(MigdTestQmpServer *self, const gchar *command,
				    const gchar *klass, const gchar *desc);
/* @command's replies wait for migd_test_qmp_server_release() */
void migd_test_qmp_server_set_hold(MigdTestQmpServer *self, const gchar *command, gboolean hold);
guint migd_test_qmp_server_get_n_held(MigdTestQmpServer *self);
/* sends the reply of the @index'th held command (in the order received) */
void migd_test_qmp_server_release(MigdTestQmpServer *self, guint index);

/* {"event": @name, "data": @data_json (NULL: none), "timestamp": {...}} */
void migd_test_qmp_server_emit_event(MigdTestQmpServer *self, const gchar *name,
				     const gchar *data_json, gint64 seconds, gint64 microseconds);
/* @len bytes as they are, after what was queued before */
void migd_test_qmp_server_send_raw(MigdTestQmpServer *self, const gchar *data, gsize len);
/* closes the connection after what was queued */
void migd_test_qmp_server_close(MigdTestQmpServer *self);

gboolean migd_test_qmp_server_is_connected(MigdTestQmpServer *self);
/* the commands received after qmp_capabilities: "NAME" or "NAME ARGUMENTS-JSON" */
GPtrArray *migd_test_qmp_server_get_commands(MigdTestQmpServer *self);
/* bytes written to the client so far */
guint64 migd_test_qmp_server_get_bytes_sent(MigdTestQmpServer *self);

G_END_DECLS
