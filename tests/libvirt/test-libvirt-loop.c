/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The GLib event loop under libvirt's public virEvent* API, which dispatches to
 * the registered implementation exactly as libvirt's own client code does.
 * Waits are bounded by a GLib timeout; nothing sleeps to synchronise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <unistd.h>

#include <libvirt/libvirt.h>

#include "migd-error.h"
#include "migd-libvirt-loop.h"
#include "migd-test-util.h"

#define WAIT_MS 5000

static GThread *main_thread;

typedef struct {
	gint calls;
	gint last_watch;
	gint last_fd;
	gint last_events;
	gint frees;
	gboolean in_callback;
	gboolean freed_inside_callback;
	gboolean wrong_thread;
	gboolean remove_self;
	gboolean drain;
} Probe;

static void
probe_free(void *opaque)
{
	Probe *p = opaque;

	p->frees++;
	if (p->in_callback)
		p->freed_inside_callback = TRUE;
}

static void
handle_cb(int watch, int fd, int events, void *opaque)
{
	Probe *p = opaque;
	gchar buf[16];

	p->in_callback = TRUE;
	p->calls++;
	p->last_watch = watch;
	p->last_fd = fd;
	p->last_events = events;
	if (g_thread_self() != main_thread)
		p->wrong_thread = TRUE;
	if (p->drain && (events & VIR_EVENT_HANDLE_READABLE))
		g_assert_cmpint(read(fd, buf, sizeof(buf)), >=, 0);
	if (p->remove_self)
		g_assert_cmpint(virEventRemoveHandle(watch), ==, 0);
	p->in_callback = FALSE;
}

static void
timer_cb(int timer, void *opaque)
{
	Probe *p = opaque;

	p->in_callback = TRUE;
	p->calls++;
	p->last_watch = timer;
	if (g_thread_self() != main_thread)
		p->wrong_thread = TRUE;
	if (p->remove_self)
		g_assert_cmpint(virEventRemoveTimeout(timer), ==, 0);
	p->in_callback = FALSE;
}

static int
group_setup(void **state)
{
	g_autoptr(GError) error = NULL;

	main_thread = g_thread_self();
	if (!migd_libvirt_loop_register(&error)) {
		g_printerr("%s\n", error->message);
		return -1;
	}
	return 0;
}

static void
test_register_once(void **state)
{
	g_autoptr(GError) error = NULL;

	assert_true(migd_libvirt_loop_is_registered());
	assert_ptr_equal(migd_libvirt_loop_get_context(), g_main_context_default());
	/* again from the same context: nothing happens */
	assert_true(migd_libvirt_loop_register(&error));
	assert_null(error);
}

static gpointer
register_elsewhere(gpointer data)
{
	g_autoptr(GMainContext) context = g_main_context_new();
	GError **error = data;
	gboolean ok;

	g_main_context_push_thread_default(context);
	ok = migd_libvirt_loop_register(error);
	g_main_context_pop_thread_default(context);
	return GINT_TO_POINTER(ok);
}

static void
test_register_other_context_refused(void **state)
{
	g_autoptr(GError) error = NULL;
	GThread *thread = g_thread_new("register", register_elsewhere, &error);

	assert_false(GPOINTER_TO_INT(g_thread_join(thread)));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_BUSY));
	/* still bound to the first context */
	assert_ptr_equal(migd_libvirt_loop_get_context(), g_main_context_default());
}

static void
test_handle_readable(void **state)
{
	Probe p = {.drain = TRUE};
	guint base = migd_libvirt_loop_count_live();
	gint fds[2];
	gint watch;

	assert_int_equal(pipe(fds), 0);
	watch = virEventAddHandle(fds[0], VIR_EVENT_HANDLE_READABLE, handle_cb, &p, probe_free);
	assert_true(watch > 0);
	assert_int_equal(migd_libvirt_loop_count_live(), base + 1);
	/* nothing to read: nothing dispatched */
	assert_false(g_main_context_iteration(NULL, FALSE));
	assert_int_equal(p.calls, 0);

	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_true(migd_test_wait_count(&p.calls, 1, WAIT_MS));
	assert_int_equal(p.last_watch, watch);
	assert_int_equal(p.last_fd, fds[0]);
	assert_int_equal(p.last_events, VIR_EVENT_HANDLE_READABLE);
	assert_false(p.wrong_thread);

	/* the free callback never runs from inside the remove function */
	assert_int_equal(virEventRemoveHandle(watch), 0);
	assert_int_equal(p.frees, 0);
	assert_true(migd_test_wait_count(&p.frees, 1, WAIT_MS));
	assert_int_equal(p.frees, 1);
	assert_int_equal(migd_libvirt_loop_count_live(), base);
	/* removing twice fails, and the fd is not watched any more */
	assert_int_equal(virEventRemoveHandle(watch), -1);
	assert_int_equal(write(fds[1], "y", 1), 1);
	assert_false(g_main_context_iteration(NULL, FALSE));
	assert_int_equal(p.calls, 1);
	close(fds[0]);
	close(fds[1]);
}

