/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdDevice's arc-by-arc walk and the recovery policy, over a scripted backend
 * that fails chosen arcs the ways drivers do: staying at the last state
 * reached, landing in ERROR, or resetting (or not) on VFIO_DEVICE_RESET.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <unistd.h>

#include "migd-device.h"
#include "migd-error.h"
#include "migd-fsm.h"
#include "migd-plugin.h"

typedef enum {
	FAKE_FAIL_STAY,	    /* the arc fails, state unchanged (mlx5: last state reached) */
	FAKE_FAIL_TO_ERROR, /* the arc fails and the device lands in ERROR */
} FakeFailMode;

typedef enum {
	FAKE_RESET_OK,	   /* reset -> RUNNING */
	FAKE_RESET_EIO,	   /* the ioctl fails */
	FAKE_RESET_NO_FSM, /* the ioctl succeeds but the FSM stays put (hisi_acc quirk) */
} FakeResetMode;

#define MIGD_TYPE_FAKE_DEVICE (migd_fake_device_get_type())
G_DECLARE_FINAL_TYPE(MigdFakeDevice, migd_fake_device, MIGD, FAKE_DEVICE, MigdDevice)

struct _MigdFakeDevice {
	MigdDevice parent_instance;
	guint32 flags;
	MigdState state;
	GString *log; /* "RU>RP RP>ST reset " */
	gint fail_from[4], fail_to[4], fail_errno[4];
	FakeFailMode fail_mode[4];
	guint n_fail;
	FakeResetMode reset_mode;
	gboolean gone;		 /* ENODEV on everything */
	gboolean fd_everywhere;	 /* return a data fd on every arc (driver bug) */
	gboolean never_fd;	 /* never return a data fd (driver bug) */
	gboolean reopen_refused; /* reopen: MIGD_ERROR_NOT_SUPPORTED (an adopted fd) */
};

G_DEFINE_TYPE(MigdFakeDevice, migd_fake_device, MIGD_TYPE_DEVICE)

static const gchar *
ab(MigdState s)
{
	static const gchar *const abbrev[] = {"ER", "ST", "RU", "SC", "RE", "RP", "PC", "PP"};
	return abbrev[s];
}

static gboolean
fake_probe(MigdDevice *device, MigdDeviceFeatures *features, GError **error)
{
	MigdFakeDevice *self = MIGD_FAKE_DEVICE(device);
	features->migration = self->flags != 0;
	features->mig_flags = self->flags;
	return TRUE;
}

static gboolean
fake_get_state(MigdDevice *device, MigdState *state, GError **error)
{
	MigdFakeDevice *self = MIGD_FAKE_DEVICE(device);
	if (self->gone) {
		migd_set_errno_error(error, ENODEV, "GET MIG_DEVICE_STATE");
		return FALSE;
	}
	*state = self->state;
	return TRUE;
}

static gboolean
fake_set_state(MigdDevice *device, MigdState state, MigdDataFd **data_fd, GError **error)
{
	MigdFakeDevice *self = MIGD_FAKE_DEVICE(device);
	MigdState next = MIGD_STATE_ERROR;
	gint fds[2];

	g_string_append_printf(self->log, "%s>%s ", ab(self->state), ab(state));
	/* the fake is a driver: it must only ever be asked for a real single arc */
	assert_true(migd_fsm_next_step(self->flags, self->state, state, &next, NULL));
	assert_int_equal(next, state);
	for (guint i = 0; i < self->n_fail; i++) {
		if (self->fail_from[i] == (gint)self->state && self->fail_to[i] == (gint)state) {
			if (self->fail_mode[i] == FAKE_FAIL_TO_ERROR)
				self->state = MIGD_STATE_ERROR;
			migd_set_errno_error(error, self->fail_errno[i], "SET %s",
					     migd_state_to_string(state));
			return FALSE;
		}
	}
	if (!self->never_fd &&
	    (self->fd_everywhere || migd_fsm_arc_opens_session(self->state, state))) {
		assert_int_equal(pipe(fds), 0);
		close(fds[1]);
		*data_fd = migd_data_fd_new(
		    fds[0], state == MIGD_STATE_RESUMING ? MIGD_DATA_FD_RESUME : MIGD_DATA_FD_SAVE,
		    NULL, NULL, NULL);
	}
	self->state = state;
	return TRUE;
}

