/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Parsing of the simulator's knobs. Bad input names the key and what is allowed,
 * because these strings come from test authors and config files.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "migd-error.h"
#include "migd-fsm.h"
#include "migd-plugin.h"
#include "migd-sim-config.h"

/* hisi_acc defaults: a ZIP VF (19e5:a251) with 8 queue pairs */
#define MIGD_SIM_HISI_DEFAULT_DEV_ID	  0xa251
#define MIGD_SIM_HISI_DEFAULT_QP_NUM	  8
#define MIGD_SIM_HISI_DEFAULT_QUE_ISO_CFG 0

typedef struct {
	const gchar *key;
	MigdSimKnob knob;
} MigdSimConfigKey;

static const MigdSimConfigKey migd_sim_config_keys[] = {
    {"state_size", MIGD_SIM_KNOB_STATE_SIZE},
    {"seed", MIGD_SIM_KNOB_SEED},
    {"save_rate", MIGD_SIM_KNOB_SAVE_RATE},
    {"load_rate", MIGD_SIM_KNOB_LOAD_RATE},
    {"dirty_rate", MIGD_SIM_KNOB_DIRTY_RATE},
    {"dma_pattern", MIGD_SIM_KNOB_DMA_PATTERN},
    {"dma_rate", MIGD_SIM_KNOB_DMA_RATE},
    {"ports", MIGD_SIM_KNOB_PORTS},
    {"fail_arc", MIGD_SIM_KNOB_FAIL},
    {"fail_errno", MIGD_SIM_KNOB_FAIL},
    {"fail_to_error", MIGD_SIM_KNOB_FAIL},
    {"fail_count", MIGD_SIM_KNOB_FAIL},
    {"report_eio", MIGD_SIM_KNOB_REPORT_EIO},
    {"short_reads", MIGD_SIM_KNOB_SHORT_READS},
    {"fast_data", MIGD_SIM_KNOB_FAST_DATA},
    {"dev_id", MIGD_SIM_KNOB_HISI_MATCH},
    {"qp_num", MIGD_SIM_KNOB_HISI_MATCH},
    {"que_iso_cfg", MIGD_SIM_KNOB_HISI_MATCH},
    {"iommufd_driver", MIGD_SIM_KNOB_IOMMUFD_DRIVER},
    {"sysfs", MIGD_SIM_KNOB_SYSFS},
    {"persist", MIGD_SIM_KNOB_SYSFS},
    {"iommu_dirty", MIGD_SIM_KNOB_IOMMU_DIRTY},
};

static const struct {
	const gchar *name;
	gint value;
} migd_sim_errno_names[] = {
    {"EPERM", EPERM},	      {"EIO", EIO},
    {"EAGAIN", EAGAIN},	      {"ENOMEM", ENOMEM},
    {"EFAULT", EFAULT},	      {"EBUSY", EBUSY},
    {"ENODEV", ENODEV},	      {"EINVAL", EINVAL},
    {"ENOSPC", ENOSPC},	      {"E2BIG", E2BIG},
    {"ENOTTY", ENOTTY},	      {"ETIMEDOUT", ETIMEDOUT},
    {"ENOTCONN", ENOTCONN},   {"EOPNOTSUPP", EOPNOTSUPP},
    {"EREMOTEIO", EREMOTEIO},
};

static gchar *
migd_sim_config_allowed_keys(const MigdSimProfileInfo *profile)
{
	g_autoptr(GString) str = g_string_new(NULL);

	for (guint i = 0; i < G_N_ELEMENTS(migd_sim_config_keys); i++) {
		if ((profile->knobs & migd_sim_config_keys[i].knob) == 0)
			continue;
		if (str->len > 0)
			g_string_append(str, ", ");
		g_string_append(str, migd_sim_config_keys[i].key);
	}
	return g_string_free(g_steal_pointer(&str), FALSE);
}

MigdSimConfig *
migd_sim_config_new(const gchar *profile_name, GError **error)
{
	const MigdSimProfileInfo *profile = migd_sim_profile_lookup(profile_name);
	MigdSimConfig *self;

	if (profile == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "unknown simulator profile '%s' (allowed: %s)",
			    profile_name != NULL ? profile_name : "", migd_sim_profile_list());
		return NULL;
	}
	self = g_new0(MigdSimConfig, 1);
	self->profile = profile;
	self->state_size = profile->default_state_size;
	self->seed = 1;
	self->ports = 2;
	self->fail_errno = EIO;
	self->iommu_dirty = TRUE;
	self->hisi_dev_id = MIGD_SIM_HISI_DEFAULT_DEV_ID;
	self->hisi_qp_num = MIGD_SIM_HISI_DEFAULT_QP_NUM;
	self->hisi_que_iso_cfg = MIGD_SIM_HISI_DEFAULT_QUE_ISO_CFG;
	return self;
}

