/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MigdManager without any front door: the device registry, a migration
 * between two managers on loopback followed through the job signals, cancel,
 * the errors of migrate and listen, and the retention of finished jobs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "migd-error.h"
#include "migd-manager.h"
#include "migd-sim-device.h"

static MigdDevice *
sim(const gchar *spec, const gchar *name)
{
	g_autoptr(GError) error = NULL;
	MigdSimDevice *dev = migd_sim_device_new_from_string(spec, &error);

	if (dev == NULL)
		fail_msg("%s: %s", spec, error->message);
	migd_device_set_name(MIGD_DEVICE(dev), name);
	if (!migd_device_probe(MIGD_DEVICE(dev), &error))
		fail_msg("%s: %s", spec, error->message);
	return MIGD_DEVICE(dev);
}

/* a manager over simulated devices named PREFIX0, PREFIX1, ... */
static MigdManager *
manager_new(const gchar *const *specs, const gchar *prefix)
{
	g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(g_object_unref);

	for (guint i = 0; specs != NULL && specs[i] != NULL; i++) {
		g_autofree gchar *name = g_strdup_printf("%s%u", prefix, i);
		g_ptr_array_add(devices, sim(specs[i], name));
	}
	return migd_manager_new(devices);
}

/* the open func of a daemon that serves simulated devices only */
static MigdDevice *
open_sim(const gchar *name, const gchar *sim_spec, gint fd, const gchar *address,
	 gpointer user_data, GError **error)
{
	guint *calls = user_data;

	(*calls)++;
	if (sim_spec == NULL || fd >= 0) {
		g_set_error_literal(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED, "sim only");
		return NULL;
	}
	return sim(sim_spec, name);
}

static void
iterate_until(gboolean *done, guint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

	while (!*done && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, FALSE) || (g_usleep(1000), TRUE);
	if (!*done)
		fail_msg("nothing happened within %u s", timeout_s);
}

static gboolean
job_is_finished(MigdJob *job)
{
	return job != NULL && migd_job_is_finished(job);
}

static void
wait_finished(MigdJob *job, guint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

	while (!job_is_finished(job) && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, FALSE) || (g_usleep(1000), TRUE);
	if (!job_is_finished(job))
		fail_msg("job did not finish within %u s", timeout_s);
	/* the deferred frees and closes */
	for (guint i = 0; i < 20 && g_main_context_iteration(NULL, FALSE); i++)
		;
}

static MigdState
state_of(MigdManager *manager, const gchar *name)
{
	MigdState state = MIGD_STATE_ERROR;
	g_autoptr(GError) error = NULL;

	if (!migd_device_get_state(migd_manager_find_device(manager, name), &state, &error))
		fail_msg("%s: %s", name, error->message);
	return state;
}

static guint64
digest_of(MigdManager *manager, const gchar *name)
{
	return migd_sim_device_get_state_digest(
	    MIGD_SIM_DEVICE(migd_manager_find_device(manager, name)));
}

/* what the signals of one manager said, in order */
typedef struct {
	MigdManager *manager;
	GString *log; /* "+1 *1 -1 d" for added, finished, removed, devices-changed */
	MigdJob *job; /* the last job added */
	guint64 id;
	gboolean busy_at_completed; /* the devices, when the job's own "completed" ran */
	gboolean busy_at_finished;  /* the devices, when job-finished ran */
	gboolean finished;
} Events;

static void
events_job_completed_cb(MigdJob *job, gboolean success, const gchar *message, Events *ev)
{
	GPtrArray *devices = migd_manager_get_devices(ev->manager);
	ev->busy_at_completed = migd_manager_device_is_busy(ev->manager, devices->pdata[0]);
}

static void
events_job_added_cb(MigdManager *manager, guint64 id, MigdJob *job, Events *ev)
{
	g_string_append_printf(ev->log, "+%" G_GUINT64_FORMAT " ", id);
	g_set_object(&ev->job, job);
	ev->id = id;
	assert_ptr_equal(migd_manager_get_job(manager, id), job);
	/* as a front door does: its handler runs before the manager frees the devices */
	g_signal_connect(job, "completed", G_CALLBACK(events_job_completed_cb), ev);
}

