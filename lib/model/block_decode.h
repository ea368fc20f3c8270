// ggml blocks decoded with torch ops, on whatever device holds them: how a quantized base stays quantized in GPU
// memory for QLoRA (Linear decodes one matrix at a time, multiplies, and drops the decoded copy).
//
// The same arithmetic as lib/quant's scalar decoders (codec.h for the layouts), op for op — an int to float
// conversion, then each float product or difference rounded once — so on the CPU the results are bit-identical to
// quant::dequantize (tested), and on CUDA they are too as long as each op rounds to nearest (no fused
// multiply-adds: every step is its own kernel). Not here: the CPU path of Linear (it calls lib/quant, faster and
// without temporaries) and encoding.
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "quant/block_format.h"

namespace hearth::model {

// Whether blocks_decode() handles `type`: Q8_0, Q4_0, Q4_K and Q6_K (the types of q8_0, q4_0 and q4_k_m files).
bool blocks_decodable(quant::GgmlType type);

// bytes [rows, ggml_type_nbytes(type, in)] uint8 (any device) -> [rows, in] float32 on the same device.
// Throws Error for a type blocks_decodable() refuses or bytes of another shape or dtype.
torch::Tensor blocks_decode(quant::GgmlType type, const torch::Tensor& bytes, int64_t in);

}  // namespace hearth::model
