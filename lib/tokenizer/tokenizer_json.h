// Helpers for reading tokenizer.json fields with FormatErrors that name the file and the field.
//
// Every component parser takes a `Where` (the file name plus the JSON path of the component, e.g.
// "tokenizer.json" and "pre_tokenizer.pretokenizers[1]") so that messages read
// "<file>: <field>: <what>; expected <x>, got <y>" as the house style asks. Internal to the tokenizer library.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace hearth::tokenizer {

// A location inside a tokenizer file: the file (origin) and a JSON path.
struct Where {
  std::string origin;
  std::string path;
  // The location of a child field: "model" -> "model.merges", or "decoders" + index -> "decoders[2]".
  Where operator/(const std::string& key) const { return {origin, path.empty() ? key : path + "." + key}; }
  Where at(size_t index) const { return {origin, path + "[" + std::to_string(index) + "]"}; }
};

// "<origin>: <path>: <what>; expected <expected>, got <got>" (the last part only when expected is given).
[[noreturn]] void throw_format(const Where& where, const std::string& what, const std::string& expected = "",
                               const std::string& got = "");
// A short rendering of a JSON value for messages (strings quoted, long values cut).
std::string json_brief(const nlohmann::json& value);

// The member `key` of object `j`; throws a FormatError when j is not an object or the key is missing.
const nlohmann::json& json_member(const nlohmann::json& j, const char* key, const Where& where);
// Typed readers: the member `key` of `j`, or `fallback` when absent or null. Wrong types throw FormatError.
std::string json_string(const nlohmann::json& j, const char* key, const Where& where, const std::string& fallback = "");
bool json_bool(const nlohmann::json& j, const char* key, const Where& where, bool fallback);
int64_t json_int(const nlohmann::json& j, const char* key, const Where& where, int64_t fallback);
// The "type" string of a component object.
std::string json_type(const nlohmann::json& j, const Where& where);

}  // namespace hearth::tokenizer
