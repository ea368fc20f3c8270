// Llama-family variants the stories260K fixture does not cover (q/k/v bias, q/k norm, rope scaling, untied
// head, GQA ratios, explicit head_dim, sliding window), checked against values derived independently:
//  - a naive float64 reference written here (per-head loops, explicit K/V head repetition, RoPE by scalar
//    formula), following the transformers modeling code for each family;
//  - equivalences: GQA == MHA with repeated K/V heads; zero bias == no bias; llama3 rope == hand formula.
#include <catch2/catch.hpp>

#include <cmath>

#include <torch/types.h>

#include "core/error.h"
#include "model/causal_lm.h"
#include "model/config.h"
#include "model/rope.h"

using namespace hearth;
using TensorMap = std::map<std::string, torch::Tensor>;

namespace {

nlohmann::json base_config() {
  return {{"model_type", "llama"},       {"vocab_size", 61},
          {"hidden_size", 32},           {"intermediate_size", 40},
          {"num_hidden_layers", 2},      {"num_attention_heads", 4},
          {"num_key_value_heads", 2},    {"max_position_embeddings", 64},
          {"rms_norm_eps", 1e-5},        {"rope_theta", 10000.0},
          {"tie_word_embeddings", false}};
}

model::ModelConfig parse(const nlohmann::json& j) { return model::config_parse(j, "test config"); }

// RoPE inverse frequencies by the scalar formulas of transformers' rope_init functions.
std::vector<double> inv_freq_scalar(const model::ModelConfig& c) {
  std::vector<double> out;
  for (int64_t i = 0; i < c.head_dim; i += 2) {
    double f = 1.0 / std::pow(c.rope_theta, double(i) / c.head_dim);
    const auto& rs = c.rope_scaling;
    if (rs.rope_type == "linear") f /= rs.factor;
    if (rs.rope_type == "llama3") {
      double wavelen = 2 * M_PI / f;
      double low = rs.original_max_position_embeddings / rs.low_freq_factor;
      double high = rs.original_max_position_embeddings / rs.high_freq_factor;
      if (wavelen > low) {
        f = f / rs.factor;
      } else if (wavelen >= high) {
        double s = (rs.original_max_position_embeddings / wavelen - rs.low_freq_factor) /
                   (rs.high_freq_factor - rs.low_freq_factor);
        f = (1 - s) * f / rs.factor + s * f;
      }
    }
    out.push_back(f);
  }
  return out;
}

torch::Tensor d(const TensorMap& t, const std::string& name) { return t.at(name).to(torch::kFloat64); }

torch::Tensor rms(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return w * x / torch::sqrt(x.pow(2).mean(-1, true) + eps);
}

// x [T, hd] at positions 0..T-1: pairs (i, i + hd/2) rotated by angle pos·inv_freq[i].
torch::Tensor rope_scalar(const torch::Tensor& x, const std::vector<double>& inv_freq) {
  auto out = x.clone();
  const int64_t T = x.size(0), half = x.size(1) / 2;
  auto a = x.accessor<double, 2>();
  auto o = out.accessor<double, 2>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      double ang = double(float(t) * float(inv_freq[i]));
      o[t][i] = a[t][i] * std::cos(ang) - a[t][i + half] * std::sin(ang);
      o[t][i + half] = a[t][i + half] * std::cos(ang) + a[t][i] * std::sin(ang);
    }
  return out;
}

torch::Tensor linear(const torch::Tensor& x, const TensorMap& t, const std::string& name, bool bias) {
  auto y = x.matmul(d(t, name + ".weight").t());
  return bias ? y + d(t, name + ".bias") : y;
}

