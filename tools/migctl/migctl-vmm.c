/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migctl: the VMM's controls (switchover, start, abandon, rollback, dirty-sync) and the
 * destination's expectations.
 */
#include "config.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "migd-dirty-bitmap-file.h"
#include "migd-dirty-ranges.h"
#include "migctl.h"
#include "migctl-help.h"
#include "migctl-util.h"

/* ---- the VMM's controls: switchover, start, abandon, rollback, dirty-sync ---- */

/*
 * Switchover and Start reply only once the devices stopped and loaded, or ran:
 * seconds are normal, and GDBus's 25 s default would give up on a call the
 * daemon still completes. No client bound: the job's own bounds (the handover
 * timeout, the engine's) end it, and a daemon that goes away ends the call.
 */
static MigdDbusJob *
migctl_job_proxy(const MigctlOptions *options, const gchar *path, GError **error)
{
	MigdDbusJob *job = migd_dbus_job_proxy_new_sync(
	    options->connection,
	    G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES | G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
	    options->bus_name, path, NULL, error);

	if (job != NULL)
		g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(job), G_MAXINT);
	return job;
}

gint
migctl_cmd_control(const MigctlOptions *options, const gchar *cmd, const gchar *path)
{
	g_autoptr(MigdDbusJob) job = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *flag;
	const gchar *said; /* what happened, for a person */
	gboolean ok;

	job = migctl_job_proxy(options, path, &error);
	if (job == NULL)
		return migctl_fail(options, error);
	if (g_strcmp0(cmd, "switchover") == 0) {
		ok = migd_dbus_job_call_switchover_sync(job, NULL, &error);
		flag = "switched_over";
		said = "switched over: the destination loaded and validated every device; the "
		       "source devices wait in STOP until it starts (or a rollback)";
	} else if (g_strcmp0(cmd, "start") == 0) {
		ok = migd_dbus_job_call_start_sync(job, NULL, &error);
		flag = "started";
		said = "started: the source granted the handover, the devices run";
	} else if (g_strcmp0(cmd, "abandon") == 0) {
		ok = migd_dbus_job_call_abandon_sync(job, NULL, &error);
		flag = "abandoned";
		said = "abandoned: the devices are reset, the source takes its devices back";
	} else {
		ok = migd_dbus_job_call_rollback_sync(job, NULL, &error);
		flag = "rolled_back";
		said = "rolled back: the source devices run again";
	}
	if (!ok)
		return migctl_fail(options, error);
	if (options->json)
		migctl_json_print_result("job", path, flag);
	else
		g_print("%s\n", said);
	return MIGCTL_EXIT_OK;
}

gint
migctl_cmd_dirty_sync(const MigctlOptions *options, const gchar *path, const gchar *device)
{
	g_autoptr(MigdDbusJob) job = NULL;
	g_autoptr(GVariant) handle = NULL;
	g_autoptr(GUnixFDList) fds = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;

	job = migctl_job_proxy(options, path, &error);
	if (job == NULL || !migd_dbus_job_call_sync_dirty_bitmap_sync(job, device, NULL, &handle,
								      &fds, NULL, &error))
		return migctl_fail(options, error);
	bytes = migctl_read_fd(fds, handle, &error);
	if (bytes == NULL)
		return migctl_fail(options, error);
	return migctl_dirty_report(options, path, device, bytes);
}

/* ---- expect, cancel-expectation, expectations ---- */

gint
migctl_cmd_expect(const MigctlOptions *options, const gchar *migration_id)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *address = NULL;
	g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);

	if (options->start != NULL)
		g_variant_builder_add(&builder, "{sv}", "start",
				      g_variant_new_string(options->start));
	if (options->expect_timeout_s > 0)
		g_variant_builder_add(&builder, "{sv}", "timeout",
				      g_variant_new_uint32(options->expect_timeout_s));
	manager = migctl_manager(options, &error);
	if (manager == NULL || !migd_dbus_manager_call_expect_sync(
				   manager, migration_id, (const gchar *const *)options->devices,
				   g_variant_builder_end(&builder), &address, NULL, &error))
		return migctl_fail(options, error);
	if (options->json) {
		g_autoptr(JsonBuilder) json = json_builder_new();
		json_builder_begin_object(json);
		json_builder_set_member_name(json, "migration_id");
		migctl_json_string(json, migration_id);
		json_builder_set_member_name(json, "address");
		migctl_json_string(json, address);
		json_builder_end_object(json);
		migctl_json_print(json);
	} else {
		g_print("%s\n", address);
	}
	return MIGCTL_EXIT_OK;
}

gint
migctl_cmd_cancel_expectation(const MigctlOptions *options, const gchar *migration_id)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_autoptr(GError) error = NULL;

	manager = migctl_manager(options, &error);
	if (manager == NULL ||
	    !migd_dbus_manager_call_cancel_expectation_sync(manager, migration_id, NULL, &error))
		return migctl_fail(options, error);
	if (options->json)
		migctl_json_print_result("migration_id", migration_id, "cancelled");
	return MIGCTL_EXIT_OK;
}

gint
migctl_cmd_expectations(const MigctlOptions *options)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) ids = NULL;
	g_autoptr(JsonBuilder) builder = json_builder_new();

	manager = migctl_manager(options, &error);
	if (manager == NULL ||
	    !migd_dbus_manager_call_list_expectations_sync(manager, &ids, NULL, &error))
		return migctl_fail(options, error);
	json_builder_begin_object(builder);
	json_builder_set_member_name(builder, "expectations");
	json_builder_begin_array(builder);
	for (guint i = 0; ids[i] != NULL; i++) {
		migctl_json_string(builder, ids[i]);
		if (!options->json)
			g_print("%s\n", ids[i]);
	}
	json_builder_end_array(builder);
	json_builder_end_object(builder);
	if (options->json)
		migctl_json_print(builder);
	return MIGCTL_EXIT_OK;
}
