// tokenizer.json pre-tokenizers. See pre_tokenizer.h.
#include "tokenizer/pre_tokenizer.h"

#include <functional>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace hearth::tokenizer {

namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior behavior_from_json(const nlohmann::json& j, const Where& where, const std::string& fallback) {
  const std::string name = json_string(j, "behavior", where, fallback);
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  throw_format(where / "behavior", "unknown split behavior",
               "Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous", "\"" + name + "\"");
}

struct Part {
  size_t begin, end;
  bool is_match;
};

// Covers `text` with alternating non-match / match parts (HF Pattern::find_matches).
std::vector<Part> cover(size_t size, const std::vector<Span>& matches, bool invert) {
  std::vector<Part> parts;
  size_t prev = 0;
  for (const auto& [a, b] : matches) {
    if (a > prev) parts.push_back({prev, a, invert});
    parts.push_back({a, b, !invert});
    prev = b;
  }
  if (prev < size || parts.empty()) parts.push_back({prev, size, invert});
  return parts;
}

// Applies a split behaviour to the covering parts (HF NormalizedString::split), appending to `out`.
void apply_behavior(const std::string& text, std::vector<Part> parts, Behavior behavior,
                    std::vector<std::string>& out) {
  std::vector<Span> kept;
  bool previous_match = false;
  if (behavior == Behavior::kMergedWithNext) {
    for (size_t i = parts.size(); i-- > 0;) {
      const Part& p = parts[i];
      if (p.is_match && !previous_match && !kept.empty()) kept.back().first = p.begin;
      else kept.emplace_back(p.begin, p.end);
      previous_match = p.is_match;
    }
    for (size_t i = kept.size(); i-- > 0;) {
      if (kept[i].second > kept[i].first) out.push_back(text.substr(kept[i].first, kept[i].second - kept[i].first));
    }
    return;
  }
  for (const Part& p : parts) {
    switch (behavior) {
      case Behavior::kRemoved:
        if (!p.is_match) kept.emplace_back(p.begin, p.end);
        break;
      case Behavior::kIsolated: kept.emplace_back(p.begin, p.end); break;
      case Behavior::kMergedWithPrevious:
        if (p.is_match && !previous_match && !kept.empty()) kept.back().second = p.end;
        else kept.emplace_back(p.begin, p.end);
        break;
      case Behavior::kContiguous:
        if (p.is_match == previous_match && !kept.empty()) kept.back().second = p.end;
        else kept.emplace_back(p.begin, p.end);
        break;
      case Behavior::kMergedWithNext: break;
    }
    previous_match = p.is_match;
  }
  for (const auto& [a, b] : kept) {
    if (b > a) out.push_back(text.substr(a, b - a));
  }
}

// Each piece replaced by the pieces `fn` makes of it.
void split_each(std::vector<std::string>& pieces,
                const std::function<void(const std::string&, size_t, std::vector<std::string>&)>& fn) {
  std::vector<std::string> out;
  out.reserve(pieces.size() * 2);
  for (size_t i = 0; i < pieces.size(); ++i) fn(pieces[i], i, out);
  pieces.swap(out);
}

// Matches of one code point each, where `pred` holds.
std::vector<Span> char_matches(const std::string& text, const std::function<bool(uint32_t)>& pred) {
  std::vector<Span> spans;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    if (pred(utf8_next(text, pos))) spans.emplace_back(start, pos);
  }
  return spans;
}

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void split(std::vector<std::string>& pieces, bool first_segment) const override {
    for (const auto& p : parts_) p->split(pieces, first_segment);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::shared_ptr<Pattern> pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void split(std::vector<std::string>& pieces, bool) const override {
    split_each(pieces, [this](const std::string& piece, size_t, std::vector<std::string>& out) {
      std::vector<Span> matches;
      pattern_->find_all(piece, matches);
      apply_behavior(piece, cover(piece.size(), matches, invert_), behavior_, out);
    });
  }

 private:
  std::shared_ptr<Pattern> pattern_;
  Behavior behavior_;
  bool invert_;
};

// Splits on code points where a predicate holds (Digits, WhitespaceSplit, Punctuation).
class CharSplitPreTokenizer : public PreTokenizer {
 public:
  CharSplitPreTokenizer(std::function<bool(uint32_t)> pred, Behavior behavior)
      : pred_(std::move(pred)), behavior_(behavior) {}
  void split(std::vector<std::string>& pieces, bool) const override {
    split_each(pieces, [this](const std::string& piece, size_t, std::vector<std::string>& out) {
      apply_behavior(piece, cover(piece.size(), char_matches(piece, pred_), false), behavior_, out);
    });
  }

