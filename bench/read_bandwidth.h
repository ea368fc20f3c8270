// Memory read bandwidth as a decode step reads weights: the floor bench_generate measures its decode against.
//
// Each thread sums its own contiguous range of a float32 array (64 independent accumulators, so the add latency never
// limits the stream), best of several passes, in two page modes: 2 MiB huge pages (what hearth's copied GGUF blocks
// get, io/huge_pages.h) and 4 KiB pages (a memory-mapped safetensors file's page cache). This reads like
// ../shared/tools/stream.c, which #17 names the floor; libtorch's `sum()` over a tensor read ~21 GB/s where stream.c
// read 30–42 on the same VM and so overstated "% of floor".
#pragma once

#include <cstddef>

namespace hearth::bench {

struct ReadBandwidth {
  double huge_pages = 0;  // GB/s (1e9 bytes/s), best pass
  double small_pages = 0;
  double best() const { return huge_pages > small_pages ? huge_pages : small_pages; }
};

// `bytes` of float32 read by `threads` threads, best of `passes` in each page mode.
ReadBandwidth read_bandwidth(int threads, size_t bytes = size_t(1) << 30, int passes = 7);

}  // namespace hearth::bench
