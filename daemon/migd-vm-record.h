/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dbus-vmstate record (docs/ABI/testing/vmstate-record): what the source's
 * Save hands QEMU and QEMU hands the destination's Load. It names the
 * migration and, per device in job order, the stream the source sent, so the
 * destination can check that the devices it is about to start hold exactly
 * what this VM's source stopped with.
 */
#pragma once

#include "migd-job.h"

G_BEGIN_DECLS

#define MIGD_VM_RECORD_VERSION 1u
/* QEMU's DBUS_VMSTATE_SIZE_LIMIT: nothing larger is even parsed */
#define MIGD_VM_RECORD_MAX_SIZE (1024u * 1024u)
#define MIGD_VM_RECORD_TYPE	"(usa(stu))"

typedef struct {
	gchar *name;
	guint64 bytes;
	guint32 crc32c;
} MigdVmRecordDevice;

typedef struct {
	guint32 version;
	gchar *migration_id;
	GArray *devices; /* MigdVmRecordDevice, in job order */
} MigdVmRecord;

void migd_vm_record_free(MigdVmRecord *record);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdVmRecord, migd_vm_record_free)

/* a record of @job's streams (every device's must be set), or NULL and @error */
MigdVmRecord *migd_vm_record_from_job(MigdJob *job, GError **error);
/* the serialised record (GVariant MIGD_VM_RECORD_TYPE in normal form, little endian) */
GBytes *migd_vm_record_encode(const MigdVmRecord *record);
/*
 * Parses untrusted @data: at most MIGD_VM_RECORD_MAX_SIZE bytes, normal form,
 * version 1, a valid migration id, 1..MIGD_WIRE_MAX_DEVICES devices with valid
 * names. MIGD_ERROR_INVALID_ARGUMENT otherwise.
 */
MigdVmRecord *migd_vm_record_decode(const guint8 *data, gsize len, GError **error);
/*
 * Whether @job's device streams (the destination's, as validated) are those
 * of @record: same migration id, count, names, bytes and CRC32C per index.
 * MIGD_ERROR_INCOMPATIBLE naming the first difference otherwise.
 */
gboolean migd_vm_record_match_job(const MigdVmRecord *record, MigdJob *job, GError **error);

G_END_DECLS
