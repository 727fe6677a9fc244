/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * vfio-migctl: the command-line client of org.vfiomigd.Migd1. Exit codes: 0 on
 * success, 1 when a call or a job failed, 2 on usage errors. With --json every
 * line of stdout is one JSON object (docs/ABI/testing/cli-json).
 */
#include "config.h"

#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include "migd-dbus-generated.h"
#include "migd-dirty-bitmap-file.h"
#include "migd-dirty-ranges.h"
#include "migctl/migctl-help.h"
#include "migctl/migctl-util.h"
#include "migctl/migctl.h"

/* Ctrl-C during migrate: how long to wait for the cancelled job's outcome */

/* ---- errors ---- */

gint
migctl_fail(const MigctlOptions *options, GError *error)
{
	g_autofree gchar *name = g_dbus_error_get_remote_error(error);
	g_autofree gchar *said = NULL;

	g_dbus_error_strip_remote_error(error);
	/* what an operator can act on, not GIO's wording */
	said = migctl_explain_error(error, name, options->bus_name, options->session);
	g_free(error->message);
	error->message = g_steal_pointer(&said);
	if (options->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "event");
		migctl_json_string(builder, "error");
		json_builder_set_member_name(builder, "error");
		migctl_json_string(builder,
				   name != NULL ? name : "org.vfiomigd.Migd1.Error.Failed");
		json_builder_set_member_name(builder, "message");
		migctl_json_string(builder, error->message);
		json_builder_end_object(builder);
		migctl_json_print(builder);
	}
	g_printerr("vfio-migctl: %s\n", error->message);
	return MIGCTL_EXIT_FAIL;
}

static gint migctl_usage(const gchar *fmt, ...) G_GNUC_PRINTF(1, 2);

static gint
migctl_usage(const gchar *fmt, ...)
{
	va_list args;
	g_autofree gchar *msg = NULL;

	va_start(args, fmt);
	msg = g_strdup_vprintf(fmt, args);
	va_end(args);
	g_printerr("vfio-migctl: %s\nTry 'vfio-migctl --help' or 'vfio-migctl help COMMAND'.\n",
		   msg);
	return MIGCTL_EXIT_USAGE;
}

MigdDbusManager *
migctl_manager(const MigctlOptions *options, GError **error)
{
	return migd_dbus_manager_proxy_new_sync(options->connection,
						G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES |
						    G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
						options->bus_name, MIGCTL_OBJECT_PATH, NULL, error);
}

/* ---- devices ---- */

static gint
migctl_cmd_devices(const MigctlOptions *options)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_autoptr(GVariant) devices = NULL;
	g_autoptr(GError) error = NULL;
	GVariantIter iter;
	const gchar *name = NULL;
	GVariant *props_tmp = NULL;
	g_autoptr(JsonBuilder) builder = json_builder_new();
	g_autoptr(MigctlTable) table = migctl_table_new(8, "NAME", "STATE", "FLAGS", "PLUGIN",
							"TRACKER", "BACKEND", "PROFILE", "DIGEST");

	manager = migctl_manager(options, &error);
	if (manager == NULL ||
	    !migd_dbus_manager_call_list_devices_sync(manager, &devices, NULL, &error))
		return migctl_fail(options, error);

	json_builder_begin_object(builder);
	json_builder_set_member_name(builder, "devices");
	json_builder_begin_array(builder);
	g_variant_iter_init(&iter, devices);
	while (g_variant_iter_next(&iter, "(&s@a{sv})", &name, &props_tmp)) {
		g_autoptr(GVariant) props = props_tmp;
		GVariantIter piter;
		const gchar *key = NULL;
		GVariant *value_tmp = NULL;

		if (!options->json) {
			g_autoptr(GVariantDict) dict = g_variant_dict_new(props);
			const gchar *state = "-";
			const gchar *flags = "-";
			const gchar *backend = "-";
			const gchar *profile = "-";
			const gchar *plugin = "-";
			const gchar *tracker = "-";
			guint64 digest = 0;
			g_autofree gchar *digest_str = NULL;

			g_variant_dict_lookup(dict, "state", "&s", &state);
			g_variant_dict_lookup(dict, "flags", "&s", &flags);
			g_variant_dict_lookup(dict, "backend", "&s", &backend);
			g_variant_dict_lookup(dict, "profile", "&s", &profile);
			g_variant_dict_lookup(dict, "plugin", "&s", &plugin);
			g_variant_dict_lookup(dict, "dirty-tracker", "&s", &tracker);
			if (g_variant_dict_lookup(dict, "sim-digest", "t", &digest))
				digest_str = g_strdup_printf("%016" G_GINT64_MODIFIER "x", digest);
			else if (g_variant_dict_contains(dict, "sim-digest-pending"))
				digest_str = g_strdup("pending");
			else
				digest_str = g_strdup("-");
			migctl_table_add_row(table, name, state, flags, plugin, tracker, backend,
					     profile, digest_str);
			continue;
		}
		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "name");
		migctl_json_string(builder, name);
		g_variant_iter_init(&piter, props);
		while (g_variant_iter_next(&piter, "{&sv}", &key, &value_tmp)) {
			g_autoptr(GVariant) value = value_tmp;
			json_builder_set_member_name(builder, key);
			migctl_json_variant(builder, key, value);
		}
		json_builder_end_object(builder);
	}
	json_builder_end_array(builder);
	json_builder_end_object(builder);
	if (options->json)
		migctl_json_print(builder);
	else
		migctl_table_print(table);
	return MIGCTL_EXIT_OK;
}

/* ---- host-devices ---- */

/* one row of the host-devices table; "-" for what the daemon could not read */
static void
migctl_host_device_row(MigctlTable *table, const gchar *name, GVariant *props)
{
	g_autoptr(GVariantDict) dict = g_variant_dict_new(props);
	const gchar *kind = "-";
	const gchar *driver = "-";
	const gchar *cdev = "-";
	const gchar *plugin = "-";
	const gchar *type = NULL;
	g_autofree gchar *ids = g_strdup("-");
	g_autofree gchar *group = g_strdup("-");
	g_autoptr(GString) status = g_string_new(NULL);
	g_autofree const gchar **held_by = NULL;
	guint16 vendor = 0, device = 0;
	guint32 v = 0;
	gboolean served = FALSE;
	const gchar *api = NULL;

	g_variant_dict_lookup(dict, "kind", "&s", &kind);
	g_variant_dict_lookup(dict, "driver", "&s", &driver);
	g_variant_dict_lookup(dict, "cdev", "&s", &cdev);
	g_variant_dict_lookup(dict, "plugin", "&s", &plugin);
	g_variant_dict_lookup(dict, "type", "&s", &type);
	if (g_variant_dict_lookup(dict, "vendor-id", "q", &vendor) &&
	    g_variant_dict_lookup(dict, "device-id", "q", &device)) {
		g_free(ids);
		ids = g_strdup_printf("%04x:%04x", vendor, device);
	} else if (type != NULL) {
		g_free(ids);
		ids = g_strdup(type);
	}
	if (g_variant_dict_lookup(dict, "iommu-group", "u", &v)) {
		g_free(group);
		group = g_strdup_printf("%u", v);
	}
	if (g_strcmp0(kind, "mdev-type") == 0) {
		if (g_variant_dict_lookup(dict, "available-instances", "u", &v))
			g_string_append_printf(status, "%u available", v);
		else
			g_string_append(status, "available unknown");
		if (g_variant_dict_lookup(dict, "device-api", "&s", &api))
			g_string_append_printf(status, " (%s)", api);
	} else {
		g_variant_dict_lookup(dict, "served", "b", &served);
		g_variant_dict_lookup(dict, "held-by", "^a&s", &held_by);
		if (served)
			g_string_append(status, "served");
		for (guint i = 0; held_by != NULL && held_by[i] != NULL; i++)
			g_string_append_printf(status, "%s%s%s", status->len > 0 ? ", " : "",
					       i == 0 ? "held by " : "", held_by[i]);
		if (status->len == 0)
			g_string_append(status, "free");
	}
	migctl_table_add_row(table, name, kind, driver, ids, group, cdev, plugin, status->str);
}

