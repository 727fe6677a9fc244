/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdPlugin: the base every driver plugin derives from. Each vfunc has a
 * default that follows the uAPI alone, so a plugin overrides only the rules of
 * its driver.
 */
#include "config.h"

#include <string.h>

#include "migd-plugin.h"

#include <errno.h>

#include "migd-error.h"
#include "migd-plugin-generic.h"
#include "migd-stream-stats.h"
#include "migd-wire-limits.h"

typedef struct {
	gchar *name;
} MigdPluginPrivate;

G_DEFINE_TYPE_WITH_PRIVATE(MigdPlugin, migd_plugin, G_TYPE_OBJECT)

#define GET_PRIVATE(o) (migd_plugin_get_instance_private(o))

enum { PROP_0, PROP_NAME, PROP_LAST };

const gchar *
migd_dirty_tracker_kind_to_string(MigdDirtyTrackerKind tracker)
{
	switch (tracker) {
	case MIGD_DIRTY_TRACKER_DEVICE:
		return "device";
	case MIGD_DIRTY_TRACKER_IOMMU:
		return "iommu";
	case MIGD_DIRTY_TRACKER_NONE:
	default:
		return "none";
	}
}

const gchar *
migd_tracker_error_action_to_string(MigdTrackerErrorAction action)
{
	return action == MIGD_TRACKER_ERROR_RESTART ? "restart" : "all-dirty";
}

void
migd_plugin_policy_init(MigdPluginPolicy *policy)
{
	*policy = (MigdPluginPolicy){
	    .read_size = MIGD_STREAM_DEFAULT_CHUNK_SIZE,
	    .tracker = MIGD_DIRTY_TRACKER_NONE,
	    .on_tracker_error = MIGD_TRACKER_ERROR_ALL_DIRTY,
	};
}

const gchar *
migd_plugin_get_name(MigdPlugin *self)
{
	MigdPluginPrivate *priv = GET_PRIVATE(self);
	g_return_val_if_fail(MIGD_IS_PLUGIN(self), NULL);
	return priv->name;
}

MigdPlugin *
migd_plugin_dup_for_device(MigdDevice *device)
{
	MigdPlugin *plugin = migd_device_get_plugin(device);
	return plugin != NULL ? g_object_ref(plugin) : migd_plugin_generic_new();
}

guint
migd_plugin_match(MigdPlugin *self, MigdDevice *device, const MigdDeviceIdentity *identity)
{
	MigdPluginClass *klass = MIGD_PLUGIN_GET_CLASS(self);
	return klass->match != NULL ? klass->match(self, device, identity) : MIGD_PLUGIN_SCORE_NONE;
}

gboolean
migd_plugin_configure(MigdPlugin *self, GKeyFile *config, GError **error)
{
	MigdPluginClass *klass = MIGD_PLUGIN_GET_CLASS(self);
	g_autofree gchar *group = g_strdup_printf("plugin %s", migd_plugin_get_name(self));

	if (klass->configure != NULL) {
		if (!klass->configure(self, config, group, error)) {
			g_prefix_error(error, "[%s]: ", group);
			return FALSE;
		}
		return TRUE;
	}
	/* a plugin without tunables: any key in its group is a typo */
	if (!migd_plugin_config_check_keys(config, group, NULL, error)) {
		g_prefix_error(error, "[%s]: ", group);
		return FALSE;
	}
	return TRUE;
}

/*
 * The generic choice: the device's own DMA logging when it answers the probe,
 * else the IOMMU's.
 */
void
migd_plugin_get_policy(MigdPlugin *self, MigdDevice *device, MigdPluginPolicy *policy)
{
	MigdPluginClass *klass = MIGD_PLUGIN_GET_CLASS(self);
	const MigdDeviceFeatures *features = migd_device_get_features(device);

	migd_plugin_policy_init(policy);
	if (features != NULL && features->dma_logging)
		policy->tracker = MIGD_DIRTY_TRACKER_DEVICE;
	else
		policy->tracker = MIGD_DIRTY_TRACKER_IOMMU;
	if (klass->get_policy != NULL)
		klass->get_policy(self, device, policy);
	/* whatever a plugin asks, reads stay within what a chunk on the wire can carry */
	policy->read_size =
	    CLAMP(policy->read_size, MIGD_STREAM_MIN_CHUNK_SIZE, MIGD_STREAM_MAX_CHUNK_SIZE);
	policy->initial_check_bytes = MIN(policy->initial_check_bytes, policy->read_size);
}

