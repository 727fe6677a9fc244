/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Conformance cases, part 2: bad streams on the destination, the end of a
 * session (ENODEV), recovery after a failed SET and reset, and the case table.
 * mtty_resume_write() checks the size before anything else (ENOMEM), the
 * header once, on the write that completes it (EFAULT), and mtty_load_state()
 * the length on RESUMING -> STOP (EINVAL).
 */
#include "config.h"

#include "conformance-cases.h"
#include "migd-error.h"

#define MTTY2_DATA_SIZE	 96
#define MTTY_HEADER_SIZE 24

/* GET, then the recovery policy's reset path; the report goes into the signature */
static gboolean
conf_recover_by_reset(ConfRun *run, MigdDevice *dev, const gchar *want_read_back, GError **error)
{
	g_auto(MigdRecoveryReport) report = {0};
	MigdState cur = MIGD_STATE_ERROR;

	if (!migd_device_recover(dev, MIGD_STATE_ERROR, &report, error))
		return FALSE;
	conf_expect_str(run, "read_back", migd_state_to_string(report.state_read_back),
			want_read_back);
	conf_expect_str(run, "recovery", migd_recovery_action_to_string(report.action), "reset");
	if (!conf_get_state(dev, &cur, error))
		return FALSE;
	conf_expect_str(run, "after", migd_state_to_string(cur), "RUNNING");
	return TRUE;
}

/* a good resume works afterwards: the destination is usable again */
static gboolean
conf_good_resume(ConfCtx *ctx, ConfRun *run, MigdDevice *dev, GError **error)
{
	GByteArray *stream = conf_ctx_stream_a(ctx, error);
	g_autoptr(GError) error_local = NULL;

	if (stream == NULL)
		return FALSE;
	conf_resume(dev, stream->data, stream->len, &error_local);
	conf_expect_err(run, "good_resume", error_local, "ok");
	return TRUE;
}

gboolean
conf_case_corrupted(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	GByteArray *stream = conf_ctx_stream_a(ctx, error);
	g_autofree guint8 *copy = NULL;
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error_write = NULL;

	if (stream == NULL || !conf_to_running(ctx->b, error))
		return FALSE;
	copy = g_memdup2(stream->data, stream->len);
	copy[0] ^= 0x01;
	if (!migd_device_transition(ctx->b, MIGD_STATE_RESUMING, MIGD_STATE_ERROR, &fd, NULL,
				    error))
		return FALSE;
	/* the magic is wrong: mtty's header check */
	migd_data_fd_write_all(fd, copy, stream->len, NULL, &error_write);
	conf_expect_err(run, "write", error_write, "EFAULT");
	if (error_write != NULL && error_write->message[0] == '\0')
		conf_fail(run, "the write error has no message");
	if (!conf_recover_by_reset(run, ctx->b, "RESUMING", error))
		return FALSE;
	return conf_good_resume(ctx, run, ctx->b, error);
}

/* a stream of mtty-2 into the mtty-1 device C */
gboolean
conf_case_mismatched(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	GByteArray *stream = conf_ctx_stream_a(ctx, error);
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error_all = NULL;
	g_autoptr(GError) error_header = NULL;

	if (stream == NULL || !conf_to_running(ctx->c, error))
		return FALSE;
	if (!migd_device_transition(ctx->c, MIGD_STATE_RESUMING, MIGD_STATE_ERROR, &fd, NULL,
				    error))
		return FALSE;
	/* 96 bytes do not fit in 60: refused before the header is looked at */
	migd_data_fd_write_all(fd, stream->data, stream->len, NULL, &error_all);
	conf_expect_err(run, "write_96", error_all, "ENOMEM");
	/* the header alone: nr_ports 2 != 1 */
	migd_data_fd_write_all(fd, stream->data, MTTY_HEADER_SIZE, NULL, &error_header);
	conf_expect_err(run, "write_header", error_header, "EFAULT");
	if (!conf_recover_by_reset(run, ctx->c, "RESUMING", error))
		return FALSE;
	return TRUE;
}

