// Usage errors that help: for an unknown option, the nearest option the command has ("did you mean --temp?").
// Not here: parsing itself (CLI11, apps/main.cpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace hearth::app {

// Levenshtein distance between `a` and `b` (insertions, deletions, substitutions).
size_t edit_distance(const std::string& a, const std::string& b);

// The name in `names` nearest to `word`, when it is near enough to be a typo (distance at most 2, or a third of
// the word's length for long words); std::nullopt otherwise.
std::optional<std::string> nearest_name(const std::string& word, const std::vector<std::string>& names);

// For a command line with options neither the (sub)command it names nor the global options know: one line per such
// option, "hearth CMD: unknown option '--tmep'; did you mean '--temp'?" (without the suggestion when nothing is
// near). Empty when every option is known. `cli` is the top-level app, already set up.
std::string unknown_options_message(CLI::App& cli, int argc, char** argv);

}  // namespace hearth::app
