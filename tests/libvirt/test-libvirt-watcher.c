/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The watcher against libvirt's test driver (test:///default, one in-memory
 * hypervisor per process shared by every connection): real lifecycle events
 * of a real connection, dispatched by the GLib loop. The test driver has no
 * migration, no job API and no close notification, so migration events and a
 * dropped connection are injected through migd-libvirt-watcher-private.h and
 * take the same paths from there; whatever libvirt can do (suspend, resume,
 * destroy, define, probes that find no job API) is real. Waits are bounded by
 * GLib timeouts; nothing sleeps to synchronise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libvirt/libvirt.h>

#include "migd-error.h"
#include "migd-libvirt-loop.h"
#include "migd-libvirt-watcher-private.h"
#include "migd-test-util.h"

#define TEST_URI "test:///default"
#define WAIT_MS	 10000
#define OTHER_XML                                                                                  \
	"<domain type='test'><name>other</name><memory>65536</memory>"                             \
	"<os><type>hvm</type></os></domain>"

static GThread *main_thread;
static virConnectPtr driver; /* the test's own read-write connection */
static virDomainPtr test_dom;
static gchar test_uuid[VIR_UUID_STRING_BUFLEN];
static guint base_live;

typedef struct {
	MigdLibvirtWatcher *watcher;
	GPtrArray *log;	   /* typed callbacks: "started 1", "failed 2 aborted", ... */
	GPtrArray *events; /* event callback: "lifecycle test 3 0", "iteration test 1" */
	GPtrArray *all;	   /* lifecycle callback, any domain: "other 2 0" */
	gint n_all;
	gint n_log;
	gint n_events;
	gint n_connected;
	gint n_disconnected;
	gchar *last_message;
	gboolean wrong_thread;
	gboolean stop_in_started;
	gboolean stop_in_event;
	gboolean unref_in_event;
	guint64 last_id;
} Rec;

static gboolean
loop_back_to_base(gpointer unused)
{
	return migd_libvirt_loop_count_live() == base_live;
}

static void
check_thread(Rec *rec)
{
	if (g_thread_self() != main_thread)
		rec->wrong_thread = TRUE;
}

static void
rec_log(Rec *rec, const MigdLibvirtMigration *m, const gchar *what, const gchar *extra)
{
	check_thread(rec);
	rec->last_id = m->id;
	g_ptr_array_add(rec->log,
			g_strdup_printf("%s %" G_GUINT64_FORMAT "%s%s", what, m->id,
					extra != NULL ? " " : "", extra != NULL ? extra : ""));
	rec->n_log++;
}

static void
on_started(MigdLibvirtWatcher *w, const MigdLibvirtMigration *m, gpointer data)
{
	Rec *rec = data;

	assert_non_null(m->map);
	assert_string_equal(m->map->peer, "tcp:127.0.0.1:47000");
	assert_string_equal(m->map->devices[0], "sim0");
	rec_log(rec, m, "started", m->late ? "late" : NULL);
	if (rec->stop_in_started)
		migd_libvirt_watcher_stop(w);
}

static void
on_switchover(MigdLibvirtWatcher *w, const MigdLibvirtMigration *m, gpointer data)
{
	rec_log(data, m, "switchover", m->postcopy ? "postcopy" : NULL);
}

static void
on_finished(MigdLibvirtWatcher *w, const MigdLibvirtMigration *m, gpointer data)
{
	rec_log(data, m, "finished", NULL);
}

static void
on_failed(MigdLibvirtWatcher *w, const MigdLibvirtMigration *m, MigdLibvirtEnd end,
	  const gchar *message, gpointer data)
{
	Rec *rec = data;

	g_free(rec->last_message);
	rec->last_message = g_strdup(message);
	rec_log(rec, m, "failed", migd_libvirt_end_to_string(end));
}

