// JSON training records in the common shapes, from .jsonl (one record per line) and .json (an array of
// records, or one record) files:
//   {"text": "..."}                                              -> RecordKind::kText
//   {"prompt": "...", "completion": "..."}                       -> RecordKind::kCompletion
//   {"messages": [{"role": "user", "content": "..."}, ...]}      -> RecordKind::kChat (OpenAI)
//   {"conversations": [{"from": "human", "value": "..."}, ...]}  -> RecordKind::kChat (ShareGPT)
// OpenAI content may also be a list of parts ({"type": "text", "text": "..."}); the text parts are joined.
// ShareGPT "from" maps human/user -> user, gpt/assistant/model/chatgpt/bard/bing -> assistant, system,
// tool/function/observation -> tool. Other fields are ignored.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "data/record.h"

namespace hearth::data {

// One record from a parsed JSON value. On a shape problem returns false and sets `*why` to
// "<field>: <what>; expected <x>, got <y>".
bool record_from_json(const nlohmann::json& j, Record* out, std::string* why);

// Records of a .jsonl file: one per non-blank line; malformed lines become issues with their line number.
Extracted records_from_jsonl(std::string_view text);
// Records of a .json file: an array of records or a single record object.
Extracted records_from_json(std::string_view text);
// The same from a parsed file (records_from_json = json_document_parse + this).
Extracted records_from_json_value(const nlohmann::json& j);
// Parses a whole JSON file (UTF-8, bounded depth); on failure returns false with the issue (and skip_reason) in
// `ex`, naming the line.
bool json_document_parse(std::string_view text, nlohmann::json* out, Extracted* ex);

}  // namespace hearth::data
