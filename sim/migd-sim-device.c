/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdSimDevice: what the vfio core and a variant driver do behind the device fd.
 * The FSM walk, fault injection, reset, low power, DMA logging and the platform
 * IOMMU's dirty tracking live here; the arcs and file_operations of each driver
 * live in its profile backend.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "migd-error.h"
#include "migd-file.h"
#include "migd-fsm.h"
#include "migd-sim-device-private.h"
#include "migd-sim-prng.h"

G_DEFINE_TYPE(MigdSimDevice, migd_sim_device, MIGD_TYPE_DEVICE)

/* the core's LOG_MAX_RANGES (PAGE_SIZE / 16) */
#define MIGD_SIM_LOG_MAX_RANGES 256u

static const MigdSimBackend *
migd_sim_device_backend_for(MigdSimProfileId id)
{
	switch (id) {
	case MIGD_SIM_PROFILE_MLX5:
		return &migd_sim_mlx5_backend;
	case MIGD_SIM_PROFILE_HISI_ACC:
		return &migd_sim_hisi_acc_backend;
	case MIGD_SIM_PROFILE_MTTY:
		return &migd_sim_mtty_backend;
	case MIGD_SIM_PROFILE_PDS:
		return &migd_sim_pds_backend;
	default:
		return NULL;
	}
}

gint64
migd_sim_rate_us(guint64 bytes, guint64 rate)
{
	if (rate == 0 || bytes == 0)
		return 0;
	/* bytes * 1e6 overflows above ~18 TB: split */
	return (gint64)((bytes / rate) * G_USEC_PER_SEC + ((bytes % rate) * G_USEC_PER_SEC) / rate);
}

/* lock held: the driver's *_disable_fd for the active file */
static void
migd_sim_device_drop_session(MigdSimDevice *self)
{
	if (self->session == NULL)
		return;
	migd_sim_session_disable(self->session);
	g_clear_pointer(&self->session, migd_sim_session_unref);
	g_cond_broadcast(&self->cond);
}

/*
 * lock held: the device takes @bytes / @rate seconds (save or load rate). A
 * state change, a reset or the daemon closing the fd cuts the wait short.
 */
void
migd_sim_device_pace(MigdSimDevice *self, MigdSimSession *session, guint64 bytes, guint64 rate)
{
	gint64 deadline = g_get_monotonic_time() + migd_sim_rate_us(bytes, rate);

	while (g_get_monotonic_time() < deadline && !migd_sim_session_is_disabled(session) &&
	       !migd_sim_session_is_hung_up(session))
		g_cond_wait_until(&self->cond, &self->lock, deadline);
}

/* ---- data fd file_operations: generic part ---- */

static gint
migd_sim_device_fop_read(GObject *owner, MigdSimSession *session, void *buf, gsize len,
			 gboolean nonblock, gsize *n_read, const void **data)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(owner);
	gint err;

	g_mutex_lock(&self->lock);
	if (migd_sim_session_is_disabled(session)) {
		g_mutex_unlock(&self->lock);
		return ENODEV;
	}
	/* fault injection: a driver that hands out a few bytes per read */
	if (self->config->short_reads)
		len = MIN(len, 1 + migd_sim_prng_next(&self->rng) % 7);
	self->generation++;
	err = self->backend->read(self, session, buf, len, nonblock, n_read, data);
	if (err == 0 && !self->backend->paced_reads)
		migd_sim_device_pace(self, session, *n_read, self->config->save_rate);
	g_mutex_unlock(&self->lock);
	return err;
}

static gint
migd_sim_device_fop_write(GObject *owner, MigdSimSession *session, const void *buf, gsize len,
			  gsize *n_written)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(owner);
	gint err;

	g_mutex_lock(&self->lock);
	err = self->backend->write_precheck != NULL
		  ? self->backend->write_precheck(self, session, len)
		  : 0;
	if (err != 0) {
		g_mutex_unlock(&self->lock);
		return err;
	}
	if (migd_sim_session_is_disabled(session)) {
		g_mutex_unlock(&self->lock);
		return ENODEV;
	}
	self->generation++;
	err = self->backend->write(self, session, buf, len, n_written);
	if (err == 0)
		migd_sim_device_pace(self, session, *n_written, self->config->load_rate);
	g_mutex_unlock(&self->lock);
	return err;
}

static gint
migd_sim_device_fop_precopy_info(GObject *owner, MigdSimSession *session, guint64 *initial_bytes,
				 guint64 *dirty_bytes)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(owner);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	if (self->backend->precopy_info == NULL)
		return ENOTTY;
	/*
	 * every driver checks the device state under its state mutex before it
	 * looks at the file: a disabled fd answers EINVAL once the device has left
	 * PRE_COPY, ENODEV only while a newer PRE_COPY session runs
	 */
	if (self->state != MIGD_STATE_PRE_COPY && self->state != MIGD_STATE_PRE_COPY_P2P)
		return EINVAL;
	if (migd_sim_session_is_disabled(session))
		return ENODEV;
	return self->backend->precopy_info(self, session, initial_bytes, dirty_bytes);
}

static gint
migd_sim_device_fop_poll(GObject *owner, MigdSimSession *session, gshort events, gint timeout_ms,
			 gshort *revents)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(owner);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	if (self->backend->poll == NULL) {
		*revents = events & (POLLIN | POLLOUT);
		return 0;
	}
	return self->backend->poll(self, session, events, timeout_ms, revents);
}

static void
migd_sim_device_fop_prefetch(GObject *owner, MigdSimSession *session, gsize len)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(owner);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	if (self->backend->prefetch == NULL || self->config->short_reads ||
	    migd_sim_session_is_disabled(session))
		return;
	self->backend->prefetch(self, session, len);
}

