/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer harness for vfio-migd.conf: the input is the file. It is loaded as the daemon
 * loads it and every group goes through the checks the daemon and its parts run on it:
 * [daemon] and [listen] keys and booleans, [device NAME] iova-ranges, [plugin NAME] (the
 * generic plugin's configure, and every key as a size), [libvirt] and [libvirt-domain NAME]
 * maps, simulator groups [sim NAME] with their spec strings, and then the daemon's own
 * migd_daemon_config_check() of the whole file. Errors must be
 * MIGD_ERROR_INVALID_ARGUMENT (or GLib's own key-file errors) with a message; a parsed range
 * list must be non-empty, with no empty range and no range past 2^64.
 */
#include "config.h"

#include <stdint.h>

#include "migd-config.h"
#include "migd-dirty-ranges.h"
#include "migd-error.h"
#include "migd-libvirt-tracker.h"
#include "migd-plugin-generic.h"
#include "migd-plugin.h"
#include "migd-sim-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a failed check: an error with a message, in the domain the daemon reports */
static void
check_error(GError *error)
{
	g_assert_nonnull(error);
	g_assert_true(error->message != NULL && error->message[0] != '\0');
	if (error->domain == G_KEY_FILE_ERROR)
		return;
	g_assert_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT);
}

static void
check_group_keys(GKeyFile *config, const gchar *group, const gchar *const *known)
{
	g_autoptr(GError) error = NULL;

	if (!migd_plugin_config_check_keys(config, group, known, &error))
		check_error(error);
}

static void
check_booleans(GKeyFile *config, const gchar *group, const gchar *const *keys)
{
	for (guint i = 0; keys[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;
		gboolean value = FALSE;

		if (!migd_plugin_config_get_boolean(config, group, keys[i], &value, &error))
			check_error(error);
	}
}

/* [device NAME] iova-ranges= */
static void
check_ranges(const gchar *text)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) ranges = migd_dirty_ranges_parse(text, &error);
	const MigdIovaRange *r;
	guint64 sum = 0;

	if (ranges == NULL) {
		check_error(error);
		return;
	}
	g_assert_cmpuint(ranges->len, >, 0);
	r = (const MigdIovaRange *)ranges->data;
	for (guint i = 0; i < ranges->len; i++) {
		g_assert_cmpuint(r[i].length, >, 0);
		g_assert_cmpuint(r[i].iova, <=, G_MAXUINT64 - (r[i].length - 1));
		sum = r[i].length > G_MAXUINT64 - sum ? G_MAXUINT64 : sum + r[i].length;
	}
	/* the union never exceeds the sum */
	g_assert_cmpuint(migd_dirty_ranges_total(r, ranges->len), <=, sum);
}

static void
check_group(GKeyFile *config, const gchar *group)
{
	static const gchar *const daemon_keys[] = {"low-power-idle", NULL};
	static const gchar *const listen_keys[] = {"cert",  "key",	    "ca",
						   "plain", "plain-remote", NULL};
	static const gchar *const listen_booleans[] = {"plain", "plain-remote", NULL};
	static const gchar *const libvirt_keys[] = {"uri", "read-write", "plain", "cert",
						    "key", "ca",	 NULL};
	static const gchar *const libvirt_booleans[] = {"read-write", "plain", NULL};
	static const gchar *const device_keys[] = {"iova-ranges", NULL};
	g_auto(GStrv) keys = g_key_file_get_keys(config, group, NULL, NULL);

	if (g_strcmp0(group, "daemon") == 0) {
		check_group_keys(config, group, daemon_keys);
		check_booleans(config, group, daemon_keys);
	} else if (g_strcmp0(group, "listen") == 0) {
		check_group_keys(config, group, listen_keys);
		check_booleans(config, group, listen_booleans);
	} else if (g_strcmp0(group, "libvirt") == 0) {
		check_group_keys(config, group, libvirt_keys);
		check_booleans(config, group, libvirt_booleans);
	} else if (g_str_has_prefix(group, "device ")) {
		check_group_keys(config, group, device_keys);
		for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
			g_autofree gchar *value =
			    migd_plugin_config_get_string(config, group, keys[i], NULL);
			if (value != NULL)
				check_ranges(value);
		}
	} else if (g_str_has_prefix(group, "plugin ")) {
		/* the helpers every plugin's configure uses, on every key */
		for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
			g_autoptr(GError) error = NULL;
			guint64 value = 0;

			if (!migd_plugin_config_get_size(config, group, keys[i], 1, G_MAXUINT64,
							 &value, &error))
				check_error(error);
			else
				g_assert_cmpuint(value, >=, 1);
		}
	} else if (g_str_has_prefix(group, "sim")) {
		g_autoptr(GError) error = NULL;
		g_autoptr(MigdSimConfig) sim =
		    migd_sim_config_new_from_keyfile(config, group, &error);

		if (sim == NULL)
			check_error(error);
		/* and each value as a --sim-device spec */
		for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
			g_autoptr(GError) error_spec = NULL;
			g_autofree gchar *value =
			    migd_plugin_config_get_string(config, group, keys[i], NULL);
			g_autoptr(MigdSimConfig) spec = NULL;

			if (value == NULL)
				continue;
			spec = migd_sim_config_new_from_string(value, &error_spec);
			if (spec == NULL)
				check_error(error_spec);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GKeyFile) config = g_key_file_new();
	g_autoptr(MigdPlugin) generic = migd_plugin_generic_new();
	g_autoptr(GPtrArray) maps = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) groups = NULL;

	/* as g_key_file_load_from_file would see the file */
	if (!g_key_file_load_from_data(config, (const gchar *)data, size, G_KEY_FILE_NONE, NULL))
		return 0;
	groups = g_key_file_get_groups(config, NULL);
	for (guint i = 0; groups[i] != NULL; i++)
		check_group(config, groups[i]);

	if (!migd_plugin_configure(generic, config, &error)) {
		check_error(error);
		g_clear_error(&error);
	}
	maps = migd_libvirt_domain_maps_from_key_file(config, &error);
	if (maps == NULL) {
		check_error(error);
		g_clear_error(&error);
	}
	/* the daemon's own check of the whole file, as vfio-migd runs it at start */
	if (!migd_daemon_config_check(config, &error))
		check_error(error);
	return 0;
}