gboolean
conf_case_short_stream(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	GByteArray *stream = conf_ctx_stream_a(ctx, error);
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error_write = NULL;
	g_autoptr(GError) error_stop = NULL;
	MigdState cur = MIGD_STATE_ERROR;

	if (stream == NULL || !conf_to_running(ctx->b, error))
		return FALSE;
	if (!migd_device_transition(ctx->b, MIGD_STATE_RESUMING, MIGD_STATE_ERROR, &fd, NULL,
				    error))
		return FALSE;
	migd_data_fd_write_all(fd, stream->data, 50, NULL, &error_write);
	conf_expect_err(run, "write_50", error_write, "ok");
	/* mtty_load_state(): fewer bytes than the struct */
	migd_device_set_state_arc(ctx->b, MIGD_STATE_STOP, NULL, &error_stop);
	conf_expect_err(run, "stop", error_stop, "EINVAL");
	if (!conf_get_state(ctx->b, &cur, error))
		return FALSE;
	conf_expect_str(run, "state", migd_state_to_string(cur), "RESUMING");
	if (!conf_recover_by_reset(run, ctx->b, "RESUMING", error))
		return FALSE;
	return conf_good_resume(ctx, run, ctx->b, error);
}

gboolean
conf_case_beyond_size(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	GByteArray *stream = conf_ctx_stream_a(ctx, error);
	g_autofree guint8 *big = NULL;
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) e_97 = NULL;
	g_autoptr(GError) e_96 = NULL;
	g_autoptr(GError) e_more = NULL;
	g_autoptr(GError) e_stop = NULL;

	if (stream == NULL || !conf_to_running(ctx->b, error))
		return FALSE;
	big = g_malloc0(stream->len + 1);
	memcpy(big, stream->data, stream->len);
	if (!migd_device_transition(ctx->b, MIGD_STATE_RESUMING, MIGD_STATE_ERROR, &fd, NULL,
				    error))
		return FALSE;
	migd_data_fd_write_all(fd, big, stream->len + 1, NULL, &e_97);
	conf_expect_err(run, "write_97", e_97, "ENOMEM");
	/* nothing was taken: the whole stream still fits */
	migd_data_fd_write_all(fd, stream->data, stream->len, NULL, &e_96);
	conf_expect_err(run, "write_96", e_96, "ok");
	migd_data_fd_write_all(fd, big, 1, NULL, &e_more);
	conf_expect_err(run, "write_1_more", e_more, "ENOMEM");
	migd_device_transition(ctx->b, MIGD_STATE_RUNNING, MIGD_STATE_ERROR, NULL, NULL, &e_stop);
	conf_expect_err(run, "to_running", e_stop, "ok");
	return conf_to_running(ctx->b, error);
}

