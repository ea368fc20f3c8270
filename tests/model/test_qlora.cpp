// QLoRA: LoRA trained through a base kept as ggml blocks. The torch-op block decoder (the GPU path) equals lib/quant's
// scalar decoder bit for bit on llama.cpp's files; LoRA gradients through block weights equal central finite
// differences and the gradients through the same weights decoded to float32 (the "tolerance of the format":
// the training forward multiplies by the decoded weights, so the two agree to float32 rounding); dX = dY·W from the
// blocks against a float64 product; quantize_base's blocks equal llama-quantize's (tests/fixtures/kq256).
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "kq256.h"
#include "model/block_decode.h"
#include "model/causal_lm.h"
#include "model/gguf_model.h"
#include "model/lora.h"
#include "model/quantize_base.h"
#include "quant/codec.h"
#include "test_paths.h"

using namespace hearth;
namespace fs = std::filesystem;

namespace {

model::LoraConfig all_targets() {
  model::LoraConfig c;
  c.r = 4;
  c.alpha = 8;
  c.targets = {model::LoraTarget::kQ,    model::LoraTarget::kK,  model::LoraTarget::kV,   model::LoraTarget::kO,
               model::LoraTarget::kGate, model::LoraTarget::kUp, model::LoraTarget::kDown};
  return c;
}

// An adapter with non-zero B (as after training) whose weights take gradients.
model::LoraAdapter trained(const model::ModelConfig& c, uint64_t seed) {
  auto a = model::LoraAdapter::create(c, all_targets(), seed);
  torch::manual_seed(static_cast<int64_t>(seed));
  for (auto& p : a.parameters()) {
    p.copy_(torch::randn(p.sizes()) * 0.05);
    p.set_requires_grad(true);
  }
  return a;
}

// A model of a kq256 GGUF file: its quantized matrices as blocks, or all decoded to float32.
std::unique_ptr<model::CausalLM> kq256_model(const std::string& file, bool blocks) {
  std::shared_ptr<const io::GgufFile> f = io::GgufFile::open(test::kq256_dir() / file);
  auto config = model::gguf_config(*f);
  auto w = model::gguf_weights(f, config, blocks);
  return model::causal_lm_from_tensors(config, w.dense, {}, file, w.blocks);
}

const std::vector<int64_t> kIds = {1, 34, 200, 7, 99, 311, 2, 45, 17, 260};

// sum(logits · probe): a scalar that depends on every logit.
torch::Tensor probe_loss(const model::CausalLM& m, const model::LoraAdapter& a, const torch::Tensor& probe,
                         bool checkpoint_layers = false) {
  model::ForwardOptions o;
  o.adapters = {&a};
  o.checkpoint_layers = checkpoint_layers;
  const auto T = static_cast<int64_t>(kIds.size());
  return (m.forward(torch::tensor(kIds).unsqueeze(0), torch::arange(T).unsqueeze(0), {}, nullptr, o) * probe).sum();
}

std::vector<torch::Tensor> lora_grads(const model::CausalLM& m, model::LoraAdapter& a, const torch::Tensor& probe,
                                      bool checkpoint_layers = false) {
  for (auto& p : a.parameters()) p.mutable_grad() = torch::Tensor();
  probe_loss(m, a, probe, checkpoint_layers).backward();
  std::vector<torch::Tensor> out;
  for (const auto& p : a.parameters()) out.push_back(p.grad().clone());
  return out;
}

}  // namespace

