// GGUF metadata values and the validating reader. The writer is in gguf_write.cpp. Format: see gguf.h.
#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::io {
namespace fs = std::filesystem;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "gguf: packed arrays are copied as little-endian bytes");

namespace {

// Bytes of one element of a fixed-size type; 0 for string and array.
size_t fixed_size(GgufType type) {
  switch (type) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool: return 1;
    case GgufType::kU16:
    case GgufType::kI16: return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32: return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64: return 8;
    default: return 0;
  }
}

bool is_valid_type(uint32_t id) { return id <= static_cast<uint32_t>(GgufType::kF64); }

bool is_signed(GgufType type) {
  return type == GgufType::kI8 || type == GgufType::kI16 || type == GgufType::kI32 || type == GgufType::kI64;
}
bool is_integer(GgufType type) {
  return is_signed(type) || type == GgufType::kU8 || type == GgufType::kU16 || type == GgufType::kU32 ||
         type == GgufType::kU64;
}

// Limits on what a file may ask us to build beyond its own bytes.
constexpr int kMaxArrayDepth = 8;               // arrays of arrays ... (ggml itself reads no nesting)
constexpr uint64_t kMaxNestedItems = 1u << 20;  // all arrays inside arrays of one file, together
constexpr uint64_t kMaxKeyLength = 65535;       // the spec's limit for keys; applied to tensor names too

}  // namespace

std::string gguf_printable(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 120) return out + "...";
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f || c == '\\') out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::kU8: return "u8";
    case GgufType::kI8: return "i8";
    case GgufType::kU16: return "u16";
    case GgufType::kI16: return "i16";
    case GgufType::kU32: return "u32";
    case GgufType::kI32: return "i32";
    case GgufType::kF32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kU64: return "u64";
    case GgufType::kI64: return "i64";
    case GgufType::kF64: return "f64";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------------------------
// GgufValue

namespace {

// Sign-extends the `size`-byte little-endian integer in `bits`.
int64_t sign_extend(uint64_t bits, size_t size) {
  if (size == 8) return static_cast<int64_t>(bits);
  const uint64_t sign = uint64_t(1) << (8 * size - 1);
  return static_cast<int64_t>((bits ^ sign) - sign);
}

template <class T>
struct TypeOf;
template <>
struct TypeOf<uint8_t> {
  static constexpr GgufType value = GgufType::kU8;
};
template <>
struct TypeOf<int8_t> {
  static constexpr GgufType value = GgufType::kI8;
};
template <>
struct TypeOf<uint16_t> {
  static constexpr GgufType value = GgufType::kU16;
};
template <>
struct TypeOf<int16_t> {
  static constexpr GgufType value = GgufType::kI16;
};
template <>
struct TypeOf<uint32_t> {
  static constexpr GgufType value = GgufType::kU32;
};
template <>
struct TypeOf<int32_t> {
  static constexpr GgufType value = GgufType::kI32;
};
template <>
struct TypeOf<uint64_t> {
  static constexpr GgufType value = GgufType::kU64;
};
template <>
struct TypeOf<int64_t> {
  static constexpr GgufType value = GgufType::kI64;
};
template <>
struct TypeOf<float> {
  static constexpr GgufType value = GgufType::kF32;
};
template <>
struct TypeOf<double> {
  static constexpr GgufType value = GgufType::kF64;
};

}  // namespace