static void
on_connection(MigdLibvirtWatcher *w, gboolean connected, const gchar *message, gpointer data)
{
	Rec *rec = data;

	check_thread(rec);
	if (connected) {
		rec->n_connected++;
	} else {
		rec->n_disconnected++;
		g_free(rec->last_message);
		rec->last_message = g_strdup(message);
	}
}

static void
on_event(MigdLibvirtWatcher *w, const MigdLibvirtInput *in, gpointer data)
{
	Rec *rec = data;

	check_thread(rec);
	if (in->kind == MIGD_LIBVIRT_INPUT_LIFECYCLE)
		g_ptr_array_add(rec->events, g_strdup_printf("lifecycle %s %d %d", in->name,
							     in->event, in->detail));
	else if (in->kind == MIGD_LIBVIRT_INPUT_PROBE)
		g_ptr_array_add(rec->events, g_strdup_printf("probe %s", in->uuid));
	else
		g_ptr_array_add(rec->events, g_strdup_printf("other %s", in->name));
	rec->n_events++;
	if (rec->stop_in_event)
		migd_libvirt_watcher_stop(w);
	if (rec->unref_in_event)
		g_clear_object(&rec->watcher);
}

static void
on_lifecycle(MigdLibvirtWatcher *w, const MigdLibvirtInput *in, gpointer data)
{
	Rec *rec = data;

	check_thread(rec);
	g_ptr_array_add(rec->all, g_strdup_printf("%s %d %d", in->name, in->event, in->detail));
	rec->n_all++;
}

static const MigdLibvirtWatcherCallbacks callbacks = {
    .started = on_started,
    .switchover = on_switchover,
    .finished = on_finished,
    .failed = on_failed,
    .connection_changed = on_connection,
    .event = on_event,
    .lifecycle = on_lifecycle,
};

static const gchar *
log_at(Rec *rec, guint i)
{
	assert_true(i < rec->log->len);
	return g_ptr_array_index(rec->log, i);
}

static const gchar *
event_at(Rec *rec, guint i)
{
	assert_true(i < rec->events->len);
	return g_ptr_array_index(rec->events, i);
}

/* a watcher of @uri for domain @domain (a name or a UUID), not started */
static Rec *
rec_new(const gchar *uri, const gchar *domain, MigdLibvirtWatcherFlags flags)
{
	Rec *rec = g_new0(Rec, 1);
	g_autoptr(GPtrArray) maps =
	    g_ptr_array_new_with_free_func((GDestroyNotify)migd_libvirt_domain_map_free);
	const gchar *devices[] = {"sim0", "sim1", NULL};

	g_ptr_array_add(maps, migd_libvirt_domain_map_new(domain, devices, "tcp:127.0.0.1:47000"));
	rec->log = g_ptr_array_new_with_free_func(g_free);
	rec->events = g_ptr_array_new_with_free_func(g_free);
	rec->all = g_ptr_array_new_with_free_func(g_free);
	rec->watcher = migd_libvirt_watcher_new(uri, maps, flags, &callbacks, rec);
	migd_libvirt_watcher_set_backoff(rec->watcher, 20, 100);
	migd_libvirt_watcher_set_poll_interval(rec->watcher, 20);
	return rec;
}

static Rec *
rec_start(const gchar *domain)
{
	Rec *rec = rec_new(TEST_URI, domain, MIGD_LIBVIRT_WATCHER_NONE);
	g_autoptr(GError) error = NULL;

	assert_true(migd_libvirt_watcher_start(rec->watcher, &error));
	assert_null(error);
	assert_true(migd_test_wait_count(&rec->n_connected, 1, WAIT_MS));
	assert_true(migd_libvirt_watcher_is_connected(rec->watcher));
	return rec;
}

/* stops, frees, and waits until libvirt's handles and timers are all released */
static void
rec_free(Rec *rec)
{
	if (rec->watcher != NULL)
		migd_libvirt_watcher_stop(rec->watcher);
	g_clear_object(&rec->watcher);
	assert_true(migd_test_wait_until(loop_back_to_base, NULL, WAIT_MS));
	assert_false(rec->wrong_thread);
	g_ptr_array_unref(rec->log);
	g_ptr_array_unref(rec->events);
	g_ptr_array_unref(rec->all);
	g_free(rec->last_message);
	g_free(rec);
}

