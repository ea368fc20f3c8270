// The LoRA training loop. Read top to bottom: workers → plan → lock → model, adapter, optimizer, data → resume →
// steps (micro-batches, loss over target tokens, gradients summed over the workers, clip, AdamW, schedule) →
// eval / early stopping → checkpoints → publish. One process is a data-parallel run of one worker: `dp`
// (data_parallel.h) is then the identity, and only rank 0 ("the leader") writes the run directory.
#include "train/finetune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/signals.h"
#include "data/dataset.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"
#include "io/remove_tree.h"
#include "model/attention.h"
#include "model/causal_lm.h"
#include "model/config.h"
#include "model/head_loss.h"
#include "train/adamw.h"
#include "train/base_model.h"
#include "train/cpu_block_cache.h"
#include "train/data_loader.h"
#include "train/data_parallel.h"
#include "train/distributed.h"
#include "train/run_dir.h"
#include "train/schedule.h"

namespace hearth::train {
namespace fs = std::filesystem;
using recipe::LoraRecipe;

namespace {

model::LoraConfig lora_config(const LoraRecipe& r) {
  model::LoraConfig c;
  c.r = r.lora.rank;
  c.alpha = r.lora.alpha;
  c.dropout = r.lora.dropout;
  c.use_rslora = r.lora.use_rslora;
  c.targets.clear();
  for (const auto& name : r.lora.target_modules) c.targets.push_back(*model::lora_target_parse(name));
  c.base_model = r.model;
  return c;
}

std::vector<data::Dataset> datasets_open(const LoraRecipe& r) {
  std::vector<data::Dataset> out;
  for (const auto& d : r.datasets) {
    out.push_back(data::Dataset::open(d.path));
    base_tokenizer_check(r, out.back(), d.path);
  }
  return out;
}

// Summed cross-entropy of one micro-batch's target tokens, divided by `normalizer` (the step's target count). The
// model computes it at the head a chunk of rows at a time, without holding the [B, T, V] logits.
torch::Tensor batch_loss(const model::CausalLM& m, const Batch& b, const model::ForwardOptions& o, double normalizer) {
  model::ForwardOptions with_targets = o;
  with_targets.targets = b.targets;
  return m.forward(b.tokens, b.positions, b.valid, nullptr, with_targets) / normalizer;
}

// Mean loss over the validation batches' target tokens; each worker scores every world_size-th batch.
double evaluate(const model::CausalLM& m, const model::LoraAdapter& adapter, const std::vector<Batch>& batches,
                DataParallel& dp) {
  if (batches.empty()) return -1;
  torch::NoGradGuard no_grad;
  model::ForwardOptions o;
  o.adapters = {&adapter};
  std::vector<double> sum_n{0, 0};
  for (size_t i = static_cast<size_t>(dp.rank()); i < batches.size(); i += static_cast<size_t>(dp.world_size())) {
    const auto& b = batches[i];
    if (b.n_targets == 0) continue;
    sum_n[0] += batch_loss(m, b, o, 1.0).item<double>();
    sum_n[1] += double(b.n_targets);
  }
  dp.sum(sum_n);
  return sum_n[1] > 0 ? sum_n[0] / sum_n[1] : -1;
}

int64_t steps_total(const LoraRecipe& r, int64_t epoch_sequences, int64_t world_size) {
  if (r.training.max_steps > 0) return r.training.max_steps;
  const double per_step = double(r.training.micro_batch_size * r.training.gradient_accumulation_steps * world_size);
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(r.training.epochs * double(epoch_sequences) / per_step)));
}

// The training device; a data-parallel worker's "cuda" is its LOCAL_RANK's device.
torch::Device device_of(const LoraRecipe& r, const FinetuneOptions& o, int local_rank = 0) {
  auto d = model::device_parse(o.device.empty() ? r.training.device : o.device, "training.device");
  if (d.is_cuda() && !d.has_index() && local_rank > 0) d = torch::Device(torch::kCUDA, local_rank);
  return d;
}

