/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mlx5_vfio_pci (drivers/vfio/pci/mlx5/{main.c,cmd.c}): asynchronous SAVEs into
 * a queue the reader drains, blocking reads, ENOMSG as the PRE_COPY temporary
 * end, and PRECOPY_INFO starting the next incremental SAVE.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <poll.h>

#include "migd-sim-device-private.h"
#include "migd-sim-mlx5-stream.h"
#include "migd-sim-prng.h"

/* self->priv */
typedef struct {
	MigdSimPages *pages;
	guint64 seq;
	gint64 dirty_clock_us;
	gdouble dirty_carry; /* bytes dirtied but not yet a whole page */
} MigdSimMlx5;

typedef struct {
	GPtrArray *images; /* MigdSimMlx5Image, stream order */
	guint cur;	   /* the image holding pos */
	guint64 pos;
	guint64 max_pos;
	guint64 initial_bytes; /* pre_copy_initial_bytes */
	gboolean final;	       /* the STOP_COPY image is queued: EOS after max_pos */
	guint64 save_rate;
	/* read-ahead: stream bytes [ahead_pos, ahead_pos + ahead_len) at ahead + ahead_off */
	guint8 *ahead;
	gsize ahead_size;
	guint64 ahead_pos;
	gsize ahead_off;
	gsize ahead_len;
} MigdSimMlx5SaveFile;

typedef struct {
	MigdSimMlx5Loader *loader;
	gboolean error; /* MLX5_MIGF_STATE_ERROR */
} MigdSimMlx5ResumeFile;

static void
migd_sim_mlx5_save_file_free(gpointer data)
{
	MigdSimMlx5SaveFile *file = data;
	g_ptr_array_unref(file->images);
	g_free(file->ahead);
	g_free(file);
}

static void
migd_sim_mlx5_resume_file_free(gpointer data)
{
	MigdSimMlx5ResumeFile *file = data;
	migd_sim_mlx5_loader_free(file->loader);
	g_free(file);
}

static gboolean
migd_sim_mlx5_precopy(MigdState state)
{
	return state == MIGD_STATE_PRE_COPY || state == MIGD_STATE_PRE_COPY_P2P;
}

/* the guest keeps changing device state while the device runs in PRE_COPY */
static void
migd_sim_mlx5_advance_dirty(MigdSimDevice *self)
{
	MigdSimMlx5 *mlx5 = self->priv;
	gint64 now = g_get_monotonic_time();
	gdouble bytes;
	guint64 n;

	if (migd_sim_mlx5_precopy(self->state) && self->config->dirty_rate > 0) {
		bytes = mlx5->dirty_carry + (gdouble)(now - mlx5->dirty_clock_us) *
						(gdouble)self->config->dirty_rate / G_USEC_PER_SEC;
		n = (guint64)floor(bytes / MIGD_SIM_PAGE_SIZE);
		mlx5->dirty_carry = bytes - (gdouble)n * MIGD_SIM_PAGE_SIZE;
		migd_sim_pages_touch(mlx5->pages, MIN(n, mlx5->pages->n_pages));
	}
	mlx5->dirty_clock_us = now;
}

static guint64
migd_sim_mlx5_full_image_len(MigdSimDevice *self)
{
	MigdSimMlx5 *mlx5 = self->priv;
	return MIGD_SIM_MLX5_SIZE_RECORD + migd_sim_mlx5_image_estimate(mlx5->pages->n_pages) -
	       (MIGD_SIM_PAGE_SIZE -
		migd_sim_pages_page_len(mlx5->pages->size, mlx5->pages->n_pages - 1));
}

/* a SAVE command: snapshot now, bytes become readable at save_rate from its start */
static void
migd_sim_mlx5_queue_save(MigdSimDevice *self, MigdSimMlx5SaveFile *file, gboolean full)
{
	MigdSimMlx5 *mlx5 = self->priv;
	gboolean first = file->images->len == 0;
	MigdSimMlx5Image *img;
	gint64 now = g_get_monotonic_time();

	if (full && migd_sim_pages_seeded(mlx5->pages)) {
		/* every key is the seeded one: the image generates them, nothing is listed */
		migd_sim_pages_clear_dirty(mlx5->pages);
		img = migd_sim_mlx5_image_new_seeded(++mlx5->seq, mlx5->pages->size,
						     mlx5->pages->seed, first,
						     migd_sim_mlx5_full_image_len(self));
	} else {
		img = migd_sim_mlx5_image_new(++mlx5->seq, mlx5->pages->size,
					      migd_sim_pages_snapshot(mlx5->pages, !full), first,
					      migd_sim_mlx5_full_image_len(self));
	}

	img->file_off = file->max_pos;
	img->start_us = now;
	if (!first) {
		MigdSimMlx5Image *prev = g_ptr_array_index(file->images, file->images->len - 1);
		img->start_us =
		    MAX(now, prev->start_us + migd_sim_rate_us(prev->len, file->save_rate));
	}
	file->max_pos += img->len;
	g_ptr_array_add(file->images, img);
	g_cond_broadcast(&self->cond);
}

