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
# kernel/simulator agreement check. Exit status 0 only if nothing failed.
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
BASE_PACKAGES=(qemu-system-x86 busybox-static xz-utils cpio kmod linux-source-6.12)
SOURCE_TARBALL=/usr/src/linux-source-6.12.tar.xz
MTTY_MEMBER=linux-source-6.12/samples/vfio-mdev/mtty.c
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

mode=conformance
case "${1:-}" in
"") ;;
--smoke) mode=smoke ;;
*)
	echo "usage: $0 [--smoke]" >&2
	exit 2
	;;
esac

passed=0
failed=0
summary_printed=0
work=""
KVER=""
KROOT=""

log() {
	echo "check-kernel: $*"
}

print_summary() {
	summary_printed=1
	echo "${passed} passed, ${failed} failed"
}

# Any exit that did not print the counts (an error, set -e) still ends with
# the summary line, with the error counted as one failure.
on_exit() {
	local rc=$?
	if [ -n "$work" ] && [ -d "$work" ]; then
		rm -rf "$work"
	fi
	if [ "$summary_printed" -eq 0 ]; then
		[ "$rc" -ne 0 ] || rc=1
		failed=$((failed + 1))
		print_summary
	fi
	exit "$rc"
}
trap on_exit EXIT

die() {
	echo "check-kernel: ERROR: $*" >&2
	exit 1
}

is_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Prints the newest "6.12.N+deb12-amd64" for which apt knows both a
# linux-image and a linux-headers package; nothing if there is none.
newest_kernel_with_headers() {
	local images headers
	images=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64$' |
		sed -n 's/^linux-image-\(6\.12\.[0-9]*+deb12-amd64\) .*/\1/p' | sort -u)
	headers=$(apt-cache search --names-only '^linux-headers-6\.12\.[0-9]+\+deb12-amd64$' |
		sed -n 's/^linux-headers-\(6\.12\.[0-9]*+deb12-amd64\) .*/\1/p' | sort -u)
	comm -12 <(echo "$images") <(echo "$headers") | sed '/^$/d' | sort -V | tail -n 1
}

# Lists the packages (base packages and the headers for $1) not installed. The
# kernel image itself is never installed: on a host with a boot loader that
# would make the test kernel the default boot entry.
missing_packages() {
	local p
	for p in "${BASE_PACKAGES[@]}" "linux-headers-$1"; do
		is_installed "$p" || echo "$p"
	done
}

apt_install() {
	# INITRD=No: the guest boots our own initramfs, so the kernel's post-install
	# hook must not build one (it can fail in a container); the package is only
	# a guest kernel for QEMU.
	DEBIAN_FRONTEND=noninteractive INITRD=No apt-get install -y -q \
		-o DPkg::Lock::Timeout=600 --no-install-recommends "$@"
}

# Downloads linux-image-$KVER and unpacks it into the cache (KROOT), with a
# modules.dep of its own: the guest kernel and its modules come from there.
extract_kernel_image() {
	local dir="$CACHE_ROOT/$KVER/image" tmp debs
	KROOT="$dir"
	if [ -f "$dir/boot/vmlinuz-$KVER" ] && [ -f "$dir/lib/modules/$KVER/modules.dep" ]; then
		return
	fi
	mkdir -p "$CACHE_ROOT/$KVER"
	tmp=$(mktemp -d "$CACHE_ROOT/$KVER/image.XXXXXX")
	log "downloading linux-image-$KVER (unpacked into the cache, not installed)"
	(cd "$tmp" && apt-get download -q "linux-image-$KVER") ||
		die "apt-get download linux-image-$KVER failed"
	debs=("$tmp"/linux-image-*.deb)
	[ -f "${debs[0]}" ] || die "no linux-image-$KVER package downloaded"
	dpkg-deb -x "${debs[0]}" "$tmp/root"
	[ -f "$tmp/root/boot/vmlinuz-$KVER" ] || die "linux-image-$KVER has no /boot/vmlinuz-$KVER"
	depmod -b "$tmp/root" "$KVER"
	rm -rf "$dir"
	mv "$tmp/root" "$dir"
	rm -rf "$tmp"
}

install_packages() {
	local start=$SECONDS missing=()
	[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, builds a module)"
	KVER=$(newest_kernel_with_headers)
	if [ -n "$KVER" ]; then
		mapfile -t missing < <(missing_packages "$KVER")
	fi
	if [ -z "$KVER" ] || [ "${#missing[@]}" -gt 0 ]; then
		log "updating the package lists"
		apt-get update -q -o DPkg::Lock::Timeout=600
		KVER=$(newest_kernel_with_headers)
		[ -n "$KVER" ] ||
			die "apt knows no linux-image-6.12.*+deb12-amd64 with matching linux-headers (is bookworm-security in the sources?)"
		mapfile -t missing < <(missing_packages "$KVER")
		log "installing ${missing[*]}"
		apt_install "${missing[@]}"
	fi
	extract_kernel_image
	[ -d "/usr/src/linux-headers-$KVER" ] || die "/usr/src/linux-headers-$KVER missing"
	[ -f "$SOURCE_TARBALL" ] || die "$SOURCE_TARBALL missing (linux-source-6.12)"
	[ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static)"
	command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing"
	log "kernel $KVER; install step took $((SECONDS - start)) s"
}

