/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The dbus-vmstate adapter (daemon/migd-vm.c) with the test as QEMU: two
 * vfio-migd daemons with simulated devices and a [vm vm1] group each (source,
 * destination), every VM side on its own private dbus-daemon. The test finds
 * the helper as QEMU does (ListQueuedOwners), reads Id, calls Save on the
 * source's bus and Load(record) on the destination's, and checks the devices:
 * success with and without a pre-copy job, a tampered record, a device fault
 * during Save, Save's bound, a helper already owning the name, AttachVM and
 * DetachVM refusals, [vm] errors at start.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <string.h>

#include "dbus-test-util.h"
#include "vmm-test-util.h"

#define SRC_NAME "org.vfiomigd.Test.VmSource"
#define DST_NAME "org.vfiomigd.Test.VmDestination"
/* QEMU's own bound on Save and Load */

/* a private dbus-daemon: one VM's dbus-vmstate bus */

typedef struct {
	gchar *dir;
	VtBus *src_bus;
	VtBus *dst_bus;
	DtDaemon *src;
	DtDaemon *dst;
	gchar *listen; /* the destination's listener */
} Fixture;

static gchar *
helper_id(VtBus *bus, const gchar *owner)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    vt_bus_call(bus->connection, owner, VMSTATE_PATH, "org.freedesktop.DBus.Properties",
			"Get", g_variant_new("(ss)", VMSTATE_IFACE, "Id"), "(v)", 5000, &error);
	g_autoptr(GVariant) v = NULL;

	if (reply == NULL)
		fail_msg("Get Id: %s", error->message);
	g_variant_get(reply, "(v)", &v);
	return g_variant_dup_string(v, NULL);
}

static int
teardown(void **state)
{
	Fixture *f = *state;

	if (f == NULL)
		return 0;
	dt_daemon_stop(f->src);
	dt_daemon_stop(f->dst);
	vt_bus_stop(f->src_bus);
	vt_bus_stop(f->dst_bus);
	if (f->dir != NULL) {
		g_autoptr(GDir) dir = g_dir_open(f->dir, 0, NULL);
		const gchar *name;
		while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
			g_autofree gchar *path = g_build_filename(f->dir, name, NULL);
			g_unlink(path);
		}
		g_rmdir(f->dir);
	}
	g_free(f->dir);
	g_free(f->listen);
	g_free(f);
	*state = NULL;
	return 0;
}

static Fixture *
fixture_new(void **state)
{
	Fixture *f = g_new0(Fixture, 1);

	*state = f;
	f->dir = g_dir_make_tmp("vmstate-XXXXXX", NULL);
	assert_non_null(f->dir);
	f->src_bus = vt_bus_start(f->dir, "src-bus");
	f->dst_bus = vt_bus_start(f->dir, "dst-bus");
	f->listen = dt_unused_unix_address();
	return f;
}

/* the destination daemon, [vm vm1] role=destination on its bus */
static void
start_destination(Fixture *f, const gchar *const *specs, const gchar *devices)
{
	g_autofree gchar *path = g_build_filename(f->dir, "dst.conf", NULL);
	g_autofree gchar *bus = vt_bus_path_address(f->dst_bus);
	g_autofree gchar *conf = g_strdup_printf("[vm vm1]\nbus=%s\nrole=destination\n"
						 "devices=%s\nlisten=%s\nplain=true\n"
						 "load-timeout-ms=300\n",
						 bus, devices, f->listen);

	vt_write_file(path, conf);
	f->dst = dt_daemon_start_full(DST_NAME, specs, path);
}

/* the source daemon, [vm vm1] role=source; @extra: more keys */
static void
start_source(Fixture *f, const gchar *const *specs, const gchar *devices, const gchar *extra)
{
	g_autofree gchar *path = g_build_filename(f->dir, "src.conf", NULL);
	g_autofree gchar *bus = vt_bus_path_address(f->src_bus);
	g_autofree gchar *conf =
	    g_strdup_printf("[vm vm1]\nbus=%s\nrole=source\ndevices=%s\n"
			    "peer=%s\nplain=true\n%s",
			    bus, devices, f->listen, extra != NULL ? extra : "");

	vt_write_file(path, conf);
	f->src = dt_daemon_start_full(SRC_NAME, specs, path);
}

