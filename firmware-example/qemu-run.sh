#!/usr/bin/env bash
# Cargo runner: runs a firmware ELF on an emulated Cortex-M (QEMU) with the weight
# blob written into the MODEL flash region, as a flasher would.
#
#   qemu-run.sh ELF [ARG...]
#
# The machine comes from machines.txt: MAF_MACHINE if set, else the first line
# of the target in the ELF's path (target/TRIPLE/...), else mps2-an386 (the
# Cortex-M4F). ARGs reach the firmware as its semihosting command line (the
# scorer takes the path of a CSV file, read from the host through semihosting);
# each is percent-encoded (`%`, space and control bytes) because QEMU joins them
# with spaces, and the firmware decodes them. Environment:
#   MAF_MODEL    the blob to load (default: models/basicmotions.maf); a relative
#                path is relative to this crate, as in build.rs
#   MAF_MACHINE  the QEMU machine (a name of machines.txt)
#   MAF_SERIAL   what QEMU's first serial port (UART0) is connected to, as QEMU's
#                -serial takes it (default: none; `stdio` for the uart firmware)
#   QEMU         the emulator (default: qemu-system-arm)
#   QEMU_EXTRA   extra QEMU options, word-split (e.g. "-d exec,nochain -singlestep")
# Exit status: the firmware's (semihosting exit: 0 success, 1 failure, 2 bad
# input rows), or 125 when this script cannot start QEMU (bad arguments, no
# model file, unknown machine), 127 when QEMU is not installed. QEMU's own
# errors (it could not start the machine) exit 1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "qemu-run.sh: $*" >&2; exit 125; }
elf="${1:-}"
[[ -n "$elf" ]] || die "usage: qemu-run.sh ELF [ARG...]"
shift

model="${MAF_MODEL:-models/basicmotions.maf}"
case "$model" in
    /*) ;;
    *) model="$here/$model" ;;
esac
[[ -f "$model" ]] || die "model blob not found or not a regular file: $model (set MAF_MODEL)"

# The machine: MAF_MACHINE, else the target directory in the ELF's path.
machine="${MAF_MACHINE:-}"
if [[ -z "$machine" ]]; then
    # Cargo passes target/TRIPLE/PROFILE/BIN, relative or absolute.
    if [[ "$elf" =~ (^|/)target/([^/]+)/[^/]+/[^/]+$ ]]; then
        triple="${BASH_REMATCH[2]}"
        machine="$(awk -v t="$triple" '$1 == t { print $2; exit }' "$here/machines.txt")"
        [[ -n "$machine" ]] || die "no machine for target $triple in $here/machines.txt"
    else
        machine=mps2-an386
    fi
fi
read -r cpu memory < <(awk -v m="$machine" '!/^#/ && $2 == m { print $3, $4; exit }' "$here/machines.txt") \
    || die "unknown machine $machine (machines.txt has: $(awk '!/^#/ && NF { printf "%s ", $2 }' "$here/machines.txt"))"

# The load address is the MODEL region's ORIGIN in the machine's memory map.
addr="$(sed -n 's/^ *MODEL *: *ORIGIN *= *\(0x[0-9A-Fa-f_]*\).*/\1/p' "$here/$memory" | tr -d _)"
[[ -n "$addr" ]] || die "no MODEL region in $here/$memory"

qemu="${QEMU:-qemu-system-arm}"
if ! command -v "$qemu" >/dev/null 2>&1; then
    echo "qemu-run.sh: $qemu not found; install it (Debian: apt-get install qemu-system-arm)" >&2
    exit 127
fi

# Semihosting arguments: the first is the program name by convention. Each is
# percent-encoded (QEMU joins them with spaces), then a comma is doubled for
# QEMU's option parser.
encode() {
    local s="$1" out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
            %) out+="%25" ;;
            " ") out+="%20" ;;
            [[:cntrl:]]) out+="$(printf '%%%02X' "'$c")" ;;
            *) out+="$c" ;;
        esac
    done
    printf '%s' "${out//,/,,}"
}
sh_args="arg=$(encode "$(basename "$elf")")"
for a in "$@"; do
    sh_args+=",arg=$(encode "$a")"
done

# -icount shift=0: one instruction per ns of virtual time, so SysTick counts one
# tick per 1000/MHz instructions of the machine's clock (machines.txt),
# deterministically.
# shellcheck disable=SC2086
exec "$qemu" -machine "$machine" -cpu "$cpu" -nographic -monitor none \
    -serial "${MAF_SERIAL:-none}" \
    -semihosting-config "enable=on,target=native,$sh_args" \
    -icount shift=0 \
    -kernel "$elf" \
    -device "loader,file=${model//,/,,},addr=$addr" \
    ${QEMU_EXTRA:-}