int world_size_of(const FinetuneOptions& o) {
  if (o.world_size > 0) return o.world_size;
  auto env = dist_env_from_environment();
  return env ? env->world_size : 1;
}

}  // namespace

nlohmann::json FinetunePlan::to_json() const {
  return {{"recipe", recipe},
          {"trainable_parameters", trainable_parameters},
          {"base_parameters", base_parameters},
          {"epoch_sequences", epoch_sequences},
          {"validation_sequences", validation_sequences},
          {"seq_len", seq_len},
          {"world_size", world_size},
          {"global_batch", global_batch},
          {"total_steps", total_steps},
          {"warmup_steps", warmup_steps},
          {"memory_estimate_bytes", memory},
          {"warnings", warnings}};
}

std::vector<std::string> plan_warnings(const FinetunePlan& plan, const LoraRecipe& r) {
  std::vector<std::string> out;
  const int64_t per_step = r.training.micro_batch_size * r.training.gradient_accumulation_steps *
                           std::max<int64_t>(1, plan.world_size);
  if (plan.epoch_sequences < r.training.micro_batch_size) {
    out.push_back(
        fmt::format("the training data holds {} sequences of {} tokens, fewer than one micro-batch ({}): "
                    "every step repeats the same examples; add data or lower training.micro_batch_size",
                    plan.epoch_sequences, plan.seq_len, r.training.micro_batch_size));
  }
  const int64_t epoch_steps = std::max<int64_t>(1, plan.epoch_sequences / per_step);
  if (epoch_steps < kFewStepsPerEpoch) {
    out.push_back(
        fmt::format("one epoch is {} optimizer step{} ({} sequences, {} per step), fewer than {}: a "
                    "multi-epoch run sees each example many times and overfits easily; keep eval.patience "
                    "on, or add data",
                    epoch_steps, epoch_steps == 1 ? "" : "s", plan.epoch_sequences, per_step, kFewStepsPerEpoch));
  }
  return out;
}

std::optional<std::string> overfitting_warning(const std::vector<EvalPoint>& e) {
  if (e.size() < 3) return std::nullopt;
  const EvalPoint &a = e[e.size() - 3], &b = e[e.size() - 2], &c = e.back();
  if (!(a.eval_loss < b.eval_loss && b.eval_loss < c.eval_loss && a.train_loss > b.train_loss &&
        b.train_loss > c.train_loss))
    return std::nullopt;
  return fmt::format(
      "overfitting: from step {} to {} the eval loss rose ({:.4f} -> {:.4f}) while the train loss fell "
      "({:.4f} -> {:.4f}); the adapter is learning its training data by heart (eval.patience stops such "
      "a run; more data or fewer epochs help)",
      a.step, c.step, a.eval_loss, c.eval_loss, a.train_loss, c.train_loss);
}

nlohmann::json FinetuneResult::to_json() const {
  return {{"steps", steps},
          {"steps_trained", steps_trained},
          {"published", published},
          {"train_loss", train_loss},
          {"eval_loss", eval_loss},
          {"stop_reason", stop_reason},
          {"adapter_dir", adapter_dir},
          {"resumed", resumed},
          {"seconds", seconds},
          {"tokens_per_second", tokens_per_second},
          {"warnings", warnings},
          {"world_size", world_size},
          {"all_reduce_seconds", all_reduce_seconds}};
}

