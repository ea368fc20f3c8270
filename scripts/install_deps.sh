#!/usr/bin/env bash
# Installs hearth's build and runtime dependencies from Debian 12 packages (idempotent: does nothing when
# everything is already installed). Needs root or sudo.
#   scripts/install_deps.sh          # build + run
#   scripts/install_deps.sh --test   # also what the tests need (node/npm for the pinned reference packages)
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libtorch-dev libopenblas0-openmp libgloo-dev
  libcli11-dev libfmt-dev libyaml-cpp-dev catch2 libzstd-dev nlohmann-json3-dev libcpp-httplib-dev libpcre2-dev
  libpoppler-cpp-dev libedit-dev
  libgmime-3.0-dev libgumbo-dev libutf8proc-dev libssl-dev
)
missing=()
if [[ "${1:-}" == "--test" ]]; then
  # Tools for the tests (the pinned reference packages are fetched with npm; the chat page is clicked in
  # chromium). Checked by command, not by package: node/npm installed some other way (nodesource, nvm) are fine,
  # and asking apt for Debian's npm on top of them fails.
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  command -v chromium >/dev/null || missing+=(chromium)
  # The generated man page and shell completions are checked with the tools that read them.
  command -v groff >/dev/null || missing+=(groff-base)
  command -v zsh >/dev/null || missing+=(zsh)
fi
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install_deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
