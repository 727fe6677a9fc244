/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Benchmarks, each side by side in one run with its reference:
 *  (a) stop-copy throughput of the engine over loopback TCP for 1 GiB of
 *      simulated state, against a plain TCP relay of the same device state
 *      (and, for information, against a memory-to-memory copy on the link);
 *  (b) downtime of 4 devices whose save rate dominates, stopped and streamed in
 *      parallel by one job, against the same 4 devices migrated one after another.
 * With (a), the cost of the streams' CRC32C: the engine without it (a source that
 * does not offer CAP_CHECKSUM) in the same run, and CRC32C alone in GB/s.
 * Then the dirty-tracking benchmarks (bench-dirty-*.c, --only dirty) and the GiB devices
 * through two daemons (bench-gib.c). Every figure is a row of one report (bench-report.h).
 */
#include "config.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench-dirty.h"
#include "bench-gib.h"
#include "bench-report.h"
#include "bench-stream.h"
#include "migd-crc32c.h"
#include "migd-data-fd.h"
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
bench_migrate(const gchar *src_spec, const gchar *dst_spec, guint n, gboolean checksum,
	      gdouble *seconds)
{
	g_autoptr(GPtrArray) src = bench_devices(src_spec, n, 1);
	g_autoptr(GPtrArray) dst = bench_devices(dst_spec, n, 100);
	g_autoptr(MigdDestination) dest = migd_destination_new(dst);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *address = NULL;
	/* TCP throughput is what is measured: plain TCP, explicitly, on loopback only */
	MigdTransportConfig transport = {.plain = TRUE, .insecure_plain_tcp = TRUE};
	MigdSourceOptions options;
	BenchJobs jobs = {0};
	gint64 start;

	migd_source_options_init(&options);
	/* stop-copy moves everything: no pre-copy round at all */
	options.policy.max_rounds = 0;
	options.no_checksum = !checksum;
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

/* a connected loopback TCP pair: *@out sends, *@in receives */
static void
bench_tcp_pair(gint *out, gint *in)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	gint lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
		g_printerr("bench: socket setup failed\n");
		exit(2);
	}
	*out = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*out < 0 || connect(*out, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		g_printerr("bench: connect failed\n");
		exit(2);
	}
	*in = accept(lfd, NULL, NULL);
	close(lfd);
}

/* the physical limit: the same number of bytes from memory through plain loopback TCP */
static gdouble
bench_plain_copy(guint64 bytes)
{
	gint cfd, sfd;
	g_autofree guint8 *buf = g_malloc(BENCH_COPY_BUF);
	BenchCopy copy = {.bytes = bytes};
	GThread *writer;
	guint64 got = 0;
	gint64 start;

	bench_tcp_pair(&cfd, &sfd);
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
	if (got != bytes) {
		g_printerr("bench: plain copy moved %" G_GUINT64_FORMAT " bytes\n", got);
		exit(2);
	}
	return (g_get_monotonic_time() - start) / (gdouble)G_USEC_PER_SEC;
}

typedef struct {
	MigdDataFd *data_fd;
	gint sock;
	guint64 bytes;
} BenchRelay;

static gpointer
bench_relay_source(gpointer user_data)
{
	BenchRelay *relay = user_data;
	g_autofree guint8 *buf = g_malloc(BENCH_COPY_BUF);

	for (;;) {
		g_autoptr(GError) error = NULL;
		MigdDataReadStatus status;
		gsize n = 0;
		if (!migd_data_fd_read_chunk(relay->data_fd, MIGD_STATE_STOP_COPY, buf,
					     BENCH_COPY_BUF, &n, &status, NULL, &error)) {
			g_printerr("bench: relay read: %s\n", error->message);
			exit(2);
		}
		if (status == MIGD_DATA_READ_END)
			break;
		for (gsize off = 0; off < n;) {
			gssize w = write(relay->sock, buf + off, n - off);
			if (w <= 0) {
				g_printerr("bench: relay send failed\n");
				exit(2);
			}
			off += w;
		}
		relay->bytes += n;
	}
	shutdown(relay->sock, SHUT_WR);
	return NULL;
}

