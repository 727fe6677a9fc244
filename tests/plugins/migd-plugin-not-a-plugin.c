/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A shared object in the plugin directory that is not a plugin at all.
 */
#include <gmodule.h>

G_MODULE_EXPORT int migd_not_a_plugin_answer(void);

G_MODULE_EXPORT int
migd_not_a_plugin_answer(void)
{
	return 42;
}
