#include "data/dedup.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/signals.h"

namespace hearth::data {
namespace {

inline uint64_t mix64(uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// Fixed hash-function coefficients: signatures must be identical across runs and machines.
// h_k(x) = a_k * x + b_k mod 2^32 with odd a_k: a permutation of the 32-bit shingle hashes per k
// (32-bit so that the loop over k vectorizes).
struct Coefficients {
  uint32_t a[kMinHashSize], b[kMinHashSize];
  Coefficients() {
    uint64_t s = 0x6865617274680001ull;  // "hearth"
    for (int i = 0; i < kMinHashSize; ++i) {
      a[i] = static_cast<uint32_t>(mix64(s += 0x9e3779b97f4a7c15ull)) | 1;
      b[i] = static_cast<uint32_t>(mix64(s += 0x9e3779b97f4a7c15ull));
    }
  }
};
const Coefficients& coefficients() {
  static const Coefficients c;
  return c;
}

bool word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80 || c == '\'';
}

// Hashes of the words of `text` (ASCII lower-cased; non-ASCII bytes are part of words).
std::vector<uint64_t> word_hashes(std::string_view text) {
  std::vector<uint64_t> out;
  size_t i = 0, n = text.size();
  while (i < n) {
    while (i < n && !word_byte(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= n) break;
    uint64_t h = 0xcbf29ce484222325ull;
    while (i < n && word_byte(static_cast<unsigned char>(text[i]))) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c + 32);
      h = (h ^ c) * 0x100000001b3ull;
      ++i;
    }
    out.push_back(mix64(h));
  }
  return out;
}

}  // namespace

std::vector<uint32_t> minhash(std::string_view text) {
  std::vector<uint64_t> words = word_hashes(text);
  if (words.size() < static_cast<size_t>(kShingleWords)) return {};
  const Coefficients& c = coefficients();
  std::vector<uint32_t> sig(kMinHashSize, UINT32_MAX);
  for (size_t i = 0; i + kShingleWords <= words.size(); ++i) {
    if (i % 65536 == 65535) interrupt_point();  // a huge text in an interruptible scope (core/signals.h)
    uint64_t h = words[i];
    for (int k = 1; k < kShingleWords; ++k) h = mix64(h * 31 + words[i + k]);
    auto x = static_cast<uint32_t>(h ^ (h >> 32));
    uint32_t* out = sig.data();
    for (int k = 0; k < kMinHashSize; ++k) {
      uint32_t v = c.a[k] * x + c.b[k];
      out[k] = v < out[k] ? v : out[k];
    }
  }
  return sig;
}

double minhash_similarity(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  if (a.empty() || b.empty() || a.size() != b.size()) return 0;
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return static_cast<double>(same) / static_cast<double>(a.size());
}

NearDupIndex::NearDupIndex(double threshold) : threshold_(threshold) {
  // Pick rows per band so that the LSH S-curve's midpoint (1/b)^(1/r) sits a little below the threshold:
  // candidates are then confirmed with the signature similarity, so erring low only costs comparisons.
  double target = std::max(0.05, threshold - 0.1);
  rows_ = 1;
  double best = 1e9;
  for (int r = 1; r <= kMinHashSize; ++r) {
    int b = kMinHashSize / r;
    double t = std::pow(1.0 / b, 1.0 / r);
    if (std::abs(t - target) < best) {
      best = std::abs(t - target);
      rows_ = r;
    }
  }
  bands_ = kMinHashSize / rows_;
  buckets_.resize(static_cast<size_t>(bands_));
}

bool NearDupIndex::check_and_add(const std::vector<uint32_t>& sig) {
  if (sig.size() != static_cast<size_t>(kMinHashSize)) return false;
  std::vector<uint64_t> keys(static_cast<size_t>(bands_));
  for (int band = 0; band < bands_; ++band) {
    uint64_t h = static_cast<uint64_t>(band) + 1;
    for (int r = 0; r < rows_; ++r) h = mix64(h * 0x100000001b3ull + sig[static_cast<size_t>(band * rows_ + r)]);
    keys[static_cast<size_t>(band)] = h;
    auto it = buckets_[static_cast<size_t>(band)].find(h);
    if (it == buckets_[static_cast<size_t>(band)].end()) continue;
    for (uint32_t id : it->second)
      if (minhash_similarity(sig, sigs_[id]) >= threshold_) return true;
  }
  auto id = static_cast<uint32_t>(sigs_.size());
  sigs_.push_back(sig);
  for (int band = 0; band < bands_; ++band)
    buckets_[static_cast<size_t>(band)][keys[static_cast<size_t>(band)]].push_back(id);
  return false;
}

}  // namespace hearth::data