// Parsing and serialising need the private representation of GgufValue and GgufFile.
struct GgufCodec {
  static GgufValue make_scalar(GgufType type, uint64_t bits) {
    GgufValue v;
    v.type_ = type;
    v.bits_ = bits;
    return v;
  }
  static GgufValue make_packed(GgufType element, uint64_t count, std::string bytes) {
    GgufValue v;
    v.type_ = GgufType::kArray;
    v.element_ = element;
    v.count_ = count;
    v.bytes_ = std::move(bytes);
    return v;
  }
  static GgufValue make_strings(const std::vector<std::string>& strings) {
    GgufValue v;
    v.type_ = GgufType::kArray;
    v.element_ = GgufType::kString;
    v.count_ = strings.size();
    size_t total = 0;
    for (const auto& s : strings) total += s.size();
    v.bytes_.reserve(total);
    v.ends_.reserve(strings.size());
    for (const auto& s : strings) {
      v.bytes_ += s;
      v.ends_.push_back(v.bytes_.size());
    }
    return v;
  }
  // An empty array of strings to fill with push_string.
  static GgufValue make_strings_reserved(uint64_t count) {
    GgufValue v;
    v.type_ = GgufType::kArray;
    v.element_ = GgufType::kString;
    v.ends_.reserve(static_cast<size_t>(count));
    return v;
  }
  static void push_string(GgufValue& v, const unsigned char* data, size_t n) {
    v.bytes_.append(reinterpret_cast<const char*>(data), n);
    v.ends_.push_back(v.bytes_.size());
    v.count_ = v.ends_.size();
  }
  static GgufValue make_nested(std::vector<GgufValue> items) {
    GgufValue v;
    v.type_ = GgufType::kArray;
    v.element_ = GgufType::kArray;
    v.count_ = items.size();
    v.items_ = std::move(items);
    return v;
  }
  static std::vector<std::string> strings(const GgufValue& v) {
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(v.count_));
    for (uint64_t i = 0; i < v.count_; ++i) out.emplace_back(v.string_item(i));
    return out;
  }
  static std::shared_ptr<GgufFile> parse(std::shared_ptr<MappedFile> file);
};

#define HEARTH_GGUF_SCALAR(fn, T, TYPE)                  \
  GgufValue GgufValue::fn(T v) {                         \
    uint64_t bits = 0;                                   \
    std::memcpy(&bits, &v, sizeof(T));                   \
    return GgufCodec::make_scalar(GgufType::TYPE, bits); \
  }
HEARTH_GGUF_SCALAR(u8, uint8_t, kU8)
HEARTH_GGUF_SCALAR(i8, int8_t, kI8)
HEARTH_GGUF_SCALAR(u16, uint16_t, kU16)
HEARTH_GGUF_SCALAR(i16, int16_t, kI16)
HEARTH_GGUF_SCALAR(u32, uint32_t, kU32)
HEARTH_GGUF_SCALAR(i32, int32_t, kI32)
HEARTH_GGUF_SCALAR(u64, uint64_t, kU64)
HEARTH_GGUF_SCALAR(i64, int64_t, kI64)
HEARTH_GGUF_SCALAR(f32, float, kF32)
HEARTH_GGUF_SCALAR(f64, double, kF64)
#undef HEARTH_GGUF_SCALAR

GgufValue GgufValue::boolean(bool v) { return GgufCodec::make_scalar(GgufType::kBool, v ? 1 : 0); }

GgufValue GgufValue::string(std::string v) {
  GgufValue value;
  value.type_ = GgufType::kString;
  value.bytes_ = std::move(v);
  return value;
}

GgufValue GgufValue::array(GgufType element, const std::vector<GgufValue>& items) {
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].type() != element)
      throw ConfigError(fmt::format("gguf array of {}: item {} has type {}", gguf_type_name(element), i,
                                    gguf_type_name(items[i].type())));
  if (element == GgufType::kString) {
    GgufValue v = GgufCodec::make_strings_reserved(items.size());
    for (const auto& item : items)
      GgufCodec::push_string(v, reinterpret_cast<const unsigned char*>(item.bytes_.data()), item.bytes_.size());
    return v;
  }
  if (element == GgufType::kArray) return GgufCodec::make_nested(items);
  const size_t size = fixed_size(element);
  if (size == 0) throw ConfigError(fmt::format("gguf array: invalid element type {}", static_cast<uint32_t>(element)));
  std::string bytes(items.size() * size, '\0');
  for (size_t i = 0; i < items.size(); ++i) std::memcpy(&bytes[i * size], &items[i].bits_, size);
  return GgufCodec::make_packed(element, items.size(), std::move(bytes));
}

