#include "data/records.h"

#include <fmt/format.h>

#include "data/text_util.h"
#include "io/json_file.h"

namespace hearth::data {
using nlohmann::json;

namespace {

bool content_text(const json& c, const std::string& where, std::string* out, std::string* why) {
  if (c.is_string()) {
    *out = c.get<std::string>();
    return true;
  }
  if (c.is_array()) {  // OpenAI content parts
    out->clear();
    for (const auto& part : c) {
      // Not part.value("type", ""): it throws type_error when "type" holds something other than a string.
      if (part.is_object() && part.contains("type") && part["type"] == "text" && part.contains("text") &&
          part["text"].is_string())
        *out += part["text"].get<std::string>();
    }
    return true;
  }
  *why = fmt::format("{}: expected a string or a list of text parts, got {}", where, c.type_name());
  return false;
}

bool role_valid(const std::string& r) { return r == "system" || r == "user" || r == "assistant" || r == "tool"; }

std::string sharegpt_role(const std::string& from) {
  std::string f = lower(from);
  if (f == "human" || f == "user") return "user";
  if (f == "gpt" || f == "assistant" || f == "model" || f == "chatgpt" || f == "bard" || f == "bing")
    return "assistant";
  if (f == "system") return "system";
  if (f == "tool" || f == "function" || f == "observation" || f == "function_response") return "tool";
  return "";
}

// messages (OpenAI) or conversations (ShareGPT): `key` names the field, role/content field names differ.
bool chat_from_json(const json& arr, const char* key, bool sharegpt, Record* out, std::string* why) {
  if (!arr.is_array() || arr.empty()) {
    *why = fmt::format("{}: expected a non-empty array of messages, got {}", key,
                       arr.is_array() ? "an empty array" : arr.type_name());
    return false;
  }
  const char* role_key = sharegpt ? "from" : "role";
  const char* content_key = sharegpt ? "value" : "content";
  for (size_t i = 0; i < arr.size(); ++i) {
    const json& m = arr[i];
    std::string where = fmt::format("{}[{}]", key, i);
    if (!m.is_object() || !m.contains(role_key) || !m[role_key].is_string()) {
      *why = fmt::format("{}.{}: expected a string", where, role_key);
      return false;
    }
    Message msg;
    std::string role = m[role_key].get<std::string>();
    msg.role = sharegpt ? sharegpt_role(role) : role;
    if (!role_valid(msg.role)) {
      *why = fmt::format("{}.{}: expected {}, got '{}'", where, role_key,
                         sharegpt ? "human|gpt|system|tool" : "system|user|assistant|tool", role);
      return false;
    }
    auto c = m.find(content_key);
    if (c == m.end() || c->is_null()) {
      msg.content = "";
    } else if (!content_text(*c, where + "." + content_key, &msg.content, why)) {
      return false;
    }
    out->messages.push_back(std::move(msg));
  }
  out->kind = RecordKind::kChat;
  return true;
}

bool string_field(const json& j, const char* key, std::string* out, std::string* why) {
  const json& v = j[key];
  if (!v.is_string()) {
    *why = fmt::format("{}: expected a string, got {}", key, v.type_name());
    return false;
  }
  *out = v.get<std::string>();
  return true;
}

}  // namespace

bool record_from_json(const json& j, Record* out, std::string* why) {
  if (!j.is_object()) {
    *why = fmt::format("expected a JSON object, got {}", j.type_name());
    return false;
  }
  if (j.contains("messages")) return chat_from_json(j["messages"], "messages", false, out, why);
  if (j.contains("conversations")) return chat_from_json(j["conversations"], "conversations", true, out, why);
  if (j.contains("prompt") || j.contains("completion")) {
    if (!j.contains("prompt") || !j.contains("completion")) {
      *why = fmt::format("expected both 'prompt' and 'completion', got only '{}'",
                         j.contains("prompt") ? "prompt" : "completion");
      return false;
    }
    out->kind = RecordKind::kCompletion;
    return string_field(j, "prompt", &out->prompt, why) && string_field(j, "completion", &out->completion, why);
  }
  if (j.contains("text")) {
    out->kind = RecordKind::kText;
    return string_field(j, "text", &out->text, why);
  }
  *why = "unrecognized record; expected a field 'text', 'prompt'+'completion', 'messages' or 'conversations'";
  return false;
}

Extracted records_from_jsonl(std::string_view text) {
  Extracted ex;
  uint64_t line_no = 0;
  for (std::string_view line : lines_split(text)) {
    ++line_no;
    if (trim(line).empty()) continue;
    std::string problem = utf8_problem(line);
    if (!problem.empty()) {
      ex.issues.push_back({line_no, problem});
      continue;
    }
    json j;
    try {
      j = io::json_parse_bounded(line, /*allow_exceptions=*/false);
    } catch (const io::JsonTooDeep& e) {  // a record is copied level by level: too deep overflows the stack
      ex.issues.push_back({line_no, std::string("malformed JSON; ") + e.what()});
      continue;
    }
    if (j.is_discarded()) {
      ex.issues.push_back({line_no, "malformed JSON; expected one JSON object per line"});
      continue;
    }
    Record r;
    r.line = line_no;
    std::string why;
    if (!record_from_json(j, &r, &why)) {
      ex.issues.push_back({line_no, why});
      continue;
    }
    ex.records.push_back(std::move(r));
  }
  return ex;
}

bool json_document_parse(std::string_view text, json* out, Extracted* ex) {
  uint64_t line = 0;
  std::string problem = utf8_problem(text, 1, &line);
  if (!problem.empty()) {
    ex->issues.push_back({line, problem});
    ex->skip_reason = problem;
    return false;
  }
  try {
    *out = io::json_parse_bounded(text);
  } catch (const io::JsonTooDeep& e) {
    ex->issues.push_back({1, std::string("malformed JSON; ") + e.what()});
    ex->skip_reason = ex->issues.back().reason;
    return false;
  } catch (const json::exception& e) {  // syntax errors; numbers out of range such as 1e400 (no position: line 1)
    const auto* syntax = dynamic_cast<const json::parse_error*>(&e);
    uint64_t at = syntax ? line_of(text, syntax->byte > 0 ? syntax->byte - 1 : 0) : 1;
    ex->issues.push_back({at, "malformed JSON; expected an array of records or one record object"});
    ex->skip_reason = ex->issues.back().reason;
    return false;
  }
  return true;
}

Extracted records_from_json_value(const json& j) {
  Extracted ex;
  const json* items = &j;
  json single = json::array();
  if (!j.is_array()) {
    single.push_back(j);
    items = &single;
  }
  for (size_t i = 0; i < items->size(); ++i) {
    Record r;
    std::string why;
    if (!record_from_json((*items)[i], &r, &why)) {
      ex.issues.push_back({0, fmt::format("record [{}]: {}", i, why)});
      continue;
    }
    r.provenance.position = fmt::format("record [{}]", i);
    ex.records.push_back(std::move(r));
  }
  return ex;
}

Extracted records_from_json(std::string_view text) {
  Extracted ex;
  json j;
  if (!json_document_parse(text, &j, &ex)) return ex;
  return records_from_json_value(j);
}

}  // namespace hearth::data
