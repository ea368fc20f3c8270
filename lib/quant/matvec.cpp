// Activation quantization, the scalar reference kernels, and the run-time choice of a variant.
#include "quant/matvec.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#if defined(HEARTH_X86_KERNELS)
#include <cpuid.h>
#endif

#include <fmt/format.h>

#include "core/error.h"
#include "quant/codec.h"
#include "quant/codec_detail.h"
#include "quant/half.h"

namespace hearth::quant {
namespace {

// d = max|x| / 127; q = x / d rounded to nearest even (NaN counts as 0). The same in every variant: the
// activations are prepared once, here, so the integer dot products agree exactly across variants.
template <int N>
float quantize_block(const float* x, int8_t* q) {
  float amax = 0;
  for (int i = 0; i < N; ++i) amax = std::max(amax, std::fabs(x[i]));  // NaN never wins a max
  if (!(amax > 0) || !std::isfinite(amax)) {
    std::memset(q, 0, N);
    return 0.0f;
  }
  const float d = amax / 127.0f, id = 127.0f / amax;
  // Adding and taking off 1.5·2^23 rounds a float of magnitude < 2^22 to an integer, to nearest even in the default
  // rounding mode: std::nearbyint's result, without its library call per element (the generic x86-64 build has no
  // rounding instruction to inline), so that the loop vectorizes. Larger magnitudes (only when 1/d overflowed) and
  // infinities clamp to ±127 either way, NaN becomes 0.
  constexpr float kRound = 12582912.0f;
  for (int i = 0; i < N; ++i) {
    const float v = (x[i] * id + kRound) - kRound;
    q[i] = static_cast<int8_t>(std::isnan(v) ? 0.0f : std::clamp(v, -127.0f, 127.0f));
  }
  return d;
}

uint16_t read_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

float dot_q8_0(const uint8_t* w, const void* blocks, int64_t nb) {
  const auto* a = static_cast<const ActivationBlock32*>(blocks);
  float sum = 0;
  for (int64_t b = 0; b < nb; ++b, w += 34) {
    const auto* q = reinterpret_cast<const int8_t*>(w + 2);
    int32_t isum = 0;
    for (int i = 0; i < 32; ++i) isum += int32_t(q[i]) * a[b].q[i];
    sum += f16_to_f32(read_u16(w)) * a[b].d * float(isum);
  }
  return sum;
}

float dot_q4_0(const uint8_t* w, const void* blocks, int64_t nb) {
  const auto* a = static_cast<const ActivationBlock32*>(blocks);
  float sum = 0;
  for (int64_t b = 0; b < nb; ++b, w += 18) {
    const uint8_t* qs = w + 2;
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) isum += ((qs[j] & 15) - 8) * a[b].q[j] + ((qs[j] >> 4) - 8) * a[b].q[j + 16];
    sum += f16_to_f32(read_u16(w)) * a[b].d * float(isum);
  }
  return sum;
}

// Q5_0: q = low nibble | bit j of the little-endian u32 qh << 4 for element j, value d·(q − 16).
float dot_q5_0(const uint8_t* w, const void* blocks, int64_t nb) {
  const auto* a = static_cast<const ActivationBlock32*>(blocks);
  float sum = 0;
  for (int64_t b = 0; b < nb; ++b, w += 22) {
    const uint32_t qh = uint32_t(w[2]) | uint32_t(w[3]) << 8 | uint32_t(w[4]) << 16 | uint32_t(w[5]) << 24;
    const uint8_t* qs = w + 6;
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = (qs[j] & 15) | int((qh >> j) & 1) << 4;
      const int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
      isum += (lo - 16) * a[b].q[j] + (hi - 16) * a[b].q[j + 16];
    }
    sum += f16_to_f32(read_u16(w)) * a[b].d * float(isum);
  }
  return sum;
}

