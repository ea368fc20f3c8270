#!/usr/bin/env bash
# Builds hearth and installs it: the binary, its man page, bash and zsh completions, the guides, the bundled
# recipes and the tiny bundled model (docs/building.md lists where each goes).
#   scripts/install.sh                     # into /usr/local (needs root or sudo for the copy)
#   scripts/install.sh --prefix ~/.local   # anywhere else
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=/usr/local
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
    *) echo "install.sh: unknown option '$1'; expected --prefix DIR" >&2; exit 2 ;;
  esac
done
scripts/install_deps.sh
scripts/build.sh --target hearth_cli_docs
SUDO=""
if [[ ! -w "$(dirname "$PREFIX")" && ! -w "$PREFIX" && $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO cmake --install "${HEARTH_BUILD_DIR:-build}" --prefix "$PREFIX"
echo "install.sh: installed into $PREFIX (try: $PREFIX/bin/hearth generate -m $PREFIX/share/hearth/models/stories260K -p 'Once upon a time')"
