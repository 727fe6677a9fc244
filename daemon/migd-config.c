/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migd.conf: loading and the checks of the file alone (see migd-config.h).
 */
#include "config.h"

#include "migd-config.h"
#include "migd-stream-budget.h"

#include <string.h>

#include "migd-dirty-ranges.h"
#include "migd-error.h"
#include "migd-file.h"
#include "migd-libvirt-tracker.h"
#include "migd-plugin.h"
#include "migd-vm.h"

GKeyFile *
migd_daemon_config_load(const gchar *path, GError **error)
{
	g_autoptr(GKeyFile) config = g_key_file_new();
	g_autoptr(GError) error_local = NULL;
	const gchar *file = path != NULL ? path : MIGD_CONFIG_FILE;

	/* a FIFO or /dev/zero as the config must neither block nor grow the daemon */
	if (!migd_file_load_key_file(config, file, &error_local)) {
		if (path == NULL && g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return g_steal_pointer(&config);
		migd_error_convert(&error_local);
		g_propagate_error(error, g_steal_pointer(&error_local));
		return NULL;
	}
	g_message("configuration from %s", file);
	return g_steal_pointer(&config);
}

/* "device NAME": @prefix followed by a name */
static gboolean
migd_daemon_config_is_named(const gchar *group, const gchar *prefix)
{
	return g_str_has_prefix(group, prefix) && group[strlen(prefix)] != '\0';
}

static gboolean
migd_daemon_config_check_group_name(const gchar *group, GError **error)
{
	const gchar *const plain[] = {"daemon", "listen", "libvirt", NULL};
	const gchar *const named[] = {"device ", "plugin ", "libvirt-domain ", "vm ", NULL};

	if (g_strv_contains(plain, group))
		return TRUE;
	for (guint i = 0; named[i] != NULL; i++) {
		if (migd_daemon_config_is_named(group, named[i]))
			return TRUE;
	}
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
		    "unknown group [%s] (known: " MIGD_DAEMON_CONFIG_GROUPS
		    "; group names are lower case)",
		    group);
	return FALSE;
}

/* [device NAME] iova-ranges=LIST: the syntax here, whether NAME exists where devices are */
static gboolean
migd_daemon_config_check_device(GKeyFile *config, const gchar *group, GError **error)
{
	const gchar *const known[] = {"iova-ranges", NULL};
	g_autofree gchar *value = NULL;
	g_autoptr(GArray) ranges = NULL;

	if (!migd_plugin_config_check_keys(config, group, known, error)) {
		g_prefix_error(error, "[%s]: ", group);
		return FALSE;
	}
	if (!g_key_file_has_key(config, group, "iova-ranges", NULL))
		return TRUE;
	/* not g_key_file_get_string(): on a bad escape it returns a value and an error both */
	value = migd_plugin_config_get_string(config, group, "iova-ranges", error);
	if (value == NULL) {
		g_prefix_error(error, "[%s] ", group);
		return FALSE;
	}
	ranges = migd_dirty_ranges_parse(value, error);
	if (ranges == NULL) {
		g_prefix_error(error, "[%s] iova-ranges: ", group);
		return FALSE;
	}
	return TRUE;
}

/* [daemon]: the daemon's own settings */
static gboolean
migd_daemon_config_check_daemon(GKeyFile *config, GError **error)
{
	const gchar *const known[] = {"low-power-idle", "max-inflight", NULL};
	gboolean low_power_idle = FALSE;
	guint64 max_inflight = MIGD_STREAM_BUDGET_DEFAULT;

	if (!migd_plugin_config_check_keys(config, "daemon", known, error)) {
		g_prefix_error(error, "[daemon]: ");
		return FALSE;
	}
	if (!migd_plugin_config_get_boolean(config, "daemon", "low-power-idle", &low_power_idle,
					    error) ||
	    !migd_plugin_config_get_size(config, "daemon", "max-inflight", MIGD_STREAM_BUDGET_MIN,
					 MIGD_STREAM_BUDGET_MAX, &max_inflight, error)) {
		g_prefix_error(error, "[daemon] ");
		return FALSE;
	}
	return TRUE;
}

gboolean
migd_daemon_config_check(GKeyFile *config, GError **error)
{
	g_auto(GStrv) groups = NULL;
	g_autoptr(GPtrArray) maps = NULL;

	g_return_val_if_fail(config != NULL, FALSE);

	groups = g_key_file_get_groups(config, NULL);
	for (guint i = 0; groups[i] != NULL; i++) {
		if (!migd_daemon_config_check_group_name(groups[i], error))
			return FALSE;
		if (g_str_has_prefix(groups[i], "device ") &&
		    !migd_daemon_config_check_device(config, groups[i], error))
			return FALSE;
		/* [vm NAME]: everything but whether its devices exist (migd_vm_new) */
		if (g_str_has_prefix(groups[i], "vm ")) {
			g_autoptr(MigdVmConfig) vm =
			    migd_vm_config_from_key_file(config, groups[i], error);
			if (vm == NULL)
				return FALSE;
		}
	}
	if (!migd_daemon_config_check_daemon(config, error))
		return FALSE;
	maps = migd_libvirt_domain_maps_from_key_file(config, error);
	return maps != NULL;
}
