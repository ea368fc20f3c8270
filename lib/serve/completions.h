// POST /v1/chat/completions and POST /v1/completions: request -> prompt tokens -> scheduler -> JSON or SSE.
//
// Chat messages become prompt ids through chat_prompt_encode (chat/prompt.h), as in `hearth generate --chat`;
// completion prompts are encoded as `hearth generate --prompt` does. A prompt of --ctx tokens or more is a
// 400 (context_length_exceeded); max_tokens is clamped to the context left. The handler watches its client:
// when it goes away, the completion is cancelled and the scheduler frees its rows.
#pragma once

#include <httplib.h>

#include "serve/api_keys.h"
#include "serve/request.h"
#include "serve/serve_state.h"

namespace hearth::serve {

// Handles one completion request for a caller with `scope`. Throws ApiError for every refusal (the caller
// turns it into the error body). Thread-safe (called on httplib's connection threads).
void completions_handle(ServeState& state, const httplib::Request& req, httplib::Response& res, Endpoint endpoint,
                        const KeyScope& scope);

}  // namespace hearth::serve
