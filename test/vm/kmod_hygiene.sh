#!/usr/bin/env bash
# kmod_hygiene.sh KDIR SCRATCH GEN_DIR - build lake.ko and lake_selftest.ko
# with W=1 (the kernel's extra warnings) and sparse over every file (C=2) in
# SCRATCH, out of the real build directory, and fail on any warning or error
# that the compiler, sparse or modpost print.  (CTest: kmod_hygiene.)
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
[ $# -eq 3 ] || {
	echo "usage: kmod_hygiene.sh KDIR SCRATCH GEN_DIR" >&2
	exit 2
}
kdir=$1 scratch=$2 gen=$3
[ -f "$kdir/Makefile" ] || {
	echo "kmod_hygiene: no kernel build tree at $kdir" >&2
	exit 2
}
command -v sparse >/dev/null || {
	echo "kmod_hygiene: sparse is not installed (scripts/install-deps.sh)" >&2
	exit 2
}
[ -f "$gen/lake_stubs.c" ] || {
	echo "kmod_hygiene: no generated code in $gen: build first" >&2
	exit 2
}

rm -rf "$scratch"
mkdir -p "$scratch"
log=$scratch/build.log
failed=0

# build NAME COMMAND...: runs a build, keeps its output, fails on a non-zero
# status or any diagnostic line.
build() {
	local name=$1
	shift
	echo "== $name: $*" >>"$log"
	if ! "$@" >"$scratch/$name.log" 2>&1; then
		cat "$scratch/$name.log"
		echo "kmod_hygiene: FAIL: $name: the build failed" >&2
		failed=1
		return 1
	fi
	cat "$scratch/$name.log" >>"$log"
	# Sparse reports as "file:line:col: warning: ..." / "error: ...".
	if grep -E '(warning|error):' "$scratch/$name.log"; then
		echo "kmod_hygiene: FAIL: $name: warnings above (W=1 C=2)" >&2
		failed=1
		return 1
	fi
	# Prove sparse did run over every file (C=2 prints CHECK per file).
	if ! grep -q '  CHECK ' "$scratch/$name.log"; then
		echo "kmod_hygiene: FAIL: $name: sparse did not run (no CHECK lines)" >&2
		failed=1
		return 1
	fi
	echo "kmod_hygiene: $name: clean ($(grep -c '  CHECK ' "$scratch/$name.log") files checked)"
}

build lake.ko "$SRC/kmod/build.sh" "$kdir" "$scratch/kmod" "$gen" W=1 C=2 &&
	build lake_selftest.ko "$SRC/test/vm/ktest/build.sh" "$kdir" "$scratch/ktest" "$gen" \
		"$scratch/kmod" W=1 C=2

if [ "$failed" -ne 0 ]; then
	echo "kmod_hygiene: FAIL (logs in $scratch)"
	exit 1
fi
echo "kmod_hygiene: PASS"