static gboolean
fake_reset(MigdDevice *device, GError **error)
{
	MigdFakeDevice *self = MIGD_FAKE_DEVICE(device);
	g_string_append(self->log, "reset ");
	switch (self->reset_mode) {
	case FAKE_RESET_EIO:
		migd_set_errno_error(error, EIO, "VFIO_DEVICE_RESET");
		return FALSE;
	case FAKE_RESET_NO_FSM:
		return TRUE;
	default:
		self->state = MIGD_STATE_RUNNING;
		return TRUE;
	}
}

/* closing and reopening the fd: the driver's open_device sets RUNNING (hisi_acc) */
static gboolean
fake_reopen(MigdDevice *device, GError **error)
{
	MigdFakeDevice *self = MIGD_FAKE_DEVICE(device);
	g_string_append(self->log, "reopen ");
	if (self->reopen_refused) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED,
				    "the fd was handed over by its owner");
		return FALSE;
	}
	self->state = MIGD_STATE_RUNNING;
	return TRUE;
}

static void
fake_finalize(GObject *object)
{
	MigdFakeDevice *self = MIGD_FAKE_DEVICE(object);
	g_string_free(self->log, TRUE);
	G_OBJECT_CLASS(migd_fake_device_parent_class)->finalize(object);
}

static void
migd_fake_device_init(MigdFakeDevice *self)
{
	self->log = g_string_new(NULL);
	self->state = MIGD_STATE_RUNNING;
	self->flags = MIGD_MIG_FLAGS_KNOWN;
}

static void
migd_fake_device_class_init(MigdFakeDeviceClass *klass)
{
	MigdDeviceClass *device_class = MIGD_DEVICE_CLASS(klass);
	G_OBJECT_CLASS(klass)->finalize = fake_finalize;
	device_class->probe = fake_probe;
	device_class->get_state = fake_get_state;
	device_class->set_state = fake_set_state;
	device_class->reset = fake_reset;
	device_class->reopen = fake_reopen;
}

static MigdFakeDevice *
fake_new(guint32 flags, MigdState state)
{
	MigdFakeDevice *self = g_object_new(MIGD_TYPE_FAKE_DEVICE, "name", "fake0", NULL);
	self->flags = flags;
	self->state = state;
	return self;
}

static void
fake_fail(MigdFakeDevice *self, MigdState from, MigdState to, gint errnum, FakeFailMode mode)
{
	g_assert(self->n_fail < G_N_ELEMENTS(self->fail_from));
	self->fail_from[self->n_fail] = from;
	self->fail_to[self->n_fail] = to;
	self->fail_errno[self->n_fail] = errnum;
	self->fail_mode[self->n_fail] = mode;
	self->n_fail++;
}

static void
test_transition_walks_each_arc(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_RUNNING);
	g_autoptr(MigdDataFd) fd = NULL;
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	assert_true(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_STOP_COPY,
					   MIGD_STATE_RUNNING, &fd, &report, &error));
	assert_null(error);
	assert_string_equal(dev->log->str, "RU>RP RP>ST ST>SC ");
	assert_non_null(fd);
	assert_int_equal(migd_data_fd_get_direction(fd), MIGD_DATA_FD_SAVE);
	assert_int_equal(report.action, MIGD_RECOVERY_NONE);
	assert_int_equal(report.final_state, MIGD_STATE_STOP_COPY);
}

