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

json choice_delta(const ResponseMeta& m, size_t index, const json& delta, const json& reason) {
  if (m.endpoint == Endpoint::kChat)
    return {{"index", index}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", reason}};
  return {{"index", index}, {"text", delta.value("content", "")}, {"logprobs", nullptr}, {"finish_reason", reason}};
}

}  // namespace

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
    if (chat)
      list.push_back({{"index", i},
                      {"message", {{"role", "assistant"}, {"content", choices[i].text}, {"refusal", nullptr}}},
                      {"logprobs", nullptr},
                      {"finish_reason", choices[i].finish_reason}});
    else
      list.push_back({{"index", i},
                      {"text", choices[i].text},
                      {"logprobs", nullptr},
                      {"finish_reason", choices[i].finish_reason}});
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

json chunk_text(const ResponseMeta& m, size_t index, const std::string& text) {
  json c = chunk_base(m);
  c["choices"] = json::array({choice_delta(m, index, {{"content", text}}, nullptr)});
  return c;
}

json chunk_finish(const ResponseMeta& m, size_t index, const std::string& reason) {
  json c = chunk_base(m);
  c["choices"] = json::array({choice_delta(m, index, json::object(), reason)});
  return c;
}

json chunk_usage(const ResponseMeta& m, const Usage& u) {
  json c = chunk_base(m);
  c["choices"] = json::array();
  c["usage"] = usage_json(u);
  return c;
}

}  // namespace hearth::serve
