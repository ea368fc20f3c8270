// Little-endian binary encoding for shard blocks and per-file caches: an appending writer and a
// bounds-checked reader (a read past the end is a FormatError naming `origin`).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::data {

class ByteWriter {
 public:
  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    buf_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  template <typename T>
  void put_array(const std::vector<T>& v) {
    put<uint32_t>(static_cast<uint32_t>(v.size()));
    put_raw(v.data(), v.size() * sizeof(T));
  }
  void put_raw(const void* p, size_t n) { buf_.append(static_cast<const char*>(p), n); }
  std::string& data() { return buf_; }

 private:
  std::string buf_;
};

class ByteReader {
 public:
  ByteReader(std::string_view data, std::string origin) : data_(data), origin_(std::move(origin)) {}
  template <typename T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof v), sizeof v);
    return v;
  }
  template <typename T>
  std::vector<T> get_array(uint64_t max_count = UINT32_MAX) {
    uint32_t n = get<uint32_t>();
    if (n > max_count)
      throw FormatError(fmt::format("{}: array of {} entries; expected at most {}", origin_, n, max_count));
    std::vector<T> v(n);
    if (n) std::memcpy(v.data(), take(n * sizeof(T)), n * sizeof(T));
    return v;
  }
  const char* take(size_t n) {
    if (n > data_.size() - pos_)
      throw FormatError(fmt::format("{}: truncated; expected {} more bytes at offset {}, got {}", origin_, n, pos_,
                                    data_.size() - pos_));
    const char* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  bool done() const { return pos_ == data_.size(); }
  size_t pos() const { return pos_; }

 private:
  std::string_view data_;
  std::string origin_;
  size_t pos_ = 0;
};

}  // namespace hearth::data
