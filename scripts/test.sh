#!/usr/bin/env bash
# The full test suite on a fresh Debian 12 machine: install dependencies (incl. node/npm for the pinned
# reference packages the tests fetch), build with tests, run ctest. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --test
scripts/build.sh -DHEARTH_BUILD_TESTS=ON
cd "${HEARTH_BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" "$@"
