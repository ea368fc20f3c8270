// What a converter reads from a model: its config, its weights as a TensorSource, and the metadata that must
// travel with it (the tokenizer and chat template as tokenizer.ggml.* keys), from a Hugging Face folder or a
// GGUF in F32/F16/BF16. Shared by `hearth quantize` and `hearth export`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "convert/tensor_source.h"
#include "io/gguf.h"
#include "model/config.h"

namespace hearth::convert {

struct ModelInput {
  std::filesystem::path path;
  model::ModelConfig config;
  TensorSource source;
  std::vector<io::GgufKv> tokenizer;  // tokenizer.ggml.* (and tokenizer.chat_template); empty when there is none
  std::string name;                   // general.name: the folder's name or the GGUF's general.name
  std::string kind;                   // "hf" | "gguf"
  std::string chat_template;          // the Jinja chat template, "" when the model has none
};

// Opens `path`: a folder with config.json and safetensors weights, or a .gguf whose tensors are F32, F16 or
// BF16. A folder without tokenizer.json gives a warning and no tokenizer metadata. Throws IoError (missing),
// FormatError (malformed; a quantized GGUF, naming its first quantized tensor), as the loaders do.
ModelInput model_input_open(const std::filesystem::path& path);

}  // namespace hearth::convert