static void
migd_sim_device_fop_hangup(GObject *owner, MigdSimSession *session)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(owner);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	g_cond_broadcast(&self->cond);
}

static const MigdSimSessionHandler migd_sim_device_handler = {
    .read = migd_sim_device_fop_read,
    .write = migd_sim_device_fop_write,
    .precopy_info = migd_sim_device_fop_precopy_info,
    .poll = migd_sim_device_fop_poll,
    .prefetch = migd_sim_device_fop_prefetch,
    .hangup = migd_sim_device_fop_hangup,
};

MigdSimSession *
migd_sim_device_new_session(MigdSimDevice *self, MigdDataFdDirection direction, gpointer file,
			    GDestroyNotify file_free)
{
	return migd_sim_session_new(direction, &migd_sim_device_handler, G_OBJECT(self), file,
				    file_free);
}

/* ---- MigdDevice vfuncs ---- */

static gboolean
migd_sim_device_probe(MigdDevice *device, MigdDeviceFeatures *features, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	features->migration = TRUE;
	features->mig_flags = self->info->mig_flags;
	features->dma_logging = self->info->log_ops;
	/* mtty is an mdev: no vfio-pci-core, its device_feature has no LOW_POWER_* */
	features->low_power = self->info->pci_core;
	features->low_power_wakeup = self->info->pci_core;
	features->mig_data_size = TRUE;
	features->stop_copy_length = self->backend->data_size(self);
	return TRUE;
}

static gboolean
migd_sim_device_get_state(MigdDevice *device, MigdState *state, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	*state = self->state;
	return TRUE;
}

/* lock held: whether the configured fault fires on this arc */
static gboolean
migd_sim_device_fault_fires(MigdSimDevice *self, MigdState from, MigdState to)
{
	const MigdSimConfig *cfg = self->config;

	if (!cfg->fail_arc_set || cfg->fail_from != from || cfg->fail_to != to)
		return FALSE;
	if (cfg->fail_count != 0 && self->fail_hits >= cfg->fail_count)
		return FALSE;
	self->fail_hits++;
	return TRUE;
}

/* lock held: the session stays only while the FSM stays in its data transfer state */
static void
migd_sim_device_settle_session(MigdSimDevice *self)
{
	MigdDataFdDirection dir;

	if (self->session == NULL)
		return;
	dir = migd_sim_session_get_direction(self->session);
	if (dir == MIGD_DATA_FD_SAVE && migd_state_is_saving(self->state))
		return;
	if (dir == MIGD_DATA_FD_RESUME && self->state == MIGD_STATE_RESUMING)
		return;
	migd_sim_device_drop_session(self);
}

/*
 * The driver's set_device_state: walks vfio_mig_get_next_state() one real arc at
 * a time, as mlx5vf_pci_set_device_state() and its siblings do.
 */
static gint
migd_sim_device_walk(MigdSimDevice *self, MigdState target, MigdSimSession **new_session)
{
	gint err = 0;

	/* pds_vfio_set_device_state(): the FSM does not run from ERROR */
	if (self->info->error_gives_eio && self->state == MIGD_STATE_ERROR)
		return EIO;
	if (!migd_state_is_valid(target) || target == MIGD_STATE_ERROR)
		return EINVAL;

	while (self->state != target) {
		MigdState next = MIGD_STATE_ERROR;
		g_autoptr(MigdSimSession) session = NULL;

		/* unsupported target, ERROR, STOP_COPY -> PRE_COPY: the fixed kernel's EINVAL */
		if (!migd_fsm_next_step(self->info->mig_flags, self->state, target, &next, NULL)) {
			err = EINVAL;
			break;
		}
		if (migd_sim_device_fault_fires(self, self->state, next)) {
			err = self->config->fail_errno;
			if (self->config->fail_to_error)
				self->state = MIGD_STATE_ERROR;
			break;
		}
		self->generation++;
		err = self->backend->arc(self, self->state, next, &session);
		if (err != 0)
			break;
		self->state = next;
		migd_sim_device_settle_session(self);
		if (session != NULL) {
			/* WARN_ON(res && new_state != mig_state): a file on an inner arc */
			if (next != target) {
				migd_sim_session_disable(session);
				err = EINVAL;
				break;
			}
			migd_sim_device_drop_session(self);
			self->session = migd_sim_session_ref(session);
			*new_session = g_steal_pointer(&session);
		}
	}
	if (self->state == MIGD_STATE_ERROR) {
		migd_sim_device_drop_session(self);
		g_clear_pointer(new_session, migd_sim_session_unref);
		if (self->info->error_gives_eio)
			err = EIO;
	}
	g_cond_broadcast(&self->cond);
	return err;
}

/*
 * persist=FILE: the device outlives the process that drives it, as a kernel
 * device outlives a daemon that crashed (mtty keeps its FSM state across
 * close). Lock held; the state as its name, written atomically.
 */
static void
migd_sim_device_persist_locked(MigdSimDevice *self)
{
	g_autoptr(GError) error = NULL;

	if (self->config->persist == NULL)
		return;
	if (!g_file_set_contents(self->config->persist, migd_state_to_string(self->state), -1,
				 &error))
		g_warning("%s: persist: %s", self->info->name, error->message);
}

