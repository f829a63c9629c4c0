#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints (host and Cortex-M4F),
# docs, host tests, and the firmware tests under QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step() { printf '\n==> %s\n' "$*" >&2; }

step "formatting"
cargo fmt --all -- --check
(cd firmware-example && cargo fmt -- --check)

step "clippy (host)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "clippy + build (thumbv7em-none-eabihf, no default features)"
cargo clippy -p maf-core --target thumbv7em-none-eabihf --no-default-features --locked -- -D warnings
cargo build -p maf-core --target thumbv7em-none-eabihf --no-default-features --release --locked
(cd firmware-example && cargo clippy --release --bins --locked -- -D warnings)

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "tests (host, and firmware under QEMU)"
cargo test --workspace --release --locked
