// tokenizer.json "decoder" components: token strings -> text (HF tokenizers decoders/*.rs).
//
// A decoder rewrites the list of token strings (decode_chain); the final text is their concatenation.
// Supported types: Sequence, ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace. Anything else is a
// FormatError naming the type. The results may contain U+FFFD where the bytes are not valid UTF-8.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_json.h"

namespace hearth::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites `tokens` in place. Thread-safe.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  // As decode_chain, but bytes that are not valid UTF-8 stay as they are (no U+FFFD): the raw bytes tokens
  // stand for, for matching a token against a grammar (lib/constrain).
  virtual void decode_chain_bytes(std::vector<std::string>& tokens) const { decode_chain(tokens); }
};

// Builds the decoder described by `j`; null JSON gives nullptr (tokens are joined with spaces, as HF).
// Throws FormatError for unknown types or bad fields, naming `where`.
std::unique_ptr<Decoder> decoder_from_json(const nlohmann::json& j, const Where& where);

}  // namespace hearth::tokenizer
