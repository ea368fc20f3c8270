// Block matrix kernels (quant/matvec.h): the scalar reference equals a float64 dot product of the decoded
// weights with the decoded 8-bit activations, every SIMD variant this CPU can run equals the scalar one (up
// to the order of float additions), batched rows equal single rows, and edge cases (zero, extreme and tiny
// blocks, NaN/Inf activations) stay finite and defined.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "normal_values.h"
#include "quant/codec.h"
#include "quant/half.h"
#include "quant/matvec.h"

using namespace hearth;
using namespace hearth::quant;

namespace {

const GgmlType kKernelTypes[] = {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0,
                                 GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K};
const char* const kVariants[] = {"avx2", "avx512", "avx512vnni"};

struct Matrix {
  GgmlType type;
  int64_t rows, in;
  std::vector<uint8_t> bytes;
  size_t row_bytes() const { return ggml_type_nbytes(type, in); }
};

Matrix random_matrix(GgmlType type, int64_t rows, int64_t in, uint32_t seed, float scale = 0.05f) {
  const std::vector<float> w = test::normal_values(rows * in, seed, scale);
  Matrix m{type, rows, in, std::vector<uint8_t>(ggml_type_nbytes(type, rows * in))};
  quantize(type, w.data(), m.bytes.data(), rows * in);
  return m;
}

std::vector<float> random_vector(int64_t n, uint32_t seed) { return test::normal_values(n, seed); }

// The activations as the kernels see them (d·q per block), decoded back to float.
std::vector<double> decoded_activations(const Activations& a) {
  std::vector<double> out;
  for (const auto& b : a.b32)
    for (int8_t q : b.q) out.push_back(double(b.d) * q);
  for (const auto& b : a.b256)
    for (int8_t q : b.q) out.push_back(double(b.d) * q);
  return out;
}

// Σ_k |W[r][k]|·|x[k]| for the tolerance scale, and the float64 reference dot.
std::pair<double, double> reference(const Matrix& m, int64_t r, const std::vector<double>& x) {
  std::vector<float> row(static_cast<size_t>(m.in));
  dequantize(m.type, m.bytes.data() + r * m.row_bytes(), row.data(), m.in);
  double dot = 0, mag = 0;
  for (int64_t k = 0; k < m.in; ++k) {
    dot += row[k] * x[k];
    mag += std::fabs(row[k] * x[k]);
  }
  return {dot, mag};
}

std::vector<float> run(const char* variant, const Matrix& m, const std::vector<Activations>& acts) {
  const int64_t M = static_cast<int64_t>(acts.size());
  std::vector<float> y(static_cast<size_t>(M * m.rows), -1.0f);
  bool ran = detail::matmul_rows_with(variant, m.type, m.bytes.data(), m.row_bytes(), acts.data(), M, y.data(), m.rows,
                                      0, m.rows);
  return ran ? y : std::vector<float>{};
}

}  // namespace

TEST_CASE("scalar block kernels equal the float64 dot of decoded weights and activations", "[quant][matvec]") {
  for (GgmlType type : kKernelTypes) {
    INFO(ggml_type_name(type));
    const Matrix m = random_matrix(type, 5, 512, 1);
    Activations a;
    activations_prepare(type, random_vector(512, 2).data(), 512, a);
    const auto x = decoded_activations(a);
    REQUIRE(x.size() == 512);
    const auto y = run("scalar", m, {a});
    for (int64_t r = 0; r < m.rows; ++r) {
      auto [dot, mag] = reference(m, r, x);
      CHECK(std::fabs(y[r] - dot) <= 1e-5 * mag);
    }
  }
}

TEST_CASE("8-bit activations round halves to even", "[quant][matvec]") {
  // max |x| = 127, so the scale is exactly 1 and q = x rounded: ties go to the even integer (as llama.cpp's
  // nearest_int), the rest to the nearest.
  std::vector<float> x(32, 0.0f);
  const std::vector<std::pair<float, float>> cases = {{127, 127},  {0.5f, 0},   {1.5f, 2},     {2.5f, 2},
                                                      {-2.5f, -2}, {-3.5f, -4}, {126.5f, 126}, {3.4f, 3},
                                                      {-3.6f, -4}, {-0.5f, 0},  {-127, -127},  {0.49f, 0}};
  for (size_t i = 0; i < cases.size(); ++i) x[i] = cases[i].first;
  Activations a;
  activations_prepare(GgmlType::kQ8_0, x.data(), 32, a);
  const auto back = decoded_activations(a);
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].first);
    CHECK(back[i] == cases[i].second);
  }
}