// Naive float64 forward of one sequence: ids -> logits [T, V].
torch::Tensor reference_forward(const model::ModelConfig& c, const TensorMap& t, const std::vector<int64_t>& ids) {
  const int64_t T = static_cast<int64_t>(ids.size()), hd = c.head_dim, G = c.n_group();
  auto inv_freq = inv_freq_scalar(c);
  auto x = d(t, "model.embed_tokens.weight").index_select(0, torch::tensor(ids, torch::kInt64));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    auto h = rms(x, d(t, p + "input_layernorm.weight"), c.rms_norm_eps);
    auto q = linear(h, t, p + "self_attn.q_proj", c.qkv_bias);
    auto k = linear(h, t, p + "self_attn.k_proj", c.qkv_bias);
    auto v = linear(h, t, p + "self_attn.v_proj", c.qkv_bias);
    std::vector<torch::Tensor> heads;
    for (int64_t head = 0; head < c.num_attention_heads; ++head) {
      int64_t kvh = head / G;  // the K/V head this query head shares
      auto qh = q.narrow(1, head * hd, hd), kh = k.narrow(1, kvh * hd, hd), vh = v.narrow(1, kvh * hd, hd);
      if (c.qk_norm) {
        qh = rms(qh, d(t, p + "self_attn.q_norm.weight"), c.rms_norm_eps);
        kh = rms(kh, d(t, p + "self_attn.k_norm.weight"), c.rms_norm_eps);
      }
      qh = rope_scalar(qh, inv_freq);
      kh = rope_scalar(kh, inv_freq);
      auto scores = qh.matmul(kh.t()) / std::sqrt(double(hd));  // [T, T]
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j < T; ++j) {
          bool allowed = j <= i && (!c.sliding_window || i - j < *c.sliding_window);
          if (!allowed) scores[i][j] = -INFINITY;
        }
      heads.push_back(torch::softmax(scores, -1).matmul(vh));
    }
    x = x + linear(torch::cat(heads, 1), t, p + "self_attn.o_proj", c.o_bias);
    auto h2 = rms(x, d(t, p + "post_attention_layernorm.weight"), c.rms_norm_eps);
    auto gate = linear(h2, t, p + "mlp.gate_proj", c.mlp_bias), up = linear(h2, t, p + "mlp.up_proj", c.mlp_bias);
    x = x + linear(gate * torch::sigmoid(gate) * up, t, p + "mlp.down_proj", c.mlp_bias);
  }
  x = rms(x, d(t, "model.norm.weight"), c.rms_norm_eps);
  auto head = c.tie_word_embeddings ? d(t, "model.embed_tokens.weight") : d(t, "lm_head.weight");
  return x.matmul(head.t());
}

torch::Tensor engine_logits(const model::ModelConfig& c, const TensorMap& t, const std::vector<int64_t>& ids) {
  auto m_owner = model::causal_lm_from_tensors(c, t, {}, "test");
  const model::CausalLM& m = *m_owner;
  auto T = static_cast<int64_t>(ids.size());
  return m.forward(torch::tensor(ids, torch::kInt64).unsqueeze(0), torch::arange(T).unsqueeze(0), {}, nullptr)[0];
}

const std::vector<int64_t> kIds = {3, 17, 42, 5, 60, 0, 23, 23, 9, 31, 12, 7};

void check_against_reference(const nlohmann::json& j) {
  c10::InferenceMode guard;
  auto c = parse(j);
  auto t = model::causal_lm_random_tensors(c, 1234);
  auto want = reference_forward(c, t, kIds);
  auto got = engine_logits(c, t, kIds).to(torch::kFloat64);
  // float32 engine vs float64 reference on logits of magnitude ~1
  CHECK((got - want).abs().max().item<double>() < 1e-4);
  // The KV cache path, token by token, agrees with the full forward.
  auto m_owner = model::causal_lm_from_tensors(c, t, {}, "test");
  const model::CausalLM& m = *m_owner;
  auto cache = m.cache_new(1, 16);
  for (size_t i = 0; i < kIds.size(); ++i) {
    auto step = m.forward(torch::full({1, 1}, kIds[i]), torch::full({1, 1}, int64_t(i)), {}, &cache)[0][0];
    CHECK((step.to(torch::kFloat64) - want[i]).abs().max().item<double>() < 1e-4);
  }
}

}  // namespace

TEST_CASE("Llama variants match a naive float64 reference (full forward and KV cache)", "[model]") {
  auto j = base_config();
  SECTION("llama, GQA 4:2, untied head") { check_against_reference(j); }
  SECTION("llama, MHA, tied head, attention_bias and mlp_bias") {
    j["num_key_value_heads"] = 4;
    j["tie_word_embeddings"] = true;
    j["attention_bias"] = true;
    j["mlp_bias"] = true;
    check_against_reference(j);
  }
  SECTION("llama, explicit head_dim != hidden/heads, MQA") {
    j["head_dim"] = 12;
    j["num_key_value_heads"] = 1;
    check_against_reference(j);
  }
  SECTION("llama 3.1 rope_scaling") {
    j["rope_theta"] = 500000.0;
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 16}};
    check_against_reference(j);
  }
  SECTION("linear rope_scaling") {
    j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    check_against_reference(j);
  }
  SECTION("qwen2: q/k/v bias, no o bias") {
    j["model_type"] = "qwen2";
    check_against_reference(j);
  }
  SECTION("qwen3: q/k RMSNorm, head_dim given") {
    j["model_type"] = "qwen3";
    j["head_dim"] = 16;
    check_against_reference(j);
  }
  SECTION("mistral: sliding window shorter than the sequence") {
    j["model_type"] = "mistral";
    j["sliding_window"] = 4;
    check_against_reference(j);
  }
}

