// Reading JSON files with errors that name the file, line and field, and parsing JSON of bounded depth.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace hearth::io {

// Deepest nesting of arrays and objects hearth reads. Parsed JSON is copied and walked recursively, one stack
// frame or more per level (nlohmann's copies, the tokenizer's component readers, the Jinja engine): a 600 KB
// request body of "[[[[…" crashed `hearth serve` with a stack overflow. No real file or request comes near.
constexpr int kJsonMaxDepth = 256;

// Thrown by json_parse_bounded: "nested deeper than 256 levels". A FormatError; callers add the origin.
class JsonTooDeep : public FormatError {
 public:
  using FormatError::FormatError;
};

// Json::parse (nlohmann::json or ordered_json) that also refuses text nested deeper than kJsonMaxDepth, with
// JsonTooDeep, before it is built. Otherwise as Json::parse: syntax errors and numbers out of range throw
// nlohmann's exceptions, or, with allow_exceptions false, give a discarded value.
template <class Json = nlohmann::json>
Json json_parse_bounded(std::string_view text, bool allow_exceptions = true) {
  return Json::parse(
      text.begin(), text.end(),
      [](int depth, typename Json::parse_event_t, Json&) {
        if (depth > kJsonMaxDepth)
          throw JsonTooDeep("nested deeper than " + std::to_string(kJsonMaxDepth) + " levels of arrays and objects");
        return true;
      },
      allow_exceptions);
}

// Parses a JSON file. Missing/unreadable → IoError; malformed or nested too deep → FormatError with the byte
// position.
nlohmann::json json_read(const std::filesystem::path& path);
// Parses JSON text; `origin` names its source in the FormatError message (syntax errors, numbers beyond
// double's range such as 1e400, and nesting deeper than kJsonMaxDepth alike).
nlohmann::json json_parse(const std::string& text, const std::string& origin);

}  // namespace hearth::io
