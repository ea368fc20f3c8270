// Ollama's model listing on hearth serve: GET /api/tags, POST /api/show, GET /api/version (docs/api.md,
// https://github.com/ollama/ollama/blob/main/docs/api.md). The models are the ones /v1/models lists — the base model
// and every adapter the caller's key may use — named as Ollama names them, "NAME:latest" (requests may leave the tag
// out). What Ollama reads from its blobs is described from the model folder instead:
//   size          bytes of the folder's files (a .gguf: the file); an adapter adds its own folder's
//   modified_at   the newest of their modification times; an adapter: when it was loaded
//   digest        SHA-256 of the name, the files' names, sizes and modification times — an identifier that changes
//                 when they do, not a hash of the weights (which would read the whole model)
//   details       format "safetensors" | "gguf", family (config.json model_type), parameter_size ("7.2B", "260K"),
//                 quantization_level (the storage type of the weights as served: "F32", "BF16", "Q4_K", ...),
//                 parent_model (the base model, for an adapter)
// /api/show adds model_info (GGUF-style keys; "<family>.context_length" is the server's --ctx, the context a request
// can use), capabilities ("completion", "embedding"), and, when the chat template is one whose Ollama equivalent
// hearth knows (chat/ollama.h), that template, its stop strings and a Modelfile; else those are empty.
#pragma once

#include <httplib.h>

#include "serve/api_keys.h"
#include "serve/serve_state.h"

namespace hearth::serve {

// The Ollama version /api/version reports: the release whose API this subset follows, so that clients which check
// the version before using /api/embed or /api/chat do use them.
inline constexpr const char* kOllamaApiVersion = "0.12.6";

// GET /api/tags: {"models": [...]} for a caller with `scope`. Thread-safe.
void ollama_tags_handle(ServeState& state, httplib::Response& res, const KeyScope& scope);

// POST /api/show. Throws ApiError (400, 403, 404 "model 'NAME' not found"). Thread-safe.
void ollama_show_handle(ServeState& state, const httplib::Request& req, httplib::Response& res, const KeyScope& scope);

// GET /api/version: {"version": kOllamaApiVersion}.
void ollama_version_handle(httplib::Response& res);

// "7.2B", "135M", "260K": a parameter count as Ollama's details.parameter_size writes it (billions with one decimal;
// millions and thousands with one decimal below 10, rounded from 10).
std::string ollama_parameter_size(int64_t parameters);

}  // namespace hearth::serve