static void
test_failed_arc_recovers_by_path(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_RUNNING);
	g_autoptr(MigdDataFd) fd = NULL;
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	fake_fail(dev, MIGD_STATE_STOP, MIGD_STATE_STOP_COPY, EIO, FAKE_FAIL_STAY);
	assert_false(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_STOP_COPY,
					    MIGD_STATE_RUNNING, &fd, &report, &error));
	assert_null(fd);
	/* the original errno survives, prefixed with where it happened */
	assert_true(migd_error_matches_errno(error, EIO));
	assert_non_null(strstr(error->message, "STOP -> STOP_COPY"));
	assert_string_equal(dev->log->str, "RU>RP RP>ST ST>SC ST>RP RP>RU ");
	assert_int_equal(report.failed_from, MIGD_STATE_STOP);
	assert_int_equal(report.failed_to, MIGD_STATE_STOP_COPY);
	assert_int_equal(report.state_read_back, MIGD_STATE_STOP);
	assert_int_equal(report.action, MIGD_RECOVERY_RECOVERED);
	assert_int_equal(report.final_state, MIGD_STATE_RUNNING);
	assert_int_equal(dev->state, MIGD_STATE_RUNNING);
}

static void
test_error_state_resets(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_RUNNING);
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	fake_fail(dev, MIGD_STATE_PRE_COPY_P2P, MIGD_STATE_STOP_COPY, EIO, FAKE_FAIL_TO_ERROR);
	assert_true(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_PRE_COPY,
					   MIGD_STATE_RUNNING, NULL, NULL, NULL));
	g_string_truncate(dev->log, 0);
	assert_false(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_STOP_COPY,
					    MIGD_STATE_RUNNING, NULL, &report, &error));
	assert_string_equal(dev->log->str, "PC>PP PP>SC reset ");
	assert_int_equal(report.state_read_back, MIGD_STATE_ERROR);
	assert_int_equal(report.action, MIGD_RECOVERY_RESET);
	assert_int_equal(report.final_state, MIGD_STATE_RUNNING);
	assert_non_null(strstr(report.detail, "ERROR"));
}

static void
test_reset_that_does_not_reset_is_loud(void **state)
{
	g_autoptr(MigdFakeDevice) dev =
	    fake_new(MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_PRE_COPY, MIGD_STATE_PRE_COPY);
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	dev->reset_mode = FAKE_RESET_NO_FSM;
	fake_fail(dev, MIGD_STATE_PRE_COPY, MIGD_STATE_STOP_COPY, EBUSY, FAKE_FAIL_TO_ERROR);
	assert_false(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_STOP_COPY,
					    MIGD_STATE_RUNNING, NULL, &report, &error));
	assert_int_equal(report.action, MIGD_RECOVERY_FAILED);
	assert_int_equal(report.final_state, MIGD_STATE_ERROR);
	assert_non_null(strstr(error->message, "recovery failed"));
	assert_non_null(strstr(error->message, "still ERROR after VFIO_DEVICE_RESET"));
}

static void
test_reset_without_fsm_reset_walks_back(void **state)
{
	g_autoptr(MigdFakeDevice) dev =
	    fake_new(MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_PRE_COPY, MIGD_STATE_RESUMING);
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	/* hisi_acc: the reset does not touch the FSM, but RESUMING -> STOP -> RUNNING works */
	dev->reset_mode = FAKE_RESET_NO_FSM;
	assert_true(migd_device_recover(MIGD_DEVICE(dev), MIGD_STATE_ERROR, &report, &error));
	assert_string_equal(dev->log->str, "reset RE>ST ST>RU ");
	assert_int_equal(report.action, MIGD_RECOVERY_RESET);
	assert_int_equal(report.final_state, MIGD_STATE_RUNNING);
	assert_non_null(strstr(report.detail, "left it in RESUMING"));
}

/*
 * hisi_acc with nothing loaded: the reset keeps RESUMING and RESUMING -> STOP is
 * EINVAL. Only where the plugin says closing the fd resets the FSM is the device
 * reopened; otherwise (and when the fd cannot be reopened) recovery fails loudly.
 */
