#include "hub/pull.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "hub/blob_download.h"
#include "io/atomic_file.h"
#include "io/hf_cache.h"
#include "io/json_file.h"

namespace hearth::hub {

namespace fs = std::filesystem;

namespace {

constexpr const char* kIndex = "model.safetensors.index.json";

bool glob_match(const std::string& glob, const std::string& path) {
  return ::fnmatch(glob.c_str(), path.c_str(), 0) == 0;
}

bool is_safetensors(const std::string& path) {
  return path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0;
}

// An exclusive lock on CACHE/.locks/models--ORG--NAME/ETAG.lock, the file huggingface_hub locks (flock) while it
// downloads the same blob: two pulls, or a pull and transformers, never write one blob at once.
class BlobLock {
 public:
  BlobLock(const fs::path& path, const std::string& what) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(fmt::format("{}: cannot open the lock: {}", path.string(), std::strerror(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    log::info("{}: waiting for another download of it to finish", what);
    while (::flock(fd_, LOCK_EX) != 0)
      if (errno != EINTR) throw IoError(fmt::format("{}: cannot lock: {}", path.string(), std::strerror(errno)));
  }
  ~BlobLock() { ::close(fd_); }
  BlobLock(const BlobLock&) = delete;
  BlobLock& operator=(const BlobLock&) = delete;

 private:
  int fd_ = -1;
};

// The repo and revision a PullOptions names. Throws ConfigError.
io::HfRepoRef ref_of(const PullOptions& o) {
  auto ref = io::hf_repo_ref_parse(o.name);
  if (!ref)
    throw ConfigError(
        fmt::format("pull: '{}' is not a model name; expected org/name or org/name@revision (as on "
                    "the Hub: letters, digits, '.', '_', '-')",
                    o.name));
  if (!o.revision.empty()) {
    if (o.name.find('@') != std::string::npos && ref->revision != o.revision)
      throw ConfigError(fmt::format("pull: '{}' names revision {} but --revision is {}; give one", o.name,
                                    ref->revision, o.revision));
    auto with = io::hf_repo_ref_parse(ref->repo + "@" + o.revision);
    if (!with) throw ConfigError(fmt::format("--revision: '{}' is not a valid revision", o.revision));
    ref->revision = o.revision;
  }
  return *ref;
}

// The shard names model.safetensors.index.json lists (its weight_map's values). Throws FormatError.
std::set<std::string> index_shards(const fs::path& index) {
  const nlohmann::json j = io::json_read(index);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw FormatError(fmt::format("{}: expected an object with \"weight_map\"", index.string()));
  std::set<std::string> out;
  for (const auto& [tensor, shard] : j["weight_map"].items())
    if (shard.is_string()) out.insert(shard.get<std::string>());
  return out;
}

// Fails early when the file system cannot take the bytes still to download.
void space_check(const fs::path& repo_dir, uint64_t needed) {
  fs::path dir = repo_dir;
  std::error_code ec;
  while (!dir.empty() && !fs::exists(dir, ec)) dir = dir.parent_path();
  struct statvfs st {};
  if (dir.empty() || ::statvfs(dir.c_str(), &st) != 0) return;
  const uint64_t free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  if (needed > free_bytes)
    throw ResourceError(fmt::format("pull: {} needs {} more, but {} has {} free", repo_dir.filename().string(),
                                    bytes_format(static_cast<double>(needed)), dir.string(),
                                    bytes_format(static_cast<double>(free_bytes))));
}

// Points snapshots/COMMIT/PATH at its blob by a relative link, replacing whatever link was there in one rename.
void snapshot_link(const fs::path& repo_dir, const std::string& commit, const HubFile& f) {
  const fs::path link = repo_dir / "snapshots" / commit / f.path;
  const fs::path target = (repo_dir / "blobs" / f.etag()).lexically_relative(link.parent_path());
  std::error_code ec;
  fs::create_directories(link.parent_path(), ec);
  if (fs::is_symlink(fs::symlink_status(link, ec)) && fs::read_symlink(link, ec) == target) return;
  const fs::path tmp = link.string() + ".hearth-link-" + std::to_string(::getpid());
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (!ec) fs::rename(tmp, link, ec);
  if (ec) throw IoError(fmt::format("{}: cannot link to the blob: {}", link.string(), ec.message()));
}

// Bytes of a file still to download (0 when its blob is cached).
uint64_t bytes_missing(const fs::path& repo_dir, const HubFile& f) {
  std::error_code ec;
  const fs::path blob = repo_dir / "blobs" / f.etag();
  if (fs::is_regular_file(blob, ec) && fs::file_size(blob, ec) == f.size) return 0;
  uint64_t partial = fs::file_size(blob.string() + ".incomplete", ec);
  return ec || partial > f.size ? f.size : f.size - partial;
}

// Everything one pull needs as it goes through the files.
struct Puller {
  const PullOptions& o;
  const std::string repo;
  const std::string commit;
  const fs::path cache, repo_dir;
  PullResult& result;
  Progress* bar = nullptr;  // none while the index is fetched (the total is not known yet)
  uint64_t done = 0;        // bytes of the files finished so far (under this bar)

  void fetch(const HubFile& f) {
    PulledFile p;
    p.path = f.path;
    p.size = f.size;
    p.blob = f.etag();
    const fs::path blob = repo_dir / "blobs" / f.etag();
    std::error_code ec;
    BlobLock lock(cache / ".locks" / repo_dir.filename() / (f.etag() + ".lock"), f.path);
    if (!fs::is_regular_file(blob, ec) || fs::file_size(blob, ec) != f.size) {
      fs::remove(blob, ec);  // a blob of the wrong size is not the file the Hub lists
      BlobJob job{repo, hub_file_url(o.hub, repo, commit, f.path), f, blob};
      auto r = blob_download(job, o.hub, o.retries, [&](uint64_t have) {
        if (bar) bar->update(done + have, f.path);
      });
      p.downloaded = true;
      p.resumed_from = r.resumed_from;
      result.bytes_downloaded += r.received;
      if (!stderr_is_tty())
        log::info(
            "{}: {} {}{}", repo, f.path, bytes_format(static_cast<double>(f.size)),
            r.resumed_from ? fmt::format(" (resumed at {})", bytes_format(static_cast<double>(r.resumed_from))) : "");
    }
    snapshot_link(repo_dir, commit, f);
    done += f.size;
    if (bar) bar->update(done, f.path);
    result.files.push_back(p);
  }
};

// With an index among the default files, only the shards it lists (fetching the index first).
std::vector<HubFile> shards_narrow(std::vector<HubFile> files, Puller& puller) {
  auto index = std::find_if(files.begin(), files.end(), [](const HubFile& f) { return f.path == kIndex; });
  if (index == files.end()) return files;
  puller.fetch(*index);
  const std::set<std::string> shards = index_shards(puller.repo_dir / "snapshots" / puller.commit / kIndex);
  files.erase(index);
  files.erase(std::remove_if(files.begin(), files.end(),
                             [&](const HubFile& f) { return is_safetensors(f.path) && !shards.count(f.path); }),
              files.end());
  return files;
}

}  // namespace

const std::vector<std::string>& pull_default_globs() {
  static const std::vector<std::string> kGlobs = {"config.json",
                                                  "generation_config.json",
                                                  "tokenizer.json",
                                                  "tokenizer_config.json",
                                                  "special_tokens_map.json",
                                                  "*.safetensors",
                                                  kIndex};
  return kGlobs;
}

std::vector<HubFile> pull_files_select(const std::vector<HubFile>& all, const std::vector<std::string>& include,
                                       const std::string& repo) {
  std::vector<HubFile> out;
  for (const auto& glob : include) {
    size_t matched = 0;
    for (const auto& f : all) {
      if (!glob_match(glob, f.path)) continue;
      ++matched;
      if (std::none_of(out.begin(), out.end(), [&](const HubFile& o) { return o.path == f.path; })) out.push_back(f);
    }
    if (matched == 0) {
      std::vector<std::string> names;
      for (size_t i = 0; i < all.size() && i < 12; ++i) names.push_back(all[i].path);
      throw ConfigError(fmt::format("--include '{}': matches no file of {} (it has: {}{})", glob, repo,
                                    fmt::join(names, ", "), all.size() > 12 ? ", ..." : ""));
    }
  }
  if (!include.empty()) return out;
  auto has = [&](const char* name) {
    return std::any_of(all.begin(), all.end(), [&](const HubFile& f) { return f.path == name; });
  };
  const bool single = has("model.safetensors") && !has(kIndex);
  for (const auto& f : all) {
    if (f.path.find('/') != std::string::npos) continue;
    if (single && is_safetensors(f.path) && f.path != "model.safetensors") continue;
    for (const auto& glob : pull_default_globs())
      if (glob_match(glob, f.path)) {
        out.push_back(f);
        break;
      }
  }
  return out;
}

PullResult hub_pull(const PullOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const io::HfRepoRef ref = ref_of(o);
  PullResult result;
  result.repo = ref.repo;
  result.revision = ref.revision;
  const fs::path cache = o.cache.empty() ? io::hf_cache_dir() : o.cache;
  const HubRevision rev = hub_revision_get(o.hub, ref.repo, ref.revision);
  std::vector<HubFile> files = pull_files_select(rev.files, o.include, ref.repo);
  if (files.empty())
    throw ConfigError(
        fmt::format("pull: {} at {} holds none of the default files (config.json, tokenizer, "
                    "*.safetensors); choose files with --include (a GGUF: --include '*Q4_K_M.gguf')",
                    ref.repo, rev.commit));
  if (o.include.empty() &&
      std::none_of(files.begin(), files.end(), [](const HubFile& f) { return is_safetensors(f.path); }))
    log::warn("{} has no *.safetensors weights at the top level; a GGUF repo? pull one with --include 'NAME.gguf'",
              ref.repo);
  const fs::path repo_dir = io::hf_repo_dir(cache, ref.repo);
  result.commit = rev.commit;
  result.snapshot = repo_dir / "snapshots" / rev.commit;
  Puller puller{o, ref.repo, rev.commit, cache, repo_dir, result};
  if (o.include.empty()) files = shards_narrow(std::move(files), puller);
  uint64_t total = 0, missing = 0;
  for (const auto& f : files) {
    total += f.size;
    missing += bytes_missing(repo_dir, f);
  }
  space_check(repo_dir, missing);
  Progress bar("pull " + ref.repo, total, "B", total - missing);
  puller.bar = &bar;
  for (const auto& f : files) puller.fetch(f);
  bar.finish();
  // Last: the name resolves only once every file is in place.
  if (ref.revision != rev.commit) {
    const fs::path ref_file = repo_dir / "refs" / ref.revision;
    std::error_code ec;
    fs::create_directories(ref_file.parent_path(), ec);
    io::atomic_write(ref_file, rev.commit);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace hearth::hub