static gchar *
state_of(DtDaemon *d, guint index)
{
	return dt_device_state(d, index);
}

static void
assert_state(DtDaemon *d, guint index, const gchar *expected)
{
	g_autofree gchar *state = state_of(d, index);
	if (g_strcmp0(state, expected) != 0)
		fail_msg("device %u: %s, expected %s", index, state, expected);
}

/* Migrate(all devices, switchover manual, migration-id vm1) on the source */
static gchar *
migrate_manual(Fixture *f)
{
	g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	const gchar *const all[] = {NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	gchar *job = NULL;

	g_variant_builder_add(&b, "{sv}", "plain", g_variant_new_boolean(TRUE));
	g_variant_builder_add(&b, "{sv}", "switchover", g_variant_new_string("manual"));
	g_variant_builder_add(&b, "{sv}", "migration-id", g_variant_new_string("vm1"));
	reply = dt_manager_call(f->src, "Migrate", g_variant_new("(s^asa{sv})", f->listen, all, &b),
				&error);
	if (reply == NULL)
		fail_msg("Migrate: %s", error->message);
	g_variant_get(reply, "(o)", &job);
	return job;
}

static const gchar *const two_devices[] = {"hisi_acc:seed=7", "mlx5:state_size=256K,seed=9", NULL};

/* a whole migration QEMU's way; @precopy: the VMM started a manual pre-copy job first */
static void
run_success(void **state, gboolean precopy)
{
	Fixture *f = fixture_new(state);
	g_autoptr(GBytes) record = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *owner = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *phase = NULL;
	guint64 digests[2];

	start_destination(f, two_devices, "sim0;sim1");
	start_source(f, two_devices, "sim0;sim1", NULL);
	owner = vt_wait_owners(f->src_bus, 1);
	id = helper_id(f->src_bus, owner);
	assert_string_equal(id, "vfio-migd");
	g_free(owner);
	owner = vt_wait_owners(f->dst_bus, 1);
	for (guint i = 0; i < 2; i++)
		digests[i] = dt_device_digest(f->src, i);
	if (precopy)
		src_job = migrate_manual(f);

	record = vt_save(f->src_bus, &error);
	if (record == NULL)
		fail_msg("Save: %s", error->message);
	assert_true(g_bytes_get_size(record) > 0 && g_bytes_get_size(record) < 4096);
	/* Save returned only once the destination held every device, validated */
	assert_state(f->dst, 0, "STOP");
	assert_state(f->dst, 1, "STOP");
	assert_state(f->src, 0, "STOP");
	if (src_job == NULL)
		src_job = vt_last_job(f->src);

	if (!vt_load(f->dst_bus, record, &error))
		fail_msg("Load: %s", error->message);
	assert_state(f->dst, 0, "RUNNING");
	assert_state(f->dst, 1, "RUNNING");
	phase = dt_job_wait_final(f->src, src_job);
	assert_string_equal(phase, "completed");
	vt_wait_state(f->dst, 0, "RUNNING");
	vt_wait_state(f->dst, 1, "RUNNING");
	for (guint i = 0; i < 2; i++)
		assert_int_equal(dt_device_digest(f->dst, i), digests[i]);
	/* the next incoming migration of vm1 is expected again */
	{
		gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
		for (;;) {
			g_autoptr(GVariant) reply =
			    dt_manager_call(f->dst, "ListExpectations", NULL, &error);
			g_autofree const gchar **ids = NULL;
			assert_non_null(reply);
			{
				g_autoptr(GVariant) list = g_variant_get_child_value(reply, 0);
				ids = g_variant_get_strv(list, NULL);
			}
			if (g_strv_contains(ids, "vm1"))
				break;
			if (g_get_monotonic_time() > deadline)
				fail_msg("vm1 is not expected again");
			g_usleep(20 * 1000);
		}
	}
}

static void
test_save_load_precopy(void **state)
{
	run_success(state, TRUE);
}

static void
test_save_load_no_job(void **state)
{
	run_success(state, FALSE);
}

/* the destination's own devices, with another state than the source's */
static const gchar *const other_seeds[] = {"hisi_acc:seed=70", "mlx5:state_size=256K,seed=90",
					   NULL};

/* a record whose CRC (or bytes) differ: Load refused, destination reset, source rolled back */
static void
test_tampered_record(void **state)
{
	Fixture *f = fixture_new(state);
	g_autoptr(GBytes) record = NULL;
	g_autoptr(GBytes) bad = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) v = NULL;
	g_autoptr(GVariant) list = NULL;
	g_auto(GVariantBuilder) devices = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(stu)"));
	g_autofree gchar *src_job = NULL;
	g_autofree gchar *dst_job = NULL;
	g_autofree gchar *phase = NULL;
	const gchar *mid = NULL;
	guint32 version = 0;
	guint64 digests[2];

	start_destination(f, other_seeds, "sim0;sim1");
	start_source(f, two_devices, "sim0;sim1", NULL);
	for (guint i = 0; i < 2; i++)
		digests[i] = dt_device_digest(f->src, i);
	record = vt_save(f->src_bus, &error);
	if (record == NULL)
		fail_msg("Save: %s", error->message);
	src_job = vt_last_job(f->src);
	dst_job = vt_last_job(f->dst);

	/* the same record with device 1's CRC32C changed */
	v = g_variant_ref_sink(
	    g_variant_new_from_bytes(G_VARIANT_TYPE("(usa(stu))"), record, FALSE));
	g_variant_get(v, "(u&s@a(stu))", &version, &mid, &list);
	assert_int_equal(version, 1);
	assert_string_equal(mid, "vm1");
	assert_int_equal(g_variant_n_children(list), 2);
	for (gsize i = 0; i < 2; i++) {
		const gchar *name;
		guint64 bytes;
		guint32 crc;
		g_variant_get_child(list, i, "(&stu)", &name, &bytes, &crc);
		assert_true(bytes > 0);
		g_variant_builder_add(&devices, "(stu)", name, bytes, i == 1 ? crc ^ 1u : crc);
	}
	{
		g_autoptr(GVariant) t =
		    g_variant_ref_sink(g_variant_new("(usa(stu))", version, mid, &devices));
		bad = g_variant_get_data_as_bytes(t);
	}
	assert_false(vt_load(f->dst_bus, bad, &error));
	assert_non_null(strstr(error->message, "CRC32C"));
	/* the destination abandoned (devices reset), the source rolled back with its state */
	phase = dt_job_wait_final(f->dst, dst_job);
	assert_string_equal(phase, "failed");
	g_free(phase);
	phase = dt_job_wait_final(f->src, src_job);
	assert_string_equal(phase, "failed");
	{
		g_autoptr(GVariant) rb =
		    dt_get_property(f->src, src_job, DT_JOB_IFACE, "RolledBack");
		assert_true(g_variant_get_boolean(rb));
	}
	for (guint i = 0; i < 2; i++) {
		vt_wait_state(f->src, i, "RUNNING");
		assert_int_equal(dt_device_digest(f->src, i), digests[i]);
		vt_wait_state(f->dst, i, "RUNNING");
	}
}

