// Tool-call formats. See tool_calls.h.
#include "chat/tool_calls.h"

#include <random>

#include "constrain/json_schema.h"

namespace hearth::chat {

namespace {

using ojson = nlohmann::ordered_json;

constexpr const char* kHermesOpen = "<tool_call>";
constexpr const char* kHermesClose = "</tool_call>";
constexpr const char* kMistralMarker = "[TOOL_CALLS]";
constexpr const char* kPythonTag = "<|python_tag|>";

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

std::string call_id(ToolFormat format) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = format == ToolFormat::kMistral ? "" : "call_";
  const int n = format == ToolFormat::kMistral ? 9 : 24;
  for (int i = 0; i < n; ++i) id += kChars[rng() % (sizeof(kChars) - 1)];
  return id;
}

// {"name": N, "arguments"|"parameters": {...}} -> a call; false when the object is not one.
bool call_from_json(const ojson& j, ToolFormat format, std::vector<ToolCall>& out) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  ojson args = j.contains("arguments") ? j["arguments"] : j.contains("parameters") ? j["parameters"] : ojson::object();
  if (args.is_string()) {
    try {
      args = ojson::parse(args.get<std::string>());
    } catch (const ojson::exception&) {
      return false;
    }
  }
  if (!args.is_object()) return false;
  out.push_back({call_id(format), j["name"].get<std::string>(), args.dump()});
  return true;
}

bool parse_json(const std::string& text, ojson& out) {
  try {
    out = ojson::parse(text);
    return true;
  } catch (const ojson::exception&) {
    return false;
  }
}

// The calls in `text` (which starts at a call's marker), and the text outside them. false: not well-formed.
bool calls_parse(ToolFormat format, const std::string& text, ToolReply& reply) {
  ojson j;
  if (format == ToolFormat::kHermes) {
    size_t at = 0;
    while ((at = text.find(kHermesOpen, at)) != std::string::npos) {
      const size_t body = at + std::string(kHermesOpen).size();
      const size_t close = text.find(kHermesClose, body);
      if (!parse_json(trim(text.substr(body, close == std::string::npos ? std::string::npos : close - body)), j) ||
          !call_from_json(j, format, reply.calls))
        return false;
      const size_t next = close == std::string::npos ? text.size() : close + std::string(kHermesClose).size();
      const size_t following = text.find(kHermesOpen, next);
      reply.content += text.substr(next, following == std::string::npos ? std::string::npos : following - next);
      at = next;
    }
    return !reply.calls.empty();
  }
  std::string body = trim(text);
  const std::string marker = format == ToolFormat::kMistral ? kMistralMarker : kPythonTag;
  if (starts_with(body, marker)) body = trim(body.substr(marker.size()));
  if (!parse_json(body, j)) {
    // Llama 3.2 sometimes writes several calls separated by ';'.
    if (format != ToolFormat::kLlama3Json || body.find(';') == std::string::npos) return false;
    j = ojson::array();
    size_t from = 0;
    for (size_t semi; from <= body.size(); from = semi + 1) {
      semi = body.find(';', from);
      if (semi == std::string::npos) semi = body.size();
      ojson one;
      if (!parse_json(trim(body.substr(from, semi - from)), one)) return false;
      j.push_back(one);
    }
  }
  if (!j.is_array()) j = ojson::array({j});
  for (const auto& c : j) {
    if (!call_from_json(c, format, reply.calls)) return false;
  }
  return !reply.calls.empty();
}

}  // namespace

ToolStyle tool_style_detect(const nlohmann::json& tokenizer_config) {
  ToolStyle style;
  if (!tokenizer_config.is_object() || !tokenizer_config.contains("chat_template")) return style;
  const std::string t = tokenizer_config["chat_template"].dump();
  if (t.find(kMistralMarker) != std::string::npos) {
    style = {ToolFormat::kMistral, true};
  } else if (t.find(kHermesOpen) != std::string::npos) {
    style = {ToolFormat::kHermes, true};
  } else if (t.find("ipython") != std::string::npos || t.find(kPythonTag) != std::string::npos) {
    style = {ToolFormat::kLlama3Json, true};
  }
  return style;
}

ojson tool_messages_fallback(const ojson& messages, const ojson& tools) {
  std::string described = "Functions you can call (JSON Schema):\n<tools>\n";
  for (const auto& t : tools) described += t.dump() + "\n";
  described +=
      "</tools>\nTo call one, answer with a block per call:\n<tool_call>\n{\"name\": \"the function\", "
      "\"arguments\": {...}}\n</tool_call>";
  ojson out = ojson::array();
  size_t first = 0;
  if (tools.empty()) {
    // Nothing to describe; earlier calls and results are still rewritten below.
  } else if (!messages.empty() && messages[0].value("role", "") == "system" && messages[0]["content"].is_string()) {
    out.push_back({{"role", "system"}, {"content", messages[0]["content"].get<std::string>() + "\n\n" + described}});
    first = 1;
  } else {
    out.push_back({{"role", "system"}, {"content", described}});
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ojson& m = messages[i];
    const std::string role = m.value("role", "");
    const std::string content = m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : "";
    if (role == "assistant" && m.contains("tool_calls") && m["tool_calls"].is_array()) {
      std::string text = content;
      for (const auto& c : m["tool_calls"]) {
        const ojson& f = c.contains("function") ? c["function"] : c;
        ojson call = {{"name", f.value("name", "")}, {"arguments", f.value("arguments", ojson::object())}};
        text += (text.empty() ? "" : "\n") + std::string(kHermesOpen) + "\n" + call.dump() + "\n" + kHermesClose;
      }
      out.push_back({{"role", "assistant"}, {"content", text}});
    } else if (role == "tool") {
      out.push_back({{"role", "user"}, {"content", "<tool_response>\n" + content + "\n</tool_response>"}});
    } else {
      out.push_back(m);
    }
  }
  return out;
}