MigdSimConfig *
migd_sim_config_copy(const MigdSimConfig *self)
{
	MigdSimConfig *copy;

	g_return_val_if_fail(self != NULL, NULL);
	copy = g_memdup2(self, sizeof(*self));
	copy->sysfs = g_strdup(self->sysfs);
	copy->persist = g_strdup(self->persist);
	return copy;
}

void
migd_sim_config_free(MigdSimConfig *self)
{
	if (self == NULL)
		return;
	g_free(self->sysfs);
	g_free(self->persist);
	g_free(self);
}

gboolean
migd_sim_parse_size(const gchar *str, guint64 *value, GError **error)
{
	gchar *end = NULL;
	guint64 v;
	guint shift = 0;

	if (str == NULL || !g_ascii_isdigit(str[0])) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "'%s' is not a number (use digits with an optional K, M, G or T "
			    "suffix)",
			    str != NULL ? str : "");
		return FALSE;
	}
	errno = 0;
	v = g_ascii_strtoull(str, &end, 10);
	if (errno != 0)
		end = NULL;
	if (end != NULL) {
		switch (g_ascii_toupper(*end)) {
		case 'K':
			shift = 10;
			end++;
			break;
		case 'M':
			shift = 20;
			end++;
			break;
		case 'G':
			shift = 30;
			end++;
			break;
		case 'T':
			shift = 40;
			end++;
			break;
		default:
			break;
		}
	}
	if (end == NULL || *end != '\0' || (shift > 0 && v > (G_MAXUINT64 >> shift))) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "'%s' is not a valid size (use digits with an optional K, M, G or T "
			    "suffix, at most 2^64-1)",
			    str);
		return FALSE;
	}
	*value = v << shift;
	return TRUE;
}

gboolean
migd_sim_parse_errno(const gchar *str, gint *errnum, GError **error)
{
	guint64 v = 0;

	for (guint i = 0; i < G_N_ELEMENTS(migd_sim_errno_names); i++) {
		if (g_ascii_strcasecmp(str, migd_sim_errno_names[i].name) == 0) {
			*errnum = migd_sim_errno_names[i].value;
			return TRUE;
		}
	}
	if (g_ascii_string_to_unsigned(str, 10, 1, 4095, &v, NULL)) {
		*errnum = (gint)v;
		return TRUE;
	}
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
		    "'%s' is not an errno (use a number 1..4095 or one of EPERM, EIO, EAGAIN, "
		    "ENOMEM, EFAULT, EBUSY, ENODEV, EINVAL, ENOSPC, E2BIG, ENOTTY, ETIMEDOUT, "
		    "ENOTCONN, EOPNOTSUPP, EREMOTEIO)",
		    str);
	return FALSE;
}

static gboolean
migd_sim_config_parse_bool(const gchar *str, gboolean *value, GError **error)
{
	if (g_strcmp0(str, "1") == 0 || g_ascii_strcasecmp(str, "true") == 0) {
		*value = TRUE;
		return TRUE;
	}
	if (g_strcmp0(str, "0") == 0 || g_ascii_strcasecmp(str, "false") == 0) {
		*value = FALSE;
		return TRUE;
	}
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
		    "'%s' is not a boolean (allowed: 0, 1, true, false)", str);
	return FALSE;
}

/* "STOP->STOP_COPY": must be one real arc of the profile's FSM */
static gboolean
migd_sim_config_parse_arc(MigdSimConfig *self, const gchar *str, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(str, "->", -1);
	MigdState from = MIGD_STATE_ERROR;
	MigdState to = MIGD_STATE_ERROR;
	MigdState next = MIGD_STATE_ERROR;
	g_autofree gchar *flags = migd_mig_flags_to_string(self->profile->mig_flags);

	if (g_strv_length(parts) != 2 || !migd_state_from_string(parts[0], &from, NULL) ||
	    !migd_state_from_string(parts[1], &to, NULL)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "'%s' is not an arc (use FROM->TO with state names such as "
			    "STOP->STOP_COPY)",
			    str);
		return FALSE;
	}
	if (from == to || !migd_fsm_next_step(self->profile->mig_flags, from, to, &next, NULL) ||
	    next != to) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "%s -> %s is not a real arc of a %s device (flags %s)",
			    migd_state_to_string(from), migd_state_to_string(to),
			    self->profile->name, flags);
		return FALSE;
	}
	self->fail_arc_set = TRUE;
	self->fail_from = from;
	self->fail_to = to;
	return TRUE;
}

