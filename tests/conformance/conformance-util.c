/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Helpers of the conformance cases: signatures, error names, and the few
 * device moves every case needs (back to RUNNING, a whole save, a resume, the
 * UART through the device region). All of it goes through MigdDevice.
 */
#include "config.h"

#include <errno.h>

#include "conformance-cases.h"
#include "migd-error.h"

void
conf_sig(ConfRun *run, const gchar *fmt, ...)
{
	va_list args;

	if (run->sig->len > 0)
		g_string_append_c(run->sig, ' ');
	va_start(args, fmt);
	g_string_append_vprintf(run->sig, fmt, args);
	va_end(args);
}

void
conf_fail(ConfRun *run, const gchar *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	g_ptr_array_add(run->failures, g_strdup_vprintf(fmt, args));
	va_end(args);
}

void
conf_expect_u64(ConfRun *run, const gchar *key, guint64 got, guint64 want)
{
	conf_sig(run, "%s=%" G_GUINT64_FORMAT, key, got);
	if (got != want)
		conf_fail(run, "%s: got %" G_GUINT64_FORMAT ", expected %" G_GUINT64_FORMAT, key,
			  got, want);
}

void
conf_expect_hex(ConfRun *run, const gchar *key, guint64 got, guint64 want)
{
	conf_sig(run, "%s=0x%02" G_GINT64_MODIFIER "x", key, got);
	if (got != want)
		conf_fail(run,
			  "%s: got 0x%02" G_GINT64_MODIFIER "x, expected 0x%02" G_GINT64_MODIFIER
			  "x",
			  key, got, want);
}

void
conf_expect_str(ConfRun *run, const gchar *key, const gchar *got, const gchar *want)
{
	conf_sig(run, "%s=%s", key, got);
	if (g_strcmp0(got, want) != 0)
		conf_fail(run, "%s: got %s, expected %s", key, got, want);
}

void
conf_expect_err(ConfRun *run, const gchar *key, const GError *error, const gchar *want)
{
	g_autofree gchar *name = conf_error_name(error);

	conf_sig(run, "%s=%s", key, name);
	if (g_strcmp0(name, want) != 0)
		conf_fail(run, "%s: got %s, expected %s%s%s", key, name, want,
			  error != NULL ? ": " : "", error != NULL ? error->message : "");
}

static const gchar *
conf_errno_name(gint errnum)
{
	switch (errnum) {
	case EPERM:
		return "EPERM";
	case ENOENT:
		return "ENOENT";
	case EIO:
		return "EIO";
	case EBADF:
		return "EBADF";
	case EAGAIN:
		return "EAGAIN";
	case ENOMEM:
		return "ENOMEM";
	case EFAULT:
		return "EFAULT";
	case EBUSY:
		return "EBUSY";
	case ENODEV:
		return "ENODEV";
	case EINVAL:
		return "EINVAL";
	case ENOSPC:
		return "ENOSPC";
	case ESPIPE:
		return "ESPIPE";
	case E2BIG:
		return "E2BIG";
	case ENOTTY:
		return "ENOTTY";
	case ENOMSG:
		return "ENOMSG";
	case EOVERFLOW:
		return "EOVERFLOW";
	case EOPNOTSUPP:
		return "EOPNOTSUPP";
	default:
		return NULL;
	}
}

