#!/usr/bin/env bash
# fuzz-kchan.sh: fuzzes lake.ko's channel in the test VM for a time budget.
# A hostile daemon (fuzz_kchan.c) answers with random and mutated replies
# while kernel callers call every function (fuzz-vm.sh says what is judged).
#
# Usage: test/vm/fuzz-kchan.sh [--seconds N] [--seed S] [--build DIR] [--out DIR]
#   --seconds N   fuzzing time inside the VM (default 60)
#   --seed S      the daemon's random seed (default: from the clock, printed)
#   --build DIR   the CMake build directory (default: build), built first
#   --out DIR     where the VM's logs go (default: DIR/vm-out/fuzz-kchan)
# Exit status: 0 clean, 1 a problem (the failing kernel log lines are shown).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
seconds=60 seed="" build="$src/build" out=""
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) seconds=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "usage: $0 [--seconds N] [--seed S] [--build DIR] [--out DIR]" >&2; exit 2 ;;
	esac
done
case $seconds in ''|*[!0-9]*) echo "fuzz-kchan: --seconds needs a number" >&2; exit 2 ;; esac
[ -n "$out" ] || out="$build/vm-out/fuzz-kchan"
cmake --build "$build" --target lake_kmod lake_selftest_kmod fuzz_kchan lake_generated >/dev/null
conf=$(mktemp)
trap 'rm -f "$conf"' EXIT
echo "SECONDS=$seconds" >"$conf"
[ -z "$seed" ] || echo "SEED=$seed" >>"$conf"
exec "$src/test/vm/lake-vm.sh" --timeout $((seconds + 150)) --out "$out" \
	--file "$build/kmod/lake.ko" --file "$build/test/vm/ktest/lake_selftest.ko" \
	--file "$build/test/vm/fuzz_kchan" --file "$build/gen/lake_test_image.ptx" \
	--file "$conf:/lake/fuzz.conf" --run "$src/test/vm/fuzz-vm.sh"
