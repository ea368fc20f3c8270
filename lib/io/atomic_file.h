// Atomic file writes: write to a temporary file beside the target, fsync, rename over the target, fsync the
// directory. A reader sees the old file or the complete new one, never a half-written one.
#pragma once

#include <filesystem>
#include <string_view>

namespace hearth::io {

// Writes `data` to `path` atomically. Throws IoError naming the path on any failure (the target is then
// untouched and the temporary removed).
void atomic_write(const std::filesystem::path& path, std::string_view data);

// Streams a file atomically: write() appends, commit() publishes it. Destroying it uncommitted removes the
// temporary. Not thread-safe.
class AtomicWriter {
 public:
  explicit AtomicWriter(std::filesystem::path path);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  void write(const void* data, size_t size);
  void commit();

 private:
  std::filesystem::path path_, tmp_;
  int fd_ = -1;
};

// Builds a folder atomically: its files are written into a temporary sibling folder (path()), and commit()
// puts it in place of the target in one rename — the old folder, when `replace` allows one, swapped out with
// renameat2(RENAME_EXCHANGE) where the file system has it, then removed. A reader sees the old folder or the
// complete new one. Destroyed uncommitted, the temporary folder is removed. Throws IoError naming the target
// when it exists and `replace` is false (checked at construction and again at commit), or on any failure.
class AtomicDir {
 public:
  AtomicDir(std::filesystem::path target, bool replace);
  ~AtomicDir();
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;
  const std::filesystem::path& path() const { return tmp_; }
  const std::filesystem::path& target() const { return target_; }
  void commit();

 private:
  std::filesystem::path target_, tmp_;
  bool replace_ = false, committed_ = false;
};

// Reads a whole file. Throws IoError naming the path.
std::string file_read(const std::filesystem::path& path);

}  // namespace hearth::io
