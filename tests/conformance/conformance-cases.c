/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Conformance cases, part 1: what the device advertises, the FSM walked arc by
 * arc, the pre-copy phase, a whole migration that carries UART state, DMA
 * logging and MIG_DATA_SIZE. Expected values are those of
 * samples/vfio-mdev/mtty.c and drivers/vfio/vfio_main.c in Linux 6.12.
 */
#include "config.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "conformance-cases.h"
#include "migd-error.h"
#include "migd-test-util.h"

#define MTTY2_DATA_SIZE	 96
#define MTTY1_DATA_SIZE	 60
#define MTTY_HEADER_SIZE 24
#define MTTY_FLAGS	 0x7

/* the walk order of the FSM cases: every non-ERROR state */
static const MigdState conf_states[] = {
    MIGD_STATE_STOP,	    MIGD_STATE_RUNNING,	 MIGD_STATE_STOP_COPY,	  MIGD_STATE_RESUMING,
    MIGD_STATE_RUNNING_P2P, MIGD_STATE_PRE_COPY, MIGD_STATE_PRE_COPY_P2P,
};

gboolean
conf_case_feature_probe(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	const MigdDeviceFeatures *fa;
	const MigdDeviceFeatures *fc;
	g_autoptr(GError) error_lp = NULL;
	g_autoptr(GError) error_lpw = NULL;
	g_autoptr(GError) error_lpx = NULL;
	gint efd;

	if (!migd_device_probe(ctx->a, error) || !migd_device_probe(ctx->c, error))
		return FALSE;
	fa = migd_device_get_features(ctx->a);
	fc = migd_device_get_features(ctx->c);
	conf_sig(run, "flags=0x%x", fa->mig_flags);
	if (!fa->migration || fa->mig_flags != MTTY_FLAGS)
		conf_fail(run, "migration flags 0x%x, expected 0x%x", fa->mig_flags, MTTY_FLAGS);
	/* mtty has log_ops whose callbacks do nothing: the core's PROBE succeeds */
	conf_expect_u64(run, "dma_logging", fa->dma_logging, TRUE);
	conf_expect_u64(run, "mig_data_size", fa->mig_data_size, TRUE);
	conf_expect_u64(run, "size_a", fa->stop_copy_length, MTTY2_DATA_SIZE);
	conf_expect_u64(run, "size_c", fc->stop_copy_length, MTTY1_DATA_SIZE);
	conf_expect_hex(run, "flags_c", fc->mig_flags, MTTY_FLAGS);
	/* no device_feature op in mtty_dev_ops: vfio_ioctl_device_feature() says ENOTTY */
	conf_expect_u64(run, "low_power", fa->low_power, FALSE);
	conf_expect_u64(run, "low_power_wakeup", fa->low_power_wakeup, FALSE);
	migd_device_low_power_entry(ctx->a, -1, &error_lp);
	conf_expect_err(run, "lp_entry", error_lp, "ENOTTY");
	efd = eventfd(0, EFD_CLOEXEC);
	if (efd >= 0) {
		migd_device_low_power_entry(ctx->a, efd, &error_lpw);
		close(efd);
		conf_expect_err(run, "lp_entry_wakeup", error_lpw, "ENOTTY");
	}
	migd_device_low_power_exit(ctx->a, &error_lpx);
	conf_expect_err(run, "lp_exit", error_lpx, "ENOTTY");
	return TRUE;
}

/*
 * From start state @arg to every other state, one arc at a time, the state
 * read back after each arc and compared with the planner. Signature:
 * "<target>:<state read back after each arc>[+fd]" per target.
 */
