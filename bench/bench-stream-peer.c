/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The destination engine of bench-stream.c, in a process of its own as a destination
 * daemon is: each engine has its main loop to itself, as deployed (in one process, one
 * main thread would do both ends' socket work and cap the engine below the link).
 *
 *   migd-bench-stream-peer CA CERT KEY
 * stdin, one command a line: "plain" or "tls" (the destination's transport). For each it
 * answers "listening ADDRESS", accepts one migration into its fast_data stand-in and
 * answers "ok CPU" (its CPU seconds for the run) once the device took the state (every byte
 * compared) and its digest is the source's (seed 1), or "fail WHY". End of input ends the process.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "migd-destination.h"
#include "migd-sim-device.h"
#include "migd-tune.h"

#define PEER_SPEC "mlx5:state_size=1G,fast_data=1,seed=%u"

static MigdSimDevice *
peer_device(guint seed)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *spec = g_strdup_printf(PEER_SPEC, seed);
	MigdSimDevice *dev = migd_sim_device_new_from_string(spec, &error);

	if (dev == NULL) {
		printf("fail %s: %s\n", spec, error->message);
		exit(2);
	}
	return dev;
}

/* CPU time of this process, every thread, in seconds */
static gdouble
peer_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
peer_job_started_cb(MigdDestination *dest, MigdJob *job, MigdJob **out)
{
	g_set_object(out, job);
}

static void
peer_run(MigdSimDevice *device, const MigdTransportConfig *transport, guint64 expected_digest)
{
	g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(MigdDestination) dest = NULL;
	g_autoptr(MigdJob) job = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *address = NULL;
	gdouble cpu0;

	/* the same device each time, as a daemon serves one */
	g_ptr_array_add(devices, g_object_ref(device));
	dest = migd_destination_new(devices);
	g_signal_connect(dest, "job-started", G_CALLBACK(peer_job_started_cb), &job);
	if (!migd_destination_listen(dest, "tcp:127.0.0.1:0", transport, &error)) {
		printf("fail listen: %s\n", error->message);
		return;
	}
	address = migd_destination_get_address(dest);
	cpu0 = peer_cpu_s();
	printf("listening %s\n", address);
	while (job == NULL || !migd_job_is_finished(job))
		g_main_context_iteration(NULL, TRUE);
	if (!migd_job_get_success(job))
		printf("fail %s\n", migd_job_get_message(job));
	else if (migd_sim_device_get_state_digest(g_ptr_array_index(devices, 0)) != expected_digest)
		printf("fail the state differs after migration\n");
	else
		printf("ok %.3f\n", peer_cpu_s() - cpu0);
	migd_destination_close(dest);
	while (g_main_context_iteration(NULL, FALSE))
		;
}

static GLogWriterOutput
peer_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if ((level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) == 0)
		return G_LOG_WRITER_HANDLED;
	/* the plain listener's INSECURE warning is expected here */
	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0 &&
		    g_str_has_prefix(fields[i].value, "INSECURE"))
			return G_LOG_WRITER_HANDLED;
	}
	return g_log_writer_standard_streams(level, fields, n_fields, user_data);
}

int
main(int argc, char **argv)
{
	MigdTransportConfig plain = {.plain = TRUE, .insecure_plain_tcp = TRUE};
	MigdTransportConfig tls = {0};
	g_autoptr(MigdSimDevice) source_state = NULL;
	g_autoptr(MigdSimDevice) own_state = NULL;
	gchar line[256];

	if (argc != 4) {
		g_printerr("usage: %s CA CERT KEY\n", argv[0]);
		return 2;
	}
	/* each answer goes out at once: a buffered "fail" left the bench waiting for ever */
	setvbuf(stdout, NULL, _IOLBF, 0);
	migd_tune_allocator();
	g_log_set_writer_func(peer_log_writer, NULL, NULL);
	tls.ca_file = argv[1];
	tls.cert_file = argv[2];
	tls.key_file = argv[3];
	/* generated once: what the stand-in compares with, and the stand-in itself */
	source_state = peer_device(1);
	own_state = peer_device(100);
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin) != NULL) {
		g_strstrip(line);
		if (g_strcmp0(line, "plain") == 0 || g_strcmp0(line, "tls") == 0)
			peer_run(own_state, line[0] == 'p' ? &plain : &tls,
				 migd_sim_device_get_state_digest(source_state));
		else
			printf("fail unknown command '%s'\n", line);
	}
	return 0;
}