static void
migd_sim_device_restore(MigdSimDevice *self)
{
	g_autofree gchar *contents = NULL;
	g_autoptr(GError) error = NULL;

	if (self->config->persist == NULL)
		return;
	/* AddDevice runs this on the main loop: a FIFO or a device must not hang it */
	if (!migd_file_load_bounded(self->config->persist, MIGD_FILE_MAX_STATE_SIZE, &contents,
				    NULL, &error)) {
		if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			g_message("%s: persist: %s; starting in RUNNING", self->info->name,
				  error->message);
		return;
	}
	for (guint s = 0; s <= MIGD_STATE_PRE_COPY_P2P; s++) {
		if (migd_state_is_valid(s) &&
		    g_strcmp0(g_strstrip(contents), migd_state_to_string(s)) == 0) {
			/* its sessions died with the process that held their fds */
			self->state = s;
			break;
		}
	}
	/* this process opens the device anew: the driver's open_device runs */
	if (self->info->open_sets_running && self->state != MIGD_STATE_RUNNING) {
		self->state = MIGD_STATE_RUNNING;
		g_mutex_lock(&self->lock);
		migd_sim_device_persist_locked(self);
		g_mutex_unlock(&self->lock);
	}
}

static void migd_sim_device_lp_exit_locked(MigdSimDevice *self);

/*
 * Closing the device fd and opening it again: close_device disables the
 * files (every driver), open_device sets RUNNING where the profile's driver
 * does (hisi_acc); elsewhere the FSM stays where it was, as mtty's does.
 */
static gboolean
migd_sim_device_reopen(MigdDevice *device, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	migd_sim_device_drop_session(self);
	migd_sim_device_lp_exit_locked(self);
	if (self->info->open_sets_running)
		self->state = MIGD_STATE_RUNNING;
	migd_sim_device_persist_locked(self);
	g_cond_broadcast(&self->cond);
	return TRUE;
}

static gboolean
migd_sim_device_set_state(MigdDevice *device, MigdState state, MigdDataFd **data_fd, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(MigdSimSession) session = NULL;
	MigdState from;
	gint err;

	g_mutex_lock(&self->lock);
	from = self->state;
	err = migd_sim_device_walk(self, state, &session);
	migd_sim_device_persist_locked(self);
	g_mutex_unlock(&self->lock);
	if (err != 0) {
		g_clear_pointer(&session, migd_sim_session_unref);
		migd_set_errno_error(error, err, "%s: SET MIG_DEVICE_STATE %s -> %s",
				     self->info->name, migd_state_to_string(from),
				     migd_state_to_string(state));
		return FALSE;
	}
	if (session != NULL) {
		MigdDataFd *fd = self->backend->open_fd != NULL
				     ? self->backend->open_fd(self, session, error)
				     : migd_sim_session_open_fd(session, error);
		if (fd == NULL)
			return FALSE;
		if (data_fd != NULL)
			*data_fd = fd;
		else
			migd_data_fd_free(fd);
	}
	return TRUE;
}

static gboolean
migd_sim_device_get_data_size(MigdDevice *device, guint64 *stop_copy_length, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	*stop_copy_length = self->backend->data_size(self);
	return TRUE;
}

static gboolean
migd_sim_device_reset(MigdDevice *device, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	/*
	 * hisi_acc: hisi_acc_vf_pci_aer_reset_done() returns early because the
	 * flags are STOP_COPY|PRE_COPY, so the FSM and the files are left alone
	 */
	if (self->info->reset_to_running) {
		self->state = MIGD_STATE_RUNNING;
		migd_sim_device_drop_session(self);
	}
	self->generation++;
	if (self->backend->reset != NULL)
		self->backend->reset(self);
	migd_sim_device_persist_locked(self);
	g_cond_broadcast(&self->cond);
	return TRUE;
}

/*
 * lock held: where the device's DMA lands. Device DMA logging, when it runs,
 * decides the space (its tracked ranges, gaps it combined included) and the
 * IOMMU sees the same writes (outside its mappings they fault, so it drops
 * them); otherwise the IOMMU's mappings. NULL while nothing tracks: a write
 * nobody tracks changes no bitmap.
 */
static MigdSimDirty *
migd_sim_device_dma_space(MigdSimDevice *self, MigdSimDirty **mirror)
{
	gboolean iommu = migd_sim_dirty_is_active(self->iommu);

	*mirror = NULL;
	if (self->dirty != NULL && migd_sim_dirty_is_active(self->dirty)) {
		if (iommu)
			*mirror = self->iommu;
		return self->dirty;
	}
	return iommu ? self->iommu : NULL;
}

/* lock held: the device DMA-writes @bytes following its pattern */
static guint64
migd_sim_device_dma_bytes(MigdSimDevice *self, guint64 bytes)
{
	MigdSimDirty *mirror = NULL;
	MigdSimDirty *space = migd_sim_device_dma_space(self, &mirror);

	if (space == NULL)
		return 0;
	return migd_sim_dirty_generate_recorded(space, &self->config->dma_pattern, bytes,
						&self->rng, mirror, self->dma_record);
}

/*
 * lock held: the DMA the device did since the last look, at dma_rate while
 * running, into whatever tracks now. Every START calls it first, so that time
 * before a tracker starts is accounted to the trackers that ran then.
 */
static void
migd_sim_device_advance_dma(MigdSimDevice *self)
{
	gint64 now = g_get_monotonic_time();
	gint64 elapsed = now - self->dma_clock_us;
	gboolean running =
	    self->state == MIGD_STATE_RUNNING || self->state == MIGD_STATE_RUNNING_P2P ||
	    self->state == MIGD_STATE_PRE_COPY || self->state == MIGD_STATE_PRE_COPY_P2P;

	self->dma_clock_us = now;
	if (!running || self->config->dma_rate == 0 || elapsed <= 0)
		return;
	migd_sim_device_dma_bytes(self, (guint64)elapsed * self->config->dma_rate / G_USEC_PER_SEC);
}

