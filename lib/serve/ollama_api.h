// Ollama's API on hearth serve's port, beside the OpenAI one: POST /api/chat and POST /api/generate (a stream of
// NDJSON objects, Ollama's default, or one object with "stream": false) and POST /api/embed here; GET /api/tags,
// POST /api/show and GET /api/version in ollama_models.h.
//
// A translation layer: a body becomes the OpenAI endpoints' request (ollama_request.h) and runs the same code —
// completions_submit and the scheduler for chat and generate, embeddings_compute for embed — and only the
// responses are Ollama's (docs/api.md, https://github.com/ollama/ollama/blob/main/docs/api.md): model, created_at,
// message / response, done, done_reason ("stop", "length"; "load" for a request with nothing to generate),
// total_duration, load_duration (0: the model is loaded once, at start), prompt_eval_count, prompt_eval_duration
// (from the request's arrival to its first token, so any wait in the queue counts), eval_count, eval_duration
// (first token to last), all durations in nanoseconds. Not here: authentication and key scopes (http_server.cpp,
// the same as the OpenAI endpoints'); every refusal is thrown as ApiError and sent as {"error": "..."}
// (ollama_error_body), or, once a stream has begun, as its last line.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <httplib.h>

#include "serve/api_keys.h"
#include "serve/serve_state.h"

namespace hearth::serve {

// POST /api/chat for a caller with `scope`. Throws ApiError for every refusal. Thread-safe.
void ollama_chat_handle(ServeState& state, const httplib::Request& req, httplib::Response& res, const KeyScope& scope);

// POST /api/generate (a templated prompt, or with "raw": true the prompt as it is). Throws ApiError. Thread-safe.
void ollama_generate_handle(ServeState& state, const httplib::Request& req, httplib::Response& res,
                            const KeyScope& scope);

// POST /api/embed: one vector per input, pooled as /v1/embeddings pools them (embeddings.h); inputs longer than the
// context are cut to it unless "truncate": false (then 400). Throws ApiError. Thread-safe.
void ollama_embed_handle(ServeState& state, const httplib::Request& req, httplib::Response& res, const KeyScope& scope);

// The adapter an Ollama model name means (ollama_model_name; nullptr: the base model), for a caller with `scope`:
// ApiError 403 outside the scope, 404 "model 'NAME' not found" for an unknown name.
std::shared_ptr<const model::LoraAdapter> ollama_model_resolve(ServeState& state, const std::string& name,
                                                               const KeyScope& scope);

// A time as Ollama writes it (created_at, modified_at): RFC 3339 in UTC with microseconds,
// "2024-07-22T20:47:51.147561Z".
std::string ollama_timestamp(std::chrono::system_clock::time_point t);

}  // namespace hearth::serve
