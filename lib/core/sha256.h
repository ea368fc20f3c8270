// SHA-256 (FIPS 180-4), for content hashes, tokenizer fingerprints and shard checksums. Not a general
// crypto library: no HMAC, no constant-time guarantees (nothing secret is hashed).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace hearth {

using Digest = std::array<uint8_t, 32>;

// Incremental hasher: update() any number of times, then digest() once. Not thread-safe.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Feeds a whole file. Throws IoError naming the path when it cannot be read.
  void update_file(const std::filesystem::path& path);
  Digest digest();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

Digest sha256(std::string_view data);
// Lower-case hex of a digest (64 characters).
std::string digest_hex(const Digest& d);
inline std::string sha256_hex(std::string_view data) { return digest_hex(sha256(data)); }
// The first 8 bytes of a digest as a little-endian integer (for hash tables and the train/val split).
uint64_t digest_u64(const Digest& d);

}  // namespace hearth