TEST_CASE("the torch-op block decoder equals lib/quant's decoder bit for bit", "[model][qlora]") {
  // llama.cpp's own blocks: every Q8_0, Q4_0, Q4_K and Q6_K tensor of the kq256 files.
  int checked = 0;
  for (const std::string file : {"model-q8_0.gguf", "model-q4_0.gguf", "model-q4_k_m.gguf"}) {
    auto f = io::GgufFile::open(test::kq256_dir() / file);
    for (const auto& t : f->tensors()) {
      if (!model::blocks_decodable(t.type) || t.dims.size() != 2) continue;
      INFO(file << " " << t.name << " " << quant::ggml_type_name(t.type));
      const auto shape = t.shape();
      auto bytes = torch::from_blob(const_cast<unsigned char*>(t.data),
                                    {shape[0], static_cast<int64_t>(t.nbytes) / shape[0]}, torch::kUInt8);
      auto want = torch::from_blob(test::dequantize_all(t).data(), shape, torch::kFloat32).clone();
      CHECK(torch::equal(model::blocks_decode(t.type, bytes, shape[1]), want));
      ++checked;
    }
  }
  CHECK(checked > 20);
  // Blocks hearth quantized from wide-ranged values (negative maxima, zeros, tiny scales), each type.
  torch::manual_seed(5);
  auto w = torch::randn({8, 512}) * torch::logspace(-6, 2, 8).unsqueeze(1);
  w[3].zero_();
  for (auto type : {quant::GgmlType::kQ8_0, quant::GgmlType::kQ4_0, quant::GgmlType::kQ4_K, quant::GgmlType::kQ6_K}) {
    INFO(quant::ggml_type_name(type));
    const auto b = model::Linear::Blocks::quantized(w, type);
    auto want = torch::empty({8, 512});
    quant::dequantize(type, b.data, want.data_ptr<float>(), w.numel());
    auto bytes = torch::from_blob(const_cast<uint8_t*>(b.data), {8, static_cast<int64_t>(b.row_bytes())},
                                  torch::kUInt8);
    CHECK(torch::equal(model::blocks_decode(type, bytes, 512), want));
  }
  CHECK_THROWS_WITH(model::blocks_decode(quant::GgmlType::kQ5_K, torch::zeros({1, 176}, torch::kUInt8), 256),
                    Catch::Matchers::Contains("Q5_K"));
  CHECK_THROWS_WITH(model::blocks_decode(quant::GgmlType::kQ8_0, torch::zeros({1, 33}, torch::kUInt8), 32),
                    Catch::Matchers::Contains("[rows, 34]"));
}

TEST_CASE("LoRA gradients through a quantized base equal central finite differences", "[model][qlora]") {
  for (const std::string file : {"model-q4_0.gguf", "model-q4_k_m.gguf"}) {
    INFO(file);
    auto m = kq256_model(file, true);
    auto a = trained(m->config(), 9);
    torch::manual_seed(0);
    auto probe = torch::randn({1, static_cast<int64_t>(kIds.size()), m->config().vocab_size});
    probe_loss(*m, a, probe).backward();
    struct Pick {
      int64_t layer;
      model::LoraTarget t;
      bool is_a;
      int64_t i, j;
    };
    for (Pick pk : {Pick{0, model::LoraTarget::kQ, true, 1, 3}, Pick{1, model::LoraTarget::kV, false, 5, 2},
                    Pick{0, model::LoraTarget::kDown, false, 7, 0}, Pick{1, model::LoraTarget::kGate, true, 2, 11},
                    Pick{0, model::LoraTarget::kUp, false, 100, 1}}) {
      auto* pair = a.find(pk.layer, pk.t);
      auto& w = pk.is_a ? pair->A : pair->B;
      const double analytic = w.grad()[pk.i][pk.j].item<double>();
      // The loss is evaluated as training evaluates it (autograd on): the product of the decoded weights.
      auto at = [&](double v) {
        {
          torch::NoGradGuard g;
          w[pk.i][pk.j] = v;
        }
        return probe_loss(*m, a, probe).item<double>();
      };
      const double eps = 1e-2, orig = w[pk.i][pk.j].item<double>();
      const double numeric = (at(orig + eps) - at(orig - eps)) / (2 * eps);
      at(orig);
      INFO(model::lora_target_name(pk.t) << (pk.is_a ? " A" : " B") << " analytic " << analytic << " numeric "
                                         << numeric);
      CHECK(std::abs(analytic) > 1e-3);  // a gradient worth comparing
      CHECK(analytic == Approx(numeric).epsilon(0.02).margin(2e-3));
    }
    for (const auto* lin : m->linears()) CHECK_FALSE((lin->weight().defined() && lin->weight().requires_grad()));
  }
}

