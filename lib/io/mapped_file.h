// A read-only memory map of a whole file (mmap), shared by everything that points into it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>

namespace hearth::io {

class MappedFile {
 public:
  // Maps `path` read-only. Throws IoError naming the path if it cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  // Drops the pages of [p, p + n) (whole pages inside it only) from this process's resident set; the data stays
  // readable (the mapping is read-only, so the kernel reads it back from the page cache or the file on the next
  // access). For streaming readers, so a pass over a large file does not keep it all resident. Ignores ranges
  // outside the mapping.
  void release(const void* p, size_t n) const;

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hearth::io
