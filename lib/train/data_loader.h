// Feeds training: a deterministic, resumable order over one or more datasets, and batches as tensors.
//
// Each epoch is a permutation of (dataset, sequence) pairs: dataset i contributes round(n_i · weight_i)
// sequences (its own shuffled order, repeated or cut), then everything is shuffled with a generator seeded
// from (seed, epoch) — so the order depends only on the seed and the position, and a resumed run sees
// exactly the sequences the interrupted one would have. Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "data/dataset.h"

namespace hearth::train {

// A batch of sequences, right-padded to the longest.
struct Batch {
  torch::Tensor tokens;     // [B, T] int64
  torch::Tensor positions;  // [B, T] int64
  torch::Tensor valid;      // [B, T] bool (false on padding)
  torch::Tensor targets;    // [B, T] int64: the next token where it is a training target, else -100
  int64_t n_targets = 0;    // tokens that count in the loss
  int64_t n_tokens = 0;     // valid tokens
};

// Builds a Batch; sequences are cut to `seq_len` (0 = no cut).
Batch batch_make(const std::vector<data::Sequence>& sequences, int64_t seq_len);

struct LoaderPosition {
  int64_t epoch = 0;
  int64_t offset = 0;  // sequences consumed in this epoch
};

class DataLoader {
 public:
  DataLoader(std::vector<const data::Dataset*> datasets, std::vector<double> weights, int64_t seq_len, uint64_t seed);
  // Sequences per epoch (at least 1; throws ConfigError when the training split is empty).
  int64_t epoch_size() const { return static_cast<int64_t>(order_.size()); }
  // The next `n` sequences (crossing into the next epoch when needed).
  Batch next(int64_t n);
  // Moves past the next `n` sequences without reading them (the other ranks' share of a global batch).
  void skip(int64_t n);
  LoaderPosition position() const { return pos_; }
  void seek(const LoaderPosition& p);
  // Validation batches of `n` sequences over every dataset's validation split, in order; at most
  // `max_batches` (0 = all).
  std::vector<Batch> validation(int64_t n, int64_t max_batches) const;

 private:
  void order_build(int64_t epoch);
  void epoch_advance();  // into the next epoch when the current one is used up
  std::vector<const data::Dataset*> datasets_;
  std::vector<double> weights_;
  int64_t seq_len_;
  uint64_t seed_;
  LoaderPosition pos_;
  std::vector<std::pair<int32_t, int64_t>> order_;  // (dataset, index) of the current epoch
};

// Fisher–Yates with splitmix64 — the same permutation on every platform and standard library.
void shuffle_deterministic(std::vector<int64_t>& v, uint64_t seed);

}  // namespace hearth::train
