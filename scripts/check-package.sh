#!/usr/bin/env bash
# Builds vfio-migd's Debian packages (debian/), lints them and installs them for
# real into a throw-away root, then checks the installed tree (README "Install on
# a host").
#
#   scripts/check-package.sh               build + lintian + install test (make check-package)
#   scripts/check-package.sh --build-only  build the .debs only (make package)
#
# The packages land in $DEB_OUT (default build-deb/ in the tree), which other tiers
# install from. dpkg-buildpackage writes beside the source tree, so the build runs
# on a copy of the tree (tracked and new files, no build directories) in a
# temporary directory; nothing is written beside the checkout.
#
# The throw-away root is an overlay of / with a tmpfs on top, in a private mount
# namespace (unshare -m): `dpkg -i` runs the maintainer scripts for real in a chroot
# of it, and every change vanishes with the namespace. policy-rc.d forbids starting
# services there. Needs root.
#
# Each check is a TAP line; the last line is "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
SRC=$(pwd)
DEB_OUT=${DEB_OUT:-$SRC/build-deb}
build_only=0
[ "${1:-}" = "--build-only" ] && build_only=1

passed=0
failed=0
n=0
ok() {
	n=$((n + 1))
	passed=$((passed + 1))
	echo "ok $n - $*"
}
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $*"
}
finish() {
	echo "${passed} passed, ${failed} failed"
	[ "$failed" -eq 0 ]
	exit
}

# the packaging tools (the build dependencies are scripts/install-deps.sh's)
tools=(dpkg-dev debhelper)
[ "$build_only" -eq 1 ] || tools+=(lintian)
missing=()
for p in "${tools[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "check-package: installing ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	export DEBIAN_FRONTEND=noninteractive
	if ! { $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; }; then
		not_ok "install ${missing[*]}"
		finish
	fi
fi

