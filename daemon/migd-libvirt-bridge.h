/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-libvirt-watcher.h"
#include "migd-manager.h"

G_BEGIN_DECLS

/*
 * The libvirt integration (docs/libvirt.md, docs/coordination.md).
 *
 * Source side: libvirt's migration of a mapped domain starts the device
 * migration of its devices to the domain's peer with switchover=manual and
 * the domain's UUID as migration id; libvirt pausing the guest for the
 * switchover (SUSPENDED_MIGRATED) calls Job.Switchover; libvirt's job
 * failing rolls the devices back (Job.Rollback after the switchover, a cancel
 * before it); with read-write, a device job that fails while libvirt migrates
 * aborts libvirt's job.
 *
 * Destination side (migd-libvirt-incoming.h): the incoming job of the hook's
 * expectation starts when libvirt resumes the domain here and is abandoned
 * when libvirt stops it.
 *
 * Configured by [libvirt] (uri, read-write, plain, insecure-plain-tcp, cert,
 * key, ca, handover-timeout-s) and [libvirt-domain NAME] (devices, peer).
 */
typedef struct _MigdLibvirtBridge MigdLibvirtBridge;

/* NULL without an error when the configuration has no [libvirt] group */
MigdLibvirtBridge *migd_libvirt_bridge_new(GKeyFile *config, MigdManager *manager, GError **error);
void migd_libvirt_bridge_free(MigdLibvirtBridge *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdLibvirtBridge, migd_libvirt_bridge_free)

/* ---- seams for tests (tests/libvirt/test-libvirt-bridge.c) ---- */

/*
 * Stands in for migd_manager_migrate() + migd_manager_get_job(): returns the
 * job started (a new reference) and its id, or NULL and @error.
 */
typedef MigdJob *(*MigdLibvirtBridgeMigrateFunc)(const gchar *const *devices, const gchar *peer,
						 const MigdMigrateOptions *options, guint64 *id,
						 gpointer user_data, GError **error);
/* stands in for migd_libvirt_watcher_abort_job() (only called with read-write) */
typedef void (*MigdLibvirtBridgeAbortFunc)(const gchar *uuid, gpointer user_data);
void migd_libvirt_bridge_set_test_funcs(MigdLibvirtBridge *self,
					MigdLibvirtBridgeMigrateFunc migrate,
					MigdLibvirtBridgeAbortFunc abort, gpointer user_data);
/* the watcher, to inject events (migd-libvirt-watcher-private.h) */
MigdLibvirtWatcher *migd_libvirt_bridge_get_watcher(MigdLibvirtBridge *self);

G_END_DECLS
