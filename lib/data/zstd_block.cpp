#include "data/zstd_block.h"

#include <zstd.h>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::data {

std::string zstd_compress(std::string_view raw, int level) {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  if (!ctx) throw ResourceError("zstd: cannot allocate a compression context");
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 1);
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  size_t n = ZSTD_compress2(ctx, out.data(), out.size(), raw.data(), raw.size());
  ZSTD_freeCCtx(ctx);
  if (ZSTD_isError(n)) throw Error(fmt::format("zstd: compression failed: {}", ZSTD_getErrorName(n)));
  out.resize(n);
  return out;
}

std::string zstd_decompress(std::string_view frame, const std::string& origin, size_t max_size) {
  unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
    throw FormatError(fmt::format("{}: not a zstd frame with a known size", origin));
  if (size > max_size)
    throw FormatError(fmt::format("{}: decompressed size {} exceeds the limit {}", origin, size, max_size));
  std::string out(static_cast<size_t>(size), '\0');
  size_t n = ZSTD_decompress(out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(n) || n != size)
    throw FormatError(
        fmt::format("{}: corrupt zstd data ({})", origin, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch"));
  return out;
}

}  // namespace hearth::data
