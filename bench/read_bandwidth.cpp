// Read-bandwidth probe. See read_bandwidth.h.
#include "bench/read_bandwidth.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace hearth::bench {

namespace {

constexpr int kLanes = 64;

float sum_range(const float* a, size_t n) {
  float acc[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j];
  float s = 0;
  for (; i < n; ++i) s += a[i];
  for (float v : acc) s += v;
  return s;
}

volatile float g_sink;  // where the sums go, so that they are computed

// Runs body(t, lo, hi) on threads t = 0..threads-1 over [0, n) split into contiguous ranges; returns the seconds.
template <class Body>
double on_threads(int threads, size_t n, Body body) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back([=] { body(t, n * t / threads, n * (t + 1) / threads); });
  body(0, size_t(0), n / threads);
  for (auto& th : pool) th.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double best_gbs(int threads, size_t bytes, int passes, bool huge) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("read_bandwidth: cannot map the probe array");
  ::madvise(p, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  auto* a = static_cast<float*>(p);
  const size_t n = bytes / sizeof(float);
  on_threads(threads, n, [&](int, size_t lo, size_t hi) { std::fill(a + lo, a + hi, 1.0f); });  // first touch, as read
  std::vector<float> sums(static_cast<size_t>(threads));
  double best = 1e30;
  for (int pass = 0; pass < passes; ++pass) {
    best = std::min(best, on_threads(threads, n, [&](int t, size_t lo, size_t hi) {
                      sums[static_cast<size_t>(t)] = sum_range(a + lo, hi - lo);
                    }));
    for (float s : sums) g_sink = g_sink + s;
  }
  ::munmap(p, bytes);
  return static_cast<double>(bytes) / best / 1e9;
}

}  // namespace

ReadBandwidth read_bandwidth(int threads, size_t bytes, int passes) {
  threads = std::max(threads, 1);
  bytes &= ~size_t(4095);
  return {best_gbs(threads, bytes, passes, true), best_gbs(threads, bytes, passes, false)};
}

}  // namespace hearth::bench
