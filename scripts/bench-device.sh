#!/usr/bin/env bash
# Benchmark of one log density on the Cortex-M4F (QEMU mps2-an386, -icount shift=0)
# for the reference shape D=8, H=64, K=1, L=5, C=0: maf-core's packed kernel
# against a dense MADE baseline, for several reference-shaped blobs.
#
#   scripts/bench-device.sh [OUT_DIR]
#
# Makes the blobs in OUT_DIR (default: a new temporary directory, kept):
#   trained.maf       maf-train fit --activation relu on a seeded synthetic 8-column set
#   trained_tanh.maf  the same with tanh units (maf-train's default activation)
#   random.maf        seeded random weights (maf-core example bench_blobs)
#   allactive.maf     every ReLU unit active: the packed kernel's worst case
# builds firmware-example's `bench` binary, runs it under QEMU for each blob
# (firmware-example/qemu-run.sh), measures the .text of the inference code with
# llvm-nm / llvm-objdump, and prints a Markdown table (README.md, "Benchmark").
#
# Needs: the workspace toolchain (rust-toolchain.toml), qemu-system-arm (Debian:
# apt-get install qemu-system-arm), awk. The LLVM tools come from rustup's
# llvm-tools component (installed here if missing) or, failing that, from PATH.
# Environment: BENCH_EPOCHS (default 200) caps the training epochs.
set -euo pipefail

cd "$(dirname "$0")/.."
ws="$(pwd)"
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
        --activation "$act" --layers 5 --hidden 64 --hidden-layers 1 --seed 1 \
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
field() { # LINE KEY
    sed -nE "s/.*[ ]$2=([^ ]*).*/\1/p" <<<"$1"
}
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
