/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The source side's state machine with synthetic event sequences, no libvirt
 * I/O: success, failure, cancel, unmapped domains, duplicates, reordering,
 * stale probes, and a randomised check of the reporting invariant.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "migd-error.h"
#include "migd-libvirt-tracker.h"

#define UUID_A "6695eb01-f6a4-8304-79aa-97f2502e193f" /* "vm1", mapped by name */
#define UUID_B "11111111-2222-3333-4444-555555555555" /* mapped by UUID */
#define UUID_X "99999999-8888-7777-6666-555555555555" /* not mapped */

typedef struct {
	MigdLibvirtTracker *tracker;
	GArray *actions; /* of the last feed */
} Fixture;

static int
setup(void **state)
{
	Fixture *f = g_new0(Fixture, 1);
	g_autoptr(GPtrArray) maps =
	    g_ptr_array_new_with_free_func((GDestroyNotify)migd_libvirt_domain_map_free);
	const gchar *devs_a[] = {"vf0", "vf1", NULL};
	const gchar *devs_b[] = {"mtty0", NULL};

	g_ptr_array_add(maps, migd_libvirt_domain_map_new("vm1", devs_a, "tcp:dst:47000"));
	/* upper case on purpose: UUIDs compare without case */
	g_ptr_array_add(maps, migd_libvirt_domain_map_new("11111111-2222-3333-4444-555555555555",
							  devs_b, "unix:/run/peer"));
	f->tracker = migd_libvirt_tracker_new(maps);
	f->actions = migd_libvirt_actions_new();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	Fixture *f = *state;

	migd_libvirt_tracker_free(f->tracker);
	g_array_unref(f->actions);
	g_free(f);
	return 0;
}

/* "started(late) switchover(postcopy) failed(aborted) probe" */
static gchar *
describe(GArray *actions)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < actions->len; i++) {
		const MigdLibvirtAction *a = &g_array_index(actions, MigdLibvirtAction, i);
		if (s->len > 0)
			g_string_append_c(s, ' ');
		g_string_append(s, migd_libvirt_action_kind_to_string(a->kind));
		if (a->kind == MIGD_LIBVIRT_ACTION_STARTED && a->late)
			g_string_append(s, "(late)");
		if (a->kind == MIGD_LIBVIRT_ACTION_SWITCHOVER && a->postcopy)
			g_string_append(s, "(postcopy)");
		if (a->kind == MIGD_LIBVIRT_ACTION_FAILED)
			g_string_append_printf(s, "(%s)", migd_libvirt_end_to_string(a->end));
	}
	return g_string_free(s, FALSE);
}

static const MigdLibvirtAction *
action(Fixture *f, guint i)
{
	assert_true(i < f->actions->len);
	return &g_array_index(f->actions, MigdLibvirtAction, i);
}

static void
feed(Fixture *f, const MigdLibvirtInput *in, const gchar *expect)
{
	g_autofree gchar *got = NULL;

	g_array_set_size(f->actions, 0);
	migd_libvirt_tracker_feed(f->tracker, in, f->actions);
	got = describe(f->actions);
	if (g_strcmp0(got, expect) != 0) {
		print_error("expected '%s', got '%s'\n", expect, got);
		fail();
	}
}

static void
lifecycle(Fixture *f, const gchar *uuid, const gchar *name, gint event, gint detail,
	  const gchar *expect)
{
	MigdLibvirtInput in = {.kind = MIGD_LIBVIRT_INPUT_LIFECYCLE,
			       .uuid = uuid,
			       .name = name,
			       .event = event,
			       .detail = detail};
	feed(f, &in, expect);
}

static void
iteration(Fixture *f, const gchar *uuid, const gchar *name, gint n, const gchar *expect)
{
	MigdLibvirtInput in = {
	    .kind = MIGD_LIBVIRT_INPUT_ITERATION, .uuid = uuid, .name = name, .iteration = n};
	feed(f, &in, expect);
}

static void
job_completed(Fixture *f, const gchar *uuid, const gchar *name, gint operation, gint success,
	      const gchar *expect)
{
	MigdLibvirtInput in = {.kind = MIGD_LIBVIRT_INPUT_JOB_COMPLETED,
			       .uuid = uuid,
			       .name = name,
			       .operation = operation,
			       .success = success};
	feed(f, &in, expect);
}

