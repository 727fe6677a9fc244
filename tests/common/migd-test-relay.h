/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A man in the middle for plain connections between two daemons: every
 * connection accepted on its listening address is forwarded to @upstream
 * (tcp:HOST:PORT or unix:PATH). In the source -> destination direction it reads
 * frames and, when @flip_device >= 0, flips (XOR 0xff) the byte at @flip_offset
 * of that device's state stream (counted over its StateChunks' data, every
 * phase) and re-encodes the frame, so the frame stays valid and only the state
 * is wrong, as a faulty NIC or a memory error on a middlebox would leave it.
 * Threads of its own; any main context may run meanwhile.
 */
typedef struct _MigdTestRelay MigdTestRelay;

/* @listen: tcp:HOST:PORT (port 0 picks one) or unix:PATH */
MigdTestRelay *migd_test_relay_new(const gchar *listen, const gchar *upstream, gint flip_device,
				   guint64 flip_offset, GError **error);
/*
 * Also rewrites the flipped chunk's own CRC32C to match (a middlebox that
 * re-frames): only the whole-stream checksum can tell. Before any connection.
 */
void migd_test_relay_set_fix_chunk_crc(MigdTestRelay *self, gboolean fix);
/* where it listens, e.g. tcp:127.0.0.1:40123 */
const gchar *migd_test_relay_get_address(MigdTestRelay *self);
/* bytes flipped so far (0 or 1) */
guint migd_test_relay_get_flipped(MigdTestRelay *self);
/* the StateChunk frames forwarded so far */
guint64 migd_test_relay_get_chunks(MigdTestRelay *self);
/* stops listening, cuts every connection, joins the threads */
void migd_test_relay_free(MigdTestRelay *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MigdTestRelay, migd_test_relay_free)

G_END_DECLS
