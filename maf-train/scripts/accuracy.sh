#!/usr/bin/env bash
# Accuracy check on the real sensor sets with the issue's settings
# (--layers 5 --hidden 64, everything else default). Not a unit test: takes minutes.
# Usage: maf-train/scripts/accuracy.sh [extra fit options...]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -q -p maf-train --manifest-path "${MAF_MANIFEST:-$root/Cargo.toml}"
bin="$CARGO_TARGET_DIR/release/maf-train"
out="$(mktemp -d)"
for set in shuttle basicmotions; do
  start=$(date +%s.%N)
  "$bin" fit --data "$root/data/${set}_train.csv" --valid "$root/data/${set}_valid.csv" \
    --out "$out/$set.maf" --layers 5 --hidden 64 --quiet "$@"
  end=$(date +%s.%N)
  printf '%s: fit %.1f s; %s\n' "$set" "$(echo "$end - $start" | bc)" \
    "$("$bin" inspect "$out/$set.maf" --json | grep -o '"epochs":"[0-9]*"')"
  "$bin" eval --model "$out/$set.maf" --data "$root/data/${set}_test.csv" \
    --labels "$root/data/${set}_test_labels.csv"
done
rm -rf "$out"
