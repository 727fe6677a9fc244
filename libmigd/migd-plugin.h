/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

#include "migd-device.h"

G_BEGIN_DECLS

/*
 * The plugin interface: everything that depends on one variant driver lives
 * behind it, as fwupd keeps vendor logic in plugins/<vendor>/. The core calls a
 * device's plugin for its compatibility descriptor, the peer's judgement, the
 * dirty tracker, the stream policy and the recovery quirks; it never names a
 * driver itself.
 *
 * Plugins are GModules in the plugin directory (MIGD_PLUGIN_DIR, see
 * migd-plugin-manager.h). A module exports one symbol, `migd_plugin_module`, a
 * MigdPluginModule whose first member is the ABI version it was built against;
 * the daemon refuses any other version before it touches the rest. The version
 * changes whenever MigdPluginClass, MigdPluginPolicy or MigdPluginModule change
 * incompatibly. docs/ABI/testing/plugin-interface describes it.
 */
#define MIGD_PLUGIN_ABI_VERSION	  1u
#define MIGD_PLUGIN_MODULE_SYMBOL "migd_plugin_module"

#define MIGD_TYPE_PLUGIN (migd_plugin_get_type())
G_DECLARE_DERIVABLE_TYPE(MigdPlugin, migd_plugin, MIGD, PLUGIN, GObject)

/* match scores: a plugin that knows the driver outranks one that only knows the uAPI */
#define MIGD_PLUGIN_SCORE_NONE	  0u
#define MIGD_PLUGIN_SCORE_GENERIC 1u
#define MIGD_PLUGIN_SCORE_DRIVER  100u

/* which dirty tracker the device's DMA writes are followed with */
typedef enum {
	MIGD_DIRTY_TRACKER_NONE,   /* nothing tracks: every page counts as dirty */
	MIGD_DIRTY_TRACKER_DEVICE, /* VFIO_DEVICE_FEATURE_DMA_LOGGING_* on the device */
	MIGD_DIRTY_TRACKER_IOMMU,  /* the IOMMU's (iommufd HWPT or type1 DIRTY_PAGES) */
} MigdDirtyTrackerKind;

const gchar *migd_dirty_tracker_kind_to_string(MigdDirtyTrackerKind tracker);

/* what to do when the dirty tracker fails mid-migration (e.g. REPORT -> EIO) */
typedef enum {
	MIGD_TRACKER_ERROR_ALL_DIRTY, /* keep going; this round counts every page dirty */
	MIGD_TRACKER_ERROR_RESTART,   /* STOP + START tracking again, and all dirty this round */
} MigdTrackerErrorAction;

const gchar *migd_tracker_error_action_to_string(MigdTrackerErrorAction action);

/* what a driver needs the core's recovery policy to expect */
typedef enum {
	MIGD_RECOVERY_QUIRK_NONE = 0,
	/* VFIO_DEVICE_RESET may leave the migration FSM where it was (hisi_acc) */
	MIGD_RECOVERY_QUIRK_RESET_KEEPS_STATE = 1u << 0,
	/*
	 * closing the device fd and opening it again brings the FSM back to
	 * RUNNING (the driver's open_device sets it): the way out when a reset
	 * kept a state no walk leaves, e.g. hisi_acc RESUMING with nothing loaded
	 */
	MIGD_RECOVERY_QUIRK_REOPEN_RESETS_STATE = 1u << 1,
} MigdRecoveryQuirks;

/* A plugin's decisions for one device; defaults from migd_plugin_policy_init(). */
typedef struct {
	gsize read_size;	      /* data fd reads (and chunk payloads) */
	guint max_precopy_rounds;     /* 0: the job's own cap */
	MigdDirtyTrackerKind tracker; /* which tracker */
	guint tracker_max_ranges;     /* device tracker: ranges START accepts (0: no limit) */
	guint64 tracker_page_size;    /* device tracker: the page size to ask for */
	MigdTrackerErrorAction on_tracker_error;
	MigdRecoveryQuirks recovery_quirks;
	gsize initial_check_bytes; /* destination: hand check_initial_data this many first bytes */
} MigdPluginPolicy;

void migd_plugin_policy_init(MigdPluginPolicy *policy);

/* The peer's compatibility descriptor as the destination sees it. */
typedef struct {
	const gchar *driver;
	guint16 vendor_id;
	guint16 device_id;
	guint16 subsystem_vendor_id;
	guint16 subsystem_device_id;
	guint32 migration_flags;
	guint64 stop_copy_length;
	const gchar *plugin;   /* the source plugin's name, NULL if it sent no plugin data */
	GVariant *plugin_data; /* a{sv} of that plugin, NULL if none */
} MigdPeerDescriptor;

struct _MigdPluginClass {
	GObjectClass parent_class;

