// The finetune-lora recipe: YAML -> a typed, validated struct. Every key is documented in docs/recipes.md
// and commented in recipes/*.yaml.
//
// Unknown keys are errors that list the valid ones; every value is checked and errors carry the YAML file
// and line. Overrides "a.b=value" (from the command line) are applied to the YAML before validation, so
// they are checked the same way. Defaults live here and only here.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::recipe {

struct DatasetSource {
  std::string path;
  double weight = 1.0;  // relative share of each epoch (repeats or subsamples the dataset)
};

struct LoraRecipe {
  // Paths are resolved relative to the recipe file's folder.
  std::string model;
  std::vector<DatasetSource> datasets;
  std::string output_dir;
  std::string init_adapter;  // continue from this PEFT adapter folder ("" = fresh)
  // QLoRA: quantize a Hugging Face base at load to q8_0 | q4_0 | q4_k blocks ("" = keep its weights). A .gguf
  // `model` is trained through its blocks as they are.
  std::string quantize_base;

  struct Lora {
    int64_t rank = 8;
    double alpha = 16;
    double dropout = 0.05;
    std::vector<std::string> target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"};
    bool use_rslora = false;
  } lora;

  struct Optimizer {
    double lr = 2e-4;
    double beta1 = 0.9, beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;
  } optimizer;

  struct Schedule {
    std::string type = "cosine";  // constant | linear | cosine
    int64_t warmup_steps = -1;    // -1: use warmup_ratio
    double warmup_ratio = 0.0;
    double min_lr_ratio = 0.0;  // final lr = lr · min_lr_ratio (linear, cosine)
  } schedule;

  struct Training {
    int64_t micro_batch_size = 4;
    int64_t gradient_accumulation_steps = 1;
    int64_t seq_len = 0;            // 0: the dataset's
    int64_t max_steps = 0;          // 0: from epochs
    double epochs = 1.0;            // used when max_steps is 0
    double max_time = 0;            // seconds; 0 = no limit ("90m", "2h" accepted in YAML)
    double grad_clip = 1.0;         // 0 = off
    std::string dtype = "float32";  // float32 | bfloat16 (LoRA weights and optimizer state stay float32)
    bool gradient_checkpointing = false;
    uint64_t seed = 42;
    std::string device = "cpu";
    int64_t threads = 0;  // 0: all cores (the global --threads wins when given)
    int64_t log_every = 1;
  } training;

  struct Eval {
    int64_t every = 0;        // steps; 0 = only at the end
    int64_t max_batches = 0;  // 0 = the whole validation split
    int64_t patience = 0;     // early stopping after this many evals without improvement; 0 = off
  } eval;

  struct Checkpoint {
    int64_t every = 50;  // steps
    int64_t keep_last = 2;
  } checkpoint;

  // The resolved recipe as JSON (saved in the run directory as recipe.resolved.json).
  nlohmann::json to_json() const;
  // The subset of keys that changes the result of training (compared on resume).
  nlohmann::json training_identity() const;
};

// Loads FILE, applies `overrides` ("key.path=value", YAML-typed values), validates. Throws ConfigError
// "<file>:<line>: <key>: <what>; expected <x>, got <y>" for any problem, IoError if FILE is unreadable.
LoraRecipe recipe_load(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});
// Same from YAML text; `origin` names it in errors and `base_dir` resolves relative paths.
LoraRecipe recipe_parse(const std::string& yaml, const std::string& origin, const std::filesystem::path& base_dir,
                        const std::vector<std::string>& overrides = {});

// "90", "90s", "15m", "2h", "1h30m" -> seconds. Throws ConfigError naming `key`.
double duration_parse(const std::string& text, const std::string& key);

}  // namespace hearth::recipe