GVariant *
migd_plugin_describe(MigdPlugin *self, MigdDevice *device, GError **error)
{
	MigdPluginClass *klass = MIGD_PLUGIN_GET_CLASS(self);
	g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);

	if (klass->describe != NULL && !klass->describe(self, device, &dict, error)) {
		g_prefix_error(error, "%s: plugin %s: ", migd_device_get_name(device),
			       migd_plugin_get_name(self));
		return NULL;
	}
	/* the core's own key: which plugin wrote the rest */
	g_variant_dict_insert(&dict, "plugin", "s", migd_plugin_get_name(self));
	return g_variant_ref_sink(g_variant_dict_end(&dict));
}

gboolean
migd_plugin_check_peer(MigdPlugin *self, MigdDevice *device, const MigdPeerDescriptor *peer,
		       GError **error)
{
	MigdPluginClass *klass = MIGD_PLUGIN_GET_CLASS(self);

	if (peer->plugin != NULL && g_strcmp0(peer->plugin, migd_plugin_get_name(self)) != 0) {
		/* not fatal: the driver still validates, but the rules of one side are missing */
		g_warning("%s: the source handled this device with plugin %s, this host with %s",
			  migd_device_get_name(device), peer->plugin, migd_plugin_get_name(self));
	}
	if (klass->check_peer != NULL && !klass->check_peer(self, device, peer, error)) {
		g_prefix_error(error, "%s: plugin %s: ", migd_device_get_name(device),
			       migd_plugin_get_name(self));
		return FALSE;
	}
	return TRUE;
}

gboolean
migd_plugin_check_initial_data(MigdPlugin *self, MigdDevice *device, const guint8 *data, gsize len,
			       GError **error)
{
	MigdPluginClass *klass = MIGD_PLUGIN_GET_CLASS(self);

	if (klass->check_initial_data != NULL &&
	    !klass->check_initial_data(self, device, data, len, error)) {
		g_prefix_error(error, "%s: plugin %s: ", migd_device_get_name(device),
			       migd_plugin_get_name(self));
		return FALSE;
	}
	return TRUE;
}

gchar *
migd_plugin_explain_load_error(MigdPlugin *self, MigdDevice *device, const GError *error)
{
	MigdPluginClass *klass = MIGD_PLUGIN_GET_CLASS(self);
	return klass->explain_load_error != NULL ? klass->explain_load_error(self, device, error)
						 : NULL;
}

/* the default: the tracker keeps running as it is; the caller marks every page dirty */
gboolean
migd_plugin_recover_tracker(MigdPlugin *self, MigdDevice *device, const MigdIovaRange *ranges,
			    guint n_ranges, guint64 *page_size, GError **error)
{
	MigdPluginClass *klass = MIGD_PLUGIN_GET_CLASS(self);

	if (klass->recover_tracker == NULL)
		return TRUE;
	if (!klass->recover_tracker(self, device, ranges, n_ranges, page_size, error)) {
		g_prefix_error(error, "%s: plugin %s: restarting the dirty tracker: ",
			       migd_device_get_name(device), migd_plugin_get_name(self));
		return FALSE;
	}
	return TRUE;
}

/* ---- helpers for plugins ---- */

