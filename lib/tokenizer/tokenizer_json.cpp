// FormatError helpers for tokenizer.json fields. See tokenizer_json.h.
#include "tokenizer/tokenizer_json.h"

namespace hearth::tokenizer {

void throw_format(const Where& where, const std::string& what, const std::string& expected, const std::string& got) {
  std::string message = where.origin + ": " + (where.path.empty() ? "" : where.path + ": ") + what;
  if (!expected.empty()) message += "; expected " + expected + ", got " + got;
  throw FormatError(message);
}

std::string json_brief(const nlohmann::json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

const nlohmann::json& json_member(const nlohmann::json& j, const char* key, const Where& where) {
  if (!j.is_object()) throw_format(where, "not an object", "a JSON object", json_brief(j));
  auto it = j.find(key);
  if (it == j.end()) throw_format(where / key, "missing", std::string("a \"") + key + "\" field", "none");
  return *it;
}

std::string json_string(const nlohmann::json& j, const char* key, const Where& where, const std::string& fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) throw_format(where / key, "wrong type", "a string", json_brief(*it));
  return it->get<std::string>();
}

bool json_bool(const nlohmann::json& j, const char* key, const Where& where, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw_format(where / key, "wrong type", "true or false", json_brief(*it));
  return it->get<bool>();
}

int64_t json_int(const nlohmann::json& j, const char* key, const Where& where, int64_t fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) throw_format(where / key, "wrong type", "an integer", json_brief(*it));
  return it->get<int64_t>();
}

std::string json_type(const nlohmann::json& j, const Where& where) {
  if (!j.is_object()) throw_format(where, "not an object", "a component object", json_brief(j));
  auto it = j.find("type");
  if (it == j.end() || !it->is_string()) {
    throw_format(where / "type", "missing component type", "a \"type\" string",
                 it == j.end() ? "none" : json_brief(*it));
  }
  return it->get<std::string>();
}

}  // namespace hearth::tokenizer