static MigdSimSession *
migd_sim_mlx5_new_save(MigdSimDevice *self)
{
	MigdSimMlx5SaveFile *file = g_new0(MigdSimMlx5SaveFile, 1);

	file->images = g_ptr_array_new_with_free_func((GDestroyNotify)migd_sim_mlx5_image_unref);
	file->save_rate = self->config->save_rate;
	migd_sim_mlx5_queue_save(self, file, TRUE);
	return migd_sim_device_new_session(self, MIGD_DATA_FD_SAVE, file,
					   migd_sim_mlx5_save_file_free);
}

/* mlx5vf_pci_step_device_state_locked() */
static gint
migd_sim_mlx5_arc(MigdSimDevice *self, MigdState from, MigdState to, MigdSimSession **session)
{
	MigdSimMlx5 *mlx5 = self->priv;

	migd_sim_mlx5_advance_dirty(self);
	/* RUNNING -> PRE_COPY: a tracked SAVE (set_track=1): dirty pages count from here */
	if ((from == MIGD_STATE_RUNNING && to == MIGD_STATE_PRE_COPY) ||
	    (from == MIGD_STATE_RUNNING_P2P && to == MIGD_STATE_PRE_COPY_P2P)) {
		MigdSimMlx5SaveFile *file;
		migd_sim_pages_clear_dirty(mlx5->pages);
		*session = migd_sim_mlx5_new_save(self);
		file = migd_sim_session_get_file(*session);
		file->initial_bytes = file->max_pos;
		return 0;
	}
	/* STOP -> STOP_COPY: a full, untracked SAVE */
	if (from == MIGD_STATE_STOP && to == MIGD_STATE_STOP_COPY) {
		MigdSimMlx5SaveFile *file;
		*session = migd_sim_mlx5_new_save(self);
		file = migd_sim_session_get_file(*session);
		file->final = TRUE;
		return 0;
	}
	/* PRE_COPY_P2P -> STOP_COPY: SUSPEND + the final incremental SAVE */
	if (from == MIGD_STATE_PRE_COPY_P2P && to == MIGD_STATE_STOP_COPY) {
		MigdSimMlx5SaveFile *file;
		if (self->session == NULL)
			return EINVAL;
		file = migd_sim_session_get_file(self->session);
		migd_sim_mlx5_queue_save(self, file, FALSE);
		file->final = TRUE;
		return 0;
	}
	if (from == MIGD_STATE_STOP && to == MIGD_STATE_RESUMING) {
		MigdSimMlx5ResumeFile *file = g_new0(MigdSimMlx5ResumeFile, 1);
		file->loader = migd_sim_mlx5_loader_new(mlx5->pages);
		*session = migd_sim_device_new_session(self, MIGD_DATA_FD_RESUME, file,
						       migd_sim_mlx5_resume_file_free);
		return 0;
	}
	/* RESUMING -> STOP only disables the file (images were LOADed during write()) */
	return 0;
}

/* bytes of the image at @file->cur readable now; *@when: when more will be */
static guint64
migd_sim_mlx5_available(MigdSimMlx5SaveFile *file, gint64 now, gint64 *when)
{
	MigdSimMlx5Image *img;
	guint64 done;

	while (file->cur + 1 < file->images->len) {
		img = g_ptr_array_index(file->images, file->cur);
		if (file->pos < img->file_off + img->len)
			break;
		file->cur++;
	}
	img = g_ptr_array_index(file->images, file->cur);
	if (file->save_rate == 0 ||
	    now >= img->start_us + migd_sim_rate_us(img->len, file->save_rate)) {
		done = img->len;
	} else if (now <= img->start_us) {
		done = 0;
	} else {
		done = (guint64)((gdouble)(now - img->start_us) * (gdouble)file->save_rate /
				 G_USEC_PER_SEC);
		done = MIN(done, img->len);
	}
	/* the next 64 KiB, or the rest of the image */
	*when = img->start_us + migd_sim_rate_us(MIN(img->len, done + 65536), file->save_rate);
	return img->file_off + done > file->pos ? img->file_off + done - file->pos : 0;
}

/* stream bytes [pos, pos + @n) into @buf; all of them are available and in one image */
static void
migd_sim_mlx5_copy_out(MigdSimMlx5SaveFile *file, guint8 *buf, gsize n)
{
	MigdSimMlx5Image *img = g_ptr_array_index(file->images, file->cur);
	migd_sim_mlx5_image_read(img, file->pos - img->file_off, buf, n);
}

