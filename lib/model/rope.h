// Rotary position embeddings (RoPE), Hugging Face "rotate half" convention, with rope_scaling
// default | linear | llama3 (as transformers' `_compute_default/linear/llama3_parameters`).
#pragma once

#include <torch/types.h>

#include "model/config.h"

namespace hearth::model {

// Inverse frequencies [head_dim / 2] (float32, CPU) after rope_scaling.
torch::Tensor rope_inv_freq(const ModelConfig& config);

// cos/sin for the given positions: positions [B, T] int64 -> cos, sin [B, 1, T, head_dim] in `dtype`
// (computed in float32, like transformers, then cast).
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions,
                                                     torch::ScalarType dtype);

// x [B, H, T, head_dim] -> x·cos + rotate_half(x)·sin, same shape.
torch::Tensor rope_apply(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace hearth::model