// One Q4_K super-block's term of a dot product (fifth bit from qh when `five`, i.e. Q5_K): x = d·sc·q − dmin·m per
// sub-block of 32, so the term is a.d·(d·Σ sc·Σ q·x − dmin·Σ m·Σ x) with exact integer sums.
template <bool kFive>
float q45_k_block(const uint8_t* w, const ActivationBlock256& a) {
  const float d = f16_to_f32(read_u16(w)), dmin = f16_to_f32(read_u16(w + 2));
  const detail::KScales u = detail::unpack_scales(w + 4);
  const uint8_t* qh = w + 16;
  const uint8_t* qs = w + (kFive ? 48 : 16);
  int32_t scaled = 0, mins = 0;
  for (int j = 0; j < 8; ++j) {
    const uint8_t* bytes = qs + 32 * (j / 2);
    const int8_t* x = a.q + 32 * j;
    int32_t isum = 0;
    for (int l = 0; l < 32; ++l) {
      int q = (j % 2 == 0) ? (bytes[l] & 15) : (bytes[l] >> 4);
      if (kFive) q += ((qh[l] >> j) & 1) << 4;
      isum += q * x[l];
    }
    scaled += int32_t(u.sc[j]) * isum;
    mins += int32_t(u.m[j]) * (a.sums[2 * j] + a.sums[2 * j + 1]);
  }
  return a.d * (d * float(scaled) - dmin * float(mins));
}

template <bool kFive>
float dot_q45_k(const uint8_t* w, const void* blocks, int64_t nb) {
  const auto* a = static_cast<const ActivationBlock256*>(blocks);
  constexpr size_t kBytes = kFive ? 176 : 144;
  float sum = 0;
  for (int64_t b = 0; b < nb; ++b, w += kBytes) sum += q45_k_block<kFive>(w, a[b]);
  return sum;
}

// One Q6_K super-block's term of a dot product: d·a.d·Σ sc·Σ (q − 32)·x over its 16 sub-blocks of 16.
float q6_k_block(const uint8_t* w, const ActivationBlock256& a) {
  const uint8_t* ql = w;
  const uint8_t* qh = w + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
  const float d = f16_to_f32(read_u16(w + 208));
  const int8_t* x = a.q;
  int32_t isum = 0;
  for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, x += 128) {
    int32_t part[8] = {0};  // per scale index l/16 + {0, 2, 4, 6}
    for (int l = 0; l < 32; ++l) {
      const int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      const int is = l / 16;
      part[is + 0] += q1 * x[l];
      part[is + 2] += q2 * x[l + 32];
      part[is + 4] += q3 * x[l + 64];
      part[is + 6] += q4 * x[l + 96];
    }
    for (int i = 0; i < 8; ++i) isum += int32_t(sc[i]) * part[i];
  }
  return d * a.d * float(isum);
}

float dot_q6_k(const uint8_t* w, const void* blocks, int64_t nb) {
  const auto* a = static_cast<const ActivationBlock256*>(blocks);
  float sum = 0;
  for (int64_t b = 0; b < nb; ++b, w += 210) sum += q6_k_block(w, a[b]);
  return sum;
}

// Interleaved Q4_0 (interleave.h): per block, 16 rows' scales, then 4 steps of 4 bytes of each row.
void group_q4_0(const uint8_t* g, const void* const* x, int64_t ncols, int64_t nb, float* y, int64_t ldy) {
  for (int64_t c = 0; c < ncols; ++c) {
    const auto* a = static_cast<const ActivationBlock32*>(x[c]);
    float acc[kGroupRows] = {0};
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = g + b * 18 * kGroupRows;
      for (int r = 0; r < kGroupRows; ++r) {
        int32_t isum = -8 * a[b].sum;
        for (int s = 0; s < 4; ++s)
          for (int j = 0; j < 4; ++j) {
            const uint8_t q = blk[2 * kGroupRows + 4 * kGroupRows * s + 4 * r + j];
            isum += (q & 15) * a[b].q[4 * s + j] + (q >> 4) * a[b].q[16 + 4 * s + j];
          }
        acc[r] += f16_to_f32(read_u16(blk + 2 * r)) * a[b].d * float(isum);
      }
    }
    for (int r = 0; r < kGroupRows; ++r) y[c * ldy + r] = acc[r];
  }
}

// Interleaved Q8_0 (interleave.h): per block, 16 rows' scales, then 8 steps of 4 signed bytes of each row.
void group_q8_0(const uint8_t* g, const void* const* x, int64_t ncols, int64_t nb, float* y, int64_t ldy) {
  for (int64_t c = 0; c < ncols; ++c) {
    const auto* a = static_cast<const ActivationBlock32*>(x[c]);
    float acc[kGroupRows] = {0};
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = g + b * 34 * kGroupRows;
      for (int r = 0; r < kGroupRows; ++r) {
        int32_t isum = 0;
        for (int s = 0; s < 8; ++s)
          for (int j = 0; j < 4; ++j)
            isum += static_cast<int8_t>(blk[2 * kGroupRows + 4 * kGroupRows * s + 4 * r + j]) * a[b].q[4 * s + j];
        acc[r] += f16_to_f32(read_u16(blk + 2 * r)) * a[b].d * float(isum);
      }
    }
    for (int r = 0; r < kGroupRows; ++r) y[c * ldy + r] = acc[r];
  }
}