static GBytes *
record_of(guint32 version, const gchar *mid, guint n)
{
	g_auto(GVariantBuilder) devices = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(stu)"));
	g_autoptr(GVariant) v = NULL;

	for (guint i = 0; i < n; i++)
		g_variant_builder_add(&devices, "(stu)", "sim0", (guint64)176, 0u);
	v = g_variant_ref_sink(g_variant_new("(usa(stu))", version, mid, &devices));
	return g_variant_get_data_as_bytes(v);
}

static void
load_refused(Fixture *f, GBytes *record, const gchar *says)
{
	g_autoptr(GError) error = NULL;

	if (vt_load(f->dst_bus, record, &error))
		fail_msg("Load succeeded; expected '%s'", says);
	if (strstr(error->message, says) == NULL)
		fail_msg("'%s' does not say '%s'", error->message, says);
}

/* records that are not what a source's Save returns: refused before any job is looked at */
static void
test_load_bad_records(void **state)
{
	Fixture *f = fixture_new(state);
	const gchar *const specs[] = {"hisi_acc", NULL};
	g_autofree guint8 *big = g_malloc0(1024 * 1024 + 1);
	g_autoptr(GBytes) b = NULL;

	start_destination(f, specs, "sim0");
	b = g_bytes_new_static("", 0);
	load_refused(f, b, "bad record");
	g_bytes_unref(b);
	b = g_bytes_new_static("\xff\xff\xff\xff\x01garbage", 12);
	load_refused(f, b, "bad record");
	g_bytes_unref(b);
	b = g_bytes_new(big, 1024 * 1024 + 1);
	load_refused(f, b, "more than 1048576");
	g_bytes_unref(b);
	b = record_of(2, "vm1", 1);
	load_refused(f, b, "record version 2");
	g_bytes_unref(b);
	b = record_of(1, "vm1", 0);
	load_refused(f, b, "0 devices");
	g_bytes_unref(b);
	b = record_of(1, "bad id!", 1);
	load_refused(f, b, "migration id");
	g_bytes_unref(b);
	b = record_of(1, "vm2", 1);
	load_refused(f, b, "VM vm1 expects 'vm1'");
	g_bytes_unref(b);
	/* a good record with no incoming migration: refused within load-timeout-ms */
	b = record_of(1, "vm1", 1);
	load_refused(f, b, "no incoming migration 'vm1' within 300 ms");
	/* the VM still expects its migration */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) reply =
		    dt_manager_call(f->dst, "ListExpectations", NULL, &error);
		g_autofree const gchar **ids = NULL;
		g_autoptr(GVariant) list = NULL;
		assert_non_null(reply);
		list = g_variant_get_child_value(reply, 0);
		ids = g_variant_get_strv(list, NULL);
		assert_true(g_strv_contains(ids, "vm1"));
	}
}

