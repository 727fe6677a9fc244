#!/usr/bin/env bash
# Builds the kernel tier's second kernel (device cdev + iommufd + VFIO debugfs,
# mtty built in) from Debian's linux-source-6.12 and caches its bzImage.
#
#   bash scripts/kernel-tier/build-kernel.sh      prints the bzImage's path
#
# The cache entry is keyed by the linux-source-6.12 package version and the
# hash of the config fragment's settings (its comments aside): <cache>/cdev-kernel/<version>-<hash>/bzImage (with its
# config, build.log and build-seconds beside it). A second run, or one racing a
# first, reuses it (flock). Only the bzImage is built: everything the tier
# needs is built in, so the defconfig modules would cost minutes for nothing.
#
# Environment: KERNEL_TIER_CACHE (as check-kernel.sh), KERNEL_BUILD_JOBS
# (make -j, default 2), KERNEL_BUILD_NICE (default 19: the build shares the
# machine). Messages go to stderr; only the path goes to stdout.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."

CACHE_ROOT=${KERNEL_TIER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-migd/kernel-tier}
JOBS=${KERNEL_BUILD_JOBS:-2}
NICE=${KERNEL_BUILD_NICE:-19}
FRAGMENT=scripts/kernel-tier/cdev-kernel.config
SOURCE_TARBALL=/usr/src/linux-source-6.12.tar.xz
BUILD_PACKAGES=(flex bison bc libelf-dev libssl-dev make gcc xz-utils linux-source-6.12)

log() {
	echo "build-kernel: $*" >&2
}

die() {
	echo "build-kernel: ERROR: $*" >&2
	exit 1
}

install_build_packages() {
	local p missing=()
	for p in "${BUILD_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return
	[ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} and not root to install them"
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 \
		--no-install-recommends "${missing[@]}" >&2 || {
		apt-get update -q -o DPkg::Lock::Timeout=600 >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 \
			--no-install-recommends "${missing[@]}" >&2
	}
}

# Fails unless every CONFIG_ line of the fragment holds in .config $1
# (olddefconfig silently drops an option whose dependencies are unmet).
check_config() {
	local line bad=0
	while IFS= read -r line; do
		case "$line" in CONFIG_*) ;; *) continue ;; esac
		grep -qxF "$line" "$1" || {
			log "config fragment line not in the final .config: $line"
			bad=1
		}
	done <"$FRAGMENT"
	[ "$bad" -eq 0 ] || die "the config fragment does not apply to this source"
}

# The source tree stays in the cache (<cache>/cdev-kernel/src-<version>/), so
# a changed fragment rebuilds only what the change touches.
source_tree() { # version
	local tree="$CACHE_ROOT/cdev-kernel/src-$1" tmp
	if [ ! -f "$tree/.extracted" ]; then
		rm -rf "$tree"
		tmp=$(mktemp -d "$CACHE_ROOT/cdev-kernel/src.XXXXXX")
		log "extracting $SOURCE_TARBALL"
		tar -xJf "$SOURCE_TARBALL" -C "$tmp"
		[ -f "$tmp/linux-source-6.12/Makefile" ] ||
			die "no linux-source-6.12/Makefile in $SOURCE_TARBALL"
		mv -T "$tmp/linux-source-6.12" "$tree"
		rm -rf "$tmp"
		touch "$tree/.extracted"
	fi
	echo "$tree"
}

build() { # dir version
	local dir=$1 src start=$SECONDS
	src=$(source_tree "$2")
	log "configuring: x86_64_defconfig + $FRAGMENT"
	make -s -C "$src" x86_64_defconfig >&2
	cat "$FRAGMENT" >>"$src/.config"
	make -s -C "$src" olddefconfig >&2
	check_config "$src/.config"
	log "building bzImage (nice $NICE, make -j$JOBS); log: $src/build.log"
	if ! nice -n "$NICE" make -C "$src" -j"$JOBS" bzImage >"$src/build.log" 2>&1; then
		tail -n 30 "$src/build.log" >&2
		die "kernel build failed (log above)"
	fi
	local secs=$((SECONDS - start)) tmp
	tmp=$(mktemp -d "$CACHE_ROOT/cdev-kernel/out.XXXXXX")
	cp "$src/arch/x86/boot/bzImage" "$tmp/bzImage"
	cp "$src/.config" "$tmp/config"
	cp "$src/build.log" "$tmp/build.log"
	echo "$secs" >"$tmp/build-seconds"
	rm -rf "$dir"
	mv -T "$tmp" "$dir"
	log "kernel built in ${secs} s (configure, bzImage): $dir/bzImage"
}

main() {
	install_build_packages
	[ -f "$SOURCE_TARBALL" ] || die "$SOURCE_TARBALL missing (linux-source-6.12)"
	local srcver hash dir
	srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
	# the settings only: a comment edit keeps the cached kernel
	hash=$(grep -E '^CONFIG_|^# CONFIG_.* is not set$' "$FRAGMENT" | sha256sum | cut -c1-12)
	dir="$CACHE_ROOT/cdev-kernel/${srcver}-${hash}"
	mkdir -p "$CACHE_ROOT/cdev-kernel"
	exec 9>"$CACHE_ROOT/cdev-kernel/lock"
	flock 9
	if [ -f "$dir/bzImage" ]; then
		log "cached: $dir/bzImage (built in $(cat "$dir/build-seconds" 2>/dev/null || echo '?') s)"
	else
		build "$dir" "$srcver"
	fi
	echo "$dir/bzImage"
}

main
