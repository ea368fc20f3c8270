// BPE model: vocabulary, merges, merge loop and word cache. See bpe.h.
#include "tokenizer/bpe.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <tuple>

#include "core/signals.h"
#include "tokenizer/unicode.h"

namespace hearth::tokenizer {

namespace {

std::string byte_token(unsigned b) {
  static const char* const kHex = "0123456789ABCDEF";
  return std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& j, const Where& where) {
  load_options(j, where);
  load_vocab(json_member(j, "vocab", where), where / "vocab");
  resolve_special(j, where);
  load_merges(json_member(j, "merges", where), where / "merges");
}

BpeModel::BpeModel(const nlohmann::json& j, const std::vector<std::string>& tokens, const std::vector<bool>& in_vocab,
                   const std::vector<BpeMerge>& merges, const Where& where) {
  for (const char* key : {"vocab", "merges"}) {
    if (j.contains(key)) throw_format(where / key, "given twice", "the tables passed separately", "a JSON member");
  }
  load_options(j, where);
  id_entry_.reserve(tokens.size());
  entries_.reserve(tokens.size());
  slots_resize(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (in_vocab.at(i)) add_token(tokens[i], static_cast<TokenId>(i));
  }
  resolve_special(j, where);
  std::vector<PendingMerge> pending;
  pending.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const BpeMerge& m = merges[i];
    for (TokenId id : {m.left, m.right, m.result}) {
      if (!id_to_token(id)) throw_format((where / "merges").at(i), "id not in the vocabulary", "a token's id", std::to_string(id));
    }
    pending.push_back({m.left, m.right, m.result, static_cast<uint32_t>(i)});
  }
  merges_build(std::move(pending));
}

void BpeModel::merges_build(std::vector<PendingMerge> pending) {
  std::sort(pending.begin(), pending.end(), [](const PendingMerge& x, const PendingMerge& y) {
    return x.left != y.left ? x.left < y.left : x.right != y.right ? x.right < y.right : x.rank < y.rank;
  });
  merge_begin_.assign(id_entry_.size() + 1, 0);
  merges_.clear();
  merges_.reserve(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    const PendingMerge& m = pending[i];
    const bool later_twin = i + 1 < pending.size() && pending[i + 1].left == m.left && pending[i + 1].right == m.right;
    if (later_twin) continue;  // the pair is given again at a later rank, which wins
    merges_.push_back({m.right, m.rank, m.new_id});
    ++merge_begin_[static_cast<size_t>(m.left) + 1];
  }
  for (size_t a = 1; a < merge_begin_.size(); ++a) merge_begin_[a] += merge_begin_[a - 1];
}

void BpeModel::load_options(const nlohmann::json& j, const Where& where) {
  const auto dropout = j.find("dropout");
  if (dropout != j.end() && !dropout->is_null() && !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    throw_format(where / "dropout", "BPE dropout is not supported", "null", json_brief(*dropout));
  }
  continuing_subword_prefix_ = json_string(j, "continuing_subword_prefix", where);
  end_of_word_suffix_ = json_string(j, "end_of_word_suffix", where);
  fuse_unk_ = json_bool(j, "fuse_unk", where, false);
  byte_fallback_ = json_bool(j, "byte_fallback", where, false);
  ignore_merges_ = json_bool(j, "ignore_merges", where, false);
}

void BpeModel::resolve_special(const nlohmann::json& j, const Where& where) {
  const std::string unk = json_string(j, "unk_token", where);
  if (!unk.empty()) {
    unk_id_ = token_to_id(unk);
    if (!unk_id_)
      throw_format(where / "unk_token", "not in the vocabulary", "a token of model.vocab", "\"" + unk + "\"");
  }
  byte_ids_.fill(-1);
  for (unsigned b = 0; b < 256; ++b) {
    if (auto id = token_to_id(byte_token(b))) byte_ids_[b] = *id;
  }
}

void BpeModel::slots_resize(size_t n) {
  size_t size = 16;
  while (size < 2 * n) size *= 2;
  slots_.assign(size, -1);
  for (int32_t e = 0; e < static_cast<int32_t>(entries_.size()); ++e) {
    int32_t& slot = slots_[slot_of(entry_text(e))];
    slot = std::max(slot, e);  // a token given twice: the later entry, as the map's assignment kept
  }
}

size_t BpeModel::slot_of(std::string_view token) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = std::hash<std::string_view>{}(token) & mask;; i = (i + 1) & mask)
    if (slots_[i] < 0 || entry_text(slots_[i]) == token) return i;
}

