#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"

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
      bool full = errno == ENOSPC;
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

std::string file_read(const fs::path& path) {
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