TEST_CASE("LoRA gradients through block weights equal those through the decoded weights", "[model][qlora]") {
  for (const std::string file : {"model-q8_0.gguf", "model-q4_0.gguf", "model-q4_k_m.gguf"}) {
    INFO(file);
    auto blocks = kq256_model(file, true), dense = kq256_model(file, false);
    bool any_quantized = false;
    for (const auto* lin : blocks->linears()) any_quantized = any_quantized || lin->quantized();
    REQUIRE(any_quantized);
    auto a = trained(blocks->config(), 4);
    torch::manual_seed(1);
    auto probe = torch::randn({1, static_cast<int64_t>(kIds.size()), blocks->config().vocab_size});
    auto want = lora_grads(*dense, a, probe);
    auto got = lora_grads(*blocks, a, probe);
    auto recomputed = lora_grads(*blocks, a, probe, /*checkpoint_layers=*/true);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("parameter " << i);
      CHECK(want[i].abs().max().item<double>() > 0);
      CHECK(torch::allclose(got[i], want[i], 1e-4, 1e-6));
      CHECK(torch::equal(recomputed[i], got[i]));  // gradient checkpointing: same graph, same numbers
    }
  }
}

TEST_CASE("bfloat16 training through block weights follows the float32 gradients", "[model][qlora]") {
  std::shared_ptr<const io::GgufFile> f = io::GgufFile::open(test::kq256_dir() / "model-q8_0.gguf");
  auto config = model::gguf_config(*f);
  auto w = model::gguf_weights(f, config, true);
  auto f32 = model::causal_lm_from_tensors(config, w.dense, {}, "f32", w.blocks);
  auto bf16 = model::causal_lm_from_tensors(config, w.dense, {torch::kCPU, torch::kBFloat16}, "bf16", w.blocks);
  auto a = trained(config, 6);
  torch::manual_seed(2);
  auto probe = torch::randn({1, static_cast<int64_t>(kIds.size()), config.vocab_size});
  auto want = lora_grads(*f32, a, probe), got = lora_grads(*bf16, a, probe);
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("parameter " << i);
    CHECK(got[i].scalar_type() == torch::kFloat32);  // LoRA weights and their gradients stay float32
    CHECK((got[i] - want[i]).norm().item<double>() < 0.05 * want[i].norm().item<double>());
  }
}