/* a device fault during Save's stop: Save fails, the source devices run with their state */
static void
test_save_device_fault(void **state)
{
	Fixture *f = fixture_new(state);
	const gchar *const dst_specs[] = {"hisi_acc:seed=7", NULL};
	const gchar *const src_specs[] = {
	    "hisi_acc:seed=7,fail_arc=PRE_COPY->STOP_COPY,fail_errno=EIO", NULL};
	g_autoptr(GBytes) record = NULL;
	g_autoptr(GError) error = NULL;
	guint64 digest;

	start_destination(f, dst_specs, "sim0");
	start_source(f, src_specs, "sim0", NULL);
	digest = dt_device_digest(f->src, 0);
	record = vt_save(f->src_bus, &error);
	assert_null(record);
	assert_non_null(error);
	vt_wait_state(f->src, 0, "RUNNING");
	assert_int_equal(dt_device_digest(f->src, 0), digest);
}

/* a stop-and-copy far longer than save-timeout-ms: Save fails within the bound */
static void
test_save_bound(void **state)
{
	Fixture *f = fixture_new(state);
	const gchar *const dst_specs[] = {"mlx5:state_size=8M", NULL};
	const gchar *const src_specs[] = {"mlx5:state_size=8M,save_rate=1M", NULL};
	g_autoptr(GBytes) record = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *owner = NULL;
	gint64 start;
	gint64 took_ms;
	guint64 digest;

	start_destination(f, dst_specs, "sim0");
	start_source(f, src_specs, "sim0", "save-timeout-ms=500\n");
	owner = vt_wait_owners(f->src_bus, 1);
	digest = dt_device_digest(f->src, 0);
	start = g_get_monotonic_time();
	record = vt_save(f->src_bus, &error);
	took_ms = (g_get_monotonic_time() - start) / 1000;
	assert_null(record);
	assert_non_null(strstr(error->message, "500 ms"));
	if (took_ms < 450 || took_ms > 3000)
		fail_msg("Save failed after %" G_GINT64_FORMAT " ms, bound 500 ms", took_ms);
	vt_wait_state(f->src, 0, "RUNNING");
	assert_int_equal(dt_device_digest(f->src, 0), digest);
}

