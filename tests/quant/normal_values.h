// Seeded normally distributed values for the quant tests (weights to quantize, activations).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace hearth::test {

// n values from N(0, stddev²), the same for the same seed.
inline std::vector<float> normal_values(int64_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  return x;
}

}  // namespace hearth::test
