/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The engine against the link itself (docs/performance.md, "Engine against the link").
 * The devices are the simulator's fast_data stand-in: the save data fd hands out state
 * generated beforehand with one pread(2) per read, the resume data fd takes it with one
 * pwrite(2) and compares every byte, so what is measured is the engine and the link, not
 * the simulator. Three figures, alternating, five runs each, on loopback:
 *  - link: a plain TCP copy of the same 1 GiB from memory (two threads, write/read, 1 MiB);
 *  - engine plain: the 1 GiB stop-copy over plain TCP, the source engine in this process,
 *    the destination engine in its own (bench-stream-peer.c), as two daemons are;
 *  - engine TLS: the same two processes over mutual TLS (same devices and sizes).
 * Ratios are taken per run (neighbours in time share the machine's load), medians
 * reported, and so is the CPU time per GiB of both ends, which that load disturbs least.
 * BENCH_VERBOSE=1 prints each run; BENCH_STREAM_PROFILE=plain|tls|link runs only that engine
 * (or the link), five times (for perf record -a).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-stream.h"
#include "migd-crc32c.h"
#include "migd-data-fd.h"
#include "migd-destination.h"
#include "migd-sim-device.h"
#include "migd-source.h"
#include "tests/transport/migd-test-pki.h"

#define BENCH_STREAM_RUNS 5
#define BENCH_STREAM_SIZE (1024ull * 1024 * 1024)
#define BENCH_STREAM_SPEC "mlx5:state_size=1G,fast_data=1"
#define BENCH_STREAM_BUF  (1024 * 1024)

static MigdSimDevice *
bench_stream_device(guint seed)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *spec = g_strdup_printf("%s,seed=%u", BENCH_STREAM_SPEC, seed);
	MigdSimDevice *dev = migd_sim_device_new_from_string(spec, &error);

	if (dev == NULL) {
		g_printerr("bench: %s: %s\n", spec, error->message);
		exit(2);
	}
	return dev;
}

/* the source device's state, read once through its own data fd: the link's bytes */
static guint8 *
bench_stream_state(void)
{
	g_autoptr(MigdSimDevice) dev = bench_stream_device(1);
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error = NULL;
	guint8 *state = g_malloc(BENCH_STREAM_SIZE);
	gsize off = 0;

	if (!migd_device_transition(MIGD_DEVICE(dev), MIGD_STATE_STOP_COPY, MIGD_STATE_RUNNING, &fd,
				    NULL, &error)) {
		g_printerr("bench: stand-in: %s\n", error->message);
		exit(2);
	}
	for (;;) {
		guint8 extra[64];
		gboolean full = off == BENCH_STREAM_SIZE;
		MigdDataReadStatus status;
		gsize n = 0;
		/* once full, one more read must say END */
		if (!migd_data_fd_read_chunk(fd, MIGD_STATE_STOP_COPY, full ? extra : state + off,
					     full ? sizeof(extra)
						  : MIN(BENCH_STREAM_BUF, BENCH_STREAM_SIZE - off),
					     &n, &status, NULL, &error)) {
			g_printerr("bench: stand-in read: %s\n", error->message);
			exit(2);
		}
		if (status == MIGD_DATA_READ_END)
			break;
		off += n;
		if (off > BENCH_STREAM_SIZE)
			break;
	}
	if (off != BENCH_STREAM_SIZE) {
		g_printerr("bench: stand-in gave %" G_GSIZE_FORMAT " bytes\n", off);
		exit(2);
	}
	return state;
}

typedef struct {
	gint fd;
	const guint8 *data;
	guint64 bytes;
} BenchStreamWriter;

static gpointer
bench_stream_link_writer(gpointer user_data)
{
	BenchStreamWriter *w = user_data;

	for (guint64 off = 0; off < w->bytes;) {
		gssize n = write(w->fd, w->data + off, MIN(w->bytes - off, BENCH_STREAM_BUF));
		if (n <= 0)
			break;
		off += n;
	}
	shutdown(w->fd, SHUT_WR);
	return NULL;
}