/* another helper owns org.qemu.VMState1 first: ours queues behind it, replacing nothing */
static void
test_queued_behind_other(void **state)
{
	Fixture *f = fixture_new(state);
	const gchar *const specs[] = {"hisi_acc", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) vms = NULL;
	g_autoptr(GVariant) props = NULL;
	g_auto(GStrv) owners = NULL;
	g_autofree gchar *ours = NULL;
	const gchar *name = NULL;
	gboolean queued = FALSE;
	guint32 code = 0;

	reply = vt_bus_call(f->src_bus->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			    "org.freedesktop.DBus", "RequestName",
			    g_variant_new("(su)", VMSTATE_NAME, 0u), "(u)", 5000, &error);
	assert_non_null(reply);
	g_variant_get(reply, "(u)", &code);
	assert_int_equal(code, 1);
	start_source(f, specs, "sim0", NULL);
	ours = vt_wait_owners(f->src_bus, 2);
	owners = vt_queued_owners(f->src_bus);
	assert_int_equal(g_strv_length(owners), 2);
	assert_string_equal(owners[0], g_dbus_connection_get_unique_name(f->src_bus->connection));
	assert_string_equal(owners[1], ours);
	/* QEMU asks every queued owner: ours answers */
	{
		g_autofree gchar *id = helper_id(f->src_bus, ours);
		assert_string_equal(id, "vfio-migd");
	}
	g_clear_pointer(&reply, g_variant_unref);
	reply = dt_manager_call(f->src, "ListVMs", NULL, &error);
	assert_non_null(reply);
	vms = g_variant_get_child_value(reply, 0);
	assert_int_equal(g_variant_n_children(vms), 1);
	g_variant_get_child(vms, 0, "(&s@a{sv})", &name, &props);
	assert_string_equal(name, "vm1");
	assert_true(g_variant_lookup(props, "queued", "b", &queued));
	assert_true(queued);
}

/* the VM's bus restarts: the daemon dials it again and serves the VM as before */
static void
test_bus_reconnect(void **state)
{
	Fixture *f = fixture_new(state);
	const gchar *const specs[] = {"hisi_acc", NULL};
	g_autofree gchar *owner = NULL;
	g_autofree gchar *id = NULL;
	g_autofree gchar *socket = g_build_filename(f->dir, "src-bus", NULL);

	start_source(f, specs, "sim0", NULL);
	g_free(vt_wait_owners(f->src_bus, 1));
	vt_bus_stop(f->src_bus);
	g_unlink(socket);
	f->src_bus = vt_bus_start(f->dir, "src-bus");
	owner = vt_wait_owners(f->src_bus, 1);
	id = helper_id(f->src_bus, owner);
	assert_string_equal(id, "vfio-migd");
	vt_wait_state(f->src, 0, "RUNNING");
}

static void
attach_refused(DtDaemon *d, const gchar *name, GVariant *options, const gchar *error_name,
	       const gchar *says)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    dt_manager_call(d, "AttachVM", g_variant_new("(s@a{sv})", name, options), &error);

	if (reply != NULL)
		fail_msg("AttachVM(%s) succeeded; expected %s", name, says);
	dt_assert_dbus_error(error, error_name);
	if (strstr(error->message, says) == NULL)
		fail_msg("AttachVM(%s): '%s' does not say '%s'", name, error->message, says);
}

