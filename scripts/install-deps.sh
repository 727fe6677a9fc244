#!/usr/bin/env bash
# Installs the Debian 12 packages vfio-migd needs to build and test.
# Idempotent: installs only what is missing; safe to run on every `make`.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config meson ninja-build
  libglib2.0-dev libglib2.0-bin
  libprotobuf-c-dev protobuf-c-compiler
  libsystemd-dev libvirt-dev libcmocka-dev libjson-glib-dev
  clang-format valgrind python3
  clang libclang-rt-14-dev  # make fuzz: clang and its libFuzzer runtime
  dbus-daemon
  glib-networking openssl
  systemd  # systemd-analyze: the unit hardening test
  qemu-system-x86  # the real-QEMU tier (tests/vmm/test-vmm-qemu) and the real-kernel tier
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
