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
[ ${#targets[@]} -gt 0 ] || targets=(blob_bytes blob_mutations csv_reader npy_reader)

# Seed corpora: valid blobs for the loader, the bundled CSVs' first lines for the
# CSV reader, small valid arrays (format versions 1.0 and 2.0, '<f8' and '<f4') for
# the .npy reader.
mkdir -p corpus/blob_bytes corpus/blob_mutations corpus/csv_reader corpus/npy_reader
cp ../maf-core/tests/golden/*.maf corpus/blob_bytes/
for f in ../data/*.csv; do head -c 2000 "$f" > "corpus/csv_reader/$(basename "$f")"; done
npy() { # VERSION DESCR ROWS COLS ITEM_BYTES: header padded to 64 bytes, then ones
    local head="{'descr': '$2', 'fortran_order': False, 'shape': ($3, $4), }"
    local pre=10 len
    [ "$1" = 1 ] || pre=12
    while [ $(( (pre + ${#head} + 1) % 64 )) -ne 0 ]; do head+=" "; done
    len=$(( ${#head} + 1 ))
    printf "\\x93NUMPY\\x0$1\\x00"
    if [ "$1" = 1 ]; then
        printf "\\x$(printf %02x $((len % 256)))\\x$(printf %02x $((len / 256)))"
    else
        printf "\\x$(printf %02x $((len % 256)))\\x$(printf %02x $((len / 256)))\\x00\\x00"
    fi
    printf '%s\n' "$head"
    for _ in $(seq $(( $3 * $4 ))); do
        if [ "$5" = 8 ]; then printf '\x00\x00\x00\x00\x00\x00\xf0\x3f'; else printf '\x00\x00\x80\x3f'; fi
    done
}
npy 1 '<f8' 3 2 8 > corpus/npy_reader/v1_f8.npy
npy 1 '<f4' 2 3 4 > corpus/npy_reader/v1_f4.npy
npy 2 '<f8' 1 4 8 > corpus/npy_reader/v2_f8.npy

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
