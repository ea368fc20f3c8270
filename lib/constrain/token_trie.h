// A vocabulary as a byte trie, for finding every token a grammar allows next in one walk.
//
// Nodes are stored in preorder, so a node's subtree is the index range [node, end(node)) and skipping a
// subtree is one jump. For a character class used starred (a JSON string's inside), class_fit() tells which
// tokens consist only of whole code points of the class and, per node, whether its whole subtree does:
// inside such a loop those tokens are all allowed and their subtrees need no walk (constraint.cpp).
// Immutable after construction except class_fit's cache (guarded by a mutex): safe to share between threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "constrain/grammar.h"

namespace hearth::constrain {

using TokenId = int32_t;

// Bit sets over token ids.
inline bool bit_get(const std::vector<uint64_t>& bits, size_t i) { return (bits[i >> 6] >> (i & 63)) & 1; }
inline void bit_set(std::vector<uint64_t>& bits, size_t i) { bits[i >> 6] |= uint64_t{1} << (i & 63); }

// Which tokens fit inside a character class (all their bytes are whole code points of it).
struct ClassFit {
  std::vector<uint64_t> tokens;   // bit per token id
  std::vector<uint8_t> subtree;   // per trie node: every token at or below it fits
};

class TokenTrie {
 public:
  // token_bytes[id]: the bytes the token adds to a text (Tokenizer::token_bytes_all()); std::nullopt or empty:
  // the token is never allowed as text (special tokens).
  explicit TokenTrie(const std::vector<std::optional<std::string>>& token_bytes);

  size_t vocab_size() const { return vocab_size_; }
  size_t node_count() const { return byte_.size(); }
  // Node 0 is the root (no byte, depth 0).
  uint8_t byte(size_t node) const { return byte_[node]; }
  uint32_t depth(size_t node) const { return depth_[node]; }
  uint32_t end(size_t node) const { return end_[node]; }
  // The ids whose bytes end at `node`.
  const TokenId* tokens_begin(size_t node) const { return ids_.data() + tok_begin_[node]; }
  const TokenId* tokens_end(size_t node) const { return ids_.data() + tok_begin_[node + 1]; }
  // A token's bytes (nullptr when it is never allowed as text).
  const std::string* bytes(TokenId id) const;

  // The tokens and subtrees that fit `c`; computed on first use, then cached. Thread-safe.
  std::shared_ptr<const ClassFit> class_fit(const CharClass& c) const;

 private:
  size_t vocab_size_ = 0;
  std::vector<std::optional<std::string>> bytes_;
  std::vector<uint8_t> byte_;
  std::vector<uint32_t> depth_, end_, parent_, tok_begin_;
  std::vector<TokenId> ids_;
  mutable std::mutex mutex_;
  mutable std::map<CharClass, std::shared_ptr<const ClassFit>> fits_;
};

}  // namespace hearth::constrain
