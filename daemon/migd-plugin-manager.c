/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdPluginManager: the one place that loads modules (GModule) and decides
 * which plugin a device gets.
 */
#include "config.h"

#include "migd-plugin-manager.h"

#include <gmodule.h>
#include <string.h>

#include "migd-error.h"
#include "migd-plugin-generic.h"

struct _MigdPluginManager {
	GObject parent_instance;
	GPtrArray *plugins; /* of MigdPlugin, generic last */
};

G_DEFINE_TYPE(MigdPluginManager, migd_plugin_manager, G_TYPE_OBJECT)

const gchar *
migd_plugin_manager_default_dir(void)
{
	const gchar *env = g_getenv(MIGD_PLUGIN_DIR_ENV);
	return env != NULL && env[0] != '\0' ? env : MIGD_PLUGIN_DIR;
}

MigdPlugin *
migd_plugin_manager_find(MigdPluginManager *self, const gchar *name)
{
	for (guint i = 0; i < self->plugins->len; i++) {
		MigdPlugin *plugin = g_ptr_array_index(self->plugins, i);
		if (g_strcmp0(migd_plugin_get_name(plugin), name) == 0)
			return plugin;
	}
	return NULL;
}

void
migd_plugin_manager_add(MigdPluginManager *self, MigdPlugin *plugin)
{
	/* before the generic plugin, which stays last */
	g_ptr_array_insert(self->plugins, self->plugins->len - 1, g_object_ref(plugin));
}

gboolean
migd_plugin_manager_load_module(MigdPluginManager *self, const gchar *path, GError **error)
{
	GModule *module = g_module_open(path, G_MODULE_BIND_LOCAL);
	const MigdPluginModule *info = NULL;
	g_autoptr(MigdPlugin) plugin = NULL;
	GType type;

	if (module == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED, "%s: cannot load: %s",
			    path, g_module_error());
		return FALSE;
	}
	if (!g_module_symbol(module, MIGD_PLUGIN_MODULE_SYMBOL, (gpointer *)&info) ||
	    info == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: not a vfio-migd plugin (no %s symbol)", path,
			    MIGD_PLUGIN_MODULE_SYMBOL);
		g_module_close(module);
		return FALSE;
	}
	/* nothing but the version is read until the version is known to match */
	if (info->abi_version != MIGD_PLUGIN_ABI_VERSION) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: plugin ABI version %u, but this vfio-migd speaks version %u; "
			    "rebuild the plugin against this vfio-migd",
			    path, info->abi_version, MIGD_PLUGIN_ABI_VERSION);
		g_module_close(module);
		return FALSE;
	}
	if (info->name == NULL || info->name[0] == '\0' || info->get_type == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: plugin without a name or type", path);
		g_module_close(module);
		return FALSE;
	}
	if (migd_plugin_manager_find(self, info->name) != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: a plugin named %s is already loaded", path, info->name);
		g_module_close(module);
		return FALSE;
	}
	type = info->get_type();
	if (type == G_TYPE_INVALID) {
		/* e.g. a copy of a module already loaded from another path */
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: plugin %s could not register its type", path, info->name);
		g_module_close(module);
		return FALSE;
	}
	if (!g_type_is_a(type, MIGD_TYPE_PLUGIN) || G_TYPE_IS_ABSTRACT(type)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: type %s is not a concrete MigdPlugin", path, g_type_name(type));
		g_module_close(module);
		return FALSE;
	}
	/* its GType is registered for good: the module can never be unloaded */
	g_module_make_resident(module);
	plugin = g_object_new(type, "name", info->name, NULL);
	migd_plugin_manager_add(self, plugin);
	g_info("loaded plugin %s from %s", info->name, path);
	return TRUE;
}

/* by file name, whatever directory a module is in */
static gint
migd_plugin_manager_cmp_basenames(gconstpointer a, gconstpointer b)
{
	g_autofree gchar *name_a = g_path_get_basename(*(const gchar *const *)a);
	g_autofree gchar *name_b = g_path_get_basename(*(const gchar *const *)b);
	return g_strcmp0(name_a, name_b);
}