static void
probe(Fixture *f, const gchar *uuid, guint64 epoch, const MigdLibvirtProbe *p, const gchar *expect)
{
	MigdLibvirtInput in = {
	    .kind = MIGD_LIBVIRT_INPUT_PROBE, .uuid = uuid, .name = NULL, .epoch = epoch};
	in.probe = *p;
	feed(f, &in, expect);
}

static MigdLibvirtProbe
job_active(gint operation)
{
	MigdLibvirtProbe p;

	migd_libvirt_probe_init(&p);
	p.job = MIGD_LIBVIRT_JOB_ACTIVE;
	p.operation = operation;
	return p;
}

static MigdLibvirtProbe
job_over(MigdLibvirtJob job, gint state, gint reason)
{
	MigdLibvirtProbe p;

	migd_libvirt_probe_init(&p);
	p.job = job;
	p.state = state;
	p.reason = reason;
	return p;
}

/* the epoch the tracker currently wants probes to quote for @uuid */
static guint64
busy_epoch(Fixture *f, const gchar *uuid)
{
	g_autoptr(GArray) busy = migd_libvirt_actions_new();

	migd_libvirt_tracker_list_busy(f->tracker, busy);
	for (guint i = 0; i < busy->len; i++) {
		const MigdLibvirtAction *a = &g_array_index(busy, MigdLibvirtAction, i);
		if (g_ascii_strcasecmp(a->uuid, uuid) == 0)
			return a->epoch;
	}
	fail_msg("%s is not busy", uuid);
	return 0;
}

/* iteration, then a probe saying MIGRATION_OUT: reported as started */
static guint64
start_migration(Fixture *f, const gchar *uuid, const gchar *name)
{
	MigdLibvirtProbe p = job_active(VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT);
	guint64 epoch;

	iteration(f, uuid, name, 1, "probe");
	epoch = action(f, 0)->epoch;
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, uuid), "probing");
	probe(f, uuid, epoch, &p, "started");
	assert_false(action(f, 0)->late);
	return action(f, 0)->migration;
}

static void
test_success_precopy(void **state)
{
	Fixture *f = *state;
	guint64 id = start_migration(f, UUID_A, "vm1");
	const MigdLibvirtAction *a;

	a = action(f, 0);
	assert_string_equal(a->map->domain, "vm1");
	assert_string_equal(a->map->devices[0], "vf0");
	assert_string_equal(a->map->devices[1], "vf1");
	assert_null(a->map->devices[2]);
	assert_string_equal(a->map->peer, "tcp:dst:47000");
	assert_string_equal(a->name, "vm1");
	assert_string_equal(a->uuid, UUID_A);
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "migrating");

	iteration(f, UUID_A, "vm1", 2, "");
	iteration(f, UUID_A, "vm1", 3, "");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED,
		  "switchover");
	assert_int_equal(action(f, 0)->migration, id);
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
		  "finished");
	assert_int_equal(action(f, 0)->migration, id);
	/* what follows a success on the source is not a new migration */
	job_completed(f, UUID_A, "vm1", VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, -1, "");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_UNDEFINED, 0, "");
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "idle");
}

static void
test_success_job_completed_first(void **state)
{
	Fixture *f = *state;

	start_migration(f, UUID_A, "vm1");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED,
		  "switchover");
	/* out of order: the job's end before the lifecycle event */
	job_completed(f, UUID_A, "vm1", VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, -1, "finished");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
		  "");
}

static void
test_failure_after_switchover(void **state)
{
	Fixture *f = *state;
	guint64 id = start_migration(f, UUID_A, "vm1");

	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED,
		  "switchover");
	/* libvirt resumes the source after a failed or cancelled migration */
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED,
		  "failed(aborted)");
	assert_int_equal(action(f, 0)->migration, id);
	assert_non_null(strstr(action(f, 0)->message, "vm1"));
	/* duplicates of the end change nothing */
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED,
		  "");
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "idle");
	/* and a new migration gets a new id */
	assert_int_equal(start_migration(f, UUID_A, "vm1"), id + 1);
}

