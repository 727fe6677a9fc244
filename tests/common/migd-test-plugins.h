/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-plugin-manager.h"

G_BEGIN_DECLS

/*
 * The plugin modules as built, found through $VFIO_MIGD_PLUGIN_DIR (the test
 * environment names each plugin's build directory; a plugin's own tests name
 * only that plugin's).
 */
const gchar *migd_test_plugin_dirs(void);
/* the path of module migd-plugin-@name in @dir */
gchar *migd_test_plugin_module_path(const gchar *dir, const gchar *name);
/* the built module migd-plugin-@name, from the first directory that has it */
gchar *migd_test_plugin_module_built(const gchar *name);
/* a manager with the built modules, configured with @config (key-file text, may be NULL) */
gboolean migd_test_plugins_load(const gchar *config, MigdPluginManager **out, GError **error);
/* the same, failing the test on any error or when no module was found */
MigdPluginManager *migd_test_plugins_new(const gchar *config);
/*
 * A link to the built module @from at @to: a module is loaded once per
 * process, and the dynamic linker knows a link for the same file.
 */
void migd_test_plugin_link_module(const gchar *from, const gchar *to);

/* picks a plugin for each MigdDevice of @devices */
void migd_test_plugins_assign_all(MigdPluginManager *manager, GPtrArray *devices);
/* a fake sysfs node @root/@name of an mlx5 VF whose PF shows firmware @fw; returns its path */
gchar *migd_test_mlx5_sysfs(const gchar *root, const gchar *name, const gchar *fw);

G_END_DECLS
