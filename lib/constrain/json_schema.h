// JSON Schema -> Grammar: the outputs a schema allows, as a grammar Matcher and TokenMask can enforce while
// decoding (OpenAI's response_format json_schema, Ollama's format, `hearth generate --json-schema`).
//
// Supported (JSON Schema 2020-12 keywords): type (a name or a list), properties, required,
// additionalProperties (false, true, or a schema when there are no properties), enum, const, items,
// minItems, maxItems, minLength, maxLength, anyOf, allOf with one schema, $ref to "#" or a JSON pointer
// into the document ($defs, definitions), and boolean schemas (true). Annotations that constrain nothing are
// accepted: title, description, $schema, $id, $comment, default, examples, deprecated, readOnly, writeOnly,
// and $defs/definitions themselves. Any other keyword is refused (SchemaError naming it and where), never
// ignored: an output that ignores a keyword could fail validation.
//
// A JSON text may start with whitespace (RFC 8259; SentencePiece vocabularies begin words with a space) and
// ends with its value. What the grammar generates is a subset of what the schema accepts, so every complete output validates:
// properties come in the schema's order, each optional one present or not; no property beyond those listed
// (also when additionalProperties is absent or true, unless the object lists none); between tokens at most one
// space, or one line break and up to 20 spaces or tabs of indentation (so a model cannot loop on
// whitespace, as llama.cpp's grammars do); numbers have at
// most 16 integer digits, 15 fraction digits and 3 exponent digits.
// Not here: running the grammar (matcher.h), the vocabulary (token_mask.h).
#pragma once

#include <nlohmann/json.hpp>

#include "constrain/grammar.h"
#include "core/error.h"

namespace hearth::constrain {

// A schema hearth cannot enforce: the message names the keyword and its JSON pointer in the schema.
class SchemaError : public ConfigError {
 public:
  SchemaError(const std::string& message, std::string pointer) : ConfigError(message), where(std::move(pointer)) {}
  std::string where;  // JSON pointer of the offending keyword, e.g. "/properties/age/minimum"
};

// The grammar of JSON texts valid against `schema` (with the limits above). Throws SchemaError.
Grammar json_schema_grammar(const nlohmann::ordered_json& schema);

// The grammar of any JSON object (OpenAI's response_format {"type": "json_object"}, Ollama's "json").
Grammar json_object_grammar();

// Adds the rules for `schema` to `builder` and returns the rule of a value it accepts: for grammars that embed
// a JSON value in other text (tool calls). `schema` must outlive the call only.
uint32_t json_schema_rule(GrammarBuilder& builder, const nlohmann::ordered_json& schema);

}  // namespace hearth::constrain
