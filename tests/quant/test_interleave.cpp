// The interleaved Q4_0, Q8_0, Q4_K and Q6_K layouts (quant/interleave.h) and their kernels (quant/matvec.h
// matmul_interleaved): bytes where the header says they are, round trips, rows decoding to what the ggml rows decode
// to, every variant against the float64 dot of the decoded rows, and each product bit-identical whatever the batch and
// the row range.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "normal_values.h"
#include "quant/codec.h"
#include "quant/half.h"
#include "quant/interleave.h"
#include "quant/matvec.h"

using namespace hearth;
using namespace hearth::quant;

namespace {

constexpr GgmlType kTypes[] = {GgmlType::kQ4_0, GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ6_K};

// A row length of `blocks` blocks of the type (32 or 256 elements each).
int64_t row_of(GgmlType type, int64_t blocks) { return blocks * ggml_type_block_size(type); }

// The value activation k stands for once quantized: d·q of its block.
double activation(const Activations& a, int64_t k) {
  if (!a.b32.empty()) return double(a.b32[k / 32].d) * a.b32[k / 32].q[k % 32];
  return double(a.b256[k / 256].d) * a.b256[k / 256].q[k % 256];
}

std::vector<uint8_t> random_rows(GgmlType type, int64_t rows, int64_t n, uint32_t seed, float scale = 0.05f) {
  const std::vector<float> w = test::normal_values(rows * n, seed, scale);
  std::vector<uint8_t> bytes(ggml_type_nbytes(type, rows * n));
  quantize(type, w.data(), bytes.data(), rows * n);
  return bytes;
}

// `bytes` bytes of a pattern that differs from byte to byte within any block: byte i = (mul·i + add) mod 256.
std::vector<uint8_t> pattern(size_t bytes, int mul, int add) {
  std::vector<uint8_t> out(bytes);
  for (size_t i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(i * mul + add);
  return out;
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
    const std::vector<uint8_t> plain = pattern(rows * row_bytes, 7, 3);
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

TEST_CASE("interleaved Q4_K and Q6_K: bytes where interleave.h puts them", "[quant][interleave]") {
  // ggml's super-block: d, dmin (2 bytes each), 12 bytes of packed scales and mins, 128 of nibbles; a group's block b
  // at b·16·144.
  const int64_t rows = 16, n = 512, row_bytes = 2 * 144;
  const std::vector<uint8_t> plain = pattern(rows * row_bytes, 7, 3);
  const auto w = interleaved(GgmlType::kQ4_K, plain, rows, n);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < 2; ++b) {
      const uint8_t* blk = plain.data() + r * row_bytes + b * 144;
      const uint8_t* at = w.data() + b * 16 * 144;
      for (int i = 0; i < 2; ++i) {
        CHECK(at[2 * r + i] == blk[i]);
        CHECK(at[32 + 2 * r + i] == blk[2 + i]);
      }
      for (int k = 0; k < 12; ++k) CHECK(at[64 + 16 * k + r] == blk[4 + k]);
      for (int i = 0; i < 128; ++i) CHECK(at[256 + 64 * (i / 4) + 4 * r + i % 4] == blk[16 + i]);
    }
  // Q6_K: ql[128], qh[64], 16 signed scales, d; a group's block b at b·16·210.
  const int64_t q6_bytes = 2 * 210;
  const std::vector<uint8_t> q6 = pattern(rows * q6_bytes, 5, 1);
  const auto w6 = interleaved(GgmlType::kQ6_K, q6, rows, n);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < 2; ++b) {
      const uint8_t* blk = q6.data() + r * q6_bytes + b * 210;
      const uint8_t* at = w6.data() + b * 16 * 210;
      CHECK(at[2 * r] == blk[208]);
      CHECK(at[2 * r + 1] == blk[209]);
      for (int k = 0; k < 16; ++k) CHECK(at[32 + 16 * k + r] == blk[192 + k]);
      for (int h = 0; h < 2; ++h)
        for (int t = 0; t < 8; ++t)
          for (int j = 0; j < 4; ++j) {
            const int64_t step = 288 + 64 * (24 * h + 3 * t) + 4 * r + j;
            CHECK(at[step] == blk[64 * h + 4 * t + j]);              // ql, weights 128h + 4t + j and + 64
            CHECK(at[step + 64] == blk[64 * h + 32 + 4 * t + j]);    // ql, + 32 and + 96
            CHECK(at[step + 128] == blk[128 + 32 * h + 4 * t + j]);  // qh, the top bits of all four
          }
    }
}

TEST_CASE("interleaved rows round-trip and decode as the ggml rows", "[quant][interleave]") {
  for (GgmlType type : kTypes)
    for (int64_t rows : {16, 35, 5, 48})
      for (int64_t n : {row_of(type, 1), row_of(type, 3), row_of(type, 16)}) {
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
    const int64_t n = row_of(type, 3);
    const auto plain = random_rows(type, 35, n, 4);
    std::vector<uint8_t> parts(plain.size());
    for (int64_t r : {32, 16, 0})
      interleave_rows(type, plain.data(), parts.data(), 35, n, r, std::min<int64_t>(35, r + 16));
    CHECK(parts == interleaved(type, plain, 35, n));
    std::vector<uint8_t> scratch(plain.size());
    CHECK_THROWS_AS(interleave_rows(type, plain.data(), scratch.data(), 35, n, 8, 35), Error);
    CHECK_THROWS_AS(interleave_rows(type, plain.data(), scratch.data(), 35, n, 0, 20), Error);
    CHECK(interleavable(type));
  }
  // A row length off the type's blocks (Q4_K: 32 is a Q4_0 block, not a super-block).
  std::vector<uint8_t> scratch(16 * ggml_type_nbytes(GgmlType::kQ4_K, 256));
  CHECK_THROWS_AS(interleave_rows(GgmlType::kQ4_K, scratch.data(), scratch.data() + 1, 16, 32, 0, 16), Error);
  CHECK_THROWS_AS(interleave_rows(GgmlType::kQ5_0, scratch.data(), scratch.data(), 4, 32, 0, 4), Error);
  CHECK_FALSE(interleavable(GgmlType::kQ5_0));
  CHECK_FALSE(interleavable(GgmlType::kQ5_K));
}

TEST_CASE("interleaved products equal the float64 dot of the decoded rows in every variant", "[quant][interleave]") {
  for (GgmlType type : kTypes)
    for (int64_t n :
         {row_of(type, 3), row_of(type, 16), row_of(type, 64) / (ggml_type_block_size(type) == 256 ? 8 : 1)}) {
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
              const double x = activation(acts[i], k);
              dot += row[k] * x;
              mag += std::fabs(row[k] * x);
            }
            CHECK(std::fabs(y[i * rows + r] - dot) <= 1e-5 * mag + 1e-6);
          }
        }
      }
    }
}

