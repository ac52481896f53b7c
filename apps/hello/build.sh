#!/usr/bin/env bash
# Builds lake_hello.ko against lake.ko's exports, out of the source tree.
# Usage: build.sh KDIR BUILD_DIR GEN_DIR LAKE_KMOD_DIR [make args...]
# (apps/CMakeLists.txt runs it as the lake_hello target.)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
kdir=$1
mkdir -p "$2"
out=$(cd "$2" && pwd) gen=$(cd "$3" && pwd) lakemod=$(cd "$4" && pwd)
shift 4
ln -sfn "$src/apps/hello/Kbuild" "$out/Kbuild"
ln -sfn "$src/apps/hello/lake_hello.c" "$out/lake_hello.c"
ln -sfn "$gen/lake_cuda.h" "$out/lake_cuda.h"
ln -sfn "$src/include/lake/lake_kernel.h" "$out/lake_kernel.h"
exec make -C "$kdir" M="$out" KBUILD_EXTRA_SYMBOLS="$lakemod/Module.symvers" "$@" modules