/* the link: @state through plain loopback TCP, from memory to a 1 MiB buffer; MiB/s */
static gdouble
bench_stream_link(const guint8 *state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	gint lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_autofree guint8 *buf = g_malloc(BENCH_STREAM_BUF);
	BenchStreamWriter w = {.data = state, .bytes = BENCH_STREAM_SIZE};
	guint64 got = 0;
	GThread *writer;
	gint64 start;
	gint in;

	w.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || w.fd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 1) < 0 || getsockname(lfd, (struct sockaddr *)&sin, &len) < 0 ||
	    connect(w.fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    (in = accept(lfd, NULL, NULL)) < 0) {
		g_printerr("bench: link socket setup failed\n");
		exit(2);
	}
	close(lfd);
	start = g_get_monotonic_time();
	writer = g_thread_new("bench-link", bench_stream_link_writer, &w);
	for (;;) {
		gssize n = read(in, buf, BENCH_STREAM_BUF);
		if (n <= 0)
			break;
		got += n;
	}
	g_thread_join(writer);
	start = g_get_monotonic_time() - start;
	close(in);
	close(w.fd);
	if (got != BENCH_STREAM_SIZE) {
		g_printerr("bench: link moved %" G_GUINT64_FORMAT " bytes\n", got);
		exit(2);
	}
	return got / 1048576.0 / (start / (gdouble)G_USEC_PER_SEC);
}

/* the destination engine: bench-stream-peer.c, in its own process */
typedef struct {
	GPid pid;
	FILE *to;
	FILE *from;
} BenchStreamPeer;

/* the peer's next line, without its newline; exits on end of file */
static gchar *
bench_stream_peer_line(BenchStreamPeer *peer)
{
	gchar line[512];

	if (fgets(line, sizeof(line), peer->from) == NULL) {
		g_printerr("bench: the destination process ended\n");
		exit(2);
	}
	return g_strdup(g_strchomp(line));
}

