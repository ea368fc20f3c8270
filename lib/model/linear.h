// A frozen base linear layer y = x·Wᵀ + b, with LoRA adapters on top: the one place where the decoder
// multiplies by a weight matrix.
//
// A Linear may hold several projections fused along the output (q/k/v, gate/up): each is a `part` with
// its LoRA target, so adapters apply per projection while the base weights are read in one product.
// The weight's storage is this class's business: a dense float32/bfloat16/float16 tensor, or ggml blocks
// (Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K, ...) behind the same forward() and bytes(). Block products (linear_blocks.cpp):
//   - few rows without autograd (decoding): lib/quant's kernels read the blocks in place, the activations
//     quantized to 8-bit blocks;
//   - many rows, or autograd recording (prefill, training — QLoRA): the weight is decoded a chunk of rows at a
//     time into a float scratch and multiplied by BLAS (CPU) or cuBLAS; backward computes dX = dY·W the same way.
//     No more than one chunk (≤ 64 MiB of float32) of one matrix is ever decoded, and the base gets no gradient.
// On a GPU the blocks are a uint8 tensor there, decoded with torch ops (block_decode.h).
// Not a torch::nn::Module: base weights never train (LoRA weights live in LoraAdapter).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "model/lora.h"
#include "quant/block_format.h"

namespace hearth::model {

// Which adapters apply to one forward call of a layer's linears.
struct LoraCall {
  const std::vector<const LoraAdapter*>* adapters = nullptr;  // per batch row, or one for all (see lora_delta)
  int64_t layer = 0;
  bool training = false;  // LoRA dropout on
};

// While one is alive on a thread, block weights multiply by their decoded chunks even without autograd: a
// checkpointed layer's first forward (run without autograd) must compute what its recomputation in backward will
// (grad_checkpoint.cpp). Nests.
class DecodedBlocksGuard {
 public:
  DecodedBlocksGuard();
  ~DecodedBlocksGuard();
  DecodedBlocksGuard(const DecodedBlocksGuard&) = delete;
  DecodedBlocksGuard& operator=(const DecodedBlocksGuard&) = delete;
};

class Linear {
 public:
  // One output slice [offset, offset + size) of a fused weight and the LoRA target it belongs to.
  struct Part {
    LoraTarget target;
    int64_t size;
  };

  // A weight matrix [rows, in] as ggml blocks: rows × ggml_type_nbytes(type, in) bytes at `data`, kept alive
  // by `owner` (a memory-mapped file, or a buffer) — or, on a GPU, the same bytes as `device_bytes`, a uint8
  // tensor [rows, row_bytes()] there (`data` is then null; the type must be blocks_decodable()).
  struct Blocks {
    quant::GgmlType type = quant::GgmlType::kF32;
    const uint8_t* data = nullptr;
    int64_t rows = 0, in = 0;
    std::shared_ptr<const void> owner;
    torch::Tensor device_bytes;
    // `data` holds the rows in quant's interleaved layout (quant/interleave.h), not ggml's.
    bool interleaved_rows = false;
    // `data` is already the CPU kernels' own copy (copied_for_kernels()).
    bool kernel_copy = false;
    size_t row_bytes() const;
    // A [rows, in] matrix of any float dtype quantized to `type` into memory the result owns (chunks of rows
    // converted to float32, rows quantized in parallel). Throws ConfigError for a value `type` cannot hold.
    static Blocks quantized(const torch::Tensor& w, quant::GgmlType type);
    // These blocks as `device_bytes` on `device` (a copy in ggml's layout; `data` and `owner` dropped). Throws Error
    // for a type blocks_decode() cannot decode.
    Blocks to_device(torch::Device device) const;
    // The CPU kernels' copy of these blocks, owned by the result, in memory of its own (io::huge_page_buffer: a
    // decode step reads every weight, and 4 KiB pages cost it TLB misses), Q4_0 with at least one group of rows in the
    // interleaved layout (quant/interleave.h); the pages of a file mapping the rows were read from are given back.
    // Blocks on a device, or already the kernels' copy, are returned as they are.
    Blocks copied_for_kernels() const;
    // Rows [r0, r1) decoded to float32 into dst ((r1 − r0)·in floats), in ggml's or the interleaved layout.
    void decode_rows(int64_t r0, int64_t r1, float* dst) const;
  };

  Linear() = default;
  // Dense weight [out, in] (and bias [out] or undefined). `parts` split `out` in order; their sizes must
  // add up to out. An empty list means one part with no LoRA target (e.g. the output head).
  Linear(torch::Tensor weight, torch::Tensor bias, std::vector<Part> parts = {});
  // Block weights, one per part (parts[i].size rows each, all with the same `in`), or one with no LoRA target
  // when `parts` is empty. Throws Error when they do not fit together.
  Linear(std::vector<Blocks> blocks, torch::Tensor bias, std::vector<Part> parts = {});

  // x [..., in] -> y [..., out] in x's dtype: base product, bias, and the adapters' deltas on each part.
  // Differentiable with respect to x and the adapters' weights (never the base). With block weights the graph
  // refers to this Linear: it must outlive the backward pass.
  torch::Tensor forward(const torch::Tensor& x, const LoraCall& lora = {}) const;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  // Bytes of base weights (and bias) one forward reads.
  size_t bytes() const;
  // True when the weight is held as ggml blocks.
  bool quantized() const { return !blocks_.empty(); }
  // The dense weight [out, in]; undefined when quantized() (see dense()). Never modify it in place (it may
  // be memory-mapped).
  const torch::Tensor& weight() const { return weight_; }
  const torch::Tensor& bias() const { return bias_; }
  // Rows `ids` of the weight (an embedding lookup): ids [...] int64 -> [..., in] in `dtype`.
  torch::Tensor rows(const torch::Tensor& ids, torch::ScalarType dtype) const;
  // The weight as a float32 tensor [out, in] on the CPU (decoded from blocks when quantized) — for merging and tests.
  torch::Tensor dense() const;
  // Rows [r0, r0 + n) of the fused weight decoded to float32 on the weight's device; the rows may span parts.
  // `scratch`, when given (CPU only), is reused for the result if large enough.
  torch::Tensor decoded_rows(int64_t r0, int64_t n, torch::Tensor* scratch = nullptr) const;
  // Where the weight lives (the device of its tensor or of its device blocks).
  torch::Device device() const;
  // The storage type of each part: "F32", "BF16", "Q4_K", ...
  std::vector<std::string> storage_types() const;
  // The pages of a CPU weight read in place from a file mapping, mapped in at once (io::mapped_populate) rather than
  // faulted in one by one by the first forward pass; weights in memory of their own are left as they are.
  void mapped_populate() const;

 private:
  torch::Tensor base(const torch::Tensor& x) const;
  torch::Tensor base_blocks(const torch::Tensor& x) const;         // picks one of the two below
  torch::Tensor base_block_kernels(const torch::Tensor& x) const;  // lib/quant, 8-bit activations
  torch::Tensor base_decoded(const torch::Tensor& x) const;        // decoded chunks, differentiable in x
  torch::Tensor base_small_batch(const torch::Tensor& x) const;    // float32/bfloat16 weight, a few rows: lib/quant

  torch::Tensor weight_, bias_;
  std::vector<Blocks> blocks_;
  std::vector<Part> parts_;
  int64_t in_ = 0, out_ = 0;
};

}  // namespace hearth::model
