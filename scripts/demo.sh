#!/usr/bin/env bash
# LAKE's main job: installs what is missing, builds everything, and shows what
# the generator made from api-spec/ and what the build checked.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD=${LAKE_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo | grep -E "LAKE" || true
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
echo
echo "== Generated from api-spec/ into $BUILD/gen/"
for f in "$BUILD"/gen/*; do
	printf '  %-24s %6d lines  %s\n' "$(basename "$f")" "$(wc -l <"$f")" "$(head -c 200 "$f" | head -1 | cut -c1-70)"
done
echo
echo "== Remoted API (id name spec)"
grep -E '^\s+X\(' "$BUILD/gen/lake_proto_gen.h" | sed -E 's/^\s+X\(([0-9]+), ([A-Za-z0-9_]+), ([a-z]+)\).*/  \1 \2 (\3)/' | column -c 110
echo
grep -E 'define LAKE_SPEC_HASH' "$BUILD/gen/lake_proto_gen.h" | awk '{print "== Spec hash baked into both sides: " $3}'
echo "== Example: the generated client stub of cuMemcpyHtoD"
awk '/^CUresult cuMemcpyHtoD\(/,/^LAKE_EXPORT\(cuMemcpyHtoD\)/' "$BUILD/gen/lake_stubs.c"
