#!/usr/bin/env bash
# Benchmark of one log density on the Cortex-M4F (QEMU mps2-an386, -icount shift=0)
# for the reference shape D=8, H=64, K=1, L=5, C=0: maf-core's packed kernel
# against a dense MADE baseline, for several reference-shaped blobs.
#
#   scripts/bench-device.sh [OUT_DIR]
#
# Makes the blobs in OUT_DIR (default: a new temporary directory, kept):
#   trained.maf       maf-train fit --activation relu --components 0 (a flow on the
#                     standard normal base) on a seeded synthetic 8-column set
#   trained_tanh.maf  the same with tanh units
#   random.maf        seeded random weights (maf-core example bench_blobs)
#   allactive.maf     every ReLU unit active: the packed kernel's worst case
# builds firmware-example's `bench` binary, runs it under QEMU for each blob
# (firmware-example/qemu-run.sh), measures the .text of the inference code with
# llvm-nm / llvm-objdump, and prints a Markdown table (README.md, "Benchmark").
#
#   scripts/bench-device.sh --models [OUT_DIR]
#
# measures instead the cost of the base density, on the shuttle set's D=9
# columns (data/shuttle_*.csv): Gaussian mixtures alone (L=0; K = 1, 4, 16, 32
# full and K = 16, 32 diagonal), flows L=2 H=32 relu/tanh and L=5 H=64 relu on a
# 16-component full mixture and the same flows on N(0, I), all fitted with
# maf-train with every shape flag fixed (the script checks that the search kept
# the requested model), plus the ReLU flows with every unit active (bench_blobs).
# For each: firmware-example's `bench-model` binary (built per flow shape; the
# base is read at run time) under QEMU on 256 samples of the model, the scorer
# on the first 1,000 rows of data/shuttle_test.csv (its output compared with
# `maf-train score` byte for byte), and maf-train's cost estimate
# (maf-train/src/cost.rs, as `maf-train inspect` prints it). Prints a Markdown
# table; raw output per model in OUT_DIR. mix_k16_full.maf is exactly
# `maf-train fit --data data/shuttle_train.csv --valid data/shuttle_valid.csv
# --components 16 --covariance full --layers 0` (default seed), so its scorer row
# compares with emlearn's 16-component mixture on the same rows (18,265
# instructions per score). The flows are fitted with --seed 1 (with seed 0 the
# L=5 ReLU flow on N(0, I) diverges on shuttle: validation -50, no finite
# samples).
#
# Needs: the workspace toolchain (rust-toolchain.toml), qemu-system-arm (Debian:
# apt-get install qemu-system-arm), awk. The LLVM tools come from rustup's
# llvm-tools component (installed here if missing) or, failing that, from PATH.
# Environment: BENCH_EPOCHS (default 200) caps the training epochs.
set -euo pipefail

cd "$(dirname "$0")/.."
ws="$(pwd)"
mode=reference
if [[ "${1:-}" == "--models" ]]; then
    mode=models
    shift
fi
out="${1:-$(mktemp -d "${TMPDIR:-/tmp}/maf-bench.XXXXXX")}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
epochs="${BENCH_EPOCHS:-200}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench-device.sh: %s\n' "$*" >&2; exit 1; }

command -v qemu-system-arm >/dev/null 2>&1 ||
    die "qemu-system-arm not found (Debian/Ubuntu: apt-get install qemu-system-arm)"
command -v awk >/dev/null 2>&1 || die "awk not found"

# ------------------------------------------------------------------ LLVM tools
# The toolchain of firmware-example (rust-toolchain.toml applies there too).
sysroot="$(cd firmware-example && rustc --print sysroot)"
host="$(cd firmware-example && rustc -vV | sed -n 's/^host: //p')"
tools="$sysroot/lib/rustlib/$host/bin"
if [[ ! -x "$tools/llvm-nm" || ! -x "$tools/llvm-objdump" ]]; then
    say "installing rustup component llvm-tools (for llvm-nm, llvm-objdump)"
    (cd firmware-example && rustup component add llvm-tools) >&2 || true