gboolean
conf_case_fsm_walk(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	MigdState start = (MigdState)arg;
	MigdDevice *dev = ctx->a;
	GByteArray *stream = conf_ctx_stream_a(ctx, error);
	guint32 flags;

	if (stream == NULL)
		return FALSE;
	flags = migd_device_get_mig_flags(dev);
	for (guint t = 0; t < G_N_ELEMENTS(conf_states); t++) {
		MigdState target = conf_states[t];
		g_autoptr(MigdDataFd) fd_start = NULL;
		g_autoptr(GArray) path = NULL;
		g_autoptr(GError) error_plan = NULL;
		g_autoptr(GString) walked = g_string_new(NULL);
		MigdState cur = MIGD_STATE_ERROR;

		if (target == start)
			continue;
		if (!conf_to_running(dev, error))
			return FALSE;
		if (start != MIGD_STATE_RUNNING &&
		    !migd_device_transition(dev, start, MIGD_STATE_ERROR, &fd_start, NULL, error))
			return FALSE;
		/* RESUMING -> STOP loads the stream: give it a whole one */
		if (start == MIGD_STATE_RESUMING &&
		    !migd_data_fd_write_all(fd_start, stream->data, stream->len, NULL, error))
			return FALSE;

		path = migd_fsm_plan(flags, start, target, &error_plan);
		if (path == NULL) {
			g_autofree gchar *name = conf_error_name(error_plan);
			if (!conf_get_state(dev, &cur, error))
				return FALSE;
			conf_sig(run, "%s:refused(%s,%s)", conf_state_abbrev(target), name,
				 conf_state_abbrev(cur));
			if (!migd_fsm_arc_hangs_kernel(start, target) || cur != start)
				conf_fail(run, "%s -> %s refused: %s", conf_state_abbrev(start),
					  conf_state_abbrev(target), error_plan->message);
			continue;
		}
		for (guint i = 0; i < path->len; i++) {
			MigdState next = g_array_index(path, guint, i);
			g_autoptr(MigdDataFd) fd = NULL;
			g_autoptr(GError) error_arc = NULL;

			if (walked->len > 0)
				g_string_append_c(walked, ',');
			if (!migd_device_set_state_arc(dev, next, &fd, &error_arc)) {
				g_autofree gchar *name = conf_error_name(error_arc);
				g_string_append_printf(walked, "%s!%s", conf_state_abbrev(next),
						       name);
				conf_fail(run, "arc to %s: %s", conf_state_abbrev(next),
					  error_arc->message);
				break;
			}
			if (!conf_get_state(dev, &cur, error))
				return FALSE;
			g_string_append(walked, conf_state_abbrev(cur));
			if (fd != NULL)
				g_string_append(walked, "+fd");
			if (cur != next)
				conf_fail(run, "%s -> %s: read back %s after the arc to %s",
					  conf_state_abbrev(start), conf_state_abbrev(target),
					  conf_state_abbrev(cur), conf_state_abbrev(next));
		}
		conf_sig(run, "%s:%s", conf_state_abbrev(target), walked->str);
	}
	return conf_to_running(dev, error);
}

