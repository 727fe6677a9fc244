#!/usr/bin/env bash
# The kernel tier's second kernel: the device cdev + iommufd path, which no
# Debian kernel can prove (all leave CONFIG_IOMMUFD unset). Builds (once,
# cached: build-kernel.sh) Linux 6.12 from Debian's linux-source-6.12 with
# IOMMUFD, VFIO_DEVICE_CDEV, VFIO_DEBUGFS and the mtty sample built in, boots
# it under QEMU (TCG) with a busybox initramfs and the host's root over 9p
# (guest-init.sh, as for Debian's kernel), and runs
#   migd-conformance --backend kernel --open cdev --debugfs /sys/kernel/debug
# (every case with the devices opened by cdev, every state read checked
# against the kernel's debugfs record), then cdev-daemons.sh (the daemons by
# cdev, debugfs after each step). Each is compared with its simulator run,
# case by case (compare-tap.py), as check-kernel.sh does for Debian's kernel.
#
#   bash scripts/kernel-tier/cdev-tier.sh      (check-kernel.sh runs it last)
#
# The last line is "N passed, M failed"; exit status 0 only if nothing failed.
# Environment: BUILD, KERNEL_TIER_TIMEOUT, KERNEL_TIER_BOOT_TRIES and
# KERNEL_TIER_CACHE as check-kernel.sh (which installs qemu and busybox). The
# boot loop and the console markers are scripts/lib/guest-kernel.sh's.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."

BUILD=${BUILD:-build}
TIMEOUT=${KERNEL_TIER_TIMEOUT:-480}
BOOT_TRIES=${KERNEL_TIER_BOOT_TRIES:-3}
CACHE_ROOT=${KERNEL_TIER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-migd/kernel-tier}
TIER_DIR=scripts/kernel-tier
TIER_NAME=cdev-tier
# log, die, the counts and the summary line on every exit
# shellcheck source=scripts/lib/tier-harness.sh
. scripts/lib/tier-harness.sh
TIMEOUT_ENV=KERNEL_TIER_TIMEOUT
UUID_A=6f0e1a52-8d1c-4c3e-9a01-0000000000a1
UUID_B=6f0e1a52-8d1c-4c3e-9a01-0000000000b2
UUID_C=6f0e1a52-8d1c-4c3e-9a01-0000000000c3
DAEMONS_SCRIPT=$TIER_DIR/cdev-daemons.sh
DAEMONS_BUDGET=300
DAEMONS_BOUND=$((DAEMONS_BUDGET + 60))
# (--iommufd-driver added when the kernel's config has CONFIG_IOMMUFD_DRIVER)
GUEST_PROGRAM_ARGS="--open cdev --debugfs /sys/kernel/debug"
SIM_ARGS="--open cdev"

KVER=""
KROOT=""

# check_guest_path pack_initramfs boot_until_program_ran extract_guest_output
# shellcheck source=scripts/lib/guest-kernel.sh
. scripts/lib/guest-kernel.sh

# busybox, /init (guest-init.sh) and its configuration; no modules: all is built in
make_initramfs() { # out
	local out=$1 root="$work/initramfs" guest_build daemons_script
	guest_build=$(cd "$BUILD" && pwd -P)
	daemons_script="$(pwd -P)/$DAEMONS_SCRIPT"
	check_guest_path "$guest_build"
	check_guest_path "$daemons_script"
	mkdir -p "$root"/{bin,dev,proc,sys,host,lib}
	cp /bin/busybox "$root/bin/busybox"
	cp scripts/lib/guest-init-common.sh "$root/lib/guest-common.sh"
	mknod -m 600 "$root/dev/console" c 5 1
	install -m 755 "$TIER_DIR/guest-init.sh" "$root/init"
	{
		printf 'BEGIN_MARKER=%q\nEND_MARKER=%q\n' "$BEGIN_MARKER" "$END_MARKER"
		printf 'MODULES=\n'
		printf 'UUID_A=%q\nUUID_B=%q\nUUID_C=%q\n' "$UUID_A" "$UUID_B" "$UUID_C"
		printf 'GUEST_PROGRAM=%q\nGUEST_MODE=conformance\n' "$guest_program"
		printf 'GUEST_PROGRAM_ARGS=%q\n' "$GUEST_PROGRAM_ARGS"
		printf 'DAEMONS_BEGIN_MARKER=%q\n' "$DAEMONS_BEGIN_MARKER"
		printf 'DAEMONS_END_MARKER=%q\n' "$DAEMONS_END_MARKER"
		printf 'DAEMONS_SCRIPT=%q\nGUEST_BUILD=%q\n' "$daemons_script" "$guest_build"
		printf 'DAEMONS_BUDGET=%q\nDAEMONS_BOUND=%q\n' "$DAEMONS_BUDGET" "$DAEMONS_BOUND"
	} >"$root/kernel-tier.conf"
	pack_initramfs "$root" "$out"
}

