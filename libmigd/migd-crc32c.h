/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CRC32C (Castagnoli, iSCSI, RFC 3720), the end-to-end checksum of a device's
 * state stream (docs/protocol.md). Values are finished CRCs, as zlib's crc32():
 * migd_crc32c_update(migd_crc32c_update(0, a), b) is the CRC of a then b.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the CRC of @len bytes at @buf following the bytes whose CRC is @crc (0 to start) */
guint32 migd_crc32c_update(guint32 crc, gconstpointer buf, gsize len);

/* the CRC of A then B from CRC(A), CRC(B) and B's length, without B's bytes */
guint32 migd_crc32c_combine(guint32 crc_a, guint32 crc_b, guint64 len_b);

/* the implementations behind migd_crc32c_update(), for tests and the benchmark */
guint32 migd_crc32c_update_generic(guint32 crc, gconstpointer buf, gsize len);
/* the SSE4.2 crc32 instruction; only when migd_crc32c_have_hw() */
guint32 migd_crc32c_update_hw(guint32 crc, gconstpointer buf, gsize len);
gboolean migd_crc32c_have_hw(void);
/* the same with VPCLMULQDQ folding beside it; only when migd_crc32c_have_clmul() */
guint32 migd_crc32c_update_clmul(guint32 crc, gconstpointer buf, gsize len);
gboolean migd_crc32c_have_clmul(void);
/* the name of what migd_crc32c_update() uses here: "vpclmulqdq", "sse4.2" or "tables" */
const gchar *migd_crc32c_implementation(void);

G_END_DECLS