/* ENODEV once the FSM left the data transfer state, or after VFIO_DEVICE_RESET */
gboolean
conf_case_enodev(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	g_autoptr(MigdDataFd) fd1 = NULL;
	g_autoptr(MigdDataFd) fd2 = NULL;
	g_autoptr(MigdDataFd) fd3 = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(GError) e_left = NULL;
	g_autoptr(GError) e_reset = NULL;
	g_autoptr(GError) e_resume = NULL;
	MigdDataReadStatus status = MIGD_DATA_READ_DATA;
	MigdState cur = MIGD_STATE_ERROR;
	guint8 buf[16];
	gsize n = 0;

	if (!conf_to_running(ctx->a, error) || !conf_to_running(ctx->b, error))
		return FALSE;
	if (!migd_device_transition(ctx->a, MIGD_STATE_STOP_COPY, MIGD_STATE_ERROR, &fd1, NULL,
				    error))
		return FALSE;
	if (!conf_read_all(fd1, MIGD_STATE_STOP_COPY, stream, &status, error))
		return FALSE;
	conf_expect_u64(run, "read", stream->len, MTTY2_DATA_SIZE);
	if (!migd_device_set_state_arc(ctx->a, MIGD_STATE_STOP, NULL, error))
		return FALSE;
	migd_data_fd_read_chunk(fd1, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n, &status, NULL,
				&e_left);
	conf_expect_err(run, "read_after_stop", e_left, "SESSION_ENDED(ENODEV)");

	/* a fresh session, ended by a reset with nothing read */
	if (!migd_device_set_state_arc(ctx->a, MIGD_STATE_STOP_COPY, &fd2, error))
		return FALSE;
	if (!migd_device_reset(ctx->a, error) || !conf_get_state(ctx->a, &cur, error))
		return FALSE;
	conf_expect_str(run, "a_after_reset", migd_state_to_string(cur), "RUNNING");
	migd_data_fd_read_chunk(fd2, MIGD_STATE_STOP_COPY, buf, sizeof(buf), &n, &status, NULL,
				&e_reset);
	conf_expect_err(run, "read_after_reset", e_reset, "SESSION_ENDED(ENODEV)");

	/* the resume fd too */
	if (!migd_device_transition(ctx->b, MIGD_STATE_RESUMING, MIGD_STATE_ERROR, &fd3, NULL,
				    error))
		return FALSE;
	if (!migd_device_reset(ctx->b, error) || !conf_get_state(ctx->b, &cur, error))
		return FALSE;
	conf_expect_str(run, "b_after_reset", migd_state_to_string(cur), "RUNNING");
	migd_data_fd_write_all(fd3, buf, 1, NULL, &e_resume);
	conf_expect_err(run, "write_after_reset", e_resume, "SESSION_ENDED(ENODEV)");
	/* mtty_resume_write() checks the size before "disabled" (and the disable rewound it) */
	{
		g_autofree guint8 *big = g_malloc0(MTTY2_DATA_SIZE + 1);
		g_autoptr(GError) e_big = NULL;
		migd_data_fd_write_all(fd3, big, MTTY2_DATA_SIZE + 1, NULL, &e_big);
		conf_expect_err(run, "write_97_after_reset", e_big, "ENOMEM");
	}
	return TRUE;
}

/*
 * A SET that fails on the device: RESUMING -> STOP with a short stream. The
 * kernel echoes the requested state; the report must carry the one read back.
 */
gboolean
conf_case_set_failure_recovery(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	GByteArray *stream = conf_ctx_stream_a(ctx, error);
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) error_tr = NULL;
	g_auto(MigdRecoveryReport) report = {0};
	MigdState cur = MIGD_STATE_ERROR;

	if (stream == NULL || !conf_to_running(ctx->b, error))
		return FALSE;
	if (!migd_device_transition(ctx->b, MIGD_STATE_RESUMING, MIGD_STATE_ERROR, &fd, NULL,
				    error))
		return FALSE;
	if (!migd_data_fd_write_all(fd, stream->data, 40, NULL, error))
		return FALSE;
	/* RESUMING -> STOP fails, recovery tries STOP again, then resets */
	migd_device_transition(ctx->b, MIGD_STATE_RUNNING, MIGD_STATE_STOP, NULL, &report,
			       &error_tr);
	conf_expect_err(run, "transition", error_tr, "EINVAL");
	conf_sig(run, "failed_arc=%s>%s", conf_state_abbrev(report.failed_from),
		 conf_state_abbrev(report.failed_to));
	if (report.failed_from != MIGD_STATE_RESUMING || report.failed_to != MIGD_STATE_STOP)
		conf_fail(run, "the failed arc is not RESUMING -> STOP");
	conf_expect_str(run, "read_back", migd_state_to_string(report.state_read_back), "RESUMING");
	conf_expect_str(run, "recover_target", migd_state_to_string(report.recover_target), "STOP");
	conf_expect_str(run, "action", migd_recovery_action_to_string(report.action), "reset");
	conf_expect_str(run, "final", migd_state_to_string(report.final_state), "RUNNING");
	if (!conf_get_state(ctx->b, &cur, error))
		return FALSE;
	conf_expect_str(run, "state", migd_state_to_string(cur), "RUNNING");
	return TRUE;
}