/* STOP_COPY -> PRE_COPY(_P2P) and ERROR never reach the kernel */
gboolean
conf_case_hang_arcs(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	MigdDevice *dev = ctx->a;
	static const MigdState refused[] = {MIGD_STATE_PRE_COPY, MIGD_STATE_PRE_COPY_P2P,
					    MIGD_STATE_ERROR};
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	MigdDataReadStatus status = MIGD_DATA_READ_DATA;
	MigdState cur = MIGD_STATE_ERROR;

	if (!conf_to_running(dev, error))
		return FALSE;
	if (!migd_device_transition(dev, MIGD_STATE_STOP_COPY, MIGD_STATE_ERROR, &fd, NULL, error))
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(refused); i++) {
		g_autoptr(GError) error_tr = NULL;
		g_autoptr(GError) error_arc = NULL;
		g_autoptr(MigdDataFd) fd2 = NULL;
		g_auto(MigdRecoveryReport) report = {0};
		g_autofree gchar *key_tr = g_strdup_printf("SC>%s", conf_state_abbrev(refused[i]));
		g_autofree gchar *key_arc =
		    g_strdup_printf("arc_SC>%s", conf_state_abbrev(refused[i]));

		/* the planner's own error, not the fixed kernel's EINVAL: nothing was sent */
		migd_device_transition(dev, refused[i], MIGD_STATE_ERROR, &fd2, &report, &error_tr);
		conf_expect_err(run, key_tr, error_tr, "REFUSED_ARC");
		conf_expect_str(run, "recovery", migd_recovery_action_to_string(report.action),
				"none");
		migd_device_set_state_arc(dev, refused[i], &fd2, &error_arc);
		conf_expect_err(run, key_arc, error_arc, "REFUSED_ARC");
		if (fd2 != NULL)
			conf_fail(run, "a refused arc returned a data fd");
	}
	if (!conf_get_state(dev, &cur, error))
		return FALSE;
	conf_expect_str(run, "state", migd_state_to_string(cur), "STOP_COPY");
	/* the session survived: the whole state can still be read */
	if (!conf_read_all(fd, MIGD_STATE_STOP_COPY, stream, &status, error))
		return FALSE;
	conf_expect_u64(run, "read", stream->len, MTTY2_DATA_SIZE);
	conf_expect_str(run, "end", status == MIGD_DATA_READ_END ? "end" : "temp", "end");
	return conf_to_running(dev, error);
}

gboolean
conf_case_precopy(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	MigdDevice *dev = ctx->a;
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(GError) error_info = NULL;
	MigdDataReadStatus status = MIGD_DATA_READ_DATA;
	guint64 initial = 0, dirty = 0;
	MigdState cur = MIGD_STATE_ERROR;

	if (!conf_to_running(dev, error))
		return FALSE;
	if (!migd_device_set_state_arc(dev, MIGD_STATE_PRE_COPY, &fd, error))
		return FALSE;
	if (!migd_data_fd_get_precopy_info(fd, &initial, &dirty, error))
		return FALSE;
	conf_expect_u64(run, "initial", initial, MTTY_HEADER_SIZE);
	conf_expect_u64(run, "dirty", dirty, 0);
	/* mtty's temporary end is read() == 0, not ENOMSG */
	if (!conf_read_all(fd, MIGD_STATE_PRE_COPY, stream, &status, error))
		return FALSE;
	conf_expect_u64(run, "precopy_bytes", stream->len, MTTY_HEADER_SIZE);
	conf_expect_str(run, "precopy_end", status == MIGD_DATA_READ_TEMP_END ? "temp" : "end",
			"temp");
	if (!migd_data_fd_get_precopy_info(fd, &initial, &dirty, error))
		return FALSE;
	conf_expect_u64(run, "initial_after", initial, 0);
	conf_expect_u64(run, "dirty_after", dirty, 0);

	/* PRE_COPY -> PRE_COPY_P2P -> STOP_COPY: the same fd carries the rest */
	if (!migd_device_set_state_arc(dev, MIGD_STATE_PRE_COPY_P2P, NULL, error))
		return FALSE;
	if (!migd_data_fd_get_precopy_info(fd, &initial, &dirty, error))
		return FALSE;
	conf_expect_u64(run, "initial_pp", initial, 0);
	if (!migd_device_set_state_arc(dev, MIGD_STATE_STOP_COPY, NULL, error))
		return FALSE;
	if (!conf_get_state(dev, &cur, error))
		return FALSE;
	conf_expect_str(run, "state", migd_state_to_string(cur), "STOP_COPY");
	if (!conf_read_all(fd, MIGD_STATE_STOP_COPY, stream, &status, error))
		return FALSE;
	conf_expect_u64(run, "total", stream->len, MTTY2_DATA_SIZE);
	conf_expect_str(run, "stop_copy_end", status == MIGD_DATA_READ_END ? "end" : "temp", "end");
	/* PRECOPY_INFO outside the PRE_COPY states */
	migd_data_fd_get_precopy_info(fd, &initial, &dirty, &error_info);
	conf_expect_err(run, "info_in_sc", error_info, "EINVAL");
	return conf_to_running(dev, error);
}