gchar *
conf_error_name(const GError *error)
{
	static const gchar *migd_names[] = {
	    [MIGD_ERROR_FAILED] = "FAILED",
	    [MIGD_ERROR_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
	    [MIGD_ERROR_NOT_SUPPORTED] = "NOT_SUPPORTED",
	    [MIGD_ERROR_REFUSED_ARC] = "REFUSED_ARC",
	    [MIGD_ERROR_DEVICE_GONE] = "DEVICE_GONE(ENODEV)",
	    [MIGD_ERROR_SESSION_ENDED] = "SESSION_ENDED(ENODEV)",
	    [MIGD_ERROR_DEVICE_ERROR] = "DEVICE_ERROR",
	    [MIGD_ERROR_RECOVERY_FAILED] = "RECOVERY_FAILED",
	    [MIGD_ERROR_BUSY] = "BUSY",
	    [MIGD_ERROR_TIMED_OUT] = "TIMED_OUT",
	    [MIGD_ERROR_CANCELLED] = "CANCELLED",
	    [MIGD_ERROR_PROTOCOL] = "PROTOCOL",
	};

	if (error == NULL)
		return g_strdup("ok");
	if (error->domain == MIGD_KERNEL_ERROR) {
		const gchar *name = conf_errno_name(error->code);
		return name != NULL ? g_strdup(name) : g_strdup_printf("E#%d", error->code);
	}
	if (error->domain == MIGD_ERROR && error->code >= 0 &&
	    error->code < (gint)G_N_ELEMENTS(migd_names) && migd_names[error->code] != NULL)
		return g_strdup(migd_names[error->code]);
	return g_strdup_printf("%s#%d", g_quark_to_string(error->domain), error->code);
}

const gchar *
conf_state_abbrev(MigdState state)
{
	switch (state) {
	case MIGD_STATE_STOP:
		return "ST";
	case MIGD_STATE_RUNNING:
		return "RU";
	case MIGD_STATE_STOP_COPY:
		return "SC";
	case MIGD_STATE_RESUMING:
		return "RE";
	case MIGD_STATE_RUNNING_P2P:
		return "RP";
	case MIGD_STATE_PRE_COPY:
		return "PC";
	case MIGD_STATE_PRE_COPY_P2P:
		return "PP";
	case MIGD_STATE_ERROR:
		return "ER";
	default:
		return "??";
	}
}

/* set by --debugfs: every state read is checked against the kernel's own record */
static gchar *conf_debugfs_root;
static guint conf_debugfs_reads;

void
conf_set_debugfs_root(const gchar *root)
{
	g_free(conf_debugfs_root);
	conf_debugfs_root = g_strdup(root);
}

guint
conf_debugfs_reads_agreed(void)
{
	return conf_debugfs_reads;
}

/* DEBUGFS/vfio/<device>/migration/state (CONFIG_VFIO_DEBUGFS) must say @state too */
static gboolean
conf_check_debugfs(MigdDevice *dev, MigdState state, GError **error)
{
	g_autofree gchar *path = g_build_filename(
	    conf_debugfs_root, "vfio", migd_device_get_name(dev), "migration", "state", NULL);
	g_autofree gchar *text = NULL;
	MigdState recorded;

	if (!g_file_get_contents(path, &text, NULL, error)) {
		g_prefix_error(error, "the kernel's record of the state (VFIO debugfs): ");
		return FALSE;
	}
	g_strstrip(text);
	if (!migd_state_from_string(text, &recorded, NULL) || recorded != state) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED,
			    "%s: the device reads back %s, the kernel's debugfs says '%s' (%s)",
			    migd_device_get_name(dev), migd_state_to_string(state), text, path);
		return FALSE;
	}
	conf_debugfs_reads++;
	return TRUE;
}

gboolean
conf_get_state(MigdDevice *dev, MigdState *state, GError **error)
{
	if (!migd_device_get_state(dev, state, error))
		return FALSE;
	return conf_debugfs_root == NULL || conf_check_debugfs(dev, *state, error);
}

gboolean
conf_to_running(MigdDevice *dev, GError **error)
{
	MigdState state = MIGD_STATE_ERROR;
	g_autoptr(GError) error_local = NULL;

	if (!conf_get_state(dev, &state, error))
		return FALSE;
	if (state == MIGD_STATE_RUNNING)
		return TRUE;
	/* RESUMING -> STOP would load whatever was written: a reset aborts it (uAPI) */
	if (state != MIGD_STATE_RESUMING && state != MIGD_STATE_ERROR &&
	    migd_device_transition(dev, MIGD_STATE_RUNNING, MIGD_STATE_ERROR, NULL, NULL,
				   &error_local))
		return TRUE;
	if (!migd_device_reset(dev, error))
		return FALSE;
	if (!conf_get_state(dev, &state, error))
		return FALSE;
	if (state != MIGD_STATE_RUNNING) {
		g_set_error(error, MIGD_ERROR, MIGD_ERROR_FAILED, "%s: %s after reset",
			    migd_device_get_name(dev), migd_state_to_string(state));
		return FALSE;
	}
	return TRUE;
}

