/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <gmodule.h>
#include <unistd.h>

#include "migd-test-plugins.h"

const gchar *
migd_test_plugin_dirs(void)
{
	const gchar *dirs = g_getenv(MIGD_PLUGIN_DIR_ENV);
	if (dirs == NULL)
		fail_msg("%s is not set (run through meson test)", MIGD_PLUGIN_DIR_ENV);
	return dirs;
}

gchar *
migd_test_plugin_module_path(const gchar *dir, const gchar *name)
{
	g_autofree gchar *file = g_strdup_printf("migd-plugin-%s.%s", name, G_MODULE_SUFFIX);
	return g_build_filename(dir, file, NULL);
}

gchar *
migd_test_plugin_module_built(const gchar *name)
{
	g_auto(GStrv) dirs = g_strsplit(migd_test_plugin_dirs(), G_SEARCHPATH_SEPARATOR_S, -1);

	for (guint i = 0; dirs[i] != NULL; i++) {
		g_autofree gchar *path = migd_test_plugin_module_path(dirs[i], name);
		if (dirs[i][0] != '\0' && g_file_test(path, G_FILE_TEST_EXISTS))
			return g_steal_pointer(&path);
	}
	fail_msg("no module %s in %s", name, migd_test_plugin_dirs());
	return NULL;
}

gboolean
migd_test_plugins_load(const gchar *config, MigdPluginManager **out, GError **error)
{
	g_autoptr(GKeyFile) keyfile = g_key_file_new();
	g_autoptr(MigdPluginManager) manager = migd_plugin_manager_new();

	if (config != NULL &&
	    !g_key_file_load_from_data(keyfile, config, -1, G_KEY_FILE_NONE, error))
		return FALSE;
	if (!migd_plugin_manager_load_dir(manager, migd_test_plugin_dirs(), error) ||
	    !migd_plugin_manager_configure(manager, config != NULL ? keyfile : NULL, error))
		return FALSE;
	if (out != NULL)
		*out = g_steal_pointer(&manager);
	return TRUE;
}

MigdPluginManager *
migd_test_plugins_new(const gchar *config)
{
	g_autoptr(MigdPluginManager) manager = NULL;
	g_autoptr(GError) error = NULL;

	if (!migd_test_plugins_load(config, &manager, &error))
		fail_msg("plugins: %s", error->message);
	/* the generic plugin alone: the directories are wrong or the modules not built */
	if (migd_plugin_manager_get_plugins(manager)->len < 2)
		fail_msg("no plugin module in %s", migd_test_plugin_dirs());
	return g_steal_pointer(&manager);
}

void
migd_test_plugin_link_module(const gchar *from, const gchar *to)
{
	g_autofree gchar *target = g_canonicalize_filename(from, NULL);
	if (symlink(target, to) != 0)
		fail_msg("symlink %s: %s", to, g_strerror(errno));
}

void
migd_test_plugins_assign_all(MigdPluginManager *manager, GPtrArray *devices)
{
	for (guint i = 0; i < devices->len; i++)
		migd_plugin_manager_assign(manager, g_ptr_array_index(devices, i));
}

gchar *
migd_test_mlx5_sysfs(const gchar *root, const gchar *name, const gchar *fw)
{
	g_autofree gchar *ib = g_build_filename(root, name, "physfn", "infiniband", "mlx5_0", NULL);
	g_autofree gchar *file = g_build_filename(ib, "fw_ver", NULL);
	g_autofree gchar *contents = g_strdup_printf("%s\n", fw);

	assert_int_equal(g_mkdir_with_parents(ib, 0700), 0);
	assert_true(g_file_set_contents(file, contents, -1, NULL));
	return g_build_filename(root, name, NULL);
}