/* the core's checks in vfio_ioctl_device_feature_logging_start() (for no-op log_ops) */
static gint
migd_sim_device_core_log_start_check(const MigdIovaRange *ranges, guint n_ranges, guint64 page_size)
{
	if (n_ranges == 0)
		return EINVAL;
	if (n_ranges > MIGD_SIM_LOG_MAX_RANGES)
		return E2BIG;
	for (guint i = 0; i < n_ranges; i++) {
		/* IS_ALIGNED(): a page size of 0 lets only 0 through */
		if ((ranges[i].iova & (page_size - 1)) != 0 ||
		    (ranges[i].length & (page_size - 1)) != 0)
			return EINVAL;
		if (ranges[i].iova + ranges[i].length < ranges[i].iova)
			return EOVERFLOW;
		/* the core's interval tree: [iova, iova + length - 1], so a 0-length range wraps */
		for (guint j = 0; j < i; j++) {
			guint64 last_i = ranges[i].iova + ranges[i].length - 1;
			guint64 last_j = ranges[j].iova + ranges[j].length - 1;
			if (ranges[j].iova <= last_i && last_j >= ranges[i].iova)
				return EINVAL;
		}
	}
	return 0;
}

static gboolean
migd_sim_device_no_log_ops(MigdSimDevice *self, const gchar *what, GError **error)
{
	migd_set_errno_error(error, ENOTTY, "%s: %s (no log_ops)", self->info->name, what);
	return FALSE;
}

static gboolean
migd_sim_device_dma_logging_start(MigdDevice *device, const MigdIovaRange *ranges, guint n_ranges,
				  guint64 *page_size, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	if (!self->info->log_ops)
		return migd_sim_device_no_log_ops(self, "DMA_LOGGING_START", error);
	if (self->info->log_ops_noop) {
		/* mtty_log_start(): returns 0, tracks nothing */
		gint err = migd_sim_device_core_log_start_check(ranges, n_ranges, *page_size);
		if (err != 0) {
			migd_set_errno_error(error, err, "%s: DMA_LOGGING_START", self->info->name);
			return FALSE;
		}
		return TRUE;
	}
	migd_sim_device_advance_dma(self);
	if (!migd_sim_dirty_start(self->dirty, ranges, n_ranges, page_size, error)) {
		g_prefix_error(error, "%s: ", self->info->name);
		return FALSE;
	}
	self->dma_clock_us = g_get_monotonic_time();
	return TRUE;
}

static gboolean
migd_sim_device_dma_logging_stop(MigdDevice *device, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	if (!self->info->log_ops)
		return migd_sim_device_no_log_ops(self, "DMA_LOGGING_STOP", error);
	if (self->dirty != NULL)
		migd_sim_dirty_stop(self->dirty);
	return TRUE;
}

static gboolean
migd_sim_device_dma_logging_report(MigdDevice *device, guint64 iova, guint64 length,
				   guint64 page_size, guint64 *bitmap, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	if (!self->info->log_ops)
		return migd_sim_device_no_log_ops(self, "DMA_LOGGING_REPORT", error);
	if (self->info->log_ops_noop) {
		/* the core's REPORT checks, then mtty_log_read_and_clear(): nothing */
		if (page_size < 4096 || (page_size & (page_size - 1)) != 0) {
			migd_set_errno_error(error, EINVAL, "%s: DMA_LOGGING_REPORT",
					     self->info->name);
			return FALSE;
		}
		if (iova + length < iova) {
			migd_set_errno_error(error, EOVERFLOW, "%s: DMA_LOGGING_REPORT",
					     self->info->name);
			return FALSE;
		}
		/*
		 * without CONFIG_IOMMUFD_DRIVER iova_bitmap_alloc() is a stub that
		 * returns NULL and iova_bitmap_for_each() one that returns EOPNOTSUPP
		 */
		if (!self->config->iommufd_driver) {
			migd_set_errno_error(error, EOPNOTSUPP,
					     "%s: DMA_LOGGING_REPORT (kernel without "
					     "CONFIG_IOMMUFD_DRIVER)",
					     self->info->name);
			return FALSE;
		}
		return TRUE;
	}
	migd_sim_device_advance_dma(self);
	if (!migd_sim_dirty_report(self->dirty, iova, length, page_size, bitmap, error)) {
		g_prefix_error(error, "%s: ", self->info->name);
		return FALSE;
	}
	return TRUE;
}

/*
 * ---- The platform IOMMU's dirty tracking ----
 *
 * A second MigdSimDirty (limits.iommu: any number of mappings, page sizes from
 * 4 KiB, reports across mappings and gaps) fed by the same DMA as device
 * logging. Two flavours, after the profile:
 *   type1 (mtty, an emulated IOMMU group): VFIO_IOMMU_DIRTY_PAGES. The page size
 *     is the smallest IOMMU page, 4 KiB, whatever the wish; a second START and a
 *     STOP when stopped are no-ops; GET_BITMAP wants that page size, iova and
 *     size aligned, a non-empty range that bisects no mapping, and tracking on
 *     (each EINVAL, vfio_iommu_type1_dirty_pages()); it always clears, so
 *     no_clear is MIGD_ERROR_NOT_SUPPORTED as in the kernel backend.
 *   iommufd (the PCI profiles): a HWPT allocated with DIRTY_TRACKING. START
 *     (SET_DIRTY_TRACKING) clears the dirty bits, also when already on, and
 *     takes the wish as a power of two from 4 KiB; GET_DIRTY_BITMAP checks
 *     iommufd_check_iova_range() (EINVAL, EOVERFLOW), reports nothing while
 *     tracking is off, honours NO_CLEAR.
 * iommu_dirty=0 stands for a platform whose IOMMU cannot track dirty pages:
 * EOPNOTSUPP, as the kernel answers for a domain without dirty_ops.
 */