static void
test_cancel_before_switchover_needs_two_probes(void **state)
{
	Fixture *f = *state;
	MigdLibvirtProbe p = job_over(MIGD_LIBVIRT_JOB_NONE, VIR_DOMAIN_RUNNING, 0);
	guint64 epoch;

	start_migration(f, UUID_A, "vm1");
	/* a cancelled pre-copy emits no event: only probes see it */
	p.completed = MIGD_LIBVIRT_JOB_CANCELLED;
	p.error_message = "operation aborted: migration out job: canceled by client";
	epoch = busy_epoch(f, UUID_A);
	probe(f, UUID_A, epoch, &p, "");
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "migrating");
	probe(f, UUID_A, epoch, &p, "failed(cancelled)");
	assert_non_null(strstr(action(f, 0)->message, "canceled by client"));
}

static void
test_failure_probe_job_failed(void **state)
{
	Fixture *f = *state;
	MigdLibvirtProbe p = job_over(MIGD_LIBVIRT_JOB_FAILED, VIR_DOMAIN_RUNNING, 0);
	guint64 epoch;

	start_migration(f, UUID_A, "vm1");
	epoch = busy_epoch(f, UUID_A);
	probe(f, UUID_A, epoch, &p, "");
	probe(f, UUID_A, epoch, &p, "failed(failed)");
}

static void
test_job_over_but_domain_still_here(void **state)
{
	Fixture *f = *state;
	MigdLibvirtProbe p = job_over(MIGD_LIBVIRT_JOB_NONE, VIR_DOMAIN_RUNNING, 0);
	guint64 epoch;

	start_migration(f, UUID_A, "vm1");
	epoch = busy_epoch(f, UUID_A);
	probe(f, UUID_A, epoch, &p, "");
	probe(f, UUID_A, epoch, &p, "failed(aborted)");
	assert_non_null(strstr(action(f, 0)->message, "running"));
}

static void
test_ended_probe_then_events_explain(void **state)
{
	Fixture *f = *state;
	MigdLibvirtProbe p = job_over(MIGD_LIBVIRT_JOB_NONE, VIR_DOMAIN_PAUSED, 0);

	start_migration(f, UUID_A, "vm1");
	/* the reply overtook the events: one "over" is not believed */
	probe(f, UUID_A, busy_epoch(f, UUID_A), &p, "");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED,
		  "switchover");
	/* the state changed: a new epoch, the count starts again */
	probe(f, UUID_A, busy_epoch(f, UUID_A), &p, "");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
		  "finished");
}

static void
test_alive_probe_resets_count(void **state)
{
	Fixture *f = *state;
	MigdLibvirtProbe over = job_over(MIGD_LIBVIRT_JOB_NONE, VIR_DOMAIN_RUNNING, 0);
	MigdLibvirtProbe alive = job_active(VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT);
	guint64 epoch;

	start_migration(f, UUID_A, "vm1");
	epoch = busy_epoch(f, UUID_A);
	probe(f, UUID_A, epoch, &over, "");
	probe(f, UUID_A, epoch, &alive, "");
	probe(f, UUID_A, epoch, &over, "");
	iteration(f, UUID_A, "vm1", 9, "");
	probe(f, UUID_A, epoch, &over, "");
	probe(f, UUID_A, epoch, &over, "failed(aborted)");
}

static void
test_probe_sees_migrated_away(void **state)
{
	Fixture *f = *state;
	MigdLibvirtProbe p =
	    job_over(MIGD_LIBVIRT_JOB_NONE, VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_MIGRATED);
	guint64 epoch;

	start_migration(f, UUID_A, "vm1");
	/* e.g. after a reconnection: the events of the end were missed */
	epoch = busy_epoch(f, UUID_A);
	probe(f, UUID_A, epoch, &p, "");
	probe(f, UUID_A, epoch, &p, "finished");
	/* the events arrive late after all: no second report */
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
		  "");
	job_completed(f, UUID_A, "vm1", VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, -1, "");
}