static void
events_job_finished_cb(MigdManager *manager, guint64 id, MigdJob *job, Events *ev)
{
	GPtrArray *devices = migd_manager_get_devices(manager);

	g_string_append_printf(ev->log, "*%" G_GUINT64_FORMAT " ", id);
	assert_true(migd_job_is_finished(job));
	ev->busy_at_finished = migd_manager_device_is_busy(manager, devices->pdata[0]);
	ev->finished = TRUE;
}

static void
events_job_removed_cb(MigdManager *manager, guint64 id, Events *ev)
{
	g_string_append_printf(ev->log, "-%" G_GUINT64_FORMAT " ", id);
	assert_null(migd_manager_get_job(manager, id));
}

static void
events_devices_changed_cb(MigdManager *manager, Events *ev)
{
	g_string_append(ev->log, "d ");
}

static Events *
events_new(MigdManager *manager)
{
	Events *ev = g_new0(Events, 1);

	ev->manager = manager;
	ev->log = g_string_new(NULL);
	g_signal_connect(manager, "job-added", G_CALLBACK(events_job_added_cb), ev);
	g_signal_connect(manager, "job-finished", G_CALLBACK(events_job_finished_cb), ev);
	g_signal_connect(manager, "job-removed", G_CALLBACK(events_job_removed_cb), ev);
	g_signal_connect(manager, "devices-changed", G_CALLBACK(events_devices_changed_cb), ev);
	return ev;
}

static void
events_free(Events *ev)
{
	g_signal_handlers_disconnect_by_data(ev->manager, ev);
	if (ev->job != NULL)
		g_signal_handlers_disconnect_by_data(ev->job, ev);
	g_clear_object(&ev->job);
	g_string_free(ev->log, TRUE);
	g_free(ev);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Events, events_free)

/* a fresh abstract UNIX address: plain is for UNIX sockets only */
static gchar *
test_address(void)
{
	static guint n = 0;
	return g_strdup_printf("unix:@migd-test-manager-%d-%u", (gint)getpid(), ++n);
}

static MigdMigrateOptions *
plain_options(void)
{
	MigdMigrateOptions *options = migd_migrate_options_new();
	options->transport.plain = TRUE;
	options->requester = g_strdup("test-manager");
	return options;
}

/* a source manager and a destination manager listening on loopback, both followed */
typedef struct {
	MigdManager *src;
	MigdManager *dst;
	Events *src_ev;
	Events *dst_ev;
	MigdMigrateOptions *options;
	gchar *address;
} Pair;

static Pair *
pair_new(const gchar *const *src_specs, const gchar *const *dst_specs)
{
	Pair *pair = g_new0(Pair, 1);
	MigdTransportConfig transport = {.plain = TRUE};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *listen = test_address();

	pair->src = manager_new(src_specs, "src");
	pair->dst = manager_new(dst_specs, "dst");
	pair->src_ev = events_new(pair->src);
	pair->dst_ev = events_new(pair->dst);
	pair->options = plain_options();
	assert_false(migd_manager_is_listening(pair->dst));
	pair->address = migd_manager_listen(pair->dst, listen, &transport, &error);
	if (pair->address == NULL)
		fail_msg("listen: %s", error->message);
	assert_true(migd_manager_is_listening(pair->dst));
	return pair;
}

static void
pair_free(Pair *pair)
{
	events_free(pair->src_ev);
	events_free(pair->dst_ev);
	g_object_unref(pair->src);
	g_object_unref(pair->dst);
	migd_migrate_options_free(pair->options);
	g_free(pair->address);
	g_free(pair);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Pair, pair_free)

/* ---- the device registry ---- */

