/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Linked into every harness: a warning or a critical is a bug the fuzzer found (a failed
 * g_return_if_fail, an error set twice), so it aborts like a sanitizer report; messages and
 * debug output would only slow the run down, so they are dropped.
 */
#include "config.h"

#include <glib.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);

static void
migd_fuzz_log_handler(const gchar *log_domain, GLogLevelFlags log_level, const gchar *message,
		      gpointer user_data)
{
	if ((log_level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) == 0)
		return;
	g_log_default_handler(log_domain, log_level, message, user_data);
	/* GLib's own fatal path raises SIGTRAP, which libFuzzer does not catch */
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	g_log_set_default_handler(migd_fuzz_log_handler, NULL);
	return 0;
}
