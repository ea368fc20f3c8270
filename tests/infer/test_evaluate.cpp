// evaluate_nll with a reference model: the KL divergence and top-1 agreement it reports equal a direct float64
// computation over one full forward of each model (strided windows included: each token scored once, with the
// same context in both models), and a reference of another vocabulary is refused.
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include "core/error.h"
#include "infer/evaluate.h"
#include "model/causal_lm.h"
#include "tiny_config.h"

using namespace hearth;

TEST_CASE("evaluate_nll against a reference: KL and top-1 as computed directly", "[infer]") {
  auto config = test::tiny_config(2, 64);
  auto a = model::causal_lm_from_tensors(config, model::causal_lm_random_tensors(config, 1), {}, "a");
  auto b = model::causal_lm_from_tensors(config, model::causal_lm_random_tensors(config, 2), {}, "b");
  std::vector<int32_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back((i * 7 + 3) % 50);
  // One window over everything: positions 0..38 predict tokens 1..39.
  auto r = infer::evaluate_nll(*a, ids, 64, 64, {}, b.get());
  c10::InferenceMode guard;
  auto tokens = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0);
  auto pos = torch::arange(40).unsqueeze(0);
  auto la = torch::log_softmax(a->forward(tokens, pos, {}, nullptr)[0].to(torch::kFloat64), -1).narrow(0, 0, 39);
  auto lb = torch::log_softmax(b->forward(tokens, pos, {}, nullptr)[0].to(torch::kFloat64), -1).narrow(0, 0, 39);
  double kl = 0, nll_b = 0;
  int same = 0;
  for (int t = 0; t < 39; ++t) {
    for (int v = 0; v < 50; ++v)
      kl += std::exp(lb[t][v].item<double>()) * (lb[t][v].item<double>() - la[t][v].item<double>());
    nll_b -= lb[t][ids[t + 1]].item<double>();
    same += la[t].argmax().item<int64_t>() == lb[t].argmax().item<int64_t>();
  }
  CHECK(r.tokens_scored == 39);
  CHECK(r.mean_kl == Approx(kl / 39).epsilon(1e-9));
  CHECK(r.mean_kl > 1e-3);  // two different random models (near-flat distributions: small, but not 0)
  CHECK(r.top1_agreement == Approx(same / 39.0));
  CHECK(r.reference_perplexity == Approx(std::exp(nll_b / 39)).epsilon(1e-9));
  // Without a reference the fields stay NaN; against itself KL is 0 and top-1 is 1.
  CHECK(std::isnan(infer::evaluate_nll(*a, ids, 64, 64).mean_kl));
  auto self = infer::evaluate_nll(*a, ids, 16, 8, {}, a.get());
  CHECK(self.mean_kl == Approx(0).margin(1e-12));
  CHECK(self.top1_agreement == 1.0);
  CHECK(self.reference_perplexity == Approx(self.perplexity).epsilon(1e-12));
}

TEST_CASE("evaluate_nll refuses a reference of another vocabulary", "[infer]") {
  auto config = test::tiny_config(1, 32);
  auto other_config = model::config_parse({{"model_type", "llama"},
                                           {"vocab_size", 60},
                                           {"hidden_size", 24},
                                           {"intermediate_size", 40},
                                           {"num_hidden_layers", 1},
                                           {"num_attention_heads", 4},
                                           {"num_key_value_heads", 2},
                                           {"max_position_embeddings", 32}},
                                          "other");
  auto a = model::causal_lm_from_tensors(config, model::causal_lm_random_tensors(config, 1), {}, "a");
  auto b = model::causal_lm_from_tensors(other_config, model::causal_lm_random_tensors(other_config, 1), {}, "b");
  std::vector<int32_t> ids = {1, 2, 3, 4};
  CHECK_THROWS_AS(infer::evaluate_nll(*a, ids, 4, 4, {}, b.get()), ConfigError);
  CHECK_THROWS_WITH(infer::evaluate_nll(*a, ids, 4, 4, {}, b.get()), Catch::Contains("60") && Catch::Contains("50"));
}