/*
 * host-devices: every VFIO-capable device of the host (Manager.ListHostDevices);
 * in JSON the D-Bus properties as they are, with the PCI ids as "0x15b3" strings
 */
static gint
migctl_cmd_host_devices(const MigctlOptions *options)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_autoptr(GVariant) devices = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonBuilder) builder = json_builder_new();
	GVariantIter iter;
	const gchar *name = NULL;
	GVariant *props_tmp = NULL;
	g_autoptr(MigctlTable) table = migctl_table_new(8, "NAME", "KIND", "DRIVER", "ID/TYPE",
							"GROUP", "CDEV", "PLUGIN", "STATUS");

	manager = migctl_manager(options, &error);
	if (manager == NULL ||
	    !migd_dbus_manager_call_list_host_devices_sync(manager, &devices, NULL, &error))
		return migctl_fail(options, error);
	json_builder_begin_object(builder);
	json_builder_set_member_name(builder, "host-devices");
	json_builder_begin_array(builder);
	g_variant_iter_init(&iter, devices);
	while (g_variant_iter_next(&iter, "(&s@a{sv})", &name, &props_tmp)) {
		g_autoptr(GVariant) props = props_tmp;
		GVariantIter piter;
		const gchar *key = NULL;
		GVariant *value_tmp = NULL;

		if (!options->json) {
			migctl_host_device_row(table, name, props);
			continue;
		}
		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "name");
		migctl_json_string(builder, name);
		g_variant_iter_init(&piter, props);
		while (g_variant_iter_next(&piter, "{&sv}", &key, &value_tmp)) {
			g_autoptr(GVariant) value = value_tmp;
			json_builder_set_member_name(builder, key);
			if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT16)) {
				g_autofree gchar *hex =
				    g_strdup_printf("0x%04x", g_variant_get_uint16(value));
				migctl_json_string(builder, hex);
			} else {
				migctl_json_variant(builder, key, value);
			}
		}
		json_builder_end_object(builder);
	}
	json_builder_end_array(builder);
	json_builder_end_object(builder);
	if (options->json)
		migctl_json_print(builder);
	else
		migctl_table_print(table);
	return MIGCTL_EXIT_OK;
}

/* ---- dirty-bitmap, dirty-sync ---- */

/* the whole content of the memfd at @handle of @fds */
GBytes *
migctl_read_fd(GUnixFDList *fds, GVariant *handle, GError **error)
{
	g_autoptr(GInputStream) in = NULL;
	g_autoptr(GByteArray) data = g_byte_array_new();
	guint8 buf[65536];
	gint fd = g_unix_fd_list_get(fds, g_variant_get_handle(handle), error);

	if (fd < 0)
		return NULL;
	in = g_unix_input_stream_new(fd, TRUE);
	for (;;) {
		gssize n = g_input_stream_read(in, buf, sizeof(buf), NULL, error);
		if (n < 0)
			return NULL;
		if (n == 0)
			break;
		g_byte_array_append(data, buf, n);
	}
	return g_byte_array_free_to_bytes(g_steal_pointer(&data));
}

/* checks the bitmap file in @bytes, saves it (--output) and describes it; @job: dirty-sync's */
gint
migctl_dirty_report(const MigctlOptions *options, const gchar *job, const gchar *device,
		    GBytes *bytes)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdDirtyFile) file = NULL;
	g_autoptr(JsonBuilder) builder = json_builder_new();

	file = migd_dirty_file_parse(bytes, &error);
	if (file == NULL)
		return migctl_fail(options, error);
	if (options->output != NULL &&
	    !g_file_set_contents(options->output, g_bytes_get_data(bytes, NULL),
				 (gssize)g_bytes_get_size(bytes), &error))
		return migctl_fail(options, error);

	json_builder_begin_object(builder);
	if (job != NULL) {
		json_builder_set_member_name(builder, "job");
		migctl_json_string(builder, job);
	}
	json_builder_set_member_name(builder, "device");
	migctl_json_string(builder, device);
	migctl_json_member_uint(builder, "page_size", file->page_size);
	migctl_json_member_uint(builder, "dirty_pages", file->dirty_pages);
	migctl_json_member_uint(builder, "rounds", file->rounds);
	json_builder_set_member_name(builder, "windows");
	json_builder_begin_array(builder);
	if (!options->json)
		g_print("%s: page size %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
			" dirty pages, %u syncs, %u windows\n",
			device, file->page_size, file->dirty_pages, file->rounds, file->n_windows);
	for (guint i = 0; i < file->n_windows; i++) {
		const MigdDirtyFileEntry *e = &file->windows[i];
		json_builder_begin_object(builder);
		migctl_json_member_uint(builder, "iova", e->iova);
		migctl_json_member_uint(builder, "pages", e->n_pages);
		migctl_json_member_uint(builder, "dirty_pages", e->dirty_pages);
		json_builder_end_object(builder);
		if (!options->json)
			g_print("  window %u: iova 0x%" G_GINT64_MODIFIER "x, %" G_GUINT64_FORMAT
				" pages, %" G_GUINT64_FORMAT " dirty\n",
				i, e->iova, e->n_pages, e->dirty_pages);
	}
	json_builder_end_array(builder);
	json_builder_end_object(builder);
	if (options->json)
		migctl_json_print(builder);
	return MIGCTL_EXIT_OK;
}

static gint
migctl_cmd_dirty_bitmap(const MigctlOptions *options, const gchar *device)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_autoptr(GVariant) handle = NULL;
	g_autoptr(GUnixFDList) fds = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;

	manager = migctl_manager(options, &error);
	if (manager == NULL || !migd_dbus_manager_call_get_dirty_bitmap_sync(
				   manager, device, NULL, &handle, &fds, NULL, &error))
		return migctl_fail(options, error);
	bytes = migctl_read_fd(fds, handle, &error);
	if (bytes == NULL)
		return migctl_fail(options, error);
	return migctl_dirty_report(options, NULL, device, bytes);
}

