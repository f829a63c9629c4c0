#!/usr/bin/env bash
# Makes sure this machine has what maf needs beyond cargo itself:
#   - the pinned Rust toolchain and the Cortex-M targets of the firmware matrix
#     (thumbv7em-none-eabihf: M4F; thumbv7m-none-eabi: M3; thumbv8m.main-none-eabihf:
#     M33 and M55), from rust-toolchain.toml, added here if missing;
#   - qemu-system-arm (Debian package), installed through apt when run as root.
# Sourced by test.sh and demo.sh; safe to run again.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found: install Rust from https://rustup.rs first" >&2
    exit 1
fi

# Installs the toolchain and target named in rust-toolchain.toml if missing.
rustup show active-toolchain >/dev/null
installed_targets="$(rustup target list --installed)"
for target in thumbv7em-none-eabihf thumbv7m-none-eabi thumbv8m.main-none-eabihf; do
    if ! grep -qx "$target" <<<"$installed_targets"; then
        rustup target add "$target"
    fi
done
for component in clippy rustfmt; do
    if ! rustup component list --installed | grep -q "^$component"; then
        rustup component add "$component"
    fi
done

if ! command -v qemu-system-arm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing qemu-system-arm (apt)..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm >/dev/null
    else
        echo "error: qemu-system-arm is not installed." >&2
        echo "  Debian/Ubuntu: sudo apt-get install qemu-system-arm" >&2
        echo "  Fedora:        sudo dnf install qemu-system-arm" >&2
        echo "  macOS:         brew install qemu" >&2
        exit 1
    fi
fi