static void
test_reset_keeps_state_reopen(void **state)
{
	const guint32 flags = MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_PRE_COPY;
	g_autoptr(MigdFakeDevice) dev = fake_new(flags, MIGD_STATE_RESUMING);
	g_autoptr(MigdFakeDevice) plain = fake_new(flags, MIGD_STATE_RESUMING);
	g_autoptr(MigdFakeDevice) adopted = fake_new(flags, MIGD_STATE_RESUMING);
	const guint quirks =
	    MIGD_RECOVERY_QUIRK_RESET_KEEPS_STATE | MIGD_RECOVERY_QUIRK_REOPEN_RESETS_STATE;
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	dev->reset_mode = FAKE_RESET_NO_FSM;
	fake_fail(dev, MIGD_STATE_RESUMING, MIGD_STATE_STOP, EINVAL, FAKE_FAIL_STAY);
	migd_device_set_recovery_quirks(MIGD_DEVICE(dev), quirks);
	assert_true(migd_device_recover(MIGD_DEVICE(dev), MIGD_STATE_ERROR, &report, &error));
	assert_string_equal(dev->log->str, "reset RE>ST reopen ");
	assert_int_equal(report.action, MIGD_RECOVERY_REOPENED);
	assert_string_equal(migd_recovery_action_to_string(report.action), "reopened");
	assert_int_equal(report.final_state, MIGD_STATE_RUNNING);
	assert_non_null(strstr(report.detail, "closed and reopened"));
	assert_int_equal(dev->state, MIGD_STATE_RUNNING);

	/* no quirk: never reopened behind the driver's back */
	plain->reset_mode = FAKE_RESET_NO_FSM;
	fake_fail(plain, MIGD_STATE_RESUMING, MIGD_STATE_STOP, EINVAL, FAKE_FAIL_STAY);
	migd_recovery_report_clear(&report);
	assert_false(migd_device_recover(MIGD_DEVICE(plain), MIGD_STATE_ERROR, &report, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_RECOVERY_FAILED));
	assert_string_equal(plain->log->str, "reset RE>ST ");
	assert_int_equal(plain->state, MIGD_STATE_RESUMING);
	g_clear_error(&error);

	/* an fd its owner handed over cannot be reopened here: loud, with the reason */
	adopted->reset_mode = FAKE_RESET_NO_FSM;
	adopted->reopen_refused = TRUE;
	fake_fail(adopted, MIGD_STATE_RESUMING, MIGD_STATE_STOP, EINVAL, FAKE_FAIL_STAY);
	migd_device_set_recovery_quirks(MIGD_DEVICE(adopted), quirks);
	migd_recovery_report_clear(&report);
	assert_false(migd_device_recover(MIGD_DEVICE(adopted), MIGD_STATE_ERROR, &report, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_RECOVERY_FAILED));
	assert_non_null(strstr(error->message, "handed over by its owner"));
	assert_int_equal(report.action, MIGD_RECOVERY_FAILED);
	assert_string_equal(adopted->log->str, "reset RE>ST reopen ");
}

static void
test_reset_failure(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_STOP);
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	dev->reset_mode = FAKE_RESET_EIO;
	/* a healthy STOP device needs no reset: recovery walks to RUNNING */
	assert_true(migd_device_recover(MIGD_DEVICE(dev), MIGD_STATE_RUNNING, &report, &error));
	assert_int_equal(report.action, MIGD_RECOVERY_RECOVERED);
	assert_string_equal(dev->log->str, "ST>RP RP>RU ");
	dev->state = MIGD_STATE_ERROR;
	assert_false(migd_device_recover(MIGD_DEVICE(dev), MIGD_STATE_RUNNING, &report, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_RECOVERY_FAILED));
	assert_int_equal(report.action, MIGD_RECOVERY_FAILED);
	assert_non_null(strstr(report.detail, "VFIO_DEVICE_RESET failed"));
}

static void
test_recovery_path_fails_then_reset(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_RUNNING);
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	fake_fail(dev, MIGD_STATE_STOP, MIGD_STATE_STOP_COPY, ENOMEM, FAKE_FAIL_STAY);
	fake_fail(dev, MIGD_STATE_RUNNING_P2P, MIGD_STATE_RUNNING, EIO, FAKE_FAIL_STAY);
	assert_false(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_STOP_COPY,
					    MIGD_STATE_RUNNING, NULL, &report, &error));
	assert_true(migd_error_matches_errno(error, ENOMEM));
	assert_string_equal(dev->log->str, "RU>RP RP>ST ST>SC ST>RP RP>RU reset ");
	assert_int_equal(report.action, MIGD_RECOVERY_RESET);
	assert_int_equal(dev->state, MIGD_STATE_RUNNING);
}

