// Token sampling from one row of logits: penalties, greedy, top-k, temperature, top-p, min-p, seeded RNG; and
// log-probabilities over such a row (token_logprob).
//
// Order (documented in docs/cli.md): repetition penalty (llama.cpp style, over the last `repeat_last_n`
// context tokens) and presence/frequency penalties (OpenAI style, over generated tokens) -> greedy if
// temperature <= 0 -> top-k -> temperature -> softmax -> top-p -> min-p -> draw.
// Deterministic for a given seed and inputs. Not thread-safe; one Sampler per sequence.
#pragma once

#include <cstdint>
#include <random>
#include <string>
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

// One token and its log-probability at a step.
struct TokenProb {
  TokenId token = 0;
  float logprob = 0;
  std::string text;  // the token's text after the context before it (lossy: U+FFFD for part of a character)
  // When `text` is lossy (the token is part of a character): the token's own bytes (Tokenizer::token_bytes),
  // which OpenAI reports as `bytes`; else empty (the bytes are text's).
  std::string bytes;
};

// A generated token's log-probability and the most likely tokens at its step. The values are the log-softmax
// of the model's raw logits (float32, before penalties, temperature, top-k, top-p, min-p), as `hearth eval`
// computes them (vLLM's default), whatever the sampler then did with them.
struct TokenLogprob {
  TokenProb chosen;
  std::vector<TokenProb> top;  // the request's `logprobs` most likely tokens, most likely first (ties: lower id)
  size_t text_offset = 0;      // where its text starts in the sequence's output, in code points
  bool scored = true;          // false: nothing predicts this token (an echoed prompt's first); no values
};

// Log-probabilities over one row of raw logits (n floats): `chosen`'s and the `top_n` largest; texts empty.
TokenLogprob token_logprob(const float* logits, size_t n, TokenId chosen, int top_n);

// Index of the largest value (the first one on ties).
TokenId argmax(const float* logits, size_t n);

}  // namespace hearth::infer