#define MIGD_SIM_IOMMU_PAGE 4096ull
/* DIRTY_BITMAP_PAGES_MAX: INT_MAX pages per GET_BITMAP */
#define MIGD_SIM_TYPE1_MAX_PAGES ((guint64)G_MAXINT)

static const MigdSimDirtyLimits migd_sim_iommu_type1_limits = {
    .max_ranges = G_MAXUINT,
    .min_page_size = MIGD_SIM_IOMMU_PAGE,
    .max_page_size = MIGD_SIM_IOMMU_PAGE,
    .iommu = TRUE,
};

static const MigdSimDirtyLimits migd_sim_iommu_hwpt_limits = {
    .max_ranges = G_MAXUINT,
    .min_page_size = MIGD_SIM_IOMMU_PAGE,
    .max_page_size = 1ull << 40,
    .iommu = TRUE,
};

static const gchar *
migd_sim_device_iommu_op(MigdSimDevice *self, gboolean start)
{
	if (self->info->iommu_type1)
		return start ? "VFIO_IOMMU_DIRTY_PAGES(START)" : "VFIO_IOMMU_DIRTY_PAGES(STOP)";
	return start ? "IOMMU_HWPT_SET_DIRTY_TRACKING(ENABLE)"
		     : "IOMMU_HWPT_SET_DIRTY_TRACKING(DISABLE)";
}

static gboolean
migd_sim_device_iommu_absent(MigdSimDevice *self, const gchar *what, GError **error)
{
	migd_set_errno_error(error, EOPNOTSUPP,
			     "%s: %s (the platform IOMMU cannot track dirty pages: iommu_dirty=0)",
			     self->info->name, what);
	return FALSE;
}

static gboolean
migd_sim_device_iommu_dirty_start(MigdDevice *device, const MigdIovaRange *ranges, guint n_ranges,
				  guint64 *page_size, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	guint64 chosen = *page_size;

	if (!self->config->iommu_dirty)
		return migd_sim_device_iommu_absent(self, migd_sim_device_iommu_op(self, TRUE),
						    error);
	if (self->info->iommu_type1) {
		/* the container's mappings are tracked already: a no-op */
		if (migd_sim_dirty_is_active(self->iommu)) {
			*page_size = MIGD_SIM_IOMMU_PAGE;
			return TRUE;
		}
		chosen = MIGD_SIM_IOMMU_PAGE;
	} else if (chosen < MIGD_SIM_IOMMU_PAGE) {
		chosen = MIGD_SIM_IOMMU_PAGE;
	}
	migd_sim_device_advance_dma(self);
	/* iommufd: enabling again clears the dirty bits (iopt_set_dirty_tracking()) */
	migd_sim_dirty_stop(self->iommu);
	if (!migd_sim_dirty_start(self->iommu, ranges, n_ranges, &chosen, error)) {
		g_prefix_error(error, "%s: %s: ", self->info->name,
			       migd_sim_device_iommu_op(self, TRUE));
		return FALSE;
	}
	self->dma_clock_us = g_get_monotonic_time();
	*page_size = chosen;
	return TRUE;
}

static gboolean
migd_sim_device_iommu_dirty_stop(MigdDevice *device, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	if (!self->config->iommu_dirty)
		return migd_sim_device_iommu_absent(self, migd_sim_device_iommu_op(self, FALSE),
						    error);
	migd_sim_dirty_stop(self->iommu);
	return TRUE;
}

/* lock held: the range covers whole mappings or none of one (vfio_iova_dirty_bitmap()) */
static gboolean
migd_sim_device_type1_bisects(MigdSimDevice *self, guint64 iova, guint64 length)
{
	guint n = 0;
	const MigdIovaRange *maps = migd_sim_dirty_get_tracked_ranges(self->iommu, &n);
	guint64 end = iova + length;

	for (guint i = 0; i < n; i++) {
		guint64 m_end = maps[i].iova + maps[i].length;
		if ((iova > maps[i].iova && iova < m_end) || (end > maps[i].iova && end < m_end))
			return TRUE;
	}
	return FALSE;
}

/* lock held: vfio_iommu_type1_dirty_pages(GET_BITMAP)'s checks, in its order */
static gint
migd_sim_device_type1_check(MigdSimDevice *self, guint64 iova, guint64 length, guint64 page_size)
{
	guint64 npages;

	if (iova + length < iova)
		return EINVAL;
	/* verify_bitmap_size(): at least one page, at most INT_MAX of them */
	npages = length >> __builtin_ctzll(page_size);
	if (npages == 0 || npages > MIGD_SIM_TYPE1_MAX_PAGES)
		return EINVAL;
	/* only the smallest IOMMU page size, iova and size aligned to it */
	if (page_size != MIGD_SIM_IOMMU_PAGE || (iova & (MIGD_SIM_IOMMU_PAGE - 1)) != 0 ||
	    (length & (MIGD_SIM_IOMMU_PAGE - 1)) != 0)
		return EINVAL;
	if (!migd_sim_dirty_is_active(self->iommu))
		return EINVAL;
	if (migd_sim_device_type1_bisects(self, iova, length))
		return EINVAL;
	return 0;
}

/* iommufd_check_iova_range(), with the IOAS's 4 KiB alignment */
static gint
migd_sim_device_hwpt_check(guint64 iova, guint64 length, guint64 page_size)
{
	guint64 last;

	if (length == 0)
		return EINVAL;
	if (__builtin_add_overflow(iova, length - 1, &last) || last > G_MAXULONG)
		return EOVERFLOW;
	if ((iova & (MIGD_SIM_IOMMU_PAGE - 1)) != 0 ||
	    ((last + 1) & (MIGD_SIM_IOMMU_PAGE - 1)) != 0)
		return EINVAL;
	if ((iova & (page_size - 1)) != 0 || ((last + 1) & (page_size - 1)) != 0)
		return EINVAL;
	return 0;
}