static void
test_domain_gone(void **state)
{
	Fixture *f = *state;
	MigdLibvirtProbe gone;
	guint64 epoch;

	migd_libvirt_probe_init(&gone);
	gone.domain_gone = TRUE;
	start_migration(f, UUID_A, "vm1");
	epoch = busy_epoch(f, UUID_A);
	/* the probe of a vanished domain has no name: the tracker still knows it */
	probe(f, UUID_A, epoch, &gone, "");
	probe(f, UUID_A, epoch, &gone, "failed(unknown)");
	assert_string_equal(action(f, 0)->name, "vm1");

	/* while probing, a vanished domain just ends the question */
	iteration(f, UUID_A, "vm1", 1, "probe");
	probe(f, UUID_A, action(f, 0)->epoch, &gone, "");
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "idle");
}

static void
test_domain_destroyed_during_migration(void **state)
{
	Fixture *f = *state;

	start_migration(f, UUID_A, "vm1");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED,
		  "failed(domain-stopped)");
	assert_non_null(strstr(action(f, 0)->message, "destroyed"));
	start_migration(f, UUID_A, "vm1");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_FAILED,
		  "failed(domain-stopped)");
}

static void
test_unmapped_domain_ignored(void **state)
{
	Fixture *f = *state;
	MigdLibvirtProbe p = job_active(VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT);
	g_autoptr(GArray) busy = migd_libvirt_actions_new();

	iteration(f, UUID_X, "other", 1, "");
	probe(f, UUID_X, 0, &p, "");
	probe(f, UUID_X, 1, &p, "");
	lifecycle(f, UUID_X, "other", VIR_DOMAIN_EVENT_SUSPENDED,
		  VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED, "");
	lifecycle(f, UUID_X, "other", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
		  "");
	job_completed(f, UUID_X, "other", VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, -1, "");
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_X), "idle");
	migd_libvirt_tracker_list_busy(f->tracker, busy);
	assert_int_equal(busy->len, 0);
	assert_null(migd_libvirt_tracker_lookup(f->tracker, UUID_X, "other"));
	/* an input without a UUID cannot be placed */
	iteration(f, NULL, "vm1", 1, "");
}

static void
test_mapping_by_uuid_and_name(void **state)
{
	Fixture *f = *state;
	const MigdLibvirtDomainMap *map;

	/* by UUID, in any case, whatever the domain is called now */
	map = migd_libvirt_tracker_lookup(f->tracker, "11111111-2222-3333-4444-555555555555",
					  "renamed");
	assert_non_null(map);
	assert_string_equal(map->devices[0], "mtty0");
	assert_string_equal(map->peer, "unix:/run/peer");
	/* by name */
	map = migd_libvirt_tracker_lookup(f->tracker, UUID_X, "vm1");
	assert_non_null(map);
	assert_string_equal(map->peer, "tcp:dst:47000");
	/* the UUID map wins over a name map */
	map = migd_libvirt_tracker_lookup(f->tracker, UUID_B, "vm1");
	assert_string_equal(map->peer, "unix:/run/peer");

	start_migration(f, UUID_B, "whatever");
	assert_string_equal(action(f, 0)->map->devices[0], "mtty0");
}

static void
test_save_job_is_not_a_migration(void **state)
{
	Fixture *f = *state;
	MigdLibvirtProbe p = job_active(VIR_DOMAIN_JOB_OPERATION_SAVE);

	/* libvirt emits iterations for saves and snapshots too */
	iteration(f, UUID_A, "vm1", 1, "probe");
	probe(f, UUID_A, action(f, 0)->epoch, &p, "");
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "other-job");
	iteration(f, UUID_A, "vm1", 2, "");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_PAUSED,
		  "");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_SAVED, "");
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "idle");

	/* a snapshot job that ends while the domain keeps running */
	p.operation = VIR_DOMAIN_JOB_OPERATION_SNAPSHOT;
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_RESTORED,
		  "");
	iteration(f, UUID_A, "vm1", 1, "probe");
	probe(f, UUID_A, action(f, 0)->epoch, &p, "");
	p = job_over(MIGD_LIBVIRT_JOB_NONE, VIR_DOMAIN_RUNNING, 0);
	probe(f, UUID_A, busy_epoch(f, UUID_A), &p, "");
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "idle");
}

