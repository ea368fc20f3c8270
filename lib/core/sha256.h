// SHA-256 (FIPS 180-4), for content hashes, tokenizer fingerprints and shard checksums, computed by OpenSSL's
// libcrypto (Debian libssl-dev; its assembly paths use the CPU's SHA extensions where present); and a
// constant-time comparison for secrets (API keys). Not here: HMAC, other digests (lib/hub uses libcrypto for SHA-1).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace hearth {

using Digest = std::array<uint8_t, 32>;

// Incremental hasher: update() any number of times, then digest() once. Movable, not copyable, not
// thread-safe. Throws ResourceError when libcrypto cannot allocate its context.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Feeds a whole file. Throws IoError naming the path when it cannot be read.
  void update_file(const std::filesystem::path& path);
  Digest digest();

 private:
  struct Free {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

Digest sha256(std::string_view data);
// Lower-case hex of a digest (64 characters).
std::string digest_hex(const Digest& d);
inline std::string sha256_hex(std::string_view data) { return digest_hex(sha256(data)); }
// The first 8 bytes of a digest as a little-endian integer (for hash tables and the train/val split).
uint64_t digest_u64(const Digest& d);

// Whether a and b are equal, in a time that depends on their lengths only, not on where they differ
// (CRYPTO_memcmp): for secrets compared against what a client sent.
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace hearth