TEST_CASE("8-bit activations stay within half a step of the input", "[quant][matvec]") {
  const auto x = random_vector(512, 3);
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_K}) {
    Activations a;
    activations_prepare(type, x.data(), 512, a);
    const auto back = decoded_activations(a);
    const int64_t block = type == GgmlType::kQ8_0 ? 32 : 256;
    for (int64_t b = 0; b < 512 / block; ++b) {
      double amax = 0;
      for (int64_t i = 0; i < block; ++i) amax = std::max(amax, std::fabs(double(x[b * block + i])));
      for (int64_t i = 0; i < block; ++i)
        CHECK(std::fabs(back[b * block + i] - x[b * block + i]) <= amax / 254 * 1.0001);
    }
    if (type == GgmlType::kQ4_K)
      for (const auto& blk : a.b256)
        for (int i = 0; i < 16; ++i) {
          int s = 0;
          for (int k = 0; k < 16; ++k) s += blk.q[16 * i + k];
          CHECK(blk.sums[i] == s);
        }
  }
}

TEST_CASE("every variant's 8-bit activations equal the scalar ones, bit for bit", "[quant][matvec]") {
  // Blocks of 32 (Q8_0/Q4_0/Q5_0 rows) and of 256 (the k-quants): random values at several scales, then edge blocks
  // — zeros, a NaN among values, an infinity, a maximum so small that 127 / max overflows (scale 0, levels ±127),
  // values near the float range's end, exact halves (max 127: scale 1), and -0.
  std::vector<float> x;
  for (float scale : {1.0f, 1e-3f, 250.0f}) {
    const auto r = random_vector(512, static_cast<uint32_t>(scale * 7) + 40);
    for (float v : r) x.push_back(v * scale);
  }
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const float tiny = std::numeric_limits<float>::denorm_min(), huge = std::numeric_limits<float>::max();
  auto block = [&](std::function<float(int)> f) {
    for (int i = 0; i < 256; ++i) x.push_back(f(i));
  };
  block([](int) { return 0.0f; });
  block([&](int i) { return i == 37 ? nan : float(i % 19) - 9.0f; });
  block([&](int i) { return i == 200 ? -inf : float(i % 5); });
  block([&](int i) { return i % 3 == 0 ? tiny : (i % 3 == 1 ? -tiny : 0.0f); });
  block([&](int i) { return i % 2 ? huge : -huge * 0.5f; });
  block([](int i) { return i == 0 ? 127.0f : float(i % 64) * 0.5f - 16.25f + (i % 4 == 0 ? 0.25f : 0.0f); });
  block([](int i) { return i % 2 ? -0.0f : 1e-30f * float(i); });
  const int64_t n = static_cast<int64_t>(x.size());
  REQUIRE(n % 256 == 0);
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_K}) {
    Activations want;
    REQUIRE(detail::activations_prepare_with("scalar", type, x.data(), n, want));
    for (const char* variant : kVariants) {
      Activations got;
      got.b32.resize(3);  // stale storage of the other kind and length: replaced, not mixed in
      got.values.assign(5, 1.0f);
      if (!detail::activations_prepare_with(variant, type, x.data(), n, got)) continue;
      INFO(variant << " " << ggml_type_name(type));
      CHECK(got.n == n);
      CHECK(got.values.empty());
      REQUIRE(got.b32.size() == want.b32.size());
      REQUIRE(got.b256.size() == want.b256.size());
      for (size_t b = 0; b < want.b32.size(); ++b) {
        INFO("block " << b);
        CHECK(std::memcmp(&got.b32[b].d, &want.b32[b].d, sizeof(float)) == 0);
        CHECK(std::memcmp(got.b32[b].q, want.b32[b].q, 32) == 0);
        CHECK(got.b32[b].sum == want.b32[b].sum);
      }
      for (size_t b = 0; b < want.b256.size(); ++b) {
        INFO("block " << b);
        CHECK(std::memcmp(&got.b256[b].d, &want.b256[b].d, sizeof(float)) == 0);
        CHECK(std::memcmp(got.b256[b].q, want.b256[b].q, 256) == 0);
        CHECK(std::memcmp(got.b256[b].sums, want.b256[b].sums, sizeof want.b256[b].sums) == 0);
      }
    }
  }
  // The scalar reference itself on the edge blocks: the tiny block's scale underflows to 0 with levels ±127
  // (127 / max overflows to infinity), the NaN becomes 0 and the infinity zeroes its block.
  Activations a;
  REQUIRE(detail::activations_prepare_with("scalar", GgmlType::kQ8_0, x.data(), n, a));
  const size_t edges = 3 * 512 / 32;
  CHECK(a.b32[edges].d == 0.0f);                // the zero block
  CHECK(a.b32[edges + 8 + 1].q[37 - 32] == 0);  // the NaN (element 37: block 1 of 8)
  CHECK(a.b32[edges + 8 + 1].d > 0.0f);
  CHECK(a.b32[edges + 8 * 2 + 6].d == 0.0f);  // the infinity's block (element 200: block 6 of 8)
  CHECK(a.b32[edges + 8 * 2 + 5].d > 0.0f);
  CHECK(a.b32[edges + 8 * 3].d == 0.0f);  // the tiny block
  CHECK(a.b32[edges + 8 * 3].q[0] == 127);
  CHECK(a.b32[edges + 8 * 3].q[1] == -127);
  CHECK(a.b32[edges + 8 * 3].q[2] == 0);
}

