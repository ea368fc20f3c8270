#include "io/atomic_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "io/remove_tree.h"

namespace hearth::io {
namespace fs = std::filesystem;

namespace {
std::string errno_text() { return std::strerror(errno); }

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

AtomicWriter::AtomicWriter(fs::path path) : path_(std::move(path)) {
  std::random_device rd;
  tmp_ = path_;
  tmp_ += fmt::format(".tmp.{}.{:x}", ::getpid(), rd());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(fmt::format("{}: cannot create temporary file: {}", path_.string(), errno_text()));
}

AtomicWriter::~AtomicWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicWriter::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      bool full = errno == ENOSPC || errno == EFBIG || errno == EDQUOT;
      std::string msg = fmt::format("{}: write failed: {}", path_.string(), errno_text());
      if (full) throw ResourceError(msg);
      throw IoError(msg);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicWriter::commit() {
  if (::fsync(fd_) != 0) throw IoError(fmt::format("{}: fsync failed: {}", path_.string(), errno_text()));
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::string msg = fmt::format("{}: rename failed: {}", path_.string(), errno_text());
    ::unlink(tmp_.c_str());
    throw IoError(msg);
  }
  fsync_dir(path_.parent_path());
}

void atomic_write(const fs::path& path, std::string_view data) {
  AtomicWriter writer(path);
  writer.write(data.data(), data.size());
  writer.commit();
}

namespace {
// A fresh name beside `target`: "<target>.<what>.<pid>.<random>".
fs::path sibling(const fs::path& target, const char* what) {
  std::random_device rd;
  fs::path p = target;
  p += fmt::format(".{}.{}.{:x}", what, ::getpid(), rd());
  return p;
}

fs::path without_trailing_slash(fs::path p) {
  p = p.lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p;
}
}  // namespace

AtomicDir::AtomicDir(fs::path target, bool replace)
    : target_(without_trailing_slash(std::move(target))), replace_(replace) {
  std::error_code ec;
  if (fs::exists(target_, ec) && !replace_)
    throw IoError(fmt::format("{}: already exists; choose another path or replace it (--force)", target_.string()));
  if (fs::exists(target_, ec) && !fs::is_directory(target_, ec))
    throw IoError(fmt::format("{}: exists and is not a folder; expected a folder to replace", target_.string()));
  const fs::path parent = target_.parent_path().empty() ? fs::path(".") : target_.parent_path();
  if (!fs::is_directory(parent, ec))
    throw IoError(fmt::format("{}: parent folder '{}' does not exist", target_.string(), parent.string()));
  tmp_ = sibling(target_, "tmp");
  if (!fs::create_directory(tmp_, ec) || ec)
    throw IoError(fmt::format("{}: cannot create temporary folder '{}': {}", target_.string(), tmp_.string(),
                              ec ? ec.message() : "exists"));
}

AtomicDir::~AtomicDir() {
  if (committed_) return;
  std::error_code ec;
  remove_tree(tmp_, ec);
}

void AtomicDir::commit() {
  // Every file of the new folder on disk before it becomes visible.
  for (const auto& e : fs::recursive_directory_iterator(tmp_)) {
    if (!e.is_regular_file()) continue;
    int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
      std::string msg = fmt::format("{}: fsync failed: {}", e.path().string(), errno_text());
      if (fd >= 0) ::close(fd);
      throw IoError(msg);
    }
    ::close(fd);
  }
  fsync_dir(tmp_);
  std::error_code ec;
  const bool exists = fs::exists(target_, ec);
  if (exists && !replace_)
    throw IoError(fmt::format("{}: appeared while it was being written; left untouched", target_.string()));
  if (!exists) {
    if (::rename(tmp_.c_str(), target_.c_str()) != 0)
      throw IoError(fmt::format("{}: rename failed: {}", target_.string(), errno_text()));
  } else if (::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) == 0) {
    remove_tree(tmp_, ec);  // now the old folder
  } else {
    // No atomic exchange on this file system: move the old folder aside, then the new one in.
    const fs::path old = sibling(target_, "old");
    if (::rename(target_.c_str(), old.c_str()) != 0)
      throw IoError(fmt::format("{}: cannot move the old folder aside: {}", target_.string(), errno_text()));
    if (::rename(tmp_.c_str(), target_.c_str()) != 0) {
      std::string msg = fmt::format("{}: rename failed: {}", target_.string(), errno_text());
      ::rename(old.c_str(), target_.c_str());
      throw IoError(msg);
    }
    remove_tree(old, ec);
  }
  committed_ = true;
  fsync_dir(target_.parent_path());
}

std::string file_read(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw IoError(fmt::format("{}: is a folder; expected a file", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!fs::exists(path)) throw IoError(fmt::format("{}: file not found", path.string()));
    throw IoError(fmt::format("{}: cannot open for reading", path.string()));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(fmt::format("{}: read failed", path.string()));
  return ss.str();
}

}  // namespace hearth::io
