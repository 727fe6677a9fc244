/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One object per VFIO device. Backends (kernel, simulator) supply the raw
 * uAPI calls; this class plans every transition with the kernel's own table,
 * executes it one real arc at a time (so a failure names the arc that failed)
 * and never sends an arc the uAPI does not allow.
 */
#include "config.h"

#include "migd-device-private.h"
#include "migd-device.h"
#include "migd-error.h"
#include "migd-fsm.h"

typedef struct {
	gchar *name;
	gchar *sysfs_path;
	GObject *plugin;
	guint recovery_quirks;
	GArray *iova_ranges; /* MigdIovaRange */
	gboolean probed;
	MigdDeviceFeatures features;
} MigdDevicePrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(MigdDevice, migd_device, G_TYPE_OBJECT)

#define GET_PRIVATE(o) (migd_device_get_instance_private(o))

enum { PROP_0, PROP_NAME, PROP_LAST };

static GParamSpec *migd_device_props[PROP_LAST];

const gchar *
migd_device_get_name(MigdDevice *self)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), NULL);
	return priv->name != NULL ? priv->name : "(unnamed)";
}

void
migd_device_set_name(MigdDevice *self, const gchar *name)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_if_fail(MIGD_IS_DEVICE(self));
	if (g_strcmp0(priv->name, name) == 0)
		return;
	g_free(priv->name);
	priv->name = g_strdup(name);
	g_object_notify_by_pspec(G_OBJECT(self), migd_device_props[PROP_NAME]);
}

/* a backend that lacks an optional operation answers like a kernel without it */
static gboolean
migd_device_not_supported(MigdDevice *self, const gchar *what, GError **error)
{
	g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED, "%s: %s is not supported",
		    migd_device_get_name(self), what);
	return FALSE;
}

gboolean
migd_device_probe(MigdDevice *self, GError **error)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	MigdDeviceFeatures features = {0};

	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);

	if (priv->probed)
		return TRUE;
	if (klass->probe == NULL)
		return migd_device_not_supported(self, "probe", error);
	if (!klass->probe(self, &features, error)) {
		g_prefix_error(error, "%s: probe failed: ", migd_device_get_name(self));
		return FALSE;
	}
	priv->features = features;
	priv->probed = TRUE;
	return TRUE;
}

const MigdDeviceFeatures *
migd_device_get_features(MigdDevice *self)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), NULL);
	return &priv->features;
}

guint32
migd_device_get_mig_flags(MigdDevice *self)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), 0);
	return priv->features.migration ? priv->features.mig_flags : 0;
}

/* planning needs the flags: probe on first use */
static gboolean
migd_device_ensure_flags(MigdDevice *self, guint32 *flags, GError **error)
{
	if (!migd_device_probe(self, error))
		return FALSE;
	*flags = migd_device_get_mig_flags(self);
	if ((*flags & MIGD_MIG_FLAG_STOP_COPY) == 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: device does not support VFIO migration",
			    migd_device_get_name(self));
		return FALSE;
	}
	return TRUE;
}

const gchar *
migd_device_get_sysfs_path(MigdDevice *self)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), NULL);
	return priv->sysfs_path;
}

void
migd_device_set_sysfs_path(MigdDevice *self, const gchar *path)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_if_fail(MIGD_IS_DEVICE(self));
	g_free(priv->sysfs_path);
	priv->sysfs_path = g_strdup(path);
}

MigdPlugin *
migd_device_get_plugin(MigdDevice *self)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), NULL);
	return (MigdPlugin *)priv->plugin;
}

void
migd_device_set_plugin(MigdDevice *self, MigdPlugin *plugin)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_if_fail(MIGD_IS_DEVICE(self));
	g_set_object(&priv->plugin, (GObject *)plugin);
}

void
migd_device_set_iova_ranges(MigdDevice *self, const MigdIovaRange *ranges, guint n_ranges)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_if_fail(MIGD_IS_DEVICE(self));
	g_clear_pointer(&priv->iova_ranges, g_array_unref);
	if (n_ranges == 0)
		return;
	priv->iova_ranges = g_array_sized_new(FALSE, FALSE, sizeof(MigdIovaRange), n_ranges);
	g_array_append_vals(priv->iova_ranges, ranges, n_ranges);
}

const MigdIovaRange *
migd_device_get_iova_ranges(MigdDevice *self, guint *n_ranges)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), NULL);
	*n_ranges = priv->iova_ranges != NULL ? priv->iova_ranges->len : 0;
	return priv->iova_ranges != NULL ? (const MigdIovaRange *)priv->iova_ranges->data : NULL;
}

