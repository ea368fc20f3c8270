// Suggestions for unknown options. See cli_suggest.h.
#include "apps/cli_suggest.h"

#include <algorithm>

#include <fmt/format.h>

namespace hearth::app {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::optional<std::string> nearest_name(const std::string& word, const std::vector<std::string>& names) {
  std::optional<std::string> best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& n : names) {
    const size_t d = edit_distance(word, n);
    if (d < best_distance) {
      best_distance = d;
      best = n;
    }
  }
  return best;
}

namespace {

void add_names(const CLI::App* app, std::vector<std::string>& out) {
  for (const CLI::Option* o : app->get_options()) {
    for (const auto& n : o->get_lnames()) out.push_back("--" + n);
    for (const auto& n : o->get_snames()) out.push_back("-" + n);
  }
}

}  // namespace

std::string unknown_options_message(CLI::App& cli, int argc, char** argv) {
  // The (sub)command the line names: follow subcommand names from the start, as CLI11 does.
  CLI::App* app = &cli;
  std::string path = "hearth";
  std::vector<std::string> names;
  add_names(&cli, names);
  for (int i = 1; i < argc; ++i) {
    for (CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
      if (sub->get_name() == argv[i]) {
        app = sub;
        path += " " + sub->get_name();
        add_names(sub, names);
        break;
      }
    }
  }
  std::string out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a.size() < 2 || a[0] != '-' || (a[1] >= '0' && a[1] <= '9') || a[1] == '.') continue;  // not an option, or -1
    a = a.substr(0, a.find('='));
    if (std::find(names.begin(), names.end(), a) != names.end()) continue;
    if (a.rfind("--", 0) != 0 && a.size() > 2) continue;  // -abc: short flags stacked, or a value
    const auto near = nearest_name(a, names);
    out += fmt::format("{}: unknown option '{}'{}\n", path, a, near ? fmt::format("; did you mean '{}'?", *near) : "");
  }
  return out;
}

}  // namespace hearth::app
