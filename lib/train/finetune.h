// `hearth finetune-lora`: LoRA fine-tuning from a recipe, resumable exactly, safe to run from cron.
//
// finetune_plan() validates everything a run needs (recipe, model, datasets, tokenizer match, adapter)
// without heavy work; finetune_run() trains. The loop itself reads top to bottom in finetune.cpp. Under torchrun's
// environment (WORLD_SIZE, RANK, ...) it is one worker of a data-parallel run (data_parallel.h, docs/distributed.md).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "recipe/lora_recipe.h"

namespace hearth::train {

struct FinetuneOptions {
  bool fresh = false;  // ignore existing checkpoints and start over
  bool force = false;  // resume even though the recipe changed in a way that alters training
  std::string device;  // overrides training.device when set (global --device)
  int threads = 0;     // overrides training.threads when > 0 (global --threads)
  // Data-parallel runs: how long a collective waits for the other workers before the run stops (--dist-timeout).
  double dist_timeout_seconds = 300;
  // Workers the plan counts in the global batch; 0: WORLD_SIZE from the environment, else 1 (--nproc-per-node
  // sets it for --dry-run).
  int world_size = 0;
};

// What a run would do: the resolved recipe, sizes and a memory estimate.
struct FinetunePlan {
  nlohmann::json recipe;
  int64_t trainable_parameters = 0;
  int64_t base_parameters = 0;
  int64_t epoch_sequences = 0;  // training sequences per epoch (after dataset weights)
  int64_t validation_sequences = 0;
  int64_t seq_len = 0;
  int64_t world_size = 1;  // data-parallel workers
  int64_t global_batch =
      0;  // sequences per optimizer step: micro_batch_size × gradient_accumulation_steps × world_size
  int64_t total_steps = 0;
  int64_t warmup_steps = 0;
  nlohmann::json memory;  // estimated bytes: weights, lora+optimizer, activations, total
  // What the plan says about the data, for the user before training: a dataset smaller than one micro-batch, an
  // epoch of fewer than kFewStepsPerEpoch optimizer steps (plan_warnings()).
  std::vector<std::string> warnings;
  nlohmann::json to_json() const;
};

inline constexpr int64_t kFewStepsPerEpoch = 10;

// The plan's warnings (see FinetunePlan::warnings) for `recipe`.
std::vector<std::string> plan_warnings(const FinetunePlan& plan, const recipe::LoraRecipe& recipe);

// One evaluation during training: the mean train loss of the steps since the previous one, and the eval loss.
struct EvalPoint {
  int64_t step = 0;
  double train_loss = 0, eval_loss = 0;
};

// When the last three evaluations show eval loss rising twice while train loss fell twice (the adapter learns the
// training data by heart), the warning to give; std::nullopt otherwise.
std::optional<std::string> overfitting_warning(const std::vector<EvalPoint>& evals);

// Throws ConfigError (recipe values, dataset/tokenizer mismatch, seq_len too long), IoError (missing
// paths), FormatError (malformed model/dataset/adapter files), each naming the file or key.
FinetunePlan finetune_plan(const recipe::LoraRecipe& recipe, const FinetuneOptions& options = {});

struct FinetuneResult {
  int64_t steps = 0;          // the run's steps, over all invocations
  int64_t steps_trained = 0;  // steps this invocation trained
  bool published = false;     // this invocation published an adapter version (only when it trained a step)
  double train_loss = 0;      // mean loss of the last logged step
  double eval_loss = -1;      // last eval loss (-1: no validation data)
  std::string stop_reason;    // max_steps | max_time | early_stopping | complete (nothing left to train)
  std::string adapter_dir;    // the published version (RUN_DIR/adapters/vNNNN); unpublished: the latest, or ""
  bool resumed = false;
  double seconds = 0;
  double tokens_per_second = 0;
  std::vector<std::string> warnings;  // the plan's, and overfitting seen in this invocation
  int world_size = 1;                 // data-parallel workers (this result is rank `rank`'s)
  int rank = 0;
  double all_reduce_seconds = 0;  // this invocation's time summing gradients over the workers
  nlohmann::json to_json() const;
};

// Trains (resuming from RUN_DIR's newest checkpoint unless options.fresh). Each invocation that gets to train
// ends by writing RUN_DIR/run.json {"plan", "result", "datasets"} atomically (the report reads it). On SIGINT/SIGTERM
// it finishes the current step, checkpoints and throws InterruptedError. Throws ResourceError if another process holds
// the run directory, ConfigError if a resume would change training (unless options.force). As a data-parallel
// worker, only rank 0 locks and writes the run directory, and a failed or silent peer throws DistributedError.
FinetuneResult finetune_run(const recipe::LoraRecipe& recipe, const FinetuneOptions& options = {});

}  // namespace hearth::train
