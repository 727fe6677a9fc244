/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migd: owns org.vfiomigd.Migd1, exports the Manager over its devices
 * (kernel VFIO devices and/or simulated ones) and runs the migrations it is
 * asked for on the GLib main loop.
 */
#include "config.h"

#include <glib-unix.h>
#include <errno.h>
#include <locale.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "migd-config.h"
#include "migd-connection.h"
#include "migd-dbus-manager-service.h"
#include "migd-dirty-ranges.h"
#include "migd-error.h"
#include "migd-kernel-device.h"
#include "migd-libvirt-bridge.h"
#include "migd-log.h"
#include "migd-manager.h"
#include "migd-plugin-manager.h"
#include "migd-sim-device.h"
#include "migd-tune.h"
#include "migd-wire-limits.h"

/* on SIGTERM, how long running jobs get to roll their devices back */
#define MIGD_SHUTDOWN_GRACE_S 10

typedef struct {
	GMainLoop *loop;
	MigdManager *manager;
	gchar *bus_name;
	gint exit_status;
	gint64 shutdown_deadline; /* monotonic µs, 0 while running */
	guint shutdown_id;
	gchar *status; /* the last STATUS= sent */
	MigdPluginManager *plugins;
	gboolean allow_sim;		  /* AddDevice may create simulated devices */
	GCancellable *digest_cancellable; /* cancelled at shutdown */
	guint digests_pending;		  /* worker threads hashing a simulated state */
	GPtrArray *configured;		  /* MigdDaemonConfigured not opened yet */
} MigdDaemon;

/* simulated states up to this size are hashed inline (milliseconds); larger ones on a worker */
#define MIGD_DAEMON_INLINE_DIGEST_MAX (64 * 1024 * 1024)
#define MIGD_DAEMON_DIGEST_KEY	      "migd-daemon-digest"

/* the last digest of a simulated device, kept on the device object */
typedef struct {
	guint64 digest;
	guint64 generation; /* the device's state generation it belongs to */
	gboolean valid;
	gboolean computing;
} MigdDaemonDigest;

/*
 * AddDevice / AttachDevice: a kernel device by address, UUID or sysfs path, an
 * adopted fd, or (on a daemon that serves them) a simulated device; refused
 * unless it can migrate, then handed its plugin.
 */
static MigdDevice *
migd_daemon_open_device(const gchar *name, const gchar *spec, gint fd, const gchar *address,
			gpointer user_data, GError **error)
{
	MigdDaemon *self = user_data;
	g_autoptr(MigdDevice) device = NULL;
	g_autofree gchar *base = NULL;

	if (spec != NULL) {
		if (!self->allow_sim || fd >= 0) {
			g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
					    "this daemon does not serve simulated devices");
			return NULL;
		}
		device = MIGD_DEVICE(migd_sim_device_new_from_string(spec, error));
		if (device == NULL)
			return NULL;
		migd_device_set_name(device, name);
	} else if (fd >= 0) {
		gint own = dup(fd);
		if (own < 0) {
			migd_set_errno_error(error, errno, "dup");
			return NULL;
		}
		device = MIGD_DEVICE(migd_kernel_device_adopt_fd(own, name, error));
		if (device == NULL) {
			/* what the caller passed, once */
			g_prefix_error(error, "%s: the fd passed: ", name);
			return NULL;
		}
		/* its identity (driver, ids) and so its plugin and what a destination accepts */
		if (!migd_kernel_device_identify(MIGD_KERNEL_DEVICE(device), address, NULL, NULL,
						 error)) {
			g_prefix_error(error, "%s: ", name);
			return NULL;
		}
	} else if (g_str_has_prefix(name, "/dev/")) {
		/* a device cdev, opened through iommufd; named after its device */
		device = MIGD_DEVICE(migd_kernel_device_open(name, error));
		if (device == NULL)
			return NULL;
	} else {
		/* "/sys/bus/pci/devices/0000:65:00.2" names the device by its last element */
		base = g_str_has_prefix(name, "/sys/") ? g_path_get_basename(name) : g_strdup(name);
		device = MIGD_DEVICE(migd_kernel_device_open_group(base, error));
		if (device == NULL)
			return NULL;
		migd_device_set_name(device, base);
	}
	if (!migd_device_probe(device, error)) {
		g_prefix_error(error, "%s: ", migd_device_get_name(device));
		return NULL;
	}
	if ((migd_device_get_mig_flags(device) & MIGD_MIG_FLAG_STOP_COPY) == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s does not support VFIO migration", migd_device_get_name(device));
		return NULL;
	}
	migd_plugin_manager_assign(self->plugins, device);
	return g_steal_pointer(&device);
}

/* systemd's STATUS= line, sent only when it changed */
static gboolean
migd_daemon_status_cb(gpointer user_data)
{
	MigdDaemon *self = user_data;
	g_autofree gchar *status = migd_manager_describe(self->manager);

	if (g_strcmp0(status, self->status) != 0) {
		g_autofree gchar *line = g_strdup_printf("STATUS=%s", status);
		sd_notify(0, line);
		g_free(self->status);
		self->status = g_steal_pointer(&status);
	}
	return G_SOURCE_CONTINUE;
}

/* the main loop is alive: systemd restarts the service if these stop */
static gboolean
migd_daemon_watchdog_cb(gpointer user_data)
{
	sd_notify(0, "WATCHDOG=1");
	return G_SOURCE_CONTINUE;
}

static void
migd_daemon_digest_thread(GTask *task, gpointer source, gpointer task_data,
			  GCancellable *cancellable)
{
	g_autofree MigdDaemonDigest *result = g_new0(MigdDaemonDigest, 1);
	GError *error = NULL;

	if (!migd_sim_device_compute_state_digest(MIGD_SIM_DEVICE(task_data), cancellable,
						  &result->digest, &result->generation, &error)) {
		g_task_return_error(task, error);
		return;
	}
	result->valid = TRUE;
	g_task_return_pointer(task, g_steal_pointer(&result), g_free);
}

