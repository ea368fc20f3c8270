#include "train/cpu_block_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <list>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

#include <c10/core/CPUAllocator.h>

namespace hearth::train {
namespace {

constexpr size_t kGranule = size_t(64) << 10;  // requests are rounded up to whole 64 KiB

// One mapped block; `kept` points at its entry in the free list while no tensor holds it.
struct Block {
  void* data = nullptr;
  size_t bytes = 0;
  std::list<Block*>::iterator kept;
};

class BlockCache final : public c10::Allocator {
 public:
  explicit BlockCache(c10::Allocator* small) : small_(small) {}

  // libtorch 1.13 declares allocate() const; 2.x non-const (with copy_data() pure). Both are defined, so each version
  // finds its own and takes the other as an overload.
  c10::DataPtr allocate(size_t n) const {
    if (n < kCpuBlockCacheMin) return small_->allocate(n);
    void* p = take((n + kGranule - 1) / kGranule * kGranule);
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};  // context = data: raw_allocate() works too
  }
  c10::DataPtr allocate(size_t n) { return static_cast<const BlockCache*>(this)->allocate(n); }
  void copy_data(void* dest, const void* src, size_t count) const { std::memcpy(dest, src, count); }
  // For raw_allocate()/raw_deallocate() (libtorch's oneDNN paths use them): frees a block or a small allocation.
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  CpuBlockCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  // A kept block of `bytes` to `bytes` + a quarter (the smallest), or a new one: before mapping it, kept blocks are
  // unmapped, those freed longest ago first, until the total mapped fits under the peak in use.
  void* take(size_t bytes) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_size_.lower_bound(bytes);
    Block* b = nullptr;
    if (it != by_size_.end() && it->first <= bytes + bytes / 4) {
      b = it->second;
      by_size_.erase(it);
      lru_.erase(b->kept);
      ++stats_.reuses;
    } else {
      const size_t peak = std::max(stats_.peak_in_use, stats_.in_use_bytes + bytes);
      while (!lru_.empty() && stats_.mapped_bytes + bytes > peak) unmap_oldest();
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {  // the kept blocks are no use if there is no memory: give them all back and retry
        while (!lru_.empty()) unmap_oldest();
        p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
      }
      b = new Block{p, bytes, {}};
      stats_.mapped_bytes += bytes;
      ++stats_.maps;
    }
    stats_.in_use_bytes += b->bytes;
    stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use_bytes);
    live_.emplace(b->data, b);
    return b->data;
  }

  // A block back to the kept list; false if `data` is not one of the blocks in use.
  bool keep(void* data) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(data);
    if (it == live_.end()) return false;
    Block* b = it->second;
    live_.erase(it);
    stats_.in_use_bytes -= b->bytes;
    lru_.push_back(b);
    b->kept = std::prev(lru_.end());
    by_size_.emplace(b->bytes, b);
    return true;
  }

  void unmap_oldest() const {  // mutex_ held
    Block* b = lru_.front();
    lru_.pop_front();
    for (auto [it, end] = by_size_.equal_range(b->bytes); it != end; ++it)
      if (it->second == b) {
        by_size_.erase(it);
        break;
      }
    munmap(b->data, b->bytes);
    stats_.mapped_bytes -= b->bytes;
    ++stats_.unmaps;
    delete b;
  }

  static void release(void* context);

  c10::Allocator* small_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<void*, Block*> live_;  // blocks in use, by their data
  mutable std::multimap<size_t, Block*> by_size_;   // kept blocks by size
  mutable std::list<Block*> lru_;                   // kept blocks, freed longest ago first
  mutable CpuBlockCacheStats stats_;
};

BlockCache* g_cache = nullptr;  // set once, never destroyed: tensors may outlive static destructors

void BlockCache::release(void* data) {
  if (!g_cache->keep(data)) g_cache->small_->raw_deleter()(data);
}

}  // namespace

void cpu_block_cache_install() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_cache = new BlockCache(c10::GetCPUAllocator());
    c10::SetCPUAllocator(g_cache, /*priority=*/1);
  });
}

CpuBlockCacheStats cpu_block_cache_stats() { return g_cache ? g_cache->stats() : CpuBlockCacheStats{}; }

}  // namespace hearth::train
