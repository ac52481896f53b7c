#!/usr/bin/env bash
# Builds lake_hello.ko against lake.ko's exports, out of the source tree.
# Usage: build.sh KDIR BUILD_DIR GEN_DIR LAKE_KMOD_DIR HELLO_FATBIN_C [make args...]
# (apps/CMakeLists.txt runs it as the lake_hello target; HELLO_FATBIN_C is
# hello.cu's fatbin embedded by apps/common/embed.py.)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
kdir=$1 out=$2 gen=$3 lakemod=$4 fatbin=$5
shift 5
exec "$src/kmod/kbuild.sh" "$kdir" "$out" --symvers "$lakemod/Module.symvers" \
	"$src/apps/hello/Kbuild" "$src/apps/hello/hello.c" "$fatbin:hello_fatbin.c" \
	"$gen/lake_cuda.h" "$src/include/lake/lake_kernel.h" -- "$@"
