// F16 and BF16 conversions: exhaustive over all 65536 bit patterns, ties-to-even at every midpoint, overflow,
// subnormals and NaN. Reference: IEEE 754 binary16 / bfloat16 arithmetic written out with std::ldexp.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "quant/half.h"

using namespace hearth::quant;

namespace {

// binary16 value from its fields, computed in double (exact).
double f16_reference(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exponent = (h >> 10) & 31;
  const int mantissa = h & 1023;
  if (exponent == 31) return mantissa ? std::numeric_limits<double>::quiet_NaN() : sign * HUGE_VAL;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

}  // namespace

TEST_CASE("f16 widening is exact for every bit pattern", "[quant][half]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const double expected = f16_reference(static_cast<uint16_t>(h));
    const float got = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(expected)) {
      REQUIRE(std::isnan(got));
    } else {
      REQUIRE(double(got) == expected);
      REQUIRE(std::signbit(got) == bool(h & 0x8000));
    }
  }
}

TEST_CASE("f16 narrowing round-trips and rounds ties to even", "[quant][half]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      const uint16_t back = f32_to_f16(f);
      REQUIRE(((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0));  // still NaN
      continue;
    }
    REQUIRE(f32_to_f16(f) == h);
  }
  // Midpoints between neighbouring finite halves of either sign (including the subnormal range).
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const uint16_t lo = static_cast<uint16_t>(h | sign), hi = static_cast<uint16_t>((h + 1) | sign);
      const float a = f16_to_f32(lo), b = f16_to_f32(hi);
      const float mid = (a + b) / 2;  // exact in float32
      const uint16_t even = (h & 1) ? hi : lo;
      REQUIRE(f32_to_f16(mid) == even);
      REQUIRE(f32_to_f16(std::nextafter(mid, a)) == lo);
      REQUIRE(f32_to_f16(std::nextafter(mid, b)) == hi);
    }
  }
  CHECK(f32_to_f16(65504.0f) == 0x7bff);
  CHECK(f32_to_f16(65519.99f) == 0x7bff);
  CHECK(f32_to_f16(65520.0f) == 0x7c00);  // the tie rounds to even: infinity
  CHECK(f32_to_f16(-1e10f) == 0xfc00);
  CHECK(f32_to_f16(std::numeric_limits<float>::infinity()) == 0x7c00);
  CHECK(f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);  // half the smallest subnormal: tie to 0
  CHECK(f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001);
  CHECK(f32_to_f16(-std::ldexp(1.0f, -30)) == 0x8000);  // underflow keeps the sign
  CHECK(f32_to_f16(1e-45f) == 0x0000);                  // float32 subnormal
  CHECK(f32_to_f16(std::numeric_limits<float>::quiet_NaN()) == 0x7e00);
}

TEST_CASE("bf16 round-trips every pattern and rounds ties to even", "[quant][half]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    REQUIRE(float_bits(f) == h << 16);
    if (std::isnan(f)) {
      REQUIRE(std::isnan(bf16_to_f32(f32_to_bf16(f))));
      continue;
    }
    REQUIRE(f32_to_bf16(f) == h);
    if ((h & 0x7fff) < 0x7f7f) {  // finite with a finite successor
      const uint32_t mid = (h << 16) | 0x8000u;
      REQUIRE(f32_to_bf16(float_from_bits(mid)) == ((h & 1) ? h + 1 : h));
      REQUIRE(f32_to_bf16(float_from_bits(mid - 1)) == h);
      REQUIRE(f32_to_bf16(float_from_bits(mid + 1)) == h + 1);
    }
  }
  CHECK(f32_to_bf16(1.0f) == 0x3f80);
  CHECK(f32_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);  // rounds up to infinity
  CHECK(f32_to_bf16(1e-40f) == 0x0001);                             // subnormals kept, not flushed
  CHECK(f32_to_bf16(float_from_bits(0x7f800001u)) == 0x7fc0);       // signalling NaN made quiet
}
