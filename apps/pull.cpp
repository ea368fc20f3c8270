// hearth pull org/name[@revision]: a model from the Hugging Face Hub into the local cache, where `--model org/name`
// (and transformers) find it. The work is hub::hub_pull (lib/hub/pull.h); this file maps options and prints.
#include <iostream>

#include <fmt/format.h>

#include "apps/commands.h"
#include "core/error.h"
#include "core/progress.h"
#include "hub/pull.h"

namespace hearth::app {
namespace {

void run_pull(const hub::PullOptions& o, const GlobalOptions& g) {
  hub::PullOptions options = o;
  options.hub = hub::hub_config_from_env();
  if (options.retries < 0) throw ConfigError(fmt::format("--retries: expected >= 0, got {}", options.retries));
  const hub::PullResult r = hub::hub_pull(options);
  size_t downloaded = 0;
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : r.files) {
    downloaded += f.downloaded;
    files.push_back({{"path", f.path},
                     {"size", f.size},
                     {"blob", f.blob},
                     {"downloaded", f.downloaded},
                     {"resumed_from", f.resumed_from}});
  }
  if (g.json) {
    json_print({{"repo", r.repo},
                {"revision", r.revision},
                {"commit", r.commit},
                {"path", r.snapshot.string()},
                {"files", files},
                {"bytes_downloaded", r.bytes_downloaded},
                {"seconds", r.seconds}});
    return;
  }
  std::cout << fmt::format("{}@{} (commit {}): {} files, {} downloaded ({} new) in {:.1f} s\n{}\n", r.repo, r.revision,
                           r.commit.substr(0, 7), r.files.size(), downloaded,
                           bytes_format(static_cast<double>(r.bytes_downloaded)), r.seconds, r.snapshot.string());
}

}  // namespace

void add_pull(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<hub::PullOptions>();
  auto* cmd = app.add_subcommand("pull", "Download a model from the Hugging Face Hub into the local cache");
  cmd->add_option("name", o->name, "org/name or org/name@revision")->required();
  cmd->add_option("--revision", o->revision, "Branch, tag or commit (default: main)");
  cmd->add_option("--include", o->include,
                  "Glob of the files to take, repeatable (default: config, tokenizer, *.safetensors; a GGUF only by "
                  "name or glob)");
  cmd->add_option("--retries", o->retries, "Retries of a broken transfer per file (default 5)");
  cmd->callback([o, &g, &run] { run = [o, &g] { run_pull(*o, g); }; });
}

}  // namespace hearth::app
