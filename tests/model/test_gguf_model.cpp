// Models from GGUF files that llama.cpp made (tests/fixtures/kq256): the config read from the metadata equals
// the Hugging Face config.json of the same weights, q/k rows come back in Hugging Face order, and hearth's
// forward over every file reproduces llama.cpp's own perplexity on it (llama-perplexity, values in
// expected.json, tolerances per type as the fixture's README states).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/gguf_model.h"
#include "model/lora.h"
#include "model_config_check.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

using namespace hearth;
namespace fs = std::filesystem;

namespace {

fs::path kq256() { return test::source_dir() / "tests" / "fixtures" / "kq256"; }

// llama-perplexity -c 128 -b 128 --chunks 1: BOS + the text's first 127 tokens; logits at positions 64..126
// predict tokens 65..127; perplexity = exp(mean NLL).
double llama_cpp_style_perplexity(const model::CausalLM& m) {
  std::ifstream in(kq256() / "ppl.txt");
  std::stringstream text;
  text << in.rdbuf();
  auto tok = tokenizer::Tokenizer::load(kq256() / "hf");
  auto ids = tok.encode(text.str());  // BOS first (add_bos_token)
  REQUIRE(ids.size() >= 128);
  REQUIRE(ids[0] == 1);
  c10::InferenceMode guard;
  auto tokens = torch::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + 128)).unsqueeze(0);
  auto logits = m.forward(tokens, torch::arange(128).unsqueeze(0), {}, nullptr)[0].to(torch::kCPU, torch::kFloat64);
  auto logp = torch::log_softmax(logits, -1);
  double nll = 0;
  for (int64_t i = 64; i < 127; ++i) nll -= logp[i][ids[i + 1]].item<double>();
  return std::exp(nll / 63.0);
}

}  // namespace

TEST_CASE("GGUF metadata gives the config of the Hugging Face folder", "[model][gguf]") {
  auto file = io::GgufFile::open(kq256() / "model-q8_0.gguf");
  auto g = model::gguf_config(*file);
  auto h = model::config_load(kq256() / "hf");
  test::check_same_architecture(g, h);
  CHECK(g.bos_token_id == h.bos_token_id);
  CHECK(g.eos_token_id == h.eos_token_id);
}

TEST_CASE("GGUF q/k rows are put back in Hugging Face order", "[model][gguf]") {
  // F16 holds every matrix to within half-precision rounding of the float32 original.
  auto file = io::GgufFile::open(kq256() / "model-f16.gguf");
  auto config = model::gguf_config(*file);
  auto from_gguf = model::gguf_tensors(*file, config);
  auto hf = model::checkpoint_tensors(kq256() / "hf");
  for (const char* name :
       {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
        "model.layers.1.self_attn.v_proj.weight", "model.layers.0.mlp.down_proj.weight", "model.embed_tokens.weight"}) {
    INFO(name);
    REQUIRE(from_gguf.count(name));
    auto diff = (from_gguf[name] - hf[name].to(torch::kFloat32)).abs().max().item<double>();
    CHECK(diff < 1e-4);  // |w| ~ 0.02·4: f16 rounding error ~1e-5; a wrong row order gives ~0.1
  }
}

TEST_CASE("hearth's forward on llama.cpp's GGUF files reproduces llama-perplexity", "[model][gguf]") {
  auto expected = io::json_read(kq256() / "expected.json")["files"];
  // Relative tolerances, from the fixture's README (F32/F16/BF16 ~1e-5, q8_0 ≲1e-3, more for 4-bit types):
  // in quantized products both llama.cpp and hearth quantize activations to 8 bits, but not identically
  // (llama.cpp rounds each block's activation scale to float16, hearth keeps it float32). Measured on this
  // machine (AVX-512 VNNI kernels): f16 1.2e-6, bf16 2.0e-5, q8_0 1.9e-4, q6_k 5.2e-5, q5_k_m 1.4e-4,
  // q4_k_m 5.3e-4, q4_0 8.1e-4.
  const std::vector<std::pair<std::string, double>> files = {
      {"model-f16.gguf", 1e-5},    {"model-bf16.gguf", 1e-4},   {"model-q8_0.gguf", 1e-3}, {"model-q6_k.gguf", 1e-3},
      {"model-q5_k_m.gguf", 1e-3}, {"model-q4_k_m.gguf", 2e-3}, {"model-q4_0.gguf", 2e-3}};
  for (const auto& [name, tol] : files) {
    INFO(name);
    auto m = model::gguf_model_load(kq256() / name);
    const double want = expected[name]["llama_perplexity"].get<double>();
    const double got = llama_cpp_style_perplexity(*m);
    CAPTURE(got, want);
    CHECK(std::abs(got - want) / want < tol);
  }
}

