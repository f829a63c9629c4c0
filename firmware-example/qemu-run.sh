#!/usr/bin/env bash
# Cargo runner: runs a firmware ELF on an emulated Cortex-M4F (QEMU mps2-an386)
# with the weight blob written into the MODEL flash region, as a flasher would.
#
#   qemu-run.sh ELF [ARG...]
#
# ARGs reach the firmware as its semihosting command line (the scorer takes the
# path of a CSV file, read from the host through semihosting). Environment:
#   MAF_MODEL   the blob to load (default: models/basicmotions.maf); a relative
#               path is relative to this crate, as in build.rs
#   QEMU        the emulator (default: qemu-system-arm)
#   QEMU_EXTRA  extra QEMU options, word-split (e.g. "-d exec,nochain -singlestep")
# The exit status is the firmware's (semihosting exit): 0 success, 1 failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
elf="${1:?usage: qemu-run.sh ELF [ARG...]}"
shift

model="${MAF_MODEL:-models/basicmotions.maf}"
case "$model" in
    /*) ;;
    *) model="$here/$model" ;;
esac
if [[ ! -f "$model" ]]; then
    echo "qemu-run.sh: model blob not found: $model (set MAF_MODEL)" >&2
    exit 2
fi

# The load address is the MODEL region's ORIGIN in memory.x (one source of truth).
addr="$(sed -n 's/^ *MODEL *: *ORIGIN *= *\(0x[0-9A-Fa-f_]*\).*/\1/p' "$here/memory.x" | tr -d _)"
if [[ -z "$addr" ]]; then
    echo "qemu-run.sh: no MODEL region in $here/memory.x" >&2
    exit 2
fi

qemu="${QEMU:-qemu-system-arm}"
if ! command -v "$qemu" >/dev/null 2>&1; then
    echo "qemu-run.sh: $qemu not found; install it (Debian: apt-get install qemu-system-arm)" >&2
    exit 127
fi

# Semihosting arguments: the first is the program name by convention. QEMU joins
# them with spaces, so an argument must not contain one; a comma is doubled for
# QEMU's option parser.
sh_args="arg=$(basename "$elf")"
for a in "$@"; do
    if [[ "$a" == *" "* ]]; then
        echo "qemu-run.sh: semihosting arguments cannot contain spaces: '$a'" >&2
        exit 2
    fi
    sh_args+=",arg=${a//,/,,}"
done

# -icount shift=0: one instruction per ns of virtual time, so SysTick (25 MHz)
# counts one tick per 40 instructions, deterministically.
# shellcheck disable=SC2086
exec "$qemu" -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none \
    -semihosting-config "enable=on,target=native,$sh_args" \
    -icount shift=0 \
    -kernel "$elf" \
    -device "loader,file=${model//,/,,},addr=$addr" \
    ${QEMU_EXTRA:-}
