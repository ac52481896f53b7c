#!/usr/bin/env bash
# Builds lake.ko with Kbuild in a build directory, out of the source tree.
# Usage: kmod/build.sh KDIR BUILD_DIR GEN_DIR [make args...]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
kdir=$1
mkdir -p "$2"
out=$(cd "$2" && pwd) gen=$(cd "$3" && pwd)
shift 3
mkdir -p "$out/uapi/linux" "$out/include"
link() { ln -sfn "$1" "$2"; }
for f in "$src"/kmod/*.c "$src"/kmod/*.h "$src"/kmod/Kbuild "$src"/shm/*.c "$src"/shm/*.h \
	 "$src"/proto/lake_call.c "$src"/proto/*.h "$gen"/lake_stubs.c "$gen"/lake_cuda.h \
	 "$gen"/lake_nvml.h "$gen"/lake_proto_gen.h "$src"/include/lake/lake_kernel.h; do
	link "$f" "$out/$(basename "$f")"
done
link "$src/include/uapi/linux/lake.h" "$out/uapi/linux/lake.h"
exec make -C "$kdir" M="$out" "$@" modules
