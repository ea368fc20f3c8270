// DATASET_DIR/manifest.json: what a dataset holds and where every piece came from (schema in
// docs/datasets.md, versioned by "schema_version"). The manifest is the dataset's commit point: ingest
// writes shards and caches first and replaces the manifest last, atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/record.h"
#include "data/redact.h"
#include "data/shard.h"

namespace hearth::data {

constexpr int kManifestSchemaVersion = 1;
constexpr const char* kManifestFormat = "hearth-dataset";

// Where a record of a conversation export came from (listed for records with a title or a time).
struct RecordOrigin {
  uint64_t line = 0;
  Provenance provenance;
};

// One source file, as last seen.
struct SourceEntry {
  std::string path;  // absolute
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string sha256;      // of the file's bytes ("" when it was not read: too large, unsupported)
  std::string format;      // txt|md|...|chatgpt|claude|whatsapp|telegram ("" when unknown)
  uint64_t records = 0;    // records read from the file
  uint64_t documents = 0;  // documents in the dataset from it (after de-duplication)
  uint64_t tokens = 0;     // tokens in the dataset from it
  uint64_t duplicates_exact = 0, duplicates_near = 0;
  RedactCounts redactions;
  RedactCounts found_kept;                  // personal data found but not redacted (its --redact group is off)
  std::map<std::string, uint64_t> omitted;  // parts left out on purpose ("attachments", "media", "forwarded")
  std::vector<RecordOrigin> provenance;     // of the records used, when the export gives titles or times
  std::vector<Issue> issues;                // bad input found in it (each also skipped)
  std::string skipped;                      // why the whole file was skipped ("" when used)
  std::string cache;                        // "cache/<key>.zst" ("" when skipped)
};

struct SplitInfo {
  uint64_t sequences = 0, tokens = 0, targets = 0, documents = 0;
  std::vector<ShardInfo> shards;
};

struct Manifest {
  uint64_t generation = 0;
  int64_t seq_len = 0;
  std::string processing_key;  // settings that per-file caches depend on
  nlohmann::json tokenizer;    // fingerprint, model_dir, dir, vocab_size, bos_id, eos_id
  nlohmann::json options;      // the ingest options used
  std::vector<SourceEntry> sources;
  SplitInfo train, validation;
  nlohmann::json totals;
  nlohmann::json last_run;
};

nlohmann::json manifest_to_json(const Manifest& m);
// Validates and converts; FormatError "<origin>: <field>: <what>; expected <x>, got <y>".
Manifest manifest_from_json(const nlohmann::json& j, const std::string& origin);
// Reads DIR/manifest.json. IoError when missing or unreadable, FormatError when malformed.
Manifest manifest_read(const std::filesystem::path& dir);

}  // namespace hearth::data
