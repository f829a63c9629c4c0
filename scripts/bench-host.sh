#!/usr/bin/env bash
# Host throughput of maf against its PyTorch peer zuko, side by side in one run, at
# the reference shape (D=8, L=5, H=64, training batch 256), both on THREADS threads
# (default 2): batched log density of in-memory rows (maf: MafView::log_prob_batch
# over scoped threads, bit for bit the device's results; zuko: flow().log_prob on a
# 65,536-row tensor) and training rows/s for at least 2 s (maf: train::bench_config,
# each minibatch's step split by rows over the threads, the same bits on any
# thread count, tanh units as fit uses and ReLU units as zuko's; zuko: Adam
# steps for 4 s). The machine is shared: the two run alternately REPS times
# (default 3) and the median ratios are printed. Measured at d44ef02 (2026-12-04),
# three invocations of `bench-host.sh 2 5`: training tanh 10.35x, 10.98x, 11.75x;
# ReLU 10.85x, 11.14x, 11.21x; log density ReLU 3.46x, 3.02x, 3.76x.
#
# Usage: scripts/bench-host.sh [THREADS] [REPS]
# Needs python3 with torch and zuko (PYTHON=/path/to/python to choose one):
#   pip install torch zuko
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
reps="${2:-3}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import torch, zuko' 2>/dev/null; then
    echo "bench-host.sh: $python lacks torch or zuko (pip install torch zuko; or PYTHON=...)" >&2
    exit 1
fi
cargo build --release --locked -q -p maf-train --example bench_host
bin=target/release/examples/bench_host
rate() { sed -n "s/.*$1.*: \([0-9]*\) rows\/s/\1/p" | head -1; }
ratios_ld=() ratios_tr=() ratios_tanh=() ratios_relu=()
for i in $(seq "$reps"); do
    m="$("$bin" "$threads")"
    z="$("$python" scripts/bench_zuko.py "$threads")"
    echo "== run $i"
    echo "$m"
    echo "$z"
    m_tr=$(echo "$m" | rate "training Tanh.*, $threads threads")
    m_relu=$(echo "$m" | rate "training Relu.*, $threads threads")
    m_ld=$(echo "$m" | rate "log density Relu")
    m_tanh=$(echo "$m" | rate "log density Tanh")
    z_tr=$(echo "$z" | rate "zuko training")
    z_ld=$(echo "$z" | rate "zuko log density")
    ratios_tr+=("$(awk -v a="$m_tr" -v b="$z_tr" 'BEGIN{printf "%.2f", a/b}')")
    ratios_relu+=("$(awk -v a="$m_relu" -v b="$z_tr" 'BEGIN{printf "%.2f", a/b}')")
    ratios_ld+=("$(awk -v a="$m_ld" -v b="$z_ld" 'BEGIN{printf "%.2f", a/b}')")
    ratios_tanh+=("$(awk -v a="$m_tanh" -v b="$z_ld" 'BEGIN{printf "%.2f", a/b}')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2)? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo "== median ratios over $reps runs ($threads threads; zuko's MAF is ReLU)"
echo "log density, maf ReLU / zuko:  $(median "${ratios_ld[@]}")x  (runs: ${ratios_ld[*]}; bar >= 2)"
echo "log density, maf tanh / zuko:  $(median "${ratios_tanh[@]}")x  (runs: ${ratios_tanh[*]})"
echo "training, maf tanh / zuko:      $(median "${ratios_tr[@]}")x  (runs: ${ratios_tr[*]}; bar >= 10)"
echo "training, maf ReLU / zuko:      $(median "${ratios_relu[@]}")x  (runs: ${ratios_relu[*]})"
