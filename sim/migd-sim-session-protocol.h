/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The wire format between a simulated data fd and its server thread: one
 * SOCK_SEQPACKET message per request (a write's payload follows the request)
 * and one per response (a read's payload follows the response). Host-endian:
 * both ends live in one process. Every field is validated by the server.
 */
typedef enum {
	MIGD_SIM_OP_READ = 1,
	MIGD_SIM_OP_WRITE = 2,
	MIGD_SIM_OP_PRECOPY_INFO = 3,
	MIGD_SIM_OP_POLL = 4,
} MigdSimOp;

#define MIGD_SIM_REQ_NONBLOCK 1u

/* host-endian: both ends are in this process */
typedef struct {
	guint32 op;
	guint32 flags;
	guint64 len;
	gint32 events;
	gint32 timeout_ms;
} MigdSimRequest;

typedef struct {
	gint32 err; /* 0 or a positive errno */
	guint32 pad;
	guint64 count; /* bytes read/written, or revents for poll */
	guint64 initial_bytes;
	guint64 dirty_bytes;
} MigdSimResponse;

G_END_DECLS
