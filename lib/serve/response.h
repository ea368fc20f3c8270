// OpenAI response bodies: chat.completion / text_completion objects and their streamed chunks
// (https://platform.openai.com/docs/api-reference/chat/object, .../chat/streaming, .../completions/object).
// Pure functions; no I/O.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/request.h"

namespace hearth::serve {

struct ResponseMeta {
  Endpoint endpoint = Endpoint::kChat;
  std::string id;       // "chatcmpl-…" / "cmpl-…"
  int64_t created = 0;  // unix seconds
  std::string model;    // as the client asked for it
};

struct ChoiceResult {
  std::string text;
  std::string finish_reason;
};

struct Usage {
  size_t prompt_tokens = 0, completion_tokens = 0;
};

// A fresh id with the endpoint's prefix and the current time.
ResponseMeta response_meta(Endpoint endpoint, const std::string& model);
nlohmann::json usage_json(const Usage& u);
// The whole (non-streamed) response.
nlohmann::json response_full(const ResponseMeta& m, const std::vector<ChoiceResult>& choices, const Usage& u);
// Streamed chunks: the chat role announcement, a text delta, a finish (empty delta + reason), the usage chunk.
nlohmann::json chunk_role(const ResponseMeta& m, size_t index);
nlohmann::json chunk_text(const ResponseMeta& m, size_t index, const std::string& text);
nlohmann::json chunk_finish(const ResponseMeta& m, size_t index, const std::string& reason);
nlohmann::json chunk_usage(const ResponseMeta& m, const Usage& u);

}  // namespace hearth::serve
