#!/usr/bin/env bash
# kmod-hygiene.sh KDIR SCRATCH BUILD_DIR - builds every app module
# (lake_hello.ko and each lake_<app>.ko) with W=1 (the kernel's extra
# warnings) and sparse over every file (C=2) in SCRATCH, against the real
# build's lake.ko exports and generated sources, and fails on any warning or
# error the compiler, sparse or modpost print.  (CTest: apps_kmod_hygiene.)
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -eq 3 ] || { echo "usage: kmod-hygiene.sh KDIR SCRATCH BUILD_DIR" >&2; exit 2; }
kdir=$1 scratch=$2 build=$(cd "$3" && pwd)
command -v sparse >/dev/null || { echo "apps kmod hygiene: sparse is not installed (scripts/install-deps.sh)" >&2; exit 2; }
rm -rf "$scratch"
mkdir -p "$scratch"
failed=0

check() { # check NAME COMMAND...
	local name=$1
	shift
	if ! "$@" >"$scratch/$name.log" 2>&1; then
		cat "$scratch/$name.log"
		echo "apps kmod hygiene: FAIL: $name: the build failed"
		failed=1
	elif grep -E '(warning|error):' "$scratch/$name.log"; then
		echo "apps kmod hygiene: FAIL: $name: warnings above (W=1 C=2)"
		failed=1
	elif ! grep -q '  CHECK ' "$scratch/$name.log"; then
		echo "apps kmod hygiene: FAIL: $name: sparse did not run"
		failed=1
	else
		echo "apps kmod hygiene: $name: clean ($(grep -c '  CHECK ' "$scratch/$name.log") files checked)"
	fi
}

check lake_hello "$src/apps/hello/build.sh" "$kdir" "$scratch/hello" "$build/gen" "$build/kmod" \
	"$build/apps/hello_fatbin.c" W=1 C=2
for app in ${LAKE_APPS:-linnos mllb kml kleio knn}; do
	gen=("$build/apps/$app/${app}_fatbin.c")
	for f in "$build/apps/$app/${app}"_weights.[ch]; do [ -e "$f" ] && gen+=("$f"); done
	check "lake_$app" "$src/apps/common/build-kmod.sh" "$kdir" "$scratch/$app" "$build/gen" \
		"$build/kmod" "$src/apps/$app" "${gen[@]}" -- W=1 C=2
done
[ $failed -eq 0 ] && echo "apps kmod hygiene: PASS"
exit $failed
