// The Hugging Face Hub cache on disk, in huggingface_hub's layout (shared with transformers, llama.cpp and
// every other library that reads it; specified in https://huggingface.co/docs/hub/local-cache):
//
//   CACHE/models--ORG--NAME/refs/REVISION       the commit a branch or tag points at (40 hex digits)
//   CACHE/models--ORG--NAME/snapshots/COMMIT/F  a relative symlink to ../../blobs/ETAG (one ../ more per subfolder)
//   CACHE/models--ORG--NAME/blobs/ETAG          the bytes, named by their sha256 (LFS files) or git blob sha1
//
// CACHE is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. This file finds, lists and removes
// cached models and turns `--model` values into paths; downloading into the cache is lib/hub (hub/pull.h).
// Nothing here talks to the network. Functions are thread-safe; concurrent removal and use of one snapshot is not.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace hearth::io {

// A model on the Hub as named on the command line: "org/name" or "org/name@revision".
struct HfRepoRef {
  std::string repo;               // "org/name"
  std::string revision = "main";  // a branch, a tag or a commit hash
};

// The cache folder the environment selects (it need not exist).
std::filesystem::path hf_cache_dir();

// Parses "org/name[@revision]". std::nullopt when `text` does not have that shape (an absolute or ./ path, no
// slash or more than one, characters the Hub does not allow in names such as spaces, "--" or "..").
std::optional<HfRepoRef> hf_repo_ref_parse(const std::string& text);
// True for a full commit hash (40 lower-case hex digits).
bool hf_commit_like(const std::string& s);
// CACHE/models--ORG--NAME.
std::filesystem::path hf_repo_dir(const std::filesystem::path& cache, const std::string& repo);

// The commit `ref` means in the cache: its revision when that is a commit with a snapshot, else the content of
// refs/REVISION. std::nullopt when the cache does not know it. Throws FormatError for a refs file that does not
// hold a commit hash.
std::optional<std::string> hf_commit_find(const std::filesystem::path& cache, const HfRepoRef& ref);

// What `--model VALUE` names: a path that exists is that path, unchanged (a path wins over a name); a value of the
// shape org/name[@revision] is its snapshot folder in the cache — or, when that folder holds no config.json but
// exactly one .gguf file, that file. Anything else comes back unchanged, for the command's own checks to report.
// Throws IoError (exit 3) for a name that is not cached, saying how to download it (`hearth pull org/name`) and
// which revisions are cached; or for a GGUF-only snapshot with several .gguf files (naming them).
std::filesystem::path model_path_resolve(const std::string& value);

// The repo ("org/name") a path inside a cache snapshot belongs to, read from the path alone
// (.../models--ORG--NAME/snapshots/COMMIT[/...]); std::nullopt for any other path. For names shown to people
// (a served model's name, a GGUF's general.name), which the snapshot folder's commit hash would make unreadable.
std::optional<std::string> hf_repo_of_path(const std::filesystem::path& path);

// One snapshot in the cache.
struct HfCachedModel {
  std::string repo;               // "org/name"
  std::string commit;             // the snapshot's folder name
  std::vector<std::string> refs;  // the refs pointing at it ("main", "v1.0"), sorted
  std::filesystem::path path;     // CACHE/models--ORG--NAME/snapshots/COMMIT
  uint64_t bytes = 0;             // the files it holds (each blob counted once)
  size_t files = 0;
};

// Every model snapshot in the cache, sorted by repo then commit. Unreadable entries are skipped.
std::vector<HfCachedModel> hf_cache_list(const std::filesystem::path& cache);
// The snapshot a path lies in (the snapshot folder itself or a file inside it), if it is one in `cache`.
std::optional<HfCachedModel> hf_cached_model_of(const std::filesystem::path& cache, const std::filesystem::path& path);

// What hf_snapshot_remove() deleted.
struct HfRemoval {
  std::vector<std::string> refs;  // the refs that pointed at the snapshot
  size_t blobs = 0;               // blobs deleted (those no other snapshot uses)
  uint64_t bytes = 0;             // their size
  bool repo_removed = false;      // the last snapshot: models--ORG--NAME (and its lock folder) went too
};

// Deletes a snapshot: first the refs pointing at it (so the name stops resolving), then its folder, then the
// blobs no other snapshot of the repo links to. When no snapshot is left, the whole repo folder goes (partial
// downloads included). Throws IoError when the snapshot is not in the cache or cannot be deleted.
HfRemoval hf_snapshot_remove(const std::filesystem::path& cache, const std::string& repo, const std::string& commit);

}  // namespace hearth::io
