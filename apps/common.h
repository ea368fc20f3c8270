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

// Adds `-m,--model` to a subcommand. Its value is a folder, a .gguf file or a model name in the Hugging Face cache
// (org/name[@revision]); models_resolve() turns a name into the cached path before the command runs, so the
// command sees a path either way.
CLI::Option* model_option_add(CLI::App* cmd, std::string& model, const std::string& help);
// Resolves every --model that model_option_add() registered and the command line set (io::model_path_resolve).
// main.cpp calls it once, after parsing. Throws IoError (exit 3) "--model: ..." for a name that is not cached.
void models_resolve();
// The path a --model value (or a config file's model key) names: io::model_path_resolve with "--model: " errors.
std::string model_resolve(const std::string& value);

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
