// Near-duplicate detection: MinHash signatures of word 5-gram shingles (Broder 1997, "On the resemblance
// and containment of documents") with banded locality-sensitive hashing (Leskovec, Rajaraman & Ullman,
// "Mining of Massive Datasets", ch. 3.4) to find candidates, each confirmed by its estimated Jaccard
// similarity. Exact duplicates are found separately, by text_key() (clean.h).
#pragma once

#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hearth::data {

constexpr int kMinHashSize = 128;  // hash functions per signature
constexpr int kShingleWords = 5;

// MinHash signature of `text` (kMinHashSize values), over its lower-cased word 5-grams. Empty when the text
// has fewer than kShingleWords words (too short for near-duplicate detection). Thread-safe.
std::vector<uint32_t> minhash(std::string_view text);
// Fraction of positions where two signatures agree: an unbiased estimate of the Jaccard similarity of
// their shingle sets. 0 when either is empty.
double minhash_similarity(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b);

// Documents seen so far, by signature. Not thread-safe.
class NearDupIndex {
 public:
  // `threshold` in (0, 1]: documents whose estimated Jaccard similarity is >= threshold are duplicates.
  explicit NearDupIndex(double threshold);
  // If `sig` is a near-duplicate of a document already added, returns true (and does not add it);
  // otherwise adds it and returns false. Empty signatures are never duplicates.
  bool check_and_add(const std::vector<uint32_t>& sig);
  int bands() const { return bands_; }
  int rows() const { return rows_; }

 private:
  double threshold_;
  int bands_, rows_;
  std::vector<std::vector<uint32_t>> sigs_;
  std::vector<std::unordered_map<uint64_t, std::vector<uint32_t>>> buckets_;  // per band: hash -> doc ids
};

}  // namespace hearth::data
