/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "migd-test-util.h"

void
migd_test_rm_rf(const gchar *path)
{
	g_autofree gchar *cmd = g_strdup_printf("rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

gboolean
migd_test_flag_set(gpointer data)
{
	*(gboolean *)data = TRUE;
	return G_SOURCE_REMOVE;
}

void
migd_test_spin_ms(guint ms)
{
	gboolean expired = FALSE;

	g_timeout_add(ms, migd_test_flag_set, &expired);
	while (!expired)
		g_main_context_iteration(NULL, TRUE);
}

gboolean
migd_test_wait_until(gboolean (*done)(gpointer), gpointer data, guint timeout_ms)
{
	gboolean expired = FALSE;
	guint id = g_timeout_add(timeout_ms, migd_test_flag_set, &expired);

	while (!done(data) && !expired)
		g_main_context_iteration(NULL, TRUE);
	if (!expired)
		g_source_remove(id);
	return done(data);
}

typedef struct {
	const gint *counter;
	gint want;
} MigdTestCount;

static gboolean
migd_test_count_reached(gpointer data)
{
	MigdTestCount *count = data;
	return *count->counter >= count->want;
}

gboolean
migd_test_wait_count(const gint *counter, gint want, guint timeout_ms)
{
	MigdTestCount count = {counter, want};
	return migd_test_wait_until(migd_test_count_reached, &count, timeout_ms);
}
