// The base model a finetune run trains on: a Hugging Face folder (dense, or quantized at load with
// `quantize_base` — QLoRA), or a .gguf file trained through its blocks (QLoRA). Its config, the check that the
// datasets were tokenized as the model tokenizes, the bytes its weights take in memory, and the load.
//
// A GGUF carries its tokenizer as metadata, not as tokenizer.json, so the fingerprint check of a folder does not
// apply: the tokenizer copied into each dataset is turned into GGUF metadata (tokenizer_gguf_metadata, as `hearth
// quantize` writes it) and the keys that decide tokenization must equal the file's.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "data/dataset.h"
#include "model/causal_lm.h"
#include "quant/block_format.h"
#include "recipe/lora_recipe.h"

namespace hearth::train {

// True when the recipe's model is a .gguf file.
bool base_is_gguf(const recipe::LoraRecipe& r);
// The block type `quantize_base` names; std::nullopt when unset.
std::optional<quant::GgmlType> base_quantize_type(const recipe::LoraRecipe& r);

// The model's config (config.json, or the GGUF's metadata). Throws IoError when the model is neither a folder nor
// a .gguf file, ConfigError for quantize_base with a GGUF model, and as the loaders do.
model::ModelConfig base_config(const recipe::LoraRecipe& r);

// Throws ConfigError naming the dataset, the model and the first differing key when `dataset` (at `path`) was not
// tokenized as the model tokenizes (the fingerprint of a folder's tokenizer files, the GGUF tokenizer metadata of a
// file).
void base_tokenizer_check(const recipe::LoraRecipe& r, const data::Dataset& dataset, const std::string& path);

// Bytes the base weights take once loaded: blocks at their size (GGUF blocks kept on `device`, quantize_base's
// blocks), everything else at `dense_bytes` per element (the compute dtype).
double base_weight_bytes(const recipe::LoraRecipe& r, const model::ModelConfig& config, double dense_bytes,
                         torch::Device device);

// Bytes of the decoded chunk a quantized base multiplies by (0 for a dense base): the largest fused matrix's float32
// size capped at 64 MiB (Linear's chunk), times 4 on a GPU for the torch decoder's temporaries.
double base_block_decode_bytes(const recipe::LoraRecipe& r, const model::ModelConfig& config, torch::Device device);

// Loads the base for training: quantized matrices stay blocks, on a GPU too (LoadOptions::blocks_on_device).
std::unique_ptr<model::CausalLM> base_load(const recipe::LoraRecipe& r, model::LoadOptions options);

}  // namespace hearth::train
