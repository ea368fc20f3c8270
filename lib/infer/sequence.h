// One sequence being generated, and the decode step that advances a batch of them: the engine shared by
// `hearth generate` (infer::generate runs it synchronously) and `hearth serve` (serve::Scheduler runs it
// continuously, sequences joining and leaving between steps).
//
// A Sequence owns the per-sequence state: sampler, streaming UTF-8 decoder, stop-string matcher, context
// (prompt + generated) and token budget. accept() is the single place that decides whether a sequence
// ends (stop token, stop string, budget) and which text is final. Not thread-safe; one owner at a time.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "constrain/constraint.h"
#include "infer/sampler.h"
#include "model/causal_lm.h"
#include "tokenizer/tokenizer.h"

namespace hearth::infer {

struct GenerationRequest {
  std::vector<TokenId> prompt;  // non-empty
  int max_tokens = 256;         // clamped to the context left after the prompt
  SamplingParams sampling;
  std::vector<std::string> stop;                // stop strings (not included in the output)
  std::vector<TokenId> stop_token_ids;          // usually stop_ids_default(); not included in the output
  const model::LoraAdapter* adapter = nullptr;  // LoRA adapter for this request (nullptr = base model)
  int logprobs = -1;  // < 0: none; else report each token's log-probability and the `logprobs` most likely tokens
  // Constrained decoding: only tokens that keep the output a prefix of what the grammar matches are sampled,
  // and the sequence ends ("stop") once the output is complete and the grammar allows nothing more. Its stop
  // ids should be `stop_token_ids`. nullptr: free text.
  std::shared_ptr<const constrain::TokenGrammar> grammar;
};

// Streaming stop-string matcher: feed text, get what can be emitted safely.
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

// What accepting one sampled token produced.
struct TokenEvent {
  bool kept = false;  // the token joined the output (false: it was a stop token, or the sequence had ended)
  std::string text;   // text that became final; on the token that ends the sequence, the rest too
  // With request.logprobs >= 0: the tokens whose whole text is now final (in `text` of this event or an
  // earlier one), in order. A token whose text a stop string removed or cut is never reported; nor is a stop
  // token. So the reported tokens' texts concatenate to the output (minus a token cut by a stop string).
  std::vector<TokenLogprob> logprobs;
};

class Sequence {
 public:
  // `ctx`: the engine's context window in tokens (the model's context, or a server's cache row); the budget
  // is min(max_tokens, ctx - prompt length), at least 0. The tokenizer must outlive the sequence.
  Sequence(GenerationRequest request, const tokenizer::Tokenizer& tokenizer, int64_t ctx);

  // Picks the next token from this sequence's row of logits (n floats, modified in place by penalties and
  // the grammar's mask). With request.logprobs >= 0 it also computes the token's log-probabilities
  // (token_logprob, over the logits before the mask) for accept(). Throws hearth::Error when the grammar
  // allows no token.
  TokenId sample(float* logits, size_t n);
  // Records a sampled token; ends the sequence on a stop token ("stop"), a stop string ("stop") or its
  // budget ("length"). Text never holds a broken UTF-8 sequence or any part of a stop string.
  TokenEvent accept(TokenId token);
  // Ends the sequence now (e.g. "length" for a zero budget, "cancelled"); returns the held-back text
  // (empty after a stop string). No-op returning "" when already finished.
  std::string finish(const std::string& reason);

  bool finished() const { return finished_; }
  const std::string& finish_reason() const { return finish_reason_; }
  const GenerationRequest& request() const { return request_; }
  const std::vector<TokenId>& generated() const { return generated_; }
  const std::vector<TokenId>& context() const { return context_; }  // prompt + generated
  int budget() const { return budget_; }

  // Prompt tokens already in the cache (prefill progress), and recording that n more are.
  size_t prefilled() const { return prefilled_; }
  void prefill_advance(size_t n) { prefilled_ += n; }

