/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Idle devices in low power on the simulator: entry with a wake-up eventfd,
 * a wake-up seen on the main loop and low power entered again, explicit exit
 * before use, and a driver without low power (mtty: ENOTTY) left alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "migd-error.h"
#include "migd-low-power.h"
#include "migd-sim-device.h"
#include "engine-test-util.h"

static MigdDevice *
sim(const gchar *spec)
{
	MigdDevice *dev = migd_test_sim_device(spec, NULL);
	assert_true(migd_device_probe(dev, NULL));
	return dev;
}

static gboolean
run_until(gboolean (*done)(gpointer), gpointer data, guint timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000;
	while (!done(data) && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, FALSE) || (g_usleep(1000), TRUE);
	return done(data);
}

typedef struct {
	MigdLowPower *lp;
	MigdDevice *device;
	gboolean want_engaged;
} Wait;

static gboolean
engaged_is(gpointer user_data)
{
	Wait *w = user_data;
	return migd_low_power_is_engaged(w->lp, w->device) == w->want_engaged;
}

static void
test_enter_wake_reenter_exit(void **state)
{
	g_autoptr(MigdLowPower) lp = migd_low_power_new();
	g_autoptr(MigdDevice) dev = sim("mlx5:seed=1");
	g_autoptr(GError) error = NULL;
	Wait w = {.lp = lp, .device = dev};

	migd_low_power_set_reenter_delay(lp, 50);
	assert_true(migd_low_power_enter(lp, dev, &error));
	assert_true(migd_low_power_is_engaged(lp, dev));
	/* the kernel refuses a second entry while engaged: so does the simulator */
	assert_false(migd_device_low_power_entry(dev, -1, &error));
	assert_true(migd_error_matches_errno(error, EINVAL));
	g_clear_error(&error);

	/* a host access wakes it: seen through the eventfd on the main loop */
	migd_sim_device_wake(MIGD_SIM_DEVICE(dev));
	w.want_engaged = FALSE;
	assert_true(run_until(engaged_is, &w, 2000));
	assert_int_equal(migd_low_power_get_wakeups(lp, dev), 1);
	/* left alone, it goes back */
	w.want_engaged = TRUE;
	assert_true(run_until(engaged_is, &w, 2000));

	/* before use: out, and it stays out */
	assert_true(migd_low_power_exit(lp, dev, &error));
	assert_false(migd_low_power_is_engaged(lp, dev));
	/* the device really left: a fresh entry is accepted (then undone) */
	assert_true(migd_device_low_power_entry(dev, -1, &error));
	assert_true(migd_device_low_power_exit(dev, &error));
	w.want_engaged = TRUE;
	assert_false(run_until(engaged_is, &w, 200));
	/* exiting twice is harmless */
	assert_true(migd_low_power_exit(lp, dev, &error));
}

static void
test_driver_without_low_power(void **state)
{
	g_autoptr(MigdLowPower) lp = migd_low_power_new();
	g_autoptr(MigdDevice) dev = sim("mtty:seed=1");
	g_autoptr(GError) error = NULL;

	/* mdev: the vfio core answers ENOTTY */
	assert_false(migd_low_power_enter(lp, dev, &error));
	assert_true(migd_error_matches_errno(error, ENOTTY));
	g_clear_error(&error);
	/* remembered: not asked again */
	assert_false(migd_low_power_enter(lp, dev, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	assert_false(migd_low_power_is_engaged(lp, dev));
	assert_true(migd_low_power_exit(lp, dev, NULL));
}

/* freeing takes every device out */
static void
test_free_exits(void **state)
{
	MigdLowPower *lp = migd_low_power_new();
	g_autoptr(MigdDevice) dev = sim("hisi_acc:seed=1");
	g_autoptr(GError) error = NULL;

	assert_true(migd_low_power_enter(lp, dev, &error));
	migd_low_power_free(lp);
	assert_true(migd_device_low_power_entry(dev, -1, &error));
	assert_true(migd_device_low_power_exit(dev, &error));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_enter_wake_reenter_exit),
	    cmocka_unit_test(test_driver_without_low_power),
	    cmocka_unit_test(test_free_exits),
	};
	return cmocka_run_group_tests_name("low-power", tests, NULL, NULL);
}