// Interleaved Q4_K and Q6_K (interleave.h): each row's super-block gathered back into ggml's layout, then the plain
// rows' per-block term — the float operations every variant's group kernel performs, in the same order.
template <GgmlType kType>
void group_k(const uint8_t* g, const void* const* x, int64_t ncols, int64_t nb, float* y, int64_t ldy) {
  uint8_t blk[210];
  for (int64_t c = 0; c < ncols; ++c) {
    const auto* a = static_cast<const ActivationBlock256*>(x[c]);
    for (int r = 0; r < kGroupRows; ++r) {
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        interleaved_block(kType, g, r, b, blk);
        acc += kType == GgmlType::kQ4_K ? q45_k_block<false>(blk, a[b]) : q6_k_block(blk, a[b]);
      }
      y[c * ldy + r] = acc;
    }
  }
}

enum class Isa { kScalar, kAvx2, kAvx512, kAvx512Vnni };

#if defined(HEARTH_X86_KERNELS)
// F16C from CPUID leaf 1 (ECX bit 29): clang before 16 has no __builtin_cpu_supports("f16c").
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}
#endif

Isa isa_detect() {
  Isa best = Isa::kScalar;
#if defined(HEARTH_X86_KERNELS)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c()) best = Isa::kAvx2;
  if (best == Isa::kAvx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl"))
    best = Isa::kAvx512;
  if (best == Isa::kAvx512 && __builtin_cpu_supports("avx512vnni")) best = Isa::kAvx512Vnni;
#endif
  if (const char* cap = std::getenv("HEARTH_KERNELS")) {
    std::string_view v(cap);
    const Isa cap_isa = v == "scalar" ? Isa::kScalar : v == "avx2" ? Isa::kAvx2 : v == "avx512" ? Isa::kAvx512 : best;
    if (static_cast<int>(cap_isa) < static_cast<int>(best)) best = cap_isa;
  }
  return best;
}

Isa isa() {
  static const Isa kIsa = isa_detect();
  return kIsa;
}

detail::Kernels kernels_of(Isa i) {
  detail::Kernels k;
  switch (i) {
    case Isa::kAvx512Vnni: k = detail::kernels_avx512_vnni(); break;
    case Isa::kAvx512: k = detail::kernels_avx512(); break;
    case Isa::kAvx2: k = detail::kernels_avx2(); break;
    case Isa::kScalar: break;
  }
  const detail::Kernels scalar = detail::kernels_scalar();
  for (auto [mine, fallback] :
       {std::pair{&k.q8_0, scalar.q8_0}, std::pair{&k.q4_0, scalar.q4_0}, std::pair{&k.q5_0, scalar.q5_0},
        std::pair{&k.q4_k, scalar.q4_k}, std::pair{&k.q5_k, scalar.q5_k}, std::pair{&k.q6_k, scalar.q6_k}})
    if (!*mine) *mine = fallback;
  if (!k.q4_0_group) k.q4_0_group = scalar.q4_0_group;
  if (!k.q8_0_group) k.q8_0_group = scalar.q8_0_group;
  if (!k.q4_k_group) k.q4_k_group = scalar.q4_k_group;
  if (!k.q6_k_group) k.q6_k_group = scalar.q6_k_group;
  if (!k.f32) k.f32 = scalar.f32;
  if (!k.widen_f16) k.widen_f16 = scalar.widen_f16;
  if (!k.widen_bf16) k.widen_bf16 = scalar.widen_bf16;
  if (!k.f16) k.f16 = scalar.f16;
  if (!k.bf16) k.bf16 = scalar.bf16;
  if (!k.quantize32) k.quantize32 = scalar.quantize32;
  if (!k.quantize256) k.quantize256 = scalar.quantize256;
  if (!k.weighted_f32) k.weighted_f32 = scalar.weighted_f32;
  return k;
}

const detail::Kernels& kernels() {
  static const detail::Kernels kKernels = kernels_of(isa());
  return kKernels;
}

// (dot function, elements per activation block) for a weight type; dot = nullptr without an integer kernel.
std::pair<detail::DotFn, int64_t> dot_for(const detail::Kernels& k, GgmlType type) {
  switch (type) {
    case GgmlType::kQ8_0: return {k.q8_0, 32};
    case GgmlType::kQ4_0: return {k.q4_0, 32};
    case GgmlType::kQ5_0: return {k.q5_0, 32};
    case GgmlType::kQ4_K: return {k.q4_k, 256};
    case GgmlType::kQ5_K: return {k.q5_k, 256};
    case GgmlType::kQ6_K: return {k.q6_k, 256};
    default: return {nullptr, 0};
  }
}

detail::TileFn tile_for(const detail::Kernels& k, GgmlType type) {
  switch (type) {
    case GgmlType::kQ8_0: return k.q8_0_tile;
    case GgmlType::kQ4_0: return k.q4_0_tile;
    case GgmlType::kQ5_0: return k.q5_0_tile;
    case GgmlType::kQ4_K: return k.q4_k_tile;
    case GgmlType::kQ5_K: return k.q5_k_tile;
    case GgmlType::kQ6_K: return k.q6_k_tile;
    default: return nullptr;
  }
}

void check_activations(GgmlType type, const Activations* x, int64_t m) {
  for (int64_t i = 0; i < m; ++i)
    if (x[i].weight_type != type || x[i].n != x[0].n)
      throw Error(fmt::format("matmul: activations prepared for {} rows of {}, used with {} rows of {}",
                              ggml_type_name(x[i].weight_type), x[i].n, ggml_type_name(type), x[0].n));
}

void run_decoded(GgmlType type, const uint8_t* wb, size_t row_bytes, const Activations* x, int64_t m, float* y,
                 int64_t ldy, int64_t row_begin, int64_t row_end);

const void* blocks_of(const Activations& x) {
  return x.b32.empty() ? static_cast<const void*>(x.b256.data()) : static_cast<const void*>(x.b32.data());
}

// F16/BF16 rows: the variant's kernel over panels of activation rows.
void run_half(detail::HalfFn half, const void* w, const Activations* x, int64_t m, float* y, int64_t ldy,
              int64_t row_begin, int64_t row_end) {
  constexpr int64_t kPanel = 64;
  const float* cols[kPanel];
  for (int64_t i0 = 0; i0 < m; i0 += kPanel) {
    const int64_t i1 = std::min(m, i0 + kPanel);
    for (int64_t i = i0; i < i1; ++i) cols[i - i0] = x[i].values.data();
    half(static_cast<const uint16_t*>(w), x[0].n, cols, i1 - i0, y + i0 * ldy, ldy, row_begin, row_end);
  }
}

void run(const detail::Kernels& k, GgmlType type, const void* w, size_t row_bytes, const Activations* x, int64_t m,
         float* y, int64_t ldy, int64_t row_begin, int64_t row_end) {
  check_activations(type, x, m);
  if (type == GgmlType::kF16) return run_half(k.f16, w, x, m, y, ldy, row_begin, row_end);
  if (type == GgmlType::kBF16) return run_half(k.bf16, w, x, m, y, ldy, row_begin, row_end);
  const auto* wb = static_cast<const uint8_t*>(w);
  auto [dot, block] = dot_for(k, type);
  if (!dot) return run_decoded(type, wb, row_bytes, x, m, y, ldy, row_begin, row_end);
  const int64_t nb = x[0].n / block;
  auto dots = [&](int64_t r0, int64_t r1, int64_t i0, int64_t i1) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = wb + static_cast<size_t>(r) * row_bytes;
      for (int64_t i = i0; i < i1; ++i) y[i * ldy + (r - row_begin)] = dot(row, blocks_of(x[i]), nb);
    }
  };
  const detail::TileFn tile = tile_for(k, type);
  if (!tile || m < detail::kTileCols) return dots(row_begin, row_end, 0, m);
  // Tiles of kTileRows × kTileCols, over column panels of kPanel activation rows (a panel's activations stay in
  // the core's cache while the row range streams past); the ragged edges one pair at a time.
  constexpr int64_t kPanel = 64;
  const int64_t tiled_end = row_begin + (row_end - row_begin) / detail::kTileRows * detail::kTileRows;
  const void* cols[kPanel];
  for (int64_t i0 = 0; i0 < m; i0 += kPanel) {
    const int64_t i1 = std::min(m, i0 + kPanel), tiled_cols = i0 + (i1 - i0) / detail::kTileCols * detail::kTileCols;
    for (int64_t i = i0; i < i1; ++i) cols[i - i0] = blocks_of(x[i]);
    if (tiled_cols > i0)
      for (int64_t r = row_begin; r < tiled_end; r += detail::kTileRows)
        tile(wb + static_cast<size_t>(r) * row_bytes, row_bytes, cols, tiled_cols - i0, nb,
             y + i0 * ldy + (r - row_begin), ldy);
    dots(row_begin, tiled_end, tiled_cols, i1);
    dots(tiled_end, row_end, i0, i1);
  }
}