gboolean
migd_plugin_config_check_keys(GKeyFile *config, const gchar *group, const gchar *const *known,
			      GError **error)
{
	g_auto(GStrv) keys = NULL;

	if (config == NULL || !g_key_file_has_group(config, group))
		return TRUE;
	keys = g_key_file_get_keys(config, group, NULL, NULL);
	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		if (known == NULL || !g_strv_contains(known, keys[i])) {
			g_autofree gchar *list =
			    known != NULL ? g_strjoinv(", ", (gchar **)known) : NULL;
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "unknown key '%s' (known: %s)", keys[i],
				    list != NULL && list[0] != '\0' ? list : "none");
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
migd_plugin_config_check_escape(GKeyFile *config, const gchar *group, const gchar *key,
				GError **error)
{
	g_autofree gchar *raw = g_key_file_get_value(config, group, key, NULL);
	gsize len = raw != NULL ? strlen(raw) : 0;
	gsize n_backslashes = 0;

	while (n_backslashes < len && raw[len - 1 - n_backslashes] == '\\')
		n_backslashes++;
	if (n_backslashes % 2 == 1) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s: an escape character ends the value", key);
		return FALSE;
	}
	return TRUE;
}

gchar *
migd_plugin_config_get_string(GKeyFile *config, const gchar *group, const gchar *key,
			      GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *value = NULL;

	if (!migd_plugin_config_check_escape(config, group, key, error))
		return NULL;
	value = g_key_file_get_string(config, group, key, &error_local);
	/* an error with a value is GLib's answer to a bad escape: the value is not what was meant
	 */
	if (error_local != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "%s: %s", key,
			    error_local->message);
		return NULL;
	}
	return g_steal_pointer(&value);
}

/* the value of @key, stripped; FALSE with *@raw NULL when absent */
static gboolean
migd_plugin_config_get_raw(GKeyFile *config, const gchar *group, const gchar *key, gchar **raw,
			   GError **error)
{
	*raw = NULL;
	if (config == NULL || !g_key_file_has_key(config, group, key, NULL))
		return TRUE;
	*raw = migd_plugin_config_get_string(config, group, key, error);
	if (*raw == NULL)
		return FALSE;
	g_strstrip(*raw);
	return TRUE;
}

/*
 * a size: digits with an optional K, M, G or T suffix (powers of 1024, either case), within
 * [@min, @max]
 */
gboolean
migd_plugin_config_get_size(GKeyFile *config, const gchar *group, const gchar *key, guint64 min,
			    guint64 max, guint64 *value, GError **error)
{
	g_autofree gchar *raw = NULL;
	gchar *end = NULL;
	guint64 v = 0;
	guint shift = 0;

	if (!migd_plugin_config_get_raw(config, group, key, &raw, error))
		return FALSE;
	if (raw == NULL)
		return TRUE;
	errno = 0;
	if (!g_ascii_isdigit(raw[0]))
		end = raw;
	else
		v = g_ascii_strtoull(raw, &end, 10);
	if (errno != 0)
		end = raw;
	if (end != raw && end[0] != '\0' && end[1] == '\0') {
		switch (g_ascii_toupper(end[0])) {
		case 'K':
			shift = 10;
			break;
		case 'M':
			shift = 20;
			break;
		case 'G':
			shift = 30;
			break;
		case 'T':
			shift = 40;
			break;
		default:
			break;
		}
		if (shift != 0)
			end++;
	}
	if (end == raw || end[0] != '\0' || (shift != 0 && v > (G_MAXUINT64 >> shift))) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s=%s: not a size (expected digits with an optional K, M, G or T, "
			    "from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT " bytes)",
			    key, raw, min, max);
		return FALSE;
	}
	v <<= shift;
	if (v < min || v > max) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s=%s: out of range [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "]",
			    key, raw, min, max);
		return FALSE;
	}
	*value = v;
	return TRUE;
}

/* a count: decimal digits, no sign, no suffix, within [@min, @max] */
gboolean
migd_plugin_config_get_uint(GKeyFile *config, const gchar *group, const gchar *key, guint64 min,
			    guint64 max, guint64 *value, GError **error)
{
	g_autofree gchar *raw = NULL;
	guint64 v = 0;

	if (!migd_plugin_config_get_raw(config, group, key, &raw, error))
		return FALSE;
	if (raw == NULL)
		return TRUE;
	if (!g_ascii_string_to_unsigned(raw, 10, min, max, &v, NULL)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s=%s: expected a whole number from %" G_GUINT64_FORMAT
			    " to %" G_GUINT64_FORMAT,
			    key, raw, min, max);
		return FALSE;
	}
	*value = v;
	return TRUE;
}

