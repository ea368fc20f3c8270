// A compiled PCRE2 regular expression (UTF + UCP) for tokenizer patterns, and the "pattern" objects of
// tokenizer.json ({"String": ...} or {"Regex": ...}).
//
// HF tokenizers compiles patterns with Oniguruma; PCRE2 agrees with it on the constructs tokenizer.json files
// use (\p{L}, \p{N}, look-ahead, (?i:...), {m,n}). One difference is bridged: Oniguruma's \s also matches
// U+0085 (NEL), so \s / \S are rewritten to include it. Not here: split behaviours (pre_tokenizer.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_json.h"

namespace hearth::tokenizer {

// Byte range [first, second) of a match.
using Span = std::pair<size_t, size_t>;

class Regex {
 public:
  // Compiles `pattern`; a syntax error is a FormatError at `where`.
  Regex(const std::string& pattern, const Where& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the successive non-overlapping matches in `text` (valid UTF-8) to `out`. Empty matches are
  // skipped. Thread-safe.
  void find_all(std::string_view text, std::vector<Span>& out) const;
  // The first match in `text` (valid UTF-8), or false. When it matches and `groups` is given, it holds the
  // match and then each capture group ({npos, npos} for a group that took no part). Thread-safe.
  bool search(std::string_view text, std::vector<Span>* groups = nullptr) const;

 private:
  struct Code;
  std::unique_ptr<Code> code_;
};

// A tokenizer.json "pattern": a literal string or a regex.
class Pattern {
 public:
  // j: {"String": "..."} or {"Regex": "..."}; anything else is a FormatError at `where`.
  Pattern(const nlohmann::json& j, const Where& where);
  // Appends non-overlapping matches, left to right. An empty literal matches nothing.
  void find_all(std::string_view text, std::vector<Span>& out) const;
  // The first match in `text` (valid UTF-8), or false. When it matches and `groups` is given, it holds the
  // match and then each capture group ({npos, npos} for a group that took no part). Thread-safe.
  bool search(std::string_view text, std::vector<Span>* groups = nullptr) const;

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
};

// `text` with every match of `pattern` replaced by `content`.
std::string pattern_replace(const Pattern& pattern, std::string_view text, std::string_view content);

}  // namespace hearth::tokenizer