static void
migd_daemon_digest_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	MigdDaemon *self = user_data;
	GObject *device = g_task_get_task_data(G_TASK(res));
	MigdDaemonDigest *cache = g_object_get_data(device, MIGD_DAEMON_DIGEST_KEY);
	g_autoptr(GError) error = NULL;
	g_autofree MigdDaemonDigest *result = g_task_propagate_pointer(G_TASK(res), &error);

	self->digests_pending--;
	cache->computing = FALSE;
	if (result == NULL) {
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_warning("%s: digest: %s", migd_device_get_name(MIGD_DEVICE(device)),
				  error->message);
		return;
	}
	*cache = *result;
}

/*
 * sim-digest: a large simulated state takes seconds to minutes to hash, so it is hashed on
 * a worker thread and ListDevices says sim-digest-pending until the digest of the current
 * state is known; the main loop (D-Bus, signals) never waits for it.
 */
static void
migd_daemon_sim_digest(MigdDaemon *self, MigdSimDevice *sim, GVariantDict *dict)
{
	MigdDaemonDigest *cache = g_object_get_data(G_OBJECT(sim), MIGD_DAEMON_DIGEST_KEY);
	guint64 generation = migd_sim_device_get_state_generation(sim);
	g_autoptr(GTask) task = NULL;

	if (migd_sim_device_get_state_size(sim) <= MIGD_DAEMON_INLINE_DIGEST_MAX) {
		g_variant_dict_insert(dict, "sim-digest", "t",
				      migd_sim_device_get_state_digest(sim));
		return;
	}
	if (cache == NULL) {
		cache = g_new0(MigdDaemonDigest, 1);
		g_object_set_data_full(G_OBJECT(sim), MIGD_DAEMON_DIGEST_KEY, cache, g_free);
	}
	if (cache->valid && cache->generation == generation) {
		g_variant_dict_insert(dict, "sim-digest", "t", cache->digest);
		return;
	}
	g_variant_dict_insert(dict, "sim-digest-pending", "b", TRUE);
	if (cache->computing || g_cancellable_is_cancelled(self->digest_cancellable))
		return;
	cache->computing = TRUE;
	self->digests_pending++;
	task = g_task_new(NULL, self->digest_cancellable, migd_daemon_digest_done_cb, self);
	g_task_set_source_tag(task, migd_daemon_sim_digest);
	g_task_set_task_data(task, g_object_ref(sim), g_object_unref);
	g_task_run_in_thread(task, migd_daemon_digest_thread);
}

static void
migd_daemon_device_info(MigdDevice *device, gboolean busy, GVariantDict *dict, gpointer user_data)
{
	MigdDaemon *self = user_data;
	MigdPlugin *plugin = migd_device_get_plugin(device);
	MigdSimDevice *sim;

	if (plugin != NULL) {
		MigdPluginPolicy policy;
		migd_plugin_get_policy(plugin, device, &policy);
		g_variant_dict_insert(dict, "plugin", "s", migd_plugin_get_name(plugin));
		g_variant_dict_insert(dict, "dirty-tracker", "s",
				      migd_dirty_tracker_kind_to_string(policy.tracker));
	}
	if (!MIGD_IS_SIM_DEVICE(device)) {
		g_variant_dict_insert(dict, "backend", "s", "kernel");
		return;
	}
	sim = MIGD_SIM_DEVICE(device);
	g_variant_dict_insert(dict, "backend", "s", "sim");
	g_variant_dict_insert(dict, "profile", "s", migd_sim_device_get_config(sim)->profile->name);
	g_variant_dict_insert(dict, "state-size", "t", migd_sim_device_get_state_size(sim));
	/* while a job moves the state, a digest would describe nothing in particular */
	if (!busy)
		migd_daemon_sim_digest(self, sim, dict);
}

static GPtrArray *
migd_daemon_open_devices(gchar **sim_specs, gchar **kernel_names, GError **error)
{
	g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(g_object_unref);

	for (guint i = 0; sim_specs != NULL && sim_specs[i] != NULL; i++) {
		g_autoptr(MigdSimDevice) sim = NULL;
		g_autofree gchar *name = g_strdup_printf("sim%u", i);

		sim = migd_sim_device_new_from_string(sim_specs[i], error);
		if (sim == NULL) {
			g_prefix_error(error, "--sim-device %s: ", sim_specs[i]);
			return NULL;
		}
		migd_device_set_name(MIGD_DEVICE(sim), name);
		g_ptr_array_add(devices, g_steal_pointer(&sim));
	}
	for (guint i = 0; kernel_names != NULL && kernel_names[i] != NULL; i++) {
		g_autoptr(MigdKernelDevice) device = NULL;

		for (guint j = 0; j < devices->len; j++) {
			MigdDevice *other = g_ptr_array_index(devices, j);
			if (g_strcmp0(migd_device_get_name(other), kernel_names[i]) == 0) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "--device %s: named twice", kernel_names[i]);
				return NULL;
			}
		}
		/* a cdev path opens the cdev and names the device after it */
		device = migd_kernel_device_open(kernel_names[i], error);
		if (device == NULL) {
			g_prefix_error(error, "--device %s: ", kernel_names[i]);
			return NULL;
		}
		if (!g_str_has_prefix(kernel_names[i], "/dev/"))
			migd_device_set_name(MIGD_DEVICE(device), kernel_names[i]);
		g_ptr_array_add(devices, g_steal_pointer(&device));
	}
	/* a device that cannot migrate is refused now, not in the middle of a job */
	for (guint i = 0; i < devices->len; i++) {
		MigdDevice *device = g_ptr_array_index(devices, i);
		g_autofree gchar *flags = NULL;

		if (!migd_device_probe(device, error)) {
			g_prefix_error(error, "%s: ", migd_device_get_name(device));
			return NULL;
		}
		flags = migd_mig_flags_to_string(migd_device_get_mig_flags(device));
		g_message("device %s: migration flags %s", migd_device_get_name(device), flags);
	}
	return g_steal_pointer(&devices);
}