static gboolean
migd_sim_device_iommu_dirty_report(MigdDevice *device, guint64 iova, guint64 length,
				   guint64 page_size, gboolean no_clear, guint64 *bitmap,
				   GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	const gchar *what = self->info->iommu_type1 ? "VFIO_IOMMU_DIRTY_PAGES(GET_BITMAP)"
						    : "IOMMU_HWPT_GET_DIRTY_BITMAP";
	gint err;

	if (!self->config->iommu_dirty)
		return migd_sim_device_iommu_absent(self, what, error);
	/* what the kernel backend refuses before any ioctl */
	if (bitmap == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: IOMMU dirty report without a bitmap",
			    migd_device_get_name(device));
		return FALSE;
	}
	if (page_size == 0 || (page_size & (page_size - 1)) != 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: IOMMU dirty report page size %" G_GUINT64_FORMAT
			    " is not a power of two",
			    migd_device_get_name(device), page_size);
		return FALSE;
	}
	if (self->info->iommu_type1 && no_clear) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: type1's VFIO_IOMMU_DIRTY_PAGES(GET_BITMAP) always clears what it "
			    "reports; NO_CLEAR is iommufd's",
			    migd_device_get_name(device));
		return FALSE;
	}
	err = self->info->iommu_type1 ? migd_sim_device_type1_check(self, iova, length, page_size)
				      : migd_sim_device_hwpt_check(iova, length, page_size);
	if (err != 0) {
		migd_set_errno_error(error, err,
				     "%s: %s 0x%" G_GINT64_MODIFIER "x+0x%" G_GINT64_MODIFIER
				     "x, page size %" G_GUINT64_FORMAT,
				     self->info->name, what, iova, length, page_size);
		return FALSE;
	}
	/* iommufd reads the IOPTEs' dirty bits: none while tracking is off */
	if (!migd_sim_dirty_is_active(self->iommu))
		return TRUE;
	migd_sim_device_advance_dma(self);
	if (!migd_sim_dirty_report_full(self->iommu, iova, length, page_size, no_clear, bitmap,
					error)) {
		g_prefix_error(error, "%s: %s: ", self->info->name, what);
		return FALSE;
	}
	return TRUE;
}

/* lock held: VFIO_DEVICE_GET_REGION_INFO, then the bounds of the access */
static gboolean
migd_sim_device_region_check(MigdSimDevice *self, guint index, guint64 offset, gsize len,
			     GError **error)
{
	guint64 size;

	/* the variant drivers without region emulation here: vfio-pci's bad index */
	if (self->backend->region_size == NULL || self->backend->region_access == NULL) {
		migd_set_errno_error(error, EINVAL, "%s: VFIO_DEVICE_GET_REGION_INFO(%u)",
				     self->info->name, index);
		return FALSE;
	}
	size = self->backend->region_size(self, index);
	if (offset > size || len > size - offset) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: %" G_GSIZE_FORMAT " bytes at 0x%" G_GINT64_MODIFIER
			    "x are outside region %u (size %" G_GUINT64_FORMAT ")",
			    self->info->name, len, offset, index, size);
		return FALSE;
	}
	return TRUE;
}

/* lock held: mtty_read()/mtty_write() split an access into aligned 4, 2 and 1 byte parts */
static gboolean
migd_sim_device_region_rw(MigdSimDevice *self, guint index, guint64 offset, guint8 *buf, gsize len,
			  gboolean is_write, GError **error)
{
	while (len > 0) {
		gsize part = 1;
		gint err;

		if (len >= 4 && offset % 4 == 0)
			part = 4;
		else if (len >= 2 && offset % 2 == 0)
			part = 2;
		self->generation += is_write ? 1 : 0;
		err = self->backend->region_access(self, index, offset, buf, part, is_write);
		if (err != 0) {
			migd_set_errno_error(error, err, "%s: %s of region %u", self->info->name,
					     is_write ? "pwrite" : "pread", index);
			return FALSE;
		}
		buf += part;
		offset += part;
		len -= part;
	}
	return TRUE;
}

static gboolean
migd_sim_device_region_read(MigdDevice *device, guint index, guint64 offset, void *buf, gsize len,
			    GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	if (!migd_sim_device_region_check(self, index, offset, len, error))
		return FALSE;
	return migd_sim_device_region_rw(self, index, offset, buf, len, FALSE, error);
}

static gboolean
migd_sim_device_region_write(MigdDevice *device, guint index, guint64 offset, const void *buf,
			     gsize len, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	g_autofree guint8 *copy = NULL;

	if (!migd_sim_device_region_check(self, index, offset, len, error))
		return FALSE;
	/* the access helper takes a writable buffer for both directions */
	copy = g_memdup2(buf, len);
	if (!migd_sim_device_region_rw(self, index, offset, copy, len, TRUE, error))
		return FALSE;
	g_cond_broadcast(&self->cond);
	return TRUE;
}

/* lock held: vfio_pci_core_runtime_resume() signals the wakeup eventfd and exits */
static void
migd_sim_device_lp_exit_locked(MigdSimDevice *self)
{
	if (self->lp_eventfd >= 0) {
		if (eventfd_write(self->lp_eventfd, 1) < 0)
			g_debug("eventfd_write: %s", g_strerror(errno));
		close(self->lp_eventfd);
		self->lp_eventfd = -1;
	}
	self->lp_engaged = FALSE;
}