/*
 * The reference approach: the same device state moved by the simplest relay
 * there is, two blocking threads doing read(data fd) -> send and recv ->
 * write(data fd) over plain loopback TCP, with no framing, no protocol and no
 * main loop. It pays what any migration of these devices pays (the devices'
 * own data fds) and nothing else, so engine / relay is the engine's overhead.
 */
static gdouble
bench_relay_copy(const gchar *spec, guint64 *bytes)
{
	g_autoptr(GPtrArray) src = bench_devices(spec, 1, 1);
	g_autoptr(GPtrArray) dst = bench_devices(spec, 1, 100);
	MigdDevice *src_dev = g_ptr_array_index(src, 0);
	MigdDevice *dst_dev = g_ptr_array_index(dst, 0);
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdDataFd) in_fd = NULL;
	g_autofree guint8 *buf = g_malloc(BENCH_COPY_BUF);
	BenchRelay relay = {0};
	GThread *reader;
	gint cfd, sfd;
	gint64 start;

	bench_tcp_pair(&cfd, &sfd);
	relay.sock = cfd;
	start = g_get_monotonic_time();
	if (!migd_device_transition(dst_dev, MIGD_STATE_RESUMING, MIGD_STATE_RUNNING, &in_fd, NULL,
				    &error) ||
	    !migd_device_transition(src_dev, MIGD_STATE_STOP_COPY, MIGD_STATE_RUNNING,
				    &relay.data_fd, NULL, &error)) {
		g_printerr("bench: relay setup: %s\n", error->message);
		exit(2);
	}
	reader = g_thread_new("bench-relay", bench_relay_source, &relay);
	for (;;) {
		gssize n = read(sfd, buf, BENCH_COPY_BUF);
		if (n < 0) {
			g_printerr("bench: relay receive failed\n");
			exit(2);
		}
		if (n == 0)
			break;
		if (!migd_data_fd_write_all(in_fd, buf, n, NULL, &error)) {
			g_printerr("bench: relay write: %s\n", error->message);
			exit(2);
		}
	}
	g_thread_join(reader);
	g_clear_pointer(&in_fd, migd_data_fd_free);
	if (!migd_device_transition(dst_dev, MIGD_STATE_STOP, MIGD_STATE_ERROR, NULL, NULL,
				    &error)) {
		g_printerr("bench: relay load: %s\n", error->message);
		exit(2);
	}
	*bytes = relay.bytes;
	migd_data_fd_free(relay.data_fd);
	close(sfd);
	close(cfd);
	if (migd_sim_device_get_state_digest(MIGD_SIM_DEVICE(src_dev)) !=
	    migd_sim_device_get_state_digest(MIGD_SIM_DEVICE(dst_dev))) {
		g_printerr("bench: relay: device state differs\n");
		exit(1);
	}
	return (g_get_monotonic_time() - start) / (gdouble)G_USEC_PER_SEC;
}

/* CRC32C of 1 MiB chunks (the default chunk size), in GB/s: the best of 5 rounds of 256 MiB */
static gdouble
bench_crc32c(guint32 (*func)(guint32, gconstpointer, gsize))
{
	const gsize chunk = 1024 * 1024;
	g_autofree guint8 *buf = g_malloc(chunk);
	gdouble best = 0;
	guint32 sink = 0;

	for (gsize i = 0; i < chunk; i++)
		buf[i] = (guint8)(i * 131 + (i >> 9));
	for (guint round = 0; round < 5; round++) {
		gint64 start = g_get_monotonic_time();
		gdouble s;
		for (guint i = 0; i < 256; i++)
			sink ^= func(sink, buf, chunk);
		s = (g_get_monotonic_time() - start) / (gdouble)G_USEC_PER_SEC;
		best = MAX(best, 256.0 * chunk / s / 1e9);
	}
	/* keeps the loop from being optimised away */
	if (sink == 0x12345678)
		printf(" ");
	return best;
}

static gint
bench_cmp_double(gconstpointer a, gconstpointer b)
{
	gdouble x = *(const gdouble *)a;
	gdouble y = *(const gdouble *)b;
	return x < y ? -1 : x > y;
}

/* CPU time of the whole process (both engines, every thread), in seconds */
static gdouble
bench_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define BENCH_CHECKSUM_PAIRS 5

