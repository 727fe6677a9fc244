/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-manager.h"

G_BEGIN_DECLS

/*
 * The source side of the libvirt integration (docs/libvirt.md): libvirt's
 * migration of a mapped domain starts the device migration of its devices to
 * the domain's peer; libvirt's job failing cancels it (the devices roll back);
 * with read-write, a device migration that fails aborts libvirt's job.
 * Configured by [libvirt] (uri, read-write, plain, cert, key, ca) and
 * [libvirt-domain NAME] (devices, peer) groups.
 */
typedef struct _MigdLibvirtBridge MigdLibvirtBridge;

/* NULL without an error when the configuration has no [libvirt] group */
MigdLibvirtBridge *migd_libvirt_bridge_new(GKeyFile *config, MigdManager *manager, GError **error);
void migd_libvirt_bridge_free(MigdLibvirtBridge *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdLibvirtBridge, migd_libvirt_bridge_free)

G_END_DECLS
