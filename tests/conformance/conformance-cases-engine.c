/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Conformance cases, part 3: the migration engine itself. A source and a
 * destination engine in this process talk over loopback TCP, the same code
 * path as two daemons, moving A into B.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>

#include "conformance-cases.h"
#include "migd-destination.h"
#include "migd-source.h"

#define CONF_ENGINE_TIMEOUT_S 60

typedef struct {
	MigdJob *dst_job;
} ConfEngineJobs;

static void
conf_engine_job_started_cb(MigdDestination *dest, MigdJob *job, ConfEngineJobs *jobs)
{
	g_set_object(&jobs->dst_job, job);
}

static gboolean
conf_engine_timeout_cb(gpointer user_data)
{
	gboolean *expired = user_data;
	*expired = TRUE;
	return G_SOURCE_REMOVE;
}

static GPtrArray *
conf_engine_devices(MigdDevice *dev)
{
	GPtrArray *devices = g_ptr_array_new_with_free_func(g_object_unref);
	g_ptr_array_add(devices, g_object_ref(dev));
	return devices;
}

/* hex of @text, or "-" when empty */
static gchar *
conf_engine_hex(const gchar *text)
{
	GString *hex = g_string_new(NULL);
	for (const gchar *p = text; *p != '\0'; p++)
		g_string_append_printf(hex, "%02x", (guint8)*p);
	if (hex->len == 0)
		g_string_append_c(hex, '-');
	return g_string_free(hex, FALSE);
}

/* runs the engines until both jobs finished or the time is up */
static gboolean
conf_engine_wait(MigdJob *src_job, ConfEngineJobs *jobs, guint timeout_s)
{
	gboolean expired = FALSE;
	guint id = g_timeout_add_seconds(timeout_s, conf_engine_timeout_cb, &expired);

	while (!expired) {
		gboolean src = migd_job_is_finished(src_job);
		/* the destination may never have started a job (refused early) */
		gboolean dst = jobs->dst_job == NULL || migd_job_is_finished(jobs->dst_job);
		if (src && dst)
			break;
		g_main_context_iteration(NULL, TRUE);
	}
	if (!expired)
		g_source_remove(id);
	/* the deferred frees and closes */
	for (guint i = 0; i < 20 && g_main_context_iteration(NULL, FALSE); i++)
		;
	return !expired;
}

/* RUNNING through a reset, with empty FIFOs: the later cases see a clean device */
static gboolean
conf_engine_cleanup(MigdDevice *dev, GError **error)
{
	if (!conf_to_running(dev, error) || !migd_device_reset(dev, error) ||
	    !conf_to_running(dev, error))
		return FALSE;
	for (guint port = 0; port < 2; port++) {
		g_autofree gchar *rx = conf_uart_drain(dev, port, 16, error);
		if (rx == NULL)
			return FALSE;
	}
	return TRUE;
}

static guint conf_engine_n = 0;

