// One source file through the per-file stages of ingest (ingest.h): unchanged check, read, format detection,
// extraction, cleaning, redaction, tokenization, and the write of its document cache. Runs on the ingest
// thread pool: everything it touches is either owned by the call or const and thread-safe.
#pragma once

#include <functional>

#include <filesystem>
#include <optional>
#include <string>

#include "data/encode.h"
#include "data/extract.h"
#include "data/ingest.h"
#include "data/manifest.h"
#include "data/sources.h"

namespace hearth::data {

struct FileContext {
  const IngestOptions& options;
  // The record encoder. May block until the tokenizer has loaded (ingest_run loads it on its own thread while
  // files are read and cleaned) and rethrows a load failure, which ends the run.
  std::function<const RecordEncoder&()> encoder;
  std::optional<Format> forced_format;
  std::string processing_key;  // settings the caches depend on
  bool key_unchanged = false;  // the previous manifest was made with the same processing_key
};

enum class FileStatus { kAdded, kChanged, kUnchanged };

struct FileOutcome {
  SourceEntry entry;
  FileStatus status = FileStatus::kAdded;
  uint64_t bytes_read = 0;
};

// Processes `file`; `old` is its entry in the previous manifest (or null). Bad input is recorded in the
// entry (issues, skipped), never thrown; IoError/ResourceError are thrown only for the dataset folder itself
// (the cache could not be written).
FileOutcome file_process(const SourceFile& file, const SourceEntry* old, const FileContext& ctx);

// The reason text file_process() gives a file it could not read (strict mode maps it to IoError).
constexpr const char* kUnreadable = "unreadable: ";

}  // namespace hearth::data