/*
 * Read-ahead, like mlx5's chunk mode preparing the next chunk while the user
 * reads this one: generates what the next read will likely ask for, so content
 * generation overlaps the daemon's copy
 */
static void
migd_sim_mlx5_prefetch(MigdSimDevice *self, MigdSimSession *session, gsize len)
{
	MigdSimMlx5SaveFile *file = migd_sim_session_get_file(session);
	gint64 when = 0;
	guint64 avail;

	if (file->ahead_len > 0 || file->pos >= file->max_pos)
		return;
	avail = migd_sim_mlx5_available(file, g_get_monotonic_time(), &when);
	len = (gsize)MIN((guint64)len, avail);
	if (len == 0)
		return;
	if (file->ahead_size < len) {
		g_free(file->ahead);
		file->ahead = g_malloc(len);
		file->ahead_size = len;
	}
	migd_sim_mlx5_copy_out(file, file->ahead, len);
	file->ahead_pos = file->pos;
	file->ahead_off = 0;
	file->ahead_len = len;
}

/* mlx5vf_save_read() */
static gint
migd_sim_mlx5_read(MigdSimDevice *self, MigdSimSession *session, void *buf, gsize len,
		   gboolean nonblock, gsize *n_read, const void **data)
{
	MigdSimMlx5SaveFile *file = migd_sim_session_get_file(session);

	migd_sim_mlx5_advance_dirty(self);
	for (;;) {
		gint64 when = 0;
		guint64 avail;

		if (migd_sim_session_is_disabled(session) || migd_sim_session_is_hung_up(session))
			return ENODEV;
		if (file->pos >= file->max_pos) {
			/* nothing queued: the temporary end in PRE_COPY, the end in STOP_COPY */
			if (!file->final)
				return ENOMSG;
			*n_read = 0;
			return 0;
		}
		avail = migd_sim_mlx5_available(file, g_get_monotonic_time(), &when);
		if (avail > 0) {
			gsize n = (gsize)MIN((guint64)len, avail);
			/* prepared by the read-ahead: hand it out as it is */
			if (file->ahead_len > 0 && file->ahead_pos == file->pos) {
				n = MIN(n, file->ahead_len);
				*data = file->ahead + file->ahead_off;
				file->ahead_pos += n;
				file->ahead_off += n;
				file->ahead_len -= n;
			} else {
				migd_sim_mlx5_copy_out(file, buf, n);
			}
			file->pos += n;
			*n_read = n;
			return 0;
		}
		/* a SAVE in progress: wait_event_interruptible(), or EAGAIN */
		if (nonblock)
			return EAGAIN;
		g_cond_wait_until(&self->cond, &self->lock, when);
	}
}

/* mlx5vf_save_poll(): readable when data is queued or the save is complete */
static gint
migd_sim_mlx5_poll(MigdSimDevice *self, MigdSimSession *session, gshort events, gint timeout_ms,
		   gshort *revents)
{
	MigdSimMlx5SaveFile *file;
	gint64 deadline =
	    timeout_ms < 0 ? G_MAXINT64 : g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	*revents = 0;
	if (migd_sim_session_get_direction(session) != MIGD_DATA_FD_SAVE) {
		*revents = events & POLLOUT;
		return 0;
	}
	file = migd_sim_session_get_file(session);
	for (;;) {
		gint64 now = g_get_monotonic_time();
		gint64 when = G_MAXINT64;

		if (migd_sim_session_is_disabled(session)) {
			*revents = POLLIN | POLLRDHUP;
			return 0;
		}
		if (file->pos >= file->max_pos && file->final) {
			*revents = POLLIN;
			return 0;
		}
		if (file->pos < file->max_pos && migd_sim_mlx5_available(file, now, &when) > 0) {
			*revents = events & POLLIN;
			return 0;
		}
		if (now >= deadline || migd_sim_session_is_hung_up(session))
			return 0;
		g_cond_wait_until(&self->cond, &self->lock, MIN(when, deadline));
	}
}

