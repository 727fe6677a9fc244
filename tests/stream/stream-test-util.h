/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Helpers for the stream tests: a whole migration of one simulated device run
 * the way the engine will, source reader -> main loop -> destination writer,
 * and a check that no stream worker is left. Include after <cmocka.h>.
 */
#pragma once

#include <errno.h>
#include <string.h>

#include "migd-error.h"
#include "migd-sim-device.h"
#include "migd-stream-reader.h"
#include "migd-stream-writer.h"

#define KiB ((guint64)1024)
#define MiB ((guint64)1024 * KiB)

/* every test bounds its waits with this; a hang fails instead of blocking the suite */
#define STREAM_TEST_TIMEOUT_S 60

static G_GNUC_UNUSED MigdDevice *
st_sim_new(const gchar *spec)
{
	g_autoptr(GError) error = NULL;
	MigdSimDevice *dev = migd_sim_device_new_from_string(spec, &error);

	if (dev == NULL)
		fail_msg("%s: %s", spec, error->message);
	return MIGD_DEVICE(dev);
}

static G_GNUC_UNUSED void
st_go(MigdDevice *dev, MigdState target, MigdDataFd **data_fd)
{
	g_autoptr(GError) error = NULL;

	if (!migd_device_transition(dev, target, MIGD_STATE_RUNNING, data_fd, NULL, &error))
		fail_msg("-> %s: %s", migd_state_to_string(target), error->message);
}

static G_GNUC_UNUSED guint64
st_digest(MigdDevice *dev)
{
	return migd_sim_device_get_state_digest(MIGD_SIM_DEVICE(dev));
}