TEST_CASE("probability-weighted rows: every variant gives the scalar loop's bits, zeros and NaN skipped",
          "[quant][matvec]") {
  // Widths with and without a 64- or 16-column remainder; weights with zeros (masked keys), a NaN (a row whose every
  // key was masked) and negatives (skipped as not > 0); value rows further apart than their width.
  for (int64_t n : {64, 128, 100, 8, 3}) {
    for (int64_t count : {1, 7, 300}) {
      INFO("n=" << n << " count=" << count);
      auto p = random_vector(count, static_cast<uint32_t>(n + count));
      for (int64_t s = 0; s < count; ++s) p[s] = s % 5 == 1 ? 0.0f : std::fabs(p[s]) / float(count);
      if (count > 3) p[2] = std::numeric_limits<float>::quiet_NaN(), p[3] = -0.5f;
      const int64_t ldv = n + 5;
      const auto v = random_vector(count * ldv, static_cast<uint32_t>(3 * n + count));
      std::vector<float> want(n, -1.0f);
      REQUIRE(detail::weighted_rows_f32_with("scalar", p.data(), count, v.data(), ldv, n, want.data()));
      // the scalar loop against a float64 sum of the terms it keeps
      for (int64_t j = 0; j < n; ++j) {
        double ref = 0;
        for (int64_t s = 0; s < count; ++s)
          if (p[s] > 0) ref += double(p[s]) * v[s * ldv + j];
        CHECK(std::fabs(want[j] - ref) <= 1e-5 * (1 + std::fabs(ref)));
      }
      for (const char* variant : kVariants) {
        std::vector<float> got(n, -2.0f);
        if (!detail::weighted_rows_f32_with(variant, p.data(), count, v.data(), ldv, n, got.data())) continue;
        INFO(variant);
        int64_t differ = 0;  // bits, except that a NaN only has to stay a NaN of its sign (F16C quiets them)
        for (int64_t i = 0; i < n; ++i)
          differ += std::isnan(want[i]) ? !(std::isnan(got[i]) && std::signbit(got[i]) == std::signbit(want[i]))
                                        : float_bits(got[i]) != float_bits(want[i]);
        CHECK(differ == 0);
      }
    }
  }
}

TEST_CASE("every SIMD variant equals the scalar kernels", "[quant][matvec]") {
  for (GgmlType type : kKernelTypes)
    for (int64_t in : {256, 512, 2048}) {
      INFO(ggml_type_name(type) << " in=" << in);
      const Matrix m = random_matrix(type, 9, in, 7);
      std::vector<Activations> acts(3);
      for (size_t i = 0; i < acts.size(); ++i) activations_prepare(type, random_vector(in, 10 + i).data(), in, acts[i]);
      const auto want = run("scalar", m, acts);
      for (const char* variant : kVariants) {
        const auto got = run(variant, m, acts);
        if (got.empty()) continue;  // this CPU cannot run it
        INFO(variant);
        for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-5).margin(1e-4));
      }
    }
}

