/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-plugin.h"

G_BEGIN_DECLS

/*
 * Loads plugin modules, configures them and gives every device the plugin that
 * knows it best; the built-in generic plugin serves the rest.
 */
#define MIGD_TYPE_PLUGIN_MANAGER (migd_plugin_manager_get_type())
G_DECLARE_FINAL_TYPE(MigdPluginManager, migd_plugin_manager, MIGD, PLUGIN_MANAGER, GObject)

/*
 * overrides the compiled-in plugin directory (tests, running from the build
 * tree); like --plugin-dir it may name several directories separated by
 * G_SEARCHPATH_SEPARATOR, as the build tree keeps each plugin in its own
 */
#define MIGD_PLUGIN_DIR_ENV "VFIO_MIGD_PLUGIN_DIR"

MigdPluginManager *migd_plugin_manager_new(void);
/* the directories in use: $VFIO_MIGD_PLUGIN_DIR, else the compiled-in one */
const gchar *migd_plugin_manager_default_dir(void);
/*
 * Loads every module (*.so) in @dirs: one directory, or several separated by
 * G_SEARCHPATH_SEPARATOR (an installed vfio-migd has one; the build tree one per
 * plugin), all in the order of their file names. A module that cannot be used
 * (not a plugin, another ABI version, a duplicate name) is refused with a
 * warning and skipped; only an unreadable directory fails. A missing directory
 * is no error: the generic plugin remains.
 */
gboolean migd_plugin_manager_load_dir(MigdPluginManager *self, const gchar *dirs, GError **error);
/*
 * The same, but with @required every directory named in @dirs must exist: one an operator
 * named (--plugin-dir, $VFIO_MIGD_PLUGIN_DIR) and that is missing is a typo, not "no plugins"
 * (MIGD_ERROR_INVALID_ARGUMENT naming it). Empty entries ("a::b") still name nothing.
 */
gboolean migd_plugin_manager_load_dirs(MigdPluginManager *self, const gchar *dirs,
				       gboolean required, GError **error);
/* one module; fails with the reason it was refused */
gboolean migd_plugin_manager_load_module(MigdPluginManager *self, const gchar *path,
					 GError **error);
void migd_plugin_manager_add(MigdPluginManager *self, MigdPlugin *plugin);
/* hands each plugin its [plugin NAME] group; @config may be NULL */
gboolean migd_plugin_manager_configure(MigdPluginManager *self, GKeyFile *config, GError **error);
MigdPlugin *migd_plugin_manager_find(MigdPluginManager *self, const gchar *name);
/* the plugins, generic last */
GPtrArray *migd_plugin_manager_get_plugins(MigdPluginManager *self);
/* picks @device's plugin, records it (and its recovery quirks) on the device */
MigdPlugin *migd_plugin_manager_assign(MigdPluginManager *self, MigdDevice *device);
/*
 * Which plugin would take the device @name of @identity (driver name, PCI ids)
 * without opening it (host discovery): each plugin's match is asked with a
 * device that has no backend (every operation on it fails), so it judges the
 * identity alone, as the in-tree plugins do. Never NULL.
 */
MigdPlugin *migd_plugin_manager_match_identity(MigdPluginManager *self, const gchar *name,
					       const MigdDeviceIdentity *identity);

G_END_DECLS
