#!/usr/bin/env bash
# Runs every fuzz target for a fixed time (default 60 s each) and prints how many
# inputs each executed. Needs the nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(blob_bytes blob_mutations csv_reader)

# Seed corpora: valid blobs for the loader, the bundled CSVs' first lines for the
# CSV reader.
mkdir -p corpus/blob_bytes corpus/blob_mutations corpus/csv_reader
cp ../maf-core/tests/golden/*.maf corpus/blob_bytes/
for f in ../data/*.csv; do head -c 2000 "$f" > "corpus/csv_reader/$(basename "$f")"; done

status=0
for t in "${targets[@]}"; do
    echo "== $t: ${secs}s"
    log="$(mktemp)"
    if cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
        grep -E "^(stat::number_of_executed_units|Done)" "$log"
    else
        # A crash (its input is saved under artifacts/) or a build failure.
        tail -n 30 "$log"
        status=1
    fi
    rm -f "$log"
done
exit $status
