/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "migd-manager.h"

G_BEGIN_DECLS

/*
 * The a{sv} options of org.vfiomigd.Migd1.Manager methods into the service's C
 * options. Unknown keys and wrong types are refused rather than ignored: a
 * misspelt TLS option must not silently fall back to something weaker.
 */

/*
 * Listen: the TLS options, the listener's limits and "start" (s, into @start,
 * left alone without the key)
 */
gboolean migd_dbus_options_parse_listen(GVariant *options, MigdTransportConfig *transport,
					MigdStartMode *start, GError **error);
/*
 * Migrate: TLS, peer-name, downtime-ms, max-rounds, timeout-s, iova-ranges,
 * dirty-fallback, switchover, handover-timeout, migration-id (checked)
 */
gboolean migd_dbus_options_parse_migrate(GVariant *options, MigdMigrateOptions *migrate,
					 GError **error);
/* Expect: "start" (s; default auto) and "timeout" (u seconds; default 0: none) */
gboolean migd_dbus_options_parse_expect(GVariant *options, MigdStartMode *start, guint *timeout_s,
					GError **error);
/* AddDevice's "iova-ranges" of @device (a(tt)): MigdIovaRange, NULL without the key */
gboolean migd_dbus_options_get_iova_ranges(GVariant *options, MigdDevice *device, GArray **ranges,
					   GError **error);
/*
 * AttachDevice's "address" (s): which device the fd is (PCI address, mdev
 * UUID or sysfs path), borrowed from @options; NULL without the key. Refused
 * on AddDevice (@with_fd FALSE), empty or of another type.
 */
gboolean migd_dbus_options_get_address(GVariant *options, gboolean with_fd, const gchar **address,
				       GError **error);

G_END_DECLS