TEST_CASE("GQA equals MHA with repeated K/V heads", "[model]") {
  c10::InferenceMode guard;
  auto j = base_config();
  auto gqa = parse(j);
  auto t = model::causal_lm_random_tensors(gqa, 7);
  j["num_key_value_heads"] = 4;
  auto mha = parse(j);
  TensorMap t2 = t;
  for (int64_t l = 0; l < gqa.num_hidden_layers; ++l)
    for (const char* w : {"k_proj", "v_proj"}) {
      std::string name = "model.layers." + std::to_string(l) + ".self_attn." + w + ".weight";
      // [KV·hd, C] -> [KV, hd, C] -> each KV head twice -> [H·hd, C]
      t2[name] = t[name].view({2, gqa.head_dim, -1}).repeat_interleave(2, 0).reshape({4 * gqa.head_dim, -1});
    }
  auto a = engine_logits(gqa, t, kIds), b = engine_logits(mha, t2, kIds);
  CHECK(torch::allclose(a, b, 1e-5, 1e-5));
}

TEST_CASE("zero bias equals no bias", "[model]") {
  c10::InferenceMode guard;
  auto j = base_config();
  auto plain = parse(j);
  auto t = model::causal_lm_random_tensors(plain, 11);
  j["model_type"] = "qwen2";
  auto qwen = parse(j);
  TensorMap t2 = t;
  for (int64_t l = 0; l < 2; ++l)
    for (const char* w : {"q_proj", "k_proj", "v_proj"}) {
      std::string p = "model.layers." + std::to_string(l) + ".self_attn." + w;
      t2[p + ".bias"] = torch::zeros({t[p + ".weight"].size(0)});
    }
  CHECK(torch::allclose(engine_logits(plain, t, kIds), engine_logits(qwen, t2, kIds), 1e-6, 1e-6));
  // and a non-zero bias changes the output (the bias is really applied)
  t2["model.layers.0.self_attn.v_proj.bias"] = torch::full({t2["model.layers.0.self_attn.v_proj.bias"].size(0)}, 0.5);
  CHECK_FALSE(torch::allclose(engine_logits(plain, t, kIds), engine_logits(qwen, t2, kIds), 1e-3, 1e-3));
}

TEST_CASE("integer weight tensors are refused by name, not cast to float", "[model]") {
  c10::InferenceMode guard;
  auto config = parse(base_config());
  auto t = model::causal_lm_random_tensors(config, 13);
  REQUIRE_NOTHROW(model::causal_lm_from_tensors(config, t, {}, "ok"));
  const std::string name = "model.layers.1.mlp.up_proj.weight";
  t[name] = (t[name] * 100).to(torch::kInt8);  // e.g. a quantized checkpoint hearth does not read
  CHECK_THROWS_AS(model::causal_lm_from_tensors(config, t, {}, "ckpt"), FormatError);
  CHECK_THROWS_WITH(model::causal_lm_from_tensors(config, t, {}, "ckpt"),
                    Catch::Matchers::Contains(name) && Catch::Matchers::Contains("Char"));
}

TEST_CASE("llama3 rope inverse frequencies match the published formula", "[model]") {
  // Llama 3.1 8B's values: theta 500000, head_dim 128, factor 8, low 1, high 4, original context 8192.
  auto j = base_config();
  j["hidden_size"] = 512;
  j["head_dim"] = 128;
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  auto c = parse(j);
  auto got = model::rope_inv_freq(c);
  auto want = inv_freq_scalar(c);
  REQUIRE(got.size(0) == 64);
  for (int64_t i = 0; i < 64; ++i) CHECK(got[i].item<double>() == Approx(want[i]).epsilon(1e-5));
  // High frequencies are untouched, the lowest divided by the factor exactly.
  CHECK(got[0].item<double>() == Approx(1.0));
  CHECK(got[63].item<double>() == Approx(std::pow(500000.0, -126.0 / 128) / 8).epsilon(1e-5));
}
