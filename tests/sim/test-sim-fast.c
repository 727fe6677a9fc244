/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * fast_data=1, the stand-in for benchmarks: its state moves through real data fds, and
 * the destination takes it only when every byte is what the source sent.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "migd-error.h"
#include "sim-test-util.h"

#define FAST_SIZE (1 * MiB + 12345)

static MigdDevice *
fast_new(guint seed, guint64 size)
{
	g_autofree gchar *spec = g_strdup_printf(
	    "mlx5:fast_data=1,state_size=%" G_GUINT64_FORMAT ",seed=%u", size, seed);
	return sim_new(spec);
}

/* the load of @stream fails at RESUMING -> STOP with EINVAL, and the state stays as it was */
static void
assert_refused(MigdDevice *dst, const guint8 *stream, gsize len)
{
	g_autoptr(GError) error = NULL;
	guint64 before = sim_digest(dst);

	assert_false(sim_load(dst, stream, len, &error));
	sim_assert_errno(error, EINVAL);
	assert_true(sim_digest(dst) == before);
	/* the engine's way out of a refused load */
	g_clear_error(&error);
	assert_true(migd_device_reset(dst, &error));
	assert_int_equal(sim_state(dst), MIGD_STATE_RUNNING);
}

static void
test_migrate(void **state)
{
	g_autoptr(MigdDevice) src = fast_new(3, FAST_SIZE);
	g_autoptr(MigdDevice) dst = fast_new(4, FAST_SIZE);
	g_autoptr(GByteArray) stream = sim_save_stopped(src);
	g_autoptr(GByteArray) again = NULL;
	g_autoptr(GError) error = NULL;

	assert_int_equal(stream->len, FAST_SIZE);
	assert_memory_equal(stream->data, "MIGDFAST", 8);
	assert_true(sim_digest(src) != sim_digest(dst));
	assert_true(sim_load(dst, stream->data, stream->len, &error));
	assert_true(sim_digest(src) == sim_digest(dst));
	sim_go(dst, MIGD_STATE_RUNNING, NULL);
	/* the destination now holds the same bytes: it saves exactly what it loaded */
	again = sim_save_stopped(dst);
	assert_int_equal(again->len, stream->len);
	assert_memory_equal(again->data, stream->data, stream->len);
}

static void
test_corrupted_byte(void **state)
{
	g_autoptr(MigdDevice) src = fast_new(5, FAST_SIZE);
	g_autoptr(MigdDevice) dst = fast_new(6, FAST_SIZE);
	g_autoptr(GByteArray) stream = sim_save_stopped(src);
	g_autoptr(GError) error = NULL;
	/* one byte anywhere: the first, one in the header, the middle, the last */
	const gsize offsets[] = {0, 9, 17, 29, FAST_SIZE / 2, FAST_SIZE - 1};

	for (guint i = 0; i < G_N_ELEMENTS(offsets); i++) {
		stream->data[offsets[i]] ^= 0x01;
		assert_refused(dst, stream->data, stream->len);
		stream->data[offsets[i]] ^= 0x01;
	}
	/* the intact stream is still taken */
	assert_true(sim_load(dst, stream->data, stream->len, &error));
	assert_true(sim_digest(src) == sim_digest(dst));
}

static void
test_wrong_length(void **state)
{
	g_autoptr(MigdDevice) src = fast_new(7, FAST_SIZE);
	g_autoptr(MigdDevice) dst = fast_new(8, 2 * FAST_SIZE);
	g_autoptr(MigdDevice) small = fast_new(9, FAST_SIZE);
	g_autoptr(GByteArray) stream = sim_save_stopped(src);
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdDataFd) fd = NULL;

	/* one byte short, nothing but the header, nothing at all */
	assert_refused(dst, stream->data, stream->len - 1);
	assert_refused(dst, stream->data, 32);
	assert_refused(dst, stream->data, 0);
	/* one byte too many */
	g_byte_array_append(stream, (const guint8 *)"x", 1);
	assert_refused(dst, stream->data, stream->len);
	/* a device takes no more than its own state_size: the write of the extra byte fails */
	sim_go(small, MIGD_STATE_STOP, NULL);
	sim_go(small, MIGD_STATE_RESUMING, &fd);
	sim_write_expect_errno(fd, stream->data, stream->len, ENOSPC);
	g_clear_pointer(&fd, migd_data_fd_free);
	assert_true(migd_device_reset(small, &error));
}

static void
test_precopy(void **state)
{
	g_autoptr(MigdDevice) src = fast_new(10, FAST_SIZE);
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(GByteArray) stopped = NULL;
	g_autoptr(GError) error = NULL;
	guint64 initial = 1, dirty = 1;

	/* pre-copy offers nothing: every byte moves in stop-copy, through the same fd */
	sim_go(src, MIGD_STATE_PRE_COPY, &fd);
	assert_non_null(fd);
	assert_true(migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error));
	assert_int_equal(initial, 0);
	assert_int_equal(dirty, 0);
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_PRE_COPY, stream, 64 * KiB),
			 MIGD_DATA_READ_TEMP_END);
	assert_int_equal(stream->len, 0);
	sim_go(src, MIGD_STATE_STOP_COPY, NULL);
	assert_int_equal(sim_read_until_end(fd, MIGD_STATE_STOP_COPY, stream, 64 * KiB),
			 MIGD_DATA_READ_END);
	g_clear_pointer(&fd, migd_data_fd_free);
	sim_go(src, MIGD_STATE_RUNNING, NULL);
	stopped = sim_save_stopped(src);
	assert_int_equal(stream->len, stopped->len);
	assert_memory_equal(stream->data, stopped->data, stream->len);
}

static void
test_knob(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdSimDevice) pds = migd_sim_device_new_from_string("pds:fast_data=1", &error);
	g_autoptr(MigdSimDevice) tiny = NULL;

	/* mlx5 only: the other profiles' fixed state sizes have no use for it */
	assert_null(pds);
	assert_true(g_error_matches(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	tiny = migd_sim_device_new_from_string("mlx5:fast_data=1,state_size=16", &error);
	assert_null(tiny);
	assert_non_null(error);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_migrate),	 cmocka_unit_test(test_corrupted_byte),
	    cmocka_unit_test(test_wrong_length), cmocka_unit_test(test_precopy),
	    cmocka_unit_test(test_knob),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
