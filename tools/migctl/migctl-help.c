/*
 * Copyright 2026 The vfio-migd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>

#include "migctl-help.h"

typedef struct {
	const gchar *name;
	const gchar *usage;
	const gchar *summary;
	const gchar *options; /* one "  --opt  what" per line, or NULL */
	const gchar *example;
} MigctlHelp;

/* JOB: a job's number (3) or path (/org/vfiomigd/Migd1/jobs/3) */
static const MigctlHelp migctl_helps[] = {
    {"status", "status", "the daemon's version, capabilities, devices and jobs", NULL,
     "vfio-migctl status"},
    {"devices", "devices", "list the daemon's devices", NULL, "vfio-migctl --json devices"},
    {"host-devices", "host-devices",
     "list the host's VFIO devices, mdev instances and creatable mdev types: driver, IOMMU "
     "group, cdev, the plugin that would take each, whether the daemon serves it or another "
     "process holds it",
     NULL, "vfio-migctl --json host-devices"},
    {"listen", "listen ADDRESS | listen --stop",
     "receive migrations on ADDRESS (tcp:HOST:PORT, tcp:[IPV6]:PORT, unix:/path)",
     "  --cert FILE --key FILE --ca FILE  TLS: our certificate, its key, the CA\n"
     "  --plain                           no TLS: unix: addresses, peers checked by uid\n"
     "  --insecure-plain-tcp              with --plain, TCP too\n"
     "  --allowed-uid UID                 with --plain, a further uid (repeatable)\n"
     "  --start auto|manual               manual: devices stay stopped until 'start JOB'\n"
     "  --stop                            stop listening (no ADDRESS); refused while a\n"
     "                                    migration comes in or expectations wait\n",
     "vfio-migctl listen tcp:0.0.0.0:4821 --cert host.pem --key host.key --ca ca.pem"},
    {"migrate", "migrate ADDRESS",
     "migrate devices to the daemon at ADDRESS; prints the job's number at once and "
     "follows it. Ctrl-C cancels the job (the devices keep running here) unless --detach",
     "  --device NAME                     a device to move (repeatable; default: all)\n"
     "  --peer-name NAME                  the name the destination's certificate carries\n"
     "  --cert FILE --key FILE --ca FILE  TLS; --plain for unix: without TLS\n"
     "  --downtime-ms MS                  the downtime target\n"
     "  --max-rounds N                    at most N pre-copy rounds\n"
     "  --timeout-s S                     give up after S seconds\n"
     "  --detach, --no-wait               print the job and return; it keeps running\n"
     "  --switchover auto|manual          manual: pre-copy until 'switchover JOB'\n"
     "  --migration-id ID                 the VM migration (the destination's 'expect')\n"
     "  --handover-timeout S              roll back if the destination has not started\n"
     "  --iova-ranges DEVICE=IOVA+LEN,... the guest ranges a device may DMA into\n",
     "vfio-migctl migrate tcp:dst.example:4821 --peer-name dst.example --ca ca.pem "
     "--device 0000:3b:00.1"},
    {"watch", "watch JOB", "follow a job until it ends (JOB: its number or path)", NULL,
     "vfio-migctl watch 3"},
    {"cancel", "cancel JOB",
     "cancel a job: the source's devices keep running, the destination's are reset", NULL,
     "vfio-migctl cancel 3"},
    {"jobs", "jobs", "list the daemon's jobs (finished ones for 10 minutes)", NULL,
     "vfio-migctl jobs"},
    {"add", "add DEVICE",
     "add a VFIO device (PCI address, lspci's short BB:DD.F too, mdev UUID, sysfs path)",
     "  --iova-ranges IOVA+LEN,...        the guest ranges the device may DMA into\n"
     "  --sim-spec SPEC                   a simulated device (daemons that serve them)\n"
     "  --persist                         also after a restart (the daemon writes\n"
     "                                    devices.d/NAME.conf next to its configuration)\n",
     "vfio-migctl add 3b:00.1"},
    {"attach", "attach NAME --fd N [--address ADDRESS]",
     "hand the daemon an open VFIO device fd, as NAME",
     "  --fd N                            the inherited device fd\n"
     "  --address ADDRESS                 which device it is (PCI address, mdev UUID)\n"
     "  --iova-ranges IOVA+LEN,...        the guest ranges the device may DMA into\n",
     "vfio-migctl attach nic0 --fd 3 --address 3b:00.1 3</dev/vfio/devices/vfio0"},
    {"detach", "detach DEVICE", "let go of a device", NULL, "vfio-migctl detach nic0"},
    {"dirty-bitmap", "dirty-bitmap DEVICE",
     "what the source device's DMA dirtied during the last incoming migration",
     "  --output FILE, -o FILE            save the bitmap file\n",
     "vfio-migctl dirty-bitmap nic0 -o nic0.bitmap"},
    {"switchover", "switchover JOB",
     "stop a --switchover manual job's devices; returns once the destination loaded them", NULL,
     "vfio-migctl switchover 3"},
    {"start", "start JOB", "run a --start manual destination job's devices", NULL,
     "vfio-migctl start 4"},
    {"abandon", "abandon JOB", "give an incoming job up (devices reset, the source rolls back)",
     NULL, "vfio-migctl abandon 4"},
    {"rollback", "rollback JOB", "take a source job's devices back after the switchover", NULL,
     "vfio-migctl rollback 3"},
    {"dirty-sync", "dirty-sync JOB DEVICE", "the pages DEVICE dirtied since the last sync",
     "  --output FILE, -o FILE            save the bitmap file\n",
     "vfio-migctl dirty-sync 3 nic0 -o nic0.bitmap"},
    {"expect", "expect ID --device NAME...",
     "reserve devices for the incoming migration ID; prints the address its source dials",
     "  --device NAME                     a device to receive into (repeatable, in offer "
     "order)\n"
     "  --start auto|manual               manual: devices stay stopped until 'start JOB'\n"
     "  --timeout S                       drop the expectation after S seconds\n",
     "vfio-migctl expect vm1-42 --device nic0"},
    {"cancel-expectation", "cancel-expectation ID", "drop an expectation", NULL,
     "vfio-migctl cancel-expectation vm1-42"},
    {"expectations", "expectations", "list the expectations", NULL, "vfio-migctl expectations"},
    {"help", "help [COMMAND]", "the help of COMMAND, or the list of commands", NULL,
     "vfio-migctl help migrate"},
};

static const MigctlHelp *
migctl_help_find(const gchar *cmd)
{
	for (guint i = 0; i < G_N_ELEMENTS(migctl_helps); i++) {
		if (g_strcmp0(migctl_helps[i].name, cmd) == 0)
			return &migctl_helps[i];
	}
	return NULL;
}

gboolean
migctl_help_print(const gchar *cmd)
{
	const MigctlHelp *help = migctl_help_find(cmd);

	if (help == NULL)
		return FALSE;
	g_print("Usage: vfio-migctl [--session] [--bus-name NAME] [--json] %s\n\n%s.\n",
		help->usage, help->summary);
	if (help->options != NULL)
		g_print("\nOptions:\n%s", help->options);
	g_print("\nGlobal options: --session, --bus-name NAME, --json, --version\n"
		"\nExample:\n  %s\n",
		help->example);
	return TRUE;
}
