// GGUF reader against hostile input: hand-built files that break one rule each, a real llama.cpp file truncated
// at every byte of its header and at many points of its data, and random byte corruption. Every case must end
// in a FormatError that names the file (and the key or tensor), never a crash or another exception type.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "kq256.h"

using namespace hearth;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  auto dir = fs::temp_directory_path() / ("hearth_test_gguf_hostile_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// Little-endian field builders.
std::string le(uint64_t v, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}
std::string u32(uint32_t v) { return le(v, 4); }
std::string u64(uint64_t v) { return le(v, 8); }
std::string str(const std::string& s) { return u64(s.size()) + s; }
std::string header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  return "GGUF" + u32(version) + u64(n_tensors) + u64(n_kv);
}
std::string kv(const std::string& key, uint32_t type, const std::string& value) { return str(key) + u32(type) + value; }
std::string tensor_info(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset) {
  std::string out = str(name) + u32(static_cast<uint32_t>(dims.size()));
  for (auto d : dims) out += u64(d);
  return out + u32(type) + u64(offset);
}
// head (header + kvs + infos), zero padding to `alignment`, then data.
std::string with_data(std::string head, const std::string& data, size_t alignment = 32) {
  head.resize((head.size() + alignment - 1) / alignment * alignment, '\0');
  return head + data;
}

fs::path write_bytes(const std::string& name, const std::string& bytes) {
  const fs::path path = temp_dir() / name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Opens `bytes` as a GGUF file; requires a FormatError that names the file and contains `what`.
void require_format_error(const std::string& bytes, const std::string& what) {
  const fs::path path = write_bytes("case.gguf", bytes);
  INFO("expected error containing: " << what);
  try {
    io::GgufFile::open(path);
    FAIL("opened without error");
  } catch (const FormatError& e) {
    CHECK_THAT(e.what(), Contains(path.string()) && Contains(what));
  }
}

constexpr uint32_t kU8 = 0, kU32 = 4, kBool = 7, kString = 8, kArray = 9, kU64 = 10;
constexpr uint32_t kF32 = 0, kQ4_K = 12;  // ggml types

}  // namespace

TEST_CASE("gguf rejects bad magic, versions and truncated headers", "[io][gguf]") {
  require_format_error("", "not a GGUF file");
  require_format_error("GGU", "not a GGUF file");
  require_format_error("GGUX" + u32(3) + u64(0) + u64(0),
                       "not a GGUF file; expected magic 'GGUF' (47475546), got 47475558");
  require_format_error(header(0, 0, 1), "unsupported GGUF version; expected 2 or 3, got 1");
  require_format_error(header(0, 0, 4), "got 4");
  require_format_error("GGUF" + std::string("\0\0\0\3", 4) + u64(0) + u64(0), "big-endian GGUF is not supported");
  require_format_error("GGUF" + u32(3) + u64(0), "truncated in header (metadata count) at byte 16");
  require_format_error("GGUF" + u32(3), "truncated in header (tensor count)");
  // Version 2 has the same layout as 3 and is accepted.
  CHECK_NOTHROW(io::GgufFile::open(write_bytes("v2.gguf", header(0, 0, 2))));
}

TEST_CASE("gguf rejects absurd counts and lengths without allocating them", "[io][gguf]") {
  require_format_error(header(0, uint64_t(1) << 60), "metadata count 1152921504606846976 cannot fit");
  require_format_error(header(uint64_t(1) << 60, 0), "tensor count 1152921504606846976 cannot fit");
  require_format_error(header(0, 1) + u64(~0ull) + std::string(20, 'k'),
                       "metadata key 0 at byte 24: string of 18446744073709551615 bytes exceeds the limit of 65535");
  require_format_error(header(0, 1) + u64(70000) + std::string(70000, 'k') + u32(kU8) + "x",
                       "string of 70000 bytes exceeds the limit of 65535");
  require_format_error(header(0, 1) + kv("k", kString, u64(1ull << 62) + "abc"),
                       "truncated in metadata key 'k' at byte 45; string of 4611686018427387904 bytes but only 3 left");
  require_format_error(header(0, 1) + kv("tokens", kArray, u32(kString) + u64(1ull << 40) + str("a")),
                       "metadata key 'tokens': array of 1099511627776 string elements cannot fit");
  require_format_error(header(0, 1) + kv("ids", kArray, u32(kU32) + u64(3) + u32(1) + u32(2)),
                       "array of 3 u32 elements cannot fit in the 8 bytes left");
  std::string nested;
  for (int i = 0; i < 20; ++i) nested += u32(kArray) + u64(1);
  require_format_error(header(0, 1) + kv("deep", kArray, nested + u32(kU8) + u64(0)), "arrays nested deeper than 8");
  require_format_error(header(1, 0) + str("t") + u32(2) + u64(1ull << 40) + u64(1ull << 40) + u32(kF32) + u64(0),
                       "tensor 't': element count overflows");
}