static MigdLibvirtInput
injected(MigdLibvirtInputKind kind, gint event, gint detail)
{
	MigdLibvirtInput in = {
	    .kind = kind,
	    .uuid = test_uuid,
	    .name = "test",
	    .event = event,
	    .detail = detail,
	    .operation = -1,
	    .success = -1,
	};
	return in;
}

static void
ensure_test_running(void)
{
	gint state = 0, reason = 0;

	assert_int_equal(virDomainGetState(test_dom, &state, &reason, 0), 0);
	if (state == VIR_DOMAIN_PAUSED)
		assert_int_equal(virDomainResume(test_dom), 0);
	else if (state != VIR_DOMAIN_RUNNING)
		assert_int_equal(virDomainCreate(test_dom), 0);
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
	driver = virConnectOpen(TEST_URI);
	if (driver == NULL)
		return -1;
	test_dom = virDomainLookupByName(driver, "test");
	if (test_dom == NULL || virDomainGetUUIDString(test_dom, test_uuid) < 0)
		return -1;
	base_live = migd_libvirt_loop_count_live();
	return 0;
}

static int
group_teardown(void **state)
{
	virDomainFree(test_dom);
	virConnectClose(driver);
	return 0;
}

static int
test_setup(void **state)
{
	ensure_test_running();
	return 0;
}

static void
test_lifecycle_through_main_loop(void **state)
{
	Rec *rec = rec_start("test");
	virDomainPtr other;

	assert_int_equal(rec->n_disconnected, 0);
	assert_int_equal(virDomainSuspend(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_events, 1, WAIT_MS));
	assert_string_equal(event_at(rec, 0), "lifecycle test 3 0"); /* SUSPENDED PAUSED */
	assert_int_equal(virDomainResume(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_events, 2, WAIT_MS));
	assert_string_equal(event_at(rec, 1), "lifecycle test 4 0"); /* RESUMED UNPAUSED */

	/* another domain's events are filtered out */
	other = virDomainDefineXML(driver, OTHER_XML);
	assert_non_null(other);
	assert_int_equal(virDomainCreate(other), 0);
	assert_int_equal(virDomainSuspend(other), 0);
	assert_int_equal(virDomainDestroy(other), 0);
	assert_int_equal(virDomainUndefine(other), 0);
	virDomainFree(other);
	/* this one comes after all of those: when it is here, they were dropped */
	assert_int_equal(virDomainDestroy(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_events, 3, WAIT_MS));
	assert_int_equal(rec->n_events, 3);
	assert_string_equal(event_at(rec, 2), "lifecycle test 5 1"); /* STOPPED DESTROYED */
	assert_int_equal(virDomainCreate(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_events, 4, WAIT_MS));
	assert_string_equal(event_at(rec, 3), "lifecycle test 2 0"); /* STARTED BOOTED */
	/* plain lifecycle changes are no migration */
	assert_int_equal(rec->n_log, 0);
	assert_int_equal(migd_libvirt_watcher_get_probe_count(rec->watcher), 0);
	rec_free(rec);
}

