#include "io/hf_cache.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/remove_tree.h"

namespace hearth::io {

namespace fs = std::filesystem;

namespace {

// One part of a Hub repo name: 1-96 of A-Z a-z 0-9 . _ -, not starting or ending with . or -, no "--" or "..".
bool name_part_valid(const std::string& s) {
  if (s.empty() || s.size() > 96) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  if (s.front() == '.' || s.front() == '-' || s.back() == '.' || s.back() == '-') return false;
  return s.find("--") == std::string::npos && s.find("..") == std::string::npos;
}

// A revision becomes a path under refs/: no control characters, backslashes, empty or dot components.
bool revision_valid(const std::string& r) {
  if (r.empty() || r.size() > 255 || r.front() == '/' || r.back() == '/' || r.find("//") != std::string::npos)
    return false;
  for (char c : r)
    if (static_cast<unsigned char>(c) <= ' ' || c == '\\' || c == 0x7f) return false;
  for (const auto& part : fs::path(r))
    if (part == "." || part == ".." || part.empty()) return false;
  return true;
}

std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// refs/ of a repo: ref name ("main", "refs/pr/1") -> commit. Files that do not hold a commit are skipped.
std::map<std::string, std::string> refs_read(const fs::path& repo_dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  const fs::path refs = repo_dir / "refs";
  if (!fs::is_directory(refs, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(refs, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    try {
      std::string commit = trimmed(file_read(it->path()));
      if (hf_commit_like(commit)) out[it->path().lexically_relative(refs).generic_string()] = commit;
    } catch (const IoError&) {
    }
  }
  return out;
}

// The blob a snapshot entry links to ("" for a file that is not a link into blobs/).
std::string blob_of(const fs::path& entry, const fs::path& repo_dir) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(entry, ec))) return "";
  const fs::path target = (entry.parent_path() / fs::read_symlink(entry, ec)).lexically_normal();
  if (ec || target.parent_path() != (repo_dir / "blobs").lexically_normal()) return "";
  return target.filename().string();
}

// Every blob the snapshots of a repo link to, except those of `skip` (a commit; "" for none).
std::set<std::string> blobs_linked(const fs::path& repo_dir, const std::string& skip) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& snap : fs::directory_iterator(repo_dir / "snapshots", ec)) {
    if (snap.path().filename() == skip) continue;
    for (auto it = fs::recursive_directory_iterator(snap.path(), ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (auto blob = blob_of(it->path(), repo_dir); !blob.empty()) out.insert(blob);
  }
  return out;
}

// Size and file count of a snapshot folder (links followed; a blob linked twice counts once).
void snapshot_measure(HfCachedModel& m) {
  std::set<fs::path> seen;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(m.path, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code e2;
    if (!fs::is_regular_file(it->path(), e2)) continue;  // follows the link; a dangling one is skipped
    ++m.files;
    fs::path real = fs::canonical(it->path(), e2);
    if (!e2 && seen.insert(real).second) m.bytes += fs::file_size(real, e2);
  }
}

std::string not_cached_message(const std::string& value, const HfRepoRef& ref, const fs::path& cache) {
  std::string msg = fmt::format(
      "model '{}': not a file or folder, and {} (revision {}) is not in the Hugging Face cache {}; download it "
      "with `hearth pull {}`",
      value, ref.repo, ref.revision, cache.string(), value);
  std::vector<std::string> cached;
  for (const auto& [name, commit] : refs_read(hf_repo_dir(cache, ref.repo))) cached.push_back(name);
  if (!cached.empty()) msg += fmt::format(" (cached revisions: {})", fmt::join(cached, ", "));
  return msg;
}

// The model file a snapshot means: itself, or its only .gguf when it holds no config.json.
fs::path snapshot_model(const fs::path& snap) {
  std::error_code ec;
  if (fs::exists(snap / "config.json", ec)) return snap;
  std::vector<std::string> ggufs;
  for (const auto& e : fs::directory_iterator(snap, ec))
    if (e.path().extension() == ".gguf") ggufs.push_back(e.path().filename().string());
  std::sort(ggufs.begin(), ggufs.end());
  if (ggufs.size() == 1) return snap / ggufs[0];
  if (ggufs.size() > 1)
    throw IoError(
        fmt::format("model {}: holds no config.json but {} GGUF files ({}); expected one: give --model "
                    "the file's path",
                    snap.string(), ggufs.size(), fmt::join(ggufs, ", ")));
  return snap;
}

}  // namespace

fs::path hf_cache_dir() {
  if (const char* c = std::getenv("HF_HUB_CACHE"); c && *c) return c;
  if (const char* h = std::getenv("HF_HOME"); h && *h) return fs::path(h) / "hub";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/") / ".cache" / "huggingface" / "hub";
}

std::optional<HfRepoRef> hf_repo_ref_parse(const std::string& text) {
  HfRepoRef ref;
  std::string name = text;
  if (auto at = text.find('@'); at != std::string::npos) {
    name = text.substr(0, at);
    ref.revision = text.substr(at + 1);
    if (!revision_valid(ref.revision)) return std::nullopt;
  }
  auto slash = name.find('/');
  if (slash == std::string::npos || name.find('/', slash + 1) != std::string::npos) return std::nullopt;
  if (!name_part_valid(name.substr(0, slash)) || !name_part_valid(name.substr(slash + 1))) return std::nullopt;
  ref.repo = name;
  return ref;
}

