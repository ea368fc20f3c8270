// `hearth ingest`: a person's documents and chats -> a cleaned, de-duplicated, redacted, tokenized,
// compressed dataset (dataset.h reads it; docs/datasets.md describes it).
//
// Pipeline: walk the sources (sources.h) -> per file, on a thread pool: read, detect the format, extract
// records (extract.h), clean (clean.h), redact (redact.h), tokenize with masks (encode.h), cache the result
// (doc_cache.h) -> in source order: drop exact and near duplicates (dedup.h), assign each document to
// train or validation by its content hash, pack into sequences (pack.h) and write shards (shard.h) ->
// replace manifest.json atomically (manifest.h) -> delete what the new manifest no longer references.
//
// Incremental: a file whose size and mtime (or, failing that, content hash) match the previous manifest,
// under the same processing settings, is not read again: its cached documents are re-packed. An interrupted
// or failed run leaves the previous manifest and everything it references untouched.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/encode.h"
#include "data/manifest.h"
#include "data/redact.h"

namespace hearth::data {

struct IngestOptions {
  std::vector<std::filesystem::path> sources;  // files or folders (recursive)
  std::filesystem::path model_dir;             // tokenizer.json (+ tokenizer_config.json, config.json)
  std::filesystem::path out_dir;               // the dataset folder (created if missing)
  std::vector<std::string> include, exclude;   // globs (sources.h)
  uint64_t max_file_size = 64ull << 20;        // larger files are skipped
  std::string format = "auto";                 // auto: by extension; else forced for every file
  int64_t seq_len = 0;                         // 0: min(2048, config.json max_position_embeddings)
  TrainOn train_on = TrainOn::kAssistant;
  double val_fraction = 0.05;  // share of documents (by content hash) in the validation split
  bool near_dedup = true;
  double near_dup_threshold = 0.8;  // estimated Jaccard similarity of word 5-grams
  RedactOptions redact;
  bool mail_headers = false;            // train on From/To/Date/Subject of mail too
  std::vector<std::string> me;          // the person's names in messenger exports (their turns: assistant)
  bool strict = false;                  // any bad input is an error (exit 3 unreadable, 4 malformed)
  bool force = false;                   // write into an --out folder that holds other files (never touched)
  bool follow_symlinks = false;         // read links that lead out of their SOURCE folder (skipped otherwise)
  int threads = 0;                      // 0: all hardware threads
  uint64_t shard_tokens = 16ull << 20;  // tokens per shard before a new one is started
  bool progress = true;                 // progress bar / log lines on stderr
  // Test hook: called with "loaded", "files_done", "shards_written" and "committed" (each also logged at
  // debug level with its time); may throw or kill the process.
  std::function<void(const std::string& stage)> on_stage;
};

struct IngestResult {
  Manifest manifest;
  uint64_t added = 0, changed = 0, removed = 0, unchanged = 0;
  uint64_t bytes_processed = 0;  // bytes of the files read this run
  double seconds = 0;
};

// Checks every option before any work (ConfigError naming the flag; IoError for a missing model folder).
void ingest_options_validate(const IngestOptions& o);
// The default sequence length for a model folder: min(2048, max_position_embeddings of config.json).
int64_t seq_len_default(const std::filesystem::path& model_dir);
// Runs the pipeline. Throws ConfigError/IoError/FormatError (with --strict, for bad input: IoError when a
// file is unreadable, FormatError otherwise, naming path:line; FormatError when no file yielded anything,
// listing them), ResourceError (disk full) or InterruptedError (SIGINT/SIGTERM); in every case the previous
// dataset in out_dir is left as it was.
IngestResult ingest_run(const IngestOptions& o);

}  // namespace hearth::data
