// The interleaved Q4_0 layout (quant/interleave.h) and its kernels (quant/matvec.h matmul_interleaved): bytes where
// the header says they are, round trips, rows decoding to what the ggml rows decode to, every variant against the
// float64 dot of the decoded rows, and each product bit-identical whatever the batch and the row range.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "normal_values.h"
#include "quant/codec.h"
#include "quant/interleave.h"
#include "quant/matvec.h"

using namespace hearth;
using namespace hearth::quant;

namespace {

constexpr GgmlType kQ4 = GgmlType::kQ4_0;

std::vector<uint8_t> random_q4_0(int64_t rows, int64_t n, uint32_t seed, float scale = 0.05f) {
  const std::vector<float> w = test::normal_values(rows * n, seed, scale);
  std::vector<uint8_t> bytes(ggml_type_nbytes(kQ4, rows * n));
  quantize(kQ4, w.data(), bytes.data(), rows * n);
  return bytes;
}

std::vector<uint8_t> interleaved(const std::vector<uint8_t>& plain, int64_t rows, int64_t n) {
  std::vector<uint8_t> out(plain.size(), 0xAB);
  interleave_rows(kQ4, plain.data(), out.data(), rows, n, 0, rows);
  return out;
}

std::vector<float> random_vector(int64_t n, uint32_t seed) { return test::normal_values(n, seed); }

std::vector<Activations> random_activations(int64_t m, int64_t n, uint32_t seed) {
  std::vector<Activations> acts(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) activations_prepare(kQ4, random_vector(n, seed + i).data(), n, acts[i]);
  return acts;
}

std::vector<float> run(const char* variant, const std::vector<uint8_t>& w, int64_t rows,
                       const std::vector<Activations>& acts) {
  const auto m = static_cast<int64_t>(acts.size());
  std::vector<float> y(static_cast<size_t>(m * rows), -1.0f);
  return detail::matmul_interleaved_with(variant, kQ4, w.data(), rows, acts.data(), m, y.data(), rows, 0, rows)
             ? y
             : std::vector<float>{};
}

}  // namespace

TEST_CASE("interleaved Q4_0: bytes where interleave.h puts them", "[quant][interleave]") {
  const int64_t rows = 16, n = 64, row_bytes = 36;  // one group, two blocks
  std::vector<uint8_t> plain(rows * row_bytes);
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i * 7 + 3);
  const auto w = interleaved(plain, rows, n);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < 2; ++b) {
      const uint8_t* blk = plain.data() + r * row_bytes + b * 18;
      const uint8_t* at = w.data() + b * 288;
      CHECK(at[2 * r] == blk[0]);
      CHECK(at[2 * r + 1] == blk[1]);
      for (int64_t i = 0; i < 16; ++i) CHECK(at[32 + 64 * (i / 4) + 4 * r + i % 4] == blk[2 + i]);
    }
}

TEST_CASE("interleaved Q4_0 rows round-trip and decode as the ggml rows", "[quant][interleave]") {
  for (int64_t rows : {16, 35, 5, 48})
    for (int64_t n : {32, 96, 512}) {
      INFO("rows " << rows << " n " << n);
      const auto plain = random_q4_0(rows, n, 3);
      const auto w = interleaved(plain, rows, n);
      std::vector<uint8_t> back(plain.size(), 0xCD);
      deinterleave_rows(kQ4, w.data(), back.data(), rows, n, 0, rows);
      CHECK(back == plain);
      if (rows >= 16) CHECK(w != plain);
      std::vector<float> want(n), got(n);
      for (int64_t r = 0; r < rows; ++r) {
        dequantize(kQ4, plain.data() + r * ggml_type_nbytes(kQ4, n), want.data(), n);
        dequantize_interleaved(kQ4, w.data(), rows, n, r, r + 1, got.data());
        CHECK(got == want);
      }
      // All rows at once (the groups, then the rows in ggml's layout): the whole matrix as dequantize() reads it.
      std::vector<float> all_want(rows * n), all_got(rows * n);
      dequantize(kQ4, plain.data(), all_want.data(), rows * n);
      dequantize_interleaved(kQ4, w.data(), rows, n, 0, rows, all_got.data());
      CHECK(all_got == all_want);
    }
  // Group by group, as loading does it on several threads: the same bytes.
  const auto plain = random_q4_0(35, 96, 4);
  std::vector<uint8_t> parts(plain.size());
  for (int64_t r : {32, 16, 0})
    interleave_rows(kQ4, plain.data(), parts.data(), 35, 96, r, std::min<int64_t>(35, r + 16));
  CHECK(parts == interleaved(plain, 35, 96));
  std::vector<uint8_t> scratch(plain.size());
  CHECK_THROWS_AS(interleave_rows(kQ4, plain.data(), scratch.data(), 35, 96, 8, 35), Error);
  CHECK_THROWS_AS(interleave_rows(kQ4, plain.data(), scratch.data(), 35, 96, 0, 20), Error);
  CHECK_THROWS_AS(interleave_rows(GgmlType::kQ8_0, plain.data(), scratch.data(), 4, 32, 0, 4), Error);
  CHECK_FALSE(interleavable(GgmlType::kQ8_0));
}

