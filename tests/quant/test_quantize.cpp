// Quantizers: byte-for-byte against the kq256 files that llama-quantize made from the same float32 weights, error
// bounds of dequantize(quantize(x)) for every type, and edge cases (zeros, extreme and tiny values, non-finite input).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "kq256.h"
#include "quant/block_format.h"
#include "quant/codec.h"

using namespace hearth;
using namespace hearth::quant;
using Catch::Matchers::Contains;

namespace {

std::vector<uint8_t> encode(GgmlType type, const std::vector<float>& x) {
  std::vector<uint8_t> out(ggml_type_nbytes(type, static_cast<int64_t>(x.size())));
  quantize(type, x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<float> round_trip(GgmlType type, const std::vector<float>& x) {
  const auto bytes = encode(type, x);
  std::vector<float> y(x.size());
  dequantize(type, bytes.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

const GgmlType kAllQuantizable[] = {GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
                                    GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kQ8_K};

// Largest |error| allowed per element, relative to the largest |x| of the element's block (the super-block for the
// K types). Derived from the formats: Q8_0 rounds to steps of max/127 (half a step, plus F16 rounding of d);
// Q4_0 has steps of max/8 and may clamp the value opposite the maximum to 7 steps (one step); the K types spend
// 4/5/6 bits per value with 6-bit (Q4_K/Q5_K) or 8-bit (Q6_K) scales and mins relative to the super-block, so a
// sub-block's step is at most about 2·max/15, 2·max/31 and max/32 (half of it is the rounding error) and
// re-rounding against the encoded scale can cost up to one step; Q8_K uses max/127 with a float32 scale.
double error_bound(GgmlType type) {
  switch (type) {
    case GgmlType::kQ8_0: return 0.5 / 127 * 1.01 + 127.0 / 127 * std::ldexp(1.0, -11);
    case GgmlType::kQ4_0: return 1.0 / 8 * 1.01;
    case GgmlType::kQ4_K: return 2.0 / 15;
    case GgmlType::kQ5_K: return 2.0 / 31;
    case GgmlType::kQ6_K: return 1.0 / 32;
    case GgmlType::kQ8_K: return 0.5 / 127 * 1.001;
    default: return 0;
  }
}

// Checks every element of y against x with the per-block bound (relative per element for F16/BF16).
void check_error_bound(GgmlType type, const std::vector<float>& x, const std::vector<float>& y) {
  REQUIRE(x.size() == y.size());
  if (type == GgmlType::kF16 || type == GgmlType::kBF16) {
    const double rel = type == GgmlType::kF16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    for (size_t i = 0; i < x.size(); ++i) {
      INFO("element " << i << ": " << x[i] << " → " << y[i]);
      REQUIRE(std::fabs(double(y[i]) - x[i]) <= rel * std::fabs(x[i]) + std::ldexp(1.0, -25));
    }
    return;
  }
  const auto bs = static_cast<size_t>(ggml_type_block_size(type));
  const double bound = error_bound(type);
  for (size_t b = 0; b < x.size(); b += bs) {
    double amax = 0;
    for (size_t i = b; i < b + bs; ++i) amax = std::max(amax, double(std::fabs(x[i])));
    for (size_t i = b; i < b + bs; ++i) {
      INFO(ggml_type_name(type) << " element " << i << ": " << x[i] << " → " << y[i] << ", block max " << amax);
      REQUIRE(std::isfinite(y[i]));
      REQUIRE(std::fabs(double(y[i]) - x[i]) <= bound * amax);
    }
  }
}

double rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double e = 0, s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
    s += double(x[i]) * x[i];
  }
  return std::sqrt(e / s);
}

std::vector<float> gaussian(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

}  // namespace

TEST_CASE("quantizers reproduce llama-quantize's kq256 files byte for byte", "[quant][gguf]") {
  // For every tensor of every kq256 file: quantize hearth's own way the float32 weights of hf/ (q/k rows reordered
  // as llama.cpp's converter does) into the tensor's type, and compare with the bytes llama-quantize wrote.
  auto hf = io::SafetensorsFile::open(test::kq256_dir() / "hf" / "model.safetensors");
  std::map<std::string, std::pair<int, int>> blocks_by_type;  // type → (identical blocks, total blocks)
  for (const auto& file : test::kq256_gguf_files()) {
    auto f = io::GgufFile::open(test::kq256_dir() / file);
    for (const auto& t : f->tensors()) {
      INFO(file << " " << t.name << " " << ggml_type_name(t.type));
      const std::vector<float> w = test::kq256_hf_weights(*hf, t.name);
      REQUIRE(int64_t(w.size()) == t.numel());
      const std::vector<uint8_t> ours = encode(t.type, w);
      REQUIRE(ours.size() == t.nbytes);
      const size_t bb = ggml_type_block_bytes(t.type);
      auto& [same, total] = blocks_by_type[std::string(ggml_type_name(t.type))];
      for (size_t o = 0; o < ours.size(); o += bb) {
        same += std::memcmp(&ours[o], t.data + o, bb) == 0;
        ++total;
      }
      CHECK(std::memcmp(ours.data(), t.data, t.nbytes) == 0);
    }
  }
  for (const auto& [type, counts] : blocks_by_type) {
    INFO(type << ": " << counts.first << " of " << counts.second << " blocks identical");
    CHECK(counts.first == counts.second);
  }
  // Every type hearth quantizes is covered by the fixture (Q8_K is not a file type).
  for (const char* type : {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    CHECK(blocks_by_type.count(type) == 1);
}

TEST_CASE("dequantize(quantize(x)) stays within each type's error bound", "[quant]") {
  const std::vector<float> x = gaussian(256 * 64, 7);
  std::vector<float> wide = gaussian(256 * 16, 8, 100.0f);  // a few outliers per block
  for (size_t i = 0; i < wide.size(); i += 37) wide[i] *= 20;
  for (GgmlType type : kAllQuantizable) {
    INFO(ggml_type_name(type));
    const auto y = round_trip(type, x);
    check_error_bound(type, x, y);
    check_error_bound(type, wide, round_trip(type, wide));
    // Typical accuracy on Gaussian data (relative RMS error), well inside what each format is known for.
    const double rms = rms_error(x, y);
    switch (type) {
      case GgmlType::kQ8_0: CHECK(rms < 0.01); break;
      case GgmlType::kQ4_0: CHECK(rms < 0.15); break;
      case GgmlType::kQ4_K: CHECK(rms < 0.12); break;
      case GgmlType::kQ5_K: CHECK(rms < 0.06); break;
      case GgmlType::kQ6_K: CHECK(rms < 0.03); break;
      case GgmlType::kQ8_K: CHECK(rms < 0.01); break;
      default: CHECK(rms < 0.004); break;
    }
    // Quantizing the round trip again is stable for the exact formats.
    if (type == GgmlType::kF16 || type == GgmlType::kBF16) CHECK(round_trip(type, y) == y);
  }
}

TEST_CASE("quantizers handle zeros, extreme, tiny and denormal values", "[quant]") {
  const size_t n = 512;
  for (GgmlType type : kAllQuantizable) {
    INFO(ggml_type_name(type));
    {  // all zero
      const std::vector<float> zero(n, 0.0f);
      const auto bytes = encode(type, zero);
      // Every field zero — except Q4_0, whose zero level is the nibble 8 and whose d = 0 / −8 is −0: llama.cpp
      // writes d = 0x8000, qs = 0x88 there.
      const size_t bb = ggml_type_block_bytes(type);
      for (size_t i = 0; i < bytes.size(); ++i) {
        const size_t at = i % bb;
        const int expected = type != GgmlType::kQ4_0 ? 0 : at == 0 ? 0 : at == 1 ? 0x80 : 0x88;
        REQUIRE(int(bytes[i]) == expected);
      }
      for (float v : round_trip(type, zero)) CHECK(v == 0.0f);
    }
    {  // one large value of either sign among small ones
      for (float big : {1000.0f, -1000.0f, 60000.0f, -60000.0f}) {
        std::vector<float> x = gaussian(n, 3, 0.01f);
        x[5] = big;
        x[300] = -big / 2;
        const auto y = round_trip(type, x);
        check_error_bound(type, x, y);
      }
    }
    {  // the block maximum itself is reproduced closely
      std::vector<float> x = gaussian(n, 4);
      x[17] = -9.0f;  // the largest magnitude of its block, negative (Q4_0 maps it to exactly -8·d)
      const auto y = round_trip(type, x);
      if (type == GgmlType::kQ4_0 || type == GgmlType::kQ8_0)
        CHECK(std::fabs(y[17] + 9.0f) <= 9.0f * std::ldexp(1.0f, -10));  // only the F16 rounding of d
    }
    {  // tiny and denormal values give finite output no larger than the input
      for (float tiny : {1e-8f, 1e-20f, 1e-30f, 1e-38f, 1e-40f, 1e-45f}) {
        std::vector<float> x(n);
        for (size_t i = 0; i < n; ++i) x[i] = (i % 3 == 0 ? -tiny : tiny) * float(1 + i % 7) / 7;
        const auto y = round_trip(type, x);
        for (size_t i = 0; i < n; ++i) {
          INFO("x = " << x[i] << ", y = " << y[i]);
          REQUIRE(std::isfinite(y[i]));
          REQUIRE(std::fabs(y[i]) <= 2 * tiny);
        }
      }
    }
  }
}

TEST_CASE("quantizers reject non-finite input and out-of-range scales", "[quant]") {
  std::vector<float> x(256, 0.5f);
  std::vector<uint8_t> out(300 * 2);
  for (GgmlType type :
       {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kQ8_K}) {
    INFO(ggml_type_name(type));
    x[77] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(quantize(type, x.data(), out.data(), 256),
                      Contains("element 77 is nan; expected a finite value"));
    x[77] = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(quantize(type, x.data(), out.data(), 256), ConfigError);
    x[77] = 0.5f;
  }
  // F16 scales: d = max|x|/127 (Q8_0), /8 (Q4_0) must stay below 65504; the K types divide further (Q4_K: by
  // 15·63, Q6_K: by 32·128), so they overflow only beyond ~6e7 and ~2.7e8.
  x[3] = 1e7f;
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0})
    CHECK_THROWS_WITH(quantize(type, x.data(), out.data(), 256), Contains("exceeds the F16 range"));
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    CHECK_NOTHROW(quantize(type, x.data(), out.data(), 256));
    x[3] = 1e10f;
    CHECK_THROWS_WITH(quantize(type, x.data(), out.data(), 256), Contains("exceeds the F16 range"));
    x[3] = 1e7f;
  }
  x[3] = 1e30f;
  CHECK_NOTHROW(quantize(GgmlType::kQ8_K, x.data(), out.data(), 256));  // float32 scale
  // F16/BF16 behave like a cast: inf and NaN pass through.
  std::vector<float> special = {std::numeric_limits<float>::infinity(), 1e6f, std::nanf("")};
  std::vector<uint8_t> h(6);
  quantize(GgmlType::kF16, special.data(), h.data(), 3);
  std::vector<float> back(3);
  dequantize(GgmlType::kF16, h.data(), back.data(), 3);
  CHECK(std::isinf(back[0]));
  CHECK(std::isinf(back[1]));
  CHECK(std::isnan(back[2]));
  CHECK_THROWS_WITH(quantize(GgmlType::kQ4_K, x.data(), out.data(), 100), Contains("multiple of 256"));
}