typedef struct {
	gdouble rate[2];	/* MiB/s without, with the checksum: medians */
	gdouble cpu_per_gib[2]; /* CPU seconds per GiB moved, both engines: medians */
} BenchChecksumCost;

/*
 * The engine without the checksum and with it, alternately, five times each:
 * wall-clock rates and CPU time per GiB (which the other load on shared cores
 * disturbs less), medians.
 */
static void
bench_checksum_cost(const gchar *spec, BenchChecksumCost *cost)
{
	gdouble rate[2][BENCH_CHECKSUM_PAIRS];
	gdouble cpu[2][BENCH_CHECKSUM_PAIRS];

	for (guint i = 0; i < BENCH_CHECKSUM_PAIRS; i++) {
		for (guint with = 0; with < 2; with++) {
			gdouble s = 0;
			gdouble cpu0 = bench_cpu_s();
			g_autoptr(MigdJob) job = bench_migrate(spec, spec, 1, with, &s);
			gdouble gib = migd_job_get_bytes(job) / 1073741824.0;

			rate[with][i] = gib * 1024.0 / s;
			cpu[with][i] = (bench_cpu_s() - cpu0) / gib;
		}
	}
	for (guint with = 0; with < 2; with++) {
		qsort(rate[with], BENCH_CHECKSUM_PAIRS, sizeof(gdouble), bench_cmp_double);
		qsort(cpu[with], BENCH_CHECKSUM_PAIRS, sizeof(gdouble), bench_cmp_double);
		cost->rate[with] = rate[with][BENCH_CHECKSUM_PAIRS / 2];
		cost->cpu_per_gib[with] = cpu[with][BENCH_CHECKSUM_PAIRS / 2];
	}
}

static void
bench_throughput(BenchReport *report, gdouble target)
{
	const gchar *spec = "mlx5:state_size=1G";
	const guint64 size = 1024ull * 1024 * 1024;
	guint64 relay_bytes = 0;
	gdouble plain_s = bench_plain_copy(size);
	gdouble relay_s = bench_relay_copy(spec, &relay_bytes);
	BenchChecksumCost cost = {0};
	gdouble engine_rate;
	gdouble bare_rate;
	gdouble crc_generic = bench_crc32c(migd_crc32c_update_generic);
	gdouble crc_hw = migd_crc32c_have_hw() ? bench_crc32c(migd_crc32c_update_hw) : 0;
	gdouble crc_clmul = migd_crc32c_have_clmul() ? bench_crc32c(migd_crc32c_update_clmul) : 0;
	gdouble crc_used = bench_crc32c(migd_crc32c_update);
	gdouble relay_rate = relay_bytes / relay_s / 1048576.0;
	gdouble plain_rate = size / plain_s / 1048576.0;
	g_autofree gchar *link_note = NULL;
	g_autofree gchar *cpu_note = NULL;
	g_autofree gchar *crc_note = NULL;

	bench_checksum_cost(spec, &cost);
	bare_rate = cost.rate[0];
	engine_rate = cost.rate[1];
	bench_report_add(report, "stop-copy", "1 GiB mlx5 state, engine over loopback TCP",
			 engine_rate, "MiB/s", "plain TCP relay of the same device state",
			 relay_rate, engine_rate / relay_rate, BENCH_TARGET_AT_LEAST, target,
			 BENCH_CHECKSUM_PAIRS, "the engine's median; the relay: one run");
	link_note = g_strdup_printf("the relay gets %.2f of it", relay_rate / plain_rate);
	bench_report_add(report, "stop-copy", "the same engine against the link", engine_rate,
			 "MiB/s", "TCP copy of 1 GiB from memory", plain_rate,
			 engine_rate / plain_rate, BENCH_TARGET_NONE, 0, BENCH_CHECKSUM_PAIRS,
			 link_note);
	bench_report_add(report, "checksum", "engine with CRC32C (wall clock)", engine_rate,
			 "MiB/s", "the engine without it", bare_rate, engine_rate / bare_rate,
			 BENCH_TARGET_NONE, 0, BENCH_CHECKSUM_PAIRS, "alternating runs, medians");
	cpu_note = g_strdup_printf("+%.1f %% CPU, both engines together",
				   100.0 * (cost.cpu_per_gib[1] / cost.cpu_per_gib[0] - 1));
	bench_report_add(report, "checksum", "CPU per GiB moved with CRC32C", cost.cpu_per_gib[1],
			 "s/GiB", "the engine without it", cost.cpu_per_gib[0],
			 cost.cpu_per_gib[1] / cost.cpu_per_gib[0], BENCH_TARGET_NONE, 0,
			 BENCH_CHECKSUM_PAIRS, cpu_note);
	crc_note = g_strdup_printf("%sthe engine uses %s: two passes (source and destination) per "
				   "byte at the engine's rate: %.2f %% of a core",
				   migd_crc32c_have_hw() ? "" : "no SSE4.2 on this CPU; ",
				   migd_crc32c_implementation(),
				   100.0 * 2 * engine_rate * 1048576.0 / (crc_used * 1e9));
	bench_report_add(report, "checksum", "CRC32C of 1 MiB chunks, SSE4.2", crc_hw, "GB/s",
			 "slicing-by-8 tables", crc_generic,
			 migd_crc32c_have_hw() ? crc_hw / crc_generic : NAN, BENCH_TARGET_NONE, 0,
			 5, crc_note);
	bench_report_add(
	    report, "checksum", "CRC32C of 1 MiB chunks, with VPCLMULQDQ folding", crc_clmul,
	    "GB/s", "the SSE4.2 crc32 streams alone", crc_hw,
	    migd_crc32c_have_clmul() ? crc_clmul / crc_hw : NAN, BENCH_TARGET_NONE, 0, 5,
	    migd_crc32c_have_clmul() ? "four crc32 streams and carry-less folding in one loop"
				     : "no VPCLMULQDQ on this CPU: not measured");
}

