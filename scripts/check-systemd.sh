#!/usr/bin/env bash
# The systemd tier: vfio-migd installed as a distribution would install it,
# run by a real systemd (PID 1) on Linux 6.12 under QEMU, serving the kernel's
# mtty sample devices through VFIO, driven over the real system bus.
#
#   bash scripts/check-systemd.sh                (make check-systemd)
#   bash scripts/check-systemd.sh --debs DIR     install DIR/*.deb instead
#
# Installs what it needs (as scripts/check-kernel.sh does, sharing its code in
# scripts/lib/guest-kernel.sh, plus systemd, dbus, polkitd, jq, openssl),
# builds the project for a Debian host in its own build directory
# (SYSTEMD_TIER_BUILD, default build-systemd: --prefix=/usr --sysconfdir=/etc
# --localstatedir=/var) and migd-uart-tool in BUILD, then boots the 6.12
# kernel with an initramfs (scripts/systemd-tier/guest-init.sh) that loads the
# VFIO stack and mtty, mounts the host's root read-only over 9p as the lower
# layer of an overlay with a tmpfs upper one, creates the mtty devices,
# installs the product into the overlay (`meson install`, or `dpkg -i` with
# --debs), writes the tier's configuration and units
# (scripts/systemd-tier/) and switches to /lib/systemd/systemd. Its target
# starts vfio-migd.service (the devices configured with [device NAME]
# address=) and the test runner (scripts/systemd-tier/runner.sh), whose TAP
# lines come back between markers on the serial console; then the guest
# powers off. The last line is always "N passed, M failed"; exit status 0
# only if nothing failed.
#
# Environment: BUILD (for migd-uart-tool, default build), SYSTEMD_TIER_BUILD,
# SYSTEMD_TIER_DEBS (as --debs), SYSTEMD_TIER_TIMEOUT (seconds for boot and
# run, default 600: enough under TCG), SYSTEMD_TIER_ACCEL (QEMU's -accel
# and -cpu options, default "-accel tcg"; see pick_accel), SYSTEMD_TIER_BOOT_TRIES (boots that die before the runner
# started are retried, default 2), KERNEL_TIER_CACHE (shared with
# check-kernel.sh), SYSTEMD_TIER_CONSOLE (a file to keep the guest's console in).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
BUILD_SYSTEMD=${SYSTEMD_TIER_BUILD:-build-systemd}
DEBS=${SYSTEMD_TIER_DEBS:-}
TIMEOUT=${SYSTEMD_TIER_TIMEOUT:-600}
TIMEOUT_ENV=SYSTEMD_TIER_TIMEOUT
BOOT_TRIES=${SYSTEMD_TIER_BOOT_TRIES:-2}
QEMU_ACCEL=${SYSTEMD_TIER_ACCEL:-}
CACHE_ROOT=${KERNEL_TIER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-migd/kernel-tier}
TIER_DIR=scripts/systemd-tier
TIER_NAME=check-systemd
# log, die, the counts and the summary line on every exit
# shellcheck source=scripts/lib/tier-harness.sh
. scripts/lib/tier-harness.sh
BASE_PACKAGES=(qemu-system-x86 busybox-static xz-utils cpio kmod linux-source-6.12
	systemd dbus polkitd util-linux jq openssl)
# the 9p root share, the overlay over it, the VFIO stack mtty needs, and
# autofs4, which systemd wants (a module in Debian's kernel)
GUEST_MODULES=(netfs 9pnet 9pnet_virtio 9p overlay vfio vfio_iommu_type1 mdev autofs4)
# A: mtty-2, served by the system's vfio-migd; B: mtty-2, a destination daemon's
# on a private bus in the guest; C: mtty-1, served by the system's vfio-migd
UUID_A=6f0e1a52-8d1c-4c3e-9a01-0000000000a1
UUID_B=6f0e1a52-8d1c-4c3e-9a01-0000000000b2
UUID_C=6f0e1a52-8d1c-4c3e-9a01-0000000000c3

