// What the finetune-lora command-line tests share: a dataset of story-like text ingested with the bundled model's
// tokenizer, a recipe over it, the command line of a run, the adapter it published and the values its metrics.jsonl
// records.
#pragma once

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "io/atomic_file.h"

namespace hearth::test {

// `files` text files in WORK/src, file f holding sentences(f) sentences whose names and things a std::mt19937
// seeded `seed` draws, ingested into WORK/data with stories260K's tokenizer at `seq_len` tokens per sequence.
inline std::filesystem::path story_dataset(const std::filesystem::path& work, unsigned seed, int files, int seq_len,
                                           const std::function<int(int)>& sentences) {
  const std::filesystem::path src = work / "src", out = work / "data";
  std::filesystem::create_directories(src);
  std::mt19937 rng(seed);
  const char* names[] = {"Tom", "Lily", "Sam", "Mia"};
  const char* things[] = {"a red ball", "a big dog", "a small cat", "a blue kite"};
  for (int f = 0; f < files; ++f) {
    std::ofstream o(src / ("story" + std::to_string(f) + ".txt"));
    for (int s = 0; s < sentences(f); ++s)
      o << names[rng() % 4] << " had " << things[rng() % 4] << ". " << names[rng() % 4]
        << " was happy and played all day. ";
  }
  auto r = run_hearth("ingest " + quote(src) + " --model " + quote(stories_dir()) + " --out " + quote(out) +
                      " --seq-len " + std::to_string(seq_len));
  REQUIRE(r.code == 0);
  return out;
}

// WORK/recipe.yaml: the bundled stories260K model, `dataset`, LoRA rank 4 (alpha 8, dropout 0.1) on `targets`
// ("q, v, down"), then `rest` (the optimizer, schedule, training, ... lines).
inline std::filesystem::path stories_recipe(const std::filesystem::path& work, const std::filesystem::path& dataset,
                                            const std::string& targets, const std::string& rest) {
  const std::filesystem::path p = work / "recipe.yaml";
  io::atomic_write(p, "model: " + stories_dir().string() + "\ndatasets: [" + dataset.string() +
                          "]\noutput_dir: unused\nlora: {rank: 4, alpha: 8, dropout: 0.1, target_modules: [" + targets +
                          "]}\n" + rest);
  return p;
}

// The adapter a run published last, as bytes.
inline std::string adapter_bytes(const std::filesystem::path& run) {
  return io::file_read(run / "adapters" / "latest" / "adapter_model.safetensors");
}

// `hearth finetune-lora RECIPE` into RUN on one thread (results must be bit-exact), with more overrides.
inline std::string finetune_args(const std::filesystem::path& recipe, const std::filesystem::path& run,
                                 const std::string& extra = "") {
  return "--threads 1 finetune-lora " + quote(recipe) + " output_dir=" + run.string() + " " + extra;
}

// RUN/metrics.jsonl's values of `key` ("loss", "eval_loss", ...), in order.
inline std::vector<double> metric_values(const std::filesystem::path& run, const std::string& key) {
  std::vector<double> out;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains(key)) out.push_back(j[key].get<double>());
  }
  return out;
}

}  // namespace hearth::test
