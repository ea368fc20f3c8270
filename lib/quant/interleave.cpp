// The interleaved Q4_0 layout (interleave.h): moving bytes between it and ggml's, and decoding one row.
#include "quant/interleave.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"
#include "quant/codec.h"
#include "quant/half.h"

namespace hearth::quant {
namespace {

constexpr int64_t kBlockBytes = 18, kGroupBlockBytes = kGroupRows * kBlockBytes;  // one block of 16 rows: 288

// Where byte i of row r's block b lies in its group (rows, blocks and bytes counted within the group).
inline int64_t group_offset(int64_t r, int64_t b, int64_t i) {
  const int64_t at = b * kGroupBlockBytes;
  if (i < 2) return at + 2 * r + i;       // the scale
  const int64_t q = i - 2, step = q / 4;  // qs byte q, in step q/4
  return at + 2 * kGroupRows + step * 4 * kGroupRows + 4 * r + q % 4;
}

// Copies rows [row_begin, row_end) between the layouts: to the interleaved one when `in`, else back.
void move_rows(GgmlType type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t n, int64_t row_begin,
               int64_t row_end, bool in) {
  interleaved_rows_check(type, rows, n, row_begin, row_end);
  const int64_t nb = n / 32, row_bytes = nb * kBlockBytes, grouped = rows / kGroupRows * kGroupRows;
  for (int64_t g = row_begin; g < std::min(row_end, grouped); g += kGroupRows) {
    const uint8_t* s = src + g * row_bytes;
    uint8_t* d = dst + g * row_bytes;
    for (int64_t r = 0; r < kGroupRows; ++r)
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t plain = r * row_bytes + b * kBlockBytes;
        std::memcpy(in ? d + group_offset(r, b, 0) : d + plain, in ? s + plain : s + group_offset(r, b, 0), 2);
        for (int64_t i = 2; i < kBlockBytes; i += 4)
          std::memcpy(in ? d + group_offset(r, b, i) : d + plain + i, in ? s + plain + i : s + group_offset(r, b, i),
                      4);
      }
  }
  const int64_t tail = std::max(row_begin, grouped);  // the rows after the last group stay as they are
  if (row_end > tail) std::memcpy(dst + tail * row_bytes, src + tail * row_bytes, (row_end - tail) * row_bytes);
}

}  // namespace

bool interleavable(GgmlType type) { return type == GgmlType::kQ4_0; }

void interleaved_rows_check(GgmlType type, int64_t rows, int64_t n, int64_t row_begin, int64_t row_end) {
  if (!interleavable(type))
    throw Error(fmt::format("interleave: {} rows have no interleaved layout; expected Q4_0", ggml_type_name(type)));
  if (n <= 0 || n % 32 != 0 || row_begin < 0 || row_begin > row_end || row_end > rows || row_begin % kGroupRows != 0 ||
      (row_end % kGroupRows != 0 && row_end != rows))
    throw Error(
        fmt::format("interleave: rows [{}, {}) of {} rows of {}; expected whole groups of {} rows of whole "
                    "blocks of 32",
                    row_begin, row_end, rows, n, kGroupRows));
}

void interleave_rows(GgmlType type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t n, int64_t row_begin,
                     int64_t row_end) {
  move_rows(type, src, dst, rows, n, row_begin, row_end, true);
}

void deinterleave_rows(GgmlType type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t n, int64_t row_begin,
                       int64_t row_end) {
  move_rows(type, src, dst, rows, n, row_begin, row_end, false);
}

void dequantize_interleaved(GgmlType type, const uint8_t* data, int64_t rows, int64_t n, int64_t r0, int64_t r1,
                            float* out) {
  if (r0 < 0 || r0 > r1 || r1 > rows) throw Error(fmt::format("interleave: rows [{}, {}) of {}", r0, r1, rows));
  interleaved_rows_check(type, rows, n, 0, rows);
  const int64_t nb = n / 32, row_bytes = nb * kBlockBytes, grouped = rows / kGroupRows * kGroupRows;
  for (int64_t r = r0; r < std::min(r1, grouped); ++r, out += n) {
    const uint8_t* group = data + r / kGroupRows * kGroupRows * row_bytes;
    const int64_t i = r % kGroupRows;
    for (int64_t b = 0; b < nb; ++b) {  // as dequantize's Q4_0: (q − 8)·d
      const float d = f16_to_f32(
          static_cast<uint16_t>(group[group_offset(i, b, 0)] | group[group_offset(i, b, 1)] << 8));
      for (int64_t q = 0; q < 16; ++q) {
        const uint8_t byte = group[group_offset(i, b, 2 + q)];
        out[32 * b + q] = ((byte & 0x0f) - 8) * d;
        out[32 * b + 16 + q] = ((byte >> 4) - 8) * d;
      }
    }
  }
  const int64_t tail = std::max(r0, grouped);
  if (tail < r1) dequantize(type, data + tail * row_bytes, out, (r1 - tail) * n);
}

}  // namespace hearth::quant