static gboolean
migd_sim_device_low_power_entry(MigdDevice *device, gint wakeup_eventfd, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	const gchar *what = wakeup_eventfd >= 0 ? "LOW_POWER_ENTRY_WITH_WAKEUP" : "LOW_POWER_ENTRY";
	gint fd = -1;

	if (!self->info->pci_core) {
		migd_set_errno_error(error, ENOTTY, "%s: %s", self->info->name, what);
		return FALSE;
	}
	/* vfio_pci_core_pm_entry(): a second entry while engaged */
	if (self->lp_engaged) {
		migd_set_errno_error(error, EINVAL, "%s: %s while already engaged",
				     self->info->name, what);
		return FALSE;
	}
	if (wakeup_eventfd >= 0) {
		g_autofree gchar *link = NULL;
		g_autofree gchar *path = g_strdup_printf("/proc/self/fd/%d", wakeup_eventfd);

		/* eventfd_ctx_fdget(): EBADF for a closed fd, EINVAL for another kind */
		link = g_file_read_link(path, NULL);
		if (link == NULL) {
			migd_set_errno_error(error, EBADF, "%s: %s", self->info->name, what);
			return FALSE;
		}
		if (g_strcmp0(link, "anon_inode:[eventfd]") != 0) {
			migd_set_errno_error(error, EINVAL, "%s: %s: fd %d is not an eventfd",
					     self->info->name, what, wakeup_eventfd);
			return FALSE;
		}
		fd = dup(wakeup_eventfd);
		if (fd < 0) {
			migd_set_errno_error(error, errno, "%s: %s", self->info->name, what);
			return FALSE;
		}
	}
	self->lp_engaged = TRUE;
	self->lp_eventfd = fd;
	return TRUE;
}

static gboolean
migd_sim_device_low_power_exit(MigdDevice *device, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	if (!self->info->pci_core) {
		migd_set_errno_error(error, ENOTTY, "%s: LOW_POWER_EXIT", self->info->name);
		return FALSE;
	}
	/* not engaged: harmless, 0 */
	if (self->lp_engaged)
		migd_sim_device_lp_exit_locked(self);
	return TRUE;
}

/* ---- public API ---- */

void
migd_sim_device_wake(MigdSimDevice *self)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);

	g_return_if_fail(MIGD_IS_SIM_DEVICE(self));
	/* single-shot: only WITH_WAKEUP leaves low power on a wake-up */
	if (self->lp_engaged && self->lp_eventfd >= 0)
		migd_sim_device_lp_exit_locked(self);
}

const MigdSimConfig *
migd_sim_device_get_config(MigdSimDevice *self)
{
	g_return_val_if_fail(MIGD_IS_SIM_DEVICE(self), NULL);
	return self->config;
}

guint64
migd_sim_device_get_state_size(MigdSimDevice *self)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_val_if_fail(MIGD_IS_SIM_DEVICE(self), 0);
	locker = g_mutex_locker_new(&self->lock);
	if (self->backend->state_size != NULL)
		return self->backend->state_size(self);
	return self->config->state_size;
}

guint64
migd_sim_device_get_state_digest(MigdSimDevice *self)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_val_if_fail(MIGD_IS_SIM_DEVICE(self), 0);
	locker = g_mutex_locker_new(&self->lock);
	return self->backend->digest(self);
}

/* pages hashed per hold of the lock: about a millisecond, so set_state never waits long */
#define MIGD_SIM_DIGEST_STEP_UNITS 256

gboolean
migd_sim_device_compute_state_digest(MigdSimDevice *self, GCancellable *cancellable,
				     guint64 *digest, guint64 *generation, GError **error)
{
	guint64 cursor = 0;

	g_return_val_if_fail(MIGD_IS_SIM_DEVICE(self), FALSE);

	for (gboolean done = self->backend->digest_step == NULL; !done;) {
		g_autoptr(GMutexLocker) locker = NULL;

		if (g_cancellable_set_error_if_cancelled(cancellable, error))
			return FALSE;
		locker = g_mutex_locker_new(&self->lock);
		done = self->backend->digest_step(self, &cursor, MIGD_SIM_DIGEST_STEP_UNITS);
	}
	if (g_cancellable_set_error_if_cancelled(cancellable, error))
		return FALSE;
	{
		g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
		/* what changed since a step is hashed here: the pair is always consistent */
		*digest = self->backend->digest(self);
		*generation = self->generation;
	}
	return TRUE;
}

guint64
migd_sim_device_get_state_generation(MigdSimDevice *self)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_val_if_fail(MIGD_IS_SIM_DEVICE(self), 0);
	locker = g_mutex_locker_new(&self->lock);
	return self->generation;
}

void
migd_sim_device_touch_state(MigdSimDevice *self, guint64 n_units)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_if_fail(MIGD_IS_SIM_DEVICE(self));
	locker = g_mutex_locker_new(&self->lock);
	self->generation++;
	self->backend->touch(self, n_units);
	g_cond_broadcast(&self->cond);
}

guint64
migd_sim_device_dma_write(MigdSimDevice *self, guint64 bytes)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_val_if_fail(MIGD_IS_SIM_DEVICE(self), 0);
	locker = g_mutex_locker_new(&self->lock);
	return migd_sim_device_dma_bytes(self, bytes);
}

void
migd_sim_device_set_dma_record(MigdSimDevice *self, gboolean enable)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_if_fail(MIGD_IS_SIM_DEVICE(self));
	locker = g_mutex_locker_new(&self->lock);
	if (!enable)
		g_clear_pointer(&self->dma_record, g_array_unref);
	else if (self->dma_record == NULL)
		self->dma_record = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
}

GArray *
migd_sim_device_take_dma_record(MigdSimDevice *self)
{
	g_autoptr(GMutexLocker) locker = NULL;
	GArray *taken;

	g_return_val_if_fail(MIGD_IS_SIM_DEVICE(self), NULL);
	locker = g_mutex_locker_new(&self->lock);
	/* the writes the dma_rate clock owes are part of the record */
	migd_sim_device_advance_dma(self);
	if (self->dma_record == NULL)
		return g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	taken = self->dma_record;
	self->dma_record = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	return taken;
}

