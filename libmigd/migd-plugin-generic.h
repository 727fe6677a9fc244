/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-plugin.h"

G_BEGIN_DECLS

#define MIGD_PLUGIN_GENERIC_NAME "generic"

/* the built-in plugin: any device that follows the uAPI, with no driver rules */
#define MIGD_TYPE_PLUGIN_GENERIC (migd_plugin_generic_get_type())
G_DECLARE_FINAL_TYPE(MigdPluginGeneric, migd_plugin_generic, MIGD, PLUGIN_GENERIC, MigdPlugin)

MigdPlugin *migd_plugin_generic_new(void);

G_END_DECLS