/* the stream workers name their threads; /proc shows a thread until it is joined */
static G_GNUC_UNUSED guint
st_count_stream_threads(void)
{
	g_autoptr(GDir) dir = g_dir_open("/proc/self/task", 0, NULL);
	const gchar *tid;
	guint n = 0;

	assert_non_null(dir);
	while ((tid = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_strdup_printf("/proc/self/task/%s/comm", tid);
		g_autofree gchar *comm = NULL;

		if (g_file_get_contents(path, &comm, NULL, NULL) &&
		    g_str_has_prefix(comm, "migd-stream-"))
			n++;
	}
	return n;
}

/*
 * after g_thread_join() the kernel may show the task for a moment longer (the
 * join wakes at mm release, before the task is reaped): look again briefly
 */
static G_GNUC_UNUSED guint
st_wait_no_stream_threads(void)
{
	guint n = st_count_stream_threads();

	for (guint i = 0; n > 0 && i < 50; i++) {
		g_usleep(2000);
		n = st_count_stream_threads();
	}
	return n;
}

static G_GNUC_UNUSED gboolean
st_timeout_cb(gpointer user_data)
{
	gboolean *timed_out = user_data;
	*timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

/* iterates the default context until *@done or the timeout; FALSE: timed out */
static G_GNUC_UNUSED gboolean
st_run_until(gboolean *done, guint timeout_ms)
{
	gboolean timed_out = FALSE;
	guint id = g_timeout_add(timeout_ms, st_timeout_cb, &timed_out);

	while (!*done && !timed_out)
		g_main_context_iteration(NULL, TRUE);
	if (!timed_out)
		g_source_remove(id);
	return !timed_out;
}

/* ---- one migration through reader -> main loop -> writer ---- */

typedef struct {
	/* input */
	gchar *src_spec;
	gchar *dst_spec;
	guint precopy_rounds; /* 0: RUNNING -> STOP -> STOP_COPY */
	MigdStreamConfig reader_config;
	MigdStreamConfig writer_config;
	guint *n_running; /* shared by migrations run in parallel */

	/* devices and streams */
	MigdDevice *src;
	MigdDevice *dst;
	MigdStreamReader *reader;
	MigdStreamWriter *writer;

	/* chunks delivered by the reader that the writer refused so far, in order */
	GQueue pending;
	guint held_chunks; /* delivered and not released */
	guint peak_held_chunks;
	guint64 bytes;
	guint rounds;
	guint64 last_initial;
	guint64 last_dirty;
	guint n_refused;
	guint n_space;
	gboolean end_seen;
	gboolean done;
	GError *reader_error;
	GError *writer_error;
	gint64 t_start;
	gint64 t_end;
	gint64 t_stop_copy; /* when the source stopped */
} StMig;

static void st_mig_flush(StMig *m);

static void
st_mig_set_done(StMig *m)
{
	if (m->done)
		return;
	m->done = TRUE;
	m->t_end = g_get_monotonic_time();
	if (m->n_running != NULL)
		(*m->n_running)--;
}

static void
st_mig_fail_reader(StMig *m, const GError *error)
{
	if (m->reader_error == NULL)
		m->reader_error = g_error_copy(error);
	migd_stream_writer_cancel(m->writer);
	st_mig_set_done(m);
}

static G_GNUC_UNUSED void
st_mig_reader_chunk(MigdStreamReader *reader, GBytes *chunk, guint32 crc32c, gpointer user_data)
{
	StMig *m = user_data;

	m->held_chunks++;
	m->peak_held_chunks = MAX(m->peak_held_chunks, m->held_chunks);
	m->bytes += g_bytes_get_size(chunk);
	g_queue_push_tail(&m->pending, g_bytes_ref(chunk));
	st_mig_flush(m);
}

static void
st_mig_start_stop_copy(StMig *m)
{
	g_autoptr(GError) error = NULL;

	m->t_stop_copy = g_get_monotonic_time();
	st_go(m->src, MIGD_STATE_STOP_COPY, NULL);
	if (!migd_stream_reader_drain(m->reader, MIGD_STATE_STOP_COPY, &error))
		fail_msg("drain STOP_COPY: %s", error->message);
}

static void
st_mig_reader_drained(MigdStreamReader *reader, MigdState phase, guint64 drain_bytes,
		      MigdDataReadStatus status, gpointer user_data)
{
	StMig *m = user_data;
	g_autoptr(GError) error = NULL;

	if (phase == MIGD_STATE_STOP_COPY) {
		assert_int_equal(status, MIGD_DATA_READ_END);
		m->end_seen = TRUE;
		st_mig_flush(m);
		return;
	}
	assert_int_equal(status, MIGD_DATA_READ_TEMP_END);
	m->rounds++;
	if (m->rounds < m->precopy_rounds) {
		if (!migd_stream_reader_query_precopy_info(reader, &error))
			fail_msg("precopy info: %s", error->message);
		return;
	}
	st_mig_start_stop_copy(m);
}

static void
st_mig_reader_precopy_info(MigdStreamReader *reader, guint64 initial, guint64 dirty,
			   gpointer user_data)
{
	StMig *m = user_data;
	g_autoptr(GError) error = NULL;

	m->last_initial = initial;
	m->last_dirty = dirty;
	if (!migd_stream_reader_drain(reader, MIGD_STATE_PRE_COPY, &error))
		fail_msg("drain PRE_COPY: %s", error->message);
}

static void
st_mig_reader_error(MigdStreamReader *reader, const GError *error, gpointer user_data)
{
	st_mig_fail_reader(user_data, error);
}

static const MigdStreamReaderCallbacks st_mig_reader_cb = {
    .chunk = st_mig_reader_chunk,
    .drained = st_mig_reader_drained,
    .precopy_info = st_mig_reader_precopy_info,
    .error = st_mig_reader_error,
};

/* hands pending chunks to the writer until it refuses one; releases what it took */
static void
st_mig_flush(StMig *m)
{
	GBytes *chunk;

	if (migd_stream_writer_is_stopped(m->writer))
		return;
	while ((chunk = g_queue_peek_head(&m->pending)) != NULL) {
		if (!migd_stream_writer_push(m->writer, chunk)) {
			m->n_refused++;
			return;
		}
		g_queue_pop_head(&m->pending);
		/* the writer holds it now: the reader may read the next one */
		migd_stream_reader_release(m->reader, chunk);
		m->held_chunks--;
		g_bytes_unref(chunk);
	}
	if (m->end_seen)
		migd_stream_writer_finish(m->writer);
}

static void
st_mig_writer_space(MigdStreamWriter *writer, gpointer user_data)
{
	StMig *m = user_data;
	m->n_space++;
	st_mig_flush(m);
}

static void
st_mig_writer_finished(MigdStreamWriter *writer, guint64 total_bytes, gpointer user_data)
{
	StMig *m = user_data;
	g_autoptr(GError) error = NULL;

	assert_int_equal(total_bytes, m->bytes);
	/* RESUMING -> STOP loads (and validates) the state */
	if (!migd_device_transition(m->dst, MIGD_STATE_STOP, MIGD_STATE_ERROR, NULL, NULL,
				    &error)) {
		m->writer_error = g_steal_pointer(&error);
		migd_stream_reader_cancel(m->reader);
	}
	st_mig_set_done(m);
}

static void
st_mig_writer_error(MigdStreamWriter *writer, const GError *error, gpointer user_data)
{
	StMig *m = user_data;

	if (m->writer_error == NULL)
		m->writer_error = g_error_copy(error);
	/* the engine aborts the device's migration: the source side stops too */
	migd_stream_reader_cancel(m->reader);
	st_mig_set_done(m);
}

static const MigdStreamWriterCallbacks st_mig_writer_cb = {
    .space_available = st_mig_writer_space,
    .finished = st_mig_writer_finished,
    .error = st_mig_writer_error,
};

static G_GNUC_UNUSED StMig *
st_mig_new(const gchar *src_spec, const gchar *dst_spec, guint precopy_rounds)
{
	StMig *m = g_new0(StMig, 1);

	m->src_spec = g_strdup(src_spec);
	m->dst_spec = g_strdup(dst_spec);
	m->precopy_rounds = precopy_rounds;
	g_queue_init(&m->pending);
	return m;
}

/* sets the devices up and starts the first operation; the main loop does the rest */
static G_GNUC_UNUSED void
st_mig_start(StMig *m)
{
	g_autoptr(GError) error = NULL;
	MigdDataFd *src_fd = NULL;
	MigdDataFd *dst_fd = NULL;

	m->src = st_sim_new(m->src_spec);
	m->dst = st_sim_new(m->dst_spec);
	m->t_start = g_get_monotonic_time();
	/* destination first: nothing on the source moves until it can receive */
	st_go(m->dst, MIGD_STATE_RESUMING, &dst_fd);
	assert_non_null(dst_fd);
	m->writer =
	    migd_stream_writer_new(dst_fd, NULL, &m->writer_config, &st_mig_writer_cb, m, &error);
	if (m->writer == NULL)
		fail_msg("writer: %s", error->message);

	if (m->precopy_rounds > 0) {
		st_go(m->src, MIGD_STATE_PRE_COPY, &src_fd);
	} else {
		st_go(m->src, MIGD_STATE_STOP, NULL);
		m->t_stop_copy = g_get_monotonic_time();
		st_go(m->src, MIGD_STATE_STOP_COPY, &src_fd);
	}
	assert_non_null(src_fd);
	m->reader =
	    migd_stream_reader_new(src_fd, NULL, &m->reader_config, &st_mig_reader_cb, m, &error);
	if (m->reader == NULL)
		fail_msg("reader: %s", error->message);

	if (m->precopy_rounds > 0) {
		if (!migd_stream_reader_query_precopy_info(m->reader, &error))
			fail_msg("precopy info: %s", error->message);
	} else if (!migd_stream_reader_drain(m->reader, MIGD_STATE_STOP_COPY, &error)) {
		fail_msg("drain: %s", error->message);
	}
}

static G_GNUC_UNUSED gdouble
st_mig_seconds(const StMig *m)
{
	return (gdouble)(m->t_end - m->t_start) / G_USEC_PER_SEC;
}

/* a successful migration: the destination holds exactly the source's state */
static G_GNUC_UNUSED void
st_mig_assert_ok(StMig *m)
{
	if (m->reader_error != NULL)
		fail_msg("%s: reader: %s", m->src_spec, m->reader_error->message);
	if (m->writer_error != NULL)
		fail_msg("%s: writer: %s", m->src_spec, m->writer_error->message);
	assert_true(m->done);
	assert_true(m->end_seen);
	assert_true(g_queue_is_empty(&m->pending));
	assert_int_equal(m->held_chunks, 0);
	assert_int_equal(st_digest(m->src), st_digest(m->dst));
}

static G_GNUC_UNUSED void
st_mig_free(StMig *m)
{
	g_clear_object(&m->reader);
	g_clear_object(&m->writer);
	g_queue_clear_full(&m->pending, (GDestroyNotify)g_bytes_unref);
	g_clear_object(&m->src);
	g_clear_object(&m->dst);
	g_clear_error(&m->reader_error);
	g_clear_error(&m->writer_error);
	g_free(m->src_spec);
	g_free(m->dst_spec);
	g_free(m);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StMig, st_mig_free)

/* runs @n migrations at once on the default context; asserts they all end in time */
static G_GNUC_UNUSED void
st_mig_run(StMig **migs, guint n)
{
	guint n_running = n;
	gboolean timed_out = FALSE;
	guint id = g_timeout_add_seconds(STREAM_TEST_TIMEOUT_S, st_timeout_cb, &timed_out);

	for (guint i = 0; i < n; i++) {
		migs[i]->n_running = &n_running;
		st_mig_start(migs[i]);
	}
	while (n_running > 0 && !timed_out)
		g_main_context_iteration(NULL, TRUE);
	if (timed_out)
		fail_msg("migration did not finish in %u s", STREAM_TEST_TIMEOUT_S);
	g_source_remove(id);
}
