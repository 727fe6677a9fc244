/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-sim-device-private.h"

G_BEGIN_DECLS

/*
 * The drivers whose whole device state is one small struct that the save file
 * copies and the resume file fills (hisi_acc, mtty, pds): "read returns
 * min(total - pos, len)", "write beyond the size fails", a compatibility check
 * once the header has arrived, and a completeness check on RESUMING -> STOP.
 */
typedef struct {
	gsize size;	    /* the full state (STOP_COPY file length, MIG_DATA_SIZE) */
	gsize precopy_size; /* what a PRE_COPY file holds before STOP_COPY (0: no PRE_COPY) */
	gsize check_len;    /* run @check once this many bytes were written (0: never) */
	gint (*check)(MigdSimDevice *self, const guint8 *data);
	/* mtty: @check runs once, on the write that crosses @check_len (else until it passes) */
	gboolean check_at_crossing;
	gint overflow_errno; /* a write past @size */
	/*
	 * hisi_acc, mtty: the size is checked before the lock and "disabled", and
	 * disabling the file rewinds it (f_pos = 0)
	 */
	gboolean size_check_first;
	/* RESUMING -> STOP with @len bytes written: 0 and load into @state, or an errno */
	gint (*finish)(MigdSimDevice *self, const guint8 *data, gsize len, guint8 *state);
	void (*generate)(MigdSimDevice *self, guint8 *state);
	void (*touch)(MigdSimDevice *self, guint8 *state, guint64 n_units);
} MigdSimFlatSpec;

/* self->priv of a flat backend */
typedef struct {
	const MigdSimFlatSpec *spec;
	guint8 *state;
	gboolean match_done; /* hisi_acc: set once, never cleared */
} MigdSimFlat;

gboolean migd_sim_flat_init(MigdSimDevice *self, const MigdSimFlatSpec *spec, GError **error);
void migd_sim_flat_finalize(MigdSimDevice *self);
gint migd_sim_flat_arc(MigdSimDevice *self, MigdState from, MigdState to, MigdSimSession **session);
gint migd_sim_flat_read(MigdSimDevice *self, MigdSimSession *session, void *buf, gsize len,
			gboolean nonblock, gsize *n_read, const void **data);
gint migd_sim_flat_write(MigdSimDevice *self, MigdSimSession *session, const void *buf, gsize len,
			 gsize *n_written);
gint migd_sim_flat_write_precheck(MigdSimDevice *self, MigdSimSession *session, gsize len);
gint migd_sim_flat_precopy_info(MigdSimDevice *self, MigdSimSession *session,
				guint64 *initial_bytes, guint64 *dirty_bytes);
guint64 migd_sim_flat_data_size(MigdSimDevice *self);
guint64 migd_sim_flat_digest(MigdSimDevice *self);
void migd_sim_flat_touch(MigdSimDevice *self, guint64 n_units);

G_END_DECLS
