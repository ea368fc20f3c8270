// bench_generate: prefill and decode speed, peak memory and distance from the memory-bandwidth floor.
//
//   bench_generate [--models bundled,smollm2-135m] [--dtypes float32,bfloat16,q8_0,q4_0,q4_k] [--threads 1,2]
//                  [--prompt 128] [--decode 64]
// A ggml type as the dtype (q8_0, q4_0, q5_0, q4_k, q5_k, q6_k) quantizes every linear matrix of the random model
// with lib/quant's quantizer and runs it on the block kernels (activations float32).
// Each (model, dtype, threads) runs in its own process (this binary re-executed with --one) so that peak
// RSS is that configuration's. The floor is the measured read bandwidth ÷ weight bytes per token, the bandwidth read
// just before and just after each run as ../shared/tools/stream.c reads it (bench/read_bandwidth.h; the higher of the
// two, in the better page mode); "overhead" is a decode step's time minus the time of its matmuls alone.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/model_presets.h"
#include "bench/read_bandwidth.h"
#include "core/blas_env.h"
#include "core/heap.h"
#include "model/causal_lm.h"
#include "model/config.h"
#include "quant/codec.h"

using namespace hearth;
using Clock = std::chrono::steady_clock;

namespace {

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

// Every linear matrix of `tensors` (HF names) as `type` blocks, removed from `tensors`.
std::map<std::string, model::Linear::Blocks> quantize_matrices(model::TensorMap& tensors, quant::GgmlType type) {
  std::map<std::string, model::Linear::Blocks> blocks;
  for (auto it = tensors.begin(); it != tensors.end();) {
    const std::string& name = it->first;
    const bool linear = name.find("_proj.weight") != std::string::npos || name == "lm_head.weight" ||
                        name == "model.embed_tokens.weight";
    if (!linear || it->second.size(1) % quant::ggml_type_block_size(type) != 0) {
      ++it;
      continue;
    }
    auto w = it->second.to(torch::kFloat32).contiguous();
    blocks[name] = model::Linear::Blocks::quantized(w, type);
    it = tensors.erase(it);
  }
  return blocks;
}

std::unique_ptr<model::CausalLM> build(const std::string& name, const std::string& dtype_name) {
  const auto parsed = quant::ggml_type_parse(dtype_name);
  const bool blocks_wanted = parsed && quant::ggml_type_is_quantized(*parsed);  // f16, bf16 are dtypes
  const quant::GgmlType block_type = blocks_wanted ? *parsed : quant::GgmlType::kF32;
  const auto dtype = blocks_wanted ? torch::kFloat32 : model::dtype_parse(dtype_name, "--dtypes");
  model::LoadOptions options{torch::kCPU, dtype};
  if (name == "bundled" && !blocks_wanted)
    return model::causal_lm_load(std::string(HEARTH_SOURCE_DIR) + "/models/stories260K", options);
  auto config = name == "bundled" ? model::config_load(std::string(HEARTH_SOURCE_DIR) + "/models/stories260K")
                                  : model::config_parse(bench::preset_config(name), name);
  auto tensors = model::causal_lm_random_tensors(config, 1);
  for (auto& [k, t] : tensors) t = t.to(dtype);
  std::map<std::string, model::Linear::Blocks> blocks;
  if (blocks_wanted) blocks = quantize_matrices(tensors, block_type);
  return model::causal_lm_from_tensors(config, tensors, options, name, blocks);
}

// Seconds for one decode step's matmuls alone (same weights, batch 1).
double matmul_seconds(const model::CausalLM& m) {
  // one row: the same path (Linear::forward) the model takes when decoding one sequence
  c10::InferenceMode guard;
  auto opts = torch::TensorOptions().dtype(m.dtype());
  std::vector<torch::Tensor> inputs;
  for (const auto* lin : m.linears()) inputs.push_back(torch::randn({1, 1, lin->in_features()}, opts));
  auto run = [&] {
    auto linears = m.linears();
    for (size_t i = 0; i < linears.size(); ++i) linears[i]->forward(inputs[i]);
  };
  run();
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    double t0 = now_s();
    run();
    best = std::min(best, now_s() - t0);
  }
  return best;
}