/* mlx5vf_precopy_ioctl() */
static gint
migd_sim_mlx5_precopy_info(MigdSimDevice *self, MigdSimSession *session, guint64 *initial_bytes,
			   guint64 *dirty_bytes)
{
	MigdSimMlx5 *mlx5 = self->priv;
	MigdSimMlx5SaveFile *file = migd_sim_session_get_file(session);
	guint64 inc_length = 0;
	gboolean end_of_data = FALSE;

	migd_sim_mlx5_advance_dirty(self);
	/* the incremental QUERY is done only in PRE_COPY, not PRE_COPY_P2P */
	if (self->state == MIGD_STATE_PRE_COPY && mlx5->pages->n_dirty > 0)
		inc_length = migd_sim_mlx5_image_estimate(mlx5->pages->n_dirty);
	*initial_bytes = 0;
	*dirty_bytes = 0;
	if (file->initial_bytes > file->pos) {
		*initial_bytes = file->initial_bytes - file->pos;
	} else {
		*dirty_bytes = file->max_pos - file->pos;
		end_of_data = *dirty_bytes == 0;
		*dirty_bytes += inc_length;
	}
	/* everything read and the device has dirty state: the ioctl starts the next SAVE */
	if (end_of_data && inc_length > 0)
		migd_sim_mlx5_queue_save(self, file, FALSE);
	return 0;
}

/* mlx5vf_resume_write() */
static gint
migd_sim_mlx5_write(MigdSimDevice *self, MigdSimSession *session, const void *buf, gsize len,
		    gsize *n_written)
{
	MigdSimMlx5ResumeFile *file = migd_sim_session_get_file(session);
	gint err;

	if (file->error)
		return ENODEV;
	err = migd_sim_mlx5_loader_write(file->loader, buf, len);
	if (err != 0) {
		file->error = TRUE;
		return err;
	}
	*n_written = len;
	return 0;
}

/* MIG_DATA_SIZE: QUERY_VHCA_MIGRATION_STATE, an estimate of what STOP_COPY still sends */
static guint64
migd_sim_mlx5_data_size(MigdSimDevice *self)
{
	MigdSimMlx5 *mlx5 = self->priv;

	if (self->session != NULL &&
	    migd_sim_session_get_direction(self->session) == MIGD_DATA_FD_SAVE &&
	    migd_sim_mlx5_precopy(self->state)) {
		MigdSimMlx5SaveFile *file = migd_sim_session_get_file(self->session);
		return file->max_pos - file->pos +
		       migd_sim_mlx5_image_estimate(mlx5->pages->n_dirty);
	}
	return migd_sim_mlx5_full_image_len(self);
}

static void
migd_sim_mlx5_reset(MigdSimDevice *self)
{
	MigdSimMlx5 *mlx5 = self->priv;
	migd_sim_pages_clear_dirty(mlx5->pages);
}

static guint64
migd_sim_mlx5_digest(MigdSimDevice *self)
{
	MigdSimMlx5 *mlx5 = self->priv;
	return migd_sim_pages_digest(mlx5->pages);
}

static gboolean
migd_sim_mlx5_digest_step(MigdSimDevice *self, guint64 *cursor, guint64 max_units)
{
	MigdSimMlx5 *mlx5 = self->priv;
	return migd_sim_pages_digest_step(mlx5->pages, cursor, max_units);
}

static guint64
migd_sim_mlx5_state_size(MigdSimDevice *self)
{
	MigdSimMlx5 *mlx5 = self->priv;
	return mlx5->pages->size;
}

static void
migd_sim_mlx5_touch(MigdSimDevice *self, guint64 n_units)
{
	MigdSimMlx5 *mlx5 = self->priv;
	migd_sim_pages_touch(mlx5->pages, MIN(n_units, mlx5->pages->n_pages * 4));
}

static gboolean
migd_sim_mlx5_init(MigdSimDevice *self, GError **error)
{
	MigdSimMlx5 *mlx5 = g_new0(MigdSimMlx5, 1);

	mlx5->pages = migd_sim_pages_new(self->config->state_size, self->config->seed);
	mlx5->dirty_clock_us = g_get_monotonic_time();
	self->priv = mlx5;
	return TRUE;
}

static void
migd_sim_mlx5_finalize(MigdSimDevice *self)
{
	MigdSimMlx5 *mlx5 = self->priv;

	if (mlx5 == NULL)
		return;
	migd_sim_pages_free(mlx5->pages);
	g_free(mlx5);
	self->priv = NULL;
}

const MigdSimBackend migd_sim_mlx5_backend = {
    .init = migd_sim_mlx5_init,
    .finalize = migd_sim_mlx5_finalize,
    .arc = migd_sim_mlx5_arc,
    .read = migd_sim_mlx5_read,
    .write = migd_sim_mlx5_write,
    .precopy_info = migd_sim_mlx5_precopy_info,
    .poll = migd_sim_mlx5_poll,
    .prefetch = migd_sim_mlx5_prefetch,
    .paced_reads = TRUE,
    .data_size = migd_sim_mlx5_data_size,
    .reset = migd_sim_mlx5_reset,
    .digest = migd_sim_mlx5_digest,
    .digest_step = migd_sim_mlx5_digest_step,
    .state_size = migd_sim_mlx5_state_size,
    .touch = migd_sim_mlx5_touch,
};
