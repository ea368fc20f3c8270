// GGUF reading and writing: llama.cpp's own kq256 files (metadata, tensor infos, and every tensor decoded by
// hearth against llama.cpp's reference statistics), byte-identical rewrites, and write → read round trips of every
// metadata type. Hostile input: test_gguf_hostile.cpp.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "kq256.h"
#include "quant/codec.h"
#include "test_paths.h"

using namespace hearth;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  auto dir = fs::temp_directory_path() / ("hearth_test_gguf_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// The general.file_type llama-quantize records (llama_ftype) per kq256 file.
int64_t expected_file_type(const std::string& file) {
  if (file == "model-f16.gguf") return 1;
  if (file == "model-bf16.gguf") return 32;
  if (file == "model-q8_0.gguf") return 7;
  if (file == "model-q4_0.gguf") return 2;
  if (file == "model-q4_k_m.gguf") return 15;
  if (file == "model-q5_k_m.gguf") return 17;
  return 18;  // q6_k
}

// Every metadata kv and tensor of `file`, as sources for gguf_write (tensor bytes in place).
std::vector<io::GgufTensorSource> sources_of(const io::GgufFile& file) {
  std::vector<io::GgufTensorSource> out;
  for (const auto& t : file.tensors()) out.push_back({t.name, t.dims, t.type, t.data, nullptr});
  return out;
}

}  // namespace

TEST_CASE("gguf reads the kq256 metadata written by llama.cpp", "[io][gguf]") {
  for (const auto& name : test::kq256_gguf_files()) {
    INFO(name);
    auto f = io::GgufFile::open(test::kq256_dir() / name);
    CHECK(f->version() == 3);
    CHECK(f->alignment() == 32);
    CHECK(f->data_offset() % 32 == 0);
    REQUIRE(f->metadata().size() == 23);
    CHECK(f->metadata().front().key == "general.architecture");  // file order kept
    CHECK(f->get_string("general.architecture") == "llama");
    CHECK(f->get_string("general.name") == "random-llama-kq256-seed0");
    CHECK(f->get("llama.block_count").type() == io::GgufType::kU32);
    CHECK(f->get_uint("llama.block_count") == 2);
    CHECK(f->get_uint("llama.context_length") == 256);
    CHECK(f->get_uint("llama.embedding_length") == 256);
    CHECK(f->get_uint("llama.feed_forward_length") == 512);
    CHECK(f->get_uint("llama.attention.head_count") == 4);
    CHECK(f->get_int("llama.attention.head_count_kv") == 2);
    CHECK(f->get_uint("llama.rope.dimension_count") == 64);
    CHECK(f->get_uint("llama.vocab_size") == 512);
    CHECK(f->get_float("llama.rope.freq_base") == 10000.0);
    CHECK(f->get("llama.attention.layer_norm_rms_epsilon").type() == io::GgufType::kF32);
    CHECK(f->get_float("llama.attention.layer_norm_rms_epsilon") == double(1e-5f));
    CHECK(f->get_string("tokenizer.ggml.model") == "llama");
    const auto tokens = f->get_string_array("tokenizer.ggml.tokens");
    REQUIRE(tokens.size() == 512);
    CHECK(tokens[0] == "<unk>");
    CHECK(tokens[1] == "<s>");
    CHECK(tokens[2] == "</s>");
    CHECK(tokens[3] == "<0x00>");
    const auto scores = f->get_float_array("tokenizer.ggml.scores");
    REQUIRE(scores.size() == 512);
    CHECK(scores[0] == 0.0);
    CHECK(f->get_array("tokenizer.ggml.scores").element_type() == io::GgufType::kF32);
    const auto types = f->get_int_array("tokenizer.ggml.token_type");
    REQUIRE(types.size() == 512);
    CHECK(std::vector<int64_t>(types.begin(), types.begin() + 4) == std::vector<int64_t>{2, 3, 3, 6});
    CHECK(f->get_uint("tokenizer.ggml.bos_token_id") == 1);
    CHECK(f->get_uint("tokenizer.ggml.eos_token_id") == 2);
    CHECK(f->get_uint("tokenizer.ggml.unknown_token_id") == 0);
    CHECK(f->get_bool("tokenizer.ggml.add_bos_token"));
    CHECK_FALSE(f->get_bool("tokenizer.ggml.add_eos_token"));
    CHECK(f->get_uint("general.quantization_version") == 2);
    CHECK(f->get_int("general.file_type") == expected_file_type(name));
    CHECK(f->find("general.alignment") == nullptr);
    CHECK(f->find("no.such.key") == nullptr);
  }
}

