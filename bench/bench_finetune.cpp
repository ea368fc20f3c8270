// bench_finetune: LoRA training tokens/s and peak RSS on a benchmark shape (random weights), hearth against a plain
// PyTorch-eager Python loop doing the same step (bench/train_reference.py, Debian's python3-torch), in the same run;
// or, with --qlora, hearth's float32 LoRA against QLoRA over the same weights quantized at load (quantize_base q8_0
// and q4_0).
//
//   bench_finetune [--preset smollm2-135m] [--threads 2] [--batch 2] [--seq 256] [--steps 5] [--rank 8] [--dropout 0]
//                  [--targets q,k,v,o,gate,up,down] [--checkpointing] [--no-block-cache]
//   bench_finetune --qlora --preset llama-3.2-1b [--model-dir DIR] ...   (the model is written to DIR once)
//   bench_finetune --one --device cuda --dtype bfloat16 --preset llama-3.2-1b [--model-dir DIR --base q4_0]
//                  [--phases] [--attention explicit] ...
// On CUDA, `--one` is what bench/bench_gpu_finetune.py runs beside Hugging Face transformers + PEFT.
// Each side runs in its own process (this binary re-executed with --one, and python3), so peak RSS is its own.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/model_presets.h"
#include "core/blas_env.h"
#include "core/heap.h"
#include "io/atomic_file.h"
#include "model/attention.h"
#include "model/causal_lm.h"
#include "model/checkpoint.h"
#include "model/lora.h"
#include "model/quantize_base.h"
#include "train/adamw.h"
#include "train/cpu_block_cache.h"

using namespace hearth;

namespace {

struct Args {
  int threads = 2, batch = 2, seq = 256, steps = 5, rank = 8;
  double dropout = 0.0;  // LoRA dropout (the bundled recipes use 0.05)
  std::string targets = "q,k,v,o,gate,up,down";
  std::string preset = "smollm2-135m", device = "cpu", dtype = "float32";
  bool checkpointing = false;
  bool block_cache = true;  // false: glibc's heap alone, as hearth trained before train/cpu_block_cache.h
  bool qlora = false;
  bool phases = false;                // --one: after the timed steps, a few more timed phase by phase
  std::string attention = "default";  // "explicit": attention's own ops on CUDA too, not libtorch's fused kernels
  std::string model_dir;              // --qlora: the random model's folder
  std::string base;  // --one: "" (random weights in memory), "f32" (the folder as stored) or q8_0 | q4_0 | q4_k
};

std::unique_ptr<model::CausalLM> model_make(const Args& a, const model::LoadOptions& load) {
  if (a.base.empty()) {
    auto config = model::config_parse(bench::preset_config(a.preset), a.preset);
    return model::causal_lm_from_tensors(config, model::causal_lm_random_tensors(config, 1), load, "bench");
  }
  if (a.base == "f32") return model::causal_lm_load(a.model_dir, load);
  return model::causal_lm_load_quantized(a.model_dir, load, *model::quantize_base_parse(a.base));
}

// Waits for the device's queued work (timings on CUDA), through a host copy that depends on it.
void device_sync(const torch::Device& device) {
  if (!device.is_cpu()) torch::zeros({1}, torch::TensorOptions().device(device)).cpu();
}

int run_one(const Args& a) {
  hearth::heap_keep_freed_blocks();  // the allocator settings `hearth finetune-lora` runs under
  if (a.block_cache) train::cpu_block_cache_install();
  at::set_num_threads(a.threads);
  if (a.attention == "explicit") model::fused_attention_enable(false);
  const model::LoadOptions load{model::device_parse(a.device, "--device"), model::dtype_parse(a.dtype, "--dtype")};
  auto model_owner = model_make(a, load);
  const model::CausalLM& model = *model_owner;
  const model::ModelConfig& config = model.config();
  model::LoraConfig lc;
  lc.r = a.rank;
  lc.alpha = 2.0 * a.rank;
  lc.dropout = a.dropout;
  lc.targets.clear();
  std::stringstream ss(a.targets);
  for (std::string t; std::getline(ss, t, ',');) lc.targets.push_back(*model::lora_target_parse(t));
  auto adapter = model::LoraAdapter::create(config, lc, 1, load.device);
  auto params = adapter.parameters();
  for (auto& p : params) p.set_requires_grad(true);
  train::AdamW opt(params, {});
  model::ForwardOptions o;
  o.adapters = {&adapter};
  o.training = true;
  o.checkpoint_layers = a.checkpointing;
  auto positions =
      torch::arange(a.seq, torch::kInt64).unsqueeze(0).expand({a.batch, a.seq}).contiguous().to(load.device);
  // One step; `mark(i)` after its forward (0), backward (1) and optimizer update (2).
  auto step = [&](const torch::Tensor& tokens, const std::function<void(int)>& mark) {
    // Each position predicts the next token; the last predicts nothing (-100). Mean over the targets, as finetune-lora.
    auto with_targets = o;
    with_targets.targets = torch::cat(
        {tokens.narrow(1, 1, a.seq - 1), torch::full({a.batch, 1}, -100, tokens.options())}, 1);
    auto loss = model.forward(tokens, positions, {}, nullptr, with_targets) / double(a.batch * (a.seq - 1));
    mark(0);
    loss.backward();
    mark(1);
    const auto grad = train::grads_flat(params);
    train::grad_clip(grad, 1.0);
    opt.step(1e-4, grad);
    opt.zero_grad();
    mark(2);
  };
  const auto none = [](int) {};
  auto data = torch::randint(3, config.vocab_size, {a.steps + 1, a.batch, a.seq}, torch::kInt64).to(load.device);
  step(data[0], none);
  device_sync(load.device);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.steps; ++i) step(data[i + 1], none);
  device_sync(load.device);
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::cout << fmt::format("RESULT {} {}", double(a.steps) * a.batch * a.seq / dt, ru.ru_maxrss / 1024.0) << std::endl;
  if (a.phases) {  // waits for the device after each phase: slower steps, but each phase's own time
    std::vector<double> ms(3, 0.0);
    const int n = std::min(a.steps, 3);
    for (int i = 0; i < n; ++i) {
      auto t = std::chrono::steady_clock::now();
      step(data[i + 1], [&](int k) {
        device_sync(load.device);
        const auto now = std::chrono::steady_clock::now();
        ms[k] += std::chrono::duration<double, std::milli>(now - t).count() / n;
        t = now;
      });
    }
    std::cout << fmt::format("PHASES {:.1f} {:.1f} {:.1f}", ms[0], ms[1], ms[2]) << std::endl;
  }
  return 0;
}