/* ---- listen, migrate ---- */

/* paths go to a daemon with another working directory: make them absolute */
static void
migctl_add_path(GVariantBuilder *builder, const gchar *key, const gchar *path)
{
	g_autofree gchar *abs = NULL;

	if (path == NULL)
		return;
	abs = g_canonicalize_filename(path, NULL);
	g_variant_builder_add(builder, "{sv}", key, g_variant_new_string(abs));
}

/* "IOVA+LEN,..." -> a(tt) */
static GVariant *
migctl_ranges_variant(const gchar *text, GError **error)
{
	g_autoptr(GArray) ranges = migd_dirty_ranges_parse(text, error);
	g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(tt)"));

	if (ranges == NULL)
		return NULL;
	for (guint i = 0; i < ranges->len; i++) {
		const MigdIovaRange *r = &g_array_index(ranges, MigdIovaRange, i);
		g_variant_builder_add(&builder, "(tt)", r->iova, r->length);
	}
	return g_variant_builder_end(&builder);
}

static GVariant *
migctl_build_options(const MigctlOptions *options, gboolean migrate)
{
	g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);

	if (options->plain)
		g_variant_builder_add(&builder, "{sv}", "plain", g_variant_new_boolean(TRUE));
	if (options->insecure_plain_tcp)
		g_variant_builder_add(&builder, "{sv}", "insecure-plain-tcp",
				      g_variant_new_boolean(TRUE));
	if (options->allowed_uids != NULL) {
		g_auto(GVariantBuilder) uids = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("au"));
		/* checked by migctl_run: numbers each */
		for (guint i = 0; options->allowed_uids[i] != NULL; i++)
			g_variant_builder_add(
			    &uids, "u",
			    (guint32)g_ascii_strtoull(options->allowed_uids[i], NULL, 10));
		g_variant_builder_add(&builder, "{sv}", "allowed-uids",
				      g_variant_builder_end(&uids));
	}
	migctl_add_path(&builder, "cert", options->cert);
	migctl_add_path(&builder, "key", options->key);
	migctl_add_path(&builder, "ca", options->ca);
	if (migrate) {
		if (options->peer_name != NULL)
			g_variant_builder_add(&builder, "{sv}", "peer-name",
					      g_variant_new_string(options->peer_name));
		if (options->downtime_ms > 0)
			g_variant_builder_add(&builder, "{sv}", "downtime-ms",
					      g_variant_new_uint32(options->downtime_ms));
		if (options->max_rounds > 0)
			g_variant_builder_add(&builder, "{sv}", "max-rounds",
					      g_variant_new_uint32(options->max_rounds));
		if (options->timeout_s > 0)
			g_variant_builder_add(&builder, "{sv}", "timeout-s",
					      g_variant_new_uint32(options->timeout_s));
		if (options->switchover != NULL)
			g_variant_builder_add(&builder, "{sv}", "switchover",
					      g_variant_new_string(options->switchover));
		if (options->handover_timeout_s > 0)
			g_variant_builder_add(&builder, "{sv}", "handover-timeout",
					      g_variant_new_uint32(options->handover_timeout_s));
		if (options->migration_id != NULL)
			g_variant_builder_add(&builder, "{sv}", "migration-id",
					      g_variant_new_string(options->migration_id));
		if (options->iova_ranges != NULL) {
			g_auto(GVariantBuilder) map =
			    G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a{sa(tt)}"));
			/* checked by migctl_run: DEVICE=RANGES each */
			for (guint i = 0; options->iova_ranges[i] != NULL; i++) {
				g_auto(GStrv) kv = g_strsplit(options->iova_ranges[i], "=", 2);
				g_variant_builder_add(&map, "{s@a(tt)}", kv[0],
						      migctl_ranges_variant(kv[1], NULL));
			}
			g_variant_builder_add(&builder, "{sv}", "iova-ranges",
					      g_variant_builder_end(&map));
		}
	} else if (options->start != NULL) {
		g_variant_builder_add(&builder, "{sv}", "start",
				      g_variant_new_string(options->start));
	}
	return g_variant_builder_end(&builder);
}

/* listen --stop: the listener goes (the daemon refuses while a migration comes in) */
static gint
migctl_cmd_stop_listening(const MigctlOptions *options)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) bound = NULL;

	manager = migctl_manager(options, &error);
	/* the address first, to say what stopped */
	if (manager == NULL ||
	    !migd_dbus_manager_call_list_listeners_sync(manager, &bound, NULL, &error) ||
	    !migd_dbus_manager_call_stop_listening_sync(manager, NULL, &error))
		return migctl_fail(options, error);
	if (options->json)
		migctl_json_print_result("address", bound[0] != NULL ? bound[0] : "", "stopped");
	else
		g_print("Stopped listening%s%s\n", bound[0] != NULL ? " on " : "",
			bound[0] != NULL ? bound[0] : "");
	return MIGCTL_EXIT_OK;
}

static gint
migctl_cmd_listen(const MigctlOptions *options, const gchar *address)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *bound = NULL;

	if (options->stop)
		return migctl_cmd_stop_listening(options);
	manager = migctl_manager(options, &error);
	if (manager == NULL ||
	    !migd_dbus_manager_call_listen_sync(
		manager, address, migctl_build_options(options, FALSE), &bound, NULL, &error))
		return migctl_fail(options, error);
	if (options->json) {
		migctl_json_print_result("address", bound, NULL);
	} else {
		g_print("%s\n", bound);
	}
	return MIGCTL_EXIT_OK;
}

static gboolean
migctl_interrupt_cb(gpointer user_data)
{
	MigctlInterrupt *interrupt = user_data;

	if (interrupt->watch == NULL)
		interrupt->pending = TRUE;
	else
		migctl_watch_signal_cb(interrupt->watch);
	return G_SOURCE_CONTINUE;
}

/* the job's number as a JSON integer ("job_id"), when its path has one */
void
migctl_json_job_id(JsonBuilder *builder, const gchar *path)
{
	guint64 n = 0;

	if (!g_ascii_string_to_unsigned(migctl_job_number(path), 10, 0, G_MAXUINT64, &n, NULL))
		return;
	migctl_json_member_uint(builder, "job_id", n);
}

