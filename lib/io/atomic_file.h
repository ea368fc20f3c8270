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

// Reads a whole file. Throws IoError naming the path.
std::string file_read(const std::filesystem::path& path);

}  // namespace hearth::io
