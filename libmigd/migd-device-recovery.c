/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The recovery policy after a failed SET of MIG_DEVICE_STATE. The kernel copies
 * the *requested* state back on failure, so the real state is read with a GET;
 * the device may be at any step of the path, or in ERROR. Then: go to the
 * recover state if a path exists, else VFIO_DEVICE_RESET, which must leave the
 * device RUNNING (some drivers, e.g. hisi_acc, do not: that is reported loudly,
 * or, where the plugin says the driver's open_device sets RUNNING, the device
 * is closed and reopened).
 */
#include "config.h"

#include <errno.h>

#include "migd-device-private.h"
#include "migd-plugin.h"
#include "migd-device.h"
#include "migd-error.h"

void
migd_recovery_report_clear(MigdRecoveryReport *report)
{
	g_return_if_fail(report != NULL);
	g_clear_pointer(&report->detail, g_free);
	report->requested = MIGD_STATE_ERROR;
	report->failed_from = MIGD_STATE_ERROR;
	report->failed_to = MIGD_STATE_ERROR;
	report->state_read_back = MIGD_STATE_ERROR;
	report->recover_target = MIGD_STATE_ERROR;
	report->action = MIGD_RECOVERY_NONE;
	report->final_state = MIGD_STATE_ERROR;
}

const gchar *
migd_recovery_action_to_string(MigdRecoveryAction action)
{
	switch (action) {
	case MIGD_RECOVERY_NONE:
		return "none";
	case MIGD_RECOVERY_ALREADY_SAFE:
		return "already-safe";
	case MIGD_RECOVERY_RECOVERED:
		return "recovered";
	case MIGD_RECOVERY_RESET:
		return "reset";
	case MIGD_RECOVERY_FAILED:
		return "failed";
	case MIGD_RECOVERY_REOPENED:
		return "reopened";
	default:
		return "unknown";
	}
}

static void migd_recovery_report_set(MigdRecoveryReport *report, MigdRecoveryAction action,
				     MigdState final_state, const gchar *fmt, ...)
    G_GNUC_PRINTF(4, 5);

static void
migd_recovery_report_set(MigdRecoveryReport *report, MigdRecoveryAction action,
			 MigdState final_state, const gchar *fmt, ...)
{
	va_list args;

	if (report == NULL)
		return;
	report->action = action;
	report->final_state = final_state;
	g_free(report->detail);
	va_start(args, fmt);
	report->detail = g_strdup_vprintf(fmt, args);
	va_end(args);
}

/*
 * The driver's quirk: its reset may keep a state no walk leaves (hisi_acc in
 * RESUMING with nothing loaded fails RESUMING -> STOP), but its close_device
 * drops the files and its open_device sets RUNNING. Closing and reopening is
 * the only way back, and a device fd its owner handed over cannot be reopened
 * here: that is loud.
 */
static gboolean
migd_device_recover_by_reopen(MigdDevice *self, MigdState stuck, const gchar *why,
			      MigdRecoveryReport *report, GError **error)
{
	const gchar *name = migd_device_get_name(self);
	MigdState after = MIGD_STATE_ERROR;
	g_autoptr(GError) error_local = NULL;

	if (!migd_device_reopen(self, &error_local)) {
		migd_recovery_report_set(
		    report, MIGD_RECOVERY_FAILED, stuck,
		    "%s; still %s after VFIO_DEVICE_RESET and not reopened: %s", why,
		    migd_state_to_string(stuck), error_local->message);
		g_warning("%s: still %s after VFIO_DEVICE_RESET and only closing and reopening "
			  "its fd brings it back, which failed: %s: device needs attention",
			  name, migd_state_to_string(stuck), error_local->message);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_RECOVERY_FAILED,
			    "%s: still %s after VFIO_DEVICE_RESET and not reopened: %s", name,
			    migd_state_to_string(stuck), error_local->message);
		return FALSE;
	}
	if (!migd_device_get_state(self, &after, &error_local) || after != MIGD_STATE_RUNNING) {
		const gchar *what =
		    error_local != NULL ? error_local->message : migd_state_to_string(after);
		migd_recovery_report_set(report, MIGD_RECOVERY_FAILED, after,
					 "%s; reopened, and then %s", why, what);
		g_warning("%s: reopened, and then %s: device needs attention", name, what);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_RECOVERY_FAILED,
			    "%s: reopened, and then %s", name, what);
		return FALSE;
	}
	migd_recovery_report_set(report, MIGD_RECOVERY_REOPENED, MIGD_STATE_RUNNING,
				 "%s; still %s after VFIO_DEVICE_RESET, as its driver does; "
				 "closed and reopened: RUNNING",
				 why, migd_state_to_string(stuck));
	g_message("%s: %s; still %s after VFIO_DEVICE_RESET, as its driver does; closed and "
		  "reopened to RUNNING",
		  name, why, migd_state_to_string(stuck));
	return TRUE;
}