main() {
	local bzimage kernel_rc daemons_rc sim_rc=0 sim_daemons_rc=0 nonce start
	local boot_seconds=0
	[ "$(id -u)" -eq 0 ] || die "must run as root (builds a kernel, boots it)"
	command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing"
	[ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static)"
	start=$SECONDS
	bzimage=$(bash "$TIER_DIR/build-kernel.sh") || die "the cdev kernel did not build"
	log "kernel ready in $((SECONDS - start)) s: $bzimage"
	# x86_64_defconfig's INTEL_IOMMU/AMD_IOMMU select it with IOMMUFD: then
	# mtty's DMA logging reports, which Debian's kernel (and the simulator) cannot
	if grep -qx 'CONFIG_IOMMUFD_DRIVER=y' "$(dirname "$bzimage")/config"; then
		GUEST_PROGRAM_ARGS="$GUEST_PROGRAM_ARGS --iommufd-driver"
		SIM_ARGS="$SIM_ARGS --iommufd-driver"
	fi
	guest_program="$(cd "$BUILD" && pwd -P)/tests/conformance/migd-conformance"
	[ -x "$guest_program" ] || die "$guest_program missing: build the project first"
	check_guest_path "$guest_program"
	work=$(mktemp -d)
	nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	BEGIN_MARKER="@@vfio-migd-cdev-tier-begin-${nonce}@@"
	END_MARKER="@@vfio-migd-cdev-tier-end-${nonce}@@"
	DAEMONS_BEGIN_MARKER="@@vfio-migd-cdev-tier-daemons-begin-${nonce}@@"
	DAEMONS_END_MARKER="@@vfio-migd-cdev-tier-daemons-end-${nonce}@@"
	make_initramfs "$work/initrd.img"
	GUEST_KERNEL=$bzimage
	boot_until_program_ran "$work/initrd.img" "$work/console.log"
	kernel_rc=$(extract_guest_output "$work/console.log" "$work/kernel.tap")
	echo "== cdev kernel guest: migd-conformance --backend kernel $GUEST_PROGRAM_ARGS (exit ${kernel_rc})"
	cat "$work/kernel.tap"
	daemons_rc=$(extract_section "$DAEMONS_BEGIN_MARKER" "$DAEMONS_END_MARKER" "$work/kernel-daemons.tap")
	echo "== cdev kernel guest: cdev-daemons.sh --backend kernel (exit ${daemons_rc})"
	cat "$work/kernel-daemons.tap"

	echo "== host: migd-conformance --backend sim $SIM_ARGS"
	# shellcheck disable=SC2086 # options without spaces
	G_DEBUG=fatal-criticals "$guest_program" --backend sim $SIM_ARGS >"$work/sim.tap" \
		2>"$work/sim.err" || sim_rc=$?
	cat "$work/sim.tap"
	echo "== host: cdev-daemons.sh --backend sim"
	G_DEBUG=fatal-criticals sh "$DAEMONS_SCRIPT" --build "$BUILD" --backend sim \
		>"$work/sim-daemons.tap" 2>"$work/sim-daemons.err" || sim_daemons_rc=$?
	cat "$work/sim-daemons.tap"
	echo "== cdev kernel vs sim, case by case (boot and run: ${boot_seconds} s)"
	compare_and_count "$work/kernel.tap" "$kernel_rc" "$work/sim.tap" "$sim_rc"
	echo "-- daemons by cdev (cdev-daemons.sh)"
	compare_and_count "$work/kernel-daemons.tap" "$daemons_rc" \
		"$work/sim-daemons.tap" "$sim_daemons_rc"
	print_summary
	[ "$failed" -eq 0 ]
}

main
