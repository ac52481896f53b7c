#!/usr/bin/env bash
# Builds an out-of-tree kernel module with Kbuild in BUILD_DIR, from links to
# its sources, so the source tree stays clean.  lake.ko and the modules that
# use it (lake_selftest.ko, lake_hello.ko) are built this way.
# Usage: kbuild.sh KDIR BUILD_DIR [--symvers FILE] FILE[:NAME]... -- [make args...]
#   FILE:NAME links FILE as NAME (which may have directories: uapi/linux/lake.h);
#   --symvers passes another module's Module.symvers (KBUILD_EXTRA_SYMBOLS).
set -euo pipefail
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
kdir=$1
mkdir -p "$2"
out=$(cd "$2" && pwd)
shift 2
extra=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	if [ "$1" = --symvers ]; then
		extra+=("KBUILD_EXTRA_SYMBOLS=$(abs "$2")")
		shift 2
		continue
	fi
	file=${1%%:*} name=${1#*:}
	[ "$name" != "$1" ] || name=$(basename "$file")
	mkdir -p "$out/$(dirname "$name")"
	ln -sfn "$(abs "$file")" "$out/$name"
	shift
done
[ $# -eq 0 ] || shift
exec make -C "$kdir" M="$out" "${extra[@]}" "$@" modules