bool result_read(const std::string& cmd, double* tps, double* rss) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return false;
  char line[512];
  bool ok = false;
  while (fgets(line, sizeof line, p))
    if (std::sscanf(line, "RESULT %lf %lf", tps, rss) == 2) ok = true;
  pclose(p);
  return ok;
}

}  // namespace

// The random model of `a.preset` as a float32 folder in a.model_dir (written once).
void model_dir_write(const Args& a) {
  namespace fs = std::filesystem;
  if (fs::exists(fs::path(a.model_dir) / "config.json")) return;
  auto json = bench::preset_config(a.preset);
  auto config = model::config_parse(json, a.preset);
  fs::create_directories(a.model_dir);
  model::safetensors_save(fs::path(a.model_dir) / "model.safetensors", model::causal_lm_random_tensors(config, 1));
  io::atomic_write(fs::path(a.model_dir) / "config.json", json.dump(2));
}

// --qlora: float32 LoRA against q8_0 and q4_0 QLoRA, each in its own process.
int run_qlora(const Args& a, const std::string& self, const std::string& common) {
  model_dir_write(a);
  struct Row {
    std::string base;
    double tps = 0, rss = 0;
    bool ok = false;
  };
  std::vector<Row> rows = {{"f32"}, {"q8_0"}, {"q4_0"}};
  for (auto& row : rows)
    row.ok = result_read(fmt::format("OMP_NUM_THREADS={} '{}' --one {} --model-dir '{}' --base {} {}", a.threads, self,
                                     common, a.model_dir, row.base, a.checkpointing ? "--checkpointing" : ""),
                         &row.tps, &row.rss);
  std::cout << fmt::format(
      "LoRA / QLoRA training, {} shape, batch {} × seq {}, rank {} on {}, {} thread(s), {} steps{}\n", a.preset,
      a.batch, a.seq, a.rank, a.targets, a.threads, a.steps, a.checkpointing ? ", gradient checkpointing" : "");
  std::cout << fmt::format("{:<22} {:>12} {:>14} {:>12} {:>12}\n", "base", "tokens/s", "peak RSS MiB", "speed × f32",
                           "RSS × f32");
  for (const auto& row : rows) {
    if (!row.ok) {
      std::cout << fmt::format("{:<22} failed\n", row.base);
      continue;
    }
    const std::string name = row.base == "f32" ? "float32 LoRA" : row.base + " QLoRA";
    std::cout << fmt::format("{:<22} {:>12.1f} {:>14.0f} {:>11.2f}× {:>11.2f}×\n", name, row.tps, row.rss,
                             rows[0].ok ? row.tps / rows[0].tps : 0.0, rows[0].ok ? row.rss / rows[0].rss : 0.0);
  }
  return rows[0].ok && rows[1].ok && rows[2].ok ? 0 : 1;
}

