// A read-only memory map of a whole file (mmap), shared by everything that points into it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string_view>

namespace hearth::io {

class MappedFile {
 public:
  // Maps `path` read-only. Throws IoError naming the path if it cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::filesystem::path& path);
  // A copy of `bytes`, handed out as if mapped from a file named `path` (which is never opened): for parsing data
  // that is not in a file, e.g. the fuzz targets in fuzz/. The copy is exactly bytes.size() long, so
  // AddressSanitizer reports a read past its end (an mmap'd file's last page would hide it).
  static std::shared_ptr<MappedFile> from_bytes(std::string_view bytes, const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  // Drops the pages of [p, p + n) (whole pages inside it only) from this process's resident set; the data stays
  // readable (the mapping is read-only, so the kernel reads it back from the page cache or the file on the next
  // access). For streaming readers, so a pass over a large file does not keep it all resident. Ignores ranges
  // outside the mapping, and does nothing on a from_bytes() copy.
  void release(const void* p, size_t n) const;

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
  std::unique_ptr<unsigned char[]> owned_;  // from_bytes(): the copy data_ points into; null for a mapping
};

}  // namespace hearth::io
