// The CPU allocator training runs under: large tensors (≥ kCpuBlockCacheMin bytes) come from blocks mapped
// once and reused, and the mapped total never exceeds the most the process ever had in use at once.
//
// Why: a training step allocates the same large tensors in the same order every step (activations saved for
// backward, their transient neighbours, gradients). In glibc's heap (where hearth keeps blocks up to 32 MiB,
// core/heap.h, for the speed of prefill) the transients freed between saved activations leave holes the next
// layer's differently sized tensors do not fill: on the Llama-3.2-1B shape (QLoRA q4_0, 256 tokens) the heap held
// ~1.3 GiB of free, resident memory at the end of a forward pass, beside ~1.1 GiB in use. Mapping each block on its
// own and unmapping it when freed has no holes, but faults every page in again, zeroed, every step (~25% of a
// step's time on that shape, measured). Here a freed block is kept and handed to the next request of its size
// (best fit, at most a quarter larger), so from the second step on nothing is mapped or faulted; when a request
// finds no block and mapping one would take the total mapped past the peak in use, the blocks freed longest ago are
// unmapped first. Small tensors go to the allocator that was installed before.
//
// Not for serving or generation (their allocations are small and core/heap.h's heap suits them), not for CUDA.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hearth::train {

// Requests of at least this many bytes are served from mapped blocks.
constexpr size_t kCpuBlockCacheMin = size_t(1) << 20;

// Installs the cache as libtorch's CPU allocator, for the rest of the process (once; later calls do nothing).
// Tensors allocated before keep the allocator that made them. Thread-safe.
void cpu_block_cache_install();

struct CpuBlockCacheStats {
  size_t mapped_bytes = 0;  // blocks mapped now: in use + kept for reuse
  size_t in_use_bytes = 0;  // blocks held by live tensors (whole blocks: a request is rounded up)
  size_t peak_in_use = 0;   // the most in_use_bytes has been
  uint64_t maps = 0;        // blocks mapped so far
  uint64_t reuses = 0;      // requests served by a kept block
  uint64_t unmaps = 0;      // kept blocks given back to the system
};

// The cache's counters (all zero before cpu_block_cache_install). Thread-safe.
CpuBlockCacheStats cpu_block_cache_stats();

}  // namespace hearth::train
