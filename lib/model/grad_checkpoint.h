// Gradient checkpointing for decoder layers: the forward pass keeps only each layer's input; backward
// recomputes the layer (replaying the same dropout randomness) and then differentiates it. Trades one
// extra forward per layer for not storing activations. Used by a family's forward when
// ForwardOptions::checkpoint_layers is set and autograd is recording.
#pragma once

#include <functional>
#include <vector>

#include <torch/types.h>

namespace hearth::model {

// A layer as a function of its input. It runs again during backward, after the forward that created it
// has returned, so it must own (capture by value) everything it uses.
using LayerFn = std::function<torch::Tensor(const torch::Tensor& x)>;

// y = layer(x), keeping only x for backward. `params`: the trainable tensors `layer` reads (LoRA weights;
// their gradients flow through this node). Backward re-runs `layer` with the random generator of x's
// device (CPU or CUDA) set to its state before the forward, so dropout draws the same masks, then restores
// it. The recomputation state is owned by the autograd graph: freed with it, whether or not backward runs.
torch::Tensor checkpointed(const torch::Tensor& x, const std::vector<torch::Tensor>& params, LayerFn layer);

// Recomputation states alive (a checkpointed forward ran and its graph has not been freed). For tests.
int64_t checkpoint_states_alive();

}  // namespace hearth::model
