// gguf_model_write against llama.cpp itself: from the float32 Hugging Face weights of kq256, hearth writes every
// type llama-quantize made (f16, bf16, q8_0, q4_0, q4_k_m, q6_k) with the same tensor names, order, types, shapes
// and data bytes, and the same values for the hyperparameter keys; the files load back through hearth's GGUF
// reader with the Hugging Face config. Then the other sources (GGUF, in memory), the errors, and a
// q4_k_m file with Q5_0 fallbacks run on the block kernels.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include <torch/torch.h>

#include "convert/gguf_model_write.h"
#include "convert/tensor_source.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "kq256.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/gguf_model.h"
#include "model_config_check.h"

using namespace hearth;
using namespace hearth::convert;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

fs::path scratch_file(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("hearth_test_convert_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

const std::vector<std::pair<std::string, QuantType>>& kq256_types() {
  static const std::vector<std::pair<std::string, QuantType>> t = {
      {"f16", QuantType::kF16},   {"bf16", QuantType::kBF16},     {"q8_0", QuantType::kQ8_0},
      {"q4_0", QuantType::kQ4_0}, {"q4_k_m", QuantType::kQ4_K_M}, {"q6_k", QuantType::kQ6_K}};
  return t;
}

// The bytes of the data section: from the first tensor to the end of the file.
std::string data_section(const io::GgufFile& f) { return io::file_read(f.path()).substr(f.data_offset()); }

// The keys both files must agree on (llama-quantize's file has no key_length / general.type; tokenizer keys are
// not written by hearth yet).
const std::vector<std::string> kHyperparameterKeys = {"general.architecture",
                                                      "llama.block_count",
                                                      "llama.context_length",
                                                      "llama.embedding_length",
                                                      "llama.feed_forward_length",
                                                      "llama.attention.head_count",
                                                      "llama.attention.head_count_kv",
                                                      "llama.rope.freq_base",
                                                      "llama.attention.layer_norm_rms_epsilon",
                                                      "llama.vocab_size",
                                                      "llama.rope.dimension_count",
                                                      "general.file_type",
                                                      "general.quantization_version"};

}  // namespace

TEST_CASE("hearth's GGUF from kq256/hf equals llama-quantize's for every type", "[convert][kq256]") {
  const auto hf = test::kq256_dir() / "hf";
  const auto config = model::config_load(hf);
  const auto source = tensor_source_checkpoint(hf);
  for (const auto& [name, type] : kq256_types()) {
    INFO("type " << name);
    const auto out = scratch_file("kq256-" + name + ".gguf");
    QuantizeOptions options;
    options.type = type;
    options.name = "kq256";
    const auto summary = gguf_model_write(out, config, source, options);
    auto mine = io::GgufFile::open(out);
    auto ref = io::GgufFile::open(test::kq256_dir() / ("model-" + name + ".gguf"));
    REQUIRE(mine->tensors().size() == ref->tensors().size());
    for (size_t i = 0; i < ref->tensors().size(); ++i) {
      const auto& a = mine->tensors()[i];
      const auto& b = ref->tensors()[i];
      INFO("tensor " << b.name);
      CHECK(a.name == b.name);  // same order too
      CHECK(a.type == b.type);
      CHECK(a.dims == b.dims);
      REQUIRE(a.nbytes == b.nbytes);
      CHECK(std::memcmp(a.data, b.data, a.nbytes) == 0);
    }
    CHECK(data_section(*mine) == data_section(*ref));  // padding and offsets included
    for (const auto& key : kHyperparameterKeys) {
      INFO("key " << key);
      REQUIRE(mine->find(key));
      CHECK(mine->get(key) == ref->get(key));  // value and GGUF type
    }
    CHECK(mine->get_int("llama.attention.key_length") == 64);
    CHECK(mine->get_int("llama.attention.value_length") == 64);
    CHECK(mine->get_string("general.name") == "kq256");
    CHECK(summary.tensors == 20);
    CHECK(summary.parameters == 1312000);
    CHECK(summary.file_bytes == fs::file_size(out));
    CHECK(summary.fallbacks.empty());
    fs::remove(out);
  }
}

TEST_CASE("the written GGUF loads back through hearth's reader with the Hugging Face config", "[convert][kq256]") {
  const auto hf = test::kq256_dir() / "hf";
  const auto h = model::config_load(hf);
  const auto hf_tensors = model::checkpoint_tensors(hf);
  for (auto [type, tol] :
       {std::pair{QuantType::kF32, 0.0}, std::pair{QuantType::kF16, 1e-4}, std::pair{QuantType::kQ8_0, 2e-3}}) {
    QuantizeOptions options;
    options.type = type;
    const auto out = scratch_file("loadback.gguf");
    gguf_model_write(out, h, tensor_source_checkpoint(hf), options);
    auto file = io::GgufFile::open(out);
    auto g = model::gguf_config(*file);
    test::check_same_architecture(g, h);
    // bos/eos ids come with the tokenizer metadata (not written here: no extra metadata given).
    auto back = model::gguf_tensors(*file, g);
    REQUIRE(back.size() == hf_tensors.size());
    for (const auto& [name, w] : hf_tensors) {
      INFO(name);
      REQUIRE(back.count(name));
      // |w| ≲ 0.1: q8_0 steps are max/127 per block of 32; a wrong q/k row order would give differences ~0.05.
      CHECK((back[name] - w).abs().max().item<double>() <= tol);
    }
    fs::remove(out);
  }
}

TEST_CASE("a GGUF source goes through HF order and back unchanged, and quantized sources are refused",
          "[convert][kq256]") {
  auto f16 = io::GgufFile::open(test::kq256_dir() / "model-f16.gguf");
  auto config = model::gguf_config(*f16);
  QuantizeOptions options;
  options.type = QuantType::kF16;
  const auto out = scratch_file("from-gguf.gguf");
  gguf_model_write(out, config, tensor_source_gguf(f16, config), options);
  auto mine = io::GgufFile::open(out);
  CHECK(data_section(*mine) == data_section(*f16));  // q/k rows un-interleaved and re-interleaved, F16 re-encoded
  fs::remove(out);

  auto q8 = io::GgufFile::open(test::kq256_dir() / "model-q8_0.gguf");
  CHECK_THROWS_WITH(tensor_source_gguf(q8, model::gguf_config(*q8)),
                    Contains("already quantized") && Contains("model-q8_0.gguf") && Contains("Q8_0"));
  CHECK_THROWS_AS(tensor_source_gguf(q8, model::gguf_config(*q8)), FormatError);
}

TEST_CASE("the output does not depend on the thread count", "[convert][kq256]") {
  const auto hf = test::kq256_dir() / "hf";
  const auto config = model::config_load(hf);
  std::string first;
  for (int threads : {1, 3}) {
    QuantizeOptions options;
    options.type = QuantType::kQ4_K_M;
    options.threads = threads;
    const auto out = scratch_file("threads.gguf");
    gguf_model_write(out, config, tensor_source_checkpoint(hf), options);
    const std::string bytes = io::file_read(out);
    if (first.empty()) first = bytes;
    else CHECK(bytes == first);
    fs::remove(out);
  }
}

TEST_CASE("gguf_model_write checks the source before it writes, and keeps the old file on failure", "[convert]") {
  const auto hf = test::kq256_dir() / "hf";
  const auto config = model::config_load(hf);
  QuantizeOptions options;
  options.type = QuantType::kQ8_0;
  const auto out = scratch_file("errors.gguf");
  io::atomic_write(out, "old");

  auto tensors = model::checkpoint_tensors(hf);
  auto missing = tensors;
  missing.erase("model.layers.1.mlp.up_proj.weight");
  CHECK_THROWS_WITH(gguf_model_write(out, config, tensor_source_map(missing, "mem"), options),
                    Contains("mem: tensor 'model.layers.1.mlp.up_proj.weight' missing"));

  auto wrong = tensors;
  wrong["model.norm.weight"] = torch::ones({255});
  CHECK_THROWS_WITH(gguf_model_write(out, config, tensor_source_map(wrong, "mem"), options),
                    Contains("'model.norm.weight' has shape [255]; expected [256]"));

  auto nan = tensors;
  auto bad = nan["model.layers.0.self_attn.v_proj.weight"].clone();
  bad[3][7] = std::numeric_limits<float>::quiet_NaN();
  nan["model.layers.0.self_attn.v_proj.weight"] = bad;
  CHECK_THROWS_AS(gguf_model_write(out, config, tensor_source_map(nan, "mem"), options), FormatError);
  CHECK_THROWS_WITH(gguf_model_write(out, config, tensor_source_map(nan, "mem"), options),
                    Contains("blk.0.attn_v.weight") && Contains("nan"));

  std::vector<io::GgufKv> clash = {{"general.file_type", io::GgufValue::u32(1)}};
  CHECK_THROWS_AS(gguf_model_write(out, config, tensor_source_map(tensors, "mem"), options, clash), ConfigError);
  CHECK(io::file_read(out) == "old");

  // In-memory bf16 tensors are fine (converted to float32 one at a time); extra metadata lands before
  // general.quantization_version.
  model::TensorMap bf16;
  for (const auto& [name, w] : tensors) bf16[name] = w.to(torch::kBFloat16);
  std::vector<io::GgufKv> extra = {{"tokenizer.ggml.model", io::GgufValue::string("llama")}};
  gguf_model_write(out, config, tensor_source_map(bf16, "mem"), options, extra);
  auto f = io::GgufFile::open(out);
  CHECK(f->get_string("tokenizer.ggml.model") == "llama");
  CHECK(f->metadata().back().key == "general.quantization_version");
  fs::remove(out);
}

TEST_CASE("metadata for Qwen3, linear RoPE scaling and Mistral's sliding window", "[convert]") {
  nlohmann::json base = {{"model_type", "qwen3"},          {"vocab_size", 1024},     {"hidden_size", 256},
                         {"intermediate_size", 512},       {"num_hidden_layers", 2}, {"num_attention_heads", 4},
                         {"num_key_value_heads", 2},       {"head_dim", 128},        {"rope_theta", 1000000.0},
                         {"max_position_embeddings", 4096}};
  auto kv_map = [](const std::vector<io::GgufKv>& kv) {
    std::map<std::string, io::GgufValue> m;
    for (const auto& e : kv) m[e.key] = e.value;
    return m;
  };
  QuantizeOptions o;
  o.type = QuantType::kQ4_K_M;
  auto q3 = kv_map(gguf_model_metadata(model::config_parse(base, "t"), o));
  CHECK(*q3["general.architecture"].as_string() == "qwen3");
  CHECK(q3["qwen3.attention.key_length"] == io::GgufValue::u32(128));  // not hidden/heads = 64
  CHECK(q3["qwen3.rope.dimension_count"] == io::GgufValue::u32(128));
  CHECK(q3["qwen3.rope.freq_base"] == io::GgufValue::f32(1e6f));
  CHECK(q3["general.file_type"] == io::GgufValue::u32(15));
  CHECK(q3.count("qwen3.rope.scaling.type") == 0);

  auto lin = base;
  lin["model_type"] = "llama";
  lin["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  auto l = kv_map(gguf_model_metadata(model::config_parse(lin, "t"), o));
  CHECK(*l["llama.rope.scaling.type"].as_string() == "linear");
  CHECK(l["llama.rope.scaling.factor"] == io::GgufValue::f32(4.0f));

  auto mistral = base;
  mistral["model_type"] = "mistral";
  mistral["sliding_window"] = 4096;
  auto m = kv_map(gguf_model_metadata(model::config_parse(mistral, "t"), o));
  CHECK(*m["general.architecture"].as_string() == "llama");
  CHECK(m["llama.attention.sliding_window"] == io::GgufValue::u32(4096));
}

// stories260K's rows of 64 are not whole Q4_K super-blocks: q4_k_m falls back to Q5_0 for them (docs/quantize.md),
// and on the CPU those matrices stay blocks run by the Q5_0 kernel (quant/matvec.h), matching the decoded model.
TEST_CASE("a q4_k_m file's Q5_0 fallbacks stay blocks and match the decoded model", "[convert][model]") {
  const auto dir = test::stories_dir();
  const auto config = model::config_load(dir);
  QuantizeOptions options;
  options.type = QuantType::kQ4_K_M;
  const auto out = scratch_file("stories-q4_k_m.gguf");
  const auto summary = gguf_model_write(out, config, tensor_source_checkpoint(dir), options);
  REQUIRE(summary.tensors_per_type.count("Q5_0"));
  std::shared_ptr<const io::GgufFile> file = io::GgufFile::open(out);
  const auto g = model::gguf_config(*file);
  auto blocks = model::gguf_weights(file, g, true);
  auto decoded = model::gguf_weights(file, g, false);
  int q5_0 = 0;
  for (const auto& [name, b] : blocks.blocks) q5_0 += b.type == quant::GgmlType::kQ5_0;
  CHECK(q5_0 == summary.tensors_per_type.at("Q5_0"));  // every Q5_0 tensor is a matrix kept as blocks
  auto a = model::causal_lm_from_tensors(g, blocks.dense, {}, "blocks", blocks.blocks);
  auto b = model::causal_lm_from_tensors(g, decoded.dense, {}, "decoded");
  int q5_0_linears = 0;
  for (const auto* lin : a->linears())
    for (const auto& t : lin->storage_types()) q5_0_linears += t == "Q5_0";
  CHECK(q5_0_linears > 0);
  // Block kernels (8-bit activations) against the float32 products of the same decoded weights.
  c10::InferenceMode guard;
  auto tokens = torch::tensor({{1, 34, 200, 7, 99, 311, 2, 45}});
  auto pos = torch::arange(8).unsqueeze(0);
  auto la = a->forward(tokens, pos, {}, nullptr), lb = b->forward(tokens, pos, {}, nullptr);
  CHECK((la - lb).abs().max().item<double>() < 0.02 * lb.abs().max().item<double>());
  CHECK(torch::equal(la.argmax(-1), lb.argmax(-1)));
  fs::remove(out);
}