# Builds mtty.ko for $KVER from the Debian source tarball; cached under
# $CACHE_ROOT/<kernel>/<linux-source package version>/. Prints its path.
build_mtty_module() {
	local start=$SECONDS srcver dir tmp
	srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
	dir="$CACHE_ROOT/$KVER/$srcver"
	if [ -f "$dir/mtty.ko" ]; then
		log "mtty.ko cached: $dir/mtty.ko" >&2
		echo "$dir/mtty.ko"
		return
	fi
	mkdir -p "$CACHE_ROOT/$KVER"
	tmp=$(mktemp -d "$CACHE_ROOT/$KVER/build.XXXXXX")
	log "extracting mtty.c from $SOURCE_TARBALL" >&2
	tar -xJf "$SOURCE_TARBALL" -C "$tmp" "$MTTY_MEMBER" ||
		die "could not extract $MTTY_MEMBER from $SOURCE_TARBALL"
	mv "$tmp/$MTTY_MEMBER" "$tmp/mtty.c"
	rm -rf "$tmp/linux-source-6.12"
	echo 'obj-m := mtty.o' >"$tmp/Kbuild"
	log "building mtty.ko against /usr/src/linux-headers-$KVER" >&2
	make -s -C "/usr/src/linux-headers-$KVER" M="$tmp" modules >&2 ||
		die "building mtty.ko failed"
	[ "$(modinfo -F vermagic "$tmp/mtty.ko" | cut -d' ' -f1)" = "$KVER" ] ||
		die "mtty.ko vermagic does not match $KVER"
	rm -rf "$dir"
	# a concurrent run may have finished first: keep its module
	mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
	[ -f "$dir/mtty.ko" ] || die "could not store mtty.ko in $dir"
	log "mtty.ko built in $((SECONDS - start)) s: $dir/mtty.ko" >&2
	echo "$dir/mtty.ko"
}

build_project() {
	command -v meson >/dev/null || die "meson missing: run 'make deps'"
	command -v ninja >/dev/null || die "ninja missing: run 'make deps'"
	if [ ! -f "$BUILD/build.ninja" ]; then
		meson setup "$BUILD" -Dwerror=true || die "meson setup $BUILD failed"
	fi
	ninja -C "$BUILD" || die "the project does not build (ninja -C $BUILD)"
}

