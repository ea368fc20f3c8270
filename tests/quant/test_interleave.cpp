// The interleaved Q4_0 and Q8_0 layouts (quant/interleave.h) and their kernels (quant/matvec.h matmul_interleaved):
// bytes where the header says they are, round trips, rows decoding to what the ggml rows decode to, every variant
// against the float64 dot of the decoded rows, and each product bit-identical whatever the batch and the row range.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "normal_values.h"
#include "quant/codec.h"
#include "quant/interleave.h"
#include "quant/matvec.h"

using namespace hearth;
using namespace hearth::quant;

namespace {

constexpr GgmlType kTypes[] = {GgmlType::kQ4_0, GgmlType::kQ8_0};

std::vector<uint8_t> random_rows(GgmlType type, int64_t rows, int64_t n, uint32_t seed, float scale = 0.05f) {
  const std::vector<float> w = test::normal_values(rows * n, seed, scale);
  std::vector<uint8_t> bytes(ggml_type_nbytes(type, rows * n));
  quantize(type, w.data(), bytes.data(), rows * n);
  return bytes;
}

std::vector<uint8_t> interleaved(GgmlType type, const std::vector<uint8_t>& plain, int64_t rows, int64_t n) {
  std::vector<uint8_t> out(plain.size(), 0xAB);
  interleave_rows(type, plain.data(), out.data(), rows, n, 0, rows);
  return out;
}

std::vector<float> random_vector(int64_t n, uint32_t seed) { return test::normal_values(n, seed); }

std::vector<Activations> random_activations(GgmlType type, int64_t m, int64_t n, uint32_t seed) {
  std::vector<Activations> acts(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) activations_prepare(type, random_vector(n, seed + i).data(), n, acts[i]);
  return acts;
}

std::vector<float> run(const char* variant, GgmlType type, const std::vector<uint8_t>& w, int64_t rows,
                       const std::vector<Activations>& acts) {
  const auto m = static_cast<int64_t>(acts.size());
  std::vector<float> y(static_cast<size_t>(m * rows), -1.0f);
  return detail::matmul_interleaved_with(variant, type, w.data(), rows, acts.data(), m, y.data(), rows, 0, rows)
             ? y
             : std::vector<float>{};
}

}  // namespace

TEST_CASE("interleaved Q4_0 and Q8_0: bytes where interleave.h puts them", "[quant][interleave]") {
  // ggml's blocks: Q4_0 2 + 16 bytes, Q8_0 2 + 32; a group's block b at b·16·(block bytes).
  for (auto [type, block, levels] : {std::tuple{GgmlType::kQ4_0, 18, 16}, std::tuple{GgmlType::kQ8_0, 34, 32}}) {
    INFO(ggml_type_name(type));
    const int64_t rows = 16, n = 64, row_bytes = 2 * block;  // one group, two blocks
    std::vector<uint8_t> plain(rows * row_bytes);
    for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i * 7 + 3);
    const auto w = interleaved(type, plain, rows, n);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = 0; b < 2; ++b) {
        const uint8_t* blk = plain.data() + r * row_bytes + b * block;
        const uint8_t* at = w.data() + b * 16 * block;
        CHECK(at[2 * r] == blk[0]);
        CHECK(at[2 * r + 1] == blk[1]);
        for (int64_t i = 0; i < levels; ++i) CHECK(at[32 + 64 * (i / 4) + 4 * r + i % 4] == blk[2 + i]);
      }
  }
}