template <class T>
GgufValue GgufValue::array_of(const std::vector<T>& items) {
  std::string bytes(items.size() * sizeof(T), '\0');
  if (!items.empty()) std::memcpy(&bytes[0], items.data(), bytes.size());
  return GgufCodec::make_packed(TypeOf<T>::value, items.size(), std::move(bytes));
}
template GgufValue GgufValue::array_of(const std::vector<uint8_t>&);
template GgufValue GgufValue::array_of(const std::vector<int8_t>&);
template GgufValue GgufValue::array_of(const std::vector<uint16_t>&);
template GgufValue GgufValue::array_of(const std::vector<int16_t>&);
template GgufValue GgufValue::array_of(const std::vector<uint32_t>&);
template GgufValue GgufValue::array_of(const std::vector<int32_t>&);
template GgufValue GgufValue::array_of(const std::vector<uint64_t>&);
template GgufValue GgufValue::array_of(const std::vector<int64_t>&);
template GgufValue GgufValue::array_of(const std::vector<float>&);
template GgufValue GgufValue::array_of(const std::vector<double>&);

template <>
GgufValue GgufValue::array_of(const std::vector<bool>& items) {
  std::string bytes;
  for (bool b : items) bytes.push_back(b ? 1 : 0);
  return GgufCodec::make_packed(GgufType::kBool, items.size(), std::move(bytes));
}

template <>
GgufValue GgufValue::array_of(const std::vector<std::string>& items) {
  return GgufCodec::make_strings(items);
}

std::optional<uint64_t> GgufValue::as_uint() const {
  if (!is_integer(type_)) return std::nullopt;
  if (!is_signed(type_)) return bits_;
  const int64_t v = sign_extend(bits_, fixed_size(type_));
  if (v < 0) return std::nullopt;
  return static_cast<uint64_t>(v);
}