static void
test_stale_probe_dropped(void **state)
{
	Fixture *f = *state;
	MigdLibvirtProbe none = job_over(MIGD_LIBVIRT_JOB_NONE, VIR_DOMAIN_RUNNING, 0);
	MigdLibvirtProbe active = job_active(VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT);
	guint64 epoch;

	iteration(f, UUID_A, "vm1", 1, "probe");
	epoch = action(f, 0)->epoch;
	/* an answer asked about an earlier state says nothing about this one */
	probe(f, UUID_A, epoch - 1, &none, "");
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "probing");
	probe(f, UUID_A, epoch, &active, "started");
	/* the same answer once more is stale now */
	probe(f, UUID_A, epoch, &active, "");
}

static void
test_probe_unknown_then_unsupported(void **state)
{
	Fixture *f = *state;
	MigdLibvirtProbe p;
	guint64 epoch;

	migd_libvirt_probe_init(&p);
	iteration(f, UUID_A, "vm1", 1, "probe");
	epoch = action(f, 0)->epoch;
	/* a failed question: ask again later */
	probe(f, UUID_A, epoch, &p, "");
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "probing");
	/* a driver without job information: assume the iterations are a migration */
	p.job = MIGD_LIBVIRT_JOB_UNSUPPORTED;
	probe(f, UUID_A, epoch, &p, "started");
	/* and no probe can end it: only events */
	probe(f, UUID_A, busy_epoch(f, UUID_A), &p, "");
	probe(f, UUID_A, busy_epoch(f, UUID_A), &p, "");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
		  "finished");
}

static void
test_late_start_at_switchover(void **state)
{
	Fixture *f = *state;

	/* QEMU without migration events: the pause is the first sign */
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED,
		  "started(late) switchover");
	assert_int_equal(action(f, 0)->migration, action(f, 1)->migration);
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
		  "finished");

	/* a switchover while still asking what the job is */
	lifecycle(f, UUID_B, "b", VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED, "");
	iteration(f, UUID_B, "b", 1, "probe");
	lifecycle(f, UUID_B, "b", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED,
		  "started(late) switchover");
}

static void
test_unseen_migration_reported_at_its_end(void **state)
{
	Fixture *f = *state;

	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
		  "started(late) finished");
	job_completed(f, UUID_A, "vm1", VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, -1, "");
	/* the domain starts again here later, and leaves again */
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_MIGRATED,
		  "");
	job_completed(f, UUID_A, "vm1", VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, -1,
		      "started(late) finished");
	/* a completed job of another kind is nothing */
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED, "");
	job_completed(f, UUID_A, "vm1", VIR_DOMAIN_JOB_OPERATION_BACKUP, 0, "");
	job_completed(f, UUID_A, "vm1", VIR_DOMAIN_JOB_OPERATION_DUMP, -1, "");
}

static void
test_user_pause_during_precopy(void **state)
{
	Fixture *f = *state;

	start_migration(f, UUID_A, "vm1");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_PAUSED,
		  "");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_UNPAUSED,
		  "");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_IOERROR,
		  "");
	assert_string_equal(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "migrating");
	/* but a resume for a cancelled migration ends it even before the switchover */
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED,
		  "failed(aborted)");
}

static void
test_postcopy(void **state)
{
	Fixture *f = *state;

	start_migration(f, UUID_A, "vm1");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY,
		  "switchover(postcopy)");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
		  "finished");

	start_migration(f, UUID_A, "vm1");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY,
		  "switchover(postcopy)");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED,
		  VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED, "failed(postcopy-failed)");

	start_migration(f, UUID_A, "vm1");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_RESUMED,
		  VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED, "failed(postcopy-failed)");
}

static void
test_duplicate_switchover(void **state)
{
	Fixture *f = *state;

	start_migration(f, UUID_A, "vm1");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED,
		  "switchover");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED,
		  "");
	iteration(f, UUID_A, "vm1", 7, "");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
		  "finished");
	lifecycle(f, UUID_A, "vm1", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
		  "");
}

