/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Helpers shared by the simulator tests: drive a device through the MigdDevice
 * API and move its stream through the data fds. Include after <cmocka.h>.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "migd-error.h"
#include "migd-fsm.h"
#include "migd-sim-device.h"

#define KiB ((guint64)1024)
#define MiB ((guint64)1024 * KiB)

static G_GNUC_UNUSED MigdDevice *
sim_new(const gchar *spec)
{
	g_autoptr(GError) error = NULL;
	MigdSimDevice *dev = migd_sim_device_new_from_string(spec, &error);

	if (dev == NULL)
		fail_msg("%s: %s", spec, error->message);
	return MIGD_DEVICE(dev);
}

static G_GNUC_UNUSED MigdState
sim_state(MigdDevice *dev)
{
	g_autoptr(GError) error = NULL;
	MigdState state = MIGD_STATE_ERROR;

	assert_true(migd_device_get_state(dev, &state, &error));
	return state;
}

static G_GNUC_UNUSED guint64
sim_digest(MigdDevice *dev)
{
	return migd_sim_device_get_state_digest(MIGD_SIM_DEVICE(dev));
}

/* planned transition with recovery to RUNNING; asserts success */
static G_GNUC_UNUSED void
sim_go(MigdDevice *dev, MigdState target, MigdDataFd **data_fd)
{
	g_autoptr(GError) error = NULL;

	if (!migd_device_transition(dev, target, MIGD_STATE_RUNNING, data_fd, NULL, &error))
		fail_msg("-> %s: %s", migd_state_to_string(target), error->message);
}

/* the raw SET of the backend, bypassing the planner: what the kernel would answer */
static G_GNUC_UNUSED gboolean
sim_raw_set(MigdDevice *dev, MigdState target, MigdDataFd **data_fd, GError **error)
{
	return MIGD_DEVICE_GET_CLASS(dev)->set_state(dev, target, data_fd, error);
}

/* reads until the (temporary) end; returns the status that ended it */
static G_GNUC_UNUSED MigdDataReadStatus
sim_read_until_end(MigdDataFd *fd, MigdState phase, GByteArray *out, gsize chunk)
{
	g_autofree guint8 *buf = g_malloc(chunk);

	for (;;) {
		g_autoptr(GError) error = NULL;
		gsize n = 0;
		MigdDataReadStatus status = MIGD_DATA_READ_DATA;

		if (!migd_data_fd_read_chunk(fd, phase, buf, chunk, &n, &status, NULL, &error))
			fail_msg("read in %s: %s", migd_state_to_string(phase), error->message);
		if (status != MIGD_DATA_READ_DATA)
			return status;
		assert_true(n > 0 && n <= chunk);
		if (out != NULL)
			g_byte_array_append(out, buf, (guint)n);
	}
}

static G_GNUC_UNUSED void
sim_write(MigdDataFd *fd, const guint8 *data, gsize len)
{
	g_autoptr(GError) error = NULL;

	if (!migd_data_fd_write_all(fd, data, len, NULL, &error))
		fail_msg("write: %s", error->message);
}

/* writes @len bytes and expects the driver to refuse them with @errnum */
static G_GNUC_UNUSED void
sim_write_expect_errno(MigdDataFd *fd, const guint8 *data, gsize len, gint errnum)
{
	g_autoptr(GError) error = NULL;

	assert_false(migd_data_fd_write_all(fd, data, len, NULL, &error));
	if (!migd_error_matches_errno(error, errnum))
		fail_msg("expected %s, got: %s", g_strerror(errnum), error->message);
}

static G_GNUC_UNUSED void
sim_assert_errno(const GError *error, gint errnum)
{
	assert_non_null(error);
	if (!migd_error_matches_errno(error, errnum))
		fail_msg("expected %s, got: %s", g_strerror(errnum), error->message);
}

/* STOP -> STOP_COPY on @src, whole stream out */
static G_GNUC_UNUSED GByteArray *
sim_save_stopped(MigdDevice *src)
{
	g_autoptr(MigdDataFd) fd = NULL;
	GByteArray *stream = g_byte_array_new();

	sim_go(src, MIGD_STATE_STOP, NULL);
	sim_go(src, MIGD_STATE_STOP_COPY, &fd);
	assert_non_null(fd);
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_STOP_COPY, stream, 1 * MiB),
			 MIGD_DATA_READ_END);
	return stream;
}

/* RUNNING -> STOP -> RESUMING on @dst, write @stream, then -> STOP; returns the SET's result */
static G_GNUC_UNUSED gboolean
sim_load(MigdDevice *dst, const guint8 *stream, gsize len, GError **error)
{
	g_autoptr(MigdDataFd) fd = NULL;

	sim_go(dst, MIGD_STATE_STOP, NULL);
	sim_go(dst, MIGD_STATE_RESUMING, &fd);
	assert_non_null(fd);
	if (!migd_data_fd_write_all(fd, stream, len, NULL, error))
		return FALSE;
	return migd_device_set_state_arc(dst, MIGD_STATE_STOP, NULL, error);
}