/* decimal, or hexadecimal with 0x */
static gboolean
migd_sim_config_parse_uint(const gchar *str, guint64 max, guint64 *value, GError **error)
{
	gboolean hex = g_str_has_prefix(str, "0x") || g_str_has_prefix(str, "0X");

	if (!g_ascii_string_to_unsigned(hex ? str + 2 : str, hex ? 16 : 10, 0, max, value, NULL)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "'%s' is not an unsigned number up to %" G_GUINT64_FORMAT
			    " (decimal or 0x hexadecimal)",
			    str, max);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migd_sim_config_parse_u32(const gchar *str, guint32 *value, GError **error)
{
	guint64 v = 0;
	if (!migd_sim_config_parse_uint(str, G_MAXUINT32, &v, error))
		return FALSE;
	*value = (guint32)v;
	return TRUE;
}

static gboolean
migd_sim_config_set_value(MigdSimConfig *self, const gchar *key, const gchar *value, GError **error)
{
	if (g_strcmp0(key, "state_size") == 0) {
		guint64 v = 0;
		if (!migd_sim_parse_size(value, &v, error))
			return FALSE;
		/*
		 * the paged model needs at least one page; 16 GiB (a large device) keeps its
		 * bookkeeping at 64 MiB and a digest of the whole state within a minute
		 */
		if (v < 4096 || v > MIGD_SIM_MAX_STATE_SIZE) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "%s is out of range (allowed: 4K..16G)", value);
			return FALSE;
		}
		self->state_size = v;
		return TRUE;
	}
	if (g_strcmp0(key, "seed") == 0)
		return migd_sim_config_parse_uint(value, G_MAXUINT64, &self->seed, error);
	if (g_strcmp0(key, "save_rate") == 0)
		return migd_sim_parse_size(value, &self->save_rate, error);
	if (g_strcmp0(key, "load_rate") == 0)
		return migd_sim_parse_size(value, &self->load_rate, error);
	if (g_strcmp0(key, "dirty_rate") == 0)
		return migd_sim_parse_size(value, &self->dirty_rate, error);
	if (g_strcmp0(key, "dma_rate") == 0)
		return migd_sim_parse_size(value, &self->dma_rate, error);
	if (g_strcmp0(key, "dma_pattern") == 0)
		return migd_sim_dma_pattern_parse(value, &self->dma_pattern, error);
	if (g_strcmp0(key, "ports") == 0) {
		if (g_strcmp0(value, "1") != 0 && g_strcmp0(value, "2") != 0) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "'%s' is not a port count (allowed: 1, 2 as mtty-1/mtty-2)",
				    value);
			return FALSE;
		}
		self->ports = value[0] - '0';
		self->state_size = 24 + 36 * self->ports;
		return TRUE;
	}
	if (g_strcmp0(key, "fail_arc") == 0)
		return migd_sim_config_parse_arc(self, value, error);
	if (g_strcmp0(key, "fail_errno") == 0)
		return migd_sim_parse_errno(value, &self->fail_errno, error);
	if (g_strcmp0(key, "fail_to_error") == 0)
		return migd_sim_config_parse_bool(value, &self->fail_to_error, error);
	if (g_strcmp0(key, "fail_count") == 0) {
		guint64 v = 0;
		if (!migd_sim_config_parse_uint(value, G_MAXUINT, &v, error))
			return FALSE;
		self->fail_count = (guint)v;
		return TRUE;
	}
	if (g_strcmp0(key, "persist") == 0) {
		if (value[0] != '/') {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "persist=%s: an absolute file path is required", value);
			return FALSE;
		}
		g_free(self->persist);
		self->persist = g_strdup(value);
		return TRUE;
	}
	if (g_strcmp0(key, "sysfs") == 0) {
		if (value[0] != '/') {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "sysfs=%s: an absolute directory path is required", value);
			return FALSE;
		}
		g_free(self->sysfs);
		self->sysfs = g_strdup(value);
		return TRUE;
	}
	if (g_strcmp0(key, "report_eio") == 0)
		return migd_sim_config_parse_bool(value, &self->report_eio, error);
	if (g_strcmp0(key, "iommufd_driver") == 0)
		return migd_sim_config_parse_bool(value, &self->iommufd_driver, error);
	if (g_strcmp0(key, "iommu_dirty") == 0)
		return migd_sim_config_parse_bool(value, &self->iommu_dirty, error);
	if (g_strcmp0(key, "short_reads") == 0)
		return migd_sim_config_parse_bool(value, &self->short_reads, error);
	if (g_strcmp0(key, "fast_data") == 0)
		return migd_sim_config_parse_bool(value, &self->fast_data, error);
	if (g_strcmp0(key, "dev_id") == 0)
		return migd_sim_config_parse_u32(value, &self->hisi_dev_id, error);
	if (g_strcmp0(key, "qp_num") == 0)
		return migd_sim_config_parse_u32(value, &self->hisi_qp_num, error);
	if (g_strcmp0(key, "que_iso_cfg") == 0)
		return migd_sim_config_parse_u32(value, &self->hisi_que_iso_cfg, error);
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "unhandled key");
	return FALSE;
}

