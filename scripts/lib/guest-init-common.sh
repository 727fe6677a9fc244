# shellcheck shell=sh
# What the QEMU tiers' /init scripts share (scripts/kernel-tier/guest-init.sh,
# scripts/systemd-tier/guest-init.sh), busybox sh in the guest: initramfs_basics
# (scripts/lib/guest-kernel.sh) puts it at /lib/guest-common.sh. The sourcing
# /init defines fail_boot MSG (reports and powers off) and MODULES (the load
# order).

MDEV_TYPES=/sys/devices/virtual/mtty/mtty/mdev_supported_types

mount_guest_basics() {
	mount -t proc proc /proc || fail_boot "mount /proc"
	mount -t sysfs sysfs /sys || fail_boot "mount /sys"
	mount -t devtmpfs devtmpfs /dev || fail_boot "mount /dev"
	exec </dev/console >/dev/console 2>&1
	# keep kernel messages off the console so they cannot split output lines
	echo 1 >/proc/sys/kernel/printk
}

load_modules() {
	for m in $MODULES; do
		insmod "/lib/modules/$m.ko" || fail_boot "insmod $m"
	done
}

create_mtty_device() { # uuid type
	[ -d "$MDEV_TYPES" ] || fail_boot "$MDEV_TYPES missing (mtty not loaded?)"
	echo "$1" >"$MDEV_TYPES/$2/create" || fail_boot "create $2 device $1"
	[ -e "/sys/bus/mdev/devices/$1" ] || fail_boot "device $1 did not appear"
}