static gboolean
migd_daemon_shutdown_poll_cb(gpointer user_data)
{
	MigdDaemon *self = user_data;
	guint active = migd_manager_get_n_active_jobs(self->manager);

	if (active == 0 || g_get_monotonic_time() >= self->shutdown_deadline) {
		if (active > 0)
			g_warning("%u job(s) still running at shutdown", active);
		self->shutdown_id = 0;
		g_main_loop_quit(self->loop);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static gboolean
migd_daemon_signal_cb(gpointer user_data)
{
	MigdDaemon *self = user_data;
	guint cancelled;

	if (self->shutdown_deadline != 0) {
		/* a second signal: stop waiting for the jobs */
		g_main_loop_quit(self->loop);
		return G_SOURCE_CONTINUE;
	}
	sd_notify(0, "STOPPING=1");
	/* a digest being computed is of no use any more */
	g_cancellable_cancel(self->digest_cancellable);
	/* running jobs roll their devices back before the daemon goes away */
	cancelled = migd_manager_cancel_all(self->manager);
	g_message("shutting down%s", cancelled > 0 ? ", cancelling running jobs" : "");
	self->shutdown_deadline = g_get_monotonic_time() + MIGD_SHUTDOWN_GRACE_S * G_USEC_PER_SEC;
	self->shutdown_id = g_timeout_add(50, migd_daemon_shutdown_poll_cb, self);
	return G_SOURCE_CONTINUE;
}

static void
migd_daemon_name_acquired_cb(GDBusConnection *connection, const gchar *name, gpointer user_data)
{
	g_autofree gchar *status = g_strdup_printf("STATUS=Serving %s", name);

	g_message("acquired bus name %s", name);
	sd_notify(0, "READY=1");
	sd_notify(0, status);
}

static void
migd_daemon_name_lost_cb(GDBusConnection *connection, const gchar *name, gpointer user_data)
{
	MigdDaemon *self = user_data;

	if (connection == NULL || g_dbus_connection_is_closed(connection))
		g_warning("lost the connection to the bus");
	else
		g_warning("cannot own or lost the bus name %s", name);
	self->exit_status = 1;
	g_main_loop_quit(self->loop);
}

/*
 * [device NAME] groups: settings of one device. iova-ranges: the guest memory
 * the device may DMA into, which dirty tracking follows.
 */
static gboolean
migd_daemon_configure_devices(GKeyFile *config, const gchar *file, GPtrArray *devices,
			      GError **error)
{
	const gchar *const device_keys[] = {"iova-ranges", "address", "sim-spec", NULL};
	g_auto(GStrv) groups = g_key_file_get_groups(config, NULL);

	for (guint i = 0; groups[i] != NULL; i++) {
		const gchar *name;
		MigdDevice *device = NULL;
		g_auto(GStrv) keys = NULL;

		if (!g_str_has_prefix(groups[i], "device "))
			continue;
		name = groups[i] + strlen("device ");
		for (guint j = 0; j < devices->len; j++) {
			if (g_strcmp0(migd_device_get_name(g_ptr_array_index(devices, j)), name) ==
			    0)
				device = g_ptr_array_index(devices, j);
		}
		/* address= / sim-spec=: the daemon opens it later (migd_daemon_open_configured) */
		if (device == NULL && (g_key_file_has_key(config, groups[i], "address", NULL) ||
				       g_key_file_has_key(config, groups[i], "sim-spec", NULL)))
			continue;
		if (device == NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "no such device (give it with --device or --sim-device, or "
				    "address=)");
			migd_daemon_config_prefix_error(error, file, groups[i], NULL);
			return FALSE;
		}
		if (!migd_plugin_config_check_keys(config, groups[i], device_keys, error)) {
			g_prefix_error(error, "[%s]: ", groups[i]);
			return FALSE;
		}
		keys = g_key_file_get_keys(config, groups[i], NULL, NULL);
		for (guint k = 0; keys[k] != NULL; k++) {
			g_autofree gchar *value = NULL;
			g_autoptr(GArray) ranges = NULL;

			if (!g_str_equal(keys[k], "iova-ranges"))
				continue;

			value = migd_plugin_config_get_string(config, groups[i], keys[k], error);
			if (value == NULL)
				return FALSE;
			ranges = migd_dirty_ranges_parse(value, error);
			if (ranges == NULL) {
				g_prefix_error(error, "[%s] iova-ranges: ", groups[i]);
				return FALSE;
			}
			migd_device_set_iova_ranges(device, (const MigdIovaRange *)ranges->data,
						    ranges->len);
			g_message("%s: %u IOVA ranges, %" G_GUINT64_FORMAT
				  " MiB, for dirty tracking",
				  name, ranges->len,
				  migd_dirty_ranges_total((const MigdIovaRange *)ranges->data,
							  ranges->len) /
				      1048576);
		}
	}
	return TRUE;
}

static gint
migd_daemon_compare_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const gchar *const *)a, *(const gchar *const *)b);
}

/*
 * DIR/devices.d/NAME.conf files, in name order, after the configuration file in DIR (what
 * AddDevice's "persist" writes): each checked as the file is, its groups merged into
 * @config. A [device NAME] given twice is an error. @group_files: group -> the file it is in.
 */