fi
if [[ -x "$tools/llvm-nm" && -x "$tools/llvm-objdump" ]]; then
    nm="$tools/llvm-nm"
    objdump="$tools/llvm-objdump"
elif command -v llvm-nm >/dev/null 2>&1 && command -v llvm-objdump >/dev/null 2>&1; then
    nm="$(command -v llvm-nm)"
    objdump="$(command -v llvm-objdump)"
else
    die "no llvm-nm/llvm-objdump: run 'rustup component add llvm-tools' or install LLVM (Debian: apt-get install llvm)"
fi

# Bytes of SYMBOLs and of every function they call (bl / b.w to another
# function's start), transitively; indirect calls are not followed.
text_bytes() { # SYMBOL...
    local -A seen=()
    local queue=("$@") total=0 sym addr size callee
    while ((${#queue[@]})); do
        sym="${queue[0]}"
        queue=("${queue[@]:1}")
        [[ -n "${seen[$sym]:-}" ]] && continue
        seen[$sym]=1
        addr="" size=""
        read -r addr size < <(awk -v s="$sym" '$4 == s { print $1, $2; exit }' "$out/nm.txt") || true
        [[ -n "$size" ]] || die "symbol $sym not found in $elf"
        total=$((total + 16#$size))
        printf '%6d %s\n' $((16#$size)) "$sym" >>"$out/text-$1.txt"
        # By address range: --disassemble-symbols stops at the first literal pool.
        while read -r callee; do
            [[ -n "$callee" && -z "${seen[$callee]:-}" ]] && queue+=("$callee")
        done < <("$objdump" -d --no-show-raw-insn --start-address=$((16#$addr)) \
            --stop-address=$((16#$addr + 16#$size)) "$elf" |
            sed -nE 's/.*\t(bl|b\.w|b)\t0x[0-9a-f]+ <([^>+]+)>.*/\2/p' | sort -u)
    done
    echo "$total"
}

field() { # LINE KEY
    sed -nE "s/.*[ ]$2=([^ ]*).*/\1/p" <<<"$1"
}

# ------------------------------------------------------------ --models mode
models_mode() {
    local train="$ws/data/shuttle_train.csv" valid="$ws/data/shuttle_valid.csv"
    local rows="$out/shuttle_test_1000.csv"
    head -n 1001 "$ws/data/shuttle_test.csv" >"$rows"
    say "building maf-train (release)"
    cargo build -q --release --locked -p maf-train >&2
    local mt
    mt="$(cargo metadata -q --format-version 1 --no-deps |
        sed -nE 's/.*"target_directory":"([^"]*)".*/\1/p')/release/maf-train"
    [[ -x "$mt" ]] || die "maf-train not found at $mt"
    say "blobs in $out"
    cargo run -q --locked -p maf-core --example bench_blobs -- "$out" >&2

    # name | build (D_H_L) | maf-train fit flags ("-" for a bench_blobs blob)
    local specs=(
        "mix_k1_full|9_1_0|--layers 0 --components 1 --covariance full"
        "mix_k4_full|9_1_0|--layers 0 --components 4 --covariance full"
        "mix_k16_full|9_1_0|--layers 0 --components 16 --covariance full"
        "mix_k32_full|9_1_0|--layers 0 --components 32 --covariance full"
        "mix_k16_diag|9_1_0|--layers 0 --components 16 --covariance diag"
        "mix_k32_diag|9_1_0|--layers 0 --components 32 --covariance diag"
        "flow_l2_h32_relu_k16full|9_32_2|--layers 2 --hidden 32 --activation relu --components 16 --covariance full --seed 1"
        "flow_l2_h32_tanh_k16full|9_32_2|--layers 2 --hidden 32 --activation tanh --components 16 --covariance full --seed 1"
        "flow_l2_h32_relu_normal|9_32_2|--layers 2 --hidden 32 --activation relu --components 0 --seed 1"
        "flow_l2_h32_tanh_normal|9_32_2|--layers 2 --hidden 32 --activation tanh --components 0 --seed 1"
        "allactive_l2_h32_k16full|9_32_2|-"
        "allactive_l2_h32_normal|9_32_2|-"
        "flow_l5_h64_relu_k16full|9_64_5|--layers 5 --hidden 64 --activation relu --components 16 --covariance full --seed 1"
        "flow_l5_h64_relu_normal|9_64_5|--layers 5 --hidden 64 --activation relu --components 0 --seed 1"
        "allactive_l5_h64_k16full|9_64_5|-"
        "allactive_l5_h64_normal|9_64_5|-"
    )
    local spec name build flags
    for spec in "${specs[@]}"; do
        IFS='|' read -r name build flags <<<"$spec"
        [[ "$flags" == "-" ]] && continue
        say "fitting $name.maf (maf-train fit $flags, at most $epochs epochs)"
        # shellcheck disable=SC2086
        "$mt" fit --data "$train" --valid "$valid" --out "$out/$name.maf" $flags \
            --max-epochs "$epochs" --max-instructions 1000000 --quiet >&2
    done

    local rows_md=() built="" elf_bm elf_fw
    for spec in "${specs[@]}"; do
        IFS='|' read -r name build flags <<<"$spec"
        local blob="$out/$name.maf"
        if [[ "$build" != "$built" ]]; then
            say "building bench-model and firmware-example for D_H_L=$build (MAF_MODEL=$name.maf)"
            (
                cd firmware-example
                env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
                    MAF_MODEL="$blob" cargo build -q --release --locked \
                    --bin bench-model --bin firmware-example >&2
            )
            elf_bm="$out/bench-model-$build.elf"
            elf_fw="$out/firmware-example-$build.elf"
            cp "$ws/firmware-example/target/thumbv7em-none-eabihf/release/bench-model" "$elf_bm"
            cp "$ws/firmware-example/target/thumbv7em-none-eabihf/release/firmware-example" "$elf_fw"
            elf="$elf_bm"
            "$nm" -S "$elf" >"$out/nm.txt"
            rm -f "$out/text-bench_model_log_prob.txt"
            text["$build"]="$(text_bytes bench_model_log_prob)"
            mv "$out/text-bench_model_log_prob.txt" "$out/text-bench_model_log_prob-$build.txt"
            built="$build"
        fi
        say "running bench-model on $name.maf"
        if ! MAF_MODEL="$blob" firmware-example/qemu-run.sh "$elf_bm" >"$out/$name.txt" 2>"$out/$name.err"; then
            cat "$out/$name.txt" "$out/$name.err" >&2
            die "bench-model failed on $blob"
        fi
        local model lp flow base
        model="$(grep '^bench-model model' "$out/$name.txt")"
        lp="$(grep '^bench-model log_prob' "$out/$name.txt")"
        flow="$(grep '^bench-model flow' "$out/$name.txt")"
        base="$(grep '^bench-model base' "$out/$name.txt")"
        local d h l
        IFS=_ read -r d h l <<<"$build"
        [[ "$(field "$model" D) $(field "$model" L)" == "$d $l" && ( "$l" == 0 || "$(field "$model" H)" == "$h" ) ]] ||
            die "$name.maf is not D=$d H=$h L=$l (the search chose another model?): $model"
        local est
        est="$("$mt" inspect "$blob" | sed -nE 's/^device +about ([0-9]+) instructions.*/\1/p')"
        local mean
        mean="$(field "$lp" instr_mean)"
        local ratio="?"
        [[ -n "$est" ]] && ratio="$(awk -v e="$est" -v m="$mean" 'BEGIN { printf "%.2f", e / m }')"
        local per_mac
        per_mac="$(awk -v m="$mean" -v n="$(field "$lp" macs)" 'BEGIN { printf "%.2f", m / n }')"
        # The scorer on real rows, trained models only (bench_blobs' flows have unit
        # standardisation: the raw shuttle rows are far outside them).
        local scorer="—"
        if [[ "$flags" != "-" ]]; then
            MAF_MODEL="$blob" firmware-example/qemu-run.sh "$elf_fw" "$rows" \
                >"$out/$name.device.csv" 2>"$out/$name.device.err" ||
                { cat "$out/$name.device.err" >&2; die "the scorer failed on $blob"; }
            "$mt" score --model "$blob" --data "$rows" --out "$out/$name.host.csv"
            cmp -s "$out/$name.host.csv" "$out/$name.device.csv" ||
                die "$name: device scores differ from maf-train score ($out/$name.{host,device}.csv)"
            scorer="$(sed -nE 's/.*; ([0-9]+) instructions per inference.*/\1/p' "$out/$name.device.err") (= host)"
        fi
        local kind
        kind="$(field "$model" activation)"
        [[ "$l" == 0 ]] && kind="—"
        local base_label="N(0, I)"
        [[ "$(field "$model" base)" == mixture ]] &&
            base_label="K=$(field "$model" components) $(field "$model" covariance)"
        local shape="D=$d L=$l"
        [[ "$l" != 0 ]] && shape="D=$d L=$l H=$h bn=$(field "$model" batch_norm)"
        rows_md+=("| \`$name.maf\` | $shape | $kind | $base_label | $(field "$lp" flow_macs) + $(field "$lp" base_macs) | **$mean** ($(field "$lp" instr_min)–$(field "$lp" instr_max)) | $(field "$flow" instr_mean) + $(field "$base" instr_mean) | $per_mac | $scorer | ${est:-?} | $ratio | $(field "$model" blob_bytes) | $(field "$lp" stack_bytes) ($(field "$lp" activations_bytes)) | ${text[$build]} |")
    done

    echo "Base-density benchmark: $(date -u +%Y-%m-%d), workspace commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- maf-core firmware-example maf-train || echo ' (with local changes)'), $(rustc --version | cut -d' ' -f1-2)"
    echo "QEMU: $(qemu-system-arm --version | head -1)"
    echo
    echo "| blob | shape | activation | base | MACs (flow + base) | instructions per log density, mean (min–max), 256 samples | of which flow (Maf::inverse) + rest | per MAC | scorer on 1,000 shuttle test rows | cost.rs estimate | estimate / measured | blob (B) | stack RAM per inference (activations) (B) | .text of inference code (B) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows_md[@]}"
    echo
    echo "Raw output per blob: $out/*.txt; functions in the inference code: $out/text-bench_model_log_prob-*.txt"
}
declare -A text=()
if [[ $mode == models ]]; then
    models_mode
    exit 0
fi

# ---------------------------------------------------------------------- blobs
say "blobs in $out"
cargo run -q --locked -p maf-core --example bench_blobs -- "$out" >&2

# A seeded synthetic 8-column sensor-like set (nonlinear dependencies, a ring):
# shuttle's first 8 columns make ReLU training diverge, and the benchmark wants a
# model that trains in seconds.
synth() { # SEED ROWS
    awk -v seed="$1" -v n="$2" '
        function g() { return sqrt(-2 * log(1 - rand())) * cos(6.283185307 * rand()) }
        BEGIN {
            srand(seed); print "a,b,c,d,e,f,g,h"
            for (i = 0; i < n; i++) {
                a = g(); b = 0.5 * a * a + 0.3 * g(); c = sin(2 * a) + 0.2 * g()
                d = 0.7 * b - 0.4 * c + 0.3 * g(); t = 6.283185307 * rand()
                e = cos(t) + 0.1 * g(); f = sin(t) + 0.1 * g(); k = e * f + 0.2 * g()
                h = 0.3 * a + 0.3 * d + 0.5 * g()
                printf "%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", a, b, c, d, e, f, k, h
            }
        }'
}
synth 1 8000 >"$out/synth_train.csv"
synth 2 2000 >"$out/synth_valid.csv"
for act in relu tanh; do
    name=trained; [[ $act == tanh ]] && name=trained_tanh
    say "training $name.maf (maf-train fit --activation $act, at most $epochs epochs)"
    cargo run -q --release --locked -p maf-train -- fit \
        --data "$out/synth_train.csv" --valid "$out/synth_valid.csv" --out "$out/$name.maf" \
        --activation "$act" --layers 5 --hidden 64 --hidden-layers 1 --components 0 --seed 1 \
        --max-epochs "$epochs" --quiet >&2
done

# --------------------------------------------------------------- the firmware
say "building firmware-example --bin bench (release)"
(
    cd firmware-example
    env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
        MAF_MODEL="$out/random.maf" cargo build -q --release --locked --bin bench >&2
)
elf="$ws/firmware-example/target/thumbv7em-none-eabihf/release/bench"
cp "$elf" "$out/bench.elf"
# The same with maf-core's `tanh` feature off: the code a ReLU-only firmware
# carries (its .text is reported too; the runs below use bench.elf).
say "building firmware-example --bin bench (release, --no-default-features --features relu)"
(
    cd firmware-example
    env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
        MAF_MODEL="$out/random.maf" cargo build -q --release --locked --bin bench \
        --no-default-features --features relu >&2
)
cp "$elf" "$out/bench-relu.elf"
elf="$out/bench.elf"

"$nm" -S "$elf" >"$out/nm.txt"
rm -f "$out"/text-*.txt
packed_text="$(text_bytes bench_packed_log_prob)"
dense_text="$(text_bytes bench_dense_log_prob)"
elf="$out/bench-relu.elf"
"$nm" -S "$elf" >"$out/nm.txt"
mv "$out/text-bench_packed_log_prob.txt" "$out/text-bench_packed_log_prob-both.txt"
packed_text_relu="$(text_bytes bench_packed_log_prob)"
mv "$out/text-bench_packed_log_prob.txt" "$out/text-bench_packed_log_prob-relu.txt"
elf="$out/bench.elf"
# The inference path must not reach a panic (and with it core::fmt).
if grep -iE 'panic|fmt' "$out"/text-bench_packed_log_prob-*.txt >&2; then
    die "the inference code reaches the panic/formatting code above"
fi

# -------------------------------------------------------------------- runs
rows=()
for name in trained trained_tanh random allactive; do
    blob="$out/$name.maf"
    say "running bench on $name.maf"
    if ! MAF_MODEL="$blob" firmware-example/qemu-run.sh "$elf" >"$out/$name.txt" 2>"$out/$name.err"; then
        cat "$out/$name.txt" "$out/$name.err" >&2
        die "bench failed on $blob"
    fi
    model="$(grep '^bench model' "$out/$name.txt")"
    packed="$(grep '^bench packed' "$out/$name.txt")"
    dense="$(grep '^bench dense' "$out/$name.txt")"
    agree="$(grep '^bench agree' "$out/$name.txt")"
    act="$(field "$model" activation)"
    bytes="$(field "$model" blob_bytes)"
    active="$(field "$packed" active_units_pct)"
    err="$(field "$agree" max_rel_err)"
    label="\`$name.maf\` ($act, ${active}% units active)"
    rows+=("| $label | packed (maf-core) | $(field "$packed" macs) | **$(field "$packed" instr_mean)** ($(field "$packed" instr_min)–$(field "$packed" instr_max)) | $(field "$packed" instr_per_mac) | $packed_text ($packed_text_relu ReLU only) | $(field "$packed" stack_bytes) stack ($(field "$packed" activations_bytes) activations) | $bytes blob, flash |")
    rows+=("| | dense baseline | $(field "$dense" macs) | $(field "$dense" instr_mean) ($(field "$dense" instr_min)–$(field "$dense" instr_max)) | $(field "$dense" instr_per_mac) | $dense_text | $(field "$dense" stack_bytes) stack ($(field "$dense" activations_bytes) activations) + weights | $(field "$dense" weights_ram_bytes) expanded, RAM |")
    rows+=("| | dense / packed | | **$(field "$(grep '^bench speedup' "$out/$name.txt")" dense_over_packed)x** | | | agreement $err | |")
done

echo "Benchmark: $(date -u +%Y-%m-%d), workspace commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- maf-core firmware-example || echo ' (with local changes)'), $(rustc --version | cut -d' ' -f1-2)"
echo "QEMU: $(qemu-system-arm --version | head -1)"
echo "Functions in the inference code: $out/text-bench_packed_log_prob-{both,relu}.txt (no panic or core::fmt among them)"
echo
echo "| blob | kernel | MACs | instructions per log density, mean (min–max) | per MAC | .text of inference code (B) | RAM per inference (B) | weights (B) |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "Raw output per blob: $out/*.txt"
