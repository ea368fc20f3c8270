// Text generation with a Llama-family model: batched prefill, incremental decode with the KV cache,
// sampling, stop tokens and stop strings, streaming of text that is final.
//
// Several requests run as one batch (rows of different lengths, right-padded); each row has its own
// sampler, stops and budget. Not for serving many clients over time — that is lib/serve's scheduler.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "infer/sampler.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace hearth::infer {

struct GenerationRequest {
  std::vector<TokenId> prompt;           // non-empty
  int max_tokens = 256;                  // clamped to the model's context
  SamplingParams sampling;
  std::vector<std::string> stop;         // stop strings (not included in the output)
  std::vector<TokenId> stop_token_ids;   // usually stop_ids_default(); not included in the output
  const model::LoraAdapter* adapter = nullptr;  // LoRA adapter for this request (nullptr = base model)
};

struct GenerationResult {
  std::vector<TokenId> tokens;  // generated ids, without the stop token
  std::string text;             // decoded, cut before a stop string
  std::string finish_reason;    // "stop" (stop token or string) or "length"
  size_t prompt_tokens = 0;
};

struct GenerationStats {
  double prefill_seconds = 0, decode_seconds = 0;
  size_t prefill_tokens = 0, decode_tokens = 0;
};

// Receives each row's newly final text as it is generated (never a broken UTF-8 sequence, never part of a
// stop string).
using TextCallback = std::function<void(size_t row, const std::string& text)>;

// Runs every request to completion as one batch. Throws ConfigError for an empty prompt or one longer than
// the context, InterruptedError on SIGINT/SIGTERM.
std::vector<GenerationResult> generate(const model::LlamaModel& model, const tokenizer::Tokenizer& tokenizer,
                                       const std::vector<GenerationRequest>& requests,
                                       const TextCallback& on_text = {}, GenerationStats* stats = nullptr);

// The ids that end generation: the model's eos_token_id list (config.json + generation_config.json) and
// the tokenizer's EOS.
std::vector<TokenId> stop_ids_default(const model::LlamaModel& model, const tokenizer::Tokenizer& tokenizer);

// Streaming stop-string matcher: feed text, get what can be emitted safely. Exposed for tests.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Appends `text`; returns the newly safe text. After a stop string is found, stopped() is true and
  // nothing more is returned.
  std::string push(const std::string& text);
  // The held-back remainder (at the end of generation, when no stop string matched).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace hearth::infer