static gboolean
migd_daemon_load_drop_ins(GKeyFile *config, const gchar *config_file, GHashTable *group_files,
			  GError **error)
{
	g_autofree gchar *config_dir = g_path_get_dirname(config_file);
	g_autofree gchar *dir_path = g_build_filename(config_dir, "devices.d", NULL);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GError) error_local = NULL;
	const gchar *entry;

	dir = g_dir_open(dir_path, 0, &error_local);
	if (dir == NULL) {
		if (g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "%s", error_local->message);
		return FALSE;
	}
	while ((entry = g_dir_read_name(dir)) != NULL) {
		if (g_str_has_suffix(entry, ".conf") && entry[0] != '.')
			g_ptr_array_add(names, g_strdup(entry));
	}
	g_ptr_array_sort(names, (GCompareFunc)migd_daemon_compare_names);
	for (guint i = 0; i < names->len; i++) {
		g_autofree gchar *path =
		    g_build_filename(dir_path, g_ptr_array_index(names, i), NULL);
		g_autoptr(GKeyFile) drop_in = migd_daemon_config_load(path, error);
		g_auto(GStrv) groups = NULL;

		if (drop_in == NULL || !migd_daemon_config_check_file(drop_in, path, error))
			return FALSE;
		groups = g_key_file_get_groups(drop_in, NULL);
		for (guint g = 0; groups[g] != NULL; g++) {
			g_auto(GStrv) keys = g_key_file_get_keys(drop_in, groups[g], NULL, NULL);
			const gchar *first = g_hash_table_lookup(group_files, groups[g]);

			/* the first one wins: a persisted device also configured by hand must
			 * not stop the daemon */
			if (g_str_has_prefix(groups[g], "device ") &&
			    (first != NULL || g_key_file_has_group(config, groups[g]))) {
				g_autoptr(GError) twice =
				    g_error_new(MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
						"already in %s: ignored here",
						first != NULL ? first : config_file);
				migd_daemon_config_prefix_error(&twice, path, groups[g], NULL);
				g_warning("%s", twice->message);
				continue;
			}
			g_hash_table_insert(group_files, g_strdup(groups[g]), g_strdup(path));
			for (guint k = 0; keys[k] != NULL; k++) {
				g_autofree gchar *raw =
				    g_key_file_get_value(drop_in, groups[g], keys[k], NULL);
				g_key_file_set_value(config, groups[g], keys[k], raw);
			}
		}
	}
	return TRUE;
}

/* a [device NAME] group with address= or sim-spec=: opened by the daemon, retried until it is */
typedef struct {
	MigdDaemon *daemon;
	gchar *group;
	gchar *file;	 /* where the group is, for messages */
	gchar *address;	 /* or */
	gchar *sim_spec; /* one of them */
	GArray *ranges;	 /* MigdIovaRange, or NULL */
	guint delay_s;	 /* the next retry's */
	guint timer_id;
	gchar *last_error; /* warned once per distinct error */
} MigdDaemonConfigured;

#define MIGD_DAEMON_RETRY_MIN_S 1
#define MIGD_DAEMON_RETRY_MAX_S 60

static void
migd_daemon_configured_free(gpointer data)
{
	MigdDaemonConfigured *c = data;

	g_clear_handle_id(&c->timer_id, g_source_remove);
	g_free(c->group);
	g_free(c->file);
	g_free(c->address);
	g_free(c->sim_spec);
	g_clear_pointer(&c->ranges, g_array_unref);
	g_free(c->last_error);
	g_free(c);
}

static gboolean
migd_daemon_configured_try(MigdDaemonConfigured *c, GError **error)
{
	MigdDaemon *self = c->daemon;
	const gchar *name = c->group + strlen("device ");
	g_autoptr(MigdDevice) device = NULL;

	if (c->sim_spec != NULL) {
		device =
		    migd_manager_open_device(self->manager, name, c->sim_spec, -1, NULL, error);
	} else {
		device = migd_daemon_open_device(c->address, NULL, -1, NULL, self, error);
		/* named by its group, not by its address */
		if (device != NULL)
			migd_device_set_name(device, name);
	}
	return device != NULL && migd_manager_add_device(self->manager, device, c->ranges, error);
}

static gboolean migd_daemon_configured_retry_cb(gpointer user_data);

/* opens @c now; on failure warns (once per distinct error) and retries, 1 s doubling to 60 s */
static void
migd_daemon_configured_open(MigdDaemonConfigured *c)
{
	g_autoptr(GError) error = NULL;

	c->timer_id = 0;
	/* added meanwhile (AddDevice): nothing left to retry */
	if (migd_manager_find_device(c->daemon->manager, c->group + strlen("device ")) != NULL) {
		g_message("[%s]: served already", c->group);
		g_ptr_array_remove(c->daemon->configured, c);
		return;
	}
	if (migd_daemon_configured_try(c, &error)) {
		g_message("[%s]: %s opened (%s)", c->group, c->group + strlen("device "),
			  c->address != NULL ? c->address : "simulated");
		g_ptr_array_remove(c->daemon->configured, c);
		return;
	}
	/*
	 * A simulated device that does not open now never will (a bad spec, a daemon that does
	 * not serve them): no retry. Only an address= device can appear later: absent, busy,
	 * or without an IOMMU group yet (an mdev between its creation and its driver's probe,
	 * a PCI function before vfio-pci binds it).
	 */
	if (c->sim_spec != NULL) {
		migd_daemon_config_prefix_error(&error, c->file, c->group, "sim-spec");
		g_warning("%s; not opened", error->message);
		g_ptr_array_remove(c->daemon->configured, c);
		return;
	}
	if (g_strcmp0(c->last_error, error->message) != 0) {
		g_free(c->last_error);
		c->last_error = g_strdup(error->message);
		migd_daemon_config_prefix_error(&error, c->file, c->group, "address");
		g_warning("%s (retrying until it opens, every %u s at most)", error->message,
			  MIGD_DAEMON_RETRY_MAX_S);
	} else {
		g_debug("[%s]: still cannot open: %s; next try in %u s", c->group, error->message,
			c->delay_s);
	}
	c->timer_id = g_timeout_add_seconds(c->delay_s, migd_daemon_configured_retry_cb, c);
	c->delay_s = MIN(c->delay_s * 2, MIGD_DAEMON_RETRY_MAX_S);
}

static gboolean
migd_daemon_configured_retry_cb(gpointer user_data)
{
	MigdDaemonConfigured *c = user_data;

	c->timer_id = 0;
	migd_daemon_configured_open(c);
	return G_SOURCE_REMOVE;
}

