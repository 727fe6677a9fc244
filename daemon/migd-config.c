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
#include "migd-job.h"
#include "migd-libvirt-tracker.h"
#include "migd-plugin.h"
#include "migd-vm.h"
#include "migd-wire-limits.h"

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

/* ---- where: the line of a group or key ---- */

guint
migd_daemon_config_find_line(const gchar *text, gsize len, const gchar *group, const gchar *key)
{
	const gchar *p = text;
	const gchar *end = text + len;
	gboolean in_group = FALSE;
	guint line_no = 0;
	guint header = 0;
	guint found = 0;

	g_return_val_if_fail(text != NULL || len == 0, 0);
	g_return_val_if_fail(group != NULL, 0);

	while (p < end) {
		const gchar *nl = memchr(p, '\n', end - p);
		const gchar *stop = nl != NULL ? nl : end;
		g_autofree gchar *line = g_strndup(p, stop - p);

		line_no++;
		p = nl != NULL ? nl + 1 : end;
		g_strstrip(line);
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (line[0] == '[') {
			gsize n = strlen(line);
			/* GKeyFile merges a repeated group: a key may be in any of them */
			in_group = line[n - 1] == ']' && n - 2 == strlen(group) &&
				   strncmp(line + 1, group, n - 2) == 0;
			if (in_group && header == 0)
				header = line_no;
			continue;
		}
		if (in_group && key != NULL) {
			gchar *eq = strchr(line, '=');
			if (eq == NULL)
				continue;
			*eq = '\0';
			g_strchomp(line);
			/* the last one: GKeyFile keeps the last value of a repeated key */
			if (g_strcmp0(line, key) == 0)
				found = line_no;
		}
	}
	return found != 0 ? found : header;
}

void
migd_daemon_config_prefix_error(GError **error, const gchar *file, const gchar *group,
				const gchar *key)
{
	g_autofree gchar *what = NULL;
	g_autofree gchar *head = NULL;
	g_autofree gchar *text = NULL;
	gsize len = 0;
	guint line = 0;

	if (error == NULL || *error == NULL)
		return;
	if (group != NULL) {
		head = g_strdup_printf("[%s]", group);
		/* the message names the group already (a [vm NAME] or [libvirt-domain] check) */
		if (!g_str_has_prefix((*error)->message, head))
			what = key != NULL ? g_strdup_printf("%s %s: ", head, key)
					   : g_strdup_printf("%s: ", head);
	}
	/* bounded as the load was; a file gone or changed since only loses the line */
	if (file != NULL && group != NULL &&
	    migd_file_load_bounded(file, MIGD_FILE_MAX_CONFIG_SIZE, &text, &len, NULL))
		line = migd_daemon_config_find_line(text, len, group, key);
	if (file != NULL && line > 0)
		g_prefix_error(error, "%s:%u: %s", file, line, what != NULL ? what : "");
	else if (file != NULL)
		g_prefix_error(error, "%s: %s", file, what != NULL ? what : "");
	else if (what != NULL)
		g_prefix_error(error, "%s", what);
}

/* ---- the checks; each failure says where through @spot ---- */

typedef struct {
	gchar *group;
	gchar *key; /* NULL: the group as a whole */
} MigdConfigSpot;

static gboolean
migd_config_fail(MigdConfigSpot *spot, const gchar *group, const gchar *key)
{
	g_free(spot->group);
	g_free(spot->key);
	spot->group = g_strdup(group);
	spot->key = g_strdup(key);
	return FALSE;
}

/* every key of @group one of @known; the error names the first other one */
static gboolean
migd_config_check_keys(GKeyFile *config, const gchar *group, const gchar *const *known,
		       MigdConfigSpot *spot, GError **error)
{
	g_auto(GStrv) keys = g_key_file_get_keys(config, group, NULL, NULL);

	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		g_autofree gchar *list = NULL;
		if (g_strv_contains(known, keys[i]))
			continue;
		list = g_strjoinv(", ", (gchar **)known);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "unknown key (known: %s)", list);
		return migd_config_fail(spot, group, keys[i]);
	}
	return TRUE;
}

/*
 * The plugins' helpers say "KEY: why"; the key goes to @spot, so the message keeps the why.
 * Returns FALSE after setting @spot.
 */