TEST_CASE("on CUDA, GGUF files run as decoded weights: the CPU's decoded perplexity, near llama-perplexity",
          "[model][gguf][gpu]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  // On CUDA the blocks are decoded to float32 at load (dequantize, then cuBLAS): the same numbers as the CPU
  // forward over the decoded weights, up to float32 summation order; against llama.cpp (8-bit activations in
  // its quantized products) the CPU test's tolerances apply.
  auto expected = io::json_read(kq256() / "expected.json")["files"];
  const std::vector<std::pair<std::string, double>> files = {{"model-f16.gguf", 1e-5},    {"model-q8_0.gguf", 1e-3},
                                                             {"model-q6_k.gguf", 1e-3},   {"model-q5_k_m.gguf", 1e-3},
                                                             {"model-q4_k_m.gguf", 2e-3}, {"model-q4_0.gguf", 2e-3}};
  for (const auto& [name, tol] : files) {
    INFO(name);
    std::shared_ptr<const io::GgufFile> file = io::GgufFile::open(kq256() / name);
    auto config = model::gguf_config(*file);
    auto decoded = model::gguf_weights(file, config, false);
    auto cpu = model::causal_lm_from_tensors(config, decoded.dense, {}, "decoded");
    auto cuda = model::gguf_model_load(kq256() / name, {torch::Device(torch::kCUDA, 0), torch::kFloat32});
    const double got = llama_cpp_style_perplexity(*cuda), want_cpu = llama_cpp_style_perplexity(*cpu);
    const double want = expected[name]["llama_perplexity"].get<double>();
    CAPTURE(got, want_cpu, want);
    CHECK(std::abs(got - want_cpu) / want_cpu < 1e-5);
    CHECK(std::abs(got - want) / want < tol);
  }
}

TEST_CASE("a GGUF model keeps quantized matrices as blocks on the CPU and matches its decoded twin", "[model][gguf]") {
  std::shared_ptr<const io::GgufFile> file = io::GgufFile::open(kq256() / "model-q4_k_m.gguf");
  auto config = model::gguf_config(*file);
  auto blocks = model::gguf_weights(file, config, true);
  auto decoded = model::gguf_weights(file, config, false);
  // Every linear matrix of the file is Q4_K or Q6_K: all 7 per layer stay blocks, and the embedding (which
  // is also the tied head).
  CHECK(blocks.blocks.size() == size_t(7 * config.num_hidden_layers + 1));
  CHECK(blocks.blocks.count("model.embed_tokens.weight"));
  CHECK(decoded.blocks.empty());
  auto a = model::causal_lm_from_tensors(config, blocks.dense, {}, "blocks", blocks.blocks);
  auto b = model::causal_lm_from_tensors(config, decoded.dense, {}, "decoded");
  CHECK(a->weight_bytes() < b->weight_bytes() / 3);  // ~4.5-6.6 bits against 32 per weight
  bool any_quantized = false;
  for (const auto* lin : a->linears()) any_quantized = any_quantized || lin->quantized();
  CHECK(any_quantized);
  // The same weights: block kernels (8-bit activations) against float32 products.
  c10::InferenceMode guard;
  auto tokens = torch::tensor({{1, 34, 200, 7, 99, 311, 2, 45}});
  auto pos = torch::arange(8).unsqueeze(0);
  auto la = a->forward(tokens, pos, {}, nullptr), lb = b->forward(tokens, pos, {}, nullptr);
  CHECK((la - lb).abs().max().item<double>() < 0.02 * lb.abs().max().item<double>());
  CHECK(torch::equal(la.argmax(-1), lb.argmax(-1)));
  // Decode with the cache through the one-row path equals the full forward's last position.
  auto cache = a->cache_new(1, 16);
  a->forward(tokens.narrow(1, 0, 7), pos.narrow(1, 0, 7), {}, &cache);
  auto step = a->forward(tokens.narrow(1, 7, 1), pos.narrow(1, 7, 1), {}, &cache)[0][0];
  CHECK(torch::allclose(step, la[0][7], 1e-4, 1e-4));
}

