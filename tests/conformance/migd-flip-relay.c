/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * migd-flip-relay: a man in the middle between two daemons on a plain link, for
 * the real-kernel tier's corruption case (tests/common/migd-test-relay.h).
 *   migd-flip-relay LISTEN UPSTREAM DEVICE OFFSET
 * forwards every connection accepted on LISTEN (tcp:HOST:PORT, port 0 picks one,
 * or unix:PATH) to UPSTREAM, the destination daemon, and flips (XOR 0xff) byte
 * OFFSET of device DEVICE's state stream (its StateChunks' data, counted from 0
 * across both phases; DEVICE -1 flips nothing). mtty's stream is a 24-byte
 * header, then the UART bytes. Prints "listening ADDRESS" once it listens; on
 * SIGTERM or SIGINT prints "flipped N chunks M" and exits 0. Exit 2 on usage
 * errors, 1 when it cannot listen.
 */
#include "config.h"

#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>

#include "migd-test-relay.h"

static gboolean
flip_relay_quit_cb(gpointer user_data)
{
	g_main_loop_quit(user_data);
	return G_SOURCE_REMOVE;
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MigdTestRelay) relay = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	gint64 device = 0;
	guint64 offset = 0;

	if (argc != 5 || !g_ascii_string_to_signed(argv[3], 10, -1, G_MAXINT32, &device, NULL) ||
	    !g_ascii_string_to_unsigned(argv[4], 10, 0, G_MAXUINT64, &offset, NULL)) {
		g_printerr("usage: %s LISTEN UPSTREAM DEVICE OFFSET\n", argv[0]);
		return 2;
	}
	relay = migd_test_relay_new(argv[1], argv[2], (gint)device, offset, &error);
	if (relay == NULL) {
		g_printerr("%s: %s\n", argv[0], error->message);
		return 1;
	}
	printf("listening %s\n", migd_test_relay_get_address(relay));
	fflush(stdout);
	loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, flip_relay_quit_cb, loop);
	g_unix_signal_add(SIGINT, flip_relay_quit_cb, loop);
	g_main_loop_run(loop);
	printf("flipped %u chunks %" G_GUINT64_FORMAT "\n", migd_test_relay_get_flipped(relay),
	       migd_test_relay_get_chunks(relay));
	return 0;
}
