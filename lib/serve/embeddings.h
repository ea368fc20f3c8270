// POST /v1/embeddings: one vector per input — the model's final hidden states (after its final norm) averaged over
// every token of the input, then L2-normalised. An input is encoded as the tokenizer encodes any text (with BOS
// when the model's tokenizer adds one) or given as token ids; `model` may name an adapter (its LoRA applies). The
// vectors are as long as the model's hidden size. Computed on the request's own thread, one input at a time,
// outside the generation scheduler (no KV cache).
#pragma once

#include <httplib.h>

#include "serve/api_keys.h"
#include "serve/serve_state.h"

namespace hearth::serve {

// Handles one embeddings request for a caller with `scope`. Throws ApiError for every refusal. Thread-safe.
void embeddings_handle(ServeState& state, const httplib::Request& req, httplib::Response& res, const KeyScope& scope);

}  // namespace hearth::serve
