// The training loss at the output head: summed cross-entropy of head(x) against target ids, computed a chunk of rows
// at a time so that the [N, V] logits never exist whole and nothing vocabulary-wide is kept for backward.
//
// Why: the plain path (logits, then at::cross_entropy_loss) keeps the float32 logits, log_softmax's output and, in
// backward, their gradients: 3-4 copies of N × V floats (Llama-3.2-1B, 256 tokens: 125 MiB each; a GPU micro-batch
// of 4 × 512: 1 GiB each). Here, when autograd records, each chunk's gradient dL/dx = (softmax − onehot)·W is worked
// out in the forward pass itself (the loss is a sum, so backward only scales it) and only dL/dx [N, C] is kept. The
// head's product and its backward are the Linear's own (dense, or decoded blocks for QLoRA), so the numbers are the
// plain path's up to summation order.
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "model/linear.h"

namespace hearth::model {

// Float32 logits per chunk: rows per chunk = this / (4·V), at least 1.
constexpr int64_t kHeadLossChunkBytes = int64_t(256) << 20;

// x [N, C] (the final norm's output, in the compute dtype), targets [N] int64 on x's device; rows whose target is
// `ignore_index` add nothing. Returns Σ −log softmax(head(x))[target] as a float32 scalar. Differentiable with
// respect to x when autograd records and x requires grad (the head itself gets no gradient; it must have no LoRA
// parts and must outlive backward). Throws Error for mismatched shapes or a target outside [0, V) that is not
// ignore_index. `chunk_rows` > 0 sets the rows per chunk (tests); 0 derives them from kHeadLossChunkBytes.
torch::Tensor head_cross_entropy(const Linear& head, const torch::Tensor& x, const torch::Tensor& targets,
                                 int64_t ignore_index = -100, int64_t chunk_rows = 0);

}  // namespace hearth::model
