// safetensors reading and writing: the published layout, byte for byte, and every way a header can be wrong.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "test_paths.h"

using namespace hearth;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  auto dir = fs::temp_directory_path() / ("hearth_test_st_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// A file made of an 8-byte little-endian length, `header` and `data`.
fs::path write_raw(const std::string& name, const std::string& header, const std::string& data,
                   int64_t length_override = -1) {
  auto path = temp_dir() / name;
  std::ofstream out(path, std::ios::binary);
  uint64_t n = length_override >= 0 ? uint64_t(length_override) : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << data;
  return path;
}

}  // namespace

TEST_CASE("safetensors reads a hand-built file in the published layout", "[io]") {
  // Two F32 tensors and one BF16, offsets relative to the data section.
  std::string header = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}})";
  float a[2] = {1.5f, -2.0f};
  uint16_t b[2] = {0x3f80, 0x4000};  // bf16 1.0, 2.0
  std::string data(reinterpret_cast<char*>(a), 8);
  data.append(reinterpret_cast<char*>(b), 4);
  auto file = io::SafetensorsFile::open(write_raw("ok.safetensors", header, data));
  REQUIRE(file->tensors().size() == 2);
  const auto* ta = file->find("a");
  REQUIRE(ta);
  CHECK(ta->dtype == io::Dtype::kF32);
  CHECK(ta->shape == std::vector<int64_t>{2});
  // The data section starts at byte 8 + 142, so `a` is not 4-byte aligned (the format does not promise
  // alignment): read the values through memcpy.
  auto element = [](const io::TensorView* t, auto value, size_t i) {
    std::memcpy(&value, static_cast<const char*>(t->data) + i * sizeof value, sizeof value);
    return value;
  };
  CHECK(element(ta, float{}, 1) == -2.0f);
  const auto* tb = file->find("b");
  REQUIRE(tb);
  CHECK(tb->dtype == io::Dtype::kBF16);
  CHECK(element(tb, uint16_t{}, 1) == 0x4000);
  CHECK(file->metadata().at("format") == "pt");
  CHECK(file->find("missing") == nullptr);
}

