/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The generic plugin: built into the daemon, it serves any device whose driver
 * has no plugin, with the base class's uAPI-only defaults.
 */
#include "config.h"

#include "migd-plugin-generic.h"

struct _MigdPluginGeneric {
	MigdPlugin parent_instance;
};

G_DEFINE_TYPE(MigdPluginGeneric, migd_plugin_generic, MIGD_TYPE_PLUGIN)

static guint
migd_plugin_generic_match(MigdPlugin *plugin, MigdDevice *device,
			  const MigdDeviceIdentity *identity)
{
	return MIGD_PLUGIN_SCORE_GENERIC;
}

static void
migd_plugin_generic_init(MigdPluginGeneric *self)
{
}

static void
migd_plugin_generic_class_init(MigdPluginGenericClass *klass)
{
	MIGD_PLUGIN_CLASS(klass)->match = migd_plugin_generic_match;
}

MigdPlugin *
migd_plugin_generic_new(void)
{
	return g_object_new(MIGD_TYPE_PLUGIN_GENERIC, "name", MIGD_PLUGIN_GENERIC_NAME, NULL);
}
