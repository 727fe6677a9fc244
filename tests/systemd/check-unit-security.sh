#!/usr/bin/env bash
# The service's exposure as systemd scores it, offline (no running systemd needed):
# fails above the limit, and prints what systemd still flags.
set -euo pipefail
unit=$1
limit=${2:-3.0}
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not found (scripts/install-deps.sh installs systemd)" >&2
  exit 1
fi
out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || {
  echo "$out" >&2
  exit 1
}
line=$(grep -E 'Overall exposure level for .*: [0-9.]+' <<<"$out" || true)
if [ -z "$line" ]; then
  echo "no exposure level in systemd-analyze's output:" >&2
  echo "$out" >&2
  exit 1
fi
level=$(sed -E 's/.*: ([0-9.]+).*/\1/' <<<"$line")
echo "exposure $level (limit $limit)"
grep '✗' <<<"$out" | sed -E 's/ {2,}/  /g' || true
awk -v l="$level" -v m="$limit" 'BEGIN { exit !(l <= m) }'
