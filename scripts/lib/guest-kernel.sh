# shellcheck shell=bash
# What the QEMU tiers share (scripts/check-kernel.sh, scripts/check-systemd.sh):
# installing their packages, Debian's newest 6.12 kernel unpacked into a cache,
# mtty.ko built out of tree, the module dependency walk, the initramfs basics,
# the boot loop and reading results between markers on the serial console.
# Sourced, never run. The sourcing script defines:
#   log MSG..., die MSG...   its own messages (die exits non-zero)
#   TIER_NAME                its name in messages (check-kernel, check-systemd)
#   TIER_DIR                 for compare_and_count: where compare-tap.py is
#   CACHE_ROOT               where kernels and modules are cached
#   BASE_PACKAGES            Debian packages it needs besides the kernel headers
#   TIMEOUT, BOOT_TRIES      the bound of one boot (s), boots to try
#   work                     its scratch directory (set before the initramfs)
# and, for the boot: QEMU_ACCEL (default "-accel tcg"), KERNEL_APPEND (the
# kernel command line), QEMU_EXTRA (more QEMU arguments, an array) and
# GUEST_KERNEL (the kernel image; default KROOT's vmlinuz-KVER: the cdev tier
# boots the kernel it built).
# install_packages sets KVER and KROOT.
# shellcheck disable=SC2154 # (the variables above are the sourcing script's)

GK_SOURCE_TARBALL=/usr/src/linux-source-6.12.tar.xz
GK_MTTY_MEMBER=linux-source-6.12/samples/vfio-mdev/mtty.c

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
	[ -f "$GK_SOURCE_TARBALL" ] || die "$GK_SOURCE_TARBALL missing (linux-source-6.12)"
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
	log "extracting mtty.c from $GK_SOURCE_TARBALL" >&2
	tar -xJf "$GK_SOURCE_TARBALL" -C "$tmp" "$GK_MTTY_MEMBER" ||
		die "could not extract $GK_MTTY_MEMBER from $GK_SOURCE_TARBALL"
	mv "$tmp/$GK_MTTY_MEMBER" "$tmp/mtty.c"
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

# Fails unless the guest, which sees the host's root, sees $1 as it is.
check_guest_path() {
	case "$1" in
	/proc/* | /sys/* | /dev/*)
		die "$1 is under a directory the guest replaces with its own mount; use another BUILD or checkout"
		;;
	esac
}

# Appends to the caller's load_order (an array) module $1 (a name) after its
# dependencies, depth first, skipping built-ins and modules already listed;
# module_files (an associative array) gets its file.
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

# The initramfs basics in directory $1: busybox, /dev/console, what the /init
# scripts share (/lib/guest-common.sh), the modules $3...
# with their dependencies and then mtty.ko ($2), decompressed under
# /lib/modules. Sets the caller's load_order (declared by it) to the order to
# insmod them in.
initramfs_basics() { # root mtty-ko module...
	local root=$1 mtty_ko=$2 name dep
	shift 2
	local -A module_files=()
	mkdir -p "$root"/{bin,dev,proc,sys,host,lib/modules}
	cp /bin/busybox "$root/bin/busybox"
	cp scripts/lib/guest-init-common.sh "$root/lib/guest-common.sh"
	mknod -m 600 "$root/dev/console" c 5 1
	for name in "$@"; do
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
}

# Packs directory $1 into the gzip'ed cpio initramfs $2.
pack_initramfs() { # root out
	(cd "$1" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$2"
}

# Boots the guest; the serial console goes to $2. Fails on a timeout. Sets
# boot_seconds (the caller's) to the time QEMU ran.
boot_guest() {
	local initrd=$1 console=$2 start=$SECONDS rc=0
	local kernel=${GUEST_KERNEL:-$KROOT/boot/vmlinuz-$KVER}
	local -a accel
	read -r -a accel <<<"${QEMU_ACCEL:--accel tcg}"
	log "booting $kernel under QEMU (${accel[*]}), bound ${TIMEOUT} s"
	timeout -k 10 "$TIMEOUT" qemu-system-x86_64 "${accel[@]}" -m "${QEMU_MEMORY:-1024}" -smp 2 \
		-nographic -no-reboot -nic none \
		-kernel "$kernel" -initrd "$initrd" \
		-append "${KERNEL_APPEND:-console=ttyS0 quiet loglevel=1 panic=-1}" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		${QEMU_EXTRA[@]+"${QEMU_EXTRA[@]}"} \
		</dev/null >"$console" 2>&1 || rc=$?
	boot_seconds=$((SECONDS - start))
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		tail -n 40 "$console" | tr -d '\r' >&2
		die "boot and run exceeded ${TIMEOUT} s (${TIMEOUT_ENV:-its timeout}); console above"
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
		echo "$TIER_NAME: boot $try of $BOOT_TRIES never reached the test program:" >&2
		tail -n 8 "$console.txt" >&2
	done
}

# Writes the guest program's output (between BEGIN_MARKER and END_MARKER) to
# $2 and prints the program's exit status; fails if the markers are missing.
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

# A later section of the console between BEGIN and END markers (the daemons'
# after the conformance program's), into OUT. Its loss must not cost the results
# before it: without its end marker it keeps what the guest printed, says so on
# stderr and prints 125, and the comparison then counts the missing cases.
extract_section() { # begin-marker end-marker out
	local rc
	sed -n "/^$1\$/,/^$2 rc=/p" "$work/console.txt" | sed "1d;/^$2 rc=/d" >"$3"
	rc=$(sed -n "s/^$2 rc=\([0-9]*\)\$/\1/p" "$work/console.txt")
	if [ -z "$rc" ]; then
		echo "$TIER_NAME: a section ended without its end marker (guest died or hung?)" >&2
		rc=125
	fi
	echo "$rc"
}

# Compares a kernel TAP file with its simulator twin, case by case
# ($TIER_DIR/compare-tap.py), and adds the counts to passed and failed.
compare_and_count() { # kernel-tap kernel-rc sim-tap sim-rc
	local counts
	python3 "$TIER_DIR/compare-tap.py" "$1" "$2" "$3" "$4" "$work/counts"
	counts=$(cat "$work/counts")
	passed=$((passed + ${counts% *}))
	failed=$((failed + ${counts#* }))
}
