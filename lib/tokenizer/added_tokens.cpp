// Added-token matching. See added_tokens.h.
#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace hearth::tokenizer {

AddedToken added_token_from_json(const nlohmann::json& j, const Where& where) {
  AddedToken t;
  const auto& id = json_member(j, "id", where);
  if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
    throw_format(where / "id", "bad token id", "a non-negative integer", json_brief(id));
  }
  t.id = static_cast<TokenId>(id.get<int64_t>());
  const auto& content = json_member(j, "content", where);
  if (!content.is_string() || content.get<std::string>().empty()) {
    throw_format(where / "content", "bad added token", "a non-empty string", json_brief(content));
  }
  t.content = content.get<std::string>();
  t.single_word = json_bool(j, "single_word", where, false);
  t.lstrip = json_bool(j, "lstrip", where, false);
  t.rstrip = json_bool(j, "rstrip", where, false);
  t.normalized = json_bool(j, "normalized", where, true);
  t.special = json_bool(j, "special", where, false);
  return t;
}

// Byte trie over token contents; finds the longest token starting at a position.
class AddedVocabulary::Trie {
 public:
  void insert(std::string_view key, size_t token_index) {
    int node = 0;
    for (char c : key) {
      auto& children = nodes_[node].children;
      auto it = std::find_if(children.begin(), children.end(), [c](const auto& e) { return e.first == c; });
      if (it == children.end()) {
        nodes_.push_back({});
        nodes_[node].children.emplace_back(c, static_cast<int>(nodes_.size() - 1));
        node = static_cast<int>(nodes_.size() - 1);
      } else {
        node = it->second;
      }
    }
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int>(token_index);  // first one wins
  }
  bool empty() const { return nodes_.size() == 1; }
  // Longest match at text[pos]: {length, token index}, or {0, -1}.
  std::pair<size_t, int> longest_at(std::string_view text, size_t pos) const {
    std::pair<size_t, int> best{0, -1};
    int node = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      const auto& children = nodes_[node].children;
      const char c = text[i];
      auto it = std::find_if(children.begin(), children.end(), [c](const auto& e) { return e.first == c; });
      if (it == children.end()) break;
      node = it->second;
      if (nodes_[node].token >= 0) best = {i + 1 - pos, nodes_[node].token};
    }
    return best;
  }

 private:
  struct Node {
    std::vector<std::pair<char, int>> children;
    int token = -1;
  };
  std::vector<Node> nodes_{Node{}};
};

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)),
      normalizer_(normalizer),
      raw_trie_(std::make_unique<Trie>()),
      normalized_trie_(std::make_unique<Trie>()) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    by_id_[t.id] = i;
    by_content_[t.content] = i;
    if (!t.normalized) {
      raw_trie_->insert(t.content, i);
    } else {
      const std::string key = normalizer_ ? normalizer_->normalize(t.content) : t.content;
      if (!key.empty()) normalized_trie_->insert(key, i);
    }
  }
}

AddedVocabulary::AddedVocabulary(AddedVocabulary&&) noexcept = default;
AddedVocabulary::~AddedVocabulary() = default;

const AddedToken* AddedVocabulary::by_id(TokenId id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

namespace {

bool is_word_char(uint32_t cp) {
  if (cp == '_') return true;
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  static const Regex alnum(R"(^[\p{L}\p{N}])", Where{"added_tokens", "single_word"});
  std::string s;
  utf8_append(s, cp);
  std::vector<Span> m;
  alnum.find_all(s, m);
  return !m.empty();
}

uint32_t last_char(std::string_view s) {
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return utf8_next(s, start);
}

// Byte offset just past the last non-whitespace character of s[0, end), or 0.
size_t strip_left_to(std::string_view s, size_t end) {
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t next = start;
    if (!is_unicode_whitespace(utf8_next(s, next))) return end;
    end = start;
  }
  return 0;
}

// Whether [begin, end) overlaps one of `spans` (sorted, disjoint).
bool overlaps(const ByteSpans& spans, size_t begin, size_t end) {
  auto it = std::upper_bound(spans.begin(), spans.end(), begin,
                             [](size_t pos, const std::pair<size_t, size_t>& s) { return pos < s.second; });
  return it != spans.end() && it->first < end;
}

// Byte offset of the first non-whitespace character at or after begin, or s.size().
size_t strip_right_from(std::string_view s, size_t begin) {
  while (begin < s.size()) {
    size_t next = begin;
    if (!is_unicode_whitespace(utf8_next(s, next))) return begin;
    begin = next;
  }
  return s.size();
}

}  // namespace

void AddedVocabulary::split_with(const Trie& trie, const std::string& text, bool parse_special, const ByteSpans* plain,
                                 bool at_start, std::vector<Segment>& out) const {
  // Leftmost-longest, non-overlapping matches over the whole text first (as HF's Aho-Corasick pass).
  std::vector<std::pair<Span, size_t>> matches;
  for (size_t pos = 0; !trie.empty() && pos < text.size();) {
    const auto [len, index] = trie.longest_at(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    matches.push_back({{pos, pos + len}, static_cast<size_t>(index)});
    pos += len;
  }
  size_t offset = 0;
  for (const auto& [span, index] : matches) {
    const AddedToken& t = tokens_[index];
    auto [start, stop] = span;
    if (t.special && (!parse_special || (plain && overlaps(*plain, start, stop)))) continue;
    if (start < offset) continue;  // swallowed by the previous token's rstrip
    if (t.single_word) {
      const bool left_ok = start == 0 || !is_word_char(last_char(std::string_view(text).substr(0, start)));
      size_t after = stop;
      const bool right_ok = stop == text.size() || !is_word_char(utf8_next(text, after));
      if (!left_ok || !right_ok) continue;
    }
    if (t.lstrip) start = std::max(strip_left_to(text, start), offset);
    if (t.rstrip) stop = strip_right_from(text, stop);
    if (start > offset) out.push_back({text.substr(offset, start - offset), -1, at_start && offset == 0});
    out.push_back({text.substr(start, stop - start), t.id, at_start && start == 0});
    offset = stop;
  }
  if (offset < text.size() || text.empty()) {
    out.push_back({text.substr(offset), -1, at_start && offset == 0});
  }
}

std::vector<Segment> AddedVocabulary::split_and_normalize(std::string_view text, bool parse_special,
                                                          const ByteSpans& plain) const {
  std::vector<Segment> raw;
  split_with(*raw_trie_, std::string(text), parse_special, plain.empty() ? nullptr : &plain, true, raw);
  std::vector<Segment> out;
  out.reserve(raw.size());
  size_t end = 0;  // the raw pieces cover `text` in order, so their sizes give their offsets
  for (Segment& s : raw) {
    const size_t begin = end;
    end += s.text.size();
    if (s.id >= 0) {
      out.push_back(std::move(s));
      continue;
    }
    const bool special_here = parse_special && !overlaps(plain, begin, end);
    const std::string normalized = normalizer_ ? normalizer_->normalize(s.text) : std::move(s.text);
    split_with(*normalized_trie_, normalized, special_here, nullptr, s.at_input_start, out);
  }
  return out;
}

}  // namespace hearth::tokenizer
