/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "engine-test-util.h"

MigdDevice *
migd_test_sim_device(const gchar *spec, const gchar *name)
{
	g_autoptr(GError) error = NULL;
	MigdSimDevice *dev = migd_sim_device_new_from_string(spec, &error);

	if (dev == NULL)
		fail_msg("%s: %s", spec, error->message);
	if (name != NULL)
		migd_device_set_name(MIGD_DEVICE(dev), name);
	return MIGD_DEVICE(dev);
}

static GPtrArray *
engine_fixture_make_devices(const gchar *const *specs, const gchar *prefix)
{
	GPtrArray *devices = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; specs[i] != NULL; i++) {
		g_autofree gchar *name = g_strdup_printf("%s%u", prefix, i);
		g_ptr_array_add(devices, migd_test_sim_device(specs[i], name));
	}
	return devices;
}

static void
engine_fixture_job_started_cb(MigdDestination *dest, MigdJob *job, EngineFixture *fx)
{
	g_set_object(&fx->dst_job, job);
}

EngineFixture *
engine_fixture_new_full(const gchar *const *src_specs, const gchar *const *dst_specs,
			const MigdTransportConfig *transport)
{
	EngineFixture *fx = g_new0(EngineFixture, 1);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *address = NULL;

	if (transport != NULL)
		fx->transport = *transport;
	/* plain only over a UNIX socket, whose peers are checked by uid */
	fx->transport.plain = TRUE;
	fx->tmpdir = g_dir_make_tmp("migd-engine-XXXXXX", &error);
	if (fx->tmpdir == NULL)
		fail_msg("tmpdir: %s", error->message);
	address = g_strdup_printf("unix:%s/dst.sock", fx->tmpdir);
	fx->src_devices = engine_fixture_make_devices(src_specs, "src");
	fx->dst_devices = engine_fixture_make_devices(dst_specs, "dst");
	fx->dest = migd_destination_new(fx->dst_devices);
	g_signal_connect(fx->dest, "job-started", G_CALLBACK(engine_fixture_job_started_cb), fx);
	if (!migd_destination_listen(fx->dest, address, &fx->transport, &error))
		fail_msg("listen: %s", error->message);
	fx->address = migd_destination_get_address(fx->dest);
	return fx;
}

EngineFixture *
engine_fixture_new(const gchar *const *src_specs, const gchar *const *dst_specs)
{
	return engine_fixture_new_full(src_specs, dst_specs, NULL);
}

void
engine_fixture_free(EngineFixture *fx)
{
	migd_destination_close(fx->dest);
	/* let deferred frees run */
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_clear_object(&fx->dest);
	g_clear_object(&fx->src_job);
	g_clear_object(&fx->dst_job);
	g_ptr_array_unref(fx->src_devices);
	g_ptr_array_unref(fx->dst_devices);
	g_free(fx->address);
	if (fx->tmpdir != NULL && g_rmdir(fx->tmpdir) < 0)
		g_debug("cannot remove %s: %s", fx->tmpdir, g_strerror(errno));
	g_free(fx->tmpdir);
	g_free(fx);
}

MigdJob *
engine_fixture_migrate(EngineFixture *fx, const MigdSourceOptions *options, GError **error)
{
	fx->src_job =
	    migd_source_start(fx->src_devices, fx->address, &fx->transport, options, error);
	return fx->src_job;
}

static gboolean
engine_fixture_timeout_cb(gpointer user_data)
{
	gboolean *expired = user_data;
	*expired = TRUE;
	return G_SOURCE_REMOVE;
}

void
engine_fixture_wait(EngineFixture *fx, guint timeout_s)
{
	gboolean expired = FALSE;
	guint id = g_timeout_add_seconds(timeout_s, engine_fixture_timeout_cb, &expired);

	while (!expired) {
		gboolean src = fx->src_job == NULL || migd_job_is_finished(fx->src_job);
		/* the destination may never have started a job (refused early) */
		gboolean dst = fx->dst_job == NULL || migd_job_is_finished(fx->dst_job);
		if (src && dst)
			break;
		g_main_context_iteration(NULL, TRUE);
	}
	if (expired)
		fail_msg("jobs did not finish within %u s", timeout_s);
	g_source_remove(id);
	/* the deferred frees and closes */
	for (guint i = 0; i < 20 && g_main_context_iteration(NULL, FALSE); i++)
		;
}

