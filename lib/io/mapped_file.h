// A read-only memory map of a whole file (mmap), shared by everything that points into it.
//
// A mapped file that changes underneath — truncated, or written over in place (`cp new old`, `truncate`) — is a
// known hazard of mmap: a read past the new end raises SIGBUS, which would kill the process, and bytes written in
// place show through the mapping. MappedFile guards every live mapping: a SIGBUS handler (installed with the first
// mapping; faults elsewhere go to the previous handler, or kill the process as before) replaces the rest of the
// faulting mapping with zero pages, marks the file damaged and lets the read go on; mapped_files_check() finds
// files written over in place without a fault (size or modification time changed; a file replaced by rename is
// another file and harmless: the mapping keeps the old one). Code that reads weights checks
// mapped_files_damaged() where it can stop cleanly, and fails with mapped_files_damage()'s message. At most
// kGuardedMappings mappings are guarded at once (more are mapped unguarded).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
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
  int slot_ = -1;  // its entry among the guarded mappings, or -1
  std::unique_ptr<unsigned char[]> owned_;  // from_bytes(): the copy data_ points into; null for a mapping
};

inline constexpr int kGuardedMappings = 4096;

// MappedFile::release for whichever live file mapping holds all of [p, p + n); nothing when none does (memory
// that is not a file mapping, e.g. a tensor converted or copied at load, is never touched). For code that holds
// tensors viewing a mapping but not the MappedFile, e.g. once mapped weights were copied into a fused matrix.
void mapped_release(const void* p, size_t n);

// Maps in, in one call (MADV_POPULATE_READ), the pages of [p, p + n) when a live file mapping holds all of it;
// nothing otherwise, or where the kernel (before Linux 5.14) cannot. For weights read in place from the mapping:
// their first forward pass would otherwise take a page fault per 4 KiB page (130,000 for a 0.5 GB model), each an
// exit to the hypervisor on a virtual machine.
void mapped_populate(const void* p, size_t n);

// True once a guarded mapping has faulted (its file was truncated underneath). Cheap (an atomic load): check it
// after reading mapped weights. Cleared when the damaged mappings are unmapped.
bool mapped_files_damaged();
// "" while every live mapping is intact; else a message naming each damaged file and what to do.
std::string mapped_files_damage();
// Every file found damaged since the process started, whether still mapped or not ("" when none): for a
// command's final word on whether what it computed can be trusted.
std::string mapped_files_damage_seen();
// Like mapped_files_damage(), after also looking (stat) for mapped files changed in place without a fault; such
// files are marked damaged too. A few system calls per mapped file.
std::string mapped_files_check();

}  // namespace hearth::io
