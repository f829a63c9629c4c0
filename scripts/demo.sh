#!/usr/bin/env bash
# The main job, end to end, on bundled real data (BasicMotions: smartwatch
# accelerometer and gyroscope; normal = walking, standing, running; anomalous =
# badminton):
#
#   1. train a MAF on data/basicmotions_train.csv (early stopping on _valid.csv);
#   2. show what it costs on a microcontroller (maf-train inspect);
#   3. score data/basicmotions_test.csv on the host (maf-train score) and on an
#      emulated Cortex-M4F (the firmware-example under QEMU, the new model flashed
#      into its MODEL region);
#   4. print the result table (maf-train report): test log-likelihood, AUROC/AUPRC,
#      confusion counts at the stored threshold, instructions per inference, and
#      whether the device's scores equal the host's bit for bit — the script exits
#      non-zero if they do not — and write the plots.
#
# Usage: ./scripts/demo.sh            (from anywhere; a few minutes of compilation
#                                      the first time, then about half a minute)
# Environment:
#   MAF_DEMO_OUT   output directory (default: out/demo in the repository)
#   MAF_DEMO_ARGS  extra `maf-train fit` options, word-split (e.g. "--seed 3")
# Outputs in the output directory: model.maf, host_scores.csv, device_scores.csv
# (the firmware's standard output), device.log (its standard error, cargo's
# messages included), log_density.svg, roc.svg.
set -euo pipefail
out="${MAF_DEMO_OUT:-}"
# A relative MAF_DEMO_OUT is relative to where the script was started.
case "$out" in "" | /*) ;; *) out="$(pwd)/$out" ;; esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
source scripts/setup.sh

out="${out:-$root/out/demo}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
out_abs="$out"
# Paths relative to the repository (the working directory) when inside it.
case "$out" in "$root"/*) out="${out#"$root"/}" ;; esac

step() { printf '\n== %s\n' "$*"; }

maf_train() { cargo run --release --quiet --locked -p maf-train -- "$@"; }

step "building maf-train (the first run compiles for a few minutes)"
cargo build --release --quiet --locked -p maf-train

step "1/4 fitting on data/basicmotions_train.csv: mixtures, then flows on the best one, chosen on data/basicmotions_valid.csv"
quiet=()
# The progress bar needs a terminal; elsewhere (CI, a pipe) stay silent.
[ -t 2 ] || quiet=(--quiet)
# shellcheck disable=SC2086
maf_train fit \
    --data data/basicmotions_train.csv \
    --valid data/basicmotions_valid.csv \
    --out "$out/model.maf" \
    --seed 0 \
    "${quiet[@]}" ${MAF_DEMO_ARGS:-}

step "2/4 the model on a microcontroller: $out/model.maf"
maf_train inspect "$out/model.maf"

step "3/4 scoring data/basicmotions_test.csv on the host and on the emulated Cortex-M4F (QEMU)"
maf_train score --model "$out/model.maf" --data data/basicmotions_test.csv \
    --out "$out/host_scores.csv"
# The firmware's documented command, run in its own crate (its own target
# directory, target and runner); none of an outer build's target settings apply.
if ! (
    cd firmware-example
    env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET -u CARGO_BUILD_TARGET_DIR \
        -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS \
        MAF_MODEL="$out_abs/model.maf" \
        cargo run --release --quiet --locked -- ../data/basicmotions_test.csv
) >"$out/device_scores.csv" 2>"$out/device.log"; then
    echo "error: the device run failed; its log, $out/device.log, ends with:" >&2
    tail -n 15 "$out/device.log" >&2
    exit 1
fi
echo "host:   $out/host_scores.csv"
echo "device: $out/device_scores.csv (log: $out/device.log)"

step "4/4 results on data/basicmotions_test.csv (labels: data/basicmotions_test_labels.csv)"
maf_train report \
    --model "$out/model.maf" \
    --labels data/basicmotions_test_labels.csv \
    --host-scores "$out/host_scores.csv" \
    --device-scores "$out/device_scores.csv" \
    --device-log "$out/device.log" \
    --plot-dir "$out"
