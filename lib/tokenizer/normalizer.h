// tokenizer.json "normalizer" components: text -> normalized text, applied to each stretch of input between
// added tokens (HF tokenizers semantics).
//
// Supported types: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip. Anything else
// (BertNormalizer, Precompiled, StripAccents, ...) is a FormatError naming the type. Offsets are not tracked (hearth
// needs ids only).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_json.h"

namespace hearth::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Normalizes valid UTF-8 text. Thread-safe.
  virtual std::string normalize(std::string_view text) const = 0;
};

// Builds the normalizer described by `j` (a component object); null JSON gives nullptr (no normalizer).
// Throws FormatError for unknown types or bad fields, naming `where`.
std::unique_ptr<Normalizer> normalizer_from_json(const nlohmann::json& j, const Where& where);

}  // namespace hearth::tokenizer
