/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-device.h"
#include "migd-dirty-tracker.h"
#include "migd-job.h"
#include "migd-journal.h"
#include "migd-low-power.h"
#include "migd-plugin-manager.h"
#include "migd-stream-budget.h"
#include "migd-transport.h"

G_BEGIN_DECLS

/* how long, and how many, finished jobs stay registered so their result can be read */
#define MIGD_MANAGER_JOB_RETAIN_S     600
#define MIGD_MANAGER_JOB_RETAIN_COUNT 64

/*
 * The service itself, behind every front door (D-Bus, the libvirt bridge): the
 * devices, the jobs (outgoing and incoming migrations) and the listener.
 * Front doors translate their requests into these calls and follow the
 * signals:
 *
 *  job-added (guint64 id, MigdJob *job): a job was registered; ids count from 1
 *  job-finished (guint64 id, MigdJob *job): it completed, its devices are free
 *  job-removed (guint64 id): it is no longer retained
 *  devices-changed: a device was added or detached
 */
#define MIGD_TYPE_MANAGER (migd_manager_get_type())
G_DECLARE_FINAL_TYPE(MigdManager, migd_manager, MIGD, MANAGER, GObject)

/*
 * Adds backend-specific entries to a device's description; @busy: the device
 * is in a job (outgoing or incoming), so its state is in flux. Keeps backends (the simulator) out
 * of the service.
 */
typedef void (*MigdManagerDeviceInfoFunc)(MigdDevice *device, gboolean busy, GVariantDict *dict,
					  gpointer user_data);

/*
 * Opens a device by @name (@fd < 0) or adopts @fd (borrowed: duplicate it to
 * keep it), probed and with a plugin. @sim_spec: a simulated device's spec, or
 * NULL. @address: for @fd, which device the owner says it is (PCI address,
 * mdev UUID or sysfs path), or NULL. Keeps device backends and plugins out of
 * the service.
 */
typedef MigdDevice *(*MigdManagerDeviceOpenFunc)(const gchar *name, const gchar *sim_spec, gint fd,
						 const gchar *address, gpointer user_data,
						 GError **error);

/*
 * What a migration is started with (Migrate's options, without D-Bus). Made by
 * migd_migrate_options_new(): the engine's defaults, no TLS files.
 */
typedef struct {
	MigdTransportConfig transport;	  /* the strings are owned */
	guint downtime_ms;		  /* 0: the convergence policy's */
	guint max_rounds;		  /* 0: the convergence policy's */
	guint timeout_s;		  /* the whole job; 0: none */
	MigdDirtyFallback dirty_fallback; /* default ALLOW, as the engine's */
	GPtrArray *iova_ranges;	       /* (MigdManagerIovaRanges) for devices of the job, or NULL */
	gchar *requester;	       /* who asked, for the log */
	MigdSwitchoverMode switchover; /* default AUTO */
	guint handover_timeout_s;      /* 0: the engine's default */
	gchar *migration_id;	       /* sent in Hello for the destination's Expect; NULL: none */
} MigdMigrateOptions;

/* one device's IOVA ranges in MigdMigrateOptions */
typedef struct {
	gchar *name;
	GArray *ranges; /* MigdIovaRange, not yet checked */
} MigdManagerIovaRanges;

MigdMigrateOptions *migd_migrate_options_new(void);
void migd_migrate_options_free(MigdMigrateOptions *options);
/* @ranges: MigdIovaRange, copied */
void migd_migrate_options_add_iova_ranges(MigdMigrateOptions *options, const gchar *name,
					  GArray *ranges);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdMigrateOptions, migd_migrate_options_free)

/* @devices: MigdDevice, probed, with unique names */
MigdManager *migd_manager_new(GPtrArray *devices);

/* idle devices go to low power (borrowed; outlives the manager); NULL: they stay powered */
void migd_manager_set_low_power(MigdManager *self, MigdLowPower *low_power);
MigdLowPower *migd_manager_get_low_power(MigdManager *self);
/* jobs are recorded in @journal (borrowed; outlives the manager), see migd-journal.h */
void migd_manager_set_journal(MigdManager *self, MigdJournal *journal);
void migd_manager_set_device_info_func(MigdManager *self, MigdManagerDeviceInfoFunc func,
				       gpointer user_data);
void migd_manager_set_device_open_func(MigdManager *self, MigdManagerDeviceOpenFunc func,
				       gpointer user_data);
/*
 * The bound on device state in flight over every stream of every job
 * ([daemon] max-inflight=, default MIGD_STREAM_BUDGET_DEFAULT; see
 * migd-stream-budget.h). Jobs started from now on use it.
 */
void migd_manager_set_max_inflight(MigdManager *self, guint64 bytes);
/* finished jobs stay for @seconds, at most @count of them (default: MIGD_MANAGER_JOB_RETAIN_*) */
void migd_manager_set_job_retention(MigdManager *self, guint seconds, guint count);

/* which plugin each host device would take (ListHostDevices); a new reference is kept */
void migd_manager_set_plugin_manager(MigdManager *self, MigdPluginManager *plugins);

/* ---- devices ---- */

/* MigdDevice, borrowed, in the order they were added */
GPtrArray *migd_manager_get_devices(MigdManager *self);
MigdDevice *migd_manager_find_device(MigdManager *self, const gchar *name);
/* in a job: its state is the engine's */
gboolean migd_manager_device_is_busy(MigdManager *self, MigdDevice *device);
/* the migration id of the expectation that reserves @device, or NULL */
const gchar *migd_manager_device_get_reservation(MigdManager *self, MigdDevice *device);
/* the device info func's entries, if there is one */
void migd_manager_device_info(MigdManager *self, MigdDevice *device, GVariantDict *dict);
/*
 * The host's VFIO devices (MigdHostDevice), scanned now under
 * migd_host_devices_sysfs_root(), with the plugin that would take each (if a
 * plugin manager was set), whether this manager serves it and (best effort)
 * which other processes hold it.
 */
