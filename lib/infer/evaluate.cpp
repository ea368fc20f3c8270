#include "infer/evaluate.h"

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "core/signals.h"

namespace hearth::infer {

EvalResult evaluate_nll(const model::CausalLM& model, const std::vector<int32_t>& ids, int64_t ctx, int64_t stride,
                        const std::function<void(int64_t, int64_t)>& on_window, const model::CausalLM* reference) {
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t max_ctx = model.config().max_position_embeddings;
  if (ctx <= 1 || ctx > max_ctx)
    throw ConfigError(fmt::format("--ctx: expected 2..{} (the model's context), got {}", max_ctx, ctx));
  if (stride <= 0 || stride > ctx)
    throw ConfigError(fmt::format("--stride: expected 1..{} (--ctx), got {}", ctx, stride));
  if (n < 2) throw ConfigError(fmt::format("eval: the text has {} tokens; expected at least 2", n));
  if (reference && reference->config().vocab_size != model.config().vocab_size)
    throw ConfigError(fmt::format("--reference: a vocabulary of {} tokens; the model has {}",
                                  reference->config().vocab_size, model.config().vocab_size));
  c10::InferenceMode guard;
  auto all = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64);
  EvalResult r;
  double nll_sum = 0, ref_nll_sum = 0, kl_sum = 0;
  int64_t top1_same = 0;
  int64_t prev_end = 0;
  const int64_t total_windows = n <= ctx ? 1 : 1 + (n - ctx + stride - 1) / stride;
  for (int64_t begin = 0; begin < n; begin += stride) {
    interrupt_check("eval");
    const int64_t end = std::min(begin + ctx, n);
    const int64_t T = end - begin;
    // Score targets at absolute positions max(prev_end, begin + 1) .. end - 1.
    const int64_t first_target = std::max(prev_end, begin + 1);
    auto tokens = all.narrow(0, begin, T).unsqueeze(0);
    auto positions = torch::arange(T, torch::kInt64).unsqueeze(0);
    auto logits = model.forward(tokens, positions, torch::Tensor(), nullptr).to(torch::kCPU);  // [1, T, V]
    auto logp = torch::log_softmax(logits[0].to(torch::kFloat64), -1);                         // [T, V]
    const int64_t k = end - first_target;
    if (k > 0) {
      auto pred = logp.narrow(0, first_target - 1 - begin, k);  // rows predicting the targets
      auto targets = all.narrow(0, first_target, k).unsqueeze(1);
      nll_sum -= pred.gather(1, targets).sum().item<double>();
      r.tokens_scored += k;
      if (reference) {
        auto ref_logits = reference->forward(tokens, positions, torch::Tensor(), nullptr).to(torch::kCPU);
        auto ref = torch::log_softmax(ref_logits[0].to(torch::kFloat64), -1).narrow(0, first_target - 1 - begin, k);
        ref_nll_sum -= ref.gather(1, targets).sum().item<double>();
        kl_sum += (ref.exp() * (ref - pred)).sum().item<double>();  // Σ_positions Σ_v p_ref (log p_ref − log p)
        top1_same += ref.argmax(-1).eq(pred.argmax(-1)).sum().item<int64_t>();
      }
    }
    ++r.windows;
    if (on_window) on_window(r.windows, total_windows);
    prev_end = end;
    if (end == n) break;
  }
  r.mean_nll = nll_sum / static_cast<double>(r.tokens_scored);
  r.perplexity = std::exp(r.mean_nll);
  if (reference) {
    const double scored = static_cast<double>(r.tokens_scored);
    r.reference_perplexity = std::exp(ref_nll_sum / scored);
    r.mean_kl = kl_sum / scored;
    r.top1_agreement = static_cast<double>(top1_same) / scored;
  }
  return r;
}

}  // namespace hearth::infer
