// The GGUF tensor plan without weights: names and order, the q/k row order, and the quantization mix for configs
// kq256 cannot exercise (many layers, row lengths that are not multiples of 256, untied heads, 70B, Qwen, llama3
// RoPE). Expected types are worked out by hand from llama.cpp's rules as docs/quantize.md states them.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include <torch/torch.h>

#include "convert/gguf_model_write.h"
#include "convert/tensor_mix.h"
#include "core/error.h"
#include "model/config.h"
#include "model/gguf_names.h"
#include "model/rope.h"

using namespace hearth;
using namespace hearth::convert;
using quant::GgmlType;

namespace {

model::ModelConfig config_of(const nlohmann::json& j = nlohmann::json::object()) {
  nlohmann::json base = {{"model_type", "llama"},       {"vocab_size", 1024},
                         {"hidden_size", 256},          {"intermediate_size", 512},
                         {"num_hidden_layers", 32},     {"num_attention_heads", 4},
                         {"num_key_value_heads", 2},    {"max_position_embeddings", 2048},
                         {"tie_word_embeddings", false}};
  base.update(j);
  return model::config_parse(base, "test config");
}

// GGUF name -> planned tensor.
std::map<std::string, PlannedTensor> plan_map(const model::ModelConfig& c, QuantType t) {
  std::map<std::string, PlannedTensor> m;
  for (auto& p : gguf_model_plan(c, t)) m[p.name.gguf] = p;
  return m;
}

std::string layer_name(int l, const char* rest) { return "blk." + std::to_string(l) + "." + rest; }

}  // namespace

TEST_CASE("GGUF tensors come in llama-quantize's order with llama.cpp's names", "[convert][mix]") {
  auto c = config_of({{"num_hidden_layers", 11}, {"tie_word_embeddings", false}});
  auto names = model::gguf_tensor_names(c);
  REQUIRE(names.size() == 3 + 11 * 9);
  // Outside the blocks first, by name ('.' sorts before '_'); then blocks by number (10 after 9), names sorted.
  CHECK(names[0].gguf == "output.weight");
  CHECK(names[0].hf == "lm_head.weight");
  CHECK(names[1].gguf == "output_norm.weight");
  CHECK(names[2].gguf == "token_embd.weight");
  const std::vector<std::string> block = {"attn_k.weight",   "attn_norm.weight", "attn_output.weight",
                                          "attn_q.weight",   "attn_v.weight",    "ffn_down.weight",
                                          "ffn_gate.weight", "ffn_norm.weight",  "ffn_up.weight"};
  for (int l = 0; l < 11; ++l)
    for (size_t i = 0; i < block.size(); ++i) CHECK(names[3 + l * 9 + i].gguf == layer_name(l, block[i].c_str()));
  CHECK(names[3 + 3].hf == "model.layers.0.self_attn.q_proj.weight");
  CHECK(names[3 + 3].shape == std::vector<int64_t>{256, 256});
  CHECK(names[3 + 3].qk_heads == 4);
  CHECK(names[3 + 0].qk_heads == 2);                            // attn_k: the KV heads
  CHECK(names[3 + 5].shape == std::vector<int64_t>{256, 512});  // ffn_down: [C, F]
}

TEST_CASE("Qwen tensors: biases, q/k norms, no q/k interleaving", "[convert][mix]") {
  auto q2 = config_of({{"model_type", "qwen2"}, {"num_hidden_layers", 1}});
  std::set<std::string> n2;
  for (auto& n : model::gguf_tensor_names(q2)) {
    n2.insert(n.gguf);
    CHECK(n.qk_heads == 0);
  }
  CHECK(model::gguf_arch(q2) == "qwen2");
  CHECK(n2.count("blk.0.attn_q.bias"));
  CHECK(n2.count("blk.0.attn_k.bias"));
  CHECK(n2.count("blk.0.attn_v.bias"));
  CHECK_FALSE(n2.count("blk.0.attn_output.bias"));
  auto q3 = config_of({{"model_type", "qwen3"}, {"num_hidden_layers", 1}, {"head_dim", 128}});
  std::map<std::string, model::GgufTensorName> n3;
  for (auto& n : model::gguf_tensor_names(q3)) n3[n.gguf] = n;
  CHECK(model::gguf_arch(q3) == "qwen3");
  REQUIRE(n3.count("blk.0.attn_q_norm.weight"));
  CHECK(n3["blk.0.attn_q_norm.weight"].shape == std::vector<int64_t>{128});
  CHECK(n3["blk.0.attn_q.weight"].shape == std::vector<int64_t>{4 * 128, 256});
  CHECK(n3["blk.0.attn_output.weight"].shape == std::vector<int64_t>{256, 4 * 128});
  CHECK(model::gguf_arch(config_of({{"model_type", "mistral"}})) == "llama");
}

