// ggml type table and block layouts. Each layout is checked on hand-made blocks against a small decoder written
// here, element by element, straight from the format description (ggml's block structs; docs/gguf.md) — a
// different formulation from hearth's loop-per-sub-block decoders — plus a few values worked out by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "quant/block_format.h"
#include "quant/codec.h"
#include "quant/half.h"

using namespace hearth;
using namespace hearth::quant;

namespace {

std::vector<float> hearth_decode(GgmlType type, const std::vector<uint8_t>& bytes) {
  const int64_t n = static_cast<int64_t>(bytes.size() / ggml_type_block_bytes(type)) * ggml_type_block_size(type);
  std::vector<float> out(static_cast<size_t>(n));
  dequantize(type, bytes.data(), out.data(), n);
  return out;
}

float f16_at(const uint8_t* p) { return f16_to_f32(static_cast<uint16_t>(p[0] | p[1] << 8)); }

// --- the spec, one element at a time ---

// Q8_0: {f16 d; int8 q[32]}.
float spec_q8_0(const uint8_t* b, int e) { return static_cast<int8_t>(b[2 + e]) * f16_at(b); }

// Q4_0: {f16 d; u8 qs[16]}; element e < 16 in the low nibble of qs[e], element e ≥ 16 in the high nibble of qs[e-16].
float spec_q4_0(const uint8_t* b, int e) {
  const int nibble = e < 16 ? (b[2 + e] & 15) : (b[2 + e - 16] >> 4);
  return (nibble - 8) * f16_at(b);
}

// The 6-bit (scale, min) of sub-block s of Q4_K/Q5_K from scales[12]: for s < 4 the low 6 bits of bytes s and s+4;
// for s ≥ 4 a low nibble from byte s+4 (scale: bits 0-3, min: bits 4-7) and two high bits from the top of bytes
// s-4 (scale) and s (min).
void spec_scale_min(const uint8_t* scales, int s, int* sc, int* m) {
  if (s < 4) {
    *sc = scales[s] % 64;
    *m = scales[s + 4] % 64;
  } else {
    *sc = scales[s + 4] % 16 + 16 * (scales[s - 4] / 64);
    *m = scales[s + 4] / 16 + 16 * (scales[s] / 64);
  }
}

// Q4_K: {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}; sub-block s = e/32 lives in the 32 bytes qs[32·(s/2)...],
// low nibbles for even s, high nibbles for odd s.
float spec_q4_k(const uint8_t* b, int e) {
  const int s = e / 32, l = e % 32;
  int sc, m;
  spec_scale_min(b + 4, s, &sc, &m);
  const int q = (b[16 + 32 * (s / 2) + l] >> (4 * (s % 2))) & 15;
  return (f16_at(b) * sc) * q - (f16_at(b + 2) * m);
}

// Q5_K: {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}; as Q4_K plus a fifth bit: bit s of qh[l].
float spec_q5_k(const uint8_t* b, int e) {
  const int s = e / 32, l = e % 32;
  int sc, m;
  spec_scale_min(b + 4, s, &sc, &m);
  const int low = (b[48 + 32 * (s / 2) + l] >> (4 * (s % 2))) & 15;
  const int high = (b[16 + l] >> s) & 1;
  return (f16_at(b) * sc) * (low + 16 * high) - (f16_at(b + 2) * m);
}

// Q6_K: {u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d}. Element e: half h = e/128, quarter k = (e%128)/32,
// l = e%32. Low 4 bits: ql[64h + l + 32·(k odd)], low nibble for k < 2, high for k ≥ 2; high 2 bits: bits 2k, 2k+1
// of qh[32h + l]; scale: scales[8h + 2k + l/16]; value d·scale·(q − 32).
float spec_q6_k(const uint8_t* b, int e) {
  const int h = e / 128, k = (e % 128) / 32, l = e % 32;
  const uint8_t lbyte = b[64 * h + l + 32 * (k % 2)];
  const int low = k < 2 ? lbyte & 15 : lbyte >> 4;
  const int high = (b[128 + 32 * h + l] >> (2 * k)) & 3;
  const int8_t scale = static_cast<int8_t>(b[192 + 8 * h + 2 * k + l / 16]);
  return f16_at(b + 208) * scale * ((low | high << 4) - 32);
}

// Q8_K: {f32 d; int8 q[256]; int16 bsums[16]}.
float spec_q8_k(const uint8_t* b, int e) {
  float d;
  std::memcpy(&d, b, 4);
  return d * static_cast<int8_t>(b[4 + e]);
}

// Random blocks whose f16/f32 scale fields hold finite values (other bytes arbitrary).
std::vector<uint8_t> random_blocks(GgmlType type, int n_blocks, std::mt19937& rng) {
  const size_t bb = ggml_type_block_bytes(type);
  std::vector<uint8_t> bytes(bb * n_blocks);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  auto put_f16 = [&](size_t at) {
    const uint16_t h = f32_to_f16(scale(rng));
    bytes[at] = static_cast<uint8_t>(h);
    bytes[at + 1] = static_cast<uint8_t>(h >> 8);
  };
  for (int i = 0; i < n_blocks; ++i) {
    const size_t o = bb * i;
    switch (type) {
      case GgmlType::kQ8_0:
      case GgmlType::kQ4_0: put_f16(o); break;
      case GgmlType::kQ4_K:
      case GgmlType::kQ5_K:
        put_f16(o);
        put_f16(o + 2);
        break;
      case GgmlType::kQ6_K: put_f16(o + 208); break;
      case GgmlType::kQ8_K: {
        const float d = scale(rng);
        std::memcpy(&bytes[o], &d, 4);
        break;
      }
      default: break;
    }
  }
  return bytes;
}

}  // namespace

