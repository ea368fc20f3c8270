#include "data/packing_run.h"

#include <memory>
#include <unordered_set>

#include <fmt/format.h>

#include "core/log.h"
#include "core/signals.h"
#include "data/dedup.h"
#include "data/doc_cache.h"
#include "data/pack.h"
#include "data/shard.h"

namespace hearth::data {
namespace fs = std::filesystem;

namespace {

struct DigestHash {
  size_t operator()(const Digest& d) const { return static_cast<size_t>(digest_u64(d)); }
};

// The shards of one split: a new shard starts when the current one holds shard_tokens tokens.
class ShardSet {
 public:
  ShardSet(const PackSettings& s, const char* name) : s_(s), name_(name) {}
  void add(const Sequence& seq) {
    if (!writer_) {
      std::string file = fmt::format("{}-{:06}-{:05}.shard", name_, s_.generation, info_.shards.size());
      writer_ = std::make_unique<ShardWriter>(s_.out_dir / file, s_.seq_len);
      tokens_in_shard_ = 0;
    }
    writer_->add(seq);
    tokens_in_shard_ += seq.tokens.size();
    if (tokens_in_shard_ >= s_.shard_tokens) close();
  }
  void close() {
    if (!writer_) return;
    info_.shards.push_back(writer_->commit());
    writer_.reset();
  }
  SplitInfo& info() { return info_; }

 private:
  const PackSettings& s_;
  const char* name_;
  std::unique_ptr<ShardWriter> writer_;
  uint64_t tokens_in_shard_ = 0;
  SplitInfo info_;
};

}  // namespace

bool split_is_validation(const Digest& key, double val_fraction) {
  double u = static_cast<double>(digest_u64(key) >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  return u < val_fraction;
}

void packing_run(const PackSettings& s, Manifest& m) {
  ShardSet train_shards(s, "train"), val_shards(s, "val");
  Packer train(s.seq_len, [&](const Sequence& q) { train_shards.add(q); });
  Packer val(s.seq_len, [&](const Sequence& q) { val_shards.add(q); });
  std::unordered_set<Digest, DigestHash> seen;
  NearDupIndex near(s.near_dup_threshold);
  for (auto& e : m.sources) {
    e.documents = e.tokens = e.duplicates_exact = e.duplicates_near = 0;
    if (e.cache.empty()) continue;
    interrupt_check("ingest");
    for (const CachedDoc& d : doc_cache_read(s.out_dir / e.cache)) {
      if (!seen.insert(d.key).second) {
        ++e.duplicates_exact;
        continue;
      }
      if (s.near_dedup && near.check_and_add(d.minhash)) {
        ++e.duplicates_near;
        continue;
      }
      bool is_val = split_is_validation(d.key, s.val_fraction);
      (is_val ? val : train).add(d.doc);
      ++e.documents;
      uint64_t n = d.doc.tokens.size();
      e.tokens += d.doc.kind == RecordKind::kText ? n : std::min<uint64_t>(n, static_cast<uint64_t>(s.seq_len));
    }
  }
  train.finish();
  val.finish();
  train_shards.close();
  val_shards.close();
  m.train = train_shards.info();
  m.validation = val_shards.info();
  for (auto [info, p] : {std::pair{&m.train, &train}, std::pair{&m.validation, &val}}) {
    info->sequences = p->stats().sequences;
    info->tokens = p->stats().tokens;
    info->targets = p->stats().targets;
    info->documents = p->stats().documents;
  }
  m.totals = totals_compute(m, train.stats().truncated + val.stats().truncated);
}

nlohmann::json totals_compute(const Manifest& m, uint64_t truncated) {
  uint64_t files = 0, used = 0, skipped = 0, with_issues = 0, issues = 0, records = 0, documents = 0, tokens = 0;
  uint64_t dup_exact = 0, dup_near = 0, bytes = 0;
  RedactCounts redactions, found_kept;
  for (const auto& e : m.sources) {
    ++files;
    (e.skipped.empty() ? used : skipped) += 1;
    with_issues += e.issues.empty() ? 0 : 1;
    issues += e.issues.size();
    records += e.records;
    documents += e.documents;
    tokens += e.tokens;
    dup_exact += e.duplicates_exact;
    dup_near += e.duplicates_near;
    bytes += e.size;
    for (const auto& [k, v] : e.redactions) redactions[k] += v;
    for (const auto& [k, v] : e.found_kept) found_kept[k] += v;
  }
  return {{"files", files},
          {"files_used", used},
          {"files_skipped", skipped},
          {"files_with_issues", with_issues},
          {"issues", issues},
          {"bytes", bytes},
          {"records", records},
          {"documents", documents},
          {"tokens", tokens},
          {"duplicates_exact", dup_exact},
          {"duplicates_near", dup_near},
          {"truncated", truncated},
          {"redactions", nlohmann::json(redactions)},
          {"found_kept", nlohmann::json(found_kept)},
          {"sequences", m.train.sequences + m.validation.sequences},
          {"target_tokens", m.train.targets + m.validation.targets}};
}

}  // namespace hearth::data
