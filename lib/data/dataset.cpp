// Dataset reader (dataset.h) over manifest.json (manifest.h) and shard files (shard.h).
#include "data/dataset.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"
#include "data/manifest.h"
#include "core/sha256.h"
#include "data/shard.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

namespace hearth::data {
namespace fs = std::filesystem;

namespace {

struct SplitReader {
  std::vector<std::unique_ptr<ShardReader>> shards;
  std::vector<uint64_t> starts;  // first sequence index of each shard
  uint64_t size = 0;
};

SplitReader split_open(const fs::path& dir, const SplitInfo& info, int64_t seq_len) {
  SplitReader r;
  for (const auto& sh : info.shards) {
    fs::path p = dir / sh.file;
    std::error_code ec;
    auto bytes = fs::file_size(p, ec);
    if (ec) throw IoError(fmt::format("{}: shard listed in manifest.json is missing or unreadable", p.string()));
    if (bytes != sh.bytes)
      throw FormatError(
          fmt::format("{}: size; expected {} bytes (manifest.json), got {}", p.string(), sh.bytes, bytes));
    auto reader = std::make_unique<ShardReader>(p);
    if (reader->sequences() != sh.sequences || reader->seq_len() != seq_len)
      throw FormatError(fmt::format("{}: expected {} sequences of at most {} tokens (manifest.json), got {} of {}",
                                    p.string(), sh.sequences, seq_len, reader->sequences(), reader->seq_len()));
    r.starts.push_back(r.size);
    r.size += sh.sequences;
    r.shards.push_back(std::move(reader));
  }
  return r;
}

}  // namespace

struct Dataset::Impl {
  fs::path dir;
  nlohmann::json manifest;
  std::string fingerprint;
  int64_t seq_len = 0;
  SplitReader train, validation;
  const SplitReader& split(Split s) const { return s == Split::kTrain ? train : validation; }
};

Dataset Dataset::open(const fs::path& dir) {
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  Manifest m = manifest_read(dir);
  impl->manifest = io::json_read(dir / "manifest.json");
  impl->fingerprint = m.tokenizer["fingerprint"].get<std::string>();
  impl->seq_len = m.seq_len;
  impl->train = split_open(dir, m.train, m.seq_len);
  impl->validation = split_open(dir, m.validation, m.seq_len);
  return Dataset(std::move(impl));
}

Dataset::Dataset(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dataset::Dataset(Dataset&&) noexcept = default;
Dataset& Dataset::operator=(Dataset&&) noexcept = default;
Dataset::~Dataset() = default;

size_t Dataset::size(Split split) const { return impl_->split(split).size; }

Sequence Dataset::get(Split split, size_t index) const {
  const SplitReader& r = impl_->split(split);
  if (index >= r.size)
    throw std::out_of_range(fmt::format("{}: {} sequence {}; the split has {}", impl_->dir.string(),
                                        split == Split::kTrain ? "train" : "validation", index, r.size));
  auto it = std::upper_bound(r.starts.begin(), r.starts.end(), static_cast<uint64_t>(index));
  size_t shard = static_cast<size_t>(it - r.starts.begin()) - 1;
  return r.shards[shard]->get(index - r.starts[shard]);
}

int64_t Dataset::seq_len() const { return impl_->seq_len; }
const std::string& Dataset::tokenizer_fingerprint() const { return impl_->fingerprint; }
const nlohmann::json& Dataset::manifest() const { return impl_->manifest; }

std::string tokenizer_fingerprint(const fs::path& model_dir) {
  if (!fs::exists(model_dir / "tokenizer.json"))
    throw IoError(
        fmt::format("{}: no tokenizer.json; expected a Hugging Face model or tokenizer folder", model_dir.string()));
  Sha256 h;
  for (const char* name : kTokenizerFiles) {
    fs::path p = model_dir / name;
    if (!fs::exists(p)) continue;
    std::string bytes = io::file_read(p);
    h.update(name);
    h.update("\n", 1);
    h.update(std::to_string(bytes.size()) + "\n");
    h.update(bytes);
  }
  return "sha256:" + digest_hex(h.digest());
}

void dataset_tokenizer_check(const Dataset& dataset, const fs::path& model_dir) {
  std::string have = tokenizer_fingerprint(model_dir);
  if (have == dataset.tokenizer_fingerprint()) return;
  std::string made_with = dataset.manifest()["tokenizer"].value("model_dir", "another model");
  throw ConfigError(fmt::format(
      "dataset: tokenized with a different tokenizer; expected the tokenizer of '{}' ({}), got '{}' ({}). Re-run "
      "hearth ingest with --model {}",
      made_with, dataset.tokenizer_fingerprint(), model_dir.string(), have, model_dir.string()));
}

}  // namespace hearth::data
