#!/usr/bin/env bash
# Builds lake_compat_kmod.ko against lake.ko's exports, out of the source tree.
# Usage: build.sh KDIR BUILD_DIR COMPAT_INCLUDE_DIR LAKE_KMOD_DIR [make args...]
set -euo pipefail
src=$(cd "$(dirname "$0")/../../.." && pwd)
kdir=$1 out=$2 compat=$3 lakemod=$4
shift 4
exec "$src/kmod/kbuild.sh" "$kdir" "$out" --symvers "$lakemod/Module.symvers" \
	"$src/test/compat/kmod/Kbuild" "$src/test/compat/kmod/lake_compat_kmod.c" \
	"$compat/cuda.h" "$compat/nvml.h" -- "$@"