void
engine_run_until_flag(gboolean *flag, guint timeout_s)
{
	gboolean expired = FALSE;
	guint id = g_timeout_add_seconds(timeout_s, engine_fixture_timeout_cb, &expired);

	while (!*flag && !expired)
		g_main_context_iteration(NULL, TRUE);
	if (!*flag)
		fail_msg("nothing happened within %u s", timeout_s);
	g_source_remove(id);
}

MigdState
engine_fixture_state(GPtrArray *devices, guint i)
{
	MigdState state = MIGD_STATE_ERROR;
	g_autoptr(GError) error = NULL;
	if (!migd_device_get_state(g_ptr_array_index(devices, i), &state, &error))
		fail_msg("get state: %s", error->message);
	return state;
}

guint64
engine_fixture_digest(GPtrArray *devices, guint i)
{
	return migd_sim_device_get_state_digest(g_ptr_array_index(devices, i));
}

gint
engine_raw_connect(const gchar *address)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	gint fd;

	if (!g_str_has_prefix(address, "unix:/"))
		return -1;
	g_strlcpy(sun.sun_path, address + strlen("unix:"), sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

gboolean
engine_raw_send(gint fd, MigdWireMsgType type, gpointer body)
{
	MigdWireFrame frame;
	g_autoptr(GByteArray) out = g_byte_array_new();

	migd_wire_frame_init(&frame, type, body);
	if (!migd_wire_frame_append(&frame, out, NULL))
		return FALSE;
	return write(fd, out->data, out->len) == (gssize)out->len;
}

MigdWireFrame *
engine_raw_next(gint fd, MigdWireDecoder *decoder)
{
	for (;;) {
		guint8 buf[4096];
		gssize n;
		MigdWireFrame *frame = migd_wire_decoder_next(decoder, NULL);
		if (frame != NULL) {
			if (frame->type != MIGD__WIRE__MESSAGE_TYPE__MSG_KEEPALIVE)
				return frame;
			migd_wire_frame_free(frame);
			continue;
		}
		n = read(fd, buf, sizeof(buf));
		if (n <= 0 || !migd_wire_decoder_feed(decoder, buf, n, NULL))
			return NULL;
	}
}

/* the next frame is of @type */
static gboolean
engine_raw_expect(gint fd, MigdWireDecoder *decoder, MigdWireMsgType type)
{
	MigdWireFrame *frame = engine_raw_next(fd, decoder);
	gboolean ok = frame != NULL && frame->type == type;

	if (frame != NULL)
		migd_wire_frame_free(frame);
	return ok;
}

gboolean
engine_raw_hello_offer(gint fd, MigdWireDecoder *decoder, guint64 capabilities, MigdDevice *like)
{
	g_auto(MigdDeviceIdentity) id = {0};
	Migd__Wire__Hello hello = MIGD__WIRE__HELLO__INIT;
	Migd__Wire__DeviceOffer offer = MIGD__WIRE__DEVICE_OFFER__INIT;
	Migd__Wire__DeviceDescriptor desc = MIGD__WIRE__DEVICE_DESCRIPTOR__INIT;

	hello.version_min = MIGD_WIRE_PROTOCOL_VERSION_MIN;
	hello.version_max = MIGD_WIRE_PROTOCOL_VERSION_MAX;
	hello.capabilities = capabilities;
	hello.host_identity = (gchar *)"raw-source";
	hello.session_id = (gchar *)"raw-session-1";
	hello.device_count = 1;
	if (!engine_raw_send(fd, MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO, &hello) ||
	    !engine_raw_expect(fd, decoder, MIGD__WIRE__MESSAGE_TYPE__MSG_HELLO_REPLY))
		return FALSE;
	if (!migd_device_probe(like, NULL) || !migd_device_get_identity(like, &id, NULL))
		return FALSE;
	desc.driver_name = id.driver;
	desc.vendor_id = id.vendor_id;
	desc.device_id = id.device_id;
	desc.subsystem_vendor_id = id.subsystem_vendor_id;
	desc.subsystem_device_id = id.subsystem_device_id;
	desc.migration_flags = migd_device_get_mig_flags(like);
	offer.device = 0;
	offer.descriptor = &desc;
	return engine_raw_send(fd, MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_OFFER, &offer) &&
	       engine_raw_expect(fd, decoder, MIGD__WIRE__MESSAGE_TYPE__MSG_DEVICE_ACCEPT);
}
