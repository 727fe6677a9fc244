/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Benchmarks, each side by side in one run with its reference:
 *  (a) stop-copy throughput of the engine over loopback TCP for 1 GiB of
 *      simulated state, against a plain socket copy of 1 GiB on the same link;
 *  (b) downtime of 4 devices whose save rate dominates, stopped and streamed in
 *      parallel by one job, against the same 4 devices migrated one after another.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migd-destination.h"
#include "migd-tune.h"
#include "migd-sim-device.h"
#include "migd-source.h"

#define BENCH_COPY_BUF (1024 * 1024)

typedef struct {
	MigdJob *src_job;
	MigdJob *dst_job;
} BenchJobs;

static void
bench_job_started_cb(MigdDestination *dest, MigdJob *job, BenchJobs *jobs)
{
	g_set_object(&jobs->dst_job, job);
}

static GPtrArray *
bench_devices(const gchar *spec, guint n, guint seed)
{
	GPtrArray *devices = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; i < n; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *full = g_strdup_printf(
		    "%s%cseed=%u", spec, strchr(spec, ':') != NULL ? ',' : ':', seed + i);
		MigdSimDevice *dev = migd_sim_device_new_from_string(full, &error);
		if (dev == NULL) {
			g_printerr("bench: %s: %s\n", full, error->message);
			exit(2);
		}
		g_ptr_array_add(devices, dev);
	}
	return devices;
}

/* one migration of @n devices of @spec; returns the source job (finished) */
static MigdJob *
bench_migrate(const gchar *src_spec, const gchar *dst_spec, guint n, gdouble *seconds)
{
	g_autoptr(GPtrArray) src = bench_devices(src_spec, n, 1);
	g_autoptr(GPtrArray) dst = bench_devices(dst_spec, n, 100);
	g_autoptr(MigdDestination) dest = migd_destination_new(dst);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *address = NULL;
	MigdTransportConfig transport = {.plain = TRUE};
	MigdSourceOptions options;
	BenchJobs jobs = {0};
	gint64 start;

	migd_source_options_init(&options);
	/* stop-copy moves everything: no pre-copy round at all */
	options.policy.max_rounds = 0;
	g_signal_connect(dest, "job-started", G_CALLBACK(bench_job_started_cb), &jobs);
	if (!migd_destination_listen(dest, "tcp:127.0.0.1:0", &transport, &error)) {
		g_printerr("bench: listen: %s\n", error->message);
		exit(2);
	}
	address = migd_destination_get_address(dest);
	start = g_get_monotonic_time();
	jobs.src_job = migd_source_start(src, address, &transport, &options, &error);
	if (jobs.src_job == NULL) {
		g_printerr("bench: migrate: %s\n", error->message);
		exit(2);
	}
	while (!migd_job_is_finished(jobs.src_job) ||
	       (jobs.dst_job != NULL && !migd_job_is_finished(jobs.dst_job)))
		g_main_context_iteration(NULL, TRUE);
	*seconds = (g_get_monotonic_time() - start) / (gdouble)G_USEC_PER_SEC;
	if (!migd_job_get_success(jobs.src_job)) {
		g_printerr("bench: migration failed: %s\n", migd_job_get_message(jobs.src_job));
		exit(1);
	}
	for (guint i = 0; i < n; i++) {
		if (migd_sim_device_get_state_digest(g_ptr_array_index(src, i)) !=
		    migd_sim_device_get_state_digest(g_ptr_array_index(dst, i))) {
			g_printerr("bench: device %u state differs after migration\n", i);
			exit(1);
		}
	}
	migd_destination_close(dest);
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_clear_object(&jobs.dst_job);
	return jobs.src_job;
}

typedef struct {
	gint fd;
	guint64 bytes;
} BenchCopy;

static gpointer
bench_copy_writer(gpointer user_data)
{
	BenchCopy *copy = user_data;
	g_autofree guint8 *buf = g_malloc(BENCH_COPY_BUF);
	guint64 left = copy->bytes;

	/* content as the simulator would make it: the reference pays for no generation */
	memset(buf, 0x5a, BENCH_COPY_BUF);
	while (left > 0) {
		gssize n = write(copy->fd, buf, MIN(left, BENCH_COPY_BUF));
		if (n <= 0)
			break;
		left -= n;
	}
	shutdown(copy->fd, SHUT_WR);
	return NULL;
}