static GVariant *
vm_options(const gchar *bus, const gchar *role, const gchar *extra_key, GVariant *extra_value)
{
	g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);

	g_variant_builder_add(&b, "{sv}", "bus", g_variant_new_string(bus));
	g_variant_builder_add(&b, "{sv}", "role", g_variant_new_string(role));
	g_variant_builder_add(&b, "{sv}", "devices",
			      g_variant_new_strv((const gchar *[]){"sim0"}, 1));
	if (g_strcmp0(role, "source") == 0 && g_strcmp0(extra_key, "peer") != 0)
		g_variant_builder_add(&b, "{sv}", "peer",
				      g_variant_new_string("unix:@vmstate-test-peer"));
	if (extra_key != NULL)
		g_variant_builder_add(&b, "{sv}", extra_key, extra_value);
	return g_variant_builder_end(&b);
}

static void
test_attach_detach(void **state)
{
	Fixture *f = fixture_new(state);
	const gchar *const specs[] = {"hisi_acc", NULL};
	const gchar *bus = f->src_bus->address;
	const gchar *const dev1[] = {"sim1", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) vms = NULL;

	f->src = dt_daemon_start(SRC_NAME, specs);
	(void)dev1;
	{
		g_autoptr(GVariant) caps =
		    dt_get_property(f->src, DT_MANAGER_PATH, DT_MANAGER_IFACE, "Capabilities");
		g_autofree const gchar **strv = g_variant_get_strv(caps, NULL);
		assert_true(g_strv_contains(strv, "dbus-vmstate"));
	}
	attach_refused(f->src, "a", vm_options(bus, "source", "colour", g_variant_new_string("x")),
		       DT_MIGD_ERROR_PREFIX "InvalidArgument", "unknown option 'colour'");
	attach_refused(f->src, "a", vm_options(bus, "sideways", NULL, NULL),
		       DT_MIGD_ERROR_PREFIX "InvalidArgument",
		       "role: expected source or destination");
	attach_refused(f->src, "a",
		       vm_options(bus, "source", "peer", g_variant_new_string("nowhere")),
		       DT_MIGD_ERROR_PREFIX "InvalidArgument", "peer: ");
	attach_refused(f->src, "a",
		       vm_options(bus, "destination", "save-timeout-ms", g_variant_new_uint32(100)),
		       DT_MIGD_ERROR_PREFIX "InvalidArgument",
		       "save-timeout-ms: only for role=source");
	attach_refused(f->src, "a",
		       vm_options(bus, "source", "save-timeout-ms", g_variant_new_uint32(30000)),
		       DT_MIGD_ERROR_PREFIX "InvalidArgument", "save-timeout-ms");
	attach_refused(f->src, "a", vm_options(bus, "source", "id", g_variant_new_string("a,b")),
		       DT_MIGD_ERROR_PREFIX "InvalidArgument", "id 'a,b'");
	attach_refused(f->src, "bad name!", vm_options(bus, "source", NULL, NULL),
		       DT_MIGD_ERROR_PREFIX "InvalidArgument", "migration-id");
	attach_refused(f->src, "a", vm_options("not-an-address", "source", NULL, NULL),
		       DT_MIGD_ERROR_PREFIX "InvalidArgument", "bus: ");
	attach_refused(f->src, "a",
		       vm_options(bus, "source", "downtime-ms", g_variant_new_int32(5)),
		       DT_MIGD_ERROR_PREFIX "InvalidArgument", "option 'downtime-ms' must be");
	{
		g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&b, "{sv}", "bus", g_variant_new_string(bus));
		g_variant_builder_add(&b, "{sv}", "role", g_variant_new_string("source"));
		attach_refused(f->src, "a", g_variant_builder_end(&b),
			       DT_MIGD_ERROR_PREFIX "InvalidArgument", "required");
	}
	{
		g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&b, "{sv}", "bus", g_variant_new_string(bus));
		g_variant_builder_add(&b, "{sv}", "role", g_variant_new_string("source"));
		g_variant_builder_add(&b, "{sv}", "peer", g_variant_new_string("unix:@x"));
		g_variant_builder_add(&b, "{sv}", "devices", g_variant_new_string("sim9"));
		attach_refused(f->src, "a", g_variant_builder_end(&b),
			       DT_MIGD_ERROR_PREFIX "InvalidArgument", "no device sim9");
	}
	/* a good one, then the same name again, then detached */
	reply = dt_manager_call(
	    f->src, "AttachVM",
	    g_variant_new("(s@a{sv})", "a", vm_options(bus, "source", NULL, NULL)), &error);
	if (reply == NULL)
		fail_msg("AttachVM: %s", error->message);
	g_free(vt_wait_owners(f->src_bus, 1));
	attach_refused(f->src, "a", vm_options(bus, "source", NULL, NULL),
		       DT_MIGD_ERROR_PREFIX "InvalidArgument", "already attached");
	attach_refused(f->src, "b", vm_options(bus, "source", NULL, NULL),
		       DT_MIGD_ERROR_PREFIX "Busy", "device sim0 belongs to VM a");
	g_clear_pointer(&reply, g_variant_unref);
	reply = dt_manager_call(f->src, "DetachVM", g_variant_new("(s)", "nope"), &error);
	assert_null(reply);
	dt_assert_dbus_error(error, DT_MIGD_ERROR_PREFIX "InvalidArgument");
	g_clear_error(&error);
	reply = dt_manager_call(f->src, "DetachVM", g_variant_new("(s)", "a"), &error);
	assert_non_null(reply);
	g_clear_pointer(&reply, g_variant_unref);
	/* it left the bus */
	{
		gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
		for (;;) {
			g_auto(GStrv) owners = vt_queued_owners(f->src_bus);
			if (owners[0] == NULL)
				break;
			if (g_get_monotonic_time() > deadline)
				fail_msg("the detached VM still owns " VMSTATE_NAME);
			g_usleep(20 * 1000);
		}
	}
	reply = dt_manager_call(f->src, "ListVMs", NULL, &error);
	vms = g_variant_get_child_value(reply, 0);
	assert_int_equal(g_variant_n_children(vms), 0);
}