	/* MIGD_PLUGIN_SCORE_*: how well this plugin knows @device */
	guint (*match)(MigdPlugin *self, MigdDevice *device, const MigdDeviceIdentity *identity);
	/* the [plugin NAME] group of the configuration (absent: defaults); unknown keys are errors
	 */
	gboolean (*configure)(MigdPlugin *self, GKeyFile *config, const gchar *group,
			      GError **error);
	void (*get_policy)(MigdPlugin *self, MigdDevice *device, MigdPluginPolicy *policy);
	/* source: what goes into the descriptor's plugin data besides the core's fields */
	gboolean (*describe)(MigdPlugin *self, MigdDevice *device, GVariantDict *data,
			     GError **error);
	/* destination: judge the peer's descriptor (the core has checked ids and flags) */
	gboolean (*check_peer)(MigdPlugin *self, MigdDevice *device, const MigdPeerDescriptor *peer,
			       GError **error);
	/* destination: the first policy.initial_check_bytes of the stream, before the device sees
	 * them */
	gboolean (*check_initial_data)(MigdPlugin *self, MigdDevice *device, const guint8 *data,
				       gsize len, GError **error);
	/* destination: the device refused the stream; a driver-specific explanation, or NULL */
	gchar *(*explain_load_error)(MigdPlugin *self, MigdDevice *device, const GError *error);
	/* the tracker failed: carry out policy.on_tracker_error on the device */
	gboolean (*recover_tracker)(MigdPlugin *self, MigdDevice *device,
				    const MigdIovaRange *ranges, guint n_ranges, guint64 *page_size,
				    GError **error);

	gpointer padding[8];
};

/* Exported by each plugin module as MIGD_PLUGIN_MODULE_SYMBOL. */
typedef struct {
	guint32 abi_version; /* MIGD_PLUGIN_ABI_VERSION; first, so any build can read it */
	const gchar *name;   /* the plugin's name, e.g. "mlx5" */
	GType (*get_type)(void);
} MigdPluginModule;

#define MIGD_PLUGIN_DEFINE_MODULE(plugin_name, type_func)                                          \
	G_MODULE_EXPORT const MigdPluginModule migd_plugin_module = {                              \
	    .abi_version = MIGD_PLUGIN_ABI_VERSION,                                                \
	    .name = plugin_name,                                                                   \
	    .get_type = type_func,                                                                 \
	}

const gchar *migd_plugin_get_name(MigdPlugin *self);
/* @device's plugin, or the generic one if no manager assigned any (engines in tests) */
MigdPlugin *migd_plugin_dup_for_device(MigdDevice *device);
guint migd_plugin_match(MigdPlugin *self, MigdDevice *device, const MigdDeviceIdentity *identity);
gboolean migd_plugin_configure(MigdPlugin *self, GKeyFile *config, GError **error);
void migd_plugin_get_policy(MigdPlugin *self, MigdDevice *device, MigdPluginPolicy *policy);
/* the descriptor's plugin data: a{sv} with "plugin" (s) and what describe() adds */
GVariant *migd_plugin_describe(MigdPlugin *self, MigdDevice *device, GError **error);
gboolean migd_plugin_check_peer(MigdPlugin *self, MigdDevice *device,
				const MigdPeerDescriptor *peer, GError **error);
gboolean migd_plugin_check_initial_data(MigdPlugin *self, MigdDevice *device, const guint8 *data,
					gsize len, GError **error);
gchar *migd_plugin_explain_load_error(MigdPlugin *self, MigdDevice *device, const GError *error);
gboolean migd_plugin_recover_tracker(MigdPlugin *self, MigdDevice *device,
				     const MigdIovaRange *ranges, guint n_ranges,
				     guint64 *page_size, GError **error);

/* helpers for plugins */
gboolean migd_plugin_config_check_keys(GKeyFile *config, const gchar *group,
				       const gchar *const *known, GError **error);
/* a size (digits, optional K, M, G or T) in [@min, @max]; absent: *@value untouched */
gboolean migd_plugin_config_get_size(GKeyFile *config, const gchar *group, const gchar *key,
				     guint64 min, guint64 max, guint64 *value, GError **error);
/* a count (decimal digits only) in [@min, @max]; absent: *@value untouched */
gboolean migd_plugin_config_get_uint(GKeyFile *config, const gchar *group, const gchar *key,
				     guint64 min, guint64 max, guint64 *value, GError **error);
/*
 * FALSE and "@key: why" (MIGD_ERROR_INVALID_ARGUMENT) when the raw value ends in an escape
 * character: GLib 2.74 sets that error over an earlier bad escape's (a GLib warning), so it
 * is said before any g_key_file_get_string() or g_key_file_get_string_list() of the key
 */
gboolean migd_plugin_config_check_escape(GKeyFile *config, const gchar *group, const gchar *key,
					 GError **error);
/*
 * a string value; NULL and "@key: why" (MIGD_ERROR_INVALID_ARGUMENT) when it is absent or
 * cannot be read, also for a bad escape sequence, where g_key_file_get_string() returns a
 * value and sets an error both
 */
gchar *migd_plugin_config_get_string(GKeyFile *config, const gchar *group, const gchar *key,
				     GError **error);
/* a boolean; absent: *@value untouched; bad: "@key: why" (MIGD_ERROR_INVALID_ARGUMENT) */
gboolean migd_plugin_config_get_boolean(GKeyFile *config, const gchar *group, const gchar *key,
					gboolean *value, GError **error);
/* reads @relpath under the device's sysfs directory, stripped; NULL if absent */
gchar *migd_plugin_read_sysfs(MigdDevice *device, const gchar *relpath);

/* plugin data on the wire: a serialized a{sv}, at most MIGD_WIRE_MAX_PLUGIN_DATA bytes */
GBytes *migd_plugin_data_encode(GVariant *data, GError **error);
GVariant *migd_plugin_data_decode(const guint8 *buf, gsize len, GError **error);

G_END_DECLS
