// Scaled dot-product attention for the decoder: grouped-query, causal by cache slot, optional sliding
// window, softmax in float32 (as transformers computes it).
//
// The one place attention is computed, so that a faster path (libtorch ≥ 2's scaled_dot_product_attention,
// a fused CUDA kernel, a CPU kernel reading a quantized cache) replaces it here and nowhere else.
// Shape letters as in causal_lm.h.
#pragma once

#include <optional>

#include <torch/types.h>

namespace hearth::model {

// q [B, H, T, hd], k/v [B, KV, S, hd] (H a multiple of KV), mask [B, 1, T, S] bool (true = may attend) or
// undefined (every query sees every key) -> [B, T, H·hd] in v's dtype. Query head h reads key/value head
// h / (H / KV), without materializing repeated K/V heads. Float32 on the CPU in inference mode (decode steps and
// prompts) runs as plain loops over query blocks, a row's numbers independent of the rows beside it and the
// scores never held for the whole prompt at once; everything else (other dtypes, CUDA) through libtorch's matmul and
// softmax — under autograd (training) a few batch rows at a time, with nothing but q, k, v and the mask kept for
// backward, which computes the probabilities again (attention.cpp: RecomputedAttention).
// `causal`: the mask, for every query whose output is used, allows exactly the keys at or before the query's own
// position in this call's tokens (no cache, no window, padding only at the end of a row): a fused kernel may then
// apply causality itself and skip the mask. On CUDA, for more than one query position, when this libtorch has the
// fused kernels (see fused_attention_available), they compute the result instead.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask, bool causal = false);

// The training path's float32 scores per chunk of batch rows (at least one row at a time).
constexpr int64_t kAttentionChunkBytes = int64_t(64) << 20;

// libtorch ≥ 2's scaled_dot_product_attention (flash and memory-efficient kernels on CUDA, nothing kept for backward
// but q, k, v and the softmax's log-sums), found by name in libtorch's operator registry at run time, so that the
// same code builds against libtorch 1.13, which lacks it. False there, or after fused_attention_enable(false).
bool fused_attention_available();
// Off: attention() computes with its own ops on CUDA too (benchmarks compare the two). Not thread-safe with
// attention calls in flight.
void fused_attention_enable(bool on);
// attention()'s result through the registered operator `op_name` ("aten::scaled_dot_product_attention", or 1.13's
// "aten::_scaled_dot_product_attention", which takes the same named arguments): K/V heads repeated for grouped
// queries, the mask passed as it is, or none with is_causal when `causal`. Throws Error when libtorch has no such
// operator or it takes arguments other than query, key, value, attn_mask, is_causal and defaulted ones.
torch::Tensor fused_attention(const char* op_name, const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const torch::Tensor& mask, bool causal);

// The CPU path above: true for float32 queries on the CPU in inference mode, keys in rows hd floats apart (a KV
// cache's layout), mask [B, 1, T, S] or undefined; cpu_attention then gives attention()'s result.
bool cpu_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           const torch::Tensor& mask);
torch::Tensor cpu_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const torch::Tensor& mask);

// Which keys each query may attend to: [B, 1, T, S] bool.
//   q_slot    [B, T] int64: the cache slot (or position within the batch) of each query token;
//   key_valid [B, S] bool, false for keys that hold padding, or undefined (all valid);
//   window    Mistral's sliding window (a query sees the `window` most recent slots, itself included).
// Causal by slot; a token always sees itself, so padded rows stay finite.
torch::Tensor attention_mask(const torch::Tensor& q_slot, const torch::Tensor& key_valid, int64_t n_keys,
                             std::optional<int64_t> window);

}  // namespace hearth::model