namespace {

// What planning and training both read: the model's config and the datasets, checked against its tokenizer.
struct RunInputs {
  model::ModelConfig config;
  std::vector<data::Dataset> datasets;
};

RunInputs inputs_open(const LoraRecipe& r) {
  if (fs::exists(r.output_dir) && !fs::is_directory(r.output_dir))
    throw ConfigError(
        fmt::format("output_dir: '{}' exists and is not a folder; expected a run directory (created "
                    "when missing)",
                    r.output_dir));
  RunInputs in;
  in.config = base_config(r);  // a folder or a .gguf
  in.datasets = datasets_open(r);
  return in;
}

FinetunePlan plan_make(const LoraRecipe& r, const FinetuneOptions& o, const RunInputs& in) {
  const auto& config = in.config;
  const auto& datasets = in.datasets;
  FinetunePlan p;
  p.recipe = r.to_json();
  p.seq_len = r.training.seq_len;
  for (size_t i = 0; i < datasets.size(); ++i) {
    const auto& d = datasets[i];
    if (r.training.seq_len > d.seq_len())
      throw ConfigError(fmt::format("training.seq_len: {} is longer than the dataset {} ({} tokens per sequence)",
                                    r.training.seq_len, r.datasets[i].path, d.seq_len()));
    p.seq_len = std::max(p.seq_len, r.training.seq_len > 0 ? r.training.seq_len : d.seq_len());
    p.epoch_sequences += std::max<int64_t>(d.size(data::Split::kTrain) ? 1 : 0,
                                           std::llround(double(d.size(data::Split::kTrain)) * r.datasets[i].weight));
    p.validation_sequences += static_cast<int64_t>(d.size(data::Split::kValidation));
  }
  if (p.epoch_sequences == 0) throw ConfigError("datasets: no training sequences");
  if (p.seq_len > config.max_position_embeddings)
    throw ConfigError(fmt::format("training.seq_len: {} exceeds the model's context of {}", p.seq_len,
                                  config.max_position_embeddings));
  auto lc = lora_config(r);
  if (!r.init_adapter.empty()) model::LoraAdapter::load(r.init_adapter, config);  // validates it
  for (auto t : lc.targets) {
    auto [n_out, n_in] = model::lora_target_shape(config, t);
    p.trainable_parameters += config.num_hidden_layers * lc.r * (n_out + n_in);
  }
  p.base_parameters = config.parameter_count();
  p.world_size = world_size_of(o);
  p.global_batch = r.training.micro_batch_size * r.training.gradient_accumulation_steps * p.world_size;
  p.total_steps = steps_total(r, p.epoch_sequences, p.world_size);
  p.warmup_steps = r.schedule.warmup_steps >= 0 ? r.schedule.warmup_steps
                                                : std::llround(r.schedule.warmup_ratio * double(p.total_steps));
  const torch::Device device = device_of(r, o);  // fails early when CUDA is asked for but missing
  // Memory: base weights in the compute dtype (quantized matrices at their block size); LoRA weight+grad+2 moments in
  // float32; activations kept for backward per layer (~12 hidden-sized + 3 FFN-sized tensors per token), one chunk of
  // attention scores and at the head one chunk of float32 logits (twice: the product's pieces and their
  // concatenation) plus the dL/dx the loss keeps (model/head_loss.h).
  const double wbytes = r.training.dtype == "bfloat16" ? 2 : 4;
  const double tokens = double(r.training.micro_batch_size) * double(p.seq_len);
  double per_layer = tokens * (12.0 * config.hidden_size + 3.0 * config.intermediate_size) * wbytes;
  // Attention keeps no probabilities for backward (model/attention.h): one chunk of float32 scores (≤
  // kAttentionChunkBytes, or one batch row's) lives at a time, a few times over (scores, probabilities, their gradient).
  const double scores = double(config.num_attention_heads) * double(p.seq_len) * double(p.seq_len) * 4;
  const double attention = 3 * std::min(double(r.training.micro_batch_size) * scores,
                                        std::max(scores, double(model::kAttentionChunkBytes)));
  double layers = r.training.gradient_checkpointing
                      ? tokens * config.hidden_size * wbytes * config.num_hidden_layers + per_layer
                      : per_layer * config.num_hidden_layers;
  const double chunk = std::min(tokens * double(config.vocab_size) * 4.0,
                                std::max(double(config.vocab_size) * 4.0, double(model::kHeadLossChunkBytes)));
  const double transient = 2 * chunk + tokens * config.hidden_size * wbytes + attention;
  double weights = base_weight_bytes(r, config, wbytes, device), lora = double(p.trainable_parameters) * 16;
  // A quantized base decodes one chunk of one matrix at a time (≤ 64 MiB of float32; on a GPU ~4× that in the
  // decoder's temporaries).
  const double decode = base_block_decode_bytes(r, config, device);
  p.memory = {{"weights", weights},
              {"lora_and_optimizer", lora},
              {"activations", layers + transient},
              {"block_decode", decode},
              {"total", weights + lora + layers + transient + decode}};
  p.warnings = plan_warnings(p, r);
  return p;
}

}  // namespace

