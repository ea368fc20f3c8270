// Data-parallel training as the finetune loop sees it: which part of each global batch a rank trains on, the
// gradient sum over the ranks, the decisions all ranks must take together (stop on a signal, on the time budget),
// and the start from rank 0's state. The collectives themselves are in distributed.h.
//
// A step takes a global batch of micro_batch_size × gradient_accumulation_steps × world_size sequences from the
// one global data order (data_loader.h). Its micro-batches are numbered 0 … accumulation × world_size − 1 and rank
// r trains on numbers r·accumulation … (r+1)·accumulation − 1. Dropout in micro-batch j of step s draws from a
// generator seeded from (seed, s, j) alone (dropout_seed), so every rank's random stream is fixed by
// construction, and N workers compute what one process with accumulation × N micro-batches computes, up to the
// order of floating-point sums. The data position is global, so a run may resume with another world size.
//
// With no process group (one process) every member is the single-process identity: the loop reads the same.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "model/lora.h"
#include "train/adamw.h"
#include "train/data_loader.h"
#include "train/distributed.h"
#include "train/run_dir.h"

namespace hearth::train {

// The seed of the dropout generator for global micro-batch `micro_index` of optimizer step `step`.
uint64_t dropout_seed(uint64_t seed, int64_t step, int64_t micro_index);

class DataParallel {
 public:
  DataParallel() = default;  // one process
  explicit DataParallel(std::unique_ptr<ProcessGroup> group);

  int rank() const { return group_ ? group_->rank() : 0; }
  int world_size() const { return group_ ? group_->world_size() : 1; }
  // Rank 0 alone writes metrics, checkpoints, published adapters and run.json, and holds the run lock.
  bool leader() const { return rank() == 0; }
  // "gloo" | "nccl" | "" (one process).
  std::string backend() const { return group_ ? group_->backend() : ""; }

  // This rank's micro-batches of the next global batch (`accumulation` of `micro` sequences each); the loader
  // moves past the whole global batch. The first one's global number is first_micro_index(accumulation).
  std::vector<Batch> batches_next(DataLoader& loader, int64_t micro, int64_t accumulation) const;
  int64_t first_micro_index(int64_t accumulation) const { return rank() * accumulation; }

  // Each value summed over the ranks, on every rank.
  void sum(std::vector<double>& values);
  // True on every rank when it is true on any.
  bool any(bool local);
  // Gradient accumulation. gradients_add moves the params' current gradients (one micro-batch's) into a flat
  // float64 sum (grads_flat's layout) and clears them; gradients_sum sums that over the ranks and returns it as
  // float32 (zeros where this rank added nothing), then starts a new sum. Summing in float64 makes the step's
  // gradient independent of how its micro-batches are split among the workers (up to float64 rounding): float32
  // sums in another order differ in the last bits, which Adam magnifies for elements whose gradient is near zero.
  void gradients_add(const std::vector<torch::Tensor>& params);
  torch::Tensor gradients_sum(const std::vector<torch::Tensor>& params);

  // Rank 0's training state on every rank, so that all start from one checkpoint even when only rank 0 can read
  // the run directory: the adapter's weights, the optimizer's moments and step count, `state` (all but the
  // generator states, which dropout_seed makes unnecessary) and `resumed`. Throws ConfigError on a rank whose
  // recipe differs from rank 0's in a way that changes training (`state.identity`), naming the keys.
  void state_from_leader(model::LoraAdapter& adapter, AdamW& optimizer, TrainState& state, bool& resumed);

  // Seconds spent summing gradients so far (0 with one process).
  double all_reduce_seconds() const { return group_ ? group_->all_reduce_seconds() : 0; }

 private:
  std::unique_ptr<ProcessGroup> group_;
  torch::Tensor grad_sum_;  // [Σ numel] float64, or undefined when nothing was added
};

}  // namespace hearth::train
