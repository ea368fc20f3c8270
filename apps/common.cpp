#include "apps/common.h"

#include <iostream>
#include <thread>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"
#include "io/hf_cache.h"

namespace hearth::app {

int threads_resolve(int requested) {
  if (requested > 0) return requested;
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

void globals_apply(const GlobalOptions& g) {
  log::set_level(g.quiet ? log::Level::kError : log::level_parse(g.log_level, "--log-level"));
  if (g.threads < 0) throw ConfigError(fmt::format("--threads: expected a positive number, got {}", g.threads));
  at::set_num_threads(threads_resolve(g.threads));
}

namespace {
// The --model values of the subcommands (model_option_add); only the selected subcommand's can be set.
std::vector<std::string*>& model_options() {
  static std::vector<std::string*> options;
  return options;
}
}  // namespace

CLI::Option* model_option_add(CLI::App* cmd, std::string& model, const std::string& help) {
  model_options().push_back(&model);
  return cmd->add_option("-m,--model", model, help + "; or a model name org/name[@revision] pulled into the cache");
}

std::string model_resolve(const std::string& value) {
  try {
    return io::model_path_resolve(value).string();
  } catch (const FormatError& e) {
    throw FormatError(fmt::format("--model: {}", e.what()));
  } catch (const IoError& e) {
    throw IoError(fmt::format("--model: {}", e.what()));
  }
}

void models_resolve() {
  for (std::string* model : model_options())
    if (!model->empty()) *model = model_resolve(*model);
}

void model_dir_check(const std::filesystem::path& dir) {
  if (dir.extension() == ".gguf" && std::filesystem::is_regular_file(dir)) return;
  if (!std::filesystem::is_directory(dir))
    throw IoError(
        fmt::format("--model: '{}' is neither a directory nor a .gguf file; expected a Hugging Face model "
                    "folder or a GGUF file",
                    dir.string()));
  if (!std::filesystem::exists(dir / "config.json"))
    throw IoError(fmt::format("--model: '{}' has no config.json; expected a Hugging Face model folder", dir.string()));
}

void json_print(const nlohmann::json& j) {
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

std::string text_file_read(const std::filesystem::path& path, const std::string& option) {
  try {
    return io::file_read(path);
  } catch (const IoError& e) {
    throw IoError(fmt::format("{}: {}", option, e.what()));
  }
}

void sampling_options_add(CLI::App& cmd, infer::SamplingParams& sampling, std::vector<std::string>& stop) {
  cmd.add_option("--temperature,--temp", sampling.temperature, "0 = greedy (default 0.8)");
  cmd.add_option("--top-k", sampling.top_k, "Keep the k most likely tokens; 0 = off (default 40)");
  cmd.add_option("--top-p", sampling.top_p, "Nucleus sampling mass; 1 = off (default 0.95)");
  cmd.add_option("--min-p", sampling.min_p, "Drop tokens below min_p × the top probability (default 0.05)");
  cmd.add_option("--repeat-penalty", sampling.repeat_penalty, "Penalty for recent tokens; 1 = off (default 1)");
  cmd.add_option("--repeat-last-n", sampling.repeat_last_n, "Tokens the repeat penalty looks back (default 64)");
  cmd.add_option("-s,--seed", sampling.seed, "Random seed (default fixed: runs are reproducible)");
  cmd.add_option("--stop", stop, "Stop string (repeatable); not included in the output");
}

}  // namespace hearth::app