FinetunePlan finetune_plan(const LoraRecipe& r, const FinetuneOptions& o) { return plan_make(r, o, inputs_open(r)); }

namespace {
// RUN_DIR/run.json: what the last invocation planned and did, and on which data (the report shows it).
void run_record_write(const fs::path& run_dir, const LoraRecipe& r, const FinetunePlan& plan,
                      const FinetuneResult& result) {
  nlohmann::json datasets = nlohmann::json::array();
  for (const auto& d : r.datasets) datasets.push_back({{"path", d.path}, {"weight", d.weight}});
  nlohmann::json plan_json = plan.to_json();
  plan_json.erase("recipe");  // recipe.resolved.json has it
  io::atomic_write(
      run_dir / "run.json",
      nlohmann::json{{"plan", plan_json}, {"result", result.to_json()}, {"datasets", datasets}}.dump(2) + "\n");
}
}  // namespace

namespace {
// Seeds the generators dropout draws from (the CPU's, and the device's when training elsewhere).
void generators_seed(at::Generator& gen, std::optional<at::Generator>& device_gen, uint64_t seed) {
  gen.set_current_seed(seed);
  if (device_gen) device_gen->set_current_seed(seed);
}

// A data-parallel worker's process group, from torchrun's environment; none for a single process.
DataParallel workers_join(const FinetuneOptions& o, torch::Device device) {
  auto env = dist_env_from_environment();
  if (!env) return DataParallel();
  if (o.dist_timeout_seconds <= 0)
    throw ConfigError(
        fmt::format("--dist-timeout: expected a positive number of seconds, got {}", o.dist_timeout_seconds));
  const std::chrono::milliseconds timeout(std::llround(o.dist_timeout_seconds * 1000));
  DataParallel dp(std::make_unique<ProcessGroup>(*env, device, timeout));
  // One worker speaks for the run; the others report only their own errors.
  if (!dp.leader() && log::level() != log::Level::kDebug) log::set_level(log::Level::kError);
  log::info("finetune-lora: {} workers ({}), timeout {} s", dp.world_size(), dp.backend(), o.dist_timeout_seconds);
  return dp;
}
}  // namespace

