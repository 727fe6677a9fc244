/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Sample frames for the wire protocol tests.
 */
#pragma once

#include "migd-wire-frame.h"

/* every valid MessageType, in order */
extern const MigdWireMsgType wire_test_types[];
extern const gsize wire_test_n_types;

/*
 * A valid frame of @type with every optional field set; @seed varies the
 * contents. Built from g_malloc'd parts, so migd_wire_frame_free frees it.
 */
MigdWireFrame *wire_test_sample(MigdWireMsgType type, guint seed);

/* prefix + packed @msg, without any validation: for building invalid frames */
GByteArray *wire_test_pack_raw(const ProtobufCMessage *msg);
/* prefix + @len raw bytes */
GByteArray *wire_test_prefix_raw(const guint8 *data, gsize len);
