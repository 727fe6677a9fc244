/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dbus-vmstate adapter (docs/qemu.md): one MigdVm per VM whose QEMU was
 * started with -object dbus-vmstate. It connects to that VM's bus, owns
 * org.qemu.VMState1 queued behind any other helper and serves
 * /org/qemu/VMState1: QEMU's Save (source, inside the downtime) switches this
 * VM's devices over and returns a record of their streams
 * (migd-vm-record.h); QEMU's Load (destination, before the guest starts)
 * checks the record against the incoming job and starts the devices.
 */
#pragma once

#include "migd-manager.h"

G_BEGIN_DECLS

#define MIGD_VM_DBUS_NAME      "org.qemu.VMState1"
#define MIGD_VM_DBUS_PATH      "/org/qemu/VMState1"
#define MIGD_VM_DBUS_INTERFACE "org.qemu.VMState1"
/* the VMState Id when [vm] id= is absent: what QEMU's id-list names */
#define MIGD_VM_DEFAULT_ID "vfio-migd"
/* Save's and Load's bound: below QEMU's ~25 s call timeout, with room for QEMU's own work */
#define MIGD_VM_DEFAULT_CALL_TIMEOUT_MS 20000u
#define MIGD_VM_MAX_CALL_TIMEOUT_MS	24000u
#define MIGD_VM_MIN_CALL_TIMEOUT_MS	100u
/* the keys of [vm NAME] and of AttachVM's options, for messages */
#define MIGD_VM_KEYS                                                                               \
	"bus, id, devices, role, migration-id, peer, plain, insecure-plain-tcp, cert, key, ca, "   \
	"peer-name, downtime-ms, handover-timeout, save-timeout-ms, listen, load-timeout-ms, qmp"

typedef enum {
	MIGD_VM_ROLE_SOURCE,
	MIGD_VM_ROLE_DESTINATION,
} MigdVmRole;

/* a VM's settings, checked (docs/ABI/testing/config-file, [vm NAME]) */
typedef struct {
	gchar *name;
	gchar *bus;    /* the dbus-vmstate bus address QEMU was given */
	gchar *id;     /* the VMState Id, 1..255 bytes */
	GStrv devices; /* the daemon's devices this VM owns, in job order */
	MigdVmRole role;
	gchar *migration_id; /* default: the name */
	MigdTransportConfig transport;
	/* source */
	gchar *peer;
	guint downtime_ms;	  /* 0: the convergence policy's */
	guint handover_timeout_s; /* 0: the engine's */
	guint save_timeout_ms;
	/* destination */
	gchar *listen; /* NULL: the daemon's listener */
	guint load_timeout_ms;
	/*
	 * QEMU's QMP socket (optional): its MIGRATION and RESUME events start the
	 * device pre-copy (source, "setup"), roll back at once after Save (source,
	 * "failed", "cancelled", RESUME) and abandon an incoming job whose QEMU
	 * failed or died (destination)
	 */
	gchar *qmp;
} MigdVmConfig;

void migd_vm_config_free(MigdVmConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdVmConfig, migd_vm_config_free)

/*
 * Reads group @group ("vm NAME") of @key_file: unknown keys, missing and bad
 * values are MIGD_ERROR_INVALID_ARGUMENT errors naming the group and the key.
 * Needs nothing but the file (the devices are checked by migd_vm_new).
 */
MigdVmConfig *migd_vm_config_from_key_file(GKeyFile *key_file, const gchar *group, GError **error);
/*
 * AttachVM's options (a{sv}, the same keys): strings (s), numbers (u or s),
 * booleans (b) and devices (as, or s as in the file).
 */
MigdVmConfig *migd_vm_config_from_options(const gchar *name, GVariant *options, GError **error);

#define MIGD_TYPE_VM (migd_vm_get_type())
G_DECLARE_FINAL_TYPE(MigdVm, migd_vm, MIGD, VM, GObject)

/*
 * Takes @config. Checks the devices exist; a destination listens (listen=,
 * when the daemon does not) and expects its migration id at once; then
 * connects to the bus in the background (and again, with a bounded backoff,
 * whenever the bus goes away), and so to QEMU's monitor when qmp= is set.
 */
MigdVm *migd_vm_new(MigdManager *manager, MigdVmConfig *config, GError **error);
const MigdVmConfig *migd_vm_get_config(MigdVm *self);
/* connected, the object exported and the name requested */
gboolean migd_vm_is_connected(MigdVm *self);
/* a description for ListVMs: the settings and the state (a{sv}) */
GVariant *migd_vm_describe(MigdVm *self);
/*
 * Leaves the bus, cancels the expectation, fails a Save or Load in progress
 * (rolling its job back, abandoning an incoming one). Idempotent; the last
 * unref does it too.
 */
void migd_vm_detach(MigdVm *self);

G_END_DECLS