TEST_CASE("q/k rows: GGUF row 2j+i of a head is HF row i*hd/2 + j, and back", "[convert][mix]") {
  // 2 heads of hd = 4, rows numbered by their HF index.
  auto w = torch::arange(8, torch::kFloat32).unsqueeze(1).repeat({1, 3});
  auto g = model::qk_rows_to_gguf(w, 2);
  const std::vector<float> want = {0, 2, 1, 3, 4, 6, 5, 7};  // head 0: j=0 -> rows 0,2; j=1 -> rows 1,3
  for (int r = 0; r < 8; ++r) CHECK(g[r][0].item<float>() == want[r]);
  CHECK(torch::equal(model::qk_rows_to_hf(g, 2), w));
  auto bias = torch::arange(8, torch::kFloat32);
  CHECK(torch::equal(model::qk_rows_to_gguf(bias, 2), torch::tensor(want)));
}

TEST_CASE("q4_k_m: head Q6_K, attn_v and ffn_down Q6_K on use_more_bits layers", "[convert][mix]") {
  auto m = plan_map(config_of(), QuantType::kQ4_K_M);  // 32 layers, untied
  CHECK(m["output.weight"].type == GgmlType::kQ6_K);
  CHECK(m["token_embd.weight"].type == GgmlType::kQ4_K);  // untied: the base type
  CHECK(m["output_norm.weight"].type == GgmlType::kF32);
  // use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2.
  const std::set<int> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  for (int l = 0; l < 32; ++l) {
    INFO("layer " << l);
    const GgmlType want = more.count(l) ? GgmlType::kQ6_K : GgmlType::kQ4_K;
    CHECK(m[layer_name(l, "attn_v.weight")].type == want);
    CHECK(m[layer_name(l, "ffn_down.weight")].type == want);
    for (const char* t : {"attn_q.weight", "attn_k.weight", "attn_output.weight", "ffn_gate.weight", "ffn_up.weight"})
      CHECK(m[layer_name(l, t)].type == GgmlType::kQ4_K);
    CHECK(m[layer_name(l, "attn_norm.weight")].type == GgmlType::kF32);
    CHECK_FALSE(m[layer_name(l, "attn_v.weight")].wanted);
  }
  auto tied = plan_map(config_of({{"tie_word_embeddings", true}}), QuantType::kQ4_K_M);
  CHECK(tied.count("output.weight") == 0);
  CHECK(tied["token_embd.weight"].type == GgmlType::kQ6_K);  // the tied embedding is the head
}

TEST_CASE("q8_0, q4_0, q6_k and the float types", "[convert][mix]") {
  auto tied = config_of({{"tie_word_embeddings", true}, {"num_hidden_layers", 2}});
  auto untied = config_of({{"num_hidden_layers", 2}});
  auto q8 = plan_map(untied, QuantType::kQ8_0);
  CHECK(q8["output.weight"].type == GgmlType::kQ8_0);
  CHECK(q8["blk.1.attn_v.weight"].type == GgmlType::kQ8_0);
  auto q4 = plan_map(untied, QuantType::kQ4_0);
  CHECK(q4["output.weight"].type == GgmlType::kQ6_K);
  CHECK(q4["token_embd.weight"].type == GgmlType::kQ4_0);
  CHECK(q4["blk.1.ffn_down.weight"].type == GgmlType::kQ4_0);  // no use_more_bits for q4_0
  CHECK(plan_map(tied, QuantType::kQ4_0)["token_embd.weight"].type == GgmlType::kQ6_K);
  CHECK(plan_map(tied, QuantType::kQ6_K)["token_embd.weight"].type == GgmlType::kQ6_K);
  for (auto [t, g] : {std::pair{QuantType::kF16, GgmlType::kF16}, std::pair{QuantType::kBF16, GgmlType::kBF16},
                      std::pair{QuantType::kF32, GgmlType::kF32}}) {
    for (auto& p : gguf_model_plan(tied, t)) {
      INFO(p.name.gguf);
      CHECK(p.type == (p.name.shape.size() == 2 ? g : GgmlType::kF32));
    }
  }
}