TEST_CASE("safetensors write produces the published layout and reads back", "[io]") {
  float a[3] = {1, 2, 3};
  int32_t c[2] = {7, -9};
  std::vector<io::TensorView> views = {{"z.weight", io::Dtype::kF32, {3}, a, 12},
                                       {"a.ids", io::Dtype::kI32, {2}, c, 8}};
  auto path = temp_dir() / "written.safetensors";
  io::safetensors_write(path, views, {{"note", "hearth"}});
  std::string raw = io::file_read(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(raw[i]);
  CHECK((8 + n) % 8 == 0);          // data section 8-byte aligned
  CHECK(raw.size() == 8 + n + 20);  // header + 20 bytes of data
  CHECK(raw.substr(8, 1) == "{");
  CHECK(raw.find(R"("data_offsets":[0,8])") != std::string::npos);  // "a.ids" sorted first
  CHECK(raw.find(R"("data_offsets":[8,20])") != std::string::npos);
  auto file = io::SafetensorsFile::open(path);
  CHECK(static_cast<const int32_t*>(file->find("a.ids")->data)[1] == -9);
  CHECK(static_cast<const float*>(file->find("z.weight")->data)[2] == 3.0f);
  CHECK(file->metadata().at("note") == "hearth");
  CHECK_THROWS_AS(io::safetensors_write(path, {{"x", io::Dtype::kF32, {4}, a, 12}}), ConfigError);

  // The same bytes from memory (MappedFile::from_bytes, as the fuzz targets read): the same tensors, in the copy.
  auto mem = io::MappedFile::from_bytes(raw, "memory.safetensors");
  auto from_memory = io::SafetensorsFile::open(mem);
  REQUIRE(from_memory->tensors().size() == 2);
  CHECK(from_memory->path() == "memory.safetensors");
  CHECK(from_memory->find("a.ids")->data == mem->data() + 8 + n);
  CHECK(static_cast<const float*>(from_memory->find("z.weight")->data)[2] == 3.0f);
  CHECK_THROWS_WITH(io::SafetensorsFile::open(io::MappedFile::from_bytes(raw.substr(0, 20), "cut.safetensors")),
                    Contains("cut.safetensors") && Contains("truncated"));
  CHECK_THROWS_AS(io::SafetensorsFile::open(io::MappedFile::from_bytes("", "empty")), FormatError);
}

TEST_CASE("safetensors rejects malformed files with a clear FormatError", "[io]") {
  std::string data(16, '\0');
  auto expect_error = [](const fs::path& p, const std::string& needle) {
    CHECK_THROWS_AS(io::SafetensorsFile::open(p), FormatError);
    CHECK_THROWS_WITH(io::SafetensorsFile::open(p), Contains(p.string()) && Contains(needle));
  };
  SECTION("shorter than the length prefix") {
    auto p = temp_dir() / "tiny.safetensors";
    std::ofstream(p, std::ios::binary) << "abc";
    expect_error(p, "truncated");
  }
  SECTION("header longer than the file (truncated)") {
    expect_error(write_raw("trunc.safetensors", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "", 4000),
                 "truncated");
  }
  SECTION("oversized header length") {
    expect_error(write_raw("huge.safetensors", "{}", "", int64_t(1) << 40), "limit");
  }
  SECTION("data past the end of the file") {
    expect_error(
        write_raw("short.safetensors", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data.substr(0, 8)),
        "'a'");
  }
  SECTION("overlapping tensors") {
    expect_error(write_raw("overlap.safetensors",
                           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           data),
                 "overlap");
  }
  SECTION("shape × dtype does not match the byte length") {
    expect_error(write_raw("shape.safetensors", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data),
                 "expected 12, got 16");
  }
  SECTION("unknown dtype") {
    expect_error(write_raw("dtype.safetensors", R"({"a":{"dtype":"F31","shape":[4],"data_offsets":[0,16]}})", data),
                 "F31");
  }
  SECTION("header is not JSON") { expect_error(write_raw("json.safetensors", "{not json", data), "invalid JSON"); }
  SECTION("a header nested deeper than io::kJsonMaxDepth") {
    const std::string deep = std::string(300000, '[') + std::string(300000, ']');
    expect_error(write_raw("deep.safetensors", R"({"__x__":)" + deep + "}", data), "nested deeper than 256");
  }
  SECTION("a number beyond double's range in the header (found by fuzz_safetensors)") {
    expect_error(write_raw("1e400.safetensors", R"({"a":{"dtype":"F32","shape":[1e400],"data_offsets":[0,16]}})", data),
                 "invalid JSON");
  }
  SECTION("header is not an object") { expect_error(write_raw("arr.safetensors", "[1,2]", data), "object"); }
  SECTION("offsets reversed") {
    expect_error(write_raw("rev.safetensors", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data),
                 "data_offsets");
  }
  SECTION("negative shape") {
    expect_error(write_raw("neg.safetensors", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", data),
                 "shape");
  }
  SECTION("metadata value not a string") {
    expect_error(write_raw("meta.safetensors", R"({"__metadata__":{"x":1}})", ""), "__metadata__");
  }
}

TEST_CASE("safetensors archive: single file, shards by index, missing files", "[io]") {
  auto st = io::SafetensorsArchive::open(test::stories_dir());
  CHECK(st.find("model.embed_tokens.weight") != nullptr);
  CHECK(st.find("model.embed_tokens.weight")->shape == std::vector<int64_t>{512, 64});

  auto dir = temp_dir() / "sharded";
  fs::create_directories(dir);
  float a[2] = {1, 2}, b[1] = {3};
  io::safetensors_write(dir / "model-00001-of-00002.safetensors", {{"a", io::Dtype::kF32, {2}, a, 8}});
  io::safetensors_write(dir / "model-00002-of-00002.safetensors", {{"b", io::Dtype::kF32, {1}, b, 4}});
  io::atomic_write(dir / "model.safetensors.index.json",
                   R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
                   R"("b":"model-00002-of-00002.safetensors"}})");
  auto sharded = io::SafetensorsArchive::open(dir);
  CHECK(sharded.names() == std::vector<std::string>{"a", "b"});
  CHECK(static_cast<const float*>(sharded.find("b")->data)[0] == 3.0f);
  CHECK_THAT(sharded.origin("b"), Contains("00002"));

  io::atomic_write(dir / "model.safetensors.index.json", R"({"weight_map":{"a":"../evil.safetensors"}})");
  CHECK_THROWS_AS(io::SafetensorsArchive::open(dir), FormatError);
  CHECK_THROWS_AS(io::SafetensorsArchive::open(temp_dir() / "nothing-here"), IoError);
}