/* VFIO_DEVICE_RESET, then check that the FSM really is back in RUNNING */
static gboolean
migd_device_recover_by_reset(MigdDevice *self, MigdState read_back, const gchar *why,
			     MigdRecoveryReport *report, GError **error)
{
	const gchar *name = migd_device_get_name(self);
	MigdState after = MIGD_STATE_ERROR;
	g_autoptr(GError) error_local = NULL;

	if (!migd_device_reset(self, &error_local)) {
		migd_recovery_report_set(report, MIGD_RECOVERY_FAILED, read_back,
					 "%s; VFIO_DEVICE_RESET failed: %s", why,
					 error_local->message);
		g_warning("%s: device left in %s: %s; VFIO_DEVICE_RESET failed: %s", name,
			  migd_state_to_string(read_back), why, error_local->message);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_RECOVERY_FAILED,
			    "%s: %s; VFIO_DEVICE_RESET failed: %s", name, why,
			    error_local->message);
		return FALSE;
	}
	if (!migd_device_get_state(self, &after, &error_local)) {
		migd_recovery_report_set(report, MIGD_RECOVERY_FAILED, MIGD_STATE_ERROR,
					 "%s; state unreadable after reset: %s", why,
					 error_local->message);
		g_warning("%s: state unreadable after VFIO_DEVICE_RESET: %s", name,
			  error_local->message);
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_RECOVERY_FAILED,
			    "%s: state unreadable after VFIO_DEVICE_RESET: %s", name,
			    error_local->message);
		return FALSE;
	}
	/* a reset that left the FSM alone (hisi_acc) may still allow the walk back */
	if (after != MIGD_STATE_RUNNING && after != MIGD_STATE_ERROR) {
		g_autoptr(GError) error_walk = NULL;
		/* a driver's plugin says whether this is its known behaviour or a surprise */
		gboolean known = (migd_device_get_recovery_quirks(self) &
				  MIGD_RECOVERY_QUIRK_RESET_KEEPS_STATE) != 0;
		if (migd_device_walk_to(self, after, MIGD_STATE_RUNNING, &error_walk)) {
			migd_recovery_report_set(report, MIGD_RECOVERY_RESET, MIGD_STATE_RUNNING,
						 "%s; VFIO_DEVICE_RESET left it in %s (%s), "
						 "walked back to RUNNING",
						 why, migd_state_to_string(after),
						 known ? "a known quirk of its driver"
						       : "not what the uAPI promises");
			if (known)
				g_message("%s: still %s after VFIO_DEVICE_RESET, as its driver "
					  "does; walked back to RUNNING",
					  name, migd_state_to_string(after));
			else
				g_warning("%s: still %s after VFIO_DEVICE_RESET; walked back to "
					  "RUNNING",
					  name, migd_state_to_string(after));
			return TRUE;
		}
		g_debug("%s: no way back from %s: %s", name, migd_state_to_string(after),
			error_walk->message);
		/* the failed walk may have moved it: report where it is now */
		if (!migd_device_get_state(self, &after, NULL))
			after = MIGD_STATE_ERROR;
	}
	if (after != MIGD_STATE_RUNNING &&
	    (migd_device_get_recovery_quirks(self) & MIGD_RECOVERY_QUIRK_REOPEN_RESETS_STATE) != 0)
		return migd_device_recover_by_reopen(self, after, why, report, error);
	if (after != MIGD_STATE_RUNNING) {
		migd_recovery_report_set(report, MIGD_RECOVERY_FAILED, after,
					 "%s; still %s after VFIO_DEVICE_RESET", why,
					 migd_state_to_string(after));
		g_warning("%s: still %s after VFIO_DEVICE_RESET: device needs attention", name,
			  migd_state_to_string(after));
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_RECOVERY_FAILED,
			    "%s: still %s after VFIO_DEVICE_RESET", name,
			    migd_state_to_string(after));
		return FALSE;
	}
	migd_recovery_report_set(report, MIGD_RECOVERY_RESET, MIGD_STATE_RUNNING,
				 "%s; VFIO_DEVICE_RESET brought it back to RUNNING", why);
	g_message("%s: %s; reset to RUNNING", name, why);
	return TRUE;
}

