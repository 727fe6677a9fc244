#!/usr/bin/env bash
# The real-kernel test tier: runs the conformance program against Linux 6.12's
# VFIO core and the kernel's mtty sample driver, booted under QEMU (TCG, no
# KVM needed), and compares every case with the simulator's answer.
#
#   bash scripts/check-kernel.sh           (make check-kernel)
#   bash scripts/check-kernel.sh --smoke   boot, load, create devices, list them
#
# Installs what it needs (qemu-system-x86, busybox-static, the newest Debian
# linux-image/headers 6.12 pair, linux-source-6.12), builds mtty.ko out of tree
# (cached per kernel and source version), builds the project, boots the kernel
# with a tiny initramfs that shares the host's root read-only over 9p and runs
#   <build>/tests/conformance/migd-conformance --backend kernel --devices A,B,C
# (A, B: mtty-2, source and destination; C: mtty-1), then, in the same guest,
#   scripts/kernel-tier/daemons.sh --backend kernel --devices A,B
# (two vfio-migd daemons on a private bus migrate A to B over loopback TCP,
# driven by vfio-migctl; A's UART bytes are read back from B afterwards). Both
# run again on the host with --backend sim and every case name and signature
# is compared with the kernel's. Then the second kernel, built from the same
# source with IOMMUFD and the device cdev (scripts/kernel-tier/cdev-tier.sh),
# runs the cdev/iommufd cases; its counts join these.
# The last line is always "N passed, M failed": every kernel case plus every
# kernel/simulator agreement check. What it shares with scripts/check-systemd.sh
# (packages, kernel, mtty.ko, initramfs basics, boot loop, markers) is in
# scripts/lib/guest-kernel.sh. Exit status 0 only if nothing failed.
#
# Environment: BUILD (build dir, default build), KERNEL_TIER_TIMEOUT (seconds
# for boot and run, default 300), KERNEL_TIER_BOOT_TRIES (boots that die before
# the test program runs are retried, default 3), KERNEL_TIER_CACHE (module cache, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/vfio-migd/kernel-tier).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
TIMEOUT=${KERNEL_TIER_TIMEOUT:-420}
BOOT_TRIES=${KERNEL_TIER_BOOT_TRIES:-3}
CACHE_ROOT=${KERNEL_TIER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-migd/kernel-tier}
TIER_DIR=scripts/kernel-tier
TIER_NAME=check-kernel
# log, die, the counts and the summary line on every exit
# shellcheck source=scripts/lib/tier-harness.sh
. scripts/lib/tier-harness.sh
TIMEOUT_ENV=KERNEL_TIER_TIMEOUT
BASE_PACKAGES=(qemu-system-x86 busybox-static xz-utils cpio kmod linux-source-6.12)
# modules for the 9p root share, then the VFIO stack mtty needs
GUEST_MODULES=(netfs 9pnet 9pnet_virtio 9p vfio vfio_iommu_type1 mdev)
UUID_A=6f0e1a52-8d1c-4c3e-9a01-0000000000a1
UUID_B=6f0e1a52-8d1c-4c3e-9a01-0000000000b2
UUID_C=6f0e1a52-8d1c-4c3e-9a01-0000000000c3
DAEMONS_SCRIPT=$TIER_DIR/daemons.sh
# daemons.sh's own budget, and the guest's bound on the whole of it (each of
# its waits is bounded too; this only catches a bug in the script itself)
DAEMONS_BUDGET=240
DAEMONS_BOUND=$((DAEMONS_BUDGET + 60))

# shellcheck source=scripts/lib/guest-kernel.sh
. scripts/lib/guest-kernel.sh

mode=conformance
case "${1:-}" in
"") ;;
--smoke) mode=smoke ;;
*)
	echo "usage: $0 [--smoke]" >&2
	exit 2
	;;
esac

KVER=""
KROOT=""

build_project() {
	command -v meson >/dev/null || die "meson missing: run 'make deps'"
	command -v ninja >/dev/null || die "ninja missing: run 'make deps'"
	if [ ! -f "$BUILD/build.ninja" ]; then
		meson setup "$BUILD" -Dwerror=true || die "meson setup $BUILD failed"
	fi
	ninja -C "$BUILD" || die "the project does not build (ninja -C $BUILD)"
}

# Prints the guest program's absolute path (the guest sees the host's root).
conformance_program() {
	local prog
	prog="$(cd "$BUILD" && pwd -P)/tests/conformance/migd-conformance"
	[ -x "$prog" ] || die "$prog missing: the conformance program is not built"
	check_guest_path "$prog"
	echo "$prog"
}