# Fails unless the guest, which sees the host's root, sees $1 as it is.
check_guest_path() {
	case "$1" in
	/proc/* | /sys/* | /dev/*)
		die "$1 is under a directory the guest replaces with its own mount; use another BUILD or checkout"
		;;
	esac
}

# Prints the guest program's absolute path (the guest sees the host's root).
conformance_program() {
	local prog
	prog="$(cd "$BUILD" && pwd -P)/tests/conformance/migd-conformance"
	[ -x "$prog" ] || die "$prog missing: the conformance program is not built"
	check_guest_path "$prog"
	echo "$prog"
}

# Appends to the global load order module $1 (a name) after its dependencies,
# depth first, skipping built-ins and modules already listed.
add_module_with_deps() {
	local name=$1 file deps dep
	name=${name//-/_}
	case " ${load_order[*]} " in *" $name "*) return ;; esac
	file=$(modinfo -b "$KROOT" -k "$KVER" -F filename "$name" 2>/dev/null) ||
		die "module $name not found for $KVER"
	case "$file" in "(builtin)" | "") return ;; esac
	deps=$(modinfo -b "$KROOT" -k "$KVER" -F depends "$name")
	for dep in ${deps//,/ }; do
		add_module_with_deps "$dep"
	done
	load_order+=("$name")
	module_files["$name"]=$file
}

copy_module() { # source-file dest-ko
	case "$1" in
	*.ko.xz) xz -dc "$1" >"$2" ;;
	*.ko) cp "$1" "$2" ;;
	*) die "unsupported module compression: $1" ;;
	esac
}

# Writes the initramfs to $1: busybox, the decompressed modules, /init and
# its configuration.
make_initramfs() {
	local out=$1 mtty_ko=$2 guest_program=$3 root="$work/initramfs" name dep
	local guest_build daemons_script
	guest_build=$(cd "$BUILD" && pwd -P)
	daemons_script="$(pwd -P)/$DAEMONS_SCRIPT"
	check_guest_path "$guest_build"
	check_guest_path "$daemons_script"
	local -a load_order=()
	local -A module_files=()
	mkdir -p "$root"/{bin,dev,proc,sys,host,lib/modules}
	cp /bin/busybox "$root/bin/busybox"
	mknod -m 600 "$root/dev/console" c 5 1
	for name in "${GUEST_MODULES[@]}"; do
		add_module_with_deps "$name"
	done
	for dep in $(modinfo -F depends "$mtty_ko" | tr ',' ' '); do
		add_module_with_deps "$dep"
	done
	for name in "${load_order[@]}"; do
		copy_module "${module_files[$name]}" "$root/lib/modules/$name.ko"
	done
	cp "$mtty_ko" "$root/lib/modules/mtty.ko"
	load_order+=(mtty)
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
	(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out"
}

# Boots the guest; the serial console goes to $2. Fails on a timeout.
boot_guest() {
	local initrd=$1 console=$2 start=$SECONDS rc=0
	log "booting $KROOT/boot/vmlinuz-$KVER under QEMU (TCG), bound ${TIMEOUT} s"
	timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -accel tcg -m 1024 -smp 2 \
		-nographic -no-reboot -nic none \
		-kernel "$KROOT/boot/vmlinuz-$KVER" -initrd "$initrd" \
		-append 'console=ttyS0 quiet loglevel=1 panic=-1' \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		</dev/null >"$console" 2>&1 || rc=$?
	boot_seconds=$((SECONDS - start))
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		tail -n 40 "$console" | tr -d '\r' >&2
		die "boot and run exceeded ${TIMEOUT} s (KERNEL_TIER_TIMEOUT); console above"
	fi
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$console" | tr -d '\r' >&2
		die "qemu-system-x86_64 exited with $rc; console above"
	fi
	log "boot and run took ${boot_seconds} s"
}

# Boots until the guest reached the test program (its begin marker is on the
# console), at most BOOT_TRIES times. Under TCG the emulated kernel very rarely
# oopses early in boot (seen once in dozens of boots, in sched_init_debug),
# before anything of ours runs; that says nothing about the code under test.
# A boot that reached the program is never repeated, whatever its results.
boot_until_program_ran() {
	local initrd=$1 console=$2 try
	for try in $(seq 1 "$BOOT_TRIES"); do
		boot_guest "$initrd" "$console"
		# via a file: with pipefail, grep -q closing the pipe early would fail the test
		tr -d '\r' <"$console" >"$console.txt"
		if grep -qxF "$BEGIN_MARKER" "$console.txt"; then
			return
		fi
		echo "check-kernel: boot $try of $BOOT_TRIES never reached the test program:" >&2
		tail -n 8 "$console.txt" >&2
	done
}

# Writes the guest program's output (between the markers) to $2 and prints
# the program's exit status; fails if the markers are missing.
extract_guest_output() {
	local console=$1 out=$2 rc
	tr -d '\r' <"$console" >"$work/console.txt"
	grep -qxF "$BEGIN_MARKER" "$work/console.txt" || {
		tail -n 40 "$work/console.txt" >&2
		die "no output from the guest (begin marker missing); console above"
	}
	sed -n "/^${BEGIN_MARKER}\$/,/^${END_MARKER} rc=/p" "$work/console.txt" |
		sed '1d;$d' >"$out"
	rc=$(sed -n "s/^${END_MARKER} rc=\([0-9]*\)\$/\1/p" "$work/console.txt")
	if [ -z "$rc" ]; then
		cat "$out" >&2
		die "guest output ended without the end marker (program crashed or hung?)"
	fi
	echo "$rc"
}

# The same for the daemons section (after the conformance program's), which
# must not cost the conformance results: without its end marker it keeps what
# the guest printed, says so on stderr and prints 125; the comparison then
# counts the cases that are missing.
extract_daemons_output() {
	local out=$1 rc
	sed -n "/^${DAEMONS_BEGIN_MARKER}\$/,/^${DAEMONS_END_MARKER} rc=/p" "$work/console.txt" |
		sed "1d;/^${DAEMONS_END_MARKER} rc=/d" >"$out"
	rc=$(sed -n "s/^${DAEMONS_END_MARKER} rc=\([0-9]*\)\$/\1/p" "$work/console.txt")
	if [ -z "$rc" ]; then
		echo "check-kernel: the daemons section ended without its end marker (guest died or hung?)" >&2
		rc=125
	fi
	echo "$rc"
}

# Compares one kernel TAP file with its simulator twin and adds the counts.
compare_and_count() { # kernel-tap kernel-rc sim-tap sim-rc
	local counts
	python3 "$TIER_DIR/compare-tap.py" "$1" "$2" "$3" "$4" "$work/counts"
	counts=$(cat "$work/counts")
	passed=$((passed + ${counts% *}))
	failed=$((failed + ${counts#* }))
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
	daemons_rc=$(extract_daemons_output "$work/kernel-daemons.tap")
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