gboolean
migd_device_recover(MigdDevice *self, MigdState recover_state, MigdRecoveryReport *report,
		    GError **error)
{
	const gchar *name = migd_device_get_name(self);
	MigdState read_back = MIGD_STATE_ERROR;
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *why = NULL;

	g_return_val_if_fail(MIGD_IS_DEVICE(self), FALSE);

	if (report != NULL)
		report->recover_target = recover_state;

	if (!migd_device_get_state(self, &read_back, &error_local)) {
		/* a vanished device has nothing left to recover; say so precisely */
		if (migd_error_matches_errno(error_local, ENODEV) ||
		    g_error_matches(error_local, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE)) {
			migd_recovery_report_set(report, MIGD_RECOVERY_FAILED, MIGD_STATE_ERROR,
						 "device is gone: %s", error_local->message);
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE,
				    "%s: device is gone: %s", name, error_local->message);
			return FALSE;
		}
		/* the state is unknown: a reset is the only safe way back */
		why = g_strdup_printf("state unreadable (%s)", error_local->message);
		return migd_device_recover_by_reset(self, MIGD_STATE_ERROR, why, report, error);
	}
	if (report != NULL)
		report->state_read_back = read_back;

	/*
	 * ERROR first: as a recover state it means "none" (reset), so a device really
	 * in ERROR must never count as already being where it should be
	 */
	if (read_back == MIGD_STATE_ERROR) {
		why = g_strdup("device went to ERROR");
		return migd_device_recover_by_reset(self, read_back, why, report, error);
	}
	if (read_back == recover_state) {
		migd_recovery_report_set(report, MIGD_RECOVERY_ALREADY_SAFE, read_back,
					 "device stayed in %s", migd_state_to_string(read_back));
		return TRUE;
	}
	/* recover_state ERROR means "no recover state": reset straight away, as QEMU does */
	if (recover_state == MIGD_STATE_ERROR) {
		why = g_strdup_printf("device left in %s", migd_state_to_string(read_back));
		return migd_device_recover_by_reset(self, read_back, why, report, error);
	}
	if (migd_device_walk_to(self, read_back, recover_state, &error_local)) {
		migd_recovery_report_set(report, MIGD_RECOVERY_RECOVERED, recover_state,
					 "device was in %s, moved back to %s",
					 migd_state_to_string(read_back),
					 migd_state_to_string(recover_state));
		g_message("%s: recovered from %s to %s", name, migd_state_to_string(read_back),
			  migd_state_to_string(recover_state));
		return TRUE;
	}
	why = g_strdup_printf("device was in %s and could not return to %s (%s)",
			      migd_state_to_string(read_back), migd_state_to_string(recover_state),
			      error_local->message);
	return migd_device_recover_by_reset(self, read_back, why, report, error);
}