/* the migration itself and its checks; TRUE when the case ran (pass or fail) */
static gboolean
conf_engine_migrate(ConfCtx *ctx, ConfRun *run, MigdDestination *dest, GPtrArray *src_devices,
		    ConfEngineJobs *jobs, GError **error)
{
	MigdTransportConfig transport = {.plain = TRUE};
	MigdSourceOptions options;
	g_autoptr(MigdJob) src_job = NULL;
	g_autofree gchar *address = NULL;
	g_autofree gchar *rx0 = NULL;
	g_autofree gchar *rx1 = NULL;
	g_autofree gchar *hex0 = NULL;
	g_autofree gchar *hex1 = NULL;
	MigdState state_a = MIGD_STATE_ERROR, state_b = MIGD_STATE_ERROR;
	gboolean ok;

	g_signal_connect(dest, "job-started", G_CALLBACK(conf_engine_job_started_cb), jobs);
	/* plain only over UNIX sockets; abstract, so that a read-only root is no obstacle */
	address = g_strdup_printf("unix:@migd-conformance-%d-%u", (gint)getpid(), ++conf_engine_n);
	if (!migd_destination_listen(dest, address, &transport, error))
		return FALSE;
	g_free(address);
	address = migd_destination_get_address(dest);
	migd_source_options_init(&options);
	src_job = migd_source_start(src_devices, address, &transport, &options, error);
	if (src_job == NULL)
		return FALSE;
	if (!conf_engine_wait(src_job, jobs, CONF_ENGINE_TIMEOUT_S)) {
		conf_fail(run, "jobs did not finish within %u s", (guint)CONF_ENGINE_TIMEOUT_S);
		conf_sig(run, "ok=timeout");
		return TRUE;
	}
	ok = migd_job_get_success(src_job) && jobs->dst_job != NULL &&
	     migd_job_get_success(jobs->dst_job);
	conf_sig(run, "ok=%d", ok ? 1 : 0);
	if (!ok) {
		conf_fail(run, "migration failed: source '%s', destination '%s'",
			  migd_job_get_message(src_job),
			  jobs->dst_job != NULL ? migd_job_get_message(jobs->dst_job) : "(no job)");
		return TRUE;
	}
	if (!conf_get_state(ctx->a, &state_a, error) || !conf_get_state(ctx->b, &state_b, error))
		return FALSE;
	conf_expect_str(run, "src", migd_state_to_string(state_a), "STOP");
	conf_expect_str(run, "dst", migd_state_to_string(state_b), "RUNNING");

	rx0 = conf_uart_drain(ctx->b, 0, 16, error);
	if (rx0 == NULL)
		return FALSE;
	rx1 = conf_uart_drain(ctx->b, 1, 16, error);
	if (rx1 == NULL)
		return FALSE;
	hex0 = conf_engine_hex(rx0);
	hex1 = conf_engine_hex(rx1);
	conf_sig(run, "uart0=%s uart1=%s", hex0, hex1);
	if (g_strcmp0(rx0, "ENGINE") != 0)
		conf_fail(run, "B's port 0 read back '%s', want 'ENGINE'", rx0);
	if (g_strcmp0(rx1, "42") != 0)
		conf_fail(run, "B's port 1 read back '%s', want '42'", rx1);
	conf_sig(run, "bytes=%" G_GUINT64_FORMAT, migd_job_get_bytes(src_job));
	return TRUE;
}

gboolean
conf_case_engine_migrate_uart(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	ConfEngineJobs jobs = {NULL};
	g_autoptr(GPtrArray) src_devices = conf_engine_devices(ctx->a);
	g_autoptr(GPtrArray) dst_devices = conf_engine_devices(ctx->b);
	g_autoptr(MigdDestination) dest = NULL;
	gboolean ran;

	if (!conf_to_running(ctx->a, error) || !conf_to_running(ctx->b, error))
		return FALSE;
	for (guint port = 0; port < 2; port++) {
		if (!conf_uart_init(ctx->a, port, error) || !conf_uart_init(ctx->b, port, error))
			return FALSE;
	}
	if (!conf_uart_send(ctx->a, 0, "ENGINE", error) || !conf_uart_send(ctx->a, 1, "42", error))
		return FALSE;
	/* B holds something else, which the migration must replace */
	if (!conf_uart_send(ctx->b, 0, "old", error))
		return FALSE;

	dest = migd_destination_new(dst_devices);
	ran = conf_engine_migrate(ctx, run, dest, src_devices, &jobs, error);
	migd_destination_close(dest);
	/* let deferred frees run */
	for (guint i = 0; i < 100 && g_main_context_iteration(NULL, FALSE); i++)
		;
	g_clear_object(&jobs.dst_job);
	/* both back to RUNNING for the cases that follow */
	if (!conf_engine_cleanup(ctx->a, ran ? error : NULL) ||
	    !conf_engine_cleanup(ctx->b, ran ? error : NULL))
		return FALSE;
	return ran;
}
