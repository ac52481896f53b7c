#!/usr/bin/env bash
# Runs LAKE's whole test suite on this machine: installs what is missing,
# configures and builds everything, then runs every CTest test (labels unit,
# vm and gpu; gpu tests skip with a message where there is no GPU).
# Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD=${LAKE_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
cd "$BUILD"
exec ctest --output-on-failure "$@"
