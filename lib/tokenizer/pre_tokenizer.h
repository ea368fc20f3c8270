// tokenizer.json "pre_tokenizer" components: split normalized text into the words the model tokenizes.
//
// Supported types: Sequence, Split (String or Regex pattern, every `behavior`, `invert`), ByteLevel
// (add_prefix_space, use_regex with the GPT-2 pattern), Digits, Whitespace, WhitespaceSplit, Punctuation,
// Metaspace. Anything else is a FormatError naming the type. Semantics follow HF tokenizers'
// pre_tokenizers/*.rs and NormalizedString::split; offsets are not tracked.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_json.h"

namespace hearth::tokenizer {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits each piece of `pieces` (valid UTF-8) further, in order; empty pieces are dropped.
  // `first_segment`: the pieces come from the stretch of text that starts the input (for Metaspace's
  // prepend_scheme "first"). Thread-safe.
  virtual void split(std::vector<std::string>& pieces, bool first_segment) const = 0;
};

// Builds the pre-tokenizer described by `j`; null JSON gives nullptr (the whole text is one word).
// Throws FormatError for unknown types or bad fields, naming `where`.
std::unique_ptr<PreTokenizer> pre_tokenizer_from_json(const nlohmann::json& j, const Where& where);

}  // namespace hearth::tokenizer