gboolean
migd_plugin_config_get_boolean(GKeyFile *config, const gchar *group, const gchar *key,
			       gboolean *value, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	gboolean v;

	if (config == NULL || !g_key_file_has_key(config, group, key, NULL))
		return TRUE;
	v = g_key_file_get_boolean(config, group, key, &error_local);
	if (error_local != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "%s: %s", key,
			    error_local->message);
		return FALSE;
	}
	*value = v;
	return TRUE;
}

gchar *
migd_plugin_read_sysfs(MigdDevice *device, const gchar *relpath)
{
	const gchar *dir = migd_device_get_sysfs_path(device);
	g_autofree gchar *path = NULL;
	gchar *contents = NULL;

	if (dir == NULL)
		return NULL;
	path = g_build_filename(dir, relpath, NULL);
	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return NULL;
	return g_strstrip(contents);
}

GBytes *
migd_plugin_data_encode(GVariant *data, GError **error)
{
	g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes(data);

	if (g_bytes_get_size(bytes) > MIGD_WIRE_MAX_PLUGIN_DATA) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "plugin data of %zu bytes exceeds %u", g_bytes_get_size(bytes),
			    MIGD_WIRE_MAX_PLUGIN_DATA);
		return NULL;
	}
	return g_steal_pointer(&bytes);
}

/* from a peer: bounded, an a{sv} in normal form, with a "plugin" string */
GVariant *
migd_plugin_data_decode(const guint8 *buf, gsize len, GError **error)
{
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GVariant) data = NULL;
	const gchar *plugin = NULL;

	if (len > MIGD_WIRE_MAX_PLUGIN_DATA) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "plugin data of %zu bytes exceeds %u", len, MIGD_WIRE_MAX_PLUGIN_DATA);
		return NULL;
	}
	/* a copy that the variant owns (it outlives the frame @buf points into) */
	bytes = g_bytes_new(buf, len);
	data = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, bytes, FALSE));
	if (!g_variant_is_normal_form(data)) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "plugin data is not a serialized a{sv} in normal form");
		return NULL;
	}
	if (!g_variant_lookup(data, "plugin", "&s", &plugin) || plugin[0] == '\0') {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "plugin data without a plugin name");
		return NULL;
	}
	return g_steal_pointer(&data);
}

/* ---- GObject ---- */

static void
migd_plugin_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	MigdPluginPrivate *priv = GET_PRIVATE(MIGD_PLUGIN(object));
	if (prop_id == PROP_NAME)
		g_value_set_string(value, priv->name);
	else
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
}

static void
migd_plugin_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
	MigdPluginPrivate *priv = GET_PRIVATE(MIGD_PLUGIN(object));
	if (prop_id == PROP_NAME) {
		g_free(priv->name);
		priv->name = g_value_dup_string(value);
	} else {
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
migd_plugin_finalize(GObject *object)
{
	MigdPluginPrivate *priv = GET_PRIVATE(MIGD_PLUGIN(object));
	g_free(priv->name);
	G_OBJECT_CLASS(migd_plugin_parent_class)->finalize(object);
}

static void
migd_plugin_init(MigdPlugin *self)
{
}

static void
migd_plugin_class_init(MigdPluginClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->get_property = migd_plugin_get_property;
	object_class->set_property = migd_plugin_set_property;
	object_class->finalize = migd_plugin_finalize;
	g_object_class_install_property(object_class, PROP_NAME,
					g_param_spec_string("name", NULL, NULL, "unnamed",
							    G_PARAM_READWRITE |
								G_PARAM_CONSTRUCT_ONLY |
								G_PARAM_STATIC_STRINGS));
}
