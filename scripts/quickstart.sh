#!/usr/bin/env bash
# The main job on the bundled defaults, on a fresh Debian 12 machine: install dependencies, build, then
# generate a story with the bundled model (models/stories260K, a real pretrained 260K-parameter Llama).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh -DHEARTH_BUILD_TESTS=OFF >/dev/null
echo "== hearth generate (bundled stories260K model) ==" >&2
build/apps/hearth generate --model models/stories260K --prompt "Once upon a time" --max-tokens 200 --seed 42
