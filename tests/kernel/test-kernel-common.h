/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

/* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>

/* fails the test with the unexpected error's message, not just its code */
#define assert_error(err, dom, cd)                                                                 \
	do {                                                                                       \
		assert_non_null(err);                                                              \
		if ((err)->domain != (dom) || (err)->code != (cd)) {                               \
			print_error("unexpected error %s/%d: %s\n",                                \
				    g_quark_to_string((err)->domain), (err)->code,                 \
				    (err)->message);                                               \
			fail();                                                                    \
		}                                                                                  \
	} while (0)
