// A training run's directory: the lock, checkpoints (complete or absent), published adapter versions.
//
//   RUN_DIR/.lock                    flock held while a run is active (released by the kernel if it dies)
//   RUN_DIR/recipe.resolved.json     the resolved recipe
//   RUN_DIR/metrics.jsonl            one JSON object per logged step / eval
//   RUN_DIR/checkpoints/step-NNNNNNNN/{adapter_model.safetensors, adapter_config.json, optimizer.safetensors,
//                                      state.json (with the other files' SHA-256)}
//   RUN_DIR/checkpoints/corrupt-step-N/  a checkpoint that failed to load or verify, set aside on resume
//   RUN_DIR/adapters/vNNNN/          published PEFT adapters (+ hearth_base.json: the base they were trained on);
//                                    RUN_DIR/adapters/latest -> vNNNN (symlink)
//   RUN_DIR/base.json                the base model's hash, cached (base_record)
// A checkpoint is written into a temporary folder and renamed into place, so it is complete or absent.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "model/lora.h"
#include "train/adamw.h"
#include "train/data_loader.h"

namespace hearth::train {

// Everything besides weights that a resumed run needs to continue exactly.
struct TrainState {
  int64_t step = 0;  // optimizer steps done
  LoaderPosition loader;
  double best_eval = 0;  // best eval loss so far (valid when evals > 0)
  int64_t evals = 0;
  int64_t evals_without_improvement = 0;
  int64_t tokens_seen = 0;
  double elapsed_seconds = 0;
  torch::Tensor rng_state;         // CPU generator state
  torch::Tensor device_rng_state;  // the training device's generator state when it is not the CPU (CUDA
                                   // dropout draws from it); undefined on CPU
  nlohmann::json identity;         // recipe.training_identity()
  int64_t world_size = 1;          // data-parallel workers that trained the last step (data_parallel.h)
};

// A TrainState's counters (all but the generator states and the identity), with the optimizer's step count, as
// a checkpoint's state.json and the data-parallel resume carry them; and back. Reading throws
// nlohmann::json::exception for a missing or mistyped key; world_size is 1 when absent (checkpoints written before
// data-parallel runs).
nlohmann::json train_state_counters(const TrainState& s, int64_t optimizer_steps);
void train_state_counters_read(const nlohmann::json& j, TrainState& s);

// The keys whose values differ between two recipe identities (TrainState::identity), as "key: old -> new" with
// dotted paths, joined by ", "; "no key differs" when none does.
std::string identity_changes(const nlohmann::json& was, const nlohmann::json& now);

// Exclusive lock on a run directory. Throws ResourceError naming the holder's PID if another live process
// holds it; a lock left by a dead process is taken over silently.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// Writes checkpoint `state.step`, then removes all but the newest `keep_last` (and stale temporaries).
void checkpoint_save(const std::filesystem::path& run_dir, const TrainState& state, const model::LoraAdapter& adapter,
                     const AdamW& optimizer, int64_t keep_last);
// Resumes from the newest checkpoint that loads and matches its checksums (checkpoint_load), into `state`,
// `adapter` and `optimizer`; returns its folder, or std::nullopt when there is none. A damaged checkpoint is
// renamed corrupt-step-N (kept for inspection) with a warning naming it, and the one before is tried; FormatError
// listing them when none is valid.
std::optional<std::filesystem::path> checkpoint_resume(const std::filesystem::path& run_dir,
                                                       model::LoraAdapter& adapter, AdamW& optimizer,
                                                       TrainState& state);
// Reads a checkpoint into the state, adapter weights (in place) and optimizer. Throws FormatError naming
// the file when anything is missing or inconsistent.
TrainState checkpoint_load(const std::filesystem::path& dir, model::LoraAdapter& adapter, AdamW& optimizer);

// The base model a run trains on, as its adapters record it: {"path", "kind" ("hf" | "gguf"), "sha256"
// (model::model_sha256)}. The hash reads the whole model once; it is cached in RUN_DIR/base.json, keyed by the
// path and the weight files' names, sizes and modification times, and recomputed when any of them changes.
nlohmann::json base_record(const std::filesystem::path& run_dir, const std::filesystem::path& model);

// Publishes the adapter as the next version under RUN_DIR/adapters and points `latest` at it (atomic
// symlink swap). `base` (a base_record), when given, is written beside it as hearth_base.json, so that
// `hearth export` can refuse a different base. Returns the version folder.
std::filesystem::path adapter_publish(const std::filesystem::path& run_dir, const model::LoraAdapter& adapter,
                                      const nlohmann::json& base = nullptr);

// Keeps only the metrics.jsonl lines with step <= `step` (after resuming from a checkpoint).
void metrics_truncate(const std::filesystem::path& run_dir, int64_t step);
// Appends one JSON line to RUN_DIR/metrics.jsonl.
void metrics_append(const std::filesystem::path& run_dir, const nlohmann::json& line);

}  // namespace hearth::train
