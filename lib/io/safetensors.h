// safetensors: read (memory-mapped, validated) and write (atomic).
//
// Format (https://huggingface.co/docs/safetensors): 8-byte little-endian header length N, N bytes of JSON
// header {"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}}, then the
// data section; offsets are relative to the data section. Every header is validated before any tensor is
// handed out: size bounded, offsets inside the file, no overlaps, shape × dtype size = byte length.
// Sharded checkpoints (model.safetensors.index.json) are handled by SafetensorsArchive.
// No libtorch here: tensors are (dtype, shape, pointer) views; lib/model wraps them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/mapped_file.h"

namespace hearth::io {

enum class Dtype { kBool, kU8, kI8, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kF64, kI64, kU64, kF8E4M3, kF8E5M2 };

size_t dtype_size(Dtype dtype);
std::string_view dtype_name(Dtype dtype);  // the safetensors spelling: "F32", "BF16", ...
// Throws FormatError naming `where` for an unknown dtype string.
Dtype dtype_parse(std::string_view name, std::string_view where);

// One tensor inside a mapped file (or, for writing, any memory).
struct TensorView {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const;
};

// Largest header accepted (the reference implementation's limit).
constexpr uint64_t kSafetensorsMaxHeader = 100u * 1024 * 1024;

// One .safetensors file, mapped and validated. Immutable after open(); thread-safe.
class SafetensorsFile {
 public:
  // Throws IoError (missing/unreadable) or FormatError (anything malformed; names the file and tensor).
  static std::shared_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  // The same over bytes already in memory (MappedFile::from_bytes) or a file already mapped. Throws FormatError.
  static std::shared_ptr<SafetensorsFile> open(std::shared_ptr<MappedFile> file);

  const std::vector<TensorView>& tensors() const { return tensors_; }
  // nullptr when absent.
  const TensorView* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return file_->path(); }
  // Keeps the mapping alive for as long as a user of tensor memory needs it.
  std::shared_ptr<MappedFile> mapping() const { return file_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint directory: model.safetensors, or shards listed by model.safetensors.index.json.
class SafetensorsArchive {
 public:
  // Throws IoError if neither file exists, FormatError on a malformed index or shard.
  static SafetensorsArchive open(const std::filesystem::path& dir);
  // nullptr when absent.
  const TensorView* find(std::string_view name) const;
  // All tensor names, sorted.
  std::vector<std::string> names() const;
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }
  // "<dir>/model.safetensors" or the shard holding `name`, for error messages.
  std::string origin(std::string_view name) const;

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::pair<const TensorView*, size_t>, std::less<>> index_;
};

// Writes tensors (in name order) and metadata atomically. Throws ConfigError for inconsistent views
// (nbytes ≠ numel × dtype size, duplicate names), IoError/ResourceError on write failure.
void safetensors_write(const std::filesystem::path& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A tensor to be streamed into a file: its header entry now, its bytes when write() asks for them.
struct TensorSpec {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;
  uint64_t nbytes() const;  // numel × dtype size
};
// Receives a tensor's bytes, in as many pieces as the producer likes.
using SafetensorsEmit = std::function<void(const void* data, size_t size)>;

// As safetensors_write, for files larger than memory: the header is built from `specs`, then `produce` is
// called once per tensor, in name order, and must emit exactly spec.nbytes() bytes (IoError naming the tensor
// otherwise; the target is then left untouched).
void safetensors_write_streamed(const std::filesystem::path& path, const std::vector<TensorSpec>& specs,
                                const std::map<std::string, std::string>& metadata,
                                const std::function<void(const TensorSpec&, const SafetensorsEmit&)>& produce);

}  // namespace hearth::io
