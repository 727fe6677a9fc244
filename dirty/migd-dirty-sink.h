/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "migd-dirty-bitmap-file.h"
#include "migd.pb-c.h"

G_BEGIN_DECLS

/*
 * The destination side of dirty-bitmap streaming for one device: validates
 * each DirtyBitmapChunk against what came before (page size, window geometry,
 * rounds), merges it into the accumulated bitmap of its window, and hands a
 * local consumer the result as a sealed memfd (docs/ABI/testing/dirty-bitmap-file).
 * Memory is bounded: at most MIGD_WIRE_MAX_DIRTY_PAGES_PER_DEVICE pages of
 * windows, checked before a window is allocated.
 */

typedef struct _MigdDirtySink MigdDirtySink;

MigdDirtySink *migd_dirty_sink_new(const gchar *device_name);
void migd_dirty_sink_free(MigdDirtySink *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdDirtySink, migd_dirty_sink_free)

/* MIGD_ERROR_PROTOCOL for anything inconsistent or malformed; the sink is unchanged then */
gboolean migd_dirty_sink_merge(MigdDirtySink *self, const Migd__Wire__DirtyBitmapChunk *chunk,
			       GError **error);
guint64 migd_dirty_sink_get_dirty_pages(MigdDirtySink *self);
guint32 migd_dirty_sink_get_rounds(MigdDirtySink *self);
guint migd_dirty_sink_get_n_windows(MigdDirtySink *self);

/* a read-only snapshot of the accumulated bitmap: a sealed memfd (caller owns the fd) */
gint migd_dirty_sink_dup_fd(MigdDirtySink *self, GError **error);

G_END_DECLS
