// A base model's weights with a LoRA adapter merged in: each wrapped linear becomes W + scale · B · A (PEFT's
// merge_and_unload), computed in float32 when the tensor is loaded. The source streams one tensor at a time, so
// merging a large model holds one weight matrix (and the adapter) in memory, never the whole merged model.
// Used by `hearth export hf`, `gguf` and `ollama`.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "convert/tensor_source.h"
#include "model/config.h"
#include "model/lora.h"

namespace hearth::convert {

// "model.layers.N.self_attn.q_proj.weight" -> (N, kQ); std::nullopt for any tensor LoRA cannot wrap.
std::optional<std::pair<int64_t, model::LoraTarget>> lora_target_of(const std::string& hf_name);

// `base` with `adapter` merged. The adapter must have been loaded for `config` (LoraAdapter::load checks the
// shapes). Tensors the adapter does not wrap pass through unchanged.
TensorSource tensor_source_merged(TensorSource base, std::shared_ptr<const model::LoraAdapter> adapter);

}  // namespace hearth::convert