/* refused from an abstract UNIX address: nobody listens there */
static gboolean
nobody_listens(const gchar *address)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketAddress) sa = NULL;
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(GError) error = NULL;

	assert_true(g_str_has_prefix(address, "unix:@"));
	sa = g_unix_socket_address_new_with_type(address + strlen("unix:@"), -1,
						 G_UNIX_SOCKET_ADDRESS_ABSTRACT);
	conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(sa), NULL, &error);
	return conn == NULL;
}

/* a destination VM whose attach fails after it opened its listen= listener closes it again */
static void
test_attach_refused_closes_listener(void **state)
{
	Fixture *f = fixture_new(state);
	g_autofree gchar *job = NULL;
	g_autofree gchar *listen = dt_unused_unix_address();
	g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);

	start_destination(f, two_devices, "sim0;sim1");
	/* vm1 holds sim0 only: sim1 is free for another VM, yet in the pre-copy job below */
	start_source(f, two_devices, "sim0", NULL);
	job = migrate_manual(f);
	{
		gint64 deadline = g_get_monotonic_time() + DT_TIMEOUT_S * G_USEC_PER_SEC;
		for (;;) {
			g_autoptr(GVariant) phase =
			    dt_get_property(f->src, job, DT_JOB_IFACE, "Phase");
			if (g_strcmp0(g_variant_get_string(phase, NULL), "precopy") == 0)
				break;
			if (g_get_monotonic_time() > deadline)
				fail_msg("the job never reached pre-copy");
			g_usleep(20 * 1000);
		}
	}
	assert_true(nobody_listens(listen));
	g_variant_builder_add(&b, "{sv}", "bus", g_variant_new_string(f->src_bus->address));
	g_variant_builder_add(&b, "{sv}", "role", g_variant_new_string("destination"));
	g_variant_builder_add(&b, "{sv}", "devices", g_variant_new_string("sim1"));
	g_variant_builder_add(&b, "{sv}", "listen", g_variant_new_string(listen));
	g_variant_builder_add(&b, "{sv}", "plain", g_variant_new_boolean(TRUE));
	attach_refused(f->src, "b", g_variant_builder_end(&b), DT_MIGD_ERROR_PREFIX "Busy",
		       "busy in another job");
	/* the port it opened for the refused VM is closed again */
	assert_true(nobody_listens(listen));
}

