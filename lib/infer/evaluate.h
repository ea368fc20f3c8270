// Perplexity of a model on a token sequence, with the sliding-window (strided) method used by
// transformers' perplexity guide: windows of `ctx` tokens every `stride` tokens, each token scored once,
// with as much left context as the window gives it. The first token (usually BOS) is never scored.
//
// With a reference model (the float32 original of a quantized model, say), the same windows run through both and
// each scored position also compares the two next-token distributions, as llama.cpp's perplexity tool does with
// --kl-divergence: KL(reference ‖ model) in nats and whether their most likely tokens agree.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "model/causal_lm.h"

namespace hearth::infer {

struct EvalResult {
  double mean_nll = 0;    // nats per scored token
  double perplexity = 0;  // exp(mean_nll)
  int64_t tokens_scored = 0;
  int64_t windows = 0;
  // With a reference model only (else NaN): the reference's perplexity on the same tokens, the mean over scored
  // positions of KL(p_reference ‖ p_model), and the share of positions whose argmax tokens are the same.
  double reference_perplexity = std::nan("");
  double mean_kl = std::nan("");
  double top1_agreement = std::nan("");
};

// ids: at least 2 tokens. ctx: window length (<= model context); stride: 1..ctx. `on_window(done, total)`
// reports progress. `reference` (optional) must have the model's vocabulary size. Throws ConfigError for bad
// ctx/stride, too few tokens or a reference of another vocabulary.
EvalResult evaluate_nll(const model::CausalLM& model, const std::vector<int32_t>& ids, int64_t ctx, int64_t stride,
                        const std::function<void(int64_t, int64_t)>& on_window = {},
                        const model::CausalLM* reference = nullptr);

}  // namespace hearth::infer
