/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dbus-vmstate record (daemon/migd-vm-record.c) alone, no daemon: a
 * source job's record encoded and decoded again, the bytes little endian,
 * every refusal of decode (size, form, version, migration id, device count,
 * device names), of from_job (no migration id, a stream not complete) and of
 * match_job (migration id, count, a stream not validated, bytes, CRC32C).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "migd-error.h"
#include "migd-vm-record.h"
#include "migd-wire-limits.h"

static const gchar *const src_names[] = {"sim0", "sim1", NULL};
/* the destination's names differ (another host): the index and the stream count */
static const gchar *const dst_names[] = {"0000:3b:00.1", "0000:3b:00.2", NULL};

static MigdJob *
job_with_streams(MigdJobRole role, const gchar *migration_id, const gchar *const *names,
		 gboolean complete)
{
	MigdJob *job = migd_job_new(role, "7");

	if (migration_id != NULL)
		migd_job_set_migration_id(job, migration_id);
	migd_job_set_device_names(job, names);
	migd_job_set_device_stream(job, 0, 4096, 0xdeadbeefu);
	if (complete)
		migd_job_set_device_stream(job, 1, 176, 0x01020304u);
	return job;
}

static void
assert_error_says(GError *error, gint code, const gchar *says)
{
	assert_non_null(error);
	if (!g_error_matches(error, MIGD_ERROR, code) || strstr(error->message, says) == NULL)
		fail_msg("'%s' (code %d) is not %d saying '%s'", error->message, error->code, code,
			 says);
}

/* a record given as a GVariant (whatever a peer could send), serialised */
static GBytes *
bytes_of(GVariant *value)
{
	g_autoptr(GVariant) v = g_variant_ref_sink(value);
	return g_variant_get_data_as_bytes(v);
}

static GVariant *
record_variant(guint32 version, const gchar *mid, guint n, const gchar *name)
{
	g_auto(GVariantBuilder) devices = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(stu)"));

	for (guint i = 0; i < n; i++)
		g_variant_builder_add(&devices, "(stu)", name, (guint64)176, 7u);
	return g_variant_new("(usa(stu))", version, mid, &devices);
}

static void
decode_refused(GBytes *bytes, const gchar *says)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdVmRecord) record = NULL;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);

	record = migd_vm_record_decode(data, len, &error);
	assert_null(record);
	assert_error_says(error, MIGD_ERROR_INVALID_ARGUMENT, says);
}

static void
test_round_trip(void **state)
{
	g_autoptr(MigdJob) src = job_with_streams(MIGD_JOB_ROLE_SOURCE, "vm1", src_names, TRUE);
	g_autoptr(MigdJob) dst =
	    job_with_streams(MIGD_JOB_ROLE_DESTINATION, "vm1", dst_names, TRUE);
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdVmRecord) record = migd_vm_record_from_job(src, &error);
	g_autoptr(MigdVmRecord) back = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GBytes) again = NULL;
	const guint8 *data;
	gsize len = 0;

	(void)state;
	assert_non_null(record);
	assert_int_equal(record->version, MIGD_VM_RECORD_VERSION);
	assert_string_equal(record->migration_id, "vm1");
	assert_int_equal(record->devices->len, 2);
	bytes = migd_vm_record_encode(record);
	data = g_bytes_get_data(bytes, &len);
	/* small, and the version first, little endian */
	assert_true(len > 8 && len < 128);
	assert_int_equal(data[0], 1);
	assert_int_equal(data[1] | data[2] | data[3], 0);
	back = migd_vm_record_decode(data, len, &error);
	assert_non_null(back);
	assert_int_equal(back->version, 1);
	assert_string_equal(back->migration_id, "vm1");
	assert_int_equal(back->devices->len, 2);
	for (guint i = 0; i < 2; i++) {
		MigdVmRecordDevice *a = &g_array_index(record->devices, MigdVmRecordDevice, i);
		MigdVmRecordDevice *b = &g_array_index(back->devices, MigdVmRecordDevice, i);
		assert_string_equal(a->name, src_names[i]);
		assert_string_equal(b->name, a->name);
		assert_int_equal(b->bytes, a->bytes);
		assert_int_equal(b->crc32c, a->crc32c);
	}
	assert_int_equal(g_array_index(back->devices, MigdVmRecordDevice, 0).bytes, 4096);
	assert_int_equal(g_array_index(back->devices, MigdVmRecordDevice, 0).crc32c, 0xdeadbeefu);
	/* encoding is canonical: the decoded record encodes to the same bytes */
	again = migd_vm_record_encode(back);
	assert_true(g_bytes_equal(bytes, again));
	/* the destination's job holds the same streams under its own names */
	assert_true(migd_vm_record_match_job(back, dst, &error));
	assert_null(error);
}

