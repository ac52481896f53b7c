#!/usr/bin/env bash
# Builds lake_kbench.ko against lake.ko's exports, out of the source tree.
# Usage: build.sh KDIR BUILD_DIR GEN_DIR LAKE_KMOD_DIR [make args...]
set -euo pipefail
src=$(cd "$(dirname "$0")/../../.." && pwd)
kdir=$1 out=$2 gen=$3 lakemod=$4
shift 4
exec "$src/kmod/kbuild.sh" "$kdir" "$out" --symvers "$lakemod/Module.symvers" \
	"$src/bench/bridge/kbench/Kbuild" "$src/bench/bridge/kbench/lake_kbench.c" \
	"$gen/lake_cuda.h" "$src/include/lake/lake_kernel.h" -- "$@"