TEST_CASE("interleaved products are bit-identical alone, in a batch and in a row range", "[quant][interleave]") {
  for (GgmlType type : kTypes) {
    const int64_t rows = 51,
                  n = row_of(type, ggml_type_block_size(type) == 256 ? 2 : 5);  // three groups, three plain rows
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

TEST_CASE("interleaved kernels on zero, extreme and tiny scales and bad activations", "[quant][interleave]") {
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

TEST_CASE("interleaved Q4_K and Q6_K kernels give the scalar kernel's bits on arbitrary blocks",
          "[quant][interleave]") {
  // Any bytes are a valid block but for the float16 scales (kept finite here): every 6-bit scale and min and every
  // top-bit combination of Q4_K's packed field, every Q6_K scale from -128 to 127, every level. Each variant's group
  // kernel does the scalar kernel's float operations in its order, so all give the same bits — which are also the
  // plain rows' dot (matmul_rows, scalar). Two whole groups: rows after the last group go through each variant's row
  // kernel, which adds in its own order.
  const std::pair<GgmlType, std::vector<int>> kinds[] = {{GgmlType::kQ4_K, {0, 2}}, {GgmlType::kQ6_K, {208}}};
  for (const auto& [type, halves] : kinds) {  // halves: where the block's float16 scales are
    INFO(ggml_type_name(type));
    const int64_t rows = 32, n = 768;
    const size_t row_bytes = ggml_type_nbytes(type, n), block = ggml_type_block_bytes(type);
    std::vector<uint8_t> plain(rows * row_bytes);
    std::mt19937 rng(11);
    for (auto& v : plain) v = static_cast<uint8_t>(rng());
    std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = 0; b < n / 256; ++b)
        for (int at : halves) {  // float16 values of either sign, now and then a subnormal one
          const uint16_t h = (r + b + at) % 7 == 0 ? uint16_t(0x0003 | (r % 2) << 15) : f32_to_f16(scale(rng));
          plain[r * row_bytes + b * block + at] = static_cast<uint8_t>(h & 0xFF);
          plain[r * row_bytes + b * block + at + 1] = static_cast<uint8_t>(h >> 8);
        }
    const auto w = interleaved(type, plain, rows, n);
    const auto acts = random_activations(type, 9, n, 70);
    std::vector<float> want(acts.size() * rows);
    REQUIRE(detail::matmul_rows_with("scalar", type, plain.data(), row_bytes, acts.data(),
                                     static_cast<int64_t>(acts.size()), want.data(), rows, 0, rows));
    std::vector<float> row(n);
    for (int64_t r = 0; r < rows; ++r) {  // and that is the float64 dot of the decoded rows
      dequantize(type, plain.data() + r * row_bytes, row.data(), n);
      double dot = 0, mag = 0;
      for (int64_t k = 0; k < n; ++k) {
        dot += row[k] * activation(acts[0], k);
        mag += std::fabs(row[k] * activation(acts[0], k));
      }
      CHECK(std::fabs(want[r] - dot) <= 1e-5 * mag + 1e-30);
    }
    int ran = 0;
    for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
      const auto y = run(variant, type, w, rows, acts);
      if (y.empty()) continue;
      ++ran;
      INFO(variant);
      CHECK(y == want);
    }
    CHECK(ran >= 1);
  }
}
