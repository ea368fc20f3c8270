#!/usr/bin/env bash
# Configures and builds hearth (Release, ccache when present) into build/. Extra arguments go to cmake.
#   scripts/build.sh [-DHEARTH_BUILD_TESTS=OFF] ...
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${HEARTH_BUILD_DIR:-build}"
GENERATOR=()
if command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
elif [[ $# -gt 0 ]]; then
  cmake -S . -B "$BUILD_DIR" "$@"
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
