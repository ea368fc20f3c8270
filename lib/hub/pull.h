// `hearth pull`: a model from the Hugging Face Hub into the local cache, in huggingface_hub's layout
// (io/hf_cache.h), so that hearth finds it by name (`--model org/name`) and transformers finds it too.
//
// Steps: ask the Hub which commit the revision points at and what files it holds (hub/hub_api.h); choose the files
// (the defaults below, or --include globs); download each missing blob under its lock (hub/blob_download.h: resumed,
// size- and hash-checked, renamed into place); link it from snapshots/COMMIT/; last, write refs/REVISION.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hub/hub_api.h"

namespace hearth::hub {

struct PullOptions {
  std::string name;                  // "org/name" or "org/name@revision"
  std::string revision;              // --revision ("": the name's, else "main")
  std::vector<std::string> include;  // globs (fnmatch, '*' crosses '/'); empty: the default files
  int retries = 5;                   // per file, after a broken transfer
  std::filesystem::path cache;       // empty: io::hf_cache_dir()
  HubConfig hub;
};

struct PulledFile {
  std::string path;  // in the repo
  uint64_t size = 0;
  std::string blob;           // the blob's name (its ETag)
  bool downloaded = false;    // false: the blob was already cached
  uint64_t resumed_from = 0;  // bytes a partial download already held
};

struct PullResult {
  std::string repo, revision, commit;
  std::filesystem::path snapshot;  // what `--model org/name[@revision]` now resolves to
  std::vector<PulledFile> files;
  uint64_t bytes_downloaded = 0;
  double seconds = 0;
};

// Downloads the model. Progress goes to stderr (hearth::Progress: a bar on a terminal, log lines otherwise).
// Throws ConfigError (exit 2) for a malformed name or revision, both a name@revision and a different --revision,
// an --include that matches nothing (the repo's files are listed), 401/403; IoError (3) for an unreachable Hub, 404,
// a transfer broken after the retries; FormatError (4) for a checksum or size mismatch; ResourceError (5) when the
// disk lacks the space; InterruptedError (130). Partial downloads stay for the next run to resume.
PullResult hub_pull(const PullOptions& options);

// The files pulled when no --include is given, as globs over top-level names: config, generation config,
// tokenizer files and safetensors weights.
const std::vector<std::string>& pull_default_globs();
// The files of `all` that a pull takes: those matching `include`; with none, the top-level files matching the
// defaults, and of the safetensors only the index's shards (when there is model.safetensors.index.json) or
// model.safetensors (when there is one) — so a repo's second copy of the weights (consolidated.safetensors) is
// not downloaded. Throws ConfigError naming an --include glob that matches nothing.
std::vector<HubFile> pull_files_select(const std::vector<HubFile>& all, const std::vector<std::string>& include,
                                       const std::string& repo);

}  // namespace hearth::hub
