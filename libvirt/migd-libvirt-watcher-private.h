/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Seams for tests: what libvirt's test driver cannot produce (migration events,
 * a dropped connection) is injected here and takes the same paths as the real
 * thing.
 */
#pragma once

#include "migd-libvirt-watcher.h"

G_BEGIN_DECLS

/* as if libvirt had delivered @input (LIFECYCLE, ITERATION or JOB_COMPLETED) */
void migd_libvirt_watcher_inject(MigdLibvirtWatcher *self, const MigdLibvirtInput *input);
/* as if libvirt's close callback had fired with @reason (VIR_CONNECT_CLOSE_REASON_*) */
void migd_libvirt_watcher_simulate_close(MigdLibvirtWatcher *self, gint reason);
/* probes (job questions) started so far */
guint migd_libvirt_watcher_get_probe_count(MigdLibvirtWatcher *self);

G_END_DECLS