static void
test_manager_registry(void **state)
{
	const gchar *specs[] = {"mlx5:seed=1", "mtty:seed=2", NULL};
	g_autoptr(MigdManager) manager = manager_new(specs, "dev");
	g_autoptr(Events) ev = events_new(manager);
	g_autoptr(MigdDevice) added = NULL;
	g_autoptr(MigdDevice) twin = NULL;
	g_autoptr(GArray) ranges = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	g_autoptr(GError) error = NULL;
	g_autofree gchar *long_name = g_strnfill(256, 'x');
	MigdIovaRange good = {.iova = 0x100000, .length = 0x200000};
	MigdIovaRange empty = {.iova = 0x1000, .length = 0};
	guint opens = 0;

	assert_int_equal(migd_manager_get_devices(manager)->len, 2);
	assert_non_null(migd_manager_find_device(manager, "dev0"));
	assert_non_null(migd_manager_find_device(manager, "dev1"));
	assert_null(migd_manager_find_device(manager, "dev2"));
	assert_false(
	    migd_manager_device_is_busy(manager, migd_manager_find_device(manager, "dev0")));

	/* without an open func this manager cannot open anything */
	assert_null(migd_manager_open_device(manager, "new", "mlx5:seed=3", -1, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	g_clear_error(&error);
	migd_manager_set_device_open_func(manager, open_sim, &opens);

	/* names are checked before anything is opened */
	assert_null(migd_manager_open_device(manager, "", "mlx5:seed=3", -1, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_null(migd_manager_open_device(manager, long_name, "mlx5:seed=3", -1, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "1 to 255 bytes"));
	g_clear_error(&error);
	assert_int_equal(opens, 0);

	/* a name in use: refused after opening, the registry unchanged */
	assert_null(migd_manager_open_device(manager, "dev1", "mlx5:seed=3", -1, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_string_equal(error->message, "a device named 'dev1' already exists");
	g_clear_error(&error);
	assert_int_equal(opens, 1);
	/* ... and when added directly */
	twin = sim("pds:seed=4", "dev0");
	assert_false(migd_manager_add_device(manager, twin, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_int_equal(migd_manager_get_devices(manager)->len, 2);

	/* the open func's own refusal comes through */
	assert_null(migd_manager_open_device(manager, "kernel", NULL, -1, NULL, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_NOT_SUPPORTED));
	g_clear_error(&error);

	/* an empty IOVA range is refused and the device not added */
	added = migd_manager_open_device(manager, "dev2", "hisi_acc:seed=5", -1, NULL, &error);
	assert_non_null(added);
	assert_null(error);
	g_array_append_val(ranges, good);
	g_array_append_val(ranges, empty);
	assert_false(migd_manager_add_device(manager, added, ranges, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "of dev2: IOVA range 1 0x1000+0x0: length 0"));
	g_clear_error(&error);
	assert_null(migd_manager_find_device(manager, "dev2"));
	assert_string_equal(ev->log->str, "");

	/* with good ranges it is added, last, with its ranges */
	g_array_set_size(ranges, 1);
	assert_true(migd_manager_add_device(manager, added, ranges, &error));
	assert_null(error);
	assert_ptr_equal(migd_manager_find_device(manager, "dev2"), added);
	assert_ptr_equal(g_ptr_array_index(migd_manager_get_devices(manager), 2), added);
	{
		guint n = 0;
		const MigdIovaRange *set = migd_device_get_iova_ranges(added, &n);
		assert_int_equal(n, 1);
		assert_true(set[0].iova == good.iova && set[0].length == good.length);
	}
	assert_string_equal(ev->log->str, "d ");

	/* detach: unknown refused, known gone */
	assert_false(migd_manager_detach_device(manager, "nope", &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_string_equal(error->message, "unknown device 'nope'");
	g_clear_error(&error);
	assert_true(migd_manager_detach_device(manager, "dev0", &error));
	assert_null(error);
	assert_null(migd_manager_find_device(manager, "dev0"));
	assert_int_equal(migd_manager_get_devices(manager)->len, 2);
	assert_string_equal(ev->log->str, "d d ");
	/* its name is free again */
	g_clear_object(&twin);
	twin = sim("pds:seed=4", "dev0");
	assert_true(migd_manager_add_device(manager, twin, NULL, &error));
	assert_string_equal(ev->log->str, "d d d ");
}

/* the device info func sees the device and whether it is busy */
static void
info_func(MigdDevice *device, gboolean busy, GVariantDict *dict, gpointer user_data)
{
	g_variant_dict_insert(dict, "name-seen", "s", migd_device_get_name(device));
	g_variant_dict_insert(dict, "busy-seen", "b", busy);
	g_variant_dict_insert(dict, "data", "s", (const gchar *)user_data);
}

static void
test_manager_device_info(void **state)
{
	const gchar *specs[] = {"mtty:seed=1", NULL};
	g_autoptr(MigdManager) manager = manager_new(specs, "dev");
	MigdDevice *device = migd_manager_find_device(manager, "dev0");
	g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT(NULL);
	const gchar *name = NULL;
	const gchar *data = NULL;
	gboolean busy = TRUE;

	/* none set: nothing added */
	migd_manager_device_info(manager, device, &dict);
	assert_false(g_variant_dict_contains(&dict, "name-seen"));
	migd_manager_set_device_info_func(manager, info_func, (gpointer) "hello");
	migd_manager_device_info(manager, device, &dict);
	assert_true(g_variant_dict_lookup(&dict, "name-seen", "&s", &name));
	assert_string_equal(name, "dev0");
	assert_true(g_variant_dict_lookup(&dict, "busy-seen", "b", &busy));
	assert_false(busy);
	assert_true(g_variant_dict_lookup(&dict, "data", "&s", &data));
	assert_string_equal(data, "hello");
}

/* ---- migrations ---- */

static void
test_manager_migrate(void **state)
{
	const gchar *src_specs[] = {"mlx5:state_size=8M,seed=3", "hisi_acc:seed=4", NULL};
	const gchar *dst_specs[] = {"mlx5:seed=13", "hisi_acc:seed=14", NULL};
	g_autoptr(Pair) pair = pair_new(src_specs, dst_specs);
	MigdManager *src = pair->src;
	MigdManager *dst = pair->dst;
	Events *src_ev = pair->src_ev;
	Events *dst_ev = pair->dst_ev;
	g_autoptr(GArray) ids = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_status = NULL;
	g_autofree gchar *dst_status = NULL;
	g_autofree gchar *running_status = NULL;
	guint64 id;

	assert_true(g_str_has_prefix(pair->address, "unix:@migd-test-manager-"));
	dst_status = migd_manager_describe(dst);
	assert_string_equal(dst_status, "Idle, 2 device(s), listening");

	pair->options->max_rounds = 3;
	id = migd_manager_migrate(src, NULL, pair->address, pair->options, &error);
	assert_null(error);
	assert_int_equal(id, 1);
	/* registered and announced before migrate returned */
	assert_string_equal(src_ev->log->str, "+1 ");
	assert_int_equal(src_ev->id, 1);
	assert_ptr_equal(migd_manager_get_job(src, 1), src_ev->job);
	/* the engine's log lines name the job by the number the D-Bus path and the CLI use */
	assert_string_equal(migd_job_get_id(src_ev->job), "1");
	assert_int_equal(migd_job_get_role(src_ev->job), MIGD_JOB_ROLE_SOURCE);
	assert_int_equal(migd_manager_get_n_active_jobs(src), 1);
	running_status = migd_manager_describe(src);
	assert_true(g_str_has_prefix(running_status, "job "));
	assert_non_null(strstr(running_status, " out "));

	/* its devices are busy: not in another job, not detached */
	assert_true(migd_manager_device_is_busy(src, migd_manager_find_device(src, "src0")));
	assert_int_equal(migd_manager_migrate(src, NULL, pair->address, pair->options, &error), 0);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_BUSY));
	assert_string_equal(error->message, "device 'src0' is busy in another job");
	g_clear_error(&error);
	assert_false(migd_manager_detach_device(src, "src1", &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_BUSY));
	g_clear_error(&error);

	/* while the incoming session runs: its devices are held, another one comes and goes */
	{
		gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
		g_autoptr(MigdDevice) extra = sim("hisi_acc:seed=15", "dst9");

		while (dst_ev->job == NULL && g_get_monotonic_time() < deadline)
			g_main_context_iteration(NULL, FALSE) || (g_usleep(1000), TRUE);
		assert_non_null(dst_ev->job);
		if (!migd_job_is_finished(dst_ev->job)) {
			assert_false(migd_manager_detach_device(dst, "dst0", &error));
			assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_BUSY));
			g_clear_error(&error);
		}
		assert_true(migd_manager_add_device(dst, extra, NULL, &error));
		assert_null(error);
		assert_true(migd_manager_detach_device(dst, "dst9", &error));
		assert_null(error);
	}

	iterate_until(&dst_ev->finished, 60);
	iterate_until(&src_ev->finished, 60);
	wait_finished(src_ev->job, 5);

	/* both sides: one job each, finished, successful */
	assert_string_equal(src_ev->log->str, "+1 *1 ");
	/* (d: the device added and detached meanwhile) */
	assert_string_equal(dst_ev->log->str, "+1 d d *1 ");
	if (!migd_job_get_success(src_ev->job))
		fail_msg("source: %s", migd_job_get_message(src_ev->job));
	if (!migd_job_get_success(dst_ev->job))
		fail_msg("destination: %s", migd_job_get_message(dst_ev->job));
	assert_int_equal(migd_job_get_role(dst_ev->job), MIGD_JOB_ROLE_DESTINATION);
	assert_true(migd_job_get_precopy_rounds(src_ev->job) <= 3);
	/* the job's own "completed" ran with the devices still held, job-finished after */
	assert_true(src_ev->busy_at_completed);
	assert_false(src_ev->busy_at_finished);
	assert_false(migd_manager_device_is_busy(src, migd_manager_find_device(src, "src0")));
	assert_false(migd_manager_device_is_busy(dst, migd_manager_find_device(dst, "dst0")));
	assert_int_equal(migd_manager_get_n_active_jobs(src), 0);
	assert_int_equal(migd_manager_get_n_active_jobs(dst), 0);

	/* the state moved: byte for byte */
	assert_int_equal(state_of(src, "src0"), MIGD_STATE_STOP);
	assert_int_equal(state_of(dst, "dst0"), MIGD_STATE_RUNNING);
	assert_true(digest_of(src, "src0") == digest_of(dst, "dst0"));
	assert_true(digest_of(src, "src1") == digest_of(dst, "dst1"));

	/* finished jobs stay readable */
	ids = migd_manager_get_job_ids(src);
	assert_int_equal(ids->len, 1);
	assert_int_equal(g_array_index(ids, guint64, 0), 1);
	assert_non_null(migd_manager_get_job(src, 1));
	assert_false(migd_manager_cancel_job(src, 1));
	src_status = migd_manager_describe(src);
	assert_string_equal(src_status, "Idle, 2 device(s)");

	/* closing drops the jobs (job-removed) and stops listening */
	migd_manager_close(dst);
	assert_string_equal(dst_ev->log->str, "+1 d d *1 -1 ");
	assert_false(migd_manager_is_listening(dst));
	assert_null(migd_manager_get_job(dst, 1));
}

static void
test_manager_cancel(void **state)
{
	const gchar *src_specs[] = {"mlx5:state_size=64M,seed=1,save_rate=16M", NULL};
	const gchar *dst_specs[] = {"mlx5:seed=2", NULL};
	g_autoptr(Pair) pair = pair_new(src_specs, dst_specs);
	MigdManager *src = pair->src;
	Events *src_ev = pair->src_ev;
	Events *dst_ev = pair->dst_ev;
	g_autoptr(GError) error = NULL;
	guint64 id;
	gint64 start;

	id = migd_manager_migrate(src, NULL, pair->address, pair->options, &error);
	assert_int_equal(id, 1);
	assert_false(migd_manager_cancel_job(src, 2));

	/* in pre-copy, as an operator would */
	start = g_get_monotonic_time();
	while (migd_job_get_phase(src_ev->job) != MIGD_JOB_PHASE_PRECOPY &&
	       g_get_monotonic_time() - start < 10 * G_USEC_PER_SEC)
		g_main_context_iteration(NULL, TRUE);
	assert_int_equal(migd_job_get_phase(src_ev->job), MIGD_JOB_PHASE_PRECOPY);
	assert_true(migd_manager_cancel_job(src, id));
	iterate_until(&src_ev->finished, 30);
	wait_finished(src_ev->job, 5);

	assert_false(migd_job_get_success(src_ev->job));
	assert_non_null(strstr(migd_job_get_message(src_ev->job), "cancelled"));
	assert_int_equal(state_of(src, "src0"), MIGD_STATE_RUNNING);
	assert_false(migd_manager_device_is_busy(src, migd_manager_find_device(src, "src0")));
	/* ended: nothing left to cancel */
	assert_false(migd_manager_cancel_job(src, id));
	assert_int_equal(migd_manager_cancel_all(src), 0);
	/* the destination's devices were never taken */
	if (dst_ev->job != NULL) {
		wait_finished(dst_ev->job, 30);
		assert_false(migd_job_get_success(dst_ev->job));
	}
	assert_int_equal(state_of(pair->dst, "dst0"), MIGD_STATE_RUNNING);
}

static void
test_manager_migrate_refused(void **state)
{
	const gchar *specs[] = {"mtty:seed=1", "pds:seed=2", NULL};
	g_autoptr(MigdManager) manager = manager_new(specs, "dev");
	g_autoptr(MigdManager) empty = manager_new(NULL, "none");
	g_autoptr(Events) ev = events_new(manager);
	g_autoptr(MigdMigrateOptions) options = plain_options();
	g_autoptr(GArray) ranges = g_array_new(FALSE, FALSE, sizeof(MigdIovaRange));
	g_autoptr(MigdTransportConfig) transport = g_new0(MigdTransportConfig, 1);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *address = NULL;
	g_autofree gchar *listen = NULL;
	const gchar *unknown[] = {"dev0", "dev9", NULL};
	const gchar *twice[] = {"dev1", "dev1", NULL};
	const gchar *first[] = {"dev0", NULL};
	MigdIovaRange r = {.iova = 0x1000, .length = 0x1000};
	gint fd;

	assert_false(migd_manager_check_address("carrier-pigeon:home", &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_int_equal(migd_manager_migrate(manager, NULL, "nowhere", options, &error), 0);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_int_equal(migd_manager_migrate(manager, unknown, "unix:@migd-test-manager-nobody",
					      options, &error),
			 0);
	assert_string_equal(error->message, "unknown device 'dev9'");
	g_clear_error(&error);
	assert_int_equal(
	    migd_manager_migrate(manager, twice, "unix:@migd-test-manager-nobody", options, &error),
	    0);
	assert_string_equal(error->message, "device 'dev1' named twice");
	g_clear_error(&error);
	assert_int_equal(
	    migd_manager_migrate(empty, NULL, "unix:@migd-test-manager-nobody", NULL, &error), 0);
	assert_string_equal(error->message, "this daemon has no devices");
	g_clear_error(&error);

	/* IOVA ranges only for the job's devices, and none set when one is refused */
	g_array_append_val(ranges, r);
	migd_migrate_options_add_iova_ranges(options, "dev0", ranges);
	migd_migrate_options_add_iova_ranges(options, "dev1", ranges);
	assert_int_equal(
	    migd_manager_migrate(manager, first, "unix:@migd-test-manager-nobody", options, &error),
	    0);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_string_equal(error->message,
			    "option 'iova-ranges' names 'dev1', which is not migrated by this job");
	g_clear_error(&error);
	{
		guint n = 0;
		migd_device_get_iova_ranges(migd_manager_find_device(manager, "dev0"), &n);
		assert_int_equal(n, 0);
	}
	assert_string_equal(ev->log->str, "");

	/* listening: twice refused, and never without devices */
	transport->plain = TRUE;
	assert_null(migd_manager_listen(empty, "unix:@migd-test-manager-empty", transport, &error));
	assert_string_equal(error->message, "this daemon has no devices to receive into");
	g_clear_error(&error);
	assert_null(migd_manager_listen(manager, "bogus", transport, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	/* no dirty bitmap before a migration was received */
	fd = migd_manager_dup_dirty_bitmap_fd(manager, "dev0", &error);
	assert_int_equal(fd, -1);
	assert_string_equal(error->message,
			    "no dirty bitmap for dev0: this daemon has received no migration");
	g_clear_error(&error);
	listen = test_address();
	address = migd_manager_listen(manager, listen, transport, &error);
	assert_non_null(address);
	assert_null(migd_manager_listen(manager, listen, transport, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_BUSY));
	assert_non_null(strstr(error->message, "already listening on unix:@migd-test-manager-"));
	g_clear_error(&error);
	fd = migd_manager_dup_dirty_bitmap_fd(manager, "dev7", &error);
	assert_int_equal(fd, -1);
	assert_string_equal(error->message, "unknown device 'dev7'");
}

/* ---- expectations: what the manager refuses before the destination sees it ---- */

static void
test_manager_expect_refused(void **state)
{
	const gchar *specs[] = {"mtty:seed=1", "pds:seed=2", "mtty:seed=3", NULL};
	g_autoptr(MigdManager) manager = manager_new(specs, "dev");
	g_autoptr(Events) ev = events_new(manager);
	g_autoptr(MigdMigrateOptions) options = plain_options();
	g_autoptr(MigdTransportConfig) transport = g_new0(MigdTransportConfig, 1);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *listen = test_address();
	g_autofree gchar *address = NULL;
	g_auto(GStrv) ids = NULL;
	const gchar *one[] = {"dev0", NULL};
	const gchar *none[] = {NULL};
	const gchar *unknown[] = {"dev1", "dev9", NULL};
	const gchar *twice[] = {"dev1", "dev1", NULL};

	/* no listener: nothing to expect on, nothing to cancel, nothing listed */
	assert_null(migd_manager_expect(manager, "vm-1", one, MIGD_START_MANUAL, 0, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_string_equal(error->message, "an expectation needs a listener: call Listen first");
	g_clear_error(&error);
	assert_false(migd_manager_cancel_expectation(manager, "vm-1", &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	ids = migd_manager_list_expectations(manager);
	assert_int_equal(g_strv_length(ids), 0);
	/* stored for the listener to come: harmless now */
	migd_manager_set_start_mode(manager, MIGD_START_MANUAL);

	/* a migration id is checked before any device is touched, on both sides */
	options->migration_id = g_strdup("vm 1");
	assert_int_equal(
	    migd_manager_migrate(manager, NULL, "unix:@migd-test-manager-nobody", options, &error),
	    0);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	assert_non_null(strstr(error->message, "option 'migration-id' contains the byte 0x20"));
	g_clear_error(&error);
	assert_string_equal(ev->log->str, "");

	transport->plain = TRUE;
	address = migd_manager_listen(manager, listen, transport, &error);
	assert_non_null(address);
	assert_null(migd_manager_expect(manager, "", one, MIGD_START_AUTO, 0, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_null(migd_manager_expect(manager, "vm/1", one, MIGD_START_AUTO, 0, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	/* an expectation names its devices: "all" would take every other VM's */
	assert_null(migd_manager_expect(manager, "vm-1", none, MIGD_START_AUTO, 0, &error));
	assert_string_equal(error->message, "an expectation needs at least one device");
	g_clear_error(&error);
	assert_null(migd_manager_expect(manager, "vm-1", NULL, MIGD_START_AUTO, 0, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	assert_null(migd_manager_expect(manager, "vm-1", unknown, MIGD_START_AUTO, 0, &error));
	assert_string_equal(error->message, "unknown device 'dev9'");
	g_clear_error(&error);
	assert_null(migd_manager_expect(manager, "vm-1", twice, MIGD_START_AUTO, 0, &error));
	assert_string_equal(error->message, "device 'dev1' named twice");
	g_clear_error(&error);

	/* a device in an outgoing job cannot be reserved for an incoming one */
	g_free(g_steal_pointer(&options->migration_id));
	assert_int_equal(
	    migd_manager_migrate(manager, one, "unix:@migd-test-manager-nobody", options, &error),
	    1);
	assert_null(migd_manager_expect(manager, "vm-1", one, MIGD_START_AUTO, 0, &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_BUSY));
	assert_string_equal(error->message, "device 'dev0' is busy in another job");
	g_clear_error(&error);
	wait_finished(ev->job, 30);
	assert_false(
	    migd_manager_device_is_busy(manager, migd_manager_find_device(manager, "dev0")));
	g_clear_pointer(&ids, g_strfreev);
	ids = migd_manager_list_expectations(manager);
	assert_int_equal(g_strv_length(ids), 0);
	assert_false(migd_manager_cancel_expectation(manager, "vm-1", &error));
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
}

/* ---- retention of finished jobs ---- */

static void
test_manager_retention(void **state)
{
	const gchar *specs[] = {"mtty:seed=1", NULL};
	g_autoptr(MigdManager) manager = manager_new(specs, "dev");
	g_autoptr(Events) ev = events_new(manager);
	g_autoptr(MigdMigrateOptions) options = plain_options();
	g_autoptr(GError) error = NULL;
	gint64 deadline;

	/* at most 2 finished jobs, for 1 s */
	migd_manager_set_job_retention(manager, 1, 2);
	for (guint64 i = 1; i <= 3; i++) {
		/* nobody listens on port 1: each job fails on its own, quickly */
		assert_int_equal(migd_manager_migrate(manager, NULL,
						      "unix:@migd-test-manager-nobody", options,
						      &error),
				 i);
		assert_null(error);
		wait_finished(ev->job, 30);
		assert_false(migd_job_get_success(ev->job));
		assert_int_equal(state_of(manager, "dev0"), MIGD_STATE_RUNNING);
	}
	/* the third finished job pushed out the first */
	assert_string_equal(ev->log->str, "+1 *1 +2 *2 +3 *3 -1 ");
	assert_null(migd_manager_get_job(manager, 1));
	assert_non_null(migd_manager_get_job(manager, 2));
	assert_non_null(migd_manager_get_job(manager, 3));
	{
		g_autoptr(GArray) ids = migd_manager_get_job_ids(manager);
		assert_int_equal(ids->len, 2);
		assert_int_equal(g_array_index(ids, guint64, 0), 2);
		assert_int_equal(g_array_index(ids, guint64, 1), 3);
	}

	/* and after their time, the others go too; ids are never reused */
	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while (migd_manager_get_job(manager, 3) != NULL && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, FALSE) || (g_usleep(1000), TRUE);
	assert_null(migd_manager_get_job(manager, 2));
	assert_null(migd_manager_get_job(manager, 3));
	assert_string_equal(ev->log->str, "+1 *1 +2 *2 +3 *3 -1 -2 -3 ");
	assert_int_equal(
	    migd_manager_migrate(manager, NULL, "unix:@migd-test-manager-nobody", options, &error),
	    4);
	assert_int_equal(migd_manager_cancel_all(manager), 1);
	wait_finished(ev->job, 30);
	assert_false(migd_job_get_success(ev->job));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_manager_registry),
	    cmocka_unit_test(test_manager_device_info),
	    cmocka_unit_test(test_manager_migrate),
	    cmocka_unit_test(test_manager_cancel),
	    cmocka_unit_test(test_manager_migrate_refused),
	    cmocka_unit_test(test_manager_retention),
	    cmocka_unit_test(test_manager_expect_refused),
	};
	return cmocka_run_group_tests_name("manager", tests, NULL, NULL);
}
