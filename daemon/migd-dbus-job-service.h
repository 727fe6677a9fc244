/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-authority.h"
#include "migd-dbus-generated.h"
#include "migd-job.h"

G_BEGIN_DECLS

/*
 * Exports one MigdJob as org.vfiomigd.Migd1.Job: mirrors its progress into the
 * properties (at most a few times a second), emits Completed once with the final
 * values already sent, and forwards Cancel to the engine. Every method call
 * passes @authority first.
 */
#define MIGD_TYPE_DBUS_JOB_SERVICE (migd_dbus_job_service_get_type())
G_DECLARE_FINAL_TYPE(MigdDbusJobService, migd_dbus_job_service, MIGD, DBUS_JOB_SERVICE,
		     MigdDbusJobSkeleton)

MigdDbusJobService *migd_dbus_job_service_new(MigdJob *job, MigdAuthority *authority);
MigdJob *migd_dbus_job_service_get_job(MigdDbusJobService *self);
/* copies the job's current values into the D-Bus properties */
void migd_dbus_job_service_sync(MigdDbusJobService *self);

G_END_DECLS
