// hearth serve's prefix cache: the keys and values of token blocks the engine has already computed, kept so that
// a request whose prompt starts with the same tokens (a shared system prompt, the next turn of a conversation)
// copies them into its cache row instead of prefilling them again.
//
// A block is `block_tokens` whole tokens at fixed positions: block i holds positions [i·bt, (i+1)·bt). An entry is
// found by (adapter, the entry of block i-1, block i's token ids) — a chain, so a block is reused only after the
// very same tokens at the very same positions (its keys carry RoPE for them) computed with the very same adapter
// (the base model is one identity; each adapter object another: one loaded again or replaced is a new one, and
// the blocks of an adapter no one holds any more are dropped). Lookups compare token ids, never only a hash.
// After its whole blocks, a prompt also takes the leading positions of one more cached block that follows the same
// chain, as many as that block's tokens agree with the prompt's next ones (keys and values at a position depend only
// on the tokens up to it): a request repeating a prompt shorter than a block, or the same prompt again after the
// reply was stored, prefills its last token only, as llama.cpp's server does within a slot.
// Entries are copies (KvCache::row_slots / row_append), so rows never share memory with the store and evicting
// is always safe. Eviction: least recently used first; a lookup or store refreshes a chain root last, so a block
// is always more recent than its descendants and the LRU block is a leaf. Not here: where the memory budget
// comes from (serve/scheduler.cpp), a prompt's last token (the scheduler always prefills it).
// Not thread-safe: the scheduler thread owns it.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include "infer/sampler.h"
#include "model/kv_cache.h"
#include "model/lora.h"
#include "serve/metrics.h"

namespace hearth::serve {

class PrefixCache {
 public:
  using Adapter = std::shared_ptr<const model::LoraAdapter>;  // nullptr: the base model

  // Holds at most `capacity_blocks` blocks of `block_tokens` tokens (>= 1); capacity 0 keeps nothing.
  PrefixCache(int64_t block_tokens, int64_t capacity_blocks);

  // Copies into row `row` of `cache` (which must be empty) the keys and values of the longest chain of cached
  // blocks that starts `prompt` with `adapter`, then the leading positions of the cached block after that chain whose
  // tokens agree longest with the prompt's next ones — never reaching the prompt's last token (the caller prefills
  // at least that one, to have logits). Returns the tokens restored, < prompt.size().
  // Counts them as hits and the rest of the prompt as misses. Throws Error on a non-empty row.
  int64_t restore(const std::vector<infer::TokenId>& prompt, const Adapter& adapter, model::KvCache& cache,
                  int64_t row);
  // Keeps the whole blocks of tokens[0, n) computed with `adapter` that are not cached yet, copied from row `row`
  // of `cache` (whose slot i holds tokens[i] for i < n), evicting least recently used blocks to make room.
  void store(const std::vector<infer::TokenId>& tokens, int64_t n, const Adapter& adapter, const model::KvCache& cache,
             int64_t row);

  int64_t block_tokens() const { return block_tokens_; }
  PrefixCacheStats stats() const { return stats_; }

 private:
  struct Key {
    uint64_t adapter = 0, parent = 0;  // parent: the entry id of the block before (0: none, the first block)
    std::vector<infer::TokenId> tokens;
    bool operator==(const Key& o) const { return adapter == o.adapter && parent == o.parent && tokens == o.tokens; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Entry {
    uint64_t id = 0;   // never reused, so a child's `parent` cannot name a later entry
    torch::Tensor kv;  // [L, 2, KV, block_tokens, hd]
    std::list<const Key*>::iterator lru;
  };
  struct Owner {
    std::weak_ptr<const model::LoraAdapter> adapter;
    uint64_t id = 0;
  };
  using Map = std::unordered_map<Key, Entry, KeyHash>;
  // The same entries in (adapter, parent, tokens) order: a block's siblings side by side, and the one whose tokens
  // share the longest prefix with a query next to where the query would go.
  struct KeyLess {
    bool operator()(const Map::value_type* a, const Map::value_type* b) const;
  };

  uint64_t adapter_id(const Adapter& adapter);
  void purge_released_adapters();
  Key key(uint64_t adapter, uint64_t parent, const std::vector<infer::TokenId>& tokens, int64_t block) const;
  // The cached entries of the first `blocks` blocks of `tokens`, as far as they are cached.
  std::vector<Map::value_type*> chain(uint64_t adapter, const std::vector<infer::TokenId>& tokens, int64_t blocks);
  // The cached block after `parent` whose tokens share the longest prefix with [first, last) (at most its size),
  // and that length; nullptr and 0 without one.
  std::pair<Map::value_type*, int64_t> partial(uint64_t adapter, uint64_t parent,
                                               std::vector<infer::TokenId>::const_iterator first,
                                               std::vector<infer::TokenId>::const_iterator last);
  void touch(const std::vector<Map::value_type*>& chain);
  void erase(Map::iterator it);

  int64_t block_tokens_, capacity_;
  Map blocks_;
  std::set<Map::value_type*, KeyLess> ordered_;
  std::list<const Key*> lru_;  // most recently used first; the keys live in blocks_
  std::map<const model::LoraAdapter*, Owner> adapters_;
  uint64_t next_entry_ = 1, next_adapter_ = 1;  // 0 is "none" / the base model
  PrefixCacheStats stats_;
};

}  // namespace hearth::serve