/* the physical reference: the same bytes through a plain loopback TCP connection */
static gdouble
bench_plain_copy(guint64 bytes)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	gint lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	gint cfd, sfd;
	g_autofree guint8 *buf = g_malloc(BENCH_COPY_BUF);
	BenchCopy copy = {.bytes = bytes};
	GThread *writer;
	guint64 got = 0;
	gint64 start;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
		g_printerr("bench: socket setup failed\n");
		exit(2);
	}
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		g_printerr("bench: connect failed\n");
		exit(2);
	}
	sfd = accept(lfd, NULL, NULL);
	copy.fd = cfd;
	start = g_get_monotonic_time();
	writer = g_thread_new("bench-copy", bench_copy_writer, &copy);
	for (;;) {
		gssize n = read(sfd, buf, BENCH_COPY_BUF);
		if (n <= 0)
			break;
		got += n;
	}
	g_thread_join(writer);
	close(sfd);
	close(cfd);
	close(lfd);
	if (got != bytes) {
		g_printerr("bench: plain copy moved %" G_GUINT64_FORMAT " bytes\n", got);
		exit(2);
	}
	return (g_get_monotonic_time() - start) / (gdouble)G_USEC_PER_SEC;
}

static gboolean
bench_throughput(gdouble target)
{
	const guint64 bytes = 1024ull * 1024 * 1024;
	gdouble engine_s = 0;
	gdouble plain_s = bench_plain_copy(bytes);
	g_autoptr(MigdJob) job =
	    bench_migrate("mlx5:state_size=1G", "mlx5:state_size=1G", 1, &engine_s);
	gdouble engine_rate = migd_job_get_bytes(job) / engine_s / 1048576.0;
	gdouble plain_rate = bytes / plain_s / 1048576.0;
	gdouble ratio = engine_rate / plain_rate;

	printf("throughput: engine %.0f MiB/s (%" G_GUINT64_FORMAT " bytes in %.2f s), plain TCP "
	       "copy %.0f MiB/s: ratio %.2f (target >= %.2f) %s\n",
	       engine_rate, migd_job_get_bytes(job), engine_s, plain_rate, ratio, target,
	       ratio >= target ? "MET" : "MISSED");
	return ratio >= target;
}

static gboolean
bench_downtime(gdouble target)
{
	const gchar *spec =
	    g_getenv("BENCH_SPEC") ? g_getenv("BENCH_SPEC") : "mlx5:state_size=32M,save_rate=128M";
	gdouble s = 0;
	g_autoptr(MigdJob) parallel = bench_migrate(spec, "mlx5", 4, &s);
	gdouble parallel_ms = migd_job_get_downtime_us(parallel) / 1000.0;
	gdouble sequential_ms = 0;
	gdouble ratio;

	for (guint i = 0; i < 4; i++) {
		g_autoptr(MigdJob) one = bench_migrate(spec, "mlx5", 1, &s);
		sequential_ms += migd_job_get_downtime_us(one) / 1000.0;
	}
	ratio = parallel_ms / sequential_ms;
	printf("downtime: 4 x %s, parallel %.0f ms, one after another %.0f ms: ratio %.2f "
	       "(target <= %.2f) %s\n",
	       spec, parallel_ms, sequential_ms, ratio, target, ratio <= target ? "MET" : "MISSED");
	return ratio <= target;
}

static GLogWriterOutput
bench_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if ((level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) == 0)
		return G_LOG_WRITER_HANDLED;
	return g_log_writer_standard_streams(level, fields, n_fields, user_data);
}

int
main(int argc, char **argv)
{
	gboolean ok = TRUE;
	/* as the daemon does: 1-8 MiB chunk buffers from the heap, not a fresh mmap each */
	migd_tune_allocator();
	/* the engine's per-job messages would drown the results */
	g_log_set_writer_func(bench_log_writer, NULL, NULL);
	if (g_getenv("BENCH_SKIP_THROUGHPUT") == NULL)
		ok &= bench_throughput(0.95);
	ok &= bench_downtime(0.30);
	return ok ? 0 : 1;
}