static void
test_from_job_refused(void **state)
{
	g_autoptr(MigdJob) no_id = job_with_streams(MIGD_JOB_ROLE_SOURCE, NULL, src_names, TRUE);
	g_autoptr(MigdJob) partial =
	    job_with_streams(MIGD_JOB_ROLE_SOURCE, "vm1", src_names, FALSE);
	g_autoptr(MigdJob) no_devices = migd_job_new(MIGD_JOB_ROLE_SOURCE, "8");
	g_autoptr(GError) error = NULL;

	(void)state;
	assert_null(migd_vm_record_from_job(no_id, &error));
	assert_error_says(error, MIGD_ERROR_FAILED, "no migration id");
	g_clear_error(&error);
	migd_job_set_migration_id(no_devices, "vm1");
	assert_null(migd_vm_record_from_job(no_devices, &error));
	assert_error_says(error, MIGD_ERROR_FAILED, "no devices");
	g_clear_error(&error);
	assert_null(migd_vm_record_from_job(partial, &error));
	assert_error_says(error, MIGD_ERROR_FAILED, "the stream of sim1 is not complete");
}

static void
test_decode_refused(void **state)
{
	g_autofree guint8 *big = g_malloc0(MIGD_VM_RECORD_MAX_SIZE + 1);
	g_autofree gchar *long_name = g_strnfill(256, 'a');
	g_autoptr(GBytes) b = NULL;
	g_autoptr(GBytes) good = NULL;

	(void)state;
	b = g_bytes_new(big, MIGD_VM_RECORD_MAX_SIZE + 1);
	decode_refused(b, "more than 1048576");
	g_bytes_unref(b);
	b = g_bytes_new_static("", 0);
	decode_refused(b, "normal form");
	g_bytes_unref(b);
	b = g_bytes_new_static("\xff\xff\xff\xff\x01garbage", 12);
	decode_refused(b, "normal form");
	g_bytes_unref(b);
	/* another type altogether */
	b = bytes_of(g_variant_new("(ss)", "vm1", "sim0"));
	decode_refused(b, "normal form");
	g_bytes_unref(b);
	b = bytes_of(record_variant(2, "vm1", 1, "sim0"));
	decode_refused(b, "record version 2");
	g_bytes_unref(b);
	b = bytes_of(record_variant(0, "vm1", 1, "sim0"));
	decode_refused(b, "record version 0");
	g_bytes_unref(b);
	b = bytes_of(record_variant(1, "bad id!", 1, "sim0"));
	decode_refused(b, "migration id");
	g_bytes_unref(b);
	b = bytes_of(record_variant(1, "", 1, "sim0"));
	decode_refused(b, "migration id");
	g_bytes_unref(b);
	b = bytes_of(record_variant(1, "vm1", 0, "sim0"));
	decode_refused(b, "0 devices (1 to 256)");
	g_bytes_unref(b);
	b = bytes_of(record_variant(1, "vm1", MIGD_WIRE_MAX_DEVICES + 1, "sim0"));
	decode_refused(b, "257 devices");
	g_bytes_unref(b);
	b = bytes_of(record_variant(1, "vm1", 1, ""));
	decode_refused(b, "record device 0: a device name must be 1 to 255 bytes");
	g_bytes_unref(b);
	b = bytes_of(record_variant(1, "vm1", 2, long_name));
	decode_refused(b, "record device 0: a device name");
	g_bytes_unref(b);
	/* a byte of a device name turned into invalid UTF-8: not normal form */
	good = bytes_of(record_variant(1, "vm1", 1, "sim0"));
	{
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(good, &len);
		g_autofree guint8 *copy = g_memdup2(data, len);
		guint8 *at = memmem(copy, len, "sim0", 4);
		assert_non_null(at);
		at[1] = 0xff;
		b = g_bytes_new(copy, len);
		decode_refused(b, "normal form");
		/* the same bytes unchanged are accepted: the refusals above are the fields' */
		{
			g_autoptr(GError) error = NULL;
			g_autoptr(MigdVmRecord) r = migd_vm_record_decode(data, len, &error);
			assert_non_null(r);
		}
	}
	/* at most MIGD_WIRE_MAX_DEVICES: accepted */
	g_bytes_unref(b);
	b = bytes_of(record_variant(1, "vm1", MIGD_WIRE_MAX_DEVICES, "sim0"));
	{
		g_autoptr(GError) error = NULL;
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(b, &len);
		g_autoptr(MigdVmRecord) r = migd_vm_record_decode(data, len, &error);
		assert_non_null(r);
		assert_int_equal(r->devices->len, MIGD_WIRE_MAX_DEVICES);
	}
}