static void
test_handle_writable_and_update(void **state)
{
	Probe p = {0};
	gint fds[2];
	gint watch;

	assert_int_equal(pipe(fds), 0);
	/* no events at first: an fd that is not polled */
	watch = virEventAddHandle(fds[1], 0, handle_cb, &p, probe_free);
	assert_true(watch > 0);
	assert_false(g_main_context_iteration(NULL, FALSE));
	assert_int_equal(p.calls, 0);
	/* an empty pipe is writable at once */
	virEventUpdateHandle(watch, VIR_EVENT_HANDLE_WRITABLE);
	assert_true(migd_test_wait_count(&p.calls, 1, WAIT_MS));
	assert_int_equal(p.last_events, VIR_EVENT_HANDLE_WRITABLE);
	/* back to nothing: no more callbacks although it stays writable */
	virEventUpdateHandle(watch, 0);
	p.calls = 0;
	migd_test_spin_ms(30);
	assert_int_equal(p.calls, 0);
	assert_int_equal(virEventRemoveHandle(watch), 0);
	assert_true(migd_test_wait_count(&p.frees, 1, WAIT_MS));
	close(fds[0]);
	close(fds[1]);
}

static void
test_hangup_not_polled_when_unwanted(void **state)
{
	Probe p = {0};
	gint fds[2];
	gint watch;

	assert_int_equal(pipe(fds), 0);
	close(fds[1]); /* the read end now reports HUP whatever is asked */
	watch = virEventAddHandle(fds[0], VIR_EVENT_HANDLE_READABLE, handle_cb, &p, probe_free);
	assert_true(migd_test_wait_count(&p.calls, 1, WAIT_MS));
	assert_true(p.last_events & VIR_EVENT_HANDLE_HANGUP);

	/* libvirt stops listening: the loop must go idle, not spin on POLLHUP */
	virEventUpdateHandle(watch, 0);
	p.calls = 0;
	for (guint i = 0; i < 50; i++)
		assert_false(g_main_context_iteration(NULL, FALSE));
	assert_int_equal(p.calls, 0);
	/* and back */
	virEventUpdateHandle(watch, VIR_EVENT_HANDLE_READABLE);
	assert_true(migd_test_wait_count(&p.calls, 1, WAIT_MS));
	assert_true(p.last_events & VIR_EVENT_HANDLE_HANGUP);
	assert_int_equal(virEventRemoveHandle(watch), 0);
	assert_true(migd_test_wait_count(&p.frees, 1, WAIT_MS));
	close(fds[0]);
}

static void
test_handle_remove_inside_callback(void **state)
{
	Probe p = {.remove_self = TRUE};
	gint fds[2];
	gint watch;

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "x", 1), 1); /* readable, never drained */
	watch = virEventAddHandle(fds[0], VIR_EVENT_HANDLE_READABLE, handle_cb, &p, probe_free);
	assert_true(watch > 0);
	assert_true(migd_test_wait_count(&p.frees, 1, WAIT_MS));
	/* called once, freed later from a clean stack, never again */
	assert_int_equal(p.calls, 1);
	assert_false(p.freed_inside_callback);
	migd_test_spin_ms(20);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.frees, 1);
	close(fds[0]);
	close(fds[1]);
}

static void
test_timeout_zero_fires_every_iteration(void **state)
{
	Probe p = {0};
	gint timer = virEventAddTimeout(0, timer_cb, &p, probe_free);

	assert_true(timer > 0);
	for (gint i = 1; i <= 5; i++) {
		assert_true(g_main_context_iteration(NULL, FALSE));
		assert_int_equal(p.calls, i);
	}
	assert_int_equal(p.last_watch, timer);
	/* -1 disables it */
	virEventUpdateTimeout(timer, -1);
	for (guint i = 0; i < 10; i++)
		assert_false(g_main_context_iteration(NULL, FALSE));
	assert_int_equal(p.calls, 5);
	assert_int_equal(virEventRemoveTimeout(timer), 0);
	assert_int_equal(p.frees, 0);
	assert_true(migd_test_wait_count(&p.frees, 1, WAIT_MS));
	assert_false(p.wrong_thread);
}

static void
test_timeout_periodic(void **state)
{
	Probe p = {0};
	gint64 start = g_get_monotonic_time();
	gint timer = virEventAddTimeout(20, timer_cb, &p, probe_free);

	assert_true(timer > 0);
	assert_true(migd_test_wait_count(&p.calls, 3, WAIT_MS));
	/* three periods of 20 ms at least, and far less than the bound */
	assert_true(g_get_monotonic_time() - start >= 3 * 20 * 1000 - 1000);
	assert_int_equal(virEventRemoveTimeout(timer), 0);
	assert_true(migd_test_wait_count(&p.frees, 1, WAIT_MS));
	/* a removed timer does not fire */
	p.calls = 0;
	migd_test_spin_ms(50);
	assert_int_equal(p.calls, 0);
}

