/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Ends a cmocka test that cannot run here when @cond holds, saying why on a TAP comment
 * line (cmocka.h is the caller's). Not cmocka's skip(): 1.1.5 prints it as
 * "not ok N # SKIP", which meson's TAP parser counts as a failure, and its longjmp jumps
 * over g_autoptr cleanups.
 */
#define MIGD_TEST_SKIP_IF(cond, why)                                                               \
	do {                                                                                       \
		if (cond) {                                                                        \
			print_message("# skipped: %s\n", why);                                     \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* removes a temporary directory and everything below it */
void migd_test_rm_rf(const gchar *path);

/*
 * the bits set in @n_words words of a bitmap (its dirty pages); inline, for
 * the conformance program too, which is no cmocka test
 */
static inline guint64
migd_test_bitmap_weight(const guint64 *bitmap, gsize n_words)
{
	guint64 n = 0;
	for (gsize i = 0; i < n_words; i++)
		n += (guint64)__builtin_popcountll(bitmap[i]);
	return n;
}

/* ---- the default main context ---- */

/* a GSourceFunc that sets the gboolean at @data */
gboolean migd_test_flag_set(gpointer data);
/* iterates for @ms of wall time (a bounded window in which nothing may happen) */
void migd_test_spin_ms(guint ms);
/* iterates until @done(@data) holds or @timeout_ms passed; returns @done(@data) */
gboolean migd_test_wait_until(gboolean (*done)(gpointer), gpointer data, guint timeout_ms);
/* the same, until *@counter >= @want */
gboolean migd_test_wait_count(const gint *counter, gint want, guint timeout_ms);

G_END_DECLS