guint
migd_device_get_recovery_quirks(MigdDevice *self)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), 0);
	return priv->recovery_quirks;
}

void
migd_device_set_recovery_quirks(MigdDevice *self, guint quirks)
{
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_return_if_fail(MIGD_IS_DEVICE(self));
	priv->recovery_quirks = quirks;
}

void
migd_device_identity_clear(MigdDeviceIdentity *identity)
{
	g_clear_pointer(&identity->driver, g_free);
	identity->vendor_id = identity->device_id = 0;
	identity->subsystem_vendor_id = identity->subsystem_device_id = 0;
}

gboolean
migd_device_get_identity(MigdDevice *self, MigdDeviceIdentity *identity, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);

	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	g_return_val_if_fail(identity != NULL, FALSE);

	migd_device_identity_clear(identity);
	if (klass->get_identity != NULL && !klass->get_identity(self, identity, error))
		return FALSE;
	if (identity->driver == NULL)
		identity->driver = g_strdup("unknown");
	return TRUE;
}

gboolean
migd_device_get_state(MigdDevice *self, MigdState *state, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	MigdState tmp = MIGD_STATE_ERROR;

	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	g_return_val_if_fail(state != NULL, FALSE);

	if (klass->get_state == NULL)
		return migd_device_not_supported(self, "reading the migration state", error);
	if (!klass->get_state(self, &tmp, error))
		return FALSE;
	if (!migd_state_is_valid(tmp)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s: device reported an unknown migration state %u",
			    migd_device_get_name(self), (guint)tmp);
		return FALSE;
	}
	*state = tmp;
	return TRUE;
}

/*
 * Executes the real arc @cur -> @next, which the caller has planned. The data
 * fd must appear exactly on the arcs that open a session; anything else means
 * we and the driver disagree about the session, as QEMU treats it (-EBADF).
 */
static gboolean
migd_device_run_arc(MigdDevice *self, MigdState cur, MigdState next, MigdDataFd **data_fd,
		    GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_autoptr(MigdDataFd) fd = NULL;
	gboolean opens = migd_fsm_arc_opens_session(cur, next);

	if (klass->set_state == NULL)
		return migd_device_not_supported(self, "setting the migration state", error);
	g_debug("%s: arc %s -> %s", migd_device_get_name(self), migd_state_to_string(cur),
		migd_state_to_string(next));
	if (!klass->set_state(self, next, &fd, error)) {
		g_prefix_error(error, "%s: arc %s -> %s failed: ", migd_device_get_name(self),
			       migd_state_to_string(cur), migd_state_to_string(next));
		return FALSE;
	}
	if (opens && fd == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s: arc %s -> %s returned no data fd", migd_device_get_name(self),
			    migd_state_to_string(cur), migd_state_to_string(next));
		return FALSE;
	}
	if (!opens && fd != NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
			    "%s: arc %s -> %s returned an unexpected data fd (out of sync)",
			    migd_device_get_name(self), migd_state_to_string(cur),
			    migd_state_to_string(next));
		return FALSE;
	}
	if (data_fd != NULL)
		*data_fd = g_steal_pointer(&fd);
	return TRUE;
}

gboolean
migd_device_set_state_arc(MigdDevice *self, MigdState next, MigdDataFd **data_fd, GError **error)
{
	guint32 flags = 0;
	MigdState cur = MIGD_STATE_ERROR;
	MigdState step = MIGD_STATE_ERROR;

	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);

	if (!migd_device_ensure_flags(self, &flags, error))
		return FALSE;
	if (!migd_device_get_state(self, &cur, error))
		return FALSE;
	if (cur == next) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT, "%s: already in %s",
			    migd_device_get_name(self), migd_state_to_string(cur));
		return FALSE;
	}
	if (!migd_fsm_next_step(flags, cur, next, &step, error)) {
		g_prefix_error(error, "%s: ", migd_device_get_name(self));
		return FALSE;
	}
	if (step != next) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_REFUSED_ARC,
			    "%s: %s -> %s is not a single arc (the first step is %s -> %s)",
			    migd_device_get_name(self), migd_state_to_string(cur),
			    migd_state_to_string(next), migd_state_to_string(cur),
			    migd_state_to_string(step));
		return FALSE;
	}
	return migd_device_run_arc(self, cur, next, data_fd, error);
}

