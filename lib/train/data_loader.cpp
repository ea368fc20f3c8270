#include "train/data_loader.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::train {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

void shuffle_deterministic(std::vector<int64_t>& v, uint64_t seed) {
  uint64_t state = seed;
  for (size_t i = v.size(); i > 1; --i) {
    size_t j = static_cast<size_t>(splitmix64(state) % i);
    std::swap(v[i - 1], v[j]);
  }
}

Batch batch_make(const std::vector<data::Sequence>& seqs, int64_t seq_len) {
  const int64_t B = static_cast<int64_t>(seqs.size());
  int64_t T = 1;
  for (const auto& s : seqs)
    T = std::max<int64_t>(T, seq_len > 0 ? std::min<int64_t>(seq_len, s.tokens.size()) : s.tokens.size());
  Batch b;
  b.tokens = torch::zeros({B, T}, torch::kInt64);
  b.valid = torch::zeros({B, T}, torch::kBool);
  b.targets = torch::full({B, T}, int64_t(-100), torch::kInt64);
  auto tok = b.tokens.accessor<int64_t, 2>();
  auto val = b.valid.accessor<bool, 2>();
  auto tgt = b.targets.accessor<int64_t, 2>();
  for (int64_t i = 0; i < B; ++i) {
    const auto& s = seqs[i];
    const int64_t n = std::min<int64_t>(T, s.tokens.size());
    for (int64_t t = 0; t < n; ++t) {
      tok[i][t] = s.tokens[t];
      val[i][t] = true;
      // position t predicts token t+1, which counts when its mask bit is set
      if (t + 1 < n && s.loss_mask[t + 1]) {
        tgt[i][t] = s.tokens[t + 1];
        ++b.n_targets;
      }
    }
    b.n_tokens += n;
  }
  b.positions = torch::arange(T, torch::kInt64).unsqueeze(0).expand({B, T}).contiguous();
  return b;
}

DataLoader::DataLoader(std::vector<const data::Dataset*> datasets, std::vector<double> weights, int64_t seq_len,
                       uint64_t seed)
    : datasets_(std::move(datasets)), weights_(std::move(weights)), seq_len_(seq_len), seed_(seed) {
  order_build(0);
  if (order_.empty())
    throw ConfigError("datasets: the training split is empty; ingest more data or lower --val-fraction");
}

void DataLoader::order_build(int64_t epoch) {
  order_.clear();
  for (size_t d = 0; d < datasets_.size(); ++d) {
    const int64_t n = static_cast<int64_t>(datasets_[d]->size(data::Split::kTrain));
    if (n == 0) continue;
    std::vector<int64_t> own(n);
    std::iota(own.begin(), own.end(), 0);
    shuffle_deterministic(own, seed_ * 1000003ULL + epoch * 7919ULL + d);
    const int64_t count = std::max<int64_t>(1, std::llround(double(n) * weights_[d]));
    for (int64_t k = 0; k < count; ++k) order_.emplace_back(static_cast<int32_t>(d), own[k % n]);
  }
  std::vector<int64_t> perm(order_.size());
  std::iota(perm.begin(), perm.end(), 0);
  shuffle_deterministic(perm, seed_ ^ (0x5bd1e995ULL * (epoch + 1)));
  std::vector<std::pair<int32_t, int64_t>> shuffled;
  shuffled.reserve(order_.size());
  for (int64_t i : perm) shuffled.push_back(order_[i]);
  order_.swap(shuffled);
}

Batch DataLoader::next(int64_t n) {
  std::vector<data::Sequence> seqs;
  for (int64_t i = 0; i < n; ++i) {
    epoch_advance();
    auto [d, idx] = order_[pos_.offset++];
    seqs.push_back(datasets_[d]->get(data::Split::kTrain, static_cast<size_t>(idx)));
  }
  return batch_make(seqs, seq_len_);
}

void DataLoader::skip(int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    epoch_advance();
    ++pos_.offset;
  }
}

void DataLoader::epoch_advance() {
  if (pos_.offset < epoch_size()) return;
  ++pos_.epoch;
  pos_.offset = 0;
  order_build(pos_.epoch);
}

void DataLoader::seek(const LoaderPosition& p) {
  pos_ = p;
  order_build(p.epoch);
}

std::vector<Batch> DataLoader::validation(int64_t n, int64_t max_batches) const {
  std::vector<Batch> out;
  std::vector<data::Sequence> seqs;
  for (const auto* d : datasets_)
    for (size_t i = 0; i < d->size(data::Split::kValidation); ++i) {
      seqs.push_back(d->get(data::Split::kValidation, i));
      if (static_cast<int64_t>(seqs.size()) == n) {
        out.push_back(batch_make(seqs, seq_len_));
        seqs.clear();
        if (max_batches > 0 && static_cast<int64_t>(out.size()) >= max_batches) return out;
      }
    }
  if (!seqs.empty()) out.push_back(batch_make(seqs, seq_len_));
  return out;
}

}  // namespace hearth::train