bool hf_commit_like(const std::string& s) {
  return s.size() == 40 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

fs::path hf_repo_dir(const fs::path& cache, const std::string& repo) {
  std::string folder = "models--" + repo;
  folder.replace(folder.find('/'), 1, "--");
  return cache / folder;
}

std::optional<std::string> hf_commit_find(const fs::path& cache, const HfRepoRef& ref) {
  const fs::path dir = hf_repo_dir(cache, ref.repo);
  std::error_code ec;
  if (hf_commit_like(ref.revision)) {
    if (fs::is_directory(dir / "snapshots" / ref.revision, ec)) return ref.revision;
    return std::nullopt;
  }
  const fs::path file = dir / "refs" / ref.revision;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  std::string commit = trimmed(file_read(file));
  if (!hf_commit_like(commit))
    throw FormatError(fmt::format("{}: expected a commit hash (40 hex digits), got '{}'", file.string(), commit));
  return commit;
}

fs::path model_path_resolve(const std::string& value) {
  std::error_code ec;
  if (value.empty() || fs::exists(value, ec)) return value;
  const auto ref = hf_repo_ref_parse(value);
  if (!ref) return value;
  const fs::path cache = hf_cache_dir();
  const auto commit = hf_commit_find(cache, *ref);
  const fs::path snap = commit ? hf_repo_dir(cache, ref->repo) / "snapshots" / *commit : fs::path();
  if (!commit || !fs::is_directory(snap, ec)) throw IoError(not_cached_message(value, *ref, cache));
  return snapshot_model(snap);
}

std::optional<std::string> hf_repo_of_path(const fs::path& path) {
  const fs::path p = path.lexically_normal();
  for (auto it = p.begin(); it != p.end(); ++it) {
    const std::string part = it->string();
    auto next = std::next(it);
    if (part.rfind("models--", 0) != 0 || next == p.end() || *next != "snapshots" || std::next(next) == p.end())
      continue;
    std::string repo = part.substr(8);
    auto sep = repo.find("--");
    if (sep == std::string::npos) return std::nullopt;
    return repo.replace(sep, 2, "/");
  }
  return std::nullopt;
}

std::vector<HfCachedModel> hf_cache_list(const fs::path& cache) {
  std::vector<HfCachedModel> out;
  std::error_code ec;
  for (const auto& repo_entry : fs::directory_iterator(cache, ec)) {
    const std::string folder = repo_entry.path().filename().string();
    if (folder.rfind("models--", 0) != 0 || !repo_entry.is_directory(ec)) continue;
    std::string repo = folder.substr(8);
    auto sep = repo.find("--");
    if (sep == std::string::npos) continue;  // a legacy name without an org ("models--gpt2")
    repo.replace(sep, 2, "/");
    const auto refs = refs_read(repo_entry.path());
    for (const auto& snap : fs::directory_iterator(repo_entry.path() / "snapshots", ec)) {
      if (!snap.is_directory(ec)) continue;
      HfCachedModel m{repo, snap.path().filename().string(), {}, snap.path()};
      for (const auto& [name, commit] : refs)
        if (commit == m.commit) m.refs.push_back(name);
      snapshot_measure(m);
      out.push_back(std::move(m));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.repo != b.repo ? a.repo < b.repo : a.commit < b.commit; });
  return out;
}

std::optional<HfCachedModel> hf_cached_model_of(const fs::path& cache, const fs::path& path) {
  std::error_code ec;
  const fs::path p = fs::absolute(path, ec).lexically_normal();
  for (fs::path snap = p; snap.has_relative_path() && snap != snap.parent_path(); snap = snap.parent_path()) {
    const fs::path snapshots = snap.parent_path(), repo_dir = snapshots.parent_path();
    if (snapshots.filename() != "snapshots" || repo_dir.filename().string().rfind("models--", 0) != 0) continue;
    if (!fs::equivalent(repo_dir.parent_path(), cache, ec) || ec) return std::nullopt;
    for (auto& m : hf_cache_list(cache))
      if (m.commit == snap.filename() && fs::equivalent(m.path, snap, ec)) return m;
    return std::nullopt;
  }
  return std::nullopt;
}

HfRemoval hf_snapshot_remove(const fs::path& cache, const std::string& repo, const std::string& commit) {
  const fs::path repo_dir = hf_repo_dir(cache, repo), snap = repo_dir / "snapshots" / commit;
  std::error_code ec;
  if (commit.empty() || !fs::is_directory(snap, ec))
    throw IoError(fmt::format("{}: no snapshot {} in the Hugging Face cache ({})", repo, commit, repo_dir.string()));
  const std::set<std::string> others = blobs_linked(repo_dir, commit), mine_all = [&] {
    std::set<std::string> s;
    for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (auto blob = blob_of(it->path(), repo_dir); !blob.empty()) s.insert(blob);
    return s;
  }();
  HfRemoval r;
  auto remove = [](const fs::path& p, bool all) {
    std::error_code e;
    all ? remove_tree(p, e) : fs::remove(p, e);
    if (e) throw IoError(fmt::format("{}: cannot delete: {}", p.string(), e.message()));
  };
  for (const auto& [name, c] : refs_read(repo_dir))
    if (c == commit) {
      remove(repo_dir / "refs" / name, false);
      r.refs.push_back(name);
    }
  remove(snap, true);
  for (const auto& blob : mine_all) {
    if (others.count(blob)) continue;
    const fs::path b = repo_dir / "blobs" / blob;
    if (!fs::exists(b, ec)) continue;
    r.bytes += fs::file_size(b, ec);
    remove(b, false);
    ++r.blobs;
  }
  if (fs::is_empty(repo_dir / "snapshots", ec)) {
    remove(repo_dir, true);
    remove(cache / ".locks" / repo_dir.filename(), true);
    r.repo_removed = true;
  }
  return r;
}

}  // namespace hearth::io