/* walks @path from @cur; on failure *failed_from/to name the arc */
static gboolean
migd_device_walk_path(MigdDevice *self, MigdState cur, GArray *path, MigdDataFd **data_fd,
		      MigdState *failed_from, MigdState *failed_to, GError **error)
{
	for (guint i = 0; i < path->len; i++) {
		MigdState next = g_array_index(path, guint, i);
		g_autoptr(MigdDataFd) fd = NULL;

		*failed_from = cur;
		*failed_to = next;
		if (!migd_device_run_arc(self, cur, next, &fd, error))
			return FALSE;
		/* the planner never makes a saving state interior, so a fd is final */
		if (fd != NULL && i + 1 < path->len) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_PROTOCOL,
				    "%s: data fd on the intermediate arc %s -> %s",
				    migd_device_get_name(self), migd_state_to_string(cur),
				    migd_state_to_string(next));
			return FALSE;
		}
		if (fd != NULL && data_fd != NULL)
			*data_fd = g_steal_pointer(&fd);
		cur = next;
	}
	return TRUE;
}

gboolean
migd_device_walk_to(MigdDevice *self, MigdState cur, MigdState target, GError **error)
{
	guint32 flags = 0;
	MigdState failed_from = MIGD_STATE_ERROR;
	MigdState failed_to = MIGD_STATE_ERROR;
	g_autoptr(GArray) path = NULL;
	g_autoptr(MigdDataFd) fd = NULL;

	if (!migd_device_ensure_flags(self, &flags, error))
		return FALSE;
	path = migd_fsm_plan(flags, cur, target, error);
	if (path == NULL)
		return FALSE;
	return migd_device_walk_path(self, cur, path, &fd, &failed_from, &failed_to, error);
}

gboolean
migd_device_transition(MigdDevice *self, MigdState target, MigdState recover_state,
		       MigdDataFd **data_fd, MigdRecoveryReport *report, GError **error)
{
	guint32 flags = 0;
	MigdState cur = MIGD_STATE_ERROR;
	g_autoptr(GArray) path = NULL;
	g_autoptr(GError) error_local = NULL;
	g_autoptr(GError) error_recover = NULL;
	g_auto(MigdRecoveryReport) report_local = {0};

	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);

	if (report == NULL)
		report = &report_local;
	migd_recovery_report_clear(report);
	report->requested = target;
	report->recover_target = recover_state;

	if (!migd_device_ensure_flags(self, &flags, error))
		return FALSE;
	if (!migd_device_get_state(self, &cur, error))
		return FALSE;
	report->state_read_back = cur;

	/* a refused plan touches nothing: there is nothing to recover */
	path = migd_fsm_plan(flags, cur, target, error);
	if (path == NULL) {
		g_prefix_error(error, "%s: ", migd_device_get_name(self));
		report->final_state = cur;
		return FALSE;
	}
	if (migd_device_walk_path(self, cur, path, data_fd, &report->failed_from,
				  &report->failed_to, &error_local)) {
		report->final_state = target;
		report->failed_from = report->failed_to = MIGD_STATE_ERROR;
		return TRUE;
	}

	/* the SET echoes the requested state: only a GET tells where we are */
	if (!migd_device_recover(self, recover_state, report, &error_recover)) {
		/* both messages already name the device */
		g_log_structured(
		    G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "VFIO_MIGD_EVENT", "device-recovery-failed",
		    "VFIO_MIGD_DEVICE", migd_device_get_name(self), "MESSAGE",
		    "%s; recovery failed too: %s", error_local->message, error_recover->message);
		g_propagate_prefixed_error(error, g_steal_pointer(&error_local),
					   "transition to %s failed and recovery failed (%s): ",
					   migd_state_to_string(target), error_recover->message);
		return FALSE;
	}
	g_propagate_prefixed_error(
	    error, g_steal_pointer(&error_local),
	    "transition to %s failed (%s, now %s): ", migd_state_to_string(target),
	    migd_recovery_action_to_string(report->action),
	    migd_state_to_string(report->final_state));
	return FALSE;
}

gboolean
migd_device_get_data_size(MigdDevice *self, guint64 *stop_copy_length, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	if (klass->get_data_size == NULL)
		return migd_device_not_supported(self, "MIG_DATA_SIZE", error);
	return klass->get_data_size(self, stop_copy_length, error);
}

gboolean
migd_device_reset(MigdDevice *self, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	if (klass->reset == NULL)
		return migd_device_not_supported(self, "VFIO_DEVICE_RESET", error);
	return klass->reset(self, error);
}

gboolean
migd_device_reopen(MigdDevice *self, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	if (klass->reopen == NULL)
		return migd_device_not_supported(self, "closing and reopening the device", error);
	return klass->reopen(self, error);
}

