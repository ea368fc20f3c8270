// SHA-256 (OpenSSL libcrypto) against the FIPS 180-2 appendix B examples (the published digests).
#include <catch2/catch.hpp>

#include "core/error.h"
#include "core/sha256.h"

using namespace hearth;

TEST_CASE("sha256 matches the FIPS 180-2 examples", "[data]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  CHECK(sha256_hex(million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 fed in uneven pieces equals one call", "[data]") {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += static_cast<char>('a' + i % 26);
  for (size_t step : {1, 3, 63, 64, 65, 127}) {
    Sha256 h;
    for (size_t i = 0; i < text.size(); i += step) h.update(std::string_view(text).substr(i, step));
    CHECK(digest_hex(h.digest()) == sha256_hex(text));
  }
  // digest_u64: little-endian first 8 bytes of e3b0c442 98fc1c14...
  CHECK(digest_u64(sha256("")) == 0x141cfc9842c4b0e3ull);
}

TEST_CASE("equal_constant_time compares whole strings of equal length only", "[data]") {
  CHECK(equal_constant_time("sk-abc", "sk-abc"));
  CHECK_FALSE(equal_constant_time("sk-abc", "sk-abd"));
  CHECK_FALSE(equal_constant_time("sk-abc", "sk-ab"));
  CHECK(equal_constant_time("", ""));
  CHECK_FALSE(equal_constant_time(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
  // A hasher moves (shard writers hold one); the moved-to one continues where the first stopped.
  Sha256 a;
  a.update("ab");
  Sha256 b = std::move(a);
  b.update("c");
  CHECK(digest_hex(b.digest()) == sha256_hex("abc"));
}
