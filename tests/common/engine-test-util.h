/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-destination.h"
#include "migd-sim-device.h"
#include "migd-source.h"
#include "migd-wire-frame.h"

/* a simulated device from its spec ("mlx5:seed=1"); @name may be NULL; fails the test */
MigdDevice *migd_test_sim_device(const gchar *spec, const gchar *name);

/* a source and a destination daemon's engines in one process, on loopback */
typedef struct {
	GPtrArray *src_devices; /* MigdSimDevice */
	GPtrArray *dst_devices;
	MigdDestination *dest;
	gchar *address;
	MigdJob *src_job;
	MigdJob *dst_job;
	gboolean src_done;
	gboolean dst_done;
	MigdTransportConfig transport;
	gchar *tmpdir; /* holds the destination's socket */
} EngineFixture;

/* the destination listens on a plain UNIX socket in a fresh directory */
EngineFixture *engine_fixture_new(const gchar *const *src_specs, const gchar *const *dst_specs);
/* the same with @transport's deadlines and caps (plain is forced) */
EngineFixture *engine_fixture_new_full(const gchar *const *src_specs, const gchar *const *dst_specs,
				       const MigdTransportConfig *transport);
void engine_fixture_free(EngineFixture *fx);
/* starts the source job; NULL (and @error) when the source refuses at once */
MigdJob *engine_fixture_migrate(EngineFixture *fx, const MigdSourceOptions *options,
				GError **error);
/* runs the main loop until both jobs finished (or the source alone, if no destination job),
 * bounded by @timeout_s; fails the test on timeout */
void engine_fixture_wait(EngineFixture *fx, guint timeout_s);
/* runs the main loop until *@flag is set (by a callback); fails the test after @timeout_s */
void engine_run_until_flag(gboolean *flag, guint timeout_s);
MigdState engine_fixture_state(GPtrArray *devices, guint i);
guint64 engine_fixture_digest(GPtrArray *devices, guint i);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EngineFixture, engine_fixture_free)

/*
 * A raw source peer, for destinations under test with a source that misbehaves:
 * blocking frame I/O on a plain UNIX socket, from a test's own thread.
 */
/* connects to @address (unix:PATH, as the fixture's destination listens); -1 on failure */
gint engine_raw_connect(const gchar *address);
/* one frame of @type with @body; FALSE if it could not be written whole */
gboolean engine_raw_send(gint fd, MigdWireMsgType type, gpointer body);
/* the next frame from the peer, keepalives skipped; NULL at end of stream or on bad input */
MigdWireFrame *engine_raw_next(gint fd, MigdWireDecoder *decoder);
/*
 * Hello (with @capabilities, one device) and one DeviceOffer describing a device
 * like @like; TRUE once the destination accepted the offer
 */
gboolean engine_raw_hello_offer(gint fd, MigdWireDecoder *decoder, guint64 capabilities,
				MigdDevice *like);