/* bytes written into A's UART are read back from B after the migration */
gboolean
conf_case_save_resume_uart(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autofree gchar *rx0 = NULL;
	g_autofree gchar *rx1 = NULL;
	g_autofree gchar *rx_b_before = NULL;
	MigdDataReadStatus status = MIGD_DATA_READ_DATA;
	guint8 lsr_a = 0, lsr_b = 0, lsr_after = 0, scr = 0, lcr = 0;

	if (!conf_to_running(ctx->a, error) || !conf_to_running(ctx->b, error))
		return FALSE;
	for (guint port = 0; port < 2; port++) {
		if (!conf_uart_init(ctx->a, port, error) || !conf_uart_init(ctx->b, port, error))
			return FALSE;
	}
	if (!conf_uart_send(ctx->a, 0, "MIGD", error) || !conf_uart_send(ctx->a, 1, "ok", error))
		return FALSE;
	if (!conf_uart_write(ctx->a, 0, CONF_UART_SCR, 0x5a, error))
		return FALSE;
	/* B holds something else, which the resume must replace */
	if (!conf_uart_send(ctx->b, 0, "old", error))
		return FALSE;
	if (!conf_uart_read(ctx->a, 0, CONF_UART_LSR, &lsr_a, error))
		return FALSE;
	conf_sig(run, "lsr_a=0x%02x", lsr_a);
	if ((lsr_a & 0x01) == 0)
		conf_fail(run, "A's LSR shows no data ready after 4 bytes");

	/* the save: PRE_COPY, then the port state on STOP_COPY */
	if (!migd_device_transition(ctx->a, MIGD_STATE_PRE_COPY, MIGD_STATE_RUNNING, &fd, NULL,
				    error))
		return FALSE;
	if (!conf_read_all(fd, MIGD_STATE_PRE_COPY, stream, &status, error))
		return FALSE;
	if (!migd_device_transition(ctx->a, MIGD_STATE_STOP_COPY, MIGD_STATE_RUNNING, NULL, NULL,
				    error))
		return FALSE;
	if (!conf_read_all(fd, MIGD_STATE_STOP_COPY, stream, &status, error))
		return FALSE;
	conf_expect_u64(run, "stream", stream->len, MTTY2_DATA_SIZE);
	if (!migd_device_transition(ctx->a, MIGD_STATE_STOP, MIGD_STATE_ERROR, NULL, NULL, error))
		return FALSE;

	if (!conf_resume(ctx->b, stream->data, stream->len, error))
		return FALSE;
	conf_sig(run, "resume=ok");
	if (!conf_uart_read(ctx->b, 0, CONF_UART_LSR, &lsr_b, error))
		return FALSE;
	conf_sig(run, "lsr_b=0x%02x", lsr_b);
	if (!conf_uart_read(ctx->b, 0, CONF_UART_SCR, &scr, error) ||
	    !conf_uart_read(ctx->b, 0, CONF_UART_LCR, &lcr, error))
		return FALSE;
	conf_expect_hex(run, "scr_b", scr, 0x5a);
	conf_expect_hex(run, "lcr_b", lcr, 0x03);
	rx0 = conf_uart_drain(ctx->b, 0, 16, error);
	if (rx0 == NULL)
		return FALSE;
	rx1 = conf_uart_drain(ctx->b, 1, 16, error);
	if (rx1 == NULL)
		return FALSE;
	conf_expect_str(run, "rx0_b", rx0, "MIGD");
	conf_expect_str(run, "rx1_b", rx1, "ok");
	if (!conf_uart_read(ctx->b, 0, CONF_UART_LSR, &lsr_after, error))
		return FALSE;
	conf_expect_hex(run, "lsr_b_drained", lsr_after, 0x60);

	/* the source keeps its copy: it was only stopped */
	if (!conf_to_running(ctx->a, error))
		return FALSE;
	rx_b_before = conf_uart_drain(ctx->a, 0, 16, error);
	if (rx_b_before == NULL)
		return FALSE;
	conf_expect_str(run, "rx0_a", rx_b_before, "MIGD");
	return TRUE;
}

