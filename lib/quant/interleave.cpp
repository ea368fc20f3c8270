// The interleaved Q4_0 and Q8_0 layouts (interleave.h): moving bytes between them and ggml's, and decoding rows.
#include "quant/interleave.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "quant/codec.h"

namespace hearth::quant {
namespace {

// Where byte i of row r's block b lies in its group (rows, blocks and bytes counted within the group), for blocks of
// `bb` bytes.
inline int64_t group_offset(int64_t bb, int64_t r, int64_t b, int64_t i) {
  const int64_t at = b * bb * kGroupRows;
  if (i < 2) return at + 2 * r + i;       // the scale
  const int64_t q = i - 2, step = q / 4;  // qs byte q, in step q/4
  return at + 2 * kGroupRows + step * 4 * kGroupRows + 4 * r + q % 4;
}

// Copies rows [row_begin, row_end) between the layouts: to the interleaved one when `in`, else back.
void move_rows(GgmlType type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t n, int64_t row_begin,
               int64_t row_end, bool in) {
  interleaved_rows_check(type, rows, n, row_begin, row_end);
  const auto bb = static_cast<int64_t>(ggml_type_block_bytes(type));
  const int64_t nb = n / 32, row_bytes = nb * bb, grouped = rows / kGroupRows * kGroupRows;
  for (int64_t g = row_begin; g < std::min(row_end, grouped); g += kGroupRows) {
    const uint8_t* s = src + g * row_bytes;
    uint8_t* d = dst + g * row_bytes;
    for (int64_t r = 0; r < kGroupRows; ++r)
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t plain = r * row_bytes + b * bb;
        const int64_t scale_at = group_offset(bb, r, b, 0);
        std::memcpy(in ? d + scale_at : d + plain, in ? s + plain : s + scale_at, 2);
        for (int64_t i = 2; i < bb; i += 4) {
          const int64_t at = group_offset(bb, r, b, i);
          std::memcpy(in ? d + at : d + plain + i, in ? s + plain + i : s + at, 4);
        }
      }
  }
  const int64_t tail = std::max(row_begin, grouped);  // the rows after the last group stay as they are
  if (row_end > tail) std::memcpy(dst + tail * row_bytes, src + tail * row_bytes, (row_end - tail) * row_bytes);
}

}  // namespace

bool interleavable(GgmlType type) { return type == GgmlType::kQ4_0 || type == GgmlType::kQ8_0; }

void interleaved_rows_check(GgmlType type, int64_t rows, int64_t n, int64_t row_begin, int64_t row_end) {
  if (!interleavable(type))
    throw Error(
        fmt::format("interleave: {} rows have no interleaved layout; expected Q4_0 or Q8_0", ggml_type_name(type)));
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
  const auto bb = static_cast<int64_t>(ggml_type_block_bytes(type));
  const int64_t nb = n / 32, row_bytes = nb * bb, grouped = rows / kGroupRows * kGroupRows;
  std::vector<uint8_t> row(static_cast<size_t>(row_bytes));  // one row gathered back into ggml's layout
  for (int64_t r = r0; r < std::min(r1, grouped); ++r, out += n) {
    const uint8_t* group = data + r / kGroupRows * kGroupRows * row_bytes;
    const int64_t i = r % kGroupRows;
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = row.data() + b * bb;
      std::memcpy(blk, group + group_offset(bb, i, b, 0), 2);
      for (int64_t k = 2; k < bb; k += 4) std::memcpy(blk + k, group + group_offset(bb, i, b, k), 4);
    }
    dequantize(type, row.data(), out, n);
  }
  const int64_t tail = std::max(r0, grouped);
  if (tail < r1) dequantize(type, data + tail * row_bytes, out, (r1 - tail) * n);
}

}  // namespace hearth::quant