static void
test_first_arc_fails_already_safe(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_RUNNING);
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	fake_fail(dev, MIGD_STATE_RUNNING, MIGD_STATE_PRE_COPY, EINVAL, FAKE_FAIL_STAY);
	assert_false(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_PRE_COPY,
					    MIGD_STATE_RUNNING, NULL, &report, &error));
	assert_int_equal(report.action, MIGD_RECOVERY_ALREADY_SAFE);
	assert_string_equal(dev->log->str, "RU>PC ");
}

static void
test_no_recover_state_resets(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_STOP);
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	fake_fail(dev, MIGD_STATE_RESUMING, MIGD_STATE_STOP, EINVAL, FAKE_FAIL_STAY);
	assert_true(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_RESUMING, MIGD_STATE_ERROR,
					   NULL, NULL, NULL));
	/* a bad stream on the destination: abort RESUMING by reset, as the uAPI says */
	assert_false(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_STOP, MIGD_STATE_ERROR,
					    NULL, &report, &error));
	assert_string_equal(dev->log->str, "ST>RE RE>ST reset ");
	assert_int_equal(report.state_read_back, MIGD_STATE_RESUMING);
	assert_int_equal(report.action, MIGD_RECOVERY_RESET);
}

/*
 * A destination aborts with no recover state (ERROR): a device that really is in
 * ERROR must be reset, not taken as "already at the recover state".
 */
static void
test_error_device_without_recover_state_resets(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_STOP);
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	fake_fail(dev, MIGD_STATE_RESUMING, MIGD_STATE_STOP, EINVAL, FAKE_FAIL_TO_ERROR);
	assert_true(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_RESUMING, MIGD_STATE_ERROR,
					   NULL, NULL, NULL));
	assert_false(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_STOP, MIGD_STATE_ERROR,
					    NULL, &report, &error));
	assert_string_equal(dev->log->str, "ST>RE RE>ST reset ");
	assert_int_equal(report.state_read_back, MIGD_STATE_ERROR);
	assert_int_equal(report.action, MIGD_RECOVERY_RESET);
	assert_int_equal(report.final_state, MIGD_STATE_RUNNING);
	assert_int_equal(dev->state, MIGD_STATE_RUNNING);

	/* the same through migd_device_recover() directly (the journal's restart path) */
	g_string_truncate(dev->log, 0);
	dev->state = MIGD_STATE_ERROR;
	assert_true(migd_device_recover(MIGD_DEVICE(dev), MIGD_STATE_ERROR, &report, NULL));
	assert_string_equal(dev->log->str, "reset ");
	assert_int_equal(report.action, MIGD_RECOVERY_RESET);
	assert_int_equal(dev->state, MIGD_STATE_RUNNING);
}

static void
test_device_gone(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_RUNNING);
	g_auto(MigdRecoveryReport) report = {0};
	g_autoptr(GError) error = NULL;

	dev->gone = TRUE;
	assert_false(migd_device_recover(MIGD_DEVICE(dev), MIGD_STATE_RUNNING, &report, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_DEVICE_GONE));
	/* no reset attempted on a vanished device */
	assert_string_equal(dev->log->str, "");
}

