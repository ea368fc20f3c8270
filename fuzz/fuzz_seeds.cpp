// fuzz_seeds SOURCE_DIR OUT_DIR: writes the seed corpus of every fuzz target into OUT_DIR/<target>/, from the
// project's own fixtures. scripts/check.sh --fuzz runs it before fuzzing; nothing it writes is checked in.
//
//   safetensors    hearth-written files (every dtype, metadata, zero-size tensors, none at all), stories260K's
//                  tensor names and dtypes with each dimension cut to at most 2, and its real header cut short
//   gguf           the header (metadata and tensor infos, no data) of each kq256 GGUF, the same files
//                  rewritten by gguf_write with every tensor one block long, one file with every value type
//   tokenizer      stories260K's and kq256's tokenizer.json, GPT-2's cut to 400 tokens and their merges
//   chat_template  tests/fixtures/chat_templates/*.jinja
//   recipe         recipes/**/*.yaml, and quickstart.yaml with overrides
//   request        (only the checked-in seeds)
// plus, for every target, the small hand-written seeds checked in under fuzz/seeds/<target>/. A plain program,
// not a fuzz target; it throws (and exits non-zero) when a fixture is missing.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "quant/block_format.h"

using namespace hearth;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) throw IoError(path.string() + ": cannot write");
}

std::string read_file(const fs::path& path, size_t limit = std::string::npos) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot read");
  std::string bytes;
  char buf[65536];
  while (bytes.size() < limit && in.read(buf, sizeof buf).gcount() > 0) bytes.append(buf, in.gcount());
  if (bytes.size() > limit) bytes.resize(limit);
  return bytes;
}

void copy_matching(const fs::path& dir, const std::string& ext, const fs::path& out, bool recursive = false) {
  auto one = [&](const fs::directory_entry& e) {
    if (!e.is_regular_file() || e.path().extension() != ext) return;
    std::string name = fs::relative(e.path(), dir).string();
    std::replace(name.begin(), name.end(), '/', '_');
    fs::copy_file(e.path(), out / name, fs::copy_options::overwrite_existing);
  };
  if (recursive) {
    for (const auto& e : fs::recursive_directory_iterator(dir)) one(e);
  } else {
    for (const auto& e : fs::directory_iterator(dir)) one(e);
  }
}

