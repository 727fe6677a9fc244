/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * migd-uart-tool: the mtty UART of a kernel VFIO device, from outside the
 * daemons (scripts/kernel-tier/daemons.sh). A group opens for one process at a
 * time and mtty's close_device keeps the FIFO and the migration state, so the
 * bytes written here before a daemon opens the device are still there after it
 * closed it.
 *   migd-uart-tool write DEVICE TEXT...  RUNNING, then TEXT i into port i (each
 *                                        port named is initialised first)
 *   migd-uart-tool read DEVICE PORTS     "state=STATE uart0=HEX ...", draining
 *   migd-uart-tool state DEVICE          the migration state, e.g. "STOP"
 *   migd-uart-tool hand DEVICE PROGRAM ARG...
 *                                        opens DEVICE (through its group, or
 *                                        its cdev), as a VMM would, and runs
 *                                        PROGRAM with the
 *                                        device fd inherited, "{fd}" in an ARG
 *                                        replaced by its number (for
 *                                        vfio-migctl attach --fd); PROGRAM's
 *                                        exit status (the fd holds the group)
 * Several commands separated by "--" run in order in one process (under
 * emulation each process start costs about a second), each device opened and
 * closed again by its command. DEVICE is an mdev UUID or a PCI address
 * (opened through its IOMMU group) or a device cdev /dev/vfio/devices/vfioN
 * (bound to an iommufd). Exit
 * status 0; 1 when a command failed (the rest are not run); 2 on usage errors,
 * found before anything runs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "conformance-cases.h"
#include "migd-kernel-device.h"

#define UART_TOOL_MAX_PORTS 2
/* more than the FIFO holds: draining stops at an empty FIFO anyway */
#define UART_TOOL_DRAIN_MAX 32

static MigdDevice *
uart_tool_open(const gchar *name, GError **error)
{
	/* a cdev path opens the cdev (iommufd) and names the device after it */
	g_autoptr(MigdKernelDevice) dev = migd_kernel_device_open(name, error);

	if (dev == NULL)
		return NULL;
	if (!g_str_has_prefix(name, "/dev/"))
		migd_device_set_name(MIGD_DEVICE(dev), name);
	if (!migd_device_probe(MIGD_DEVICE(dev), error))
		return NULL;
	return MIGD_DEVICE(g_steal_pointer(&dev));
}

/* hex of @text, or "-" when empty (as the conformance signatures print it) */
static gchar *
uart_tool_hex(const gchar *text)
{
	GString *hex = g_string_new(NULL);

	for (const gchar *p = text; *p != '\0'; p++)
		g_string_append_printf(hex, "%02x", (guint8)*p);
	if (hex->len == 0)
		g_string_append_c(hex, '-');
	return g_string_free(hex, FALSE);
}

static gboolean
uart_tool_write(MigdDevice *dev, gchar **texts, guint n_texts, GError **error)
{
	if (!conf_to_running(dev, error))
		return FALSE;
	for (guint port = 0; port < n_texts; port++) {
		if (!conf_uart_init(dev, port, error) ||
		    !conf_uart_send(dev, port, texts[port], error))
			return FALSE;
	}
	return TRUE;
}

static gboolean
uart_tool_read(MigdDevice *dev, guint n_ports, GError **error)
{
	g_autoptr(GString) line = g_string_new(NULL);
	MigdState state = MIGD_STATE_ERROR;

	if (!conf_get_state(dev, &state, error))
		return FALSE;
	g_string_append_printf(line, "state=%s", migd_state_to_string(state));
	for (guint port = 0; port < n_ports; port++) {
		g_autofree gchar *rx = conf_uart_drain(dev, port, UART_TOOL_DRAIN_MAX, error);
		g_autofree gchar *hex = NULL;

		if (rx == NULL)
			return FALSE;
		hex = uart_tool_hex(rx);
		g_string_append_printf(line, " uart%u=%s", port, hex);
	}
	g_print("%s\n", line->str);
	return TRUE;
}

static gboolean
uart_tool_state(MigdDevice *dev, GError **error)
{
	MigdState state = MIGD_STATE_ERROR;

	if (!conf_get_state(dev, &state, error))
		return FALSE;
	g_print("%s\n", migd_state_to_string(state));
	return TRUE;
}

static gint
uart_tool_usage(const gchar *msg)
{
	g_printerr("migd-uart-tool: %s\n"
		   "usage: migd-uart-tool COMMAND [-- COMMAND...]\n"
		   "  write DEVICE TEXT...   (one text per port, 1 or 2)\n"
		   "  read DEVICE PORTS\n"
		   "  state DEVICE\n",
		   msg);
	return 2;
}