static void
test_job_completed_unsuccessful(void **state)
{
	Fixture *f = *state;

	start_migration(f, UUID_A, "vm1");
	job_completed(f, UUID_A, "vm1", VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, 0,
		      "failed(failed)");
	/* libvirt before 3.3 sent no operation: during a migration it is the migration's */
	start_migration(f, UUID_A, "vm1");
	job_completed(f, UUID_A, "vm1", -1, -1, "finished");
}

static void
test_list_busy(void **state)
{
	Fixture *f = *state;
	g_autoptr(GArray) busy = migd_libvirt_actions_new();

	iteration(f, UUID_A, "vm1", 1, "probe");
	start_migration(f, UUID_B, "b");
	migd_libvirt_tracker_list_busy(f->tracker, busy);
	assert_int_equal(busy->len, 2);
	for (guint i = 0; i < busy->len; i++)
		assert_int_equal(g_array_index(busy, MigdLibvirtAction, i).kind,
				 MIGD_LIBVIRT_ACTION_PROBE);
}

static void
test_job_params(void **state)
{
	virTypedParameterPtr params = NULL;
	gint n = 0, max = 0, operation, success;
	const gchar *message;

	assert_int_equal(migd_libvirt_job_from_type(VIR_DOMAIN_JOB_NONE), MIGD_LIBVIRT_JOB_NONE);
	assert_int_equal(migd_libvirt_job_from_type(VIR_DOMAIN_JOB_UNBOUNDED),
			 MIGD_LIBVIRT_JOB_ACTIVE);
	assert_int_equal(migd_libvirt_job_from_type(VIR_DOMAIN_JOB_BOUNDED),
			 MIGD_LIBVIRT_JOB_ACTIVE);
	assert_int_equal(migd_libvirt_job_from_type(VIR_DOMAIN_JOB_COMPLETED),
			 MIGD_LIBVIRT_JOB_COMPLETED);
	assert_int_equal(migd_libvirt_job_from_type(VIR_DOMAIN_JOB_FAILED),
			 MIGD_LIBVIRT_JOB_FAILED);
	assert_int_equal(migd_libvirt_job_from_type(VIR_DOMAIN_JOB_CANCELLED),
			 MIGD_LIBVIRT_JOB_CANCELLED);
	assert_int_equal(migd_libvirt_job_from_type(42), MIGD_LIBVIRT_JOB_UNKNOWN);

	migd_libvirt_job_params_parse(NULL, 0, &operation, &success, &message);
	assert_int_equal(operation, -1);
	assert_int_equal(success, -1);
	assert_null(message);

	/* as libvirt's JOB_COMPLETED event carries them */
	assert_int_equal(virTypedParamsAddInt(&params, &n, &max, VIR_DOMAIN_JOB_OPERATION,
					      VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT),
			 0);
	assert_int_equal(
	    virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_TIME_ELAPSED, 1234), 0);
	migd_libvirt_job_params_parse(params, n, &operation, &success, &message);
	assert_int_equal(operation, VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT);
	assert_int_equal(success, -1);
	assert_int_equal(virTypedParamsAddBoolean(&params, &n, &max, VIR_DOMAIN_JOB_SUCCESS, 0), 0);
	assert_int_equal(
	    virTypedParamsAddString(&params, &n, &max, VIR_DOMAIN_JOB_ERRMSG, "disk full"), 0);
	migd_libvirt_job_params_parse(params, n, &operation, &success, &message);
	assert_int_equal(success, 0);
	assert_string_equal(message, "disk full");
	virTypedParamsFree(params, n);
}