 private:
  std::function<bool(uint32_t)> pred_;
  Behavior behavior_;
};

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const Where& where)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern, where);
  }
  void split(std::vector<std::string>& pieces, bool) const override {
    split_each(pieces, [this](const std::string& piece, size_t, std::vector<std::string>& out) {
      std::string text = (add_prefix_space_ && (piece.empty() || piece[0] != ' ')) ? " " + piece : piece;
      if (!regex_) {
        if (!text.empty()) out.push_back(byte_level_encode(text));
        return;
      }
      std::vector<Span> matches;
      regex_->find_all(text, matches);
      std::vector<std::string> words;
      apply_behavior(text, cover(text.size(), matches, false), Behavior::kIsolated, words);
      for (const auto& w : words) out.push_back(byte_level_encode(w));
    });
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void split(std::vector<std::string>& pieces, bool first_segment) const override {
    split_each(pieces, [&](const std::string& piece, size_t index, std::vector<std::string>& out) {
      std::string text;
      for (char c : piece) {
        if (c == ' ') text += replacement_;
        else text += c;
      }
      const bool starts = text.compare(0, replacement_.size(), replacement_) == 0;
      const bool at_start = first_segment && index == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && at_start))) {
        text = replacement_ + text;
      }
      if (!split_) {
        if (!text.empty()) out.push_back(text);
        return;
      }
      std::vector<Span> matches;
      for (size_t at = text.find(replacement_); at != std::string::npos && !replacement_.empty();
           at = text.find(replacement_, at + replacement_.size())) {
        matches.emplace_back(at, at + replacement_.size());
      }
      apply_behavior(text, cover(text.size(), matches, false), Behavior::kMergedWithNext, out);
    });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

PrependScheme prepend_scheme_from_json(const nlohmann::json& j, const Where& where) {
  if (!j.contains("prepend_scheme")) {
    return json_bool(j, "add_prefix_space", where, true) ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  const std::string s = json_string(j, "prepend_scheme", where);
  if (s == "always") return PrependScheme::kAlways;
  if (s == "first") return PrependScheme::kFirst;
  if (s == "never") return PrependScheme::kNever;
  throw_format(where / "prepend_scheme", "unknown prepend scheme", "always, first or never", "\"" + s + "\"");
}

bool is_ascii_digit(uint32_t cp) { return cp >= '0' && cp <= '9'; }

std::unique_ptr<PreTokenizer> sequence_from_json(const nlohmann::json& j, const Where& where) {
  const auto& list = json_member(j, "pretokenizers", where);
  if (!list.is_array()) throw_format(where / "pretokenizers", "wrong type", "an array", json_brief(list));
  std::vector<std::unique_ptr<PreTokenizer>> parts;
  for (size_t i = 0; i < list.size(); ++i) {
    if (auto p = pre_tokenizer_from_json(list[i], (where / "pretokenizers").at(i))) parts.push_back(std::move(p));
  }
  return std::make_unique<SequencePreTokenizer>(std::move(parts));
}

}  // namespace

std::unique_ptr<PreTokenizer> pre_tokenizer_from_json(const nlohmann::json& j, const Where& where) {
  if (j.is_null()) return nullptr;
  const std::string type = json_type(j, where);
  if (type == "Sequence") return sequence_from_json(j, where);
  if (type == "Split") {
    auto pattern = std::make_shared<Pattern>(json_member(j, "pattern", where), where / "pattern");
    return std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior_from_json(j, where, ""),
                                               json_bool(j, "invert", where, false));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(json_bool(j, "add_prefix_space", where, true),
                                                   json_bool(j, "use_regex", where, true), where);
  }
  if (type == "Digits") {
    const bool individual = json_bool(j, "individual_digits", where, false);
    return std::make_unique<CharSplitPreTokenizer>(is_ascii_digit,
                                                   individual ? Behavior::kIsolated : Behavior::kContiguous);
  }
  if (type == "WhitespaceSplit") {
    return std::make_unique<CharSplitPreTokenizer>(is_unicode_whitespace, Behavior::kRemoved);
  }
  if (type == "Whitespace") {
    // HF: the regex \w+|[^\w\s]+, inverted, Removed == keep only the matches.
    auto pattern = std::make_shared<Pattern>(nlohmann::json{{"Regex", R"(\w+|[^\w\s]+)"}}, where);
    return std::make_unique<SplitPreTokenizer>(std::move(pattern), Behavior::kRemoved, true);
  }
  if (type == "Punctuation") {
    auto pattern = std::make_shared<Pattern>(
        nlohmann::json{{"Regex", R"([\p{P}\x{21}-\x{2F}\x{3A}-\x{40}\x{5B}-\x{60}\x{7B}-\x{7E}])"}}, where);
    return std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior_from_json(j, where, "Isolated"), false);
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePreTokenizer>(json_string(j, "replacement", where, "\u2581"),
                                                   prepend_scheme_from_json(j, where),
                                                   json_bool(j, "split", where, true));
  }
  throw_format(where / "type", "unsupported pre_tokenizer",
               "one of Sequence, Split, ByteLevel, Digits, Whitespace, WhitespaceSplit, Punctuation, Metaspace",
               "\"" + type + "\"");
}

}  // namespace hearth::tokenizer