/* adds the path of every module in @dir to @paths */
static gboolean
migd_plugin_manager_list_dir(const gchar *dir, gboolean required, GPtrArray *paths, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autoptr(GDir) gdir = g_dir_open(dir, 0, &error_local);
	const gchar *name;

	if (gdir == NULL) {
		if (g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT) && required) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "plugin directory %s does not exist (a directory named with "
				    "--plugin-dir or $" MIGD_PLUGIN_DIR_ENV " must)",
				    dir);
			return FALSE;
		}
		if (g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
			g_message("no plugin directory %s: only the generic plugin", dir);
			return TRUE;
		}
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "plugin directory %s: %s", dir, error_local->message);
		return FALSE;
	}
	while ((name = g_dir_read_name(gdir)) != NULL) {
		if (g_str_has_suffix(name, "." G_MODULE_SUFFIX))
			g_ptr_array_add(paths, g_build_filename(dir, name, NULL));
	}
	return TRUE;
}

gboolean
migd_plugin_manager_load_dir(MigdPluginManager *self, const gchar *dirs, GError **error)
{
	return migd_plugin_manager_load_dirs(self, dirs, FALSE, error);
}

gboolean
migd_plugin_manager_load_dirs(MigdPluginManager *self, const gchar *dirs, gboolean required,
			      GError **error)
{
	g_auto(GStrv) split = g_strsplit(dirs, G_SEARCHPATH_SEPARATOR_S, -1);
	g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; split[i] != NULL; i++) {
		/* "a::b" or a trailing separator names no directory */
		if (split[i][0] == '\0')
			continue;
		if (!migd_plugin_manager_list_dir(split[i], required, paths, error))
			return FALSE;
	}
	/*
	 * the same order on every host, whatever readdir returns, and the same
	 * whether the modules share one directory or not (stable: a module in
	 * two directories is tried from the first, the second copy refused)
	 */
	g_ptr_array_sort(paths, migd_plugin_manager_cmp_basenames);
	for (guint i = 0; i < paths->len; i++) {
		g_autoptr(GError) error_module = NULL;
		if (!migd_plugin_manager_load_module(self, g_ptr_array_index(paths, i),
						     &error_module))
			g_warning("refused plugin %s", error_module->message);
	}
	return TRUE;
}

gboolean
migd_plugin_manager_configure(MigdPluginManager *self, GKeyFile *config, GError **error)
{
	g_auto(GStrv) groups = NULL;

	for (guint i = 0; i < self->plugins->len; i++) {
		if (!migd_plugin_configure(g_ptr_array_index(self->plugins, i), config, error))
			return FALSE;
	}
	if (config == NULL)
		return TRUE;
	/* settings for a plugin that is not installed are kept, not fatal */
	groups = g_key_file_get_groups(config, NULL);
	for (guint i = 0; groups[i] != NULL; i++) {
		if (g_str_has_prefix(groups[i], "plugin ") &&
		    migd_plugin_manager_find(self, groups[i] + strlen("plugin ")) == NULL)
			g_warning("[%s]: no such plugin is loaded; its settings are ignored",
				  groups[i]);
	}
	return TRUE;
}

GPtrArray *
migd_plugin_manager_get_plugins(MigdPluginManager *self)
{
	return self->plugins;
}

