// Device selection (--device cpu|cuda|auto).
#include <torch/cuda.h>

#include <fmt/format.h>

#include "core/error.h"
#include "model/causal_lm.h"

namespace hearth::model {

torch::Device device_parse(const std::string& text, const std::string& option) {
  if (text == "cpu") return torch::kCPU;
  if (text == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (text == "cuda" || text.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available())
      throw ResourceError(
          fmt::format("{}: CUDA was requested but no CUDA device is available (this build of "
                      "libtorch may be CPU-only)",
                      option));
    return torch::Device(text);
  }
  throw ConfigError(fmt::format("{}: unknown device; expected cpu, cuda or auto, got '{}'", option, text));
}

}  // namespace hearth::model