static void
bench_downtime(BenchReport *report, gdouble target)
{
	const gchar *spec =
	    g_getenv("BENCH_SPEC") ? g_getenv("BENCH_SPEC") : "mlx5:state_size=32M,save_rate=128M";
	gdouble s = 0;
	g_autoptr(MigdJob) parallel = bench_migrate(spec, "mlx5", 4, TRUE, &s);
	gdouble parallel_ms = migd_job_get_downtime_us(parallel) / 1000.0;
	gdouble sequential_ms = 0;
	g_autofree gchar *metric = g_strdup_printf("4 x %s streamed in parallel", spec);

	for (guint i = 0; i < 4; i++) {
		g_autoptr(MigdJob) one = bench_migrate(spec, "mlx5", 1, TRUE, &s);
		sequential_ms += migd_job_get_downtime_us(one) / 1000.0;
	}
	bench_report_add(report, "downtime", metric, parallel_ms, "ms",
			 "the same 4 one after another", sequential_ms, parallel_ms / sequential_ms,
			 BENCH_TARGET_AT_MOST, target, 1, NULL);
}

static GLogWriterOutput
bench_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	static gboolean insecure_told;

	if ((level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) == 0)
		return G_LOG_WRITER_HANDLED;
	/* the plain TCP the throughput rows use on purpose is warned about at every connection:
	 * once is enough */
	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0 &&
		    g_str_has_prefix(fields[i].value, "INSECURE:")) {
			if (insecure_told)
				return G_LOG_WRITER_HANDLED;
			insecure_told = TRUE;
		}
	}
	return g_log_writer_standard_streams(level, fields, n_fields, user_data);
}

/* is @group selected by --only (every group when it is not given) */
static gboolean
bench_selected(gchar **only, const gchar *group)
{
	if (only == NULL)
		return TRUE;
	for (guint i = 0; only[i] != NULL; i++) {
		g_auto(GStrv) words = g_strsplit(only[i], ",", -1);
		if (g_strv_contains((const gchar *const *)words, group))
			return TRUE;
	}
	return FALSE;
}

static void
bench_progress(const gchar *what)
{
	g_printerr("bench: %s ...\n", what);
}

