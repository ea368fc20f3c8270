// Token sampling from one row of logits: penalties, greedy, top-k, temperature, top-p, min-p, seeded RNG.
//
// Order (documented in docs/cli.md): repetition penalty (llama.cpp style, over the last `repeat_last_n`
// context tokens) and presence/frequency penalties (OpenAI style, over generated tokens) -> greedy if
// temperature <= 0 -> top-k -> temperature -> softmax -> top-p -> min-p -> draw.
// Deterministic for a given seed and inputs. Not thread-safe; one Sampler per sequence.
#pragma once

#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace hearth::infer {

using TokenId = int32_t;

struct SamplingParams {
  float temperature = 0.8f;     // <= 0: greedy
  int top_k = 40;               // 0: off
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;       // context tokens the repeat penalty looks at
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0x5eed;

  // Throws ConfigError naming the field when a value is out of range.
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // logits: n floats (modified in place by the penalties). context: every token so far (prompt and
  // generated); the generated ones are those after `n_prompt`. Returns the chosen id.
  TokenId sample(float* logits, size_t n, const std::vector<TokenId>& context, size_t n_prompt);
  const SamplingParams& params() const { return params_; }

 private:
  void apply_penalties(float* logits, size_t n, const std::vector<TokenId>& context, size_t n_prompt) const;
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, TokenId>> candidates_;
};

// Index of the largest value (the first one on ties).
TokenId argmax(const float* logits, size_t n);

}  // namespace hearth::infer
