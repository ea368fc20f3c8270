// A tokenized dataset on disk, as `hearth ingest` writes it and `hearth finetune-lora` reads it.
//
// Layout (docs/datasets.md): DATASET_DIR/manifest.json (versioned schema) and zstd-compressed shards of
// fixed-length sequences (token ids + loss mask + document boundaries), each with a checksum, readable by
// sequence index without decompressing the others. Not here: reading sources or tokenizing (ingest.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::data {

enum class Split { kTrain, kValidation };

// One training sequence: `tokens` and `loss_mask` have the same length (the dataset's seq_len, or less
// for a final short sequence). loss_mask[t] = 1 when token t is a target the model learns to predict
// (e.g. assistant turns only), 0 otherwise. doc_starts: indices where a new document begins.
struct Sequence {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> loss_mask;
  std::vector<uint32_t> doc_starts;
};

// Read-only access to a dataset directory. get() is thread-safe.
class Dataset {
 public:
  // Opens and validates DIR/manifest.json (schema version, shard list). Throws IoError (missing) or
  // FormatError (malformed, unknown schema version), naming the file and field.
  static Dataset open(const std::filesystem::path& dir);
  Dataset(Dataset&&) noexcept;
  Dataset& operator=(Dataset&&) noexcept;
  ~Dataset();

  size_t size(Split split) const;  // number of sequences
  // Sequence `index` of `split`. Throws FormatError if its shard's checksum does not match (naming the
  // shard), std::out_of_range for a bad index.
  Sequence get(Split split, size_t index) const;
  int64_t seq_len() const;
  // Identity of the tokenizer the dataset was made with (tokenizer_fingerprint of the model folder).
  const std::string& tokenizer_fingerprint() const;
  const nlohmann::json& manifest() const;

 private:
  struct Impl;
  explicit Dataset(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A stable hash of a model folder's tokenizer files (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json when present): "sha256:<hex>". Throws IoError if tokenizer.json is missing.
std::string tokenizer_fingerprint(const std::filesystem::path& model_dir);

// The files tokenizer_fingerprint() hashes (in this order; absent ones are skipped).
constexpr const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};

// For trainers: throws ConfigError (exit 2) when `dataset` was not tokenized with the tokenizer in
// `model_dir`, naming both fingerprints and the model the dataset was made with.
void dataset_tokenizer_check(const Dataset& dataset, const std::filesystem::path& model_dir);

}  // namespace hearth::data
