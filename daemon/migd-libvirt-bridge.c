/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdLibvirtBridge: libvirt's domain migrations drive the device migrations.
 */
#include "config.h"

#include "migd-libvirt-bridge.h"

#include "migd-error.h"
#include "migd-libvirt-loop.h"
#include "migd-plugin.h"
#include "migd-libvirt-watcher.h"

struct _MigdLibvirtBridge {
	MigdManager *manager;
	MigdLibvirtWatcher *watcher;
	MigdMigrateOptions *options; /* the transport to the peers */
	GHashTable *jobs;	     /* domain uuid -> guint64 *, the manager's job id */
	gboolean read_write;
};

static void
migd_libvirt_bridge_started_cb(MigdLibvirtWatcher *watcher, const MigdLibvirtMigration *m,
			       gpointer user_data)
{
	MigdLibvirtBridge *self = user_data;
	g_autoptr(GError) error = NULL;
	guint64 id;

	if (m->late) {
		/* seen only at its end: the guest already switched over without its devices */
		g_warning("libvirt migrated domain %s before vfio-migd saw it start: its devices "
			  "were not migrated",
			  m->name);
		return;
	}
	g_free(self->options->requester);
	self->options->requester = g_strdup_printf("libvirt domain %s", m->name);
	id = migd_manager_migrate(self->manager, (const gchar *const *)m->map->devices,
				  m->map->peer, self->options, &error);
	if (id == 0) {
		g_warning("libvirt migrates domain %s, but its devices cannot follow: %s", m->name,
			  error->message);
		return;
	}
	g_hash_table_replace(self->jobs, g_strdup(m->uuid), g_memdup2(&id, sizeof(id)));
}

static void
migd_libvirt_bridge_failed_cb(MigdLibvirtWatcher *watcher, const MigdLibvirtMigration *m,
			      MigdLibvirtEnd end, const gchar *message, gpointer user_data)
{
	MigdLibvirtBridge *self = user_data;
	const guint64 *id = g_hash_table_lookup(self->jobs, m->uuid);
	g_autofree gchar *job = id != NULL ? g_strdup_printf("%" G_GUINT64_FORMAT, *id) : NULL;

	if (end == MIGD_LIBVIRT_END_POSTCOPY_FAILED) {
		/* the guest's state is split between the hosts: rolling back would lose it */
		g_critical("libvirt's post-copy migration of %s failed: its device job %s is left "
			   "as it is until libvirt recovers the migration",
			   m->name, job != NULL ? job : "(none)");
		return;
	}
	if (end == MIGD_LIBVIRT_END_UNKNOWN) {
		/* the domain vanished while we were disconnected: the device job decides */
		g_warning("libvirt lost track of %s: its device job %s decides by itself", m->name,
			  job != NULL ? job : "(none)");
		g_hash_table_remove(self->jobs, m->uuid);
		return;
	}
	/* the guest stays here: its devices must too */
	if (id != NULL && migd_manager_cancel_job(self->manager, *id))
		g_message("libvirt's migration of %s ended (%s%s%s): cancelling job %s", m->name,
			  migd_libvirt_end_to_string(end), message != NULL ? ": " : "",
			  message != NULL ? message : "", job);
	g_hash_table_remove(self->jobs, m->uuid);
}

static void
migd_libvirt_bridge_finished_cb(MigdLibvirtWatcher *watcher, const MigdLibvirtMigration *m,
				gpointer user_data)
{
	MigdLibvirtBridge *self = user_data;
	g_message("libvirt migrated domain %s", m->name);
	g_hash_table_remove(self->jobs, m->uuid);
}

static void
migd_libvirt_bridge_connection_cb(MigdLibvirtWatcher *watcher, gboolean connected,
				  const gchar *message, gpointer user_data)
{
	if (connected)
		g_message("connected to libvirt");
	else
		g_warning("libvirt connection: %s", message != NULL ? message : "lost");
}