TEST_CASE("a batch of activation rows equals each row alone", "[quant][matvec]") {
  const Matrix m = random_matrix(GgmlType::kQ4_0, 6, 256, 3);
  std::vector<Activations> acts(4);
  for (size_t i = 0; i < acts.size(); ++i) activations_prepare(m.type, random_vector(256, 20 + i).data(), 256, acts[i]);
  std::vector<float> batch(4 * 6);
  matmul_rows(m.type, m.bytes.data(), m.row_bytes(), acts.data(), 4, batch.data(), 6, 0, 6);
  for (size_t i = 0; i < acts.size(); ++i) {
    std::vector<float> one(6);
    matmul_rows(m.type, m.bytes.data(), m.row_bytes(), &acts[i], 1, one.data(), 6, 0, 6);
    for (int r = 0; r < 6; ++r) CHECK(batch[i * 6 + r] == one[r]);
  }
  // A row range writes only its rows, at the start of y.
  std::vector<float> part(2, -7.0f);
  matmul_rows(m.type, m.bytes.data(), m.row_bytes(), &acts[0], 1, part.data(), 2, 3, 5);
  CHECK(part[0] == batch[3]);
  CHECK(part[1] == batch[4]);
}

// Prefill and batched decode take the products in tiles of several weight and activation rows; every product
// must be bit-identical to the same pair alone (a sequence's logits must not depend on its batch), at every
// tile edge: ragged rows and columns, more activation rows than one panel, odd block counts (single-block tails).
TEST_CASE("tiled batches equal each pair alone in every variant, bit for bit", "[quant][matvec]") {
  for (GgmlType type : kKernelTypes)
    for (int64_t in : {96, 512}) {
      const Matrix m = random_matrix(type, 11, in == 96 && ggml_type_block_size(type) == 256 ? 256 : in, 31);
      const int64_t n = m.in, M = 70;
      std::vector<Activations> acts(M);
      for (int64_t i = 0; i < M; ++i) activations_prepare(type, random_vector(n, 100 + i).data(), n, acts[i]);
      for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
        INFO(ggml_type_name(type) << " in=" << n << " " << variant);
        const auto batch = run(variant, m, acts);
        if (batch.empty()) continue;
        for (int64_t i = 0; i < M; ++i) {
          const auto one = run(variant, m, {acts[i]});
          for (int64_t r = 0; r < m.rows; ++r) CHECK(batch[i * m.rows + r] == one[r]);
        }
        // Rows 3..10 only (tiles start at row_begin), into a y of their own.
        std::vector<float> part(M * 8, -7.0f);
        REQUIRE(detail::matmul_rows_with(variant, type, m.bytes.data(), m.row_bytes(), acts.data(), M, part.data(), 8,
                                         3, 11));
        for (int64_t i = 0; i < M; ++i)
          for (int64_t r = 3; r < 11; ++r) CHECK(part[i * 8 + (r - 3)] == batch[i * m.rows + r]);
      }
    }
}

TEST_CASE("block kernels on edge-case blocks and activations", "[quant][matvec]") {
  for (GgmlType type : kKernelTypes) {
    INFO(ggml_type_name(type));
    // Weights: zeros, tiny (denormal-range scales), large.
    for (float scale : {0.0f, 1e-30f, 1000.0f}) {
      INFO("weight scale " << scale);
      Matrix m = random_matrix(type, 3, 256, 5, scale);
      std::vector<Activations> acts(3);
      std::vector<float> zeros(256, 0.0f), big = random_vector(256, 6), bad = random_vector(256, 7);
      for (auto& v : big) v *= 1e6f;
      bad[3] = std::nanf("");
      bad[100] = INFINITY;
      activations_prepare(type, zeros.data(), 256, acts[0]);
      activations_prepare(type, big.data(), 256, acts[1]);
      activations_prepare(type, bad.data(), 256, acts[2]);
      for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
        const auto y = run(variant, m, acts);
        if (y.empty()) continue;
        INFO(variant);
        for (int r = 0; r < 3; ++r) CHECK(y[r] == 0.0f);  // zero activations
        for (float v : y) CHECK(std::isfinite(v));
        if (scale == 0.0f)
          for (float v : y) CHECK(v == 0.0f);
      }
    }
  }
}

