// Float32 CPU loops for the small ops of an inference forward (generate, chat, eval, serve): RMSNorm, RoPE and
// SwiGLU's gating. Each stands for several libtorch ops — a dispatch, a TensorIterator set-up and an output
// allocation apiece, a few microseconds each on a 2-core machine — with one pass over the rows; a decode step ran
// ~30 such ops per layer, as long as the quantized layer products themselves on a 135M q4_0 model.
//
// The callers (layers.cpp, rope.cpp) take these paths only where cpu_ops_apply() holds and keep libtorch's ops
// elsewhere: training and its evaluation (autograd, bit-for-bit agreement between a checkpointed layer's two
// passes), bfloat16 and the GPU. Each output row depends on its input row alone, whatever rows share the call.
#pragma once

#include <initializer_list>

#include <torch/types.h>

namespace hearth::model {

// True in inference mode when every tensor is float32 on the CPU.
bool cpu_ops_apply(std::initializer_list<const torch::Tensor*> tensors);

// x [..., C] (any strides), weight [C] -> x·rsqrt(mean(x²) + eps)·weight [..., C], contiguous. The sum of squares
// is accumulated in double; the rest as transformers' float32 formula, operation by operation.
torch::Tensor rms_norm_rows(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// x [B, H, T, hd] (unit stride in hd), cos/sin [B, 1, T, hd] contiguous -> x·cos + rotate_half(x)·sin
// [B, H, T, hd], contiguous, bit for bit libtorch's three-op formula.
torch::Tensor rope_rows(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// gate_up [..., 2F] (the fused gate and up projections, contiguous) -> silu(gate)·up [..., F].
torch::Tensor swiglu_rows(const torch::Tensor& gate_up);

}  // namespace hearth::model