TEST_CASE("gguf rejects malformed metadata values, naming the key", "[io][gguf]") {
  require_format_error(header(0, 1) + kv("k", 13, u32(0)), "metadata key 'k': unknown value type 13; expected 0..12");
  require_format_error(header(0, 1) + kv("a", kArray, u32(99) + u64(0)),
                       "metadata key 'a' (array element type): unknown value type 99");
  require_format_error(header(0, 1) + kv("b", kBool, "\x02"), "metadata key 'b': bool must be 0 or 1; got 2");
  require_format_error(header(0, 1) + kv("b", kArray, u32(kBool) + u64(3) + std::string("\x01\x00\x05", 3)),
                       "metadata key 'b': bool item 2 must be 0 or 1; got 5");
  require_format_error(header(0, 2) + kv("k", kU8, "\x01") + kv("k", kU8, "\x02"), "duplicate metadata key 'k'");
  require_format_error(header(0, 1) + kv("k", kU32, "\x01\x02"), "truncated in metadata key 'k' at byte 37");
  require_format_error(header(0, 1) + kv("general.alignment", kU64, u64(64)),
                       "'general.alignment' has type u64; expected u32");
  require_format_error(header(0, 1) + kv("general.alignment", kU32, u32(48)), "must be a power of two; got 48");
  require_format_error(header(0, 1) + kv("general.alignment", kU32, u32(0)), "must be a power of two; got 0");
  // Control bytes in a hostile key are escaped in the message.
  require_format_error(header(0, 1) + kv(std::string("bad\nkey", 7), 13, ""), "metadata key 'bad\\x0akey'");
}

TEST_CASE("gguf rejects malformed tensor infos and data placement, naming the tensor", "[io][gguf]") {
  const std::string f32x16(64, '\0');
  require_format_error(header(1, 0) + tensor_info("t", {1, 1, 1, 1, 1}, kF32, 0),
                       "tensor 't': n_dims must be at most 4; got 5");
  require_format_error(with_data(header(1, 0) + tensor_info("t", {16}, 4, 0), f32x16),
                       "tensor 't': unknown ggml type 4");
  require_format_error(with_data(header(1, 0) + tensor_info("t", {16}, 1000, 0), f32x16), "unknown ggml type 1000");
  require_format_error(with_data(header(1, 0) + tensor_info("w", {255, 2}, kQ4_K, 0), std::string(288, '\0')),
                       "tensor 'w': row length ne[0] = 255 is not a multiple of the Q4_K block size 256");
  require_format_error(with_data(header(1, 0) + tensor_info("t", {16}, kF32, 4), f32x16 + f32x16),
                       "tensor 't': data offset 4 is not a multiple of the alignment 32");
  require_format_error(with_data(header(1, 0) + tensor_info("t", {16}, kF32, 32), f32x16),
                       "tensor 't': data [32, 96) lies outside the data section of 64 bytes");
  require_format_error(with_data(header(1, 0) + tensor_info("t", {16}, kF32, 1ull << 63), f32x16), "lies outside");
  require_format_error(
      with_data(header(2, 0) + tensor_info("a", {16}, kF32, 0) + tensor_info("b", {16}, kF32, 32), f32x16 + f32x16),
      "tensors 'a' [0, 64) and 'b' [32, 96) overlap");
  require_format_error(
      with_data(header(2, 0) + tensor_info("a", {16}, kF32, 0) + tensor_info("a", {16}, kF32, 64), f32x16 + f32x16),
      "duplicate tensor name 'a'");
  require_format_error(header(1, 0) + tensor_info("t", {4}, kF32, 0), "truncated; the data section starts at byte 64");
  require_format_error(header(1, 0) + tensor_info("t", {1ull << 40}, kF32, 0), "do not fit in a file of");
  require_format_error(header(1, 0) + str("long.tensor.name") + u32(1) + u64(16),
                       "truncated in tensor 'long.tensor.name' (type)");
  // Valid: general.alignment honoured, zero-size tensors may share an offset, a tensor-less file may end unpadded.
  const auto aligned = with_data(header(2, 1) + kv("general.alignment", kU32, u32(64)) +
                                     tensor_info("a", {16}, kF32, 0) + tensor_info("z", {0}, kF32, 0),
                                 f32x16, 64);
  auto f = io::GgufFile::open(write_bytes("aligned.gguf", aligned));
  CHECK(f->alignment() == 64);
  CHECK(f->data_offset() % 64 == 0);
  CHECK(f->tensor("z").nbytes == 0);
  CHECK_NOTHROW(io::GgufFile::open(write_bytes("no-tensors.gguf", header(0, 1) + kv("k", kU8, "\x07"))));
}

