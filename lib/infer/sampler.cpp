#include "infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::infer {

void SamplingParams::validate() const {
  auto fail = [](const char* field, const std::string& expected, double got) {
    throw ConfigError(fmt::format("{}: expected {}, got {}", field, expected, got));
  };
  if (!(temperature >= 0) || !std::isfinite(temperature)) fail("temperature", ">= 0", temperature);
  if (top_k < 0) fail("top_k", ">= 0", top_k);
  if (!(top_p > 0 && top_p <= 1)) fail("top_p", "a value in (0, 1]", top_p);
  if (!(min_p >= 0 && min_p <= 1)) fail("min_p", "a value in [0, 1]", min_p);
  if (!(repeat_penalty > 0) || !std::isfinite(repeat_penalty)) fail("repeat_penalty", "> 0", repeat_penalty);
  if (repeat_last_n < 0) fail("repeat_last_n", ">= 0", repeat_last_n);
  if (!(presence_penalty >= -2 && presence_penalty <= 2))
    fail("presence_penalty", "a value in [-2, 2]", presence_penalty);
  if (!(frequency_penalty >= -2 && frequency_penalty <= 2))
    fail("frequency_penalty", "a value in [-2, 2]", frequency_penalty);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

TokenId argmax(const float* logits, size_t n) {
  return static_cast<TokenId>(std::max_element(logits, logits + n) - logits);
}

void Sampler::apply_penalties(float* logits, size_t n, const std::vector<TokenId>& context, size_t n_prompt) const {
  if (params_.repeat_penalty != 1.0f && params_.repeat_last_n > 0) {
    size_t from = context.size() > size_t(params_.repeat_last_n) ? context.size() - params_.repeat_last_n : 0;
    std::unordered_set<TokenId> seen(context.begin() + from, context.end());
    for (TokenId t : seen) {
      if (t < 0 || size_t(t) >= n) continue;
      float& l = logits[t];
      l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    }
  }
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    std::unordered_map<TokenId, int> counts;
    for (size_t i = std::min(n_prompt, context.size()); i < context.size(); ++i) ++counts[context[i]];
    for (auto [t, c] : counts) {
      if (t < 0 || size_t(t) >= n) continue;
      logits[t] -= params_.presence_penalty + params_.frequency_penalty * static_cast<float>(c);
    }
  }
}

TokenId Sampler::sample(float* logits, size_t n, const std::vector<TokenId>& context, size_t n_prompt) {
  apply_penalties(logits, n, context, n_prompt);
  if (params_.temperature <= 0.0f) return argmax(logits, n);

  candidates_.resize(n);
  for (size_t i = 0; i < n; ++i) candidates_[i] = {logits[i], static_cast<TokenId>(i)};
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t k = params_.top_k > 0 ? std::min<size_t>(params_.top_k, n) : n;
  std::partial_sort(candidates_.begin(), candidates_.begin() + k, candidates_.end(), by_logit);
  candidates_.resize(k);

  // softmax with temperature over the kept candidates (sorted, largest first)
  const float max_logit = candidates_.front().first;
  double sum = 0;
  for (auto& c : candidates_) {
    c.first = std::exp((c.first - max_logit) / params_.temperature);
    sum += c.first;
  }
  for (auto& c : candidates_) c.first = static_cast<float>(c.first / sum);

  size_t keep = candidates_.size();
  if (params_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      cum += candidates_[i].first;
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0f) {
    const float threshold = params_.min_p * candidates_.front().first;
    size_t i = 1;
    while (i < keep && candidates_[i].first >= threshold) ++i;
    keep = i;
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += candidates_[i].first;
  // uniform in [0, total): 53 random bits, independent of the standard library's distributions
  double u = (static_cast<double>(rng_() >> 11) * 0x1.0p-53) * total;
  double cum = 0;
  for (size_t i = 0; i < keep; ++i) {
    cum += candidates_[i].first;
    if (u < cum) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

TokenLogprob token_logprob(const float* logits, size_t n, TokenId chosen, int top_n) {
  // log p_i = x_i - logsumexp(x), summed in double as `hearth eval` does
  const float max = *std::max_element(logits, logits + n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  const double lse = max + std::log(sum);
  auto logprob = [&](TokenId t) { return static_cast<float>(logits[t] - lse); };
  TokenLogprob r;
  r.chosen.token = chosen;
  r.chosen.logprob = chosen >= 0 && static_cast<size_t>(chosen) < n ? logprob(chosen) : -INFINITY;
  const size_t k = std::min(n, static_cast<size_t>(std::max(0, top_n)));
  if (k == 0) return r;
  std::vector<TokenId> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](TokenId a, TokenId b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (size_t i = 0; i < k; ++i) r.top.push_back({ids[i], logprob(ids[i]), {}});
  return r;
}

}  // namespace hearth::infer
