// OpenAI response bodies: chat.completion / text_completion objects and their streamed chunks
// (https://platform.openai.com/docs/api-reference/chat/object, .../chat/streaming, .../completions/object).
// Pure functions; no I/O.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/tool_calls.h"
#include "infer/sampler.h"
#include "serve/request.h"

namespace hearth::serve {

struct ResponseMeta {
  Endpoint endpoint = Endpoint::kChat;
  std::string id;       // "chatcmpl-…" / "cmpl-…"
  int64_t created = 0;  // unix seconds
  std::string model;    // as the client asked for it
  int logprobs = -1;    // CompletionRequest::logprobs: < 0 sends "logprobs": null
  // Chat with tool_choice other than "none": replies are split into content and tool_calls (chat/tool_calls.h),
  // `tool_prefix` (what the prompt ended with, e.g. "[TOOL_CALLS]") read before each reply.
  bool tools = false;
  chat::ToolFormat tool_format = chat::ToolFormat::kHermes;
  std::string tool_prefix;
};

struct ChoiceResult {
  std::string text;
  std::string finish_reason;
  std::vector<infer::TokenLogprob> logprobs;  // of the tokens of `text`, with meta.logprobs >= 0
};

struct Usage {
  size_t prompt_tokens = 0, completion_tokens = 0;
};

// A token's `bytes` as OpenAI reports them: its text's UTF-8 bytes, or its own raw bytes when it is part of a
// character (TokenProb::bytes).
nlohmann::json token_bytes_json(const infer::TokenProb& t);
// A fresh id with the endpoint's prefix and the current time.
ResponseMeta response_meta(Endpoint endpoint, const std::string& model);
nlohmann::json usage_json(const Usage& u);
// The whole (non-streamed) response.
nlohmann::json response_full(const ResponseMeta& m, const std::vector<ChoiceResult>& choices, const Usage& u);
// A choice's "logprobs" for `tokens`: null when meta.logprobs < 0; chat: {"content": [{"token", "logprob",
// "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}], "refusal": null}; completions: {"tokens",
// "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}, an unscored token's logprob and
// top_logprobs null.
nlohmann::json logprobs_json(const ResponseMeta& m, const std::vector<infer::TokenLogprob>& tokens);
// Streamed chunks: the chat role announcement, a text delta (with the logprobs of its tokens), a finish (empty
// delta + reason), the usage chunk.
nlohmann::json chunk_role(const ResponseMeta& m, size_t index);
nlohmann::json chunk_text(const ResponseMeta& m, size_t index, const std::string& text,
                          const std::vector<infer::TokenLogprob>& tokens = {});
nlohmann::json chunk_finish(const ResponseMeta& m, size_t index, const std::string& reason);
// A chunk carrying a reply's tool calls whole: delta {"tool_calls": [{"index", "id", "type", "function":
// {"name", "arguments"}}]}.
nlohmann::json chunk_tool_calls(const ResponseMeta& m, size_t index, const std::vector<chat::ToolCall>& calls);
nlohmann::json chunk_usage(const ResponseMeta& m, const Usage& u);

}  // namespace hearth::serve