TEST_CASE("gguf rejects a real file truncated anywhere", "[io][gguf]") {
  const fs::path source = test::kq256_dir() / "model-q4_k_m.gguf";
  const std::string bytes = io::file_read(source);
  auto full = io::GgufFile::open(source);
  uint64_t needed = 0;  // the file is valid from the end of its last tensor on
  for (const auto& t : full->tensors()) needed = std::max<uint64_t>(needed, full->data_offset() + t.offset + t.nbytes);
  const fs::path path = temp_dir() / "truncated.gguf";
  io::atomic_write(path, bytes);
  // Every byte of the header, metadata and tensor infos, then every 997th byte of the data.
  std::vector<size_t> cuts;
  for (size_t n = 0; n <= full->data_offset(); ++n) cuts.push_back(n);
  for (size_t n = full->data_offset() + 1; n < bytes.size(); n += 997) cuts.push_back(n);
  cuts.push_back(bytes.size() - 1);
  int rejected = 0;
  for (auto it = cuts.rbegin(); it != cuts.rend(); ++it) {  // shrink the file in place
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(*it)) == 0);
    INFO("truncated to " << *it << " bytes");
    if (*it >= needed) {
      CHECK_NOTHROW(io::GgufFile::open(path));
      continue;
    }
    try {
      io::GgufFile::open(path);
      FAIL("opened a truncated file");
    } catch (const FormatError& e) {
      ++rejected;
      if (*it > 0) CHECK_THAT(e.what(), Contains(path.string()));
    }
  }
  CHECK(rejected == static_cast<int>(cuts.size()));
  fs::remove(path);
}

TEST_CASE("gguf survives random corruption of a real file's header", "[io][gguf]") {
  // Each trial flips 1-4 random bytes among the first data_offset bytes (or overwrites a u64 field with an extreme
  // value); the reader must either accept the file (with every tensor inside it) or throw FormatError.
  const fs::path source = test::kq256_dir() / "model-q4_0.gguf";
  const std::string original = io::file_read(source);
  const size_t head = io::GgufFile::open(source)->data_offset();
  const fs::path path = temp_dir() / "fuzz.gguf";
  io::atomic_write(path, original);
  std::mt19937_64 rng(1234);
  int accepted = 0, rejected = 0;
  for (int trial = 0; trial < 1500; ++trial) {
    std::string bytes = original.substr(0, head);
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t at = rng() % head;
      if (rng() % 4 == 0 && at + 8 <= head) {
        const uint64_t extremes[] = {0, 1, 0x7fffffffffffffffull, ~0ull, 1ull << 32, 0xffffffffull};
        bytes.replace(at, 8, u64(extremes[rng() % 6]));
      } else {
        bytes[at] = static_cast<char>(rng());
      }
    }
    {
      std::fstream out(path, std::ios::in | std::ios::out | std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    try {
      auto f = io::GgufFile::open(path);
      ++accepted;
      for (const auto& t : f->tensors()) {
        CHECK(t.data >= f->mapping()->data());
        CHECK(t.data + t.nbytes <= f->mapping()->data() + f->mapping()->size());
      }
    } catch (const FormatError&) {
      ++rejected;
    }
  }
  INFO("accepted " << accepted << ", rejected " << rejected);
  CHECK(accepted + rejected == 1500);
  CHECK(rejected > 300);  // many corruptions are detectable (flips inside token text or scores are not)
  fs::remove(path);
}