// No integer kernel: decode each row to float32 once and take the float dot products.
void run_decoded(GgmlType type, const uint8_t* wb, size_t row_bytes, const Activations* x, int64_t m, float* y,
                 int64_t ldy, int64_t row_begin, int64_t row_end) {
  std::vector<float> decoded(static_cast<size_t>(x[0].n));
  for (int64_t r = row_begin; r < row_end; ++r) {
    dequantize(type, wb + static_cast<size_t>(r) * row_bytes, decoded.data(), x[0].n);
    for (int64_t i = 0; i < m; ++i) {
      double sum = 0;
      for (int64_t c = 0; c < x[0].n; ++c) sum += double(decoded[c]) * x[i].values[c];
      y[i * ldy + (r - row_begin)] = static_cast<float>(sum);
    }
  }
}

// Interleaved rows: whole groups through the variant's group kernel, over column panels as in run(); the rows
// after the last group are in ggml's layout and go through run().
void run_interleaved(const detail::Kernels& k, GgmlType type, const void* w, int64_t rows, const Activations* x,
                     int64_t m, float* y, int64_t ldy, int64_t row_begin, int64_t row_end) {
  check_activations(type, x, m);
  const int64_t n = x[0].n;
  interleaved_rows_check(type, rows, n, row_begin, row_end);
  const auto* wb = static_cast<const uint8_t*>(w);
  const size_t row_bytes = ggml_type_nbytes(type, n);
  const int64_t nb = n / ggml_type_block_size(type), grouped = std::min(row_end, rows / kGroupRows * kGroupRows);
  const detail::GroupFn group = type == GgmlType::kQ8_0   ? k.q8_0_group
                                : type == GgmlType::kQ4_K ? k.q4_k_group
                                : type == GgmlType::kQ6_K ? k.q6_k_group
                                                          : k.q4_0_group;
  constexpr int64_t kPanel = 64;
  const void* cols[kPanel];
  for (int64_t i0 = 0; i0 < m; i0 += kPanel) {
    const int64_t i1 = std::min(m, i0 + kPanel);
    for (int64_t i = i0; i < i1; ++i) cols[i - i0] = blocks_of(x[i]);
    for (int64_t r = row_begin; r < grouped; r += kGroupRows)
      group(wb + static_cast<size_t>(r) * row_bytes, cols, i1 - i0, nb, y + i0 * ldy + (r - row_begin), ldy);
  }
  const int64_t tail = std::max(row_begin, grouped);
  if (tail < row_end) run(k, type, w, row_bytes, x, m, y + (tail - row_begin), ldy, tail, row_end);
}

}  // namespace