std::string ToolStream::push(const std::string& text) {
  all_ += text;
  if (in_call_) return "";
  std::string out;
  if (format_ == ToolFormat::kLlama3Json) {  // a call is the whole reply
    if (!never_) {
      const size_t p = all_.find_first_not_of(" \t\r\n");
      if (p == std::string::npos) return "";
      const std::string rest = all_.substr(p);
      if (rest[0] == '{' || starts_with(rest, kPythonTag)) {
        in_call_ = true;
        return "";
      }
      if (starts_with(kPythonTag, rest)) return "";  // may still become the tag
      never_ = true;
    }
    out = all_.substr(sent_);
    sent_ = all_.size();
    return out;
  }
  const std::string marker = format_ == ToolFormat::kHermes ? kHermesOpen : kMistralMarker;
  const size_t m = all_.find(marker, sent_);
  if (m != std::string::npos) {
    out = all_.substr(sent_, m - sent_);
    sent_ = m;
    in_call_ = true;
    return out;
  }
  // Hold back the longest end of the text that may be the start of the marker.
  size_t hold = 0;
  for (size_t k = std::min(marker.size() - 1, all_.size() - sent_); k > 0 && hold == 0; --k) {
    if (all_.compare(all_.size() - k, k, marker, 0, k) == 0) hold = k;
  }
  out = all_.substr(sent_, all_.size() - sent_ - hold);
  sent_ += out.size();
  return out;
}

ToolReply ToolStream::finish() {
  ToolReply reply;
  const std::string rest = all_.substr(sent_);
  sent_ = all_.size();
  if (in_call_ && calls_parse(format_, rest, reply)) {
    reply.content = trim(reply.content);
    return reply;
  }
  return {rest, {}};
}

ToolReply tool_reply_parse(ToolFormat format, const std::string& text) {
  ToolStream s(format);
  std::string content = s.push(text);
  ToolReply r = s.finish();
  r.content = r.calls.empty() ? content + r.content : trim(content + (r.content.empty() ? "" : "\n" + r.content));
  return r;
}

std::string tool_call_prefix(ToolFormat format) { return format == ToolFormat::kMistral ? kMistralMarker : ""; }

constrain::Grammar tool_call_grammar(ToolFormat format, const ojson& tools, const std::string& name, bool parallel) {
  using constrain::GrammarBuilder;
  using constrain::Sequence;
  GrammarBuilder b;
  const uint32_t call = b.rule("call");
  const std::string args_key = format == ToolFormat::kLlama3Json ? "parameters" : "arguments";
  for (size_t i = 0; i < tools.size(); ++i) {
    const ojson& f = tools[i]["function"];
    const std::string fname = f["name"].get<std::string>();
    if (!name.empty() && fname != name) continue;
    const ojson params = f.contains("parameters") && !f["parameters"].is_null() ? f["parameters"] : ojson{{"type", "object"}};
    uint32_t args = 0;
    try {
      args = constrain::json_schema_rule(b, params);
    } catch (const constrain::SchemaError& e) {
      throw constrain::SchemaError(e.what(), "tools[" + std::to_string(i) + "].function.parameters" + e.where);
    }
    b.add(call, b.literal("{\"name\": " + ojson(fname).dump() + ", \"" + args_key + "\": ") + GrammarBuilder::ref(args) +
                    b.literal("}"));
  }
  const uint32_t root = b.rule("root");
  if (format == ToolFormat::kLlama3Json) {
    b.add(root, {GrammarBuilder::ref(call)});
  } else if (format == ToolFormat::kMistral) {
    const uint32_t more = b.repeat(b.literal(", ") + GrammarBuilder::ref(call), 0, parallel ? -1 : 0, "more-calls");
    const uint32_t space = b.rule("space");
    b.add(space, {});
    b.add(space, b.literal(" "));
    b.add(root, Sequence{GrammarBuilder::ref(space)} + b.literal("[") + GrammarBuilder::ref(call) +
                    GrammarBuilder::ref(more) + b.literal("]"));
  } else {
    const Sequence block =
        b.literal(std::string(kHermesOpen) + "\n") + GrammarBuilder::ref(call) + b.literal(std::string("\n") + kHermesClose);
    const uint32_t more = b.repeat(b.literal("\n") + block, 0, parallel ? -1 : 0, "more-calls");
    b.add(root, block + GrammarBuilder::ref(more));
  }
  return b.build(root);
}

}  // namespace hearth::chat