void safetensors_seeds(const fs::path& src, const fs::path& out) {
  const std::vector<unsigned char> bytes(64, 0x3c);
  std::vector<io::TensorView> all;
  for (auto dtype : {io::Dtype::kBool, io::Dtype::kU8, io::Dtype::kI8, io::Dtype::kI16, io::Dtype::kU16,
                     io::Dtype::kF16, io::Dtype::kBF16, io::Dtype::kI32, io::Dtype::kU32, io::Dtype::kF32,
                     io::Dtype::kF64, io::Dtype::kI64, io::Dtype::kU64, io::Dtype::kF8E4M3, io::Dtype::kF8E5M2}) {
    const std::string name = "t." + std::string(io::dtype_name(dtype));
    all.push_back({name, dtype, {2, 3}, bytes.data(), 6 * io::dtype_size(dtype)});
  }
  io::safetensors_write(out / "all_dtypes.safetensors", all, {{"format", "pt"}, {"note", "fuzz seed"}});
  io::safetensors_write(out / "zero_size.safetensors", {{"empty", io::Dtype::kF32, {0, 4}, bytes.data(), 0},
                                                        {"scalar", io::Dtype::kF32, {}, bytes.data(), 4}});
  io::safetensors_write(out / "empty.safetensors", {});

  // stories260K: real names and dtypes, every dimension cut to at most 2.
  const fs::path real = src / "models/stories260K/model.safetensors";
  auto file = io::SafetensorsFile::open(real);
  std::vector<io::TensorView> small;
  std::vector<std::vector<unsigned char>> buffers;
  for (const auto& t : file->tensors()) {
    io::TensorView v{t.name, t.dtype, t.shape, nullptr, 0};
    for (auto& d : v.shape) d = std::min<int64_t>(d, 2);
    v.nbytes = static_cast<size_t>(v.numel()) * io::dtype_size(v.dtype);
    buffers.emplace_back(v.nbytes, 0x11);
    v.data = buffers.back().data();
    small.push_back(v);
  }
  io::safetensors_write(out / "stories260K_shapes.safetensors", small, file->metadata());
  // Its real header and the first bytes of data: a file cut short.
  std::string head = read_file(real, 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(head[i]);
  write_file(out / "stories260K_head.safetensors", read_file(real, 8 + header_len + 64));
}

void gguf_seeds(const fs::path& src, const fs::path& out) {
  for (const char* name : {"model-f16.gguf", "model-bf16.gguf", "model-q8_0.gguf", "model-q4_0.gguf",
                           "model-q4_k_m.gguf", "model-q5_k_m.gguf", "model-q6_k.gguf"}) {
    const fs::path path = src / "tests/fixtures/kq256" / name;
    auto file = io::GgufFile::open(path);
    const std::string stem = path.stem().string();
    write_file(out / (stem + "_head.gguf"), read_file(path, file->data_offset()));
    // The same metadata and tensor names and types, every tensor one block of zeros.
    std::vector<io::GgufTensorSource> tensors;
    std::vector<std::string> zeros;
    zeros.reserve(file->tensors().size());
    for (const auto& t : file->tensors()) {
      const auto& info = quant::ggml_type_info(t.type);
      std::vector<int64_t> dims(t.dims.size(), 1);
      if (!dims.empty()) dims[0] = info.block_size;
      zeros.emplace_back(info.block_bytes, '\0');
      tensors.push_back({t.name, dims, t.type, zeros.back().data(), nullptr});
    }
    io::gguf_write(out / (stem + "_small.gguf"), file->metadata(), tensors);
  }

  // Every value type, nested arrays, a non-default alignment, tensors of a few types.
  using io::GgufValue;
  const std::vector<io::GgufKv> kvs = {
      {"general.architecture", GgufValue::string("llama")},
      {"general.alignment", GgufValue::u32(64)},
      {"t.u8", GgufValue::u8(200)},
      {"t.i8", GgufValue::i8(-3)},
      {"t.u16", GgufValue::u16(65000)},
      {"t.i16", GgufValue::i16(-30000)},
      {"t.u32", GgufValue::u32(4000000000u)},
      {"t.i32", GgufValue::i32(-2000000000)},
      {"t.u64", GgufValue::u64(~0ull)},
      {"t.i64", GgufValue::i64(-1)},
      {"t.f32", GgufValue::f32(1.5f)},
      {"t.f64", GgufValue::f64(-2.25)},
      {"t.bool", GgufValue::boolean(true)},
      {"t.strings", GgufValue::array_of<std::string>({"a", "", "ünï"})},
      {"t.floats", GgufValue::array_of<float>({0.5f, -1.0f})},
      {"t.ints", GgufValue::array_of<int32_t>({1, -2, 3})},
      {"t.bools", GgufValue::array_of<bool>({true, false})},
      {"t.nested", GgufValue::array(io::GgufType::kArray,
                                    {GgufValue::array_of<uint8_t>({1, 2}), GgufValue::array_of<std::string>({"x"})})},
  };
  const std::vector<float> f32(8, 0.25f);
  const std::string q8_0(quant::ggml_type_info(quant::GgmlType::kQ8_0).block_bytes, '\x01');
  io::gguf_write(out / "all_types.gguf", kvs,
                 {{"a.weight", {4, 2}, quant::GgmlType::kF32, f32.data(), nullptr},
                  {"b.weight", {32}, quant::GgmlType::kQ8_0, q8_0.data(), nullptr},
                  {"c.empty", {0}, quant::GgmlType::kF32, f32.data(), nullptr}});
}

void tokenizer_seeds(const fs::path& src, const fs::path& out) {
  fs::copy_file(src / "models/stories260K/tokenizer.json", out / "stories260K.json",
                fs::copy_options::overwrite_existing);
  fs::copy_file(src / "tests/fixtures/kq256/hf/tokenizer.json", out / "kq256.json",
                fs::copy_options::overwrite_existing);
  // GPT-2 (3.5 MB) cut to its first 400 tokens and the merges among them: byte-level BPE, small enough to mutate.
  json gpt2 = io::json_read(src / "tests/fixtures/tokenizer-tests/gpt2/tokenizer.json");
  json& model = gpt2["model"];
  json vocab = json::object();
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it)
    if (it->get<int64_t>() < 400) vocab[it.key()] = *it;
  json merges = json::array();
  for (const auto& m : model["merges"]) {
    const std::string text = m.is_string() ? m.get<std::string>()
                                           : m[0].get<std::string>() + " " + m[1].get<std::string>();
    const size_t space = text.find(' ');
    const std::string a = text.substr(0, space), b = text.substr(space + 1);
    if (vocab.contains(a) && vocab.contains(b) && vocab.contains(a + b)) merges.push_back(m);
  }
  model["vocab"] = vocab;
  model["merges"] = merges;
  write_file(out / "gpt2_400.json", gpt2.dump(1));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_seeds SOURCE_DIR OUT_DIR\n");
    return 2;
  }
  const fs::path src = argv[1], out = argv[2];
  try {
    std::map<std::string, fs::path> dirs;
    for (const char* target : {"safetensors", "gguf", "tokenizer", "chat_template", "recipe", "request"}) {
      dirs[target] = out / target;
      fs::create_directories(dirs[target]);
      const fs::path checked_in = src / "fuzz/seeds" / target;
      if (fs::is_directory(checked_in))
        fs::copy(checked_in, dirs[target], fs::copy_options::overwrite_existing | fs::copy_options::recursive);
    }
    safetensors_seeds(src, dirs["safetensors"]);
    gguf_seeds(src, dirs["gguf"]);
    tokenizer_seeds(src, dirs["tokenizer"]);
    copy_matching(src / "tests/fixtures/chat_templates", ".jinja", dirs["chat_template"]);
    copy_matching(src / "recipes", ".yaml", dirs["recipe"], true);
    // Overrides follow the YAML after a NUL byte (see fuzz_recipe.cpp).
    write_file(dirs["recipe"] / "quickstart_overrides.yaml",
               read_file(src / "recipes/quickstart.yaml") + std::string(1, '\0') +
                   "training.max_time=1h30m\nlora.target_modules=[q_proj, v_proj]\noptimizer.betas=[0.9, 0.95]\n"
                   "datasets=[{path: a.jsonl, weight: 2}]\ntraining.seed=7");
    for (const auto& [target, dir] : dirs) {
      size_t n = 0;
      for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
      std::printf("fuzz_seeds: %-14s %3zu seeds in %s\n", target.c_str(), n, dir.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
