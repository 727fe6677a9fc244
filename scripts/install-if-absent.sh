#!/bin/sh
# A meson install script (meson.add_install_script): installs SOURCE as DEST, an
# absolute path under $DESTDIR, only when DEST is not there yet, so that a reinstall
# never overwrites a configuration file an operator edited. The pristine copy is
# installed as an example beside the documentation.
set -eu
[ "$#" -eq 2 ] || { echo "usage: $0 SOURCE DEST" >&2; exit 2; }
dest="${DESTDIR:-}$2"
if [ -e "$dest" ] || [ -L "$dest" ]; then
	echo "Keeping $dest (exists; the example is beside the documentation)"
	exit 0
fi
mkdir -p "$(dirname "$dest")"
install -m 0644 "$1" "$dest"
echo "Installing $1 to $dest"