TEST_CASE("gguf reads the same from memory (MappedFile::from_bytes) as from the file", "[io][gguf]") {
  const fs::path path = test::kq256_dir() / "model-q8_0.gguf";
  const std::string bytes = io::file_read(path);
  auto file = io::GgufFile::open(path);
  auto mem = io::GgufFile::open(io::MappedFile::from_bytes(bytes, "memory.gguf"));
  CHECK(mem->path() == "memory.gguf");
  CHECK(mem->data_offset() == file->data_offset());
  REQUIRE(mem->metadata().size() == file->metadata().size());
  for (size_t i = 0; i < mem->metadata().size(); ++i) CHECK(mem->metadata()[i].value == file->metadata()[i].value);
  REQUIRE(mem->tensors().size() == file->tensors().size());
  for (size_t i = 0; i < mem->tensors().size(); ++i) {
    const auto &a = mem->tensors()[i], &b = file->tensors()[i];
    CHECK(a.name == b.name);
    REQUIRE(a.nbytes == b.nbytes);
    CHECK(std::memcmp(a.data, b.data, a.nbytes) == 0);
  }
  CHECK_THROWS_WITH(io::GgufFile::open(io::MappedFile::from_bytes(bytes.substr(0, 100), "cut.gguf")),
                    Contains("cut.gguf") && Contains("cannot fit"));
}

TEST_CASE("gguf tensor infos of every kq256 file equal expected.json", "[io][gguf]") {
  const auto& expected = test::kq256_expected()["files"];
  for (const auto& name : test::kq256_gguf_files()) {
    INFO(name);
    auto f = io::GgufFile::open(test::kq256_dir() / name);
    const auto& tensors = expected.at(name).at("tensors");
    REQUIRE(f->tensors().size() == tensors.size());
    for (auto it = tensors.begin(); it != tensors.end(); ++it) {
      INFO(it.key());
      const io::GgufTensor* t = f->find_tensor(it.key());
      REQUIRE(t);
      CHECK(quant::ggml_type_name(t->type) == it->at("type").get<std::string>());
      CHECK(t->dims == it->at("shape_gguf").get<std::vector<int64_t>>());
      CHECK(t->numel() == it->at("n").get<int64_t>());
      CHECK(t->nbytes == quant::ggml_type_nbytes(t->type, t->numel()));
      CHECK(t->offset % 32 == 0);
      CHECK(t->data == f->mapping()->data() + f->data_offset() + t->offset);
    }
    // ne[0] is the row length: token_embd is [hidden=256, vocab=512] in the file, [512, 256] outermost-first.
    CHECK(f->tensor("token_embd.weight").shape() == std::vector<int64_t>{512, 256});
    CHECK(f->tensor("blk.0.ffn_down.weight").dims == std::vector<int64_t>{512, 256});
    CHECK_THROWS_WITH(f->tensor("output.weight"), Contains(name) && Contains("tensor 'output.weight' missing"));
  }
}

TEST_CASE("gguf tensors of every kq256 file decode to llama.cpp's reference values", "[io][gguf][quant]") {
  // expected.json: per tensor, statistics of gguf-py's numpy dequantization (llama.cpp's reference).
  // Tolerances: count exact; sum and sum of squares (float64) within 1e-6 relative; the first 8 values exactly.
  const auto& expected = test::kq256_expected()["files"];
  int checked = 0;
  for (const auto& name : test::kq256_gguf_files()) {
    auto f = io::GgufFile::open(test::kq256_dir() / name);
    for (const auto& t : f->tensors()) {
      INFO(name << " " << t.name << " " << quant::ggml_type_name(t.type));
      const auto& e = expected.at(name).at("tensors").at(t.name);
      const std::vector<float> w = test::dequantize_all(t);
      double sum = 0, sum_sq = 0;
      for (float v : w) {
        sum += v;
        sum_sq += double(v) * v;
      }
      CHECK(int64_t(w.size()) == e.at("n").get<int64_t>());
      const double e_sum = e.at("sum"), e_sq = e.at("sum_sq");
      CHECK(std::fabs(sum - e_sum) <= 1e-6 * std::fabs(e_sum) + 1e-12);
      CHECK(std::fabs(sum_sq - e_sq) <= 1e-6 * std::fabs(e_sq));
      const auto first8 = e.at("first8").get<std::vector<double>>();
      for (size_t i = 0; i < 8; ++i) CHECK(w[i] == static_cast<float>(first8[i]));
      ++checked;
    }
  }
  CHECK(checked == 7 * 20);
}

