// A one-line summary of a model on disk, for `hearth list`: its format, family, main weight type, parameters and
// size. Reads config.json, safetensors headers or GGUF metadata only (no weights). For the full picture of one
// model see `hearth inspect` (apps/inspect.cpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace hearth::io {

struct ModelSummary {
  std::string format;      // "hf" (config.json and safetensors) or "gguf"
  std::string model_type;  // config.json's model_type, or the GGUF's general.architecture
  std::string dtype;       // the dtype most parameters have ("BF16"), or the GGUF file type ("Q4_K_M");
                           // several GGUF files in one folder: their types joined with ", "
  int64_t parameters = 0;
  uint64_t bytes = 0;  // every file of the model (links followed)
};

// Summarises a Hugging Face folder, a .gguf file, or a folder holding only .gguf files. Throws IoError (missing
// or unreadable) or FormatError (malformed config.json, safetensors header or GGUF), naming the file.
ModelSummary model_summary_read(const std::filesystem::path& path);

// llama.cpp's name of a GGUF general.file_type ("Q4_K_M" for 15; enum llama_ftype in llama.cpp's include/llama.h);
// "" for a value it does not define.
std::string gguf_file_type_name(uint64_t file_type);

}  // namespace hearth::io