TEST_CASE("a block Linear's backward is dY·W of the decoded weight, on host blocks and torch-decoded ones",
          "[model][qlora]") {
  torch::manual_seed(3);
  auto w1 = torch::randn({40, 256}) * 0.1, w2 = torch::randn({24, 256}) * 0.1;
  const auto b1 = model::Linear::Blocks::quantized(w1, quant::GgmlType::kQ4_K);
  const auto b2 = model::Linear::Blocks::quantized(w2, quant::GgmlType::kQ4_K);
  const std::vector<model::Linear::Part> parts = {{model::LoraTarget::kGate, 40}, {model::LoraTarget::kUp, 24}};
  auto bias = torch::randn({64});
  model::Linear host({b1, b2}, bias, parts);
  // The GPU path (blocks as a uint8 tensor, decoded with torch ops) on the CPU.
  model::Linear device({b1.to_device(torch::kCPU), b2.to_device(torch::kCPU)}, bias, parts);
  auto W = host.dense().to(torch::kFloat64);  // [64, 256]
  CHECK(torch::equal(device.dense(), host.dense()));
  CHECK(torch::equal(host.decoded_rows(30, 20), host.dense().narrow(0, 30, 20)));  // across the two parts
  CHECK(torch::equal(device.decoded_rows(30, 20), host.dense().narrow(0, 30, 20)));
  auto probe = torch::randn({2, 5, 64});
  for (const model::Linear* lin : {&host, &device}) {
    auto x = torch::randn({2, 5, 256}).requires_grad_(true);
    auto y = lin->forward(x);
    auto want_y = torch::matmul(x.detach().to(torch::kFloat64), W.t()) + bias.to(torch::kFloat64);
    CHECK(torch::allclose(y.to(torch::kFloat64), want_y, 1e-5, 1e-5));
    (y * probe).sum().backward();
    auto want_dx = torch::matmul(probe.to(torch::kFloat64), W);  // dX = dY·W
    CHECK(torch::allclose(x.grad().to(torch::kFloat64), want_dx, 1e-5, 1e-5));
  }
  // Without autograd, few rows still go through the 8-bit-activation kernels (inference unchanged): close, not equal.
  torch::NoGradGuard g;
  auto x = torch::randn({1, 256});
  auto y_kernels = host.forward(x), y_decoded = device.forward(x);
  CHECK_FALSE(torch::equal(y_kernels, y_decoded));
  INFO("kernels - decoded: " << (y_kernels - y_decoded).abs().max().item<double>() << " of "
                             << y_decoded.abs().max().item<double>());
  CHECK((y_kernels - y_decoded).abs().max().item<double>() < 0.02 * y_decoded.abs().max().item<double>());
  // Embedding rows from torch-decoded blocks.
  model::Linear embed({b1.to_device(torch::kCPU)}, {});
  model::Linear embed_host({b1}, {});
  auto ids = torch::tensor({{3, 0, 39}});
  CHECK(torch::equal(embed.rows(ids, torch::kFloat32), embed_host.rows(ids, torch::kFloat32)));
}

TEST_CASE("quantize_base makes llama-quantize's blocks and keeps rows that are not whole blocks dense",
          "[model][qlora]") {
  CHECK(model::quantize_base_parse("Q4_K") == quant::GgmlType::kQ4_K);
  CHECK_FALSE(model::quantize_base_parse("q5_k").has_value());
  for (auto [type, file] :
       {std::pair{quant::GgmlType::kQ8_0, "model-q8_0.gguf"}, std::pair{quant::GgmlType::kQ4_0, "model-q4_0.gguf"}}) {
    INFO(file);
    auto q = model::weights_quantize(test::kq256_dir() / "hf", type);
    std::shared_ptr<const io::GgufFile> f = io::GgufFile::open(test::kq256_dir() / file);
    auto config = model::gguf_config(*f);
    auto ref = model::gguf_weights(f, config, true);  // blocks in HF row order
    CHECK(q.blocks.size() == size_t(7 * config.num_hidden_layers + 1));
    CHECK(q.kept_dense.empty());
    int same_type = 0;
    for (const auto& [name, b] : q.blocks) {
      INFO(name);
      REQUIRE(ref.blocks.count(name));
      const auto& r = ref.blocks.at(name);
      if (r.type != type) continue;  // llama-quantize's mix keeps some tensors in another type
      ++same_type;
      REQUIRE(r.rows * r.row_bytes() == b.rows * b.row_bytes());
      CHECK(std::memcmp(r.data, b.data, b.rows * b.row_bytes()) == 0);
    }
    CHECK(same_type >= 7 * config.num_hidden_layers);
    double bytes = 0;
    for (const auto& [name, b] : q.blocks) bytes += double(b.rows * b.row_bytes());
    for (const auto& [name, t] : q.dense) bytes += double(t.numel()) * 4;
    CHECK(model::quantized_base_bytes(config, type, 4) == bytes);
  }
  // stories260K: FFN 172 is not whole blocks of 32, so each layer's down_proj stays dense.
  auto s = model::weights_quantize(test::stories_dir(), quant::GgmlType::kQ8_0);
  auto config = model::config_load(test::stories_dir());
  CHECK(s.kept_dense.size() == size_t(config.num_hidden_layers));
  for (const auto& n : s.kept_dense) CHECK(n.find("down_proj") != std::string::npos);
  auto m = model::causal_lm_load_quantized(test::stories_dir(), {}, quant::GgmlType::kQ8_0);
  int quantized = 0;
  for (const auto* lin : m->linears()) quantized += lin->quantized();
  CHECK(quantized == 3 * config.num_hidden_layers + 1);  // qkv, o, gate_up per layer, and the tied embedding/head
}