/* vfio-migd --config with a bad [vm] group: exit status 1 and a message naming group and key */
static void
config_refused(const gchar *dir, const gchar *text, const gchar *says)
{
	g_autofree gchar *path = g_build_filename(dir, "bad.conf", NULL);
	g_autoptr(GSubprocess) p = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *err = NULL;

	vt_write_file(path, text);
	p = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
			     &error, dt_migd_path(), "--session", "--bus-name",
			     "org.vfiomigd.Test.VmBadConfig", "--sim-device", "hisi_acc",
			     "--config", path, NULL);
	assert_non_null(p);
	assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &err, &error));
	assert_true(g_subprocess_get_if_exited(p));
	assert_int_equal(g_subprocess_get_exit_status(p), 1);
	if (strstr(err, says) == NULL)
		fail_msg("'%s' does not say '%s'", err, says);
	g_unlink(path);
}

static void
test_config_refused(void **state)
{
	Fixture *f = fixture_new(state);

	config_refused(f->dir, "[vm a]\nbus=unix:path=/x\nrole=source\ndevices=sim0\n",
		       "[vm a] peer: required for role=source");
	config_refused(f->dir,
		       "[vm a]\nbus=unix:path=/x\nrole=destination\ndevices=sim0\npeer=unix:@p\n",
		       "[vm a] peer: only for role=source");
	config_refused(f->dir,
		       "[vm a]\nbus=unix:path=/x\nrole=source\ndevices=sim0\npeer=unix:@p\n"
		       "colour=blue\n",
		       "[vm a]");
	config_refused(f->dir, "[vm a]\nbus=unix:path=/x\nrole=destination\ndevices=sim0;sim0\n",
		       "[vm a] devices: 'sim0' is named twice");
	config_refused(f->dir,
		       "[vm a]\nbus=unix:path=/x\nrole=destination\ndevices=sim0\n"
		       "load-timeout-ms=99999\n",
		       "[vm a] load-timeout-ms");
	config_refused(f->dir,
		       "[vm a]\nbus=unix:path=/x\nrole=source\ndevices=sim5\npeer=unix:@p\n",
		       "VM a: no device sim5");
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_save_load_precopy, teardown),
	    cmocka_unit_test_teardown(test_save_load_no_job, teardown),
	    cmocka_unit_test_teardown(test_tampered_record, teardown),
	    cmocka_unit_test_teardown(test_load_bad_records, teardown),
	    cmocka_unit_test_teardown(test_save_device_fault, teardown),
	    cmocka_unit_test_teardown(test_save_bound, teardown),
	    cmocka_unit_test_teardown(test_queued_behind_other, teardown),
	    cmocka_unit_test_teardown(test_bus_reconnect, teardown),
	    cmocka_unit_test_teardown(test_attach_detach, teardown),
	    cmocka_unit_test_teardown(test_attach_refused_closes_listener, teardown),
	    cmocka_unit_test_teardown(test_config_refused, teardown),
	};

	dt_init(argc, argv);
	return cmocka_run_group_tests(tests, dt_bus_up, dt_bus_down);
}