namespace {

void prepare(const detail::Kernels& k, GgmlType weight_type, const float* x, int64_t n, Activations& out) {
  if (n % ggml_type_block_size(weight_type) != 0)
    throw ConfigError(fmt::format("matvec: a row of {} elements is not whole {} blocks of {}", n,
                                  ggml_type_name(weight_type), ggml_type_block_size(weight_type)));
  out.weight_type = weight_type;
  out.n = n;
  // Only the kind this type takes keeps its storage, resized without clearing: every byte is written below.
  switch (weight_type) {
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ5_0:
      out.b256.clear();
      out.values.clear();
      out.b32.resize(static_cast<size_t>(n / 32));
      k.quantize32(x, n / 32, out.b32.data());
      return;
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      out.b32.clear();
      out.values.clear();
      out.b256.resize(static_cast<size_t>(n / 256));
      k.quantize256(x, n / 256, out.b256.data());
      return;
    default:
      if (!can_dequantize(weight_type))
        throw ConfigError(fmt::format("matvec: no kernel or decoder for {} rows", ggml_type_name(weight_type)));
      out.b32.clear();
      out.b256.clear();
      out.values.assign(x, x + n);
  }
}

}  // namespace

bool interleave_at_load(GgmlType type) {
  return type == GgmlType::kQ4_0 || (type == GgmlType::kQ8_0 && isa() != Isa::kScalar) ||
         ((type == GgmlType::kQ4_K || type == GgmlType::kQ6_K) &&
          static_cast<int>(isa()) >= static_cast<int>(Isa::kAvx512));
}

