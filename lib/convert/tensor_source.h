// Where a converter's weights come from: tensors under Hugging Face names, in Hugging Face row order, handed out
// one at a time as float32, so that writing a file holds one tensor in memory rather than the model.
//
// Sources: a Hugging Face folder (safetensors, sharded or not, any float dtype), a GGUF in F32/F16/BF16 (rows put
// back in HF order), or tensors already in memory (e.g. a model with LoRA adapters merged, for `export gguf`).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "io/gguf.h"
#include "model/causal_lm.h"
#include "model/config.h"

namespace hearth::convert {

struct TensorSource {
  std::string origin;              // the folder or file, for error messages
  std::vector<std::string> names;  // every tensor the source holds, by HF name, sorted
  // Shape (outermost first) of the tensor `hf_name`, or std::nullopt when the source lacks it. Reads no weights.
  std::function<std::optional<std::vector<int64_t>>(const std::string& hf_name)> shape;
  // The tensor as a contiguous float32 CPU tensor of that shape. Called once per tensor, from one thread.
  // Throws FormatError naming the tensor when it cannot be read or decoded.
  std::function<torch::Tensor(const std::string& hf_name)> load;
  // Rows [r0, r1) of the tensor's outermost dimension, as load() would give them, so that writers convert a large
  // tensor (a 128K-row embedding) a slice at a time. Empty: the writer slices load()'s result.
  std::function<torch::Tensor(const std::string& hf_name, int64_t r0, int64_t r1)> load_rows;
};

// Rows [r0, r1) of `hf_name` from `source` (load_rows when the source has it, else a slice of load()), contiguous
// float32.
torch::Tensor tensor_source_rows(const TensorSource& source, const std::string& hf_name, int64_t r0, int64_t r1);

// Rows per slice when a writer streams a tensor of `rows` rows of `row_elements` floats: about 16 Mi floats
// (64 MiB of float32) per slice, a multiple of `align` rows (whole heads where rows are reordered per head).
int64_t tensor_slice_rows(int64_t rows, int64_t row_elements, int64_t align = 1);

// The safetensors weights of a Hugging Face folder (memory-mapped; each tensor converted to float32 when
// loaded). Throws as model::checkpoint_tensors (IoError, FormatError).
TensorSource tensor_source_checkpoint(const std::filesystem::path& dir);

// The weights of a GGUF whose tensors are F32, F16 or BF16, under HF names for `config` (the config the file's
// metadata describes, model::gguf_config). Throws FormatError naming the file and tensor when a tensor is
// quantized: re-quantizing already-quantized weights compounds the rounding errors, so hearth only quantizes from
// full-precision weights.
TensorSource tensor_source_gguf(std::shared_ptr<const io::GgufFile> file, const model::ModelConfig& config);

// Tensors held in memory, by HF name (any float dtype, any device; copied to float32 CPU when loaded).
TensorSource tensor_source_map(model::TensorMap tensors, std::string origin);

}  // namespace hearth::convert
