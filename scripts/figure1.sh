#!/usr/bin/env bash
# Figure 1 of the MAF paper (Papamakarios, Pavlakou & Murray, 2017), redrawn with
# maf: data from x2 ~ N(0, 2²), x1 ~ N(x2²/4, 1) (a seeded generator), a
# one-layer MADE and a five-layer MAF fitted to it, and for each model
#   density.svg     the learned density with the data on top;
#   base_space.svg  the data mapped to the base space u = f⁻¹(x), which should
#                   look like N(0, I) (circles r = 1, 2, 3 for reference).
# The MADE, with its Gaussian conditionals in the order (x1, x2), cannot fit
# p(x1) (a skewed marginal) and its base space shows it; stacking MADEs fixes it.
#
# Usage: ./scripts/figure1.sh      (outputs in out/figure1/{made,maf}/;
#                                   MAF_FIGURE1_OUT overrides the directory)
# Host only: needs cargo, not QEMU. About 15 s after compilation.
set -euo pipefail
out="${MAF_FIGURE1_OUT:-}"
case "$out" in "" | /*) ;; *) out="$(pwd)/$out" ;; esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${out:-out/figure1}"
mkdir -p "$out"

maf_train() { cargo run --release --quiet --locked -p maf-train -- "$@"; }

cargo build --release --quiet --locked -p maf-train
maf_train figure1-data --rows 5000 --seed 1 --out "$out/train.csv"
maf_train figure1-data --rows 1000 --seed 2 --out "$out/valid.csv"
for model in "made 1" "maf 5"; do
    set -- $model
    name="$1" layers="$2"
    maf_train fit --data "$out/train.csv" --valid "$out/valid.csv" \
        --out "$out/$name.maf" --layers "$layers" --hidden 64 --seed 0 --quiet
    echo "== $name ($layers MADE$([ "$layers" = 1 ] || echo s)): $out/$name.maf"
    maf_train eval --model "$out/$name.maf" --data "$out/valid.csv" | sed -n 2p
    maf_train plot --model "$out/$name.maf" --data "$out/train.csv" --out-dir "$out/$name"
done