void BpeModel::add_token(std::string token, TokenId id) {
  if (2 * (entries_.size() + 1) > slots_.size()) slots_resize(2 * (entries_.size() + 1));
  entries_.push_back({static_cast<uint32_t>(text_.size()), static_cast<uint32_t>(token.size()), id});
  text_ += token;
  const auto e = static_cast<int32_t>(entries_.size() - 1);
  if (static_cast<size_t>(id) >= id_entry_.size()) id_entry_.resize(static_cast<size_t>(id) + 1, -1);
  id_entry_[id] = e;
  slots_[slot_of(token)] = e;  // a token given twice maps to its later id
}

void BpeModel::load_vocab(const nlohmann::json& vocab, const Where& where) {
  if (!vocab.is_object()) throw_format(where, "wrong type", "an object of token -> id", json_brief(vocab));
  entries_.reserve(vocab.size());
  slots_resize(vocab.size());
  for (const auto& [token, id_json] : vocab.items()) {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 || id_json.get<int64_t>() > INT32_MAX) {
      throw_format(where / token, "bad token id", "a non-negative integer", json_brief(id_json));
    }
    add_token(token, static_cast<TokenId>(id_json.get<int64_t>()));
  }
}

void BpeModel::load_merges(const nlohmann::json& merges, const Where& where) {
  if (!merges.is_array()) throw_format(where, "wrong type", "an array of merges", json_brief(merges));
  std::vector<PendingMerge> pending;
  pending.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& m = merges[i];
    std::string a, b;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        throw_format(where.at(i), "bad merge", "two tokens separated by one space", json_brief(m));
      }
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      throw_format(where.at(i), "bad merge", "\"a b\" or [\"a\", \"b\"]", json_brief(m));
    }
    const size_t prefix = continuing_subword_prefix_.size();
    const std::string merged = a + (b.size() >= prefix ? b.substr(prefix) : b);
    const auto ida = token_to_id(a), idb = token_to_id(b), idm = token_to_id(merged);
    if (!ida || !idb || !idm) {
      const std::string& missing = !ida ? a : !idb ? b : merged;
      throw_format(where.at(i), "merge token not in the vocabulary", "tokens of model.vocab", "\"" + missing + "\"");
    }
    pending.push_back({*ida, *idb, *idm, static_cast<uint32_t>(i)});
  }
  merges_build(std::move(pending));
}

std::optional<TokenId> BpeModel::token_to_id(std::string_view token) const {
  if (slots_.empty()) return std::nullopt;
  const int32_t e = slots_[slot_of(token)];
  if (e < 0) return std::nullopt;
  return entries_[e].id;
}

std::optional<std::string_view> BpeModel::id_to_token(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_entry_.size() || id_entry_[id] < 0) return std::nullopt;
  return entry_text(id_entry_[id]);
}

std::vector<std::pair<TokenId, TokenId>> BpeModel::merge_pairs() const {
  std::vector<std::tuple<uint32_t, TokenId, TokenId>> ranked;
  ranked.reserve(merges_.size());
  for (size_t a = 0; a + 1 < merge_begin_.size(); ++a)
    for (uint32_t i = merge_begin_[a]; i < merge_begin_[a + 1]; ++i)
      ranked.emplace_back(merges_[i].rank, static_cast<TokenId>(a), merges_[i].right);
  std::sort(ranked.begin(), ranked.end());
  std::vector<std::pair<TokenId, TokenId>> pairs;
  pairs.reserve(ranked.size());
  for (const auto& [rank, left, right] : ranked) pairs.emplace_back(left, right);
  return pairs;
}

const BpeModel::Merge* BpeModel::find_merge(TokenId a, TokenId b) const {
  if (a < 0 || static_cast<size_t>(a) + 1 >= merge_begin_.size()) return nullptr;
  const Merge *first = merges_.data() + merge_begin_[a], *last = merges_.data() + merge_begin_[a + 1];
  const Merge* it = std::lower_bound(first, last, b, [](const Merge& m, TokenId right) { return m.right < right; });
  return it != last && it->right == b ? it : nullptr;
}

