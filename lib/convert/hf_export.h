// Writes a model as a Hugging Face folder that transformers (and hearth) load: safetensors weights in one dtype,
// sharded like transformers' save_pretrained above a size (model-00001-of-0000N.safetensors and
// model.safetensors.index.json {"metadata": {"total_size"}, "weight_map"}), config.json (torch_dtype set to the
// written dtype) and every other file of the base folder copied unchanged (tokenizer files, generation_config.json,
// chat template, license). The weights stream from a TensorSource one tensor at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "convert/tensor_source.h"
#include "io/safetensors.h"

namespace hearth::convert {

struct HfExportOptions {
  io::Dtype dtype = io::Dtype::kBF16;        // F32, F16 or BF16
  uint64_t max_shard_bytes = 5'000'000'000;  // transformers' "5GB" (decimal)
};

struct HfExportSummary {
  std::vector<std::string> files;  // weight files written
  size_t tensors = 0;
  uint64_t bytes = 0;  // tensor data
};

// "5GB", "500MB", "2GiB", "1000" (bytes) -> bytes, as transformers parses max_shard_size. std::nullopt when
// malformed or zero.
std::optional<uint64_t> shard_size_parse(const std::string& text);
// "bf16"/"bfloat16", "f16"/"float16", "f32"/"float32" -> the dtype; std::nullopt otherwise.
std::optional<io::Dtype> hf_dtype_parse(const std::string& text);
// The config.json torch_dtype spelling of F32/F16/BF16.
std::string hf_torch_dtype(io::Dtype dtype);

// Writes the weights of `source` (every tensor in source.names) into `dir`, which must exist. Called after each
// tensor with (done, count). Throws FormatError naming the tensor when it holds non-finite values or overflows
// F16, InterruptedError on SIGINT/SIGTERM, IoError/ResourceError on write failure.
HfExportSummary hf_weights_write(const std::filesystem::path& dir, const TensorSource& source,
                                 const HfExportOptions& options,
                                 const std::function<void(size_t done, size_t count)>& progress = {});

// Copies the base folder's files other than weights (*.safetensors, the index, *.bin, *.pt, *.pth, *.gguf),
// config.json and README.md into `dir`, and writes config.json with torch_dtype = `dtype`. Returns the names
// copied. Throws IoError.
std::vector<std::string> hf_files_copy(const std::filesystem::path& base, const std::filesystem::path& dir,
                                       io::Dtype dtype);

}  // namespace hearth::convert