int main(int argc, char** argv) {
  hearth::openblas_coretype_prepare();  // for the runs it starts as child processes, as `hearth` does
  Args a;
  bool one = false;
  CLI::App app{"hearth LoRA training benchmark vs a PyTorch-eager reference, or float32 LoRA vs QLoRA"};
  app.add_option("--threads", a.threads);
  app.add_option("--batch", a.batch);
  app.add_option("--seq", a.seq);
  app.add_option("--steps", a.steps);
  app.add_option("--rank", a.rank);
  app.add_option("--dropout", a.dropout, "LoRA dropout on the hearth side (default 0; the recipes use 0.05)")
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--targets", a.targets);
  app.add_flag("--checkpointing", a.checkpointing, "gradient checkpointing on the hearth side");
  bool no_block_cache = false;
  app.add_flag("--no-block-cache", no_block_cache,
               "hearth's large CPU tensors from glibc's heap, not train/cpu_block_cache.h (for comparison)");
  app.add_option("--preset", a.preset, "smollm2-135m | llama-3.2-1b | stories260k");
  app.add_flag("--qlora", a.qlora,
               "float32 LoRA vs q8_0 / q4_0 QLoRA (quantize_base) instead of the PyTorch reference");
  app.add_option("--model-dir", a.model_dir, "--qlora: where the random model is written once (default /tmp/...)");
  app.add_option("--base", a.base)->group("");
  app.add_option("--device", a.device, "cpu or cuda (cuda: only with --one; see bench_gpu_finetune.py)");
  app.add_option("--dtype", a.dtype, "float32 or bfloat16 (--one)");
  app.add_flag("--one", one);
  app.add_flag("--phases", a.phases, "--one: print forward, backward and optimizer milliseconds of 3 more steps");
  app.add_option("--attention", a.attention,
                 "default | explicit: attention's own ops on CUDA instead of libtorch's fused kernels (libtorch >= 2)")
      ->check(CLI::IsMember({"default", "explicit"}));
  CLI11_PARSE(app, argc, argv);
  a.block_cache = !no_block_cache;
  if (a.model_dir.empty())
    a.model_dir = (std::filesystem::temp_directory_path() / ("hearth-bench-" + a.preset)).string();
  if (one) {
    if (!a.base.empty()) model_dir_write(a);  // the quantized bases are made from the stored folder
    return run_one(a);
  }
  if (a.device != "cpu" || a.dtype != "float32") {
    std::cerr << "--device/--dtype: the comparisons run float32 on the CPU; use --one for one run on a device "
              << "(bench/bench_gpu_finetune.py)\n";
    return 2;
  }

  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string common = fmt::format(
      "--threads {} --batch {} --seq {} --steps {} --rank {} --dropout {} --targets {}{}", a.threads, a.batch, a.seq,
      a.steps, a.rank, a.dropout, a.targets, a.block_cache ? "" : " --no-block-cache");
  if (a.qlora) return run_qlora(a, self, common + " --preset " + a.preset);
  if (a.preset != "smollm2-135m") {
    std::cerr << "--preset: the PyTorch reference runs the smollm2-135m shape only; use --qlora for other shapes\n";
    return 2;
  }
  const std::string script = std::string(HEARTH_SOURCE_DIR) + "/bench/train_reference.py";
  // Debian's interpreter, where python3-torch lives (a pyenv/venv python3 earlier on PATH may lack torch).
  const std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  double h_tps = 0, h_rss = 0, r_tps = 0, r_rss = 0;
  bool h_ok = result_read(fmt::format("OMP_NUM_THREADS={} '{}' --one {} {}", a.threads, self, common,
                                      a.checkpointing ? "--checkpointing" : ""),
                          &h_tps, &h_rss);
  bool r_ok = result_read(fmt::format("OMP_NUM_THREADS={} {} '{}' {}", a.threads, python, script, common), &r_tps,
                          &r_rss);
  std::cout << fmt::format(
      "LoRA training, SmolLM2-135M shape, batch {} × seq {}, rank {} on {}, {} thread(s), {} steps\n", a.batch, a.seq,
      a.rank, a.targets, a.threads, a.steps);
  std::cout << fmt::format("{:<22} {:>12} {:>14}\n", "", "tokens/s", "peak RSS MiB");
  if (h_ok) std::cout << fmt::format("{:<22} {:>12.1f} {:>14.0f}\n", "hearth", h_tps, h_rss);
  if (r_ok) std::cout << fmt::format("{:<22} {:>12.1f} {:>14.0f}\n", "PyTorch eager (python)", r_tps, r_rss);
  if (h_ok && r_ok)
    std::cout << fmt::format("{:<22} {:>11.2f}× {:>13.2f}×\n", "hearth / reference", h_tps / r_tps, h_rss / r_rss);
  if (!r_ok) std::cout << "reference failed (is python3-torch installed? apt-get install python3-torch)\n";
  return h_ok ? 0 : 1;
}