TEST_CASE("interleaved Q4_0 products equal the float64 dot of the decoded rows in every variant",
          "[quant][interleave]") {
  for (int64_t n : {96, 512, 2048}) {
    const int64_t rows = 35;  // two groups and three rows in ggml's layout
    const auto plain = random_q4_0(rows, n, 5);
    const auto w = interleaved(plain, rows, n);
    const auto acts = random_activations(13, n, 50);  // 8 + 4 + 1 columns in the wide kernels
    for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
      const auto y = run(variant, w, rows, acts);
      if (y.empty()) continue;
      INFO(variant << " n " << n);
      std::vector<float> row(n);
      for (int64_t r = 0; r < rows; ++r) {
        dequantize(kQ4, plain.data() + r * ggml_type_nbytes(kQ4, n), row.data(), n);
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

TEST_CASE("interleaved Q4_0 products are bit-identical alone, in a batch and in a row range", "[quant][interleave]") {
  const int64_t rows = 51, n = 160;  // three groups, three plain rows; five blocks
  const auto w = interleaved(random_q4_0(rows, n, 6), rows, n);
  const int64_t M = 70;  // more than one column panel
  const auto acts = random_activations(M, n, 200);
  for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
    const auto batch = run(variant, w, rows, acts);
    if (batch.empty()) continue;
    INFO(variant);
    for (int64_t i = 0; i < M; ++i) {
      const auto one = run(variant, w, rows, {acts[i]});
      for (int64_t r = 0; r < rows; ++r) CHECK(batch[i * rows + r] == one[r]);
    }
    std::vector<float> part(M * 35, -7.0f);  // rows 16..50 into a y of their own
    REQUIRE(detail::matmul_interleaved_with(variant, kQ4, w.data(), rows, acts.data(), M, part.data(), 35, 16, 51));
    for (int64_t i = 0; i < M; ++i)
      for (int64_t r = 16; r < 51; ++r) CHECK(part[i * 35 + (r - 16)] == batch[i * rows + r]);
  }
  std::vector<float> y(rows);
  CHECK_THROWS_AS(matmul_interleaved(kQ4, w.data(), rows, acts.data(), 1, y.data(), rows, 8, 16), Error);
}

TEST_CASE("interleaved Q4_0 kernels on zero, extreme and tiny scales and bad activations", "[quant][interleave]") {
  for (float scale : {0.0f, 1e-30f, 1000.0f}) {
    INFO("weight scale " << scale);
    const auto w = interleaved(random_q4_0(16, 256, 8, scale), 16, 256);
    std::vector<float> zeros(256, 0.0f), big = random_vector(256, 6), bad = random_vector(256, 7);
    for (auto& v : big) v *= 1e6f;
    bad[3] = std::nanf("");
    bad[100] = INFINITY;
    std::vector<Activations> acts(3);
    activations_prepare(kQ4, zeros.data(), 256, acts[0]);
    activations_prepare(kQ4, big.data(), 256, acts[1]);
    activations_prepare(kQ4, bad.data(), 256, acts[2]);
    for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
      const auto y = run(variant, w, 16, acts);
      if (y.empty()) continue;
      INFO(variant);
      for (int r = 0; r < 16; ++r) CHECK(y[r] == 0.0f);
      for (float v : y) CHECK(std::isfinite(v));
      if (scale == 0.0f)
        for (float v : y) CHECK(v == 0.0f);
    }
  }
}