static void
test_refused_plans_touch_nothing(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_STOP_COPY);
	g_autoptr(MigdFakeDevice) hisi =
	    fake_new(MIGD_MIG_FLAG_STOP_COPY | MIGD_MIG_FLAG_PRE_COPY, MIGD_STATE_RUNNING);
	g_autoptr(MigdFakeDevice) none = fake_new(0, MIGD_STATE_RUNNING);
	g_autoptr(GError) e1 = NULL;
	g_autoptr(GError) e2 = NULL;
	g_autoptr(GError) e3 = NULL;
	g_autoptr(GError) e4 = NULL;

	assert_false(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_PRE_COPY,
					    MIGD_STATE_RUNNING, NULL, NULL, &e1));
	assert_true(g_error_matches(e1, MIGD_ERROR, MIGD_ERROR_REFUSED_ARC));
	assert_false(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_ERROR, MIGD_STATE_RUNNING,
					    NULL, NULL, &e2));
	assert_true(g_error_matches(e2, MIGD_ERROR, MIGD_ERROR_REFUSED_ARC));
	assert_string_equal(dev->log->str, "");
	assert_int_equal(dev->state, MIGD_STATE_STOP_COPY);

	assert_false(migd_device_transition(MIGD_DEVICE(hisi), MIGD_STATE_RUNNING_P2P,
					    MIGD_STATE_RUNNING, NULL, NULL, &e3));
	assert_true(g_error_matches(e3, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	assert_string_equal(hisi->log->str, "");

	assert_false(migd_device_transition(MIGD_DEVICE(none), MIGD_STATE_STOP, MIGD_STATE_RUNNING,
					    NULL, NULL, &e4));
	assert_true(g_error_matches(e4, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
}

static void
test_single_arc_api(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_RUNNING);
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) e1 = NULL;
	g_autoptr(GError) e2 = NULL;

	/* RUNNING -> STOP is two arcs on a P2P device */
	assert_false(migd_device_set_state_arc(MIGD_DEVICE(dev), MIGD_STATE_STOP, NULL, &e1));
	assert_true(g_error_matches(e1, MIGD_ERROR, MIGD_ERROR_REFUSED_ARC));
	assert_non_null(strstr(e1->message, "RUNNING_P2P"));
	assert_true(migd_device_set_state_arc(MIGD_DEVICE(dev), MIGD_STATE_PRE_COPY, &fd, NULL));
	assert_non_null(fd);
	assert_false(migd_device_set_state_arc(MIGD_DEVICE(dev), MIGD_STATE_PRE_COPY, NULL, &e2));
	assert_true(g_error_matches(e2, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_string_equal(dev->log->str, "RU>PC ");
}

static void
test_data_fd_out_of_sync(void **state)
{
	g_autoptr(MigdFakeDevice) dev = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_RUNNING);
	g_autoptr(MigdFakeDevice) dev2 = fake_new(MIGD_MIG_FLAGS_KNOWN, MIGD_STATE_STOP);
	g_autoptr(GError) e1 = NULL;
	g_autoptr(GError) e2 = NULL;
	g_auto(MigdRecoveryReport) report = {0};

	dev->fd_everywhere = TRUE;
	assert_false(migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_STOP, MIGD_STATE_RUNNING,
					    NULL, &report, &e1));
	assert_true(g_error_matches(e1, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
	assert_non_null(strstr(e1->message, "unexpected data fd"));
	assert_int_equal(report.final_state, MIGD_STATE_RUNNING);

	dev2->never_fd = TRUE;
	assert_false(migd_device_transition(MIGD_DEVICE(dev2), MIGD_STATE_RESUMING,
					    MIGD_STATE_ERROR, NULL, NULL, &e2));
	assert_true(g_error_matches(e2, MIGD_ERROR, MIGD_ERROR_PROTOCOL));
	assert_non_null(strstr(e2->message, "no data fd"));
	assert_int_equal(dev2->state, MIGD_STATE_RUNNING);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transition_walks_each_arc),
	    cmocka_unit_test(test_failed_arc_recovers_by_path),
	    cmocka_unit_test(test_error_state_resets),
	    cmocka_unit_test(test_reset_that_does_not_reset_is_loud),
	    cmocka_unit_test(test_reset_without_fsm_reset_walks_back),
	    cmocka_unit_test(test_reset_failure),
	    cmocka_unit_test(test_recovery_path_fails_then_reset),
	    cmocka_unit_test(test_first_arc_fails_already_safe),
	    cmocka_unit_test(test_no_recover_state_resets),
	    cmocka_unit_test(test_error_device_without_recover_state_resets),
	    cmocka_unit_test(test_device_gone),
	    cmocka_unit_test(test_reset_keeps_state_reopen),
	    cmocka_unit_test(test_refused_plans_touch_nothing),
	    cmocka_unit_test(test_single_arc_api),
	    cmocka_unit_test(test_data_fd_out_of_sync),
	};
	/* recovery warns loudly by design; keep those warnings non-fatal here */
	g_log_set_always_fatal(G_LOG_FATAL_MASK);
	return cmocka_run_group_tests_name("device-recovery", tests, NULL, NULL);
}