// Q5_0 blocks written byte by byte: the levels 0 and 31 (−16·d and 15·d), every fifth-bit pattern, and
// f16 scales from the largest finite one (65504) down to the smallest subnormal (2^−24); odd block counts
// reach the single-block tails of the paired SIMD loops.
TEST_CASE("Q5_0 kernels on hand-built extreme blocks", "[quant][matvec]") {
  const uint16_t kScales[] = {0x7bff, 0x3c00, 0xbc00, 0x0400, 0x0001, 0x8001, 0x0000};  // 65504 1 −1 2^−14 ±2^−24 0
  std::mt19937 rng(11);
  for (int64_t nb : {1, 2, 3, 5, 7, 16}) {
    INFO("blocks " << nb);
    Matrix m{GgmlType::kQ5_0, 7, 32 * nb, std::vector<uint8_t>(static_cast<size_t>(7 * 22 * nb))};
    for (int64_t r = 0; r < m.rows; ++r)
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* blk = m.bytes.data() + (r * nb + b) * 22;
        const uint16_t h = kScales[(r + b) % 7];
        blk[0] = static_cast<uint8_t>(h & 0xff);
        blk[1] = static_cast<uint8_t>(h >> 8);
        // row 0: all levels 31, row 1: all 0, others random levels
        for (int i = 0; i < 20; ++i) blk[2 + i] = r == 0 ? 0xff : r == 1 ? 0x00 : static_cast<uint8_t>(rng());
      }
    // The reference decoder reads rows 0 and 1 as +15·d and −16·d everywhere.
    std::vector<float> row(static_cast<size_t>(m.in));
    for (int64_t r = 0; r < 2; ++r) {
      dequantize(m.type, m.bytes.data() + r * m.row_bytes(), row.data(), m.in);
      for (int64_t k = 0; k < m.in; ++k) {
        const uint8_t* blk = m.bytes.data() + (r * nb + k / 32) * 22;
        const float d = f16_to_f32(static_cast<uint16_t>(blk[0] | blk[1] << 8));
        CHECK(row[k] == (r == 0 ? 15.0f : -16.0f) * d);
      }
    }
    std::vector<float> xmax(static_cast<size_t>(32 * nb)), xs = random_vector(32 * nb, 12);
    for (size_t i = 0; i < xmax.size(); ++i) xmax[i] = i % 3 == 0 ? -1.0f : 1.0f;  // every q = ±127
    std::vector<Activations> acts(2);
    activations_prepare(m.type, xmax.data(), m.in, acts[0]);
    activations_prepare(m.type, xs.data(), m.in, acts[1]);
    // Every variant against the float64 reference, within float rounding of Σ|w·x| (the blocks' scales span
    // 2^−24 to 65504, so sums cancel and the order of the float additions shows).
    std::vector<double> dots, mags;
    for (size_t i = 0; i < acts.size(); ++i) {
      const auto x = decoded_activations(acts[i]);
      for (int64_t r = 0; r < m.rows; ++r) {
        auto [dot, mag] = reference(m, r, x);
        dots.push_back(dot);
        mags.push_back(mag);
      }
    }
    for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
      const auto got = run(variant, m, acts);
      if (got.empty()) continue;
      INFO(variant);
      for (size_t i = 0; i < got.size(); ++i) CHECK(std::fabs(got[i] - dots[i]) <= 1e-6 * mags[i]);
    }
  }
}

TEST_CASE("rows without an integer kernel are decoded and dotted in float", "[quant][matvec]") {
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16}) {
    INFO(ggml_type_name(type));
    const Matrix m = random_matrix(type, 4, 64, 9);
    const auto xv = random_vector(64, 4);
    Activations a;
    activations_prepare(type, xv.data(), 64, a);
    std::vector<float> y(4);
    matmul_rows(type, m.bytes.data(), m.row_bytes(), &a, 1, y.data(), 4, 0, 4);
    std::vector<double> x(xv.begin(), xv.end());
    for (int64_t r = 0; r < 4; ++r) CHECK(y[r] == Approx(reference(m, r, x).first).epsilon(1e-6).margin(1e-6));
  }
  CHECK(std::string(kernel_isa()).size() > 0);
}

