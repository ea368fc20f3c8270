// Q5_0 (the fallback llama-quantize uses for Q4_K tensors whose rows are not a multiple of 256): a block worked
// out by hand from the format's definition (ggml's quantize_row_q5_0_ref), the round-trip error bound, zeros and
// non-finite input. kq256 has no Q5_0 tensor (all its rows are multiples of 256), hence the hand-made block.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "quant/block_format.h"
#include "quant/codec.h"

using namespace hearth;
using namespace hearth::quant;

namespace {

std::vector<uint8_t> encode_q5_0(const std::vector<float>& x) {
  std::vector<uint8_t> out(ggml_type_nbytes(GgmlType::kQ5_0, static_cast<int64_t>(x.size())));
  quantize(GgmlType::kQ5_0, x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<float> decode_q5_0(const std::vector<uint8_t>& bytes, size_t n) {
  std::vector<float> y(n);
  dequantize(GgmlType::kQ5_0, bytes.data(), y.data(), static_cast<int64_t>(n));
  return y;
}

}  // namespace

TEST_CASE("Q5_0 encodes a hand-computed block exactly", "[quant][q5_0]") {
  CHECK(can_quantize(GgmlType::kQ5_0));
  CHECK(can_dequantize(GgmlType::kQ5_0));
  // x[j] = (j − 16)/2: the value of largest magnitude is x[0] = −8, so d = −8 / −16 = 0.5 (F16 0x3800) and
  // q[j] = trunc(x[j]/d + 16.5) = j. Low nibbles pack as in Q4_0 (qs[j] = q[j] | q[j+16] << 4 = j | j << 4);
  // the fifth bits of q[16..31] are set: qh = 0xffff0000 (little-endian).
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = (j - 16) * 0.5f;
  auto y = encode_q5_0(x);
  REQUIRE(y.size() == 22);
  CHECK(y[0] == 0x00);
  CHECK(y[1] == 0x38);
  CHECK(y[2] == 0x00);
  CHECK(y[3] == 0x00);
  CHECK(y[4] == 0xff);
  CHECK(y[5] == 0xff);
  for (int j = 0; j < 16; ++j) CHECK(y[6 + j] == static_cast<uint8_t>(j | (j << 4)));
  CHECK(decode_q5_0(y, 32) == x);  // every value is a multiple of d: exact

  // Negated: the extreme is +8, d = −0.5 (F16 0xb800), and the same levels come out.
  for (auto& v : x) v = -v;
  auto z = encode_q5_0(x);
  CHECK(z[1] == 0xb8);
  for (size_t i = 2; i < z.size(); ++i) CHECK(z[i] == y[i]);
  CHECK(decode_q5_0(z, 32) == x);
}

TEST_CASE("Q5_0 round trip stays within one step of max/16", "[quant][q5_0]") {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> x(32 * 64);
  for (auto& v : x) v = normal(rng);
  auto y = decode_q5_0(encode_q5_0(x), x.size());
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    // Steps of amax/16; rounding costs half a step, the clamp at level 31 (opposite the extreme) one step.
    for (int j = 0; j < 32; ++j) CHECK(std::fabs(y[32 * b + j] - x[32 * b + j]) <= amax / 16 * 1.01f);
  }
}

TEST_CASE("Q5_0 handles zeros and refuses non-finite input", "[quant][q5_0]") {
  std::vector<float> zeros(64, 0.0f);
  CHECK(decode_q5_0(encode_q5_0(zeros), 64) == zeros);
  std::vector<float> bad(32, 1.0f);
  bad[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(encode_q5_0(bad), ConfigError);
  std::vector<float> odd(33, 1.0f);
  CHECK_THROWS_AS(encode_q5_0(odd), ConfigError);
}