static gboolean
migd_config_fail_helper(MigdConfigSpot *spot, const gchar *group, const gchar *key, GError **error)
{
	if (error != NULL && *error != NULL) {
		gsize n = strlen(key);
		const gchar *msg = (*error)->message;
		/* "KEY: why" or "KEY must ...": the key is said once, in the prefix */
		if (strncmp(msg, key, n) == 0 && (msg[n] == ':' || msg[n] == ' ')) {
			g_autofree gchar *rest = g_strdup(msg + n + strspn(msg + n, ": "));
			g_free((*error)->message);
			(*error)->message = g_steal_pointer(&rest);
		}
	}
	return migd_config_fail(spot, group, key);
}

/* "device NAME": @prefix followed by a name */
static gboolean
migd_daemon_config_is_named(const gchar *group, const gchar *prefix)
{
	return g_str_has_prefix(group, prefix) && group[strlen(prefix)] != '\0';
}

static gboolean
migd_daemon_config_check_group_name(const gchar *group, MigdConfigSpot *spot, GError **error)
{
	const gchar *const plain[] = {"daemon", "listen", "libvirt", NULL};
	const gchar *const named[] = {"device ", "plugin ", "libvirt-domain ", "vm ", NULL};

	if (g_strv_contains(plain, group))
		return TRUE;
	for (guint i = 0; named[i] != NULL; i++) {
		if (migd_daemon_config_is_named(group, named[i]))
			return TRUE;
	}
	g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "unknown group (known: " MIGD_DAEMON_CONFIG_GROUPS
			    "; group names are lower case)");
	return migd_config_fail(spot, group, NULL);
}

/* [device NAME] iova-ranges=LIST: syntax, alignment, overlaps; whether NAME exists elsewhere */
static gboolean
migd_daemon_config_check_device(GKeyFile *config, const gchar *group, MigdConfigSpot *spot,
				GError **error)
{
	const gchar *const known[] = {"iova-ranges", "address", "sim-spec", NULL};
	const gchar *const opens[] = {"address", "sim-spec", NULL};
	g_autofree gchar *value = NULL;
	g_autoptr(GArray) ranges = NULL;

	if (!migd_config_check_keys(config, group, known, spot, error))
		return FALSE;
	/* address= or sim-spec=: the daemon opens the device itself, by one of them */
	for (guint i = 0; opens[i] != NULL; i++) {
		g_autofree gchar *open = NULL;
		if (!g_key_file_has_key(config, group, opens[i], NULL))
			continue;
		open = migd_plugin_config_get_string(config, group, opens[i], error);
		if (open == NULL)
			return migd_config_fail_helper(spot, group, opens[i], error);
		if (open[0] == '\0') {
			g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "must not be empty");
			return migd_config_fail(spot, group, opens[i]);
		}
	}
	if (g_key_file_has_key(config, group, "address", NULL) &&
	    g_key_file_has_key(config, group, "sim-spec", NULL)) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "address= and sim-spec= exclude each other");
		return migd_config_fail(spot, group, "sim-spec");
	}
	if (!g_key_file_has_key(config, group, "iova-ranges", NULL))
		return TRUE;
	/* not g_key_file_get_string(): on a bad escape it returns a value and an error both */
	value = migd_plugin_config_get_string(config, group, "iova-ranges", error);
	if (value == NULL)
		return migd_config_fail_helper(spot, group, "iova-ranges", error);
	ranges = migd_dirty_ranges_parse(value, error);
	if (ranges == NULL)
		return migd_config_fail(spot, group, "iova-ranges");
	return TRUE;
}

/* [daemon]: the daemon's own settings */
static gboolean
migd_daemon_config_check_daemon(GKeyFile *config, MigdConfigSpot *spot, GError **error)
{
	const gchar *const known[] = {"low-power-idle", "max-inflight", NULL};
	gboolean low_power_idle = FALSE;
	guint64 max_inflight = MIGD_STREAM_BUDGET_DEFAULT;

	if (!migd_config_check_keys(config, "daemon", known, spot, error))
		return FALSE;
	if (!migd_plugin_config_get_boolean(config, "daemon", "low-power-idle", &low_power_idle,
					    error))
		return migd_config_fail_helper(spot, "daemon", "low-power-idle", error);
	if (!migd_plugin_config_get_size(config, "daemon", "max-inflight", MIGD_STREAM_BUDGET_MIN,
					 MIGD_STREAM_BUDGET_MAX, &max_inflight, error))
		return migd_config_fail_helper(spot, "daemon", "max-inflight", error);
	return TRUE;
}