/* the destination side follows incoming domains it has no map for */
static void
test_lifecycle_of_every_domain(void **state)
{
	Rec *rec = rec_start("test");
	virDomainPtr other = virDomainDefineXML(driver, OTHER_XML);
	MigdLibvirtInput in = injected(MIGD_LIBVIRT_INPUT_ITERATION, 0, 0);
	const gchar *want[] = {"other 0 0", /* DEFINED ADDED */
			       "other 2 0", /* STARTED BOOTED */
			       "other 5 1", /* STOPPED DESTROYED */
			       "other 1 0", /* UNDEFINED REMOVED */
			       "test 3 0"};

	assert_non_null(other);
	assert_int_equal(virDomainCreate(other), 0);
	assert_int_equal(virDomainDestroy(other), 0);
	assert_int_equal(virDomainUndefine(other), 0);
	virDomainFree(other);
	/* the mapped domain's too, and only lifecycle events; the unmapped one's
	 * reached none of the mapped domains' callbacks */
	assert_int_equal(virDomainSuspend(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_events, 1, WAIT_MS));
	assert_true(migd_test_wait_count(&rec->n_all, 5, WAIT_MS));
	for (guint i = 0; i < G_N_ELEMENTS(want); i++)
		assert_string_equal(g_ptr_array_index(rec->all, i), want[i]);
	migd_libvirt_watcher_inject(rec->watcher, &in);
	assert_true(migd_test_wait_count(&rec->n_log, 1, WAIT_MS));
	assert_int_equal(rec->n_all, 5);
	assert_int_equal(rec->n_events, 3); /* suspend, iteration, probe */
	assert_string_equal(event_at(rec, 0), "lifecycle test 3 0");
	rec_free(rec);
}

static void
test_map_by_uuid(void **state)
{
	g_autofree gchar *upper = g_ascii_strup(test_uuid, -1);
	Rec *rec = rec_start(upper);

	assert_non_null(migd_libvirt_watcher_lookup(rec->watcher, test_uuid, "renamed"));
	assert_int_equal(virDomainSuspend(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_events, 1, WAIT_MS));
	assert_string_equal(event_at(rec, 0), "lifecycle test 3 0");
	rec_free(rec);
}

static void
test_injected_migration_aborted(void **state)
{
	Rec *rec = rec_start("test");
	MigdLibvirtInput in = injected(MIGD_LIBVIRT_INPUT_ITERATION, 0, 0);

	/* an iteration asks libvirt what the job is; the test driver has no job
	 * API, so it is taken for a migration */
	migd_libvirt_watcher_inject(rec->watcher, &in);
	assert_true(migd_test_wait_count(&rec->n_log, 1, WAIT_MS));
	assert_string_equal(log_at(rec, 0), "started 1");
	assert_int_equal(migd_libvirt_watcher_get_probe_count(rec->watcher), 1);
	/* a real pause by the user during pre-copy is no switchover */
	assert_int_equal(virDomainSuspend(test_dom), 0);
	assert_true(
	    migd_test_wait_count(&rec->n_events, 3, WAIT_MS)); /* iteration, probe, suspend */
	assert_string_equal(event_at(rec, 2), "lifecycle test 3 0");
	assert_int_equal(rec->n_log, 1);
	in = injected(MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_SUSPENDED,
		      VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED);
	migd_libvirt_watcher_inject(rec->watcher, &in);
	assert_int_equal(rec->n_log, 2);
	assert_string_equal(log_at(rec, 1), "switchover 1");
	/* the real resume after the switchover: libvirt gave up the migration */
	assert_int_equal(virDomainResume(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_log, 3, WAIT_MS));
	assert_string_equal(log_at(rec, 2), "failed 1 aborted");
	assert_non_null(strstr(rec->last_message, "resumed"));
	rec_free(rec);
}

static void
test_destroyed_during_migration(void **state)
{
	Rec *rec = rec_start("test");
	MigdLibvirtInput in = injected(MIGD_LIBVIRT_INPUT_ITERATION, 0, 0);

	migd_libvirt_watcher_inject(rec->watcher, &in);
	assert_true(migd_test_wait_count(&rec->n_log, 1, WAIT_MS));
	assert_int_equal(virDomainDestroy(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_log, 2, WAIT_MS));
	assert_string_equal(log_at(rec, 1), "failed 1 domain-stopped");
	assert_non_null(strstr(rec->last_message, "destroyed"));
	rec_free(rec);
}

