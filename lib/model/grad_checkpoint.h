// Gradient checkpointing for decoder layers: the forward pass keeps only each layer's input; backward
// recomputes the layer (replaying the same dropout randomness) and then differentiates it. Trades one
// extra forward per layer for not storing activations. Used by LlamaModel::forward when
// ForwardOptions::checkpoint_layers is set and autograd is recording.
#pragma once

#include <torch/types.h>

namespace hearth::model {

class LlamaModel;
struct ForwardOptions;

// Runs layer `l` like model.layer_forward (without a KV cache), keeping only `x` for backward.
torch::Tensor layer_forward_checkpointed(const LlamaModel& model, int64_t l, const torch::Tensor& x,
                                         const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                                         const torch::Tensor& slots, int64_t n_keys, const ForwardOptions& options);

}  // namespace hearth::model
