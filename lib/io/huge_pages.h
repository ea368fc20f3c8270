// Memory of its own for weights hearth copies at load (the block matrices the CPU kernels read, most interleaved), in
// 2 MiB huge pages where the kernel allows.
//
// Why: decode reads every weight once per token, and with 4 KiB pages that is a TLB miss every 4 KiB; in a virtual
// machine each miss walks two page tables. On the 2-vCPU Zen 5 VM, a 1B model's interleaved Q4_0 weights in
// malloc'd memory decoded at 5.7-24.9 tok/s from run to run (1 thread); in huge pages at a steady rate
// (bench/README.md). Linux's transparent huge pages are usually on for madvise'd regions only ("madvise" in
// /sys/kernel/mm/transparent_hugepage/enabled), and malloc may hand out pages already touched as 4 KiB ones, hence a
// mapping of our own, advised before its first touch. Where huge pages are off, the memory is ordinary pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace hearth::io {

// `bytes` bytes of zero-filled memory, 2 MiB-aligned, its whole 2 MiB pages in transparent huge pages when the system
// allows them (the rest in small pages), released when the last owner drops it. Throws ResourceError naming the size
// when the memory cannot be mapped.
std::shared_ptr<uint8_t> huge_page_buffer(size_t bytes);

}  // namespace hearth::io
