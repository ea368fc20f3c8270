// make_random_model: writes a Hugging Face model folder with random weights in a benchmark shape.
//
//   make_random_model OUT_DIR [--preset smollm2-135m|stories260k] [--seed N] [--dtype float32|bfloat16]
//                     [--tokenizer DIR]   (copies tokenizer.json + tokenizer_config.json from DIR)
// Deterministic for a seed. Used by the benchmarks (bench/README.md) and by anyone who wants a model of a
// realistic size without downloading one.
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "bench/model_presets.h"
#include "io/atomic_file.h"
#include "model/causal_lm.h"
#include "model/checkpoint.h"
#include "model/config.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  using namespace hearth;
  std::string out, preset = "smollm2-135m", dtype = "float32", tokenizer;
  uint64_t seed = 1;
  CLI::App app{"Write a random-weight model folder in a benchmark shape"};
  app.add_option("out", out, "Output folder")->required();
  app.add_option("--preset", preset, "smollm2-135m | stories260k");
  app.add_option("--seed", seed, "Random seed");
  app.add_option("--dtype", dtype, "float32 | bfloat16");
  app.add_option("--tokenizer", tokenizer, "Copy tokenizer files from this folder");
  CLI11_PARSE(app, argc, argv);
  try {
    auto config = bench::preset_config(preset);
    config["torch_dtype"] = dtype;
    auto parsed = model::config_parse(config, preset);
    auto tensors = model::causal_lm_random_tensors(parsed, seed);
    auto st = model::dtype_parse(dtype, "--dtype");
    for (auto& [name, t] : tensors) t = t.to(st);
    fs::create_directories(out);
    model::safetensors_save(fs::path(out) / "model.safetensors", tensors, {{"format", "pt"}});
    io::atomic_write(fs::path(out) / "config.json", config.dump(2));
    if (!tokenizer.empty())
      for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
        if (fs::exists(fs::path(tokenizer) / f))
          fs::copy_file(fs::path(tokenizer) / f, fs::path(out) / f, fs::copy_options::overwrite_existing);
    std::cout << "wrote " << out << " (" << preset << ", " << parsed.parameter_count() << " parameters, " << dtype
              << ")" << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "make_random_model: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
