// Added tokens (tokenizer.json "added_tokens"): special and user tokens matched in the text before the
// model sees it.
//
// HF tokenizers semantics (added_vocabulary.rs): tokens with normalized=false are matched in the raw text,
// tokens with normalized=true in each normalized stretch between those (their content normalized too);
// matching is leftmost-longest; single_word requires no word character on either side; lstrip/rstrip
// absorb whitespace on that side. With parse_special=false the special tokens are not recognized (HF
// `encode_special_tokens`/`split_special_tokens`); non-special added tokens still are. Plain spans narrow
// that to parts of the text (a chat prompt's message content; hearth's own, HF has no such thing).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/normalizer.h"
#include "tokenizer/tokenizer_json.h"

namespace hearth::tokenizer {

using TokenId = int32_t;

// Byte ranges [begin, end) of a text, sorted and disjoint.
using ByteSpans = std::vector<std::pair<size_t, size_t>>;

struct AddedToken {
  TokenId id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// Parses one entry of "added_tokens" (FormatError at `where` when malformed).
AddedToken added_token_from_json(const nlohmann::json& j, const Where& where);

// A stretch of text: either an added token (id >= 0) or text for the model (id == -1).
struct Segment {
  std::string text;
  TokenId id = -1;
  bool at_input_start = false;  // begins at byte 0 of the input (Metaspace prepend_scheme "first")
};

class AddedVocabulary {
 public:
  // `normalizer` (may be null) normalizes text stretches and the content of normalized tokens; it must
  // outlive this object.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);
  AddedVocabulary(AddedVocabulary&&) noexcept;
  ~AddedVocabulary();

  // Splits `text` (valid UTF-8) into added tokens and normalized text stretches, in order. With
  // parse_special, a special token whose match overlaps one of the `plain` spans (byte ranges of `text`) is
  // not recognized, as if parse_special were false there; normalized special tokens (normalized=true, rare)
  // are matched after normalization, where offsets are gone, so none is recognized in a stretch between
  // added tokens that overlaps a plain span. Thread-safe.
  std::vector<Segment> split_and_normalize(std::string_view text, bool parse_special,
                                           const ByteSpans& plain = {}) const;

  const AddedToken* by_id(TokenId id) const;
  const AddedToken* by_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  class Trie;
  // Appends the pieces of `text` split at matches of `trie` (HF AddedVocabulary::find_matches), skipping
  // special tokens that overlap `plain` (byte ranges of `text`; may be null).
  void split_with(const Trie& trie, const std::string& text, bool parse_special, const ByteSpans* plain, bool at_start,
                  std::vector<Segment>& out) const;

  std::vector<AddedToken> tokens_;
  const Normalizer* normalizer_;
  std::unordered_map<TokenId, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  std::unique_ptr<Trie> raw_trie_;         // normalized == false
  std::unique_ptr<Trie> normalized_trie_;  // normalized == true (content normalized)
};

}  // namespace hearth::tokenizer