/* every [device NAME] with address= or sim-spec= that --device/--sim-device did not give */
static void
migd_daemon_open_configured(MigdDaemon *self, GKeyFile *config, const gchar *config_file,
			    GHashTable *group_files)
{
	g_auto(GStrv) groups = g_key_file_get_groups(config, NULL);
	g_autoptr(GPtrArray) todo = g_ptr_array_new();

	for (guint i = 0; groups[i] != NULL; i++) {
		MigdDaemonConfigured *c;
		const gchar *file;

		if (!g_str_has_prefix(groups[i], "device ") ||
		    (!g_key_file_has_key(config, groups[i], "address", NULL) &&
		     !g_key_file_has_key(config, groups[i], "sim-spec", NULL)) ||
		    migd_manager_find_device(self->manager, groups[i] + strlen("device ")) != NULL)
			continue;
		file = g_hash_table_lookup(group_files, groups[i]);
		c = g_new0(MigdDaemonConfigured, 1);
		c->daemon = self;
		c->group = g_strdup(groups[i]);
		c->file = g_strdup(file != NULL ? file : config_file);
		/* both checked with the file: strings, not empty */
		c->address = migd_plugin_config_get_string(config, groups[i], "address", NULL);
		if (c->address == NULL)
			c->sim_spec =
			    migd_plugin_config_get_string(config, groups[i], "sim-spec", NULL);
		if (g_key_file_has_key(config, groups[i], "iova-ranges", NULL)) {
			g_autofree gchar *value =
			    migd_plugin_config_get_string(config, groups[i], "iova-ranges", NULL);
			c->ranges = value != NULL ? migd_dirty_ranges_parse(value, NULL) : NULL;
		}
		c->delay_s = MIGD_DAEMON_RETRY_MIN_S;
		g_ptr_array_add(self->configured, c);
		g_ptr_array_add(todo, c);
	}
	for (guint i = 0; i < todo->len; i++)
		migd_daemon_configured_open(g_ptr_array_index(todo, i));
}

/* [daemon]: the daemon's own settings (keys and values checked by migd_daemon_config_check) */
static gboolean
migd_daemon_configure(GKeyFile *config, gboolean *low_power_idle, guint64 *max_inflight,
		      GError **error)
{
	if (!migd_plugin_config_get_boolean(config, "daemon", "low-power-idle", low_power_idle,
					    error)) {
		g_prefix_error(error, "[daemon] ");
		return FALSE;
	}
	if (!migd_plugin_config_get_size(config, "daemon", "max-inflight", MIGD_STREAM_BUDGET_MIN,
					 MIGD_STREAM_BUDGET_MAX, max_inflight, error)) {
		g_prefix_error(error, "[daemon] ");
		return FALSE;
	}
	return TRUE;
}

/* [listen] KEY: a number of milliseconds or connections, 1 .. G_MAXUINT32 */
static gboolean
migd_daemon_config_get_uint(GKeyFile *config, const gchar *key, guint *value, GError **error)
{
	guint64 v = *value;

	/* the plugins' reader: one message for every count, bad escapes refused */
	if (!migd_plugin_config_get_uint(config, "listen", key, 1, G_MAXUINT32, &v, error))
		return FALSE;
	*value = (guint)v;
	return TRUE;
}

/* [listen] deadlines, caps and the uids a plain UNIX socket lets in (docs/ABI/testing/config-file)
 */
static gboolean
migd_daemon_configure_listen_limits(GKeyFile *config, MigdTransportConfig *transport,
				    GError **error)
{
	g_auto(GStrv) uids = NULL;
	guint64 budget = 0;

	if (!migd_plugin_config_get_boolean(config, "listen", "insecure-plain-tcp",
					    &transport->insecure_plain_tcp, error) ||
	    !migd_daemon_config_get_uint(config, "hello-timeout-ms", &transport->hello_timeout_ms,
					 error) ||
	    !migd_daemon_config_get_uint(config, "frame-timeout-ms", &transport->frame_timeout_ms,
					 error) ||
	    !migd_daemon_config_get_uint(config, "max-pending-peers", &transport->max_pending_peers,
					 error) ||
	    !migd_plugin_config_get_size(config, "listen", "max-partial-frame-bytes",
					 MIGD_WIRE_MAX_FRAME_SIZE, G_MAXSIZE, &budget, error))
		return FALSE;
	/* daemon-wide: every connection's partial frames count against it */
	if (budget > 0)
		migd_connection_set_partial_frame_budget((gsize)budget);
	if (g_key_file_has_key(config, "listen", "allowed-uids", NULL)) {
		uids = g_key_file_get_string_list(config, "listen", "allowed-uids", NULL, error);
		if (uids == NULL)
			return FALSE;
	}
	for (guint i = 0; uids != NULL && uids[i] != NULL; i++) {
		guint64 uid = 0;
		if (!g_ascii_string_to_unsigned(g_strstrip(uids[i]), 10, 0, G_MAXUINT32 - 1, &uid,
						NULL)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "allowed-uids: '%s' is not a uid", uids[i]);
			return FALSE;
		}
		if (!migd_transport_config_add_allowed_uid(transport, (guint32)uid, error)) {
			g_prefix_error(error, "allowed-uids: ");
			return FALSE;
		}
	}
	return TRUE;
}

/*
 * [listen]: how a listening socket systemd hands over (vfio-migd.socket) is
 * served: TLS files, or plain (UNIX sockets, peers checked by uid; TCP only
 * with insecure-plain-tcp, for a link already secured below us).
 */
static gboolean
migd_daemon_configure_listen(GKeyFile *config, MigdTransportConfig *transport, MigdStartMode *start,
			     GError **error)
{
	gchar **files[] = {&transport->cert_file, &transport->key_file, &transport->ca_file};
	const gchar *file_keys[] = {"cert", "key", "ca"};

	/* keys and values were checked with the file (migd_daemon_config_check_file) */
	if (!g_key_file_has_group(config, "listen"))
		return TRUE;
	for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
		if (g_key_file_has_key(config, "listen", file_keys[i], NULL)) {
			*files[i] =
			    migd_plugin_config_get_string(config, "listen", file_keys[i], error);
			if (*files[i] == NULL)
				return FALSE;
		}
	}
	if (!migd_plugin_config_get_boolean(config, "listen", "plain", &transport->plain, error) ||
	    !migd_daemon_configure_listen_limits(config, transport, error)) {
		g_prefix_error(error, "[listen] ");
		return FALSE;
	}
	if (g_key_file_has_key(config, "listen", "start", NULL)) {
		g_autofree gchar *value =
		    migd_plugin_config_get_string(config, "listen", "start", error);
		if (value == NULL || !migd_start_mode_from_string(value, start, error)) {
			g_prefix_error(error, "[listen] ");
			return FALSE;
		}
	}
	return TRUE;
}

