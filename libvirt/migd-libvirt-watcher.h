/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "migd-libvirt-tracker.h"

G_BEGIN_DECLS

/*
 * Follows outgoing migrations of the mapped domains on this host (the SOURCE
 * side) through libvirt's events and reports them through typed callbacks,
 * and passes on the lifecycle events of every domain (the DESTINATION side
 * follows incoming domains by their UUID, migd-libvirt-incoming.c). It
 * never calls vfio-migd's D-Bus API: the daemon wires the callbacks to the
 * engine (start the devices' migration, abort it with rollback).
 *
 * The connection (read-only unless asked otherwise) is opened, and events
 * registered, on a worker thread, so a hung libvirtd never blocks the main
 * loop; events arrive on the libvirt loop's main context (migd-libvirt-loop.h,
 * which must be registered first, from the same context). When the connection
 * drops (libvirt's close callback), it reconnects with exponential backoff and
 * probes every domain that was mid-migration, since events were missed.
 * While a domain migrates, its job is probed every poll interval on a worker
 * thread: a migration that fails before the switchover emits no event at all.
 *
 * Callbacks run on the main context; the watcher may be stopped or unreffed
 * from inside any of them.
 */

#define MIGD_TYPE_LIBVIRT_WATCHER (migd_libvirt_watcher_get_type())
G_DECLARE_FINAL_TYPE(MigdLibvirtWatcher, migd_libvirt_watcher, MIGD, LIBVIRT_WATCHER, GObject)

/* one migration, as the callbacks see it; valid during the callback only */
typedef struct {
	const MigdLibvirtDomainMap *map; /* which devices, and the peer to send them to */
	const gchar *uuid;		 /* the domain */
	const gchar *name;
	guint64 id;	   /* counts from 1 per watcher; the same for all of one migration */
	gboolean late;	   /* started: seen only at the switchover or the end; no pre-copy */
	gboolean postcopy; /* switchover: post-copy, the guest already runs on the peer */
} MigdLibvirtMigration;

typedef struct {
	/* every callback is optional */
	void (*started)(MigdLibvirtWatcher *watcher, const MigdLibvirtMigration *migration,
			gpointer user_data);
	void (*switchover)(MigdLibvirtWatcher *watcher, const MigdLibvirtMigration *migration,
			   gpointer user_data);
	void (*finished)(MigdLibvirtWatcher *watcher, const MigdLibvirtMigration *migration,
			 gpointer user_data);
	void (*failed)(MigdLibvirtWatcher *watcher, const MigdLibvirtMigration *migration,
		       MigdLibvirtEnd end, const gchar *message, gpointer user_data);
	/* connected to libvirt, or lost it / could not connect (@message says why) */
	void (*connection_changed)(MigdLibvirtWatcher *watcher, gboolean connected,
				   const gchar *message, gpointer user_data);
	/* every event of a mapped domain, before it is interpreted (logs, tests) */
	void (*event)(MigdLibvirtWatcher *watcher, const MigdLibvirtInput *input,
		      gpointer user_data);
	/*
	 * every LIFECYCLE event of any domain, mapped or not (the destination
	 * side follows incoming domains it has no map for); before the mapped
	 * domains' callbacks
	 */
	void (*lifecycle)(MigdLibvirtWatcher *watcher, const MigdLibvirtInput *input,
			  gpointer user_data);
} MigdLibvirtWatcherCallbacks;

typedef enum {
	MIGD_LIBVIRT_WATCHER_NONE = 0,
	/* open the connection read-write: needed by migd_libvirt_watcher_abort_job() */
	MIGD_LIBVIRT_WATCHER_READ_WRITE = 1 << 0,
} MigdLibvirtWatcherFlags;

/* @uri: e.g. "qemu:///system"; @maps: MigdLibvirtDomainMap*, copied;
 * @callbacks: copied */
MigdLibvirtWatcher *migd_libvirt_watcher_new(const gchar *uri, GPtrArray *maps,
					     MigdLibvirtWatcherFlags flags,
					     const MigdLibvirtWatcherCallbacks *callbacks,
					     gpointer user_data);
/* reconnection delays: @initial_ms, doubled after each failure up to @max_ms
 * (defaults 1000 and 30000) */
void migd_libvirt_watcher_set_backoff(MigdLibvirtWatcher *self, guint initial_ms, guint max_ms);
/* how often a migrating domain's job is probed (default 1000 ms) */
void migd_libvirt_watcher_set_poll_interval(MigdLibvirtWatcher *self, guint interval_ms);

/* starts connecting (in the background); fails only when the libvirt loop is not
 * registered on the calling thread's main context, or when already started */
gboolean migd_libvirt_watcher_start(MigdLibvirtWatcher *self, GError **error);
/* stops at once: no callback runs after this returns; the connection is closed
 * now, or from an idle when called from inside a libvirt callback */
void migd_libvirt_watcher_stop(MigdLibvirtWatcher *self);
gboolean migd_libvirt_watcher_is_connected(MigdLibvirtWatcher *self);
/* connection attempts so far, successful or not */
guint migd_libvirt_watcher_get_connect_attempts(MigdLibvirtWatcher *self);
const MigdLibvirtDomainMap *migd_libvirt_watcher_lookup(MigdLibvirtWatcher *self, const gchar *uuid,
							const gchar *name);

/*
 * Asks libvirt to abort the domain's current job (virDomainAbortJob), e.g.
 * when the devices cannot follow the migration. On a worker thread; needs
 * MIGD_LIBVIRT_WATCHER_READ_WRITE and a connection. Errors: MIGD_ERROR_FAILED,
 * MIGD_ERROR_NOT_SUPPORTED (driver or read-only), MIGD_ERROR_INVALID_ARGUMENT
 * (no such domain).
 */
void migd_libvirt_watcher_abort_job(MigdLibvirtWatcher *self, const gchar *uuid,
				    GCancellable *cancellable, GAsyncReadyCallback callback,
				    gpointer user_data);
gboolean migd_libvirt_watcher_abort_job_finish(MigdLibvirtWatcher *self, GAsyncResult *result,
					       GError **error);

/*
 * virDomainGetState of the domain @uuid, on a worker thread: @state a
 * virDomainState, @reason its reason. Errors: MIGD_ERROR_INVALID_ARGUMENT (no
 * such domain), MIGD_ERROR_FAILED (not connected, or libvirt's error).
 */
void migd_libvirt_watcher_get_state(MigdLibvirtWatcher *self, const gchar *uuid,
				    GCancellable *cancellable, GAsyncReadyCallback callback,
				    gpointer user_data);
gboolean migd_libvirt_watcher_get_state_finish(MigdLibvirtWatcher *self, GAsyncResult *result,
					       gint *state, gint *reason, GError **error);

G_END_DECLS
