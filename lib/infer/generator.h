// Text generation for a fixed set of requests: batched prefill, then decode steps until every sequence
// ends (the engine of sequence.h, run synchronously), streaming the text that is final.
//
// Several requests run as one batch (rows of different lengths, right-padded); each row has its own
// sampler, stops and budget. Not for serving many clients over time — that is lib/serve's scheduler,
// which runs the same Sequence and decode step continuously.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "infer/sequence.h"

namespace hearth::infer {

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

// The tokenizer may not produce ids the model has no embedding row for (an added token with an id >= the config's
// vocab_size): FormatError naming `origin`, the token and both sizes — at load, instead of an index error in the
// middle of a generation (which in serve also failed the requests batched with it). A tokenizer smaller than the
// embedding (padded vocabularies) is fine.
void vocab_check(const tokenizer::Tokenizer& tokenizer, const model::ModelConfig& config, const std::string& origin);

// Runs every request to completion as one batch, within the context: the model's (max_position_embeddings), or
// `ctx` tokens (prompt and reply) when 0 < ctx < the model's.
// Throws ConfigError for an empty prompt or one that fills the context, InterruptedError on SIGINT/SIGTERM.
std::vector<GenerationResult> generate(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                                       const std::vector<GenerationRequest>& requests, const TextCallback& on_text = {},
                                       GenerationStats* stats = nullptr, int64_t ctx = 0);

}  // namespace hearth::infer
