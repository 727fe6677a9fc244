/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The conformance cases: the same observations against the kernel's mtty
 * sample and the simulator's mtty profile. Each case fills a signature, a
 * canonical string of what it saw (states, errno names, sizes, bytes; never
 * fds, pointers, timings or seeds), so two backends that behave alike print
 * identical lines.
 */
#pragma once

#include "migd-device.h"
#include "migd-fsm.h"

G_BEGIN_DECLS

typedef struct {
	MigdDevice *a;	      /* mtty-2, the source */
	MigdDevice *b;	      /* mtty-2, the destination */
	MigdDevice *c;	      /* mtty-1 */
	GByteArray *stream_a; /* a good save of A, made on first use */
	gboolean sim;	      /* the simulator's devices */
	gboolean by_cdev;     /* (--open cdev) the devices are, or stand for, cdev opens */
	/*
	 * (--iommufd-driver) the kernel has CONFIG_IOMMUFD_DRIVER, so the core's
	 * iova_bitmap walk works and mtty's no-op DMA logging reports (nothing dirty)
	 */
	gboolean iommufd_driver;
} ConfCtx;

/* why the simulator skips a case that depends on CONFIG_IOMMUFD_DRIVER */
#define CONF_SKIP_IOMMUFD_DRIVER                                                                   \
	"the simulator models a kernel without CONFIG_IOMMUFD_DRIVER (DMA logging cannot report)"

/* one case being run: its signature and the expectations it missed */
typedef struct {
	GString *sig;
	GPtrArray *failures;
	/* set by a case this backend cannot observe: printed as "ok K - name # SKIP <reason>" */
	const gchar *skip;
} ConfRun;

typedef gboolean (*ConfCaseFunc)(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);

typedef struct {
	const gchar *name;
	ConfCaseFunc func;
	gint arg;
} ConfCase;

/* the case table, NULL-terminated; names are unique */
const ConfCase *conf_cases_get(void);

/* ---- shared by the case files (conformance-util.c) ---- */

/* "key=value" appended to the signature, space separated */
void conf_sig(ConfRun *run, const gchar *fmt, ...) G_GNUC_PRINTF(2, 3);
/* records a missed expectation (the case fails, it goes on observing) */
void conf_fail(ConfRun *run, const gchar *fmt, ...) G_GNUC_PRINTF(2, 3);
void conf_expect_u64(ConfRun *run, const gchar *key, guint64 got, guint64 want);
/* the same, printed as 0x%02x (registers, flags) */
void conf_expect_hex(ConfRun *run, const gchar *key, guint64 got, guint64 want);
void conf_expect_str(ConfRun *run, const gchar *key, const gchar *got, const gchar *want);
/* @error NULL means success ("ok"); records the name and compares it to @want */
void conf_expect_err(ConfRun *run, const gchar *key, const GError *error, const gchar *want);

/* "ok", "EINVAL", "SESSION_ENDED(ENODEV)", "REFUSED_ARC", ... */
gchar *conf_error_name(const GError *error);
/* "ST", "RU", "SC", "RE", "RP", "PC", "PP", "ER" */
const gchar *conf_state_abbrev(MigdState state);

/*
 * The device's state (VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE); with a debugfs
 * root set, also the kernel's own record of it
 * (ROOT/vfio/<device name>/migration/state), which must agree
 */
gboolean conf_get_state(MigdDevice *dev, MigdState *state, GError **error);
void conf_set_debugfs_root(const gchar *root);
/* how many state reads debugfs confirmed */
guint conf_debugfs_reads_agreed(void);
/* back to RUNNING: a transition, or VFIO_DEVICE_RESET from RESUMING/ERROR or on failure */
gboolean conf_to_running(MigdDevice *dev, GError **error);
/* a whole STOP_COPY save of @dev from RUNNING, and back to RUNNING */
GByteArray *conf_save(MigdDevice *dev, GError **error);
/* reads until the temporary end (PRE_COPY) or the end (STOP_COPY) */
gboolean conf_read_all(MigdDataFd *fd, MigdState phase, GByteArray *out, MigdDataReadStatus *status,
		       GError **error);
/* RUNNING -> RESUMING, write all of @data, -> STOP -> RUNNING */
gboolean conf_resume(MigdDevice *dev, const guint8 *data, gsize len, GError **error);
GByteArray *conf_ctx_stream_a(ConfCtx *ctx, GError **error);

/* the 16550 of port @port (= BAR index) through the device's region */
gboolean conf_uart_write(MigdDevice *dev, guint port, guint reg, guint8 val, GError **error);
gboolean conf_uart_read(MigdDevice *dev, guint port, guint reg, guint8 *val, GError **error);
/* LCR 8N1 and the FIFO enabled and cleared, as a guest's driver starts */
gboolean conf_uart_init(MigdDevice *dev, guint port, GError **error);
gboolean conf_uart_send(MigdDevice *dev, guint port, const gchar *text, GError **error);
/* pops bytes while LSR has data ready (at most @max); returns them as text */
gchar *conf_uart_drain(MigdDevice *dev, guint port, guint max, GError **error);

#define CONF_UART_RBR 0
#define CONF_UART_THR 0
#define CONF_UART_IER 1
#define CONF_UART_FCR 2
#define CONF_UART_LCR 3
#define CONF_UART_LSR 5
#define CONF_UART_SCR 7

/* the case files */
gboolean conf_case_feature_probe(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_fsm_walk(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_hang_arcs(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_precopy(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_save_resume_uart(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_dma_logging(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_dirty_fallback(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_data_size_states(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_corrupted(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_mismatched(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_short_stream(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_beyond_size(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_enodev(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_set_failure_recovery(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_reset_precopy(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_re_resume(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_resume_after_efault(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);
gboolean conf_case_engine_migrate_uart(ConfCtx *ctx, ConfRun *run, gint arg, GError **error);

G_END_DECLS
