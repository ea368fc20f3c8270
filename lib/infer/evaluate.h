// Perplexity of a model on a token sequence, with the sliding-window (strided) method used by
// transformers' perplexity guide: windows of `ctx` tokens every `stride` tokens, each token scored once,
// with as much left context as the window gives it. The first token (usually BOS) is never scored.
#pragma once

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
};

// ids: at least 2 tokens. ctx: window length (<= model context); stride: 1..ctx. `on_window(done, total)`
// reports progress. Throws ConfigError for bad ctx/stride or too few tokens.
EvalResult evaluate_nll(const model::CausalLM& model, const std::vector<int32_t>& ids, int64_t ctx, int64_t stride,
                        const std::function<void(int64_t, int64_t)>& on_window = {});

}  // namespace hearth::infer
