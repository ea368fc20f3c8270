// The tokenizer.json "model" of type BPE: vocabulary, ranked merges, and the merge loop.
//
// Follows HF tokenizers' models/bpe (model.rs, word.rs): a word is split into characters (with
// continuing_subword_prefix / end_of_word_suffix when set), characters missing from the vocabulary go to
// byte-fallback tokens "<0xAB>" or the unk token (fused when fuse_unk), then merges are applied lowest rank
// first, leftmost first among equals, with a priority queue over a linked list of symbols (O(n log n) per
// word). `ignore_merges` returns a word found whole in the vocabulary directly. `dropout` must be null/0.
// Results for short words are kept in a bounded, sharded, mutex-protected cache.
// Not here: other model types (WordPiece, Unigram, WordLevel are FormatErrors at load).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_json.h"

namespace hearth::tokenizer {

using TokenId = int32_t;

// One merge given as ids: `left` and `right` become `result`.
struct BpeMerge {
  TokenId left, right, result;
};

class BpeModel {
 public:
  // Parses `j` (the "model" object, type BPE). Merges may be "a b" strings or ["a", "b"] pairs.
  // Throws FormatError (at `where`) on a bad vocabulary, a merge naming an unknown token, or an unsupported
  // option (dropout).
  BpeModel(const nlohmann::json& j, const Where& where);
  // As above, with the vocabulary and merges given directly (GGUF metadata, where a JSON document of them would
  // leave ~70 MB of freed heap between the tokenizer's tables): `j` holds the other members only. Token i is
  // tokens[i] and is in the vocabulary where in_vocab[i]; `merges` are lowest rank first. FormatError when `j`
  // has vocab or merges, or a merge names an id outside the vocabulary.
  BpeModel(const nlohmann::json& j, const std::vector<std::string>& tokens, const std::vector<bool>& in_vocab,
           const std::vector<BpeMerge>& merges, const Where& where);
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one pre-tokenized word to `out`. Thread-safe.
  void tokenize(std::string_view word, std::vector<TokenId>& out) const;

  std::optional<TokenId> token_to_id(std::string_view token) const;
  // The token string of id (valid as long as the model), or nullopt when the vocabulary has no such id.
  std::optional<std::string_view> id_to_token(TokenId id) const;
  // Max id + 1.
  size_t size() const { return id_entry_.size(); }
  size_t merge_count() const { return merges_.size(); }
  // The merges as (left, right) token ids, lowest rank first (a pair listed twice appears once, at its
  // later rank, as HF keeps it).
  std::vector<std::pair<TokenId, TokenId>> merge_pairs() const;

 private:
  // The merges of one left token, by right token: (left, right) -> new_id at rank.
  struct Merge {
    TokenId right;
    uint32_t rank;
    TokenId new_id;
  };
  struct PendingMerge {
    TokenId left, right, new_id;
    uint32_t rank;
  };
  // A vocabulary token: its bytes text_[offset, offset + length) and its id.
  struct Entry {
    uint32_t offset, length;
    TokenId id;
  };
  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<TokenId>> map;
  };
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kCacheShardCapacity = 4096;
  static constexpr size_t kCacheMaxWordBytes = 128;

  void load_options(const nlohmann::json& j, const Where& where);
  void add_token(std::string token, TokenId id);
  // unk_id_ and byte_ids_, once the vocabulary is in.
  void resolve_special(const nlohmann::json& j, const Where& where);
  void load_vocab(const nlohmann::json& vocab, const Where& where);
  void load_merges(const nlohmann::json& merges, const Where& where);
  // merges_ and merge_begin_ from the merges in rank order (a pair given twice keeps its later rank, as HF).
  void merges_build(std::vector<PendingMerge> pending);
  std::string_view entry_text(int32_t e) const { return {text_.data() + entries_[e].offset, entries_[e].length}; }
  // slots_ sized for `n` tokens (half full at most), the entries so far placed again.
  void slots_resize(size_t n);
  // The slot holding `token`'s entry, or the empty slot where it would go.
  size_t slot_of(std::string_view token) const;
  // Initial symbols of a word (characters, byte fallback, unk), HF BPE::merge_word before merging.
  void initial_symbols(std::string_view word, std::vector<TokenId>& symbols) const;
  void merge_symbols(std::vector<TokenId>& symbols) const;
  void tokenize_uncached(std::string_view word, std::vector<TokenId>& out) const;
  const Merge* find_merge(TokenId a, TokenId b) const;

  // Flat tables (a 128k vocabulary with 280k merges: ~8 MB, where hash maps of strings and pairs took ~20 MB).
  std::string text_;                   // every token's bytes, one after another
  std::vector<Entry> entries_;         // in the order added
  std::vector<int32_t> id_entry_;      // per id: its entry (the last added for that id), -1 for ids with no token
  std::vector<int32_t> slots_;         // open addressing on the token's bytes: an entry, or -1; a power of two long
  std::vector<uint32_t> merge_begin_;  // per left id: where its merges start in merges_ (size(): ids + 1)
  std::vector<Merge> merges_;          // by left id, then right id
  std::optional<TokenId> unk_id_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<TokenId, 256> byte_ids_{};  // "<0xAB>" ids for byte fallback; -1 when absent
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace hearth::tokenizer
