// The training allocator (train/cpu_block_cache.h): freed large blocks are handed to the next request of their size,
// the total mapped never exceeds the peak in use, small tensors go elsewhere. Counters are compared as differences:
// the test binary may have allocated through the cache before (all cases run in one process outside ctest).
#include <catch2/catch.hpp>

#include <vector>

#include <ATen/Parallel.h>
#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include "train/cpu_block_cache.h"

using namespace hearth;

namespace {

constexpr int64_t kMiB = 1 << 20;

torch::Tensor mib(int64_t n) { return torch::empty({n * kMiB}, torch::kUInt8); }

}  // namespace

TEST_CASE("cpu_block_cache: a freed block is reused by the next request of its size, small tensors never", "[train]") {
  train::cpu_block_cache_install();
  auto before = train::cpu_block_cache_stats();
  void* first = nullptr;
  {
    auto t = mib(8);
    first = t.data_ptr();
    auto s = train::cpu_block_cache_stats();
    CHECK(s.in_use_bytes - before.in_use_bytes == size_t(8 * kMiB));
  }
  auto freed = train::cpu_block_cache_stats();
  CHECK(freed.in_use_bytes == before.in_use_bytes);
  {
    auto t = mib(8);
    CHECK(t.data_ptr() == first);  // the same block, not a new mapping
    t.fill_(7);
    CHECK(t.sum().item<int64_t>() == 7 * 8 * kMiB);
  }
  {
    auto t = torch::empty({7 * kMiB + 1000}, torch::kUInt8);  // within a quarter of 8 MiB: the same block again
    CHECK(t.data_ptr() == first);
  }
  {
    auto t = mib(6);  // 8 MiB is more than a quarter above 6: a block of its own
    CHECK(t.data_ptr() != first);
  }
  auto after = train::cpu_block_cache_stats();
  CHECK(after.reuses - before.reuses == 2);
  {
    auto small = torch::ones({1000}, torch::kFloat32);  // 4 KB: the allocator that was there before
    CHECK(small.sum().item<float>() == 1000.0f);
  }
  CHECK(train::cpu_block_cache_stats().maps == after.maps);
  CHECK(train::cpu_block_cache_stats().reuses == after.reuses);
}

TEST_CASE("cpu_block_cache: what is mapped never exceeds the peak in use, and kept blocks that fit nothing are unmapped",
          "[train]") {
  train::cpu_block_cache_install();
  // Ask for more than anything kept so far can hold: the peak is then at least what this test holds.
  const int64_t big = 64 + static_cast<int64_t>(train::cpu_block_cache_stats().peak_in_use / kMiB);
  {
    auto a = mib(big), b = mib(big);
    auto s = train::cpu_block_cache_stats();
    CHECK(s.mapped_bytes <= s.peak_in_use);
  }
  // Both kept; a request twice their size fits neither, and mapping it beside them would pass the peak: they go.
  auto kept = train::cpu_block_cache_stats();
  {
    auto c = mib(2 * big + 32);
    auto s = train::cpu_block_cache_stats();
    CHECK(s.unmaps - kept.unmaps >= 2);
    CHECK(s.mapped_bytes <= s.peak_in_use);
    CHECK(s.peak_in_use >= size_t((2 * big + 32) * kMiB));
  }
}

TEST_CASE("cpu_block_cache: threads allocating and freeing at once leave the counters balanced", "[train]") {
  train::cpu_block_cache_install();
  const int previous = at::get_num_threads();
  at::set_num_threads(4);
  auto before = train::cpu_block_cache_stats();
  std::vector<int64_t> sums(64, -1);
  at::parallel_for(0, 64, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      auto t = torch::full({(1 + i % 4) * kMiB / 4}, static_cast<int>(i), torch::kInt32);  // 1 to 4 MiB
      const int* p = t.data_ptr<int>();
      sums[i] = p[0] + p[t.numel() - 1];
    }
  });
  at::set_num_threads(previous);
  for (int64_t i = 0; i < 64; ++i) CHECK(sums[i] == 2 * i);
  auto after = train::cpu_block_cache_stats();
  CHECK(after.in_use_bytes == before.in_use_bytes);
  CHECK(after.mapped_bytes <= after.peak_in_use);
  CHECK(after.maps + after.reuses - before.maps - before.reuses == 64);
}

TEST_CASE("cpu_block_cache: raw_allocate and raw_deallocate (libtorch's oneDNN paths) work for blocks and small "
          "allocations",
          "[train]") {
  train::cpu_block_cache_install();
  c10::Allocator* allocator = c10::GetCPUAllocator();
  auto before = train::cpu_block_cache_stats();
  void* block = allocator->raw_allocate(4 * kMiB);
  CHECK(train::cpu_block_cache_stats().in_use_bytes - before.in_use_bytes == size_t(4 * kMiB));
  allocator->raw_deallocate(block);
  CHECK(train::cpu_block_cache_stats().in_use_bytes == before.in_use_bytes);
  void* small = allocator->raw_allocate(100);
  static_cast<char*>(small)[99] = 1;
  allocator->raw_deallocate(small);
  CHECK(train::cpu_block_cache_stats().in_use_bytes == before.in_use_bytes);
}
