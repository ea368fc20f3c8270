// Key/value cache for batched incremental decoding: one row per sequence, each row with its own length.
//
// Layout per layer: k, v [B, n_kv_heads, capacity, head_dim]; `valid` [B, capacity] marks written slots that
// hold real tokens (padding written by a batched prefill stays invalid and is never attended to).
// Rows are independent, so sequences of different lengths share one batch. Not thread-safe.
#pragma once

#include <vector>

#include <torch/types.h>

#include "model/config.h"

namespace hearth::model {

class KvCache {
 public:
  // Allocates zeroed storage. Throws ResourceError if it does not fit in memory.
  KvCache(const ModelConfig& config, int64_t batch, int64_t capacity, const torch::TensorOptions& options);

  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  // lengths [B] int64 (CPU): slots used by each row.
  const std::vector<int64_t>& lengths() const { return lengths_; }
  // Bytes held by the cache.
  size_t bytes() const;

  // The methods below work on the rows a forward uses: row b of its batch is cache row `rows[b]` (distinct rows of
  // this cache, e.g. the sequences a server prefills this step, wherever they are in its pool), or, when `rows` is
  // empty, cache row b, so the first `count` rows (count = the forward's batch size, <= batch()).
  //
  // Used by the model's forward. slots: [count, T] int64 slot of each new token.
  // Writes layer `layer`'s k, v [count, n_kv, T, hd] at those slots.
  void write(int64_t layer, const torch::Tensor& slots, const torch::Tensor& k, const torch::Tensor& v,
             const std::vector<int64_t>& rows = {});
  // The first `n` slots of layer `layer` for the forward's rows: k, v [count, n_kv, n, hd] (views when the rows
  // are consecutive, else copies).
  std::pair<torch::Tensor, torch::Tensor> read(int64_t layer, int64_t n, int64_t count = -1,
                                               const std::vector<int64_t>& rows = {}) const;
  // valid [count, n] bool for the first n slots of the forward's rows.
  torch::Tensor valid(int64_t n, int64_t count = -1, const std::vector<int64_t>& rows = {}) const;

  // Reserves slots for T new tokens in each of the forward's valid.size(0) rows (valid [count, T] bool, padding
  // last in each row); returns their slot indices [count, T] and advances each row by its count of valid tokens.
  // Throws ResourceError when a row would exceed the capacity (padding included), Error when `rows` is not
  // valid.size(0) distinct rows of this cache.
  torch::Tensor append(const torch::Tensor& valid, const std::vector<int64_t>& rows = {});
  // Forgets everything in row b (its slots become free).
  void reset_row(int64_t b);
  // Forgets row b's slots from `length` on (e.g. the slot a failed forward reserved), keeping [0, length).
  void truncate_row(int64_t b, int64_t length);
  // Makes row `dst` a copy of row `src` of `from` (its length, valid slots, keys and values of every layer),
  // e.g. a prompt prefilled in a side cache moving into a pool row. `from` must have this cache's layers,
  // heads, head dim, dtype and device. Throws Error when the row does not fit this cache's capacity.
  void copy_row(int64_t dst, const KvCache& from, int64_t src);
  // Keys and values of slots [begin, begin + n) of row b, every layer, as one new tensor
  // [L, 2, n_kv, n, hd] (index 0 of dim 1: k, 1: v), e.g. to keep a prompt's blocks for reuse (serve's prefix
  // cache). Throws Error when the slots are not all inside the row's length.
  torch::Tensor row_slots(int64_t b, int64_t begin, int64_t n) const;
  // Appends kv [L, 2, n_kv, n, hd] (row_slots' layout, this cache's dtype) to row b at its length: the n slots
  // become valid and the row n longer. Throws ResourceError past the capacity, Error on a shape mismatch.
  void row_append(int64_t b, const torch::Tensor& kv);

 private:
  // write() as plain copies where it can (CPU, k/v in the cache's dtype, unit stride in hd, no autograd); false
  // when it cannot, having written nothing.
  bool write_rows(int64_t layer, const torch::Tensor& slots, const torch::Tensor& k, const torch::Tensor& v,
                  const std::vector<int64_t>& rows);

  int64_t batch_, capacity_;
  std::vector<torch::Tensor> k_, v_;
  torch::Tensor valid_;  // [B, capacity] bool
  std::vector<int64_t> lengths_;
};

}  // namespace hearth::model