gboolean
conf_case_dma_logging(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	MigdDevice *dev = ctx->a;
	MigdIovaRange ranges[2] = {{0, 1024 * 1024}, {4 * 1024 * 1024, 1024 * 1024}};
	MigdIovaRange misaligned[1] = {{4096 + 512, 4096}};
	MigdIovaRange overlap[2] = {{0, 8192}, {4096, 8192}};
	g_autofree MigdIovaRange *many = g_new0(MigdIovaRange, 257);
	guint64 bitmap[4] = {0};
	guint64 page_size = 4096;
	g_autoptr(GError) e_start = NULL;
	g_autoptr(GError) e_start2 = NULL;
	g_autoptr(GError) e_report = NULL;
	g_autoptr(GError) e_stop = NULL;
	g_autoptr(GError) e_stop2 = NULL;
	g_autoptr(GError) e_zero = NULL;
	g_autoptr(GError) e_many = NULL;
	g_autoptr(GError) e_misaligned = NULL;
	g_autoptr(GError) e_overlap = NULL;
	g_autoptr(GError) e_small_page = NULL;
	g_autoptr(GError) e_npot_page = NULL;
	g_autoptr(GError) e_overflow = NULL;

	if (ctx->sim && ctx->iommufd_driver) {
		run->skip = CONF_SKIP_IOMMUFD_DRIVER;
		return TRUE;
	}
	for (guint i = 0; i < 257; i++) {
		many[i].iova = (guint64)i * 8192;
		many[i].length = 4096;
	}
	migd_device_dma_logging_start(dev, ranges, 2, &page_size, &e_start);
	conf_expect_err(run, "start", e_start, "ok");
	conf_expect_u64(run, "page_size", page_size, 4096);
	/* mtty_log_start() keeps no state: a second start is fine */
	migd_device_dma_logging_start(dev, ranges, 2, &page_size, &e_start2);
	conf_expect_err(run, "start_again", e_start2, "ok");
	/*
	 * after the core's checks, vfio_ioctl_device_feature_logging_report() walks
	 * an iova_bitmap: without CONFIG_IOMMUFD_DRIVER (Debian 12's 6.12 has no
	 * IOMMUFD) those are stubs and the walk answers EOPNOTSUPP; with it (the
	 * tier's cdev kernel) the walk runs and mtty reports nothing dirty
	 */
	migd_device_dma_logging_report(dev, 0, 1024 * 1024, 4096, bitmap, &e_report);
	conf_expect_err(run, "report", e_report, ctx->iommufd_driver ? "ok" : "EOPNOTSUPP");
	conf_expect_u64(run, "dirty_pages", migd_test_bitmap_weight(bitmap, G_N_ELEMENTS(bitmap)),
			0);
	migd_device_dma_logging_stop(dev, &e_stop);
	conf_expect_err(run, "stop", e_stop, "ok");
	migd_device_dma_logging_stop(dev, &e_stop2);
	conf_expect_err(run, "stop_again", e_stop2, "ok");

	/* the core's checks in vfio_main.c still run in front of the no-op ops */
	migd_device_dma_logging_start(dev, ranges, 0, &page_size, &e_zero);
	conf_expect_err(run, "start_0_ranges", e_zero, "EINVAL");
	migd_device_dma_logging_start(dev, many, 257, &page_size, &e_many);
	conf_expect_err(run, "start_257_ranges", e_many, "E2BIG");
	migd_device_dma_logging_start(dev, misaligned, 1, &page_size, &e_misaligned);
	conf_expect_err(run, "start_misaligned", e_misaligned, "EINVAL");
	migd_device_dma_logging_start(dev, overlap, 2, &page_size, &e_overlap);
	conf_expect_err(run, "start_overlap", e_overlap, "EINVAL");
	/* IS_ALIGNED(x, 0) lets only 0 through; an empty range is [iova, iova - 1] */
	{
		MigdIovaRange empty[1] = {{0, 0}};
		MigdIovaRange empty_and_page[2] = {{0, 0}, {4096, 4096}};
		guint64 page_0 = 0;
		guint64 page_4k = 4096;
		g_autoptr(GError) e_page0 = NULL;
		g_autoptr(GError) e_page0_range = NULL;
		g_autoptr(GError) e_empty_overlap = NULL;

		migd_device_dma_logging_start(dev, empty, 1, &page_0, &e_page0);
		conf_expect_err(run, "start_page0_empty", e_page0, "ok");
		page_0 = 0;
		migd_device_dma_logging_start(dev, misaligned, 1, &page_0, &e_page0_range);
		conf_expect_err(run, "start_page0_range", e_page0_range, "EINVAL");
		migd_device_dma_logging_start(dev, empty_and_page, 2, &page_4k, &e_empty_overlap);
		conf_expect_err(run, "start_empty_wraps", e_empty_overlap, "EINVAL");
		if (!migd_device_dma_logging_stop(dev, error))
			return FALSE;
	}
	migd_device_dma_logging_report(dev, 0, 4096, 1024, bitmap, &e_small_page);
	conf_expect_err(run, "report_page_1k", e_small_page, "EINVAL");
	migd_device_dma_logging_report(dev, 0, 3 * 4096, 3 * 4096, bitmap, &e_npot_page);
	conf_expect_err(run, "report_page_12k", e_npot_page, "EINVAL");
	migd_device_dma_logging_report(dev, G_MAXUINT64 - 4095, 8192, 4096, bitmap, &e_overflow);
	conf_expect_err(run, "report_overflow", e_overflow, "EOVERFLOW");
	return TRUE;
}