static MigdMigrateOptions *
migd_libvirt_bridge_options(GKeyFile *config, gboolean *read_write, GError **error)
{
	const gchar *const known[] = {"uri",  "read-write", "plain", "insecure-plain-tcp",
				      "cert", "key",	    "ca",    NULL};
	g_autoptr(MigdMigrateOptions) options = migd_migrate_options_new();
	gchar **files[] = {&options->transport.cert_file, &options->transport.key_file,
			   &options->transport.ca_file};
	const gchar *const file_keys[] = {"cert", "key", "ca"};

	if (!migd_plugin_config_check_keys(config, "libvirt", known, error)) {
		g_prefix_error(error, "[libvirt]: ");
		return NULL;
	}
	if (!migd_plugin_config_get_boolean(config, "libvirt", "read-write", read_write, error) ||
	    !migd_plugin_config_get_boolean(config, "libvirt", "plain", &options->transport.plain,
					    error) ||
	    !migd_plugin_config_get_boolean(config, "libvirt", "insecure-plain-tcp",
					    &options->transport.insecure_plain_tcp, error)) {
		g_prefix_error(error, "[libvirt] ");
		return NULL;
	}
	for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
		*files[i] = migd_plugin_config_get_string(config, "libvirt", file_keys[i], NULL);
		/* the same rule as Migrate's options, told at start rather than at migration */
		if (*files[i] != NULL && (*files[i])[0] == '\0') {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[libvirt] option '%s' must not be empty", file_keys[i]);
			return NULL;
		}
	}
	return g_steal_pointer(&options);
}

MigdLibvirtBridge *
migd_libvirt_bridge_new(GKeyFile *config, MigdManager *manager, GError **error)
{
	g_autoptr(MigdLibvirtBridge) self = NULL;
	g_autoptr(GPtrArray) maps = NULL;
	g_autofree gchar *uri = NULL;
	const MigdLibvirtWatcherCallbacks callbacks = {
	    .started = migd_libvirt_bridge_started_cb,
	    .finished = migd_libvirt_bridge_finished_cb,
	    .failed = migd_libvirt_bridge_failed_cb,
	    .connection_changed = migd_libvirt_bridge_connection_cb,
	};

	if (!g_key_file_has_group(config, "libvirt"))
		return NULL;
	uri = migd_plugin_config_get_string(config, "libvirt", "uri", NULL);
	if (uri == NULL || uri[0] == '\0') {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "[libvirt]: uri= is required (e.g. qemu:///system)");
		return NULL;
	}
	self = g_new0(MigdLibvirtBridge, 1);
	self->manager = g_object_ref(manager);
	self->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	self->options = migd_libvirt_bridge_options(config, &self->read_write, error);
	if (self->options == NULL)
		return NULL;
	maps = migd_libvirt_domain_maps_from_key_file(config, error);
	if (maps == NULL)
		return NULL;
	if (!migd_libvirt_loop_is_registered() && !migd_libvirt_loop_register(error))
		return NULL;
	self->watcher = migd_libvirt_watcher_new(uri, maps,
						 self->read_write ? MIGD_LIBVIRT_WATCHER_READ_WRITE
								  : MIGD_LIBVIRT_WATCHER_NONE,
						 &callbacks, self);
	if (!migd_libvirt_watcher_start(self->watcher, error))
		return NULL;
	g_message("following libvirt at %s for %u domain(s)", uri, maps->len);
	return g_steal_pointer(&self);
}

void
migd_libvirt_bridge_free(MigdLibvirtBridge *self)
{
	if (self == NULL)
		return;
	if (self->watcher != NULL) {
		migd_libvirt_watcher_stop(self->watcher);
		g_object_unref(self->watcher);
	}
	g_clear_pointer(&self->options, migd_migrate_options_free);
	g_clear_pointer(&self->jobs, g_hash_table_unref);
	g_clear_object(&self->manager);
	g_free(self);
}
