// OpenAI request bodies -> typed, validated structs; OpenAI-style error bodies.
//
// Follows the OpenAI API reference for POST /v1/chat/completions and POST /v1/completions
// (https://platform.openai.com/docs/api-reference): unknown or unimplemented fields and known fields with a wrong
// type or an out-of-range value are rejected with ApiError (HTTP 400, `param` naming the field).
// Not here: tokenization and the model's context (http_server.cpp checks prompt length), HTTP itself.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "constrain/grammar.h"
#include "infer/sampler.h"

namespace hearth::serve {

// An error to answer with: HTTP status and the OpenAI error object {"message","type","param","code"}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int http_status, const std::string& message, std::string error_type = "invalid_request_error",
           std::string error_param = "", std::string error_code = "")
      : std::runtime_error(message),
        status(http_status),
        type(std::move(error_type)),
        param(std::move(error_param)),
        code(std::move(error_code)) {}
  int status;
  std::string type, param, code;  // empty param/code are sent as null
};

// {"error":{"message","type","param","code"}} (param and code null when empty).
nlohmann::json api_error_body(const ApiError& e);
// The error type OpenAI uses for an HTTP status (e.g. 401 "authentication_error", 429 "rate_limit_error").
std::string api_error_type(int status);

enum class Endpoint { kChat, kCompletions };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;
  nlohmann::ordered_json messages;               // chat: the validated messages (content parts joined to text)
  nlohmann::ordered_json tools;                  // chat: null when absent (validated function tools)
  // chat: "none" (tools described, a text reply), "auto" (the reply may call tools), "required" (it calls one
  // or more), "function" (it calls `tool_name`). "none" when there are no tools.
  std::string tool_choice = "none";
  std::string tool_name;
  bool parallel_tool_calls = true;
  std::vector<std::string> prompts;              // completions: text prompts (one or more)
  std::vector<std::vector<int32_t>> prompt_ids;  // completions: prompts given as token ids
  std::optional<int> max_tokens;                 // max_tokens or max_completion_tokens (0 only with echo)
  infer::SamplingParams sampling;                // OpenAI defaults: temperature 1, top_p 1, no top-k/min-p
  bool seed_given = false;
  std::vector<std::string> stop;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // < 0: no log-probabilities. Else each token's, with this many most likely tokens per step: chat
  // `top_logprobs` (0..20, only with `logprobs: true`), completions `logprobs` (0..5).
  int logprobs = -1;
  // response_format json_object / json_schema: the grammar the output must follow (constrain/json_schema.h);
  // nullptr for free text.
  std::shared_ptr<const constrain::Grammar> grammar;
  // Completions `echo`: each choice's text starts with its prompt's text (and, with logprobs, its entries with
  // the prompt tokens'). It alone allows max_tokens 0 (the prompt and nothing else).
  bool echo = false;
  // The context window of this request's sequences, prompt and reply, when smaller than the server's --ctx
  // (Ollama's num_ctx); unset: --ctx. Never set by request_parse.
  std::optional<int> ctx;
};

// Parses and validates a body. `max_tokens_limit`: largest max_tokens accepted; `max_n`: largest n.
// Throws ApiError(400) for malformed JSON, wrong types and invalid values.
CompletionRequest request_parse(const std::string& body, Endpoint endpoint, int max_tokens_limit, int max_n);

}  // namespace hearth::serve