TEST_CASE("a GGUF model keeps F16 and BF16 matrices 16-bit on the CPU and matches its decoded twin", "[model][gguf]") {
  for (const char* name : {"model-f16.gguf", "model-bf16.gguf"}) {
    INFO(name);
    std::shared_ptr<const io::GgufFile> file = io::GgufFile::open(kq256() / name);
    auto config = model::gguf_config(*file);
    auto blocks = model::gguf_weights(file, config, true, true);
    auto decoded = model::gguf_weights(file, config, false);
    CHECK(blocks.blocks.size() == size_t(7 * config.num_hidden_layers + 1));  // every matrix; 1-D tensors are F32
    auto a = model::causal_lm_from_tensors(config, blocks.dense, {}, "blocks", blocks.blocks);
    auto b = model::causal_lm_from_tensors(config, decoded.dense, {}, "decoded");
    CHECK(a->weight_bytes() * 10 < b->weight_bytes() * 6);  // 2 bytes per weight against 4
    c10::InferenceMode guard;
    const int64_t T = 24;  // more rows than the row kernels take (16 at most): widened chunks through sgemm
    auto tokens = (torch::arange(T) * 37 % 300 + 1).unsqueeze(0);
    auto pos = torch::arange(T).unsqueeze(0);
    auto la = a->forward(tokens, pos, {}, nullptr), lb = b->forward(tokens, pos, {}, nullptr);
    CHECK(torch::allclose(la, lb, 1e-5, 1e-5));  // the same float32 weights, the same kind of product
    // Decode steps and a short prompt: the 16-bit row kernels (float32 sums in another order).
    auto cache = a->cache_new(1, T);
    a->forward(tokens.narrow(1, 0, T - 1), pos.narrow(1, 0, T - 1), {}, &cache);
    auto step = a->forward(tokens.narrow(1, T - 1, 1), pos.narrow(1, T - 1, 1), {}, &cache)[0][0];
    CHECK(torch::allclose(step, lb[0][T - 1], 1e-4, 1e-4));
    auto short_a = a->forward(tokens.narrow(1, 0, 8), pos.narrow(1, 0, 8), {}, nullptr);
    CHECK(torch::allclose(short_a, lb.narrow(1, 0, 8), 1e-4, 1e-4));
    CHECK_FALSE(torch::equal(short_a, la.narrow(1, 0, 8)));  // not the sgemm path
  }
}

TEST_CASE("gguf_weights' kernel copies of the q/k matrices hold the same rows as the reordered blocks",
          "[model][gguf]") {
  for (const char* name : {"model-q4_0.gguf", "model-q4_k_m.gguf"}) {
    INFO(name);
    std::shared_ptr<const io::GgufFile> file = io::GgufFile::open(kq256() / name);
    auto config = model::gguf_config(*file);
    auto plain = model::gguf_weights(file, config, true);
    auto copied = model::gguf_weights(file, config, true, true);
    REQUIRE(copied.blocks.size() == plain.blocks.size());
    size_t kernel_copies = 0;
    for (const auto& [hf, b] : copied.blocks) {
      INFO(hf);
      const bool qk = hf.find("q_proj") != std::string::npos || hf.find("k_proj") != std::string::npos;
      CHECK(b.kernel_copy == qk);
      CHECK_FALSE(plain.blocks.at(hf).kernel_copy);
      kernel_copies += b.kernel_copy;
      auto x = torch::empty({b.rows, b.in}), y = torch::empty({b.rows, b.in});
      b.decode_rows(0, b.rows, x.data_ptr<float>());
      plain.blocks.at(hf).decode_rows(0, b.rows, y.data_ptr<float>());
      CHECK(torch::equal(x, y));
      // A kernel copy is not copied again.
      if (b.kernel_copy) CHECK(b.copied_for_kernels().data == b.data);
    }
    CHECK(kernel_copies == size_t(2 * config.num_hidden_layers));
  }
}

