/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dbus-vmstate record: encode, decode (untrusted: QEMU passes on whatever
 * the source side produced) and the destination's comparison.
 */
#include "config.h"

#include "migd-vm-record.h"

#include <string.h>

#include "migd-error.h"
#include "migd-wire-frame.h"
#include "migd-wire-limits.h"

/* as the manager's device names */
#define MIGD_VM_RECORD_MAX_NAME 255u

static void
migd_vm_record_device_clear(gpointer data)
{
	MigdVmRecordDevice *device = data;
	g_free(device->name);
}

static MigdVmRecord *
migd_vm_record_new(const gchar *migration_id)
{
	MigdVmRecord *record = g_new0(MigdVmRecord, 1);

	record->version = MIGD_VM_RECORD_VERSION;
	record->migration_id = g_strdup(migration_id);
	record->devices = g_array_new(FALSE, TRUE, sizeof(MigdVmRecordDevice));
	g_array_set_clear_func(record->devices, migd_vm_record_device_clear);
	return record;
}

void
migd_vm_record_free(MigdVmRecord *record)
{
	if (record == NULL)
		return;
	g_free(record->migration_id);
	g_array_unref(record->devices);
	g_free(record);
}

MigdVmRecord *
migd_vm_record_from_job(MigdJob *job, GError **error)
{
	const gchar *const *names = migd_job_get_device_names(job);
	const gchar *migration_id = migd_job_get_migration_id(job);
	g_autoptr(MigdVmRecord) record = NULL;

	if (migration_id == NULL || names == NULL) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
			    "job %s has no migration id or no devices", migd_job_get_id(job));
		return NULL;
	}
	record = migd_vm_record_new(migration_id);
	for (guint i = 0; names[i] != NULL; i++) {
		MigdVmRecordDevice device = {0};

		if (!migd_job_get_device_stream(job, i, &device.bytes, &device.crc32c)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
				    "job %s: the stream of %s is not complete",
				    migd_job_get_id(job), names[i]);
			return NULL;
		}
		device.name = g_strdup(names[i]);
		g_array_append_val(record->devices, device);
	}
	return g_steal_pointer(&record);
}

GBytes *
migd_vm_record_encode(const MigdVmRecord *record)
{
	g_auto(GVariantBuilder) devices = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(stu)"));
	g_autoptr(GVariant) value = NULL;
	g_autoptr(GVariant) le = NULL;

	for (guint i = 0; i < record->devices->len; i++) {
		const MigdVmRecordDevice *d =
		    &g_array_index(record->devices, MigdVmRecordDevice, i);
		g_variant_builder_add(&devices, "(stu)", d->name, d->bytes, d->crc32c);
	}
	value = g_variant_ref_sink(
	    g_variant_new("(usa(stu))", record->version, record->migration_id, &devices));
	/* the wire order is little endian whatever the host */
	le = G_BYTE_ORDER == G_LITTLE_ENDIAN ? g_variant_ref(value) : g_variant_byteswap(value);
	return g_variant_get_data_as_bytes(le);
}

static gboolean
migd_vm_record_check_name(const gchar *name, GError **error)
{
	gsize len = strlen(name);

	if (len == 0 || len > MIGD_VM_RECORD_MAX_NAME || !g_utf8_validate(name, len, NULL)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "a device name must be 1 to %u bytes of UTF-8",
			    MIGD_VM_RECORD_MAX_NAME);
		return FALSE;
	}
	return TRUE;
}

MigdVmRecord *
migd_vm_record_decode(const guint8 *data, gsize len, GError **error)
{
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GVariant) value = NULL;
	g_autoptr(GVariant) host = NULL;
	g_autoptr(GVariant) list = NULL;
	g_autoptr(MigdVmRecord) record = NULL;
	const gchar *migration_id = NULL;
	guint32 version = 0;
	gsize n;

	if (len > MIGD_VM_RECORD_MAX_SIZE) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "the record is %" G_GSIZE_FORMAT " bytes, more than %u", len,
			    MIGD_VM_RECORD_MAX_SIZE);
		return NULL;
	}
	/* a copy: GVariant needs aligned data, and the caller's may be anything */
	bytes = g_bytes_new(data, len);
	value = g_variant_ref_sink(
	    g_variant_new_from_bytes(G_VARIANT_TYPE(MIGD_VM_RECORD_TYPE), bytes, FALSE));
	if (!g_variant_is_normal_form(value)) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "the record is not a " MIGD_VM_RECORD_TYPE " in normal form");
		return NULL;
	}
	host = G_BYTE_ORDER == G_LITTLE_ENDIAN ? g_variant_ref(value) : g_variant_byteswap(value);
	g_variant_get(host, "(u&s@a(stu))", &version, &migration_id, &list);
	if (version != MIGD_VM_RECORD_VERSION) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "record version %u (this daemon reads version %u)", version,
			    MIGD_VM_RECORD_VERSION);
		return NULL;
	}
	if (!migd_wire_check_migration_id("the record's migration id", migration_id,
					  MIGD_ERROR_INVALID_ARGUMENT, error))
		return NULL;
	n = g_variant_n_children(list);
	if (n == 0 || n > MIGD_WIRE_MAX_DEVICES) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INVALID_ARGUMENT,
			    "the record names %" G_GSIZE_FORMAT " devices (1 to %u)", n,
			    MIGD_WIRE_MAX_DEVICES);
		return NULL;
	}
	record = migd_vm_record_new(migration_id);
	for (gsize i = 0; i < n; i++) {
		MigdVmRecordDevice device = {0};
		const gchar *name = NULL;

		g_variant_get_child(list, i, "(&stu)", &name, &device.bytes, &device.crc32c);
		if (!migd_vm_record_check_name(name, error)) {
			g_prefix_error(error, "record device %" G_GSIZE_FORMAT ": ", i);
			return NULL;
		}
		device.name = g_strdup(name);
		g_array_append_val(record->devices, device);
	}
	return g_steal_pointer(&record);
}

gboolean
migd_vm_record_match_job(const MigdVmRecord *record, MigdJob *job, GError **error)
{
	const gchar *const *names = migd_job_get_device_names(job);
	guint n = names != NULL ? g_strv_length((gchar **)names) : 0;

	if (g_strcmp0(record->migration_id, migd_job_get_migration_id(job)) != 0) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE,
			    "the record is of migration '%s', the job of '%s'",
			    record->migration_id, migd_job_get_migration_id(job));
		return FALSE;
	}
	if (n != record->devices->len) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE,
			    "the source sent %u devices, %u arrived", record->devices->len, n);
		return FALSE;
	}
	for (guint i = 0; i < n; i++) {
		const MigdVmRecordDevice *d =
		    &g_array_index(record->devices, MigdVmRecordDevice, i);
		guint64 bytes = 0;
		guint32 crc = 0;

		/* names differ between hosts (sim0 here, 0000:3b:00.1 there): index and stream */
		if (!migd_job_get_device_stream(job, i, &bytes, &crc)) {
			g_set_error(error, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE,
				    "device %u (%s): its stream was not validated", i, names[i]);
			return FALSE;
		}
		if (bytes != d->bytes || crc != d->crc32c) {
			g_set_error(
			    error, MIGD_ERROR, MIGD_ERROR_INCOMPATIBLE,
			    "device %u (%s, the source's %s): %" G_GUINT64_FORMAT
			    " bytes with CRC32C %08x arrived, the source sent %" G_GUINT64_FORMAT
			    " bytes with CRC32C %08x",
			    i, names[i], d->name, bytes, crc, d->bytes, d->crc32c);
			return FALSE;
		}
	}
	return TRUE;
}
