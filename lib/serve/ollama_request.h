// Ollama API request bodies -> the server's own requests: POST /api/chat and /api/generate become the same
// CompletionRequest the OpenAI endpoints build (request.h), so they run the same scheduler path; /api/embed an
// OllamaEmbedRequest; /api/show a model name. Also Ollama's error body. The translation only: no HTTP, no model
// (ollama_api.h runs the requests and writes Ollama's responses).
//
// Follows Ollama's docs/api.md and docs/modelfile.md (the `options` and their defaults),
// https://github.com/ollama/ollama/tree/main/docs. As on the OpenAI endpoints nothing is silently ignored: an
// unknown field, an `options` key not listed below, a field hearth does not implement (`images`, `tools`, `think`,
// `suffix`, `template`, `context`, `format`) with a value that asks for something, a wrong type or an out-of-range
// value is ApiError 400 whose `param` names it ("options.mirostat", "messages[1].images").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "infer/sampler.h"
#include "serve/request.h"

namespace hearth::serve {

// Ollama's defaults for `options` (docs/modelfile.md), which are not OpenAI's: temperature 0.8, top_k 40,
// top_p 0.9, min_p 0, repeat_penalty 1.1 over the last 64 tokens, no presence/frequency penalty.
infer::SamplingParams ollama_sampling_default();

// A translated /api/chat or /api/generate request.
struct OllamaGeneration {
  // The internal request: endpoint kChat for /api/chat and a templated /api/generate (system + prompt as
  // messages), kCompletions for a raw /api/generate (the prompt encoded as it is). request.model is the served
  // name (see ollama_model_name); n is 1; request.stream is unused (see `stream`).
  CompletionRequest request;
  bool chat = false;       // /api/chat (replies are "message" objects), else /api/generate ("response" text)
  std::string model;       // as the client wrote it; Ollama echoes it in every response
  bool stream = true;      // Ollama streams (NDJSON) unless told "stream": false
  bool load_only = false;  // no messages / no prompt and no system: Ollama's "load the model" call
};

// The `options` object: temperature (0..100), top_p (0..1], top_k (>= 0), min_p [0..1], seed (integer; negative,
// as Ollama's -1: random), num_predict (1..max_tokens_limit; -1 or -2: up to the context), stop (a string or up to
// 16 strings), repeat_penalty (0..100], repeat_last_n (>= 0; -1: the whole context), presence_penalty and
// frequency_penalty [-2..2], num_ctx (>= 1: the request's context window, at most the server's --ctx). A key set to
// null counts as absent. Applies them over r's sampling, max_tokens, stop, ctx. Throws ApiError 400 naming
// "options.KEY".
void ollama_options_apply(const nlohmann::ordered_json& options, int max_tokens_limit, CompletionRequest& r);

// POST /api/chat: model, messages [{role: system|user|assistant|tool, content, images: [] only, tool_calls: []
// only, thinking: "" only}], stream, options, format, keep_alive (accepted, no effect: the model stays loaded),
// tools ([] only), think (false only), logprobs, top_logprobs (0..20, with logprobs). Throws ApiError 400.
OllamaGeneration ollama_chat_parse(const std::string& body, int max_tokens_limit);

// POST /api/generate: model, prompt, system, raw (no template: the prompt is encoded as it is; no system then),
// stream, options, format, keep_alive, images ([] only), suffix / template ("" only), context ([] only), think,
// logprobs, top_logprobs. Throws ApiError 400.
OllamaGeneration ollama_generate_parse(const std::string& body, int max_tokens_limit);

// A translated /api/embed request.
struct OllamaEmbedRequest {
  std::string model;                  // as written
  std::string name;                   // the served name
  std::vector<std::string> inputs;    // none: Ollama's "load the model" call
  bool truncate = true;               // cut inputs longer than the context to it (false: 400 instead)
  std::optional<int> ctx;             // options.num_ctx
  std::optional<int64_t> dimensions;  // must be the model's hidden size (checked by the handler)
};

// POST /api/embed: model, input (a non-empty string or an array of them), truncate, dimensions, keep_alive,
// options (num_ctx only: the sampling options have no effect on embeddings and are refused). Throws ApiError 400.
OllamaEmbedRequest ollama_embed_parse(const std::string& body);

// POST /api/show: the model named by "model" (or "name", as older clients send), as written; "verbose" is
// accepted (there is nothing long to leave out). Throws ApiError 400.
std::string ollama_show_parse(const std::string& body);

// The served name an Ollama model name means: "NAME" and "NAME:latest" (Ollama's default tag) are both NAME; any
// other tag stays part of the name, which then names no served model (404).
std::string ollama_model_name(const std::string& name);

// Ollama's `format`: "json" (any JSON object, as OpenAI's json_object) or a JSON schema object, enforced by
// constrained decoding (constrain/json_schema.h) through `r.grammar`. null or "" ask for nothing. Throws ApiError
// 400 naming `format` for any other value or a schema keyword hearth cannot enforce.
void ollama_format_constraint(const nlohmann::ordered_json& format, CompletionRequest& r);

// Ollama's error body: {"error": "<message>"}.
nlohmann::json ollama_error_body(const ApiError& e);

}  // namespace hearth::serve