TEST_CASE("interleaved Q4_0 and Q8_0 rows round-trip and decode as the ggml rows", "[quant][interleave]") {
  for (GgmlType type : kTypes)
    for (int64_t rows : {16, 35, 5, 48})
      for (int64_t n : {32, 96, 512}) {
        INFO(ggml_type_name(type) << " rows " << rows << " n " << n);
        const auto plain = random_rows(type, rows, n, 3);
        const auto w = interleaved(type, plain, rows, n);
        std::vector<uint8_t> back(plain.size(), 0xCD);
        deinterleave_rows(type, w.data(), back.data(), rows, n, 0, rows);
        CHECK(back == plain);
        if (rows >= 16) CHECK(w != plain);
        std::vector<float> want(n), got(n);
        for (int64_t r = 0; r < rows; ++r) {
          dequantize(type, plain.data() + r * ggml_type_nbytes(type, n), want.data(), n);
          dequantize_interleaved(type, w.data(), rows, n, r, r + 1, got.data());
          CHECK(got == want);
        }
        // All rows at once (the groups, then the rows in ggml's layout): the whole matrix as dequantize() reads it.
        std::vector<float> all_want(rows * n), all_got(rows * n);
        dequantize(type, plain.data(), all_want.data(), rows * n);
        dequantize_interleaved(type, w.data(), rows, n, 0, rows, all_got.data());
        CHECK(all_got == all_want);
      }
  // Group by group, as loading does it on several threads: the same bytes.
  for (GgmlType type : kTypes) {
    const auto plain = random_rows(type, 35, 96, 4);
    std::vector<uint8_t> parts(plain.size());
    for (int64_t r : {32, 16, 0})
      interleave_rows(type, plain.data(), parts.data(), 35, 96, r, std::min<int64_t>(35, r + 16));
    CHECK(parts == interleaved(type, plain, 35, 96));
    std::vector<uint8_t> scratch(plain.size());
    CHECK_THROWS_AS(interleave_rows(type, plain.data(), scratch.data(), 35, 96, 8, 35), Error);
    CHECK_THROWS_AS(interleave_rows(type, plain.data(), scratch.data(), 35, 96, 0, 20), Error);
    CHECK(interleavable(type));
  }
  std::vector<uint8_t> scratch(4 * ggml_type_nbytes(GgmlType::kQ5_0, 32));
  CHECK_THROWS_AS(interleave_rows(GgmlType::kQ5_0, scratch.data(), scratch.data(), 4, 32, 0, 4), Error);
  CHECK_FALSE(interleavable(GgmlType::kQ5_0));
  CHECK_FALSE(interleavable(GgmlType::kQ4_K));
}

TEST_CASE("interleaved Q4_0 and Q8_0 products equal the float64 dot of the decoded rows in every variant",
          "[quant][interleave]") {
  for (GgmlType type : kTypes)
    for (int64_t n : {96, 512, 2048}) {
      const int64_t rows = 35;  // two groups and three rows in ggml's layout
      const auto plain = random_rows(type, rows, n, 5);
      const auto w = interleaved(type, plain, rows, n);
      const auto acts = random_activations(type, 13, n, 50);  // 8 + 4 + 1 columns in the wide kernels
      for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
        const auto y = run(variant, type, w, rows, acts);
        if (y.empty()) continue;
        INFO(ggml_type_name(type) << " " << variant << " n " << n);
        std::vector<float> row(n);
        for (int64_t r = 0; r < rows; ++r) {
          dequantize(type, plain.data() + r * ggml_type_nbytes(type, n), row.data(), n);
          for (size_t i = 0; i < acts.size(); ++i) {
            double dot = 0, mag = 0;
            for (int64_t k = 0; k < n; ++k) {
              const double x = double(acts[i].b32[k / 32].d) * acts[i].b32[k / 32].q[k % 32];
              dot += row[k] * x;
              mag += std::fabs(row[k] * x);
            }
            CHECK(std::fabs(y[i * rows + r] - dot) <= 1e-5 * mag + 1e-6);
          }
        }
      }
    }
}