gboolean
conf_case_reset_precopy(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	MigdDevice *dev = ctx->a;
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(MigdDataFd) fd2 = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(GError) e_read = NULL;
	g_autoptr(GError) e_info = NULL;
	g_autoptr(GError) e_info_old = NULL;
	MigdDataReadStatus status = MIGD_DATA_READ_DATA;
	MigdState cur = MIGD_STATE_ERROR;
	guint64 initial = 0, dirty = 0;
	guint8 buf[16];
	gsize n = 0;

	if (!conf_to_running(dev, error))
		return FALSE;
	if (!migd_device_set_state_arc(dev, MIGD_STATE_PRE_COPY, &fd, error))
		return FALSE;
	if (!conf_read_all(fd, MIGD_STATE_PRE_COPY, stream, &status, error))
		return FALSE;
	conf_expect_u64(run, "precopy_bytes", stream->len, MTTY_HEADER_SIZE);
	if (!migd_device_reset(dev, error) || !conf_get_state(dev, &cur, error))
		return FALSE;
	conf_expect_str(run, "after_reset", migd_state_to_string(cur), "RUNNING");
	migd_data_fd_read_chunk(fd, MIGD_STATE_PRE_COPY, buf, sizeof(buf), &n, &status, NULL,
				&e_read);
	conf_expect_err(run, "read", e_read, "SESSION_ENDED(ENODEV)");
	/* the driver checks the device state before the file: EINVAL in RUNNING */
	migd_data_fd_get_precopy_info(fd, &initial, &dirty, &e_info);
	conf_expect_err(run, "info_running", e_info, "EINVAL");

	/* a new session: the old file is disabled, the new one starts over */
	if (!migd_device_set_state_arc(dev, MIGD_STATE_PRE_COPY, &fd2, error))
		return FALSE;
	migd_data_fd_get_precopy_info(fd, &initial, &dirty, &e_info_old);
	conf_expect_err(run, "info_old_fd", e_info_old, "SESSION_ENDED(ENODEV)");
	if (!migd_data_fd_get_precopy_info(fd2, &initial, &dirty, error))
		return FALSE;
	conf_expect_u64(run, "initial_new", initial, MTTY_HEADER_SIZE);
	return conf_to_running(dev, error);
}

/* a save of A with @marker in port 0's FIFO */
static GByteArray *
conf_save_marked(MigdDevice *a, const gchar *marker, GError **error)
{
	if (!conf_to_running(a, error) || !conf_uart_init(a, 0, error) ||
	    !conf_uart_send(a, 0, marker, error))
		return NULL;
	return conf_save(a, error);
}

/* a second resume on the same destination after a completed one */
gboolean
conf_case_re_resume(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	g_autoptr(GByteArray) s1 = conf_save_marked(ctx->a, "one", error);
	g_autoptr(GByteArray) s2 = NULL;
	g_autofree gchar *rx1 = NULL;
	g_autofree gchar *rx2 = NULL;
	g_autoptr(GError) e1 = NULL;
	g_autoptr(GError) e2 = NULL;

	if (s1 == NULL)
		return FALSE;
	s2 = conf_save_marked(ctx->a, "two", error);
	if (s2 == NULL)
		return FALSE;
	conf_resume(ctx->b, s1->data, s1->len, &e1);
	conf_expect_err(run, "resume1", e1, "ok");
	rx1 = conf_uart_drain(ctx->b, 0, 16, error);
	if (rx1 == NULL)
		return FALSE;
	conf_expect_str(run, "rx1", rx1, "one");
	conf_resume(ctx->b, s2->data, s2->len, &e2);
	conf_expect_err(run, "resume2", e2, "ok");
	rx2 = conf_uart_drain(ctx->b, 0, 16, error);
	if (rx2 == NULL)
		return FALSE;
	conf_expect_str(run, "rx2", rx2, "two");
	return TRUE;
}