/* [listen]: keys and values; the TLS files themselves are checked by the daemon at start */
static gboolean
migd_daemon_config_check_listen(GKeyFile *config, MigdConfigSpot *spot, GError **error)
{
	const gchar *const known[] = {"cert",
				      "key",
				      "ca",
				      "plain",
				      "insecure-plain-tcp",
				      "allowed-uids",
				      "hello-timeout-ms",
				      "frame-timeout-ms",
				      "max-pending-peers",
				      "max-partial-frame-bytes",
				      "start",
				      NULL};
	const gchar *const strings[] = {"cert", "key", "ca", "start", NULL};
	const gchar *const bools[] = {"plain", "insecure-plain-tcp", NULL};
	const gchar *const counts[] = {"hello-timeout-ms", "frame-timeout-ms", "max-pending-peers",
				       NULL};
	guint64 budget = 0;

	if (!g_key_file_has_group(config, "listen"))
		return TRUE;
	if (!migd_config_check_keys(config, "listen", known, spot, error))
		return FALSE;
	for (guint i = 0; strings[i] != NULL; i++) {
		g_autofree gchar *value = NULL;
		MigdStartMode start = MIGD_START_AUTO;

		if (!g_key_file_has_key(config, "listen", strings[i], NULL))
			continue;
		value = migd_plugin_config_get_string(config, "listen", strings[i], error);
		if (value == NULL)
			return migd_config_fail_helper(spot, "listen", strings[i], error);
		if (value[0] == '\0') {
			g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "must not be empty");
			return migd_config_fail(spot, "listen", strings[i]);
		}
		if (g_str_equal(strings[i], "start") &&
		    !migd_start_mode_from_string(value, &start, error))
			return migd_config_fail_helper(spot, "listen", "start", error);
	}
	for (guint i = 0; bools[i] != NULL; i++) {
		gboolean b = FALSE;
		if (!migd_plugin_config_get_boolean(config, "listen", bools[i], &b, error))
			return migd_config_fail_helper(spot, "listen", bools[i], error);
	}
	for (guint i = 0; counts[i] != NULL; i++) {
		guint64 v = 1;
		if (!migd_plugin_config_get_uint(config, "listen", counts[i], 1, G_MAXUINT32, &v,
						 error))
			return migd_config_fail_helper(spot, "listen", counts[i], error);
	}
	if (!migd_plugin_config_get_size(config, "listen", "max-partial-frame-bytes",
					 MIGD_WIRE_MAX_FRAME_SIZE, G_MAXSIZE, &budget, error))
		return migd_config_fail_helper(spot, "listen", "max-partial-frame-bytes", error);
	if (g_key_file_has_key(config, "listen", "allowed-uids", NULL)) {
		g_auto(GStrv) uids = NULL;
		if (!migd_plugin_config_check_escape(config, "listen", "allowed-uids", error))
			return migd_config_fail_helper(spot, "listen", "allowed-uids", error);
		uids = g_key_file_get_string_list(config, "listen", "allowed-uids", NULL, error);
		if (uids == NULL)
			return migd_config_fail(spot, "listen", "allowed-uids");
		for (guint i = 0; uids[i] != NULL; i++) {
			guint64 uid = 0;
			if (!g_ascii_string_to_unsigned(g_strstrip(uids[i]), 10, 0, G_MAXUINT32 - 1,
							&uid, NULL)) {
				g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
					    "'%s' is not a uid", uids[i]);
				return migd_config_fail(spot, "listen", "allowed-uids");
			}
		}
	}
	return TRUE;
}

/* the key of @group that @message names right after "[GROUP]" (longest first), or NULL */
static const gchar *
migd_config_named_key(GKeyFile *config, const gchar *group, const gchar *message, GStrv *keys)
{
	g_autofree gchar *head = g_strdup_printf("[%s]", group);
	const gchar *rest = strstr(message, head);
	const gchar *key = NULL;

	rest = rest != NULL ? rest + strlen(head) : message;
	rest += strspn(rest, ": ");
	*keys = g_key_file_get_keys(config, group, NULL, NULL);
	for (guint i = 0; *keys != NULL && (*keys)[i] != NULL; i++) {
		gsize n = strlen((*keys)[i]);
		if (strncmp(rest, (*keys)[i], n) == 0 && strchr(":= ", rest[n]) != NULL &&
		    (key == NULL || n > strlen(key)))
			key = (*keys)[i];
	}
	return key;
}