void activations_prepare(GgmlType weight_type, const float* x, int64_t n, Activations& out) {
  prepare(kernels(), weight_type, x, n, out);
}

namespace detail {

#if !defined(HEARTH_X86_KERNELS)
// Other processors build only the scalar variant; these are never chosen there.
Kernels kernels_avx2() { return {}; }
Kernels kernels_avx512() { return {}; }
Kernels kernels_avx512_vnni() { return {}; }
#endif

namespace {
// Per (r, i): four partial sums over j mod 4, added pairwise at the end.
void f32_rows(const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy, int64_t row_begin,
              int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* wr = w + r * k;
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * k;
      float s[4] = {0, 0, 0, 0};
      int64_t j = 0;
      for (; j + 4 <= k; j += 4)
        for (int t = 0; t < 4; ++t) s[t] += wr[j + t] * xi[j + t];
      for (; j < k; ++j) s[0] += wr[j] * xi[j];
      y[i * ldy + (r - row_begin)] = (s[0] + s[1]) + (s[2] + s[3]);
    }
  }
}

template <bool kBf16>
void widen_scalar(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = kBf16 ? bf16_to_f32(src[i]) : f16_to_f32(src[i]);
}

// F16/BF16 rows as f32_rows sums float32 ones.
template <bool kBf16>
void half_rows(const uint16_t* w, int64_t k, const float* const* x, int64_t m, float* y, int64_t ldy, int64_t row_begin,
               int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint16_t* wr = w + r * k;
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x[i];
      float s[4] = {0, 0, 0, 0};
      int64_t j = 0;
      auto value = [&](int64_t t) { return kBf16 ? bf16_to_f32(wr[t]) : f16_to_f32(wr[t]); };
      for (; j + 4 <= k; j += 4)
        for (int t = 0; t < 4; ++t) s[t] += value(j + t) * xi[j + t];
      for (; j < k; ++j) s[0] += value(j) * xi[j];
      y[i * ldy + (r - row_begin)] = (s[0] + s[1]) + (s[2] + s[3]);
    }
  }
}

void weighted_rows(const float* p, int64_t count, const float* v, int64_t ldv, int64_t n, float* o) {
  std::fill(o, o + n, 0.0f);
  for (int64_t s = 0; s < count; ++s) {
    if (!(p[s] > 0.0f)) continue;
    const float* vr = v + s * ldv;
    for (int64_t j = 0; j < n; ++j) o[j] += p[s] * vr[j];
  }
}

void quantize32_scalar(const float* x, int64_t blocks, ActivationBlock32* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    auto& blk = out[b];
    blk.d = quantize_block<32>(x + 32 * b, blk.q);
    blk.sum = 0;
    for (int8_t q : blk.q) blk.sum += q;
  }
}

void quantize256_scalar(const float* x, int64_t blocks, ActivationBlock256* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    auto& blk = out[b];
    blk.d = quantize_block<256>(x + 256 * b, blk.q);
    for (int i = 0; i < 16; ++i) {
      int s = 0;
      for (int k = 0; k < 16; ++k) s += blk.q[16 * i + k];
      blk.sums[i] = static_cast<int16_t>(s);
    }
  }
}
}  // namespace

Kernels kernels_scalar() {
  Kernels k;
  k.quantize32 = quantize32_scalar;
  k.quantize256 = quantize256_scalar;
  k.weighted_f32 = weighted_rows;
  k.f32 = f32_rows;
  k.f16 = half_rows<false>;
  k.bf16 = half_rows<true>;
  k.widen_f16 = widen_scalar<false>;
  k.widen_bf16 = widen_scalar<true>;
  k.q8_0 = dot_q8_0;
  k.q4_0 = dot_q4_0;
  k.q5_0 = dot_q5_0;
  k.q4_k = dot_q45_k<false>;
  k.q5_k = dot_q45_k<true>;
  k.q6_k = dot_q6_k;
  k.q4_0_group = group_q4_0;
  k.q8_0_group = group_q8_0;
  k.q4_k_group = group_k<GgmlType::kQ4_K>;
  k.q6_k_group = group_k<GgmlType::kQ6_K>;
  return k;
}

