// GGUF: read (memory-mapped, validated) and write (atomic, streamed).
//
// Format (ggml docs/gguf.md), every field little-endian, no padding between fields unless stated:
//   header       "GGUF" | u32 version (2 or 3) | u64 tensor_count | u64 metadata_kv_count
//   metadata     metadata_kv_count × (string key | u32 value type | value)
//                string = u64 byte length + UTF-8 bytes (no NUL); bool = one byte, 0 or 1;
//                array = u32 element type | u64 element count | elements (any type; arrays may nest)
//   tensor infos tensor_count × (string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset)
//   padding      zeros up to a multiple of the alignment: metadata `general.alignment` (u32), default 32
//   data         tensor i at data start + offset_i (a multiple of the alignment)
// v3 only added big-endian files (which hearth rejects) to v2; v1 (u32 counts) is rejected too.
//
// Dimensions: GGUF lists them innermost first, like ggml's ne[]: ne[0] is the row length (contiguous
// elements, a multiple of the type's block size), ne[1] the number of rows, and so on. A PyTorch/safetensors
// weight of shape [out, in] is stored as ne = [in, out] over the same bytes. GgufTensor::dims keeps the file's
// order; GgufTensor::shape() gives the outermost-first order.
//
// Reading validates the whole file before handing anything out (truncation anywhere, absurd counts and
// lengths, unknown value or tensor types, n_dims > 4, rows that are not whole blocks, misaligned, out-of-file
// or overlapping tensor data, duplicate keys or names) and throws FormatError naming the file and the key or
// tensor; hostile input never crashes it or makes it allocate much more than the file's size. Tensor bytes are
// handed out in place (no copy); quant/codec.h decodes them. No libtorch here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/mapped_file.h"
#include "quant/block_format.h"

namespace hearth::io {

constexpr uint32_t kGgufDefaultAlignment = 32;
constexpr uint32_t kGgufVersion = 3;  // what gguf_write writes
// Longest tensor name llama.cpp can load (GGML_MAX_NAME 64, NUL included); gguf_write enforces it.
constexpr size_t kGgufMaxTensorName = 63;

// Metadata value types (gguf_type in ggml's gguf.h).
enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
// "u8", "i32", "f64", "bool", "string", "array", ...
std::string_view gguf_type_name(GgufType type);
// `text` with control bytes and backslashes escaped (\xNN) and cut after 120 bytes: keys and tensor names of a
// hostile file are quoted through this in error messages.
std::string gguf_printable(std::string_view text);

// One metadata value: a scalar, a string, or an array of values of one type (arrays of arrays included).
// Numeric and bool arrays are kept packed (as many bytes as in the file). Immutable once built.
class GgufValue {
 public:
  GgufValue() = default;  // u8 0
  static GgufValue u8(uint8_t v);
  static GgufValue i8(int8_t v);
  static GgufValue u16(uint16_t v);
  static GgufValue i16(int16_t v);
  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue i64(int64_t v);
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  // An array of `element`-typed items. Throws ConfigError if an item has another type (arrays of arrays may mix
  // inner element types, as the format allows).
  static GgufValue array(GgufType element, const std::vector<GgufValue>& items);
  // Arrays from plain vectors: T is one of uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, uint64_t,
  // int64_t, float, double, bool, std::string.
  template <class T>
  static GgufValue array_of(const std::vector<T>& items);

  GgufType type() const { return type_; }
  // Arrays only (kU8 for anything else).
  GgufType element_type() const { return element_; }
  // Arrays: the element count; 0 for anything else.
  uint64_t size() const { return count_; }
  bool is_array() const { return type_ == GgufType::kArray; }

  // Integer types holding a value ≥ 0; std::nullopt for anything else (negative, float, string, ...).
  std::optional<uint64_t> as_uint() const;
  // Integer types holding a value that fits int64_t.
  std::optional<int64_t> as_int() const;
  // kF32 or kF64 (integers are not converted).
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  // nullptr unless a string.
  const std::string* as_string() const;
  // Element i of an array (a copy). Throws std::out_of_range if not an array or i ≥ size().
  GgufValue item(uint64_t i) const;
  // Element i of an array of strings, as a view valid while this value lives (no copy: a vocabulary's strings are
  // read in place). Throws std::out_of_range if not an array of strings or i ≥ size().
  std::string_view string_item(uint64_t i) const;

  // Appends the value as GGUF stores it, without its type tag (arrays: element type, count, elements).
  void encode(std::string& out) const;

  bool operator==(const GgufValue& other) const;
  bool operator!=(const GgufValue& other) const { return !(*this == other); }