MigdPlugin *
migd_plugin_manager_assign(MigdPluginManager *self, MigdDevice *device)
{
	g_auto(MigdDeviceIdentity) identity = {0};
	g_autoptr(GError) error_local = NULL;
	MigdPlugin *best = NULL;
	guint best_score = MIGD_PLUGIN_SCORE_NONE;
	MigdPluginPolicy policy;

	/* features feed the policy (which tracker); a failed probe leaves them empty */
	if (!migd_device_probe(device, &error_local))
		g_debug("%s: probe: %s", migd_device_get_name(device), error_local->message);
	g_clear_error(&error_local);
	if (!migd_device_get_identity(device, &identity, &error_local))
		g_warning("%s: cannot read its identity: %s", migd_device_get_name(device),
			  error_local->message);
	for (guint i = 0; i < self->plugins->len; i++) {
		MigdPlugin *plugin = g_ptr_array_index(self->plugins, i);
		guint score = migd_plugin_match(plugin, device, &identity);
		if (score > best_score) {
			best = plugin;
			best_score = score;
		}
	}
	/* the generic plugin matches everything, so there is always one */
	g_assert(best != NULL);
	migd_device_set_plugin(device, best);
	migd_plugin_get_policy(best, device, &policy);
	migd_device_set_recovery_quirks(device, policy.recovery_quirks);
	if (best_score <= MIGD_PLUGIN_SCORE_GENERIC)
		g_warning("%s: no plugin for driver %s (%04x:%04x): using the generic plugin, "
			  "without driver-specific rules",
			  migd_device_get_name(device), identity.driver, identity.vendor_id,
			  identity.device_id);
	else
		g_message("%s: plugin %s (driver %s, dirty tracker %s)",
			  migd_device_get_name(device), migd_plugin_get_name(best), identity.driver,
			  migd_dirty_tracker_kind_to_string(policy.tracker));
	return best;
}

/*
 * What match() gets for a device nobody opened (host discovery): a MigdDevice
 * without a backend, so a plugin that asks it anything gets an error, not a crash.
 */
#define MIGD_TYPE_PLUGIN_PROBE_DEVICE (migd_plugin_probe_device_get_type())
G_DECLARE_FINAL_TYPE(MigdPluginProbeDevice, migd_plugin_probe_device, MIGD, PLUGIN_PROBE_DEVICE,
		     MigdDevice)

struct _MigdPluginProbeDevice {
	MigdDevice parent_instance;
};

G_DEFINE_TYPE(MigdPluginProbeDevice, migd_plugin_probe_device, MIGD_TYPE_DEVICE)

static void
migd_plugin_probe_device_init(MigdPluginProbeDevice *self)
{
}

static void
migd_plugin_probe_device_class_init(MigdPluginProbeDeviceClass *klass)
{
}

MigdPlugin *
migd_plugin_manager_match_identity(MigdPluginManager *self, const gchar *name,
				   const MigdDeviceIdentity *identity)
{
	g_autoptr(MigdDevice) probe =
	    g_object_new(MIGD_TYPE_PLUGIN_PROBE_DEVICE, "name", name, NULL);
	MigdPlugin *best = NULL;
	guint best_score = MIGD_PLUGIN_SCORE_NONE;

	for (guint i = 0; i < self->plugins->len; i++) {
		MigdPlugin *plugin = g_ptr_array_index(self->plugins, i);
		guint score = migd_plugin_match(plugin, probe, identity);
		if (score > best_score) {
			best = plugin;
			best_score = score;
		}
	}
	/* the generic plugin matches everything, so there is always one */
	g_assert(best != NULL);
	return best;
}

static void
migd_plugin_manager_finalize(GObject *object)
{
	MigdPluginManager *self = MIGD_PLUGIN_MANAGER(object);
	g_ptr_array_unref(self->plugins);
	G_OBJECT_CLASS(migd_plugin_manager_parent_class)->finalize(object);
}

static void
migd_plugin_manager_init(MigdPluginManager *self)
{
	self->plugins = g_ptr_array_new_with_free_func(g_object_unref);
	g_ptr_array_add(self->plugins, migd_plugin_generic_new());
}

static void
migd_plugin_manager_class_init(MigdPluginManagerClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = migd_plugin_manager_finalize;
}

MigdPluginManager *
migd_plugin_manager_new(void)
{
	return g_object_new(MIGD_TYPE_PLUGIN_MANAGER, NULL);
}