static gint
migctl_migrate(const MigctlOptions *options, const gchar *address, MigctlInterrupt *interrupt)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *job = NULL;
	const gchar *const all[] = {NULL};
	const gchar *const *devices =
	    options->devices != NULL ? (const gchar *const *)options->devices : all;

	manager = migctl_manager(options, &error);
	if (manager == NULL ||
	    !migd_dbus_manager_call_migrate_sync(
		manager, address, devices, migctl_build_options(options, TRUE), &job, NULL, &error))
		return migctl_fail(options, error);
	if (options->json) {
		/* the job at once, before any progress: a caller can cancel or watch it */
		g_autoptr(JsonBuilder) builder = json_builder_new();
		json_builder_begin_object(builder);
		if (!options->no_wait) {
			json_builder_set_member_name(builder, "event");
			migctl_json_string(builder, "started");
		}
		json_builder_set_member_name(builder, "job");
		migctl_json_string(builder, job);
		migctl_json_job_id(builder, job);
		json_builder_end_object(builder);
		migctl_json_print(builder);
	} else if (options->no_wait) {
		g_print("%s\n", job); /* the path alone: what scripts read */
	} else {
		g_print("Job %s started (%s); Ctrl-C cancels it, --detach leaves it running\n",
			migctl_job_number(job), job);
		fflush(stdout);
	}
	if (options->no_wait)
		return MIGCTL_EXIT_OK;
	return migctl_watch_full(options, job, interrupt);
}

static gint
migctl_cmd_migrate(const MigctlOptions *options, const gchar *address)
{
	MigctlInterrupt interrupt = {0};
	guint ids[2] = {0, 0};
	gint status;

	/* --detach: nothing to cancel, a signal ends vfio-migctl as usual */
	if (!options->no_wait) {
		ids[0] = g_unix_signal_add(SIGINT, migctl_interrupt_cb, &interrupt);
		ids[1] = g_unix_signal_add(SIGTERM, migctl_interrupt_cb, &interrupt);
	}
	status = migctl_migrate(options, address, &interrupt);
	for (guint i = 0; i < G_N_ELEMENTS(ids); i++) {
		if (ids[i] != 0)
			g_source_remove(ids[i]);
	}
	return status;
}

/* ---- cancel ---- */

static gint
migctl_cmd_cancel(const MigctlOptions *options, const gchar *path)
{
	g_autoptr(MigdDbusJob) job = NULL;
	g_autoptr(GError) error = NULL;

	job = migd_dbus_job_proxy_new_sync(options->connection,
					   G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES |
					       G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
					   options->bus_name, path, NULL, &error);
	if (job == NULL || !migd_dbus_job_call_cancel_sync(job, NULL, &error))
		return migctl_fail(options, error);
	if (options->json)
		migctl_json_print_result("job", path, "cancelled");
	return MIGCTL_EXIT_OK;
}

/* ---- jobs ---- */

static gint
migctl_cmd_jobs(const MigctlOptions *options)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_auto(GStrv) paths = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonBuilder) builder = json_builder_new();

	manager = migctl_manager(options, &error);
	if (manager == NULL ||
	    !migd_dbus_manager_call_list_jobs_sync(manager, &paths, NULL, &error))
		return migctl_fail(options, error);
	json_builder_begin_object(builder);
	json_builder_set_member_name(builder, "jobs");
	json_builder_begin_array(builder);
	if (!options->json)
		g_print("%-4s %-28s %-12s %-20s %8s %12s %-16s %s\n", "ID", "JOB", "ROLE", "PHASE",
			"PROGRESS", "BYTES", "MIGRATION", "MESSAGE");
	for (guint i = 0; paths[i] != NULL; i++) {
		g_autoptr(MigdDbusJob) job = NULL;
		MigctlWatch watch = {.options = options, .path = paths[i]};

		job = migd_dbus_job_proxy_new_sync(options->connection,
						   G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
						   options->bus_name, paths[i], NULL, &error);
		/* a job may expire between the list and the read: skip it */
		if (job == NULL || migd_dbus_job_get_phase(job) == NULL) {
			g_clear_error(&error);
			continue;
		}
		watch.job = job;
		if (options->json) {
			json_builder_begin_object(builder);
			migctl_json_job_fields(builder, &watch);
			json_builder_set_member_name(builder, "message");
			migctl_json_string(builder, migd_dbus_job_get_message(job));
			json_builder_end_object(builder);
		} else {
			g_autofree gchar *bytes = migctl_size(migd_dbus_job_get_bytes(job));
			const gchar *id = migd_dbus_job_get_migration_id(job);
			/* what the VMM must act on: manual modes, convergence, a rollback */
			const gchar *outcome = migctl_job_outcome(job);
			g_autofree gchar *phase = g_strdup_printf(
			    "%s%s%s", outcome[0] != '\0' ? outcome : migd_dbus_job_get_phase(job),
			    migd_dbus_job_get_converged(job) ? ",converged" : "",
			    /* a cancel that rolled back: say both */
			    migd_dbus_job_get_rolled_back(job) &&
				    g_strcmp0(outcome, "rolled-back") != 0
				? ",rolled-back"
				: "");
			g_print("%-4s %-28s %-12s %-20s %7.0f%% %12s %-16s %s\n",
				migctl_job_number(paths[i]), paths[i], migd_dbus_job_get_role(job),
				phase, migd_dbus_job_get_progress(job) * 100.0, bytes,
				id != NULL && id[0] != '\0' ? id : "-",
				migd_dbus_job_get_message(job));
		}
	}
	json_builder_end_array(builder);
	json_builder_end_object(builder);
	if (options->json)
		migctl_json_print(builder);
	return MIGCTL_EXIT_OK;
}

/* ---- status ---- */

/*
 * The daemon at a glance: its Version and Capabilities, its devices (busy ones
 * counted), its listeners (bound addresses) and its jobs (running ones counted).
 */