TEST_CASE("interleaved Q4_0 and Q8_0 products are bit-identical alone, in a batch and in a row range",
          "[quant][interleave]") {
  for (GgmlType type : kTypes) {
    const int64_t rows = 51, n = 160;  // three groups, three plain rows; five blocks
    const auto w = interleaved(type, random_rows(type, rows, n, 6), rows, n);
    const int64_t M = 70;  // more than one column panel
    const auto acts = random_activations(type, M, n, 200);
    for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
      const auto batch = run(variant, type, w, rows, acts);
      if (batch.empty()) continue;
      INFO(ggml_type_name(type) << " " << variant);
      for (int64_t i = 0; i < M; ++i) {
        const auto one = run(variant, type, w, rows, {acts[i]});
        for (int64_t r = 0; r < rows; ++r) CHECK(batch[i * rows + r] == one[r]);
      }
      std::vector<float> part(M * 35, -7.0f);  // rows 16..50 into a y of their own
      REQUIRE(detail::matmul_interleaved_with(variant, type, w.data(), rows, acts.data(), M, part.data(), 35, 16, 51));
      for (int64_t i = 0; i < M; ++i)
        for (int64_t r = 16; r < 51; ++r) CHECK(part[i * 35 + (r - 16)] == batch[i * rows + r]);
    }
    std::vector<float> y(rows);
    CHECK_THROWS_AS(matmul_interleaved(type, w.data(), rows, acts.data(), 1, y.data(), rows, 8, 16), Error);
  }
}

TEST_CASE("interleaved Q4_0 and Q8_0 kernels on zero, extreme and tiny scales and bad activations",
          "[quant][interleave]") {
  for (GgmlType type : kTypes)
    for (float scale : {0.0f, 1e-30f, 1000.0f}) {
      INFO(ggml_type_name(type) << " weight scale " << scale);
      const auto w = interleaved(type, random_rows(type, 16, 256, 8, scale), 16, 256);
      std::vector<float> zeros(256, 0.0f), big = random_vector(256, 6), bad = random_vector(256, 7);
      for (auto& v : big) v *= 1e6f;
      bad[3] = std::nanf("");
      bad[100] = INFINITY;
      std::vector<Activations> acts(3);
      activations_prepare(type, zeros.data(), 256, acts[0]);
      activations_prepare(type, big.data(), 256, acts[1]);
      activations_prepare(type, bad.data(), 256, acts[2]);
      for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
        const auto y = run(variant, type, w, 16, acts);
        if (y.empty()) continue;
        INFO(variant);
        for (int r = 0; r < 16; ++r) CHECK(y[r] == 0.0f);
        for (float v : y) CHECK(std::isfinite(v));
        if (scale == 0.0f)
          for (float v : y) CHECK(v == 0.0f);
      }
    }
}

TEST_CASE("interleaved Q8_0 kernels take the extreme levels -128 and 127 exactly", "[quant][interleave]") {
  // ggml's quantizer writes levels in [-127, 127]; a file may hold -128. Every variant's integer sums must stay exact
  // at the extremes (the VNNI kernel's offset of 128, the others' |q| = 128 in maddubs).
  const int64_t rows = 16, n = 64;
  const size_t row_bytes = ggml_type_nbytes(GgmlType::kQ8_0, n);
  std::vector<uint8_t> plain(rows * row_bytes);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < 2; ++b) {
      uint8_t* blk = plain.data() + r * row_bytes + b * 34;
      blk[0] = 0x00;  // float16 1.0
      blk[1] = 0x3c;
      for (int i = 0; i < 32; ++i) {
        const int level = (i + r + b) % 3 == 0 ? -128 : (i + r) % 3 == 1 ? 127 : (i * 37 + r * 11) % 255 - 127;
        blk[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(level));
      }
    }
  const auto w = interleaved(GgmlType::kQ8_0, plain, rows, n);
  std::vector<float> x(n);
  for (int64_t k = 0; k < n; ++k) x[k] = k % 2 ? 1.0f : -1.0f;  // quantized to ±127 with d = 1/127
  std::vector<Activations> acts(5);
  for (auto& a : acts) activations_prepare(GgmlType::kQ8_0, x.data(), n, a);
  for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
    const auto y = run(variant, GgmlType::kQ8_0, w, rows, acts);
    if (y.empty()) continue;
    INFO(variant);
    for (int64_t r = 0; r < rows; ++r) {
      double dot = 0;
      for (int64_t k = 0; k < n; ++k)
        dot += double(static_cast<int8_t>(plain[r * row_bytes + (k / 32) * 34 + 2 + k % 32])) *
               acts[0].b32[k / 32].q[k % 32] * acts[0].b32[k / 32].d;
      for (size_t i = 0; i < acts.size(); ++i) CHECK(y[i * rows + r] == Approx(dot).epsilon(1e-6));
    }
  }
}