std::optional<int64_t> GgufValue::as_int() const {
  if (!is_integer(type_)) return std::nullopt;
  if (is_signed(type_)) return sign_extend(bits_, fixed_size(type_));
  if (bits_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return static_cast<int64_t>(bits_);
}

std::optional<double> GgufValue::as_float() const {
  if (type_ == GgufType::kF32) {
    float f;
    const auto b = static_cast<uint32_t>(bits_);
    std::memcpy(&f, &b, 4);
    return f;
  }
  if (type_ == GgufType::kF64) {
    double d;
    std::memcpy(&d, &bits_, 8);
    return d;
  }
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (type_ != GgufType::kBool) return std::nullopt;
  return bits_ != 0;
}

const std::string* GgufValue::as_string() const { return type_ == GgufType::kString ? &bytes_ : nullptr; }

GgufValue GgufValue::item(uint64_t i) const {
  if (type_ != GgufType::kArray || i >= count_)
    throw std::out_of_range(fmt::format("gguf value: item {} of a {} of size {}", i, gguf_type_name(type_), count_));
  if (element_ == GgufType::kString) return string(std::string(string_item(i)));
  if (element_ == GgufType::kArray) return items_[i];
  const size_t size = fixed_size(element_);
  uint64_t bits = 0;
  std::memcpy(&bits, bytes_.data() + i * size, size);
  return GgufCodec::make_scalar(element_, bits);
}

std::string_view GgufValue::string_item(uint64_t i) const {
  if (type_ != GgufType::kArray || element_ != GgufType::kString || i >= count_)
    throw std::out_of_range(fmt::format("gguf value: string {} of a {} of {} of size {}", i, gguf_type_name(type_),
                                        gguf_type_name(element_), count_));
  const uint64_t begin = i == 0 ? 0 : ends_[i - 1];
  return std::string_view(bytes_).substr(begin, ends_[i] - begin);
}

void GgufValue::encode(std::string& out) const {
  auto put = [&out](uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  if (type_ == GgufType::kString) {
    put(bytes_.size(), 8);
    out += bytes_;
  } else if (type_ != GgufType::kArray) {
    put(bits_, fixed_size(type_));
  } else {
    put(static_cast<uint32_t>(element_), 4);
    put(count_, 8);
    if (element_ == GgufType::kString) {
      for (uint64_t i = 0; i < count_; ++i) {
        const std::string_view s = string_item(i);
        put(s.size(), 8);
        out += s;
      }
    } else if (element_ == GgufType::kArray) {
      for (const auto& item : items_) item.encode(out);
    } else {
      out += bytes_;  // packed little-endian elements, as in the file
    }
  }
}

bool GgufValue::operator==(const GgufValue& o) const {
  return type_ == o.type_ && element_ == o.element_ && bits_ == o.bits_ && count_ == o.count_ && bytes_ == o.bytes_ &&
         ends_ == o.ends_ && items_ == o.items_;
}

int64_t GgufTensor::numel() const {
  int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

std::vector<int64_t> GgufTensor::shape() const { return {dims.rbegin(), dims.rend()}; }

int64_t GgufTensorSource::numel() const {
  int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// Reader

namespace {

// Reads little-endian fields from the mapping; every read checks the bytes left and names what it was reading.
class Cursor {
 public:
  Cursor(const unsigned char* data, size_t size, const std::string& origin)
      : data_(data), size_(size), origin_(origin) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  const unsigned char* take(size_t n, const std::string& what) {
    if (n > left())
      throw FormatError(fmt::format("{}: truncated in {} at byte {}; expected {} more bytes, got {}", origin_, what,
                                    pos_, n, left()));
    const unsigned char* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint64_t uint(size_t n, const std::string& what) {
    const unsigned char* p = take(n, what);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
  }
  uint32_t u32(const std::string& what) { return static_cast<uint32_t>(uint(4, what)); }
  uint64_t u64(const std::string& what) { return uint(8, what); }
  std::string string(const std::string& what, uint64_t max_length = std::numeric_limits<uint64_t>::max()) {
    return std::string(text(what, max_length));
  }
  // As string(), as a view of the file's bytes.
  std::string_view text(const std::string& what, uint64_t max_length = std::numeric_limits<uint64_t>::max()) {
    const uint64_t n = u64(what + " (string length)");
    if (n > max_length)
      throw FormatError(fmt::format("{}: {} at byte {}: string of {} bytes exceeds the limit of {}", origin_, what,
                                    pos_ - 8, n, max_length));
    if (n > left())
      throw FormatError(fmt::format("{}: truncated in {} at byte {}; string of {} bytes but only {} left", origin_,
                                    what, pos_, n, left()));
    return std::string_view(reinterpret_cast<const char*>(take(static_cast<size_t>(n), what)), static_cast<size_t>(n));
  }

 private:
  const unsigned char* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& origin_;
};

struct ValueReader {
  Cursor& in;
  const std::string& origin;
  uint64_t nested_items = 0;

  GgufValue read(GgufType type, const std::string& where, int depth) {
    if (type == GgufType::kString) return GgufValue::string(in.string(where));
    if (type == GgufType::kArray) return read_array(where, depth);
    const size_t size = fixed_size(type);
    const uint64_t bits = in.uint(size, where);
    if (type == GgufType::kBool && bits > 1)
      throw FormatError(fmt::format("{}: {}: bool must be 0 or 1; got {}", origin, where, bits));
    return GgufCodec::make_scalar(type, bits);  // the raw little-endian bits, as the factories store them
  }

  GgufType read_type(const std::string& where) {
    const uint32_t id = in.u32(where + " (value type)");
    if (!is_valid_type(id))
      throw FormatError(fmt::format("{}: {}: unknown value type {}; expected 0..12", origin, where, id));
    return static_cast<GgufType>(id);
  }

  GgufValue read_array(const std::string& where, int depth) {
    const GgufType element = read_type(where + " (array element type)");
    const uint64_t count = in.u64(where + " (array length)");
    // Every element takes at least this many bytes of the file, so a count beyond left()/min is a lie.
    const size_t min_size = element == GgufType::kString ? 8 : element == GgufType::kArray ? 12 : fixed_size(element);
    if (count > in.left() / min_size)
      throw FormatError(fmt::format("{}: {}: array of {} {} elements cannot fit in the {} bytes left", origin, where,
                                    count, gguf_type_name(element), in.left()));
    if (element == GgufType::kString) {
      GgufValue strings = GgufCodec::make_strings_reserved(count);
      for (uint64_t i = 0; i < count; ++i) {
        const std::string_view item = in.text(where);
        GgufCodec::push_string(strings, reinterpret_cast<const unsigned char*>(item.data()), item.size());
      }
      return strings;
    }
    if (element == GgufType::kArray) {
      if (depth + 1 >= kMaxArrayDepth)
        throw FormatError(fmt::format("{}: {}: arrays nested deeper than {}", origin, where, kMaxArrayDepth));
      nested_items += count;
      if (nested_items > kMaxNestedItems)
        throw FormatError(fmt::format("{}: {}: more than {} items in nested arrays", origin, where, kMaxNestedItems));
      std::vector<GgufValue> items;
      items.reserve(static_cast<size_t>(count));
      for (uint64_t i = 0; i < count; ++i) items.push_back(read_array(where, depth + 1));
      return GgufCodec::make_nested(std::move(items));
    }
    const size_t bytes = static_cast<size_t>(count) * min_size;
    const unsigned char* p = in.take(bytes, where);
    if (element == GgufType::kBool)
      for (size_t i = 0; i < bytes; ++i)
        if (p[i] > 1)
          throw FormatError(fmt::format("{}: {}: bool item {} must be 0 or 1; got {}", origin, where, i, p[i]));
    return GgufCodec::make_packed(element, count, std::string(reinterpret_cast<const char*>(p), bytes));
  }
};

void read_header(Cursor& in, const std::string& origin, uint32_t* version, uint64_t* n_tensors, uint64_t* n_kv) {
  if (in.left() < 4 || std::memcmp(in.take(0, "header"), "GGUF", 4) != 0) {
    std::string got;
    const size_t n = std::min<size_t>(4, in.left());
    for (size_t i = 0; i < n; ++i) got += fmt::format("{:02x}", in.take(0, "header")[i]);
    throw FormatError(fmt::format("{}: not a GGUF file; expected magic 'GGUF' (47475546), got {}", origin,
                                  got.empty() ? "an empty file" : got));
  }
  in.take(4, "header (magic)");
  *version = in.u32("header (version)");
  if (*version >= 0x01000000u && (*version & 0xffffu) == 0)
    throw FormatError(
        fmt::format("{}: big-endian GGUF is not supported (version field reads {:#x})", origin, *version));
  if (*version != 2 && *version != 3)
    throw FormatError(fmt::format("{}: unsupported GGUF version; expected 2 or 3, got {}", origin, *version));
  *n_tensors = in.u64("header (tensor count)");
  *n_kv = in.u64("header (metadata count)");
}

}  // namespace

std::shared_ptr<GgufFile> GgufFile::open(const fs::path& path) { return GgufCodec::parse(MappedFile::open(path)); }
std::shared_ptr<GgufFile> GgufFile::open(std::shared_ptr<MappedFile> file) { return GgufCodec::parse(std::move(file)); }

std::shared_ptr<GgufFile> GgufCodec::parse(std::shared_ptr<MappedFile> file) {
  auto result = std::make_shared<GgufFile>();
  result->file_ = file;
  const std::string origin = file->path().string();
  Cursor in(file->data(), file->size(), origin);
  uint64_t n_tensors = 0, n_kv = 0;
  read_header(in, origin, &result->version_, &n_tensors, &n_kv);

  // Metadata. A key/value pair takes at least 13 bytes (length, type, one byte of value).
  if (n_kv > in.left() / 13)
    throw FormatError(fmt::format("{}: metadata count {} cannot fit in the {} bytes left", origin, n_kv, in.left()));
  ValueReader values{in, origin};
  result->metadata_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = in.string(fmt::format("metadata key {}", i), kMaxKeyLength);
    const std::string where = fmt::format("metadata key '{}'", gguf_printable(key));
    const GgufType type = values.read_type(where);
    GgufValue value = values.read(type, where, 0);
    if (!result->key_index_.emplace(key, result->metadata_.size()).second)
      throw FormatError(fmt::format("{}: duplicate metadata key '{}'", origin, gguf_printable(key)));
    result->metadata_.push_back({std::move(key), std::move(value)});
  }
  if (const GgufValue* a = result->find("general.alignment")) {
    if (a->type() != GgufType::kU32)
      throw FormatError(fmt::format("{}: metadata key 'general.alignment' has type {}; expected u32", origin,
                                    gguf_type_name(a->type())));
    const uint64_t v = *a->as_uint();
    if (v == 0 || (v & (v - 1)) != 0)
      throw FormatError(fmt::format("{}: metadata key 'general.alignment' must be a power of two; got {}", origin, v));
    result->alignment_ = static_cast<uint32_t>(v);
  }
  const uint64_t alignment = result->alignment_;

  // Tensor infos. One takes at least 24 bytes (name length, n_dims, type, offset).
  if (n_tensors > in.left() / 24)
    throw FormatError(fmt::format("{}: tensor count {} cannot fit in the {} bytes left", origin, n_tensors, in.left()));
  result->tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = in.string(fmt::format("tensor info {}", i), kMaxKeyLength);
    const std::string where = fmt::format("tensor '{}'", gguf_printable(t.name));
    const uint32_t n_dims = in.u32(where + " (n_dims)");
    if (n_dims > 4) throw FormatError(fmt::format("{}: {}: n_dims must be at most 4; got {}", origin, where, n_dims));
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = in.u64(where + " (dims)");
      if (ne > (uint64_t(1) << 62) || (ne != 0 && numel > (uint64_t(1) << 62) / ne))
        throw FormatError(fmt::format("{}: {}: element count overflows (dim {} = {})", origin, where, d, ne));
      numel *= ne;
      t.dims.push_back(static_cast<int64_t>(ne));
    }
    const uint32_t type_id = in.u32(where + " (type)");
    const quant::GgmlTypeInfo* info = quant::ggml_type_find(type_id);
    if (!info) throw FormatError(fmt::format("{}: {}: unknown ggml type {}", origin, where, type_id));
    t.type = info->type;
    const uint64_t row = t.dims.empty() ? 1 : static_cast<uint64_t>(t.dims[0]);
    if (row % static_cast<uint64_t>(info->block_size) != 0)
      throw FormatError(fmt::format("{}: {}: row length ne[0] = {} is not a multiple of the {} block size {}", origin,
                                    where, row, info->name, info->block_size));
    const uint64_t blocks = numel / static_cast<uint64_t>(info->block_size);
    if (blocks > std::numeric_limits<uint64_t>::max() / info->block_bytes)
      throw FormatError(fmt::format("{}: {}: byte size overflows", origin, where));
    const uint64_t nbytes = blocks * info->block_bytes;
    t.offset = in.u64(where + " (offset)");
    if (t.offset % alignment != 0)
      throw FormatError(fmt::format("{}: {}: data offset {} is not a multiple of the alignment {}", origin, where,
                                    t.offset, alignment));
    if (nbytes > file->size())
      throw FormatError(fmt::format("{}: {}: {} bytes of data do not fit in a file of {} bytes", origin, where, nbytes,
                                    file->size()));
    t.nbytes = static_cast<size_t>(nbytes);
    if (!result->tensor_index_.emplace(t.name, result->tensors_.size()).second)
      throw FormatError(fmt::format("{}: duplicate tensor name '{}'", origin, gguf_printable(t.name)));
    result->tensors_.push_back(std::move(t));
  }

  // Data section: after the infos, padded to the alignment. A file without tensors may end unpadded.
  const uint64_t data_start = (in.pos() + alignment - 1) / alignment * alignment;
  if (data_start > file->size() && !result->tensors_.empty())
    throw FormatError(fmt::format("{}: truncated; the data section starts at byte {} but the file has {} bytes", origin,
                                  data_start, file->size()));
  result->data_offset_ = std::min<uint64_t>(data_start, file->size());
  const uint64_t data_size = file->size() - result->data_offset_;
  std::vector<std::pair<uint64_t, size_t>> ranges;  // (offset, tensor index) of non-empty tensors
  for (size_t i = 0; i < result->tensors_.size(); ++i) {
    GgufTensor& t = result->tensors_[i];
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      throw FormatError(fmt::format("{}: tensor '{}': data [{}, {}) lies outside the data section of {} bytes", origin,
                                    gguf_printable(t.name), t.offset, t.offset + t.nbytes, data_size));
    t.data = file->data() + result->data_offset_ + t.offset;
    if (t.nbytes > 0) ranges.emplace_back(t.offset, i);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t k = 1; k < ranges.size(); ++k) {
    const GgufTensor& a = result->tensors_[ranges[k - 1].second];
    const GgufTensor& b = result->tensors_[ranges[k].second];
    if (b.offset < a.offset + a.nbytes)
      throw FormatError(fmt::format("{}: tensors '{}' [{}, {}) and '{}' [{}, {}) overlap", origin,
                                    gguf_printable(a.name), a.offset, a.offset + a.nbytes, gguf_printable(b.name),
                                    b.offset, b.offset + b.nbytes));
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Typed metadata access

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) throw FormatError(fmt::format("{}: metadata key '{}' missing", path().string(), key));
  return *v;
}

namespace {

std::string describe(const GgufValue& v) {
  if (v.is_array()) return fmt::format("array of {}", gguf_type_name(v.element_type()));
  return std::string(gguf_type_name(v.type()));
}

[[noreturn]] void wrong_type(const GgufFile& f, std::string_view key, const GgufValue& v, std::string_view expected) {
  throw FormatError(
      fmt::format("{}: metadata key '{}' has type {}; expected {}", f.path().string(), key, describe(v), expected));
}

}  // namespace

std::string GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = get(key);
  if (!v.as_string()) wrong_type(*this, key, v, "string");
  return *v.as_string();
}

uint64_t GgufFile::get_uint(std::string_view key) const {
  const GgufValue& v = get(key);
  auto r = v.as_uint();
  if (!r) {
    if (v.as_int())
      throw FormatError(fmt::format("{}: metadata key '{}' is negative ({}); expected an unsigned value",
                                    path().string(), key, *v.as_int()));
    wrong_type(*this, key, v, "an unsigned integer");
  }
  return *r;
}

int64_t GgufFile::get_int(std::string_view key) const {
  const GgufValue& v = get(key);
  auto r = v.as_int();
  if (!r) {
    if (v.as_uint())
      throw FormatError(
          fmt::format("{}: metadata key '{}' = {} does not fit int64", path().string(), key, *v.as_uint()));
    wrong_type(*this, key, v, "an integer");
  }
  return *r;
}

double GgufFile::get_float(std::string_view key) const {
  const GgufValue& v = get(key);
  auto r = v.as_float();
  if (!r) wrong_type(*this, key, v, "f32 or f64");
  return *r;
}

bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& v = get(key);
  auto r = v.as_bool();
  if (!r) wrong_type(*this, key, v, "bool");
  return *r;
}

