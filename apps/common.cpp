#include "apps/common.h"

#include <iostream>
#include <thread>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"

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

}  // namespace hearth::app
