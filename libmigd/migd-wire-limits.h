/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every number the wire protocol depends on, defined here once. docs/protocol.md
 * and docs/ABI/testing/wire-protocol describe them; change all three together.
 */
#pragma once

#include <glib.h>

/* protocol versions this build speaks; a peer's [min,max] must overlap */
#define MIGD_WIRE_PROTOCOL_VERSION_MIN 1
#define MIGD_WIRE_PROTOCOL_VERSION_MAX 1

/* capability bits of Hello.capabilities; unknown bits from a peer are ignored */
#define MIGD_WIRE_CAP_PRECOPY (G_GUINT64_CONSTANT(1) << 0) /* PRECOPY chunks + progress */
#define MIGD_WIRE_CAP_SWITCHOVER_ACK                                                               \
	(G_GUINT64_CONSTANT(1) << 1) /* destination sends SwitchoverAck */
#define MIGD_WIRE_CAP_DIRTY_BITMAP (G_GUINT64_CONSTANT(1) << 2) /* DirtyBitmapChunk */
#define MIGD_WIRE_CAP_KEEPALIVE	   (G_GUINT64_CONSTANT(1) << 3) /* Keepalive frames */
/* StateChunk.crc32c and CommitDevice.crc32c: the destination checks both */
#define MIGD_WIRE_CAP_CHECKSUM (G_GUINT64_CONSTANT(1) << 4)
/*
 * after an ok CommitResult the connection stays open: the destination asks
 * (StartRequest) before its devices run, the source grants (StartGrant) or,
 * having rolled back, refuses (Abort); docs/protocol.md, "Handover"
 */
#define MIGD_WIRE_CAP_HANDOVER (G_GUINT64_CONSTANT(1) << 5)
#define MIGD_WIRE_CAPS_KNOWN                                                                       \
	(MIGD_WIRE_CAP_PRECOPY | MIGD_WIRE_CAP_SWITCHOVER_ACK | MIGD_WIRE_CAP_DIRTY_BITMAP |       \
	 MIGD_WIRE_CAP_KEEPALIVE | MIGD_WIRE_CAP_CHECKSUM | MIGD_WIRE_CAP_HANDOVER)

/* the length prefix is a protobuf base-128 varint of at most this many bytes */
#define MIGD_WIRE_VARINT_MAX_BYTES 10

/*
 * Largest packed Frame (without its length prefix). Checked against the prefix
 * before anything is allocated for the frame.
 */
#define MIGD_WIRE_MAX_FRAME_SIZE (16u * 1024u * 1024u)

/* StateChunk.data: 8 MiB is mlx5's own chunk size (MAX_CHUNK_SIZE SZ_8M) */
#define MIGD_WIRE_MAX_CHUNK_PAYLOAD (8u * 1024u * 1024u)

/* DirtyBitmapChunk.data: 8 MiB of bits covers 256 GiB of 4 KiB pages */
#define MIGD_WIRE_MAX_BITMAP_BYTES (8u * 1024u * 1024u)
/* DirtyBitmapChunk.n_pages: a RAW chunk of 8 MiB (MIGD_DIRTY_MAX_CHUNK_PAGES) */
#define MIGD_WIRE_MAX_BITMAP_PAGES ((guint64)MIGD_WIRE_MAX_BITMAP_BYTES * 8u)
/* windows (mapped IOVA ranges) per device */
#define MIGD_WIRE_MAX_DIRTY_WINDOWS 4096u
/*
 * The destination keeps the accumulated bitmap of every window: at most this
 * many pages per device (2^29 pages = 2 TiB of 4 KiB pages, a 64 MiB bitmap),
 * checked before it allocates a window.
 */
#define MIGD_WIRE_MAX_DIRTY_PAGES_PER_DEVICE (G_GUINT64_CONSTANT(1) << 29)

/* DeviceDescriptor.plugin_data */
#define MIGD_WIRE_MAX_PLUGIN_DATA (64u * 1024u)

/* devices in one session (Hello.device_count) */
#define MIGD_WIRE_MAX_DEVICES 256u

/* string fields, in bytes, without the terminating NUL; all must be UTF-8 */
#define MIGD_WIRE_MAX_HOST_IDENTITY_LEN 255u
#define MIGD_WIRE_MAX_SESSION_ID_LEN	64u /* and at least 1; [A-Za-z0-9._-] only */
/* Hello.migration_id, Expect's and Migrate's: a VM's UUID or name fits */
#define MIGD_WIRE_MAX_MIGRATION_ID_LEN 128u /* and at least 1; [A-Za-z0-9._:-] only */
#define MIGD_WIRE_MAX_DRIVER_NAME_LEN  64u  /* and at least 1 */
#define MIGD_WIRE_MAX_MESSAGE_LEN      1024u

/*
 * What a receiver tolerates from a peer, so that nobody can hold a destination:
 * Hello and every DeviceOffer must arrive within the handshake deadline of the
 * connection's start; a frame whose first byte (of its length prefix) arrived
 * must be complete within the frame deadline; silence between frames ends the
 * connection after MIGD_CONNECTION_IDLE_TIMEOUT_S (progress counts whole frames,
 * never bytes). Defaults; the listener's configuration may change them.
 */
#define MIGD_WIRE_HELLO_TIMEOUT_MS_DEFAULT 10000u
#define MIGD_WIRE_FRAME_TIMEOUT_MS_DEFAULT 30000u
/* per listener: TLS handshakes in progress, and connections waiting for Hello, each */
#define MIGD_WIRE_MAX_PENDING_PEERS_DEFAULT 16u
/* bytes held by partially received frames, across every connection of the daemon */
#define MIGD_WIRE_PARTIAL_FRAME_BUDGET_DEFAULT (64u * 1024u * 1024u)

/*
 * The unpacker may allocate at most this much for one frame: the frame's own
 * length times MIGD_WIRE_UNPACK_BUDGET_FACTOR plus MIGD_WIRE_UNPACK_BUDGET_SLACK.
 * A well-formed frame needs about its length plus a few hundred bytes of structs;
 * the bound stops a frame of many tiny unknown fields from amplifying 16 MiB of
 * input into hundreds of MiB of bookkeeping.
 */
#define MIGD_WIRE_UNPACK_BUDGET_FACTOR 2u
#define MIGD_WIRE_UNPACK_BUDGET_SLACK  (64u * 1024u)

/* the chunk payload plus its few header bytes must fit in a frame */
G_STATIC_ASSERT(MIGD_WIRE_MAX_CHUNK_PAYLOAD + 64u <= MIGD_WIRE_MAX_FRAME_SIZE);
G_STATIC_ASSERT(MIGD_WIRE_MAX_BITMAP_BYTES + 64u <= MIGD_WIRE_MAX_FRAME_SIZE);
G_STATIC_ASSERT(MIGD_WIRE_PROTOCOL_VERSION_MIN <= MIGD_WIRE_PROTOCOL_VERSION_MAX);
/* the daemon-wide budget must hold at least one largest frame */
G_STATIC_ASSERT(MIGD_WIRE_PARTIAL_FRAME_BUDGET_DEFAULT >= MIGD_WIRE_MAX_FRAME_SIZE);