TEST_CASE("float32 row products: every variant against float64, the same sums whatever the batch", "[quant][matvec]") {
  // Row lengths that hit every path: whole unrolled steps, one extra vector step, a masked or scalar tail, and
  // shorter than one vector.
  for (int64_t k : {576, 1536, 72, 100, 13, 5}) {
    const int64_t rows = 9, M = 11;
    const auto w = test::normal_values(rows * k, 61);
    const auto x = test::normal_values(M * k, 62);
    for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
      INFO("k=" << k << " " << variant);
      std::vector<float> all(M * rows, -7.0f);
      if (!detail::matmul_f32_with(variant, w.data(), k, x.data(), M, all.data(), rows, 0, rows)) continue;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t r = 0; r < rows; ++r) {
          double dot = 0, mag = 0;
          for (int64_t j = 0; j < k; ++j) {
            dot += double(w[r * k + j]) * x[i * k + j];
            mag += std::fabs(double(w[r * k + j]) * x[i * k + j]);
          }
          CHECK(std::fabs(all[i * rows + r] - dot) <= 1e-6 * mag);
        }
      // Each activation row alone, and rows 2..6 only into a y of their own: the same floats, bit for bit.
      for (int64_t i = 0; i < M; ++i) {
        std::vector<float> one(rows);
        REQUIRE(detail::matmul_f32_with(variant, w.data(), k, x.data() + i * k, 1, one.data(), rows, 0, rows));
        for (int64_t r = 0; r < rows; ++r) CHECK(one[r] == all[i * rows + r]);
      }
      std::vector<float> part(M * 4, -7.0f);
      REQUIRE(detail::matmul_f32_with(variant, w.data(), k, x.data(), M, part.data(), 4, 2, 6));
      for (int64_t i = 0; i < M; ++i)
        for (int64_t r = 2; r < 6; ++r) CHECK(part[i * 4 + (r - 2)] == all[i * rows + r]);
      // Rows 1..7 (a tile of 4 and one of 3) against the first 6 activation rows (4 and 2), and rows 3..5 (2).
      for (auto [r0, r1] : {std::pair<int64_t, int64_t>{1, 8}, {3, 5}}) {
        std::vector<float> some(6 * (r1 - r0), -7.0f);
        REQUIRE(detail::matmul_f32_with(variant, w.data(), k, x.data(), 6, some.data(), r1 - r0, r0, r1));
        for (int64_t i = 0; i < 6; ++i)
          for (int64_t r = r0; r < r1; ++r) CHECK(some[i * (r1 - r0) + (r - r0)] == all[i * rows + r]);
      }
    }
  }
}

TEST_CASE("float32 row products carry NaN and infinity as the sums do", "[quant][matvec]") {
  const int64_t k = 40;
  std::vector<float> w(2 * k, 1.0f), x(3 * k, 0.5f);
  x[k + 7] = std::numeric_limits<float>::quiet_NaN();      // row 1 of x
  x[2 * k + 39] = std::numeric_limits<float>::infinity();  // row 2, in the tail
  for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
    INFO(variant);
    std::vector<float> y(3 * 2);
    if (!detail::matmul_f32_with(variant, w.data(), k, x.data(), 3, y.data(), 2, 0, 2)) continue;
    CHECK(y[0] == 20.0f);
    CHECK(std::isnan(y[2]));
    CHECK(std::isinf(y[4]));
  }
}

