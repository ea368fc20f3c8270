#!/usr/bin/env bash
# The installed tree (cmake --install into a scratch prefix): the binary runs from it with the bundled model, the
# man page renders without a warning and documents every command, and the bash and zsh completions offer the
# subcommands and a subcommand's options. Usage: install_check.sh BUILD_DIR
set -euo pipefail
BUILD="$1"
PREFIX="$(mktemp -d /tmp/hearth_install_XXXXXX)"
trap 'rm -rf "$PREFIX"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
H="$PREFIX/bin/hearth"
for f in bin/hearth share/man/man1/hearth.1 share/bash-completion/completions/hearth share/zsh/vendor-completions/_hearth \
         share/doc/hearth/README.md share/doc/hearth/cli.md share/hearth/recipes share/hearth/models/stories260K/config.json; do
  [[ -e "$PREFIX/$f" ]] || fail "missing $f"
done
"$H" --version | grep -q '^hearth ' || fail "--version"
out="$("$H" -q generate -m "$PREFIX/share/hearth/models/stories260K" -p 'Once upon a time' -n 4 --temp 0)"
[[ -n "$out" ]] || fail "generate from the installed model printed nothing"

# The man page: groff reads it without a warning, and every subcommand has its section.
warnings="$(groff -man -z -ww "$PREFIX/share/man/man1/hearth.1" 2>&1)"
[[ -z "$warnings" ]] || fail "groff: $warnings"
commands="$("$H" --help | awk '/^Subcommands:/{on=1; next} on && NF {print $1}')"
[[ "$(echo "$commands" | wc -l)" -ge 15 ]] || fail "--help lists too few commands: $commands"
for cmd in $commands; do
  grep -qF ".SS hearth ${cmd//-/\\-}" "$PREFIX/share/man/man1/hearth.1" || fail "man page lacks 'hearth $cmd'"
done
grep -q 'json\\-schema' "$PREFIX/share/man/man1/hearth.1" || fail "man page lacks generate's --json-schema"

# bash: the subcommands after `hearth`, a subcommand's options after it.
bash_offer() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _hearth; echo "${COMPREPLY[*]}"' \
    _ "$PREFIX/share/bash-completion/completions/hearth" "$@"
}
[[ " $(bash_offer hearth gen) " == *" generate "* ]] || fail "bash: 'hearth gen' does not offer generate"
[[ " $(bash_offer hearth generate --json) " == *" --json-schema "* ]] || fail "bash: generate --json does not offer --json-schema"
[[ " $(bash_offer hearth dataset '') " == *" inspect "* ]] || fail "bash: dataset does not offer inspect"
[[ " $(bash_offer hearth serve --co) " != *" --cors-origin "* ]] && fail "bash: serve --co does not offer --cors-origin"
[[ " $(bash_offer hearth generate --co) " == *" --cors-origin "* ]] && fail "bash: generate offers serve's --cors-origin"

# zsh: the same through the generated function, with compadd standing in for the completion system.
zsh_offer() {
  zsh -c 'source "$1" >/dev/null 2>&1; compadd() { shift; print -l -- ${(P)1} }; shift; words=("$@"); CURRENT=$#; _hearth' \
    _ "$PREFIX/share/zsh/vendor-completions/_hearth" "$@" | tr '\n' ' '
}
[[ " $(zsh_offer hearth '') " == *" finetune-lora "* ]] || fail "zsh: 'hearth' does not offer finetune-lora"
[[ " $(zsh_offer hearth quantize '') " == *" --type "* ]] || fail "zsh: quantize does not offer --type"
echo "install_check: ok ($PREFIX)"
