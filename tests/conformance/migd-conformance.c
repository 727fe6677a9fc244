/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * migd-conformance: the same cases against the kernel's mtty sample
 *   migd-conformance --backend kernel --devices UUID_A,UUID_B,UUID_C
 *                    [--open group|cdev] [--debugfs /sys/kernel/debug] [--iommufd-driver]
 *   migd-conformance --backend sim [--open cdev] [--iommufd-driver]
 * (A, B: mtty-2, source and destination; C: mtty-1; opened through their IOMMU
 * group, or their device cdev bound to an iommufd; with --debugfs every state
 * read is checked against the kernel's VFIO debugfs record) and against the
 * simulator (with --open cdev as the twin of a cdev run: a case whose answers
 * depend on the way in, type1's IOMMU dirty tracking, skips; with
 * --iommufd-driver, for a kernel with CONFIG_IOMMUFD_DRIVER, the cases whose
 * DMA logging reports then skip too)
 *   migd-conformance --backend sim
 * TAP on stdout ("ok K - name # signature"), then "N passed, M failed"; the
 * exit status is 0 iff every case passed. Equal behaviour prints equal lines.
 */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

#include "conformance-cases.h"
#include "migd-kernel-device.h"
#include "migd-sim-device.h"

static gboolean conf_open_by_cdev;

static MigdDevice *
conf_open_kernel(const gchar *name, GError **error)
{
	MigdKernelDevice *dev = conf_open_by_cdev ? migd_kernel_device_open_cdev(name, error)
						  : migd_kernel_device_open_group(name, error);
	return dev != NULL ? MIGD_DEVICE(dev) : NULL;
}

static MigdDevice *
conf_open_sim(const gchar *spec, GError **error)
{
	MigdSimDevice *dev = migd_sim_device_new_from_string(spec, error);
	return dev != NULL ? MIGD_DEVICE(dev) : NULL;
}

static gboolean
conf_open_devices(ConfCtx *ctx, const gchar *backend, const gchar *devices, GError **error)
{
	if (g_strcmp0(backend, "sim") == 0) {
		/* the equivalent of two mtty-2 and one mtty-1 devices */
		ctx->a = conf_open_sim("mtty:ports=2,seed=1", error);
		if (ctx->a == NULL)
			return FALSE;
		ctx->b = conf_open_sim("mtty:ports=2,seed=2", error);
		if (ctx->b == NULL)
			return FALSE;
		ctx->c = conf_open_sim("mtty:ports=1,seed=3", error);
		return ctx->c != NULL;
	}
	if (g_strcmp0(backend, "kernel") == 0) {
		g_auto(GStrv) names = NULL;

		if (devices == NULL) {
			g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
					    "--backend kernel needs --devices A,B,C");
			return FALSE;
		}
		names = g_strsplit(devices, ",", -1);
		if (g_strv_length(names) != 3) {
			g_set_error(
			    error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--devices wants three devices (mtty-2, mtty-2, mtty-1), got '%s'",
			    devices);
			return FALSE;
		}
		ctx->a = conf_open_kernel(names[0], error);
		if (ctx->a == NULL)
			return FALSE;
		ctx->b = conf_open_kernel(names[1], error);
		if (ctx->b == NULL)
			return FALSE;
		ctx->c = conf_open_kernel(names[2], error);
		return ctx->c != NULL;
	}
	g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		    "unknown backend '%s' (kernel or sim)", backend != NULL ? backend : "");
	return FALSE;
}

static void
conf_ctx_clear(ConfCtx *ctx)
{
	g_clear_object(&ctx->a);
	g_clear_object(&ctx->b);
	g_clear_object(&ctx->c);
	g_clear_pointer(&ctx->stream_a, g_byte_array_unref);
}

/* one case: its TAP line and, on failure, the reasons as TAP diagnostics */
static gboolean
conf_run_case(ConfCtx *ctx, const ConfCase *cc, guint number)
{
	g_autoptr(GString) sig = g_string_new(NULL);
	g_autoptr(GPtrArray) failures = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	ConfRun run = {.sig = sig, .failures = failures};
	gboolean ok;

	if (!cc->func(ctx, &run, cc->arg, &error)) {
		g_autofree gchar *name = conf_error_name(error);
		/* an aborted case prints where it stopped, still without fds or pointers */
		conf_sig(&run, "aborted=%s", name);
		conf_fail(&run, "aborted: %s", error != NULL ? error->message : "(no error)");
	}
	if (run.skip != NULL && failures->len == 0) {
		g_print("ok %u - %s # SKIP %s\n", number, cc->name, run.skip);
		return TRUE;
	}
	ok = failures->len == 0;
	g_print("%s %u - %s # %s\n", ok ? "ok" : "not ok", number, cc->name, sig->str);
	for (guint i = 0; i < failures->len; i++)
		g_print("#   %s\n", (const gchar *)g_ptr_array_index(failures, i));
	return ok;
}