static gboolean
conf_data_size_in(ConfRun *run, MigdDevice *dev, const gchar *key, guint64 want, GError **error)
{
	guint64 size = 0;

	if (!migd_device_get_data_size(dev, &size, error))
		return FALSE;
	conf_expect_u64(run, key, size, want);
	return TRUE;
}

/* "Can be called on each device state" (uAPI): mtty answers its struct size */
gboolean
conf_case_data_size_states(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	static const MigdState walk[] = {MIGD_STATE_RUNNING,	  MIGD_STATE_RUNNING_P2P,
					 MIGD_STATE_PRE_COPY_P2P, MIGD_STATE_PRE_COPY,
					 MIGD_STATE_STOP_COPY,	  MIGD_STATE_STOP};
	g_autoptr(MigdDataFd) fd_save = NULL;
	g_autoptr(MigdDataFd) fd_resume = NULL;

	if (!conf_to_running(ctx->a, error) || !conf_to_running(ctx->b, error))
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(walk); i++) {
		g_autofree gchar *key = g_strdup_printf("a_%s", conf_state_abbrev(walk[i]));
		g_autoptr(MigdDataFd) fd = NULL;

		if (i > 0 &&
		    !migd_device_transition(ctx->a, walk[i], MIGD_STATE_ERROR, &fd, NULL, error))
			return FALSE;
		if (fd != NULL)
			fd_save = g_steal_pointer(&fd);
		if (!conf_data_size_in(run, ctx->a, key, MTTY2_DATA_SIZE, error))
			return FALSE;
	}
	if (!migd_device_transition(ctx->b, MIGD_STATE_RESUMING, MIGD_STATE_ERROR, &fd_resume, NULL,
				    error))
		return FALSE;
	if (!conf_data_size_in(run, ctx->b, "b_RE", MTTY2_DATA_SIZE, error))
		return FALSE;
	if (!conf_data_size_in(run, ctx->c, "c_RU", MTTY1_DATA_SIZE, error))
		return FALSE;
	return conf_to_running(ctx->a, error) && conf_to_running(ctx->b, error);
}