/*
 * mtty checks the header once: after an EFAULT the rest of the stream is
 * taken and RESUMING -> STOP loads it (the file kept the bad header's bytes).
 */
gboolean
conf_case_resume_after_efault(ConfCtx *ctx, ConfRun *run, gint arg, GError **error)
{
	GByteArray *stream = conf_ctx_stream_a(ctx, error);
	g_autofree guint8 *copy = NULL;
	g_autoptr(MigdDataFd) fd = NULL;
	g_autoptr(GError) e_header = NULL;
	g_autoptr(GError) e_rest = NULL;
	g_autoptr(GError) e_stop = NULL;

	if (stream == NULL || !conf_to_running(ctx->b, error))
		return FALSE;
	copy = g_memdup2(stream->data, stream->len);
	copy[16] ^= 0x03; /* nr_ports */
	if (!migd_device_transition(ctx->b, MIGD_STATE_RESUMING, MIGD_STATE_ERROR, &fd, NULL,
				    error))
		return FALSE;
	migd_data_fd_write_all(fd, copy, MTTY_HEADER_SIZE, NULL, &e_header);
	conf_expect_err(run, "write_header", e_header, "EFAULT");
	migd_data_fd_write_all(fd, copy + MTTY_HEADER_SIZE, stream->len - MTTY_HEADER_SIZE, NULL,
			       &e_rest);
	conf_expect_err(run, "write_rest", e_rest, "ok");
	migd_device_set_state_arc(ctx->b, MIGD_STATE_STOP, NULL, &e_stop);
	conf_expect_err(run, "stop", e_stop, "ok");
	return conf_to_running(ctx->b, error);
}

static const ConfCase conf_cases[] = {
    {"feature-probe", conf_case_feature_probe, 0},
    {"fsm-walk-from-STOP", conf_case_fsm_walk, MIGD_STATE_STOP},
    {"fsm-walk-from-RUNNING", conf_case_fsm_walk, MIGD_STATE_RUNNING},
    {"fsm-walk-from-STOP_COPY", conf_case_fsm_walk, MIGD_STATE_STOP_COPY},
    {"fsm-walk-from-RESUMING", conf_case_fsm_walk, MIGD_STATE_RESUMING},
    {"fsm-walk-from-RUNNING_P2P", conf_case_fsm_walk, MIGD_STATE_RUNNING_P2P},
    {"fsm-walk-from-PRE_COPY", conf_case_fsm_walk, MIGD_STATE_PRE_COPY},
    {"fsm-walk-from-PRE_COPY_P2P", conf_case_fsm_walk, MIGD_STATE_PRE_COPY_P2P},
    {"hang-arcs-refused", conf_case_hang_arcs, 0},
    {"precopy-info-and-temp-end", conf_case_precopy, 0},
    {"save-resume-uart-state", conf_case_save_resume_uart, 0},
    {"corrupted-stream", conf_case_corrupted, 0},
    {"mismatched-device", conf_case_mismatched, 0},
    {"short-stream", conf_case_short_stream, 0},
    {"write-beyond-size", conf_case_beyond_size, 0},
    {"enodev-after-session", conf_case_enodev, 0},
    {"set-failure-recovery", conf_case_set_failure_recovery, 0},
    {"dma-logging-noop", conf_case_dma_logging, 0},
    {"dirty-tracking-fallback", conf_case_dirty_fallback, 0},
    {"mig-data-size-states", conf_case_data_size_states, 0},
    {"reset-from-precopy", conf_case_reset_precopy, 0},
    {"re-resume", conf_case_re_resume, 0},
    {"resume-after-efault", conf_case_resume_after_efault, 0},
    {"engine-migrate-uart", conf_case_engine_migrate_uart, 0},
    {NULL, NULL, 0},
};

const ConfCase *
conf_cases_get(void)
{
	return conf_cases;
}