static void
match_refused(MigdVmRecord *record, MigdJob *job, const gchar *says)
{
	g_autoptr(GError) error = NULL;

	assert_false(migd_vm_record_match_job(record, job, &error));
	assert_error_says(error, MIGD_ERROR_INCOMPATIBLE, says);
}

static void
test_match_refused(void **state)
{
	g_autoptr(MigdJob) src = job_with_streams(MIGD_JOB_ROLE_SOURCE, "vm1", src_names, TRUE);
	g_autoptr(MigdVmRecord) record = migd_vm_record_from_job(src, NULL);
	const gchar *const one[] = {"sim0", NULL};

	(void)state;
	assert_non_null(record);
	{
		g_autoptr(MigdJob) dst =
		    job_with_streams(MIGD_JOB_ROLE_DESTINATION, "vm2", dst_names, TRUE);
		match_refused(record, dst, "the record is of migration 'vm1', the job of 'vm2'");
	}
	{
		g_autoptr(MigdJob) dst =
		    job_with_streams(MIGD_JOB_ROLE_DESTINATION, "vm1", one, TRUE);
		match_refused(record, dst, "the source sent 2 devices, 1 arrived");
	}
	{
		g_autoptr(MigdJob) dst =
		    job_with_streams(MIGD_JOB_ROLE_DESTINATION, "vm1", dst_names, FALSE);
		match_refused(record, dst, "device 1 (0000:3b:00.2): its stream was not validated");
	}
	{
		g_autoptr(MigdJob) dst =
		    job_with_streams(MIGD_JOB_ROLE_DESTINATION, "vm1", dst_names, TRUE);
		migd_job_set_device_stream(dst, 1, 177, 0x01020304u);
		match_refused(record, dst, "device 1 (0000:3b:00.2, the source's sim1): 177 bytes");
	}
	{
		g_autoptr(MigdJob) dst =
		    job_with_streams(MIGD_JOB_ROLE_DESTINATION, "vm1", dst_names, TRUE);
		migd_job_set_device_stream(dst, 0, 4096, 0xdeadbeeeu);
		match_refused(record, dst, "CRC32C deadbeee arrived");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_from_job_refused),
	    cmocka_unit_test(test_decode_refused),
	    cmocka_unit_test(test_match_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
