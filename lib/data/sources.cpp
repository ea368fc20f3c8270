#include "data/sources.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"

namespace hearth::data {
namespace fs = std::filesystem;

namespace {

// Folders of version-control systems and tool caches that never hold a person's documents.
const std::set<std::string> kSkipDirs = {"CVS", "_darcs", "node_modules", "__pycache__"};

bool is_hidden(const std::string& name) { return !name.empty() && name[0] == '.'; }

bool glob_any(const std::vector<std::string>& patterns, const std::string& name, const std::string& relative) {
  for (const auto& p : patterns)
    if (glob_match(p, name, relative)) return true;
  return false;
}

bool stat_file(const fs::path& p, SourceFile* out) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  out->path = p;
  out->size = static_cast<uint64_t>(st.st_size);
  out->mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return true;
}

void add_file(const fs::path& path, const std::string& relative, const WalkOptions& o, std::vector<SourceFile>& out) {
  std::string name = path.filename().string();
  if (!o.include.empty() && !glob_any(o.include, name, relative)) return;
  if (glob_any(o.exclude, name, relative)) return;
  SourceFile f;
  if (stat_file(path, &f)) out.push_back(std::move(f));
}

// Whether `path` lies inside the folder `root` (both canonical).
bool path_inside(const fs::path& path, const fs::path& root) {
  auto r = root.begin(), p = path.begin();
  for (; r != root.end(); ++r, ++p)
    if (p == path.end() || *p != *r) return false;
  return true;
}

void walk_dir(const fs::path& root, const WalkOptions& o, std::vector<SourceFile>& out) {
  std::error_code ec;
  const fs::path real_root = fs::canonical(root, ec);
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) throw IoError(fmt::format("{}: cannot read folder: {}", root.string(), ec.message()));
  for (; it != end; it.increment(ec)) {
    if (ec) {
      log::warn("{}: cannot read folder: {}", it->path().string(), ec.message());
      ec.clear();
      continue;
    }
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    bool is_dir = it->is_directory(ec) && !it->is_symlink(ec);
    // A Logseq graph's logseq/ folder holds its settings and backup copies of pages (bak/), no notes of its own.
    const bool logseq_config = is_dir && name == "logseq" && fs::exists(p / "config.edn", ec);
    if (is_hidden(name) || logseq_config ||
        (is_dir && (kSkipDirs.count(name) || (!o.skip_dir.empty() && p == o.skip_dir)))) {
      if (is_dir) it.disable_recursion_pending();
      continue;
    }
    if (is_dir) continue;
    if (!it->is_regular_file(ec)) continue;  // sockets, fifos, dangling links, links to folders
    if (it->is_symlink(ec) && !o.follow_symlinks) {
      std::error_code ec2;
      const fs::path target = fs::canonical(p, ec2);
      if (ec2 || real_root.empty() || !path_inside(target, real_root)) {
        log::warn("{}: a link to '{}', outside {}; skipped (--follow-symlinks to read it)", p.string(),
                  ec2 ? std::string("?") : target.string(), root.string());
        continue;
      }
    }
    add_file(p, p.lexically_relative(root).generic_string(), o, out);
  }
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& name, const std::string& relative) {
  if (pattern.find('/') == std::string::npos) return ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
  return ::fnmatch(pattern.c_str(), relative.c_str(), 0) == 0;
}

std::vector<SourceFile> sources_walk(const std::vector<fs::path>& sources, const WalkOptions& options) {
  std::vector<SourceFile> out;
  for (const auto& s : sources) {
    fs::path abs = fs::absolute(s).lexically_normal();
    if (abs.has_filename() == false) abs = abs.parent_path();
    std::error_code ec;
    auto st = fs::status(abs, ec);
    if (ec || !fs::exists(st)) throw IoError(fmt::format("{}: no such file or folder", s.string()));
    if (fs::is_directory(st)) {
      walk_dir(abs, options, out);
    } else {
      add_file(abs, abs.filename().string(), options, out);  // named explicitly: hidden is fine
    }
  }
  std::sort(out.begin(), out.end(), [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  out.erase(
      std::unique(out.begin(), out.end(), [](const SourceFile& a, const SourceFile& b) { return a.path == b.path; }),
      out.end());
  return out;
}

uint64_t size_parse(const std::string& text, const std::string& option) {
  size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  std::string unit = text.substr(pos);
  uint64_t mul = 0;
  if (unit.empty() || unit == "B") mul = 1;
  if (unit == "K" || unit == "KB" || unit == "KiB") mul = 1024;
  if (unit == "M" || unit == "MB" || unit == "MiB") mul = 1024 * 1024;
  if (unit == "G" || unit == "GB" || unit == "GiB") mul = 1024ull * 1024 * 1024;
  if (pos == 0 || mul == 0 || text[0] == '-')
    throw ConfigError(fmt::format("{}: expected a size such as 64M, 512K or 1000, got '{}'", option, text));
  return v * mul;
}

}  // namespace hearth::data
