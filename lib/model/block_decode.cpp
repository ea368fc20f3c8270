// Each decoder views the bytes as [rows, blocks, block_bytes], cuts the fields out along the last dimension and
// recombines them with integer ops before one conversion to float32; comments give the scalar line it mirrors
// (lib/quant/codec.cpp, k_quants.cpp). Only API present in libtorch 1.13 and 2.x.
#include "model/block_decode.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace hearth::model {
namespace {

using quant::GgmlType;

// Bytes [from, from + n) of each block as a contiguous tensor [rows, blocks, n].
torch::Tensor field(const torch::Tensor& b, int64_t from, int64_t n) { return b.narrow(2, from, n).contiguous(); }

// Little-endian f16 at byte `from` of each block -> float32 [rows, blocks, 1] (exact).
torch::Tensor f16_field(const torch::Tensor& b, int64_t from) {
  return field(b, from, 2).view(torch::kHalf).to(torch::kFloat32);
}

torch::Tensor i32(const torch::Tensor& t) { return t.to(torch::kInt32); }

// y = (int8)q · d
torch::Tensor decode_q8_0(const torch::Tensor& b) {
  auto d = f16_field(b, 0);
  auto q = field(b, 2, 32).view(torch::kInt8).to(torch::kFloat32);
  return q * d;
}

// y[j] = ((qs[j] & 15) − 8)·d, y[j+16] = ((qs[j] >> 4) − 8)·d
torch::Tensor decode_q4_0(const torch::Tensor& b) {
  auto d = f16_field(b, 0);
  auto qs = i32(field(b, 2, 16));
  auto q = torch::cat({qs.bitwise_and(15), qs.__rshift__(4)}, 2) - 8;
  return q.to(torch::kFloat32) * d;
}

// The 8 six-bit scales and mins of each super-block from its 12 packed bytes: [rows, blocks, 8] int32 each.
std::pair<torch::Tensor, torch::Tensor> k_scales(const torch::Tensor& s) {
  auto a = s.narrow(2, 0, 4), b = s.narrow(2, 4, 4), c = s.narrow(2, 8, 4);
  // j < 4: sc = s[j] & 63, m = s[j+4] & 63; j ≥ 4: sc = (s[j+4] & 15) | (s[j-4] >> 6) << 4,
  // m = (s[j+4] >> 4) | (s[j] >> 6) << 4
  auto sc_hi = c.bitwise_and(15).bitwise_or(a.__rshift__(6).__lshift__(4));
  auto m_hi = c.__rshift__(4).bitwise_or(b.__rshift__(6).__lshift__(4));
  return {torch::cat({a.bitwise_and(63), sc_hi}, 2), torch::cat({b.bitwise_and(63), m_hi}, 2)};
}

// Sub-block j: d1 = d·sc[j], m1 = dmin·m[j]; y = d1·q − m1, q from the low nibbles of qs[32·(j/2) ..] for even j,
// the high ones for odd j.
torch::Tensor decode_q4_k(const torch::Tensor& b) {
  const int64_t rows = b.size(0), nb = b.size(1);
  auto d = f16_field(b, 0), dmin = f16_field(b, 2);
  auto [sc, m] = k_scales(i32(field(b, 4, 12)));
  auto d1 = (d * sc.to(torch::kFloat32)).unsqueeze(3);    // [rows, nb, 8, 1]
  auto m1 = (dmin * m.to(torch::kFloat32)).unsqueeze(3);  // [rows, nb, 8, 1]
  auto qs = i32(field(b, 16, 128)).view({rows, nb, 4, 1, 32});
  auto q = torch::cat({qs.bitwise_and(15), qs.__rshift__(4)}, 3).view({rows, nb, 8, 32}).to(torch::kFloat32);
  return (d1 * q - m1).view({rows, nb, 256});
}

// Per half h of 128 (ql += 64h, qh += 32h, sc += 8h), quarter k of 32, element l: q = low/high nibble of
// ql[l + 32·(k % 2)] (high for k ≥ 2) | ((qh[l] >> 2k) & 3) << 4, minus 32; y = d · sc[l/16 + 2k] · q.
torch::Tensor decode_q6_k(const torch::Tensor& b) {
  const int64_t rows = b.size(0), nb = b.size(1);
  auto ql = i32(field(b, 0, 128)).view({rows, nb, 2, 2, 32});   // [.., half, l or l + 32, l]
  auto qh = i32(field(b, 128, 64)).view({rows, nb, 2, 1, 32});  // [.., half, 1, l]
  auto sc = field(b, 192, 16).view(torch::kInt8).to(torch::kFloat32).view({rows, nb, 2, 4, 2, 1});
  auto d = f16_field(b, 208).view({rows, nb, 1, 1, 1, 1});
  auto low = torch::cat({ql.bitwise_and(15), ql.__rshift__(4)}, 3);  // [.., half, k, l]
  auto shifts = torch::tensor({0, 2, 4, 6}, qh.options()).view({1, 1, 1, 4, 1});
  auto high = qh.__rshift__(shifts).bitwise_and(3).__lshift__(4);  // [.., half, k, l]
  auto q = (low.bitwise_or(high) - 32).to(torch::kFloat32).view({rows, nb, 2, 4, 2, 16});
  return ((d * sc) * q).view({rows, nb, 256});
}

}  // namespace

bool blocks_decodable(GgmlType type) {
  return type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0 || type == GgmlType::kQ4_K || type == GgmlType::kQ6_K;
}

torch::Tensor blocks_decode(GgmlType type, const torch::Tensor& bytes, int64_t in) {
  if (!blocks_decodable(type))
    throw Error(fmt::format("blocks_decode: no torch decoder for {}; expected Q8_0, Q4_0, Q4_K or Q6_K",
                            quant::ggml_type_name(type)));
  const int64_t block = quant::ggml_type_block_size(type);
  const auto block_bytes = static_cast<int64_t>(quant::ggml_type_block_bytes(type));
  if (in <= 0 || in % block != 0 || bytes.dim() != 2 || bytes.scalar_type() != torch::kUInt8 ||
      bytes.size(1) != in / block * block_bytes)
    throw Error(fmt::format("blocks_decode: {} rows of {} need uint8 [rows, {}]; got {} [{}]",
                            quant::ggml_type_name(type), in, in / block * block_bytes,
                            c10::toString(bytes.scalar_type()), fmt::join(bytes.sizes().vec(), ", ")));
  const int64_t rows = bytes.size(0);
  auto b = bytes.contiguous().view({rows, in / block, block_bytes});
  torch::Tensor y;
  switch (type) {
    case GgmlType::kQ8_0: y = decode_q8_0(b); break;
    case GgmlType::kQ4_0: y = decode_q4_0(b); break;
    case GgmlType::kQ4_K: y = decode_q4_k(b); break;
    default: y = decode_q6_k(b); break;
  }
  return y.reshape({rows, in});
}

}  // namespace hearth::model