gboolean
migd_sim_device_dirty_is_active(MigdSimDevice *self)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_val_if_fail(MIGD_IS_SIM_DEVICE(self), FALSE);
	locker = g_mutex_locker_new(&self->lock);
	return self->dirty != NULL && migd_sim_dirty_is_active(self->dirty);
}

gboolean
migd_sim_device_iommu_dirty_is_active(MigdSimDevice *self)
{
	g_autoptr(GMutexLocker) locker = NULL;

	g_return_val_if_fail(MIGD_IS_SIM_DEVICE(self), FALSE);
	locker = g_mutex_locker_new(&self->lock);
	return migd_sim_dirty_is_active(self->iommu);
}

MigdSimDevice *
migd_sim_device_new(const MigdSimConfig *config, GError **error)
{
	g_autoptr(MigdSimDevice) self = NULL;
	g_autofree gchar *name = NULL;

	g_return_val_if_fail(config != NULL && config->profile != NULL, NULL);

	self = g_object_new(MIGD_TYPE_SIM_DEVICE, NULL);
	self->config = migd_sim_config_copy(config);
	self->info = config->profile;
	self->backend = config->fast_data ? &migd_sim_fast_backend
					  : migd_sim_device_backend_for(self->info->id);
	self->rng = config->seed ^ 0x5851f42d4c957f2dull;
	if (self->info->log_ops && !self->info->log_ops_noop) {
		self->dirty = migd_sim_dirty_new(&self->info->dirty_limits);
		/* mlx5 tracker error: the first REPORT fails with EIO until stop + start */
		if (config->report_eio)
			migd_sim_dirty_inject_report_error(self->dirty, 0);
	}
	self->iommu = migd_sim_dirty_new(self->info->iommu_type1 ? &migd_sim_iommu_type1_limits
								 : &migd_sim_iommu_hwpt_limits);
	if (!self->backend->init(self, error))
		return NULL;
	migd_sim_device_restore(self);
	name = g_strdup_printf("sim-%s-%" G_GUINT64_FORMAT, self->info->name, config->seed);
	migd_device_set_name(MIGD_DEVICE(self), name);
	migd_device_set_sysfs_path(MIGD_DEVICE(self), config->sysfs);
	return g_steal_pointer(&self);
}

MigdSimDevice *
migd_sim_device_new_from_string(const gchar *spec, GError **error)
{
	g_autoptr(MigdSimConfig) config = migd_sim_config_new_from_string(spec, error);

	if (config == NULL)
		return NULL;
	return migd_sim_device_new(config, error);
}

static void
migd_sim_device_finalize(GObject *object)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(object);

	migd_sim_device_drop_session(self);
	if (self->backend != NULL && self->backend->finalize != NULL)
		self->backend->finalize(self);
	g_clear_pointer(&self->dirty, migd_sim_dirty_free);
	g_clear_pointer(&self->iommu, migd_sim_dirty_free);
	g_clear_pointer(&self->dma_record, g_array_unref);
	if (self->lp_eventfd >= 0)
		close(self->lp_eventfd);
	g_clear_pointer(&self->config, migd_sim_config_free);
	g_mutex_clear(&self->lock);
	g_cond_clear(&self->cond);
	G_OBJECT_CLASS(migd_sim_device_parent_class)->finalize(object);
}

static void
migd_sim_device_init(MigdSimDevice *self)
{
	g_mutex_init(&self->lock);
	g_cond_init(&self->cond);
	self->state = MIGD_STATE_RUNNING;
	self->lp_eventfd = -1;
}

/* simulated PCI ids: a mtty-like mdev has none */
static gboolean
migd_sim_device_get_identity(MigdDevice *device, MigdDeviceIdentity *identity, GError **error)
{
	MigdSimDevice *self = MIGD_SIM_DEVICE(device);
	const MigdSimProfileInfo *profile = self->config->profile;

	identity->driver = g_strdup(profile->driver);
	identity->vendor_id = profile->vendor_id;
	identity->device_id = profile->device_id;
	identity->subsystem_vendor_id = profile->subsystem_vendor_id;
	identity->subsystem_device_id = profile->subsystem_device_id;
	return TRUE;
}

static void
migd_sim_device_class_init(MigdSimDeviceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	MigdDeviceClass *device_class = MIGD_DEVICE_CLASS(klass);

	object_class->finalize = migd_sim_device_finalize;
	device_class->probe = migd_sim_device_probe;
	device_class->get_state = migd_sim_device_get_state;
	device_class->set_state = migd_sim_device_set_state;
	device_class->get_data_size = migd_sim_device_get_data_size;
	device_class->reset = migd_sim_device_reset;
	device_class->reopen = migd_sim_device_reopen;
	device_class->dma_logging_start = migd_sim_device_dma_logging_start;
	device_class->dma_logging_stop = migd_sim_device_dma_logging_stop;
	device_class->dma_logging_report = migd_sim_device_dma_logging_report;
	device_class->iommu_dirty_start = migd_sim_device_iommu_dirty_start;
	device_class->iommu_dirty_stop = migd_sim_device_iommu_dirty_stop;
	device_class->iommu_dirty_report = migd_sim_device_iommu_dirty_report;
	device_class->low_power_entry = migd_sim_device_low_power_entry;
	device_class->low_power_exit = migd_sim_device_low_power_exit;
	device_class->region_read = migd_sim_device_region_read;
	device_class->region_write = migd_sim_device_region_write;
	device_class->get_identity = migd_sim_device_get_identity;
}
