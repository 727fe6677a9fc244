/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A module built for another plugin ABI: the daemon must refuse it after
 * reading the version and nothing else (its type function must never run).
 */
#include <gmodule.h>
#include <stdlib.h>

#include "migd-plugin.h"

static GType
migd_plugin_bad_abi_get_type(void)
{
	/* reaching this means the version was not checked first */
	abort();
}

G_MODULE_EXPORT const MigdPluginModule migd_plugin_module = {
    .abi_version = MIGD_PLUGIN_ABI_VERSION + 98,
    .name = "bad-abi",
    .get_type = migd_plugin_bad_abi_get_type,
};