/* [listen] sets a way to serve a socket: TLS files, or plain */
static gboolean
migd_daemon_listen_configured(const MigdTransportConfig *transport)
{
	return transport->plain || transport->cert_file != NULL || transport->key_file != NULL ||
	       transport->ca_file != NULL;
}

/*
 * [listen] TLS files, checked at start (readable, PEM certificate, key and CA, the key
 * matching the certificate: the transport's own handshake self-test) so a bad setup is said
 * now, with the file's line, not when the first peer connects. Nothing set: nothing to check.
 */
static gboolean
migd_daemon_check_listen_tls(const MigdTransportConfig *transport, const gchar *file,
			     GError **error)
{
	const gchar *const internal[] = {"cert_file", "key_file", "ca_file"};
	const gchar *const keys[] = {"cert", "key", "ca"};
	const gchar *key = NULL;
	const gchar *const *values[] = {(const gchar *const *)&transport->cert_file,
					(const gchar *const *)&transport->key_file,
					(const gchar *const *)&transport->ca_file};

	if (transport->plain || !migd_daemon_listen_configured(transport))
		return TRUE;
	for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
		if (*values[i] != NULL)
			continue;
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "not set: TLS needs cert=, key= and ca= (PEM files); or "
				    "plain=true for a unix: socket");
		migd_daemon_config_prefix_error(error, file, "listen", keys[i]);
		return FALSE;
	}
	if (migd_transport_config_check(transport, NULL, TRUE, error))
		return TRUE;
	/* the transport names its fields, the one at fault first; the operator knows the
	 * config's keys */
	for (guint i = 0, first = G_MAXUINT; i < G_N_ELEMENTS(keys); i++) {
		const gchar *at = strstr((*error)->message, internal[i]);
		if (at != NULL && (guint)(at - (*error)->message) < first) {
			first = at - (*error)->message;
			key = keys[i];
		}
	}
	for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
		g_auto(GStrv) parts = g_strsplit((*error)->message, internal[i], -1);
		g_free((*error)->message);
		(*error)->message = g_strjoinv(keys[i], parts);
	}
	migd_daemon_config_prefix_error(error, file, "listen", key);
	return FALSE;
}

/*
 * A listening socket from systemd (vfio-migd.socket): migrations are received on it when
 * [listen] makes it usable. Otherwise one error says what to configure, the socket is
 * closed (systemd keeps its own copy) and the daemon goes on serving D-Bus: a connection to
 * the socket unit must never be a way to stop the daemon. @tls_error: why the [listen] TLS
 * files were refused at start, NULL if they were not.
 */
static void
migd_daemon_socket_activation(MigdManager *manager, const MigdTransportConfig *transport,
			      const gchar *file, const GError *tls_error)
{
	g_autoptr(GError) error = NULL;
	gint n = sd_listen_fds(TRUE);

	if (n < 0) {
		g_warning("socket activation: %s", g_strerror(-n));
		return;
	}
	if (n == 0)
		return;
	if (n > 1)
		g_warning("systemd passed %d sockets; vfio-migd.socket must listen on one: none "
			  "is served (D-Bus is)",
			  n);
	else if (tls_error != NULL)
		g_warning(
		    "the socket systemd passed (vfio-migd.socket) is not served, D-Bus is: %s",
		    tls_error->message);
	else if (!migd_daemon_listen_configured(transport))
		g_warning("the socket systemd passed (vfio-migd.socket) is not served, D-Bus is: "
			  "%s has no [listen] setup: set cert=, key= and ca= (PEM files) in "
			  "[listen], or plain=true for a unix: socket (see vfio-migd.conf(5))",
			  file);
	else if (!migd_manager_listen_fd(manager, SD_LISTEN_FDS_START, transport, &error))
		g_warning("the socket systemd passed (vfio-migd.socket) is not served, D-Bus is: "
			  "%s",
			  error->message);
	else
		return;
	for (gint i = 0; i < n; i++)
		close(SD_LISTEN_FDS_START + i);
}

static MigdPluginManager *
migd_daemon_load_plugins(const gchar *plugin_dir, GKeyFile *config, GError **error)
{
	g_autoptr(MigdPluginManager) plugins = migd_plugin_manager_new();
	const gchar *dir = plugin_dir != NULL ? plugin_dir : migd_plugin_manager_default_dir();
	const gchar *env = g_getenv(MIGD_PLUGIN_DIR_ENV);
	/* what the operator named must exist; the compiled-in directory may be absent */
	gboolean required = plugin_dir != NULL || (env != NULL && env[0] != '\0');

	if (!migd_plugin_manager_load_dirs(plugins, dir, required, error) ||
	    !migd_plugin_manager_configure(plugins, config, error)) {
		g_prefix_error(error, "plugins: ");
		return NULL;
	}
	return g_steal_pointer(&plugins);
}

