#!/usr/bin/env bash
# fit's model search with its flow candidates one at a time (--threads 1) and
# two at once (--threads 2), side by side on each bundled data set (default fit,
# seed 0): wall time of each, the ratio, and whether the two blobs are the same
# bytes. Usage: scripts/bench-search.sh [SET...]   (default: all four open sets)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p maf-train --bin maf-train >/dev/null 2>&1
bin=target/release/maf-train
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(banana2 basicmotions vowels12 shuttle)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
printf '%-13s %10s %10s %7s  %s\n' set "1 thread" "2 threads" ratio "same blob"
for set in "${sets[@]}"; do
    declare -A wall=()
    for t in 1 2; do
        start=$(date +%s.%N)
        "$bin" fit --data "data/${set}_train.csv" --valid "data/${set}_valid.csv" \
            --threads "$t" --quiet --out "$tmp/$set.$t.maf" 2>/dev/null
        end=$(date +%s.%N)
        wall[$t]=$(python3 -c "print(f'{$end - $start:.2f}')")
    done
    same=no
    cmp -s "$tmp/$set.1.maf" "$tmp/$set.2.maf" && same=yes
    ratio=$(python3 -c "print(f'{${wall[1]} / ${wall[2]}:.2f}')")
    printf '%-13s %9ss %9ss %6sx  %s\n' "$set" "${wall[1]}" "${wall[2]}" "$ratio" "$same"
done
