#!/bin/busybox sh
# shellcheck shell=sh
# /init of the real-kernel tier's initramfs (runs under busybox sh in the guest).
# Loads the modules listed in /kernel-tier.conf, mounts the host's root file
# system read-only over 9p at /host, creates the mtty devices and runs the test
# program chrooted into /host, then the two-daemon migration (daemons.sh, A to
# B). Each one's output goes to the serial console between the markers the
# host script looks for; then the guest powers off.
PATH=/bin
export PATH
/bin/busybox --install -s /bin

# Provides BEGIN_MARKER END_MARKER MODULES UUID_A UUID_B UUID_C GUEST_PROGRAM
# GUEST_MODE (conformance | smoke), DAEMONS_BEGIN_MARKER DAEMONS_END_MARKER
# DAEMONS_SCRIPT GUEST_BUILD DAEMONS_BUDGET DAEMONS_BOUND, and optionally
# GUEST_PROGRAM_ARGS (more options for the test program, e.g. --open cdev).
# shellcheck source=/dev/null
. /kernel-tier.conf

# mount_guest_basics load_modules create_mtty_device MDEV_TYPES
# shellcheck source=scripts/lib/guest-init-common.sh
. /lib/guest-common.sh

say() {
	echo "kernel-tier-guest: $*"
}

power_off() {
	sync
	poweroff -f
	# poweroff -f does not return; if it did, exiting init panics the
	# kernel and panic=-1 with -no-reboot ends QEMU.
	exit 1
}

fail_boot() {
	say "FAILED: $*"
	dmesg | tail -n 40
	echo "$END_MARKER rc=125"
	power_off
}

mount_host_root() {
	mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot /host ||
		fail_boot "mount the host root over 9p"
	mount -t proc proc /host/proc || fail_boot "mount /host/proc"
	mount -t sysfs sysfs /host/sys || fail_boot "mount /host/sys"
	mount -t devtmpfs devtmpfs /host/dev || fail_boot "mount /host/dev"
	# VFIO's debugfs (CONFIG_VFIO_DEBUGFS), where the kernel has it
	mount -t debugfs debugfs /host/sys/kernel/debug 2>/dev/null
	# writable space goes under /dev, never over /tmp or /run: the checkout
	# (and so the program) may live there, as in a CI clone under /tmp
	mkdir -p /host/dev/shm || fail_boot "mkdir /host/dev/shm"
	mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm || fail_boot "mount /host/dev/shm"
}

create_mtty_devices() {
	create_mtty_device "$UUID_A" mtty-2
	create_mtty_device "$UUID_B" mtty-2
	create_mtty_device "$UUID_C" mtty-1
}

show_devices() {
	# a host binary through the chroot proves the 9p root share and its libraries
	chroot /host /bin/ls -l /dev/vfio || return 1
	for d in /sys/bus/mdev/devices/*; do
		echo "$(basename "$d") type=$(cat "$d/mdev_type/name")" \
			"group=$(basename "$(readlink "$d/iommu_group")")"
	done
}

run_guest_program() {
	HOME=/dev/shm
	TMPDIR=/dev/shm
	G_DEBUG=fatal-criticals # as in the meson test environment
	export HOME TMPDIR G_DEBUG
	echo "$BEGIN_MARKER"
	if [ "$GUEST_MODE" = smoke ]; then
		show_devices
		rc=$?
	else
		# shellcheck disable=SC2086 # options without spaces, split on purpose
		PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot /host "$GUEST_PROGRAM" \
			--backend kernel --devices "$UUID_A,$UUID_B,$UUID_C" ${GUEST_PROGRAM_ARGS:-} 2>&1
		rc=$?
	fi
	echo "$END_MARKER rc=$rc"
	if [ "$rc" -ne 0 ]; then
		say "program exited with $rc; last kernel messages:"
		dmesg | tail -n 40
	fi
}

# A's UART bytes to B through two vfio-migd daemons on a private bus (they
# need lo, /dev/shm and the host's dbus-daemon); after the conformance
# program, which leaves A and B RUNNING. The whole run is bounded again here.
run_daemons() {
	[ "$GUEST_MODE" = conformance ] || return 0
	echo "$DAEMONS_BEGIN_MARKER"
	DAEMONS_BUDGET_S=$DAEMONS_BUDGET PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		chroot /host timeout -k 5 "$DAEMONS_BOUND" \
		/bin/sh "$DAEMONS_SCRIPT" --build "$GUEST_BUILD" --backend kernel \
		--devices "$UUID_A,$UUID_B" 2>&1
	rc=$?
	echo "$DAEMONS_END_MARKER rc=$rc"
}

mount_guest_basics
say "kernel $(uname -r) up"
load_modules
mount_host_root
# the engine cases talk over 127.0.0.1, which needs lo up
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up || fail_boot "bring up lo"
create_mtty_devices
run_guest_program
run_daemons
power_off