// One configuration: prints "RESULT prefill_tps decode_tps rss_mb weight_mb step_ms matmul_ms".
int run_one(const std::string& name, const std::string& dtype_name, int threads, int prompt, int decode) {
  at::set_num_threads(threads);
  c10::InferenceMode guard;
  auto m_owner = build(name, dtype_name);
  const model::CausalLM& m = *m_owner;
  const int64_t V = m.config().vocab_size;
  auto ids = torch::randint(3, std::min<int64_t>(V, 500), {1, prompt}, torch::kInt64);
  auto pos = torch::arange(prompt, torch::kInt64).unsqueeze(0);
  double prefill = 1e9, decode_total = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto cache = m.cache_new(1, prompt + decode + 1);
    double t0 = now_s();
    auto logits = m.forward(ids, pos, {}, &cache, true);
    prefill = std::min(prefill, now_s() - t0);
    if (rep < 2) continue;  // decode once, after two warm prefills
    double t1 = now_s();
    for (int i = 0; i < decode; ++i) {
      auto next = logits[0][-1].argmax().view({1, 1});
      logits = m.forward(next, torch::full({1, 1}, int64_t(prompt + i), torch::kInt64), {}, &cache);
    }
    decode_total = now_s() - t1;
  }
  double step = decode_total / decode;
  double mm = matmul_seconds(m);
  std::cout << fmt::format("RESULT {} {} {} {} {} {}", prompt / prefill, decode / decode_total, peak_rss_mb(),
                           m.weight_bytes() / 1048576.0, step * 1e3, mm * 1e3)
            << std::endl;
  return 0;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  hearth::openblas_coretype_prepare();  // for the runs it starts as child processes, as `hearth` does
  hearth::heap_keep_freed_blocks();     // as `hearth` does
  std::string models = "bundled,smollm2-135m", dtypes = "float32,bfloat16", threads = "1,2";
  int prompt = 128, decode = 64;
  std::vector<std::string> one;
  CLI::App app{"hearth generation benchmark"};
  app.add_option("--models", models);
  app.add_option("--dtypes", dtypes);
  app.add_option("--threads", threads);
  app.add_option("--prompt", prompt);
  app.add_option("--decode", decode);
  app.add_option("--one", one)->expected(3);
  CLI11_PARSE(app, argc, argv);
  if (!one.empty()) return run_one(one[0], one[1], std::stoi(one[2]), prompt, decode);

  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::cout << fmt::format("{:<14} {:<9} {:>3} {:>11} {:>10} {:>8} {:>9} {:>8} {:>9} {:>7} {:>11}\n", "model", "dtype",
                           "thr", "prefill t/s", "decode t/s", "RSS MiB", "weight MiB", "BW GB/s", "floor t/s",
                           "% floor", "overhead ms");
  for (const auto& t : split(threads)) {
    for (const auto& m : split(models))
      for (const auto& d : split(dtypes)) {
        // The VM's read bandwidth moves between runs: measured just before and just after each one, the higher kept.
        const bench::ReadBandwidth before = bench::read_bandwidth(std::stoi(t));
        std::string cmd = fmt::format("OMP_NUM_THREADS={} '{}' --one {} {} {} --prompt {} --decode {}", t, self, m, d,
                                      t, prompt, decode);
        FILE* p = popen(cmd.c_str(), "r");
        char line[512] = {0};
        std::string result;
        while (p && fgets(line, sizeof line, p))
          if (std::string(line).rfind("RESULT", 0) == 0) result = line;
        if (p) pclose(p);
        double pf = 0, dc = 0, rss = 0, wmb = 0, step = 0, mm = 0;
        if (std::sscanf(result.c_str(), "RESULT %lf %lf %lf %lf %lf %lf", &pf, &dc, &rss, &wmb, &step, &mm) != 6) {
          std::cout << fmt::format("{:<14} {:<9} {:>3} failed\n", m, d, t);
          continue;
        }
        const bench::ReadBandwidth after = bench::read_bandwidth(std::stoi(t));
        const double bw = std::max(before.best(), after.best());
        double floor = bw * 1e9 / (wmb * 1048576.0);
        std::cout << fmt::format(
            "{:<14} {:<9} {:>3} {:>11.1f} {:>10.1f} {:>8.0f} {:>9.1f} {:>8.1f} {:>9.1f} {:>6.0f}% "
            "{:>11.3f}\n",
            m, d, t, pf, dc, rss, wmb, bw, floor, 100 * dc / floor, step - mm);
        std::cout.flush();
      }
  }
  return 0;
}