gboolean
conf_read_all(MigdDataFd *fd, MigdState phase, GByteArray *out, MigdDataReadStatus *status,
	      GError **error)
{
	guint8 buf[4096];

	for (;;) {
		gsize n = 0;
		if (!migd_data_fd_read_chunk(fd, phase, buf, sizeof(buf), &n, status, NULL, error))
			return FALSE;
		if (*status != MIGD_DATA_READ_DATA)
			return TRUE;
		g_byte_array_append(out, buf, (guint)n);
	}
}

GByteArray *
conf_save(MigdDevice *dev, GError **error)
{
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(MigdDataFd) fd = NULL;
	MigdDataReadStatus status = MIGD_DATA_READ_DATA;

	if (!conf_to_running(dev, error))
		return NULL;
	if (!migd_device_transition(dev, MIGD_STATE_STOP_COPY, MIGD_STATE_ERROR, &fd, NULL, error))
		return NULL;
	if (!conf_read_all(fd, MIGD_STATE_STOP_COPY, stream, &status, error))
		return NULL;
	if (!migd_device_transition(dev, MIGD_STATE_STOP, MIGD_STATE_ERROR, NULL, NULL, error))
		return NULL;
	if (!conf_to_running(dev, error))
		return NULL;
	return g_steal_pointer(&stream);
}

gboolean
conf_resume(MigdDevice *dev, const guint8 *data, gsize len, GError **error)
{
	g_autoptr(MigdDataFd) fd = NULL;

	if (!conf_to_running(dev, error))
		return FALSE;
	if (!migd_device_transition(dev, MIGD_STATE_RESUMING, MIGD_STATE_ERROR, &fd, NULL, error))
		return FALSE;
	if (!migd_data_fd_write_all(fd, data, len, NULL, error))
		return FALSE;
	if (!migd_device_transition(dev, MIGD_STATE_STOP, MIGD_STATE_ERROR, NULL, NULL, error))
		return FALSE;
	return migd_device_transition(dev, MIGD_STATE_RUNNING, MIGD_STATE_ERROR, NULL, NULL, error);
}

GByteArray *
conf_ctx_stream_a(ConfCtx *ctx, GError **error)
{
	if (ctx->stream_a == NULL)
		ctx->stream_a = conf_save(ctx->a, error);
	return ctx->stream_a;
}

gboolean
conf_uart_write(MigdDevice *dev, guint port, guint reg, guint8 val, GError **error)
{
	return migd_device_region_write(dev, port, reg, &val, 1, error);
}

gboolean
conf_uart_read(MigdDevice *dev, guint port, guint reg, guint8 *val, GError **error)
{
	return migd_device_region_read(dev, port, reg, val, 1, error);
}

gboolean
conf_uart_init(MigdDevice *dev, guint port, GError **error)
{
	/* LCR first: a set DLAB would turn the next THR writes into divisor writes */
	if (!conf_uart_write(dev, port, CONF_UART_LCR, 0x03, error))
		return FALSE;
	if (!conf_uart_write(dev, port, CONF_UART_IER, 0x00, error))
		return FALSE;
	/* FIFO enable + clear receive and transmit */
	return conf_uart_write(dev, port, CONF_UART_FCR, 0x07, error);
}

gboolean
conf_uart_send(MigdDevice *dev, guint port, const gchar *text, GError **error)
{
	for (const gchar *p = text; *p != '\0'; p++) {
		if (!conf_uart_write(dev, port, CONF_UART_THR, (guint8)*p, error))
			return FALSE;
	}
	return TRUE;
}

gchar *
conf_uart_drain(MigdDevice *dev, guint port, guint max, GError **error)
{
	g_autoptr(GString) text = g_string_new(NULL);

	for (guint i = 0; i < max; i++) {
		guint8 lsr = 0;
		guint8 val = 0;

		if (!conf_uart_read(dev, port, CONF_UART_LSR, &lsr, error))
			return NULL;
		/* an empty FIFO's RBR is undefined on the real device: stop at !DR */
		if ((lsr & 0x01) == 0)
			break;
		if (!conf_uart_read(dev, port, CONF_UART_RBR, &val, error))
			return NULL;
		if (g_ascii_isprint(val))
			g_string_append_c(text, (gchar)val);
		else
			g_string_append_printf(text, "\\x%02x", val);
	}
	return g_string_free(g_steal_pointer(&text), FALSE);
}
