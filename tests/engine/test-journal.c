/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The journal of jobs in flight: what a crashed run left behind brings its
 * devices back at the next start; finished jobs leave nothing; damaged records
 * are set aside, not trusted and not lost.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib/gstdio.h>
#include <string.h>

#include "migd-journal.h"
#include "migd-plugin.h"
#include "migd-sim-device.h"
#include "engine-test-util.h"
#include "migd-test-log.h"
#include "migd-test-util.h"

static MigdState
state_of(MigdDevice *device)
{
	MigdState state = MIGD_STATE_ERROR;
	assert_true(migd_device_get_state(device, &state, NULL));
	return state;
}

static guint
count_files(const gchar *dir, const gchar *suffix)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *name;
	guint n = 0;
	while (d != NULL && (name = g_dir_read_name(d)) != NULL)
		n += g_str_has_suffix(name, suffix);
	return n;
}

/* a crash mid-job: the next run finds the record and restarts the devices */
static void
test_recover_after_crash(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-journal-XXXXXX", NULL);
	g_autoptr(MigdJournal) journal = migd_journal_new(dir, NULL);
	g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(GPtrArray) dst_devices = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(MigdJob) src_job = migd_job_new(MIGD_JOB_ROLE_SOURCE, "7");
	g_autoptr(MigdJob) dst_job = migd_job_new(MIGD_JOB_ROLE_DESTINATION, "in3");
	g_autoptr(GPtrArray) all = g_ptr_array_new();
	g_autoptr(MigdDataFd) fd = NULL;
	MigdJournalRecovery result;

	assert_non_null(journal);
	g_ptr_array_add(devices, migd_test_sim_device("mlx5:seed=1", "a"));
	g_ptr_array_add(devices, migd_test_sim_device("hisi_acc:seed=2", "b"));
	g_ptr_array_add(dst_devices, migd_test_sim_device("mlx5:seed=3", "c"));
	assert_true(migd_journal_begin(journal, src_job, devices, NULL));
	assert_true(migd_journal_begin(journal, dst_job, dst_devices, NULL));
	assert_int_equal(count_files(dir, ".job"), 2);

	/* where the crashed run left them: stopped on the source, resuming on the destination */
	assert_true(migd_device_transition(g_ptr_array_index(devices, 0), MIGD_STATE_STOP,
					   MIGD_STATE_RUNNING, NULL, NULL, NULL));
	assert_true(migd_device_transition(g_ptr_array_index(devices, 1), MIGD_STATE_PRE_COPY,
					   MIGD_STATE_RUNNING, &fd, NULL, NULL));
	assert_true(migd_device_transition(g_ptr_array_index(dst_devices, 0), MIGD_STATE_RESUMING,
					   MIGD_STATE_RUNNING, NULL, NULL, NULL));
	g_clear_pointer(&fd, migd_data_fd_free);

	/* the next run: its devices, plus one the record names that it does not have */
	for (guint i = 0; i < devices->len; i++)
		g_ptr_array_add(all, g_ptr_array_index(devices, i));
	g_ptr_array_add(all, g_ptr_array_index(dst_devices, 0));
	g_ptr_array_remove_index(all, 1); /* "b" is not managed by this run */
	migd_journal_recover(journal, all, &result);
	assert_int_equal(result.jobs, 2);
	assert_int_equal(result.recovered, 2);
	assert_int_equal(result.unknown, 1);
	assert_int_equal(result.failed, 0);
	assert_int_equal(state_of(g_ptr_array_index(devices, 0)), MIGD_STATE_RUNNING);
	assert_int_equal(state_of(g_ptr_array_index(dst_devices, 0)), MIGD_STATE_RUNNING);
	/* records are consumed */
	assert_int_equal(count_files(dir, ".job"), 0);
	migd_journal_recover(journal, all, &result);
	assert_int_equal(result.jobs, 0);
	migd_test_rm_rf(dir);
}

/*
 * A destination killed mid-stream: its hisi_acc VF is RESUMING with nothing
 * loaded, which neither a reset nor a walk leaves; its plugin's quirk has the
 * restarted daemon close and reopen it. A device the record names that is
 * RUNNING (a guest may run on it) is left alone, not reset.
 */