GPtrArray *migd_manager_list_host_devices(MigdManager *self);
/*
 * Opens a device with the open func (@fd >= 0: adopts a duplicate of it) but
 * does not add it: a front door may still refuse it. Refuses a bad name and
 * a name in use (incoming migrations keep the devices they began with).
 * @address: the open func's, for @fd only.
 */
MigdDevice *migd_manager_open_device(MigdManager *self, const gchar *name, const gchar *sim_spec,
				     gint fd, const gchar *address, GError **error);
/* adds an opened @device, with its IOVA ranges (@ranges: MigdIovaRange, or NULL) */
gboolean migd_manager_add_device(MigdManager *self, MigdDevice *device, GArray *ranges,
				 GError **error);
/*
 * Where AddDevice's "persist" writes: @dir/devices.d/NAME.conf, the drop-ins the daemon reads
 * after its configuration file in @dir. NULL (the default): "persist" is refused.
 */
void migd_manager_set_config_dir(MigdManager *self, const gchar *dir);
/* whether @name can be persisted here (a config dir is set, a name that is a safe file name) */
gboolean migd_manager_check_persist(MigdManager *self, const gchar *name, GError **error);
/*
 * Writes the drop-in of an added @device: [device NAME] with address=@address (a kernel
 * device) or sim-spec=@sim_spec, and iova-ranges= when @ranges has any.
 */
gboolean migd_manager_persist_device(MigdManager *self, MigdDevice *device, const gchar *address,
				     const gchar *sim_spec, GArray *ranges, GError **error);
/* refused while the device is in a job (either way) or reserved by an expectation */
gboolean migd_manager_detach_device(MigdManager *self, const gchar *name, GError **error);

/* ---- migrations ---- */

/* refuses what is not an address (tcp:HOST:PORT, unix:PATH), as a caller's error */
gboolean migd_manager_check_address(const gchar *address, GError **error);
/*
 * Migrates the devices named (none: all) to @address; @options may be NULL.
 * Returns the job's id, or 0 with @error when it cannot start (no device
 * touched).
 */
guint64 migd_manager_migrate(MigdManager *self, const gchar *const *device_names,
			     const gchar *address, const MigdMigrateOptions *options,
			     GError **error);
/* receives migrations on @address; returns the address bound (port 0 resolved) */
gchar *migd_manager_listen(MigdManager *self, const gchar *address,
			   const MigdTransportConfig *transport, GError **error);
/* receives migrations on a listening socket handed over by systemd (owns @fd on success) */
gboolean migd_manager_listen_fd(MigdManager *self, gint fd, const MigdTransportConfig *transport,
				GError **error);
gboolean migd_manager_is_listening(MigdManager *self);
/* undoes a listen nothing used yet (no expectation): a caller whose setup failed after it */
void migd_manager_stop_listening(MigdManager *self);
/*
 * StopListening: closes the listener (Listen's or systemd's socket);
 * MIGD_ERROR_INVALID_ARGUMENT when not listening, MIGD_ERROR_BUSY while an
 * incoming migration runs or expectations exist (the message names them)
 */
gboolean migd_manager_close_listener(MigdManager *self, GError **error);
/* the bound addresses incoming migrations arrive on (today at most one; g_strfreev) */
gchar **migd_manager_list_listeners(MigdManager *self);
/* the start mode of incoming migrations no expectation covers (Listen's "start") */
void migd_manager_set_start_mode(MigdManager *self, MigdStartMode mode);
MigdStartMode migd_manager_get_start_mode(MigdManager *self);
/*
 * Reserves the devices named (in offer order) for the incoming migration
 * @migration_id (see migd_destination_expect); needs a listener. Returns the
 * address the source must dial, or NULL and @error (nothing reserved).
 */
gchar *migd_manager_expect(MigdManager *self, const gchar *migration_id,
			   const gchar *const *device_names, MigdStartMode start, guint timeout_s,
			   GError **error);
gboolean migd_manager_cancel_expectation(MigdManager *self, const gchar *migration_id,
					 GError **error);
/* the ids of the current expectations (NULL-terminated, g_strfreev); empty without a listener */
gchar **migd_manager_list_expectations(MigdManager *self);
/* the accumulated dirty bitmap of @name after an incoming migration (a sealed memfd) */
gint migd_manager_dup_dirty_bitmap_fd(MigdManager *self, const gchar *name, GError **error);

/* ---- jobs ---- */

/* NULL if there is no job @id (never was, or no longer retained) */
MigdJob *migd_manager_get_job(MigdManager *self, guint64 id);
/* guint64, the ids of every registered job, ascending */
GArray *migd_manager_get_job_ids(MigdManager *self);
guint migd_manager_get_n_active_jobs(MigdManager *self);
/* cancels job @id; FALSE if there is none or it already ended */
gboolean migd_manager_cancel_job(MigdManager *self, guint64 id);
/* asks every running job to cancel (shutdown); returns how many were running */
guint migd_manager_cancel_all(MigdManager *self);
/* one line for systemd's STATUS=: the running jobs' phases and progress, or idle */
gchar *migd_manager_describe(MigdManager *self);

/* stops listening and drops every job (job-removed for each); the devices stay */
void migd_manager_close(MigdManager *self);

G_END_DECLS