FinetuneResult finetune_run(const LoraRecipe& r, const FinetuneOptions& o) {
  // --- workers, plan and lock ---
  const auto env = dist_env_from_environment();
  const auto device = device_of(r, o, env ? env->local_rank : 0);
  RunInputs inputs = inputs_open(r);
  FinetunePlan plan = plan_make(r, o, inputs);
  DataParallel dp = workers_join(o, device);
  const fs::path run_dir = r.output_dir;
  std::optional<RunLock> lock;
  nlohmann::json base;  // the base's hash goes with every published adapter (export refuses another base)
  if (dp.leader()) {
    lock.emplace(run_dir);
    if (o.fresh) {
      io::remove_tree(run_dir / "checkpoints");
      fs::remove(run_dir / "metrics.jsonl");
    }
    io::atomic_write(run_dir / "recipe.resolved.json", r.to_json().dump(2) + "\n");
    for (const auto& w : plan.warnings) log::warn("finetune-lora: {}", w);
    base = base_record(run_dir, r.model);  // cached in the run dir
  }
  if (o.threads > 0 || r.training.threads > 0) at::set_num_threads(o.threads > 0 ? o.threads : int(r.training.threads));

  // --- model, adapter, optimizer, data ---
  cpu_block_cache_install();  // large CPU tensors reuse mapped blocks: no heap holes, no page faults after step 1
  const auto dtype = model::dtype_parse(r.training.dtype, "training.dtype");
  auto model_owner = base_load(r, {device, dtype});  // QLoRA: a quantized base stays blocks
  const model::CausalLM& model = *model_owner;
  auto adapter = r.init_adapter.empty()
                     ? model::LoraAdapter::create(model.config(), lora_config(r), r.training.seed, device)
                     : model::LoraAdapter::load(r.init_adapter, model.config(), device);
  auto params = adapter.parameters();
  for (auto& p : params) p.set_requires_grad(true);
  AdamW optimizer(params, {r.optimizer.beta1, r.optimizer.beta2, r.optimizer.eps, r.optimizer.weight_decay});
  const auto& datasets = inputs.datasets;
  std::vector<const data::Dataset*> ds;
  std::vector<double> weights;
  for (size_t i = 0; i < datasets.size(); ++i) {
    ds.push_back(&datasets[i]);
    weights.push_back(r.datasets[i].weight);
  }
  DataLoader loader(ds, weights, r.training.seq_len, r.training.seed);
  auto validation = loader.validation(r.training.micro_batch_size, r.eval.max_batches);
  // An eval with nothing to score is no eval, never a score: a validation split whose sequences hold no target
  // tokens (e.g. chats truncated before their assistant turn) would otherwise "score" -1, look like the best loss
  // ever, and stop the run early.
  if (!validation.empty() &&
      std::all_of(validation.begin(), validation.end(), [](const Batch& b) { return b.n_targets == 0; })) {
    log::warn(
        "finetune: the validation split has no target tokens (its sequences are all prompt, e.g. chats cut off "
        "before their assistant turn by seq_len); evaluation and early stopping are off for this run");
    validation.clear();
  }

  // --- fresh start or exact resume ---
  // Random state that training draws from: the CPU generator, and the device's when training elsewhere (LoRA
  // dropout on CUDA draws from the CUDA generator). Each micro-batch reseeds them (dropout_seed), so what a step
  // draws depends on the step and the micro-batch alone; their states are still checkpointed.
  auto gen = at::detail::getDefaultCPUGenerator();
  std::optional<at::Generator> device_gen;
  if (!device.is_cpu()) device_gen = at::globalContext().defaultGenerator(device);
  TrainState state;
  state.identity = r.training_identity();
  FinetuneResult result;
  result.warnings = plan.warnings;
  result.world_size = dp.world_size();
  result.rank = dp.rank();
  std::vector<EvalPoint> evals;  // this invocation's, for the overfitting check
  double train_loss_sum = 0;
  int64_t train_loss_steps = 0;
  TrainState saved;
  if (!dp.leader()) {
    // rank 0 reads the checkpoint and sends it (state_from_leader)
  } else if (auto ckpt = checkpoint_resume(run_dir, adapter, optimizer, saved)) {
    if (saved.identity != state.identity && !o.force)
      throw ConfigError(
          fmt::format("{}: the recipe changed since this run started ({}; saved in {}); resuming would "
                      "change training. Use --fresh to start over or --force to resume anyway",
                      r.output_dir, identity_changes(saved.identity, state.identity), (*ckpt / "state.json").string()));
    saved.identity = state.identity;
    state = saved;
    gen.set_state(state.rng_state);
    if (device_gen && state.device_rng_state.defined()) device_gen->set_state(state.device_rng_state);
    else if (device_gen) device_gen->set_current_seed(r.training.seed);
    metrics_truncate(run_dir, state.step);
    result.resumed = true;
    log::info("resuming {} from step {}", r.output_dir, state.step);
  } else {
    generators_seed(gen, device_gen, r.training.seed);
  }
  dp.state_from_leader(adapter, optimizer, state, result.resumed);
  loader.seek(state.loader);
  if (result.resumed && state.world_size != dp.world_size())
    log::info(
        "finetune-lora: the run was trained by {} worker(s) and goes on with {}: the global batch is now {} "
        "sequences (it was {})",
        state.world_size, dp.world_size(), plan.global_batch, plan.global_batch / dp.world_size() * state.world_size);
  state.world_size = dp.world_size();
  const ScheduleSpec schedule{r.schedule.type, plan.warmup_steps, r.schedule.min_lr_ratio};
  model::ForwardOptions train_opts;
  train_opts.adapters = {&adapter};
  train_opts.training = true;
  train_opts.checkpoint_layers = r.training.gradient_checkpointing;

  auto checkpoint = [&] {
    state.loader = loader.position();
    state.rng_state = gen.get_state();
    if (device_gen) state.device_rng_state = device_gen->get_state();
    checkpoint_save(run_dir, state, adapter, optimizer, r.checkpoint.keep_last);
  };

  // --- the steps ---
  const auto t0 = std::chrono::steady_clock::now();
  const double elapsed_before = state.elapsed_seconds;
  const int64_t tokens_before = state.tokens_seen;
  const int64_t steps_before = state.step;
  // Seconds of this invocation: training.max_time is a window per run of the command (a nightly cron run trains
  // for max_time each night), while elapsed() counts the run's training time over all its invocations.
  auto invocation = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  auto elapsed = [&] { return elapsed_before + invocation(); };
  Progress progress("finetune", static_cast<uint64_t>(plan.total_steps), "steps", static_cast<uint64_t>(state.step));
  result.stop_reason = state.step < plan.total_steps ? "max_steps" : "complete";
  while (state.step < plan.total_steps) {
    if (r.training.max_time > 0 && dp.any(invocation() >= r.training.max_time)) {
      result.stop_reason = "max_time";
      break;
    }
    // This worker's micro-batches of the global batch; the global batch's token counts.
    auto micro = dp.batches_next(loader, r.training.micro_batch_size, r.training.gradient_accumulation_steps);
    std::vector<double> counts{0, 0};
    for (const auto& b : micro) {
      counts[0] += double(b.n_targets);
      counts[1] += double(b.n_tokens);
    }
    dp.sum(counts);
    const int64_t n_targets = std::llround(counts[0]), n_tokens = std::llround(counts[1]);
    double loss_sum = 0;
    for (size_t i = 0; i < micro.size(); ++i) {
      const auto& b = micro[i];
      if (b.n_targets == 0) continue;
      generators_seed(gen, device_gen,
                      dropout_seed(r.training.seed, state.step,
                                   dp.first_micro_index(r.training.gradient_accumulation_steps) + int64_t(i)));
      auto loss = batch_loss(model, b, train_opts, double(std::max<int64_t>(n_targets, 1)));
      loss.backward();
      dp.gradients_add(params);
      loss_sum += loss.item<double>();
    }
    // The base model's or the dataset's mapped files changed underneath: this step learnt from zeros. Stop before
    // it reaches the adapter or a checkpoint (the last checkpoint stays good to resume from once files are fixed).
    if (io::mapped_files_damaged()) throw IoError(io::mapped_files_damage());
    // The step's gradient is the sum over the micro-batches of all workers (each micro-batch's loss is already
    // divided by the global batch's target count); so are its loss, and whether any worker was asked to stop.
    const auto grad = n_targets > 0 ? dp.gradients_sum(params) : torch::Tensor();  // flat, float32
    std::vector<double> totals{loss_sum, interrupt_requested() ? 1.0 : 0.0};
    dp.sum(totals);
    loss_sum = totals[0];
    const bool interrupted = totals[1] > 0;
    const double grad_norm = grad_clip(grad, r.training.grad_clip);
    const double lr = lr_at(schedule, r.optimizer.lr, state.step, plan.total_steps);
    optimizer.step(lr, grad);
    optimizer.zero_grad();
    ++state.step;
    state.tokens_seen += n_tokens;
    state.elapsed_seconds = elapsed();
    result.train_loss = loss_sum;
    train_loss_sum += loss_sum;
    ++train_loss_steps;
    const double tps = double(state.tokens_seen - tokens_before) /
                       std::max(1e-9, state.elapsed_seconds - elapsed_before);
    if (dp.leader() && (state.step % r.training.log_every == 0 || state.step == plan.total_steps))
      metrics_append(run_dir, {{"step", state.step},
                               {"loss", loss_sum},
                               {"lr", lr},
                               {"grad_norm", grad_norm},
                               {"tokens_per_s", tps},
                               {"target_tokens", n_targets},
                               {"elapsed_s", state.elapsed_seconds}});
    progress.update(static_cast<uint64_t>(state.step), fmt::format("loss {:.4f} lr {:.2e}", loss_sum, lr));

    // --- eval and early stopping ---
    bool stop_early = false;
    if (r.eval.every > 0 && state.step % r.eval.every == 0 && !validation.empty()) {
      result.eval_loss = evaluate(model, adapter, validation, dp);
      if (dp.leader()) metrics_append(run_dir, {{"step", state.step}, {"eval_loss", result.eval_loss}});
      if (state.evals == 0 || result.eval_loss < state.best_eval) {
        state.best_eval = result.eval_loss;
        state.evals_without_improvement = 0;
      } else {
        ++state.evals_without_improvement;
      }
      ++state.evals;
      stop_early = r.eval.patience > 0 && state.evals_without_improvement >= r.eval.patience;
      evals.push_back({state.step, train_loss_sum / double(std::max<int64_t>(1, train_loss_steps)), result.eval_loss});
      train_loss_sum = 0;
      train_loss_steps = 0;
      if (auto w = overfitting_warning(evals);
          w && std::find(result.warnings.begin(), result.warnings.end(), *w) == result.warnings.end()) {
        bool seen = false;  // once per invocation
        for (const auto& x : result.warnings) seen = seen || x.rfind("overfitting:", 0) == 0;
        if (!seen) {
          log::warn("finetune-lora: {}", *w);
          result.warnings.push_back(*w);
        }
      }
    }

    // --- checkpoints; interruption ---
    if (dp.leader() && (state.step % r.checkpoint.every == 0 || interrupted || stop_early)) checkpoint();
    if (interrupted) {
      progress.finish();
      throw InterruptedError(
          fmt::format("finetune-lora: stopped at step {} (checkpoint saved in {}); run the same "
                      "command to resume",
                      state.step, (run_dir / "checkpoints").string()));
    }
    if (stop_early) {
      result.stop_reason = "early_stopping";
      break;
    }
  }
  progress.finish();
  result.steps = state.step;
  result.steps_trained = state.step - steps_before;
  result.all_reduce_seconds = dp.all_reduce_seconds();
  if (result.steps_trained == 0) {
    // Nothing learnt: publishing would add a byte-identical version (and make servers reload it).
    std::error_code ec;
    auto latest = fs::canonical(run_dir / "adapters" / "latest", ec);
    result.adapter_dir = ec ? "" : latest.string();
    log::warn("finetune-lora: no step trained in this run ({}); nothing published{}", result.stop_reason,
              result.adapter_dir.empty() ? "" : " (the latest adapter stays " + result.adapter_dir + ")");
    result.seconds = state.elapsed_seconds;
    result.tokens_per_second = double(state.tokens_seen) / std::max(1e-9, state.elapsed_seconds);
    if (dp.leader()) run_record_write(run_dir, r, plan, result);
    return result;
  }

  // --- final eval, checkpoint, publish ---
  if (!validation.empty()) {
    result.eval_loss = evaluate(model, adapter, validation, dp);
    if (dp.leader()) metrics_append(run_dir, {{"step", state.step}, {"eval_loss", result.eval_loss}, {"final", true}});
  }
  result.seconds = state.elapsed_seconds;
  result.tokens_per_second = double(state.tokens_seen) / std::max(1e-9, state.elapsed_seconds);
  if (!dp.leader()) return result;
  checkpoint();
  result.adapter_dir = adapter_publish(run_dir, adapter, base).string();
  result.published = true;
  run_record_write(run_dir, r, plan, result);
  return result;
}

}  // namespace hearth::train