static void
test_injected_success(void **state)
{
	Rec *rec = rec_start("test");
	MigdLibvirtInput in = injected(MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_SUSPENDED,
				       VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED);

	migd_libvirt_watcher_inject(rec->watcher, &in);
	assert_int_equal(rec->n_log, 2);
	assert_string_equal(log_at(rec, 0), "started 1 late");
	assert_string_equal(log_at(rec, 1), "switchover 1");
	in = injected(MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_STOPPED,
		      VIR_DOMAIN_EVENT_STOPPED_MIGRATED);
	migd_libvirt_watcher_inject(rec->watcher, &in);
	in = injected(MIGD_LIBVIRT_INPUT_JOB_COMPLETED, 0, 0);
	in.operation = VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT;
	migd_libvirt_watcher_inject(rec->watcher, &in);
	assert_int_equal(rec->n_log, 3);
	assert_string_equal(log_at(rec, 2), "finished 1");
	/* injected events of an unmapped domain go nowhere */
	in.uuid = "99999999-8888-7777-6666-555555555555";
	in.name = "nobody";
	migd_libvirt_watcher_inject(rec->watcher, &in);
	assert_int_equal(rec->n_events, 3);
	rec_free(rec);
}

static void
test_reconnect_after_close(void **state)
{
	Rec *rec = rec_start("test");

	assert_int_equal(migd_libvirt_watcher_get_connect_attempts(rec->watcher), 1);
	migd_libvirt_watcher_simulate_close(rec->watcher, VIR_CONNECT_CLOSE_REASON_EOF);
	assert_true(migd_test_wait_count(&rec->n_disconnected, 1, WAIT_MS));
	assert_non_null(strstr(rec->last_message, "end of file"));
	assert_false(migd_libvirt_watcher_is_connected(rec->watcher));
	assert_true(migd_test_wait_count(&rec->n_connected, 2, WAIT_MS));
	assert_int_equal(migd_libvirt_watcher_get_connect_attempts(rec->watcher), 2);
	/* the old registrations are gone: one event, once */
	assert_int_equal(virDomainSuspend(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_events, 1, WAIT_MS));
	migd_test_spin_ms(50);
	assert_int_equal(rec->n_events, 1);
	rec_free(rec);
}

static void
test_resync_after_reconnect(void **state)
{
	Rec *rec = rec_start("test");
	MigdLibvirtInput in = injected(MIGD_LIBVIRT_INPUT_ITERATION, 0, 0);

	migd_libvirt_watcher_inject(rec->watcher, &in);
	assert_true(migd_test_wait_count(&rec->n_log, 1, WAIT_MS));
	assert_int_equal(migd_libvirt_watcher_get_probe_count(rec->watcher), 1);
	/* events may have been lost: what was migrating is asked about again */
	migd_libvirt_watcher_simulate_close(rec->watcher, VIR_CONNECT_CLOSE_REASON_KEEPALIVE);
	assert_true(migd_test_wait_count(&rec->n_connected, 2, WAIT_MS));
	assert_true(migd_test_wait_count(&rec->n_events, 3,
					 WAIT_MS)); /* iteration, probe, probe after resync */
	assert_int_equal(migd_libvirt_watcher_get_probe_count(rec->watcher), 2);
	assert_string_equal(event_at(rec, 2), event_at(rec, 1));
	/* no job API here, so no polling: the count stays */
	migd_test_spin_ms(100);
	assert_int_equal(migd_libvirt_watcher_get_probe_count(rec->watcher), 2);
	/* still migrating, and a real event still ends it */
	assert_int_equal(virDomainDestroy(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_log, 2, WAIT_MS));
	assert_string_equal(log_at(rec, 1), "failed 1 domain-stopped");
	rec_free(rec);
}

typedef struct {
	MigdLibvirtWatcher *watcher;
	guint want;
} Attempts;

static gboolean
attempts_reached(gpointer data)
{
	Attempts *a = data;
	return migd_libvirt_watcher_get_connect_attempts(a->watcher) >= a->want;
}

