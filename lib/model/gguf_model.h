// A model from a GGUF file (llama.cpp's format): config from the metadata, weights by llama.cpp's tensor names
// mapped to Hugging Face names, for the families hearth runs (GGUF architectures `llama` — also Mistral and
// SmolLM — `qwen2` and `qwen3`).
//
// Metadata keys and tensor names follow llama.cpp (ggml docs/gguf.md, "LLM" section): `<arch>.block_count`,
// `<arch>.embedding_length`, `<arch>.attention.head_count`, ..., `blk.N.attn_q.weight`, `token_embd.weight`,
// `output.weight` (absent when the head is tied). For the `llama` architecture llama.cpp's converter stores the
// q and k rows of each head interleaved for its RoPE kernel (GGUF row 2j+i = HF row i·hd/2 + j); they are put
// back in Hugging Face order here. On the CPU, quantized weight matrices (Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K) —
// the token embedding too, decoded a row at a time when looked up — stay as the file's blocks, memory-mapped
// and read in place by lib/quant's kernels (q/k of `llama` files are copied once, to reorder their rows);
// F32/F16/BF16 matrices and the norms are decoded to float32 tensors. Elsewhere (CUDA) everything is decoded and runs
// dense, unless LoadOptions::blocks_on_device keeps the quantized matrices as blocks on the GPU (QLoRA).
#pragma once

#include <filesystem>

#include "io/gguf.h"
#include "model/causal_lm.h"
#include "model/gguf_names.h"

namespace hearth::model {

// The config a GGUF's metadata describes, in config.json terms; eos_token_id lists tokenizer.ggml.eos_token_id,
// then eot_token_id and eom_token_id when present (the ids generation stops at, as in llama.cpp). Throws FormatError
// naming the file and key for an architecture hearth does not run, a missing or ill-typed hyperparameter, or a RoPE
// scaling it cannot apply (llama3-style `rope_freqs`, YaRN).
ModelConfig gguf_config(const io::GgufFile& file);

// The weights, float32, under Hugging Face names (q/k rows in HF order). Throws FormatError naming the tensor
// for a missing tensor, a shape that does not match the config, or a type hearth cannot decode.
TensorMap gguf_tensors(const io::GgufFile& file, const ModelConfig& config);

// One tensor of the file as float32, in Hugging Face shape and row order (q/k rows reordered). Throws
// FormatError naming the tensor for a missing tensor, a shape other than n.shape or a type hearth cannot decode.
torch::Tensor gguf_tensor_decode(const io::GgufFile& file, const GgufTensorName& n);

// The weights split as a model uses them: HF-named float32 tensors, and, when `keep_blocks`, the quantized, F16 and
// BF16 weight matrices as blocks (those are then absent from `dense`). With `kernel_copies`, the q/k matrices, whose rows
// move and so are copied anyway, are copied straight into the CPU kernels' copy (Linear::Blocks::copied_for_kernels),
// one at a time: a load that makes those copies then never holds all the reordered copies beside them.
struct GgufWeights {
  TensorMap dense;
  std::map<std::string, Linear::Blocks> blocks;
};
GgufWeights gguf_weights(const std::shared_ptr<const io::GgufFile>& file, const ModelConfig& config, bool keep_blocks,
                         bool kernel_copies = false);

// Config and weights, as a model. `options` as for causal_lm_load.
std::unique_ptr<CausalLM> gguf_model_load(const std::filesystem::path& path, const LoadOptions& options = {});

}  // namespace hearth::model
