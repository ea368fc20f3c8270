// The interleaved Q4_0, Q8_0, Q4_K and Q6_K layouts (interleave.h): moving bytes between them and ggml's, and decoding
// rows.
#include "quant/interleave.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "quant/codec.h"

namespace hearth::quant {
namespace {

// A run of bytes of a ggml block and where its copy for row r lies in the group's block: at + r·stride.
struct Piece {
  int16_t from, bytes, at, stride;
};

// The pieces of one type's block (interleave.h): header fields, then the weight bytes 4 at a time.
std::vector<Piece> make_pieces(GgmlType type) {
  std::vector<Piece> p;
  int16_t header = 0;  // bytes of header per row
  auto field = [&](int from, int bytes) {
    p.push_back({int16_t(from), int16_t(bytes), int16_t(header * kGroupRows), int16_t(bytes)});
    header = int16_t(header + bytes);
  };
  int steps = 0;
  auto weights = [&](int from, int to) {  // weight bytes [from, to), 4 at a time, in steps of 64 bytes
    for (int i = from; i < to; i += 4, ++steps)
      p.push_back({int16_t(i), 4, int16_t(header * kGroupRows + 4 * kGroupRows * steps), 4});
  };
  switch (type) {
    case GgmlType::kQ4_0: field(0, 2), weights(2, 18); break;
    case GgmlType::kQ8_0: field(0, 2), weights(2, 34); break;
    case GgmlType::kQ4_K:
      field(0, 2), field(2, 2);
      for (int k = 0; k < 12; ++k) field(4 + k, 1);
      weights(16, 144);
      break;
    case GgmlType::kQ6_K:  // in the order the kernels read them: the two ql steps and the qh step of each 4 weights
      field(208, 2);
      for (int k = 0; k < 16; ++k) field(192 + k, 1);
      for (int h = 0; h < 2; ++h)
        for (int t = 0; t < 8; ++t) {
          weights(64 * h + 4 * t, 64 * h + 4 * t + 4);
          weights(64 * h + 32 + 4 * t, 64 * h + 32 + 4 * t + 4);
          weights(128 + 32 * h + 4 * t, 128 + 32 * h + 4 * t + 4);
        }
      break;
    default: break;
  }
  return p;
}

const std::vector<Piece>& pieces(GgmlType type) {
  static const std::vector<Piece> q4_0 = make_pieces(GgmlType::kQ4_0), q8_0 = make_pieces(GgmlType::kQ8_0),
                                  q4_k = make_pieces(GgmlType::kQ4_K), q6_k = make_pieces(GgmlType::kQ6_K), none;
  switch (type) {
    case GgmlType::kQ4_0: return q4_0;
    case GgmlType::kQ8_0: return q8_0;
    case GgmlType::kQ4_K: return q4_k;
    case GgmlType::kQ6_K: return q6_k;
    default: return none;
  }
}

inline void copy_piece(uint8_t* dst, const uint8_t* src, int bytes) {
  switch (bytes) {  // fixed sizes: moves, not calls
    case 4: std::memcpy(dst, src, 4); return;
    case 2: std::memcpy(dst, src, 2); return;
    default: std::memcpy(dst, src, 1); return;
  }
}

// Copies rows [row_begin, row_end) between the layouts: to the interleaved one when `in`, else back.
void move_rows(GgmlType type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t n, int64_t row_begin,
               int64_t row_end, bool in) {
  interleaved_rows_check(type, rows, n, row_begin, row_end);
  const auto bb = static_cast<int64_t>(ggml_type_block_bytes(type));
  const int64_t nb = n / ggml_type_block_size(type), row_bytes = nb * bb, grouped = rows / kGroupRows * kGroupRows;
  const std::vector<Piece>& ps = pieces(type);
  for (int64_t g = row_begin; g < std::min(row_end, grouped); g += kGroupRows) {
    const uint8_t* s = src + g * row_bytes;
    uint8_t* d = dst + g * row_bytes;
    for (int64_t r = 0; r < kGroupRows; ++r)
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t plain = r * row_bytes + b * bb, group = b * bb * kGroupRows;
        if (!in) {
          interleaved_block(type, s, r, b, d + plain);
          continue;
        }
        for (const Piece& p : ps) copy_piece(d + group + p.at + r * p.stride, s + plain + p.from, p.bytes);
      }
  }
  const int64_t tail = std::max(row_begin, grouped);  // the rows after the last group stay as they are
  if (row_end > tail) std::memcpy(dst + tail * row_bytes, src + tail * row_bytes, (row_end - tail) * row_bytes);
}

}  // namespace

bool interleavable(GgmlType type) { return !pieces(type).empty(); }

void interleaved_rows_check(GgmlType type, int64_t rows, int64_t n, int64_t row_begin, int64_t row_end) {
  if (!interleavable(type))
    throw Error(fmt::format("interleave: {} rows have no interleaved layout; expected Q4_0, Q8_0, Q4_K or Q6_K",
                            ggml_type_name(type)));
  const int64_t block = ggml_type_block_size(type);
  if (n <= 0 || n % block != 0 || row_begin < 0 || row_begin > row_end || row_end > rows ||
      row_begin % kGroupRows != 0 || (row_end % kGroupRows != 0 && row_end != rows))
    throw Error(
        fmt::format("interleave: rows [{}, {}) of {} rows of {}; expected whole groups of {} rows of whole "
                    "blocks of {}",
                    row_begin, row_end, rows, n, kGroupRows, block));
}

void interleave_rows(GgmlType type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t n, int64_t row_begin,
                     int64_t row_end) {
  move_rows(type, src, dst, rows, n, row_begin, row_end, true);
}

void deinterleave_rows(GgmlType type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t n, int64_t row_begin,
                       int64_t row_end) {
  move_rows(type, src, dst, rows, n, row_begin, row_end, false);
}

void interleaved_block(GgmlType type, const uint8_t* group, int64_t r, int64_t b, uint8_t* out) {
  const auto bb = static_cast<int64_t>(ggml_type_block_bytes(type));
  const uint8_t* at = group + b * bb * kGroupRows;
  for (const Piece& p : pieces(type)) copy_piece(out + p.from, at + p.at + r * p.stride, p.bytes);
}

void dequantize_interleaved(GgmlType type, const uint8_t* data, int64_t rows, int64_t n, int64_t r0, int64_t r1,
                            float* out) {
  if (r0 < 0 || r0 > r1 || r1 > rows) throw Error(fmt::format("interleave: rows [{}, {}) of {}", r0, r1, rows));
  interleaved_rows_check(type, rows, n, 0, rows);
  const auto bb = static_cast<int64_t>(ggml_type_block_bytes(type));
  const int64_t nb = n / ggml_type_block_size(type), row_bytes = nb * bb, grouped = rows / kGroupRows * kGroupRows;
  std::vector<uint8_t> row(static_cast<size_t>(row_bytes));  // one row gathered back into ggml's layout
  for (int64_t r = r0; r < std::min(r1, grouped); ++r, out += n) {
    const uint8_t* group = data + r / kGroupRows * kGroupRows * row_bytes;
    for (int64_t b = 0; b < nb; ++b) interleaved_block(type, group, r % kGroupRows, b, row.data() + b * bb);
    dequantize(type, row.data(), out, n);
  }
  const int64_t tail = std::max(r0, grouped);
  if (tail < r1) dequantize(type, data + tail * row_bytes, out, (r1 - tail) * n);
}

}  // namespace hearth::quant