static gint
migctl_cmd_status(const MigctlOptions *options)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_autoptr(GVariant) devices = NULL;
	g_auto(GStrv) paths = NULL;
	g_auto(GStrv) listeners = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *owner = NULL;
	const gchar *version;
	const gchar *const *caps;
	guint n_devices = 0, n_busy = 0, n_jobs = 0, n_running = 0;
	GVariantIter iter;
	GVariant *props_tmp = NULL;

	manager = migd_dbus_manager_proxy_new_sync(
	    options->connection, G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS, options->bus_name,
	    MIGCTL_OBJECT_PATH, NULL, &error);
	if (manager == NULL)
		return migctl_fail(options, error);
	owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(manager));
	if (owner == NULL) {
		g_set_error(&error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN, "%s has no owner",
			    options->bus_name);
		return migctl_fail(options, error);
	}
	if (!migd_dbus_manager_call_list_devices_sync(manager, &devices, NULL, &error) ||
	    !migd_dbus_manager_call_list_jobs_sync(manager, &paths, NULL, &error) ||
	    !migd_dbus_manager_call_list_listeners_sync(manager, &listeners, NULL, &error))
		return migctl_fail(options, error);
	version = migd_dbus_manager_get_version(manager);
	caps = migd_dbus_manager_get_capabilities(manager);
	g_variant_iter_init(&iter, devices);
	while (g_variant_iter_next(&iter, "(&s@a{sv})", NULL, &props_tmp)) {
		g_autoptr(GVariant) props = props_tmp;
		gboolean busy = FALSE;
		n_devices++;
		if (g_variant_lookup(props, "busy", "b", &busy) && busy)
			n_busy++;
	}
	for (guint i = 0; paths[i] != NULL; i++) {
		g_autoptr(MigdDbusJob) job = migd_dbus_job_proxy_new_sync(
		    options->connection, G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
		    options->bus_name, paths[i], NULL, NULL);
		if (job == NULL || migd_dbus_job_get_phase(job) == NULL)
			continue; /* expired between the list and the read */
		n_jobs++;
		if (!migctl_phase_is_final(migd_dbus_job_get_phase(job)))
			n_running++;
	}
	if (options->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "version");
		migctl_json_string(builder, version);
		json_builder_set_member_name(builder, "capabilities");
		json_builder_begin_array(builder);
		for (guint i = 0; caps != NULL && caps[i] != NULL; i++)
			migctl_json_string(builder, caps[i]);
		json_builder_end_array(builder);
		migctl_json_member_uint(builder, "devices", n_devices);
		migctl_json_member_uint(builder, "devices_busy", n_busy);
		json_builder_set_member_name(builder, "listeners");
		json_builder_begin_array(builder);
		for (guint i = 0; listeners[i] != NULL; i++)
			migctl_json_string(builder, listeners[i]);
		json_builder_end_array(builder);
		migctl_json_member_uint(builder, "jobs", n_jobs);
		migctl_json_member_uint(builder, "jobs_running", n_running);
		json_builder_end_object(builder);
		migctl_json_print(builder);
	} else {
		g_autofree gchar *caps_text =
		    caps != NULL ? g_strjoinv(", ", (gchar **)caps) : g_strdup("-");
		g_autofree gchar *dev_text = migctl_count(n_devices, "device", "devices");
		g_autofree gchar *job_text = migctl_count(n_jobs, "job", "jobs");
		g_autofree gchar *listen_text =
		    listeners[0] != NULL ? g_strjoinv(", ", listeners) : g_strdup("not listening");
		g_print("vfio-migd %s (%s on the %s bus)\n", version != NULL ? version : "?",
			options->bus_name, options->session ? "session" : "system");
		g_print("Capabilities: %s\n", caps_text);
		g_print("Devices: %s, %u busy\n", dev_text, n_busy);
		g_print("Listening: %s\n", listen_text);
		g_print("Jobs: %s, %u running\n", job_text, n_running);
	}
	return MIGCTL_EXIT_OK;
}

/* ---- add, attach, detach ---- */

static GVariant *
migctl_device_options(const MigctlOptions *options, GError **error)
{
	g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);

	if (options->iova_ranges != NULL) {
		GVariant *ranges;
		if (g_strv_length(options->iova_ranges) != 1) {
			g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
					    "give --iova-ranges once (IOVA+LEN,IOVA+LEN,...)");
			return NULL;
		}
		ranges = migctl_ranges_variant(options->iova_ranges[0], error);
		if (ranges == NULL)
			return NULL;
		g_variant_builder_add(&builder, "{sv}", "iova-ranges", ranges);
	}
	if (options->sim_spec != NULL)
		g_variant_builder_add(&builder, "{sv}", "sim-spec",
				      g_variant_new_string(options->sim_spec));
	if (options->address != NULL)
		g_variant_builder_add(&builder, "{sv}", "address",
				      g_variant_new_string(options->address));
	return g_variant_builder_end(&builder);
}

static gint
migctl_cmd_device(const MigctlOptions *options, const gchar *cmd, const gchar *name)
{
	g_autoptr(MigdDbusManager) manager = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) device_options = NULL;
	gboolean ok;

	if (options->persist && g_strcmp0(cmd, "add") != 0)
		return migctl_usage("--persist only applies to 'add'");
	manager = migctl_manager(options, &error);
	if (manager == NULL)
		return migctl_fail(options, error);
	if (g_strcmp0(cmd, "detach") == 0) {
		ok = migd_dbus_manager_call_detach_device_sync(manager, name, NULL, &error);
	} else {
		device_options = migctl_device_options(options, &error);
		if (device_options == NULL)
			return migctl_fail(options, error);
		g_variant_ref_sink(device_options);
		if (options->persist) {
			g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(device_options);
			/* the daemon writes the drop-in: it knows its config dir and runs as root
			 */
			g_variant_dict_insert(&dict, "persist", "b", TRUE);
			g_variant_unref(device_options);
			device_options = g_variant_ref_sink(g_variant_dict_end(&dict));
		}
		if (g_strcmp0(cmd, "add") == 0) {
			ok = migd_dbus_manager_call_add_device_sync(manager, name, device_options,
								    NULL, &error);
		} else {
			g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
			gint handle = g_unix_fd_list_append(fds, options->fd, &error);
			ok = handle >= 0 && migd_dbus_manager_call_attach_device_sync(
						manager, g_variant_new_handle(handle), name,
						device_options, fds, NULL, NULL, &error);
		}
	}
	if (!ok)
		return migctl_fail(options, error);
	if (options->json)
		migctl_json_print_result("device", name,
					 g_strcmp0(cmd, "detach") == 0 ? "detached" : "added");
	return MIGCTL_EXIT_OK;
}

/* ---- main ---- */

static void
migctl_options_clear(MigctlOptions *options)
{
	g_free(options->bus_name);
	g_strfreev(options->allowed_uids);
	g_free(options->cert);
	g_free(options->key);
	g_free(options->ca);
	g_free(options->peer_name);
	g_strfreev(options->devices);
	g_free(options->switchover);
	g_free(options->migration_id);
	g_free(options->start);
	g_free(options->output);
	g_strfreev(options->iova_ranges);
	g_free(options->sim_spec);
	g_free(options->address);
	g_free(options->job_path);
	g_clear_object(&options->connection);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MigctlOptions, migctl_options_clear)

static gboolean
migctl_has_transport_options(const MigctlOptions *o)
{
	return o->plain || o->insecure_plain_tcp || o->allowed_uids != NULL || o->cert != NULL ||
	       o->key != NULL || o->ca != NULL;
}

static gboolean
migctl_has_migrate_options(const MigctlOptions *o)
{
	return o->downtime_ms != 0 || o->max_rounds != 0 || o->timeout_s != 0 || o->no_wait ||
	       o->peer_name != NULL || o->switchover != NULL || o->migration_id != NULL ||
	       o->handover_timeout_s != 0;
}

static gboolean
migctl_is_control(const gchar *cmd)
{
	return g_strcmp0(cmd, "switchover") == 0 || g_strcmp0(cmd, "start") == 0 ||
	       g_strcmp0(cmd, "abandon") == 0 || g_strcmp0(cmd, "rollback") == 0;
}

/* "auto" or "manual", as the daemon takes them (a usage error here, not a call) */
static gboolean
migctl_is_mode(const gchar *mode)
{
	return g_strcmp0(mode, "auto") == 0 || g_strcmp0(mode, "manual") == 0;
}