# shellcheck source=scripts/lib/guest-kernel.sh
. scripts/lib/guest-kernel.sh

while [ $# -gt 0 ]; do
	case "$1" in
	--debs)
		[ $# -ge 2 ] || {
			echo "usage: $0 [--debs DIR]" >&2
			exit 2
		}
		DEBS=$2
		shift 2
		;;
	*)
		echo "usage: $0 [--debs DIR]" >&2
		exit 2
		;;
	esac
done

KVER=""
KROOT=""

# the guest's console, kept where SYSTEMD_TIER_CONSOLE says before $work goes
tier_on_exit_hook() {
	if [ -n "${SYSTEMD_TIER_CONSOLE:-}" ] && [ -f "$work/console.log" ]; then
		tr -d '\r' <"$work/console.log" >"$SYSTEMD_TIER_CONSOLE"
	fi
}

# The product as a Debian host has it, in its own build directory (the
# paths are compiled in), and the UART tool of the test build.
build_project() {
	command -v meson >/dev/null || die "meson missing: run 'make deps'"
	command -v ninja >/dev/null || die "ninja missing: run 'make deps'"
	if [ -z "$DEBS" ]; then
		if [ ! -f "$BUILD_SYSTEMD/build.ninja" ]; then
			meson setup "$BUILD_SYSTEMD" -Dwerror=true -Dtests=false --prefix=/usr \
				--sysconfdir=/etc --localstatedir=/var ||
				die "meson setup $BUILD_SYSTEMD failed"
		fi
		ninja -C "$BUILD_SYSTEMD" || die "the project does not build (ninja -C $BUILD_SYSTEMD)"
	fi
	if [ ! -f "$BUILD/build.ninja" ]; then
		meson setup "$BUILD" -Dwerror=true || die "meson setup $BUILD failed"
	fi
	ninja -C "$BUILD" tests/conformance/migd-uart-tool ||
		die "migd-uart-tool does not build (ninja -C $BUILD)"
}

# TLS files for the migration port: a CA, the daemon's certificate (for
# localhost) and a client's, all signed by the CA.
make_certificates() {
	local dir=$1 name
	mkdir -p "$dir"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=vfio-migd-tier-ca \
		-keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null || die "openssl: CA"
	for name in server client; do
		openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
			-addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
			-keyout "$dir/$name-key.pem" -out "$dir/$name.csr" 2>/dev/null ||
			die "openssl: $name request"
		openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
			-CAcreateserial -days 2 -copy_extensions copy -out "$dir/$name-cert.pem" \
			2>/dev/null || die "openssl: $name certificate"
	done
}

