#include "serve/prefix_cache.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::serve {

size_t PrefixCache::KeyHash::operator()(const Key& k) const {
  // FNV-1a over the ids; only to spread the buckets (Key::operator== decides a match).
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i, v >>= 8) h = (h ^ (v & 0xff)) * 1099511628211ull;
  };
  mix(k.adapter);
  mix(k.parent);
  for (auto t : k.tokens) mix(static_cast<uint32_t>(t));
  return static_cast<size_t>(h);
}

bool PrefixCache::KeyLess::operator()(const Map::value_type* a, const Map::value_type* b) const {
  const Key &x = a->first, &y = b->first;
  if (x.adapter != y.adapter) return x.adapter < y.adapter;
  if (x.parent != y.parent) return x.parent < y.parent;
  return x.tokens < y.tokens;
}

PrefixCache::PrefixCache(int64_t block_tokens, int64_t capacity_blocks)
    : block_tokens_(block_tokens), capacity_(std::max<int64_t>(capacity_blocks, 0)) {
  if (block_tokens_ < 1) throw Error(fmt::format("prefix cache: block of {} tokens; expected >= 1", block_tokens_));
  stats_.capacity_blocks = capacity_;
}

// The base model is 0; an adapter object gets an id the first time it is seen and keeps it while it lives. A
// live object's address is unique, so a live owner at this address is this very adapter; a dead one's address
// may be reused by a new adapter, which then gets a new id.
uint64_t PrefixCache::adapter_id(const Adapter& adapter) {
  if (!adapter) return 0;
  auto it = adapters_.find(adapter.get());
  if (it != adapters_.end() && !it->second.adapter.expired()) return it->second.id;
  const uint64_t id = next_adapter_++;
  adapters_[adapter.get()] = Owner{adapter, id};
  return id;
}

// Drops the blocks of adapters that no request and no registry entry holds any more (unloaded or replaced): no
// lookup can name them again.
void PrefixCache::purge_released_adapters() {
  std::vector<uint64_t> gone;
  for (auto it = adapters_.begin(); it != adapters_.end();)
    if (it->second.adapter.expired()) {
      gone.push_back(it->second.id);
      it = adapters_.erase(it);
    } else ++it;
  if (gone.empty()) return;
  for (auto it = blocks_.begin(); it != blocks_.end();) {
    auto next = std::next(it);
    if (std::find(gone.begin(), gone.end(), it->first.adapter) != gone.end()) erase(it);
    it = next;
  }
}

PrefixCache::Key PrefixCache::key(uint64_t adapter, uint64_t parent, const std::vector<infer::TokenId>& tokens,
                                  int64_t block) const {
  const auto begin = tokens.begin() + block * block_tokens_;
  return Key{adapter, parent, std::vector<infer::TokenId>(begin, begin + block_tokens_)};
}

std::vector<PrefixCache::Map::value_type*> PrefixCache::chain(uint64_t adapter,
                                                              const std::vector<infer::TokenId>& tokens,
                                                              int64_t blocks) {
  std::vector<Map::value_type*> out;
  uint64_t parent = 0;
  for (int64_t i = 0; i < blocks; ++i) {
    auto it = blocks_.find(key(adapter, parent, tokens, i));
    if (it == blocks_.end()) break;
    out.push_back(&*it);  // node addresses stay valid when the map rehashes; iterators do not
    parent = it->second.id;
  }
  return out;
}

std::pair<PrefixCache::Map::value_type*, int64_t> PrefixCache::partial(
    uint64_t adapter, uint64_t parent, std::vector<infer::TokenId>::const_iterator first,
    std::vector<infer::TokenId>::const_iterator last) {
  Map::value_type query{Key{adapter, parent, std::vector<infer::TokenId>(first, last)}, Entry{}};
  const auto at = ordered_.lower_bound(&query);
  std::pair<Map::value_type*, int64_t> best{nullptr, 0};
  auto consider = [&](std::set<Map::value_type*, KeyLess>::const_iterator it) {
    const Key& k = (*it)->first;
    if (k.adapter != adapter || k.parent != parent) return;
    const auto n = std::min<size_t>(k.tokens.size(), query.first.tokens.size());
    const auto common = std::mismatch(k.tokens.begin(), k.tokens.begin() + n, first).first - k.tokens.begin();
    if (common > best.second) best = {*it, common};
  };
  if (at != ordered_.end()) consider(at);
  if (at != ordered_.begin()) consider(std::prev(at));
  return best;
}