static void
conf_print_summary(gboolean to_stderr, guint passed, guint failed)
{
	if (to_stderr)
		g_printerr("%u passed, %u failed\n", passed, failed);
	else
		g_print("%u passed, %u failed\n", passed, failed);
}

int
main(int argc, char **argv)
{
	g_autofree gchar *backend = NULL;
	g_autofree gchar *devices = NULL;
	g_autofree gchar *open = NULL;
	g_autofree gchar *debugfs = NULL;
	gboolean iommufd_driver = FALSE;
	gboolean summary_stderr = FALSE;
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	const GOptionEntry entries[] = {
	    {"backend", 0, 0, G_OPTION_ARG_STRING, &backend, "kernel or sim", "BACKEND"},
	    {"devices", 0, 0, G_OPTION_ARG_STRING, &devices,
	     "kernel: the mdev UUIDs (or PCI addresses) of A,B,C", "A,B,C"},
	    {"open", 0, 0, G_OPTION_ARG_STRING, &open,
	     "kernel: open the devices through their IOMMU group (default) or device cdev",
	     "group|cdev"},
	    {"debugfs", 0, 0, G_OPTION_ARG_FILENAME, &debugfs,
	     "kernel: check every state read against DIR/vfio/<device>/migration/state", "DIR"},
	    {"iommufd-driver", 0, 0, G_OPTION_ARG_NONE, &iommufd_driver,
	     "the kernel has CONFIG_IOMMUFD_DRIVER: device DMA logging reports (sim: those "
	     "cases skip)",
	     NULL},
	    /* meson's TAP parser complains about the summary line, which is not TAP */
	    {"summary-stderr", 0, 0, G_OPTION_ARG_NONE, &summary_stderr,
	     "print the final 'N passed, M failed' line on stderr", NULL},
	    {NULL},
	};
	const ConfCase *cases = conf_cases_get();
	ConfCtx ctx = {0};
	guint n_cases = 0;
	guint passed = 0;

	setlocale(LC_ALL, "");
	/* recovery logs with g_message/g_warning: keep them off the TAP stream */
	g_log_writer_default_set_use_stderr(TRUE);
	context = g_option_context_new("- VFIO migration conformance (mtty)");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		g_printerr("%s\n", error->message);
		return EXIT_FAILURE;
	}
	if (open != NULL && g_strcmp0(open, "group") != 0 && g_strcmp0(open, "cdev") != 0) {
		g_printerr("--open takes group or cdev, not '%s'\n", open);
		return EXIT_FAILURE;
	}
	if (debugfs != NULL && g_strcmp0(backend, "kernel") != 0) {
		g_printerr("--debugfs goes with --backend kernel\n");
		return EXIT_FAILURE;
	}
	/* for the simulator: the twin of a kernel run by cdev (cases that differ skip) */
	conf_open_by_cdev = g_strcmp0(open, "cdev") == 0;
	ctx.by_cdev = conf_open_by_cdev;
	ctx.sim = g_strcmp0(backend, "sim") == 0;
	ctx.iommufd_driver = iommufd_driver;
	if (debugfs != NULL)
		conf_set_debugfs_root(debugfs);
	while (cases[n_cases].name != NULL)
		n_cases++;
	g_print("1..%u\n", n_cases);
	if (!conf_open_devices(&ctx, backend, devices, &error)) {
		g_print("Bail out! %s\n", error->message);
		conf_print_summary(summary_stderr, 0, n_cases);
		conf_ctx_clear(&ctx);
		return EXIT_FAILURE;
	}
	for (guint i = 0; i < n_cases; i++) {
		if (conf_run_case(&ctx, &cases[i], i + 1))
			passed++;
	}
	if (debugfs != NULL)
		g_print("# debugfs agreed with %u state reads\n", conf_debugfs_reads_agreed());
	conf_print_summary(summary_stderr, passed, n_cases - passed);
	conf_ctx_clear(&ctx);
	return passed == n_cases ? EXIT_SUCCESS : EXIT_FAILURE;
}
