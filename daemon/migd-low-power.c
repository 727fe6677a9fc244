/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdLowPower: idle devices in low power, woken through eventfds.
 */
#include "config.h"

#include "migd-low-power.h"

#include <errno.h>
#include <glib-unix.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "migd-error.h"

typedef struct {
	MigdLowPower *owner;
	MigdDevice *device;
	gint eventfd;	  /* -1: plain entry (no WITH_WAKEUP) */
	guint watch_id;	  /* the eventfd on the main loop */
	guint reenter_id; /* after a wake-up */
	gboolean engaged; /* as far as we know, in low power */
	gboolean wanted;  /* idle: should be in low power */
	gboolean unsupported;
	guint64 wakeups;
} MigdLowPowerDevice;

struct _MigdLowPower {
	GHashTable *devices; /* MigdDevice -> MigdLowPowerDevice */
	guint reenter_ms;
};

static void
migd_low_power_device_free(MigdLowPowerDevice *lp)
{
	g_clear_handle_id(&lp->watch_id, g_source_remove);
	g_clear_handle_id(&lp->reenter_id, g_source_remove);
	if (lp->eventfd >= 0)
		close(lp->eventfd);
	g_object_unref(lp->device);
	g_free(lp);
}

MigdLowPower *
migd_low_power_new(void)
{
	MigdLowPower *self = g_new0(MigdLowPower, 1);
	self->reenter_ms = MIGD_LOW_POWER_REENTER_S * 1000;
	self->devices =
	    g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)migd_low_power_device_free);
	return self;
}

void
migd_low_power_free(MigdLowPower *self)
{
	GHashTableIter iter;
	gpointer value;

	if (self == NULL)
		return;
	g_hash_table_iter_init(&iter, self->devices);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		migd_low_power_exit(self, ((MigdLowPowerDevice *)value)->device, NULL);
	g_hash_table_unref(self->devices);
	g_free(self);
}

static MigdLowPowerDevice *
migd_low_power_get(MigdLowPower *self, MigdDevice *device, gboolean create)
{
	MigdLowPowerDevice *lp = g_hash_table_lookup(self->devices, device);

	if (lp == NULL && create) {
		lp = g_new0(MigdLowPowerDevice, 1);
		lp->owner = self;
		lp->device = g_object_ref(device);
		lp->eventfd = -1;
		g_hash_table_insert(self->devices, device, lp);
	}
	return lp;
}

static gboolean migd_low_power_engage(MigdLowPowerDevice *lp, GError **error);

static gboolean
migd_low_power_reenter_cb(gpointer user_data)
{
	MigdLowPowerDevice *lp = user_data;
	g_autoptr(GError) error = NULL;

	lp->reenter_id = 0;
	if (lp->wanted && !lp->engaged && !migd_low_power_engage(lp, &error))
		g_message("%s: back to low power failed: %s", migd_device_get_name(lp->device),
			  error->message);
	return G_SOURCE_REMOVE;
}

/* the kernel left low power because someone woke the device (single-shot) */
static gboolean
migd_low_power_wakeup_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	MigdLowPowerDevice *lp = user_data;
	guint64 count = 0;

	if (read(fd, &count, sizeof(count)) != sizeof(count) && errno != EAGAIN)
		g_debug("%s: wake-up eventfd read: %s", migd_device_get_name(lp->device),
			g_strerror(errno));
	if (!lp->engaged)
		return G_SOURCE_CONTINUE;
	lp->engaged = FALSE;
	lp->wakeups++;
	g_debug("%s: woken from low power (%" G_GUINT64_FORMAT " wake-ups)",
		migd_device_get_name(lp->device), lp->wakeups);
	if (lp->wanted && lp->reenter_id == 0)
		lp->reenter_id =
		    g_timeout_add(lp->owner->reenter_ms, migd_low_power_reenter_cb, lp);
	return G_SOURCE_CONTINUE;
}

static gboolean
migd_low_power_engage(MigdLowPowerDevice *lp, GError **error)
{
	const MigdDeviceFeatures *features = migd_device_get_features(lp->device);
	gboolean with_wakeup = features != NULL && features->low_power_wakeup;

	if (with_wakeup && lp->eventfd < 0) {
		lp->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (lp->eventfd < 0) {
			migd_set_errno_error(error, errno, "eventfd");
			return FALSE;
		}
		lp->watch_id = g_unix_fd_add(lp->eventfd, G_IO_IN, migd_low_power_wakeup_cb, lp);
	}
	if (!migd_device_low_power_entry(lp->device, with_wakeup ? lp->eventfd : -1, error))
		return FALSE;
	lp->engaged = TRUE;
	return TRUE;
}

gboolean
migd_low_power_enter(MigdLowPower *self, MigdDevice *device, GError **error)
{
	MigdLowPowerDevice *lp = migd_low_power_get(self, device, TRUE);
	g_autoptr(GError) error_local = NULL;

	if (lp->unsupported) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
			    "%s: its driver has no low power", migd_device_get_name(device));
		return FALSE;
	}
	lp->wanted = TRUE;
	if (lp->engaged)
		return TRUE;
	if (!migd_low_power_engage(lp, &error_local)) {
		/* ENOTTY / EOPNOTSUPP: the driver never will (mdev); other errors may pass */
		if (migd_error_matches_errno(error_local, ENOTTY) ||
		    migd_error_matches_errno(error_local, EOPNOTSUPP) ||
		    g_error_matches(error_local, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED)) {
			lp->unsupported = TRUE;
			lp->wanted = FALSE;
		}
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	g_debug("%s: in low power%s", migd_device_get_name(device),
		lp->eventfd >= 0 ? " (wake-up eventfd)" : "");
	return TRUE;
}

gboolean
migd_low_power_exit(MigdLowPower *self, MigdDevice *device, GError **error)
{
	MigdLowPowerDevice *lp = migd_low_power_get(self, device, FALSE);

	if (lp == NULL)
		return TRUE;
	lp->wanted = FALSE;
	g_clear_handle_id(&lp->reenter_id, g_source_remove);
	if (!lp->engaged)
		return TRUE;
	/* LOW_POWER_EXIT may signal the eventfd itself: engaged is cleared first */
	lp->engaged = FALSE;
	if (!migd_device_low_power_exit(device, error)) {
		g_prefix_error(error, "%s: leaving low power: ", migd_device_get_name(device));
		return FALSE;
	}
	return TRUE;
}

void
migd_low_power_remove(MigdLowPower *self, MigdDevice *device)
{
	g_autoptr(GError) error = NULL;

	if (!migd_low_power_exit(self, device, &error))
		g_warning("%s", error->message);
	g_hash_table_remove(self->devices, device);
}

void
migd_low_power_set_reenter_delay(MigdLowPower *self, guint ms)
{
	self->reenter_ms = ms;
}

gboolean
migd_low_power_is_engaged(MigdLowPower *self, MigdDevice *device)
{
	MigdLowPowerDevice *lp = migd_low_power_get(self, device, FALSE);
	return lp != NULL && lp->engaged;
}

guint64
migd_low_power_get_wakeups(MigdLowPower *self, MigdDevice *device)
{
	MigdLowPowerDevice *lp = migd_low_power_get(self, device, FALSE);
	return lp != NULL ? lp->wakeups : 0;
}