int
main(int argc, char **argv)
{
	gboolean session = FALSE;
	gboolean verbose = FALSE;
	g_auto(GStrv) sim_specs = NULL;
	g_auto(GStrv) kernel_names = NULL;
	g_autofree gchar *bus_name = NULL;
	g_autofree gchar *config_path = NULL;
	g_autofree gchar *plugin_dir = NULL;
	g_autofree gchar *state_dir = NULL;
	g_autoptr(MigdJournal) journal = NULL;
	g_autoptr(MigdLowPower) low_power = NULL;
	g_autoptr(MigdLibvirtBridge) libvirt = NULL;
	g_autoptr(MigdTransportConfig) listen_transport = g_new0(MigdTransportConfig, 1);
	gboolean low_power_idle = FALSE;
	MigdStartMode start_mode = MIGD_START_AUTO;
	guint64 max_inflight = MIGD_STREAM_BUDGET_DEFAULT;
	g_autoptr(GKeyFile) config = NULL;
	g_autoptr(MigdPluginManager) plugins = NULL;
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) tls_error = NULL;
	const gchar *config_file = NULL;
	g_autoptr(GHashTable) group_files =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	gboolean version = FALSE;
	g_autoptr(GPtrArray) devices = NULL;
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	g_autoptr(MigdManager) manager = NULL;
	g_autoptr(MigdDbusManagerService) service = NULL;
	g_autoptr(GCancellable) digest_cancellable = g_cancellable_new();
	MigdDaemon daemon = {0};
	guint owner_id;
	guint status_id = 0;
	guint watchdog_id = 0;
	guint64 watchdog_usec = 0;
	guint sigterm_id;
	guint sigint_id;
	const GOptionEntry entries[] = {
	    {"session", 0, 0, G_OPTION_ARG_NONE, &session,
	     "Use the session bus instead of the system bus", NULL},
	    {"sim-device", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sim_specs,
	     "A simulated device, named sim0, sim1, ... (repeatable)", "SPEC"},
	    {"device", 0, 0, G_OPTION_ARG_STRING_ARRAY, &kernel_names,
	     "A VFIO device, by PCI address or mdev UUID (repeatable)", "NAME"},
	    {"bus-name", 0, 0, G_OPTION_ARG_STRING, &bus_name,
	     "The bus name to own (default " MIGD_DBUS_BUS_NAME ")", "NAME"},
	    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
	     "The configuration file (default " MIGD_CONFIG_FILE ")", "FILE"},
	    {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
	     "Record jobs in flight in DIR (default $STATE_DIRECTORY, or " MIGD_STATE_DIR
	     " on the system bus; none on the session bus)",
	     "DIR"},
	    {"plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &plugin_dir,
	     "Load plugins from DIR, or from each of DIR:DIR... (default $" MIGD_PLUGIN_DIR_ENV
	     " or " MIGD_PLUGIN_DIR ")",
	     "DIR"},
	    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Show debug messages", NULL},
	    {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
	    {NULL},
	};

	setlocale(LC_ALL, "");
	/* journald's fields when stderr is the journal, plain text elsewhere */
	migd_log_install();
	migd_tune_allocator();
	context = g_option_context_new("- VFIO live-migration daemon");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		g_printerr("vfio-migd: %s\n", error->message);
		return 2;
	}
	if (argc > 1) {
		g_printerr("vfio-migd: unexpected argument '%s'\n", argv[1]);
		return 2;
	}
	if (version) {
		g_print("vfio-migd %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (bus_name == NULL)
		bus_name = g_strdup(MIGD_DBUS_BUS_NAME);
	if (!g_dbus_is_name(bus_name) || g_dbus_is_unique_name(bus_name)) {
		g_printerr("vfio-migd: '%s' is not a well-known bus name\n", bus_name);
		return 2;
	}
	if (verbose)
		g_log_set_debug_enabled(TRUE);

	/* an explicit --config must exist; the default one may be absent */
	config_file = config_path != NULL ? config_path : MIGD_CONFIG_FILE;
	config = migd_daemon_config_load(config_path, &error);
	/* every message says FILE:LINE: [GROUP] KEY */
	if (config != NULL && !migd_daemon_config_check_file(config, config_file, &error))
		g_clear_pointer(&config, g_key_file_unref);
	if (config != NULL && !migd_daemon_load_drop_ins(config, config_file, group_files, &error))
		g_clear_pointer(&config, g_key_file_unref);
	if (config == NULL) {
		g_printerr("vfio-migd: %s\n", error->message);
		return 1;
	}
	plugins = migd_daemon_load_plugins(plugin_dir, config, &error);
	if (plugins == NULL) {
		migd_daemon_config_locate_error(&error, config, config_file);
		g_printerr("vfio-migd: %s\n", error->message);
		return 1;
	}
	devices = migd_daemon_open_devices(sim_specs, kernel_names, &error);
	if (devices == NULL) {
		g_printerr("vfio-migd: %s\n", error->message);
		return 1;
	}
	for (guint i = 0; i < devices->len; i++)
		migd_plugin_manager_assign(plugins, g_ptr_array_index(devices, i));
	if (!migd_daemon_configure_devices(config, config_file, devices, &error) ||
	    !migd_daemon_configure(config, &low_power_idle, &max_inflight, &error)) {
		g_printerr("vfio-migd: %s\n", error->message);
		return 1;
	}
	if (!migd_daemon_configure_listen(config, listen_transport, &start_mode, &error)) {
		migd_daemon_config_prefix_error(&error, config_file, "listen", NULL);
		g_printerr("vfio-migd: %s\n", error->message);
		return 1;
	}
	/* bad TLS files stop the start, unless systemd handed a socket: then D-Bus goes on */
	if (!migd_daemon_check_listen_tls(listen_transport, config_file, &tls_error) &&
	    sd_listen_fds(FALSE) <= 0) {
		g_printerr("vfio-migd: %s\n", tls_error->message);
		return 1;
	}
	/* a previous run that crashed mid-job may have left devices stopped: bring them back */
	if (state_dir == NULL && g_getenv("STATE_DIRECTORY") != NULL)
		state_dir = g_strdup(g_getenv("STATE_DIRECTORY"));
	if (state_dir == NULL && !session)
		state_dir = g_strdup(MIGD_STATE_DIR);
	if (state_dir != NULL) {
		journal = migd_journal_new(state_dir, &error);
		if (journal == NULL) {
			g_printerr("vfio-migd: %s\n", error->message);
			return 1;
		}
	}
	if (devices->len == 0)
		g_message("no devices on the command line: [device NAME] address= in the "
			  "configuration, --device or --sim-device give them");

	migd_error_register_dbus();
	connection = g_bus_get_sync(session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL, &error);
	if (connection == NULL) {
		g_printerr("vfio-migd: cannot connect to the %s bus: %s\n",
			   session ? "session" : "system", error->message);
		return 1;
	}
	/* losing the bus ends the main loop through name-lost, not with _exit() */
	g_dbus_connection_set_exit_on_close(connection, FALSE);

	manager = migd_manager_new(devices);
	migd_manager_set_max_inflight(manager, max_inflight);
	migd_manager_set_start_mode(manager, start_mode);
	migd_manager_set_plugin_manager(manager, plugins);
	daemon.plugins = plugins;
	daemon.allow_sim = session || sim_specs != NULL;
	migd_manager_set_device_open_func(manager, migd_daemon_open_device, &daemon);
	{
		/* AddDevice's "persist" writes next to the configuration (devices.d) */
		g_autofree gchar *config_dir = g_path_get_dirname(config_file);
		migd_manager_set_config_dir(manager, config_dir);
	}
	if (low_power_idle) {
		low_power = migd_low_power_new();
		migd_manager_set_low_power(manager, low_power);
	}
	migd_manager_set_journal(manager, journal);
	daemon.digest_cancellable = digest_cancellable;
	migd_manager_set_device_info_func(manager, migd_daemon_device_info, &daemon);
	service = migd_dbus_manager_service_new(manager);
	for (guint i = 0; i < devices->len; i++) {
		gboolean sim = MIGD_IS_SIM_DEVICE(g_ptr_array_index(devices, i));
		migd_dbus_manager_service_add_capability(service, sim ? "simulated-devices"
								      : "kernel-devices");
	}
	/* exported before the name is owned: whoever sees the name can call at once */
	if (!migd_dbus_manager_service_export(service, connection, &error)) {
		g_printerr("vfio-migd: cannot export the manager: %s\n", error->message);
		return 1;
	}
	/* [device NAME] address= / sim-spec=: absent ones are retried, never fatal */
	daemon.manager = manager;
	daemon.configured = g_ptr_array_new_with_free_func(migd_daemon_configured_free);
	migd_daemon_open_configured(&daemon, config, config_file, group_files);
	/* after the configured devices opened: the journal's jobs and the socket may be theirs */
	if (journal != NULL) {
		MigdJournalRecovery recovery;
		migd_journal_recover(journal, migd_manager_get_devices(manager), &recovery);
		if (recovery.jobs > 0)
			g_message(
			    "recovered %u unfinished job(s): %u device(s) back to RUNNING, %u "
			    "failed, %u not ours",
			    recovery.jobs, recovery.recovered, recovery.failed, recovery.unknown);
	}
	migd_daemon_socket_activation(manager, listen_transport, config_file, tls_error);
	/* [vm NAME]: QEMU's dbus-vmstate adapters; a VM that cannot be set up stops the start */
	{
		g_auto(GStrv) groups = g_key_file_get_groups(config, NULL);
		for (guint i = 0; groups[i] != NULL; i++) {
			MigdVmConfig *vm;
			if (!g_str_has_prefix(groups[i], "vm "))
				continue;
			vm = migd_vm_config_from_key_file(config, groups[i], &error);
			if (vm == NULL ||
			    !migd_dbus_manager_service_attach_vm(service, vm, &error)) {
				if (vm == NULL)
					migd_daemon_config_locate_error(&error, config,
									config_file);
				g_printerr("vfio-migd: %s\n", error->message);
				return 1;
			}
		}
	}
	/* [libvirt]: device migrations follow libvirt's migrations of mapped domains */
	libvirt = migd_libvirt_bridge_new(config, manager, &error);
	if (libvirt == NULL && error != NULL) {
		migd_daemon_config_locate_error(&error, config, config_file);
		g_printerr("vfio-migd: %s\n", error->message);
		return 1;
	}

	loop = g_main_loop_new(NULL, FALSE);
	daemon.loop = loop;
	daemon.manager = manager;
	daemon.bus_name = bus_name;
	sigterm_id = g_unix_signal_add(SIGTERM, migd_daemon_signal_cb, &daemon);
	sigint_id = g_unix_signal_add(SIGINT, migd_daemon_signal_cb, &daemon);
	owner_id = g_bus_own_name_on_connection(
	    connection, bus_name, G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE, migd_daemon_name_acquired_cb,
	    migd_daemon_name_lost_cb, &daemon, NULL);
	/* under systemd only: STATUS= follows the jobs, WATCHDOG= proves the loop runs */
	if (g_getenv("NOTIFY_SOCKET") != NULL)
		status_id = g_timeout_add_seconds(2, migd_daemon_status_cb, &daemon);
	if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0)
		watchdog_id =
		    g_timeout_add(MAX(watchdog_usec / 2000, 1), migd_daemon_watchdog_cb, &daemon);

	g_main_loop_run(loop);
	g_clear_handle_id(&status_id, g_source_remove);
	g_clear_handle_id(&watchdog_id, g_source_remove);
	g_free(daemon.status);
	/* no libvirt callback may start a job on a manager that is going away */
	g_clear_pointer(&libvirt, migd_libvirt_bridge_free);

	g_bus_unown_name(owner_id);
	g_source_remove(sigterm_id);
	g_source_remove(sigint_id);
	g_clear_handle_id(&daemon.shutdown_id, g_source_remove);
	/* cancelled digests end within a step; their threads hold the devices */
	g_cancellable_cancel(daemon.digest_cancellable);
	while (daemon.digests_pending > 0)
		g_main_context_iteration(NULL, TRUE);
	/* the VMs first: they cancel their expectations and fail a Save or Load in progress */
	migd_dbus_manager_service_detach_vms(service);
	/* no retry opens a device into a manager that is closing */
	g_clear_pointer(&daemon.configured, g_ptr_array_unref);
	/* stops listening and drops the jobs (their objects go), then the Manager goes */
	migd_manager_close(manager);
	migd_dbus_manager_service_unexport(service);
	if (!g_dbus_connection_is_closed(connection))
		g_dbus_connection_flush_sync(connection, NULL, NULL);
	g_message("exiting");
	return daemon.exit_status;
}
