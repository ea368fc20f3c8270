// Writes a LoRA adapter as a llama.cpp LoRA GGUF, loaded with `llama-cli -m base.gguf --lora adapter.gguf` or
// Ollama's ADAPTER, as llama.cpp's convert_lora_to_gguf.py lays it out and src/llama-adapter.cpp reads it:
// general.architecture (the base's), general.type "adapter", adapter.type "lora", adapter.lora.alpha (f32), and
// per wrapped linear "<base GGUF tensor name>.lora_a" (ne [in, r], i.e. A [r, in]) and ".lora_b" (ne [r, out],
// B [out, r]) in F32. llama.cpp scales by alpha / r, so alpha is written as scale · r — rslora (alpha / √r)
// included. For the `llama` architecture B's q/k rows are interleaved as the base's q/k weights are
// (gguf_names.h): (P·B)·A = P·(B·A).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "io/gguf.h"
#include "model/config.h"
#include "model/lora.h"

namespace hearth::convert {

struct GgufLoraSummary {
  size_t tensors = 0;
  uint64_t file_bytes = 0;
  double alpha = 0;  // as written
};

// Throws as model::gguf_arch (an unsupported architecture), IoError/ResourceError on write failure.
GgufLoraSummary gguf_lora_write(const std::filesystem::path& path, const model::ModelConfig& config,
                                const model::LoraAdapter& adapter, const std::vector<io::GgufKv>& extra_metadata = {});

}  // namespace hearth::convert
