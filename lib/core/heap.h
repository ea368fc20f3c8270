// How the C library's allocator treats the large blocks a forward pass allocates and frees (activations of
// megabytes, several per layer): kept in the heap for the next step rather than given back to the kernel.
#pragma once

#include <cstddef>

namespace hearth {

// Blocks up to kHeapMmapThreshold come from the heap, and free memory at its top is given back only beyond
// kHeapTrimThreshold. By default glibc maps each block above 128 KiB (a threshold that then adapts) on its own and
// unmaps it when freed, so every step of a forward pass faulted its activations in again: page faults and zeroing were
// a fifth of a 400-token prefill of the SmolLM2-135M shape, and prefill ran 2.1–4.6× slower (bench/README.md). Leaves
// the allocator as it is when GLIBC_TUNABLES sets any glibc.malloc tunable (the user chose). Returns whether it
// changed the settings.
constexpr size_t kHeapMmapThreshold = size_t(32) << 20;  // glibc's largest on 64-bit systems
constexpr size_t kHeapTrimThreshold = size_t(1) << 30;
bool heap_keep_freed_blocks();

}  // namespace hearth
