/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-sim-device.h"
#include "migd-sim-dirty.h"
#include "migd-sim-session.h"

G_BEGIN_DECLS

typedef struct _MigdSimBackend MigdSimBackend;

/* The device: every field below @lock is protected by it (the driver's state mutex). */
struct _MigdSimDevice {
	MigdDevice parent_instance;
	MigdSimConfig *config;
	const MigdSimProfileInfo *info;
	const MigdSimBackend *backend;

	GMutex lock;
	GCond cond; /* broadcast on state changes, resets and new data */
	MigdState state;
	MigdSimSession *session; /* the active save or resume file, a ref */
	gpointer priv;		 /* the backend's device state */
	guint fail_hits;
	gboolean lp_engaged;
	gint lp_eventfd;
	MigdSimDirty *dirty; /* NULL without (real) log_ops */
	MigdSimDirty *iommu; /* the platform IOMMU's dirty tracking (profile iommu_type1) */
	guint64 rng;
	gint64 dma_clock_us; /* time of the last dma_rate accounting */
	guint64 generation;  /* bumped by whatever may change the state a digest covers */
	GArray *dma_record;  /* MigdIovaRange: DMA writes not yet taken; NULL: not recording */
};

/*
 * A profile's driver code. Arc, file and query hooks run with self->lock held;
 * return 0 or a positive errno.
 */
struct _MigdSimBackend {
	gboolean (*init)(MigdSimDevice *self, GError **error);
	void (*finalize)(MigdSimDevice *self);
	/* one real arc; may return a new session in *@session */
	gint (*arc)(MigdSimDevice *self, MigdState from, MigdState to, MigdSimSession **session);
	/* the file_operations, lock held; @session may be disabled after a wait on cond */
	gint (*read)(MigdSimDevice *self, MigdSimSession *session, void *buf, gsize len,
		     gboolean nonblock, gsize *n_read, const void **data);
	/*
	 * NULL: the daemon's fd is the session's socketpair (migd_sim_session_open_fd);
	 * else the backend's own fd for @session (called without the lock)
	 */
	MigdDataFd *(*open_fd)(MigdSimDevice *self, MigdSimSession *session, GError **error);
	/* NULL, or prepare the next @len bytes of the save file (read-ahead) */
	void (*prefetch)(MigdSimDevice *self, MigdSimSession *session, gsize len);
	gint (*write)(MigdSimDevice *self, MigdSimSession *session, const void *buf, gsize len,
		      gsize *n_written);
	/* NULL, or the checks a driver's write makes before it looks at "disabled" */
	gint (*write_precheck)(MigdSimDevice *self, MigdSimSession *session, gsize len);
	gint (*precopy_info)(MigdSimDevice *self, MigdSimSession *session, guint64 *initial_bytes,
			     guint64 *dirty_bytes);
	/* NULL: no .poll, the VFS default (always ready) */
	gint (*poll)(MigdSimDevice *self, MigdSimSession *session, gshort events, gint timeout_ms,
		     gshort *revents);
	/* reads pace themselves (async save); otherwise the device sleeps per chunk */
	gboolean paced_reads;
	guint64 (*data_size)(MigdSimDevice *self);
	/* profile state after VFIO_DEVICE_RESET (FSM and files are handled by the device) */
	void (*reset)(MigdSimDevice *self);
	guint64 (*digest)(MigdSimDevice *self);
	/*
	 * NULL, or a part of what digest() costs, done ahead from page *@cursor on, at most
	 * @max_units units, lock held; TRUE when nothing is left (digest() is then cheap)
	 */
	gboolean (*digest_step)(MigdSimDevice *self, guint64 *cursor, guint64 max_units);
	/* NULL: the configured size; mlx5 takes the size of the image it loads */
	guint64 (*state_size)(MigdSimDevice *self);
	void (*touch)(MigdSimDevice *self, guint64 n_units);
	/* NULL: no device regions; else the size of region @index (0: none) */
	guint64 (*region_size)(MigdSimDevice *self, guint index);
	/*
	 * one access of @len (1, 2 or 4) naturally aligned bytes inside region
	 * @index, lock held (the driver's mdev_access()); 0 or a positive errno
	 */
	gint (*region_access)(MigdSimDevice *self, guint index, guint64 offset, guint8 *buf,
			      gsize len, gboolean is_write);
};

extern const MigdSimBackend migd_sim_mlx5_backend;
extern const MigdSimBackend migd_sim_hisi_acc_backend;
extern const MigdSimBackend migd_sim_mtty_backend;
extern const MigdSimBackend migd_sim_pds_backend;
/* fast_data=1, any profile: pipes at memory speed (migd-sim-fast.c) */
extern const MigdSimBackend migd_sim_fast_backend;

/* helpers for backends (lock held) */
MigdSimSession *migd_sim_device_new_session(MigdSimDevice *self, MigdDataFdDirection direction,
					    gpointer file, GDestroyNotify file_free);
/* lock held: sleep @bytes / @rate seconds, cut short by disable, reset or close */
void migd_sim_device_pace(MigdSimDevice *self, MigdSimSession *session, guint64 bytes,
			  guint64 rate);
/* microseconds @bytes take at @rate bytes/s (0 = unlimited) */
gint64 migd_sim_rate_us(guint64 bytes, guint64 rate);

G_END_DECLS