 private:
  // A sampled token's log-probabilities, held until its text is final; `begin`/`end`: its text's bytes in
  // the decoded output (before stop strings).
  struct HeldLogprob {
    TokenLogprob value;
    size_t begin = 0, end = 0;
  };
  void logprobs_release(TokenEvent& event);
  std::string token_text(TokenId token) const;  // a token's text after the current context

  GenerationRequest request_;
  const tokenizer::Tokenizer* tokenizer_;
  Sampler sampler_;
  tokenizer::StreamDecoder decoder_;
  StopMatcher stops_;
  std::vector<TokenId> context_, generated_;
  int budget_ = 0;
  size_t prefilled_ = 0;
  bool finished_ = false;
  std::string finish_reason_;
  std::optional<constrain::TokenConstraint> constraint_;  // with request.grammar
  std::optional<TokenLogprob> sampled_;  // the last sample()'s, with request.logprobs >= 0
  std::vector<HeldLogprob> held_;       // accepted tokens not reported yet
  size_t decoded_bytes_ = 0, decoded_chars_ = 0, emitted_bytes_ = 0;  // decoded output, and what became final
};

// The inputs of one forward over a batch of sequences, row r of the batch being rows[r].
struct StepInputs {
  torch::Tensor tokens, positions;                  // [B, T] int64
  torch::Tensor valid;                              // [B, T] bool, or undefined when every position is valid
  std::vector<const model::LoraAdapter*> adapters;  // per row; empty when no row has an adapter
  std::vector<int64_t> cache_rows;  // the cache row of each batch row (ForwardOptions::cache_rows); empty: row r
};

// Prefill inputs: row r feeds prompt tokens [prefilled, prefilled + count[r]) of rows[r] (right-padded to the
// longest); a null row, or count 0, is all padding.
StepInputs prefill_inputs(const std::vector<const Sequence*>& rows, const std::vector<int64_t>& count);
// Decode inputs: each live row feeds its last token at its position; null and finished rows are padding.
StepInputs decode_inputs(const std::vector<const Sequence*>& rows);

// Forward over `in` with `cache`, returning each row's logits at its last valid position: [B, V] float32,
// contiguous, on the CPU.
torch::Tensor step_forward(const model::CausalLM& model, model::KvCache& cache, const StepInputs& in);

// Prompt positions one prefill forward takes per row (llama.cpp's default micro-batch): a longer prompt goes in
// steps of this many tokens, so that its activations (the MLP's [T, 2·intermediate] among them) stay bounded
// whatever its length. Prompts up to this long are one forward, as before.
inline constexpr int64_t kPrefillChunk = 512;

// Prefills every row's whole prompt in forwards of at most `chunk` positions per row (all rows' next tokens in one
// forward), advancing each row; returns each row's logits after its last prompt token: [B, V] float32 on the CPU.
torch::Tensor prefill_prompts(const model::CausalLM& model, model::KvCache& cache, const std::vector<Sequence*>& rows,
                              int64_t chunk = kPrefillChunk);

// Receives what accepting a token produced for row r. It may destroy that row's sequence (a finished one):
// the caller never touches a row again after its callback.
using TokenCallback = std::function<void(size_t row, const TokenEvent& event)>;

// Receives a row's failure (sampling, accepting or its callback threw); the row is not touched again this step.
using RowErrorCallback = std::function<void(size_t row, const std::exception& error)>;

// Samples and accepts one token for every live row from logits [B, V] (row r for rows[r]). Without `on_error`
// a row's failure propagates (rows after it get no token this step); with it, the other rows go on.
void sample_rows(const std::vector<Sequence*>& rows, torch::Tensor& logits, const TokenCallback& on_token,
                 const RowErrorCallback& on_error = nullptr);

// One decode step: the rows' last tokens through the model (decode_inputs, step_forward), then sample_rows.
void decode_step(const model::CausalLM& model, model::KvCache& cache, const std::vector<Sequence*>& rows,
                 const TokenCallback& on_token);

// The ids that end generation: the model's eos_token_id list (config.json + generation_config.json) and
// the tokenizer's EOS.
std::vector<TokenId> stop_ids_default(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer);

}  // namespace hearth::infer