 private:
  friend struct GgufCodec;  // gguf.cpp: parsing and serialising
  GgufType type_ = GgufType::kU8;
  GgufType element_ = GgufType::kU8;
  uint64_t bits_ = 0;                 // scalars: the value's bytes, little-endian, zero-extended
  uint64_t count_ = 0;                // arrays: element count
  // kString: the text; arrays of fixed-size elements: the packed elements; arrays of strings: the strings one after
  // another (one buffer rather than a std::string each: 400k strings for a 128k vocabulary and its merges)
  std::string bytes_;
  std::vector<uint64_t> ends_;    // arrays of strings: where each string ends in bytes_
  std::vector<GgufValue> items_;  // arrays of arrays
};

struct GgufKv {
  std::string key;
  GgufValue value;
};

// One tensor of an open GgufFile.
struct GgufTensor {
  std::string name;
  std::vector<int64_t> dims;  // ne[0] (row length) first; at most 4 entries
  quant::GgmlType type = quant::GgmlType::kF32;
  uint64_t offset = 0;                  // from the start of the data section
  const unsigned char* data = nullptr;  // in the mapping: valid while the GgufFile (or its mapping()) lives
  size_t nbytes = 0;
  int64_t numel() const;
  // Outermost first: dims reversed ([rows, row length] for a matrix).
  std::vector<int64_t> shape() const;
};

// A .gguf file, mapped and validated. Immutable after open(); thread-safe.
class GgufFile {
 public:
  // Throws IoError (missing/unreadable) or FormatError (anything malformed; names the file and key or tensor).
  static std::shared_ptr<GgufFile> open(const std::filesystem::path& path);
  // The same over bytes already in memory (MappedFile::from_bytes) or a file already mapped. Throws FormatError.
  static std::shared_ptr<GgufFile> open(std::shared_ptr<MappedFile> file);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  // Byte offset of the data section in the file.
  uint64_t data_offset() const { return data_offset_; }
  const std::filesystem::path& path() const { return file_->path(); }
  // Keeps the mapping alive for as long as a user of tensor memory needs it.
  std::shared_ptr<MappedFile> mapping() const { return file_; }

  // Metadata in file order.
  const std::vector<GgufKv>& metadata() const { return metadata_; }
  // nullptr when absent.
  const GgufValue* find(std::string_view key) const;
  // Typed access. Each throws FormatError "<file>: metadata key '<key>' missing" or "... has type <t>; expected
  // <what>" (also for a negative value read as unsigned, or a u64 too large for int64).
  const GgufValue& get(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  uint64_t get_uint(std::string_view key) const;  // any integer type, value ≥ 0
  int64_t get_int(std::string_view key) const;    // any integer type, value within int64
  double get_float(std::string_view key) const;   // f32 or f64
  bool get_bool(std::string_view key) const;
  const GgufValue& get_array(std::string_view key) const;  // any array
  std::vector<std::string> get_string_array(std::string_view key) const;  // a copy; see GgufValue::string_item
  std::vector<int64_t> get_int_array(std::string_view key) const;   // elements of any integer type within int64
  std::vector<double> get_float_array(std::string_view key) const;  // f32 or f64 elements

  // Tensors in file order.
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  // nullptr when absent.
  const GgufTensor* find_tensor(std::string_view name) const;
  // Throws FormatError "<file>: tensor '<name>' missing".
  const GgufTensor& tensor(std::string_view name) const;

 private:
  friend struct GgufCodec;
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> metadata_;
  std::map<std::string, size_t, std::less<>> key_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Receives a tensor's bytes during gguf_write, in as many pieces as the producer likes.
using GgufEmit = std::function<void(const void* data, size_t size)>;

// A tensor to write: its bytes in memory, or a producer that streams them when their turn comes (so a
// converter holds one tensor at a time, not the whole file).
struct GgufTensorSource {
  std::string name;
  std::vector<int64_t> dims;  // ne[0] (row length) first, as in the file
  quant::GgmlType type = quant::GgmlType::kF32;
  const void* data = nullptr;  // must stay valid until gguf_write returns
  // Used when data is null: called once, must emit exactly the tensor's byte count.
  std::function<void(const GgufEmit& emit)> produce;
  int64_t numel() const;
};

// Writes a GGUF v3 file atomically (temporary file, fsync, rename): metadata in the given order, tensor infos and
// data in the given order, each tensor's data padded to the alignment (`general.alignment` if present — a u32
// power of two up to 65536 — else 32), exactly as llama.cpp lays files out.
// Throws ConfigError for inconsistent input, all checked before the file is created: duplicate or empty keys or
// names, names longer than kGgufMaxTensorName, more than 4 dims, negative dims, a row length that is not a
// multiple of the block size, a tensor with neither data nor producer; and, during the write, a producer that
// emits the wrong number of bytes (the target is then left untouched). IoError/ResourceError on write failure.
void gguf_write(const std::filesystem::path& path, const std::vector<GgufKv>& metadata,
                const std::vector<GgufTensorSource>& tensors);

}  // namespace hearth::io