TEST_CASE("rows that are not whole blocks fall back as llama.cpp does", "[convert][mix]") {
  // Qwen2.5-0.5B's shapes: C = 896 (3.5 × 256), F = 4864 (19 × 256), 24 layers, tied.
  auto c = config_of({{"model_type", "qwen2"},
                      {"hidden_size", 896},
                      {"intermediate_size", 4864},
                      {"num_hidden_layers", 24},
                      {"num_attention_heads", 14},
                      {"num_key_value_heads", 2},
                      {"tie_word_embeddings", true},
                      {"vocab_size", 4096}});
  auto m = plan_map(c, QuantType::kQ4_K_M);
  CHECK(m["token_embd.weight"].type == GgmlType::kQ8_0);  // head with 896 % 256 != 0: Q8_0 by the head rule
  CHECK_FALSE(m["token_embd.weight"].wanted);
  CHECK(m["blk.5.attn_q.weight"].type == GgmlType::kQ5_0);
  CHECK(m["blk.5.attn_q.weight"].wanted == GgmlType::kQ4_K);
  CHECK(m["blk.5.ffn_up.weight"].type == GgmlType::kQ5_0);
  CHECK(m["blk.0.attn_v.weight"].type == GgmlType::kQ8_0);  // Q6_K (layer 0 gets more bits) -> Q8_0
  CHECK(m["blk.0.attn_v.weight"].wanted == GgmlType::kQ6_K);
  CHECK(m["blk.4.attn_v.weight"].type == GgmlType::kQ5_0);
  CHECK(m["blk.0.ffn_down.weight"].type == GgmlType::kQ6_K);  // rows of 4864 fit
  CHECK(m["blk.4.ffn_down.weight"].type == GgmlType::kQ4_K);
  CHECK(m["blk.4.attn_q.bias"].type == GgmlType::kF32);
  auto q6 = plan_map(c, QuantType::kQ6_K);
  CHECK(q6["blk.4.attn_q.weight"].type == GgmlType::kQ8_0);
  CHECK(q6["blk.4.ffn_down.weight"].type == GgmlType::kQ6_K);
  // A row of 48 fits no block type: F16 (llama.cpp refuses the file for q8_0/q4_0).
  auto odd = config_of(
      {{"hidden_size", 48}, {"num_attention_heads", 1}, {"num_key_value_heads", 1}, {"num_hidden_layers", 1}});
  for (auto t : {QuantType::kQ8_0, QuantType::kQ4_0, QuantType::kQ4_K_M}) {
    auto p = plan_map(odd, t);
    CHECK(p["blk.0.attn_q.weight"].type == GgmlType::kF16);
    CHECK(p["blk.0.attn_q.weight"].wanted);
    CHECK(p["blk.0.ffn_down.weight"].type != GgmlType::kF16);  // rows of 512 fit
  }
}

TEST_CASE("70B: attn_v that would be Q4_K gets Q5_K", "[convert][mix]") {
  auto llama70 = plan_map(config_of({{"num_hidden_layers", 80}}), QuantType::kQ4_K_M);  // 4 heads / 2 KV: GQA
  CHECK(llama70["blk.20.attn_v.weight"].type == GgmlType::kQ5_K);
  CHECK(llama70["blk.0.attn_v.weight"].type == GgmlType::kQ6_K);
  CHECK(llama70["blk.20.ffn_down.weight"].type == GgmlType::kQ4_K);
  auto mha = plan_map(config_of({{"num_hidden_layers", 80}, {"num_key_value_heads", 4}}), QuantType::kQ4_K_M);
  CHECK(mha["blk.20.attn_v.weight"].type == GgmlType::kQ4_K);  // llama.cpp calls this one 65B
  auto qwen3 = plan_map(config_of({{"model_type", "qwen3"}, {"num_hidden_layers", 80}}), QuantType::kQ4_K_M);
  CHECK(qwen3["blk.20.attn_v.weight"].type == GgmlType::kQ4_K);
}

TEST_CASE("llama3 RoPE scaling adds rope_freqs.weight, as llama.cpp's converter computes it", "[convert][mix]") {
  auto c = config_of({{"rope_theta", 500000.0},
                      {"head_dim", 64},
                      {"rope_scaling",
                       {{"rope_type", "llama3"},
                        {"factor", 8.0},
                        {"low_freq_factor", 1.0},
                        {"high_freq_factor", 4.0},
                        {"original_max_position_embeddings", 8192}}}});
  auto names = model::gguf_tensor_names(c);
  CHECK(names[2].gguf == "rope_freqs.weight");  // output, output_norm, rope_freqs, token_embd
  CHECK(names[2].hf.empty());
  CHECK(plan_map(c, QuantType::kQ4_K_M)["rope_freqs.weight"].type == GgmlType::kF32);
  auto f = gguf_rope_freqs(c);
  REQUIRE(f.sizes() == torch::IntArrayRef{32});
  // Independently: the factor is the ratio of unscaled to llama3-scaled inverse frequencies (hearth's own RoPE,
  // transformers' formula).
  auto plain = c;
  plain.rope_scaling = model::RopeScaling{};
  auto ratio = model::rope_inv_freq(plain) / model::rope_inv_freq(c);
  for (int i = 0; i < 32; ++i) CHECK(f[i].item<float>() == Approx(ratio[i].item<float>()).epsilon(1e-5));
  CHECK(f[0].item<float>() == 1.0f);   // shortest wavelength: kept
  CHECK(f[31].item<float>() == 8.0f);  // longest: divided by factor
  bool smoothed = false;
  for (int i = 0; i < 32; ++i) {
    const float v = f[i].item<float>();
    CHECK(v >= 1.0f);
    CHECK(v <= 8.0f);
    if (i > 0) CHECK(v >= f[i - 1].item<float>());
    smoothed |= v > 1.0f && v < 8.0f;
  }
  CHECK(smoothed);
}