TEST_CASE("F16 and BF16 row products: every variant against float64, the same sums whatever the batch",
          "[quant][matvec]") {
  for (GgmlType type : {GgmlType::kF16, GgmlType::kBF16})
    for (int64_t k : {7, 16, 40, 100, 576}) {  // tails of every length the wide steps leave
      const int64_t rows = 9, M = 7;
      const Matrix w = random_matrix(type, rows, k, 21);
      std::vector<float> decoded(rows * k);
      dequantize(type, w.bytes.data(), decoded.data(), rows * k);
      std::vector<Activations> acts(M);
      for (int64_t i = 0; i < M; ++i) activations_prepare(type, random_vector(k, 30 + i).data(), k, acts[i]);
      for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
        INFO(ggml_type_name(type) << " k=" << k << " " << variant);
        std::vector<float> all(M * rows, -7.0f);
        if (!detail::matmul_rows_with(variant, type, w.bytes.data(), w.row_bytes(), acts.data(), M, all.data(), rows, 0,
                                      rows))
          continue;
        for (int64_t i = 0; i < M; ++i)
          for (int64_t r = 0; r < rows; ++r) {
            double dot = 0, mag = 0;
            for (int64_t j = 0; j < k; ++j) {
              dot += double(decoded[r * k + j]) * acts[i].values[j];
              mag += std::fabs(double(decoded[r * k + j]) * acts[i].values[j]);
            }
            CHECK(std::fabs(all[i * rows + r] - dot) <= 1e-6 * mag);
          }
        // Each activation row alone, and rows 2..6 into a y of their own: the same floats, bit for bit.
        for (int64_t i = 0; i < M; ++i) {
          std::vector<float> one(rows);
          REQUIRE(detail::matmul_rows_with(variant, type, w.bytes.data(), w.row_bytes(), &acts[i], 1, one.data(), rows,
                                           0, rows));
          for (int64_t r = 0; r < rows; ++r) CHECK(one[r] == all[i * rows + r]);
        }
        std::vector<float> part(M * 4, -7.0f);
        REQUIRE(detail::matmul_rows_with(variant, type, w.bytes.data(), w.row_bytes(), acts.data(), M, part.data(), 4,
                                         2, 6));
        for (int64_t i = 0; i < M; ++i)
          for (int64_t r = 2; r < 6; ++r) CHECK(part[i * 4 + (r - 2)] == all[i * rows + r]);
      }
    }
}

TEST_CASE("F16 and BF16 row products widen every weight exactly: subnormal, infinite and NaN weights",
          "[quant][matvec]") {
  const int64_t k = 40;  // two 16-wide steps and a tail in every variant
  for (GgmlType type : {GgmlType::kF16, GgmlType::kBF16}) {
    const bool bf16 = type == GgmlType::kBF16;
    std::vector<uint16_t> w(3 * k, bf16 ? 0x3f80 : 0x3c00);  // 1.0
    w[5] = 0x0001;                                           // the smallest subnormal of either format
    w[k + 39] = bf16 ? 0x7f80 : 0x7c00;                      // +inf, in the tail
    w[2 * k + 17] = bf16 ? 0x7fc0 : 0x7e00;                  // NaN
    std::vector<float> x(k, 0.5f);
    x[5] = 1e38f;  // so that the subnormal weight's product is visible beside 39 · 0.5
    Activations a;
    activations_prepare(type, x.data(), k, a);
    const double tiny = bf16 ? double(bf16_to_f32(1)) : double(f16_to_f32(1));
    for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
      INFO(ggml_type_name(type) << " " << variant);
      std::vector<float> y(3, -7.0f);
      if (!detail::matmul_rows_with(variant, type, w.data(), 2 * k, &a, 1, y.data(), 3, 0, 3)) continue;
      CHECK(y[0] == Approx(39 * 0.5 + tiny * 1e38).epsilon(1e-6));
      CHECK(std::isinf(y[1]));
      CHECK(std::isnan(y[2]));
    }
  }
}

TEST_CASE("F16 and BF16 widened by every variant: dequantize's floats, bit for bit but NaN payloads",
          "[quant][matvec]") {
  // Every 16-bit pattern (zeros, subnormals, normals, infinities, NaNs of both signs), then a ragged length.
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  for (GgmlType type : {GgmlType::kF16, GgmlType::kBF16})
    for (int64_t n : {int64_t(65536), int64_t(37), int64_t(5)}) {
      std::vector<float> want(n);
      dequantize(type, all.data(), want.data(), n);
      for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
        INFO(ggml_type_name(type) << " n=" << n << " " << variant);
        std::vector<float> got(n + 1, -7.0f);
        if (!detail::widen_with(variant, type, all.data(), got.data(), n)) continue;
        int64_t differ = 0;  // bits, except that a NaN only has to stay a NaN of its sign (F16C quiets them)
        for (int64_t i = 0; i < n; ++i)
          differ += std::isnan(want[i]) ? !(std::isnan(got[i]) && std::signbit(got[i]) == std::signbit(want[i]))
                                        : float_bits(got[i]) != float_bits(want[i]);
        CHECK(differ == 0);
        CHECK(got[n] == -7.0f);  // nothing written past the end
      }
    }
  std::vector<float> out(4);
  CHECK_THROWS_AS(widen(GgmlType::kQ8_0, all.data(), out.data(), 4), Error);
}
