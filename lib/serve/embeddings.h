// POST /v1/embeddings: one vector per input — the model's final hidden states (after its final norm) averaged over
// every token of the input, then L2-normalised. An input is encoded as the tokenizer encodes any text (with BOS
// when the model's tokenizer adds one) or given as token ids; `model` may name an adapter (its LoRA applies). The
// vectors are as long as the model's hidden size. Computed on the request's own thread, one input at a time,
// outside the generation scheduler (no KV cache).
#pragma once

#include <vector>

#include <httplib.h>

#include "serve/api_keys.h"
#include "serve/serve_state.h"

namespace hearth::serve {

// The embedding of each input (token ids, each non-empty and at most --ctx tokens, checked by the caller): the
// pooling above, with `adapter`'s LoRA applied (nullptr: the base model). Shared by /v1/embeddings and Ollama's
// /api/embed. Throws ApiError 503 (model_files_changed) when the model's files changed. Runs on the calling
// thread; thread-safe.
std::vector<std::vector<float>> embeddings_compute(ServeState& state,
                                                  const std::vector<std::vector<infer::TokenId>>& inputs,
                                                  const model::LoraAdapter* adapter);

// Handles one embeddings request for a caller with `scope`. Throws ApiError for every refusal. Thread-safe.
void embeddings_handle(ServeState& state, const httplib::Request& req, httplib::Response& res, const KeyScope& scope);

}  // namespace hearth::serve
