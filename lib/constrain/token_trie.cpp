// The vocabulary byte trie. See token_trie.h.
#include "constrain/token_trie.h"

#include <algorithm>

#include "constrain/matcher.h"

namespace hearth::constrain {

TokenTrie::TokenTrie(const std::vector<std::optional<std::string>>& token_bytes)
    : vocab_size_(token_bytes.size()), bytes_(token_bytes) {
  std::vector<TokenId> order;
  for (size_t id = 0; id < token_bytes.size(); ++id) {
    if (token_bytes[id] && !token_bytes[id]->empty()) order.push_back(static_cast<TokenId>(id));
  }
  std::sort(order.begin(), order.end(), [&](TokenId a, TokenId b) {
    return *token_bytes[a] < *token_bytes[b] || (*token_bytes[a] == *token_bytes[b] && a < b);
  });
  // Sorted strings arrive in preorder: keep the path of the previous string, pop to the common prefix, append
  // the rest as new nodes. A node's subtree ends where the next node of its depth or above begins.
  byte_.push_back(0);
  depth_.push_back(0);
  parent_.push_back(0);
  end_.push_back(0);
  std::vector<uint32_t> path = {0};
  std::vector<std::vector<TokenId>> at(1);
  const std::string* prev = nullptr;
  for (TokenId id : order) {
    const std::string& s = *token_bytes[id];
    size_t common = 0;
    if (prev) {
      while (common < s.size() && common < prev->size() && s[common] == (*prev)[common]) ++common;
    }
    while (path.size() > common + 1) {
      end_[path.back()] = static_cast<uint32_t>(byte_.size());
      path.pop_back();
    }
    for (size_t i = common; i < s.size(); ++i) {
      const auto node = static_cast<uint32_t>(byte_.size());
      byte_.push_back(static_cast<uint8_t>(s[i]));
      depth_.push_back(static_cast<uint32_t>(i + 1));
      parent_.push_back(path.back());
      end_.push_back(0);
      at.emplace_back();
      path.push_back(node);
    }
    at[path.back()].push_back(id);
    prev = &s;
  }
  for (uint32_t node : path) end_[node] = static_cast<uint32_t>(byte_.size());
  tok_begin_.reserve(byte_.size() + 1);
  for (const auto& ids : at) {
    tok_begin_.push_back(static_cast<uint32_t>(ids_.size()));
    ids_.insert(ids_.end(), ids.begin(), ids.end());
  }
  tok_begin_.push_back(static_cast<uint32_t>(ids_.size()));
}

const std::string* TokenTrie::bytes(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= vocab_size_ || !bytes_[id] || bytes_[id]->empty()) return nullptr;
  return &*bytes_[id];
}

namespace {
// Whether `s` is valid UTF-8 made of code points in `c` only.
bool fits(const std::string& s, const CharClass& c) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<uint8_t>(s[i]);
    int n = b < 0x80 ? 0 : (b & 0xE0) == 0xC0 ? 1 : (b & 0xF0) == 0xE0 ? 2 : (b & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0 || i + static_cast<size_t>(n) >= s.size()) return false;  // bad lead byte, or cut short
    uint32_t cp = n == 0 ? b : n == 1 ? (b & 0x1F) : n == 2 ? (b & 0x0F) : (b & 0x07);
    for (int k = 1; k <= n; ++k) {
      const auto cb = static_cast<uint8_t>(s[i + k]);
      if ((cb & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cb & 0x3F);
    }
    if (!utf8_well_formed(cp, n) || !c.contains(cp)) return false;
    i += n + 1;
  }
  return true;
}
}  // namespace

std::shared_ptr<const ClassFit> TokenTrie::class_fit(const CharClass& c) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = fits_.find(c); it != fits_.end()) return it->second;
  auto fit = std::make_shared<ClassFit>();
  fit->tokens.assign((vocab_size_ + 63) / 64, 0);
  fit->subtree.assign(byte_.size(), 1);
  // Children follow their parent in preorder: walking backwards settles a node before its parent sees it.
  for (size_t node = byte_.size(); node-- > 1;) {
    for (const TokenId* t = tokens_begin(node); t != tokens_end(node); ++t) {
      if (fits(*bytes_[*t], c)) bit_set(fit->tokens, static_cast<size_t>(*t));
      else fit->subtree[node] = 0;
    }
    if (!fit->subtree[node]) fit->subtree[parent_[node]] = 0;
  }
  fits_.emplace(c, fit);
  return fit;
}

}  // namespace hearth::constrain