TEST_CASE("QLoRA on CUDA keeps the blocks on the GPU and gives the CPU's gradients", "[model][qlora][gpu]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  std::shared_ptr<const io::GgufFile> f = io::GgufFile::open(test::kq256_dir() / "model-q4_k_m.gguf");
  auto config = model::gguf_config(*f);
  auto w = model::gguf_weights(f, config, true);
  model::LoadOptions cuda{torch::kCUDA, torch::kFloat32};
  cuda.blocks_on_device = true;
  auto gpu = model::causal_lm_from_tensors(config, w.dense, cuda, "gpu", w.blocks);
  auto cpu = model::causal_lm_from_tensors(config, w.dense, {}, "cpu", w.blocks);
  for (const auto* lin : gpu->linears()) {
    CHECK(lin->quantized());
    CHECK(lin->device().is_cuda());
  }
  auto a = trained(config, 4);
  auto a_gpu = model::LoraAdapter::create(config, all_targets(), 4, torch::kCUDA);
  {
    torch::NoGradGuard g;
    auto src = a.parameters(), dst = a_gpu.parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  for (auto& p : a_gpu.parameters()) p.set_requires_grad(true);
  torch::manual_seed(1);
  auto probe = torch::randn({1, static_cast<int64_t>(kIds.size()), config.vocab_size});
  auto want = lora_grads(*cpu, a, probe);
  auto got = lora_grads(*gpu, a_gpu, probe.to(torch::kCUDA));
  for (size_t i = 0; i < got.size(); ++i) CHECK(torch::allclose(got[i].cpu(), want[i], 1e-3, 1e-5));
}

TEST_CASE("a forward with targets gives the cross-entropy of its logits and the same LoRA gradients (dense and "
          "block bases)",
          "[model][qlora]") {
  for (bool blocks : {false, true}) {
    INFO((blocks ? "blocks" : "decoded to float32"));
    auto m = kq256_model("model-q4_k_m.gguf", blocks);
    auto a = trained(m->config(), 4);
    const auto T = static_cast<int64_t>(kIds.size());
    auto tokens = torch::tensor(kIds).unsqueeze(0), positions = torch::arange(T).unsqueeze(0);
    auto targets = torch::cat({tokens.narrow(1, 1, T - 1), torch::full({1, 1}, -100, torch::kInt64)}, 1);
    model::ForwardOptions o;
    o.adapters = {&a};
    auto grads = [&](const torch::Tensor& loss) {
      for (auto& p : a.parameters()) p.mutable_grad() = torch::Tensor();
      loss.backward();
      std::vector<torch::Tensor> out;
      for (const auto& p : a.parameters()) out.push_back(p.grad().clone());
      return out;
    };
    auto logits = m->forward(tokens, positions, {}, nullptr, o);  // [1, T, V]
    auto plain = at::cross_entropy_loss(logits.view({T, -1}), targets.view({T}), {}, at::Reduction::Sum, -100, 0.0);
    const double plain_value = plain.item<double>();
    auto want = grads(plain);
    o.targets = targets;
    auto fused = m->forward(tokens, positions, {}, nullptr, o);
    CHECK(fused.dim() == 0);
    CHECK(fused.item<double>() == Approx(plain_value).epsilon(1e-6));
    auto got = grads(fused);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i)  // float32 rounding of sums in another order, relative to the largest
      CHECK(torch::allclose(got[i], want[i], 1e-4, 1e-5 * want[i].abs().max().item<double>()));
    o.last_only = true;
    CHECK_THROWS_WITH(m->forward(tokens, positions, {}, nullptr, o), Catch::Matchers::Contains("last_only"));
  }
}
