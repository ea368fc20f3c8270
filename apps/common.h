// What every subcommand shares: the global options and small helpers to open a model and print results.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "infer/sampler.h"

namespace hearth::app {

// Global flags (before or after the subcommand name).
struct GlobalOptions {
  int threads = 0;  // 0: all hardware threads
  std::string log_level = "info";
  bool quiet = false;  // -q: errors only (log level error, no progress)
  bool json = false;
  std::string device = "cpu";
};

// Applies --threads and --log-level (or --quiet). Call at the start of every run_<cmd>().
void globals_apply(const GlobalOptions& g);
// Number of threads --threads resolves to.
int threads_resolve(int requested);

// Checks that --model is a .gguf file, or a directory holding config.json (IoError naming the path otherwise).
void model_dir_check(const std::filesystem::path& dir);

// Prints a JSON result on stdout (one line).
void json_print(const nlohmann::json& j);

// Reads a text file for a subcommand option; IoError names the option and path.
std::string text_file_read(const std::filesystem::path& path, const std::string& option);

// The sampling flags of the commands that generate (`generate`, `chat`): --temperature/--temp, --top-k,
// --top-p, --min-p, --repeat-penalty, --repeat-last-n, -s/--seed and --stop (repeatable), bound to `sampling`
// and `stop`. Their defaults are SamplingParams' (sampler.h); check them with SamplingParams::validate().
void sampling_options_add(CLI::App& cmd, infer::SamplingParams& sampling, std::vector<std::string>& stop);

}  // namespace hearth::app
