#include "serve/response.h"

#include <atomic>
#include <chrono>
#include <random>

#include <fmt/format.h>

namespace hearth::serve {
namespace {

using json = nlohmann::json;

json chunk_base(const ResponseMeta& m) {
  bool chat = m.endpoint == Endpoint::kChat;
  return {{"id", m.id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", m.created},
          {"model", m.model},
          {"system_fingerprint", nullptr}};
}

json choice_delta(const ResponseMeta& m, size_t index, const json& delta, const json& reason,
                  const json& logprobs = nullptr) {
  if (m.endpoint == Endpoint::kChat)
    return {{"index", index}, {"delta", delta}, {"logprobs", logprobs}, {"finish_reason", reason}};
  return {{"index", index}, {"text", delta.value("content", "")}, {"logprobs", logprobs}, {"finish_reason", reason}};
}

}  // namespace

json token_bytes_json(const infer::TokenProb& t) {
  json out = json::array();
  for (unsigned char c : t.bytes.empty() ? t.text : t.bytes) out.push_back(static_cast<int>(c));
  return out;
}

ResponseMeta response_meta(Endpoint endpoint, const std::string& model) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  ResponseMeta m;
  m.endpoint = endpoint;
  m.model = model;
  m.created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  m.id = fmt::format("{}-{:x}{:06x}", endpoint == Endpoint::kChat ? "chatcmpl" : "cmpl", salt & 0xffffffffff,
                     ++counter);
  return m;
}

json logprobs_json(const ResponseMeta& m, const std::vector<infer::TokenLogprob>& tokens) {
  if (m.logprobs < 0) return nullptr;
  if (m.endpoint == Endpoint::kChat) {
    json content = json::array();
    for (const auto& t : tokens) {
      json top = json::array();
      for (const auto& a : t.top)
        top.push_back({{"token", a.text}, {"logprob", a.logprob}, {"bytes", token_bytes_json(a)}});
      content.push_back({{"token", t.chosen.text},
                         {"logprob", t.chosen.logprob},
                         {"bytes", token_bytes_json(t.chosen)},
                         {"top_logprobs", top}});
    }
    return {{"content", content}, {"refusal", nullptr}};
  }
  json text = json::array(), logprob = json::array(), top = json::array(), offset = json::array();
  for (const auto& t : tokens) {
    text.push_back(t.chosen.text);
    offset.push_back(t.text_offset);
    if (!t.scored) {  // an echoed prompt's first token: nothing predicts it
      logprob.push_back(nullptr);
      top.push_back(nullptr);
      continue;
    }
    logprob.push_back(t.chosen.logprob);
    json alternatives = json::object();
    for (const auto& a : t.top)  // two ids with the same text keep the likelier one's value
      if (!alternatives.contains(a.text)) alternatives[a.text] = a.logprob;
    top.push_back(alternatives);
  }
  return {{"tokens", text}, {"token_logprobs", logprob}, {"top_logprobs", top}, {"text_offset", offset}};
}

json tool_calls_json(const std::vector<chat::ToolCall>& calls, bool with_index) {
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json c = {{"id", calls[i].id},
              {"type", "function"},
              {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
    if (with_index) c["index"] = i;
    out.push_back(std::move(c));
  }
  return out;
}

// A chat choice's message: the text, or with tools the text outside the calls (null when there is none) and the
// calls; `reason` becomes "tool_calls" when there are calls.
json chat_message(const ResponseMeta& m, const std::string& text, std::string& reason) {
  json msg = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  if (!m.tools) return msg;
  chat::ToolReply reply = chat::tool_reply_parse(m.tool_format, m.tool_prefix + text);
  if (reply.calls.empty()) {
    msg["content"] = text;  // the prefix is the prompt's, not the reply's
    return msg;
  }
  msg["content"] = reply.content.empty() ? json(nullptr) : json(reply.content);
  msg["tool_calls"] = tool_calls_json(reply.calls, false);
  reason = "tool_calls";
  return msg;
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json response_full(const ResponseMeta& m, const std::vector<ChoiceResult>& choices, const Usage& u) {
  bool chat = m.endpoint == Endpoint::kChat;
  json out = {{"id", m.id},
              {"object", chat ? "chat.completion" : "text_completion"},
              {"created", m.created},
              {"model", m.model},
              {"system_fingerprint", nullptr}};
  json list = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    if (chat) {
      std::string reason = choices[i].finish_reason;
      json message = chat_message(m, choices[i].text, reason);
      list.push_back({{"index", i},
                      {"message", std::move(message)},
                      {"logprobs", logprobs_json(m, choices[i].logprobs)},
                      {"finish_reason", reason}});
    } else {
      list.push_back({{"index", i},
                      {"text", choices[i].text},
                      {"logprobs", logprobs_json(m, choices[i].logprobs)},
                      {"finish_reason", choices[i].finish_reason}});
    }
  }
  out["choices"] = list;
  out["usage"] = usage_json(u);
  return out;
}

json chunk_role(const ResponseMeta& m, size_t index) {
  json c = chunk_base(m);
  c["choices"] = json::array({choice_delta(m, index, {{"role", "assistant"}, {"content", ""}}, nullptr)});
  return c;
}

json chunk_text(const ResponseMeta& m, size_t index, const std::string& text,
                const std::vector<infer::TokenLogprob>& tokens) {
  json c = chunk_base(m);
  c["choices"] = json::array({choice_delta(m, index, {{"content", text}}, nullptr, logprobs_json(m, tokens))});
  return c;
}

json chunk_finish(const ResponseMeta& m, size_t index, const std::string& reason) {
  json c = chunk_base(m);
  c["choices"] = json::array({choice_delta(m, index, json::object(), reason)});
  return c;
}

json chunk_tool_calls(const ResponseMeta& m, size_t index, const std::vector<chat::ToolCall>& calls) {
  json c = chunk_base(m);
  c["choices"] = json::array({choice_delta(m, index, {{"tool_calls", tool_calls_json(calls, true)}}, nullptr)});
  return c;
}

json chunk_usage(const ResponseMeta& m, const Usage& u) {
  json c = chunk_base(m);
  c["choices"] = json::array();
  c["usage"] = usage_json(u);
  return c;
}

}  // namespace hearth::serve