TEST_CASE("gguf_write reproduces every kq256 file byte for byte", "[io][gguf]") {
  // Same metadata, same tensors in the same order: hearth's layout is llama.cpp's.
  for (const auto& name : test::kq256_gguf_files()) {
    INFO(name);
    const fs::path source = test::kq256_dir() / name;
    auto f = io::GgufFile::open(source);
    const fs::path copy = temp_dir() / ("copy-" + name);
    io::gguf_write(copy, f->metadata(), sources_of(*f));
    CHECK(io::file_read(copy) == io::file_read(source));
    auto g = io::GgufFile::open(copy);
    CHECK(g->metadata().size() == f->metadata().size());
    for (size_t i = 0; i < f->metadata().size(); ++i) {
      CHECK(g->metadata()[i].key == f->metadata()[i].key);
      CHECK(g->metadata()[i].value == f->metadata()[i].value);
    }
    fs::remove(copy);
  }
}

TEST_CASE("gguf write then read round-trips every metadata type", "[io][gguf]") {
  using io::GgufType;
  using io::GgufValue;
  const std::vector<io::GgufKv> metadata = {
      {"t.u8", GgufValue::u8(250)},
      {"t.i8", GgufValue::i8(-100)},
      {"t.u16", GgufValue::u16(65000)},
      {"t.i16", GgufValue::i16(-32000)},
      {"t.u32", GgufValue::u32(4000000000u)},
      {"t.i32", GgufValue::i32(-2000000000)},
      {"t.u64", GgufValue::u64(18000000000000000000ull)},
      {"t.i64", GgufValue::i64(-9000000000000000000ll)},
      {"t.f32", GgufValue::f32(-1.5e-7f)},
      {"t.f64", GgufValue::f64(3.141592653589793)},
      {"t.bool", GgufValue::boolean(true)},
      {"t.string", GgufValue::string("h\xc3\xa9llo, world")},
      {"t.empty_string", GgufValue::string("")},
      {"t.array.u8", GgufValue::array_of(std::vector<uint8_t>{0, 1, 255})},
      {"t.array.i16", GgufValue::array_of(std::vector<int16_t>{-1, 2})},
      {"t.array.u64", GgufValue::array_of(std::vector<uint64_t>{1ull << 63})},
      {"t.array.f32", GgufValue::array_of(std::vector<float>{0.5f, -2.0f})},
      {"t.array.f64", GgufValue::array_of(std::vector<double>{1e300})},
      {"t.array.bool", GgufValue::array_of(std::vector<bool>{true, false, true})},
      {"t.array.string", GgufValue::array_of(std::vector<std::string>{"a", "", "ccc"})},
      {"t.array.empty", GgufValue::array_of(std::vector<int32_t>{})},
      {"t.array.nested",
       GgufValue::array(
           GgufType::kArray,
           {GgufValue::array_of(std::vector<uint32_t>{1, 2}), GgufValue::array_of(std::vector<std::string>{"x"}),
            GgufValue::array(GgufType::kArray, {GgufValue::array_of(std::vector<int8_t>{-3})})})},
  };
  std::vector<float> a = {1, 2, 3, 4, 5, 6};  // ne = [3, 2]: two rows of three
  std::vector<float> w(64);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(float(i));
  std::vector<uint8_t> q8(quant::ggml_type_nbytes(quant::GgmlType::kQ8_0, 64));
  quant::quantize(quant::GgmlType::kQ8_0, w.data(), q8.data(), 64);
  std::vector<uint16_t> h = {0x3c00, 0xc000, 0x7bff};  // f16 1, -2, 65504
  std::vector<io::GgufTensorSource> tensors = {
      {"a", {3, 2}, quant::GgmlType::kF32, a.data(), nullptr},
      {"q", {32, 2}, quant::GgmlType::kQ8_0, q8.data(), nullptr},
      {"h", {3}, quant::GgmlType::kF16, h.data(), nullptr},
      {"empty", {0, 4}, quant::GgmlType::kF32, nullptr, nullptr},
  };
  // A streamed tensor: produced in three pieces when its turn comes.
  io::GgufTensorSource streamed{"streamed", {5}, quant::GgmlType::kF32, nullptr, nullptr};
  streamed.produce = [](const io::GgufEmit& emit) {
    const float v[5] = {10, 20, 30, 40, 50};
    emit(v, 4);
    emit(v + 1, 12);
    emit(v + 4, 4);
  };
  tensors.push_back(streamed);

  for (uint32_t alignment : {0u, 64u}) {
    INFO("alignment " << alignment);
    auto md = metadata;
    if (alignment) md.push_back({"general.alignment", GgufValue::u32(alignment)});
    const fs::path path = temp_dir() / "roundtrip.gguf";
    io::gguf_write(path, md, tensors);
    auto f = io::GgufFile::open(path);
    const uint32_t expect_alignment = alignment ? alignment : 32;
    CHECK(f->alignment() == expect_alignment);
    CHECK(f->data_offset() % expect_alignment == 0);
    REQUIRE(f->metadata().size() == md.size());
    for (size_t i = 0; i < md.size(); ++i) {
      INFO(md[i].key);
      CHECK(f->metadata()[i].key == md[i].key);
      CHECK(f->metadata()[i].value == md[i].value);
    }
    CHECK(f->get_uint("t.u8") == 250);
    CHECK(f->get_int("t.i8") == -100);
    CHECK(f->get_int("t.i64") == -9000000000000000000ll);
    CHECK(f->get_uint("t.u64") == 18000000000000000000ull);
    CHECK(f->get_float("t.f32") == double(-1.5e-7f));
    CHECK(f->get_float("t.f64") == 3.141592653589793);
    CHECK(f->get_bool("t.bool"));
    CHECK(f->get_string("t.string") == "h\xc3\xa9llo, world");
    CHECK(f->get_string("t.empty_string").empty());
    CHECK(f->get_int_array("t.array.u8") == std::vector<int64_t>{0, 1, 255});
    CHECK(f->get_int_array("t.array.i16") == std::vector<int64_t>{-1, 2});
    CHECK(f->get_float_array("t.array.f32") == std::vector<double>{0.5, -2.0});
    CHECK(f->get_string_array("t.array.string") == std::vector<std::string>{"a", "", "ccc"});
    const GgufValue& strings = f->get_array("t.array.string");
    CHECK(strings.string_item(0) == "a");
    CHECK(strings.string_item(1).empty());
    CHECK(strings.string_item(2) == "ccc");
    CHECK(*strings.item(2).as_string() == "ccc");
    CHECK_THROWS_AS(strings.string_item(3), std::out_of_range);
    CHECK_THROWS_AS(f->get_array("t.array.u8").string_item(0), std::out_of_range);
    CHECK(f->get_array("t.array.bool").item(2).as_bool() == true);
    CHECK(f->get_array("t.array.empty").size() == 0);
    CHECK(f->get_array("t.array.empty").element_type() == GgufType::kI32);
    const GgufValue& nested = f->get_array("t.array.nested");
    REQUIRE(nested.size() == 3);
    CHECK(nested.item(0).item(1).as_uint() == 2u);
    CHECK(*nested.item(1).item(0).as_string() == "x");
    CHECK(nested.item(2).item(0).item(0).as_int() == -3);

    REQUIRE(f->tensors().size() == 5);
    const auto& ta = f->tensor("a");
    CHECK(ta.dims == std::vector<int64_t>{3, 2});
    CHECK(ta.shape() == std::vector<int64_t>{2, 3});
    CHECK(std::memcmp(ta.data, a.data(), 24) == 0);
    const auto& tq = f->tensor("q");
    CHECK(tq.type == quant::GgmlType::kQ8_0);
    CHECK(std::memcmp(tq.data, q8.data(), q8.size()) == 0);
    CHECK(std::memcmp(f->tensor("h").data, h.data(), 6) == 0);
    CHECK(f->tensor("empty").nbytes == 0);
    const auto& ts = f->tensor("streamed");
    const std::vector<float> expect_streamed = {10, 20, 30, 40, 50};
    CHECK(std::memcmp(ts.data, expect_streamed.data(), 20) == 0);
    for (const auto& t : f->tensors()) CHECK(t.offset % expect_alignment == 0);
    CHECK(fs::file_size(path) % expect_alignment == 0);
  }
}

