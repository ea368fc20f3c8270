// hearth list [PATH...]: the models in the Hugging Face cache (and any folders or GGUF files given), one line each:
// the name to pass to --model, revision, commit, size, family and weight type. Reads headers only
// (io::hf_cache_list, io::model_summary_read).
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "apps/commands.h"
#include "core/error.h"
#include "core/progress.h"
#include "io/hf_cache.h"
#include "io/model_summary.h"

namespace hearth::app {
namespace {

struct ListOptions {
  std::vector<std::string> paths;
};

// What --model takes for a snapshot: the repo for main's, else repo@ref, else repo@commit.
std::string name_of(const io::HfCachedModel& m) {
  if (std::find(m.refs.begin(), m.refs.end(), "main") != m.refs.end()) return m.repo;
  return m.repo + "@" + (m.refs.empty() ? m.commit : m.refs.front());
}

// One row: what the listing knows plus the model's own summary (or why it could not be read).
nlohmann::json row(const std::string& name, const std::filesystem::path& path) {
  nlohmann::json j = {{"name", name}, {"path", path.string()}};
  try {
    const io::ModelSummary s = io::model_summary_read(path);
    j.update({{"format", s.format},
              {"model_type", s.model_type},
              {"dtype", s.dtype},
              {"parameters", s.parameters},
              {"bytes", s.bytes}});
  } catch (const Error& e) {
    j["error"] = e.what();
  }
  return j;
}

std::string cell(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return "?";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

void table_print(const nlohmann::json& rows) {
  std::cout << fmt::format("{:<40} {:<12} {:<8} {:>10} {:<10} {}\n", "NAME", "REVISION", "COMMIT", "SIZE", "FAMILY",
                           "DTYPE");
  for (const auto& r : rows) {
    std::string revision = r.contains("refs")
                               ? fmt::format("{}", fmt::join(r["refs"].get<std::vector<std::string>>(), ","))
                               : "-";
    std::string size = r.contains("bytes") ? bytes_format(r["bytes"].get<double>()) : "?";
    std::cout << fmt::format(
        "{:<40} {:<12} {:<8} {:>10} {:<10} {}\n", cell(r, "name"), revision.empty() ? "-" : revision,
        r.contains("commit") ? r["commit"].get<std::string>().substr(0, 7) : "-", size, cell(r, "model_type"),
        r.contains("error") ? "(unreadable: " + cell(r, "error") + ")" : cell(r, "dtype"));
  }
}

void run_list(const ListOptions& o, const GlobalOptions& g) {
  const std::filesystem::path cache = io::hf_cache_dir();
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& m : io::hf_cache_list(cache)) {
    nlohmann::json j = row(name_of(m), m.path);
    j.update({{"repo", m.repo}, {"commit", m.commit}, {"refs", m.refs}, {"files", m.files}});
    if (!j.contains("bytes")) j["bytes"] = m.bytes;
    rows.push_back(j);
  }
  for (const auto& p : o.paths) {
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) throw IoError(fmt::format("list: '{}': no such file or folder", p));
    rows.push_back(row(p, p));
  }
  if (g.json) {
    json_print({{"cache", cache.string()}, {"models", rows}});
    return;
  }
  if (!rows.empty()) table_print(rows);
  if (rows.empty())
    std::cout << fmt::format("(no models in {}; `hearth pull org/name` downloads one)\n", cache.string());
}

}  // namespace

void add_list(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<ListOptions>();
  auto* cmd = app.add_subcommand("list", "List the models in the Hugging Face cache (and given folders or GGUF files)");
  cmd->add_option("paths", o->paths, "Model folders or GGUF files to list too");
  cmd->callback([o, &g, &run] { run = [o, &g] { run_list(*o, g); }; });
}

}  // namespace hearth::app
