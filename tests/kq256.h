// The kq256 fixture (tests/fixtures/kq256/README.md): a tiny random Llama as GGUF files made by llama.cpp,
// the same weights as a Hugging Face safetensors folder, and llama.cpp's reference statistics (expected.json).
// Shared by tests/io and tests/quant.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "quant/codec.h"
#include "test_paths.h"

namespace hearth::test {

inline std::filesystem::path kq256_dir() { return fixtures_dir() / "kq256"; }

// The GGUF files copied into the project. model-f32.gguf is left out to keep the repo small: hf/ holds the same
// float32 weights (in Hugging Face row order).
inline const std::vector<std::string>& kq256_gguf_files() {
  static const std::vector<std::string> files = {"model-f16.gguf",  "model-bf16.gguf",   "model-q8_0.gguf",
                                                 "model-q4_0.gguf", "model-q4_k_m.gguf", "model-q5_k_m.gguf",
                                                 "model-q6_k.gguf"};
  return files;
}

inline const nlohmann::json& kq256_expected() {
  static const nlohmann::json expected = io::json_read(kq256_dir() / "expected.json");
  return expected;
}

// Every element of a tensor decoded to float32 by hearth.
inline std::vector<float> dequantize_all(const io::GgufTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  quant::dequantize(t.type, t.data, out.data(), t.numel());
  return out;
}

// The Hugging Face name of a GGUF tensor of the llama architecture, and for q/k the number of heads whose rows
// llama.cpp's converter permutes (0 otherwise).
inline std::string kq256_hf_name(const std::string& gguf_name, int* permute_heads) {
  *permute_heads = 0;
  if (gguf_name == "token_embd.weight") return "model.embed_tokens.weight";
  if (gguf_name == "output_norm.weight") return "model.norm.weight";
  const auto dot = gguf_name.find('.', 4);  // "blk.N.<rest>"
  const std::string layer = "model.layers." + gguf_name.substr(4, dot - 4) + ".";
  const std::string rest = gguf_name.substr(dot + 1);
  if (rest == "attn_norm.weight") return layer + "input_layernorm.weight";
  if (rest == "ffn_norm.weight") return layer + "post_attention_layernorm.weight";
  if (rest == "attn_q.weight") *permute_heads = 4;
  if (rest == "attn_k.weight") *permute_heads = 2;
  if (rest == "attn_q.weight") return layer + "self_attn.q_proj.weight";
  if (rest == "attn_k.weight") return layer + "self_attn.k_proj.weight";
  if (rest == "attn_v.weight") return layer + "self_attn.v_proj.weight";
  if (rest == "attn_output.weight") return layer + "self_attn.o_proj.weight";
  if (rest == "ffn_gate.weight") return layer + "mlp.gate_proj.weight";
  if (rest == "ffn_up.weight") return layer + "mlp.up_proj.weight";
  if (rest == "ffn_down.weight") return layer + "mlp.down_proj.weight";
  throw Error("kq256: no Hugging Face name for " + gguf_name);
}

// The float32 weights of a GGUF tensor taken from hf/model.safetensors, rows in GGUF order: within each head of
// q/k, GGUF row 2j+i = HF row i·hd/2 + j (i ∈ {0, 1}, hd = head dim), as the fixture README states.
inline std::vector<float> kq256_hf_weights(const io::SafetensorsFile& hf, const std::string& gguf_name) {
  int heads = 0;
  const std::string name = kq256_hf_name(gguf_name, &heads);
  const io::TensorView* view = hf.find(name);
  if (!view || view->dtype != io::Dtype::kF32) throw Error("kq256: " + name + " missing or not F32");
  const auto* w = static_cast<const float*>(view->data);
  std::vector<float> out(w, w + view->numel());
  if (heads == 0) return out;
  const int64_t rows = view->shape[0], cols = view->shape[1], hd = rows / heads;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t j = 0; j < hd / 2; ++j)
      for (int64_t i = 0; i < 2; ++i) {
        const float* src = w + (h * hd + i * hd / 2 + j) * cols;
        std::copy(src, src + cols, out.begin() + (h * hd + 2 * j + i) * cols);
      }
  return out;
}

}  // namespace hearth::test