static gint
migctl_run(MigctlOptions *options, gint argc, gchar **argv)
{
	const gchar *cmd;
	g_autoptr(GError) error = NULL;
	guint want_args;

	if (argc < 2)
		return migctl_usage("no command given");
	cmd = argv[1];
	if (g_strcmp0(cmd, "devices") == 0 || g_strcmp0(cmd, "jobs") == 0 ||
	    g_strcmp0(cmd, "expectations") == 0 || g_strcmp0(cmd, "status") == 0 ||
	    g_strcmp0(cmd, "host-devices") == 0) {
		want_args = 0;
	} else if (migctl_is_control(cmd) || g_strcmp0(cmd, "expect") == 0 ||
		   g_strcmp0(cmd, "cancel-expectation") == 0) {
		want_args = 1;
	} else if (g_strcmp0(cmd, "dirty-sync") == 0) {
		want_args = 2;
	} else if (g_strcmp0(cmd, "add") == 0 || g_strcmp0(cmd, "attach") == 0 ||
		   g_strcmp0(cmd, "detach") == 0) {
		want_args = 1;
	} else if (g_strcmp0(cmd, "listen") == 0 && options->stop) {
		want_args = 0; /* listen --stop: no address */
	} else if (g_strcmp0(cmd, "listen") == 0 || g_strcmp0(cmd, "migrate") == 0) {
		want_args = 1;
	} else if (g_strcmp0(cmd, "watch") == 0 || g_strcmp0(cmd, "cancel") == 0 ||
		   g_strcmp0(cmd, "dirty-bitmap") == 0) {
		want_args = 1;
	} else {
		return migctl_usage("unknown command '%s' ('vfio-migctl --help' lists them)", cmd);
	}
	if ((guint)(argc - 2) != want_args)
		return migctl_usage("'%s' takes %u argument(s), got %d", cmd, want_args, argc - 2);
	if (options->stop && g_strcmp0(cmd, "listen") != 0)
		return migctl_usage("--stop only applies to 'listen'");
	if (options->stop && (migctl_has_transport_options(options) || options->start != NULL))
		return migctl_usage("listen --stop takes no transport options and no --start");
	if (migctl_has_transport_options(options) && g_strcmp0(cmd, "listen") != 0 &&
	    g_strcmp0(cmd, "migrate") != 0)
		return migctl_usage("transport options only apply to 'listen' and 'migrate'");
	for (guint i = 0; options->allowed_uids != NULL && options->allowed_uids[i] != NULL; i++) {
		if (!g_ascii_string_to_unsigned(options->allowed_uids[i], 10, 0, G_MAXUINT32 - 1,
						NULL, NULL))
			return migctl_usage("--allowed-uid %s: not a uid",
					    options->allowed_uids[i]);
	}
	if ((options->sim_spec != NULL) && g_strcmp0(cmd, "add") != 0)
		return migctl_usage("--sim-spec only applies to 'add'");
	if (options->address != NULL && g_strcmp0(cmd, "attach") != 0)
		return migctl_usage("--address only applies to 'attach'");
	if (options->iova_ranges != NULL && g_strcmp0(cmd, "add") != 0 &&
	    g_strcmp0(cmd, "attach") != 0 && g_strcmp0(cmd, "migrate") != 0)
		return migctl_usage("--iova-ranges only applies to 'add', 'attach' and 'migrate'");
	if ((options->fd >= 0) != (g_strcmp0(cmd, "attach") == 0))
		return migctl_usage(options->fd >= 0 ? "--fd only applies to 'attach'"
						     : "'attach' needs --fd N (an open VFIO device "
						       "fd this command inherited)");
	for (guint i = 0; g_strcmp0(cmd, "migrate") == 0 && options->iova_ranges != NULL &&
			  options->iova_ranges[i] != NULL;
	     i++) {
		g_auto(GStrv) kv = g_strsplit(options->iova_ranges[i], "=", 2);
		g_autoptr(GVariant) ranges = NULL;
		if (kv[0] == NULL || kv[1] == NULL || kv[0][0] == '\0')
			return migctl_usage("migrate: --iova-ranges DEVICE=IOVA+LEN,...");
		ranges = migctl_ranges_variant(kv[1], &error);
		if (ranges == NULL)
			return migctl_usage("--iova-ranges %s: %s", options->iova_ranges[i],
					    error->message);
		g_variant_unref(g_variant_ref_sink(g_steal_pointer(&ranges)));
	}
	if (options->output != NULL && g_strcmp0(cmd, "dirty-bitmap") != 0 &&
	    g_strcmp0(cmd, "dirty-sync") != 0)
		return migctl_usage("--output only applies to 'dirty-bitmap' and 'dirty-sync'");
	if (migctl_has_migrate_options(options) && g_strcmp0(cmd, "migrate") != 0)
		return migctl_usage("--peer-name, --downtime-ms, --max-rounds, --timeout-s, "
				    "--detach (--no-wait), --switchover, --migration-id and "
				    "--handover-timeout only apply to 'migrate'");
	if (options->devices != NULL && g_strcmp0(cmd, "migrate") != 0 &&
	    g_strcmp0(cmd, "expect") != 0)
		return migctl_usage("--device only applies to 'migrate' and 'expect'");
	if (g_strcmp0(cmd, "expect") == 0 && options->devices == NULL)
		return migctl_usage("'expect' needs --device NAME (repeatable, in offer order)");
	if (options->start != NULL && g_strcmp0(cmd, "listen") != 0 &&
	    g_strcmp0(cmd, "expect") != 0)
		return migctl_usage("--start only applies to 'listen' and 'expect'");
	if (options->expect_timeout_s != 0 && g_strcmp0(cmd, "expect") != 0)
		return migctl_usage("--timeout only applies to 'expect'");
	if (options->start != NULL && !migctl_is_mode(options->start))
		return migctl_usage("--start %s: expected auto or manual", options->start);
	if (options->switchover != NULL && !migctl_is_mode(options->switchover))
		return migctl_usage("--switchover %s: expected auto or manual",
				    options->switchover);
	/* JOB: a short id (3) or a path; PCI addresses: lspci's short BB:DD.F too */
	if (g_strcmp0(cmd, "watch") == 0 || g_strcmp0(cmd, "cancel") == 0 ||
	    migctl_is_control(cmd) || g_strcmp0(cmd, "dirty-sync") == 0) {
		options->job_path = migctl_job_path(argv[2], &error);
		if (options->job_path == NULL)
			return migctl_usage("%s", error->message);
		argv[2] = options->job_path;
	}
	if (g_strcmp0(cmd, "add") == 0) {
		g_free(options->job_path); /* unused by add: holds the address for its lifetime */
		options->job_path = migctl_pci_address(argv[2]);
		argv[2] = options->job_path;
	}
	if (options->address != NULL) {
		gchar *address = migctl_pci_address(options->address);
		g_free(options->address);
		options->address = address;
	}
	if (!g_dbus_is_name(options->bus_name) || g_dbus_is_unique_name(options->bus_name))
		return migctl_usage("'%s' is not a well-known bus name", options->bus_name);

	options->connection =
	    g_bus_get_sync(options->session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL, &error);
	if (options->connection == NULL)
		return migctl_fail(options, error);

	if (g_strcmp0(cmd, "devices") == 0)
		return migctl_cmd_devices(options);
	if (g_strcmp0(cmd, "status") == 0)
		return migctl_cmd_status(options);
	if (g_strcmp0(cmd, "host-devices") == 0)
		return migctl_cmd_host_devices(options);
	if (g_strcmp0(cmd, "listen") == 0)
		return migctl_cmd_listen(options, argv[2]);
	if (g_strcmp0(cmd, "migrate") == 0)
		return migctl_cmd_migrate(options, argv[2]);
	if (g_strcmp0(cmd, "watch") == 0)
		return migctl_watch(options, argv[2]);
	if (g_strcmp0(cmd, "dirty-bitmap") == 0)
		return migctl_cmd_dirty_bitmap(options, argv[2]);
	if (g_strcmp0(cmd, "jobs") == 0)
		return migctl_cmd_jobs(options);
	if (migctl_is_control(cmd))
		return migctl_cmd_control(options, cmd, argv[2]);
	if (g_strcmp0(cmd, "dirty-sync") == 0)
		return migctl_cmd_dirty_sync(options, argv[2], argv[3]);
	if (g_strcmp0(cmd, "expect") == 0)
		return migctl_cmd_expect(options, argv[2]);
	if (g_strcmp0(cmd, "cancel-expectation") == 0)
		return migctl_cmd_cancel_expectation(options, argv[2]);
	if (g_strcmp0(cmd, "expectations") == 0)
		return migctl_cmd_expectations(options);
	if (g_strcmp0(cmd, "add") == 0 || g_strcmp0(cmd, "attach") == 0 ||
	    g_strcmp0(cmd, "detach") == 0)
		return migctl_cmd_device(options, cmd, argv[2]);
	return migctl_cmd_cancel(options, argv[2]);
}