# check_guest_path, and /run: the guest mounts its own there
check_guest_dir() {
	check_guest_path "$1"
	case "$1" in
	/run/*) die "$1 is under /run, which the guest replaces with its own; use another directory" ;;
	esac
}

# Writes the initramfs to $1: busybox, the modules, /init and its configuration.
make_initramfs() {
	local out=$1 mtty_ko=$2 root="$work/initramfs" checkout build_systemd="" debs_dir="" uart_tool
	checkout=$(pwd -P)
	check_guest_dir "$checkout"
	if [ -n "$DEBS" ]; then
		debs_dir=$(cd "$DEBS" && pwd -P)
		check_guest_dir "$debs_dir"
		compgen -G "$debs_dir/*.deb" >/dev/null || die "no .deb in $DEBS"
	else
		build_systemd=$(cd "$BUILD_SYSTEMD" && pwd -P)
		check_guest_dir "$build_systemd"
	fi
	uart_tool="$(cd "$BUILD" && pwd -P)/tests/conformance/migd-uart-tool"
	[ -x "$uart_tool" ] || die "$uart_tool missing"
	check_guest_dir "$uart_tool"
	local -a load_order=()
	initramfs_basics "$root" "$mtty_ko" "${GUEST_MODULES[@]}"
	install -m 755 "$TIER_DIR/guest-init.sh" "$root/init"
	make_certificates "$root/tls"
	{
		printf 'BEGIN_MARKER=%q\n' "$BEGIN_MARKER"
		printf 'END_MARKER=%q\n' "$END_MARKER"
		printf 'MODULES=%q\n' "${load_order[*]}"
		printf 'UUID_A=%q\nUUID_B=%q\nUUID_C=%q\n' "$UUID_A" "$UUID_B" "$UUID_C"
		printf 'CHECKOUT=%q\n' "$checkout"
		printf 'BUILD_SYSTEMD=%q\nDEBS=%q\n' "$build_systemd" "$debs_dir"
		printf 'UART_TOOL=%q\n' "$uart_tool"
	} >"$root/systemd-tier.conf"
	log "guest modules: ${load_order[*]}"
	pack_initramfs "$root" "$out"
}

# TCG unless SYSTEMD_TIER_ACCEL says otherwise: on this project's machine
# /dev/kvm opens but its (nested) KVM cannot run Debian's 6.12 kernel: an
# internal emulation error in the decompressor with QEMU's default CPU model,
# MSR 0x10a refused with "-cpu host" or "-cpu max". So "-accel kvm -accel tcg"
# would pick a KVM that fails; where KVM runs it, SYSTEMD_TIER_ACCEL="-accel
# kvm -cpu host" makes the tier fast.
pick_accel() {
	[ -n "$QEMU_ACCEL" ] || QEMU_ACCEL="-accel tcg"
}

main() {
	local mtty_ko guest_rc nonce boot_seconds=0 start=$SECONDS line
	install_packages
	mtty_ko=$(build_mtty_module)
	build_project
	work=$(mktemp -d)
	nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	BEGIN_MARKER="@@vfio-migd-systemd-tier-begin-${nonce}@@"
	END_MARKER="@@vfio-migd-systemd-tier-end-${nonce}@@"
	KERNEL_APPEND="console=ttyS0 quiet loglevel=1 panic=-1 systemd.show_status=0"
	KERNEL_APPEND+=" systemd.log_level=warning systemd.journald.forward_to_console=0"
	KERNEL_APPEND+=" systemd.unit=vfio-migd-tier.target"
	QEMU_MEMORY=1536
	QEMU_EXTRA=()
	pick_accel
	make_initramfs "$work/initrd.img" "$mtty_ko"
	boot_until_program_ran "$work/initrd.img" "$work/console.log"
	guest_rc=$(extract_guest_output "$work/console.log" "$work/guest.tap")
	# what the guest's /init said before systemd took over (the install, its time)
	grep '^systemd-tier-guest: ' "$work/console.txt" || true
	echo "== guest: vfio-migd under systemd (runner exit ${guest_rc}; boot and run ${boot_seconds} s)"
	cat "$work/guest.tap"
	while IFS= read -r line; do
		case "$line" in
		"ok "*) passed=$((passed + 1)) ;;
		"not ok "*) failed=$((failed + 1)) ;;
		esac
	done <"$work/guest.tap"
	# the plan says how many checks there are: one missing is one failed
	line=$(grep -m1 '^1\.\.[0-9]*$' "$work/guest.tap" || true)
	if [ -z "$line" ]; then
		echo "check-systemd: no TAP plan from the guest" >&2
		failed=$((failed + 1))
	elif [ $((passed + failed)) -lt "${line#1..}" ]; then
		echo "check-systemd: $((${line#1..} - passed - failed)) check(s) did not report" >&2
		failed=$((failed + ${line#1..} - passed - failed))
	fi
	if [ "$guest_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		echo "check-systemd: the runner exited with $guest_rc" >&2
		failed=$((failed + 1))
	fi
	log "whole tier took $((SECONDS - start)) s"
	print_summary
	[ "$failed" -eq 0 ]
}

main
