// hearth finetune-lora RECIPE.yaml [key=value ...] [--dry-run] [--fresh] [--force] [--nproc-per-node N]
//                     [--dist-timeout SECONDS]
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "apps/commands.h"
#include "core/log.h"
#include "recipe/lora_recipe.h"
#include "train/finetune.h"
#include "train/launch.h"

namespace hearth::app {
namespace {

struct FinetuneCliOptions {
  std::string recipe;
  std::vector<std::string> overrides;
  bool dry_run = false;
  bool fresh = false;
  bool force = false;
  int nproc_per_node = 1;
  double dist_timeout = 300;
};

// --nproc-per-node N > 1: this process becomes the launcher of N workers, each this same command line without
// the flag (train/launch.h).
void launch(const FinetuneCliOptions& o, const GlobalOptions& g, const CLI::App& root) {
  if (std::getenv("WORLD_SIZE"))
    throw ConfigError(
        "--nproc-per-node: this process is already a worker of a distributed run (WORLD_SIZE is set, e.g. by "
        "torchrun); leave --nproc-per-node out");
  train::LaunchOptions lo;
  lo.nproc = o.nproc_per_node;
  lo.args = train::arguments_without(train::self_arguments(), "--nproc-per-node");
  lo.timeout = std::chrono::milliseconds(std::llround(o.dist_timeout * 1000));
  if (root.get_option("--threads")->count() > 0) {
    lo.threads = g.threads;  // per worker; already in the arguments
  } else {
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    lo.threads = std::max(1, static_cast<int>(hw) / o.nproc_per_node);
    lo.args.insert(lo.args.begin(), {"--threads", std::to_string(lo.threads)});
  }
  train::workers_run(lo);
}

void run_finetune(const FinetuneCliOptions& o, const GlobalOptions& g, const CLI::App& root) {
  auto recipe = recipe::recipe_load(o.recipe, o.overrides);
  train::FinetuneOptions fo;
  fo.fresh = o.fresh;
  fo.force = o.force;
  if (root.get_option("--device")->count() > 0) fo.device = g.device;
  if (root.get_option("--threads")->count() > 0) fo.threads = g.threads;
  fo.dist_timeout_seconds = o.dist_timeout;
  if (o.nproc_per_node > 1) fo.world_size = o.nproc_per_node;
  if (o.nproc_per_node > 1 && !o.dry_run) {
    train::finetune_plan(recipe, fo);  // a bad recipe is reported once, before any worker starts
    launch(o, g, root);
    return;
  }
  if (o.dry_run) {
    auto plan = train::finetune_plan(recipe, fo);
    if (g.json) {
      json_print(plan.to_json());
      return;
    }
    std::cout << plan.recipe.dump(2) << "\n";
    std::cout << fmt::format("trainable parameters  {} ({:.3f}% of {})\n", plan.trainable_parameters,
                             100.0 * plan.trainable_parameters / std::max<int64_t>(1, plan.base_parameters),
                             plan.base_parameters);
    std::cout << fmt::format("data                  {} training / {} validation sequences of {} tokens\n",
                             plan.epoch_sequences, plan.validation_sequences, plan.seq_len);
    std::cout << fmt::format("steps                 {} ({} warmup), {} sequences each{}\n", plan.total_steps,
                             plan.warmup_steps, plan.global_batch,
                             plan.world_size > 1 ? fmt::format(" over {} workers", plan.world_size) : "");
    std::cout << fmt::format(
        "memory (estimate)     {:.1f} MiB: weights {:.1f}, LoRA+optimizer {:.1f}, activations {:.1f}\n",
        plan.memory["total"].get<double>() / 1048576, plan.memory["weights"].get<double>() / 1048576,
        plan.memory["lora_and_optimizer"].get<double>() / 1048576, plan.memory["activations"].get<double>() / 1048576);
    return;
  }
  auto result = train::finetune_run(recipe, fo);
  if (result.rank != 0) return;  // rank 0 speaks for a data-parallel run
  if (g.json) {
    json_print(result.to_json());
    return;
  }
  std::cout << fmt::format("{} steps ({}), train loss {:.4f}", result.steps, result.stop_reason, result.train_loss);
  if (result.eval_loss >= 0) std::cout << fmt::format(", eval loss {:.4f}", result.eval_loss);
  std::cout << fmt::format(", {:.0f} tokens/s\n", result.tokens_per_second);
  if (result.published) std::cout << fmt::format("adapter: {}\n", result.adapter_dir);
  else
    std::cout << fmt::format("no step trained in this run; nothing published{}\n",
                             result.adapter_dir.empty() ? "" : " (latest adapter: " + result.adapter_dir + ")");
}

}  // namespace

void add_finetune_lora(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<FinetuneCliOptions>();
  auto* cmd = app.add_subcommand("finetune-lora", "LoRA fine-tuning from a YAML recipe (resumes automatically)");
  cmd->add_option("recipe", o->recipe, "Recipe file (see recipes/ and docs/recipes.md)")->required();
  cmd->add_option("overrides", o->overrides, "Recipe overrides: key.path=value (e.g. training.max_steps=20)");
  cmd->add_flag("--dry-run", o->dry_run, "Validate and print the resolved recipe, parameter count and memory estimate");
  cmd->add_flag("--fresh", o->fresh, "Start over, ignoring checkpoints in the run directory");
  cmd->add_flag("--force", o->force, "Resume even though the recipe changed in a way that alters training");
  cmd->add_option("--nproc-per-node", o->nproc_per_node,
                  "Data-parallel training: start N local workers (each gets a share of every global batch; "
                  "docs/distributed.md)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--dist-timeout", o->dist_timeout,
                  "Data-parallel training: seconds a worker waits for the others before the run stops (exit 6)")
      ->check(CLI::PositiveNumber);
  const CLI::App* root = &app;
  cmd->callback([o, &g, &run, root] { run = [o, &g, root] { run_finetune(*o, g, *root); }; });
}

}  // namespace hearth::app
