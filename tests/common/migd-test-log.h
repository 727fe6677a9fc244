/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Log messages captured for the tests that check what the operator is told.
 * GLib takes one structured-log writer per process, so a test binary installs
 * it once, before its group, and starts and stops capturing around each test.
 */
typedef enum {
	MIGD_TEST_LOG_QUIET = 0,
	/* messages, warnings and criticals on stderr too, as TAP comments */
	MIGD_TEST_LOG_ECHO = 1 << 0,
	/* criticals through GLib's own writer instead, not captured */
	MIGD_TEST_LOG_CRITICALS = 1 << 1,
} MigdTestLogFlags;

typedef enum {
	MIGD_TEST_LOG_WARNING,
	MIGD_TEST_LOG_OTHER, /* any level but a warning */
} MigdTestLogLevel;

void migd_test_log_init(MigdTestLogFlags flags);
/* cmocka setup and teardown: capture from an empty list; stop capturing */
int migd_test_log_setup(void **state);
int migd_test_log_teardown(void **state);
/* a cmocka test that captures (cmocka.h included first) */
#define migd_test_log_unit_test(f)                                                                 \
	cmocka_unit_test_setup_teardown(f, migd_test_log_setup, migd_test_log_teardown)
void migd_test_log_clear(void);
/* whether one captured message of @level contains each of the strings up to NULL */
gboolean migd_test_log_has(MigdTestLogLevel level, const gchar *needle, ...) G_GNUC_NULL_TERMINATED;
guint migd_test_log_count(MigdTestLogLevel level);

G_END_DECLS
