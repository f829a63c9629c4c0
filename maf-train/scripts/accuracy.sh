#!/usr/bin/env bash
# Accuracy check on the real sensor sets with the issue's settings
# (--layers 5 --hidden 64, everything else default). Not a unit test: takes minutes.
# Usage: [SEEDS="0 1 2"] maf-train/scripts/accuracy.sh [extra fit options...]
# Bars (normal test rows): shuttle LL >= -22.27, AUROC >= 0.9999; basicmotions
# LL >= -8.95, AUROC >= 0.856.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -q -p maf-train --manifest-path "${MAF_MANIFEST:-$root/Cargo.toml}"
bin="$CARGO_TARGET_DIR/release/maf-train"
out="$(mktemp -d)"
for set in shuttle basicmotions; do
  for seed in ${SEEDS:-0}; do
    start=$(date +%s.%N)
    "$bin" fit --data "$root/data/${set}_train.csv" --valid "$root/data/${set}_valid.csv" \
      --out "$out/$set.maf" --layers 5 --hidden 64 --quiet --seed "$seed" "$@"
    end=$(date +%s.%N)
    printf '%s seed %s: fit %.1f s; %s\n' "$set" "$seed" "$(echo "$end - $start" | bc)" \
      "$("$bin" inspect "$out/$set.maf" --json | grep -o '"\(epochs\|best_epoch\)":"[0-9]*"' | tr '\n' ' ')"
    "$bin" eval --model "$out/$set.maf" --data "$root/data/${set}_test.csv" \
      --labels "$root/data/${set}_test_labels.csv"
  done
done
rm -rf "$out"