// Deepest first, so that each block ends more recent than every block after it in the chain.
void PrefixCache::touch(const std::vector<Map::value_type*>& chain) {
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) lru_.splice(lru_.begin(), lru_, (*it)->second.lru);
}

void PrefixCache::erase(Map::iterator it) {
  stats_.bytes -= it->second.kv.nbytes();
  lru_.erase(it->second.lru);
  ordered_.erase(&*it);
  blocks_.erase(it);
  stats_.blocks = static_cast<int64_t>(blocks_.size());
}

int64_t PrefixCache::restore(const std::vector<infer::TokenId>& prompt, const Adapter& adapter, model::KvCache& cache,
                             int64_t row) {
  if (cache.lengths()[row] != 0)
    throw Error(fmt::format("prefix cache: restoring into row {}, which holds {} tokens", row, cache.lengths()[row]));
  const int64_t n = static_cast<int64_t>(prompt.size());
  int64_t hit = 0;
  purge_released_adapters();
  if (capacity_ > 0 && n > 1) {
    const uint64_t a = adapter_id(adapter);
    auto found = chain(a, prompt, (n - 1) / block_tokens_);           // never the last token
    for (const auto* b : found) cache.row_append(row, b->second.kv);  // block by block: no temporary of them all
    hit = static_cast<int64_t>(found.size()) * block_tokens_;
    const int64_t room = std::min(block_tokens_, n - 1 - hit);
    if (room > 0) {
      auto [next, common] = partial(a, found.empty() ? 0 : found.back()->second.id, prompt.begin() + hit,
                                    prompt.begin() + hit + room);
      if (next) {
        cache.row_append(row, next->second.kv.narrow(3, 0, common));
        found.push_back(next);
        hit += common;
      }
    }
    touch(found);
  }
  stats_.hit_tokens += static_cast<uint64_t>(hit);
  stats_.miss_tokens += static_cast<uint64_t>(n - hit);
  return hit;
}

void PrefixCache::store(const std::vector<infer::TokenId>& tokens, int64_t n, const Adapter& adapter,
                        const model::KvCache& cache, int64_t row) {
  purge_released_adapters();
  if (capacity_ == 0) return;
  const uint64_t a = adapter_id(adapter);
  const int64_t blocks = std::min<int64_t>(n, static_cast<int64_t>(tokens.size())) / block_tokens_;
  auto have = chain(a, tokens, blocks);
  touch(have);  // the chain is now the front of the LRU list: room is made from other blocks only
  const int64_t first_new = static_cast<int64_t>(have.size());
  if (first_new == blocks) return;
  uint64_t parent = have.empty() ? 0 : have.back()->second.id;
  for (int64_t i = first_new; i < blocks; ++i) {
    while (static_cast<int64_t>(blocks_.size()) >= capacity_ && blocks_.size() > have.size()) {
      erase(blocks_.find(*lru_.back()));  // a leaf of another chain (see the file comment)
      ++stats_.evictions;
    }
    if (static_cast<int64_t>(blocks_.size()) >= capacity_) break;  // this chain alone fills the cache
    Entry e;
    e.id = next_entry_++;
    e.kv = cache.row_slots(row, i * block_tokens_, block_tokens_);              // a new tensor: its own memory
    auto& b = *blocks_.emplace(key(a, parent, tokens, i), std::move(e)).first;  // new: its parent is new or last found
    b.second.lru = lru_.insert(lru_.begin(), &b.first);
    ordered_.insert(&b);
    stats_.bytes += b.second.kv.nbytes();
    have.push_back(&b);
    parent = b.second.id;
  }
  touch(have);
  stats_.blocks = static_cast<int64_t>(blocks_.size());
}

}  // namespace hearth::serve