/*
 * --downtime-ms, --max-rounds, --timeout-s: what Migrate takes (uint32, 0 refused), checked
 * here so that -1 or 0 is told as such rather than taken for "not given"
 */
static gboolean
migctl_parse_count(const gchar *name, const gchar *value, gpointer data, GError **error)
{
	MigctlOptions *options = data;
	const struct {
		const gchar *name;
		guint32 *dest;
		const gchar *unit;
		guint64 min;
	} counts[] = {
	    {"--downtime-ms", &options->downtime_ms, "milliseconds", 1},
	    {"--max-rounds", &options->max_rounds, "pre-copy rounds", 1},
	    {"--timeout-s", &options->timeout_s, "seconds", 1},
	    {"--handover-timeout", &options->handover_timeout_s, "seconds", 1},
	    /* expect: 0 is "no timeout", as not giving it */
	    {"--timeout", &options->expect_timeout_s, "seconds", 0},
	};
	guint64 v = 0;

	for (guint i = 0; i < G_N_ELEMENTS(counts); i++) {
		if (g_strcmp0(name, counts[i].name) != 0)
			continue;
		/* digits only: g_ascii_string_to_unsigned() refuses a sign */
		if (!g_ascii_string_to_unsigned(value, 10, counts[i].min, G_MAXUINT32, &v, NULL)) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "%s=%s: expected a whole number of %s from %u to %u", name,
				    value, counts[i].unit, (guint)counts[i].min, G_MAXUINT32);
			return FALSE;
		}
		*counts[i].dest = (guint32)v;
		return TRUE;
	}
	g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "%s: unexpected option", name);
	return FALSE;
}

/* @arg is an option whose value is the next argument ("--device NAME", "-o FILE") */
static gboolean
migctl_takes_value(const gchar *arg)
{
	static const gchar *const flags[] = {
	    "--session", "--json",   "--plain",	  "--insecure-plain-tcp",
	    "--no-wait", "--detach", "--version", "--help",
	    "-h",	 NULL};

	if (arg[0] != '-' || strchr(arg, '=') != NULL)
		return FALSE;
	return !g_strv_contains(flags, arg);
}