static void
test_destination_record_recovery(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-journal-XXXXXX", NULL);
	g_autoptr(MigdJournal) journal = migd_journal_new(dir, NULL);
	g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(MigdJob) dst_job = migd_job_new(MIGD_JOB_ROLE_DESTINATION, "in4");
	g_autoptr(MigdDataFd) fd = NULL;
	MigdDevice *hisi;
	MigdDevice *idle;
	MigdJournalRecovery result;

	g_ptr_array_add(devices, migd_test_sim_device("hisi_acc:seed=3", "h"));
	g_ptr_array_add(devices, migd_test_sim_device("mlx5:seed=4", "m"));
	hisi = g_ptr_array_index(devices, 0);
	idle = g_ptr_array_index(devices, 1);
	/* what plugins/hisi_acc declares */
	migd_device_set_recovery_quirks(hisi, MIGD_RECOVERY_QUIRK_RESET_KEEPS_STATE |
						  MIGD_RECOVERY_QUIRK_REOPEN_RESETS_STATE);
	assert_true(migd_journal_begin(journal, dst_job, devices, NULL));
	assert_true(
	    migd_device_transition(hisi, MIGD_STATE_RESUMING, MIGD_STATE_ERROR, &fd, NULL, NULL));
	g_clear_pointer(&fd, migd_data_fd_free);
	/* a reset alone does not bring it back */
	assert_true(migd_device_reset(hisi, NULL));
	assert_int_equal(state_of(hisi), MIGD_STATE_RESUMING);

	migd_journal_recover(journal, devices, &result);
	assert_int_equal(result.jobs, 1);
	assert_int_equal(result.failed, 0);
	/* only the device that was out of RUNNING was brought back */
	assert_int_equal(result.recovered, 1);
	assert_int_equal(state_of(hisi), MIGD_STATE_RUNNING);
	assert_int_equal(state_of(idle), MIGD_STATE_RUNNING);
	assert_int_equal(count_files(dir, ".job"), 0);
	migd_test_rm_rf(dir);
}

/* a job that ended removes its record: devices it left stopped on purpose stay stopped */
static void
test_finished_job_leaves_nothing(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-journal-XXXXXX", NULL);
	g_autoptr(MigdJournal) journal = migd_journal_new(dir, NULL);
	g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(MigdJob) job = migd_job_new(MIGD_JOB_ROLE_SOURCE, "1");
	MigdJournalRecovery result;

	g_ptr_array_add(devices, migd_test_sim_device("mlx5:seed=1", "a"));
	assert_true(migd_journal_begin(journal, job, devices, NULL));
	assert_true(migd_device_transition(g_ptr_array_index(devices, 0), MIGD_STATE_STOP,
					   MIGD_STATE_RUNNING, NULL, NULL, NULL));
	migd_journal_end(journal, job);
	migd_journal_recover(journal, devices, &result);
	assert_int_equal(result.jobs, 0);
	assert_int_equal(state_of(g_ptr_array_index(devices, 0)), MIGD_STATE_STOP);
	migd_test_rm_rf(dir);
}

static void
test_damaged_record_set_aside(void **state)
{
	g_autofree gchar *dir = g_dir_make_tmp("migd-journal-XXXXXX", NULL);
	g_autoptr(MigdJournal) journal = migd_journal_new(dir, NULL);
	g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(g_object_unref);
	g_autofree gchar *bad = g_build_filename(dir, "source-9.job", NULL);
	g_autofree gchar *other = g_build_filename(dir, "destination-in1.job", NULL);
	MigdJournalRecovery result;

	g_ptr_array_add(devices, migd_test_sim_device("mlx5:seed=1", "a"));
	assert_true(g_file_set_contents(bad, "this is not a key file", -1, NULL));
	assert_true(
	    g_file_set_contents(other, "[job]\nversion=99\nrole=source\ndevices=a\n", -1, NULL));
	migd_journal_recover(journal, devices, &result);
	assert_int_equal(result.jobs, 0);
	assert_int_equal(count_files(dir, ".job"), 0);
	assert_int_equal(count_files(dir, ".job.bad"), 2);
	migd_test_rm_rf(dir);
}

static void
test_unwritable_state_dir(void **state)
{
	g_autoptr(GError) error = NULL;

	assert_null(migd_journal_new("/proc/self/no/such/dir", &error));
	assert_non_null(strstr(error->message, "state directory"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_recover_after_crash),
	    cmocka_unit_test(test_destination_record_recovery),
	    cmocka_unit_test(test_finished_job_leaves_nothing),
	    cmocka_unit_test(test_damaged_record_set_aside),
	    cmocka_unit_test(test_unwritable_state_dir),
	};
	/* the recovery warns on purpose; only criticals would be news */
	migd_test_log_init(MIGD_TEST_LOG_CRITICALS);
	return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