static void
test_maps_from_key_file(void **state)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GPtrArray) maps = NULL;
	g_autoptr(GError) error = NULL;
	const MigdLibvirtDomainMap *map;
	const struct {
		const gchar *text;
		const gchar *message;
	} bad[] = {
	    {"[libvirt-domain a]\npeer=tcp:x:1\n", "devices="},
	    {"[libvirt-domain a]\ndevices=vf0\n", "peer="},
	    {"[libvirt-domain a]\ndevices=vf0\npeer=tcp:x:1\nspeed=9\n", "unknown key 'speed'"},
	    {"[libvirt-domain a]\ndevices=vf0;;\npeer=tcp:x:1\n", "empty device"},
	    {"[libvirt-domain ]\ndevices=vf0\npeer=tcp:x:1\n", "no domain name"},
	    {"[libvirt-domain a]\ndevices=\npeer=tcp:x:1\n", "devices="},
	    /* GLib 2.74 would set its own error twice (found by fuzz-config) */
	    {"[libvirt-domain a]\ndevices=v\\jf0\\\npeer=tcp:x:1\n", "an escape character ends"},
	};

	assert_true(g_key_file_load_from_data(kf,
					      "[plugin mlx5]\nread-size=4M\n"
					      "[libvirt-domain vm1]\ndevices=vf0; vf1\n"
					      "peer=tcp:10.0.0.2:47000\n"
					      "[libvirt-domain " UUID_B "]\ndevices=mtty0\n"
					      "peer=unix:/run/p\n",
					      (gsize)-1, G_KEY_FILE_NONE, NULL));
	maps = migd_libvirt_domain_maps_from_key_file(kf, &error);
	assert_null(error);
	assert_int_equal(maps->len, 2);
	map = g_ptr_array_index(maps, 0);
	assert_string_equal(map->domain, "vm1");
	assert_string_equal(map->devices[0], "vf0");
	assert_string_equal(map->devices[1], "vf1");
	assert_null(map->devices[2]);
	assert_string_equal(map->peer, "tcp:10.0.0.2:47000");
	map = g_ptr_array_index(maps, 1);
	assert_string_equal(map->domain, UUID_B);

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GKeyFile) k = g_key_file_new();
		g_autoptr(GError) e = NULL;
		g_autoptr(GPtrArray) m = NULL;
		assert_true(
		    g_key_file_load_from_data(k, bad[i].text, (gsize)-1, G_KEY_FILE_NONE, NULL));
		m = migd_libvirt_domain_maps_from_key_file(k, &e);
		assert_null(m);
		assert_true(g_error_matches(e, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
		if (strstr(e->message, bad[i].message) == NULL)
			fail_msg("'%s' does not mention '%s'", e->message, bad[i].message);
	}
}

/*
 * Random event sequences for one mapped domain; whatever libvirt sends, every
 * migration is reported STARTED first, SWITCHOVER at most once after it, and
 * ends with exactly one FINISHED or FAILED, after which nothing more of it is
 * reported.
 */
