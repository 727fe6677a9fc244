#!/bin/busybox sh
# shellcheck shell=sh
# /init of the systemd tier's initramfs (busybox sh in the guest). Loads the
# modules listed in /systemd-tier.conf, builds the guest's root: the host's
# root read-only over 9p as the lower layer of an overlay whose upper layer is
# a tmpfs; creates the mtty devices, installs the product into the overlay,
# writes the tier's configuration and units, and hands the machine to systemd.
PATH=/bin
export PATH
/bin/busybox --install -s /bin

# Provides BEGIN_MARKER END_MARKER MODULES UUID_A UUID_B UUID_C CHECKOUT
# BUILD_SYSTEMD DEBS UART_TOOL.
# shellcheck source=/dev/null
. /systemd-tier.conf

# mount_guest_basics load_modules create_mtty_device
# shellcheck source=scripts/lib/guest-init-common.sh
. /lib/guest-common.sh

NEW=/newroot
# the PATH of what runs chrooted into the new root (dpkg wants its sbin tools)
HOST_PATH=/usr/sbin:/usr/bin:/sbin:/bin
TIER=$CHECKOUT/scripts/systemd-tier

say() {
	echo "systemd-tier-guest: $*"
}

fail_boot() {
	say "FAILED: $*"
	dmesg | tail -n 30
	echo "$BEGIN_MARKER"
	echo "1..1"
	echo "not ok 1 - guest-setup # $*"
	echo "$END_MARKER rc=125"
	sync
	poweroff -f
	exit 1
}

# The host's root, read-only, under a writable overlay: what systemd boots.
# cache=loose: the share is read-only and nothing on the host changes what the
# guest reads while it runs; every lookup is a round trip to QEMU otherwise.
mount_overlay_root() {
	mkdir -p /lower /upper "$NEW"
	mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower ||
		fail_boot "mount the host root over 9p"
	mount -t tmpfs -o mode=0755 tmpfs /upper || fail_boot "mount the upper tmpfs"
	mkdir -p /upper/data /upper/work
	mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay "$NEW" ||
		fail_boot "mount the overlay (9p lower, tmpfs upper)"
	for d in proc sys dev; do
		mount --move "/$d" "$NEW/$d" || fail_boot "move /$d into the new root"
	done
	# a /run of the guest's own: nothing of the host's runtime state shows. Not
	# over /tmp: the checkout (the runner, the build) may live there, as in a
	# CI clone; the overlay makes it writable anyway.
	mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$NEW/run" || fail_boot "mount /run"
}

# A and B: mtty-2, C: mtty-1 (before /sys moves into the new root)
create_mtty_devices() {
	create_mtty_device "$UUID_A" mtty-2
	create_mtty_device "$UUID_B" mtty-2
	create_mtty_device "$UUID_C" mtty-1
}

# The product, into the overlay: the meson build's install (a Debian host's
# paths), or the packages with dpkg, as an administrator would.
install_product() {
	if [ -n "$DEBS" ]; then
		say "installing $DEBS/*.deb with dpkg"
		t0=$(date +%s)
		# man-db's trigger would re-index every manual page of the host under
		# emulation (minutes); this overlay's index is thrown away anyway
		rm -f "$NEW/var/lib/man-db/auto-update"
		# (the glob expands in the chroot's shell: its paths are the host's)
		# shellcheck disable=SC2016
		PATH=$HOST_PATH chroot "$NEW" /bin/sh -c 'dpkg -i "$1"/*.deb' sh "$DEBS" \
			>/tmp-install.log 2>&1 || {
			tail -n 20 /tmp-install.log
			fail_boot "dpkg -i $DEBS/*.deb"
		}
		say "dpkg -i took $(($(date +%s) - t0)) s"
	else
		say "installing $BUILD_SYSTEMD with meson install"
		PATH=$HOST_PATH chroot "$NEW" meson install -C "$BUILD_SYSTEMD" --no-rebuild --quiet \
			>/tmp-install.log 2>&1 || {
			tail -n 20 /tmp-install.log
			fail_boot "meson install -C $BUILD_SYSTEMD"
		}
	fi
	[ -x "$NEW/usr/sbin/vfio-migd" ] || fail_boot "no /usr/sbin/vfio-migd after the install"
}

# What makes this overlay a machine of its own, booted fast.
configure_machine() {
	e=$NEW/etc
	od -An -N16 -tx1 "$NEW/dev/urandom" | tr -d ' \n' >"$e/machine-id"
	echo >>"$e/machine-id"
	echo vfio-migd-tier >"$e/hostname"
	: >"$e/fstab"
	# a host that is a container (docker's /.dockerenv, podman's
	# /run/.containerenv) would make systemd think it runs in one: then it reads
	# its settings from its own argv, not the kernel's command line
	rm -f "$NEW/.dockerenv" "$NEW/run/.containerenv"
	mkdir -p "$e/systemd/system" "$e/tmpfiles.d"
	# the host's /tmp and /var/tmp show through the overlay (a checkout may be
	# there): systemd-tmpfiles must not empty them at boot, file by file over 9p
	: >"$e/tmpfiles.d/tmp.conf"
	# consoles and logins, timers (apt, man-db, ...) and the network's wait
	# have no part in this guest; the serial console is the runner's
	for u in getty@.service serial-getty@.service console-getty.service getty.target \
		systemd-networkd-wait-online.service NetworkManager-wait-online.service \
		ifupdown-wait-online.service systemd-timesyncd.service \
		apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
		fstrim.timer man-db.timer logrotate.timer systemd-tmpfiles-clean.timer \
		systemd-pstore.service systemd-firstboot.service systemd-binfmt.service \
		proc-sys-fs-binfmt_misc.automount; do
		ln -sfn /dev/null "$e/systemd/system/$u"
	done
	for u in "$NEW$TIER"/vfio-migd-tier.target "$NEW$TIER"/vfio-migd-tier-run.service; do
		cp "$u" "$e/systemd/system/" || fail_boot "copy $u"
	done
	# the runner's settings, next to its unit
	{
		echo "BEGIN_MARKER=$BEGIN_MARKER"
		echo "END_MARKER=$END_MARKER"
		echo "UUID_A=$UUID_A"
		echo "UUID_B=$UUID_B"
		echo "UUID_C=$UUID_C"
		echo "UART_TOOL=$UART_TOOL"
		echo "TIER=$TIER"
	} >"$e/vfio-migd-tier.env"
}

# The daemon's devices, as an administrator configures them: A and C by their
# mdev UUID ([device NAME] address=); B stays free for the runner's own
# destination daemon. TLS files for the migration port, not yet in use.
configure_daemon() {
	d=$NEW/etc/vfio-migd
	mkdir -p "$d/devices.d" "$d/tls"
	printf '[device mtty-a]\naddress=%s\n' "$UUID_A" >"$d/devices.d/mtty-a.conf"
	printf '[device mtty-c]\naddress=%s\n' "$UUID_C" >"$d/devices.d/mtty-c.conf"
	cp /tls/*.pem "$d/tls/" || fail_boot "copy the TLS files"
	chmod 600 "$d"/tls/*-key.pem
}

mount_guest_basics
say "kernel $(uname -r) up"
load_modules
create_mtty_devices
mount_overlay_root
install_product
configure_machine
configure_daemon
say "switching to systemd"
exec switch_root "$NEW" /lib/systemd/systemd
