/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-dbus-generated.h"
#include "migd-manager.h"
#include "migd-vm.h"

G_BEGIN_DECLS

#define MIGD_DBUS_OBJECT_PATH "/org/vfiomigd/Migd1"
#define MIGD_DBUS_JOBS_PATH   "/org/vfiomigd/Migd1/jobs"
#define MIGD_DBUS_BUS_NAME    "org.vfiomigd.Migd1"

/*
 * Exports org.vfiomigd.Migd1.Manager at MIGD_DBUS_OBJECT_PATH for a
 * MigdManager, and one Job object per job the manager holds, at
 * MIGD_DBUS_JOBS_PATH/ID: a thin adapter from a{sv} and method calls to the
 * manager's C API, with every error as a MIGD_ERROR name.
 */
#define MIGD_TYPE_DBUS_MANAGER_SERVICE (migd_dbus_manager_service_get_type())
G_DECLARE_FINAL_TYPE(MigdDbusManagerService, migd_dbus_manager_service, MIGD, DBUS_MANAGER_SERVICE,
		     MigdDbusManagerSkeleton)

MigdDbusManagerService *migd_dbus_manager_service_new(MigdManager *manager);
void migd_dbus_manager_service_add_capability(MigdDbusManagerService *self,
					      const gchar *capability);
gboolean migd_dbus_manager_service_export(MigdDbusManagerService *self, GDBusConnection *connection,
					  GError **error);
/*
 * A dbus-vmstate adapter for the VM @config describes (taken), as AttachVM:
 * refused for a name in use, a device another VM holds, or what migd_vm_new
 * refuses
 */
gboolean migd_dbus_manager_service_attach_vm(MigdDbusManagerService *self, MigdVmConfig *config,
					     GError **error);
/* detaches every VM (shutdown, before the manager closes) */
void migd_dbus_manager_service_detach_vms(MigdDbusManagerService *self);
/* unexports the Manager and every job object */
void migd_dbus_manager_service_unexport(MigdDbusManagerService *self);

G_END_DECLS