TEST_CASE("gguf typed metadata access names the file and key", "[io][gguf]") {
  const fs::path path = temp_dir() / "typed.gguf";
  io::gguf_write(path,
                 {{"s", io::GgufValue::string("text")},
                  {"neg", io::GgufValue::i32(-5)},
                  {"big", io::GgufValue::u64(~0ull)},
                  {"f", io::GgufValue::f32(1.0f)},
                  {"arr", io::GgufValue::array_of(std::vector<float>{1})}},
                 {});
  auto f = io::GgufFile::open(path);
  CHECK_THROWS_AS(f->get_string("missing.key"), FormatError);
  CHECK_THROWS_WITH(f->get_uint("missing.key"), Contains(path.string()) && Contains("'missing.key' missing"));
  CHECK_THROWS_WITH(f->get_uint("s"), Contains("'s' has type string; expected an unsigned integer"));
  CHECK_THROWS_WITH(f->get_uint("neg"), Contains("'neg' is negative"));
  CHECK(f->get_int("neg") == -5);
  CHECK_THROWS_WITH(f->get_int("big"), Contains("'big'") && Contains("does not fit int64"));
  CHECK(f->get_uint("big") == ~0ull);
  CHECK_THROWS_WITH(f->get_float("neg"), Contains("'neg' has type i32; expected f32 or f64"));
  CHECK_THROWS_WITH(f->get_bool("f"), Contains("'f' has type f32; expected bool"));
  CHECK_THROWS_WITH(f->get_string("arr"), Contains("'arr' has type array of f32; expected string"));
  CHECK_THROWS_WITH(f->get_string_array("arr"), Contains("expected array of string"));
  CHECK_THROWS_WITH(f->get_int_array("arr"), Contains("expected array of integers"));
  CHECK_THROWS_WITH(f->get_array("s"), Contains("expected an array"));
  CHECK_THROWS_AS(f->get_array("arr").item(1), std::out_of_range);
  CHECK(f->tensors().empty());
}

