/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-dbus-generated.h"
#include "migd-device.h"
#include "migd-journal.h"
#include "migd-low-power.h"
#include "migd-transport.h"

G_BEGIN_DECLS

#define MIGD_DBUS_OBJECT_PATH "/org/vfiomigd/Migd1"
#define MIGD_DBUS_JOBS_PATH   "/org/vfiomigd/Migd1/jobs"
#define MIGD_DBUS_BUS_NAME    "org.vfiomigd.Migd1"
/* how long, and how many, finished jobs stay exported so their result can be read */
#define MIGD_DBUS_JOB_RETAIN_S	   600
#define MIGD_DBUS_JOB_RETAIN_COUNT 64

/*
 * Exports org.vfiomigd.Migd1.Manager at MIGD_DBUS_OBJECT_PATH over a set of
 * devices, and one Job object per migration, outgoing or incoming.
 */
#define MIGD_TYPE_DBUS_MANAGER_SERVICE (migd_dbus_manager_service_get_type())
G_DECLARE_FINAL_TYPE(MigdDbusManagerService, migd_dbus_manager_service, MIGD, DBUS_MANAGER_SERVICE,
		     MigdDbusManagerSkeleton)

/*
 * Adds backend-specific entries to a device's ListDevices properties; @busy:
 * the device is in a job, so its state is in flux. Keeps backends (the
 * simulator) out of the control plane.
 */
typedef void (*MigdDbusDeviceInfoFunc)(MigdDevice *device, gboolean busy, GVariantDict *dict,
				       gpointer user_data);

/*
 * Opens a device for AddDevice (@fd < 0) or AttachDevice (@fd >= 0, borrowed:
 * duplicate it to keep it), probed and with a plugin, named @name. @options
 * is the caller's a{sv}; the function handles the keys it knows ("sim-spec").
 * Keeps device backends and plugins out of the control plane.
 */
typedef MigdDevice *(*MigdDbusDeviceOpenFunc)(const gchar *name, GVariant *options, gint fd,
					      gpointer user_data, GError **error);

/* registers MIGD_ERROR's D-Bus names (idempotent); errors then cross D-Bus by name */
void migd_dbus_error_register(void);

/* @devices: MigdDevice, probed, with unique names */
MigdDbusManagerService *migd_dbus_manager_service_new(GPtrArray *devices);
/* one line for systemd's STATUS=: the running jobs' phases and progress, or idle */
gchar *migd_dbus_manager_service_describe(MigdDbusManagerService *self);
/* idle devices go to low power (borrowed; outlives the service); NULL: they stay powered */
void migd_dbus_manager_service_set_low_power(MigdDbusManagerService *self, MigdLowPower *low_power);
/* jobs are recorded in @journal (borrowed; outlives the service), see migd-journal.h */
void migd_dbus_manager_service_set_journal(MigdDbusManagerService *self, MigdJournal *journal);
void migd_dbus_manager_service_set_device_info_func(MigdDbusManagerService *self,
						    MigdDbusDeviceInfoFunc func,
						    gpointer user_data);
void migd_dbus_manager_service_set_device_open_func(MigdDbusManagerService *self,
						    MigdDbusDeviceOpenFunc func,
						    gpointer user_data);
void migd_dbus_manager_service_add_capability(MigdDbusManagerService *self,
					      const gchar *capability);
gboolean migd_dbus_manager_service_export(MigdDbusManagerService *self, GDBusConnection *connection,
					  GError **error);
/* unexports the Manager and every job object; stops listening */
void migd_dbus_manager_service_unexport(MigdDbusManagerService *self);

/* receives migrations on a listening socket handed over by systemd (owns @fd on success) */
gboolean migd_dbus_manager_service_listen_fd(MigdDbusManagerService *self, gint fd,
					     const MigdTransportConfig *transport, GError **error);
/*
 * Migrate without a D-Bus caller (the libvirt watcher): as the Migrate method,
 * @options as its a{sv}; returns the job's object path, or NULL with @error
 * when it cannot start (no device touched).
 */
gchar *migd_dbus_manager_service_migrate(MigdDbusManagerService *self,
					 const gchar *const *device_names, const gchar *address,
					 GVariant *options, const gchar *requester, GError **error);
/* cancels the job at @path; FALSE if there is none or it already ended */
gboolean migd_dbus_manager_service_cancel_job(MigdDbusManagerService *self, const gchar *path);
guint migd_dbus_manager_service_get_n_active_jobs(MigdDbusManagerService *self);
/* asks every running job to cancel (shutdown); returns how many were running */
guint migd_dbus_manager_service_cancel_all(MigdDbusManagerService *self);

G_END_DECLS
