// The per-source-file cache inside a dataset folder (DATASET/cache/<key>.zst): the file's tokenized
// documents with their dedup keys and MinHash signatures, so that a re-run re-packs unchanged files without
// reading, cleaning or tokenizing them again. The key is the SHA-256 of the file's content hash and the
// processing settings (tokenizer, redaction, chat masking, ...), so a cache is never reused across settings.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/encode.h"
#include "core/sha256.h"

namespace hearth::data {

struct CachedDoc {
  Digest key;                     // text_key() of the document
  uint64_t line = 0;              // line of the record in its source file
  std::vector<uint32_t> minhash;  // empty for short texts
  TokenizedDoc doc;
};

// Writes `docs` atomically to `path` (zstd-compressed). Throws IoError/ResourceError.
void doc_cache_write(const std::filesystem::path& path, const std::vector<CachedDoc>& docs);
// Reads a cache. Throws IoError (missing) or FormatError (corrupt), naming the path.
std::vector<CachedDoc> doc_cache_read(const std::filesystem::path& path);

}  // namespace hearth::data
