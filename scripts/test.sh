#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints (host, Cortex-M4F, and
# the firmware for every core of the matrix), docs, host tests, and the firmware
# tests under QEMU (M4F, M3, M33, M55: tests/tests/firmware_matrix.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step() { printf '\n==> %s\n' "$*" >&2; }

step "formatting"
cargo fmt --all -- --check
(cd firmware-example && cargo fmt -- --check)

step "module imports (one way, no cycle: scripts/module-graph.py)"
for src in maf-core/src maf-train/src firmware-example/src; do
    python3 scripts/module-graph.py "$src" | tail -n 1
done

step "clippy (host)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "clippy + build (thumbv7em-none-eabihf; both activations, then each alone; defmt)"
for features in relu,tanh relu tanh; do
    cargo clippy -p maf-core --target thumbv7em-none-eabihf --no-default-features \
        --features "$features" --locked -- -D warnings
    cargo build -p maf-core --target thumbv7em-none-eabihf --no-default-features \
        --features "$features" --release --locked
done
cargo clippy -p maf-core --target thumbv7em-none-eabihf --features defmt --locked -- -D warnings
# The firmware for every core of the matrix (firmware-example/machines.txt); the
# M55 shares the M33's target, built for its machine (memory map, clock, UART).
for target in thumbv7em-none-eabihf thumbv7m-none-eabi thumbv8m.main-none-eabihf; do
    (cd firmware-example && cargo clippy --release --bins --target "$target" --locked -- -D warnings)
done
(cd firmware-example && MAF_MACHINE=mps3-an547 cargo clippy --release --bins \
    --target thumbv8m.main-none-eabihf --locked -- -D warnings)

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "tests (host, and firmware under QEMU)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
{
    cargo test --workspace --release --locked
    # maf-core with one activation left out (Cargo features `relu`, `tanh`).
    for features in std,relu std,tanh; do
        cargo test -p maf-core --release --locked --no-default-features \
            --features "$features" --test features
    done
} 2>&1 | tee "$log"
# One closing line over every test binary (cargo prints one per binary, the last
# of which is often a doc-test run with nothing in it).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
