// The on-disk format: shard round trips (random access across blocks), checksums that catch corruption,
// manifest validation errors naming the field, and the tokenizer identity check trainers use.
#include <catch2/catch.hpp>

#include <random>

#include "core/error.h"
#include "data/dataset.h"
#include "data/manifest.h"
#include "data/shard.h"
#include "data_test_util.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

using namespace hearth;
using namespace hearth::data;
namespace fs = std::filesystem;

namespace {

std::vector<Sequence> random_sequences(size_t n, int64_t seq_len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Sequence> out(n);
  for (auto& s : out) {
    size_t len = 1 + rng() % static_cast<uint32_t>(seq_len);
    for (size_t i = 0; i < len; ++i) {
      s.tokens.push_back(static_cast<int32_t>(rng() % 50000));
      s.loss_mask.push_back(static_cast<uint8_t>(rng() % 2));
    }
    s.doc_starts = {0};
    if (len > 3) s.doc_starts.push_back(static_cast<uint32_t>(len / 2));
  }
  return out;
}

bool same(const Sequence& a, const Sequence& b) {
  return a.tokens == b.tokens && a.loss_mask == b.loss_mask && a.doc_starts == b.doc_starts;
}

// A dataset folder with one train shard of `seqs` and an empty validation split.
void dataset_write(const fs::path& dir, const std::vector<Sequence>& seqs, int64_t seq_len) {
  ShardWriter w(dir / "train-000001-00000.shard", seq_len, 4096);
  for (const auto& s : seqs) w.add(s);
  Manifest m;
  m.generation = 1;
  m.seq_len = seq_len;
  m.tokenizer = {{"fingerprint", "sha256:abc"}, {"dir", "tokenizer-x"}};
  m.train.shards.push_back(w.commit());
  m.train.sequences = seqs.size();
  io::atomic_write(dir / "manifest.json", manifest_to_json(m).dump(1));
}

}  // namespace

TEST_CASE("shards: every sequence reads back, across many blocks", "[data]") {
  auto dir = test::data_scratch("shards");
  auto seqs = random_sequences(300, 128, 7);
  dataset_write(dir, seqs, 128);
  auto ds = Dataset::open(dir);
  REQUIRE(ds.size(Split::kTrain) == 300);
  CHECK(ds.size(Split::kValidation) == 0);
  CHECK(ds.seq_len() == 128);
  CHECK(ds.tokenizer_fingerprint() == "sha256:abc");
  for (size_t i : {size_t(0), size_t(1), size_t(150), size_t(299), size_t(42)})
    CHECK(same(ds.get(Split::kTrain, i), seqs[i]));
  for (size_t i = 0; i < seqs.size(); ++i) REQUIRE(same(ds.get(Split::kTrain, i), seqs[i]));
  CHECK_THROWS_AS(ds.get(Split::kTrain, 300), std::out_of_range);
  CHECK_THROWS_AS(ds.get(Split::kValidation, 0), std::out_of_range);
  ShardReader r(dir / "train-000001-00000.shard");
  CHECK(r.file_sha256() == ds.manifest()["splits"]["train"]["shards"][0]["sha256"]);
}

TEST_CASE("shards: a flipped byte in a block is a FormatError naming the shard", "[data]") {
  auto dir = test::data_scratch("corrupt");
  auto seqs = random_sequences(50, 64, 9);
  dataset_write(dir, seqs, 64);
  auto shard = dir / "train-000001-00000.shard";
  std::string bytes = io::file_read(shard);
  bytes[40] = static_cast<char>(bytes[40] ^ 0x55);  // inside the first block
  io::atomic_write(shard, bytes);
  auto ds = Dataset::open(dir);  // the index is intact
  CHECK_THROWS_WITH(ds.get(Split::kTrain, 0),
                    Catch::Contains("train-000001-00000.shard") && Catch::Contains("checksum"));
  CHECK(same(ds.get(Split::kTrain, 49), seqs[49]));  // other blocks still read

  bytes[bytes.size() - 20] ^= 1;  // the footer's index checksum
  io::atomic_write(shard, bytes);
  CHECK_THROWS_AS(Dataset::open(dir), FormatError);
  io::atomic_write(shard, bytes.substr(0, 30));
  CHECK_THROWS_AS(Dataset::open(dir), FormatError);
}

TEST_CASE("Dataset::open: missing and malformed manifests are reported with the field", "[data]") {
  auto dir = test::data_scratch("manifest");
  CHECK_THROWS_AS(Dataset::open(dir), IoError);
  dataset_write(dir, random_sequences(3, 16, 1), 16);
  auto j = io::json_read(dir / "manifest.json");
  auto put = [&](const nlohmann::json& m) { io::atomic_write(dir / "manifest.json", m.dump()); };
  auto bad = j;
  bad["schema_version"] = 99;
  put(bad);
  CHECK_THROWS_WITH(Dataset::open(dir), Catch::Contains("schema_version") && Catch::Contains("got 99"));
  bad = j;
  bad["splits"]["train"]["sequences"] = 4;
  put(bad);
  CHECK_THROWS_WITH(Dataset::open(dir), Catch::Contains("splits.train") && Catch::Contains("sequences"));
  bad = j;
  bad["splits"]["train"]["shards"][0]["file"] = "../escape.shard";
  put(bad);
  CHECK_THROWS_AS(Dataset::open(dir), FormatError);
  bad = j;
  bad["tokenizer"].erase("fingerprint");
  put(bad);
  CHECK_THROWS_WITH(Dataset::open(dir), Catch::Contains("fingerprint"));
  put(j);
  fs::remove(dir / "train-000001-00000.shard");
  CHECK_THROWS_AS(Dataset::open(dir), IoError);
  io::atomic_write(dir / "manifest.json", "{not json");
  CHECK_THROWS_AS(Dataset::open(dir), FormatError);
}

TEST_CASE("tokenizer_fingerprint: stable, differs between tokenizers, checked for trainers", "[data]") {
  auto a = tokenizer_fingerprint(test::stories_dir());
  CHECK(a.rfind("sha256:", 0) == 0);
  CHECK(a.size() == 7 + 64);
  CHECK(a == tokenizer_fingerprint(test::stories_dir()));
  CHECK(a != tokenizer_fingerprint(test::assets_dir() / "qwen3"));
  CHECK_THROWS_AS(tokenizer_fingerprint(test::data_scratch("empty")), IoError);
  // Only the tokenizer files count: a copy of them elsewhere has the same identity.
  auto copy = test::data_scratch("tokcopy");
  for (const char* f : kTokenizerFiles)
    if (fs::exists(test::stories_dir() / f)) fs::copy_file(test::stories_dir() / f, copy / f);
  CHECK(tokenizer_fingerprint(copy) == a);
  test::file_put(copy / "tokenizer_config.json", "{}");
  CHECK(tokenizer_fingerprint(copy) != a);
}
