/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Save and resume files of the "one struct" drivers: hisi_acc_vf_save_read() /
 * hisi_acc_vf_resume_write(), mtty_save_read() / mtty_resume_write() and pds'
 * lm file all read min(total - pos, len) and never block.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "migd-sim-flat.h"
#include "migd-sim-prng.h"

typedef struct {
	guint8 *data;
	gsize size;  /* buffer size */
	gsize total; /* bytes a save file offers / a resume file received */
	gsize pos;
} MigdSimFlatFile;

static void
migd_sim_flat_file_free(gpointer data)
{
	MigdSimFlatFile *file = data;
	g_free(file->data);
	g_free(file);
}

gboolean
migd_sim_flat_init(MigdSimDevice *self, const MigdSimFlatSpec *spec, GError **error)
{
	MigdSimFlat *flat = g_new0(MigdSimFlat, 1);

	flat->spec = spec;
	flat->state = g_malloc0(spec->size);
	spec->generate(self, flat->state);
	self->priv = flat;
	return TRUE;
}

void
migd_sim_flat_finalize(MigdSimDevice *self)
{
	MigdSimFlat *flat = self->priv;

	if (flat == NULL)
		return;
	g_free(flat->state);
	g_free(flat);
	self->priv = NULL;
}

static MigdSimSession *
migd_sim_flat_new_save(MigdSimDevice *self, gsize total)
{
	MigdSimFlat *flat = self->priv;
	MigdSimFlatFile *file = g_new0(MigdSimFlatFile, 1);

	file->size = flat->spec->size;
	file->data = g_memdup2(flat->state, flat->spec->size);
	file->total = total;
	return migd_sim_device_new_session(self, MIGD_DATA_FD_SAVE, file, migd_sim_flat_file_free);
}

gint
migd_sim_flat_arc(MigdSimDevice *self, MigdState from, MigdState to, MigdSimSession **session)
{
	MigdSimFlat *flat = self->priv;
	const MigdSimFlatSpec *spec = flat->spec;

	/* a new save file holding only the PRE_COPY part (match data / header) */
	if ((from == MIGD_STATE_RUNNING && to == MIGD_STATE_PRE_COPY) ||
	    (from == MIGD_STATE_RUNNING_P2P && to == MIGD_STATE_PRE_COPY_P2P)) {
		*session = migd_sim_flat_new_save(self, spec->precopy_size);
		return 0;
	}
	if (from == MIGD_STATE_STOP && to == MIGD_STATE_STOP_COPY) {
		*session = migd_sim_flat_new_save(self, spec->size);
		return 0;
	}
	/* the device is stopped now: the rest of the state joins the same file */
	if ((from == MIGD_STATE_PRE_COPY || from == MIGD_STATE_PRE_COPY_P2P) &&
	    to == MIGD_STATE_STOP_COPY) {
		MigdSimFlatFile *file;
		if (self->session == NULL)
			return EINVAL;
		file = migd_sim_session_get_file(self->session);
		memcpy(file->data + spec->precopy_size, flat->state + spec->precopy_size,
		       spec->size - spec->precopy_size);
		file->total = spec->size;
		return 0;
	}
	if (from == MIGD_STATE_STOP && to == MIGD_STATE_RESUMING) {
		MigdSimFlatFile *file = g_new0(MigdSimFlatFile, 1);
		file->size = spec->size;
		file->data = g_malloc0(spec->size);
		*session = migd_sim_device_new_session(self, MIGD_DATA_FD_RESUME, file,
						       migd_sim_flat_file_free);
		return 0;
	}
	if (from == MIGD_STATE_RESUMING && to == MIGD_STATE_STOP) {
		MigdSimFlatFile *file;
		if (self->session == NULL)
			return EINVAL;
		file = migd_sim_session_get_file(self->session);
		return spec->finish(self, file->data, file->total, flat->state);
	}
	/* P2P arcs, STOP_COPY -> STOP, PRE_COPY -> RUNNING: nothing to do on the data */
	return 0;
}

gint
migd_sim_flat_read(MigdSimDevice *self, MigdSimSession *session, void *buf, gsize len,
		   gboolean nonblock, gsize *n_read, const void **data)
{
	MigdSimFlatFile *file = migd_sim_session_get_file(session);
	gsize n = file->pos < file->total ? MIN(len, file->total - file->pos) : 0;

	/* 0 at the end, in PRE_COPY too (the temporary end of these drivers) */
	memcpy(buf, file->data + file->pos, n);
	file->pos += n;
	*n_read = n;
	return 0;
}

gint
migd_sim_flat_write(MigdSimDevice *self, MigdSimSession *session, const void *buf, gsize len,
		    gsize *n_written)
{
	MigdSimFlat *flat = self->priv;
	const MigdSimFlatSpec *spec = flat->spec;
	MigdSimFlatFile *file = migd_sim_session_get_file(session);
	gsize before = file->total;

	if (len > file->size || file->pos > file->size - len)
		return spec->overflow_errno;
	memcpy(file->data + file->pos, buf, len);
	file->pos += len;
	file->total = file->pos;
	*n_written = len;
	/*
	 * mtty_resume_write() validates the header only on the write that completes
	 * it: later writes are taken unchecked, even after an EFAULT
	 */
	if (spec->check_at_crossing && (before >= spec->check_len || file->total < spec->check_len))
		return 0;
	/* the bytes are taken, but the write fails: hisi vf_qm_check_match(), mtty header */
	if (spec->check != NULL && file->total >= spec->check_len && !flat->match_done) {
		gint err = spec->check(self, file->data);
		if (err != 0)
			return err;
	}
	return 0;
}

gint
migd_sim_flat_write_precheck(MigdSimDevice *self, MigdSimSession *session, gsize len)
{
	MigdSimFlat *flat = self->priv;
	const MigdSimFlatSpec *spec = flat->spec;
	MigdSimFlatFile *file = migd_sim_session_get_file(session);
	gsize pos;

	if (!spec->size_check_first)
		return 0;
	/* *_disable_fd() sets f_pos = 0 */
	pos = migd_sim_session_is_disabled(session) ? 0 : file->pos;
	if (len > file->size || pos > file->size - len)
		return spec->overflow_errno;
	return 0;
}

gint
migd_sim_flat_precopy_info(MigdSimDevice *self, MigdSimSession *session, guint64 *initial_bytes,
			   guint64 *dirty_bytes)
{
	MigdSimFlatFile *file = migd_sim_session_get_file(session);

	/* initial_bytes = header/match size - pos, dirty_bytes always 0 */
	*initial_bytes = file->pos < file->total ? file->total - file->pos : 0;
	*dirty_bytes = 0;
	return 0;
}

guint64
migd_sim_flat_data_size(MigdSimDevice *self)
{
	MigdSimFlat *flat = self->priv;
	return flat->spec->size;
}

guint64
migd_sim_flat_digest(MigdSimDevice *self)
{
	MigdSimFlat *flat = self->priv;
	return migd_sim_hash(flat->state, flat->spec->size, flat->spec->size);
}

void
migd_sim_flat_touch(MigdSimDevice *self, guint64 n_units)
{
	MigdSimFlat *flat = self->priv;
	flat->spec->touch(self, flat->state, n_units);
}