static void
test_connect_failure_backoff(void **state)
{
	Rec *rec = rec_new("vfio-migd-no-such-driver:///system", "test", MIGD_LIBVIRT_WATCHER_NONE);
	Attempts a = {rec->watcher, 4};
	g_autoptr(GError) error = NULL;
	gint64 start = g_get_monotonic_time();
	guint attempts;

	migd_libvirt_watcher_set_backoff(rec->watcher, 10, 40);
	assert_true(migd_libvirt_watcher_start(rec->watcher, &error));
	assert_true(migd_test_wait_count(&rec->n_disconnected, 1, WAIT_MS));
	assert_non_null(strstr(rec->last_message, "cannot connect"));
	assert_true(migd_test_wait_until(attempts_reached, &a, WAIT_MS));
	/* 10 + 20 + 40 ms between the four attempts */
	assert_true(g_get_monotonic_time() - start >= 70 * 1000 - 1000);
	/* reported once per outage, not per attempt */
	assert_int_equal(rec->n_disconnected, 1);
	assert_int_equal(rec->n_connected, 0);
	migd_libvirt_watcher_stop(rec->watcher);
	attempts = migd_libvirt_watcher_get_connect_attempts(rec->watcher);
	migd_test_spin_ms(150);
	assert_int_equal(migd_libvirt_watcher_get_connect_attempts(rec->watcher), attempts);
	rec_free(rec);
}

static void
test_stop_inside_callbacks(void **state)
{
	Rec *rec = rec_start("test");
	MigdLibvirtInput in = injected(MIGD_LIBVIRT_INPUT_LIFECYCLE, VIR_DOMAIN_EVENT_SUSPENDED,
				       VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED);

	/* stopped from "started": the switchover of the same event is not delivered */
	rec->stop_in_started = TRUE;
	migd_libvirt_watcher_inject(rec->watcher, &in);
	assert_int_equal(rec->n_log, 1);
	assert_string_equal(log_at(rec, 0), "started 1 late");
	assert_false(migd_libvirt_watcher_is_connected(rec->watcher));
	rec_free(rec);

	/* stopped from inside libvirt's own dispatch: the teardown waits for an idle */
	rec = rec_start("test");
	rec->stop_in_event = TRUE;
	assert_int_equal(virDomainSuspend(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_events, 1, WAIT_MS));
	assert_false(migd_libvirt_watcher_is_connected(rec->watcher));
	assert_int_equal(virDomainResume(test_dom), 0);
	migd_test_spin_ms(50);
	assert_int_equal(rec->n_events, 1);
	rec_free(rec);
}

static void
test_unref_inside_libvirt_callback(void **state)
{
	Rec *rec = rec_start("test");

	/* the only reference is dropped while libvirt dispatches: the watcher
	 * outlives the callback, then it stops and everything is released */
	rec->unref_in_event = TRUE;
	assert_int_equal(virDomainSuspend(test_dom), 0);
	assert_true(migd_test_wait_count(&rec->n_events, 1, WAIT_MS));
	assert_null(rec->watcher);
	assert_int_equal(virDomainResume(test_dom), 0);
	migd_test_spin_ms(50);
	assert_int_equal(rec->n_events, 1);
	rec_free(rec);
}

typedef struct {
	gboolean done;
	GError *error;
} AbortResult;

static void
abort_done(GObject *source, GAsyncResult *result, gpointer data)
{
	AbortResult *r = data;

	migd_libvirt_watcher_abort_job_finish(MIGD_LIBVIRT_WATCHER(source), result, &r->error);
	r->done = TRUE;
}

static gboolean
abort_finished(gpointer data)
{
	return ((AbortResult *)data)->done;
}

