// hearth rm org/name[@revision]: deletes a model from the Hugging Face cache (its snapshot, its refs and the blobs no
// other snapshot uses; io::hf_snapshot_remove). Refuses anything that is not a cached model: your own folders are
// yours to delete.
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "apps/commands.h"
#include "core/error.h"
#include "core/progress.h"
#include "io/hf_cache.h"

namespace hearth::app {
namespace {

struct RmOptions {
  std::string model;
};

// The cached snapshot `value` names: a path inside the cache, or a name. Throws ConfigError / IoError.
io::HfCachedModel target_of(const std::string& value, const std::filesystem::path& cache) {
  std::error_code ec;
  if (std::filesystem::exists(value, ec)) {
    if (auto m = io::hf_cached_model_of(cache, value)) return *m;
    throw ConfigError(
        fmt::format("rm: '{}' is not a model in the Hugging Face cache {}; hearth rm deletes only "
                    "cached models (delete a folder of your own yourself)",
                    value, cache.string()));
  }
  const auto ref = io::hf_repo_ref_parse(value);
  if (!ref)
    throw ConfigError(fmt::format("rm: '{}' is neither a path nor a model name; expected org/name[@revision]", value));
  const auto commit = io::hf_commit_find(cache, *ref);
  if (!commit)
    throw IoError(fmt::format("rm: {} (revision {}) is not in the Hugging Face cache {}; `hearth list` shows what is",
                              ref->repo, ref->revision, cache.string()));
  io::HfCachedModel m;
  m.repo = ref->repo;
  m.commit = *commit;
  return m;
}

void run_rm(const RmOptions& o, const GlobalOptions& g) {
  const std::filesystem::path cache = io::hf_cache_dir();
  const io::HfCachedModel m = target_of(o.model, cache);
  const io::HfRemoval r = io::hf_snapshot_remove(cache, m.repo, m.commit);
  if (g.json) {
    json_print({{"repo", m.repo},
                {"commit", m.commit},
                {"refs", r.refs},
                {"blobs_removed", r.blobs},
                {"bytes_freed", r.bytes},
                {"repo_removed", r.repo_removed}});
    return;
  }
  std::cout << fmt::format("removed {} (commit {}{}{}): {} blob(s), {} freed\n", m.repo, m.commit.substr(0, 7),
                           r.refs.empty() ? "" : ", ", fmt::join(r.refs, ", "), r.blobs,
                           bytes_format(static_cast<double>(r.bytes)));
}

}  // namespace

void add_rm(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<RmOptions>();
  auto* cmd = app.add_subcommand("rm", "Delete a model from the Hugging Face cache (snapshot and unshared blobs)");
  cmd->add_option("model", o->model, "org/name[@revision], or a snapshot path inside the cache")->required();
  cmd->callback([o, &g, &run] { run = [o, &g] { run_rm(*o, g); }; });
}

}  // namespace hearth::app
