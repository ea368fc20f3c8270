// Documents generated from the command-line definitions themselves, so they never drift from the parser: the
// man page (`hearth man`, roff for man(7)) and shell completion (`hearth completion bash|zsh`). The build writes
// both into the install tree (CMake install() rules); see docs/building.md.
// Not here: parsing (apps/main.cpp), the hand-written guides (docs/).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace hearth::app {

// hearth(1): NAME, SYNOPSIS, DESCRIPTION, GLOBAL OPTIONS, one COMMANDS subsection per subcommand (nested ones
// too) with its options, EXIT STATUS, FILES, SEE ALSO.
std::string man_page(const CLI::App& cli, const std::string& version);

// A completion script for `shell` ("bash" or "zsh"): subcommands after `hearth`, and after a subcommand its own
// options and subcommands, plus the global options. Throws ConfigError for another shell.
std::string completion_script(const CLI::App& cli, const std::string& shell);

// Adds `hearth man` and `hearth completion SHELL`, which print the above for `cli` (set `run`).
void add_cli_docs(CLI::App& cli, std::function<void()>& run, const std::string& version);

}  // namespace hearth::app