int
main(int argc, char **argv)
{
	g_auto(MigctlOptions) options = {
	    .fd = -1,
	};
	GOptionGroup *main_group = NULL;
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	const GOptionEntry entries[] = {
	    {"session", 0, 0, G_OPTION_ARG_NONE, &options.session,
	     "Talk to the daemon on the session bus", NULL},
	    {"bus-name", 0, 0, G_OPTION_ARG_STRING, &options.bus_name,
	     "The daemon's bus name (default " MIGCTL_BUS_NAME ")", "NAME"},
	    {"json", 0, 0, G_OPTION_ARG_NONE, &options.json,
	     "Machine-readable output: one JSON object per line", NULL},
	    {"plain", 0, 0, G_OPTION_ARG_NONE, &options.plain,
	     "No TLS: unix: addresses only, peers checked by uid", NULL},
	    {"insecure-plain-tcp", 0, 0, G_OPTION_ARG_NONE, &options.insecure_plain_tcp,
	     "With --plain, allow TCP too: only on a link secured otherwise", NULL},
	    {"allowed-uid", 0, 0, G_OPTION_ARG_STRING_ARRAY, &options.allowed_uids,
	     "With --plain: a uid besides root and the daemon's own (repeatable)", "UID"},
	    {"cert", 0, 0, G_OPTION_ARG_FILENAME, &options.cert, "Our certificate (PEM)", "FILE"},
	    {"key", 0, 0, G_OPTION_ARG_FILENAME, &options.key, "Its private key (PEM)", "FILE"},
	    {"ca", 0, 0, G_OPTION_ARG_FILENAME, &options.ca,
	     "The CA the peer's certificate must chain to (PEM)", "FILE"},
	    {"peer-name", 0, 0, G_OPTION_ARG_STRING, &options.peer_name,
	     "migrate: the identity the destination's certificate must carry", "NAME"},
	    {"device", 0, 0, G_OPTION_ARG_STRING_ARRAY, &options.devices,
	     "migrate: a device to move (repeatable; default: all); expect: a device to "
	     "receive into (repeatable, in offer order)",
	     "NAME"},
	    {"switchover", 0, 0, G_OPTION_ARG_STRING, &options.switchover,
	     "migrate: auto, or manual: pre-copy until 'switchover JOB'", "MODE"},
	    {"migration-id", 0, 0, G_OPTION_ARG_STRING, &options.migration_id,
	     "migrate: the VM migration the devices belong to (the destination's 'expect')", "ID"},
	    {"handover-timeout", 0, 0, G_OPTION_ARG_CALLBACK, migctl_parse_count,
	     "migrate: roll back if the destination has not started after S seconds", "S"},
	    {"start", 0, 0, G_OPTION_ARG_STRING, &options.start,
	     "listen, expect: auto, or manual: the devices stay stopped until 'start JOB'", "MODE"},
	    {"stop", 0, 0, G_OPTION_ARG_NONE, &options.stop,
	     "listen: stop listening (no ADDRESS; refused while a migration comes in)", NULL},
	    {"timeout", 0, 0, G_OPTION_ARG_CALLBACK, migctl_parse_count,
	     "expect: drop the expectation if no migration came after S seconds", "S"},
	    {"downtime-ms", 0, 0, G_OPTION_ARG_CALLBACK, migctl_parse_count,
	     "migrate: the downtime target", "MS"},
	    {"max-rounds", 0, 0, G_OPTION_ARG_CALLBACK, migctl_parse_count,
	     "migrate: at most this many pre-copy rounds", "N"},
	    {"timeout-s", 0, 0, G_OPTION_ARG_CALLBACK, migctl_parse_count,
	     "migrate: give up after this many seconds", "S"},
	    {"no-wait", 0, 0, G_OPTION_ARG_NONE, &options.no_wait,
	     "migrate: print the job and return at once", NULL},
	    {"detach", 0, 0, G_OPTION_ARG_NONE, &options.no_wait,
	     "migrate: the same as --no-wait: the job keeps running", NULL},
	    {"version", 0, 0, G_OPTION_ARG_NONE, &options.version,
	     "Print vfio-migctl's version and exit", NULL},
	    {"iova-ranges", 0, 0, G_OPTION_ARG_STRING_ARRAY, &options.iova_ranges,
	     "add, attach: the guest IOVA ranges the device may DMA into; migrate: "
	     "DEVICE=RANGES (repeatable)",
	     "IOVA+LEN,..."},
	    {"sim-spec", 0, 0, G_OPTION_ARG_STRING, &options.sim_spec,
	     "add: a simulated device (daemons that serve them)", "SPEC"},
	    {"persist", 0, 0, G_OPTION_ARG_NONE, &options.persist,
	     "add: also after a restart (the daemon writes devices.d/NAME.conf next to its "
	     "configuration)",
	     NULL},
	    {"fd", 0, 0, G_OPTION_ARG_INT, &options.fd, "attach: the inherited device fd", "N"},
	    {"address", 0, 0, G_OPTION_ARG_STRING, &options.address,
	     "attach: which device the fd is (PCI address, mdev UUID, sysfs path)", "ADDRESS"},
	    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &options.output,
	     "dirty-bitmap, dirty-sync: write the bitmap file to FILE", "FILE"},
	    {NULL},
	};

	setlocale(LC_ALL, "");
	g_set_prgname("vfio-migctl"); /* `help` prints the usage before the parse sets it */
	context = g_option_context_new("COMMAND [ARGS] - control vfio-migd");
	g_option_context_set_summary(
	    context,
	    "Commands:\n"
	    "  status                the daemon's version, devices and jobs\n"
	    "  devices               list the daemon's devices\n"
	    "  host-devices          list the host's VFIO devices, mdevs and mdev types\n"
	    "  listen ADDRESS        receive migrations on ADDRESS (--stop: stop listening)\n"
	    "  migrate ADDRESS       migrate devices to the daemon at ADDRESS\n"
	    "  watch JOB             follow a job until it ends (JOB: its number or path)\n"
	    "  cancel JOB            cancel a job\n"
	    "  jobs                  list the daemon's jobs\n"
	    "  add DEVICE            add a VFIO device (PCI address, mdev UUID, sysfs path)\n"
	    "  attach NAME --fd N [--address ADDRESS]\n"
	    "                        hand the daemon an open VFIO device fd, as NAME\n"
	    "  detach DEVICE         let go of a device\n"
	    "  dirty-bitmap DEVICE   what the source device's DMA dirtied during the\n"
	    "                        last incoming migration (--output FILE: save it)\n"
	    "\n"
	    "VM coordination (the VMM's side):\n"
	    "  switchover JOB_PATH   stop a --switchover manual job's devices; returns\n"
	    "                        once the destination loaded them\n"
	    "  start JOB_PATH        run a --start manual destination job's devices\n"
	    "  abandon JOB_PATH      give an incoming job up (devices reset, source rolls back)\n"
	    "  rollback JOB_PATH     take a source job's devices back after the switchover\n"
	    "  dirty-sync JOB_PATH DEVICE\n"
	    "                        the pages DEVICE dirtied since the last sync\n"
	    "                        (--output FILE: save it)\n"
	    "  expect ID --device NAME...\n"
	    "                        reserve devices for the incoming migration ID;\n"
	    "                        prints the address its source must dial\n"
	    "  cancel-expectation ID drop an expectation\n"
	    "  expectations          list the expectations\n"
	    "\n"
	    "  help COMMAND          the usage, options and an example of COMMAND\n"
	    "\n"
	    "Addresses: tcp:HOST:PORT, tcp:[IPV6]:PORT, unix:/path");
	g_option_context_set_description(context,
					 "Exit status: 0 success, 1 failure, 2 usage error.");
	/* `help CMD` and `CMD --help`: the command's own help, not the global one */
	{
		const gchar *cmd = NULL;
		gboolean want_help = FALSE;

		for (gint i = 1; i < argc; i++) {
			if (g_strcmp0(argv[i], "--help") == 0 || g_strcmp0(argv[i], "-h") == 0)
				want_help = TRUE;
			else if (argv[i][0] != '-' && cmd == NULL &&
				 !migctl_takes_value(argv[i - 1]))
				cmd = argv[i];
		}
		if (g_strcmp0(cmd, "help") == 0) {
			const gchar *topic = NULL;
			for (gint i = 1; i < argc - 1; i++) {
				if (g_strcmp0(argv[i], "help") == 0)
					topic = argv[i + 1];
			}
			if (topic == NULL || g_strcmp0(topic, "help") == 0) {
				g_autofree gchar *text =
				    g_option_context_get_help(context, TRUE, NULL);
				g_print("%s", text);
				return MIGCTL_EXIT_OK;
			}
			if (!migctl_help_print(topic))
				return migctl_usage("unknown command '%s' ('vfio-migctl --help' "
						    "lists them)",
						    topic);
			return MIGCTL_EXIT_OK;
		}
		if (want_help && cmd != NULL) {
			if (!migctl_help_print(cmd))
				return migctl_usage("unknown command '%s' ('vfio-migctl --help' "
						    "lists them)",
						    cmd);
			return MIGCTL_EXIT_OK;
		}
	}
	/* a main group of our own: the callbacks get the options */
	main_group = g_option_group_new(NULL, NULL, NULL, &options, NULL);
	g_option_group_add_entries(main_group, entries);
	g_option_context_set_main_group(context, main_group);
	if (!g_option_context_parse(context, &argc, &argv, &error))
		return migctl_usage("%s", error->message);
	if (options.version) {
		g_print("vfio-migctl %s\n", PACKAGE_VERSION);
		return MIGCTL_EXIT_OK;
	}
	if (options.bus_name == NULL)
		options.bus_name = g_strdup(MIGCTL_BUS_NAME);
	return migctl_run(&options, argc, argv);
}
