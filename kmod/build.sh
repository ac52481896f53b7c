#!/usr/bin/env bash
# Builds lake.ko with Kbuild in a build directory, out of the source tree.
# Usage: kmod/build.sh KDIR BUILD_DIR GEN_DIR [make args...]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
kdir=$1 out=$2 gen=$3
shift 3
exec "$src/kmod/kbuild.sh" "$kdir" "$out" \
	"$src"/kmod/*.c "$src"/kmod/*.h "$src/kmod/Kbuild" "$src"/shm/*.c "$src"/shm/*.h \
	"$src"/proto/*.c "$src"/proto/*.h "$gen/lake_stubs.c" "$gen/lake_compat.c" "$gen/lake_cuda.h" \
	"$gen/lake_nvml.h" "$gen/lake_proto_gen.h" "$src/include/lake/lake_kernel.h" \
	"$src/include/lake/lake_ivshmem.h" \
	"$src/include/uapi/linux/lake.h:uapi/linux/lake.h" -- "$@"
