// Writes a model as a GGUF file that llama.cpp (and hearth) can load: metadata for the architecture, every
// tensor renamed, reordered and encoded in the type the mix gives it (tensor_mix.h). The weights come from a
// TensorSource one tensor at a time, so memory stays at about one tensor whatever the model size. Used by
// `hearth quantize` and, with merged adapters as the source, by `hearth export gguf`.
//
// Metadata (GGUF spec, ggml docs/gguf.md; key types as llama.cpp's gguf-py writes them — counts u32, floats
// f32), in this order: general.architecture, general.type ("model"), general.name, <arch>.block_count,
// .context_length, .embedding_length, .feed_forward_length, .attention.head_count, .attention.head_count_kv,
// .rope.freq_base, .attention.layer_norm_rms_epsilon, .attention.key_length, .attention.value_length,
// general.file_type, <arch>.vocab_size, .rope.dimension_count, .rope.scaling.type/.rope.scaling.factor (linear
// RoPE scaling only), .attention.sliding_window (when the config applies one), then the caller's extra metadata
// (the tokenizer's tokenizer.ggml.* keys), then general.quantization_version (2). Llama 3 RoPE scaling is written
// as the rope_freqs.weight tensor, as llama.cpp's converter computes it (gguf_rope_freqs).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "convert/quant_type.h"
#include "convert/tensor_mix.h"
#include "convert/tensor_source.h"
#include "io/gguf.h"
#include "model/config.h"

namespace hearth::convert {

struct QuantizeOptions {
  QuantType type = QuantType::kQ8_0;
  std::string name;  // general.name (llama.cpp shows it); not written when empty
  int threads = 0;   // threads encoding a tensor's rows; 0: all hardware threads. The output does not depend on it.
};

// Reported after each tensor is written.
struct QuantizeProgress {
  size_t done = 0, count = 0;             // tensors
  const PlannedTensor* tensor = nullptr;  // the one just written
};
using QuantizeProgressFn = std::function<void(const QuantizeProgress&)>;

// A tensor whose row length did not fit the type the mix chose.
struct QuantizeFallback {
  std::string tensor;  // GGUF name
  quant::GgmlType wanted, used;
};

struct QuantizeSummary {
  std::filesystem::path path;
  std::string architecture;
  QuantType type = QuantType::kQ8_0;
  size_t tensors = 0;
  int64_t parameters = 0;      // elements of all tensors
  uint64_t tensor_bytes = 0;   // tensor data, unpadded
  uint64_t file_bytes = 0;     // the file (header, metadata and alignment padding included)
  double bits_per_weight = 0;  // 8 · tensor_bytes / parameters
  double seconds = 0;
  std::map<std::string, int> tensors_per_type;  // "Q4_K" -> how many tensors
  std::vector<QuantizeFallback> fallbacks;
};

// The metadata gguf_model_write writes before `extra_metadata` (general.quantization_version comes after it).
// Throws as model::gguf_arch.
std::vector<io::GgufKv> gguf_model_metadata(const model::ModelConfig& config, const QuantizeOptions& options);

// llama.cpp's rope_freqs.weight for a config with llama3 RoPE scaling: [head_dim/2] float32 factors that divide
// each RoPE frequency, computed with the same float32 operations as convert_hf_to_gguf.py (LlamaModel.
// generate_extra_tensors): 1 for wavelengths below original_max_position_embeddings / high_freq_factor, `factor`
// above original_max_position_embeddings / low_freq_factor, 1 / ((1 − s)/factor + s) between, s the smoothing.
torch::Tensor gguf_rope_freqs(const model::ModelConfig& config);

// Writes `config`'s weights from `source` to `path` (atomically: the old file, if any, stays until the new one is
// complete). Everything is checked before the file is created: each tensor the config implies must be in the
// source with its shape (FormatError naming the source and tensor), `extra_metadata` must not repeat a key written
// here (ConfigError). During the write: FormatError naming the tensor for non-finite weights or a scale out of
// F16 range; InterruptedError on SIGINT/SIGTERM (checked between tensors); IoError/ResourceError on write failure.
// In each case the target is left untouched.
QuantizeSummary gguf_model_write(const std::filesystem::path& path, const model::ModelConfig& config,
                                 const TensorSource& source, const QuantizeOptions& options,
                                 const std::vector<io::GgufKv>& extra_metadata = {},
                                 const QuantizeProgressFn& progress = {});

}  // namespace hearth::convert