/* @error names its group (these checks prefix it); the key is the one of @group it names */
static gboolean
migd_config_fail_named(GKeyFile *config, const gchar *group, MigdConfigSpot *spot, GError **error)
{
	g_auto(GStrv) keys = NULL;
	const gchar *msg = error != NULL && *error != NULL ? (*error)->message : "";

	return migd_config_fail(spot, group, migd_config_named_key(config, group, msg, &keys));
}

void
migd_daemon_config_locate_error(GError **error, GKeyFile *config, const gchar *file)
{
	g_auto(GStrv) groups = NULL;
	g_auto(GStrv) keys = NULL;
	const gchar *group = NULL;

	if (error == NULL || *error == NULL || config == NULL)
		return;
	groups = g_key_file_get_groups(config, NULL);
	/* the longest: "[libvirt-domain vm1]" rather than a "[vm1]" inside it */
	for (guint i = 0; groups[i] != NULL; i++) {
		g_autofree gchar *head = g_strdup_printf("[%s]", groups[i]);
		if (strstr((*error)->message, head) != NULL &&
		    (group == NULL || strlen(groups[i]) > strlen(group)))
			group = groups[i];
	}
	if (group == NULL) {
		g_prefix_error(error, "%s: ", file);
		return;
	}
	{
		g_autofree gchar *text = NULL;
		const gchar *key = migd_config_named_key(config, group, (*error)->message, &keys);
		gsize len = 0;
		guint line = 0;

		if (migd_file_load_bounded(file, MIGD_FILE_MAX_CONFIG_SIZE, &text, &len, NULL))
			line = migd_daemon_config_find_line(text, len, group, key);
		if (line > 0)
			g_prefix_error(error, "%s:%u: ", file, line);
		else
			g_prefix_error(error, "%s: ", file);
	}
}

static gboolean
migd_daemon_config_check_at(GKeyFile *config, MigdConfigSpot *spot, GError **error)
{
	g_auto(GStrv) groups = NULL;
	g_autoptr(GPtrArray) maps = NULL;

	groups = g_key_file_get_groups(config, NULL);
	for (guint i = 0; groups[i] != NULL; i++) {
		if (!migd_daemon_config_check_group_name(groups[i], spot, error))
			return FALSE;
		if (g_str_has_prefix(groups[i], "device ") &&
		    !migd_daemon_config_check_device(config, groups[i], spot, error))
			return FALSE;
		/* [vm NAME]: everything but whether its devices exist (migd_vm_new) */
		if (g_str_has_prefix(groups[i], "vm ")) {
			g_autoptr(MigdVmConfig) vm =
			    migd_vm_config_from_key_file(config, groups[i], error);
			if (vm == NULL)
				return migd_config_fail_named(config, groups[i], spot, error);
		}
	}
	if (!migd_daemon_config_check_daemon(config, spot, error) ||
	    !migd_daemon_config_check_listen(config, spot, error))
		return FALSE;
	maps = migd_libvirt_domain_maps_from_key_file(config, error);
	if (maps == NULL) {
		/* the message names the [libvirt-domain NAME] it is about */
		for (guint i = 0; groups[i] != NULL; i++) {
			g_autofree gchar *head = g_strdup_printf("[%s]", groups[i]);
			if (error != NULL && *error != NULL &&
			    g_str_has_prefix(groups[i], "libvirt-domain ") &&
			    strstr((*error)->message, head) != NULL)
				return migd_config_fail_named(config, groups[i], spot, error);
		}
		return migd_config_fail(spot, NULL, NULL);
	}
	return TRUE;
}

gboolean
migd_daemon_config_check_file(GKeyFile *config, const gchar *file, GError **error)
{
	MigdConfigSpot spot = {0};
	g_autoptr(GError) error_local = NULL;

	g_return_val_if_fail(config != NULL, FALSE);

	if (migd_daemon_config_check_at(config, &spot, &error_local))
		return TRUE;
	migd_daemon_config_prefix_error(&error_local, file, spot.group, spot.key);
	g_propagate_error(error, g_steal_pointer(&error_local));
	g_free(spot.group);
	g_free(spot.key);
	return FALSE;
}

gboolean
migd_daemon_config_check(GKeyFile *config, GError **error)
{
	return migd_daemon_config_check_file(config, NULL, error);
}