TEST_CASE("ggml type table: ids, names, block sizes and bytes", "[quant]") {
  struct Row {
    uint32_t id;
    const char* name;
    int64_t block;
    size_t bytes;
    bool quantized;
  };
  const Row rows[] = {
      {0, "F32", 1, 4, false},      {1, "F16", 1, 2, false},      {2, "Q4_0", 32, 18, true},
      {3, "Q4_1", 32, 20, true},    {6, "Q5_0", 32, 22, true},    {7, "Q5_1", 32, 24, true},
      {8, "Q8_0", 32, 34, true},    {9, "Q8_1", 32, 36, true},    {10, "Q2_K", 256, 84, true},
      {11, "Q3_K", 256, 110, true}, {12, "Q4_K", 256, 144, true}, {13, "Q5_K", 256, 176, true},
      {14, "Q6_K", 256, 210, true}, {15, "Q8_K", 256, 292, true}, {30, "BF16", 1, 2, false},
      {24, "I8", 1, 1, false},      {28, "F64", 1, 8, false},     {23, "IQ4_XS", 256, 136, true},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    const GgmlTypeInfo* info = ggml_type_find(r.id);
    REQUIRE(info);
    CHECK(info->name == r.name);
    CHECK(static_cast<uint32_t>(info->type) == r.id);
    CHECK(ggml_type_block_size(info->type) == r.block);
    CHECK(ggml_type_block_bytes(info->type) == r.bytes);
    CHECK(ggml_type_is_quantized(info->type) == r.quantized);
    CHECK(ggml_type_parse(r.name) == info->type);
  }
  CHECK(kQK_K == 256);
  CHECK(kKScaleSize == 12);
  CHECK(ggml_type_parse("q4_k") == GgmlType::kQ4_K);
  CHECK(ggml_type_parse("bf16") == GgmlType::kBF16);
  CHECK_FALSE(ggml_type_parse("Q4_2"));
  for (uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 1000u}) CHECK(ggml_type_find(removed) == nullptr);
  CHECK(ggml_type_nbytes(GgmlType::kQ4_K, 512) == 288);
  CHECK(ggml_type_nbytes(GgmlType::kF16, 3) == 6);
  CHECK_THROWS_AS(ggml_type_nbytes(GgmlType::kQ8_0, 33), ConfigError);
  CHECK_THROWS_AS(ggml_type_nbytes(GgmlType::kQ8_0, -32), ConfigError);
  CHECK_THROWS_AS(ggml_type_info(static_cast<GgmlType>(4)), Error);
  CHECK(can_dequantize(GgmlType::kQ6_K));
  CHECK_FALSE(can_dequantize(GgmlType::kQ3_K));
  CHECK_FALSE(can_quantize(GgmlType::kIQ4_XS));
}

