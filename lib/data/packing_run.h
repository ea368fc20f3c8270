// The second half of ingest (ingest.h): every used source's cached documents, in source order, through
// exact and near de-duplication, the train/validation split and packing, into new shard files.
#pragma once

#include <cstdint>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "data/manifest.h"
#include "core/sha256.h"

namespace hearth::data {

struct PackSettings {
  std::filesystem::path out_dir;
  int64_t seq_len = 0;
  double val_fraction = 0;
  bool near_dedup = true;
  double near_dup_threshold = 0.8;
  uint64_t shard_tokens = 0;
  uint64_t generation = 0;  // shard names carry it, so a new run never overwrites the shards in use
};

// True when a document with dedup key `key` belongs to the validation split: the first 8 bytes of the key,
// as a fraction of 2^64, are below val_fraction. Depends on the content only, so a document keeps its split
// across re-runs.
bool split_is_validation(const Digest& key, double val_fraction);

// Writes the shards of m.sources (entries with a cache) and fills m.train, m.validation, each entry's
// documents/tokens/duplicates and m.totals. Throws IoError/FormatError for an unreadable cache or shard
// write failure (nothing is committed then).
void packing_run(const PackSettings& settings, Manifest& m);

// Totals over m.sources and m's splits (plus `truncated`, which only the packing run knows).
nlohmann::json totals_compute(const Manifest& m, uint64_t truncated);

}  // namespace hearth::data
