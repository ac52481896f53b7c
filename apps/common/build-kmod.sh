#!/usr/bin/env bash
# Builds an app's kernel module (apps/<app>/Kbuild) against lake.ko's
# exports, out of the source tree, with the workload kit.
# Usage: build-kmod.sh KDIR BUILD_DIR GEN_DIR LAKE_KMOD_DIR APP_DIR [FILE...] -- [make args...]
#   FILE: generated sources (the embedded fatbin, built-in weights), linked
#   into BUILD_DIR beside the app's own *.c/*.h and the kit's.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
kdir=$1 out=$2 gen=$3 lakemod=$4 app=$5
shift 5
files=("$app/Kbuild")
for f in "$app"/*.c "$app"/*.h; do [ -e "$f" ] && files+=("$f"); done
for f in lake_app.c lake_app_kmod.c lake_app_fpu.c lake_app.h lake_app_env.h lake_app_fpu.h \
	lake_math.h lake_app.kbuild; do
	files+=("$src/apps/common/$f")
done
files+=("$gen/lake_cuda.h" "$src/include/lake/lake_kernel.h")
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	files+=("$1")
	shift
done
[ $# -eq 0 ] || shift
exec "$src/kmod/kbuild.sh" "$kdir" "$out" --symvers "$lakemod/Module.symvers" "${files[@]}" -- "$@"