int
main(int argc, char **argv)
{
	static const gchar *const groups[] = {"stream", "stop-copy", "downtime",
					      "dirty",	"gib",	     NULL};
	gboolean strict = FALSE;
	g_autofree gchar *json_path = NULL;
	g_auto(GStrv) only = NULL;
	g_autofree gchar *gib_sizes = g_strdup("4,8");
	GOptionEntry entries[] = {
	    {"only", 0, 0, G_OPTION_ARG_STRING_ARRAY, &only,
	     "Run only these groups: stream, stop-copy, downtime, dirty, gib (comma-separated, "
	     "repeatable)",
	     "GROUP,..."},
	    {"strict", 0, 0, G_OPTION_ARG_NONE, &strict,
	     "Exit with status 1 when a target is missed (for CI)", NULL},
	    {"json", 0, 0, G_OPTION_ARG_FILENAME, &json_path,
	     "Also write the results as JSON (docs/ABI/testing/bench-json)", "FILE"},
	    {"gib-sizes", 0, 0, G_OPTION_ARG_STRING, &gib_sizes,
	     "The simulated devices' sizes of the gib group, in GiB (default 4,8)", "N,..."},
	    {NULL}};
	g_autoptr(GOptionContext) context =
	    g_option_context_new("- vfio-migd's benchmarks, side by side with their references");
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) failed = NULL; /* a benchmark that could not run */
	g_autoptr(BenchReport) report = bench_report_new();

	g_option_context_add_main_entries(context, entries, NULL);
	g_option_context_set_description(
	    context, "Prints one table (metric, ours, reference, ratio, target, met) and a "
		     "summary line.\nExit status: 0 when the benchmarks ran, whatever the ratios "
		     "(1 with --strict\nwhen a target was missed); 1 when a run failed, 2 when one "
		     "could not start.");
	if (!g_option_context_parse(context, &argc, &argv, &error) || argc > 1) {
		g_printerr("migd-bench: %s\n",
			   error != NULL ? error->message : "unexpected arguments");
		return 2;
	}
	for (guint i = 0; only != NULL && only[i] != NULL; i++) {
		g_auto(GStrv) words = g_strsplit(only[i], ",", -1);
		for (guint j = 0; words[j] != NULL; j++) {
			if (!g_strv_contains(groups, words[j])) {
				g_printerr("migd-bench: --only: no group '%s' (stream, stop-copy, "
					   "downtime, dirty, gib)\n",
					   words[j]);
				return 2;
			}
		}
	}

	if (bench_selected(only, "gib") && !bench_gib_check_sizes(gib_sizes, &error)) {
		g_printerr("migd-bench: %s\n", error->message);
		return 2;
	}

	/* as the daemon does: 1-8 MiB chunk buffers from the heap, not a fresh mmap each */
	migd_tune_allocator();
	/* the engine's per-job messages would drown the results */
	g_log_set_writer_func(bench_log_writer, NULL, NULL);
	if (bench_selected(only, "stream")) {
		bench_progress("the engine against the link (plain, TLS)");
		bench_stream(report);
	}
	if (bench_selected(only, "stop-copy") && g_getenv("BENCH_SKIP_THROUGHPUT") == NULL) {
		bench_progress("stop-copy throughput and the checksum's cost");
		bench_throughput(report, 0.95);
	}
	if (bench_selected(only, "downtime")) {
		bench_progress("downtime of 4 devices");
		bench_downtime(report, 0.30);
	}
	if (bench_selected(only, "dirty")) {
		bench_progress("dirty codec");
		bench_dirty_codec(report);
		bench_progress("dirty ranges");
		bench_dirty_ranges(report);
	}
	if (bench_selected(only, "gib")) {
		bench_progress("GiB devices through two daemons over TLS");
		/* the rows measured so far are still printed and written */
		if (!bench_gib(report, gib_sizes, &failed)) {
			g_printerr("migd-bench: GiB devices: %s\n", failed->message);
		}
	}

	bench_report_print(report, stdout);
	if (json_path != NULL) {
		if (!bench_report_write_json(report, json_path, &error)) {
			g_printerr("migd-bench: %s\n", error->message);
			return 2;
		}
		g_printerr("bench: results in %s\n", json_path);
	}
	if (failed != NULL)
		return 1;
	return strict && bench_report_missed(report) > 0 ? 1 : 0;
}
