// One-shot zstd compression of a buffer into a single frame with a content checksum (RFC 8878), and its
// inverse with the checks a reader needs. Not a streaming API.
#pragma once

#include <string>
#include <string_view>

namespace hearth::data {

// Compresses `raw` at `level` (1-19). Throws Error on a zstd failure (never expected).
std::string zstd_compress(std::string_view raw, int level = 3);
// Decompresses one frame; `origin` names the data in the FormatError thrown for a corrupt or truncated
// frame, a checksum mismatch, or a decompressed size above `max_size`.
std::string zstd_decompress(std::string_view frame, const std::string& origin, size_t max_size = size_t(1) << 32);

}  // namespace hearth::data