const GgufValue& GgufFile::get_array(std::string_view key) const {
  const GgufValue& v = get(key);
  if (!v.is_array()) wrong_type(*this, key, v, "an array");
  return v;
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue& v = get(key);
  if (!v.is_array() || v.element_type() != GgufType::kString) wrong_type(*this, key, v, "array of string");
  return GgufCodec::strings(v);
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue& v = get(key);
  if (!v.is_array() || !is_integer(v.element_type())) wrong_type(*this, key, v, "array of integers");
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(v.size()));
  for (uint64_t i = 0; i < v.size(); ++i) {
    auto r = v.item(i).as_int();
    if (!r)
      throw FormatError(fmt::format("{}: metadata key '{}': item {} does not fit int64", path().string(), key, i));
    out.push_back(*r);
  }
  return out;
}

std::vector<double> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue& v = get(key);
  if (!v.is_array() || (v.element_type() != GgufType::kF32 && v.element_type() != GgufType::kF64))
    wrong_type(*this, key, v, "array of f32 or f64");
  std::vector<double> out;
  out.reserve(static_cast<size_t>(v.size()));
  for (uint64_t i = 0; i < v.size(); ++i) out.push_back(*v.item(i).as_float());
  return out;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
  const GgufTensor* t = find_tensor(name);
  if (!t) throw FormatError(fmt::format("{}: tensor '{}' missing", path().string(), name));
  return *t;
}

}  // namespace hearth::io
