// Hugging Face checkpoint <-> GGUF: the architecture name, tensor names and row order llama.cpp expects for the
// families hearth runs. Shared by the GGUF reader (gguf_model.cpp) and writer (lib/convert).
//
// Names follow llama.cpp's gguf-py (constants.py MODEL_TENSOR names, tensor_mapping.py): model.embed_tokens ->
// token_embd, model.norm -> output_norm, lm_head -> output (absent when tied), model.layers.N.* -> blk.N.*
// (input_layernorm -> attn_norm, post_attention_layernorm -> ffn_norm, self_attn.{q,k,v,o}_proj -> attn_q,
// attn_k, attn_v, attn_output, self_attn.{q,k}_norm -> attn_q_norm, attn_k_norm, mlp.{gate,up,down}_proj ->
// ffn_gate, ffn_up, ffn_down; .weight / .bias kept). For the `llama` architecture llama.cpp's converter
// (convert_hf_to_gguf.py, LlamaModel.permute) interleaves the q and k rows of each head for its RoPE kernel:
// GGUF row 2j+i of a head holds HF row i·hd/2 + j (i ∈ {0, 1}, j < hd/2); q/k biases likewise.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

#include "model/config.h"

namespace hearth::model {

// "llama" (model_type llama or mistral), "qwen2" or "qwen3". Throws FormatError for any other model_type.
std::string gguf_arch(const ModelConfig& config);
// Whether the architecture stores q/k rows interleaved (llama only).
bool gguf_arch_interleaves_qk(const std::string& arch);

// One tensor of a GGUF model file.
struct GgufTensorName {
  std::string gguf;            // "blk.0.attn_q.weight"
  std::string hf;              // "model.layers.0.self_attn.q_proj.weight"; empty for rope_freqs.weight (computed)
  std::vector<int64_t> shape;  // outermost first, as in the checkpoint: [rows, row length] or [n]
  int64_t qk_heads = 0;        // > 0: q/k rows interleaved over this many heads (llama); 0: rows as in HF
  int layer = -1;              // N of blk.N, -1 for the tensors outside the blocks
};

// Every tensor a GGUF of `config` holds, in llama-quantize's order (its loader sorts weights by block, -1 first,
// then by name): output.weight, output_norm.weight, rope_freqs.weight, token_embd.weight, then blk.0.* by name,
// blk.1.*, ... Biases, q/k norms, the untied head and rope_freqs (llama3 RoPE scaling) appear when the config
// has them. Throws as gguf_arch.
std::vector<GgufTensorName> gguf_tensor_names(const ModelConfig& config);

// q/k rows from Hugging Face order to GGUF's interleaved order and back. w: [heads·hd, C] or a bias [heads·hd];
// returns a new contiguous tensor of the same shape.
torch::Tensor qk_rows_to_gguf(const torch::Tensor& w, int64_t heads);
torch::Tensor qk_rows_to_hf(const torch::Tensor& w, int64_t heads);

}  // namespace hearth::model
