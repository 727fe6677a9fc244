#!/usr/bin/env bash
# The two-daemon demo: a destination and a source vfio-migd on a private session
# bus, simulated devices on both, one migration over loopback driven only through
# vfio-migctl, then the devices' digests from both daemons compared.
#   usage: scripts/demo.sh [BUILD_DIR]      (run by `make demo`)
# Re-executes itself under dbus-run-session so nothing touches the user's buses.
set -euo pipefail

BUILD=${1:-${BUILD:-build}}
if [ -z "${MIGD_DEMO_PRIVATE_BUS:-}" ]; then
  export MIGD_DEMO_PRIVATE_BUS=1
  # (dbus-daemon's complaint that a container will not raise its fd limit is noise)
  exec dbus-run-session -- bash "$0" "$BUILD" 2> >(grep -v --line-buffered 'Failed to set fd limit' >&2)
fi

MIGD="$BUILD/daemon/vfio-migd"
# the driver plugins as built, each in its plugin's build directory, as one search
# path (an installed daemon loads them from its one plugin directory)
BUILT_PLUGIN_DIRS=
for so in "$BUILD"/plugins/*/migd-plugin-*.so; do
  if [ -e "$so" ]; then BUILT_PLUGIN_DIRS="${BUILT_PLUGIN_DIRS:+$BUILT_PLUGIN_DIRS:}${so%/*}"; fi
done
export VFIO_MIGD_PLUGIN_DIR="${VFIO_MIGD_PLUGIN_DIR:-$BUILT_PLUGIN_DIRS}"
MIGCTL="$BUILD/tools/vfio-migctl"
SRC=org.vfiomigd.Demo.Source
DST=org.vfiomigd.Demo.Destination
TMP=$(mktemp -d)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

src_ctl() { "$MIGCTL" --session --bus-name "$SRC" "$@"; }
dst_ctl() { "$MIGCTL" --session --bus-name "$DST" "$@"; }

# one JSON field of one line of vfio-migctl --json output
json_field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }

# a daemon hashes large simulated states on a worker thread ("pending" meanwhile):
# wait, bounded, until every digest of its devices is there
wait_digests() { # CTL
  for _ in $(seq 1 300); do
    if ! "$1" --json devices | grep -q '"sim-digest-pending":true'; then return 0; fi
    sleep 0.1
  done
  echo "demo: the digests were not ready within 30 s" >&2
  return 1
}

start_daemon() { # NAME LOG CONFIG SPEC...
  local name=$1 log=$2 config=$3
  shift 3
  local args=(--config "$config")
  for spec in "$@"; do args+=(--sim-device "$spec"); done
  "$MIGD" --session --bus-name "$name" "${args[@]}" 2>"$log" &
  pids+=($!)
  for _ in $(seq 1 100); do
    if "$MIGCTL" --session --bus-name "$name" devices >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "demo: $name did not start:" >&2
  cat "$log" >&2
  exit 1
}

# the same device models on both sides; the destination's seeds give it other state
# The source's devices DMA into a 16 GiB guest (RAM below the 3 GiB PCI hole, the
# rest above 4 GiB); dirty tracking follows those ranges. The destination needs none.
cat >"$TMP/src.conf" <<'CONF'
[device sim0]
iova-ranges=0x0+3G,0x100000000+13G
[device sim1]
iova-ranges=0x0+3G,0x100000000+13G
[device sim2]
iova-ranges=0x0+3G,0x100000000+13G
CONF
: >"$TMP/dst.conf"

start_daemon "$DST" "$TMP/dst.log" "$TMP/dst.conf" \
  mlx5:state_size=256M,seed=101 mlx5:state_size=128M,seed=102 hisi_acc:seed=103
start_daemon "$SRC" "$TMP/src.log" "$TMP/src.conf" \
  mlx5:state_size=256M,seed=1,dirty_rate=64M,dma_pattern=hotspot:5,dma_rate=256M \
  mlx5:state_size=128M,seed=2,dma_pattern=random,dma_rate=16M \
  hisi_acc:seed=3,dma_pattern=sequential,dma_rate=8M

echo "== source daemon: which plugin handles which device"
grep -h -E ': plugin |no plugin for' "$TMP/src.log" | sed 's/^[^:]*: [0-9:.]*: /  /' || true
echo "== source devices"
src_ctl devices
echo "== destination devices"
dst_ctl devices

# plain (no TLS) only over a unix socket, whose peers the daemon checks by uid
addr=$(dst_ctl listen "unix:$TMP/migrate.sock" --plain)
echo "== destination listening on $addr"

echo "== vfio-migctl migrate $addr --plain"
status=0
src_ctl migrate "$addr" --plain || status=$?
if [ "$status" -ne 0 ]; then
  echo "demo: the migration failed; source daemon log:" >&2
  tail -n 20 "$TMP/src.log" >&2
  exit 1
fi

# the source's job stays exported after it ended: read its final numbers (a fresh
# daemon numbers its jobs from 1)
result=$(src_ctl --json watch /org/vfiomigd/Migd1/jobs/1)

echo "== dirty pages the source devices' DMA made, found and shipped per sync"
grep -h -E 'dirty tracking with|no dirty tracker|dirty sync [0-9]+:' "$TMP/src.log" |
  sed 's/^[^:]*: [0-9:.]*: /  /' || true
echo "== destination: the accumulated dirty bitmap of sim0 (vfio-migctl dirty-bitmap)"
dst_ctl dirty-bitmap sim0

wait_digests src_ctl
wait_digests dst_ctl
echo "== after the migration: source (stopped)"
src_ctl devices
echo "== after the migration: destination (running)"
dst_ctl devices

src_ctl --json devices >"$TMP/src.json"
dst_ctl --json devices >"$TMP/dst.json"
RESULT="$result" python3 - "$TMP/src.json" "$TMP/dst.json" <<'PY'
import json, os, sys
src = json.load(open(sys.argv[1]))["devices"]
dst = json.load(open(sys.argv[2]))["devices"]
job = json.loads(os.environ["RESULT"])
match = len(src) == len(dst) and all(
    s.get("sim-digest") is not None and s.get("sim-digest") == d.get("sim-digest")
    for s, d in zip(src, dst))
print("demo: %d devices, %.1f MiB, %d precopy rounds, downtime %.1f ms, "
      "dirty pages %d (%.1f KiB of bitmaps on the wire), state match: %s" % (
    job["devices"], job["bytes"] / 1048576.0, job["precopy_rounds"],
    job["downtime_us"] / 1000.0, job["dirty_pages"], job["dirty_wire_bytes"] / 1024.0,
    "all byte for byte" if match else "MISMATCH"))
sys.exit(0 if match and job["success"] else 1)
PY
