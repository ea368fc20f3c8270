// Hugging Face checkpoint tensors <-> libtorch: safetensors files as named torch tensors, and back.
//
// Reading is zero-copy: each tensor points into the memory map (kept alive by the tensor itself) and is
// read-only — never modify it in place. Writing goes through io::safetensors_write (atomic).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include <torch/types.h>

#include "io/safetensors.h"

namespace hearth::model {

// All tensors of DIR's model.safetensors (or its shards), by name, as CPU tensors in their stored dtype
// (F32, F16, BF16, I8, U8, I32, I64). Throws as io::SafetensorsArchive::open, and FormatError for a dtype
// libtorch cannot hold (naming the tensor).
std::map<std::string, torch::Tensor> checkpoint_tensors(const std::filesystem::path& dir);
// One tensor of an open file: a zero-copy view into its mapping (which it keeps alive), or a copy when the data
// is not aligned for its dtype.
torch::Tensor view_to_tensor(const io::TensorView& view, const std::shared_ptr<io::SafetensorsFile>& file);
// Same for a single .safetensors file.
std::map<std::string, torch::Tensor> safetensors_tensors(const std::filesystem::path& file);

// Writes tensors (moved to CPU, made contiguous) to a .safetensors file atomically.
void safetensors_save(const std::filesystem::path& file, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// SHA-256 (hex) identifying a base model's weights: a GGUF file's bytes; for a folder, config.json followed by every
// *.safetensors in name order (the same as `cat config.json *.safetensors | sha256sum`). Reads the whole model.
// Throws IoError naming an unreadable file.
std::string model_sha256(const std::filesystem::path& model);

// A weight tensor holding NaN or ±Inf values.
struct NonFiniteTensor {
  std::string name;     // as stored (HF name, or GGUF name)
  int64_t count = 0;    // non-finite values
  int64_t numel = 0;
};
// Reads every floating-point weight of a model (a folder's safetensors, or a GGUF's tensors, decoded) and lists
// those with non-finite values — what `hearth inspect --verify` reports. `progress(done, total)` after each tensor.
// Integer tensors are skipped. Throws as the loaders do (IoError, FormatError, e.g. a GGUF type hearth cannot
// decode).
std::vector<NonFiniteTensor> weights_non_finite(const std::filesystem::path& model,
                                                const std::function<void(size_t, size_t)>& progress = {});

torch::ScalarType dtype_to_torch(io::Dtype dtype, const std::string& where);
io::Dtype dtype_from_torch(torch::ScalarType dtype, const std::string& where);

}  // namespace hearth::model