gboolean
migd_device_dma_logging_start(MigdDevice *self, const MigdIovaRange *ranges, guint n_ranges,
			      guint64 *page_size, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	g_return_val_if_fail(page_size != NULL, FALSE);
	if (klass->dma_logging_start == NULL)
		return migd_device_not_supported(self, "DMA logging", error);
	return klass->dma_logging_start(self, ranges, n_ranges, page_size, error);
}

gboolean
migd_device_dma_logging_stop(MigdDevice *self, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	if (klass->dma_logging_stop == NULL)
		return migd_device_not_supported(self, "DMA logging", error);
	return klass->dma_logging_stop(self, error);
}

gboolean
migd_device_iommu_dirty_start(MigdDevice *self, const MigdIovaRange *ranges, guint n_ranges,
			      guint64 *page_size, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	if (klass->iommu_dirty_start == NULL)
		return migd_device_not_supported(self, "IOMMU dirty tracking", error);
	return klass->iommu_dirty_start(self, ranges, n_ranges, page_size, error);
}

gboolean
migd_device_iommu_dirty_stop(MigdDevice *self, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	if (klass->iommu_dirty_stop == NULL)
		return migd_device_not_supported(self, "IOMMU dirty tracking", error);
	return klass->iommu_dirty_stop(self, error);
}

gboolean
migd_device_iommu_dirty_report(MigdDevice *self, guint64 iova, guint64 length, guint64 page_size,
			       gboolean no_clear, guint64 *bitmap, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	if (klass->iommu_dirty_report == NULL)
		return migd_device_not_supported(self, "IOMMU dirty tracking", error);
	return klass->iommu_dirty_report(self, iova, length, page_size, no_clear, bitmap, error);
}

gboolean
migd_device_dma_logging_report(MigdDevice *self, guint64 iova, guint64 length, guint64 page_size,
			       guint64 *bitmap, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	g_return_val_if_fail(bitmap != NULL, FALSE);
	if (klass->dma_logging_report == NULL)
		return migd_device_not_supported(self, "DMA logging", error);
	return klass->dma_logging_report(self, iova, length, page_size, bitmap, error);
}

gboolean
migd_device_low_power_entry(MigdDevice *self, gint wakeup_eventfd, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	if (klass->low_power_entry == NULL)
		return migd_device_not_supported(self, "low power", error);
	return klass->low_power_entry(self, wakeup_eventfd, error);
}

gboolean
migd_device_low_power_exit(MigdDevice *self, GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	if (klass->low_power_exit == NULL)
		return migd_device_not_supported(self, "low power", error);
	return klass->low_power_exit(self, error);
}

gboolean
migd_device_region_read(MigdDevice *self, guint index, guint64 offset, void *buf, gsize len,
			GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	g_return_val_if_fail(buf != NULL || len == 0, FALSE);
	if (klass->region_read == NULL)
		return migd_device_not_supported(self, "region access", error);
	return klass->region_read(self, index, offset, buf, len, error);
}

gboolean
migd_device_region_write(MigdDevice *self, guint index, guint64 offset, const void *buf, gsize len,
			 GError **error)
{
	MigdDeviceClass *klass = MIGD_DEVICE_GET_CLASS(self);
	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);
	g_return_val_if_fail(buf != NULL || len == 0, FALSE);
	if (klass->region_write == NULL)
		return migd_device_not_supported(self, "region access", error);
	return klass->region_write(self, index, offset, buf, len, error);
}

static void
migd_device_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	MigdDevice *self = MIGD_DEVICE(object);
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	switch (prop_id) {
	case PROP_NAME:
		g_value_set_string(value, priv->name);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
migd_device_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
	MigdDevice *self = MIGD_DEVICE(object);
	switch (prop_id) {
	case PROP_NAME:
		migd_device_set_name(self, g_value_get_string(value));
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
migd_device_finalize(GObject *object)
{
	MigdDevice *self = MIGD_DEVICE(object);
	MigdDevicePrivate *priv = GET_PRIVATE(self);
	g_free(priv->name);
	g_free(priv->sysfs_path);
	g_clear_object(&priv->plugin);
	g_clear_pointer(&priv->iova_ranges, g_array_unref);
	G_OBJECT_CLASS(migd_device_parent_class)->finalize(object);
}

static void
migd_device_init(MigdDevice *self)
{
}

static void
migd_device_class_init(MigdDeviceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->get_property = migd_device_get_property;
	object_class->set_property = migd_device_set_property;
	object_class->finalize = migd_device_finalize;

	migd_device_props[PROP_NAME] = g_param_spec_string(
	    "name", NULL, NULL, NULL,
	    G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
	g_object_class_install_properties(object_class, PROP_LAST, migd_device_props);
}