TEST_CASE("LoRA adapters apply on top of block weights", "[model][gguf][lora]") {
  std::shared_ptr<const io::GgufFile> file = io::GgufFile::open(kq256() / "model-q8_0.gguf");
  auto config = model::gguf_config(*file);
  auto blocks = model::gguf_weights(file, config, true);
  auto decoded = model::gguf_weights(file, config, false);
  auto a = model::causal_lm_from_tensors(config, blocks.dense, {}, "blocks", blocks.blocks);
  auto b = model::causal_lm_from_tensors(config, decoded.dense, {}, "decoded");
  model::LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.targets = {model::LoraTarget::kQ, model::LoraTarget::kV, model::LoraTarget::kGate, model::LoraTarget::kDown};
  auto adapter = model::LoraAdapter::create(config, lc, 3);
  torch::manual_seed(4);
  for (auto& p : adapter.parameters()) p.copy_(torch::randn(p.sizes()) * 0.05);
  model::ForwardOptions with;
  with.adapters = {&adapter};
  c10::InferenceMode guard;
  auto tokens = torch::tensor({{1, 34, 200, 7, 99}});
  auto pos = torch::arange(5).unsqueeze(0);
  // The adapter's effect (with - without) is the same on block and decoded weights: the deltas are float32
  // products of the layer inputs, which differ only by the base's 8-bit activation rounding.
  auto effect_a = a->forward(tokens, pos, {}, nullptr, with) - a->forward(tokens, pos, {}, nullptr, false);
  auto effect_b = b->forward(tokens, pos, {}, nullptr, with) - b->forward(tokens, pos, {}, nullptr, false);
  CHECK(effect_b.abs().max().item<double>() > 1e-2);
  CHECK((effect_a - effect_b).abs().max().item<double>() < 0.05 * effect_b.abs().max().item<double>());
}

TEST_CASE("gradients flow through block weights to the adapter, never to the base", "[model][gguf][lora]") {
  auto m = model::gguf_model_load(kq256() / "model-q4_0.gguf");
  auto adapter = model::LoraAdapter::create(m->config(), model::LoraConfig{}, 3);
  for (auto& p : adapter.parameters()) p.set_requires_grad(true);
  model::ForwardOptions o;
  o.adapters = {&adapter};
  o.training = true;
  auto logits = m->forward(torch::tensor({{1, 2, 3}}), torch::arange(3).unsqueeze(0), {}, nullptr, o);
  logits.logsumexp(-1).sum().backward();
  // B starts at zero, so A's gradient is zero; B's is not (tests/model/test_qlora.cpp checks the values).
  double b_norm = 0;
  for (int64_t l = 0; l < m->config().num_hidden_layers; ++l)
    b_norm += adapter.find(l, model::LoraTarget::kQ)->B.grad().norm().item<double>();
  CHECK(b_norm > 0);
  for (const auto* lin : m->linears()) CHECK(lin->quantized());
}

TEST_CASE("GGUF models that hearth cannot run are refused naming the key", "[model][gguf]") {
  auto file = io::GgufFile::open(kq256() / "model-q8_0.gguf");
  std::vector<io::GgufKv> kv = file->metadata();
  for (auto& e : kv)
    if (e.key == "general.architecture") e.value = io::GgufValue::string("gpt2");
  std::vector<io::GgufTensorSource> tensors;
  for (const auto& t : file->tensors()) tensors.push_back({t.name, t.dims, t.type, t.data, {}});
  auto path = fs::temp_directory_path() / fmt::format("hearth-gguf-arch-{}.gguf", ::getpid());
  io::gguf_write(path, kv, tensors);
  CHECK_THROWS_WITH(model::gguf_model_load(path),
                    Catch::Matchers::Contains("general.architecture") && Catch::Matchers::Contains("gpt2"));
  fs::remove(path);
}

TEST_CASE("a GGUF's end-of-turn and end-of-message tokens end generation as EOS does", "[model][gguf]") {
  // llama.cpp stops at every end-of-generation token (llama_vocab_is_eog): EOS, and the eot/eom ids of a chat
  // model whose EOS is another token (ChatML's <|im_end|>, Llama 3's <|eot_id|> / <|eom_id|>). The config's
  // eos_token_id list — hearth's stop ids — holds them, as generation_config.json would for the folder.
  auto file = io::GgufFile::open(kq256() / "model-q8_0.gguf");
  CHECK(model::gguf_config(*file).eos_token_id == std::vector<int64_t>{2});
  std::vector<io::GgufKv> kv = file->metadata();
  kv.push_back({"tokenizer.ggml.eot_token_id", io::GgufValue::u32(7)});
  kv.push_back({"tokenizer.ggml.eom_token_id", io::GgufValue::u32(2)});  // the same as EOS: listed once
  std::vector<io::GgufTensorSource> tensors;
  for (const auto& t : file->tensors()) tensors.push_back({t.name, t.dims, t.type, t.data, {}});
  auto path = fs::temp_directory_path() / fmt::format("hearth-gguf-eot-{}.gguf", ::getpid());
  io::gguf_write(path, kv, tensors);
  CHECK(model::gguf_config(*io::GgufFile::open(path)).eos_token_id == std::vector<int64_t>{2, 7});
  fs::remove(path);
}
