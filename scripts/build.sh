#!/usr/bin/env bash
# Configures (first time) and builds hearth in Release (ccache when present) into build/.
#   scripts/build.sh                     # everything (library, binary, tests, benchmarks)
#   scripts/build.sh --target hearth     # just the binary
#   scripts/build.sh -DOPTION=VALUE ...  # extra cmake arguments (re-configures)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${HEARTH_BUILD_DIR:-build}"
TARGET=()
CMAKE_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --target) TARGET=(--target "$2"); shift 2 ;;
    *) CMAKE_ARGS+=("$1"); shift ;;
  esac
done
GENERATOR=()
if command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release "${CMAKE_ARGS[@]}"
elif [[ ${#CMAKE_ARGS[@]} -gt 0 ]]; then
  cmake -S . -B "$BUILD_DIR" "${CMAKE_ARGS[@]}"
fi
cmake --build "$BUILD_DIR" -j "$(nproc)" "${TARGET[@]}"