static void
bench_stream_peer_start(BenchStreamPeer *peer, const MigdTestPki *pki)
{
	const gchar *argv[] = {BENCH_STREAM_PEER, pki->ca_crt, pki->server_crt, pki->server_key,
			       NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *line = NULL;
	gint in_fd, out_fd;

	if (!g_spawn_async_with_pipes(NULL, (gchar **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
				      NULL, &peer->pid, &in_fd, &out_fd, NULL, &error)) {
		g_printerr("bench: %s: %s\n", BENCH_STREAM_PEER, error->message);
		exit(2);
	}
	peer->to = fdopen(in_fd, "w");
	peer->from = fdopen(out_fd, "r");
	line = bench_stream_peer_line(peer);
	if (g_strcmp0(line, "ready") != 0) {
		g_printerr("bench: the destination process: %s\n", line);
		exit(2);
	}
}

static void
bench_stream_peer_stop(BenchStreamPeer *peer)
{
	gint status = 0;

	fclose(peer->to);
	fclose(peer->from);
	waitpid(peer->pid, &status, 0);
	g_spawn_close_pid(peer->pid);
}

/*
 * one stop-copy of 1 GiB from an engine in this process to the peer's; MiB/s, and in
 * *@peer_cpu the destination process's CPU seconds
 */
static gdouble
bench_stream_engine(BenchStreamPeer *peer, const gchar *kind,
		    const MigdTransportConfig *src_transport, gdouble *peer_cpu)
{
	g_autoptr(GPtrArray) src = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(MigdJob) job = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *line = NULL;
	g_autofree gchar *done = NULL;
	MigdSourceOptions options;
	gint64 start;

	g_ptr_array_add(src, bench_stream_device(1));
	migd_source_options_init(&options);
	/* stop-copy moves everything: no pre-copy round at all */
	options.policy.max_rounds = 0;
	/* BENCH_STREAM_CHUNK=BYTES: the data-fd read size (default: the engine's) */
	if (g_getenv("BENCH_STREAM_CHUNK") != NULL)
		options.chunk_size = g_ascii_strtoull(g_getenv("BENCH_STREAM_CHUNK"), NULL, 10);
	fprintf(peer->to, "%s\n", kind);
	fflush(peer->to);
	line = bench_stream_peer_line(peer);
	if (!g_str_has_prefix(line, "listening ")) {
		g_printerr("bench: the destination process: %s\n", line);
		exit(2);
	}
	start = g_get_monotonic_time();
	job = migd_source_start(src, line + strlen("listening "), src_transport, &options, &error);
	if (job == NULL) {
		g_printerr("bench: migrate: %s\n", error->message);
		exit(2);
	}
	while (!migd_job_is_finished(job))
		g_main_context_iteration(NULL, TRUE);
	if (!migd_job_get_success(job)) {
		g_printerr("bench: migration failed: %s\n", migd_job_get_message(job));
		exit(1);
	}
	/* "ok": the destination compared every byte and took the source's state */
	done = bench_stream_peer_line(peer);
	start = g_get_monotonic_time() - start;
	if (!g_str_has_prefix(done, "ok ")) {
		g_printerr("bench: the destination: %s\n", done);
		exit(1);
	}
	if (migd_job_get_bytes(job) < BENCH_STREAM_SIZE) {
		g_printerr("bench: the job moved only %" G_GUINT64_FORMAT " bytes\n",
			   migd_job_get_bytes(job));
		exit(1);
	}
	*peer_cpu = g_ascii_strtod(done + 3, NULL);
	while (g_main_context_iteration(NULL, FALSE))
		;
	return BENCH_STREAM_SIZE / 1048576.0 / (start / (gdouble)G_USEC_PER_SEC);
}

/* CPU time of the whole process (both ends, every thread), in seconds */
static gdouble
bench_stream_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static gint
bench_stream_cmp(gconstpointer a, gconstpointer b)
{
	gdouble x = *(const gdouble *)a;
	gdouble y = *(const gdouble *)b;
	return x < y ? -1 : x > y;
}

/*
 * The cipher the transport negotiates (TLS_AES_256_GCM_SHA384, logged at connection) on
 * 16 KiB records, in bytes per second, as `openssl speed` measures it on this CPU (the
 * bench makes its certificates with openssl already); 0 if it cannot be measured.
 */
static gdouble
bench_stream_cipher_rate(void)
{
	const gchar *argv[] = {"openssl", "speed",    "-evp", "aes-256-gcm", "-bytes",
			       "16384",	  "-seconds", "1",    "-mr",	     NULL};
	g_autofree gchar *out = NULL;
	g_auto(GStrv) lines = NULL;
	gint status = 0;

	if (!g_spawn_sync(NULL, (gchar **)argv, NULL,
			  G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
			  &status, NULL) ||
	    !g_spawn_check_wait_status(status, NULL))
		return 0;
	lines = g_strsplit(out, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) f = g_strsplit(lines[i], ":", -1);
		/* +F:<n>:AES-256-GCM:<bytes per second> */
		if (g_strv_length(f) == 4 && g_strcmp0(f[0], "+F") == 0)
			return g_ascii_strtod(f[3], NULL);
	}
	return 0;
}

/*
 * The CPU per GiB the engine must add to the link, whatever its own code costs: two passes
 * of the device over the bytes (a driver's copy_to_user at the source, copy_from_user at the
 * destination; the stand-in's copy and comparison), each timed as a memcpy out of memory
 * not in cache, and the CRC32C of every chunk at both ends, on a chunk just copied, as the
 * engine computes it. 1 MiB chunks as the engine's; the best of three.
 */
static gdouble
bench_stream_required_s(const guint8 *state)
{
	g_autofree guint8 *buf = g_malloc(BENCH_STREAM_BUF);
	gdouble best = G_MAXDOUBLE;
	volatile guint32 crc = 0; /* so that the CRCs are computed */

	for (guint r = 0; r < 3; r++) {
		gint64 copy_us = 0, crc_us = 0;
		for (gsize off = 0; off < BENCH_STREAM_SIZE; off += BENCH_STREAM_BUF) {
			gint64 t0 = g_get_monotonic_time(), t1;
			memcpy(buf, state + off, BENCH_STREAM_BUF);
			t1 = g_get_monotonic_time();
			crc ^= migd_crc32c_update(0, buf, BENCH_STREAM_BUF);
			copy_us += t1 - t0;
			crc_us += g_get_monotonic_time() - t1;
		}
		best = MIN(best, 2 * (copy_us + crc_us) / 1e6);
	}
	return best;
}

/* sorts @v in place; the median */
static gdouble
bench_stream_median(gdouble *v)
{
	qsort(v, BENCH_STREAM_RUNS, sizeof(gdouble), bench_stream_cmp);
	return v[BENCH_STREAM_RUNS / 2];
}

void
bench_stream(BenchReport *report)
{
	g_autoptr(GError) error = NULL;
	MigdTestPki *pki = migd_test_pki_new(&error);
	g_autofree guint8 *state = NULL;
	MigdTransportConfig plain = {.plain = TRUE, .insecure_plain_tcp = TRUE};
	MigdTransportConfig tls_src = {0};
	BenchStreamPeer peer = {0};
	gdouble link[BENCH_STREAM_RUNS], eng[BENCH_STREAM_RUNS], tls[BENCH_STREAM_RUNS];
	gdouble r_link[BENCH_STREAM_RUNS], r_tls[BENCH_STREAM_RUNS];
	gdouble ceiling[BENCH_STREAM_RUNS], required;
	guint n_cpus = g_get_num_processors();
	g_autofree gchar *note_link = NULL;
	g_autofree gchar *note_tls = NULL;
	gdouble m_link, m_eng, m_tls, cipher;
	gdouble pc = 0, pc2 = 0;
	gdouble cpu_link[BENCH_STREAM_RUNS], cpu_eng[BENCH_STREAM_RUNS], cpu_tls[BENCH_STREAM_RUNS];
	/* the stand-in's content is generated once, not per run: this keeps it */
	g_autoptr(MigdSimDevice) keep_src = bench_stream_device(1);

	if (pki == NULL) {
		g_printerr("bench: certificates for TLS: %s\n", error->message);
		exit(2);
	}
	tls_src.cert_file = pki->client_crt;
	tls_src.key_file = pki->client_key;
	tls_src.ca_file = pki->ca_crt;
	bench_stream_peer_start(&peer, pki);
	/* BENCH_STREAM_PROFILE=plain|tls: only that engine, for perf record */
	if (g_strcmp0(g_getenv("BENCH_STREAM_PROFILE"), "link") == 0) {
		state = bench_stream_state();
		for (guint i = 0; i < BENCH_STREAM_RUNS; i++) {
			gdouble c0 = bench_stream_cpu_s();
			gdouble rate = bench_stream_link(state);
			printf("stream: link %.0f MiB/s, CPU s/GiB %.2f\n", rate,
			       bench_stream_cpu_s() - c0);
		}
	} else if (g_getenv("BENCH_STREAM_PROFILE") != NULL) {
		gboolean use_tls = g_strcmp0(g_getenv("BENCH_STREAM_PROFILE"), "tls") == 0;
		for (guint i = 0; i < BENCH_STREAM_RUNS; i++) {
			gdouble c0 = bench_stream_cpu_s();
			gdouble rate = use_tls ? bench_stream_engine(&peer, "tls", &tls_src, &pc)
					       : bench_stream_engine(&peer, "plain", &plain, &pc);
			printf("stream: %s %.0f MiB/s, CPU s/GiB %.2f + %.2f\n",
			       use_tls ? "TLS" : "plain", rate, bench_stream_cpu_s() - c0, pc);
		}
	}
	if (g_getenv("BENCH_STREAM_PROFILE") != NULL) {
		bench_stream_peer_stop(&peer);
		migd_test_pki_free(pki);
		return;
	}
	state = bench_stream_state();
	/* untimed: a first migration warms both processes (heap, connections, caches) */
	bench_stream_engine(&peer, "plain", &plain, &pc);
	required = bench_stream_required_s(state);
	for (guint i = 0; i < BENCH_STREAM_RUNS; i++) {
		gdouble c0 = bench_stream_cpu_s(), c1, c2, c3;
		link[i] = bench_stream_link(state);
		c1 = bench_stream_cpu_s();
		eng[i] = bench_stream_engine(&peer, "plain", &plain, &pc);
		c2 = bench_stream_cpu_s();
		tls[i] = bench_stream_engine(&peer, "tls", &tls_src, &pc2);
		c3 = bench_stream_cpu_s();
		/* 1 GiB each: CPU seconds per GiB, both processes */
		cpu_link[i] = c1 - c0;
		cpu_eng[i] = c2 - c1 + pc;
		cpu_tls[i] = c3 - c2 + pc2;
		if (g_getenv("BENCH_VERBOSE") != NULL)
			printf("stream: run %u: CPU s/GiB (source + destination): link %.2f, plain "
			       "%.2f + %.2f, TLS %.2f + %.2f\n",
			       i + 1, c1 - c0, c2 - c1, pc, c3 - c2, pc2);
		r_link[i] = eng[i] / link[i];
		/*
		 * The most engine/link can be in this run: both ends on these cores, the engine
		 * doing the link's work (its CPU per GiB, this run) and the work it must add, with
		 * every core busy all the time (the link itself keeps them busy only in part).
		 */
		ceiling[i] = (1024.0 / link[i]) / ((cpu_link[i] + required) / n_cpus);
		r_tls[i] = tls[i] / eng[i];
		if (g_getenv("BENCH_VERBOSE") != NULL)
			printf("stream: run %u: link %.0f, engine plain %.0f, engine TLS %.0f "
			       "MiB/s\n",
			       i + 1, link[i], eng[i], tls[i]);
	}
	m_link = bench_stream_median(link);
	m_eng = bench_stream_median(eng);
	m_tls = bench_stream_median(tls);
	bench_stream_median(r_link);
	bench_stream_median(r_tls);
	bench_stream_median(ceiling);
	note_link = g_strdup_printf(
	    "ratio per run: min %.2f, median %.2f, max %.2f; link "
	    "%.0f-%.0f, engine %.0f-%.0f MiB/s",
	    r_link[0], r_link[BENCH_STREAM_RUNS / 2], r_link[BENCH_STREAM_RUNS - 1], link[0],
	    link[BENCH_STREAM_RUNS - 1], eng[0], eng[BENCH_STREAM_RUNS - 1]);
	note_tls =
	    g_strdup_printf("ratio per run: min %.2f, median %.2f, max %.2f; TLS "
			    "%.0f-%.0f MiB/s",
			    r_tls[0], r_tls[BENCH_STREAM_RUNS / 2], r_tls[BENCH_STREAM_RUNS - 1],
			    tls[0], tls[BENCH_STREAM_RUNS - 1]);
	bench_report_add(report, "stream", "engine plain vs link", m_eng, "MiB/s",
			 "plain TCP copy of the same 1 GiB from memory", m_link,
			 r_link[BENCH_STREAM_RUNS / 2], BENCH_TARGET_AT_LEAST, 0.90,
			 BENCH_STREAM_RUNS, note_link);
	bench_report_add(report, "stream", "engine TLS vs plain", m_tls, "MiB/s",
			 "the engine over plain TCP, same run", m_eng, r_tls[BENCH_STREAM_RUNS / 2],
			 BENCH_TARGET_AT_LEAST, 0.75, BENCH_STREAM_RUNS, note_tls);
	bench_stream_peer_stop(&peer);
	m_link = bench_stream_median(cpu_link);
	m_eng = bench_stream_median(cpu_eng);
	m_tls = bench_stream_median(cpu_tls);
	bench_report_add(report, "stream", "CPU per GiB, engine plain (both processes) vs link",
			 m_eng, "s", "the link's CPU per GiB", m_link, m_eng / m_link,
			 BENCH_TARGET_NONE, 0, BENCH_STREAM_RUNS,
			 "CPU time is what the other load on shared cores disturbs least");
	bench_report_add(report, "stream", "CPU per GiB, engine TLS vs plain (both processes)",
			 m_tls, "s", "the engine over plain TCP", m_eng, m_tls / m_eng,
			 BENCH_TARGET_NONE, 0, BENCH_STREAM_RUNS, NULL);
	/* of the engine's CPU beyond the link's, how much is work it cannot leave out */
	bench_report_add(
	    report, "stream", "CPU per GiB the engine adds to the link's", m_eng - m_link, "s",
	    "the work it must add: two device passes, a CRC32C at each end (timed alone)", required,
	    (m_eng - m_link) / required, BENCH_TARGET_NONE, 0, BENCH_STREAM_RUNS,
	    "above 1: the engine's own code, GLib and the kernel's per-call costs");
	{
		g_autofree gchar *ref = g_strdup_printf(
		    "ceiling: the link's time per GiB over (its CPU per GiB + the work the engine "
		    "must add) / %u CPUs",
		    n_cpus);
		g_autofree gchar *note = g_strdup_printf(
		    "ceiling per run: min %.2f, max %.2f; both ends share these %u CPUs; it is an "
		    "estimate from CPU times, and single runs scatter around it",
		    ceiling[0], ceiling[BENCH_STREAM_RUNS - 1], n_cpus);
		bench_report_add(
		    report, "stream", "engine plain vs link, against the most these CPUs allow",
		    r_link[BENCH_STREAM_RUNS / 2], "", ref, ceiling[BENCH_STREAM_RUNS / 2],
		    r_link[BENCH_STREAM_RUNS / 2] / ceiling[BENCH_STREAM_RUNS / 2],
		    BENCH_TARGET_NONE, 0, BENCH_STREAM_RUNS, note);
	}
	/*
	 * What TLS/plain can reach here: each end, CPU-bound on its own core, adds the cipher's
	 * time per GiB (encryption at the source, decryption at the destination) to its share
	 * of plain's CPU per GiB.
	 */
	cipher = bench_stream_cipher_rate();
	if (cipher > 0) {
		gdouble end_s = m_eng / 2;
		gdouble cipher_s = BENCH_STREAM_SIZE / cipher;
		gdouble bound = end_s / (end_s + cipher_s);
		g_autofree gchar *ref =
		    g_strdup_printf("estimate: AES-256-GCM at %.2f GB/s (openssl speed, 16 KiB) "
				    "added to each end's "
				    "%.2f s/GiB of plain",
				    cipher / 1e9, end_s);
		bench_report_add(
		    report, "stream", "engine TLS vs plain, against an estimate from the cipher",
		    r_tls[BENCH_STREAM_RUNS / 2], "", ref, bound,
		    r_tls[BENCH_STREAM_RUNS / 2] / bound, BENCH_TARGET_NONE, 0, BENCH_STREAM_RUNS,
		    "about the highest TLS/plain two CPU-bound ends reach with this cipher");
	}
	migd_test_pki_free(pki);
}