# Writes the initramfs to $1: busybox, the decompressed modules, /init and
# its configuration.
make_initramfs() {
	local out=$1 mtty_ko=$2 guest_program=$3 root="$work/initramfs"
	local guest_build daemons_script
	guest_build=$(cd "$BUILD" && pwd -P)
	daemons_script="$(pwd -P)/$DAEMONS_SCRIPT"
	check_guest_path "$guest_build"
	check_guest_path "$daemons_script"
	local -a load_order=()
	initramfs_basics "$root" "$mtty_ko" "${GUEST_MODULES[@]}"
	install -m 755 "$TIER_DIR/guest-init.sh" "$root/init"
	{
		printf 'BEGIN_MARKER=%q\n' "$BEGIN_MARKER"
		printf 'END_MARKER=%q\n' "$END_MARKER"
		printf 'MODULES=%q\n' "${load_order[*]}"
		printf 'UUID_A=%q\nUUID_B=%q\nUUID_C=%q\n' "$UUID_A" "$UUID_B" "$UUID_C"
		printf 'GUEST_PROGRAM=%q\n' "$guest_program"
		printf 'GUEST_MODE=%q\n' "$mode"
		printf 'DAEMONS_BEGIN_MARKER=%q\n' "$DAEMONS_BEGIN_MARKER"
		printf 'DAEMONS_END_MARKER=%q\n' "$DAEMONS_END_MARKER"
		printf 'DAEMONS_SCRIPT=%q\nGUEST_BUILD=%q\n' "$daemons_script" "$guest_build"
		printf 'DAEMONS_BUDGET=%q\nDAEMONS_BOUND=%q\n' "$DAEMONS_BUDGET" "$DAEMONS_BOUND"
	} >"$root/kernel-tier.conf"
	log "guest modules: ${load_order[*]}"
	pack_initramfs "$root" "$out"
}

# The second kernel (built: IOMMUFD, device cdev, VFIO debugfs) proves the
# cdev/iommufd path; its counts join these (scripts/kernel-tier/cdev-tier.sh).
run_cdev_tier() {
	local out="$work/cdev-tier.out" last
	echo "== the cdev kernel (scripts/kernel-tier/cdev-tier.sh)"
	BUILD="$BUILD" bash "$TIER_DIR/cdev-tier.sh" 2>&1 | tee "$out" || true
	last=$(tail -n 1 "$out")
	if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
	else
		failed=$((failed + 1))
	fi
}

main() {
	local mtty_ko guest_program kernel_rc sim_rc=0 nonce
	local daemons_rc sim_daemons_rc=0
	local boot_seconds=0
	install_packages
	mtty_ko=$(build_mtty_module)
	if [ "$mode" = smoke ]; then
		guest_program=/bin/true
	else
		build_project
		guest_program=$(conformance_program)
	fi
	work=$(mktemp -d)
	nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	BEGIN_MARKER="@@vfio-migd-kernel-tier-begin-${nonce}@@"
	END_MARKER="@@vfio-migd-kernel-tier-end-${nonce}@@"
	DAEMONS_BEGIN_MARKER="@@vfio-migd-kernel-tier-daemons-begin-${nonce}@@"
	DAEMONS_END_MARKER="@@vfio-migd-kernel-tier-daemons-end-${nonce}@@"
	make_initramfs "$work/initrd.img" "$mtty_ko" "$guest_program"
	boot_until_program_ran "$work/initrd.img" "$work/console.log"
	kernel_rc=$(extract_guest_output "$work/console.log" "$work/kernel.tap")

	if [ "$mode" = smoke ]; then
		echo "== guest: smoke check (exit ${kernel_rc})"
	else
		echo "== guest: migd-conformance --backend kernel (exit ${kernel_rc})"
	fi
	cat "$work/kernel.tap"
	if [ "$mode" = smoke ]; then
		[ "$kernel_rc" -eq 0 ] || die "smoke run failed in the guest"
		[ -s "$work/kernel.tap" ] || die "smoke run printed nothing"
		passed=1
		print_summary
		return
	fi
	daemons_rc=$(extract_section "$DAEMONS_BEGIN_MARKER" "$DAEMONS_END_MARKER" "$work/kernel-daemons.tap")
	echo "== guest: daemons.sh --backend kernel (exit ${daemons_rc})"
	cat "$work/kernel-daemons.tap"

	echo "== host: migd-conformance --backend sim"
	G_DEBUG=fatal-criticals "$guest_program" --backend sim >"$work/sim.tap" 2>"$work/sim.err" ||
		sim_rc=$?
	cat "$work/sim.tap"
	if [ -s "$work/sim.err" ]; then
		echo "-- stderr:"
		cat "$work/sim.err"
	fi
	echo "== host: daemons.sh --backend sim"
	G_DEBUG=fatal-criticals DAEMONS_BUDGET_S=$DAEMONS_BUDGET \
		timeout -k 5 "$DAEMONS_BOUND" sh "$DAEMONS_SCRIPT" --build "$BUILD" --backend sim \
		>"$work/sim-daemons.tap" 2>"$work/sim-daemons.err" || sim_daemons_rc=$?
	cat "$work/sim-daemons.tap"
	if [ -s "$work/sim-daemons.err" ]; then
		echo "-- stderr:"
		cat "$work/sim-daemons.err"
	fi
	echo "== kernel vs sim, case by case (boot and run: ${boot_seconds} s)"
	compare_and_count "$work/kernel.tap" "$kernel_rc" "$work/sim.tap" "$sim_rc"
	echo "-- two daemons (daemons.sh)"
	compare_and_count "$work/kernel-daemons.tap" "$daemons_rc" \
		"$work/sim-daemons.tap" "$sim_daemons_rc"
	run_cdev_tier
	print_summary
	[ "$failed" -eq 0 ]
}

main