/* checks one command (@argv, @argc words); FALSE after printing the usage */
static gboolean
uart_tool_check(gint argc, gchar **argv, guint *n_ports)
{
	guint64 n = 0;

	if (argc < 2) {
		uart_tool_usage("a command and a device are needed");
		return FALSE;
	}
	if (g_strcmp0(argv[0], "write") == 0) {
		if (argc < 3 || argc - 2 > UART_TOOL_MAX_PORTS) {
			uart_tool_usage("write takes one text per port (1 or 2)");
			return FALSE;
		}
	} else if (g_strcmp0(argv[0], "read") == 0) {
		if (argc != 3 ||
		    !g_ascii_string_to_unsigned(argv[2], 10, 1, UART_TOOL_MAX_PORTS, &n, NULL)) {
			uart_tool_usage("read takes the number of ports (1 or 2)");
			return FALSE;
		}
	} else if (g_strcmp0(argv[0], "state") == 0) {
		if (argc != 2) {
			uart_tool_usage("state takes only the device");
			return FALSE;
		}
	} else {
		uart_tool_usage("unknown command");
		return FALSE;
	}
	*n_ports = (guint)n;
	return TRUE;
}

/* runs one checked command; FALSE after printing the error */
static gboolean
uart_tool_run(gint argc, gchar **argv, guint n_ports)
{
	g_autoptr(MigdDevice) dev = NULL;
	g_autoptr(GError) error = NULL;
	gboolean ok;

	dev = uart_tool_open(argv[1], &error);
	if (dev == NULL) {
		g_printerr("migd-uart-tool: %s: %s\n", argv[1], error->message);
		return FALSE;
	}
	if (g_strcmp0(argv[0], "write") == 0)
		ok = uart_tool_write(dev, argv + 2, (guint)(argc - 2), &error);
	else if (g_strcmp0(argv[0], "read") == 0)
		ok = uart_tool_read(dev, n_ports, &error);
	else
		ok = uart_tool_state(dev, &error);
	if (!ok)
		g_printerr("migd-uart-tool: %s %s: %s\n", argv[0], argv[1], error->message);
	return ok;
}

/* hand DEVICE PROGRAM ARG...: the owner of a device fd hands it over */
static gint
uart_tool_hand(gint argc, gchar **argv)
{
	g_autoptr(MigdDevice) dev = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *fd_text = NULL;
	gint fd;
	gint status = 0;

	if (argc < 3)
		return uart_tool_usage("hand takes a device and a program");
	dev = uart_tool_open(argv[1], &error);
	if (dev == NULL) {
		g_printerr("migd-uart-tool: %s: %s\n", argv[1], error->message);
		return EXIT_FAILURE;
	}
	/* the kernel hands out device fds close-on-exec: this one is for the child */
	fd = migd_kernel_device_get_fd(MIGD_KERNEL_DEVICE(dev));
	if (fcntl(fd, F_SETFD, 0) < 0) {
		g_printerr("migd-uart-tool: fcntl: %s\n", g_strerror(errno));
		return EXIT_FAILURE;
	}
	fd_text = g_strdup_printf("%d", fd);
	for (gint i = 2; i < argc; i++) {
		g_auto(GStrv) parts = g_strsplit(argv[i], "{fd}", -1);
		g_ptr_array_add(args, g_strjoinv(fd_text, parts));
	}
	g_ptr_array_add(args, NULL);
	if (!g_spawn_sync(NULL, (gchar **)args->pdata, NULL,
			  G_SPAWN_LEAVE_DESCRIPTORS_OPEN | G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL,
			  NULL, NULL, &status, &error)) {
		g_printerr("migd-uart-tool: %s: %s\n", argv[2], error->message);
		return EXIT_FAILURE;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAILURE;
}

int
main(int argc, char **argv)
{
	/* the commands: start index and word count of each */
	g_autoptr(GArray) starts = g_array_new(FALSE, FALSE, sizeof(gint));
	g_autoptr(GArray) counts = g_array_new(FALSE, FALSE, sizeof(gint));
	g_autoptr(GArray) ports = g_array_new(FALSE, FALSE, sizeof(guint));
	gint start = 1;

	setlocale(LC_ALL, "");
	/* recovery messages are no part of the answer on stdout */
	g_log_writer_default_set_use_stderr(TRUE);
	if (argc > 1 && g_strcmp0(argv[1], "hand") == 0)
		return uart_tool_hand(argc - 1, argv + 1);
	for (gint i = 1; i <= argc; i++) {
		gint count = i - start;
		guint n_ports = 0;

		if (i < argc && g_strcmp0(argv[i], "--") != 0)
			continue;
		if (!uart_tool_check(count, argv + start, &n_ports))
			return 2;
		g_array_append_val(starts, start);
		g_array_append_val(counts, count);
		g_array_append_val(ports, n_ports);
		start = i + 1;
	}
	for (guint c = 0; c < starts->len; c++) {
		if (!uart_tool_run(g_array_index(counts, gint, c),
				   argv + g_array_index(starts, gint, c),
				   g_array_index(ports, guint, c)))
			return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
