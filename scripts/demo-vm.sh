#!/usr/bin/env bash
# The VM demo (`make demo`): a real QEMU guest migrates with two devices held by
# vfio-migd through QEMU's dbus-vmstate (docs/qemu.md). The demo program starts
# its own private buses, daemons and QEMUs in a temporary directory and removes
# them at the end; its last line sums the migration up.
#   usage: scripts/demo-vm.sh [BUILD_DIR]
set -euo pipefail

BUILD=${1:-${BUILD:-build}}
# the driver plugins as built, each in its plugin's build directory, as one search path
BUILT_PLUGIN_DIRS=
for so in "$BUILD"/plugins/*/migd-plugin-*.so; do
  if [ -e "$so" ]; then BUILT_PLUGIN_DIRS="${BUILT_PLUGIN_DIRS:+$BUILT_PLUGIN_DIRS:}${so%/*}"; fi
done
export VFIO_MIGD_PLUGIN_DIR="${VFIO_MIGD_PLUGIN_DIR:-$BUILT_PLUGIN_DIRS}"
# (dbus-daemon's complaint that a container will not raise its fd limit is noise)
exec "$BUILD/tools/vfio-migd-vm-demo" --migd "$BUILD/daemon/vfio-migd" \
  2> >(grep -v --line-buffered 'Failed to set fd limit' >&2)