static void
test_reporting_invariant(void **state)
{
	Fixture *f = *state;
	g_autoptr(GRand) rand = g_rand_new_with_seed(20261107);
	/* migration id (from 1) -> 1 started, 2 at switchover, 3 ended */
	g_autoptr(GHashTable) phase = g_hash_table_new(g_direct_hash, g_direct_equal);
	const gint lifecycles[][2] = {
	    {VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED},
	    {VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY},
	    {VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_PAUSED},
	    {VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED},
	    {VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED},
	    {VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_UNPAUSED},
	    {VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED},
	    {VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED},
	    {VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED},
	    {VIR_DOMAIN_EVENT_UNDEFINED, 0},
	};
	const MigdLibvirtJob jobs[] = {MIGD_LIBVIRT_JOB_UNKNOWN, MIGD_LIBVIRT_JOB_ACTIVE,
				       MIGD_LIBVIRT_JOB_NONE, MIGD_LIBVIRT_JOB_FAILED,
				       MIGD_LIBVIRT_JOB_CANCELLED};
	const gint states[] = {VIR_DOMAIN_RUNNING, VIR_DOMAIN_PAUSED, VIR_DOMAIN_SHUTOFF};
	guint started = 0, ended = 0, switchovers = 0;

	for (guint step = 0; step < 20000; step++) {
		MigdLibvirtInput in = {.uuid = UUID_A, .name = "vm1"};
		guint pick = g_rand_int_range(rand, 0, 4);

		if (pick == 0) {
			guint l = g_rand_int_range(rand, 0, G_N_ELEMENTS(lifecycles));
			in.kind = MIGD_LIBVIRT_INPUT_LIFECYCLE;
			in.event = lifecycles[l][0];
			in.detail = lifecycles[l][1];
		} else if (pick == 1) {
			in.kind = MIGD_LIBVIRT_INPUT_ITERATION;
			in.iteration = (gint)step;
		} else if (pick == 2) {
			in.kind = MIGD_LIBVIRT_INPUT_JOB_COMPLETED;
			in.operation = g_rand_boolean(rand) ? VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT
							    : VIR_DOMAIN_JOB_OPERATION_SAVE;
			in.success = g_rand_int_range(rand, -1, 2);
		} else {
			gboolean idle =
			    g_strcmp0(migd_libvirt_tracker_get_state(f->tracker, UUID_A), "idle") ==
			    0;
			in.kind = MIGD_LIBVIRT_INPUT_PROBE;
			migd_libvirt_probe_init(&in.probe);
			in.probe.job = jobs[g_rand_int_range(rand, 0, G_N_ELEMENTS(jobs))];
			in.probe.operation = g_rand_boolean(rand)
						 ? VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT
						 : VIR_DOMAIN_JOB_OPERATION_SNAPSHOT;
			in.probe.domain_gone = g_rand_int_range(rand, 0, 10) == 0;
			in.probe.state = states[g_rand_int_range(rand, 0, G_N_ELEMENTS(states))];
			in.probe.reason = g_rand_boolean(rand) ? VIR_DOMAIN_SHUTOFF_MIGRATED : 0;
			/* mostly the current epoch, sometimes a stale one */
			if (idle || g_rand_int_range(rand, 0, 4) == 0)
				in.epoch = (guint64)g_rand_int_range(rand, 0, 100);
			else
				in.epoch = busy_epoch(f, UUID_A);
		}
		g_array_set_size(f->actions, 0);
		migd_libvirt_tracker_feed(f->tracker, &in, f->actions);
		for (guint i = 0; i < f->actions->len; i++) {
			const MigdLibvirtAction *a = action(f, i);
			gpointer key = GSIZE_TO_POINTER((gsize)a->migration);
			gint now = GPOINTER_TO_INT(g_hash_table_lookup(phase, key));

			switch (a->kind) {
			case MIGD_LIBVIRT_ACTION_PROBE:
				break;
			case MIGD_LIBVIRT_ACTION_STARTED:
				assert_int_equal(now, 0);
				assert_true(a->migration > 0);
				g_hash_table_insert(phase, key, GINT_TO_POINTER(1));
				started++;
				break;
			case MIGD_LIBVIRT_ACTION_SWITCHOVER:
				assert_int_equal(now, 1);
				g_hash_table_insert(phase, key, GINT_TO_POINTER(2));
				switchovers++;
				break;
			case MIGD_LIBVIRT_ACTION_FINISHED:
			case MIGD_LIBVIRT_ACTION_FAILED:
				assert_true(now == 1 || now == 2);
				g_hash_table_insert(phase, key, GINT_TO_POINTER(3));
				ended++;
				break;
			}
		}
	}
	/* the walk covered many migrations, and at most one is still open */
	assert_true(started > 100);
	assert_true(switchovers > 10);
	assert_true(started - ended <= 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_success_precopy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_success_job_completed_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failure_after_switchover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_before_switchover_needs_two_probes, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_failure_probe_job_failed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_job_over_but_domain_still_here, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ended_probe_then_events_explain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alive_probe_resets_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_sees_migrated_away, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_domain_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_domain_destroyed_during_migration, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_unmapped_domain_ignored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mapping_by_uuid_and_name, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_save_job_is_not_a_migration, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_probe_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_unknown_then_unsupported, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_late_start_at_switchover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unseen_migration_reported_at_its_end, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_user_pause_during_precopy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_postcopy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_switchover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_job_completed_unsuccessful, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_busy, setup, teardown),
	    cmocka_unit_test(test_job_params),
	    cmocka_unit_test(test_maps_from_key_file),
	    cmocka_unit_test_setup_teardown(test_reporting_invariant, setup, teardown),
	};

	/* libvirt's typed-parameter helpers need its thread-local error state */
	if (virInitialize() < 0)
		return 1;
	return cmocka_run_group_tests_name("libvirt-tracker", tests, NULL, NULL);
}