void BpeModel::initial_symbols(std::string_view word, std::vector<TokenId>& symbols) const {
  std::optional<TokenId> pending_unk;  // HF keeps one pending unk, fused or flushed by the next char
  std::string buffer;
  size_t pos = 0;
  for (size_t chars = 1; pos < word.size(); ++chars) {
    if (chars % 65536 == 0) interrupt_point();  // one huge word (no pre-tokenizer) in an interruptible scope
    const size_t start = pos;
    utf8_next(word, pos);
    std::string_view ch = word.substr(start, pos - start);
    const bool decorate = (start > 0 && !continuing_subword_prefix_.empty()) ||
                          (pos == word.size() && !end_of_word_suffix_.empty());
    if (decorate) {
      buffer = (start > 0 ? continuing_subword_prefix_ : "") + std::string(ch) +
               (pos == word.size() ? end_of_word_suffix_ : "");
      ch = buffer;
    }
    if (auto id = token_to_id(ch)) {
      if (pending_unk) symbols.push_back(*pending_unk), pending_unk.reset();
      symbols.push_back(*id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : ch) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {  // HF adds the bytes before a pending unk; kept for identical ids
        for (char c : ch) symbols.push_back(byte_ids_[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (!unk_id_) continue;  // HF drops characters it cannot represent when there is no unk token
    if (pending_unk && !fuse_unk_) symbols.push_back(*pending_unk);
    pending_unk = unk_id_;
  }
  if (pending_unk) symbols.push_back(*pending_unk);
}

void BpeModel::merge_symbols(std::vector<TokenId>& symbols) const {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return;
  struct Node {
    TokenId id;
    int prev, next;
    bool alive;
  };
  struct Candidate {
    uint32_t rank;
    int pos;
    TokenId new_id;
    bool operator<(const Candidate& o) const {  // max-heap order: lowest rank, then leftmost, on top
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Node> nodes(n);
  std::priority_queue<Candidate> queue;
  for (int i = 0; i < n; ++i) {
    if (i % 65536 == 65535) interrupt_point();
    nodes[i] = {symbols[i], i - 1, i + 1 < n ? i + 1 : -1, true};
    if (i + 1 < n) {
      if (const Merge* m = find_merge(symbols[i], symbols[i + 1])) queue.push({m->rank, i, m->new_id});
    }
  }
  for (size_t steps = 1; !queue.empty(); ++steps) {
    if (steps % 65536 == 0) interrupt_point();  // one huge word (no pre-tokenizer) in an interruptible scope
    const Candidate top = queue.top();
    queue.pop();
    Node& left = nodes[top.pos];
    if (!left.alive || left.next < 0) continue;
    Node& right = nodes[left.next];
    const Merge* m = find_merge(left.id, right.id);
    if (!m || m->new_id != top.new_id) continue;  // stale entry
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) nodes[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* pm = find_merge(nodes[left.prev].id, left.id)) queue.push({pm->rank, left.prev, pm->new_id});
    }
    if (left.next >= 0) {
      if (const Merge* nm = find_merge(left.id, nodes[left.next].id)) queue.push({nm->rank, top.pos, nm->new_id});
    }
  }
  symbols.clear();
  for (int i = 0; i >= 0; i = nodes[i].next) symbols.push_back(nodes[i].id);
}

void BpeModel::tokenize_uncached(std::string_view word, std::vector<TokenId>& out) const {
  if (ignore_merges_) {
    if (auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  std::vector<TokenId> symbols;
  symbols.reserve(word.size());
  initial_symbols(word, symbols);
  merge_symbols(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void BpeModel::tokenize(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (word.size() > kCacheMaxWordBytes) return tokenize_uncached(word, out);
  const size_t hash = std::hash<std::string_view>{}(word);
  CacheShard& shard = cache_[hash % kCacheShards];
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto it = shard.map.find(std::string(word));
    if (it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t before = out.size();
  tokenize_uncached(word, out);
  std::vector<TokenId> ids(out.begin() + before, out.end());
  std::lock_guard<std::mutex> lock(shard.mutex);
  if (shard.map.size() >= kCacheShardCapacity) shard.map.clear();  // bounded: start over when full
  shard.map.emplace(std::string(word), std::move(ids));
}

}  // namespace hearth::tokenizer