TEST_CASE("gguf_write rejects inconsistent input before touching the target", "[io][gguf]") {
  const fs::path path = temp_dir() / "rejected.gguf";
  io::atomic_write(path, "old content");
  float v[64] = {};
  using io::GgufTensorSource;
  using quant::GgmlType;
  auto rejects = [&](const std::vector<io::GgufKv>& md, const std::vector<GgufTensorSource>& ts, const char* what) {
    CHECK_THROWS_WITH(io::gguf_write(path, md, ts), Contains(what));
    CHECK(io::file_read(path) == "old content");
  };
  rejects({{"k", io::GgufValue::u8(1)}, {"k", io::GgufValue::u8(2)}}, {}, "duplicate metadata key 'k'");
  rejects({{"", io::GgufValue::u8(1)}}, {}, "metadata key must have");
  rejects({{"general.alignment", io::GgufValue::u32(48)}}, {}, "power of two");
  rejects({{"general.alignment", io::GgufValue::u64(64)}}, {}, "general.alignment");
  rejects({}, {{"a", {4}, GgmlType::kF32, v, nullptr}, {"a", {4}, GgmlType::kF32, v, nullptr}},
          "duplicate tensor name 'a'");
  rejects({}, {{"q", {48}, GgmlType::kQ8_0, v, nullptr}}, "ne[0] = 48 is not a multiple of the Q8_0 block size 32");
  rejects({}, {{"q", {16, 2}, GgmlType::kQ8_0, v, nullptr}}, "not a multiple");
  rejects({}, {{"d", {1, 1, 1, 1, 1}, GgmlType::kF32, v, nullptr}}, "at most 4 dims");
  rejects({}, {{"n", {-1}, GgmlType::kF32, v, nullptr}}, "non-negative");
  rejects({}, {{std::string(64, 'x'), {1}, GgmlType::kF32, v, nullptr}}, "llama.cpp's limit");
  rejects({}, {{"none", {4}, GgmlType::kF32, nullptr, nullptr}}, "neither data nor a producer");
  GgufTensorSource short_producer{"p", {4}, GgmlType::kF32, nullptr, nullptr};
  short_producer.produce = [&](const io::GgufEmit& emit) { emit(v, 12); };
  rejects({}, {short_producer}, "producer emitted 12 bytes; expected 16");
  GgufTensorSource long_producer{"p", {4}, GgmlType::kF32, nullptr, nullptr};
  long_producer.produce = [&](const io::GgufEmit& emit) { emit(v, 20); };
  rejects({}, {long_producer}, "producer emitted more than the 16 bytes");
  // No temporary left behind.
  for (const auto& entry : fs::directory_iterator(temp_dir()))
    CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
}