static void
test_timeout_disabled_then_armed(void **state)
{
	Probe p = {0};
	gint timer = virEventAddTimeout(-1, timer_cb, &p, NULL);

	assert_true(timer > 0);
	migd_test_spin_ms(30);
	assert_int_equal(p.calls, 0);
	virEventUpdateTimeout(timer, 10);
	assert_true(migd_test_wait_count(&p.calls, 1, WAIT_MS));
	assert_int_equal(virEventRemoveTimeout(timer), 0);
	/* no free callback given: the entry still goes away */
	migd_test_spin_ms(10);
}

static void
test_timeout_remove_inside_callback(void **state)
{
	Probe p = {.remove_self = TRUE};
	gint timer = virEventAddTimeout(0, timer_cb, &p, probe_free);

	assert_true(timer > 0);
	assert_true(migd_test_wait_count(&p.frees, 1, WAIT_MS));
	assert_int_equal(p.calls, 1);
	assert_false(p.freed_inside_callback);
	for (guint i = 0; i < 10; i++)
		g_main_context_iteration(NULL, FALSE);
	assert_int_equal(p.calls, 1);
}

static void
test_remove_mismatched_ids(void **state)
{
	Probe p = {0};
	gint timer = virEventAddTimeout(-1, timer_cb, &p, probe_free);

	assert_int_equal(virEventRemoveHandle(999999), -1);
	assert_int_equal(virEventRemoveTimeout(999999), -1);
	/* a timer id is not a handle id */
	assert_int_equal(virEventRemoveHandle(timer), -1);
	/* updates of unknown ids are ignored */
	virEventUpdateHandle(999999, VIR_EVENT_HANDLE_READABLE);
	virEventUpdateTimeout(999999, 0);
	assert_int_equal(virEventRemoveTimeout(timer), 0);
	assert_int_equal(virEventRemoveTimeout(timer), -1);
	assert_true(migd_test_wait_count(&p.frees, 1, WAIT_MS));
	/* invalid arguments are refused */
	assert_int_equal(virEventAddHandle(-1, VIR_EVENT_HANDLE_READABLE, handle_cb, &p, NULL), -1);
}

typedef struct {
	Probe timer_probe;
	gint timer;
	gint handle;
	gint remove_result;
} CrossThread;

static gpointer
cross_thread_main(gpointer data)
{
	CrossThread *ct = data;

	/* libvirt's client library calls these from whatever thread runs an API */
	ct->timer = virEventAddTimeout(0, timer_cb, &ct->timer_probe, probe_free);
	ct->remove_result = virEventRemoveHandle(ct->handle);
	return NULL;
}

static void
test_calls_from_another_thread(void **state)
{
	CrossThread ct = {{0}};
	Probe hp = {0};
	gint fds[2];
	GThread *thread;

	assert_int_equal(pipe(fds), 0);
	ct.handle =
	    virEventAddHandle(fds[0], VIR_EVENT_HANDLE_READABLE, handle_cb, &hp, probe_free);
	thread = g_thread_new("libvirt-api", cross_thread_main, &ct);
	g_thread_join(thread);
	assert_true(ct.timer > 0);
	assert_int_equal(ct.remove_result, 0);
	/* dispatched, and freed, on the loop's thread */
	assert_true(migd_test_wait_count(&ct.timer_probe.calls, 1, WAIT_MS));
	assert_false(ct.timer_probe.wrong_thread);
	assert_true(migd_test_wait_count(&hp.frees, 1, WAIT_MS));
	assert_int_equal(virEventRemoveTimeout(ct.timer), 0);
	assert_true(migd_test_wait_count(&ct.timer_probe.frees, 1, WAIT_MS));
	close(fds[0]);
	close(fds[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_register_once),
	    cmocka_unit_test(test_register_other_context_refused),
	    cmocka_unit_test(test_handle_readable),
	    cmocka_unit_test(test_handle_writable_and_update),
	    cmocka_unit_test(test_hangup_not_polled_when_unwanted),
	    cmocka_unit_test(test_handle_remove_inside_callback),
	    cmocka_unit_test(test_timeout_zero_fires_every_iteration),
	    cmocka_unit_test(test_timeout_periodic),
	    cmocka_unit_test(test_timeout_disabled_then_armed),
	    cmocka_unit_test(test_timeout_remove_inside_callback),
	    cmocka_unit_test(test_remove_mismatched_ids),
	    cmocka_unit_test(test_calls_from_another_thread),
	};

	return cmocka_run_group_tests_name("libvirt-loop", tests, group_setup, NULL);
}
