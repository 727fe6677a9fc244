/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer harness for the wire decoder: `make fuzz`, or by hand as docs/fuzzing.md says
 * (-Dfuzzing=true instruments the libraries, without which libFuzzer sees only this file).
 * The first input byte picks the slice size, the rest is the stream. Every frame
 * that decodes must also pass the session checks or fail them cleanly, and must
 * re-encode.
 */
#include "config.h"

#include <stdint.h>

#include "migd-error.h"
#include "migd-wire-session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(MigdWireDecoder) dec = migd_wire_decoder_new();
	g_autoptr(MigdWireSession) session = migd_wire_session_new(MIGD_WIRE_ROLE_DESTINATION);
	gsize slice;

	if (size == 0)
		return 0;
	slice = (gsize)data[0] + 1;
	data++;
	size--;
	while (size > 0) {
		gsize n = MIN(size, slice);

		if (!migd_wire_decoder_feed(dec, data, n, NULL))
			return 0;
		data += n;
		size -= n;
		for (;;) {
			g_autoptr(GError) error = NULL;
			g_autoptr(MigdWireFrame) frame = migd_wire_decoder_next(dec, &error);
			g_autoptr(GByteArray) out = NULL;

			if (frame == NULL) {
				if (error != NULL)
					g_assert(g_error_matches(error, MIGD_ERROR,
								 MIGD_ERROR_PROTOCOL));
				break;
			}
			out = g_byte_array_new();
			g_assert(migd_wire_frame_append(frame, out, NULL));
			(void)migd_wire_session_check_received(session, frame, NULL);
		}
	}
	(void)migd_wire_decoder_finish(dec, NULL);
	return 0;
}