static void
test_abort_job(void **state)
{
	Rec *rec = rec_start("test");
	AbortResult r = {0};

	/* read-only by default */
	migd_libvirt_watcher_abort_job(rec->watcher, test_uuid, NULL, abort_done, &r);
	assert_true(migd_test_wait_until(abort_finished, &r, WAIT_MS));
	assert_true(g_error_matches(r.error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	g_clear_error(&r.error);
	rec_free(rec);

	rec = rec_new(TEST_URI, "test", MIGD_LIBVIRT_WATCHER_READ_WRITE);
	/* not connected yet */
	r.done = FALSE;
	migd_libvirt_watcher_abort_job(rec->watcher, test_uuid, NULL, abort_done, &r);
	assert_true(migd_test_wait_until(abort_finished, &r, WAIT_MS));
	assert_true(g_error_matches(r.error, MIGD_ERROR, MIGD_ERROR_FAILED));
	g_clear_error(&r.error);
	assert_true(migd_libvirt_watcher_start(rec->watcher, NULL));
	assert_true(migd_test_wait_count(&rec->n_connected, 1, WAIT_MS));
	/* the test driver has no virDomainAbortJob: the call is made and refused */
	r.done = FALSE;
	migd_libvirt_watcher_abort_job(rec->watcher, test_uuid, NULL, abort_done, &r);
	assert_true(migd_test_wait_until(abort_finished, &r, WAIT_MS));
	assert_true(g_error_matches(r.error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	g_clear_error(&r.error);
	/* an unknown domain */
	r.done = FALSE;
	migd_libvirt_watcher_abort_job(rec->watcher, "99999999-8888-7777-6666-555555555555", NULL,
				       abort_done, &r);
	assert_true(migd_test_wait_until(abort_finished, &r, WAIT_MS));
	assert_true(g_error_matches(r.error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&r.error);
	rec_free(rec);
}

static gpointer
start_elsewhere(gpointer data)
{
	g_autoptr(GMainContext) context = g_main_context_new();
	GError **error = data;
	Rec *rec;
	gboolean ok;

	g_main_context_push_thread_default(context);
	rec = rec_new(TEST_URI, "test", MIGD_LIBVIRT_WATCHER_NONE);
	ok = migd_libvirt_watcher_start(rec->watcher, error);
	g_clear_object(&rec->watcher);
	g_ptr_array_unref(rec->log);
	g_ptr_array_unref(rec->events);
	g_ptr_array_unref(rec->all);
	g_free(rec);
	g_main_context_pop_thread_default(context);
	return GINT_TO_POINTER(ok);
}

static void
test_start_errors(void **state)
{
	Rec *rec = rec_start("test");
	g_autoptr(GError) error = NULL;
	GThread *thread;

	assert_false(migd_libvirt_watcher_start(rec->watcher, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_BUSY));
	g_clear_error(&error);
	rec_free(rec);

	/* events would arrive on a loop nobody runs there */
	thread = g_thread_new("elsewhere", start_elsewhere, &error);
	assert_false(GPOINTER_TO_INT(g_thread_join(thread)));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_FAILED));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_lifecycle_through_main_loop, test_setup),
	    cmocka_unit_test_setup(test_lifecycle_of_every_domain, test_setup),
	    cmocka_unit_test_setup(test_map_by_uuid, test_setup),
	    cmocka_unit_test_setup(test_injected_migration_aborted, test_setup),
	    cmocka_unit_test_setup(test_destroyed_during_migration, test_setup),
	    cmocka_unit_test_setup(test_injected_success, test_setup),
	    cmocka_unit_test_setup(test_reconnect_after_close, test_setup),
	    cmocka_unit_test_setup(test_resync_after_reconnect, test_setup),
	    cmocka_unit_test_setup(test_connect_failure_backoff, test_setup),
	    cmocka_unit_test_setup(test_stop_inside_callbacks, test_setup),
	    cmocka_unit_test_setup(test_unref_inside_libvirt_callback, test_setup),
	    cmocka_unit_test_setup(test_abort_job, test_setup),
	    cmocka_unit_test_setup(test_start_errors, test_setup),
	};

	return cmocka_run_group_tests_name("libvirt-watcher", tests, group_setup, group_teardown);
}