namespace {
std::optional<Isa> runnable(const char* name) {
  std::string_view want(name);
  const Isa i = want == "avx512vnni" ? Isa::kAvx512Vnni
                : want == "avx512"   ? Isa::kAvx512
                : want == "avx2"     ? Isa::kAvx2
                                     : Isa::kScalar;
  if (static_cast<int>(i) > static_cast<int>(isa_detect())) return std::nullopt;
  return i;
}
}  // namespace

bool matmul_rows_with(const char* name, GgmlType type, const void* w, size_t row_bytes, const Activations* x, int64_t m,
                      float* y, int64_t ldy, int64_t row_begin, int64_t row_end) {
  const auto i = runnable(name);
  if (i) run(kernels_of(*i), type, w, row_bytes, x, m, y, ldy, row_begin, row_end);
  return i.has_value();
}

bool matmul_interleaved_with(const char* name, GgmlType type, const void* w, int64_t rows, const Activations* x,
                             int64_t m, float* y, int64_t ldy, int64_t row_begin, int64_t row_end) {
  const auto i = runnable(name);
  if (i) run_interleaved(kernels_of(*i), type, w, rows, x, m, y, ldy, row_begin, row_end);
  return i.has_value();
}

bool activations_prepare_with(const char* name, GgmlType weight_type, const float* x, int64_t n, Activations& out) {
  const auto i = runnable(name);
  if (i) prepare(kernels_of(*i), weight_type, x, n, out);
  return i.has_value();
}

bool weighted_rows_f32_with(const char* name, const float* p, int64_t count, const float* v, int64_t ldv, int64_t n,
                            float* o) {
  const auto i = runnable(name);
  if (i) kernels_of(*i).weighted_f32(p, count, v, ldv, n, o);
  return i.has_value();
}

bool matmul_f32_with(const char* name, const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy,
                     int64_t row_begin, int64_t row_end) {
  const auto i = runnable(name);
  if (i) kernels_of(*i).f32(w, k, x, m, y, ldy, row_begin, row_end);
  return i.has_value();
}

}  // namespace detail

void matmul_f32(const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy, int64_t row_begin,
                int64_t row_end) {
  kernels().f32(w, k, x, m, y, ldy, row_begin, row_end);
}

void weighted_rows_f32(const float* p, int64_t count, const float* v, int64_t ldv, int64_t n, float* o) {
  kernels().weighted_f32(p, count, v, ldv, n, o);
}

int64_t matmul_f32_max_rows() { return isa() == Isa::kAvx512 || isa() == Isa::kAvx512Vnni ? 16 : 12; }

namespace {
void widen_of(const detail::Kernels& k, GgmlType type, const void* src, float* dst, int64_t n) {
  if (!ggml_type_is_half(type))
    throw Error(fmt::format("widen: {} values; expected F16 or BF16", ggml_type_name(type)));
  (type == GgmlType::kF16 ? k.widen_f16 : k.widen_bf16)(static_cast<const uint16_t*>(src), dst, n);
}
}  // namespace

void widen(GgmlType type, const void* src, float* dst, int64_t n) { widen_of(kernels(), type, src, dst, n); }

bool detail::widen_with(const char* name, GgmlType type, const void* src, float* dst, int64_t n) {
  const auto i = runnable(name);
  if (i) widen_of(kernels_of(*i), type, src, dst, n);
  return i.has_value();
}

void matmul_rows(GgmlType type, const void* w, size_t row_bytes, const Activations* x, int64_t m, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end) {
  run(kernels(), type, w, row_bytes, x, m, y, ldy, row_begin, row_end);
}

void matmul_interleaved(GgmlType type, const void* w, int64_t rows, const Activations* x, int64_t m, float* y,
                        int64_t ldy, int64_t row_begin, int64_t row_end) {
  run_interleaved(kernels(), type, w, rows, x, m, y, ldy, row_begin, row_end);
}

const char* kernel_isa() {
  switch (isa()) {
    case Isa::kAvx512Vnni: return "avx512vnni";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    case Isa::kScalar: break;
  }
  return "scalar";
}

}  // namespace hearth::quant
