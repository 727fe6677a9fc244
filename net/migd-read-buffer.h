/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A socket connection seen through a read buffer, for the TLS layer to sit on. GnuTLS
 * pulls each record with two reads of exactly what it needs (the 5-byte header, then the
 * body), each a recv(2) on the socket and, when it finds nothing, a poll: three system
 * calls per 16 KiB record. Under this buffer one recv takes whatever the socket holds, up
 * to the buffer's size, and records are cut from memory. Internal to the net layer.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* the buffer's size: a few records; what one recv on a busy loopback or LAN socket gives */
#define MIGD_READ_BUFFER_SIZE ((gsize)256 * 1024)

/*
 * A GIOStream over @base whose input is read through a buffer of @buffer_size bytes and is
 * pollable as the base's is; the output is the base's own; closing it closes @base.
 */
GIOStream *migd_read_buffer_stream_new(GIOStream *base, gsize buffer_size);
/* the stream under @stream if it is one of these, else NULL (transfer none) */
GIOStream *migd_read_buffer_stream_get_base(GIOStream *stream);

G_END_DECLS