gboolean
migd_sim_config_set(MigdSimConfig *self, const gchar *key, const gchar *value, GError **error)
{
	const MigdSimConfigKey *entry = NULL;
	g_autofree gchar *allowed = NULL;

	g_return_val_if_fail(self != NULL, FALSE);

	for (guint i = 0; i < G_N_ELEMENTS(migd_sim_config_keys); i++) {
		if (g_strcmp0(key, migd_sim_config_keys[i].key) == 0)
			entry = &migd_sim_config_keys[i];
	}
	allowed = migd_sim_config_allowed_keys(self->profile);
	if (entry == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "unknown simulator key '%s' (allowed for %s: %s)",
			    key != NULL ? key : "", self->profile->name, allowed);
		return FALSE;
	}
	if ((self->profile->knobs & entry->knob) == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "key '%s' does not apply to the %s profile (allowed: %s)", key,
			    self->profile->name, allowed);
		return FALSE;
	}
	if (value == NULL || !migd_sim_config_set_value(self, key, value, error)) {
		if (value == NULL)
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "key '%s' needs a value", key);
		else
			g_prefix_error(error, "simulator key '%s': ", key);
		return FALSE;
	}
	return TRUE;
}

MigdSimConfig *
migd_sim_config_new_from_string(const gchar *spec, GError **error)
{
	g_autoptr(MigdSimConfig) self = NULL;
	g_autofree gchar *profile = NULL;
	const gchar *colon;
	g_auto(GStrv) items = NULL;

	if (spec == NULL) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "empty simulator spec");
		return NULL;
	}
	colon = strchr(spec, ':');
	profile = colon != NULL ? g_strndup(spec, colon - spec) : g_strdup(spec);
	self = migd_sim_config_new(profile, error);
	if (self == NULL)
		return NULL;
	if (colon == NULL || colon[1] == '\0')
		return g_steal_pointer(&self);

	items = g_strsplit(colon + 1, ",", -1);
	for (guint i = 0; items[i] != NULL; i++) {
		g_autofree gchar *key = NULL;
		const gchar *eq = strchr(items[i], '=');
		/* dma_pattern values contain ':' (hotspot:10) but never ',' or '=' */
		if (eq == NULL) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
				    "'%s' in simulator spec is not key=value", items[i]);
			return NULL;
		}
		key = g_strndup(items[i], eq - items[i]);
		if (!migd_sim_config_set(self, key, eq + 1, error))
			return NULL;
	}
	return g_steal_pointer(&self);
}

MigdSimConfig *
migd_sim_config_new_from_keyfile(GKeyFile *keyfile, const gchar *group, GError **error)
{
	g_autoptr(MigdSimConfig) self = NULL;
	g_autofree gchar *profile = NULL;
	g_auto(GStrv) keys = NULL;

	profile = migd_plugin_config_get_string(keyfile, group, "profile", NULL);
	if (profile == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "simulator group [%s] needs a 'profile' key (allowed: %s)", group,
			    migd_sim_profile_list());
		return NULL;
	}
	self = migd_sim_config_new(profile, error);
	if (self == NULL)
		return NULL;
	keys = g_key_file_get_keys(keyfile, group, NULL, NULL);
	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		g_autofree gchar *value = NULL;
		if (g_strcmp0(keys[i], "profile") == 0)
			continue;
		value = migd_plugin_config_get_string(keyfile, group, keys[i], error);
		if (value == NULL)
			return NULL;
		if (!migd_sim_config_set(self, keys[i], value, error)) {
			g_prefix_error(error, "[%s]: ", group);
			return NULL;
		}
	}
	return g_steal_pointer(&self);
}