TEST_CASE("block decoders match the spec on random hand-made blocks", "[quant]") {
  std::mt19937 rng(42);
  struct Case {
    GgmlType type;
    float (*spec)(const uint8_t*, int);
  };
  for (const Case& c :
       {Case{GgmlType::kQ8_0, spec_q8_0}, Case{GgmlType::kQ4_0, spec_q4_0}, Case{GgmlType::kQ4_K, spec_q4_k},
        Case{GgmlType::kQ5_K, spec_q5_k}, Case{GgmlType::kQ6_K, spec_q6_k}, Case{GgmlType::kQ8_K, spec_q8_k}}) {
    INFO(ggml_type_name(c.type));
    const int n_blocks = 64;
    const auto bytes = random_blocks(c.type, n_blocks, rng);
    const auto got = hearth_decode(c.type, bytes);
    const size_t bb = ggml_type_block_bytes(c.type);
    const int64_t bs = ggml_type_block_size(c.type);
    for (int i = 0; i < n_blocks; ++i)
      for (int e = 0; e < bs; ++e) {
        INFO("block " << i << " element " << e);
        REQUIRE(got[i * bs + e] == c.spec(&bytes[i * bb], e));
      }
  }
}

TEST_CASE("block layouts: values worked out by hand", "[quant]") {
  SECTION("F16 and BF16") {
    const std::vector<uint8_t> f16 = {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x80};
    CHECK(hearth_decode(GgmlType::kF16, f16) ==
          std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24), -0.0f});
    const std::vector<uint8_t> bf16 = {0x80, 0x3f, 0x49, 0xc0};  // 1.0, -3.140625
    CHECK(hearth_decode(GgmlType::kBF16, bf16) == std::vector<float>{1.0f, -3.140625f});
  }
  SECTION("Q8_0: d = 0.5, q = -128, 0, 127, ...") {
    std::vector<uint8_t> b(34, 0);
    b[0] = 0x00, b[1] = 0x38;  // f16 0.5
    b[2] = 0x80, b[3] = 0x00, b[4] = 0x7f, b[33] = 0xfe;
    const auto x = hearth_decode(GgmlType::kQ8_0, b);
    CHECK(x[0] == -64.0f);
    CHECK(x[1] == 0.0f);
    CHECK(x[2] == 63.5f);
    CHECK(x[31] == -1.0f);
  }
  SECTION("Q4_0: element j in the low nibble of byte j, element j+16 in its high nibble, offset 8") {
    std::vector<uint8_t> b(18, 0x88);  // every nibble 8 → 0
    b[0] = 0x00, b[1] = 0x40;          // d = 2
    b[2] = 0xf0;                       // x[0] = (0-8)·2 = -16, x[16] = (15-8)·2 = 14
    b[17] = 0x19;                      // x[15] = (9-8)·2 = 2, x[31] = (1-8)·2 = -14
    const auto x = hearth_decode(GgmlType::kQ4_0, b);
    CHECK(x[0] == -16.0f);
    CHECK(x[16] == 14.0f);
    CHECK(x[15] == 2.0f);
    CHECK(x[31] == -14.0f);
    CHECK(x[1] == 0.0f);
  }
  SECTION("Q4_K: 6-bit scales and mins of sub-blocks 1 and 5") {
    std::vector<uint8_t> b(144, 0);
    b[0] = 0x00, b[1] = 0x3c;  // d = 1
    b[2] = 0x00, b[3] = 0x38;  // dmin = 0.5
    uint8_t* scales = &b[4];
    scales[1] = 5;      // sub-block 1: scale 5 (low 6 bits of byte 1) ...
    scales[5] = 3;      // ... min 3 (low 6 bits of byte 5)
    scales[9] = 0x7a;   // sub-block 5: scale low nibble 10, min low nibble 7
    scales[1] |= 0x80;  // scale high bits 0b10 → scale = 10 + 32 = 42
    scales[5] |= 0x40;  // min high bits 0b01 → min = 7 + 16 = 23
    uint8_t* qs = &b[16];
    qs[0] = 0x90;   // element 32 (sub-block 1, high nibble of qs[0]) = 9; element 0 = 0
    qs[64] = 0xe0;  // element 160 (sub-block 5 = odd, high nibble of qs[64 + 0]) = 14
    const auto x = hearth_decode(GgmlType::kQ4_K, b);
    CHECK(x[32] == 5.0f * 9 - 0.5f * 3);      // 43.5
    CHECK(x[160] == 42.0f * 14 - 0.5f * 23);  // 576.5
    CHECK(x[0] == 0.0f);                      // sub-block 0: scale 0, min 0
  }
  SECTION("Q5_K: the fifth bit of sub-block s is bit s of qh[l]") {
    std::vector<uint8_t> b(176, 0);
    b[0] = 0x00, b[1] = 0x3c;  // d = 1, dmin = 0
    b[4 + 3] = 1;              // sub-block 3: scale 1
    b[16 + 7] = 1 << 3;        // qh[7] bit 3 → element 3·32 + 7 gets +16
    b[48 + 32 + 7] = 0x20;     // qs[32 + 7] high nibble = 2 (sub-block 3 is odd, second 32-byte group)
    CHECK(hearth_decode(GgmlType::kQ5_K, b)[3 * 32 + 7] == 18.0f);
  }
  SECTION("Q6_K: quarter 3 of the second half, signed scale") {
    std::vector<uint8_t> b(210, 0);
    b[208] = 0x00, b[209] = 0x38;  // d = 0.5
    const int l = 20;              // element 128 + 96 + 20 = 244: ql[64 + 32 + 20] high nibble, qh[32 + 20] bits 6-7
    b[64 + 32 + l] = 0x50;         // low 4 bits = 5
    b[128 + 32 + l] = 0x80;        // high 2 bits = 0b10 → q = 5 | 32 = 37 → 37 - 32 = 5
    b[192 + 8 + 6 + l / 16] = static_cast<uint8_t>(-3);  // scale index 8·1 + 2·3 + 1 = 15
    const auto x = hearth_decode(GgmlType::kQ6_K, b);
    CHECK(x[244] == 0.5f * -3 * 5);
    CHECK(x[0] == 0.0f);  // q = 0 - 32 but scale 0
  }
}

TEST_CASE("dequantize rejects unsupported types and partial blocks", "[quant]") {
  std::vector<uint8_t> bytes(292);
  std::vector<float> out(256);
  CHECK_THROWS_WITH(dequantize(GgmlType::kQ3_K, bytes.data(), out.data(), 256),
                    Catch::Contains("Q3_K is not supported"));
  CHECK_THROWS_WITH(dequantize(GgmlType::kQ4_K, bytes.data(), out.data(), 100),
                    Catch::Contains("element count must be a multiple of 256; got 100"));
  CHECK_THROWS_AS(quantize(GgmlType::kIQ2_XXS, out.data(), bytes.data(), 256), ConfigError);
}
