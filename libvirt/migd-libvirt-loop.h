/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * libvirt's event loop on a GLib main context (virEventRegisterImpl).
 *
 * libvirt delivers domain events, connection-close notifications and keepalives
 * only through an event loop the application registers. This one puts every
 * libvirt handle and timer on the GMainContext that was thread-default when
 * migd_libvirt_loop_register() was first called, so that libvirt callbacks run
 * from the daemon's one main loop: no extra thread, no polling.
 *
 * libvirt's rules, which this implementation keeps:
 *  - the add/update/remove functions may be called from any thread (libvirt's
 *    client library calls them from whichever thread runs an API call);
 *  - a handle or timer may be removed from within its own callback;
 *  - a free callback is never called from within the remove function (libvirt
 *    would deadlock on its own locks) but later, from an idle of the context;
 *  - timeout 0 fires on every iteration of the loop, -1 disables the timer, and
 *    timers are periodic until updated or removed;
 *  - a handle watching no events (0) is not polled at all, so a hung-up fd
 *    libvirt is not interested in cannot make the loop spin.
 */

/*
 * Registers the implementation with libvirt, once per process, bound to the
 * calling thread's thread-default GMainContext; also routes libvirt's error
 * reports to g_debug() instead of libvirt's default printing on stderr. A
 * second call from the same context does nothing; from another context it
 * fails with MIGD_ERROR_BUSY, since libvirt cannot have two loops.
 */
gboolean migd_libvirt_loop_register(GError **error);
gboolean migd_libvirt_loop_is_registered(void);
/* the context libvirt's callbacks run on; NULL before registration (transfer none) */
GMainContext *migd_libvirt_loop_get_context(void);
/* handles and timers libvirt added whose free callback has not run yet (for tests) */
guint migd_libvirt_loop_count_live(void);

G_END_DECLS