# --- build -------------------------------------------------------------------
version=$(dpkg-parsechangelog -S Version)
work=$(mktemp -d /tmp/vfio-migd-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
tree="$work/vfio-migd-$version"
mkdir -p "$tree"
# what git knows or would add (no build trees); a file deleted in the worktree is skipped
git ls-files -z -c -o --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf - | tar -xf - -C "$tree"
build_log="$work/build.log"
start=$(date +%s)
if (cd "$tree" && DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-parallel=2} \
	dpkg-buildpackage -us -uc -b) >"$build_log" 2>&1; then
	secs=$(($(date +%s) - start))
	mkdir -p "$DEB_OUT"
	rm -f "$DEB_OUT"/vfio-migd*.deb "$DEB_OUT"/vfio-migd*.ddeb "$DEB_OUT"/vfio-migd_*.changes \
		"$DEB_OUT"/vfio-migd_*.buildinfo
	cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$DEB_OUT"/
	cp "$work"/*.ddeb "$DEB_OUT"/ 2>/dev/null
	ok "dpkg-buildpackage -us -uc -b builds vfio-migd and vfio-migd-plugin-dev (${secs} s)"
else
	tail -n 40 "$build_log" | sed 's/^/# /'
	not_ok "dpkg-buildpackage -us -uc -b (log above)"
	finish
fi
arch=$(dpkg --print-architecture)
deb="$DEB_OUT/vfio-migd_${version}_${arch}.deb"
dev_deb="$DEB_OUT/vfio-migd-plugin-dev_${version}_${arch}.deb"
changes="$DEB_OUT/vfio-migd_${version}_${arch}.changes"
for f in "$deb" "$dev_deb"; do
	echo "# $(basename "$f"): $(du -k "$f" | cut -f1) KiB, installed $(dpkg-deb -f "$f" Installed-Size) KiB"
done
if [ "$build_only" -eq 1 ]; then
	echo "packages in $DEB_OUT"
	finish
fi

# --- lintian -----------------------------------------------------------------
lintian_log="$work/lintian.log"
lintian --fail-on error "$changes" >"$lintian_log" 2>&1
lintian_rc=$?
sed 's/^/# /' "$lintian_log"
errors=$(grep -c '^E: ' "$lintian_log")
warnings=$(grep -c '^W: ' "$lintian_log")
if [ "$lintian_rc" -eq 0 ] && [ "$errors" -eq 0 ]; then
	ok "lintian --fail-on error: no errors ($warnings warnings)"
else
	not_ok "lintian --fail-on error: $errors errors, $warnings warnings (exit $lintian_rc)"
fi

# --- make install (without packages) ------------------------------------------
# the same layout through the Makefile, into a DESTDIR; a second run keeps an
# edited configuration file
dest="$work/destdir"
install_log="$work/make-install.log"
make_install() {
	make -C "$tree" install DESTDIR="$dest" BUILD_INSTALL="$work/build-install" >>"$install_log" 2>&1
}
start=$(date +%s)
if make_install; then
	ok "make install DESTDIR=... ($(($(date +%s) - start)) s)"
	layout_errors=""
	for f in usr/sbin/vfio-migd usr/bin/vfio-migctl usr/libexec/vfio-migd/vfio-migd-qemu-hook \
		usr/share/dbus-1/system.d/org.vfiomigd.Migd1.conf \
		usr/share/dbus-1/system-services/org.vfiomigd.Migd1.service \
		usr/share/polkit-1/actions/org.vfiomigd.migd.policy \
		lib/systemd/system/vfio-migd.service lib/systemd/system/vfio-migd.socket \
		etc/vfio-migd/vfio-migd.conf etc/vfio-migd/libvirt-hook.conf \
		usr/share/doc/vfio-migd/examples/vfio-migd.conf \
		usr/include/vfio-migd-plugin-1/migd-plugin.h; do
		[ -f "$dest/$f" ] || layout_errors+=" missing:/$f"
	done
	[ -d "$dest/etc/vfio-migd/devices.d" ] || layout_errors+=" missing:/etc/vfio-migd/devices.d"
	[ "$(readlink "$dest/etc/libvirt/hooks/qemu.d/vfio-migd-qemu-hook")" = \
		/usr/libexec/vfio-migd/vfio-migd-qemu-hook ] || layout_errors+=" qemu.d-link"
	[ -z "$(find "$dest" -name '*demo*' -o -name '*vmlab*')" ] || layout_errors+=" demo-installed"
	[ -z "$(find "$dest/etc" -type f -exec grep -l '^.ELF' {} +)" ] || layout_errors+=" program-under-etc"
	[ ! -e "$dest/usr/local" ] || layout_errors+=" /usr/local"
	if [ -z "$layout_errors" ]; then
		ok "make install: prefix /usr, /etc, /lib/systemd/system, hook in /usr/libexec, no demo"
	else
		not_ok "make install layout:$layout_errors"
	fi
	echo '# edited by check-package' >>"$dest/etc/vfio-migd/vfio-migd.conf"
	if make_install && grep -q 'edited by check-package' "$dest/etc/vfio-migd/vfio-migd.conf"; then
		ok "make install again keeps an edited /etc/vfio-migd/vfio-migd.conf"
	else
		not_ok "make install again keeps an edited /etc/vfio-migd/vfio-migd.conf"
	fi
else
	tail -n 30 "$install_log" | sed 's/^/# /'
	not_ok "make install DESTDIR=... (log above)"
fi

# --- install into a throw-away root ------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
	not_ok "install test: needs root (unshare -m, mount, chroot)"
	finish
fi
# the checks run inside the chroot and print "ok - ..." / "not ok - ..." lines,
# numbered here
inner="$work/inner.sh"
cat >"$inner" <<'INNER'
# shellcheck disable=SC2016 # the sh -c scripts expand their own arguments
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive
cd /tmp/vfio-migd-check || exit 1
t() { # t DESCRIPTION COMMAND...: one check; a failing command's output as diagnostics
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		echo "ok - $desc"
	else
		echo "not ok - $desc"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/# /'
	fi
}
# services never start here
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
dpkg --purge vfio-migd-plugin-dev vfio-migd >/dev/null 2>&1

t "dpkg -i installs both packages (maintainer scripts run)" \
	dpkg -i vfio-migd_*.deb vfio-migd-plugin-dev_*.deb
t "dpkg-query: both installed" sh -c \
	'[ "$(dpkg-query -W -f="\${Status}|" vfio-migd vfio-migd-plugin-dev)" = "install ok installed|install ok installed|" ]'
for f in /usr/sbin/vfio-migd /usr/bin/vfio-migctl /usr/libexec/vfio-migd/vfio-migd-qemu-hook; do
	t "program $f" test -x "$f" -a -f "$f"
done
plugindir=$(pkg-config --variable=plugindir vfio-migd-plugin-1)
for f in /lib/systemd/system/vfio-migd.service /lib/systemd/system/vfio-migd.socket \
	/usr/share/dbus-1/system.d/org.vfiomigd.Migd1.conf \
	/usr/share/dbus-1/system-services/org.vfiomigd.Migd1.service \
	/usr/share/dbus-1/interfaces/org.vfiomigd.Migd1.xml \
	/usr/share/polkit-1/actions/org.vfiomigd.migd.policy \
	/usr/share/man/man8/vfio-migd.8.gz /usr/share/man/man1/vfio-migctl.1.gz \
	/usr/share/man/man5/vfio-migd.conf.5.gz /usr/share/bash-completion/completions/vfio-migctl \
	/etc/vfio-migd/vfio-migd.conf /etc/vfio-migd/libvirt-hook.conf \
	/usr/share/doc/vfio-migd/examples/vfio-migd.conf /usr/share/doc/vfio-migd/examples/libvirt-hook.conf \
	"$plugindir/migd-plugin-mlx5.so" "$plugindir/migd-plugin-hisi_acc.so" \
	/usr/include/vfio-migd-plugin-1/migd-plugin.h /usr/share/doc/vfio-migd-plugin-dev/plugins.md.gz; do
	t "file $f" test -f "$f"
done
t "directory /etc/vfio-migd/devices.d" test -d /etc/vfio-migd/devices.d
t "the plugin directory is $plugindir (the daemon's default)" sh -c \
	"vfio-migd --help | grep -qF -- '$plugindir)'"
t "qemu.d/vfio-migd-qemu-hook is a symlink to /usr/libexec/vfio-migd/vfio-migd-qemu-hook" sh -c \
	'[ -L /etc/libvirt/hooks/qemu.d/vfio-migd-qemu-hook ] &&
	 [ "$(readlink -f /etc/libvirt/hooks/qemu.d/vfio-migd-qemu-hook)" = /usr/libexec/vfio-migd/vfio-migd-qemu-hook ] &&
	 [ -x /etc/libvirt/hooks/qemu.d/vfio-migd-qemu-hook ]'
t "no program under /etc" sh -c \
	'for f in $(dpkg -L vfio-migd | grep "^/etc/"); do
		[ -L "$f" ] || [ ! -f "$f" ] || ! head -c 4 "$f" | grep -q ELF || { echo "$f is a program"; exit 1; }
	done'
t "the unit runs /usr/sbin/vfio-migd" grep -qx 'ExecStart=/usr/sbin/vfio-migd' /lib/systemd/system/vfio-migd.service
t "conffiles: /etc/vfio-migd/vfio-migd.conf and libvirt-hook.conf" sh -c \
	'c=$(dpkg-query -W -f="\${Conffiles}" vfio-migd) && echo "$c" &&
	 echo "$c" | grep -q "^ /etc/vfio-migd/vfio-migd.conf " &&
	 echo "$c" | grep -q "^ /etc/vfio-migd/libvirt-hook.conf "'
t "no demo in the packages" sh -c '! dpkg -L vfio-migd vfio-migd-plugin-dev | grep -E "demo|vmlab"'
t "vfio-migd.service enabled (multi-user.target)" \
	test -L /etc/systemd/system/multi-user.target.wants/vfio-migd.service
t "vfio-migd.socket not enabled (opt-in)" sh -c \
	'! [ -e /etc/systemd/system/sockets.target.wants/vfio-migd.socket ] &&
	 ! deb-systemd-helper --quiet was-enabled vfio-migd.socket'
t "vfio-migd --version" sh -c 'vfio-migd --version | grep -qx "vfio-migd $1"' - "$VERSION"
t "vfio-migctl --version" sh -c 'vfio-migctl --version | grep -qx "vfio-migctl $1"' - "$VERSION"

# the hook through qemu.d's symlink: the shipped configuration maps nothing, so it
# lets every migration in; one that maps the domain makes it ask the daemon
# (/usr/bin/vfio-migctl), which does not run here, so it refuses
xml='<domain type="kvm"><name>g1</name><uuid>0b6c3f2e-3a4b-4c5d-8e9f-a0b1c2d3e4f5</uuid></domain>'
t "hook via qemu.d: the shipped config lets an unmapped domain in" sh -c \
	'out=$(echo "$1" | /etc/libvirt/hooks/qemu.d/vfio-migd-qemu-hook g1 migrate begin -) && [ -z "$out" ]' - "$xml"
printf '\n# edited by check-package\n[hook]\ntimeout-ms=3000\n[domain g1]\ndevices=sim0\n' \
	>>/etc/vfio-migd/libvirt-hook.conf
echo '# edited by check-package' >>/etc/vfio-migd/vfio-migd.conf
t "hook via qemu.d reads /etc/vfio-migd/libvirt-hook.conf: a mapped domain is refused without the daemon" sh -c \
	'out=$(echo "$1" | timeout 20 /etc/libvirt/hooks/qemu.d/vfio-migd-qemu-hook g1 migrate begin - 2>&1);
	 rc=$?; echo "exit $rc: $out"; [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] &&
	 echo "$out" | grep -q "refusing the incoming migration of domain .g1.: cannot prepare vfio-migd devices sim0"' \
	- "$xml"

# the SDK: an out-of-tree plugin (docs/plugins.md) builds, and the installed
# daemon loads it beside the packaged plugins
mkdir -p /tmp/myplugin
cat >/tmp/myplugin/my.c <<'EOF'
#include <gmodule.h>
#include <migd-plugin.h>

struct _MyPlugin { MigdPlugin parent_instance; };
G_DECLARE_FINAL_TYPE(MyPlugin, my_plugin, MY, PLUGIN, MigdPlugin)
G_DEFINE_TYPE(MyPlugin, my_plugin, MIGD_TYPE_PLUGIN)

static guint
my_plugin_match(MigdPlugin *plugin, MigdDevice *device, const MigdDeviceIdentity *id)
{
	return g_strcmp0(id->driver, "my_vfio_pci") == 0 ? MIGD_PLUGIN_SCORE_DRIVER : 0;
}

static void my_plugin_init(MyPlugin *self) {}
static void my_plugin_class_init(MyPluginClass *klass)
{
	MIGD_PLUGIN_CLASS(klass)->match = my_plugin_match;
}

MIGD_PLUGIN_DEFINE_MODULE("my", my_plugin_get_type);
EOF
t "pkg-config --cflags vfio-migd-plugin-1" sh -c \
	'pkg-config --cflags vfio-migd-plugin-1 | grep -q -- "-I/usr/include/vfio-migd-plugin-1"'
t "an out-of-tree plugin compiles against the installed SDK (docs/plugins.md's command)" sh -c \
	'cd /tmp/myplugin && cc -Wall -Werror -shared -fPIC -o migd-plugin-my.so my.c $(pkg-config --cflags vfio-migd-plugin-1)'
t "the installed daemon loads it and the packaged plugins" sh -c \
	'log=$(G_MESSAGES_DEBUG=all timeout 30 dbus-run-session -- timeout -s INT 3 \
		vfio-migd --session --plugin-dir "$1:/tmp/myplugin" 2>&1); echo "$log";
	 echo "$log" | grep -q "loaded plugin my from /tmp/myplugin/migd-plugin-my.so" &&
	 echo "$log" | grep -q "loaded plugin mlx5 from $1/" &&
	 echo "$log" | grep -q "loaded plugin hisi_acc from $1/"' - "$plugindir"

# a reinstall keeps the operator's edits
t "dpkg -i --force-confold again (reinstall)" \
	dpkg -i --force-confold vfio-migd_*.deb vfio-migd-plugin-dev_*.deb
t "an edited vfio-migd.conf survives the reinstall" grep -q 'edited by check-package' /etc/vfio-migd/vfio-migd.conf
t "an edited libvirt-hook.conf survives the reinstall" grep -q 'edited by check-package' /etc/vfio-migd/libvirt-hook.conf

t "dpkg -r removes both" dpkg -r vfio-migd-plugin-dev vfio-migd
t "after dpkg -r: programs and plugins gone, conffiles kept" sh -c \
	'! [ -e /usr/sbin/vfio-migd ] && ! [ -e /usr/libexec/vfio-migd ] && ! [ -e "$1" ] &&
	 ! [ -e /etc/libvirt/hooks/qemu.d/vfio-migd-qemu-hook ] && [ -f /etc/vfio-migd/vfio-migd.conf ]' - "$plugindir"
t "dpkg --purge" dpkg --purge vfio-migd-plugin-dev vfio-migd
t "after purge: /etc/vfio-migd and the unit links gone, not known to dpkg" sh -c \
	'! [ -e /etc/vfio-migd ] && ! [ -e /etc/systemd/system/multi-user.target.wants/vfio-migd.service ] &&
	 ! dpkg-query -W -f="\${Status}\n" vfio-migd 2>/dev/null | grep -q installed'
INNER

mnt=$(mktemp -d /tmp/vfio-migd-root.XXXXXX)
# shellcheck disable=SC2016 # expanded by the inner bash
unshare -m --propagation private bash -c '
	set -e
	mnt=$1 inner=$2 version=$3
	shift 3
	mount -t tmpfs tmpfs "$mnt"
	mkdir "$mnt/upper" "$mnt/work" "$mnt/root"
	mount -t overlay overlay -o "lowerdir=/,upperdir=$mnt/upper,workdir=$mnt/work" "$mnt/root"
	mount -t proc proc "$mnt/root/proc"
	mount --rbind /dev "$mnt/root/dev"
	mount -t tmpfs tmpfs "$mnt/root/run"   # no /run/systemd/system: no systemd here
	mount -t tmpfs tmpfs "$mnt/root/tmp"
	mkdir "$mnt/root/tmp/vfio-migd-check"
	cp "$@" "$inner" "$mnt/root/tmp/vfio-migd-check/"
	VERSION=$version timeout 600 chroot "$mnt/root" bash /tmp/vfio-migd-check/inner.sh
' - "$mnt" "$inner" "$version" "$deb" "$dev_deb" >"$work/install.log" 2>&1
install_rc=$?
rmdir "$mnt" 2>/dev/null
while IFS= read -r line; do
	case "$line" in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) not_ok "${line#not ok - }" ;;
	"# "*) echo "$line" ;;
	esac
done <"$work/install.log"
if [ "$install_rc" -ne 0 ]; then
	sed 's/^/# /' "$work/install.log" | tail -n 20
	not_ok "the throw-away root (unshare -m, overlay of /, chroot) ran to the end (exit $install_rc)"
fi
echo "packages in $DEB_OUT"
finish
