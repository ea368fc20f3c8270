// bench_finetune: LoRA training tokens/s and peak RSS on the SmolLM2-135M shape (random weights), hearth
// against a plain PyTorch-eager Python loop doing the same step (bench/train_reference.py, Debian's
// python3-torch), in the same run.
//
//   bench_finetune [--threads 2] [--batch 2] [--seq 256] [--steps 5] [--rank 8] [--targets q,k,v,o,gate,up,down]
//                  [--preset smollm2-135m|llama-3.2-1b] [--device cpu|cuda] [--dtype float32|bfloat16]
// On CUDA, `--one` is what bench/bench_gpu_finetune.py runs beside Hugging Face transformers + PEFT.
// Each side runs in its own process (this binary re-executed with --one, and python3), so peak RSS is its own.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/model_presets.h"
#include "model/causal_lm.h"
#include "model/lora.h"
#include "train/adamw.h"

using namespace hearth;

namespace {

struct Args {
  int threads = 2, batch = 2, seq = 256, steps = 5, rank = 8;
  std::string targets = "q,k,v,o,gate,up,down";
  std::string preset = "smollm2-135m", device = "cpu", dtype = "float32";
  bool checkpointing = false;
};

// Waits for the device's queued work (timings on CUDA), through a host copy that depends on it.
void device_sync(const torch::Device& device) {
  if (!device.is_cpu()) torch::zeros({1}, torch::TensorOptions().device(device)).cpu();
}

int run_one(const Args& a) {
  at::set_num_threads(a.threads);
  auto config = model::config_parse(bench::preset_config(a.preset), a.preset);
  const model::LoadOptions load{model::device_parse(a.device, "--device"), model::dtype_parse(a.dtype, "--dtype")};
  auto model_owner = model::causal_lm_from_tensors(config, model::causal_lm_random_tensors(config, 1), load, "bench");
  const model::CausalLM& model = *model_owner;
  model::LoraConfig lc;
  lc.r = a.rank;
  lc.alpha = 2.0 * a.rank;
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
  auto step = [&](const torch::Tensor& tokens) {
    auto logits = model.forward(tokens, positions, {}, nullptr, o);
    auto V = logits.size(-1);
    auto loss = at::cross_entropy_loss(logits.narrow(1, 0, a.seq - 1).reshape({-1, V}),
                                       tokens.narrow(1, 1, a.seq - 1).reshape({-1}), {}, at::Reduction::Mean, -100,
                                       0.0);
    loss.backward();
    train::grad_clip(params, 1.0);
    opt.step(1e-4);
    opt.zero_grad();
  };
  auto data = torch::randint(3, config.vocab_size, {a.steps + 2, a.batch, a.seq}, torch::kInt64).to(load.device);
  step(data[0]);
  step(data[1]);
  device_sync(load.device);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.steps; ++i) step(data[i + 2]);
  device_sync(load.device);
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::cout << fmt::format("RESULT {} {}", double(a.steps) * a.batch * a.seq / dt, ru.ru_maxrss / 1024.0) << std::endl;
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

int main(int argc, char** argv) {
  Args a;
  bool one = false;
  CLI::App app{"hearth LoRA training benchmark vs a PyTorch-eager reference"};
  app.add_option("--threads", a.threads);
  app.add_option("--batch", a.batch);
  app.add_option("--seq", a.seq);
  app.add_option("--steps", a.steps);
  app.add_option("--rank", a.rank);
  app.add_option("--targets", a.targets);
  app.add_flag("--checkpointing", a.checkpointing, "gradient checkpointing on the hearth side");
  app.add_option("--preset", a.preset, "model shape: smollm2-135m or llama-3.2-1b");
  app.add_option("--device", a.device, "cpu or cuda (cuda: only with --one; see bench_gpu_finetune.py)");
  app.add_option("--dtype", a.dtype, "float32 or bfloat16");
  app.add_flag("--one", one);
  CLI11_PARSE(app, argc, argv);
  if (one) return run_one(a);
  if (a.device != "cpu") {
    std::cerr << "--device " << a.device << ": the comparison runs on the CPU; on CUDA use --one, or "
              << "bench/bench_gpu_finetune.py\n";
    return 2;
  }

  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string common = fmt::format("--threads {} --batch {} --seq {} --steps {} --rank {} --targets {}",
                                         a.threads, a.batch, a.seq, a.steps, a.rank, a.targets);
  const std::string hearth_only = fmt::format("--preset {} --dtype {}", a.preset, a.dtype);
  const std::string script = std::string(HEARTH_SOURCE_DIR) + "/bench/train_reference.py";
  // Debian's interpreter, where python3-torch lives (a pyenv/venv python3 earlier on PATH may lack torch).
  const std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  double h_tps = 0, h_rss = 0, r_tps = 0, r_rss = 0;
  bool h_ok = result_read(fmt::format("OMP_NUM_THREADS={} '{}' --one {} {} {}", a.threads, self, common, hearth_only,
                                      a.checkpointing ? "--checkpointing" : ""),
                          &h_tps, &h_rss);
  // The reference is the SmolLM2-135M shape in float32 only.
  const bool same_shape = a.preset == "smollm2-135m" && a.dtype == "float32";
  bool r_ok = same_shape && result_read(fmt::format("OMP_NUM_THREADS={} {} '{}' {}", a.threads, python, script, common),
                                        &r_tps, &r_rss);
  std::cout << fmt::format("LoRA training, {} shape, {}, batch {} × seq {}, rank {} on {}, {} thread(s), {} steps\n",
                           a.preset, a.dtype, a.batch, a.seq, a.rank, a.targets, a.threads, a.steps);
  std::cout << fmt::format("{:<22} {:>12} {:>14}\n", "", "tokens/s", "peak RSS MiB");
  if (h_ok) std::cout << fmt::format("{:<22} {:>12.1f} {:>14.0f}\n", "hearth", h_tps, h_rss);
  if (r_ok) std::cout << fmt::format("{:<22} {:>12.1f} {:>14.0f}\n", "PyTorch eager (python)", r_tps, r_rss);
  if (h_ok && r_ok)
    std::cout << fmt::format("{:<22} {:>11.2f}× {:>13.2f}×\n", "hearth / reference", h_tps / r_tps, h_rss / r_rss);
  if (!same_shape) std::cout << "(no reference: train_reference.py runs the SmolLM2-135M shape in float32)\n";
  else if (!r_ok) std::cout << "reference failed (is python3-torch installed? apt-get install python3-torch)\n";
  return h_ok ? 0 : 1;
}
