// OpenAI `echo: true` on POST /v1/completions: the prompt's part of a choice — its text, and with `logprobs` an
// entry per prompt token (https://platform.openai.com/docs/api-reference/completions/create#echo).
//
// The scheduler's prefill keeps only the last position's logits, so the prompt's log-probabilities come from one
// separate forward over the prompt (no KV cache, the request's adapter applied), run on the request's thread as
// embeddings are. Each prompt token after the first gets infer::token_logprob of the logits before it — the values
// generated tokens get, and `hearth eval`'s; nothing predicts the first, whose logprob and top_logprobs are null
// (as OpenAI and vLLM report it). Not here: the response's shape (response.h), the request's validation.
#pragma once

#include <string>
#include <vector>

#include "infer/sampler.h"
#include "model/causal_lm.h"
#include "model/lora.h"
#include "tokenizer/tokenizer.h"

namespace hearth::serve {

struct EchoPrefix {
  std::string text;                           // the prompt's text, which the choice's text starts with
  size_t chars = 0;                           // its length in code points: the generated tokens' text_offset base
  std::vector<infer::TokenLogprob> logprobs;  // with logprobs >= 0: one per prompt token, the first unscored
};

// The prefix for the prompt `ids`. `text`: the prompt as the client sent it, or nullptr for a prompt of token ids
// (then its ids decoded without special tokens, as the text of a string prompt has no BOS). With `logprobs` >= 0
// runs the forward (above) and reports the `logprobs` most likely tokens at each position too; a token's `token`
// text is read as the output's tokens are (after the token before it) and its text_offset is where it starts in
// the prompt decoded without special tokens — in `text` when the prompt decodes back to it.
// ids: non-empty. Throws what the model's forward throws. Thread-safe (the model's forward is).
EchoPrefix echo_prefix(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                       const std::vector<infer::TokenId>& ids, const std::string* text,
                       const model::LoraAdapter* adapter, int logprobs);

}  // namespace hearth::serve
