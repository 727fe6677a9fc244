/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-manager.h"

G_BEGIN_DECLS

/*
 * The destination side of the libvirt integration (docs/libvirt.md,
 * docs/coordination.md): the qemu hook's Expect tagged the incoming migration
 * with the domain's UUID, so the incoming job whose migration id is a
 * domain's UUID holds that domain's devices. libvirt resuming the domain here
 * (RESUMED_*: the guest runs) starts them (Job.Start, once the job reached
 * the handover); libvirt stopping it before that (STOPPED_*: the incoming
 * migration failed or the domain was destroyed) abandons them (Job.Abandon:
 * devices reset, the source rolls back). A domain stopped before its job
 * appeared cancels its expectation.
 */
typedef struct _MigdLibvirtIncoming MigdLibvirtIncoming;

/* follows @manager's incoming jobs (job-added) */
MigdLibvirtIncoming *migd_libvirt_incoming_new(MigdManager *manager);
void migd_libvirt_incoming_free(MigdLibvirtIncoming *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdLibvirtIncoming, migd_libvirt_incoming_free)

/* a job appeared (the manager's job-added does this; tests call it directly) */
void migd_libvirt_incoming_add_job(MigdLibvirtIncoming *self, guint64 id, MigdJob *job);
/* one lifecycle event (virDomainEventType, its detail) of any domain */
void migd_libvirt_incoming_handle_event(MigdLibvirtIncoming *self, const gchar *uuid,
					const gchar *name, gint event, gint detail);
/*
 * The UUIDs of the domains whose jobs still wait for libvirt's word (neither
 * started nor abandoned): after a reconnection, events may have been missed,
 * so their state is asked (a NULL-terminated array for g_strfreev)
 */
gchar **migd_libvirt_incoming_list_waiting(MigdLibvirtIncoming *self);
/* the number of incoming jobs followed (tests) */
guint migd_libvirt_incoming_get_n_jobs(MigdLibvirtIncoming *self);

G_END_DECLS
